#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 16: the export tuning options of connpid-queryd (--journal-rate,
--journal-burst, --ndjson-max-size, --ndjson-keep) take what is in range
and refuse the rest with a message naming the option, before anything is
opened (no root, no BPF needed). A value that parses lets getopt go on to
the --version that follows it (exit 0); a refused one exits 1 first.
The live effect of --ndjson-max-size/--ndjson-keep is test_ndjson.py, of
--journal-rate/--journal-burst tests/systemd/journal-export.sh.
Exit 0 pass, 1 fail."""
import os
import subprocess
import sys

QUERYD = os.environ.get("CONNPID_QUERYD", "connpid-queryd")

GOOD = [("--journal-rate", "1"), ("--journal-rate", "500/s"), ("--journal-rate", "1000000/s"),
        ("--journal-burst", "1"), ("--journal-burst", "1000000"),
        ("--ndjson-max-size", "4096"), ("--ndjson-max-size", "20000"), ("--ndjson-max-size", "64M"),
        ("--ndjson-max-size", "1024G"), ("--ndjson-keep", "1"), ("--ndjson-keep", "1000")]
BAD = [("--journal-rate", "0"), ("--journal-rate", "0/s"), ("--journal-rate", "1000001"),
       ("--journal-rate", "5/m"), ("--journal-rate", "-5"), ("--journal-rate", ""),
       ("--journal-rate", "18446744073709551617"), ("--journal-rate", "5 "),
       ("--journal-burst", "0"), ("--journal-burst", "1000001"), ("--journal-burst", "5/s"),
       ("--journal-burst", "1e3"), ("--ndjson-max-size", "4095"), ("--ndjson-max-size", "1025G"),
       ("--ndjson-max-size", "3K"), ("--ndjson-max-size", "64MB"), ("--ndjson-max-size", "1T"),
       ("--ndjson-max-size", "M"), ("--ndjson-max-size", "18014398509481984K"),
       ("--ndjson-keep", "0"), ("--ndjson-keep", "1001"), ("--ndjson-keep", "-1"), ("--ndjson-keep", "2x")]


def run(opt, val):
    return subprocess.run([QUERYD, opt, val, "--version"], capture_output=True, text=True, timeout=10)


def main():
    failed = 0
    for opt, val in GOOD:
        p = run(opt, val)
        if p.returncode != 0 or "connpid-queryd" not in p.stdout:
            print("FAIL: %s %r refused: rc %d %s" % (opt, val, p.returncode, p.stderr.strip()))
            failed += 1
    for opt, val in BAD:
        p = run(opt, val)
        if p.returncode == 0 or ("Invalid %s '%s'" % (opt, val)) not in p.stderr:
            print("FAIL: %s %r accepted or not named: rc %d stdout %r stderr %r"
                  % (opt, val, p.returncode, p.stdout, p.stderr))
            failed += 1
    h = subprocess.run([QUERYD, "--help"], capture_output=True, text=True, timeout=10).stdout
    for opt in ("--journal-rate", "--journal-burst", "--ndjson-max-size", "--ndjson-keep"):
        if opt not in h:
            print("FAIL: --help does not mention %s" % opt)
            failed += 1
    print("%d accepted, %d refused as expected, %d failures" % (len(GOOD), len(BAD), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

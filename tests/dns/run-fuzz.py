#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Runs the libFuzzer target for queryd/dns-parse.c for a bounded time:
run-fuzz.py FUZZER SECONDS SEED_DIR... New inputs and crash artifacts go
to a temporary directory (never into the source tree); any crash, leak,
sanitizer report or timeout fails, printing the input in hex."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile


def main():
    fuzzer, seconds, seeds = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    work = tempfile.mkdtemp(prefix="cpid-dns-fuzz-")
    try:
        corpus = os.path.join(work, "corpus")
        os.mkdir(corpus)
        args = [fuzzer, "-max_total_time=%d" % seconds, "-timeout=10", "-rss_limit_mb=2048",
                "-max_len=2048", "-print_final_stats=1",
                "-artifact_prefix=%s/" % work, corpus] + seeds
        print("+", " ".join(args), flush=True)
        env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1",
                   UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
        r = subprocess.run(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=seconds + 120)
        out = r.stdout
        print(out[-6000:], flush=True)
        arts = sorted(glob.glob(os.path.join(work, "crash-*")) + glob.glob(os.path.join(work, "leak-*")) +
                      glob.glob(os.path.join(work, "timeout-*")) + glob.glob(os.path.join(work, "oom-*")))
        for a in arts:
            with open(a, "rb") as f:
                print("artifact %s: %s" % (os.path.basename(a), f.read().hex()), flush=True)
        if r.returncode != 0 or arts or "runtime error" in out:
            print("FAIL: fuzzer rc %d, %d artifact(s)" % (r.returncode, len(arts)), flush=True)
            return 1
        print("PASS: %d new inputs" % len(os.listdir(corpus)), flush=True)
        return 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


sys.exit(main())

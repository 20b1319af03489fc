#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpid-squid-helper passes Squid's %SRC as the lookup's "src" (issue 14).

No Squid and no root: the helper reads request lines on stdin as Squid
writes them and talks to a MOCK daemon (MockQueryd of
contrib/python/tests/test_client.py, NOT connpid-queryd), which records
every request. Checked: the lookup asks for the FLOW members the notes
and allow lists use ("fields", issue 15: the mock answers with those
only) and the notes are still all there; %SRC is sent as "src" (v4-mapped folded), a %SRC
that cannot be the flow's src ("-", another family than %MYADDR) is left
out and the lookup is made as before, no "direction" or "netns" is sent,
and with --direct-fallback and the daemon down a lookup carrying src is
still answered from the pinned maps (asked without src, as before).
"""
import json
import os
import select
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "python", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "lib-c"))
from test_client import FLOW, MockQueryd  # noqa: E402
from mockcheck import check, run  # noqa: E402

HELPER = os.environ.get("CONNPID_SQUID_HELPER", "")
# what the helper prints (notes) and checks (allow lists)
HELPER_FIELDS = ["pid", "user", "comm", "exe", "unit", "container", "domain"]
SPORT = FLOW["sport"]


def run_helper(args, lines, timeout=10):
    """Feed lines to the helper, return its answer lines (one per line)."""
    p = subprocess.Popen([HELPER] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        p.stdin.write("".join(ln + "\n" for ln in lines).encode())
        p.stdin.flush()
        out, deadline = b"", time.monotonic() + timeout
        while out.count(b"\n") < len(lines) and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        p.stdin.close()
        p.wait(timeout=5)
        return out.decode("utf-8", "replace").splitlines()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def scenarios(tmp):
    sock = os.path.join(tmp, "q.sock")
    mock = MockQueryd(sock)
    try:
        lines = ["0 127.0.0.2 %d 127.0.0.1 3128" % SPORT,
                 "1 ::ffff:10.0.0.9 %d 10.0.0.1 3128" % SPORT,
                 "2 - %d 127.0.0.1 3128" % SPORT,
                 "3 2001:db8::2 %d 127.0.0.1 3128" % SPORT]
        out = run_helper(["--socket", sock], lines)
        check(len(out) == 4, "four answers", out)
        for ln in out:
            check(" OK " in ln and "pid=%d" % FLOW["pid"] in ln, "found: " + ln)
        reqs = {r["dst"] + "/" + str(r.get("src")): r for r in mock.requests
                if r.get("op") == "lookup"}
        check(len(reqs) == 3 and len([r for r in mock.requests if r.get("op") == "lookup"]) == 4,
              "four lookups", mock.requests)
        check("127.0.0.1/127.0.0.2" in reqs, "%SRC sent as src", reqs)
        check("10.0.0.1/10.0.0.9" in reqs, "v4-mapped %SRC folded", reqs)
        check("127.0.0.1/None" in reqs, "'-' and another family: no src", reqs)
        for r in mock.requests:
            check("direction" not in r and "netns" not in r,
                  "no direction or netns sent: %s" % json.dumps(r))
            check(r.get("fields") == HELPER_FIELDS, "the helper's fields sent: %s" % json.dumps(r))
        check(all("user=root exe=/usr/bin/curl comm=curl" in ln for ln in out),
              "the notes from the narrowed answer", out)
        out = run_helper(["--socket", sock, "--allow-exe", "/usr/bin/curl"],
                         ["0 127.0.0.2 %d 127.0.0.1 3128" % SPORT])
        check(len(out) == 1 and out[0].startswith("0 OK "), "allow list on the narrowed answer", out)
        out = run_helper(["--socket", sock, "--allow-exe", "/usr/bin/wget"],
                         ["0 127.0.0.2 %d 127.0.0.1 3128" % SPORT])
        check(len(out) == 1 and out[0].startswith("0 ERR "), "not on the allow list", out)
    finally:
        mock.stop()

    # daemon down, --direct-fallback: asked of the maps without src,
    # so the answer is the maps' error (the pin dir is empty), not the
    # socket's ("Connection refused").
    notsock = os.path.join(tmp, "not-a-socket")
    open(notsock, "w").close()
    out = run_helper(["--socket", notsock, "--direct-fallback", "--pin-dir", tmp],
                     ["0 127.0.0.2 %d 127.0.0.1 3128" % SPORT])
    check(len(out) == 1 and out[0].startswith("0 BH") and "refused" not in out[0].lower(),
          "fallback: the maps were asked", out)
    out = run_helper(["--socket", notsock, "--pin-dir", tmp],
                     ["0 127.0.0.2 %d 127.0.0.1 3128" % SPORT])
    check(len(out) == 1 and out[0].startswith("0 BH") and "refused" in out[0].lower(),
          "no fallback: the socket's error", out)


def main():
    return run("CONNPID_SQUID_HELPER", "connpid-squid-src-", scenarios)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, fd exhaustion, while pinging: queryd runs under
`prlimit --nofile=64:64`; a client connected beforehand pings while other
connections pile up beyond the fds queryd has left. accept() pauses
instead of spinning (tests/queryd/test_emfile.py checks the CPU and the
single log line): the connected client's ping p99 stays < 50 ms, queryd
stays alive, and once the piled-up connections go a new client is
answered."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import Watch, binary, check, check_eq, log, main, qdharness, wait_until  # noqa: E402

NOFILE = 64
STARVED = 3.0


def test(env):
    qd = binary("CONNPID_QUERYD")
    d = qdharness.harness.Daemon(env, ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--", qd, "--pin-dir",
                                       env.pin_dir, "--socket", env.sock, "--no-store", "--no-docker"])
    d.wait_ready()
    hogs = []
    with Watch(env, d) as w:
        try:
            used = len(os.listdir("/proc/%d/fd" % d.pid))
            for _ in range(NOFILE - used + 40):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                hogs.append(s)
                s.connect(env.sock)
            wait_until(lambda: len(os.listdir("/proc/%d/fd" % d.pid)) >= NOFILE, timeout=10,
                       what="queryd at its fd limit")
            time.sleep(STARVED)
        finally:
            for s in hogs:
                s.close()
    w.report("%d connections past an fd limit of %d" % (len(hogs), NOFILE))
    with qdharness.Client(env.sock, timeout=10) as c:
        ans = c.request({"op": "stats"})
    check(ans.get("ok"), "stats after the fds freed", ans)
    log("accept_starved %s" % ans["stats"].get("accept_starved"))
    check(ans["stats"].get("accept_starved", 0) >= 1, "the shortage was counted", ans["stats"])
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "fds")

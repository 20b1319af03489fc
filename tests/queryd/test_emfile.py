#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, fd exhaustion: when accept() fails with EMFILE the daemon
stops accepting instead of spinning (the old loop took 100 % CPU and wrote
millions of log lines), says so once, and takes clients again once fds
free.

queryd runs under `prlimit --nofile=N:N`; the test holds more connections
than it has fds left, measures the daemon's CPU time and log lines while
it is starved, then closes them and a new client gets its ping answered."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import binary, check, check_eq, log, main, wait_until  # noqa: E402
import harness  # noqa: E402  (tests/lib, put on the path by qdharness)

NOFILE = 64
STARVED_SECONDS = 3.0
MAX_CPU = 0.5           # seconds of CPU in STARVED_SECONDS: a spin takes them all


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def starved_lines(text):
    return sum(1 for line in text.splitlines() if "accept" in line.lower())


def test(env):
    qd = binary("CONNPID_QUERYD")
    d = harness.Daemon(env, ["prlimit", "--nofile=%d:%d" % (NOFILE, NOFILE), "--", qd, "--pin-dir",
                             env.pin_dir, "--socket", env.sock, "--no-store", "--no-docker"])
    d.wait_ready()
    used = len(os.listdir("/proc/%d/fd" % d.pid))
    log("queryd holds %d fds of %d" % (used, NOFILE))
    hogs = []
    try:
        for _ in range(NOFILE - used + 40):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            hogs.append(s)
            s.connect(env.sock)   # the backlog takes it even when accept() cannot
        wait_until(lambda: len(os.listdir("/proc/%d/fd" % d.pid)) >= NOFILE, timeout=10,
                   what="queryd at its fd limit")
        cpu0 = cpu_seconds(d.pid)
        time.sleep(STARVED_SECONDS)
        cpu = cpu_seconds(d.pid) - cpu0
        lines = starved_lines(d.log())
        log("starved for %.1fs: %.2fs CPU, %d log lines about accept" % (STARVED_SECONDS, cpu, lines))
        check(cpu < MAX_CPU, "queryd spins while out of fds: %.2fs CPU in %.1fs"
              % (cpu, STARVED_SECONDS))
        check_eq(lines, 1, "log lines about the failing accept()")
        check(d.alive(), "queryd died out of fds", d.log())
    finally:
        for s in hogs:
            s.close()
    # every hog is gone: the daemon takes clients again
    with harness.Client(env.sock, timeout=10) as c:
        ans = c.request({"op": "ping"})
    check(ans.get("pong"), "ping after the fds freed", ans)
    check_eq(starved_lines(d.log()), 1, "log lines about accept() for the whole episode")
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "emfile")

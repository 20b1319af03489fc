#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpid_set_busy_poll() against the REAL connpid-queryd, through
tests/lib-c/busy-poll.c.

- args: 1001 (and UINT64_MAX, a NULL handle) are -EINVAL, 0 and 1000 taken.
- lookups: with busy poll 0, 100 and 1000 us a lookup of the workload's
  flow answers the same (rc 0, found, the workload's pid), one of a flow
  nobody has the same (not found), and a connpid_call() ping after it is
  answered.
- bounded: the daemon stopped (SIGSTOP), busy poll 1000 us and a timeout
  of 200 ms: connpid_lookup() and connpid_call() return -ETIMEDOUT after
  about 200 ms, and the thread's CPU time over each call stays near the
  1 ms spin (it spun once, then slept), far from the 200 ms a spin over
  the whole wait would take. That the spin ran at all is checked too:
  some attempt's CPU time is well above what a call without spin uses.

Root, BTF and cgroup2 needed (own cgroup, pin dir, socket; all removed at
exit); exit 77 without them."""
import errno
import json
import os
import signal
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
import qdharness  # noqa: E402  (puts tests/lib on the path)
import harness  # noqa: E402
from qdharness import check, check_eq  # noqa: E402

TIMEOUT_MS = 200
SPIN_US = 1000
# CPU a call may use beyond its spin: building the request, connect,
# send, expiring; generous for sanitizer builds and a busy shared VM
CPU_SLACK_US = 4000


def busy_poll(*args):
    exe = os.environ.get("CONNPID_BUSY_POLL", "")
    check(exe and os.path.exists(exe), "CONNPID_BUSY_POLL is built", exe)
    r = subprocess.run([exe] + [str(a) for a in args], capture_output=True, text=True, timeout=60)
    check_eq(r.returncode, 0, "busy-poll %s exit (%s)" % (args[0], r.stderr))
    return [json.loads(ln) for ln in r.stdout.splitlines()]


def test_args(env):
    out = busy_poll("args")
    check_eq(out, [{"1001": -errno.EINVAL, "max": -errno.EINVAL, "0": 0, "1000": 0, "null": -errno.EINVAL}],
             "connpid_set_busy_poll bounds")


def test_lookups(env):
    lport, d, w, _ = env.start("cpq-busypoll")
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    nobody = env.free_udp_port()  # a port no TCP flow of ours uses
    for usec in (0, 100, 1000):
        out = busy_poll("lookup", env.sock, usec, "127.0.0.1", t["sport"], lport)
        check_eq(out, [{"op": "lookup", "rc": 0, "found": True, "pid": w.pid}, {"op": "ping", "rc": 0, "ok": True}],
                 "busy poll %d us: the workload's flow, then a ping" % usec)
        out = busy_poll("lookup", env.sock, usec, "127.0.0.1", nobody, lport)
        check_eq(out[0], {"op": "lookup", "rc": 0, "found": False, "pid": 0},
                 "busy poll %d us: a flow nobody owns" % usec)
    check(d.alive(), "the daemon still runs")


def stopped_calls(env, d, usec):
    """busy-poll stopped with the daemon SIGSTOPped: its two reports."""
    os.kill(d.pid, signal.SIGSTOP)
    try:
        return busy_poll("stopped", env.sock, usec, TIMEOUT_MS, "127.0.0.1", 40000, 80)
    finally:
        os.kill(d.pid, signal.SIGCONT)


def test_bounded(env):
    d = env.daemon()
    d.wait_ready()
    spun = []
    for attempt in range(3):
        for rep in stopped_calls(env, d, SPIN_US):
            harness.log("busy poll %d us, daemon stopped: %s" % (SPIN_US, rep))
            check_eq(rep["rc"], -errno.ETIMEDOUT, "%s with the daemon stopped" % rep["op"])
            check(TIMEOUT_MS * 1000 * 0.9 <= rep["wall_us"] <= TIMEOUT_MS * 1000 + 2000000,
                  "%s took about the timeout" % rep["op"], rep)
            check(rep["cpu_us"] <= SPIN_US + CPU_SLACK_US,
                  "%s: the thread's CPU over the call is the spin and little more" % rep["op"], rep)
            spun.append(rep["cpu_us"])
        # the spin is wall time: a thread preempted during it uses less
        # CPU, so one attempt that shows it is enough
        if max(spun) >= SPIN_US * 0.4:
            break
    check(max(spun) >= SPIN_US * 0.4, "the calls spun (CPU near %d us in some attempt)" % SPIN_US, spun)
    for rep in stopped_calls(env, d, 0):
        harness.log("busy poll off, daemon stopped: %s" % rep)
        check_eq(rep["rc"], -errno.ETIMEDOUT, "%s with the daemon stopped, no busy poll" % rep["op"])
        check(rep["cpu_us"] <= CPU_SLACK_US, "%s without busy poll: no spin" % rep["op"], rep)
    d.wait_ready()  # answers again after SIGCONT


if __name__ == "__main__":
    harness.run_cases([test_args, test_lookups, test_bounded], qdharness.TestEnv, "busy-poll",
                      qdharness.require_environment)

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpid-squid-helper --busy-poll-us against the REAL connpid-queryd.

No Squid: the helper reads request lines on stdin as Squid writes them
(concurrency channel ids, %SRC %SRCPORT %MYADDR %MYPORT).

- args: --busy-poll-us 1001, -1, x and "" are refused with a message
  naming the option and its range (exit 2); 0 and 1000 are taken.
- answers: a lookup of the workload's flow (OK pid=) and of a flow nobody
  owns (ERR) answer the same with --busy-poll-us=100 and 1000 as without.
- bounded: the daemon stopped (SIGSTOP), --busy-poll-us=1000 --timeout
  1000: the request gets BH after about a second, and the helper's CPU
  time over that second is far below what a spin over the whole wait
  would take (one second).

Root, BTF and cgroup2 needed (own cgroup, pin dir, socket; all removed at
exit); exit 77 without them."""
import os
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
import qdharness  # noqa: E402  (puts tests/lib on the path)
import harness  # noqa: E402
from qdharness import Skip, check, check_eq  # noqa: E402

HELPER = os.environ.get("CONNPID_SQUID_HELPER", "")


def require():
    qdharness.require_environment()
    if not HELPER or not os.path.exists(HELPER):
        raise Skip("CONNPID_SQUID_HELPER not built")


class Helper:
    """The helper on pipes: lines in, answer lines out, CPU time so far."""

    def __init__(self, env, args):
        self.p = env.track(subprocess.Popen([HELPER, "--socket", env.sock] + list(args), stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        self.out = b""

    def ask(self, lines, timeout=10):
        self.p.stdin.write("".join(ln + "\n" for ln in lines).encode())
        self.p.stdin.flush()
        deadline = time.monotonic() + timeout
        while self.out.count(b"\n") < len(lines) and time.monotonic() < deadline:
            r, _, _ = select.select([self.p.stdout], [], [], 0.2)
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    break
                self.out += chunk
        answers = self.out.decode("utf-8", "replace").splitlines()
        self.out = b""
        return answers

    def cpu_seconds(self):
        """utime + stime of /proc/PID/stat (clock ticks)."""
        with open("/proc/%d/stat" % self.p.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def cpu_ns(self):
        """Time on a CPU, in ns (schedstat: finer than stat's ticks)."""
        with open("/proc/%d/schedstat" % self.p.pid) as f:
            return int(f.read().split()[0])

    def close(self):
        self.p.stdin.close()
        try:
            self.p.wait(timeout=10)
        finally:
            if self.p.poll() is None:
                self.p.kill()
                self.p.wait()
            self.p.stdout.close()
            self.p.stderr.close()
        return self.p.returncode


def test_args(env):
    for bad in ("1001", "-1", "x", "", "1e3"):
        r = subprocess.run([HELPER, "--busy-poll-us", bad], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        check(r.returncode == 2 and "--busy-poll-us" in r.stderr and "0-1000" in r.stderr,
              "--busy-poll-us %r refused, naming the option and range" % bad, (r.returncode, r.stderr))
    for good in ("0", "1000"):
        r = subprocess.run([HELPER, "--busy-poll-us=" + good, "--version"], capture_output=True, text=True,
                           timeout=10, stdin=subprocess.DEVNULL)
        check(r.returncode == 0 and r.stderr == "", "--busy-poll-us=%s taken" % good, (r.returncode, r.stderr))
    r = subprocess.run([HELPER, "--help"], capture_output=True, text=True, timeout=10)
    check("--busy-poll-us" in r.stdout, "--help names --busy-poll-us", r.stdout)


def test_answers(env):
    lport, d, w, _ = env.start("cpsq-busypoll")
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    nobody = env.free_udp_port()  # no TCP flow of ours has this source port
    lines = ["0 127.0.0.1 %d 127.0.0.1 %d" % (t["sport"], lport),
             "1 127.0.0.1 %d 127.0.0.1 %d" % (nobody, lport)]
    got = {}
    for args in ([], ["--busy-poll-us=100"], ["--busy-poll-us", "1000"]):
        h = Helper(env, args)
        try:
            # twice: the second lookup goes over the open connection
            got[" ".join(args)] = h.ask(lines) + h.ask(lines)
        finally:
            check_eq(h.close(), 0, "helper %s exit" % args)
    base = got[""]
    harness.log("answers without busy poll: %s" % base)
    check(len(base) == 4 and base[0].startswith("0 OK pid=%d " % w.pid) and base[1].startswith("1 ERR "),
          "without busy poll: OK with the workload's pid, ERR for nobody's flow", base)
    check_eq(base[2:], base[:2], "without busy poll: the same answers over the open connection")
    for k, v in got.items():
        check_eq(v, base, "helper %s answers as without busy poll" % k)
    check(d.alive(), "the daemon still runs")


def test_bounded(env):
    d = env.daemon()
    d.wait_ready()
    h = Helper(env, ["--busy-poll-us=1000", "--timeout", "1000"])
    try:
        check_eq(h.ask(["0 127.0.0.1 40000 127.0.0.1 3128"]),
                 ["0 ERR message=unknown%20owner"], "a lookup while the daemon runs (connects)")
        cpu0 = h.cpu_seconds()
        os.kill(d.pid, signal.SIGSTOP)
        try:
            t0 = time.monotonic()
            out = h.ask(["1 127.0.0.1 40001 127.0.0.1 3128"])
            wall = time.monotonic() - t0
            cpu = h.cpu_seconds() - cpu0
        finally:
            os.kill(d.pid, signal.SIGCONT)
        harness.log("daemon stopped, --busy-poll-us=1000: %s after %.3f s, helper CPU %.3f s" % (out, wall, cpu))
        check(len(out) == 1 and out[0].startswith("1 BH"), "BH when the daemon does not answer", out)
        check(0.9 <= wall <= 5, "BH after about --timeout", wall)
        # a spin over the whole wait would be about 1 s of CPU
        check(cpu <= 0.3, "the helper spun at most briefly, then slept", cpu)
    finally:
        check_eq(h.close(), 0, "helper exit")
    d.wait_ready()


def stopped_wait_ns(env, d, busy):
    """CPU ns of a helper (--busy-poll-us busy) over one lookup the
    stopped daemon never answers (--timeout 200)."""
    h = Helper(env, ["--busy-poll-us=%d" % busy, "--timeout", "200"])
    try:
        h.ask(["0 127.0.0.1 40000 127.0.0.1 3128"])   # connected
        ns0 = h.cpu_ns()
        os.kill(d.pid, signal.SIGSTOP)
        try:
            out = h.ask(["1 127.0.0.1 40001 127.0.0.1 3128"])
            ns = h.cpu_ns() - ns0
        finally:
            os.kill(d.pid, signal.SIGCONT)
        check(len(out) == 1 and out[0].startswith("1 BH"), "BH when the daemon does not answer", out)
        return ns
    finally:
        check_eq(h.close(), 0, "helper exit")


def test_spins(env):
    """The option is not merely parsed: waiting on a stopped daemon, a
    helper with --busy-poll-us=1000 spends about 1 ms more CPU than one
    without (the spin, then the sleep). Three tries: a try may lose its
    spin to preemption."""
    d = env.daemon()
    d.wait_ready()
    extra = []
    for _ in range(3):
        without, spun = stopped_wait_ns(env, d, 0), stopped_wait_ns(env, d, 1000)
        extra.append((spun - without) / 1e3)
        if extra[-1] >= 400:
            break
        d.wait_ready()
    harness.log("CPU us with a 1000 us spin over without, per try: %s" % ", ".join("%.0f" % x for x in extra))
    check(max(extra) >= 400, "the helper spins while an answer is due", extra)


if __name__ == "__main__":
    harness.run_cases([test_args, test_answers, test_bounded, test_spins], qdharness.TestEnv, "squid-busy-poll",
                      require)

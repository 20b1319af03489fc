# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared pieces of the `hostile` suite (issue 13): a client that pings
queryd on a fixed schedule while an attack runs, and a sampler of queryd's
RSS. Each test has its own cgroup, pin dir, socket and db (qdharness
TestEnv), so the suite runs in parallel; every attack is bounded in time.

The pinger sends on a fixed schedule without waiting for answers (open
loop): a loop stalled for 10 s delays every ping sent meanwhile, and they
all count (a pinger that waited for each answer before sending the next
would record one slow ping and hide the stall)."""
import os
import select
import socket
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
import qdharness  # noqa: E402
from qdharness import binary, check, check_eq, log, vmrss_kb, wait_until  # noqa: E402,F401

PING_P99_MS = 50.0
RSS_LIMIT_MB = 128
PING_INTERVAL = 0.01


class TestEnv(qdharness.TestEnv):
    prefix = "cph-"
    tmp_prefix = "cph-"


def main(test_fn, tag):
    qdharness.harness.main(test_fn, TestEnv, tag, qdharness.require_environment)


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


class Pinger(threading.Thread):
    """One connection; a ping sent every PING_INTERVAL whether or not the
    earlier ones were answered (open loop, pipelined), each answer matched
    to its ping in order: latency in ms from the send. A stalled loop
    delays every ping sent during the stall, and they all count."""

    def __init__(self, sock_path, interval=PING_INTERVAL, timeout=60.0):
        super().__init__(daemon=True)
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(sock_path)
        self.s.setblocking(False)
        self.interval = interval
        self.timeout = timeout
        self.lat_ms = []
        self.sent_at = []      # of every ping, in order
        self.error = None
        self.stop_flag = threading.Event()

    def _read(self, buf, inflight):
        chunk = self.s.recv(65536)
        if not chunk:
            raise RuntimeError("queryd closed the pinger's connection")
        buf += chunk
        now = time.monotonic()
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if b'"pong":true' not in line:
                raise RuntimeError("not a pong: %r" % line[:200])
            self.lat_ms.append((now - inflight.pop(0)) * 1000.0)
        return buf

    def run(self):
        buf, inflight = b"", []
        due = time.monotonic()
        try:
            while not self.stop_flag.is_set() or inflight:
                now = time.monotonic()
                if inflight and now - inflight[0] > self.timeout:
                    raise RuntimeError("a ping unanswered for %.0f s" % self.timeout)
                if not self.stop_flag.is_set() and now >= due:
                    self.s.sendall(b'{"op":"ping"}\n')
                    inflight.append(now)
                    self.sent_at.append(now)
                    due += self.interval
                    continue
                wait = max(0.0, due - now) if not self.stop_flag.is_set() else 0.1
                r, _, _ = select.select([self.s], [], [], wait)
                if r:
                    buf = self._read(buf, inflight)
        except Exception as e:   # reported by finish()
            self.error = e

    def finish(self):
        """Stop (the pings in flight are still awaited); (p50, p99, max, n) in ms."""
        self.stop_flag.set()
        self.join(timeout=self.timeout + 10)
        self.s.close()
        check(self.error is None, "the pinger failed: %r" % (self.error,))
        lat = self.lat_ms
        check(len(lat) > 0, "no ping answered")
        worst = sorted(range(len(lat)), key=lambda i: -lat[i])[:3]
        log("slowest pings: %s" % ", ".join("%.0f ms at +%.2fs" % (lat[i], self.sent_at[i] - self.sent_at[0])
                                            for i in worst))
        return percentile(lat, 50), percentile(lat, 99), max(lat), len(lat)


class RssSampler(threading.Thread):
    """queryd's VmRSS every 50 ms; peak in MB."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.peak_kb = max(self.peak_kb, vmrss_kb(self.pid) or 0)
            except OSError:
                return
            time.sleep(0.05)

    def finish(self):
        self.stop_flag.set()
        self.join(timeout=10)
        return self.peak_kb / 1024.0


class Watch:
    """A pinger and an RSS sampler around an attack:
        with Watch(env, daemon) as w: ...attack...
    then w.report(what) logs the figures and checks the bounds."""

    def __init__(self, env, daemon, rss=True):
        self.env, self.daemon = env, daemon
        self.pinger = Pinger(env.sock)
        self.rss = RssSampler(daemon.pid) if rss else None
        self.figures = None

    def __enter__(self):
        self.pinger.start()
        if self.rss:
            self.rss.start()
        time.sleep(0.2)   # a few quiet pings first
        return self

    def __exit__(self, *exc):
        p50, p99, pmax, n = self.pinger.finish()
        peak = self.rss.finish() if self.rss else None
        self.figures = (p50, p99, pmax, n, peak)
        return False

    def report(self, what, rss_limit_mb=RSS_LIMIT_MB):
        p50, p99, pmax, n, peak = self.figures
        log("FIGURES %s: ping p50 %.1f ms, p99 %.1f ms, max %.1f ms (%d pings)%s"
            % (what, p50, p99, pmax, n, "" if peak is None else ", queryd peak RSS %.1f MB" % peak))
        check(self.daemon.alive(), "queryd died during %s" % what, self.daemon.log())
        check(p99 < PING_P99_MS, "%s: ping p99 %.1f ms >= %.0f ms (p50 %.1f, max %.1f)"
              % (what, p99, PING_P99_MS, p50, pmax))
        if peak is not None:
            check(peak < rss_limit_mb, "%s: queryd RSS peaked at %.1f MB >= %d MB" % (what, peak, rss_limit_mb))


def flood(env, n, first_octet=77, nice=10, wait=True, timeout=120):
    """hostile-flood in the test cgroup, niced (the attacker must not be
    what starves the pinger of CPU on a 2-core machine)."""
    exe = binary("CONNPID_HOSTILE_FLOOD")
    p = env.popen(["nice", "-n", str(nice), exe, str(n), str(first_octet)], env.cgroup,
                  stdout=__import__("subprocess").PIPE, text=True)
    if wait:
        out, _ = p.communicate(timeout=timeout)
        check(p.returncode == 0, "hostile-flood failed (rc %r)" % p.returncode, out)
    return p


def stats(env):
    with env.client(timeout=30) as c:
        ans = c.request({"op": "stats"})
    check(ans.get("ok"), "stats failed", ans)
    return ans["stats"]


ATTACKER = r'''
import socket, sys, time
path, n, hold, request = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4].encode()
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(path)
    s.sendall(request)
    socks.append(s)
print("ready", flush=True)
time.sleep(hold)
'''


def attackers(env, n, request, hold, nice=10):
    """A niced child process (in the test cgroup) that opens n connections,
    sends request (bytes, one or more lines) on each, never reads, holds
    them for hold seconds and exits. Returns once all are sent; the
    caller waits for it."""
    import subprocess
    p = env.popen(["nice", "-n", str(nice), sys.executable, "-c", ATTACKER, env.sock, str(n), str(hold),
                   request.decode()], env.cgroup, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline()
    check(line.strip() == "ready", "the attacker process failed (rc %r)" % p.poll())
    return p

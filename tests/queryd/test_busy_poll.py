#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 15: --busy-poll-us. After a request the loop polls without
sleeping for that long, so a client on another CPU wakes nobody; only
requests of callers that may query start it, so an idle daemon sleeps.
Whether the loop slept between requests is read from its main thread's
voluntary context switches (a task that blocks; a spin that yields is
not one): lookups 0.2 ms apart inside a 1 ms spin take none, without
the option one each, as do pings of a caller who may only ping. Idle, and
with ring events but no request, it uses no CPU either way. Bad values
are refused at start; SIGTERM in a spin exits 0."""
import os
import pwd
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import (CgroupEnv, Client, binary, case, check, check_eq, log, run_cases,  # noqa: E402
                     wait_queryd_ready)

SPIN_US = 1000        # the most allowed: the requests below come well within it
BURST_S = 1.0
GAP_S = 0.0002       # waited for on the clock: a sleep may overshoot the spin


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def voluntary_switches(pid):
    """Times queryd's main thread (its loop) blocked."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    raise AssertionError("no voluntary_ctxt_switches in /proc/%d/status" % pid)


def in_cgroup(env, fn):
    """fn() in a child inside the env's cgroup; its result, as text."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            with open(os.path.join(env.cgroup, "cgroup.procs"), "w") as f:
                f.write("0")
            os.write(w, str(fn()).encode())
        finally:
            os._exit(0)
    os.close(w)
    out = os.read(r, 64).decode()
    os.close(r)
    os.waitpid(pid, 0)
    return out


def udp_flow(env):
    """A UDP flow made from inside the env's cgroup: its source port."""
    def send():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"x", ("127.0.0.1", 9))
        return s.getsockname()[1]
    return int(in_cgroup(env, send))


def pause():
    """GAP_S waited for on the clock: a sleep may overshoot the spin."""
    until = time.monotonic() + GAP_S
    while time.monotonic() < until:
        pass


def burst(cl, sport):
    """Lookups every GAP_S for BURST_S: how often queryd's loop blocked,
    per lookup (a ratio: a loaded machine that runs fewer reads the same)."""
    pid = cl.daemon_pid
    v0, t0, n = voluntary_switches(pid), time.monotonic(), 0
    while time.monotonic() - t0 < BURST_S:
        ans = cl.lookup_raw("udp", "127.0.0.1", sport, 9)
        check(ans.get("found"), "lookup answered during the burst", ans)
        n += 1
        pause()
    blocked = voluntary_switches(pid) - v0
    log("%d lookups in %.1f s: queryd's loop blocked %d times, %.2f per lookup" % (n, BURST_S, blocked, blocked / n))
    return blocked / n


def idle(pid, seconds=2.0):
    c0 = cpu_seconds(pid)
    time.sleep(seconds)
    used = cpu_seconds(pid) - c0
    log("idle %.1f s: queryd used %.2f s of CPU" % (seconds, used))
    return used


@case
def spins_after_requests_only(env):
    env.load()
    env.no_store_daemon(extra=["--busy-poll-us=%d" % SPIN_US])
    sport = udp_flow(env)
    with Client(env.sock, 30) as cl:
        cl.daemon_pid = env.daemon_proc.pid
        check_eq(cl.request({"op": "ping"}).get("pong"), True, "ping")
        check(idle(cl.daemon_pid) < 0.05, "an idle daemon sleeps, spin or not")
        check(burst(cl, sport) < 0.5, "with --busy-poll-us the loop polls between requests")
        check(idle(cl.daemon_pid) < 0.05, "after the last request the spin ends")


def flows_in_cgroup(env, n, gap):
    """n UDP flows to new destinations, gap seconds apart, from a child
    in the env's cgroup: a ring event each, and no request."""
    def send():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(n):
            s.sendto(b"x", ("127.9.%d.%d" % (i // 250, 1 + i % 250), 9))
            time.sleep(gap)
        return n
    in_cgroup(env, send)


@case
def ring_events_never_spin(env):
    env.load()
    env.no_store_daemon(extra=["--busy-poll-us=%d" % SPIN_US])
    with Client(env.sock, 30) as cl:
        n0 = cl.request({"op": "stats"})["stats"]["events_received"]
        # the stats request itself may spin for SPIN_US: let it pass
        time.sleep(0.1)
        c0 = cpu_seconds(env.daemon_proc.pid)
        flows_in_cgroup(env, 1000, 0.001)
        time.sleep(0.2)
        used = cpu_seconds(env.daemon_proc.pid) - c0
        events = cl.request({"op": "stats"})["stats"]["events_received"] - n0
    log("%d ring events over ~1.5 s, no request: queryd used %.2f s of CPU" % (events, used))
    check(events >= 1000, "the flows reached queryd as events", events)
    # spinning after each 20 ms ring drain would be 0.05 s a second
    check(used < 0.04, "ring events do not start the spin")


@case
def sleeps_without_it(env):
    env.load()
    env.no_store_daemon()
    sport = udp_flow(env)
    with Client(env.sock, 30) as cl:
        cl.daemon_pid = env.daemon_proc.pid
        check(burst(cl, sport) > 0.7, "without --busy-poll-us the loop sleeps between requests")


# pings every GAP_S for BURST_S from a caller who may only ping
PINGER = r'''
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
t0, n = time.monotonic(), 0
while time.monotonic() - t0 < float(sys.argv[2]):
    s.sendall(b'{"op":"ping"}\n')
    if b"pong" not in s.recv(4096):
        sys.exit("no pong")
    n += 1
    until = time.monotonic() + float(sys.argv[3])
    while time.monotonic() < until:
        pass
print(n)
'''


@case
def pings_of_others_never_spin(env):
    env.load()
    env.no_store_daemon(extra=["--busy-poll-us=%d" % SPIN_US])
    os.chmod(env.tmp, 0o711)     # nobody reaches the socket: may connect, may only ping
    os.chmod(env.sock, 0o666)
    nobody = pwd.getpwnam("nobody").pw_uid
    v0 = voluntary_switches(env.daemon_proc.pid)
    r = subprocess.run(["setpriv", "--reuid", str(nobody), "--regid", str(nobody), "--clear-groups", "--",
                        sys.executable, "-c", PINGER, env.sock, str(BURST_S), str(GAP_S)],
                       capture_output=True, text=True, timeout=60)
    blocked = voluntary_switches(env.daemon_proc.pid) - v0
    check(r.returncode == 0, "pinger as nobody", r.stderr)
    n = int(r.stdout)
    log("%d pings of nobody in %.1f s: queryd's loop blocked %d times, %.2f per ping" % (n, BURST_S, blocked,
                                                                                           blocked / n))
    check(blocked / n > 0.7, "pings of a caller who may not query do not start the spin")


@case
def sigterm_while_spinning(env):
    """Stopped mid-spin, it exits at once with status 0, as the loop
    that sleeps does."""
    env.load()
    env.no_store_daemon(extra=["--busy-poll-us=%d" % SPIN_US])
    proc = env.daemon_proc
    with Client(env.sock, 30) as cl:
        for _ in range(50):
            cl.request({"op": "ping"})
        cl.request({"op": "ping"})   # and at once, inside its spin:
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            raise AssertionError("queryd still running 5 s after SIGTERM during a spin")
    log("exited %d after SIGTERM" % rc)
    check_eq(rc, 0, "exit status after SIGTERM during a spin")


@case
def bounds_accepted(env):
    for good in ("0", "1", "1000"):
        sock = os.path.join(env.tmp, "b%s.sock" % good)
        p = env.track(subprocess.Popen([binary("CONNPID_QUERYD"), "--pin-dir", env.pin_dir, "--socket", sock,
                                        "--no-store", "--no-docker", "--busy-poll-us=" + good],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_queryd_ready(p, sock, 15)
        with Client(sock, 10) as cl:
            check_eq(cl.request({"op": "ping"}).get("pong"), True, "--busy-poll-us=%s: ping" % good)
        p.send_signal(signal.SIGTERM)
        check_eq(p.wait(timeout=10), 0, "--busy-poll-us=%s: exit status" % good)


@case
def bad_values_refused(env):
    for bad in ("1001", "-1", "abc", "1e3", "", "99999999999999999999"):
        r = subprocess.run([binary("CONNPID_QUERYD"), "--pin-dir", env.pin_dir, "--socket", env.sock,
                            "--no-store", "--busy-poll-us=" + bad], capture_output=True, text=True, timeout=30)
        check(r.returncode != 0, "--busy-poll-us=%r refused" % bad, r.stderr)
        check("--busy-poll-us" in r.stderr and "0-1000" in r.stderr, "the error names the option and its range",
              r.stderr)


if __name__ == "__main__":
    run_cases(make_env=CgroupEnv, tag="bsp")

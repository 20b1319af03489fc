# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness for connpid's history-store tests (Python standard library only).

Every test gets its own child cgroup (the loader attaches there only), its
own pin dir /sys/fs/bpf/cps-<unique>, its own temp dir (socket and --db),
and whatever tmpfs or bind mounts it makes inside that temp dir. Leaving
the Env (also on an exception or SIGTERM from meson's timeout) kills the
daemons and workloads it started (by pid), unmounts its mounts, unloads,
removes the cgroup, the pin dir and the temp dir.

Exit codes of main(): 0 pass, 1 fail, 77 skip.
"""
import os
import select
import socket
import sqlite3
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import connpidtest  # noqa: E402
import harness  # noqa: E402
from harness import (SKIP, WORKLOAD, Client, Interrupted, Skip, binary,  # noqa: E402,F401
                     cgroup2_mount, check, check_eq, json_command, log, wait_until)

PROTO_TCP, PROTO_UDP = 6, 17


def require_environment():
    harness.require_environment("bpf, cgroups, mounts")


# ---------------------------------------------------------------- bpf(2)

class PinnedMap:
    """One pinned map read with plain bpf(2) syscalls (no libbpf, no daemon)."""

    def __init__(self, path):
        self.bpf = connpidtest.Bpf()
        self.fd = self.bpf.obj_get(path)

    def lookup(self, key, value_size=4):
        return self.bpf.lookup(self.fd, key, value_size)

    def close(self):
        os.close(self.fd)


def key_v4(dst, sport, dport, proto):
    """conn_key_v4: dst network order, ports host order, proto, 3 pad."""
    return struct.pack("=4sHHB3x", socket.inet_aton(dst), sport, dport, proto)


def map_pid_v4(pin_dir, dst, sport, dport, proto):
    m = PinnedMap(os.path.join(pin_dir, "conn_to_pid_v4"))
    try:
        v = m.lookup(key_v4(dst, sport, dport, proto))
    finally:
        m.close()
    return None if v is None else struct.unpack("=I", v)[0]


# ---------------------------------------------------------------- processes

class Workload(harness.Workload):
    """workload.py serve; it moves itself into the test cgroup. exe: the
    interpreter to run it with."""
    timeout = 120

    def __init__(self, env, comm=None, exe=None):
        super().__init__(env, ["--cgroup", env.cgroup], comm, cgroup=env.cgroup_rel, exe=exe)

    def tcp(self, host, port):
        return self.cmd({"cmd": "tcp", "host": host, "port": port})

    def udp(self, host, port):
        return self.cmd({"cmd": "udp", "host": host, "port": port})

    def udpflood(self, hosts, n, first_port=1024):
        return self.cmd({"cmd": "udpflood", "hosts": hosts, "n": n, "first_port": first_port})


class Flood:
    """workload.py flood in the background: `count` new UDP flows to
    ports first_port.. on 127.<b>.<c>.1..n_dst."""

    def __init__(self, env, dst_base, n_dst, count, comm="cps-flood", first_port=1024, rate=0):
        args = [sys.executable, WORKLOAD, "flood", "--cgroup", env.cgroup, "--comm", comm, "--dst-base", dst_base,
                "--n-dst", str(n_dst), "--count", str(count), "--first-port", str(first_port),
                "--rate", str(rate)]
        self.proc = env.track(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               text=True, bufsize=1))
        self.pid = self.proc.pid

    def wait_line(self, prefix, timeout=120):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "flood %d said nothing in %ds" % (self.pid, timeout))
        line = self.proc.stdout.readline()
        check(line.startswith(prefix), "flood %d: expected %r, got %r (rc %r)"
              % (self.pid, prefix, line, self.proc.poll()))
        return line.split()

    def started(self):
        return self.wait_line("started")

    def done(self, timeout=120):
        w = self.wait_line("done", timeout)
        return int(w[1]), float(w[2])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


class Daemon(harness.Daemon):
    ready_interval = 0.02
    stop_timeout = 20

    def __init__(self, env, db=None, extra=()):
        args = [binary("CONNPID_QUERYD"), "--pin-dir", env.pin_dir, "--socket", env.sock]
        args += ["--db", db] if db else ["--no-store"]
        args += list(extra)
        log("start:", " ".join(args))
        super().__init__(env, args)

    def stop(self):
        rc = super().stop()
        self.logf.close()
        return rc


# ---------------------------------------------------------------- the env

class Env(harness.CgroupEnv):
    """Private cgroup + pin dir + temp dir (+ mounts), loaded on demand."""
    prefix = "cps-"
    tmp_prefix = "cps-"
    enter_log_what = "tmp"

    def __init__(self, tag):
        super().__init__(tag)
        self.mountpoint = self.cgroup_root
        self.mounts = []

    def enter_log_path(self):
        return self.tmp

    def load(self, *extra):
        r = subprocess.run(self.loader_args(*extra), capture_output=True, text=True, timeout=120)
        self.loaded = True
        check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def ctl(self, *args, timeout=60):
        cmd = [binary("CONNPIDCTL"), "--socket", self.sock, "--pin-dir", self.pin_dir] + [str(a) for a in args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        log("ctl %s -> rc %d %s" % (" ".join(str(a) for a in args), r.returncode, r.stderr.strip()[:300]))
        return r

    def client(self, timeout=30.0):
        return Client(self.sock, timeout)

    def daemon(self, db=None, extra=()):
        return Daemon(self, db, extra)

    def workload(self, comm=None, exe=None):
        return Workload(self, comm, exe)

    def flood(self, dst_base, n_dst, count, comm="cps-flood", first_port=1024, rate=0):
        return Flood(self, dst_base, n_dst, count, comm, first_port, rate)

    def listener(self):
        return self.listen_tcp(1024, reuse=True)[1]

    def free_udp_port(self):
        return self.bound_udp_port()

    def mount(self, args, target):
        """mount ARGS... TARGET, remembered for unmounting at cleanup."""
        r = subprocess.run(["mount"] + list(args) + [target], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "mount %s %s failed" % (" ".join(args), target), r.stderr)
        if not args or args[0] != "-o" or "remount" not in args[1]:
            self.mounts.append(target)

    def umount(self, target):
        r = subprocess.run(["umount", target], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            r = subprocess.run(["umount", "-l", target], capture_output=True, text=True, timeout=30)
        if target in self.mounts and r.returncode == 0:
            # the newest mount on that target goes first
            idx = len(self.mounts) - 1 - self.mounts[::-1].index(target)
            del self.mounts[idx]
        return r.returncode == 0

    def before_unload(self):
        for target in reversed(list(self.mounts)):
            if not self.umount(target):
                log("cleanup: could not unmount", target)

    def remove_tmp(self):
        if not self.mounts:
            super().remove_tmp()


# ---------------------------------------------------------------- helpers

def stats(env):
    with env.client() as c:
        ans = c.request({"op": "stats"})
    check(ans.get("ok"), "stats failed", ans)
    return ans["stats"]


def store_stats(env):
    return stats(env)["store"]


def history(env, filt=None, limit=None, order=None, ok=True):
    req = {"op": "history"}
    if filt is not None:
        req["filter"] = filt
    if limit is not None:
        req["limit"] = limit
    if order is not None:
        req["order"] = order
    with env.client() as c:
        ans = c.request(req)
    if ok:
        check(ans.get("ok"), "history %r failed" % (req,), ans)
        return ans["flows"]
    return ans


def lookup(env, proto, dst, sport, dport, at=None):
    req = {"op": "lookup", "proto": proto, "dst": dst, "sport": sport, "dport": dport}
    if at is not None:
        req["at"] = at
    with env.client() as c:
        ans = c.request(req)
    return ans


def db_rows(path, cols="id, sport, dport, dst, pid"):
    """(integrity_check result, {id: row tuple}) read with Python's sqlite3."""
    con = sqlite3.connect(path, timeout=5)
    try:
        ic = [r[0] for r in con.execute("PRAGMA integrity_check")]
        rows = {r[0]: r[1:] for r in con.execute("SELECT %s FROM connections" % cols)}
    finally:
        con.close()
    return ic, rows


def file_bytes(path):
    total = 0
    for suffix in ("", "-wal", "-shm"):
        try:
            total += os.path.getsize(path + suffix)
        except OSError:
            pass
    return total


def main(test_fn, tag):
    """Run test_fn(env) in an Env; exit 0/1/77."""
    harness.main(test_fn, Env, tag, require_environment)

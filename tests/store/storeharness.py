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
import json
import os
import random
import select
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import traceback
import ctypes
import errno

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "storeworkload.py")
SKIP = 77
PROTO_TCP, PROTO_UDP = 6, 17


class Skip(Exception):
    pass


class Interrupted(BaseException):
    pass


def log(*args):
    print("[%s %.3f]" % (os.path.basename(sys.argv[0]), time.monotonic()), *args, flush=True)


def check(cond, msg, *details):
    if not cond:
        raise AssertionError(msg + "".join("\n    " + str(d) for d in details))


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s: got %r, want %r" % (what, got, want))


def wait_until(fn, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


def _unescape(s):
    out, i = "", 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 4].isdigit():
            out += chr(int(s[i + 1:i + 4], 8))
            i += 4
        else:
            out += s[i]
            i += 1
    return out


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, sep, post = line.partition(" - ")
            if sep and post.split()[0] == "cgroup2":
                return _unescape(pre.split()[4])
    return None


def binary(var):
    p = os.environ.get(var, "")
    if not p or not os.access(p, os.X_OK):
        raise Skip("%s is not set to an executable (%r): run through meson test" % (var, p))
    return p


def require_environment():
    if os.geteuid() != 0:
        raise Skip("needs root (bpf, cgroups, mounts)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        raise Skip("no BTF at /sys/kernel/btf/vmlinux")
    if not cgroup2_mount():
        raise Skip("no cgroup2 mount in /proc/self/mountinfo")
    for v in ("CONNPID_LOADER", "CONNPID_QUERYD", "CONNPIDCTL"):
        binary(v)


# ---------------------------------------------------------------- bpf(2)

class PinnedMap:
    """One pinned map read with plain bpf(2) syscalls (no libbpf, no daemon)."""
    NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "s390x": 351, "ppc64le": 361}
    MAP_LOOKUP_ELEM, MAP_GET_NEXT_KEY, OBJ_GET = 1, 4, 7

    def __init__(self, path):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        self.nr = self.NR_BPF.get(os.uname().machine)
        if self.nr is None:
            raise Skip("bpf(2) number unknown on this machine")
        p = ctypes.create_string_buffer(os.fsencode(path))
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=QII", attr, 0, ctypes.addressof(p), 0, 0)
        self.fd = self._call(self.OBJ_GET, attr)

    def _call(self, cmd, attr):
        r = self.libc.syscall(ctypes.c_long(self.nr), ctypes.c_int(cmd), ctypes.byref(attr),
                              ctypes.c_uint(len(attr)))
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, "bpf(%d): %s" % (cmd, os.strerror(e)))
        return r

    def lookup(self, key, value_size=4):
        k = ctypes.create_string_buffer(bytes(key), len(key))
        v = ctypes.create_string_buffer(value_size)
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=IIQQQ", attr, 0, self.fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0)
        try:
            self._call(self.MAP_LOOKUP_ELEM, attr)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return v.raw

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


# ---------------------------------------------------------------- socket client

class Client:
    """One connection to the query socket, JSON lines each way."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def request(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            check(chunk, "daemon closed the connection instead of answering %r" % (obj,))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- processes

class Workload:
    """storeworkload.py serve, inside the test cgroup."""

    def __init__(self, env, comm=None, exe=None):
        args = [exe or sys.executable, WORKLOAD, env.cgroup]
        if comm:
            args += ["--comm", comm]
        args += ["serve"]
        self.proc = env.track(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               text=True, bufsize=1))
        info = self.cmd({"cmd": "hello"})
        self.pid, self.comm, self.exe, self.cmdline = info["pid"], info["comm"], info["exe"], info["cmdline"]
        check(env.cgroup_rel in info["cgroup"], "workload is not in the test cgroup", info["cgroup"])

    def cmd(self, obj, timeout=120):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "workload %d did not answer %r within %ds" % (self.proc.pid, obj, timeout))
        line = self.proc.stdout.readline()
        check(line, "workload %d exited (rc %r) on %r" % (self.proc.pid, self.proc.poll(), obj))
        ans = json.loads(line)
        check(ans.get("ok"), "workload command %r failed: %r" % (obj, ans))
        return ans

    def tcp(self, host, port):
        return self.cmd({"cmd": "tcp", "host": host, "port": port})

    def udp(self, host, port):
        return self.cmd({"cmd": "udp", "host": host, "port": port})

    def udpflood(self, hosts, n, first_port=1024):
        return self.cmd({"cmd": "udpflood", "hosts": hosts, "n": n, "first_port": first_port})

    def exit(self):
        self.cmd({"cmd": "exit"})
        self.proc.wait(timeout=10)


class Flood:
    """storeworkload.py flood in the background: `count` new UDP flows to
    ports first_port.. on 127.<b>.<c>.1..n_dst."""

    def __init__(self, env, dst_base, n_dst, count, comm="cps-flood", first_port=1024, rate=0):
        args = [sys.executable, WORKLOAD, env.cgroup, "--comm", comm, "flood", "--dst-base", dst_base,
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


class Daemon:
    def __init__(self, env, db=None, extra=()):
        self.env = env
        env.daemon_runs += 1
        self.logpath = os.path.join(env.tmp, "queryd-%d.log" % env.daemon_runs)
        self.logf = open(self.logpath, "w")
        args = [binary("CONNPID_QUERYD"), "--pin-dir", env.pin_dir, "--socket", env.sock]
        args += ["--db", db] if db else ["--no-store"]
        args += list(extra)
        log("start:", " ".join(args))
        self.proc = env.track(subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT))
        self.pid = self.proc.pid

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "queryd exited early (rc %r): %s" % (self.proc.returncode, self.log()))
            try:
                with Client(self.env.sock, timeout=5) as c:
                    ans = c.request({"op": "ping"})
                if ans.get("ok") and ans.get("pong"):
                    return ans
                err = ans
            except (OSError, AssertionError, ValueError) as e:
                err = e
            time.sleep(0.02)
        raise AssertionError("queryd not ready after %ds: %r; log: %s" % (timeout, err, self.log()))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.logpath) as f:
                return f.read()[-4000:]
        except OSError:
            return ""


# ---------------------------------------------------------------- the env

class Env:
    """Private cgroup + pin dir + temp dir (+ mounts), loaded on demand."""

    def __init__(self, tag):
        uniq = "%s-%d-%06x" % (tag, os.getpid(), random.getrandbits(24))
        self.mountpoint = cgroup2_mount()
        self.cgroup_rel = "/cps-" + uniq
        self.cgroup = self.mountpoint + self.cgroup_rel
        self.pin_dir = "/sys/fs/bpf/cps-" + uniq
        self.procs, self.mounts = [], []
        self.daemon_runs = 0
        self.tmp = self.sock = None
        self.loaded = False

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        try:
            self.tmp = tempfile.mkdtemp(prefix="cps-")
            self.sock = os.path.join(self.tmp, "q.sock")
            os.mkdir(self.cgroup)
        except BaseException:
            self.cleanup()
            raise
        log("env: cgroup %s pins %s tmp %s" % (self.cgroup, self.pin_dir, self.tmp))
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _on_signal(self, signo, frame):
        raise Interrupted("signal %d" % signo)

    def load(self, *extra):
        r = subprocess.run([binary("CONNPID_LOADER"), "--pin-dir", self.pin_dir, "--cgroup", self.cgroup]
                           + list(extra), capture_output=True, text=True, timeout=120)
        self.loaded = True
        check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)

    def track(self, proc):
        self.procs.append(proc)
        return proc

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
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
        self.procs.append(s)
        return s.getsockname()[1]

    def free_udp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.procs.append(s)   # keep it bound: nobody else gets the port
        return s.getsockname()[1]

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

    def cleanup(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for p in self.procs:
            if isinstance(p, socket.socket):
                try:
                    p.close()
                except OSError:
                    pass
                continue
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
            try:
                p.wait(timeout=10)
            except Exception:
                pass
        for target in reversed(list(self.mounts)):
            if not self.umount(target):
                log("cleanup: could not unmount", target)
        if os.path.isdir(self.pin_dir) or self.loaded:
            try:
                r = subprocess.run([os.environ.get("CONNPID_LOADER", "connpid-loader"), "--unload",
                                    "--pin-dir", self.pin_dir], capture_output=True, text=True, timeout=60)
                if r.returncode != 0 and os.path.isdir(self.pin_dir):
                    log("cleanup: unload failed:", r.stderr.strip())
            except Exception as e:
                log("cleanup: unload failed:", e)
        if os.path.isdir(self.cgroup):
            # Anything still in our cgroup was started by this test.
            for _ in range(200):
                try:
                    with open(os.path.join(self.cgroup, "cgroup.procs")) as f:
                        pids = [int(x) for x in f.read().split()]
                except OSError:
                    pids = []
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                log("cleanup: could not remove", self.cgroup)
        if self.tmp and not self.mounts:
            shutil.rmtree(self.tmp, ignore_errors=True)


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
    try:
        require_environment()
        with Env(tag) as env:
            test_fn(env)
    except Skip as e:
        print("SKIP:", e, flush=True)
        sys.exit(SKIP)
    except Interrupted as e:
        print("FAIL: interrupted (%s), cleaned up" % e, flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print("FAIL", flush=True)
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)

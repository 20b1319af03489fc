# SPDX-License-Identifier: GPL-2.0-or-later
"""Small harness for the connpid-queryd integration tests (stdlib only).

Every test gets a private child cgroup, a private pin dir and a private
socket path (TestEnv); the loader attaches to that cgroup only, workloads
move themselves into it before making sockets, and everything is torn down
on any exit: daemon and workloads killed by pid, `connpid-loader --unload`,
cgroup removed, temp dir removed. Exit codes: 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOAD = os.path.join(HERE, "qdworkload.py")
SKIP = 77


class Skip(Exception):
    pass


class Interrupted(BaseException):
    pass


def log(*args):
    print("[%s %.3f]" % (os.path.basename(sys.argv[0]), time.monotonic()), *args,
          flush=True)


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
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup2":
                return _unescape(parts[4])
    return None


def binary(var):
    p = os.environ.get(var, "")
    if not p or not os.access(p, os.X_OK):
        raise Skip("%s is not set to an executable (%r): build with meson" % (var, p))
    return p


def require_environment():
    if os.geteuid() != 0:
        raise Skip("needs root (bpf, cgroups)")
    if not os.path.exists("/sys/kernel/btf/vmlinux"):
        raise Skip("no BTF at /sys/kernel/btf/vmlinux")
    if not cgroup2_mount():
        raise Skip("no cgroup2 mount in /proc/self/mountinfo")
    for v in ("CONNPID_LOADER", "CONNPID_QUERYD", "CONNPIDCTL"):
        binary(v)


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def attachments(cgroup_dir):
    out = subprocess.run(["bpftool", "cgroup", "show", cgroup_dir, "-j"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "bpftool cgroup show failed", out.stderr)
    return len(json.loads(out.stdout or "[]"))


class Client:
    """One connection to the query socket, JSON lines each way."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.send_raw(json.dumps(obj).encode() + b"\n")

    def read_line(self):
        """One answer line as a dict; None on EOF (ECONNRESET counts as EOF)."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buf:
                    raise AssertionError("connection closed mid-line: %r" % self.buf[:200])
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, obj):
        self.send(obj)
        ans = self.read_line()
        check(ans is not None, "daemon closed the connection instead of answering %r" % (obj,))
        return ans

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Workload:
    def __init__(self, env, comm=None, extra_args=()):
        args = [sys.executable, WORKLOAD, env.cgroup]
        if comm:
            args += ["--comm", comm]
        args += list(extra_args)
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        env.track(self.proc)
        info = self.cmd({"cmd": "hello"})
        self.pid = info["pid"]
        self.comm = info["comm"]
        self.exe = info["exe"]
        check(env.cgroup_rel in info["cgroup"], "workload is not in the test cgroup", info["cgroup"])

    def cmd(self, obj, timeout=60):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "workload %d did not answer %r within %ds" % (self.proc.pid, obj, timeout))
        line = self.proc.stdout.readline()
        check(line, "workload %d exited (rc %r) on %r" % (self.proc.pid, self.proc.poll(), obj))
        ans = json.loads(line)
        check(ans.get("ok"), "workload command %r failed: %r" % (obj, ans))
        return ans

    def exit(self):
        self.cmd({"cmd": "exit"})
        self.proc.wait(timeout=10)   # reaped: the pid is free now


class Daemon:
    def __init__(self, env, activated=False, extra=()):
        self.env = env
        env.daemon_runs += 1
        self.logpath = os.path.join(env.tmp, "queryd-%d.log" % env.daemon_runs)
        self.logf = open(self.logpath, "w")
        qd = binary("CONNPID_QUERYD")
        # a private history database: never the shared default path
        db = ["--db", os.path.join(env.tmp, "history.db")]
        if activated:
            args = ["systemd-socket-activate", "-l", env.sock, qd, "--pin-dir", env.pin_dir] + db
        else:
            args = [qd, "--pin-dir", env.pin_dir, "--socket", env.sock] + db
        args += list(extra)
        self.proc = subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT)
        env.track(self.proc)
        self.pid = self.proc.pid

    def wait_ready(self, timeout=15):
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "queryd exited early (rc %r): %s" % (self.proc.returncode, self.log()))
            try:
                c = Client(self.env.sock, timeout=5)
                try:
                    ans = c.request({"op": "ping"})
                finally:
                    c.close()
                if ans.get("ok") and ans.get("pong"):
                    return ans
                err = ans
            except (OSError, AssertionError, ValueError) as e:
                err = e
            time.sleep(0.05)
        raise AssertionError("queryd not ready after %ds: %r; log: %s" % (timeout, err, self.log()))

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self):
        try:
            with open(self.logpath) as f:
                return f.read()[-4000:]
        except OSError:
            return ""


class TestEnv:
    """Private cgroup + pin dir + temp dir, loaded by connpid-loader."""

    def __init__(self, tag):
        self.tag = tag
        self.procs = []
        self.socks = []
        self.daemon_runs = 0
        uniq = "%s-%d-%06x" % (tag, os.getpid(), random.getrandbits(24))
        self.mount = cgroup2_mount()
        self.cgroup_rel = "/cpq-" + uniq
        self.cgroup = self.mount + self.cgroup_rel
        self.pin_dir = "/sys/fs/bpf/cpq-" + uniq
        self.tmp = None
        self.sock = None

    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        try:
            self.tmp = tempfile.mkdtemp(prefix="cpq-")
            self.sock = os.path.join(self.tmp, "q.sock")
            os.mkdir(self.cgroup)
            r = self.run([binary("CONNPID_LOADER"), "--pin-dir", self.pin_dir, "--cgroup", self.cgroup])
            check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)
        except BaseException:
            self.cleanup()
            raise
        log("env: cgroup %s pins %s sock %s" % (self.cgroup, self.pin_dir, self.sock))
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _on_signal(self, signo, frame):
        raise Interrupted("signal %d" % signo)

    def track(self, proc):
        self.procs.append(proc)
        return proc

    def run(self, args, timeout=60, **kw):
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)

    def ctl(self, *args, timeout=30):
        r = self.run([binary("CONNPIDCTL"), "--socket", self.sock, "--pin-dir", self.pin_dir] + list(args),
                     timeout=timeout)
        return r

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    def workload(self, comm=None, extra_args=()):
        return Workload(self, comm, extra_args)

    def daemon(self, activated=False, extra=()):
        return Daemon(self, activated, extra)

    def listener(self, backlog=1024):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(backlog)
        self.socks.append(s)
        return s, s.getsockname()[1]

    def free_udp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.socks.append(s)   # keep it bound: nobody else gets the port
        return s.getsockname()[1]

    def cleanup(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                except OSError:
                    pass
            try:
                p.wait(timeout=10)
            except Exception:
                pass
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass
        if os.path.isdir(self.pin_dir):
            try:
                r = subprocess.run([os.environ.get("CONNPID_LOADER", "connpid-loader"), "--unload",
                                    "--pin-dir", self.pin_dir], capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    log("cleanup: unload failed:", r.stderr.strip())
            except Exception as e:
                log("cleanup: unload failed:", e)
        if os.path.isdir(self.cgroup):
            # Anything still in our cgroup was started by this test.
            for _ in range(100):
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
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


def main(test_fn, tag):
    """Run test_fn(env) in a TestEnv; exit 0/1/77."""
    try:
        require_environment()
        with TestEnv(tag) as env:
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

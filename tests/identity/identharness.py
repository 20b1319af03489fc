# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness for the identity tests (issue 6, items 2-5). Stdlib only.

Each test file runs in its own Env: a private child cgroup (with nested
sub-cgroups when a test needs them), a private pin dir, a private temp dir
holding the query socket and compiled helpers. The loader attaches with
`--cgroup <test cgroup>`; sub-cgroups inherit the attachments. queryd runs
with `--pin-dir D --socket S --no-store`.

Leaving the Env (also on an exception or SIGTERM from meson) kills every
process this test started (by pid) and everything left in its cgroup tree,
unloads, removes the cgroups bottom-up, the pin dir and the temp dir.
Exit codes: 0 pass, 1 fail, 77 skip.
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
WORKLOAD = os.path.join(HERE, "identwork.py")
HELPER_C = os.path.join(HERE, "identhelper.c")
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
    raise AssertionError("timed out after %.1fs waiting for %s (last: %r)"
                         % (timeout, what, last))


def _unescape(s):
    return (s.replace("\\040", " ").replace("\\011", "\t")
            .replace("\\012", "\n").replace("\\134", "\\"))


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
        raise Skip("%s is not set to an executable (%r): run through meson test"
                   % (var, p))
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


def proc_start_ticks(pid):
    """Field 22 of /proc/PID/stat (clock ticks after boot)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[22 - 3])


def proc_comm(pid="self"):
    with open("/proc/%s/comm" % pid) as f:
        return f.read().rstrip("\n")


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

    def lookup(self, proto, dst, sport, dport):
        """The FLOW of a found lookup; fails the test when not found."""
        ans = self.request({"op": "lookup", "proto": proto, "dst": dst,
                            "sport": sport, "dport": dport})
        check(ans.get("ok") and ans.get("found"),
              "lookup %s %s:%d->%d: not found" % (proto, dst, sport, dport), ans)
        log("lookup %s %d->%s:%d: %s" % (proto, sport, dst, dport, json.dumps(ans["flow"])))
        return ans["flow"]

    def lookup_raw(self, proto, dst, sport, dport):
        return self.request({"op": "lookup", "proto": proto, "dst": dst,
                             "sport": sport, "dport": dport})

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Workload:
    """identwork.py, started inside a cgroup directory (before exec)."""

    def __init__(self, env, cgroup_dir, comm=None, extra_args=(), pass_fds=()):
        args = [sys.executable, WORKLOAD]
        if comm:
            args += ["--comm", comm]
        args += list(extra_args)
        self.proc = env.popen(args, cgroup_dir, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1,
                              pass_fds=pass_fds)
        info = self.cmd({"cmd": "hello"})
        self.pid = info["pid"]
        self.comm = info["comm"]
        self.exe = info["exe"]
        self.cgroup = info["cgroup"]
        self.start_ticks = info["start_ticks"]
        rel = "/" + os.path.relpath(cgroup_dir, env.mount)
        v2 = [l for l in self.cgroup.splitlines() if l.startswith("0::")]
        check(v2 == ["0::" + rel], "workload is not in %s" % rel, self.cgroup)

    def cmd(self, obj, timeout=30):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "workload %d did not answer %r within %ds" % (self.proc.pid, obj, timeout))
        line = self.proc.stdout.readline()
        check(line, "workload %d exited (rc %r) on %r" % (self.proc.pid, self.proc.poll(), obj))
        ans = json.loads(line)
        check(ans.get("ok"), "workload command %r failed: %r" % (obj, ans))
        return ans


class Env:
    def __init__(self, tag):
        self.tag = tag
        self.procs = []
        self.socks = []
        uniq = "%s-%d-%06x" % (tag, os.getpid(), random.getrandbits(24))
        self.mount = cgroup2_mount()
        self.cgroup = os.path.join(self.mount, "cpid-" + uniq)
        self.pin_dir = "/sys/fs/bpf/cpid-" + uniq
        self.tmp = None
        self.sock = None
        self.loaded = False
        self.daemon_proc = None
        self.daemon_log = None

    # -- lifecycle
    def __enter__(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, self._on_signal)
        try:
            self.tmp = tempfile.mkdtemp(prefix="cpid-ident-")
            self.sock = os.path.join(self.tmp, "q.sock")
            os.mkdir(self.cgroup)
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

    def run(self, args, timeout=60):
        r = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        log("+ %s -> rc %d%s%s" % (" ".join(args), r.returncode,
                                  ("\n  stdout: " + r.stdout.strip()) if r.stdout.strip() else "",
                                  ("\n  stderr: " + r.stderr.strip()) if r.stderr.strip() else ""))
        return r

    def load(self, *extra):
        r = self.run([binary("CONNPID_LOADER"), "--pin-dir", self.pin_dir,
                      "--cgroup", self.cgroup] + list(extra))
        self.loaded = True   # even on failure: cleanup unloads whatever is there
        check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)

    def daemon(self, timeout=15):
        """Start connpid-queryd --no-store and wait until it answers ping."""
        check(self.daemon_proc is None, "one daemon per env")
        self.daemon_log = os.path.join(self.tmp, "queryd.log")
        logf = open(self.daemon_log, "w")
        self.daemon_proc = subprocess.Popen(
            [binary("CONNPID_QUERYD"), "--pin-dir", self.pin_dir, "--socket", self.sock,
             "--no-store"], stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.procs.append(self.daemon_proc)
        deadline = time.monotonic() + timeout
        err = None
        while time.monotonic() < deadline:
            check(self.daemon_proc.poll() is None, "queryd exited early (rc %r): %s"
                  % (self.daemon_proc.returncode, self.daemon_output()))
            try:
                c = Client(self.sock, timeout=5)
                try:
                    ans = c.request({"op": "ping"})
                finally:
                    c.close()
                if ans.get("ok") and ans.get("pong"):
                    return
                err = ans
            except (OSError, AssertionError, ValueError) as e:
                err = e
            time.sleep(0.05)
        raise AssertionError("queryd not ready after %ds: %r; log: %s"
                             % (timeout, err, self.daemon_output()))

    def daemon_output(self):
        try:
            with open(self.daemon_log) as f:
                return f.read()[-4000:]
        except (OSError, TypeError):
            return ""

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    def ctl(self, *args, timeout=30):
        return self.run([binary("CONNPIDCTL"), "--socket", self.sock, "--pin-dir",
                         self.pin_dir] + list(args), timeout=timeout)

    # -- cgroups and processes
    def subcgroup(self, rel):
        """Create <test cgroup>/rel (all levels); return its path."""
        path = os.path.join(self.cgroup, rel)
        os.makedirs(path, exist_ok=True)
        return path

    def popen(self, args, cgroup_dir, **kw):
        """Start a process that enters cgroup_dir before exec."""
        procs = os.path.join(cgroup_dir, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))

        p = subprocess.Popen(args, preexec_fn=enter, **kw)
        self.procs.append(p)
        return p

    def workload(self, cgroup_dir=None, comm=None, extra_args=(), pass_fds=()):
        return Workload(self, cgroup_dir or self.cgroup, comm, extra_args, pass_fds)

    def listener(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        s.listen(1024)
        self.socks.append(s)
        return s, s.getsockname()[1]

    def udp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.socks.append(s)   # stays bound: the port is ours
        return s.getsockname()[1]

    def compile_helper(self, name):
        """Compile identhelper.c into TMP/name (its comm is then `name`)."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            raise Skip("no C compiler for the short-lived helper")
        out = os.path.join(self.tmp, name)
        r = self.run([cc, "-O2", "-Wall", "-o", out, HELPER_C])
        check(r.returncode == 0, "cannot compile %s" % HELPER_C, r.stderr)
        return os.path.realpath(out)

    # -- teardown
    def _cgroup_dirs_bottom_up(self):
        out = []
        for root, dirs, _files in os.walk(self.cgroup, topdown=False):
            out.append(root)
        return out

    def _kill_cgroup_tree(self):
        kill_file = os.path.join(self.cgroup, "cgroup.kill")
        if os.path.exists(kill_file):
            try:
                with open(kill_file, "w") as f:
                    f.write("1")
            except OSError:
                pass
        for d in self._cgroup_dirs_bottom_up():
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                pids = []
            for pid in pids:   # anything in our cgroup was started by this test
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass

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
        if self.loaded or os.path.isdir(self.pin_dir):
            try:
                r = subprocess.run([os.environ.get("CONNPID_LOADER", "connpid-loader"),
                                    "--unload", "--pin-dir", self.pin_dir],
                                   capture_output=True, text=True, timeout=60)
                if r.returncode != 0:
                    log("cleanup: unload failed:", r.stderr.strip())
            except Exception as e:
                log("cleanup: unload failed:", e)
        if os.path.isdir(self.cgroup):
            for _ in range(200):
                self._kill_cgroup_tree()
                try:
                    for d in self._cgroup_dirs_bottom_up():
                        os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                log("cleanup: could not remove", self.cgroup)
        if os.path.isdir(self.pin_dir):
            log("cleanup: pin dir %s left after unload; removing" % self.pin_dir)
            for root, dirs, files in os.walk(self.pin_dir, topdown=False):
                for n in files:
                    try:
                        os.unlink(os.path.join(root, n))
                    except OSError:
                        pass
                for n in dirs:
                    try:
                        os.rmdir(os.path.join(root, n))
                    except OSError:
                        pass
            try:
                os.rmdir(self.pin_dir)
            except OSError as e:
                log("cleanup: could not remove %s: %s" % (self.pin_dir, e))
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


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


def run_cases(cases, tag):
    """Several independent checks in one file: each gets its own Env; all
    run, the file fails if any does."""
    try:
        require_environment()
    except Skip as e:
        print("SKIP:", e, flush=True)
        sys.exit(SKIP)
    only = set(sys.argv[1:])
    failed = []
    for fn in cases:
        if only and fn.__name__ not in only:
            continue
        log("=== %s" % fn.__name__)
        try:
            with Env(tag) as env:
                fn(env)
        except Skip as e:
            print("SKIP:", e, flush=True)
            sys.exit(SKIP)
        except Interrupted as e:
            print("FAIL: interrupted (%s), cleaned up" % e, flush=True)
            sys.exit(1)
        except Exception:
            traceback.print_exc()
            log("FAIL %s" % fn.__name__)
            failed.append(fn.__name__)
        else:
            log("PASS %s" % fn.__name__)
    if failed:
        print("FAIL:", ", ".join(failed), flush=True)
        sys.exit(1)
    print("PASS", flush=True)
    sys.exit(0)

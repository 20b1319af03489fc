# SPDX-License-Identifier: GPL-2.0-or-later
"""Pieces shared by the per-suite test harnesses (stdlib only).

tests/queryd/qdharness.py, tests/store/storeharness.py,
tests/identity/identharness.py, tests/dns/dnsharness.py,
tests/docker/test_docker.py and tests/lib/connpidtest.py import these
instead of carrying their own copies:

  - reporting: log, check, check_eq, wait_until, Skip, Interrupted;
  - environment: cgroup2 mount discovery, binaries passed by meson,
    the root/BTF/cgroup2 preflight;
  - a JSON-lines client for connpid-queryd's socket (lookup, watch
    events, wait until found), a queryd process started with its output
    in a log file and waited for (ping), a scratch queryd on a pin dir,
    terminate();
  - Workload: tests/lib/workload.py serve (WORKLOAD, the one workload
    script of the suites) as a JSON command loop;
  - CgroupEnv: a private child cgroup + pin dir + temp dir with signal
    handling and teardown (kill by pid, unload, kill what is left in the
    cgroup tree, rmdir bottom-up, leftover pins, temp dir);
  - main(), @case and run_cases() that turn a test into exit 0, 1 or 77;
    run_test_object() for a test object with preflight/setup/run/cleanup.
"""
import contextlib
import ctypes
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

SKIP = 77
BTF_PATH = "/sys/kernel/btf/vmlinux"
BPFFS_ROOT = "/sys/fs/bpf"
QUERYD_BINARIES = ("CONNPID_LOADER", "CONNPID_QUERYD", "CONNPIDCTL")
# the one workload script of the suites (subcommands flow, serve, flood)
WORKLOAD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "workload.py")


# ---------------------------------------------------------------- reporting

class Skip(Exception):
    pass


class Interrupted(BaseException):
    pass


class TestFailure(AssertionError):
    pass


_log_name = None


def set_log_name(name):
    """Prefix of log lines; the script's base name unless set."""
    global _log_name
    _log_name = name


def log(*args):
    print("[%s %.3f]" % (_log_name or os.path.basename(sys.argv[0]), time.monotonic()), *args,
          flush=True)


def check(cond, msg, *details):
    if not cond:
        raise TestFailure(msg + "".join("\n    " + str(d) for d in details))


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %r, want %r" % (what, got, want))


def wait_until(fn, timeout=10.0, interval=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise TestFailure("timed out after %.1fs waiting for %s (last: %r)" % (timeout, what, last))


# ---------------------------------------------------------------- environment

def unescape_mountinfo(s):
    """Undo mountinfo's octal escapes (\\040 for a space, ...)."""
    out, i = "", 0
    while i < len(s):
        if s[i] == "\\" and i + 3 < len(s) and s[i + 1:i + 4].isdigit():
            out += chr(int(s[i + 1:i + 4], 8))
            i += 4
        else:
            out += s[i]
            i += 1
    return out


def mounts():
    """(mount point, fstype) of every mount, in /proc/self/mountinfo order."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, sep, post = line.partition(" - ")
            if sep:
                out.append((unescape_mountinfo(pre.split()[4]), post.split()[0]))
    return out


def cgroup2_mount():
    """The first cgroup2 mount point, or None."""
    for mp, fs in mounts():
        if fs == "cgroup2":
            return mp
    return None


def binary(var):
    """Path of a binary passed by meson in env var `var`; Skip without it."""
    p = os.environ.get(var, "")
    if not p or not os.access(p, os.X_OK):
        raise Skip("%s is not set to an executable (%r): run through meson test" % (var, p))
    return p


def require_environment(needs="bpf, cgroups", binaries=QUERYD_BINARIES):
    """Skip unless root, kernel BTF, a cgroup2 mount and the binaries."""
    if os.geteuid() != 0:
        raise Skip("needs root (%s)" % needs)
    if not os.path.exists(BTF_PATH):
        raise Skip("no BTF at %s" % BTF_PATH)
    if not cgroup2_mount():
        raise Skip("no cgroup2 mount in /proc/self/mountinfo")
    for v in binaries:
        binary(v)


def proc_start_ticks(pid):
    """Field 22 of /proc/PID/stat: start time in clock ticks after boot."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[22 - 3])


def pid_alive(pid):
    """Running, not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def cmdline_of(pid):
    """The command line as one string ("" once gone)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def file_bytes(path):
    """A file's bytes, b"" when it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def enter_cgroup_fn(cgroup_dir):
    """A Popen preexec_fn that moves the child into cgroup_dir before exec."""
    procs = os.path.join(cgroup_dir, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))
    return enter


def cgroup_pids(cgroup_dir):
    try:
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def kill_pids(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def run_logged(args, timeout=60, env=None, quiet=False, tail=None):
    """subprocess.run with captured text output, logged as `+ ARGS -> rc N`
    with its stdout and stderr (the last `tail` characters of each); with
    quiet, only when it fails."""
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env)
    if not quiet or r.returncode != 0:
        out, err = r.stdout.strip(), r.stderr.strip()
        if tail:
            out, err = out[-tail:], err[-tail:]
        log("+ %s -> rc %d%s%s" % (" ".join(args), r.returncode,
                                  ("\n  stdout: " + out) if out else "",
                                  ("\n  stderr: " + err) if err else ""))
    return r


def unload(pin_dir, timeout=60):
    """`connpid-loader --unload --pin-dir D`; the CompletedProcess."""
    return subprocess.run([os.environ.get("CONNPID_LOADER", "connpid-loader"), "--unload",
                           "--pin-dir", pin_dir], capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------- the query socket

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
        line = self.read_raw_line()
        return None if line is None else json.loads(line)

    def request_raw(self, obj):
        """obj sent; its answer line as the bytes that came (no newline)."""
        self.send(obj)
        return self.read_raw_line()

    def read_raw_line(self):
        """One answer line as bytes, without its newline; None on EOF."""
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if self.buf:
                    raise TestFailure("connection closed mid-line: %r" % self.buf[:200])
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def request(self, obj):
        self.send(obj)
        ans = self.read_line()
        check(ans is not None, "daemon closed the connection instead of answering %r" % (obj,))
        return ans

    def read_events(self, seconds, n=None, flows=False, poll=0.1):
        """What a watching connection gets within `seconds` (at most n):
        every line, or with flows the FLOW of each flow event."""
        out = []
        deadline = time.monotonic() + seconds
        self.sock.settimeout(poll)
        while (n is None or len(out) < n) and time.monotonic() < deadline:
            try:
                ans = self.read_line()
            except (TimeoutError, OSError):
                continue
            check(ans is not None, "watch connection closed")
            if not flows:
                out.append(ans)
            elif ans.get("event") == "flow":
                out.append(ans["flow"])
        self.sock.settimeout(10)
        return out

    def lookup_raw(self, proto, dst, sport, dport):
        return self.request({"op": "lookup", "proto": proto, "dst": dst,
                             "sport": sport, "dport": dport})

    def lookup(self, proto, dst, sport, dport):
        """The FLOW of a found lookup; fails the test when not found."""
        ans = self.lookup_raw(proto, dst, sport, dport)
        check(ans.get("ok") and ans.get("found"),
              "lookup %s %s:%d->%d: not found" % (proto, dst, sport, dport), ans)
        log("lookup %s %d->%s:%d: %s" % (proto, sport, dst, dport, self.describe(ans["flow"])))
        return ans["flow"]

    def describe(self, flow):
        """How lookup() logs a flow."""
        return json.dumps(flow)

    def wait_found(self, req, what, timeout=5.0, interval=0.05):
        """Ask req (a lookup) again until it says found; that answer."""
        deadline = time.monotonic() + timeout
        while True:
            ans = self.request(req)
            if ans.get("found"):
                return ans
            check(time.monotonic() < deadline, "%s never showed up" % what)
            time.sleep(interval)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def wait_queryd_ready(proc, sock, timeout=15, interval=0.05, output=lambda: ""):
    """Until queryd (Popen proc) answers ping on sock; its answer."""
    deadline = time.monotonic() + timeout
    err = None
    while time.monotonic() < deadline:
        check(proc.poll() is None, "queryd exited early (rc %r): %s" % (proc.returncode, output()))
        try:
            with Client(sock, timeout=5) as c:
                ans = c.request({"op": "ping"})
            if ans.get("ok") and ans.get("pong"):
                return ans
            err = ans
        except (OSError, AssertionError, ValueError) as e:
            err = e
        time.sleep(interval)
    raise TestFailure("queryd not ready after %ds: %r; log: %s" % (timeout, err, output()))


def terminate(proc, timeout=10):
    """SIGTERM, then SIGKILL when it is not gone within timeout seconds;
    its exit status."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


@contextlib.contextmanager
def scratch_queryd(pin_dir, prefix="connpid-q-"):
    """connpid-queryd --pin-dir D with its socket (.sock), --db and log
    (.log_text(): the last 2000 characters) in a new temp dir, answering
    ping: the Popen. Stopped (terminate()) and the temp dir removed at the
    end."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    sock = os.path.join(tmp, "s")
    logf = open(os.path.join(tmp, "log"), "w+")
    q = subprocess.Popen([binary("CONNPID_QUERYD"), "--pin-dir", pin_dir, "--socket", sock,
                          "--db", os.path.join(tmp, "db")], stdout=logf, stderr=subprocess.STDOUT)

    def log_text():
        logf.seek(0)
        return logf.read()[-2000:]
    q.sock, q.log_text = sock, log_text
    try:
        wait_queryd_ready(q, sock, output=log_text)
        yield q
    finally:
        terminate(q)
        logf.close()
        shutil.rmtree(tmp, ignore_errors=True)


def file_tail(path, n=4000):
    try:
        with open(path) as f:
            return f.read()[-n:]
    except (OSError, TypeError):
        return ""


class Daemon:
    """connpid-queryd started by an env (env.tmp, env.sock, env.track),
    its output in TMP/queryd-N.log."""
    ready_interval = 0.05
    stop_timeout = 10

    def __init__(self, env, args):
        self.env = env
        env.daemon_runs += 1
        self.logpath = os.path.join(env.tmp, "queryd-%d.log" % env.daemon_runs)
        self.logf = open(self.logpath, "w")
        self.proc = env.track(subprocess.Popen(args, stdout=self.logf, stderr=subprocess.STDOUT))
        self.pid = self.proc.pid

    def wait_ready(self, timeout=15):
        return wait_queryd_ready(self.proc, self.env.sock, timeout, self.ready_interval, self.log)

    def alive(self):
        return self.proc.poll() is None

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        return terminate(self.proc, self.stop_timeout)

    def log(self):
        return file_tail(self.logpath)


# ---------------------------------------------------------------- workload processes

def json_command(proc, obj, timeout, what="workload"):
    """Write obj as a JSON line to proc's stdin; its one-line answer, which
    must say ok."""
    proc.stdin.write(json.dumps(obj) + "\n")
    proc.stdin.flush()
    r, _, _ = select.select([proc.stdout], [], [], timeout)
    check(r, "%s %d did not answer %r within %ds" % (what, proc.pid, obj, timeout))
    line = proc.stdout.readline()
    check(line, "%s %d exited (rc %r) on %r" % (what, proc.pid, proc.poll(), obj))
    ans = json.loads(line)
    check(ans.get("ok"), "%s command %r failed: %r" % (what, obj, ans))
    return ans


class Workload:
    """tests/lib/workload.py serve started by an env (env.popen): exec'd
    inside cgroup_dir when given, options in args (--cgroup DIR: it moves
    itself there, --netns, padding ...). Its hello answer is .info and
    attributes; with cgroup (a path under the cgroup2 mount), that must
    be where it is."""
    timeout = 30

    def __init__(self, env, args=(), comm=None, cgroup_dir=None, cgroup=None, exe=None, **popen_kw):
        cmd = [exe or sys.executable, WORKLOAD, "serve"] + (["--comm", comm] if comm else [])
        self.proc = env.popen(cmd + list(args), cgroup_dir, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1, **popen_kw)
        self.info = self.cmd({"cmd": "hello"})
        for k in ("pid", "comm", "exe", "cgroup", "cmdline", "start_ticks", "netns"):
            setattr(self, k, self.info[k])
        if cgroup is not None:
            v2 = [line for line in self.cgroup.splitlines() if line.startswith("0::")]
            check(v2 == ["0::" + cgroup], "workload is not in %s" % cgroup, self.cgroup)

    def cmd(self, obj, timeout=None):
        return json_command(self.proc, obj, timeout or self.timeout)

    def exit(self):
        self.cmd({"cmd": "exit"})
        self.proc.wait(timeout=10)   # reaped: the pid is free now


# ---------------------------------------------------------------- the env

class CgroupEnv:
    """A private child cgroup PREFIX<tag>-<pid>-<rand> under the cgroup2
    mount, a pin dir of the same name under /sys/fs/bpf and a temp dir.

    Leaving it (also on an exception or SIGTERM/SIGINT/SIGHUP) calls
    cleanup(): tracked processes killed by pid, sockets closed,
    `connpid-loader --unload`, whatever is left in the cgroup tree killed,
    the cgroups removed bottom-up, leftover pins and the temp dir removed.
    """
    prefix = "cpt-"
    tmp_prefix = "cpt-"
    cgroup_tries = 200

    def __init__(self, tag):
        self.tag = tag
        self.uniq = "%s-%d-%06x" % (tag, os.getpid(), random.getrandbits(24))
        self.cgroup_root = cgroup2_mount()
        self.cgroup_rel = "/" + self.prefix + self.uniq
        self.cgroup = self.cgroup_root + self.cgroup_rel
        self.pin_dir = os.path.join(BPFFS_ROOT, self.prefix + self.uniq)
        self.procs = []
        self.socks = []
        self.daemon_runs = 0
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
            self.tmp = tempfile.mkdtemp(prefix=self.tmp_prefix)
            self.sock = os.path.join(self.tmp, "q.sock")
            self.setup()
        except BaseException:
            self.cleanup()
            raise
        log("env: cgroup %s pins %s %s %s" % (self.cgroup, self.pin_dir, self.enter_log_what,
                                              self.enter_log_path()))
        return self

    enter_log_what = "sock"

    def enter_log_path(self):
        return self.sock

    def setup(self):
        """Inside __enter__, after the temp dir; cleanup() on failure."""
        os.mkdir(self.cgroup)

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def _on_signal(self, signo, frame):
        raise Interrupted("signal %d" % signo)

    def track(self, proc):
        self.procs.append(proc)
        return proc

    def loader_args(self, *extra):
        return [binary("CONNPID_LOADER"), "--pin-dir", self.pin_dir, "--cgroup", self.cgroup] + list(extra)

    def run(self, args, timeout=120):
        return run_logged(args, timeout)

    def load(self, *extra):
        """connpid-loader into this env's cgroup and pin dir; must succeed."""
        r = self.run(self.loader_args(*extra))
        self.loaded = True   # even on failure: cleanup unloads whatever is there
        check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)

    def popen(self, args, cgroup_dir, **kw):
        """Start a tracked process; with a cgroup_dir it enters that cgroup
        before exec."""
        if cgroup_dir:
            kw["preexec_fn"] = enter_cgroup_fn(cgroup_dir)
        return self.track(subprocess.Popen(args, **kw))

    def no_store_daemon(self, timeout=15, extra=()):
        """Start connpid-queryd --pin-dir D --socket S --no-store [extra]
        (output in TMP/queryd.log) and wait until it answers ping."""
        check(self.daemon_proc is None, "one daemon per env")
        self.daemon_log = os.path.join(self.tmp, "queryd.log")
        logf = open(self.daemon_log, "w")
        self.daemon_proc = subprocess.Popen(
            [binary("CONNPID_QUERYD"), "--pin-dir", self.pin_dir, "--socket", self.sock,
             "--no-store"] + list(extra), stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.procs.append(self.daemon_proc)
        wait_queryd_ready(self.daemon_proc, self.sock, timeout,
                          output=lambda: file_tail(self.daemon_log))

    def listen_tcp(self, backlog=1024, reuse=False):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen(backlog)
        self.socks.append(s)
        return s, s.getsockname()[1]

    def bound_udp_port(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        self.socks.append(s)   # keep it bound: nobody else gets the port
        return s.getsockname()[1]

    # -- teardown
    def kill_cgroup_tree(self):
        kill_file = os.path.join(self.cgroup, "cgroup.kill")
        if os.path.exists(kill_file):
            try:
                with open(kill_file, "w") as f:
                    f.write("1")
            except OSError:
                pass
        for root, _dirs, _files in os.walk(self.cgroup, topdown=False):
            kill_pids(cgroup_pids(root))   # anything in our cgroup was started by this test

    def remove_cgroup_tree(self):
        if not os.path.isdir(self.cgroup):
            return
        for _ in range(self.cgroup_tries):
            self.kill_cgroup_tree()
            try:
                for root, _dirs, _files in os.walk(self.cgroup, topdown=False):
                    os.rmdir(root)
                return
            except OSError:
                time.sleep(0.05)
        log("cleanup: could not remove", self.cgroup)

    def stop_procs(self):
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
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass

    def unload_pins(self):
        if self.loaded or os.path.isdir(self.pin_dir):
            try:
                r = unload(self.pin_dir)
                if r.returncode != 0 and os.path.isdir(self.pin_dir):
                    log("cleanup: unload failed:", r.stderr.strip())
            except Exception as e:
                log("cleanup: unload failed:", e)

    def remove_leftover_pins(self):
        if os.path.isdir(self.pin_dir):
            log("cleanup: pin dir %s left after unload; removing" % self.pin_dir)
            shutil.rmtree(self.pin_dir, ignore_errors=True)
            if os.path.isdir(self.pin_dir):
                log("cleanup: could not remove %s" % self.pin_dir)

    def remove_tmp(self):
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def cleanup(self):
        self.stop_procs()
        self.before_unload()
        self.unload_pins()
        self.remove_cgroup_tree()
        self.remove_leftover_pins()
        self.after_cleanup()
        self.remove_tmp()

    def before_unload(self):
        pass

    def after_cleanup(self):
        pass


# ---------------------------------------------------------------- running tests

PR_SET_CHILD_SUBREAPER = 36


def run_test_object(make):
    """Run t = make() as t.preflight(), t.setup(), t.run(), then always
    t.cleanup() once t.tmp is set (a list of what it left behind, logged
    here); exit 0, 1 (a failure, or a passing test whose cleanup left
    something) or 77.
    Orphans of the run (daemons, the runc shims, which daemonize) become
    our children, so cleanup can reap them."""
    def on_signal(signo, frame):
        raise Interrupted("signal %d" % signo)

    t = None
    rc = 0
    try:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, on_signal)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        t = make()
        t.preflight()
        t.setup()
        t.run()
        print("PASS", flush=True)
    except Skip as e:
        print("SKIP:", e, flush=True)
        rc = SKIP
    except Interrupted as e:
        print("FAIL: interrupted (%s)" % e, flush=True)
        rc = 1
    except BaseException:
        traceback.print_exc()
        print("FAIL", flush=True)
        rc = 1
    finally:
        if t is not None and t.tmp is not None:
            problems = t.cleanup()
            for p in problems or []:
                log("cleanup problem:", p)
            if problems and rc == 0:
                print("FAIL: cleanup left state behind", flush=True)
                rc = 1
    sys.exit(rc)


def main(test_fn, make_env, tag, require=require_environment):
    """Run test_fn(env) in make_env(tag); exit 0/1/77."""
    run_cases([test_fn], make_env, tag, require)


_CASES = []


def case(fn):
    """Register a test case; run_cases() without a list runs them in
    definition order."""
    _CASES.append(fn)
    return fn


def _run_one(fn, make_env, tag, ctx, shared):
    if make_env:
        with make_env(tag) as env:
            fn(env)
    elif shared:
        fn(ctx)
    else:
        fn()


def _run_each(cases, make_env, tag, ctx, shared, only, skip_skips_file):
    """(failed, skipped) names; exits 77 at a Skip with skip_skips_file."""
    failed, skipped = [], []
    for fn in cases:
        if only and fn.__name__ not in only:
            continue
        log("=== %s" % fn.__name__)
        t0 = time.monotonic()
        try:
            _run_one(fn, make_env, tag, ctx, shared)
        except Skip as e:
            if skip_skips_file:
                raise
            log("SKIP %s: %s" % (fn.__name__, e))
            skipped.append(fn.__name__)
        except Exception:
            traceback.print_exc()
            log("FAIL %s (%.2fs)" % (fn.__name__, time.monotonic() - t0))
            failed.append(fn.__name__)
        else:
            log("PASS %s (%.2fs)" % (fn.__name__, time.monotonic() - t0))
    return failed, skipped


def run_cases(cases=None, make_env=None, tag=None, require=require_environment,
              skip_skips_file=True, shared=None, argv=None):
    """Several independent checks in one file: all run, the file fails if
    any does; exit 0, 1 or 77.

    cases: the test functions, or None for those registered with @case.
    Each gets its own make_env(tag) when make_env is given; otherwise the
    value of shared() (a context manager entered once for all), or no
    argument. Only the cases named in argv (default: sys.argv[1:]) run.
    A Skip in a case: with skip_skips_file the file is skipped at once;
    otherwise the other cases still run and the file is skipped (exit 77)
    unless one failed."""
    only = set(sys.argv[1:] if argv is None else argv)
    try:
        require()
        with (shared() if shared else contextlib.nullcontext()) as ctx:
            failed, skipped = _run_each(_CASES if cases is None else cases, make_env, tag, ctx,
                                        shared, only, skip_skips_file)
    except Skip as e:
        print("SKIP:", e, flush=True)
        sys.exit(SKIP)
    except Interrupted as e:
        print("FAIL: interrupted (%s), cleaned up" % e, flush=True)
        sys.exit(1)
    except Exception:
        traceback.print_exc()
        print("FAIL: setting up the shared environment", flush=True)
        sys.exit(1)
    if failed:
        print("FAIL:", ", ".join(failed), flush=True)
        sys.exit(1)
    if skipped:
        print("SKIP:", ", ".join(skipped), flush=True)
        sys.exit(SKIP)
    print("PASS", flush=True)
    sys.exit(0)

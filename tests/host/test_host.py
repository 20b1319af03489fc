#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The host suite (issue 12, "Keep it fixed"): connpid on the WHOLE host.

connpid-loader attaches at the cgroup2 root (from /proc/self/mountinfo)
with its own pin dir /sys/fs/bpf/connpid-host-<pid>; connpid-queryd gets a
socket and a history db in a temp dir. An installed connpid is untouched.

For CONNPID_HOST_SECONDS (default 75) it makes real churn, all at once:
  - thousands of execs and short-lived processes (hostwork.py execs);
  - tens of thousands of TCP and UDP flows, v4 and v6, loopback only
    (127.0.0.0/8, ::1), unconnected and connected UDP; every 25th flow
    is made by a forked child with its own ports and recorded (a sample);
  - DNS through a real dnsmasq in a network namespace (glibc
    getaddrinfo, then a datagram to the address it gave);
  - Docker containers on a private dockerd (--bridge=none, host network,
    connecting to 127.0.0.1), when dockerd and busybox-static exist;
  - processes with odd names: comm set to invalid UTF-8 and terminal
    escapes, a cmdline with invalid bytes and 100 KB long, an executable
    whose path holds spaces and newlines; forks and SCM_RIGHTS hand-overs;
and meanwhile every connpidctl command and protocol op with its options,
connpid-loader --status [--json], loader re-runs at the root and, at least
3 times, kill -9 of the daemon and a restart.

It asserts: no crash (the daemon exits only when killed, no ASan/UBSan
report, every CLI exit code in its documented set), every answer line and
every --json output strict UTF-8 and valid JSON, every sample attributed
to its pid (live while open; from the history after), counters that add
up, queryd's RSS and fd count flat. Every check is printed with its count;
failures with their evidence. Everything is removed at the end, also on
failure or SIGTERM. Exit 0 pass, 1 fail, 77 skip.
"""
import collections
import ctypes
import datetime
import http.client
import io
import json
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.path.join(HERE, "hostwork.py")
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import SKIP, Interrupted, Skip, binary, cgroup2_mount, mounts  # noqa: E402
from harness import cmdline_of, file_bytes, pid_alive  # noqa: E402

harness.set_log_name("host")
log = harness.log

SECONDS = float(os.environ.get("CONNPID_HOST_SECONDS", "75"))
FLOW_RATE = float(os.environ.get("CONNPID_HOST_FLOW_RATE", "130"))   # per worker, 4 workers
EXEC_RATE = float(os.environ.get("CONNPID_HOST_EXEC_RATE", "120"))
SAMPLE_EVERY = 25
MAX_FLOWS = 4096            # queryd --max-flows: the index saturates early, RSS can be flat
RSS_MARGIN = 64 << 20
FD_MARGIN = 50
WARMUP = 10.0
KILLS = (0.15, 0.30, 0.45)  # kill -9 at these fractions of the run
RERUNS = (0.20, 0.50, 0.70)
DNS_NAMES = [("h%d.example.test" % k, "127.53.0.%d" % k) for k in range(1, 17)] + \
    [("alias1.example.test", "127.53.0.1"), ("nx1.example.test", "")]
SANITIZER = re.compile(rb"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                       rb"SUMMARY: (Address|UndefinedBehavior|Leak)Sanitizer")
ODD_COMMS = [b"\xff\xfe\xfd bad", b"\x1b[2K\r\x1b]0;pwn\x07", b"a\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3",
             b"tab\tnl\ncr\r", b"\xe2\x80\xae\xc0\xaf\xed\xa0\x80x", b"\x9b31m\x7f"]
IMAGE = "local/busybox"


# ======================================================================= checks

class Checks:
    """Named checks, counted; failures keep their first evidence."""

    def __init__(self):
        self.lock = threading.Lock()
        self.passed = collections.Counter()
        self.failed = collections.Counter()
        self.evidence = collections.defaultdict(list)
        self.order = []
        self.frozen = False   # after an interruption: threads still running are not judged

    def _seen(self, name):
        if name not in self.passed and name not in self.failed:
            self.order.append(name)

    def ok(self, name, n=1):
        if self.frozen:
            return
        with self.lock:
            self._seen(name)
            self.passed[name] += n

    def fail(self, name, *evidence):
        if self.frozen:
            return
        text = "\n      ".join(str(e)[:1500] for e in evidence)
        with self.lock:
            self._seen(name)
            self.failed[name] += 1
            first = self.failed[name] <= 3
            if first:
                self.evidence[name].append(text)
        if first:
            log("FAIL %s\n      %s" % (name, text))

    def expect(self, cond, name, *evidence):
        if cond:
            self.ok(name)
        else:
            self.fail(name, *evidence)
        return cond

    def report(self):
        print("\n==== host suite checks (passes / failures) ====", flush=True)
        for n in self.order:
            print("%-4s %6d / %-5d %s" % ("FAIL" if self.failed[n] else "ok", self.passed[n],
                                          self.failed[n], n), flush=True)
        bad = [n for n in self.order if self.failed[n]]
        if bad:
            print("\n==== evidence ====", flush=True)
            for n in bad:
                for e in self.evidence[n]:
                    print("FAIL %s:\n      %s" % (n, e), flush=True)
        return bad


CK = Checks()


# ======================================================================= strict JSON

class NotStrict(ValueError):
    pass


def _no_constant(c):
    raise NotStrict("non-finite number %s" % c)


def _pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise NotStrict("duplicate member in object: %r" % sorted(k for k in keys if keys.count(k) > 1))
    return dict(pairs)


def _surrogates(o, path="$"):
    if isinstance(o, str):
        try:
            o.encode("utf-8")
        except UnicodeEncodeError:
            return path
    elif isinstance(o, dict):
        for k, v in o.items():
            p = _surrogates(k, path) or _surrogates(v, path + "." + k)
            if p:
                return p
    elif isinstance(o, list):
        for i, v in enumerate(o):
            p = _surrogates(v, "%s[%d]" % (path, i))
            if p:
                return p
    return None


def strict_json(b, what):
    """bytes -> object; a failed check (and None) unless strict UTF-8 and
    valid JSON (no NaN/Infinity, no duplicate members); lone surrogate
    escapes are a check of their own."""
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError as e:
        CK.fail("strict UTF-8: " + what, "%s at byte %d: %r" % (e.reason, e.start, b[max(0, e.start - 60):e.start + 40]))
        return None
    CK.ok("strict UTF-8: " + what)
    try:
        o = json.loads(s, parse_constant=_no_constant, object_pairs_hook=_pairs)
    except (ValueError, RecursionError) as e:
        CK.fail("valid JSON: " + what, str(e), s[:600])
        return None
    CK.ok("valid JSON: " + what)
    p = _surrogates(o)
    CK.expect(p is None, "no lone surrogate escapes: " + what, "at %s: %s" % (p, s[:400]))
    return o


def walk_numbers(o, path="$"):
    if isinstance(o, bool):
        return
    if isinstance(o, (int, float)):
        yield path, o
    elif isinstance(o, dict):
        for k, v in o.items():
            yield from walk_numbers(v, path + "." + k)
    elif isinstance(o, list):
        for i, v in enumerate(o):
            yield from walk_numbers(v, "%s[%d]" % (path, i))


CONTROL = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]")


def check_table(b, what):
    """Table output (not --json): no raw control characters (ESC, CR,
    BEL, C1) that would act on a terminal (issue 12, item 8)."""
    m = CONTROL.search(b)
    CK.expect(m is None, "table output has no raw control characters: " + what,
              "byte %r at %d: %r" % (m.group(0), m.start(), b[max(0, m.start() - 60):m.start() + 40]) if m else "")


# ======================================================================= raw socket client

class Raw:
    """A connection to the query socket, answers read as raw bytes and
    checked strictly."""

    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.partial = False

    def line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(1 << 20)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                rest, self.buf = self.buf, b""
                self.partial = bool(rest)   # a line cut by the close, no newline
                return rest or None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def request(self, req, what=None):
        """Send req (dict or bytes, newline added for a dict); the answer
        (dict) or None if the connection closed or it was not strict."""
        data = req if isinstance(req, bytes) else json.dumps(req).encode() + b"\n"
        op = what or (req.get("op") if isinstance(req, dict) else "raw")
        self.sock.sendall(data)
        line = self.line()
        if line is None:
            return None
        ans = strict_json(line, "socket answer (%s)" % op)
        if isinstance(ans, dict):
            CK.expect(list(ans)[:1] == ["ok"], "answer has \"ok\" first (%s)" % op, line[:300])
        return ans

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ======================================================================= helpers

def rss_fds(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmRSS:"))
        return rss, len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, StopIteration):
        return None


def read_lines(path):
    out = []
    try:
        with open(path) as f:
            for l in f:
                if l.strip():
                    out.append(json.loads(l))
    except OSError:
        pass
    return out


def excerpt(b, n=700):
    if isinstance(b, bytes):
        b = b.decode("utf-8", "backslashreplace")
    return b[-n:]


def canon(addr):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    return socket.inet_ntop(fam, socket.inet_pton(fam, addr))


def flow_matches(f, filt):
    for k, v in filt.items():
        if k == "pid" and f.get("pid") != v:
            return False
        if k == "comm" and f.get("comm") != v[:15]:
            return False
        if k == "proto" and f.get("proto") != {"6": "tcp", "17": "udp"}.get(str(v).lower(), str(v).lower()):
            return False
        if k == "dst" and canon(f.get("dst", "0.0.0.0")) != canon(v):
            return False
        if k == "dport" and f.get("dport") != v:
            return False
        if k in ("exe", "unit") and f.get(k) != v:
            return False
        if k == "domain" and (f.get("domain") or {}).get("name") != v:
            return False
        if k == "container" and v not in ((f.get("container") or {}).get("id"), (f.get("container") or {}).get("name")):
            return False
        if k == "since" and f.get("first_seen", 0) < v - 0.001:
            return False
        if k == "until" and f.get("first_seen", 0) > v + 0.001:
            return False
    return True


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path, timeout=60):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


def docker_api(sock, method, path, body=None, headers=None, timeout=60):
    c = UnixHTTP(sock, timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs["Content-Type"] = "application/json"
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


# ======================================================================= the daemon

class Queryd:
    """connpid-queryd with a restart gate: queries run inside using(); a
    kill -9 and restart waits until none is running."""

    def __init__(self, t):
        self.t = t
        self.proc = None
        self.epoch = 0
        self.started = 0.0
        self.killing = False
        self.logs = []
        self.cond = threading.Condition()
        self.busy = 0
        self.restarting = False
        self.instances = []   # (epoch, pid, start, end, how)

    def args(self):
        t = self.t
        # every other instance polls after each request (--busy-poll-us):
        # the loop that spins is run at the root, under churn, with every
        # command, as the one that sleeps is
        spin = ["--busy-poll-us=50"] if self.epoch % 2 == 0 else []
        return [binary("CONNPID_QUERYD"), "--pin-dir", t.pin_dir, "--socket", t.sock, "--db", t.db,
                "--docker-socket", t.docker_sock, "--max-flows", str(MAX_FLOWS)] + spin

    def start(self):
        self.epoch += 1
        path = os.path.join(self.t.tmp, "queryd-%d.log" % self.epoch)
        self.logs.append(path)
        env = dict(os.environ)
        # a small ASan quarantine: freed memory held back would look like growth
        env["ASAN_OPTIONS"] = ":".join(x for x in (env.get("ASAN_OPTIONS", ""), "quarantine_size_mb=8:allocator_release_to_os_interval_ms=500") if x)
        with open(path, "wb") as lf:
            self.proc = subprocess.Popen(self.args(), stdout=lf, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, env=env)
        self.killing = False
        self.started = time.monotonic()
        self.instances.append([self.epoch, self.proc.pid, self.started, None, None])
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise AssertionError("connpid-queryd exited at start (rc %r): %s"
                                     % (self.proc.returncode, excerpt(file_bytes(path))))
            try:
                r = Raw(self.t.sock, timeout=5)
                a = r.request({"op": "ping"})
                r.close()
                if a and a.get("pong"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("connpid-queryd not answering ping after 30 s: %s"
                                     % excerpt(file_bytes(path)))
            time.sleep(0.05)

    def log_tail(self):
        return excerpt(file_bytes(self.logs[-1]), 1500) if self.logs else ""

    def using(self):
        q = self

        class _U:
            def __enter__(self_):
                with q.cond:
                    while q.restarting:
                        q.cond.wait()
                    q.busy += 1
                return q.epoch

            def __exit__(self_, *a):
                with q.cond:
                    q.busy -= 1
                    q.cond.notify_all()
        return _U()

    def exclusive(self, fn):
        with self.cond:
            self.restarting = True
            deadline = time.monotonic() + 60
            while self.busy and time.monotonic() < deadline:
                self.cond.wait(1)
        try:
            return fn()
        finally:
            with self.cond:
                self.restarting = False
                self.cond.notify_all()

    def kill9(self):
        # killing stays set until start(): the daemon is down on purpose
        # meanwhile, and the monitor must not "restart" it (two daemons
        # on one socket, the second rightly refusing to take it over)
        self.killing = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.instances[-1][3:] = [time.monotonic(), "kill -9"]

    def died_unexpectedly(self):
        return self.proc is not None and not self.killing and self.proc.poll() is not None

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.killing = True
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "timeout"
        self.instances[-1][3:] = [time.monotonic(), "SIGTERM"]
        return self.proc.returncode


# ======================================================================= the test

class HostTest:
    def __init__(self):
        self.uniq = os.getpid()
        self.root = cgroup2_mount()
        self.pin_dir = "/sys/fs/bpf/connpid-host-%d" % self.uniq
        self.blk_pin = "/sys/fs/bpf/connpid-host-blk-%d" % self.uniq
        self.blk_cg = (self.root or "") + "/connpid-host-blk-%d" % self.uniq
        self.tmp = None
        self.procs = []          # every Popen we started, killed by pid at the end
        self.stop_ev = threading.Event()
        self.threads = []
        self.q = None
        self.netns = "cph-%d" % self.uniq
        self.netns_made = False
        self.dockerd = None
        self.docker_skip = None
        self.docker_cg = "/connpid-host-docker-%d" % self.uniq
        self.docker_ns = "cph-%d" % self.uniq
        self.made_docker_paths = []
        self.loaded = False
        self.t0 = None
        self.counts = collections.Counter()
        self.kill_times = []     # (wall time of the kill, wall time ready again)
        self.samples_rss = []    # (epoch, t, rss, fds)
        self.live_flow = None    # a flow held open, for the CLI lookups
        self.live_lock = threading.Lock()
        self.stats_before_kill = []
        self.container_ids = []
        self.watch_conns = []

    # ----------------------------------------------------------------- tools

    def track(self, p):
        self.procs.append(p)
        return p

    def remaining(self):
        return self.t0 + SECONDS - time.monotonic()

    def ctl(self, args, expect=(0,), what=None, timeout=60, json_out=None):
        """connpidctl ARGS; checks the exit code is documented and expected,
        stdout strict JSON (--json) or free of control characters, stderr
        free of sanitizer reports. (rc, stdout, stderr)."""
        cmd = next((a for a in args if a in ("lookup", "watch", "recent", "history", "stats", "status",
                                             "ping", "ipv6-block")), "(no command)")
        what = what or "connpidctl " + " ".join(args)
        full = [binary("CONNPIDCTL"), "--socket", self.sock]
        if "--pin-dir" not in args:
            full += ["--pin-dir", self.pin_dir]   # never the default pins of an installed connpid
        full += list(args)
        try:
            r = subprocess.run(full, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            CK.fail("connpidctl answers within %d s" % timeout, what, excerpt(e.stdout or b""))
            return None, b"", b""
        self.counts["cli"] += 1
        documented = (0, 1, 2) if cmd == "lookup" else (0, 2)
        CK.expect(r.returncode in documented, "connpidctl exit code in its documented set",
                  "%s -> rc %d" % (what, r.returncode), excerpt(r.stderr))
        CK.expect(r.returncode in expect, "connpidctl %s exit code as expected" % cmd,
                  "%s -> rc %d, want %s" % (what, r.returncode, expect),
                  "stdout: " + excerpt(r.stdout, 400), "stderr: " + excerpt(r.stderr, 400))
        m = SANITIZER.search(r.stderr)
        CK.expect(m is None, "no sanitizer report from connpidctl", what, excerpt(r.stderr, 1500))
        is_json = "--json" in args if json_out is None else json_out
        if r.stdout:
            if is_json:
                for l in r.stdout.splitlines():
                    strict_json(l, "connpidctl --json %s output" % cmd)
            else:
                check_table(r.stdout, "connpidctl " + cmd)
        return r.returncode, r.stdout, r.stderr

    def ctl_json(self, args, expect=(0,), what=None):
        rc, out, _ = self.ctl(["--json"] + list(args), expect, what)
        lines = out.splitlines()
        if not lines:
            return rc, None
        try:
            return rc, json.loads(lines[-1])
        except ValueError:
            return rc, None

    def loader(self, *args, timeout=120, pin=None):
        r = subprocess.run([binary("CONNPID_LOADER"), "--pin-dir", pin or self.pin_dir] + list(args),
                           capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
        self.counts["loader runs"] += 1
        CK.expect(SANITIZER.search(r.stderr + r.stdout) is None, "no sanitizer report from connpid-loader",
                  "loader %s" % " ".join(args), excerpt(r.stderr, 1500))
        return r

    def raw(self, timeout=30):
        return Raw(self.sock, timeout)

    # ----------------------------------------------------------------- setup

    def preflight(self):
        harness.require_environment("bpf at the cgroup root")
        if not os.path.isdir(self.root):
            raise Skip("no cgroup2 root")

    def setup(self):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)   # PR_SET_CHILD_SUBREAPER: orphans (shims) come to us
        self.tmp = tempfile.mkdtemp(prefix="cph-", dir="/tmp")
        os.chmod(self.tmp, 0o755)
        self.sock = os.path.join(self.tmp, "q.sock")
        self.db = os.path.join(self.tmp, "db", "history.db")
        os.mkdir(os.path.dirname(self.db), 0o700)
        self.docker_sock = os.path.join(self.tmp, "docker.sock")   # never the host's
        log("tmp %s pins %s cgroup root %s seconds %.0f" % (self.tmp, self.pin_dir, self.root, SECONDS))
        if SECONDS < 60:
            log("NOTE: CONNPID_HOST_SECONDS=%.0f is below the 60 s the suite is meant for" % SECONDS)

        t = time.monotonic()
        # --inbound: accept() tracking runs at the root under the churn too
        r = self.loader("--cgroup", self.root, "--inbound")
        self.loaded = True
        if r.returncode != 0:
            raise AssertionError("connpid-loader at the cgroup root failed (rc %d): %s"
                                 % (r.returncode, excerpt(r.stderr)))
        CK.ok("loader attaches at the cgroup2 root")
        log("loaded at %s in %.2f s: %s" % (self.root, time.monotonic() - t, r.stderr.decode(errors="replace").strip()))

        # a blocker-only load on an empty child cgroup: `ipv6-block on`
        # there blocks nobody (at the root it would block the whole host)
        os.mkdir(self.blk_cg)
        r = self.loader("--cgroup", self.blk_cg, "--no-dns", pin=self.blk_pin)
        CK.expect(r.returncode == 0, "loader on an empty child cgroup (for ipv6-block on)", excerpt(r.stderr))
        self.setup_dns()
        self.setup_docker()
        self.q = Queryd(self)
        self.q.start()
        log("queryd up, pid %d" % self.q.proc.pid)

    def setup_dns(self):
        if not shutil.which("dnsmasq") or not shutil.which("ip"):
            raise Skip("dnsmasq or ip missing (tests/install-deps.sh)")
        r = subprocess.run(["ip", "netns", "add", self.netns], capture_output=True, timeout=30)
        if r.returncode != 0:
            raise AssertionError("ip netns add: " + r.stderr.decode(errors="replace"))
        self.netns_made = True
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True, timeout=30)
        etc = os.path.join("/etc/netns", self.netns)
        os.makedirs(etc)
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.53\noptions timeout:1 attempts:1\n")
        recs = ["--host-record=%s,%s" % (n, a) for n, a in DNS_NAMES if a and not n.startswith("alias")]
        recs += ["--cname=alias1.example.test,h1.example.test", "--local=/example.test/"]
        lf = open(os.path.join(self.tmp, "dnsmasq.log"), "wb")
        self.dnsmasq = self.track(subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "dnsmasq", "--no-daemon", "--port=53",
             "--listen-address=127.0.0.53", "--bind-interfaces", "--no-resolv", "--no-hosts",
             "--pid-file=", "--user=root", "--group=root", "--cache-size=0"] + recs,
            stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
        lf.close()
        deadline = time.monotonic() + 10
        while True:
            r = subprocess.run(["ip", "netns", "exec", self.netns, sys.executable, "-c",
                                "import socket; print(socket.getaddrinfo('h1.example.test', 9, socket.AF_INET))"],
                               capture_output=True, timeout=10)
            if r.returncode == 0 and b"127.53.0.1" in r.stdout:
                break
            if self.dnsmasq.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("dnsmasq in %s not answering: %s" % (
                    self.netns, excerpt(file_bytes(os.path.join(self.tmp, "dnsmasq.log")))))
            time.sleep(0.1)
        log("dnsmasq up in netns %s" % self.netns)

    def setup_docker(self):
        dockerd = shutil.which("dockerd") or shutil.which("dockerd", path="/usr/sbin:/sbin")
        busybox = next((os.path.realpath(p) for p in (shutil.which("busybox"), "/bin/busybox")
                        if p and os.path.exists(p)), None)
        if not dockerd or not busybox:
            self.docker_skip = "dockerd or busybox-static not installed (tests/install-deps.sh)"
            return
        for p in ("/etc/docker/key.json", "/etc/docker", "/run/docker/plugins", "/run/docker",
                  "/run/containerd/s", "/run/containerd"):
            if not os.path.lexists(p):
                self.made_docker_paths.append(p)
        os.mkdir(os.path.join(self.root + self.docker_cg))
        d = os.path.join(self.tmp, "d")
        os.mkdir(d)
        cfg = os.path.join(d, "daemon.json")
        with open(cfg, "w") as f:
            f.write("{}\n")
        args = [dockerd, "--config-file=" + cfg, "--data-root=" + d + "/data", "--exec-root=" + d + "/exec",
                "--pidfile=" + d + "/pid", "-H", "unix://" + self.docker_sock,
                "--containerd-namespace=" + self.docker_ns, "--containerd-plugins-namespace=" + self.docker_ns + "-p",
                "--storage-driver=vfs", "--iptables=false", "--ip-forward=false", "--ip-masq=false",
                "--bridge=none", "--exec-opt", "native.cgroupdriver=cgroupfs",
                "--cgroup-parent=" + self.docker_cg]
        lf = open(os.path.join(self.tmp, "dockerd.log"), "wb")
        self.dockerd = self.track(subprocess.Popen(args, stdout=lf, stderr=subprocess.STDOUT,
                                                   stdin=subprocess.DEVNULL, start_new_session=True))
        lf.close()
        deadline = time.monotonic() + 60
        while True:
            try:
                st, body = docker_api(self.docker_sock, "GET", "/_ping", timeout=2)
                if st == 200:
                    break
            except OSError:
                pass
            if self.dockerd.poll() is not None or time.monotonic() > deadline:
                self.docker_skip = "dockerd did not come up: " + excerpt(
                    file_bytes(os.path.join(self.tmp, "dockerd.log")), 400)
                return
            time.sleep(0.1)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tf:
            ti = tarfile.TarInfo("bin")
            ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(ti)
            tf.add(busybox, arcname="bin/busybox")
            for a in ("sh", "nc", "sleep", "cat"):
                ln = tarfile.TarInfo("bin/" + a)
                ln.type, ln.linkname = tarfile.SYMTYPE, "busybox"
                tf.addfile(ln)
        st, body = docker_api(self.docker_sock, "POST", "/v1.41/images/create?fromSrc=-&repo=local/busybox&tag=latest",
                              body=buf.getvalue(), headers={"Content-Type": "application/x-tar"}, timeout=120)
        if st != 200:
            self.docker_skip = "image import failed: %d %s" % (st, body[:300])
            return
        log("dockerd up (pid %d), image %s imported" % (self.dockerd.pid, IMAGE))

    # ----------------------------------------------------------------- churn

    def start_workers(self):
        py = sys.executable
        secs = "%.1f" % SECONDS
        self.work = {}

        def spawn(name, args, netns=None):
            out = os.path.join(self.tmp, "work-%s.jsonl" % name)
            full = [py, WORK] + args[:1] + [x for x in args[1:]] + [out]
            if args[0] == "dns":
                full = [py, WORK, "dns", secs, "20", out] + ["%s=%s" % na for na in DNS_NAMES]
            if netns:
                full = ["ip", "netns", "exec", netns] + full
            lf = open(os.path.join(self.tmp, "work-%s.log" % name), "wb")
            p = self.track(subprocess.Popen(full, stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
            lf.close()
            self.work[name] = (p, out)

        spawn("execs", ["execs", secs, str(EXEC_RATE)])
        for fam in ("v4", "v6"):
            for proto in ("tcp", "udp"):
                spawn("%s-%s" % (fam, proto), ["flows", fam, proto, secs, str(FLOW_RATE), str(SAMPLE_EVERY)])
        spawn("dns", ["dns"], netns=self.netns)

        # a holder of live flows, and the odd one
        self.live = self.track(subprocess.Popen([py, WORK, "live"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                text=True, bufsize=1))
        self.live_pid = harness.json_command(self.live, {"cmd": "hello"}, 30)["pid"]
        oddroot = os.path.join(self.tmp, "odd dir\nwith  spaces")
        os.mkdir(oddroot)
        self.odd_exe = os.path.join(oddroot, "py th\non \u00e9")
        shutil.copy2(os.path.realpath(py), self.odd_exe)
        argv = [self.odd_exe.encode(), WORK.encode(), b"odd", b"\xff\xfe\x1b[31mred\x07\xc3(",
                b"B" * 100000 + b"\xe2\x82"]
        self.odd = self.track(subprocess.Popen(argv, executable=self.odd_exe, stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, text=True, bufsize=1))
        hello = harness.json_command(self.odd, {"cmd": "hello"}, 30)
        self.odd_pid = hello["pid"]
        CK.expect(hello["exe"] == self.odd_exe, "odd process runs from the odd path", hello)

    # ----------------------------------------------------------------- threads

    def thread(self, name, fn):
        def body():
            try:
                fn()
            except Exception:
                CK.fail("thread %s runs without an exception" % name, traceback.format_exc())
        th = threading.Thread(target=body, name=name, daemon=True)
        th.start()
        self.threads.append(th)

    def sleep(self, s):
        return self.stop_ev.wait(s)

    def monitor(self):
        """Every second: queryd alive (else: crash, restart), RSS and fds."""
        while not self.stop_ev.is_set():
            q = self.q
            if q.died_unexpectedly():
                CK.fail("connpid-queryd exits only when killed",
                        "pid %d exited rc %r (epoch %d)" % (q.proc.pid, q.proc.returncode, q.epoch), q.log_tail())
                q.instances[-1][3:] = [time.monotonic(), "crashed rc %r" % q.proc.returncode]
                self.counts["daemon crashes"] += 1
                try:
                    q.exclusive(q.start)
                except Exception as e:
                    CK.fail("connpid-queryd restarts after a crash", str(e))
                    return
            elif q.proc.poll() is None and not q.killing:
                s = rss_fds(q.proc.pid)
                if s:
                    self.samples_rss.append((q.epoch, time.monotonic() - q.started, s[0], s[1]))
            self.sleep(1.0)

    def kill_and_restart(self, n):
        """kill -9, then while it is down: lookup falls back to the maps,
        other commands exit 2; then a restart that answers again."""
        q = self.q

        def do():
            try:
                r = self.raw()
                st = r.request({"op": "stats"})
                r.close()
                if st and st.get("ok"):
                    self.stats_before_kill.append(st["stats"])
            except OSError:
                pass
            with self.live_lock:
                lf = self.live_flow
            tk = time.time()
            q.kill9()
            self.counts["kill -9"] += 1
            CK.ok("kill -9 of connpid-queryd")
            if lf:
                rc, out, err = self.ctl(["lookup", lf["dst"], str(lf["sport"]), str(lf["dport"]),
                                         "--protocol", lf["proto"]], expect=(0,),
                                        what="lookup with the daemon down (falls back to the maps)")
                CK.expect(rc == 0 and str(lf["pid"]).encode() in out, "lookup falls back to the maps when the daemon is down",
                          "rc %r out %s err %s want pid %d" % (rc, excerpt(out, 300), excerpt(err, 300), lf["pid"]))
                rc, out, _ = self.ctl(["--json", "lookup", "--direct", lf["dst"], str(lf["sport"]),
                                       str(lf["dport"]), "--protocol", lf["proto"]], expect=(0,))
                try:
                    CK.expect(json.loads(out.splitlines()[-1]).get("pid") == lf["pid"],
                              "lookup --direct names the live flow's pid", excerpt(out, 300))
                except (ValueError, IndexError):
                    CK.fail("lookup --direct names the live flow's pid", excerpt(out, 300))
            self.ctl(["ping"], expect=(2,), what="ping with the daemon down")
            self.ctl(["stats"], expect=(2,), what="stats with the daemon down")
            t = time.monotonic()
            q.start()
            self.kill_times.append((tk, time.time()))
            log("kill -9 #%d: restarted in %.2f s, pid %d" % (n, time.monotonic() - t, q.proc.pid))
            CK.ok("connpid-queryd restarts after kill -9")
        q.exclusive(do)

    def exerciser(self):
        """Every CLI command and protocol op, in rounds, with the scheduled
        kills and loader re-runs between them."""
        kills = [SECONDS * f for f in KILLS]
        reruns = [SECONDS * f for f in RERUNS]
        rnd = 0
        while not self.stop_ev.is_set() and self.remaining() > 3:
            el = time.monotonic() - self.t0
            if kills and el >= kills[0]:
                kills.pop(0)
                self.kill_and_restart(len(KILLS) - len(kills))
                continue
            if reruns and el >= reruns[0]:
                reruns.pop(0)
                self.loader_rerun()
                continue
            with self.q.using():
                self.cli_round(rnd)
                self.raw_round(rnd)
            self.loader_status()
            rnd += 1
            self.counts["exerciser rounds"] += 1
            self.sleep(0.2)

    def loader_rerun(self):
        extra = ["--no-seed"] if self.counts["loader re-runs"] % 2 else []
        # every other re-run says --inbound again, the others leave it as loaded
        extra += ["--inbound"] if self.counts["loader re-runs"] % 2 == 0 else []
        r = self.loader("--cgroup", self.root, *extra)
        self.counts["loader re-runs"] += 1
        CK.expect(r.returncode == 0, "loader re-run at the root succeeds",
                  "rc %d: %s" % (r.returncode, excerpt(r.stderr)))
        CK.expect(b"Already loaded" in r.stderr, "loader re-run attaches nothing twice (\"Already loaded\")",
                  excerpt(r.stderr))

    def loader_status(self):
        r = self.loader("--status")
        CK.expect(r.returncode == 0, "connpid-loader --status exits 0", "rc %d: %s" % (r.returncode, excerpt(r.stderr)))
        check_table(r.stdout, "connpid-loader --status")
        r = self.loader("--status", "--json")
        CK.expect(r.returncode == 0, "connpid-loader --status --json exits 0",
                  "rc %d: %s" % (r.returncode, excerpt(r.stderr)))
        st = strict_json(r.stdout.strip(), "connpid-loader --status --json") if r.stdout.strip() else None
        if isinstance(st, dict):
            self.check_status_obj(st, "loader --status --json")

    def check_status_obj(self, st, what):
        CK.expect(st.get("loaded") is True, "status says loaded (%s)" % what, json.dumps(st)[:600])
        CK.expect(st.get("inbound") is True, "status says inbound is on (%s)" % what, json.dumps(st)[:600])
        for m in st.get("maps", []):
            if "error" in m:
                CK.fail("status: every map opens (%s)" % what, json.dumps(m))
                continue
            if "entries" in m:
                CK.expect(0 <= m["entries"] <= m.get("max_entries", 0) and 0 <= m.get("fill_percent", 0) <= 100,
                          "status: map entries within max_entries (%s)" % what, json.dumps(m))
        for ln in st.get("links", []):
            if "attach_type" in ln or "cgroup_id" in ln:
                CK.expect(ln.get("attached") is not False, "status: cgroup links attached (%s)" % what, json.dumps(ln))
        for path, v in walk_numbers(st):
            if v < 0:
                CK.fail("status: no negative numbers", "%s %s = %r" % (what, path, v))

    def cli_round(self, rnd):
        with self.live_lock:
            lf = self.live_flow
        now = time.time()
        iso = datetime.datetime.fromtimestamp(now - 20).strftime("%Y-%m-%dT%H:%M:%S")
        j = ["--json"]
        basic = [["ping"], j + ["ping"], ["stats"], j + ["stats"], ["status"], j + ["status"]]
        recent = [["recent"], ["recent", "--limit", "5"], j + ["recent", "--limit", "5000"],
                  j + ["recent", "--pid", str(self.live_pid)], j + ["recent", "--comm", "python3", "--limit", "50"],
                  j + ["recent", "--proto", "udp"], j + ["recent", "--dst", "::1", "--proto", "tcp"],
                  ["recent", "--dport", "9999", "--limit", "3"]]
        hist = [["history"], j + ["history", "--limit", "100", "--order", "asc"],
                j + ["history", "--pid", str(self.live_pid)], j + ["history", "--comm", "python3"],
                j + ["history", "--proto", "tcp", "--dst", "127.0.0.1"], j + ["history", "--dport", "9999"],
                j + ["history", "--exe", os.path.realpath(sys.executable)],
                j + ["history", "--domain", "h3.example.test"], ["history", "--unit", "nonexistent.service"],
                j + ["history", "--container", self.container_ids[-1] if self.container_ids else "nope"],
                j + ["history", "--since", "-30s", "--limit", "5000"], j + ["history", "--until", "%.3f" % (now - 5)],
                j + ["history", "--since", iso, "--until", "-1s", "--order", "desc"],
                ["history", "--limit", "5", "--order", "asc", "--proto", "udp"]]
        bad = [(["lookup", "127.0.0.1", "0", "80"], (2,)), (["recent", "--limit", "0"], (2,)),
               (["history", "--order", "sideways"], (2,)), (["frobnicate"], (2,)),
               (["lookup", "127.0.0.1", "1", "2", "--direct", "--at", "-1m"], (2,)),
               (["recent", "--proto", "icmp"], (2,)), (["--version"], (0,)), (["--help"], (0,)),
               (["ipv6-block", "off", "--pin-dir", self.pin_dir], (0,)), (["ipv6-block"], (2,)),
               (["ipv6-block", "maybe", "--pin-dir", self.blk_pin], (2,)),
               (["ipv6-block", "on", "--pin-dir", self.blk_pin], (0,)),
               (["ipv6-block", "off", "--pin-dir", self.blk_pin], (0,))]
        for a in basic:
            self.ctl(a)
        self.ctl(recent[rnd % len(recent)])
        for k in range(2):
            a = hist[(rnd * 2 + k) % len(hist)]
            rc, out, _ = self.ctl(a)
            if "--json" in a and rc == 0:
                self.check_history_cli(a, out)
        a, exp = bad[rnd % len(bad)]
        self.ctl(a, expect=exp)
        if lf:
            key = [lf["dst"], str(lf["sport"]), str(lf["dport"]), "--protocol", lf["proto"]]
            rc, out, _ = self.ctl(["lookup"] + key, expect=(0, 1))
            rc, ans = self.ctl_json(["lookup"] + key, expect=(0, 1))
            if rc == 0 and ans and ans.get("found"):
                CK.expect(ans["flow"].get("pid") == lf["pid"], "connpidctl lookup names the live flow's pid",
                          json.dumps(ans)[:500], lf)
            self.ctl(["lookup", "--direct", "--pin-dir", self.pin_dir] + key, expect=(0, 1))
            self.ctl(["--json", "lookup", "--direct", "--pin-dir", self.pin_dir] + key, expect=(0, 1))
            self.ctl(["lookup", "--at", "%.3f" % now] + key, expect=(0, 1))
            self.ctl(["--json", "lookup", "--at", "-2s"] + key, expect=(0, 1))
            self.ctl(["lookup", "--at", iso] + key, expect=(0, 1))
        self.ctl(["lookup", "127.0.0.1", "1", "1"], expect=(1,), what="lookup of a flow that never was")

    def check_history_cli(self, args, out):
        filt = {}
        i = 0
        while i < len(args):
            a = args[i]
            if a in ("--pid", "--dport"):
                filt[a[2:]] = int(args[i + 1])
            elif a in ("--comm", "--proto", "--dst", "--exe", "--domain", "--unit", "--container"):
                filt[a[2:]] = args[i + 1]
            i += 1
        if not filt:
            return
        try:
            rows = json.loads(out.splitlines()[-1]).get("flows", [])
        except (ValueError, IndexError):
            return
        bad = [r for r in rows if not flow_matches(r, filt)]
        CK.expect(not bad, "connpidctl history rows match the filters",
                  "filter %s: %d of %d rows do not match, first: %s" % (filt, len(bad), len(rows),
                                                                        json.dumps(bad[:1])[:600]))

    # raw protocol ops: (name, payload, expectation); "ok", "err:CODE", "any"
    def raw_ops(self):
        lf = self.live_flow or {"dst": "127.0.0.1", "sport": 1, "dport": 1, "proto": "tcp"}
        L = {"op": "lookup", "dst": lf["dst"], "sport": lf["sport"], "dport": lf["dport"]}
        now = time.time()

        def d(**kw):
            return json.dumps(kw).encode() + b"\n"
        ops = [
            ("ping id string", d(op="ping", id="a\u00e9\u2603"), "ok"),
            ("ping id object", d(op="ping", id={"x": [1, 2.5, None, "\u0000"]}), "ok"),
            ("ping id 1e400", b'{"op":"ping","id":1e400}\n', "any"),
            ("ping id -0.0", b'{"op":"ping","id":-0.0}\n', "ok"),
            ("ping id lone surrogate", b'{"op":"ping","id":"\\ud800x"}\n', "any"),
            ("ping id invalid UTF-8", b'{"op":"ping","id":"\xff\xfe\xc3("}\n', "any"),
            ("ping CRLF and empty lines", b"\n\r\n" + b'{"op":"ping"}\r\n', "ok"),
            ("ping trailing garbage", b'{"op":"ping"} {"op":"nope"} trailing\n', "ok"),
            ("not JSON", b"not json\n", "err:bad_json"),
            ("NaN in request", b'{"op":"recent","limit":NaN}\n', "any"),
            ("array request", b"[1,2]\n", "err:bad_request"),
            ("op not a string", d(op=5), "err:bad_request"),
            ("empty object", b"{}\n", "err:bad_request"),
            ("unknown op", d(op="nope\u00e9"), "err:unknown_op"),
            ("lookup", json.dumps(L).encode() + b"\n", "ok"),
            ("lookup proto TCP", json.dumps(dict(L, proto=lf["proto"].upper())).encode() + b"\n", "ok"),
            ("lookup proto 17", json.dumps(dict(L, proto=17)).encode() + b"\n", "ok"),
            ("lookup proto \"6\"", json.dumps(dict(L, proto="6")).encode() + b"\n", "ok"),
            ("lookup ports as strings", json.dumps(dict(L, sport=str(lf["sport"]), dport=str(lf["dport"]))).encode() + b"\n", "ok"),
            ("lookup v4-mapped", d(op="lookup", dst="::ffff:127.0.0.1", sport=40000, dport=9), "ok"),
            ("lookup at now", json.dumps(dict(L, at=now)).encode() + b"\n", "ok"),
            ("lookup at integer", json.dumps(dict(L, at=int(now) - 3)).encode() + b"\n", "ok"),
            ("lookup at negative", json.dumps(dict(L, at=-1)).encode() + b"\n", "err:invalid_argument"),
            ("lookup at string", json.dumps(dict(L, at="soon")).encode() + b"\n", "err:invalid_argument"),
            ("lookup sport 0", d(op="lookup", dst="127.0.0.1", sport=0, dport=80), "err:invalid_argument"),
            ("lookup sport 65536", d(op="lookup", dst="127.0.0.1", sport=65536, dport=80), "err:invalid_argument"),
            ("lookup bad address", d(op="lookup", dst="999.1.1.1", sport=1, dport=1), "err:invalid_argument"),
            ("lookup proto icmp", d(op="lookup", dst="::1", sport=1, dport=1, proto="icmp"), "err:invalid_argument"),
            ("lookup no dst", d(op="lookup", sport=1, dport=1), "err:invalid_argument"),
            ("recent", d(op="recent"), "ok"),
            ("recent limit 5000", d(op="recent", limit=5000), "ok"),
            ("recent limit 0", d(op="recent", limit=0), "err:invalid_argument"),
            ("recent limit 5001", d(op="recent", limit=5001), "err:invalid_argument"),
            ("recent limit 1e30", b'{"op":"recent","limit":1e30}\n', "err:invalid_argument"),
            ("recent limit 2.0", b'{"op":"recent","limit":2.0}\n', "err:invalid_argument"),
            ("recent filter null", d(op="recent", filter=None), "ok"),
            ("recent filter pid", d(op="recent", filter={"pid": self.live_pid}, limit=100), "ok"),
            ("recent filter comm", d(op="recent", filter={"comm": "python3"}, limit=100), "ok"),
            ("recent filter proto+dst", d(op="recent", filter={"proto": "UDP", "dst": "::1"}, limit=100), "ok"),
            ("recent filter dport", d(op="recent", filter={"dport": 9999}, limit=100), "ok"),
            ("recent filter unknown member", d(op="recent", filter={"exe": "/bin/sh"}), "err:invalid_argument"),
            ("recent filter pid -1", d(op="recent", filter={"pid": -1}), "err:invalid_argument"),
            ("recent filter pid 2^32", d(op="recent", filter={"pid": 4294967296}), "err:invalid_argument"),
            ("recent filter dport 0", d(op="recent", filter={"dport": 0}), "err:invalid_argument"),
            ("history", d(op="history"), "ok"),
            ("history asc 500", d(op="history", order="asc", limit=500), "ok"),
            ("history order bad", d(op="history", order="up"), "err:invalid_argument"),
            ("history filter null", d(op="history", filter=None), "err:invalid_argument"),
            ("history pid", d(op="history", filter={"pid": self.live_pid}, limit=200), "ok"),
            ("history pid 2^32+1", d(op="history", filter={"pid": 4294967297}), "err:invalid_argument"),
            ("history dport", d(op="history", filter={"dport": 9999}, limit=200), "ok"),
            ("history proto dst", d(op="history", filter={"proto": "17", "dst": "0:0::1"}, limit=200), "ok"),
            ("history comm", d(op="history", filter={"comm": "python3"}, limit=200), "ok"),
            ("history exe", d(op="history", filter={"exe": self.odd_exe}, limit=200), "ok"),
            ("history domain", d(op="history", filter={"domain": "h2.example.test"}, limit=200), "ok"),
            ("history container", d(op="history", filter={"container": self.container_ids[-1] if self.container_ids else "x"}), "ok"),
            ("history unit", d(op="history", filter={"unit": "ssh.service"}), "ok"),
            ("history since until", d(op="history", filter={"since": now - 10, "until": now - 2}, limit=1000), "ok"),
            ("history since negative", d(op="history", filter={"since": -5}), "err:invalid_argument"),
            ("history unknown member", d(op="history", filter={"sport": 5}), "err:invalid_argument"),
            ("stats", d(op="stats", id=1), "ok"),
            ("status", d(op="status", id=[1]), "ok"),
        ]
        return ops

    def raw_round(self, rnd):
        ops = self.raw_ops()
        r = self.raw()
        try:
            # a third of the ops per round, all of them every three rounds
            for name, payload, want in ops[rnd % 3::3] if rnd % 5 else ops:
                self.raw_op(r, name, payload, want)
            if rnd % 7 == 0:
                self.raw_line_too_long()
            if rnd % 3 == 0:
                self.raw_watch_filters()
        finally:
            r.close()

    def raw_op(self, r, name, payload, want):
        self.counts["protocol requests"] += 1
        try:
            ans = r.request(payload, what=name)
        except OSError as e:
            CK.fail("daemon answers every request", "%s: %s" % (name, e), self.q.log_tail())
            return
        if ans is None:
            CK.fail("daemon answers every request", "%s: no (strict) answer to %r" % (name, payload[:200]), self.q.log_tail())
            return
        CK.ok("daemon answers every request")
        if not isinstance(ans, dict):
            CK.fail("answer is an object", name, ans)
            return
        if want == "ok":
            CK.expect(ans.get("ok") is True, "protocol op answers ok: " + name, json.dumps(ans)[:500])
        elif want.startswith("err:"):
            code = (ans.get("error") or {}).get("code") if isinstance(ans.get("error"), dict) else None
            CK.expect(ans.get("ok") is False and code == want[4:], "protocol op gives error %s: %s" % (want[4:], name),
                      "request %r" % payload[:200], "answer " + json.dumps(ans)[:400])
        if b'"id":' in payload and ans.get("ok") is not None and not name.startswith("ping id"):
            CK.expect(list(ans)[-1] == "id", "answer carries the request's id last", name, json.dumps(ans)[:300])
        if name == "ping id string":
            CK.expect(ans.get("id") == "a\u00e9\u2603" and list(ans)[-1] == "id", "ping echoes the id last", json.dumps(ans))
        if name == "stats" and ans.get("ok"):
            self.check_stats(ans["stats"], "during the run")
        if name == "status" and ans.get("ok"):
            self.check_status_obj(ans["status"], "status op")
            qd = ans["status"].get("queryd", {})
            CK.expect(qd.get("pins_in_use") is True and qd.get("socket") == self.sock,
                      "status op: queryd uses the pins and names its socket", json.dumps(qd)[:400])
        if name.startswith("history") and ans.get("ok"):
            req = json.loads(payload)
            filt = req.get("filter") or {}
            rows = ans.get("flows", [])
            bad = [x for x in rows if not flow_matches(x, filt)]
            CK.expect(not bad, "history rows match the filter", "%s: %d of %d rows do not match: %s"
                      % (filt, len(bad), len(rows), json.dumps(bad[:1])[:600]))
            if req.get("order") == "asc":
                ts = [x.get("first_seen", 0) for x in rows]
                CK.expect(ts == sorted(ts), "history order asc is ascending", ts[:10])
            CK.expect(len(rows) <= req.get("limit", 50), "history returns at most limit rows", len(rows))
        if name.startswith("recent") and ans.get("ok"):
            filt = json.loads(payload).get("filter") or {}
            rows = ans.get("flows", [])
            bad = [x for x in rows if not flow_matches(x, filt)]
            CK.expect(not bad, "recent flows match the filter", "%s: %s" % (filt, json.dumps(bad[:1])[:600]))

    def raw_line_too_long(self):
        r = self.raw()
        try:
            r.sock.sendall(b'{"op":"ping"}\n' + b"{" + b" " * 70000)
            a = r.line()
            CK.expect(a is not None and b'"pong":true' in a, "ping before an overlong line is answered", a)
            a = r.line()
            o = strict_json(a, "socket answer (line_too_long)") if a else None
            CK.expect(isinstance(o, dict) and (o.get("error") or {}).get("code") == "line_too_long",
                      "an overlong line gets line_too_long", a)
            CK.expect(r.line() is None, "connection closed after line_too_long", "")
        except OSError as e:
            CK.fail("an overlong line gets line_too_long", str(e))
        finally:
            r.close()

    def raw_watch_filters(self):
        """A watch with a filter for ~1 s: every event matches it."""
        filt = random.choice([{"proto": "tcp", "dst": "::1"}, {"proto": "udp"}, {"pid": self.live_pid},
                              {"comm": "python3", "proto": "tcp"}])
        r = self.raw(timeout=2)
        try:
            a = r.request({"op": "watch", "filter": filt})
            CK.expect(isinstance(a, dict) and a.get("watching") is True, "watch answers watching", a)
            end = time.monotonic() + 1.0
            n = 0
            while time.monotonic() < end:
                try:
                    l = r.line()
                except socket.timeout:
                    break
                if l is None or r.partial:
                    if l is not None:
                        self.watch_dropped(self.q.epoch, l)
                    break
                ev = strict_json(l, "watch event line")
                if isinstance(ev, dict) and ev.get("event") == "flow":
                    n += 1
                    CK.expect(flow_matches(ev["flow"], filt), "watch events match the filter",
                              "%s: %s" % (filt, json.dumps(ev)[:500]))
            self.counts["watch events (filtered)"] += n
        except OSError as e:
            CK.fail("watch with a filter works", str(e))
        finally:
            r.close()

    def watcher(self):
        """An unfiltered watch all along: every event line strict; closed
        only when the daemon was killed (then reconnect)."""
        while not self.stop_ev.is_set():
            with self.q.using() as epoch:
                try:
                    r = self.raw(timeout=1)
                    a = r.request({"op": "watch"})
                    CK.expect(isinstance(a, dict) and a.get("watching") is True, "watch answers watching", a)
                except OSError as e:
                    CK.fail("watch connection opens", str(e))
                    self.sleep(1)
                    continue
            while not self.stop_ev.is_set():
                try:
                    l = r.line()
                except socket.timeout:
                    continue
                except OSError:
                    l = None
                if l is None or r.partial:
                    time.sleep(0.5)
                    if self.q.epoch == epoch and not self.q.died_unexpectedly() and not self.stop_ev.is_set():
                        self.watch_dropped(epoch, l)
                    break
                ev = strict_json(l, "watch event line")
                if isinstance(ev, dict):
                    self.counts["watch events"] += 1
                    CK.expect(ev.get("event") == "flow" and isinstance(ev.get("flow"), dict),
                              "watch event lines are flow events", l[:300])
            r.close()

    def watch_dropped(self, epoch, partial):
        """The daemon closed a watch while it runs: allowed only as a slow
        client (more than 1 MiB unread), which stats must count."""
        self.counts["watch connections dropped as slow"] += 1
        e2 = self.q.epoch
        try:
            r = self.raw()
            try:
                st = r.request({"op": "stats"})
            finally:
                r.close()
        except OSError:
            return   # the daemon is being restarted: nothing to judge
        if self.q.epoch != e2:
            return
        n = (st or {}).get("stats", {}).get("clients_dropped_slow", 0) if isinstance(st, dict) else 0
        if e2 == epoch:
            CK.expect(n >= 1, "a watch is closed only when the daemon goes away or drops it as slow (counted)",
                      "epoch %d, clients_dropped_slow %r; last bytes %r" % (epoch, n, (partial or b"")[-200:]))

    def cli_watchers(self):
        """connpidctl watch --json with a filter for a few seconds, then
        SIGINT; and one (table) watch across a kill -9: it exits 0."""
        while not self.stop_ev.is_set() and self.remaining() > 8:
            with self.q.using():
                args = [binary("CONNPIDCTL"), "--socket", self.sock, "--json", "watch", "--proto", "udp",
                        "--dst", "::1"]
                p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.sleep(3)
            p.send_signal(signal.SIGINT)
            try:
                out, err = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
                CK.fail("connpidctl watch stops on SIGINT", "")
            CK.expect(p.returncode in (0, 2, -signal.SIGINT, 130), "connpidctl watch exit code in its documented set",
                      "rc %r: %s" % (p.returncode, excerpt(err)))
            CK.expect(SANITIZER.search(err) is None, "no sanitizer report from connpidctl", excerpt(err, 1500))
            lines = out.splitlines()
            if lines:
                first = strict_json(lines[0], "connpidctl --json watch output")
                CK.expect(isinstance(first, dict) and first.get("watching") is True,
                          "connpidctl --json watch prints watching first", lines[0][:200])
            for l in lines[1:]:
                ev = strict_json(l, "connpidctl --json watch output")
                if isinstance(ev, dict):
                    self.counts["watch events (connpidctl)"] += 1
                    CK.expect(flow_matches(ev.get("flow", {}), {"proto": "udp", "dst": "::1"}),
                              "connpidctl watch events match the filters", l[:300])
            self.sleep(2)

    def table_watch_across_kill(self):
        """Started before the first kill -9: must exit 0 when the daemon dies."""
        with self.q.using() as epoch:
            p = subprocess.Popen([binary("CONNPIDCTL"), "--socket", self.sock, "watch"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # read its output as it comes (it must not block on a full pipe)
        buf = {"out": b"", "err": b""}

        def pump(name, f):
            for chunk in iter(lambda: f.read(65536), b""):
                if len(buf[name]) < (4 << 20):
                    buf[name] += chunk
        ths = [threading.Thread(target=pump, args=("out", p.stdout), daemon=True),
               threading.Thread(target=pump, args=("err", p.stderr), daemon=True)]
        for th in ths:
            th.start()
        while self.q.epoch == epoch and not self.stop_ev.is_set():
            self.sleep(0.2)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            CK.fail("connpidctl watch exits when the daemon is killed", "still running 10 s after the kill")
            return
        for th in ths:
            th.join(5)
        if self.stop_ev.is_set() and self.q.epoch == epoch:
            return
        CK.expect(p.returncode == 0, "connpidctl watch exits 0 when the daemon goes away",
                  "rc %r: %s" % (p.returncode, excerpt(buf["err"])))
        check_table(buf["out"], "connpidctl watch")

    def live_checks(self):
        """Flows held open by the live and odd workers, looked up while
        open: the right pid, and (odd) valid answers for odd names."""
        kinds = [["v4", "tcp", "127.0.0.1"], ["v4", "udp", "127.0.0.1"], ["v6", "tcp", "::1"],
                 ["v6", "udp", "::1"], ["v4", "tcp", "127.3.2.1"], ["v4", "udp", "127.44.0.9"]]
        i = 0
        while not self.stop_ev.is_set() and self.remaining() > 2:
            i += 1
            ans = harness.json_command(self.live, {"cmd": "open", "kinds": kinds}, 30)
            with self.live_lock:
                self.live_flow = dict(ans["flows"][0], pid=ans["pid"])
            self.counts["flows: live (held open)"] += len(ans["flows"])
            with self.q.using():
                self.lookup_live(ans["flows"], ans["pid"], "live")
            if i % 3 == 0:
                self.odd_round(i // 3, kinds)
            self.sleep(0.7)
            with self.live_lock:
                self.live_flow = None
            harness.json_command(self.live, {"cmd": "close"}, 30)

    def lookup_live(self, flows, pid, what, creator=None):
        r = self.raw()
        try:
            for f in flows:
                a = r.request({"op": "lookup", "dst": f["dst"], "sport": f["sport"], "dport": f["dport"],
                               "proto": f["proto"]}, what="lookup")
                ok = isinstance(a, dict) and a.get("found") and a["flow"].get("pid") == pid
                CK.expect(ok, "open flows are found with their pid (%s)" % what,
                          "%s want pid %d: %s" % (f, pid, json.dumps(a)[:600]))
                if ok:
                    fl = a["flow"]
                    CK.expect((fl.get("proto"), fl.get("sport"), fl.get("dport"), canon(fl.get("dst", "0.0.0.0")))
                              == (f["proto"], f["sport"], f["dport"], canon(f["dst"])),
                              "lookup answer has the flow's key", f, json.dumps(fl)[:300])
                    if creator:
                        c = fl.get("creator") or {}
                        CK.expect(c.get("pid") == creator and c.get("same_process") is False,
                                  "creator is the process that made the socket (%s)" % what,
                                  "want creator %d: %s" % (creator, json.dumps(fl.get("creator"))))
                self.counts["lookups of open flows"] += 1
            return a
        finally:
            r.close()

    def odd_round(self, k, kinds):
        comm = ODD_COMMS[k % len(ODD_COMMS)]
        a = harness.json_command(self.odd, {"cmd": "comm", "hex": comm.hex()}, 30)
        kernel_comm = bytes.fromhex(a["comm_hex"])
        ans = harness.json_command(self.odd, {"cmd": "open", "kinds": kinds[:4]}, 30)
        self.counts["flows: odd names"] += len(ans["flows"])
        with self.q.using():
            last = self.lookup_live(ans["flows"], self.odd_pid, "odd names")
            if isinstance(last, dict) and last.get("found"):
                fl = last["flow"]
                try:
                    ok_utf8 = kernel_comm.decode("utf-8")
                except UnicodeDecodeError:
                    ok_utf8 = None
                if ok_utf8 is not None:
                    CK.expect(fl.get("comm") == ok_utf8, "a valid UTF-8 comm comes back exactly",
                              "%r -> %r" % (kernel_comm, fl.get("comm")))
                else:
                    runs = [x for x in re.split(r"[\udc80-\udcff]+", kernel_comm.decode("utf-8", "surrogateescape"))
                            if len(x) >= 2]
                    CK.expect(isinstance(fl.get("comm"), str) and all(x in fl["comm"] for x in runs),
                              "the valid parts of an invalid UTF-8 comm survive",
                              "%r -> %r" % (kernel_comm, fl.get("comm")))
                cl = fl.get("cmdline")
                CK.expect(isinstance(cl, list) and cl[:3] == [self.odd_exe, WORK, "odd"],
                          "odd cmdline starts with the exact (valid) arguments",
                          json.dumps(cl)[:300] if isinstance(cl, list) else repr(cl))
                CK.expect(fl.get("exe") in (self.odd_exe, None), "odd exe path comes back exactly",
                          "%r vs %r" % (fl.get("exe"), self.odd_exe))
                CK.expect(isinstance(fl.get("cmdline"), list) and all(isinstance(x, str) for x in fl["cmdline"]),
                          "odd cmdline is an array of strings", json.dumps(fl.get("cmdline"))[:200])
            f = ans["flows"][0]
            key = [f["dst"], str(f["sport"]), str(f["dport"]), "--protocol", f["proto"]]
            self.ctl(["lookup"] + key, expect=(0,), what="connpidctl lookup of an odd-named process (table)")
            rc, out, _ = self.ctl(["--json", "lookup"] + key, expect=(0,))
            self.ctl(["recent", "--pid", str(self.odd_pid)], expect=(0,), what="connpidctl recent of an odd process (table)")
            self.ctl(["history", "--pid", str(self.odd_pid), "--limit", "5"], expect=(0,),
                     what="connpidctl history of an odd process (table)")
            self.ctl(["--json", "history", "--exe", self.odd_exe, "--limit", "5"])
            # forks and SCM_RIGHTS: owner is the child/receiver, creator the odd process
            for cmd in ("fork_connect", "scm_rights"):
                kind = kinds[(k + (cmd == "scm_rights")) % 4]
                fa = harness.json_command(self.odd, {"cmd": cmd, "kind": kind}, 30)
                self.counts["flows: fork/SCM_RIGHTS"] += 1
                self.lookup_live([fa["flow"]], fa["pid"], cmd, creator=fa["creator"])
        harness.json_command(self.odd, {"cmd": "close"}, 30)

    def docker_thread(self):
        if self.docker_skip:
            return
        n = 0
        while not self.stop_ev.is_set() and self.remaining() > 10 and n < 4:
            n += 1
            try:
                self.one_container(n)
            except Exception:
                CK.fail("a Docker container's flow is attributed to it", traceback.format_exc())
            self.sleep(max(1.0, SECONDS / 5))

    def one_container(self, n):
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.bind(("127.0.0.1", 0))
        lst.listen(4)
        lst.settimeout(30)
        port = lst.getsockname()[1]
        name = "cph-%d-%d" % (self.uniq, n)
        st, body = docker_api(self.docker_sock, "POST", "/v1.41/containers/create?name=" + name, body={
            "Image": IMAGE, "Cmd": ["sh", "-c", "sleep 30 | nc 127.0.0.1 %d" % port],
            "Labels": {"com.docker.compose.project": "cph"},
            "HostConfig": {"NetworkMode": "host"}})
        if st != 201:
            raise AssertionError("container create: %d %s" % (st, body[:300]))
        cid = json.loads(body)["Id"]
        self.container_ids.append(cid)
        st, body = docker_api(self.docker_sock, "POST", "/v1.41/containers/%s/start" % cid)
        if st not in (204, 304):
            raise AssertionError("container start: %d %s" % (st, body[:300]))
        self.counts["containers"] += 1
        try:
            conn, peer = lst.accept()
        finally:
            lst.close()
        try:
            deadline = time.monotonic() + 10
            seen = []
            while True:
                with self.q.using():
                    r = self.raw()
                    a = r.request({"op": "lookup", "dst": "127.0.0.1", "sport": peer[1], "dport": port},
                                  what="lookup")
                    r.close()
                fl = (a or {}).get("flow") or {}
                c = fl.get("container") or {}
                seen.append((fl.get("pid"), fl.get("comm"), c.get("id", "")[:12], c.get("docker"), c.get("name")))
                if c.get("id") == cid and c.get("docker") == "ok":
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(0.3)
            CK.expect(c.get("id") == cid and c.get("runtime") == "docker", "a Docker container's flow names the container",
                      "cid %s; answers (pid, comm, id, docker, name): %s" % (cid[:12], seen[-5:]),
                      json.dumps(a)[:800])
            CK.expect(c.get("docker") == "ok" and c.get("name") == name and c.get("image") == IMAGE,
                      "Docker names the container (name, image)", "want %s: %s" % (name, json.dumps(c)))
            CK.expect(fl.get("comm") == "nc", "a container's flow has the container process's comm", fl.get("comm"))
            with self.q.using():
                self.ctl(["lookup", "127.0.0.1", str(peer[1]), str(port)], expect=(0,),
                         what="connpidctl lookup of a container's flow")
                rc, out, _ = self.ctl(["--json", "history", "--container", cid], expect=(0,))
        finally:
            conn.close()
            docker_api(self.docker_sock, "DELETE", "/v1.41/containers/%s?force=1" % cid)

    # ----------------------------------------------------------------- the run

    def run(self):
        self.t0 = time.monotonic()
        wall0 = time.time()
        self.start_workers()
        self.thread("monitor", self.monitor)
        self.thread("watcher", self.watcher)
        self.thread("exerciser", self.exerciser)
        self.thread("live", self.live_checks)
        self.thread("cli-watch", self.cli_watchers)
        self.thread("table-watch", self.table_watch_across_kill)
        self.thread("docker", self.docker_thread)
        slow_reader = None
        while time.monotonic() < self.t0 + SECONDS:
            time.sleep(0.5)
            if slow_reader is None and len(self.kill_times) >= len(KILLS):
                # after the last kill: a watcher that never reads must be dropped
                slow_reader = self.raw()
                slow_reader.sock.sendall(b'{"op":"watch"}\n')
                slow_epoch = self.q.epoch
        log("churn time over; waiting for the workers")
        for name, (p, out) in self.work.items():
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                CK.fail("workers stop by themselves", name)
                p.kill()
        self.stop_ev.set()
        for th in self.threads:
            th.join(90)
            if th.is_alive():
                CK.fail("threads finish", th.name)
        churn_secs = time.monotonic() - self.t0
        log("churn phase took %.1f s" % churn_secs)
        self.collect()
        self.final_checks(wall0, slow_reader, slow_epoch if slow_reader else None)
        return churn_secs

    def collect(self):
        self.recs = {}
        for name, (p, out) in self.work.items():
            lines = read_lines(out)
            self.recs[name] = lines
            done = [x for x in lines if x.get("done")]
            CK.expect(p.returncode == 0 and done, "worker %s completes" % name,
                      "rc %r: %s" % (p.returncode, excerpt(file_bytes(os.path.join(self.tmp, "work-%s.log" % name)))))
            for x in lines:
                if x.get("kind") == "error":
                    CK.fail("workers make their flows without errors", name, x)
            if not done:
                continue
            d = done[0]
            if name == "execs":
                self.counts["execs"] += d["execs"]
                self.counts["short-lived forks"] += d["forks"]
            elif name == "dns":
                self.counts["DNS queries (getaddrinfo)"] += d["queries"]
                self.counts["flows: v4 udp (after DNS)"] += d["flows"]
            else:
                self.counts["flows: %s bulk" % name] += d["bulk"]
                self.counts["flows: %s samples (short-lived children)" % name] += d["samples"]
                self.counts["short-lived forks"] += d["samples"]

    def near_kill(self, t):
        # rows drained but not yet written (flushed every 100 ms) die with kill -9
        return any(tk - 1.0 <= t <= tk + 0.2 for tk, _ in self.kill_times)

    def final_checks(self, wall0, slow_reader, slow_epoch):
        with self.q.using():
            r = self.raw(timeout=60)
            try:
                self.check_samples(r)
                self.check_dns(r)
                st = r.request({"op": "stats"})
                if isinstance(st, dict) and st.get("ok"):
                    self.check_stats(st["stats"], "after the run", final=True)
                    if slow_reader is not None and self.q.epoch == slow_epoch:
                        CK.expect(st["stats"].get("clients_dropped_slow", 0) >= 1,
                                  "a watcher that never reads is dropped (clients_dropped_slow)",
                                  json.dumps({k: st["stats"].get(k) for k in ("clients", "clients_dropped_slow", "watchers")}))
                    self.final_stats = st["stats"]
                else:
                    CK.fail("stats answers after the run", st)
                st = r.request({"op": "status"})
                if isinstance(st, dict) and st.get("ok"):
                    self.check_status_obj(st["status"], "status op after the run")
            finally:
                r.close()
            for a in (["stats"], ["--json", "stats"], ["status"], ["--json", "status"], ["--json", "recent", "--limit", "5000"],
                      ["--json", "history", "--limit", "5000", "--since", "%.3f" % wall0]):
                self.ctl(a)
        if slow_reader:
            slow_reader.close()
        self.check_flat()

    def history_all(self, r, filt, order="desc"):
        """Every row matching filt: answers stop at 1 MiB with a cursor to go
        on. Returns (the last answer, the rows of all pages)."""
        rows, a = [], None
        req = {"op": "history", "filter": filt, "limit": 5000, "order": order}
        for _ in range(50):
            a = r.request(req, what="history")
            if not isinstance(a, dict):
                break
            rows += a.get("flows", [])
            if not a.get("truncated"):
                break
            CK.expect(bool(a.get("cursor")), "a truncated history answer carries a cursor", json.dumps(a)[:300])
            req = dict(req, cursor=a.get("cursor"))
        return a, rows

    def check_samples(self, r):
        """Every sample (a short-lived child's flow, own ports) is in the
        history with its child's pid; every 4th also by lookup at."""
        n = found = skipped = 0
        per = collections.Counter()
        for name, lines in self.recs.items():
            samples = [x for x in lines if x.get("kind") == "sample"]
            if not samples:
                continue
            # the worker listens and accepts its samples' connections
            worker = next((x.get("pid") for x in lines if x.get("kind") == "count"), None)
            # one query per worker: its samples go to their own port
            s0 = samples[0]
            filt = {"dport": s0["dport"], "proto": s0["proto"], "dst": s0["dst"]}
            a, rows = self.history_all(r, filt, order="asc")
            CK.expect(isinstance(a, dict) and a.get("ok"), "history of the samples' port answers", filt, json.dumps(a)[:300])
            byport = collections.defaultdict(list)
            for x in rows:
                byport[x.get("sport")].append(x)
            for s in samples:
                if self.near_kill(s["t1"]):
                    skipped += 1
                    continue
                n += 1
                hit = [x for x in byport.get(s["sport"], []) if x.get("pid") == s["pid"]]
                ok = CK.expect(bool(hit), "every sample flow is in the history with its pid (%s)" % name,
                               "sample %s; rows with that key: %s" % (s, json.dumps(byport.get(s["sport"]))[:500]))
                if ok:
                    found += 1
                    per[name] += 1
                if n % 4 == 0:
                    a = r.request({"op": "lookup", "dst": s["dst"], "sport": s["sport"], "dport": s["dport"],
                                   "proto": s["proto"], "at": s["t1"] + 0.5}, what="lookup at")
                    CK.expect(isinstance(a, dict) and a.get("found") and a["flow"].get("pid") == s["pid"],
                              "lookup at names the sample's pid (%s)" % name,
                              "sample %s: %s" % (s, json.dumps(a)[:500]))
                if n % 4 == 1 and s["proto"] == "tcp" and worker:
                    self.check_accepted(r, s, worker, name)
        log("samples: %d checked, %d attributed, %d skipped (near a kill -9); per kind %s"
            % (n, found, skipped, dict(per)))
        self.counts["samples checked"] += n
        for name in ("v4-tcp", "v4-udp", "v6-tcp", "v6-udp"):
            CK.expect(per[name] >= 100 or SECONDS < 60, "a few hundred samples per family/proto attributed",
                      "%s: %d" % (name, per[name]))

    def check_accepted(self, r, s, worker, name):
        """The server side of a sample: accepted by the worker (it drains
        its listeners every 32 flows), who also called listen()."""
        a = r.request({"op": "lookup", "direction": "inbound", "proto": "tcp", "src": s["dst"],
                       "sport": s["dport"], "dst": s["dst"], "dport": s["sport"], "at": s["t1"] + 2.0},
                      what="inbound lookup at")
        f = a.get("flow") if isinstance(a, dict) else None
        ok = CK.expect(isinstance(f, dict) and f.get("pid") == worker and f.get("direction") == "inbound"
                       and (f.get("listener") or {}).get("pid") == worker,
                       "an accepted sample names its acceptor and listener (%s)" % name,
                       "sample %s, worker %s: %s" % (s, worker, json.dumps(a)[:500]))
        if ok:
            self.counts["accepted samples attributed"] += 1

    def check_dns(self, r):
        recs = [x for x in self.recs.get("dns", []) if x.get("kind") == "dns"]
        if not recs:
            CK.fail("DNS worker made flows", excerpt(file_bytes(os.path.join(self.tmp, "work-dns.log"))))
            return
        names_of = collections.defaultdict(set)
        for n, a in DNS_NAMES:
            if a:
                names_of[a].add(n)
        pid = recs[0]["pid"]
        _, rows = self.history_all(r, {"pid": pid})
        byk = {(x.get("dst"), x.get("sport")): x for x in rows}
        for s in recs:
            if self.near_kill(s["t1"]):
                continue
            row = byk.get((s["dst"], s["sport"]))
            if CK.expect(row is not None, "flows after DNS are in the history with their pid",
                         "%s: %d rows of pid %d" % (s, len(rows), pid)):
                CK.expect((row.get("domain") or {}).get("name") in names_of[s["dst"]], "flows after DNS carry the name asked (history)",
                          "%s asked %s -> %s: domain %r (%.1f s after the nearest kill -9 restart)"
                          % (s["dst"], s["name"], sorted(names_of[s["dst"]]), row.get("domain"),
                             min((s["t1"] - tr for _, tr in self.kill_times), key=abs, default=float("nan"))),
                          json.dumps(row)[:400])
        a = r.request({"op": "history", "filter": {"domain": "h5.example.test"}, "limit": 100}, what="history")
        CK.expect(isinstance(a, dict) and a.get("ok") and len(a.get("flows", [])) >= 1,
                  "history --domain finds flows of that name", json.dumps(a)[:300])

    def check_stats(self, s, when, final=False):
        for path, v in walk_numbers(s):
            if v < 0:
                CK.fail("stats: no negative counters", "%s %s = %r" % (when, path, v))
        k = s.get("kernel", {})
        pairs = [("lookups_found", "lookups"), ("request_errors", "requests"), ("clients", "clients_total"),
                 ("watchers", "clients"), ("index_flows", "index_capacity")]
        for a, b in pairs:
            CK.expect(s.get(a, 0) <= s.get(b, 0), "stats: %s <= %s" % (a, b), "%s: %s" % (when, {a: s.get(a), b: s.get(b)}))
        CK.expect(s.get("index_capacity") == MAX_FLOWS, "stats: index_capacity is --max-flows", s.get("index_capacity"))
        for m in ("map_v4_fill_percent", "map_v6_fill_percent"):
            CK.expect(0 <= s.get(m, 0) <= 100, "stats: map fill within 0-100", "%s = %r" % (m, s.get(m)))
        CK.expect(s.get("loaded") is True and k, "stats: loaded, with kernel counters", when, json.dumps(s)[:300])
        if k:
            CK.expect(s.get("events_received", 0) <= k.get("events", 0) + 100,
                      "stats: events_received <= kernel events", "%s: %s vs %s" % (when, s.get("events_received"), k.get("events")))
            flows = k.get("flows_v4", 0) + k.get("flows_v6", 0) + k.get("accepts", 0)
            ev = k.get("events", 0) + k.get("ringbuf_drops", 0)
            if final:
                CK.expect(abs(flows - ev) <= 200, "stats: kernel flows_v4 + flows_v6 + accepts = events + ringbuf_drops",
                          "%s: flows %d, events %d + drops %d" % (when, flows, k.get("events", 0), k.get("ringbuf_drops", 0)))
        st = s.get("store", {})
        CK.expect(st.get("enabled") is True, "stats: the history store is enabled", json.dumps(st))
        if st.get("enabled"):
            CK.expect(st.get("rows_written", 0) <= st.get("rows_queued", 0), "stats: store rows_written <= rows_queued",
                      json.dumps(st))
            CK.expect(st.get("write_errors", 0) == 0 and st.get("rows_dropped", 0) == 0,
                      "stats: no store write errors or dropped rows", json.dumps(st))
        if final and k:
            made = sum(v for c, v in self.counts.items() if c.startswith("flows: "))
            seen = k.get("flows_v4", 0) + k.get("flows_v6", 0) + k.get("repeats", 0)
            CK.expect(seen >= made, "stats: kernel flows + repeats >= the flows the churn made",
                      "kernel %d (v4 %d, v6 %d, repeats %d) < made %d" % (seen, k.get("flows_v4", 0), k.get("flows_v6", 0),
                                                                         k.get("repeats", 0), made))
            CK.expect(k.get("getaddrinfo_calls", 0) + k.get("dns_drops", 0) >= 1 and s.get("dns_responses", 0) >= 1,
                      "stats: DNS responses and getaddrinfo calls are counted",
                      json.dumps({x: k.get(x) for x in ("dns_packets", "dns_drops", "getaddrinfo_calls")}),
                      json.dumps({x: s.get(x) for x in ("dns_responses", "dns_getaddrinfo", "dns_malformed")}))
            log("kernel counters: %s" % json.dumps(k))
            log("daemon counters: %s" % json.dumps({x: s.get(x) for x in (
                "events_received", "lookups", "lookups_found", "requests", "request_errors", "clients_total",
                "clients_dropped_slow", "index_flows", "index_evictions", "processes", "proc_reads",
                "dns_responses", "dns_malformed", "dns_truncated", "dns_getaddrinfo")}))
            log("store: %s" % json.dumps(st))

    def check_flat(self):
        ep = self.q.epoch
        mine = [x for x in self.samples_rss if x[0] == ep]
        after = [x for x in mine if x[1] >= WARMUP]
        if len(after) < 5:
            CK.fail("RSS and fds sampled after warmup (last instance)", "%d samples of epoch %d" % (len(after), ep))
            return
        s = rss_fds(self.q.proc.pid)
        last = (ep, time.monotonic() - self.q.started, s[0], s[1]) if s else after[-1]
        first = after[0]
        log("queryd (last instance, %.0f s): RSS %.1f MiB at %.0f s -> %.1f MiB, max %.1f MiB; fds %d -> %d (max %d)"
            % (last[1], first[2] / 2**20, first[1], last[2] / 2**20, max(x[2] for x in after) / 2**20,
               first[3], last[3], max(x[3] for x in after)))
        CK.expect(last[2] <= first[2] + RSS_MARGIN, "queryd RSS flat (final <= first after warmup + 64 MiB)",
                  "RSS %d -> %d bytes; samples %s" % (first[2], last[2], [(round(x[1]), x[2] >> 20) for x in after[::5]]))
        CK.expect(last[3] <= first[3] + FD_MARGIN, "queryd fd count flat (final <= first after warmup + 50)",
                  "fds %d -> %d; samples %s" % (first[3], last[3], [(round(x[1]), x[3]) for x in after[::5]]))

    def stop_daemon_checks(self):
        rc = self.q.stop()
        CK.expect(rc == 0, "connpid-queryd exits 0 on SIGTERM", "rc %r" % rc, self.q.log_tail())
        for p in self.q.logs:
            b = file_bytes(p)
            m = SANITIZER.search(b)
            CK.expect(m is None, "no ASan/UBSan/LSan report in queryd's log", p,
                      excerpt(b[max(0, m.start() - 200):m.start() + 3000]) if m else "")
        r = self.loader("--unload")
        CK.expect(r.returncode == 0 and not os.path.exists(self.pin_dir), "connpid-loader --unload removes the pins",
                  "rc %d: %s" % (r.returncode, excerpt(r.stderr)))
        self.loaded = False

    # ----------------------------------------------------------------- cleanup

    def our_processes(self):
        me = os.getpid()
        pids = set()
        cg = self.root + self.docker_cg if self.root else None
        if cg and os.path.isdir(cg):
            for d, _, _ in os.walk(cg):
                try:
                    with open(os.path.join(d, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
        for e in os.listdir("/proc"):
            if e.isdigit() and int(e) != me and self.tmp:
                cl = cmdline_of(int(e))
                if self.tmp + "/" in cl or (" " + self.docker_ns + " ") in (" " + cl + " ") \
                        or ("--containerd-namespace=" + self.docker_ns) in cl:
                    pids.add(int(e))
        pids.discard(me)
        return sorted(p for p in pids if pid_alive(p))

    def cleanup(self):
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        self.stop_ev.set()
        problems = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:
                problems.append("%s: %s" % (what, e))

        def containers():
            if self.dockerd and self.dockerd.poll() is None:
                for cid in self.container_ids:
                    try:
                        docker_api(self.docker_sock, "DELETE", "/v1.41/containers/%s?force=1" % cid, timeout=30)
                    except OSError:
                        pass

        def dockerd():
            if self.dockerd and self.dockerd.poll() is None:
                self.dockerd.terminate()
                try:
                    self.dockerd.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.dockerd.kill()
                    self.dockerd.wait(timeout=10)

        def procs():
            if self.q and self.q.proc and self.q.proc.poll() is None:
                self.q.proc.kill()
                self.q.proc.wait(timeout=10)
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

        def leftovers():
            for _ in range(3):
                pids = self.our_processes()
                if not pids:
                    return
                log("cleanup: killing leftovers %s" % ["%d:%s" % (p, cmdline_of(p)[:60]) for p in pids])
                for p in pids:
                    try:
                        os.kill(p, signal.SIGKILL)
                    except OSError:
                        pass
                time.sleep(0.5)
            if self.our_processes():
                raise RuntimeError("processes left: %s" % self.our_processes())

        def unmount():
            if not self.tmp:
                return
            libc = ctypes.CDLL(None, use_errno=True)
            for _ in range(3):
                mps = [mp for mp, _ in mounts() if mp == self.tmp or mp.startswith(self.tmp + "/")]
                if not mps:
                    return
                for mp in reversed(mps):
                    libc.umount2(mp.encode(), 2)
            raise RuntimeError("mounts left under %s" % self.tmp)

        def netns():
            if self.netns_made:
                subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, timeout=30)
                if os.path.exists("/run/netns/" + self.netns):
                    raise RuntimeError("netns %s left" % self.netns)
            shutil.rmtree(os.path.join("/etc/netns", self.netns), ignore_errors=True)
            try:
                os.rmdir("/etc/netns")   # only if empty, as before
            except OSError:
                pass

        def unload():
            if self.loaded or os.path.isdir(self.pin_dir):
                r = subprocess.run([binary("CONNPID_LOADER"), "--unload", "--pin-dir", self.pin_dir],
                                   capture_output=True, timeout=60)
                if r.returncode != 0 or os.path.isdir(self.pin_dir):
                    raise RuntimeError("unload failed: %s" % excerpt(r.stderr))

        def blocker():
            if os.path.isdir(self.blk_pin):
                r = subprocess.run([binary("CONNPID_LOADER"), "--unload", "--pin-dir", self.blk_pin],
                                   capture_output=True, timeout=60)
                if r.returncode != 0 or os.path.isdir(self.blk_pin):
                    raise RuntimeError("unload of the blocker pins failed: %s" % excerpt(r.stderr))
            if os.path.isdir(self.blk_cg):
                os.rmdir(self.blk_cg)

        def cgroups():
            for _ in range(100):
                left = []
                for mp, fs in mounts():
                    if fs not in ("cgroup", "cgroup2") or not os.path.isdir(mp + self.docker_cg):
                        continue
                    for d, _, _ in os.walk(mp + self.docker_cg, topdown=False):
                        try:
                            os.rmdir(d)
                        except OSError:
                            left.append(d)
                if not left:
                    return
                time.sleep(0.05)
            raise RuntimeError("cgroup dirs left: %s" % left)

        def host_paths():
            for p in self.made_docker_paths:
                if os.path.isfile(p) or os.path.islink(p):
                    os.unlink(p)
            for p in self.made_docker_paths:
                if os.path.isdir(p):
                    try:
                        os.rmdir(p)
                    except OSError as e:
                        log("cleanup: leaving %s: %s" % (p, e))

        def tmp():
            if self.tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)
                if os.path.exists(self.tmp):
                    raise RuntimeError("could not remove " + self.tmp)

        def reap():
            while True:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    return

        step("containers", containers)
        step("dockerd", dockerd)
        step("processes", procs)
        step("leftovers", leftovers)
        step("unmount", unmount)
        step("netns", netns)
        step("unload", unload)
        step("blocker", blocker)
        step("cgroups", cgroups)
        step("host paths", host_paths)
        step("temp dir", tmp)
        step("reap", reap)
        for p in problems:
            log("cleanup problem:", p)
        return problems


def main():
    def on_signal(signo, frame):
        raise Interrupted("signal %d" % signo)

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    t = HostTest()
    rc = 0
    start = time.monotonic()
    churn = None
    try:
        t.preflight()
        t.setup()
        churn = t.run()
        t.stop_daemon_checks()
    except Skip as e:
        print("SKIP:", e, flush=True)
        rc = SKIP
    except Interrupted as e:
        CK.frozen = True
        print("FAIL: interrupted (%s), cleaning up" % e, flush=True)
        rc = 1
    except BaseException:
        CK.fail("the suite runs to its end", traceback.format_exc())
        rc = 1
    finally:
        t.stop_ev.set()
        frozen, CK.frozen = CK.frozen, True
        problems = t.cleanup() if t.tmp else []
        CK.frozen = frozen
    if rc == SKIP:
        sys.exit(rc)
    CK.expect(not problems, "cleanup leaves nothing behind", problems)
    print("\n==== what the host suite made ====", flush=True)
    for k in sorted(t.counts):
        print("  %-48s %d" % (k, t.counts[k]), flush=True)
    if t.docker_skip:
        print("  Docker part SKIPPED (not counted as passed): %s" % t.docker_skip, flush=True)
    print("  churn phase %.1f s (CONNPID_HOST_SECONDS=%.0f), whole suite %.1f s"
          % (churn or 0, SECONDS, time.monotonic() - start), flush=True)
    bad = CK.report()
    npass = sum(1 for n in CK.order if not CK.failed[n])
    print("\n%d passed, %d failed" % (npass, len(bad)), flush=True)
    sys.exit(1 if bad or rc else 0)


if __name__ == "__main__":
    main()

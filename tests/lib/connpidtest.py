# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness for connpid's integration tests (Python standard library only).

Each test runs against the real kernel, in its own child cgroup and its own
pin dir, so tests can run in parallel:

    with connpidtest.TestEnv() as env:
        env.load()                       # connpid-loader --cgroup C --pin-dir D
        with listeners.tcp4() as port:
            w = env.spawn("tcp4", "127.0.0.1", port)
            ...                          # w.info: pid, sport, ...
        maps = env.maps()                # raw bpf(2) on the pins

Leaving the block (also on an exception) unloads, kills what is left in the
cgroup, removes the cgroup and the pin dir.

Exit 77 means skipped for meson (not root, no BTF, no cgroup2).
"""
import contextlib
import ctypes
import errno
import functools
import json
import os
import secrets
import select
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
# One harness: reporting, preflight and the case runner live in harness.py.
import harness  # noqa: E402
from harness import (BPFFS_ROOT, BTF_PATH, SKIP, WORKLOAD, Skip, TestFailure,  # noqa: E402,F401
                     binary, case, cgroup2_mount, check, check_eq, log, proc_start_ticks,
                     unescape_mountinfo as _unescape_mountinfo)

BPF_FS_MAGIC = 0xCAFE4A11
CLONE_NEWNET = 0x40000000

# Mirrors of common/connpid.h (and of loader/pindir.c for MAP_PINS):
# tests/unit/test_constants.py checks each against the C source.
ABI_VERSION = 4
PROTO_TCP = 6
PROTO_UDP = 17
AF_INET = 2
AF_INET6 = 10
COMM_LEN = 16
EXE_LEN = 256
SRC_SOCKOPS_CONNECT = 1
SRC_SENDMSG = 2
SRC_SKB_EGRESS = 3
SRC_SEEDED = 4
SRC_ACCEPT = 5
EVENT_FLAG_OWNER_CHANGED = 0x1
EVENT_FLAG_INBOUND = 0x2
META_F_IPV6_BLOCKER = 0x1
META_F_BLOCK_LOOPBACK6 = 0x2
META_F_INBOUND = 0x4
# enum connpid_stat, in slot order; the names queryd's `stats` uses
STAT_NAMES = ("events", "ringbuf_drops", "map_update_errors", "flows_v4", "flows_v6",
              "repeats", "blocked_v6", "dns_packets", "dns_drops", "gai_calls", "accepts")
(STAT_EVENTS, STAT_RINGBUF_DROPS, STAT_MAP_UPDATE_ERRORS, STAT_FLOWS_V4,
 STAT_FLOWS_V6, STAT_REPEATS, STAT_BLOCKED_V6, STAT_DNS_PACKETS, STAT_DNS_DROPS,
 STAT_GAI_CALLS, STAT_ACCEPTS) = range(len(STAT_NAMES))
STAT_MAX = len(STAT_NAMES)
# struct conn_key_v4 / conn_key_v6: ip network order, ports host (LE) order
KEY_V4_FORMAT = "<4sHHB3x"
KEY_V6_FORMAT = "<16sHHB3x"

MAP_PINS = ("conn_to_pid_v4", "conn_to_pid_v6", "config", "stats", "events",
            "meta", "sock_creators", "exec_info", "scope_cgroup", "dns_events",
            "gai_calls", "listen_owners")
TRACKER_CGROUP_PROGS = ("connpid_sockops", "connpid_sendmsg4", "connpid_sendmsg6",
                        "connpid_sock_create")
DNS_CGROUP_PROGS = ("connpid_dns_ingress",)
# attached globally (tp_btf, uprobes), scoped to the cgroup inside the program
# (connpid_udp_send: tp_btf/sock_send_length, connected UDP; scoped by the
# socket's cgroup)
TRACKER_GLOBAL_PROGS = ("connpid_udp_send", "connpid_exec", "connpid_fork", "connpid_gai_enter",
                        "connpid_gai_exit")
TRACKER_PROGS = TRACKER_CGROUP_PROGS + DNS_CGROUP_PROGS + TRACKER_GLOBAL_PROGS
BLOCKER_PROGS = ("connpid_block_connect6", "connpid_block_sendmsg6")
ALL_PROGS = TRACKER_PROGS + BLOCKER_PROGS
# only with connpid-loader --inbound: tracepoints, global, scoped in the program
INBOUND_PROGS = ("connpid_accept", "connpid_accept4")
ALL_PROGS_INBOUND = ALL_PROGS + INBOUND_PROGS
CGROUP_PROGS = TRACKER_CGROUP_PROGS + DNS_CGROUP_PROGS + BLOCKER_PROGS

# bpftool's names of the attach types each program uses
PROG_ATTACH_TYPE = {
    "connpid_sockops": "cgroup_sock_ops",
    "connpid_sendmsg4": "cgroup_udp4_sendmsg",
    "connpid_sendmsg6": "cgroup_udp6_sendmsg",
    "connpid_block_connect6": "cgroup_inet6_connect",
    "connpid_block_sendmsg6": "cgroup_udp6_sendmsg",
    "connpid_sock_create": "cgroup_inet_sock_create",
    "connpid_dns_ingress": "cgroup_inet_ingress",
}


# ---------------------------------------------------------------- reporting

def skip(reason):
    """Print why and exit 77, which meson counts as skipped."""
    print("SKIP: " + reason, flush=True)
    sys.exit(SKIP)


def require_loader():
    """The preflight of the tests that need the loader only."""
    harness.require_environment("loads BPF programs and creates cgroups", ("CONNPID_LOADER",))


# The @case functions of a connpid test with the loader-only preflight:
# run_cases() or run_cases(shared=f), f() a context manager entered once
# whose value each case gets; exit 0, 1 or 77.
run_cases = functools.partial(harness.run_cases, None, require=require_loader)


def clk_tck():
    return os.sysconf("SC_CLK_TCK")


def netns_ino(pid="self"):
    return os.stat("/proc/%s/ns/net" % pid).st_ino


def is_bpffs(path):
    try:
        out = subprocess.run(["stat", "-f", "-c", "%t", path],
                             capture_output=True, text=True, check=True)
    except (subprocess.CalledProcessError, FileNotFoundError):
        return False
    return int(out.stdout.strip(), 16) == BPF_FS_MAGIC


def run(cmd, env=None, timeout=60, input=None):
    """Run a command, capture text output, never raise on exit status."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    log("+ " + " ".join(cmd) +
        ("  [%s]" % " ".join("%s=%s" % kv for kv in env.items()) if env else ""))
    p = subprocess.run(cmd, env=full_env, capture_output=True, text=True,
                       timeout=timeout, input=input)
    if p.stdout.strip():
        log("  stdout: " + p.stdout.strip().replace("\n", "\n          "))
    if p.stderr.strip():
        log("  stderr: " + p.stderr.strip().replace("\n", "\n          "))
    log("  exit %d" % p.returncode)
    return p


# ---------------------------------------------------------------- bpf(2)

class Bpf:
    """The few bpf(2) commands the tests need, through a raw syscall."""
    NR_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280,
              "loongarch64": 280, "s390x": 351, "ppc64le": 361}
    MAP_LOOKUP_ELEM = 1
    MAP_GET_NEXT_KEY = 4
    OBJ_GET = 7
    OBJ_GET_INFO_BY_FD = 15
    ATTR_SIZE = 128

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.syscall.restype = ctypes.c_long
        machine = os.uname().machine
        if machine not in self.NR_BPF:
            skip("bpf(2) syscall number unknown for %s" % machine)
        self.nr = self.NR_BPF[machine]

    def _call(self, cmd, attr):
        r = self.libc.syscall(ctypes.c_long(self.nr), ctypes.c_int(cmd),
                              ctypes.byref(attr), ctypes.c_uint(len(attr)))
        if r < 0:
            e = ctypes.get_errno()
            raise OSError(e, "bpf(cmd=%d): %s" % (cmd, os.strerror(e)))
        return r

    def obj_get(self, path):
        p = ctypes.create_string_buffer(os.fsencode(path))
        attr = ctypes.create_string_buffer(self.ATTR_SIZE)
        struct.pack_into("=QII", attr, 0, ctypes.addressof(p), 0, 0)
        return self._call(self.OBJ_GET, attr)

    def lookup(self, fd, key, value_size):
        """Value bytes, or None when the key is absent (ENOENT)."""
        k = ctypes.create_string_buffer(bytes(key), len(key))
        v = ctypes.create_string_buffer(value_size)
        attr = ctypes.create_string_buffer(self.ATTR_SIZE)
        struct.pack_into("=IIQQQ", attr, 0, fd, 0, ctypes.addressof(k),
                         ctypes.addressof(v), 0)
        try:
            self._call(self.MAP_LOOKUP_ELEM, attr)
        except OSError as e:
            if e.errno == errno.ENOENT:
                return None
            raise
        return v.raw

    def keys(self, fd, key_size):
        """Every key of a hash map, as bytes, via BPF_MAP_GET_NEXT_KEY."""
        out = []
        prev = None
        nxt = ctypes.create_string_buffer(key_size)
        while True:
            attr = ctypes.create_string_buffer(self.ATTR_SIZE)
            kaddr = 0
            if prev is not None:
                kbuf = ctypes.create_string_buffer(prev, key_size)
                kaddr = ctypes.addressof(kbuf)
            struct.pack_into("=IIQQ", attr, 0, fd, 0, kaddr,
                             ctypes.addressof(nxt))
            try:
                self._call(self.MAP_GET_NEXT_KEY, attr)
            except OSError as e:
                if e.errno == errno.ENOENT:
                    return out
                raise
            prev = nxt.raw
            out.append(prev)
            if len(out) > 10_000_000:
                raise TestFailure("map key walk does not end")

    def map_info(self, fd):
        """(type, id, key_size, value_size, max_entries) of a map fd."""
        info = ctypes.create_string_buffer(256)
        attr = ctypes.create_string_buffer(self.ATTR_SIZE)
        struct.pack_into("=IIQ", attr, 0, fd, len(info), ctypes.addressof(info))
        self._call(self.OBJ_GET_INFO_BY_FD, attr)
        return struct.unpack_from("=IIIII", info, 0)


# struct connpid_event, native layout (x86-64/arm64: 232 bytes)
EVENT_FORMAT = "=QQQQQIIII16s16sHHBBBBI16sII4xQ16s4I64s"
EVENT_FIELDS = ("ts_ns", "cgroup_id", "socket_cookie", "start_boottime_ns", "netns_ino",
                "pid", "tid", "uid", "gid", "src_ip", "dst_ip", "src_port", "dst_port",
                "family", "protocol", "source", "flags", "prev_pid", "comm",
                "creator_pid", "pad0", "creator_start_boottime_ns", "creator_comm",
                "anc0", "anc1", "anc2", "anc3", "ancestor_comm")


def decode_event(raw):
    """A struct connpid_event as a dict (addresses as strings, comms str)."""
    e = dict(zip(EVENT_FIELDS, struct.unpack_from(EVENT_FORMAT, raw)))
    fam = socket.AF_INET if e["family"] == AF_INET else socket.AF_INET6
    n = 4 if fam == socket.AF_INET else 16
    for k in ("src_ip", "dst_ip"):
        e[k] = socket.inet_ntop(fam, e[k][:n])
    for k in ("comm", "creator_comm"):
        e[k] = e[k].split(b"\0", 1)[0].decode("utf-8", "replace")
    return e


def read_ring(pin_dir, limit=100000):
    """Drain the pinned `events` ring buffer without a helper binary: the
    kernel's ring layout (consumer page rw at offset 0; producer page, then
    the data pages mapped twice, ro after it). Records are 8-byte headers
    (len with BUSY 1<<31 / DISCARD 1<<30 bits) rounded up to 8 bytes. A
    list of decoded events; stops at a record still being written."""
    import mmap
    bpf = Bpf()
    fd = bpf.obj_get(os.path.join(pin_dir, "events"))
    try:
        size = bpf.map_info(fd)[4]
        page = mmap.PAGESIZE
        cons = mmap.mmap(fd, page, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        prod = mmap.mmap(fd, page + 2 * size, mmap.MAP_SHARED, mmap.PROT_READ, offset=page)
    finally:
        os.close(fd)
    out = []
    try:
        pos = struct.unpack_from("<Q", cons, 0)[0]
        end = struct.unpack_from("<Q", prod, 0)[0]
        while pos < end and len(out) < limit:
            off = page + (pos & (size - 1))
            hdr = struct.unpack_from("<I", prod, off)[0]
            if hdr & (1 << 31):
                break
            length = hdr & ~((1 << 31) | (1 << 30))
            if not hdr & (1 << 30) and length == struct.calcsize(EVENT_FORMAT):
                out.append(decode_event(prod[off + 8:off + 8 + length]))
            pos += (length + 8 + 7) & ~7
        struct.pack_into("<Q", cons, 0, pos)
    finally:
        cons.close()
        prod.close()
    return out


def possible_cpus():
    with open("/sys/devices/system/cpu/possible") as f:
        spec = f.read().strip()
    n = 0
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        n = max(n, int(hi or lo) + 1)
    return n


def key_v4(dst_ip, sport, dport, proto):
    """Byte-exact conn_key_v4: ip network order, ports host (LE) order."""
    return struct.pack(KEY_V4_FORMAT, socket.inet_pton(socket.AF_INET, dst_ip),
                       sport, dport, proto)


def key_v6(dst_ip, sport, dport, proto):
    return struct.pack(KEY_V6_FORMAT, socket.inet_pton(socket.AF_INET6, dst_ip),
                       sport, dport, proto)


def decode_key(raw):
    if len(raw) == struct.calcsize(KEY_V4_FORMAT):
        ip, sp, dp, proto = struct.unpack(KEY_V4_FORMAT, raw)
        return (socket.inet_ntop(socket.AF_INET, ip), sp, dp, proto)
    ip, sp, dp, proto = struct.unpack(KEY_V6_FORMAT, raw)
    return (socket.inet_ntop(socket.AF_INET6, ip), sp, dp, proto)


class PinnedMaps:
    """The pinned maps of one pin dir, read with plain bpf syscalls."""

    def __init__(self, pin_dir):
        self.bpf = Bpf()
        self.pin_dir = pin_dir
        self.fds = {}
        for name in ("conn_to_pid_v4", "conn_to_pid_v6", "stats", "config",
                     "meta"):
            self.fds[name] = self.bpf.obj_get(os.path.join(pin_dir, name))

    def close(self):
        for fd in self.fds.values():
            os.close(fd)
        self.fds = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def lookup_pid(self, key):
        name = "conn_to_pid_v4" if len(key) == 12 else "conn_to_pid_v6"
        v = self.bpf.lookup(self.fds[name], key, 4)
        return None if v is None else struct.unpack("<I", v)[0]

    def keys(self, family):
        if family == 4:
            return self.bpf.keys(self.fds["conn_to_pid_v4"], 12)
        return self.bpf.keys(self.fds["conn_to_pid_v6"], 24)

    def stat(self, slot):
        ncpu = possible_cpus()
        raw = self.bpf.lookup(self.fds["stats"], struct.pack("<I", slot),
                              8 * ncpu)
        check(raw is not None, "stats slot %d missing" % slot)
        return sum(struct.unpack("<%dQ" % ncpu, raw))

    def stats(self):
        return [self.stat(i) for i in range(STAT_MAX)]

    def config(self):
        raw = self.bpf.lookup(self.fds["config"], struct.pack("<I", 0), 4)
        return struct.unpack("<I", raw)[0]


# ---------------------------------------------------------------- listeners

@contextlib.contextmanager
def listener(kind, host):
    """A TCP listener or UDP receiver in the test process (outside the test
    cgroup); yields its port. kind: 'tcp' or 'udp'."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    typ = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(fam, typ)
    try:
        s.bind((host, 0))
        if typ == socket.SOCK_STREAM:
            s.listen(64)
        yield s.getsockname()[1]
    finally:
        s.close()


# ---------------------------------------------------------------- workloads

class Workload:
    """A workload.py child living in the test cgroup."""

    def __init__(self, proc, action):
        self.proc = proc
        self.action = action
        self.info = None

    @property
    def pid(self):
        return self.proc.pid

    def readline(self, timeout=10):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TestFailure("workload %s (pid %d) said nothing for %ss"
                                  % (self.action, self.pid, timeout))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                line = fd.readline()
                if not line:
                    err = self.proc.stderr.read() if self.proc.poll() is not None else ""
                    raise TestFailure("workload %s (pid %d) exited (%s): %s"
                                      % (self.action, self.pid,
                                         self.proc.poll(), err))
                return json.loads(line)

    def send(self):
        """Send once more on the same socket; return the answer dict."""
        self.proc.stdin.write("send\n")
        self.proc.stdin.flush()
        return self.readline()

    def close(self, timeout=5):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            if f:
                f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# ---------------------------------------------------------------- the env

class TestEnv:
    """A private child cgroup and pin dir; see the module docstring."""

    def __init__(self, tag=None):
        self.loader = binary("CONNPID_LOADER")
        self.cg_root = cgroup2_mount()
        if not self.cg_root:
            skip("no cgroup2 mount")
        self.name = "connpid-test-%d-%s%s" % (os.getpid(), secrets.token_hex(4),
                                             "-" + tag if tag else "")
        self.cgroup = os.path.join(self.cg_root, self.name)
        self.pin_dir = os.path.join(BPFFS_ROOT, self.name)
        self.workloads = []
        self.cgroup_id = None

    # -- lifecycle
    def __enter__(self):
        os.mkdir(self.cgroup, 0o755)
        self.cgroup_id = os.stat(self.cgroup).st_ino
        log("env: cgroup %s (id %d), pin dir %s"
            % (self.cgroup, self.cgroup_id, self.pin_dir))
        return self

    def __exit__(self, exc_type, exc, tb):
        self.cleanup()
        return False

    def cleanup(self):
        errors = []

        def step(what, fn):
            try:
                fn()
            except Exception as e:  # keep going: clean up everything
                errors.append("%s: %s" % (what, e))

        for w in self.workloads:
            step("close workload %d" % w.pid, w.close)
        if os.path.exists(self.pin_dir):
            step("unload", lambda: run([self.loader, "--unload", "--pin-dir",
                                        self.pin_dir], timeout=30))
        step("kill cgroup", self._kill_cgroup)
        step("rmdir cgroup", self._rmdir_cgroup)
        step("remove pin dir", lambda: remove_pin_tree(self.pin_dir))
        for e in errors:
            log("cleanup: " + e)

    def _kill_cgroup(self):
        procs = os.path.join(self.cgroup, "cgroup.procs")
        if not os.path.exists(procs):
            return
        deadline = time.monotonic() + 10
        while True:
            with open(procs) as f:
                pids = [int(x) for x in f.read().split()]
            if not pids:
                return
            if time.monotonic() > deadline:
                raise TestFailure("processes left in %s: %s" % (self.cgroup, pids))
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def _rmdir_cgroup(self):
        deadline = time.monotonic() + 10
        while os.path.isdir(self.cgroup):
            try:
                os.rmdir(self.cgroup)
            except OSError as e:
                if e.errno != errno.EBUSY or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    # -- the loader
    def loader_cmd(self, *args, cgroup=True):
        cmd = [self.loader, "--pin-dir", self.pin_dir]
        if cgroup:
            cmd += ["--cgroup", self.cgroup]
        return cmd + list(args)

    def load(self, *args, check_ok=True, env=None):
        p = run(self.loader_cmd(*args), env=env)
        if check_ok:
            check(p.returncode == 0, "connpid-loader %s failed (exit %d)"
                  % (" ".join(args), p.returncode), p.stderr)
        return p

    def unload(self, check_ok=True):
        p = run([self.loader, "--unload", "--pin-dir", self.pin_dir])
        if check_ok:
            check(p.returncode == 0, "connpid-loader --unload failed", p.stderr)
        return p

    def status_json(self):
        p = run([self.loader, "--status", "--json", "--pin-dir", self.pin_dir])
        check(p.returncode == 0, "--status --json failed", p.stderr)
        return json.loads(p.stdout)

    def attachments(self):
        return cgroup_attachments(self.cgroup)

    def maps(self):
        return PinnedMaps(self.pin_dir)

    def pins(self):
        """Relative paths of everything under the pin dir (files and dirs)."""
        out = []
        for root, dirs, files in os.walk(self.pin_dir):
            rel = os.path.relpath(root, self.pin_dir)
            for n in dirs + files:
                out.append(os.path.normpath(os.path.join(rel, n)))
        return sorted(out)

    # -- workloads
    def spawn(self, action, host, port, comm=None, timeout=5.0,
              expect_ok=True, new_netns=False):
        """Start workload.py inside the cgroup; wait for its first line.
        new_netns: also unshare a fresh network namespace (no routes, lo
        down), so nothing can leave the machine."""
        procs = os.path.join(self.cgroup, "cgroup.procs")
        libc = ctypes.CDLL(None, use_errno=True) if new_netns else None

        def enter_cgroup():
            with open(procs, "w") as f:
                f.write(str(os.getpid()))
            if new_netns and libc.unshare(CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET)")

        cmd = [sys.executable, WORKLOAD, "flow", action, host, str(port),
               "--timeout", str(timeout)]
        if comm:
            cmd += ["--comm", comm]
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=enter_cgroup, close_fds=True)
        w = Workload(p, action)
        self.workloads.append(w)
        w.info = w.readline(timeout=timeout + 10)
        log("workload %s: %s" % (action, w.info))
        if expect_ok:
            check(w.info.get("ok"), "workload %s failed" % action, w.info)
        return w

    def ringdump(self, timeout_ms=500, count=None):
        """Drain the events ring; a list of event dicts."""
        cmd = [binary("CONNPID_RINGDUMP"), "--pin-dir", self.pin_dir,
               "--timeout-ms", str(timeout_ms)]
        if count is not None:
            cmd += ["--count", str(count)]
        p = run(cmd, timeout=timeout_ms / 1000 + 30)
        check(p.returncode == 0, "ringdump failed", p.stderr)
        return [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


def remove_pin_tree(path):
    """rm -r for a pin dir (unlinking a link pin drops that reference)."""
    if not os.path.lexists(path):
        return
    for root, dirs, files in os.walk(path, topdown=False):
        for n in files:
            os.unlink(os.path.join(root, n))
        for n in dirs:
            os.rmdir(os.path.join(root, n))
    os.rmdir(path)


def cgroup_attachments(cgroup):
    """Programs attached directly to a cgroup dir, from bpftool, as a list of
    dicts with id, attach_type, name."""
    p = subprocess.run(["bpftool", "cgroup", "show", cgroup, "-j"],
                       capture_output=True, text=True, timeout=30)
    if p.returncode != 0:
        raise TestFailure("bpftool cgroup show %s: %s" % (cgroup, p.stderr))
    out = p.stdout.strip()
    return json.loads(out) if out else []


def attachment_counts(cgroup):
    """{program name: number of attachments} at this cgroup."""
    counts = {}
    for a in cgroup_attachments(cgroup):
        counts[a.get("name")] = counts.get(a.get("name"), 0) + 1
    return counts


def check_attached_once(cgroup, progs=CGROUP_PROGS):
    atts = cgroup_attachments(cgroup)
    counts = {}
    for a in atts:
        counts[a["name"]] = counts.get(a["name"], 0) + 1
        want = PROG_ATTACH_TYPE.get(a["name"])
        check(want == a["attach_type"], "%s attached as %s, want %s"
              % (a["name"], a["attach_type"], want))
    check_eq(counts, {p: 1 for p in progs}, "attachments at %s" % cgroup)


def check_nothing_attached(cgroup):
    atts = cgroup_attachments(cgroup)
    check(atts == [], "programs still attached to %s" % cgroup, atts)


def v4_of(addr):
    """'::ffff:1.2.3.4' -> '1.2.3.4'; other addresses unchanged."""
    if addr.startswith("::ffff:") and "." in addr:
        return addr[len("::ffff:"):]
    return addr

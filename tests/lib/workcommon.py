# SPDX-License-Identifier: GPL-2.0-or-later
"""The one workload library of the test suites (stdlib only): every
workload process (tests/lib/workload.py, the only generic one, and
tests/host/hostwork.py, the host suite's bulk loops) takes its pieces
from here instead of carrying its own copy.

  - answering: emit() one JSON line; serve() the command loop, one JSON
    object per stdin line dispatched by its "cmd" to a handler;
  - identity: set_comm (str or raw bytes), read_comm, read_cgroup,
    start_ticks, hello(), enter_cgroup (before any socket), enter_netns
    (setns, so /sys/fs/cgroup stays ours), netns_ino, cookie_of;
  - flows: new_socket() by protocol and address, make_flow() (tcp
    connects, udpc connects and sends, udp sends with sendto), pace();
  - processes: fork_reporter() (a forked child does one job, reports a
    JSON line and is held until released), Children (release them all);
  - SCM_RIGHTS: send_fd(), recv_fd().
"""
import ctypes
import json
import os
import socket
import sys
import time

PR_SET_NAME = 15
SO_COOKIE = 57


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def set_comm(name):
    """prctl(PR_SET_NAME): a str, or raw bytes (invalid UTF-8 and escapes
    allowed); cut to 15 bytes."""
    raw = name if isinstance(name, bytes) else name.encode()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, ctypes.c_char_p(raw[:15]), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def read_comm():
    with open("/proc/self/comm") as f:
        return f.read().rstrip("\n")


def read_cgroup():
    with open("/proc/self/cgroup") as f:
        return f.read().strip()


def start_ticks(pid):
    """Field 22 of /proc/PID/stat (clock ticks after boot)."""
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[22 - 3])


def enter_cgroup(cgroup_dir):
    """Move this process into cgroup_dir (before any socket exists)."""
    with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def cookie_of(s):
    return int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")


def hello(**extra):
    """The common part of a "hello" answer: pid, comm, exe, cgroup."""
    return dict({"ok": True, "pid": os.getpid(), "comm": read_comm(),
                 "exe": os.readlink("/proc/self/exe"), "cgroup": read_cgroup()}, **extra)


def serve(handlers, on_exit=None):
    """Answer JSON commands from stdin until {"cmd":"exit"} (answered
    {"ok":true} after on_exit()) or EOF. handlers: {cmd: fn(req) -> answer
    dict}; an OSError becomes {"ok":false, error, errno}."""
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "exit":
                if on_exit:
                    on_exit()
                emit({"ok": True})
                return 0
            fn = handlers.get(cmd)
            if fn is None:
                emit({"ok": False, "error": "unknown cmd %s" % cmd})
            else:
                emit(fn(req))
        except OSError as e:
            emit({"ok": False, "error": str(e), "errno": e.errno})
    return 0


CLONE_NEWNET = 0x40000000


def enter_netns(name_or_path):
    """Join a network namespace: a name made by `ip netns add` (a file under
    /run/netns) or a path such as /proc/PID/ns/net. Sockets made afterwards
    live there; the mount namespace (and so /sys/fs/cgroup) stays ours,
    unlike `ip netns exec`, which remounts /sys."""
    path = name_or_path if "/" in name_or_path else os.path.join("/run/netns", name_or_path)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns(%s): %s" % (path, os.strerror(e)))
    finally:
        os.close(fd)


def netns_ino(pid=None):
    """The network namespace inode of a process (default: this one), the
    number connpid reports as "netns"."""
    return os.stat("/proc/%s/ns/net" % ("self" if pid is None else pid)).st_ino


# ---------------------------------------------------------------- flows

PAYLOAD = b"connpid-test"


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def sock_type(proto):
    """tcp: a stream socket; udp, udpc: a datagram socket."""
    return socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM


def new_socket(proto, host="0.0.0.0"):
    """A socket of the family of host (IPv6 when it has a colon)."""
    return socket.socket(family_of(host), sock_type(proto))


def make_flow(s, proto, addr, payload=PAYLOAD):
    """The flow of proto on socket s to addr: tcp connects, udpc connects
    and sends payload, udp sends it with sendto (unconnected). s."""
    if proto == "udp":
        s.sendto(payload, addr)
        return s
    s.connect(addr)
    if proto == "udpc":
        s.send(payload)
    return s


def pace(t0, n, rate, most=0.5):
    """Sleep so that n operations since t0 run at about `rate` per second
    (at most `most` seconds at a time; None: no bound)."""
    ahead = n / rate - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(ahead if most is None else min(ahead, most))


# ---------------------------------------------------------------- processes

def fork_reporter(job, hold=True):
    """Fork a child that runs job(keep) and writes what it returns (a dict;
    an exception becomes {"ok": false, "error"}) as one JSON line to us;
    with hold it then waits until released (Children.release, or our
    exit) with what it put in the list keep still open; then it _exits.
    Returns (pid, the dict or None when the child wrote nothing, the write
    end of its hold pipe: None without hold, the child reaped then)."""
    report_r, report_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:   # never fall back into the parent's loop
            os.close(report_r)
            os.close(hold_w)
            keep = []
            try:
                msg = job(keep)
            except Exception as e:
                msg = {"ok": False, "error": repr(e)}
            os.write(report_w, (json.dumps(msg) + "\n").encode())
            os.close(report_w)
            if hold:
                os.read(hold_r, 1)   # EOF once released
        finally:
            os._exit(0)
    os.close(report_w)
    os.close(hold_r)
    with os.fdopen(report_r) as f:
        line = f.readline()
    if not hold:
        os.close(hold_w)
        os.waitpid(pid, 0)   # gone and reaped before anyone looks it up
        hold_w = None
    return pid, (json.loads(line) if line else None), hold_w


class Children:
    """Children of fork_reporter() held until release()."""

    def __init__(self):
        self.held = []

    def add(self, pid, hold_w):
        if hold_w is not None:
            self.held.append((pid, hold_w))

    def release(self):
        """Let every held child exit, and reap it: the last one first, as
        each holds a copy of the hold pipes of those forked before it."""
        for pid, hold_w in reversed(self.held):
            os.close(hold_w)
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
        self.held = []


# ---------------------------------------------------------------- SCM_RIGHTS

def send_fd(unix_sock, fd, tag=b"F"):
    """Pass fd over a connected unix socket (SCM_RIGHTS)."""
    socket.send_fds(unix_sock, [tag], [fd])


def recv_fd(unix_sock):
    """The one socket passed over unix_sock; an OSError unless exactly
    one fd came."""
    _msg, fds, _flags, _addr = socket.recv_fds(unix_sock, 16, 4)
    if len(fds) != 1:
        for fd in fds:
            os.close(fd)
        raise OSError(0, "got %d fds, want 1" % len(fds))
    return socket.socket(fileno=fds[0])

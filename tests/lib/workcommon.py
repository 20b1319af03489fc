# SPDX-License-Identifier: GPL-2.0-or-later
"""Pieces shared by the workload processes of the test suites (stdlib only):
tests/lib/workload.py, tests/queryd/qdworkload.py,
tests/store/storeworkload.py, tests/identity/identwork.py,
tests/netns/netnswork.py.

A workload answers one JSON line per command on stdout (emit), names
itself (set_comm), may move itself into a cgroup before it makes any
socket (enter_cgroup) or into a network namespace (enter_netns, netns_ino)
and reports socket cookies (cookie_of). serve()
is the command loop: one JSON object per stdin line, dispatched by its
"cmd" to a handler that returns the answer.
"""
import ctypes
import json
import os
import socket
import sys

PR_SET_NAME = 15
SO_COOKIE = 57


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0) != 0:
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

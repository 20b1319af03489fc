#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Workload process for the identity tests (stdlib only).

    identwork.py [--comm NAME] [--unix-fd N]

The harness starts it already inside its cgroup (the Popen preexec_fn
writes the child's pid to cgroup.procs before exec). Commands, one JSON
object per line on stdin, one JSON line answer on stdout:

  {"cmd":"hello"}                         -> {pid, comm, exe, cgroup, start_ticks}
  {"cmd":"tcp","host":H,"port":P}         -> {sport, cookie}  connect, kept open
  {"cmd":"udpc","host":H,"port":P}        -> {sport, cookie}  connect + send
  {"cmd":"send","sport":S}                -> {}               send again on a kept socket
  {"cmd":"fork","proto":"tcp"|"udpc","host":H,"port":P,"child_comm":C}
        socket() here, fork(); the child renames itself C and connects
        (udpc: connect + send); the parent closes its copy.
                                          -> {child_pid, child_comm, child_start_ticks,
                                              sport, cookie}
  {"cmd":"send_fd","proto":"tcp"|"udp"}   socket() here, pass it over --unix-fd with
                                          SCM_RIGHTS, close our copy -> {cookie}
  {"cmd":"recv_fd","proto":"tcp"|"udpc","host":H,"port":P}
        receive a socket over --unix-fd, connect it (udpc: + send)
                                          -> {sport, cookie}
  {"cmd":"exit"}                          -> exits 0 (children told to exit first)
"""
import ctypes
import json
import os
import socket
import sys

PR_SET_NAME = 15
SO_COOKIE = 57
PAYLOAD = b"connpid-identity-test"


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


def start_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    return int(data[data.rindex(")") + 2:].split()[22 - 3])


def cookie_of(s):
    return int.from_bytes(s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8), "little")


def new_socket(proto):
    return socket.socket(socket.AF_INET,
                         socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)


def connect(s, proto, host, port):
    s.settimeout(10)
    s.connect((host, port))
    if proto != "tcp":
        s.send(PAYLOAD)


def main(argv):
    comm = None
    unix_fd = None
    if "--comm" in argv:
        comm = argv[argv.index("--comm") + 1]
    if "--unix-fd" in argv:
        unix_fd = socket.socket(fileno=int(argv[argv.index("--unix-fd") + 1]))
    if comm:
        set_comm(comm)
    keep = {}         # sport -> socket
    children = []     # (pid, write end of its stay-alive pipe)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "hello":
                with open("/proc/self/cgroup") as f:
                    cg = f.read().strip()
                emit({"ok": True, "pid": os.getpid(), "comm": read_comm(),
                      "exe": os.readlink("/proc/self/exe"), "cgroup": cg,
                      "start_ticks": start_ticks(os.getpid())})
            elif cmd in ("tcp", "udpc"):
                s = new_socket(cmd)
                connect(s, cmd, req["host"], req["port"])
                keep[s.getsockname()[1]] = s
                emit({"ok": True, "sport": s.getsockname()[1], "cookie": cookie_of(s)})
            elif cmd == "send":
                keep[req["sport"]].send(PAYLOAD)
                emit({"ok": True})
            elif cmd == "fork":
                proto = req["proto"]
                s = new_socket(proto)
                report_r, report_w = os.pipe()
                stay_r, stay_w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    # the child: connect the parent's socket, report, wait
                    try:
                        os.close(report_r)
                        os.close(stay_w)
                        set_comm(req["child_comm"])
                        connect(s, proto, req["host"], req["port"])
                        msg = {"ok": True, "child_pid": os.getpid(),
                               "child_comm": read_comm(),
                               "child_start_ticks": start_ticks(os.getpid()),
                               "sport": s.getsockname()[1], "cookie": cookie_of(s)}
                    except Exception as e:  # report, never fall into the parent's loop
                        msg = {"ok": False, "error": repr(e)}
                    os.write(report_w, (json.dumps(msg) + "\n").encode())
                    os.close(report_w)
                    os.read(stay_r, 1)   # EOF when the parent exits or says so
                    os._exit(0)
                os.close(report_w)
                os.close(stay_r)
                s.close()                # only the child holds the socket now
                children.append((pid, stay_w))
                with os.fdopen(report_r) as f:
                    msg = json.loads(f.readline())
                emit(msg)
            elif cmd == "send_fd":
                s = new_socket(req["proto"])
                c = cookie_of(s)
                socket.send_fds(unix_fd, [b"F"], [s.fileno()])
                s.close()                # only the receiver holds it now
                emit({"ok": True, "cookie": c})
            elif cmd == "recv_fd":
                _msg, fds, _flags, _addr = socket.recv_fds(unix_fd, 16, 1)
                if len(fds) != 1:
                    emit({"ok": False, "error": "got %d fds" % len(fds)})
                    continue
                s = socket.socket(fileno=fds[0])
                proto = req["proto"]
                connect(s, proto, req["host"], req["port"])
                keep[s.getsockname()[1]] = s
                emit({"ok": True, "sport": s.getsockname()[1], "cookie": cookie_of(s)})
            elif cmd == "exit":
                for pid, w in children:
                    os.close(w)
                    os.waitpid(pid, 0)
                emit({"ok": True})
                return 0
            else:
                emit({"ok": False, "error": "unknown cmd %s" % cmd})
        except OSError as e:
            emit({"ok": False, "error": str(e), "errno": e.errno})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

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
import json
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from workcommon import (cookie_of, hello, read_comm, serve, set_comm,  # noqa: E402
                        start_ticks)

PAYLOAD = b"connpid-identity-test"


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

    def do_connect(req):
        cmd = req["cmd"]
        s = new_socket(cmd)
        connect(s, cmd, req["host"], req["port"])
        keep[s.getsockname()[1]] = s
        return {"ok": True, "sport": s.getsockname()[1], "cookie": cookie_of(s)}

    def do_send(req):
        keep[req["sport"]].send(PAYLOAD)
        return {"ok": True}

    def do_fork(req):
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
            return json.loads(f.readline())

    def do_send_fd(req):
        s = new_socket(req["proto"])
        c = cookie_of(s)
        socket.send_fds(unix_fd, [b"F"], [s.fileno()])
        s.close()                # only the receiver holds it now
        return {"ok": True, "cookie": c}

    def do_recv_fd(req):
        _msg, fds, _flags, _addr = socket.recv_fds(unix_fd, 16, 1)
        if len(fds) != 1:
            return {"ok": False, "error": "got %d fds" % len(fds)}
        s = socket.socket(fileno=fds[0])
        connect(s, req["proto"], req["host"], req["port"])
        keep[s.getsockname()[1]] = s
        return {"ok": True, "sport": s.getsockname()[1], "cookie": cookie_of(s)}

    def on_exit():
        for pid, w in children:
            os.close(w)
            os.waitpid(pid, 0)

    return serve({"hello": lambda req: hello(start_ticks=start_ticks(os.getpid())),
                  "tcp": do_connect, "udpc": do_connect, "send": do_send, "fork": do_fork,
                  "send_fd": do_send_fd, "recv_fd": do_recv_fd}, on_exit)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

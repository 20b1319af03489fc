#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A workload process for the netns suite (stdlib only).

    netnswork.py [--cgroup DIR] [--netns NAME] [--comm NAME]

Moves itself into DIR (before any socket; the harness rather starts it
there, so that its exec is inside the cgroup), then into the network namespace
NAME (setns, so /sys/fs/cgroup stays visible), then answers one JSON line
per command line on stdin (workcommon.serve):

  hello                         pid, comm, exe, cgroup, netns inode
  listen {name, host, port, backlog}         -> port
  connect {host, port, src?, sport?}         -> src, sport, cookie (kept open)
  accept {name, timeout?}                    -> peer, local (kept open)
  fork_accept {name, count, comm, exit}      -> acceptors: [{pid, peer, local}]
      count children, each sets its comm, accepts one connection on the
      listener and reports; with exit it _exits at once (and is reaped),
      without it holds the socket until this process exits
  unix_listen {path}            a unix stream socket to receive a listener on
  send_listener {name, path}    the listener's fd over SCM_RIGHTS to path
  recv_listener {name}          accept on unix_listen's socket, take the fd
  close_listener {name}
"""
import json
import os
import signal
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from workcommon import (cookie_of, enter_cgroup, enter_netns, hello, netns_ino,  # noqa: E402
                        serve, set_comm)

MAX_CHILDREN = 64


def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class Work:
    def __init__(self):
        self.listeners = {}
        self.conns = []
        self.children = []
        self.unix = None

    def hello(self, req):
        return hello(netns=netns_ino())

    def listen(self, req):
        host = req.get("host", "127.0.0.1")
        s = socket.socket(family_of(host), socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if ":" in host:   # "::" takes IPv4 clients too (v4-mapped)
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        s.bind((host, req.get("port", 0)))
        s.listen(min(int(req.get("backlog", 64)), 1024))
        self.listeners[req["name"]] = s
        return {"ok": True, "port": s.getsockname()[1]}

    def connect(self, req):
        s = socket.socket(family_of(req["host"]), socket.SOCK_STREAM)
        s.settimeout(10)
        if req.get("sport") or req.get("src"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((req.get("src", "::" if ":" in req["host"] else "0.0.0.0"), req.get("sport", 0)))
        s.connect((req["host"], req["port"]))
        self.conns.append(s)
        src, sport = s.getsockname()[:2]
        return {"ok": True, "src": src, "sport": sport, "cookie": cookie_of(s)}

    def accept(self, req):
        ls = self.listeners[req["name"]]
        ls.settimeout(req.get("timeout", 10))
        c, peer = ls.accept()
        self.conns.append(c)
        return {"ok": True, "peer": list(peer[:2]), "local": list(c.getsockname()[:2]), "cookie": cookie_of(c)}

    def _acceptor(self, ls, comm, wfd, hold_fd, exit_at_once):
        """In the forked child: never returns."""
        code = 1
        try:
            set_comm(comm)
            ls.settimeout(10)
            c, peer = ls.accept()
            msg = {"pid": os.getpid(), "peer": list(peer[:2]), "local": list(c.getsockname()[:2])}
            os.write(wfd, (json.dumps(msg) + "\n").encode())
            if not exit_at_once:
                os.read(hold_fd, 1)   # until the parent exits
            code = 0
        finally:
            os._exit(code)

    def fork_accept(self, req):
        ls = self.listeners[req["name"]]
        count = min(int(req.get("count", 1)), MAX_CHILDREN - len(self.children))
        exit_at_once = bool(req.get("exit"))
        out = []
        for i in range(count):
            r, w = os.pipe()
            hold_r, hold_w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                os.close(hold_w)
                self._acceptor(ls, "%s%d" % (req.get("comm", "cpn-acc"), i), w, hold_r, exit_at_once)
            os.close(w)
            os.close(hold_r)
            with os.fdopen(r) as f:
                line = f.readline()
            if not line:
                os.close(hold_w)
                os.waitpid(pid, 0)
                return {"ok": False, "error": "acceptor %d failed" % pid}
            out.append(json.loads(line))
            if exit_at_once:
                os.close(hold_w)
                os.waitpid(pid, 0)   # gone and reaped before the test looks it up
            else:
                self.children.append((pid, hold_w))
        return {"ok": True, "acceptors": out}

    def unix_listen(self, req):
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(req["path"])
        self.unix.listen(4)
        return {"ok": True}

    def send_listener(self, req):
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        u.settimeout(10)
        u.connect(req["path"])
        socket.send_fds(u, [b"L"], [self.listeners[req["name"]].fileno()])
        u.close()
        return {"ok": True}

    def recv_listener(self, req):
        self.unix.settimeout(10)
        u, _ = self.unix.accept()
        u.settimeout(10)
        _, fds, _, _ = socket.recv_fds(u, 16, 4)
        u.close()
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            return {"ok": False, "error": "got %d fds" % len(fds)}
        s = socket.socket(fileno=fds[0])
        self.listeners[req["name"]] = s
        return {"ok": True, "port": s.getsockname()[1]}

    def close_listener(self, req):
        self.listeners.pop(req["name"]).close()
        return {"ok": True}

    def on_exit(self):
        for pid, hold_w in self.children:
            os.close(hold_w)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass


def main(argv):
    opts = {}
    i = 0
    while i < len(argv):
        if argv[i] in ("--cgroup", "--netns", "--comm") and i + 1 < len(argv):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            sys.stderr.write(__doc__)
            return 2
    if opts.get("cgroup"):
        enter_cgroup(opts["cgroup"])
    if opts.get("netns"):
        enter_netns(opts["netns"])
    if opts.get("comm"):
        set_comm(opts["comm"])
    w = Work()
    handlers = {name: getattr(w, name) for name in (
        "hello", "listen", "connect", "accept", "fork_accept", "unix_listen", "send_listener",
        "recv_listener", "close_listener")}
    return serve(handlers, w.on_exit)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The workload process of connpid's test suites (stdlib only), one job per
subcommand; the pieces are tests/lib/workcommon.py.

    workload.py flow ACTION HOST PORT [--comm NAME] [--timeout S]
    workload.py serve [--cgroup DIR] [--netns NAME] [--comm NAME]
                      [--unix-fd N] [--tcp-data] [PADDING...]
    workload.py flood --cgroup DIR [--comm NAME] --dst-base 127.0.N.0
                      --n-dst K --count N [--first-port P] [--rate PER_SECOND]

--cgroup: move into DIR first (before any socket; a harness may rather
start it there, so that its exec is inside the cgroup), then --netns
(setns: /sys/fs/cgroup stays visible), then set the comm. PADDING
arguments are ignored: they make the command line long.

flow (tests/lib/connpidtest.py): one flow, then one JSON line: {"ok":true,
pid, tid, comm, action, family, proto, sport, src, dst, dport, cookie} or
{"ok":false, errno, error, pid, ...} when the first connect/send failed.
ACTION: tcp4, tcp6, tcp4mapped (AF_INET6 socket to ::ffff:a.b.c.d), udp4,
udp6, udp4mapped (unconnected sendto), udp4c, udp6c, udp4mappedc (connect
+ send). Then each "send" line on stdin sends once more on the same socket
({"ok":true,"sent":N} or an error line); EOF ends it, so the flow stays
live while the test checks.

serve (the queryd, store, identity, netns and community-id suites): one
JSON command per stdin line, one JSON line answer (workcommon.serve).
Every socket stays open until exit. H may be IPv4 or IPv6.
  hello                              pid, comm, exe, cmdline, cgroup,
                                     start_ticks, netns
  tcp|connect {host, port, src?, sport?}
                                     connect (with --tcp-data, send once)
                                     -> src, sport, dst, dport, cookie, t
  udpc {host, port}                  connect + send -> the same
  udp {host, port | ports: [..]}     sendto each from one unconnected
                                     socket -> sport, dport, dports, dst,
                                     cookie, t
  udpflood {hosts, first_port, n} | {host, base, n}
                                     n new flows: sendto distinct (host,
                                     port) pairs -> sport, sports, n;
                                     {host, ...} keeps the socket open
  send {sport}                       send again on a kept socket
  fork {proto: tcp|udpc, host, port, child_comm}
        socket() here, fork(); the child renames itself and makes the
        flow; our copy is closed -> child_pid, child_comm,
        child_start_ticks, sport, cookie
  send_fd {proto: tcp|udp}           socket() here, pass it over --unix-fd
                                     with SCM_RIGHTS, close ours -> cookie
  recv_fd {proto, host, port}        take a socket from --unix-fd, make the
                                     flow -> sport, cookie
  listen {name, host, port, backlog} -> port
  accept {name, timeout?}            -> peer, local, cookie (kept open)
  fork_accept {name, count, comm, exit}
        count children, each sets its comm, accepts one connection on the
        listener and reports -> acceptors: [{pid, peer, local}]; with exit
        they _exit at once (reaped), else hold the socket until exit
  unix_listen {path}                 a unix socket to receive a listener on
  send_listener {name, path}         the listener's fd over SCM_RIGHTS
  recv_listener {name}               accept on unix_listen's socket, take it
  close_listener {name}
  exit                               children released first

flood (the store suite): N datagrams, each to a (dst, dport) never used
before by this process, over unconnected sockets (a new socket, hence a
new sport, every time the port range wraps), so every datagram is a new
flow; "started" and "done N SECONDS" lines on stdout, then it stays until
stdin's EOF so the flows' pid stays alive.
"""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workcommon import (PAYLOAD, Children, cookie_of, emit, enter_cgroup,  # noqa: E402
                        enter_netns, family_of, fork_reporter, hello, make_flow, netns_ino,
                        new_socket, pace, read_comm, recv_fd, send_fd, serve, set_comm,
                        start_ticks)

MAX_CHILDREN = 64


# ---------------------------------------------------------------- flow

FLOW_ACTIONS = {
    # action: (family, proto)
    "tcp4": (socket.AF_INET, "tcp"),
    "tcp6": (socket.AF_INET6, "tcp"),
    "tcp4mapped": (socket.AF_INET6, "tcp"),
    "udp4": (socket.AF_INET, "udp"),
    "udp6": (socket.AF_INET6, "udp"),
    "udp4c": (socket.AF_INET, "udpc"),
    "udp6c": (socket.AF_INET6, "udpc"),
    "udp4mapped": (socket.AF_INET6, "udp"),
    "udp4mappedc": (socket.AF_INET6, "udpc"),
}


def flow_info(s, family, proto, addr):
    local = s.getsockname()
    remote = addr if proto == "udp" else s.getpeername()
    return {"ok": True, "family": "ipv4" if family == socket.AF_INET else "ipv6",
            "proto": "tcp" if proto == "tcp" else "udp", "src": local[0], "sport": local[1],
            "dst": remote[0], "dport": remote[1], "cookie": cookie_of(s)}


def send_again(s, proto, addr):
    if proto == "tcp":
        s.sendall(PAYLOAD)
        return len(PAYLOAD)
    return s.send(PAYLOAD) if proto == "udpc" else s.sendto(PAYLOAD, addr)


def run_flow(action, host, port, timeout):
    family, proto = FLOW_ACTIONS[action]
    base = {"pid": os.getpid(), "tid": threading.get_native_id(), "action": action,
            "comm": read_comm()}
    s = socket.socket(family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    s.settimeout(timeout)
    addr = (host, port)
    try:
        make_flow(s, proto, addr)
        if proto == "tcp":
            s.sendall(PAYLOAD)
    except OSError as e:
        emit(dict(base, ok=False, errno=e.errno, error=str(e)))
    else:
        emit(dict(base, **flow_info(s, family, proto, addr)))
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "send":
            try:
                emit({"ok": True, "sent": send_again(s, proto, addr)})
            except OSError as e:
                emit({"ok": False, "errno": e.errno, "error": str(e)})
        elif cmd:
            emit({"ok": False, "error": "unknown command %r" % cmd})
    s.close()
    return 0


# ---------------------------------------------------------------- serve: client flows

class Work:
    """The state of `serve`: kept sockets, listeners, held children."""

    def __init__(self, unix_fd=None, tcp_data=False):
        self.unix_fd = unix_fd
        self.tcp_data = tcp_data
        self.keep = {}        # sport -> socket (the last one per sport)
        self.kept = []        # every socket, open until exit
        self.listeners = {}
        self.children = Children()
        self.unix = None

    def _keep(self, s):
        self.kept.append(s)
        self.keep[s.getsockname()[1]] = s
        return s

    def _answer(self, s, dst, dport, **extra):
        src, sport = s.getsockname()[:2]
        return dict({"ok": True, "src": src, "sport": sport, "dst": dst, "dport": dport,
                     "cookie": cookie_of(s), "t": time.time()}, **extra)

    def hello(self, req):
        with open("/proc/self/cmdline", "rb") as f:
            cmdline = [a.decode(errors="replace") for a in f.read().split(b"\0")[:-1]]
        return hello(cmdline=cmdline, start_ticks=start_ticks(os.getpid()), netns=netns_ino())

    def connect(self, req):
        """tcp and connect: a kept TCP connection, from src:sport if given."""
        host = req["host"]
        s = new_socket("tcp", host)
        s.settimeout(10)
        if req.get("sport") or req.get("src"):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((req.get("src", "::" if ":" in host else "0.0.0.0"), req.get("sport", 0)))
        make_flow(s, "tcp", (host, req["port"]))
        if self.tcp_data:
            s.sendall(PAYLOAD)
        return self._answer(self._keep(s), host, req["port"])

    def udpc(self, req):
        s = new_socket("udpc", req["host"])
        s.settimeout(10)
        make_flow(s, "udpc", (req["host"], req["port"]))
        return self._answer(self._keep(s), req["host"], req["port"])

    def udp(self, req):
        ports = req["ports"] if "ports" in req else [req["port"]]
        s = new_socket("udp", req["host"])
        for p in ports:
            make_flow(s, "udp", (req["host"], p))
        return self._answer(self._keep(s), req["host"], ports[0], dports=ports)

    def udpflood(self, req):
        if "hosts" in req:   # the sockets are closed at the end
            sports, n = udpflood(req["hosts"], req.get("first_port", 1024), req["n"])
        else:                # one socket, kept open
            sports, n = udpflood([req["host"]], req["base"], req["n"], keep=self.kept)
        return {"ok": True, "sport": sports[0] if sports else None, "sports": sports, "n": n}

    def send(self, req):
        self.keep[req["sport"]].send(PAYLOAD)
        return {"ok": True}

    # -- creators: fork, SCM_RIGHTS
    def fork(self, req):
        proto = req["proto"]
        s = new_socket(proto, req["host"])

        def child(keep):
            keep.append(s)
            set_comm(req["child_comm"])
            s.settimeout(10)
            make_flow(s, proto, (req["host"], req["port"]))
            return {"ok": True, "child_pid": os.getpid(), "child_comm": read_comm(),
                    "child_start_ticks": start_ticks(os.getpid()),
                    "sport": s.getsockname()[1], "cookie": cookie_of(s)}
        pid, msg, hold_w = fork_reporter(child)
        s.close()                # only the child holds the socket now
        self.children.add(pid, hold_w)
        return msg or {"ok": False, "error": "child %d said nothing" % pid}

    def send_fd(self, req):
        s = new_socket(req["proto"])
        c = cookie_of(s)
        send_fd(self.unix_fd, s.fileno())
        s.close()                # only the receiver holds it now
        return {"ok": True, "cookie": c}

    def recv_fd(self, req):
        s = recv_fd(self.unix_fd)
        s.settimeout(10)
        make_flow(s, req["proto"], (req["host"], req["port"]))
        return self._answer(self._keep(s), req["host"], req["port"])

    def on_exit(self):
        self.children.release()


# ---------------------------------------------------------------- serve: servers

class ServerWork(Work):
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

    def accept(self, req):
        ls = self.listeners[req["name"]]
        ls.settimeout(req.get("timeout", 10))
        c, peer = ls.accept()
        self.kept.append(c)
        return {"ok": True, "peer": list(peer[:2]), "local": list(c.getsockname()[:2]),
                "cookie": cookie_of(c)}

    def fork_accept(self, req):
        ls = self.listeners[req["name"]]
        count = min(int(req.get("count", 1)), MAX_CHILDREN - len(self.children.held))
        out = []
        for i in range(count):
            def acceptor(keep, comm="%s%d" % (req.get("comm", "cpn-acc"), i)):
                set_comm(comm)
                ls.settimeout(10)
                c, peer = ls.accept()
                keep.append(c)   # held until released
                return {"pid": os.getpid(), "peer": list(peer[:2]),
                        "local": list(c.getsockname()[:2])}
            pid, msg, hold_w = fork_reporter(acceptor, hold=not req.get("exit"))
            self.children.add(pid, hold_w)
            if not msg or msg.get("ok") is False:
                return {"ok": False, "error": "acceptor %d failed: %r" % (pid, msg)}
            out.append(msg)
        return {"ok": True, "acceptors": out}

    def unix_listen(self, req):
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind(req["path"])
        self.unix.listen(4)
        return {"ok": True}

    def send_listener(self, req):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as u:
            u.settimeout(10)
            u.connect(req["path"])
            send_fd(u, self.listeners[req["name"]].fileno(), b"L")
        return {"ok": True}

    def recv_listener(self, req):
        self.unix.settimeout(10)
        u, _ = self.unix.accept()
        with u:
            u.settimeout(10)
            s = recv_fd(u)
        self.listeners[req["name"]] = s
        return {"ok": True, "port": s.getsockname()[1]}

    def close_listener(self, req):
        self.listeners.pop(req["name"]).close()
        return {"ok": True}


SERVE_COMMANDS = ("hello", "connect", "udpc", "udp", "udpflood", "send", "fork", "send_fd",
                  "recv_fd", "listen", "accept", "fork_accept", "unix_listen", "send_listener",
                  "recv_listener", "close_listener")


def run_serve(opts):
    unix_fd = socket.socket(fileno=int(opts["unix-fd"])) if opts.get("unix-fd") else None
    w = ServerWork(unix_fd, "tcp-data" in opts)
    handlers = {name: getattr(w, name) for name in SERVE_COMMANDS}
    handlers["tcp"] = w.connect
    return serve(handlers, w.on_exit)


# ---------------------------------------------------------------- flood

def flood_pairs(hosts, first_port, n):
    """Yield n (host, port) pairs: ports first_port..65535 on each host."""
    sent = 0
    while True:
        for h in hosts:
            for p in range(first_port, 65536):
                if sent >= n:
                    return
                yield h, p
                sent += 1


def udpflood(hosts, first_port, n, rate=0, keep=None):
    """n new flows; a fresh socket per host pass so keys never repeat.
    rate > 0: at most that many per second (paced in chunks of 200). The
    sockets go to keep, or are closed at the end. (sports, n sent)."""
    socks, sports = [], []
    cur_host, s = None, None
    sent = 0
    t0 = time.monotonic()
    for h, p in flood_pairs(hosts, first_port, n):
        if rate and sent % 200 == 0:
            pace(t0, sent, rate, most=None)
        if h != cur_host or p == first_port:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            cur_host = h
            s.sendto(b"x", (h, p))
            sports.append(s.getsockname()[1])
        else:
            # Unconnected: an ICMP port unreachable is not reported here.
            s.sendto(b"x", (h, p))
        sent += 1
    if keep is None:
        for s in socks:
            s.close()
    else:
        keep.extend(socks)
    return sports, sent


def run_flood(opts):
    base = opts["dst-base"].rsplit(".", 1)[0]
    hosts = ["%s.%d" % (base, i + 1) for i in range(int(opts.get("n-dst", "1")))]
    print("started", flush=True)
    t0 = time.monotonic()
    _, sent = udpflood(hosts, int(opts.get("first-port", "1024")), int(opts["count"]),
                       float(opts.get("rate", "0")))
    print("done %d %.3f" % (sent, time.monotonic() - t0), flush=True)
    sys.stdin.read()   # stay until told to go
    return 0


# ---------------------------------------------------------------- main

OPTIONS = ("--cgroup", "--netns", "--comm", "--unix-fd", "--timeout", "--dst-base", "--n-dst",
           "--count", "--first-port", "--rate")
FLAGS = ("--tcp-data",)


def parse(args):
    """({option without --: value}, positional arguments)."""
    opts, pos = {}, []
    i = 0
    while i < len(args):
        if args[i] in OPTIONS and i + 1 < len(args):
            opts[args[i][2:]] = args[i + 1]
            i += 2
        else:
            if args[i] in FLAGS:
                opts[args[i][2:]] = True
            else:
                pos.append(args[i])
            i += 1
    return opts, pos


def main(argv):
    mode = argv[0] if argv else ""
    opts, pos = parse(argv[1:])
    if mode not in ("flow", "serve", "flood") or (mode == "flow" and (
            len(pos) != 3 or pos[0] not in FLOW_ACTIONS)):
        sys.stderr.write(__doc__)
        return 2
    if opts.get("cgroup"):
        enter_cgroup(opts["cgroup"])
    if opts.get("netns"):
        enter_netns(opts["netns"])
    if opts.get("comm"):
        set_comm(opts["comm"])
    if mode == "flow":
        return run_flow(pos[0], pos[1], int(pos[2]), float(opts.get("timeout", 5.0)))
    if mode == "flood":
        return run_flood(opts)
    return run_serve(opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

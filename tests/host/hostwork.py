#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Workload processes of the host suite (stdlib only), one per argv[1]:

  execs  SECONDS RATE OUT             execs of a few programs and bare forks
  flows  FAMILY PROTO SECONDS RATE SAMPLE_EVERY OUT
                                      bulk flows from this process, and every
                                      SAMPLE_EVERY-th one made by a forked
                                      child with its own ports (a sample)
  dns    SECONDS RATE OUT NAME=ADDR... getaddrinfo(NAME) through the C library,
                                      then a UDP datagram to what it returned
                                      (run inside a network namespace)
  live / odd                          JSON command loop on stdin (see serve())

Every loop is bounded in count and in time and stops by itself. Only
loopback addresses are ever used: 127.0.0.0/8 and ::1. Records (samples,
the final counts) are JSON lines in OUT; the last one has "done": true.
"""
import ctypes
import json
import os
import select
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import workcommon  # noqa: E402
from workcommon import emit  # noqa: E402

PR_SET_NAME = 15
MAX_FLOWS_PER_WORKER = 200000
MAX_EXECS = 100000
LINGER_RST = struct.pack("ii", 1, 0)
V4_BULK_DSTS = ("127.0.0.1", "127.9.0.1", "127.200.3.4")
V6_BULK_DSTS = ("::1",)

_libc = ctypes.CDLL(None, use_errno=True)


def set_comm_bytes(b):
    """prctl(PR_SET_NAME) with raw bytes (invalid UTF-8, escapes allowed)."""
    if _libc.prctl(PR_SET_NAME, ctypes.c_char_p(bytes(b)[:15]), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")


def assert_loopback(family, addr):
    if family == socket.AF_INET6:
        if addr != "::1":
            raise SystemExit("refusing non-loopback address %r" % addr)
    elif not addr.startswith("127."):
        raise SystemExit("refusing non-loopback address %r" % addr)


class Out:
    def __init__(self, path):
        self.f = open(path, "w")

    def write(self, obj):
        self.f.write(json.dumps(obj) + "\n")

    def close(self, obj):
        obj["done"] = True
        self.write(obj)
        self.f.close()


def pace(t0, n, rate):
    """Sleep so that n operations since t0 run at about `rate` per second."""
    ahead = n / rate - (time.monotonic() - t0)
    if ahead > 0:
        time.sleep(min(ahead, 0.5))


# ------------------------------------------------------------------ execs

EXEC_PROGS = (["/bin/true"], ["/bin/sh", "-c", ":"], ["/usr/bin/env", "true"], ["/bin/echo", "-n"])


def run_execs(seconds, rate, out_path):
    """fork+exec of a few programs, and bare forks that exit at once."""
    out = Out(out_path)
    t0 = time.monotonic()
    deadline = t0 + seconds
    execs = forks = failures = 0
    devnull = os.open(os.devnull, os.O_RDWR)
    while time.monotonic() < deadline and execs < MAX_EXECS:
        prog = EXEC_PROGS[execs % len(EXEC_PROGS)]
        try:
            pid = os.posix_spawn(prog[0], prog, os.environ,
                                 file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
            execs += 1
            os.waitpid(pid, 0)
        except OSError:
            failures += 1
        if execs % 4 == 0:
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            os.waitpid(pid, 0)
            forks += 1
        pace(t0, execs, rate)
    out.close({"execs": execs, "forks": forks, "exec_failures": failures,
               "seconds": time.monotonic() - t0})
    return 0


# ------------------------------------------------------------------ flows

class Flows:
    def __init__(self, family, proto):
        self.fam = socket.AF_INET6 if family == "v6" else socket.AF_INET
        self.family = family
        self.proto = proto
        self.stype = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        self.dsts = V6_BULK_DSTS if family == "v6" else V4_BULK_DSTS
        self.sample_dst = "::1" if family == "v6" else "127.0.0.1"
        self.targets = [self.listen(d) for d in self.dsts]
        self.sample_target = self.listen(self.sample_dst)
        self.servers = [t[0] for t in self.targets] + [self.sample_target[0]]

    def listen(self, addr):
        assert_loopback(self.fam, addr)
        s = socket.socket(self.fam, self.stype)
        s.bind((addr, 0))
        if self.proto == "tcp":
            s.listen(4096)
        s.setblocking(False)
        return s, (addr, s.getsockname()[1])

    def drain(self):
        """Accept and close waiting connections, read waiting datagrams."""
        for s in self.servers:
            for _ in range(256):
                try:
                    if self.proto == "tcp":
                        c, _ = s.accept()
                        c.close()
                    else:
                        s.recv(2048)
                except (BlockingIOError, InterruptedError):
                    break

    def one(self, target, connected_udp, before_close=None):
        """One flow to target; its source port. TCP closes with RST (no
        TIME_WAIT, so ports do not run out), after before_close(sport)."""
        s = socket.socket(self.fam, self.stype)
        try:
            if self.proto == "tcp":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
                s.connect(target)
            elif connected_udp:
                s.connect(target)
                s.send(b"x")
            else:
                s.sendto(b"x", target)
            if before_close:
                before_close(s.getsockname()[1])
            return s.getsockname()[1]
        finally:
            s.close()


def sample_child(fl, target, connected_udp, wfd, gofd):
    """In a forked child: one flow, then report it and exit. A TCP one is
    reported while open and closed once the parent accepted it (it makes
    the inbound sample: accepted by the worker, who called listen())."""
    try:
        t0 = time.time()
        rec = {"pid": os.getpid(), "t0": t0}

        def report(sport):
            rec.update({"sport": sport, "t1": time.time()})
            os.write(wfd, (json.dumps(rec) + "\n").encode())
            if fl.proto == "tcp":
                os.read(gofd, 1)
        fl.one(target, connected_udp, before_close=report)
        os._exit(0)
    except BaseException:
        os._exit(3)


def run_flows(family, proto, seconds, rate, sample_every, out_path):
    out = Out(out_path)
    fl = Flows(family, proto)
    t0 = time.monotonic()
    deadline = t0 + seconds
    n = bulk = samples = errors = 0
    while time.monotonic() < deadline and n < MAX_FLOWS_PER_WORKER:
        n += 1
        connected_udp = proto == "udp" and n % 2 == 0
        try:
            if n % sample_every == 0:
                r, w = os.pipe()
                gr, gw = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    os.close(gw)
                    sample_child(fl, fl.sample_target[1], connected_udp, w, gr)
                os.close(w)
                os.close(gr)
                with os.fdopen(r) as rf:
                    line = rf.readline()
                if line and proto == "tcp":
                    fl.drain()   # accepts the sample while it is open
                if line and proto == "tcp":
                    os.write(gw, b"x")   # the child waits for it to close
                os.close(gw)
                _, status = os.waitpid(pid, 0)
                if line:
                    rec = json.loads(line)
                    rec.update({"kind": "sample", "family": family, "proto": proto,
                                "dst": fl.sample_target[1][0], "dport": fl.sample_target[1][1],
                                "udp_connected": connected_udp})
                    out.write(rec)
                    samples += 1
                else:
                    errors += 1
            else:
                fl.one(fl.targets[n % len(fl.targets)][1], connected_udp)
                bulk += 1
        except OSError as e:
            errors += 1
            if errors < 5:
                out.write({"kind": "error", "error": str(e)})
        if n % 32 == 0:
            fl.drain()
        pace(t0, n, rate)
    fl.drain()
    out.close({"kind": "count", "family": family, "proto": proto, "pid": os.getpid(),
               "bulk": bulk, "samples": samples, "errors": errors,
               "seconds": time.monotonic() - t0})
    return 0


# ------------------------------------------------------------------ DNS

def run_dns(seconds, rate, out_path, names):
    """getaddrinfo() of NAME (glibc, /etc/resolv.conf of the namespace),
    then one UDP datagram to the address it gave: the flow a client makes
    after resolving. Names map to distinct loopback addresses."""
    out = Out(out_path)
    t0 = time.monotonic()
    deadline = t0 + seconds
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))   # only to keep a port; datagrams go elsewhere
    port = 9999
    n = queries = resolved = flows = errors = 0
    while time.monotonic() < deadline and n < 100000:
        name, want = names[n % len(names)]
        n += 1
        queries += 1
        try:
            ai = socket.getaddrinfo(name, port, socket.AF_INET, socket.SOCK_DGRAM)
        except socket.gaierror as e:
            if want:
                errors += 1
                if errors < 5:
                    out.write({"kind": "error", "name": name, "error": str(e)})
            pace(t0, n, rate)
            continue
        addr = ai[0][4][0]
        resolved += 1
        if addr != want:
            out.write({"kind": "error", "name": name, "error": "resolved to %s, want %s" % (addr, want)})
            errors += 1
            continue
        assert_loopback(socket.AF_INET, addr)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        t_1 = time.time()
        s.sendto(b"q", (addr, port))
        sport = s.getsockname()[1]
        s.close()
        flows += 1
        if n % 5 == 0:
            out.write({"kind": "dns", "pid": os.getpid(), "name": name, "dst": addr, "sport": sport,
                       "dport": port, "proto": "udp", "family": "v4", "t1": t_1})
        pace(t0, n, rate)
    out.close({"kind": "count", "queries": queries, "resolved": resolved, "flows": flows,
               "errors": errors, "seconds": time.monotonic() - t0})
    return 0


# ------------------------------------------------------------------ live / odd command loops

class Holder:
    """Flows held open until told to close them (looked up while open)."""

    def __init__(self):
        self.held = []
        self.listeners = {}

    def target(self, family, proto, dst):
        key = (family, proto, dst)
        if key not in self.listeners:
            fam = socket.AF_INET6 if family == "v6" else socket.AF_INET
            assert_loopback(fam, dst)
            s = socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
            s.bind((dst, 0))
            if proto == "tcp":
                s.listen(1024)
            self.listeners[key] = s
        return self.listeners[key]

    def make(self, family, proto, dst, sock=None):
        lst = self.target(family, proto, dst)
        fam = lst.family
        s = sock or socket.socket(fam, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
        dport = lst.getsockname()[1]
        if proto == "tcp":
            s.connect((dst, dport))
            c, _ = lst.accept()
            self.held.append(c)
        else:
            s.sendto(b"x", (dst, dport))
        self.held.append(s)
        return {"proto": proto, "family": family, "dst": dst, "sport": s.getsockname()[1], "dport": dport}

    def open(self, req):
        flows = []
        for family, proto, dst in req["kinds"]:
            for _ in range(req.get("n", 1)):
                flows.append(self.make(family, proto, dst))
        return {"ok": True, "pid": os.getpid(), "flows": flows}

    def close_all(self, req):
        for s in self.held:
            s.close()
        self.held = []
        return {"ok": True}


def fork_connect(holder, req):
    """The parent creates the socket, a forked child connects it and sends:
    owner child, creator parent. The child stays until close (its pipe)."""
    family, proto, dst = req["kind"]
    lst = holder.target(family, proto, dst)
    s = socket.socket(lst.family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    r, w = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.close(w2)
        try:
            dport = lst.getsockname()[1]
            if proto == "tcp":
                s.connect((dst, dport))
            else:
                s.sendto(b"x", (dst, dport))
            os.write(w, json.dumps({"sport": s.getsockname()[1], "dport": dport}).encode() + b"\n")
            os.read(r2, 1)   # until the parent closes its end
        finally:
            os._exit(0)
    os.close(w)
    os.close(r2)
    with os.fdopen(r) as rf:
        info = json.loads(rf.readline())
    if proto == "tcp":
        c, _ = lst.accept()
        holder.held.append(c)
    s.close()
    holder.children = getattr(holder, "children", []) + [(pid, w2)]
    return {"ok": True, "pid": pid, "creator": os.getpid(),
            "flow": dict(info, proto=proto, family=family, dst=dst)}


def scm_rights(holder, req):
    """A socket made here is passed with SCM_RIGHTS to a forked receiver
    that then makes the flow: owner receiver, creator this process."""
    family, proto, dst = req["kind"]
    lst = holder.target(family, proto, dst)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        a.close()
        os.close(r)
        try:
            msg, fds, _, _ = socket.recv_fds(b, 16, 1)
            s = socket.socket(fileno=fds[0])
            dport = lst.getsockname()[1]
            if proto == "tcp":
                s.connect((dst, dport))
            else:
                s.sendto(b"x", (dst, dport))
            os.write(w, json.dumps({"sport": s.getsockname()[1], "dport": dport}).encode() + b"\n")
            b.recv(1)   # until the parent closes the pair
        finally:
            os._exit(0)
    b.close()
    os.close(w)
    s = socket.socket(lst.family, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    socket.send_fds(a, [b"s"], [s.fileno()])
    s.close()
    with os.fdopen(r) as rf:
        info = json.loads(rf.readline())
    if proto == "tcp":
        c, _ = lst.accept()
        holder.held.append(c)
    holder.held.append(a)
    return {"ok": True, "pid": pid, "creator": os.getpid(),
            "flow": dict(info, proto=proto, family=family, dst=dst)}


def serve_holder(odd):
    holder = Holder()
    handlers = {
        "hello": lambda req: workcommon.hello(),
        "open": holder.open,
        "close": lambda req: close_all_and_children(holder),
        "fork_connect": lambda req: fork_connect(holder, req),
        "scm_rights": lambda req: scm_rights(holder, req),
    }
    if odd:
        def comm(req):
            set_comm_bytes(bytes.fromhex(req["hex"]))
            with open("/proc/self/comm", "rb") as f:
                return {"ok": True, "comm_hex": f.read().rstrip(b"\n").hex()}
        handlers["comm"] = comm
    return workcommon.serve(handlers, on_exit=lambda: close_all_and_children(holder))


def close_all_and_children(holder):
    holder.close_all({})
    for pid, w in getattr(holder, "children", []):
        os.close(w)
        os.waitpid(pid, 0)
    holder.children = []
    return {"ok": True}


def main(argv):
    kind = argv[1]
    if kind == "execs":
        return run_execs(float(argv[2]), float(argv[3]), argv[4])
    if kind == "flows":
        return run_flows(argv[2], argv[3], float(argv[4]), float(argv[5]), int(argv[6]), argv[7])
    if kind == "dns":
        names = []
        for a in argv[5:]:
            n, _, addr = a.partition("=")
            names.append((n, addr))
        return run_dns(float(argv[2]), float(argv[3]), argv[4], names)
    if kind in ("live", "odd"):
        return serve_holder(kind == "odd")
    raise SystemExit("unknown kind %r" % kind)


if __name__ == "__main__":
    sys.exit(main(sys.argv))

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
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import workcommon  # noqa: E402
from workcommon import Children, fork_reporter, make_flow, pace, recv_fd, send_fd  # noqa: E402

MAX_FLOWS_PER_WORKER = 200000
MAX_EXECS = 100000
LINGER_RST = struct.pack("ii", 1, 0)
V4_BULK_DSTS = ("127.0.0.1", "127.9.0.1", "127.200.3.4")
V6_BULK_DSTS = ("::1",)

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

    def open(self, target, connected_udp):
        """One flow to target, the socket left open. TCP closes with RST
        (no TIME_WAIT, so ports do not run out)."""
        s = socket.socket(self.fam, self.stype)
        if self.proto == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RST)
        proto = self.proto if self.proto == "tcp" else "udpc" if connected_udp else "udp"
        try:
            return make_flow(s, proto, target, b"x")
        except OSError:
            s.close()
            raise

    def one(self, target, connected_udp):
        """One flow to target, closed at once; its source port."""
        with self.open(target, connected_udp) as s:
            return s.getsockname()[1]

    def sample(self, target, connected_udp):
        """One flow from a forked child, reported, then closed and the
        child gone. A TCP one is reported while open and closed once we
        accepted it (it makes the inbound sample: accepted by the worker,
        who called listen()). The child's record, or None."""
        def job(keep):
            rec = {"pid": os.getpid(), "t0": time.time()}
            s = self.open(target, connected_udp)
            keep.append(s)
            rec.update({"sport": s.getsockname()[1], "t1": time.time()})
            return rec
        pid, rec, hold_w = fork_reporter(job, hold=self.proto == "tcp")
        if hold_w is not None:
            if rec and rec.get("ok") is not False:
                self.drain()   # accepts the sample while it is open
            os.close(hold_w)   # the child closes it and exits
            os.waitpid(pid, 0)
        return rec if rec and rec.get("ok") is not False else None


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
                rec = fl.sample(fl.sample_target[1], connected_udp)
                if rec:
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
        self.children = Children()

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

    def make(self, family, proto, dst):
        lst = self.target(family, proto, dst)
        s = socket.socket(lst.family, workcommon.sock_type(proto))
        dport = lst.getsockname()[1]
        make_flow(s, proto, (dst, dport), b"x")
        if proto == "tcp":
            c, _ = lst.accept()
            self.held.append(c)
        self.held.append(s)
        return {"proto": proto, "family": family, "dst": dst, "sport": s.getsockname()[1], "dport": dport}

    def open(self, req):
        flows = []
        for family, proto, dst in req["kinds"]:
            for _ in range(req.get("n", 1)):
                flows.append(self.make(family, proto, dst))
        return {"ok": True, "pid": os.getpid(), "flows": flows}

    def close_all(self):
        """Close every held socket, then let the children go (reaped)."""
        for s in self.held:
            s.close()
        self.held = []
        self.children.release()
        return {"ok": True}

    def by_child(self, req, sock, job):
        """The flow of req["kind"] made by a forked child with job(keep,
        lst) (kept open until close); sock, made here, is closed after.
        The answer: owner the child, creator this process."""
        family, proto, dst = req["kind"]
        lst = self.target(family, proto, dst)
        pid, info, hold_w = fork_reporter(lambda keep: job(keep, lst))
        self.children.add(pid, hold_w)
        if info is None or info.get("ok") is False:
            sock.close()
            return {"ok": False, "error": "child %d: %r" % (pid, info)}
        if proto == "tcp":
            c, _ = lst.accept()
            self.held.append(c)
        sock.close()
        return {"ok": True, "pid": pid, "creator": os.getpid(),
                "flow": dict(info, proto=proto, family=family, dst=dst)}


def child_flow(keep, s, proto, dst, lst):
    """In a forked child: the flow on s to lst; {sport, dport}."""
    keep.append(s)
    dport = lst.getsockname()[1]
    make_flow(s, "tcp" if proto == "tcp" else "udp", (dst, dport), b"x")
    return {"sport": s.getsockname()[1], "dport": dport}


def fork_connect(holder, req):
    """The parent creates the socket, a forked child connects it and sends:
    owner child, creator parent. The child stays until close."""
    family, proto, _dst = req["kind"]
    s = socket.socket(holder.target(*req["kind"]).family, workcommon.sock_type(proto))
    return holder.by_child(req, s, lambda keep, lst: child_flow(keep, s, proto, req["kind"][2], lst))


def scm_rights(holder, req):
    """A socket made here is passed with SCM_RIGHTS to a forked receiver
    that then makes the flow: owner receiver, creator this process."""
    family, proto, _dst = req["kind"]
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    s = socket.socket(holder.target(*req["kind"]).family, workcommon.sock_type(proto))
    with a, b:
        send_fd(a, s.fileno(), b"s")   # in flight until the child takes it
        s.close()
        return holder.by_child(req, s, lambda keep, lst: child_flow(keep, recv_fd(b), proto,
                                                                   req["kind"][2], lst))


def serve_holder(odd):
    holder = Holder()
    handlers = {
        "hello": lambda req: workcommon.hello(),
        "open": holder.open,
        "close": lambda req: holder.close_all(),
        "fork_connect": lambda req: fork_connect(holder, req),
        "scm_rights": lambda req: scm_rights(holder, req),
    }
    if odd:
        def comm(req):
            workcommon.set_comm(bytes.fromhex(req["hex"]))
            with open("/proc/self/comm", "rb") as f:
                return {"ok": True, "comm_hex": f.read().rstrip(b"\n").hex()}
        handlers["comm"] = comm
    return workcommon.serve(handlers, on_exit=holder.close_all)


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

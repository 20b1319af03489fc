#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Workload process for the history-store tests (stdlib only).

    storeworkload.py CGROUP_DIR [--comm NAME] serve
    storeworkload.py CGROUP_DIR [--comm NAME] flood --dst-base 127.0.N.0
                     --n-dst K --count N [--first-port P] [--rate PER_SECOND]

First thing either way: it writes its own pid to CGROUP_DIR/cgroup.procs, so
every socket it makes afterwards is seen by the programs attached to that
cgroup; then it sets its comm.

serve: answers one JSON command per stdin line with one JSON line:
  {"cmd":"hello"}                        -> {pid, comm, exe, cmdline, cgroup}
  {"cmd":"tcp","host":H,"port":P}        -> {sport, dport, dst, cookie} (connect,
                                            socket kept open)
  {"cmd":"udp","host":H,"port":P}        -> {sport, dport, dst, cookie} (sendto on
                                            a new unconnected socket, kept open)
  {"cmd":"udpflood","hosts":[..],"first_port":P,"n":N}
                                         -> {sports, n}  N new flows: sendto
                                            distinct (host, port) pairs
  {"cmd":"exit"}                         -> exits 0

flood: sends N datagrams, each to a (dst, dport) never used before by this
process, over unconnected sockets (a new socket, hence a new sport, every
time the port range wraps), so every datagram is a new flow; writes
"started" and "done N SECONDS" lines on stdout.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from workcommon import cookie_of as cookie, enter_cgroup, hello, serve, set_comm  # noqa: E402


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


def udpflood(hosts, first_port, n, rate=0):
    """n new flows; a fresh socket per host pass so keys never repeat.
    rate > 0: at most that many per second (paced in chunks of 200)."""
    socks, sports = [], []
    cur_host, s = None, None
    sent = 0
    t0 = time.monotonic()
    for h, p in flood_pairs(hosts, first_port, n):
        if rate and sent % 200 == 0:
            ahead = sent / rate - (time.monotonic() - t0)
            if ahead > 0:
                time.sleep(ahead)
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
    for s in socks:
        s.close()
    return sports, sent


def _hello(req):
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = [a.decode() for a in f.read().split(b"\0")[:-1]]
    return hello(cmdline=cmdline)


def _tcp(req):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((req["host"], req["port"]))
    _keep.append(s)
    return {"ok": True, "sport": s.getsockname()[1], "dport": req["port"],
            "dst": req["host"], "cookie": cookie(s), "t": time.time()}


def _udp(req):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(b"connpid-store-test", (req["host"], req["port"]))
    _keep.append(s)
    return {"ok": True, "sport": s.getsockname()[1], "dport": req["port"],
            "dst": req["host"], "cookie": cookie(s), "t": time.time()}


def _udpflood(req):
    sports, n = udpflood(req["hosts"], req.get("first_port", 1024), req["n"])
    return {"ok": True, "sports": sports, "n": n}


_keep = []
HANDLERS = {"hello": _hello, "tcp": _tcp, "udp": _udp, "udpflood": _udpflood}


def main(argv):
    cgroup = argv[0]
    args = argv[1:]
    comm = None
    if "--comm" in args:
        i = args.index("--comm")
        comm = args[i + 1]
        del args[i:i + 2]
    # Move ourselves into the test cgroup before any socket exists.
    enter_cgroup(cgroup)
    if comm:
        set_comm(comm)
    mode = args[0]
    if mode == "flood":
        opts = dict(zip(args[1::2], args[2::2]))
        base = opts["--dst-base"].rsplit(".", 1)[0]
        hosts = ["%s.%d" % (base, i + 1) for i in range(int(opts.get("--n-dst", "1")))]
        n = int(opts["--count"])
        first = int(opts.get("--first-port", "1024"))
        rate = float(opts.get("--rate", "0"))
        print("started", flush=True)
        t0 = time.monotonic()
        _, sent = udpflood(hosts, first, n, rate)
        print("done %d %.3f" % (sent, time.monotonic() - t0), flush=True)
        # Stay until told to go (stdin EOF) so the flows' pid stays alive.
        sys.stdin.read()
        return 0
    return serve(HANDLERS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

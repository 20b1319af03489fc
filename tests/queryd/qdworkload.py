#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Workload process for the connpid-queryd tests (stdlib only).

    qdworkload.py CGROUP_DIR [--comm NAME] [padding args ...]

First thing: it writes its own pid to CGROUP_DIR/cgroup.procs, so every
socket it makes afterwards is seen by the programs attached to that cgroup.
Then it answers commands, one JSON object per line on stdin, with one JSON
line on stdout:

  {"cmd":"hello"}                      -> {pid, comm, exe, cgroup}
  {"cmd":"tcp","host":H,"port":P}      -> {sport, dport, dst}   (connect)
  {"cmd":"udpc","host":H,"port":P}     -> {sport, dport, dst}   (connect+send)
  {"cmd":"udp","host":H,"ports":[..]}  -> {sport, dports}       (sendto each,
                                           one unconnected socket)
  {"cmd":"udpflood","host":H,"base":B,"n":N} -> {sport, n}      (sendto B..B+N-1)
  {"cmd":"exit"}                       -> exits 0 (sockets close)

Every socket stays open until exit, so TCP flows stay established.
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from workcommon import enter_cgroup, hello, serve, set_comm  # noqa: E402


def _tcp(req):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((req["host"], req["port"]))
    _keep.append(s)
    return {"ok": True, "sport": s.getsockname()[1], "dport": req["port"], "dst": req["host"]}


def _udpc(req):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((req["host"], req["port"]))
    s.send(b"connpid-queryd-test")
    _keep.append(s)
    return {"ok": True, "sport": s.getsockname()[1], "dport": req["port"], "dst": req["host"]}


def _udp(req):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for p in req["ports"]:
        s.sendto(b"x", (req["host"], p))
    _keep.append(s)
    return {"ok": True, "sport": s.getsockname()[1], "dports": req["ports"], "dst": req["host"]}


def _udpflood(req):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    base, n = req["base"], req["n"]
    for p in range(base, base + n):
        s.sendto(b"x", (req["host"], p))
    _keep.append(s)
    return {"ok": True, "sport": s.getsockname()[1], "n": n}


_keep = []   # every socket stays open until exit
HANDLERS = {"hello": lambda req: hello(), "tcp": _tcp, "udpc": _udpc, "udp": _udp,
            "udpflood": _udpflood}


def main(argv):
    cgroup = argv[0]
    comm = None
    if "--comm" in argv:
        comm = argv[argv.index("--comm") + 1]
    # Move ourselves into the test cgroup before any socket exists.
    enter_cgroup(cgroup)
    if comm:
        set_comm(comm)
    return serve(HANDLERS)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

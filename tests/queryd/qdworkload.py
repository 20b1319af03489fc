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
import ctypes
import json
import os
import socket
import sys

PR_SET_NAME = 15


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main(argv):
    cgroup = argv[0]
    comm = None
    if "--comm" in argv:
        comm = argv[argv.index("--comm") + 1]
    # Move ourselves into the test cgroup before any socket exists.
    with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    if comm:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_NAME, comm.encode()[:15], 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl")
    keep = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "hello":
                with open("/proc/self/comm") as f:
                    c = f.read().rstrip("\n")
                with open("/proc/self/cgroup") as f:
                    cg = f.read().strip()
                emit({"ok": True, "pid": os.getpid(), "comm": c,
                      "exe": os.readlink("/proc/self/exe"), "cgroup": cg})
            elif cmd == "tcp":
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(10)
                s.connect((req["host"], req["port"]))
                keep.append(s)
                emit({"ok": True, "sport": s.getsockname()[1],
                      "dport": req["port"], "dst": req["host"]})
            elif cmd == "udpc":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.connect((req["host"], req["port"]))
                s.send(b"connpid-queryd-test")
                keep.append(s)
                emit({"ok": True, "sport": s.getsockname()[1],
                      "dport": req["port"], "dst": req["host"]})
            elif cmd == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                for p in req["ports"]:
                    s.sendto(b"x", (req["host"], p))
                keep.append(s)
                emit({"ok": True, "sport": s.getsockname()[1],
                      "dports": req["ports"], "dst": req["host"]})
            elif cmd == "udpflood":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                base, n = req["base"], req["n"]
                for p in range(base, base + n):
                    s.sendto(b"x", (req["host"], p))
                keep.append(s)
                emit({"ok": True, "sport": s.getsockname()[1], "n": n})
            elif cmd == "exit":
                emit({"ok": True})
                return 0
            else:
                emit({"ok": False, "error": "unknown cmd %s" % cmd})
        except OSError as e:
            emit({"ok": False, "error": str(e), "errno": e.errno})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Workload of the Community ID test (stdlib only): enters CGROUP_DIR,
sets its comm, then answers one JSON command per stdin line:
  {"cmd":"hello"}                          -> {pid, comm, exe, cgroup}
  {"cmd":"tcp","host":H,"port":P}          -> {sport} (connect, kept open)
  {"cmd":"udpc","host":H,"port":P}         -> {sport} (connect + send, kept open)
H may be v4 or v6."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from workcommon import enter_cgroup, hello, serve, set_comm  # noqa: E402

_keep = []


def _sock(host, kind):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, kind)
    _keep.append(s)
    return s


def _tcp(req):
    s = _sock(req["host"], socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect((req["host"], req["port"]))
    s.sendall(b"community-id")
    return {"ok": True, "sport": s.getsockname()[1], "t": time.time()}


def _udpc(req):
    s = _sock(req["host"], socket.SOCK_DGRAM)
    s.connect((req["host"], req["port"]))
    s.send(b"community-id")
    return {"ok": True, "sport": s.getsockname()[1], "t": time.time()}


def main(argv):
    enter_cgroup(argv[0])
    set_comm(argv[1])
    return serve({"hello": lambda req: hello(), "tcp": _tcp, "udpc": _udpc})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

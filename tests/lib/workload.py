#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A workload process for connpid's integration tests (stdlib only).

    workload.py ACTION HOST PORT [--comm NAME] [--timeout S]

The harness starts it already inside the test cgroup (its preexec_fn writes
the child's pid to cgroup.procs before exec), so every socket made here is
seen by the programs attached to that cgroup.

ACTION: tcp4, tcp6, tcp4mapped (AF_INET6 socket to ::ffff:a.b.c.d),
udp4, udp6, udp4mapped (unconnected sendto), udp4c, udp6c, udp4mappedc
(connect + send).

Prints one JSON line: {"ok":true, pid, tid, comm, family, proto, sport, src,
dst, dport, cookie} or {"ok":false, errno, error, pid, ...} when the first
connect/send failed. Then reads stdin: each "send" line sends once more on
the same socket and answers {"ok":true,"sent":N} (or an error line); EOF
ends the process, so the flow stays live while the test checks.
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workcommon import cookie_of, emit, read_comm, set_comm  # noqa: E402

ACTIONS = {
    # action: (family, type, connected)
    "tcp4": (socket.AF_INET, socket.SOCK_STREAM, True),
    "tcp6": (socket.AF_INET6, socket.SOCK_STREAM, True),
    "tcp4mapped": (socket.AF_INET6, socket.SOCK_STREAM, True),
    "udp4": (socket.AF_INET, socket.SOCK_DGRAM, False),
    "udp6": (socket.AF_INET6, socket.SOCK_DGRAM, False),
    "udp4c": (socket.AF_INET, socket.SOCK_DGRAM, True),
    "udp6c": (socket.AF_INET6, socket.SOCK_DGRAM, True),
    "udp4mapped": (socket.AF_INET6, socket.SOCK_DGRAM, False),
    "udp4mappedc": (socket.AF_INET6, socket.SOCK_DGRAM, True),
}


def main(argv):
    args = list(argv)
    comm = None
    timeout = 5.0
    if "--comm" in args:
        i = args.index("--comm")
        comm = args[i + 1]
        del args[i:i + 2]
    if "--timeout" in args:
        i = args.index("--timeout")
        timeout = float(args[i + 1])
        del args[i:i + 2]
    if len(args) != 3 or args[0] not in ACTIONS:
        sys.stderr.write(__doc__)
        return 2
    action, host, port = args[0], args[1], int(args[2])
    family, stype, connected = ACTIONS[action]
    if comm:
        set_comm(comm)
    base = {"pid": os.getpid(), "tid": threading.get_native_id(),
            "action": action}
    base["comm"] = read_comm()

    s = socket.socket(family, stype)
    s.settimeout(timeout)
    addr = (host, port)
    payload = b"connpid-test"

    def send_once():
        if stype == socket.SOCK_STREAM:
            s.sendall(payload)
            return len(payload)
        if connected:
            return s.send(payload)
        return s.sendto(payload, addr)

    try:
        if connected:
            s.connect(addr)
        send_once()
    except OSError as e:
        emit(dict(base, ok=False, errno=e.errno, error=str(e)))
    else:
        local = s.getsockname()
        remote = s.getpeername() if connected else addr
        cookie = cookie_of(s)
        emit(dict(base, ok=True,
                  family="ipv4" if family == socket.AF_INET else "ipv6",
                  proto="tcp" if stype == socket.SOCK_STREAM else "udp",
                  src=local[0], sport=local[1], dst=remote[0],
                  dport=remote[1], cookie=cookie))

    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "send":
            try:
                emit({"ok": True, "sent": send_once()})
            except OSError as e:
                emit({"ok": False, "errno": e.errno, "error": str(e)})
        elif cmd:
            emit({"ok": False, "error": "unknown command %r" % cmd})
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

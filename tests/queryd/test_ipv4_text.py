#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 15: queryd writes IPv4 addresses by hand (flow-json.c ip_text),
not with inet_ntop(). Flows between loopback addresses whose octets have
one, two and three digits (0, 9, 10, 99, 100, 255 ...): the FLOW's "src"
and "dst" must be exactly what inet_ntop() writes, by lookup and in the
"recent" list."""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from harness import CgroupEnv, Client, case, check, check_eq, log, run_cases  # noqa: E402

OCTETS = (0, 1, 9, 10, 42, 99, 100, 199, 200, 254, 255)


def addresses():
    """127.a.b.c with every octet of OCTETS in each position (c never 0
    or 255 as a destination: no broadcast or network address)."""
    out = []
    for i, v in enumerate(OCTETS):
        w = OCTETS[-1 - i]
        out.append("127.%d.%d.%d" % (v, w, max(1, min(v, 254))))
        out.append("127.%d.%d.%d" % (w, v, max(1, min(w, 254))))
    return out


@case
def ipv4_text(env):
    env.load()
    env.no_store_daemon()
    addrs = addresses()
    socks = []
    seen = 0
    with Client(env.sock, 30) as cl:
        pid = os.fork()
        if pid == 0:   # the sender lives in the env's cgroup
            try:
                with open(os.path.join(env.cgroup, "cgroup.procs"), "w") as f:
                    f.write("0")
                for i, dst in enumerate(addrs):
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.bind((addrs[-1 - i], 0))
                    s.sendto(b"x", (dst, 9))
                    socks.append(s)
                os.write(1, b"")
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
        for ev in cl.request({"op": "recent", "limit": 200})["flows"]:
            if ev.get("dst") in addrs:
                src = addrs[-1 - addrs.index(ev["dst"])]
                check_eq(ev["src"], src, "recent src")
                ans = cl.lookup_raw("udp", ev["dst"], ev["sport"], 9)
                check(ans.get("found"), "lookup %s" % ev["dst"], ans)
                check_eq((ans["flow"]["src"], ans["flow"]["dst"]), (src, ev["dst"]), "lookup src, dst")
                check_eq(socket.inet_ntoa(socket.inet_aton(ans["flow"]["dst"])), ans["flow"]["dst"], "canonical")
                seen += 1
    log("%d flows checked" % seen)
    check_eq(seen, len(addrs), "flows found")


if __name__ == "__main__":
    run_cases(make_env=CgroupEnv, tag="ip4")

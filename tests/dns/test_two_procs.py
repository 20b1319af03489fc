#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 5: two processes resolve different names that dnsmasq
(in a network namespace) answers with the same address, 127.0.0.3; both
resolve before either connects, so the global "last answer" alone would
give one of them the other's name. Each connection gets its own
process's name, source "same-process":

- glibc getaddrinfo (packet and uprobe both seen);
- a raw query from a connected UDP socket (packet only, no getaddrinfo).

A third process that resolved nothing gets the address's latest name,
source "global"."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import check, check_domain, check_eq, run_cases  # noqa: E402

IP = "127.0.0.3"
RECORDS = ("--host-record=one.example.test,%s" % IP, "--host-record=two.example.test,%s" % IP)


def two_processes(env, how):
    cl = env.start()
    ns = env.new_netns()
    ns.dnsmasq(*RECORDS)
    a = env.py_client(ns, "process A")
    b = env.py_client(ns, "process B")
    for p, name in ((a, "one.example.test"), (b, "two.example.test")):
        if how == "getaddrinfo":
            r = p.cmd({"cmd": "resolve", "name": name})
            check_eq(r["addrs"], [IP], "getaddrinfo(%s)" % name)
        else:
            r = p.cmd({"cmd": "udpq", "name": name})
            check(not r.get("timeout"), "no answer to the raw query for %s" % name)
    # A after B resolved (global says "two"); B; then A again
    ca = a.cmd({"cmd": "connect", "ip": IP})
    cb = b.cmd({"cmd": "connect", "ip": IP})
    ca2 = a.cmd({"cmd": "connect", "ip": IP})
    for p, c, name, what in ((a, ca, "one.example.test", "A"), (b, cb, "two.example.test", "B"),
                             (a, ca2, "one.example.test", "A again")):
        f = env.domain_of(cl, "tcp", IP, c["sport"], c["dport"])
        check_eq(f.get("pid"), p.pid, "%s: flow pid" % what)
        check_domain(f, "%s (%s)" % (what, how), name, "same-process", "packet")
    c = env.py_client(ns, "process C (no lookup)")
    cc = c.cmd({"cmd": "connect", "ip": IP})
    f = env.domain_of(cl, "tcp", IP, cc["sport"], cc["dport"])
    check_domain(f, "C (%s)" % how, "two.example.test", "global", "packet")


def test_two_processes_getaddrinfo(env):
    two_processes(env, "getaddrinfo")


def test_two_processes_raw_udp(env):
    two_processes(env, "udp")


run_cases([test_two_processes_getaddrinfo, test_two_processes_raw_udp], "twoproc")

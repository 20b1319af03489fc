#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 3: a name that is a CNAME to another (and a two-hop
chain) resolved by a glibc program through a real dnsmasq in a network
namespace: the connection's domain is the name asked for, with the chain
from the question to the address record, in order."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import check_domain, check_eq, run_cases  # noqa: E402


def test_cname_chain(env):
    cl = env.start()
    ns = env.new_netns()
    ns.dnsmasq("--host-record=real.example.test,127.0.0.2",
               "--cname=api.example.test,real.example.test",
               "--host-record=deep.example.test,127.0.0.4",
               "--cname=mid.example.test,deep.example.test",
               "--cname=www.example.test,mid.example.test")
    cases = [
        ("api.example.test", "127.0.0.2", ["api.example.test", "real.example.test"]),
        ("www.example.test", "127.0.0.4",
         ["www.example.test", "mid.example.test", "deep.example.test"]),
    ]
    for name, ip, chain in cases:
        c = env.py_client(ns, "glibc client for %s" % name)
        r = c.cmd({"cmd": "resolve", "name": name})
        check_eq(r["addrs"], [ip], "getaddrinfo(%s)" % name)
        conn = c.cmd({"cmd": "connect", "ip": ip})
        f = env.domain_of(cl, "tcp", ip, conn["sport"], conn["dport"])
        check_eq(f.get("pid"), c.pid, "flow pid")
        check_domain(f, "connect after %s" % name, name, "same-process", "packet", chain=chain)


run_cases([test_cname_chain], "cname")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 1: a glibc program (python3's getaddrinfo) in the test
cgroup resolves a name through a real dnsmasq in a network namespace (its
own /etc/netns/<ns>/resolv.conf, not the host's), then connects to the
answer: lookup of that connection returns the name, source
"same-process", via "packet" (the response packet arrives before the
getaddrinfo() result and is kept), no CNAME chain, the record's TTL.
A second process in the same cgroup that connects to the same address
without resolving gets the name "global"."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import check, check_domain, check_eq, log, run_cases  # noqa: E402


def test_glibc_same_process(env):
    cl = env.start()
    ns = env.new_netns()
    ns.dnsmasq("--host-record=real.example.test,127.0.0.2,1234")
    before = env.stats(cl)
    c = env.py_client(ns, "glibc client")
    r = c.cmd({"cmd": "resolve", "name": "real.example.test"})
    check_eq(r["addrs"], ["127.0.0.2"], "getaddrinfo(real.example.test)")
    conn = c.cmd({"cmd": "connect", "ip": "127.0.0.2"})
    f = env.domain_of(cl, "tcp", "127.0.0.2", conn["sport"], conn["dport"])
    check_eq(f.get("pid"), c.pid, "flow pid")
    check_domain(f, "glibc connect", "real.example.test", "same-process", "packet",
                 chain=[], ttl=1234)
    after = env.stats(cl)
    log("stats before %s after %s" % (before, after))
    check(after["k_packets"] > before["k_packets"], "kernel counted no DNS packet", after)
    check(after["responses"] > before["responses"], "queryd parsed no DNS response", after)
    check(after["k_gai"] > before["k_gai"], "the getaddrinfo uprobe did not fire", after)
    check_eq(after["malformed"] - before["malformed"], 0, "dns_malformed rise")

    # another process that never resolved: only the global entry knows it
    other = env.py_client(ns, "second glibc client")
    conn2 = other.cmd({"cmd": "connect", "ip": "127.0.0.2"})
    f2 = env.domain_of(cl, "tcp", "127.0.0.2", conn2["sport"], conn2["dport"])
    check_eq(f2.get("pid"), other.pid, "second flow pid")
    check_domain(f2, "connect without resolving", "real.example.test", "global", "packet")


run_cases([test_glibc_same_process], "glibc")

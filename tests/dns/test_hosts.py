#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 4: a name only in a private /etc/hosts (inside the
network namespace, `unshare -m` + a hosts file bind-mounted over
/etc/hosts) resolved by a glibc program: no DNS packet exists (the
namespace's dnsmasq would answer another address, and the kernel's
dns_packets counter does not move), yet the connection gets the name,
known through the getaddrinfo uprobe: via "getaddrinfo", source
"getaddrinfo"."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dnsharness import check, check_domain, check_eq, log, run_cases  # noqa: E402


def test_private_hosts_file(env):
    cl = env.start()
    ns = env.new_netns()
    # dnsmasq knows the name too, with another address: a packet would show
    ns.dnsmasq("--host-record=hostsonly.example.test,127.0.0.8")
    hosts = os.path.join(env.tmp, "hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n127.0.0.7 hostsonly.example.test\n")
    before = env.stats(cl)
    c = env.py_client(ns, "glibc client with a private /etc/hosts",
                      wrap=("unshare", "-m", "sh", "-c",
                            'mount --bind "$0" /etc/hosts && exec "$@"', hosts))
    r = c.cmd({"cmd": "resolve", "name": "hostsonly.example.test"})
    check_eq(r["addrs"], ["127.0.0.7"], "getaddrinfo(hostsonly.example.test) (from the hosts file)")
    conn = c.cmd({"cmd": "connect", "ip": "127.0.0.7"})
    f = env.domain_of(cl, "tcp", "127.0.0.7", conn["sport"], conn["dport"])
    check_eq(f.get("pid"), c.pid, "flow pid")
    check_domain(f, "connect after a hosts-file lookup", "hostsonly.example.test",
                 "getaddrinfo", "getaddrinfo", chain=[])
    after = env.stats(cl)
    log("stats before %s after %s" % (before, after))
    check_eq(after["k_packets"] - before["k_packets"], 0, "DNS packets seen by the kernel")
    check_eq(after["responses"] - before["responses"], 0, "DNS responses parsed by queryd")
    check(after["k_gai"] > before["k_gai"], "the getaddrinfo uprobe did not fire", after)
    check(after["getaddrinfo"] > before["getaddrinfo"], "queryd took no getaddrinfo event", after)
    # the host's /etc/hosts was not touched
    with open("/etc/hosts") as f:
        check("hostsonly.example.test" not in f.read(), "the host's /etc/hosts changed")


run_cases([test_private_hosts_file], "hosts")

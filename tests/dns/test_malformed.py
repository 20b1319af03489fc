#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 5, item 6 (live): a test DNS server (dnsbadserver.py) on
127.0.0.53:53 in a network namespace answers a client in the test cgroup
(queries sent from a connected UDP socket) with malformed responses:
pointer loop, pointer to itself, forward pointer, label past the end, a
name over 253 characters, an obsolete label type, a NUL inside a label,
rdlen past the end, AAAA with rdlen 4, A with rdlen 16, a CNAME whose
name runs past its rdlen, a response cut inside a record, one cut inside
the question, garbage; and a valid 90-record response over 1 KiB, which
the kernel copies cut at 1024 bytes (counted as truncated). Also a
two-question response (valid, not counted, not used), one with QR clear
and one shorter than a header (the kernel does not pass them on).

Each bogus response carries a plausible A record for its own address
before the broken part. Checks: the kernel's dns_packets and queryd's
dns_malformed / dns_truncated rise by exactly the expected counts,
dns_responses does not move; a connection to any of those addresses gets
no domain; the daemon keeps answering, and a valid response sent after
all that is still parsed and attached (same-process).

test_unrelated_record: a valid response whose answer section also holds
an A record for a name neither asked nor reached through a CNAME: that
address must not get the question's name."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402
from dnsharness import check, check_domain, check_eq, log, run_cases, wait_until  # noqa: E402


def test_malformed_responses(env):
    cl = env.start()
    ns = env.new_netns()
    ns.bad_server()
    c = env.py_client(ns, "raw UDP client")
    before = env.stats(cl)
    want = {"malformed": 0, "truncated": 0, "k_packets": 0}
    for case, (_fn, _ip, counter, kernel) in dnsmsg.BOGUS.items():
        r = c.cmd({"cmd": "udpq", "name": "%s.bad.test" % case})
        check(not r.get("timeout"), "the test server did not answer case %s" % case)
        log("case %s: %d bytes back" % (case, r["len"]))
        if counter:
            want[counter] += 1
        if kernel:
            want["k_packets"] += 1

    def delta():
        s = env.stats(cl)
        return {k: s[k] - before[k] for k in ("malformed", "truncated", "k_packets",
                                                "responses", "k_drops")}
    wait_until(lambda: (lambda d: d["malformed"] + d["truncated"] >=
                        want["malformed"] + want["truncated"] and d)(delta()),
               timeout=5, what="the malformed counters")
    d = delta()
    log("stats delta %s, want %s" % (d, want))
    check_eq(d["k_drops"], 0, "dns_drops")
    check_eq(d["k_packets"], want["k_packets"], "kernel dns_packets rise")
    check_eq(d["malformed"], want["malformed"], "dns_malformed rise")
    check_eq(d["truncated"], want["truncated"], "dns_truncated rise")
    check_eq(d["responses"], 0, "dns_responses rise (nothing valid was sent)")

    cl.ping()
    for case, (_fn, ip, _counter, _kernel) in dnsmsg.BOGUS.items():
        if not ip:
            continue
        conn = c.cmd({"cmd": "connect", "ip": ip})
        f = env.domain_of(cl, "tcp", ip, conn["sport"], conn["dport"], want=False)
        check_eq(f.get("pid"), c.pid, "case %s: flow pid" % case)
        check(f.get("domain") is None,
              "case %s: a bogus answer's address %s got a domain" % (case, ip), f.get("domain"))

    # still working: a valid answer after all that is used
    r = c.cmd({"cmd": "udpq", "name": "good.bad.test"})
    check(not r.get("timeout"), "no answer for good.bad.test")
    conn = c.cmd({"cmd": "connect", "ip": "127.0.0.40"})
    f = env.domain_of(cl, "tcp", "127.0.0.40", conn["sport"], conn["dport"])
    check_domain(f, "valid answer after the bogus ones", "good.bad.test", "same-process",
                 "packet", chain=[], ttl=300)
    d = delta()
    check_eq(d["responses"], 1, "dns_responses rise after the valid answer")
    check(env.daemon_proc.poll() is None, "queryd died")


def test_unrelated_record(env):
    """A valid response to unrelated.bad.test whose answer section also
    holds `other.example.test A 127.0.0.27` (owner neither the question nor
    reached through a CNAME): the question's own address 127.0.0.41 gets
    the name, 127.0.0.27 must not be labelled unrelated.bad.test."""
    cl = env.start()
    ns = env.new_netns()
    ns.bad_server()
    c = env.py_client(ns, "raw UDP client")
    r = c.cmd({"cmd": "udpq", "name": "unrelated.bad.test"})
    check(not r.get("timeout"), "no answer for unrelated.bad.test")
    conn = c.cmd({"cmd": "connect", "ip": "127.0.0.41"})
    f = env.domain_of(cl, "tcp", "127.0.0.41", conn["sport"], conn["dport"])
    check_domain(f, "the question's own address", "unrelated.bad.test", "same-process", "packet",
                 chain=[])
    conn = c.cmd({"cmd": "connect", "ip": "127.0.0.27"})
    f = env.domain_of(cl, "tcp", "127.0.0.27", conn["sport"], conn["dport"], want=False)
    check(f.get("domain") is None,
          "an address whose record's owner (other.example.test) is not reached from the "
          "question got the question's name", f.get("domain"))


run_cases([test_malformed_responses, test_unrelated_record], "malformed", need_dnsmasq=False)

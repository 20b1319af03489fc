#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Writes the checked-in DNS message files (run again after changing
dnsmsg.py; the output is deterministic):

  corpus/ok-*.bin        valid responses: the fuzzer's seed corpus
  malformed/bad-*.bin    every bogus case of dnsmsg.BOGUS that
                         dns_parse_response() must call -EBADMSG, plus the
                         90-record response cut at 1024 bytes as the
                         kernel copies it
  malformed/nodata-*.bin valid messages that are not a one-question
                         response (-ENODATA)

test-dns-parse.c takes the expected result from the prefix."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dnsmsg as d  # noqa: E402

Q = 0x1234


def ok_files():
    qn = "www.example.test"
    yield "ok-a", d.valid_a(Q, "real.example.test", "127.0.0.2", ttl=1234)
    yield "ok-aaaa", d.response(Q, "v6.example.test",
                                [d.rr(d.QPTR, d.AAAA, bytes(15) + b"\x01")], qtype=d.AAAA)
    # www -> mid -> deep, then two A records for deep (compressed names)
    m = d.header(Q, an=4) + d.question(qn)
    mid_off = len(m) + 12
    m += d.rr(d.QPTR, d.CNAME, d.name("mid.example.test"))
    deep_off = len(m) + 12
    m += d.rr(b"\xc0" + bytes([mid_off]), d.CNAME, b"\x04deep\xc0" + bytes([12 + 4]))
    m += d.rr(b"\xc0" + bytes([deep_off]), d.A, d.ip4("127.0.0.4"), ttl=60)
    m += d.rr(b"\xc0" + bytes([deep_off]), d.A, d.ip4("127.0.0.5"), ttl=30)
    yield "ok-cname-chain", m
    yield "ok-nxdomain", d.header(Q, an=0, flags=0x8183) + d.question("nope.example.test")
    yield "ok-txt-and-a", d.response(Q, "mixed.example.test",
                                     [d.rr(d.QPTR, d.TXT, b"\x05hello"), d.a_rec("127.0.0.6")])
    yield "ok-uppercase", d.valid_a(Q, "MiXeD.Example.TEST", "127.0.0.7")
    yield "ok-root", d.header(Q, an=0) + b"\0" + b"\x00\x02\x00\x01"
    long = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])   # 253 characters
    yield "ok-253", d.valid_a(Q, long, "127.0.0.8")
    yield "ok-big", d.response(Q, "big.example.test", [d.a_rec("127.0.0.24")] * 90)


def bad_files():
    for case, (_fn, _ip, counter, kernel) in d.BOGUS.items():
        msg = d.bogus(case, Q, "%s.bad.test" % case)
        if case == "big":
            yield "bad-big-cut1024", msg[:1024]
        elif case in ("twoq", "notresp"):
            yield "nodata-" + case, msg
        else:
            yield "bad-" + case, msg
    long = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 62])   # 254 characters
    yield "bad-254", d.valid_a(Q, long, "127.0.0.8")
    yield "bad-empty", b""


def main():
    for sub, gen in (("corpus", ok_files), ("malformed", bad_files)):
        path = os.path.join(HERE, sub)
        os.makedirs(path, exist_ok=True)
        for n in os.listdir(path):
            if n.endswith(".bin"):
                os.unlink(os.path.join(path, n))
        for n, data in gen():
            with open(os.path.join(path, n + ".bin"), "wb") as f:
                f.write(data)


main()

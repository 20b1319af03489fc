#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A test DNS server on ADDR:53/udp (argv[1]) answering each query by its
first label: a case of dnsmsg.BOGUS gets that bogus response; "good"
gets one valid A record 127.0.0.40 (TTL 300); anything else a valid
answer 127.0.0.99. Logs one line per query."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnsmsg  # noqa: E402


def main():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 53))
    while True:
        data, peer = s.recvfrom(4096)
        try:
            qid, qname, qtype = dnsmsg.parse_query(data)
        except Exception as e:
            print("bad query from %s: %s" % (peer, e), flush=True)
            continue
        case = qname.split(".")[0]
        if case in dnsmsg.BOGUS or case in dnsmsg.UNRELATED:
            out = dnsmsg.bogus(case, qid, qname)
        elif case == "good":
            out = dnsmsg.valid_a(qid, qname, "127.0.0.40")
        else:
            out = dnsmsg.valid_a(qid, qname, "127.0.0.99")
        print("%s %s type %d -> %d bytes" % (peer, qname, qtype, len(out)), flush=True)
        s.sendto(out, peer)


main()

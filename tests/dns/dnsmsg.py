# SPDX-License-Identifier: GPL-2.0-or-later
"""DNS response builders shared by the test server (dnsbadserver.py) and
the corpus generator (gen-corpus.py). Every bogus case carries a valid-
looking A record for its own address (127.0.0.10 and up) before the part
that is broken, so a parser that half-trusts a message would cache it.

bogus(case, qid, qname) -> bytes; BOGUS maps case -> (address or None,
expected queryd counter: "malformed" | "truncated" | None (not counted),
whether the kernel passes it to queryd)."""
import struct

A, CNAME, AAAA, TXT = 1, 5, 28, 16


def name(n):
    out = b""
    for label in n.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def header(qid, qd=1, an=0, flags=0x8180):
    return struct.pack(">HHHHHH", qid, flags, qd, an, 0, 0)


def question(qname, qtype=A):
    return name(qname) + struct.pack(">HH", qtype, 1)


def rr(owner, rtype, rdata, ttl=300, rdlen=None):
    """owner: bytes (already encoded: a name or a pointer)."""
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata) if rdlen is None else rdlen) + rdata


QPTR = b"\xc0\x0c"   # the question name


def ip4(s):
    return bytes(int(x) for x in s.split("."))


def a_rec(ip, owner=QPTR, ttl=300):
    return rr(owner, A, ip4(ip), ttl)


def response(qid, qname, records, qtype=A, flags=0x8180):
    return header(qid, an=len(records), flags=flags) + question(qname, qtype) + b"".join(records)


def valid_a(qid, qname, ip, ttl=300):
    return response(qid, qname, [a_rec(ip, ttl=ttl)])


def _loop(qid, qname, ip):
    m = header(qid, an=2) + question(qname) + a_rec(ip)
    p = len(m)   # a label, then a pointer back to that label: a -> a -> a ...
    return m + b"\x01a" + struct.pack(">H", 0xc000 | p) + struct.pack(">HHIH", A, 1, 300, 4) + ip4(ip)


def _self_pointer(qid, qname, ip):
    m = header(qid, an=2) + question(qname) + a_rec(ip)
    p = len(m)
    return m + struct.pack(">H", 0xc000 | p) + struct.pack(">HHIH", A, 1, 300, 4) + ip4(ip)


def _forward(qid, qname, ip):
    m = header(qid, an=2) + question(qname) + a_rec(ip)
    p = len(m) + 2   # points at the type field that follows
    return m + struct.pack(">H", 0xc000 | p) + struct.pack(">HHIH", A, 1, 300, 4) + ip4(ip)


def _overrun(qid, qname, ip):
    return header(qid, an=2) + question(qname) + a_rec(ip) + b"\x3fab"


def _long_name(qid, qname, ip):
    long = ".".join(["x" * 63] * 5)   # 319 characters, each label legal
    return response(qid, qname, [a_rec(ip), rr(name(long), A, ip4(ip))])


def _label_type(qid, qname, ip):
    return response(qid, qname, [a_rec(ip), rr(b"\x41abc\x00", A, ip4(ip))])


def _rdlen(qid, qname, ip):
    return response(qid, qname, [a_rec(ip), rr(QPTR, A, ip4(ip), rdlen=200)])


def _aaaa4(qid, qname, ip):
    return response(qid, qname, [a_rec(ip), rr(QPTR, AAAA, ip4(ip))], qtype=AAAA)


def _a_rdlen16(qid, qname, ip):
    return response(qid, qname, [a_rec(ip), rr(QPTR, A, ip4(ip) * 4)])


def _cname_past_rdlen(qid, qname, ip):
    target = name("t.example.test")
    return response(qid, qname, [rr(QPTR, CNAME, target, rdlen=3), a_rec(ip)])


def _cut(qid, qname, ip):
    m = response(qid, qname, [a_rec(ip), a_rec(ip)])
    return m[:-3]


def _cut_header(qid, qname, ip):
    m = response(qid, qname, [a_rec(ip)])
    return m[:len(header(0)) + 5]   # inside the question name


def _garbage(qid, qname, ip):
    junk = bytes((i * 73 + 41) & 0xff for i in range(40))
    return header(qid, an=3) + b"\xff\xfe" + junk + ip4(ip) + junk


def _nul_in_label(qid, qname, ip):
    return response(qid, qname, [a_rec(ip), rr(b"\x03a\x00b\x00", A, ip4(ip))])


def _unrelated(qid, qname, ip):
    """Valid, but the A record's owner is neither the question nor reached
    from it through a CNAME: it names nothing the process asked for."""
    return response(qid, qname, [a_rec("127.0.0.41"), rr(name("other.example.test"), A, ip4(ip))])


def _big(qid, qname, ip):
    """A valid response of 90 A records (> 1 KiB): the kernel copies only
    the first 1024 bytes, queryd counts it as truncated."""
    return response(qid, qname, [a_rec(ip)] * 90)


def _two_questions(qid, qname, ip):
    return header(qid, qd=2, an=1) + question(qname) + question(qname) + a_rec(ip)


def _not_response(qid, qname, ip):
    return response(qid, qname, [a_rec(ip)], flags=0x0100)   # QR clear


def _short(qid, qname, ip):
    return header(qid)[:8]


# valid responses carrying an address that must not get the question's name
UNRELATED = {"unrelated": (_unrelated, "127.0.0.27")}

# case -> (builder, address, counter, kernel passes it to queryd)
BOGUS = {
    "loop": (_loop, "127.0.0.10", "malformed", True),
    "selfptr": (_self_pointer, "127.0.0.11", "malformed", True),
    "fwdptr": (_forward, "127.0.0.12", "malformed", True),
    "overrun": (_overrun, "127.0.0.13", "malformed", True),
    "longname": (_long_name, "127.0.0.14", "malformed", True),
    "labeltype": (_label_type, "127.0.0.15", "malformed", True),
    "rdlen": (_rdlen, "127.0.0.16", "malformed", True),
    "aaaa4": (_aaaa4, "127.0.0.17", "malformed", True),
    "ardlen16": (_a_rdlen16, "127.0.0.18", "malformed", True),
    "cnamerdlen": (_cname_past_rdlen, "127.0.0.19", "malformed", True),
    "cut": (_cut, "127.0.0.20", "malformed", True),
    "cuthdr": (_cut_header, "127.0.0.21", "malformed", True),
    "garbage": (_garbage, "127.0.0.22", "malformed", True),
    "nulabel": (_nul_in_label, "127.0.0.23", "malformed", True),
    "big": (_big, "127.0.0.24", "truncated", True),
    "twoq": (_two_questions, "127.0.0.25", None, True),
    "notresp": (_not_response, "127.0.0.26", None, False),
    "short": (_short, None, None, False),
}


def bogus(case, qid, qname):
    if case in UNRELATED:
        fn, ip = UNRELATED[case]
        return fn(qid, qname, ip)
    fn, ip, _, _ = BOGUS[case]
    return fn(qid, qname, ip or "127.0.0.99")


def parse_query(data):
    """(id, qname, qtype) of a query; raises on nonsense."""
    qid = struct.unpack(">H", data[:2])[0]
    pos, labels = 12, []
    while data[pos]:
        n = data[pos]
        labels.append(data[pos + 1:pos + 1 + n].decode())
        pos += 1 + n
    qtype = struct.unpack(">H", data[pos + 1:pos + 3])[0]
    return qid, ".".join(labels), qtype

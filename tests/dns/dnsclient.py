#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A glibc client for the DNS tests: python3's socket.getaddrinfo() is
glibc's getaddrinfo(). JSON lines on stdin/stdout; first line
{"ok": true, "pid": N}. Commands:
  {"cmd": "resolve", "name": N}       -> {"addrs": [IPv4...]}
  {"cmd": "connect", "ip": A}         -> {"sport", "dport"}: TCP connect to
      a listener this process opens on A:0 (same netns); both stay open
  {"cmd": "udpq", "name": N, "qtype": T, "server": S}
      -> {"len": n} | {"timeout": true}: one query from a connected UDP
      socket to S:53, one answer read
Keeps every socket until stdin closes."""
import json
import os
import socket
import struct
import sys

keep = []


def reply(obj):
    obj.setdefault("ok", True)
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def query(qid, name, qtype):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


def main():
    reply({"pid": os.getpid()})
    qid = 0x1000
    for line in sys.stdin:
        try:
            c = json.loads(line)
            if c["cmd"] == "resolve":
                infos = socket.getaddrinfo(c["name"], None, socket.AF_INET, socket.SOCK_STREAM)
                reply({"addrs": sorted({i[4][0] for i in infos})})
            elif c["cmd"] == "connect":
                lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                lst.bind((c["ip"], 0))
                lst.listen(16)
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.connect(lst.getsockname())
                keep.extend([lst, s])
                reply({"sport": s.getsockname()[1], "dport": lst.getsockname()[1]})
            elif c["cmd"] == "udpq":
                qid += 1
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(c.get("timeout", 3))
                s.connect((c.get("server", "127.0.0.53"), 53))
                s.send(query(qid, c["name"], c.get("qtype", 1)))
                try:
                    data = s.recv(65535)
                    reply({"len": len(data), "sport": s.getsockname()[1]})
                except socket.timeout:
                    reply({"timeout": True})
                s.close()
            elif c["cmd"] == "exit":
                reply({})
                return
            else:
                reply({"ok": False, "error": "unknown command %r" % c["cmd"]})
        except Exception as e:  # reported, not fatal
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})


main()

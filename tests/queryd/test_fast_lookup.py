#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 15: queryd reads the common lookup and ping lines by hand
(protocol.c fast_request) and everything else with json-c. Each line here
is sent as it is and again with an unknown member first ("zz":0), which
the hand reader refuses and json-c ignores: the two answers must be the
same bytes, found flows, refusals, ids and "fields" alike. Then the
same lines pipelined in one write, answered in order."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import check, check_eq, main  # noqa: E402


def raw_request(cl, line):
    """The answer line to one request line, as bytes."""
    cl.send_raw(line + b"\n")
    while b"\n" not in cl.buf:
        chunk = cl.sock.recv(1 << 20)
        check(chunk, "daemon closed the connection after %r" % line)
        cl.buf += chunk
    ans, _, cl.buf = cl.buf.partition(b"\n")
    return ans


def full_path(line):
    """The same request, but with a member only json-c reads."""
    i = line.index(b"{") + 1
    return line[:i] + b'"zz":0,' + line[i:]


def lines_for(sport, dport):
    base = b'"proto":"tcp","dst":"127.0.0.1","sport":%d,"dport":%d' % (sport, dport)
    out = [
        b'{"op":"lookup",%s}' % base,
        b'{"op":"lookup",%s,"id":7}' % base,
        b'{"op":"lookup",%s,"id":"req-1"}' % base,
        b'{"op":"lookup",%s,"id":123456789012345678}' % base,
        b'{"op":"lookup",%s,"id":0}' % base,
        b'{"op":"lookup",%s,"id":-3}' % base,
        b'{"op":"lookup",%s,"id":1.5}' % base,
        b'{"op":"lookup",%s,"id":"a\\/b"}' % base,
        b'{"op":"lookup",%s,"fields":["pid","comm","exe","container","domain"]}' % base,
        b'{"op":"lookup",%s,"fields":["in_map","pid","pid"],"id":9}' % base,
        b'{"op":"lookup",%s,"fields":[ "pid" , "sport" ]}' % base,
        b'{"op":"lookup",%s,"fields":[]}' % base,
        b'{"op":"lookup",%s,"fields":["nope"]}' % base,
        b'{"op":"lookup",%s,"fields":"pid"}' % base,
        b'{"op":"lookup",%s,"fields":[1]}' % base,
        b'{"fields":["pid"],"op":"lookup",%s}' % base,
        b' \t{ "op" : "lookup" , "dst" : "127.0.0.1" , "sport" : %d , "dport" : %d }\t ' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":"%d","dport":"%d","proto":6}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"proto":"TCP"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"proto":"udp"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"proto":"icmp"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"proto":300}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"proto":17}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":0,"dport":%d}' % dport,
        b'{"op":"lookup","dst":"127.0.0.1","sport":65536,"dport":%d}' % dport,
        b'{"op":"lookup","dst":"127.0.0.1","sport":"abc","dport":%d}' % dport,
        b'{"op":"lookup","dst":"127.0.0.1","sport":"0%d","dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":0%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d.0,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%de0,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":-%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d}' % sport,
        b'{"op":"lookup","dst":"127.0.0.1","sport":1,"sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d} trailing' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d}}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,}' % (sport, dport),
        b'{"op":"lookup","dst":"::1","sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"::ffff:127.0.0.1","sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"not-an-ip","sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1 ","sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"%s","sport":%d,"dport":%d}' % (b"9" * 300, sport, dport),
        b'{"op":"lookup","dst":127,"sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"direction":"outbound"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"netns":1}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"127.0.0.1"}' % (sport, dport),
        # src is read on the fast path too (proxies send it every time)
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"127.0.0.2"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"::ffff:127.0.0.1"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"::1"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"nope"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":7}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"127.0.0.1","src":"x"}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"127.0.0.1","fields":["pid"]}' % (sport, dport),
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"id":null}' % (sport, dport),
        b'{"op":"Lookup","dst":"127.0.0.1","sport":%d,"dport":%d}' % (sport, dport),
        b'{"op":"ping"}',
        b'{"op":"ping","id":5}',
        b'{"op":"ping","id":"x","dst":"127.0.0.1"}',
        b'{"op":"ping","id":"x","id":"y"}',
        b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"id":"\xc3\xa9"}' % (sport, dport),
    ]
    return out


def test(env):
    lport, d, w, cl = env.start("cpq-fast")
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    q = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": t["sport"], "dport": lport}
    cl.wait_found(q, "the TCP flow")

    lines = lines_for(t["sport"], lport)
    answers = []
    for line in lines:
        fast = raw_request(cl, line)
        full = raw_request(cl, full_path(line))
        check_eq(fast, full, "the same answer both ways to %r" % line)
        ans = json.loads(fast)
        check(isinstance(ans.get("ok"), bool), "an answer with ok to %r: %r" % (line, fast))
        answers.append(fast)
    found = json.loads(answers[0])
    check_eq((found["found"], found["flow"]["pid"], found["flow"]["in_map"]), (True, w.pid, True),
             "the plain lookup finds the workload's flow")
    check_eq(json.loads(answers[1]).get("id"), 7, "integer id echoed")
    check_eq(json.loads(answers[2]).get("id"), "req-1", "string id echoed")
    check_eq(sorted(json.loads(answers[8])["flow"]), sorted(["pid", "comm", "exe", "container", "domain"]),
             "fields on the hand-read path")
    check_eq(json.loads(answers[12])["error"]["code"], "invalid_argument", "unknown field refused")
    by_line = dict(zip(lines, answers))
    with_src = b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"127.0.0.1"}' % (t["sport"], lport)
    check_eq(json.loads(by_line[with_src]).get("found"), True, "the right src finds the flow")
    other_src = b'{"op":"lookup","dst":"127.0.0.1","sport":%d,"dport":%d,"src":"127.0.0.2"}' % (t["sport"], lport)
    check_eq(json.loads(by_line[other_src]).get("found"), False, "another src does not")

    # pipelined in one write: in order, the same bytes as one by one
    cl.send_raw(b"".join(line + b"\n" for line in lines))
    for i, line in enumerate(lines):
        while b"\n" not in cl.buf:
            chunk = cl.sock.recv(1 << 20)
            check(chunk, "daemon closed the connection in the pipelined round")
            cl.buf += chunk
        ans, _, cl.buf = cl.buf.partition(b"\n")
        check_eq(ans, answers[i], "pipelined answer %d to %r" % (i, line))
    check_eq(cl.request({"op": "ping"}).get("pong"), True, "the connection goes on")
    st = cl.request({"op": "stats"})["stats"]
    check(st["lookups_found"] > 0 and st["request_errors"] > 0, "stats count both paths: %r" % st)
    cl.close()
    check_eq(d.stop(), 0, "queryd exit on SIGTERM")
    w.exit()


if __name__ == "__main__":
    main(test, "fastlk")

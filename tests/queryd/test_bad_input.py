#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 3, item 4: bad input. Every malformed request gets its own
{"ok":false,"error":{"code":..,"message":..}} with the request's "id"
echoed, on one connection and on many connections in parallel; a line over
64 KiB gets line_too_long and that connection is closed; all the while the
daemon keeps answering ping and a real lookup on another connection."""
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import check, check_eq, main  # noqa: E402

MAX_LINE = 64 * 1024


def cases(sport, dport):
    good = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": sport, "dport": dport}

    def lk(**kw):
        r = dict(good)
        for k, v in kw.items():
            if v is None:
                r.pop(k, None)
            else:
                r[k] = v
        return r

    # (raw line or object, expected code, id expected back)
    return [
        (b'{"op":"ping"', "bad_json", False),
        (b'{"op": ping}', "bad_json", False),
        (b"not json at all", "bad_json", False),
        (b"[" * 5000 + b"]" * 5000, "bad_json", False),          # nesting bomb
        (b'[{"op":"ping"}]', "bad_request", False),
        (b'"ping"', "bad_request", False),
        (b"42", "bad_request", False),
        (b"null", "bad_request", False),
        ({"id": 1}, "bad_request", True),                          # missing op
        ({"id": "two", "op": 7}, "bad_request", True),             # op not a string
        ({"id": {"x": [3]}, "op": "frobnicate"}, "unknown_op", True),
        ({"id": 4, "op": ""}, "unknown_op", True),
        (dict(lk(sport=[sport]), id=5), "invalid_argument", True),     # sport as a list
        (dict(lk(dst=2130706433), id=6), "invalid_argument", True),    # dst as a number
        (dict(lk(proto="icmp"), id=7), "invalid_argument", True),
        (dict(lk(proto=["tcp"]), id=8), "invalid_argument", True),
        (dict(lk(sport=0), id=9), "invalid_argument", True),
        (dict(lk(dport=70000), id=10), "invalid_argument", True),
        (dict(lk(sport=-1), id=11), "invalid_argument", True),
        (dict(lk(sport=4294967297), id=12), "invalid_argument", True),  # 2^32+1 must not wrap
        (dict(lk(sport=443.0), id=13), "invalid_argument", True),
        (dict(lk(sport="12ab"), id=14), "invalid_argument", True),
        (dict(lk(dst="999.1.1.1"), id=15), "invalid_argument", True),
        (dict(lk(dst="not-an-ip"), id=16), "invalid_argument", True),
        (dict(lk(dst=""), id=17), "invalid_argument", True),
        (dict(lk(dst=None), id=18), "invalid_argument", True),         # missing dst
        (dict(lk(sport=None), id=19), "invalid_argument", True),       # missing sport
        ({"id": 20, "op": "recent", "limit": 0}, "invalid_argument", True),
        ({"id": 21, "op": "recent", "limit": "5"}, "invalid_argument", True),
        ({"id": 22, "op": "recent", "filter": {"color": "red"}}, "invalid_argument", True),
        ({"id": 23, "op": "recent", "filter": {"proto": "icmp"}}, "invalid_argument", True),
        ({"id": 24, "op": "recent", "filter": [1]}, "invalid_argument", True),
        ({"id": 25, "op": "watch", "filter": {"dport": 0}}, "invalid_argument", True),
        ({"id": 26, "op": "watch", "filter": {"dst": 5}}, "invalid_argument", True),
    ]


def encode(req):
    return req if isinstance(req, bytes) else json.dumps(req).encode()


def check_error(ans, req, code, want_id):
    shown = encode(req)[:80]
    check(ans is not None, "connection closed instead of an error for %r" % (shown,))
    check(ans.get("ok") is False, "ok:false for %r" % (shown,), ans)
    err = ans.get("error")
    check(isinstance(err, dict), "error object", ans)
    check_eq(err.get("code"), code, "error code for %r (message %r)" % (shown, err.get("message")))
    check(isinstance(err.get("message"), str) and err["message"], "error message", ans)
    if want_id:
        check_eq(ans.get("id"), req["id"], "id echoed")


def check_alive(env, sport, dport, pid):
    cl = env.client()
    try:
        ans = cl.request({"op": "ping", "id": "p"})
        check_eq((ans.get("ok"), ans.get("pong"), ans.get("id")), (True, True, "p"), "ping answer")
        # the FLOW shape's version (connpid(7), FLOW): 2 since issue 18
        check_eq(ans.get("schema"), 2, "ping says the FLOW schema version")
        ans = cl.request({"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": sport, "dport": dport})
        check(ans.get("found"), "real lookup found", ans)
        check_eq(ans["flow"]["pid"], pid, "real lookup pid")
        # ports and proto as strings are accepted (documented leniency)
        ans = cl.request({"op": "lookup", "proto": "TCP", "dst": "::ffff:127.0.0.1",
                          "sport": str(sport), "dport": str(dport)})
        check(ans.get("found") and ans["flow"]["pid"] == pid, "lookup with string ports / mapped dst", ans)
    finally:
        cl.close()


def too_long(env, with_prefix_request):
    """A line over 64 KiB: line_too_long, then the connection is closed."""
    cl = env.client()
    try:
        if with_prefix_request:
            ans = cl.request({"op": "ping", "id": 0})
            check(ans.get("pong"), "ping before the long line", ans)
        cl.send_raw(b'{"op":"ping","pad":"' + b"x" * (MAX_LINE + 100) + b'"}\n')
        ans = cl.read_line()
        check(ans is not None, "an error line before the close")
        check_eq(ans.get("ok"), False, "long line ok")
        check_eq(ans["error"]["code"], "line_too_long", "long line code")
        check(cl.read_line() is None, "connection closed after line_too_long")
    finally:
        cl.close()


def one_connection(env, sport, dport):
    cl = env.client()
    try:
        for req, code, want_id in cases(sport, dport):
            cl.send_raw(encode(req) + b"\n")
            check_error(cl.read_line(), req, code, want_id)
        # all of them pipelined in one write, answers in order
        blob = b"".join(encode(r) + b"\r\n" for r, _, _ in cases(sport, dport)) + b"\n\n"
        cl.send_raw(blob + b'{"op":"ping","id":"last"}\n')
        for req, code, want_id in cases(sport, dport):
            check_error(cl.read_line(), req, code, want_id)
        ans = cl.read_line()
        check_eq((ans.get("pong"), ans.get("id")), (True, "last"), "ping after the pipelined errors")
        # the longest line that fits (65535 bytes + newline) is still served
        base = b'{"op":"ping","id":"edge"}'
        cl.send_raw(base + b" " * (MAX_LINE - 1 - len(base)) + b"\n")
        ans = cl.read_line()
        check_eq((ans.get("ok"), ans.get("id")), (True, "edge"), "a 65535-byte line is served")
    finally:
        cl.close()


def test(env):
    _, lport = env.listener()
    w = env.workload()
    sport = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})["sport"]
    d = env.daemon()
    d.wait_ready()
    check_alive(env, sport, lport, w.pid)

    # sequential, one connection
    one_connection(env, sport, lport)
    check_alive(env, sport, lport, w.pid)
    too_long(env, False)
    too_long(env, True)
    check_alive(env, sport, lport, w.pid)

    # parallel: 16 connections of bad input, 4 long lines, 4 good clients
    errors = []

    def run(fn, *a):
        try:
            fn(*a)
        except BaseException as e:   # noqa: B036 - collect, report below
            errors.append("%s: %s" % (fn.__name__, e))

    threads = []
    for i in range(16):
        threads.append(threading.Thread(target=run, args=(one_connection, env, sport, lport)))
    for i in range(4):
        threads.append(threading.Thread(target=run, args=(too_long, env, i % 2 == 0)))
    for i in range(4):
        threads.append(threading.Thread(target=run, args=(check_alive, env, sport, lport, w.pid)))
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not any(t.is_alive() for t in threads), "a client thread hung")
    check(not errors, "parallel clients failed", *errors)

    check_alive(env, sport, lport, w.pid)
    cl = env.client()
    st = cl.request({"op": "stats"})["stats"]
    cl.close()
    n_err = len(cases(sport, lport)) * 2 * 17 + 2 + 4
    check(st["request_errors"] >= n_err, "stats.request_errors counts the errors (%d)" % n_err, st)
    check(d.alive(), "daemon alive", d.log())
    check_eq(d.stop(), 0, "queryd exit on SIGTERM (log %s)" % d.log())
    w.exit()


if __name__ == "__main__":
    main(test, "bad")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 15: "fields" on lookup, watch and recent gives the FLOW members
named and no others; a name that is no FLOW member, an empty list or a
non-list is refused (invalid_argument) and the connection goes on; the
answers written in place keep their order and ids when pipelined."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import check, check_eq, main  # noqa: E402

PROXY = ["pid", "comm", "exe", "container", "domain"]


def read_flow_events(cl, n, seconds=5.0):
    return cl.read_events(seconds, n=n, flows=True, poll=0.2)


def test(env):
    lport, d, w, cl = env.start("cpq-fields")

    # watchers first: one with fields, one without
    fw = env.client()
    ack = fw.request({"op": "watch", "filter": {"pid": w.pid}, "fields": ["pid", "dport", "proto"]})
    check_eq(ack.get("watching"), True, "watch with fields acknowledged (%r)" % ack)
    aw = env.client()
    check_eq(aw.request({"op": "watch", "filter": {"pid": w.pid}}).get("watching"), True, "plain watch")
    bad = cl.request({"op": "watch", "fields": ["pid", "no_such_member"], "id": 3})
    check_eq((bad.get("ok"), bad.get("error", {}).get("code"), bad.get("id")),
             (False, "invalid_argument", 3), "watch with an unknown field (%r)" % bad)
    deadline = time.monotonic() + 5
    while cl.request({"op": "stats"})["stats"]["watchers"] < 2:
        check(time.monotonic() < deadline, "watchers never registered")
        time.sleep(0.02)

    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    q = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": t["sport"], "dport": lport}
    cl.wait_found(q, "the TCP flow")

    full = cl.request(q)["flow"]
    for k in ("cmdline", "ancestors", "creator", "in_map", "community_id", "alive", "first_seen"):
        check(k in full, "a lookup without fields has %s (%r)" % (k, sorted(full)))
    ans = cl.request(dict(q, fields=PROXY, id="p1"))
    check_eq(sorted(ans), ["flow", "found", "id", "ok"], "answer members")
    check_eq((ans["ok"], ans["found"], ans["id"]), (True, True, "p1"), "answer with fields")
    check_eq(sorted(ans["flow"]), sorted(PROXY), "only the members asked for")
    check_eq({k: ans["flow"][k] for k in ("pid", "comm", "exe")},
             {"pid": w.pid, "comm": "cpq-fields", "exe": w.exe}, "values as in the full answer")
    check_eq({k: ans["flow"][k] for k in PROXY}, {k: full[k] for k in PROXY}, "same values as without fields")
    line = json.dumps(ans, separators=(",", ":"))
    check(len(line) < 400, "a proxy's answer is small: %d bytes (%s)" % (len(line), line))
    # order in the request does not matter; members come in FLOW order
    ans = cl.request(dict(q, fields=["in_map", "pid", "pid"]))
    check_eq(list(ans["flow"]), ["pid", "in_map"], "duplicates once, FLOW order")
    check_eq(ans["flow"]["in_map"], True, "in_map asked for")
    cid = cl.request({"op": "lookup", "community_id": full["community_id"], "fields": ["pid", "sport"]})
    check_eq(cid.get("flow"), {"pid": w.pid, "sport": t["sport"]}, "lookup by community_id with fields")

    # a history row (with "at") is a FLOW too: the same names, in FLOW
    # order, and its row_id
    hist = cl.request(dict(q, at=time.time() + 5, fields=["pid", "container", "cgroup"]))
    check_eq((hist.get("ok"), hist.get("found")), (True, True), "history lookup with fields (%r)" % hist)
    check_eq(list(hist["flow"]), ["pid", "cgroup", "container", "row_id"], "history row members with fields")
    check_eq(hist["flow"]["pid"], w.pid, "history row pid")
    check_eq(hist["flow"]["cgroup"], full["cgroup"], "history row cgroup as the live one")
    # and on the history op: each row has those members only
    rows = cl.request({"op": "history", "filter": {"pid": w.pid}, "fields": ["dport", "comm"]})
    check_eq([list(r) for r in rows.get("flows", [])], [["dport", "comm", "row_id"]],
             "history rows with fields (%r)" % rows)
    bad = cl.request({"op": "history", "fields": ["cgroup_path"]})
    check_eq(bad.get("error", {}).get("code"), "invalid_argument", "history: cgroup_path is no FLOW member")

    for f, what in ((["pid", "nope"], "unknown name"), ([], "empty list"), ("pid", "a string"),
                    ([1], "a number in the list"), ({"pid": 1}, "an object"), (None, "null")):
        ans = cl.request(dict(q, fields=f, id=what))
        check_eq((ans.get("ok"), ans.get("error", {}).get("code"), ans.get("id")),
                 (False, "invalid_argument", what), "fields as %s refused (%r)" % (what, ans))
    check_eq(cl.request({"op": "ping"}).get("pong"), True, "the connection goes on after refusals")

    # pipelined: answers in place and json-c answers interleaved, in order
    reqs = []
    for i in range(200):
        if i % 7 == 3:
            reqs.append({"op": "lookup", "dst": "127.0.0.1", "sport": t["sport"], "dport": lport,
                         "fields": ["bogus"], "id": i})
        elif i % 5 == 1:
            reqs.append({"op": "ping", "id": i})
        else:
            reqs.append(dict(q, fields=PROXY if i % 2 else ["pid"], id=i))
    cl.send_raw("".join(json.dumps(r) + "\n" for r in reqs).encode())
    for i in range(200):
        ans = cl.read_line()
        check_eq(ans.get("id"), i, "pipelined answer %d in order" % i)
        if i % 7 == 3:
            check_eq(ans["error"]["code"], "invalid_argument", "pipelined refusal %d" % i)
        elif i % 5 != 1:
            check_eq(sorted(ans["flow"]), sorted(PROXY if i % 2 else ["pid"]), "pipelined fields %d" % i)

    # watch: the watcher with fields gets those members, the other all
    got = read_flow_events(fw, 1)
    check_eq(got, [{"proto": "tcp", "dport": lport, "pid": w.pid}], "watch with fields")
    got = read_flow_events(aw, 1)
    check(len(got) == 1 and "cmdline" in got[0] and got[0]["sport"] == t["sport"], "plain watch: full FLOW", got)

    # recent with fields, and refused with an unknown one
    ports = [env.free_udp_port() for _ in range(3)]
    w.cmd({"cmd": "udp", "host": "127.0.0.1", "ports": ports})
    deadline = time.monotonic() + 5
    while True:
        rec = cl.request({"op": "recent", "limit": 3, "filter": {"pid": w.pid, "proto": "udp"},
                          "fields": ["dport", "comm"]})
        if len(rec.get("flows", [])) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    check_eq(rec.get("flows"), [{"dport": p, "comm": "cpq-fields"} for p in ports[::-1]], "recent with fields")
    rec = cl.request({"op": "recent", "fields": ["pid", "cmd_line"]})
    check_eq(rec.get("error", {}).get("code"), "invalid_argument", "recent with an unknown field (%r)" % rec)
    got = read_flow_events(fw, 3)
    check_eq(sorted(f["dport"] for f in got), sorted(ports), "watch with fields: the UDP flows")
    check(all(sorted(f) == ["dport", "pid", "proto"] for f in got), "watch with fields: members", got)

    for c in (fw, aw, cl):
        c.close()
    check_eq(d.stop(), 0, "queryd exit on SIGTERM")
    w.exit()


if __name__ == "__main__":
    main(test, "fields")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 14, history side, through queryd's socket: accepted (inbound)
flows in `history` and in `lookup` with "at".

The kernel part (loader --inbound) is not needed: the rows below are a
MOCK of what queryd's writer stores for inbound events (the writer itself
is covered by store_inbound_rows, which feeds it mock kernel events). They
are written with Python's sqlite3 into a schema-4 database queryd created,
while queryd is stopped; then queryd answers from them.

- history rows: "direction" always ("outbound"/"inbound"), "listener"
  {"pid","comm","start_time"} only when known, no listener_* columns.
- history filter "direction", "netns", "src" (v4-mapped folded, compared
  as rows store src), combined; bad values -> invalid_argument.
- lookup with "at": the same key outbound, inbound in two namespaces on
  two local addresses; "direction", "netns" and "src" pick the row.
"""
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import check, check_eq, history, log, main  # noqa: E402

T0 = 1700001000.0
# (pid, comm, src, sport, dst, dport, netns, direction, listener pid/start/comm)
ROWS = [
    (100, "curl", "10.0.0.1", 40000, "192.0.2.1", 443, 111, None, None, None, None),
    (200, "worker", "10.0.0.1", 8080, "192.0.2.9", 51000, 222, 1, 150, 4242, "listenerd"),
    (210, "sshd", "10.0.0.3", 22, "192.0.2.7", 52000, 333, 1, None, None, None),
    (201, "worker2", "10.0.0.2", 8080, "192.0.2.9", 51000, 444, 1, 151, 4343, "l2"),
    (300, "client", "10.0.0.1", 8080, "192.0.2.9", 51000, 555, 0, None, None, None),
]
UNTIL = T0 + 100


def seed_rows(db):
    con = sqlite3.connect(db)
    try:
        check_eq(con.execute("PRAGMA user_version").fetchone()[0], 4, "queryd made a schema-4 database")
        for i, r in enumerate(ROWS):
            con.execute("INSERT INTO connections (ts, proto, src, sport, dst, dport, pid, tid, uid, gid, comm, "
                        "netns, direction, listener_pid, listener_start_time, listener_comm) "
                        "VALUES (?, 6, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?, ?)",
                        (T0 + i, r[2], r[3], r[4], r[5], r[0], r[0], r[1], r[6], r[7], r[8], r[9], r[10]))
        con.commit()
    finally:
        con.close()


def request(env, req):
    with env.client() as c:
        return c.request(req)


def pids(rows):
    return sorted(r["pid"] for r in rows)


def check_rows(env):
    rows = history(env, {"until": UNTIL}, order="asc", limit=10)
    check_eq(len(rows), len(ROWS), "history returns the mock rows")
    for r, want in zip(rows, ROWS):
        what = "row pid %d" % want[0]
        check_eq(r.get("direction"), "inbound" if want[7] == 1 else "outbound", what + ": direction")
        check(not any(k.startswith("listener_") for k in r), what + ": no listener_* columns", r)
        if want[8] is None:
            # as in a live FLOW: null when unknown, absent when outbound
            if want[7] == 1:
                check("listener" in r and r["listener"] is None, what + ": listener null", r)
            else:
                check("listener" not in r, what + ": no listener", r)
            continue
        check_eq(r.get("listener"), {"pid": want[8], "comm": want[10], "start_time": want[9]},
                 what + ": listener")


def check_filters(env):
    cases = [
        ({"direction": "inbound"}, [200, 201, 210]),
        ({"direction": "outbound"}, [100, 300]),
        ({"netns": 444}, [201]),
        ({"netns": 4294967295}, []),
        ({"src": "10.0.0.2"}, [201]),
        ({"src": "::ffff:10.0.0.2"}, [201]),          # v4-mapped folds to the stored v4
        ({"src": "10.0.0.1"}, [100, 200, 300]),
        ({"src": "10.0.0.1", "direction": "inbound"}, [200]),
        ({"src": "10.0.0.1", "direction": "outbound", "netns": 555}, [300]),
        ({"src": "2001:db8::1"}, []),
        ({"direction": "inbound", "dport": 51000}, [200, 201]),
    ]
    for filt, want in cases:
        f = dict(filt, until=UNTIL)
        check_eq(pids(history(env, f, limit=50)), want, "history filter %r" % (filt,))
    bad = [("direction", "sideways"), ("direction", "Inbound"), ("direction", 1), ("direction", None),
           ("netns", 0), ("netns", -1), ("netns", 4294967296), ("netns", "444"), ("netns", 4.5),
           ("src", "nope"), ("src", ""), ("src", 10), ("src", "10.0.0.1/24"), ("src", None)]
    for key, val in bad:
        ans = history(env, {key: val}, ok=False)
        check(not ans.get("ok") and ans.get("error", {}).get("code") == "invalid_argument",
              "history filter %s=%r must be invalid_argument" % (key, val), ans)
        check(key in ans.get("error", {}).get("message", ""), "the error names %s" % key, ans)


def lookup_at(env, **scope):
    req = {"op": "lookup", "proto": "tcp", "dst": "192.0.2.9", "sport": 8080, "dport": 51000, "at": T0 + 50}
    req.update(scope)
    ans = request(env, req)
    check(ans.get("ok"), "lookup at %r answers" % (scope,), ans)
    return ans["flow"]["pid"] if ans.get("found") else None


def check_lookup_at(env):
    cases = [
        ({}, 300),                                              # default outbound
        ({"direction": "outbound"}, 300),
        ({"direction": "inbound"}, 201),                        # newest inbound
        ({"direction": "inbound", "netns": 222}, 200),
        ({"direction": "inbound", "src": "10.0.0.1"}, 200),
        ({"direction": "inbound", "src": "::ffff:10.0.0.2", "netns": 444}, 201),
        ({"direction": "inbound", "src": "10.0.0.2", "netns": 222}, None),
        ({"netns": 222}, None),                                 # outbound in 222: none
        ({"src": "10.0.0.1", "netns": 555}, 300),
    ]
    for scope, want in cases:
        check_eq(lookup_at(env, **scope), want, "lookup at with %r" % (scope,))
    # the inbound row's answer carries the listener, like a FLOW
    ans = request(env, {"op": "lookup", "proto": "tcp", "dst": "192.0.2.9", "sport": 8080, "dport": 51000,
                        "at": T0 + 50, "direction": "inbound", "netns": 222})
    fl = ans.get("flow", {})
    check(fl.get("direction") == "inbound" and fl.get("listener", {}).get("pid") == 150,
          "lookup at: inbound flow with its listener", ans)


def test(env):
    env.load()
    db = env.path("inbound.db")
    d = env.daemon(db=db)
    d.wait_ready()
    check_eq(d.stop(), 0, "queryd (creating the database) exit status")
    seed_rows(db)
    d = env.daemon(db=db)
    d.wait_ready()
    check_rows(env)
    check_filters(env)
    check_lookup_at(env)
    log("history and lookup-at with direction/netns/src: all as expected")
    check_eq(d.stop(), 0, "queryd exit status")


if __name__ == "__main__":
    main(test, "inb")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, "history off the loop": a history question runs on the
store's reader thread under a time budget, and past it answers
too_expensive instead of holding the daemon; a name filter that names
nothing stored answers at once; a large answer stops under 1 MiB with
"truncated" and a cursor that continues where it stopped.

A version-2 database with 300k rows (long command lines) is made with
Python's sqlite3 and migrated by queryd; the budget is lowered to 5 ms
(--query-budget-ms) so a full walk cannot fit in it here."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import check, check_eq, history, log, main  # noqa: E402
import test_migrations as tm  # noqa: E402

N = 300_000


def make(db):
    import sqlite3
    tm.make_v1(db)
    con = sqlite3.connect(db)
    con.executescript("DELETE FROM connections;" + tm.SCHEMA_V2_STEP)
    cmd = '["app","%s"]' % ("x" * 400)
    con.executemany("INSERT INTO connections (ts, proto, src, sport, dst, dport, pid, comm, exe, cmdline, "
                    "start_time, cgroup_id) VALUES (?, 'udp', '127.0.0.1', ?, '10.0.0.1', 53, ?, 'app', "
                    "'/usr/bin/app', ?, 1, 1)",
                    ((1.6e9 + i, 1024 + i % 60000, 1000 + i % 5, cmd) for i in range(N)))
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()


def test(env):
    env.load()
    db = env.path("big.db")
    make(db)
    d = env.daemon(db=db, extra=("--query-budget-ms", "5"))
    d.wait_ready()

    # a walk over 300k rows for a comm that matches none: over budget
    t = time.monotonic()
    ans = history(env, {"comm": "no-such-comm"}, ok=False)
    took = time.monotonic() - t
    log("comm miss:", ans, "%.3f s" % took)
    check(not ans.get("ok") and ans["error"]["code"] == "too_expensive", "too_expensive past the budget", ans)
    check(took < 2.0, "the answer comes soon after the budget, not after the walk", took)
    with env.client() as c:
        check(c.request({"op": "ping"}).get("pong"), "ping after an expensive question")

    # an exe nobody ran: answered from the processes table, no walk
    check_eq(history(env, {"exe": "/no/such/exe"}), [], "exe miss answers empty at once")

    # The rest under the default budget: rendering 300 rows takes more than
    # 5 ms in a sanitized build.
    d.stop()
    d = env.daemon(db=db)
    d.wait_ready()

    # newest rows: the time index, within budget; 300 rows x ~1 KiB: under
    # the cap, not truncated
    rows = history(env, {}, limit=300)
    check_eq(len(rows), 300, "newest 300 rows")
    check_eq(rows[0]["cmdline"][0], "app", "cmdline rendered as before (a list)")

    # 5000 rows x ~1 KiB > 1 MiB: truncated, with a cursor that goes on
    with env.client() as c:
        a = c.request({"op": "history", "limit": 5000})
        check(a.get("ok") and a.get("truncated") is True and a.get("cursor"), "truncated with a cursor",
              {k: v for k, v in a.items() if k != "flows"})
        n1 = len(a["flows"])
        check(0 < n1 < 5000, "a truncated page holds fewer rows than asked", n1)
        b = c.request({"op": "history", "limit": 5000, "cursor": a["cursor"]})
        check(b.get("ok") and b["flows"], "the cursor continues", {k: v for k, v in b.items() if k != "flows"})
        check_eq(b["flows"][0]["row_id"], a["flows"][-1]["row_id"] - 1, "the next page starts after the last row")
        bad = c.request({"op": "history", "cursor": "nonsense"})
        check_eq(bad["error"]["code"], "invalid_argument", "a bad cursor is refused")
    check_eq(d.stop(), 0, "queryd exit status")


if __name__ == "__main__":
    main(test, "hbud")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4, "locked database": another process holds the write lock on the
history database. Writes fail (SQLITE_BUSY after a short busy timeout, so
the loop never waits), counted in stats with a reason; lookups and ping
keep answering fast; when the lock goes away, writing resumes and the
queued rows reach the file."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import (check, check_eq, db_rows, history, log, lookup, main,  # noqa: E402
                          store_stats, wait_until)


def test(env):
    env.load()
    db = env.path("locked.db")
    d = env.daemon(db=db)
    d.wait_ready()
    w = env.workload(comm="cps-locked")
    lport = env.listener()
    first = w.tcp("127.0.0.1", lport)
    wait_until(lambda: store_stats(env)["rows_written"] >= 1, what="first row written")

    locker = sqlite3.connect(db, isolation_level=None, timeout=5)
    locker.execute("BEGIN IMMEDIATE")   # holds the write lock
    try:
        w.udpflood(["127.0.9.1"], 500)
        st = wait_until(lambda: (lambda s: s if s["write_errors"] > 0 else None)(store_stats(env)),
                        timeout=10, what="a write error while locked")
        log("while locked:", st)
        check_eq(st["writable"], False, "writable while locked")
        check("lock" in st.get("last_error", "").lower() or "busy" in st.get("last_error", "").lower(),
              "last_error says the database is locked", st)
        check(st["queue"] >= 500, "rows wait in the queue", st)
        t0 = time.monotonic()
        t = w.tcp("127.0.0.1", lport)
        ans = lookup(env, "tcp", "127.0.0.1", t["sport"], t["dport"])
        took = time.monotonic() - t0
        check(ans.get("found") and ans["flow"]["pid"] == w.pid, "live lookup while locked", ans)
        check(took < 1.0, "lookup while locked took %.3fs" % took)
        # Readers are not blocked by a writer in WAL mode.
        ans = lookup(env, "tcp", "127.0.0.1", first["sport"], first["dport"], at=time.time())
        log("lookup at while locked:", str(ans)[:300])
        check(d.proc.poll() is None, "queryd still running")
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    st = wait_until(lambda: (lambda s: s if s["queue"] == 0 and s["writable"] else None)(store_stats(env)),
                    timeout=15, what="writing resumed after the lock went away")
    log("after unlock:", st)
    check_eq(st["rows_written"], st["rows_queued"], "every queued row written")
    rows = history(env, {"pid": w.pid}, limit=1000)
    check_eq(len(rows), 502, "all rows of the locked period are in history")
    check_eq(d.stop(), 0, "queryd exit status")
    ic, rows = db_rows(db)
    check_eq(ic, ["ok"], "integrity_check")


if __name__ == "__main__":
    main(test, "lock")

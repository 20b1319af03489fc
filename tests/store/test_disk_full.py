#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4, item 4: a tmpfs too small for the database.

The DB lives on a 256 KiB tmpfs. Ingest is driven until writes fail; the
daemon keeps answering ping and lookups of live flows correctly; `stats`
shows store.write_errors > 0, writable false and a last_error; the failure
is logged once, not once per retry. After the tmpfs is enlarged (remount
size=64m) writing resumes: rows_written grows, the queue drains, writable
is true again, and the rows written during the outage are in `history`."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import (check, check_eq, db_rows, history, log, lookup, main,  # noqa: E402
                          store_stats, wait_until)


def test(env):
    env.load()
    mnt = env.path("small")
    os.mkdir(mnt)
    env.mount(["-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs"], mnt)
    db = os.path.join(mnt, "full.db")
    d = env.daemon(db=db)
    d.wait_ready()
    st = store_stats(env)
    check(st["enabled"] and st["writable"], "store starts enabled and writable on the tmpfs", st)

    # Fill it: each round makes new flows, until a write fails.
    w = env.workload(comm="cps-filler")
    rounds = 0

    def full():
        nonlocal rounds
        rounds += 1
        w.udpflood(["127.0.%d.1" % rounds], 2000, first_port=1024)
        time.sleep(0.25)
        s = store_stats(env)
        return s if s["write_errors"] > 0 else None

    st = wait_until(full, timeout=60, interval=0, what="a write error on the 256k tmpfs")
    log("after %d rounds: %s" % (rounds, st))
    check_eq(st["writable"], False, "store.writable while the disk is full")
    check(st.get("last_error"), "store.last_error set while the disk is full", st)
    check("full" in st["last_error"].lower() or "disk" in st["last_error"].lower(),
          "last_error names the reason (disk full)", st["last_error"])
    check(st["queue"] > 0, "rows wait in the queue", st)
    written_before = st["rows_written"]

    # Lookups of live flows keep working, with the right owner.
    lport = env.listener()
    live = env.workload(comm="cps-live")
    t = live.tcp("127.0.0.1", lport)
    u = live.udp("127.0.0.1", env.free_udp_port())
    with env.client() as c:
        check(c.request({"op": "ping"}).get("pong"), "ping while the disk is full")
    for f, proto in ((t, "tcp"), (u, "udp")):
        ans = lookup(env, proto, "127.0.0.1", f["sport"], f["dport"])
        check(ans.get("ok") and ans.get("found"), "%s lookup while the disk is full" % proto, ans)
        check_eq(ans["flow"]["pid"], live.pid, "%s lookup pid while the disk is full" % proto)
        check_eq(ans["flow"]["comm"], "cps-live", "%s lookup comm while the disk is full" % proto)
    r = env.ctl("--json", "lookup", "127.0.0.1", t["sport"], t["dport"], "--protocol", "tcp")
    check_eq(r.returncode, 0, "connpidctl lookup while the disk is full")
    # history and "at" answer an error or rows, but the daemon stays up
    for req in ({"op": "history", "limit": 1},
                {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": t["sport"], "dport": t["dport"],
                 "at": time.time()}):
        with env.client() as c:
            ans = c.request(req)
        log("%s while full -> %s" % (req["op"], str(ans)[:300]))
    check(d.proc.poll() is None, "queryd still running")
    # Retries keep failing (every ~2 s) and are counted, but logged once.
    time.sleep(4.5)
    st2 = store_stats(env)
    check(st2["write_errors"] > st["write_errors"], "retries are counted in write_errors", st, st2)
    check_eq(st2["writable"], False, "still not writable")
    check_eq(st2["rows_written"], written_before, "nothing written while full")
    with open(d.logpath) as f:
        logtext = f.read()
    n_logged = sum(1 for l in logtext.splitlines() if "History store" in l and "fail" in l)
    check(1 <= n_logged <= 2, "the write failure is logged once (got %d lines)" % n_logged, logtext[-2000:])

    # Room again: writing resumes, the queue drains.
    env.mount(["-o", "remount,size=64m"], mnt)
    st3 = wait_until(lambda: (lambda s: s if s["queue"] == 0 and s["writable"] else None)(store_stats(env)),
                     timeout=20, what="queue drained after the remount")
    log("after the remount:", st3)
    check(st3["rows_written"] > written_before, "rows_written grows after the remount", st3)
    check_eq(st3["rows_written"] + st3["rows_dropped"], st3["rows_queued"], "written + dropped = queued")
    check_eq(st3["rows_dropped"], 0, "no rows dropped (the queue was big enough)")
    check(not st3.get("last_error"), "last_error cleared", st3)
    with open(d.logpath) as f:
        check("writing again" in f.read(), "the recovery is logged")
    rows = history(env, {"pid": live.pid}, limit=10)
    check_eq(sorted((r["proto"], r["sport"]) for r in rows), sorted([("tcp", t["sport"]), ("udp", u["sport"])]),
             "flows made while the disk was full are in history")
    check_eq(d.stop(), 0, "queryd exit status")
    ic, rows = db_rows(db)
    check_eq(ic, ["ok"], "integrity_check after the outage")
    check_eq(len(rows), st3["rows_written"], "rows in the file = rows_written")


if __name__ == "__main__":
    main(test, "full")

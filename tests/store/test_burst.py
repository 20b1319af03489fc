#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4 ("every flow ... kept"): a burst of 100,000 new flows with a
healthy disk loses no row. Every event queryd received is written
(rows_written == rows_queued, rows_dropped == 0) and is in the file."""
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import check_eq, log, main, stats, wait_until  # noqa: E402

N = 100000
P = 4


def test(env):
    env.load("--ringbuf-bytes", str(64 << 20))
    db = env.path("burst.db")
    d = env.daemon(db=db)
    d.wait_ready()
    floods = [env.flood("127.77.%d.0" % (1 + i), 4, N // P, comm="cps-burst%d" % i) for i in range(P)]
    for f in floods:
        f.started()
    made = sum(f.done(timeout=120)[0] for f in floods)
    check_eq(made, N, "flows made")
    s = wait_until(lambda: (lambda s: s if s["events_received"] >= N and s["store"]["queue"] == 0 else None)(stats(env)),
                   timeout=60, interval=0.2, what="every event received and the queue empty")
    log("stats:", s["store"], s["kernel"])
    check_eq(s["kernel"]["ringbuf_drops"], 0, "kernel ring drops (64 MiB ring)")
    st = s["store"]
    check_eq(st["write_errors"], 0, "write errors")
    check_eq(st["rows_dropped"], 0, "rows dropped by the store queue with a healthy disk")
    check_eq(st["rows_written"], st["rows_queued"], "rows written = rows queued")
    for f in floods:
        f.stop()
    check_eq(d.stop(), 0, "queryd exit status")
    con = sqlite3.connect(db)
    n = con.execute("SELECT count(*) FROM connections WHERE comm LIKE 'cps-burst%'").fetchone()[0]
    con.close()
    check_eq(n, N, "burst rows in the database")


if __name__ == "__main__":
    main(test, "burst")

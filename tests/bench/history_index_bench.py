#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""History query time per filter on N rows (default 2 M) of the schema-3
store, and insert rate with and without an index per filter. Figures for
tests/bench/RESULTS.md; asserts nothing.

    tests/bench/history_index_bench.py DB_PATH_FROM_QUERYD [ROWS]

DB_PATH_FROM_QUERYD: an empty database connpid-queryd has created (so the
schema is the daemon's own); it is copied, never changed."""
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time

ROWS = int(sys.argv[2]) if len(sys.argv) > 2 else 2_000_000
BATCH = 4096
INDEXES = {
    "pid": "CREATE INDEX x_pid ON connections(pid)",
    "comm": "CREATE INDEX x_comm ON connections(comm)",
    "dst": "CREATE INDEX x_dst ON connections(dst)",
    "dport": "CREATE INDEX x_dport ON connections(dport)",
    "proc(exe)": "CREATE INDEX x_proc ON connections(proc)",
}
# store-read.c HISTORY_SQL("DESC", "<"), verbatim but for the cursor
SQL = ("SELECT * FROM connection_details "
       "WHERE ts >= coalesce(:since, -1e300) AND ts <= coalesce(:until, 1e300) "
       "AND (:pid IS NULL OR pid = :pid) AND (:comm IS NULL OR comm = :comm) "
       "AND (:exe IS NULL OR proc_ref IN (SELECT id FROM processes WHERE exe = :exe)) "
       "AND (:dst IS NULL OR dst = :dst) "
       "AND (:dport IS NULL OR dport = :dport) AND (:proto IS NULL OR proto = :proto) "
       "AND (:domain IS NULL OR domain_ref IN (SELECT id FROM domains WHERE name = :domain)) "
       "AND (:unit IS NULL OR cgroup_ref IN (SELECT id FROM cgroups WHERE unit = :unit)) "
       "AND (:container IS NULL OR cgroup_ref IN (SELECT id FROM cgroups WHERE container_id = :container "
       "     UNION SELECT id FROM cgroups WHERE container_name = :container)) "
       "ORDER BY ts DESC, id DESC LIMIT 50")
KEYS = ("since", "until", "pid", "comm", "exe", "dst", "dport", "proto", "domain", "unit", "container")


def fill(con, n, t0):
    rnd = random.Random(1)
    con.execute("INSERT INTO processes (pid, start_time, exe, cmdline) VALUES (1000, 1, '/usr/bin/app', "
                "'[\"app\"]')")
    con.execute("INSERT INTO cgroups (cgroup_id, cgroup_path, unit) VALUES (5, '/system.slice/a.service', "
                "'a.service')")
    start = time.monotonic()
    for b in range(0, n, BATCH):
        rows = [(t0 + (b + i) * 0.001, 17, "127.0.0.1", 1024 + (b + i) % 60000,
                 "10.%d.%d.%d" % (rnd.randrange(256), rnd.randrange(256), rnd.randrange(256)),
                 rnd.choice((53, 80, 443, 8080)), 1000 + (b + i) % 7, 1000, 0, 0, "app%d" % ((b + i) % 7),
                 1, 1, None, rnd.getrandbits(62), 4026531840) for i in range(min(BATCH, n - b))]
        con.executemany("INSERT INTO connections (ts, proto, src, sport, dst, dport, pid, tid, uid, gid, "
                        "comm, proc, cgroup, domain, socket_cookie, netns) VALUES "
                        "(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        con.commit()
    return n / (time.monotonic() - start)


def query(con, **kw):
    args = {k: kw.get(k) for k in KEYS}
    t = time.monotonic()
    n = len(con.execute(SQL, args).fetchall())
    return (time.monotonic() - t) * 1000, n


def main():
    src = sys.argv[1]
    d = tempfile.mkdtemp(prefix="cpid-idx-", dir="/var/tmp")
    try:
        t0 = 1.7e9
        print("insert rate, 200k rows each (Python executemany; compare, not absolute):")
        for name, ddl in [("ts only", None)] + list(INDEXES.items()):
            p = os.path.join(d, "rate.db")
            for suf in ("", "-wal", "-shm"):
                if os.path.exists(p + suf):
                    os.unlink(p + suf)
            shutil.copy(src, p)
            con = sqlite3.connect(p)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            if ddl:
                con.execute(ddl)
            rate = fill(con, 200_000, t0)
            con.close()
            print("  %-12s %8.0f rows/s  %6.1f B/row" % (name, rate, os.path.getsize(p) / 200_000))
        p = os.path.join(d, "big.db")
        shutil.copy(src, p)
        con = sqlite3.connect(p)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        fill(con, ROWS, t0)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        print("%d rows: %.1f B/row on disk (ts index only)" % (ROWS, os.path.getsize(p) / ROWS))
        cases = [("none (newest 50)", {}), ("pid miss", {"pid": 4242}), ("comm miss", {"comm": "nope"}),
                 ("exe miss", {"exe": "/nope"}), ("exe hit", {"exe": "/usr/bin/app"}),
                 ("dst miss", {"dst": "192.0.2.1"}), ("dport miss", {"dport": 9}),
                 ("domain miss", {"domain": "nope.test"}), ("unit miss", {"unit": "nope.service"}),
                 ("container miss", {"container": "nope"}), ("proto miss", {"proto": "tcp"}),
                 ("comm miss, 1 h window", {"comm": "nope", "since": t0 + ROWS * 0.001 - 3600})]
        print("history query, limit 50, DESC: ms (rows) without / with an index on the filter")
        for name, kw in cases:
            ms, n = query(con, **kw)
            idx = next((ddl for k, ddl in INDEXES.items() if k.split("(")[0] in kw), None)
            extra = ""
            if idx:
                con.execute(idx)
                ms2, _ = query(con, **kw)
                con.execute("DROP INDEX " + idx.split()[2])
                extra = "  with index %8.1f ms" % ms2
            print("  %-24s %8.1f ms (%d)%s" % (name, ms, n, extra))
        con.close()
    finally:
        shutil.rmtree(d)


if __name__ == "__main__":
    main()

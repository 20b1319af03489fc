#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4, item 3: `kill -9` during heavy ingest, 20 times in a loop.

Each iteration: start queryd on the same --db, start a background process
making thousands of new UDP flows, SIGKILL the daemon after a random
50-500 ms, stop the flood, then open the database with Python's sqlite3:
PRAGMA integrity_check must say 'ok', and every row read after the
previous kill (so committed then) must still be there, unchanged. Rows
must keep coming in over the run (otherwise the test proves nothing)."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import check, check_eq, db_rows, file_bytes, log, main  # noqa: E402

ITERATIONS = int(os.environ.get("CONNPID_CRASH_ITERATIONS", "20"))
# Paced so the flood outlasts the longest delay: the kill always lands
# while events are arriving and batches are being committed.
FLOOD_RATE = 30000          # new flows per second
FLOWS_PER_ITERATION = 18000  # 0.6 s at FLOOD_RATE
BUDGET_SECONDS = 110


def test(env):
    env.load("--ringbuf-bytes", str(32 << 20))
    db = env.path("crash.db")
    seed = int(os.environ.get("CONNPID_TEST_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    log("seed", seed, "(set CONNPID_TEST_SEED to replay)")
    t_start = time.monotonic()
    committed = {}          # id -> (sport, dport, dst, pid), read after a kill
    growth = []
    for i in range(ITERATIONS):
        d = env.daemon(db=db)
        d.wait_ready()
        # 127.<1..250>.<iteration>.x: destinations never used before, so
        # every datagram is a new flow and nothing repeats across iterations.
        fl = env.flood("127.%d.%d.0" % (1 + i % 250, 1 + (i // 250)), 4, FLOWS_PER_ITERATION,
                       comm="cps-crash%d" % i, first_port=1024 + rng.randrange(1000), rate=FLOOD_RATE)
        fl.started()
        delay = rng.uniform(0.05, 0.5)
        time.sleep(delay)
        d.kill9()
        fl.stop()

        ic, rows = db_rows(db)
        check_eq(ic, ["ok"], "iteration %d (killed after %.0f ms): PRAGMA integrity_check" % (i, delay * 1000))
        missing = [k for k in committed if k not in rows]
        check(not missing, "iteration %d: %d committed rows lost after kill -9 (ids %s...)"
              % (i, len(missing), missing[:10]))
        changed = [k for k in committed if rows[k] != committed[k]]
        check(not changed, "iteration %d: committed rows changed: %s"
              % (i, [(k, committed[k], rows[k]) for k in changed[:5]]))
        growth.append(len(rows) - len(committed))
        log("iteration %2d: killed after %3.0f ms, %6d rows (+%d), %.1f MB incl. WAL, integrity ok"
            % (i, delay * 1000, len(rows), growth[-1], file_bytes(db) / 1e6))
        committed = rows
        check(time.monotonic() - t_start < BUDGET_SECONDS,
              "over the time budget after %d iterations" % (i + 1))

    check(sum(1 for g in growth if g > 0) >= ITERATIONS // 2,
          "rows were committed in fewer than half of the iterations: %s" % growth)
    check(len(committed) >= ITERATIONS * 1000, "too few rows over the run (%d)" % len(committed))
    # A clean start after all that: the store opens and serves history.
    d = env.daemon(db=db)
    d.wait_ready()
    with env.client() as c:
        ans = c.request({"op": "history", "limit": 5})
        check(ans.get("ok") and len(ans["flows"]) == 5, "history after the crashes", ans)
        st = c.request({"op": "stats"})["stats"]["store"]
        check(st["enabled"] and st["writable"], "store enabled and writable after the crashes", st)
    check_eq(d.stop(), 0, "queryd exit status")
    ic, rows = db_rows(db)
    check_eq(ic, ["ok"], "integrity_check after a clean stop")
    check(all(k in rows for k in committed), "rows lost across the clean restart")
    log("done in %.1fs: %d rows, growth per iteration %s" % (time.monotonic() - t_start, len(rows), growth))


if __name__ == "__main__":
    main(test, "crash")

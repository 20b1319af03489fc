#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, ring budget: any local user can make new flows as fast as the
kernel takes them. A (niced) child in the test cgroup sends UDP datagrams
to 100k distinct (address, port) pairs with sendmmsg(), while another
client pings; queryd runs in its default configuration (history on).

queryd drains the rings at most 4096 events or 5 ms per loop pass and
serves the clients in between: ping p99 < 50 ms, RSS < 128 MB, alive.
Before, one drain emptied the ring whatever it held."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import Watch, check_eq, flood, log, main, stats  # noqa: E402

FLOWS = 100000


def test(env):
    d = env.daemon()
    d.wait_ready()
    before = stats(env)["events_received"]
    with Watch(env, d) as w:
        t0 = time.monotonic()
        flood(env, FLOWS)
        sent = time.monotonic() - t0
        time.sleep(2.0)   # the drain catches up while the pings go on
    w.report("a flood of %d new UDP flows (sent in %.2f s)" % (FLOWS, sent))
    st = stats(env)
    log("events received %d, ring budget stops %s, kernel ringbuf_drops %s, index %d, store rows %s"
        % (st["events_received"] - before, st.get("ring_budget_stops"), st.get("kernel", {}).get("ringbuf_drops"),
           st["index_flows"], (st.get("store") or {}).get("rows_written")))
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "flood")

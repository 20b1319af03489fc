#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, bounded output: 250 clients each ask for the largest answers
(`recent` and `history`, limit 5000: some 4 MB each before the fix) and
never read, while another client pings.

Bounds: ping p99 < 50 ms (the slow requests are served after client I/O,
one per loop pass), queryd RSS < 128 MB (each answer at most 1 MiB, all
unread output together at most 64 MiB: past it the clients with the most
unread bytes are dropped, stats.clients_dropped_output_cap), queryd alive.
Before: RSS 28 MB -> 902 MB, a ping took 14.5 s."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import Watch, attackers, check, check_eq, flood, log, main, stats, vmrss_kb, wait_until  # noqa: E402

CLIENTS = 250
FLOWS = 6000
HOLD = 10.0     # seconds the attackers stay connected, never reading


def rows_written(env):
    st = stats(env).get("store") or {}
    return st.get("rows_written", 0)


def test(env):
    d = env.daemon()
    d.wait_ready()
    flood(env, FLOWS)
    wait_until(lambda: stats(env)["index_flows"] >= FLOWS, timeout=60, what="%d flows indexed" % FLOWS)
    wait_until(lambda: rows_written(env) >= 5000, timeout=60, what="5000 rows in the history")

    log("queryd RSS before the attacks: %.1f MB" % (vmrss_kb(d.pid) / 1024.0))
    attack(env, d, b'{"op":"recent","limit":5000}\n', "recent")
    attack(env, d, b'{"op":"recent","limit":5000}\n{"op":"history","limit":5000}\n', "recent+history")
    check_eq(d.stop(), 0, "queryd exit code")


def attack(env, d, request, what):
    before = stats(env).get("clients_dropped_output_cap", 0)
    with Watch(env, d) as w:
        p = attackers(env, CLIENTS, request, HOLD)
        p.wait(timeout=HOLD + 60)
    w.report("%d non-reading clients asking %s limit 5000" % (CLIENTS, what))
    st = stats(env)
    log("stats: clients_dropped_slow %s, clients_dropped_output_cap %s, output_queued_bytes %s"
        % (st.get("clients_dropped_slow"), st.get("clients_dropped_output_cap"), st.get("output_queued_bytes")))
    check(st.get("clients_dropped_output_cap", 0) > before, "past the output cap the slowest readers are dropped",
          {k: st.get(k) for k in ("clients_dropped_output_cap", "clients_dropped_slow")})


main(test, "output")

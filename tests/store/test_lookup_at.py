#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4, item 2: `lookup` "as of" a past time finds a flow whose map
entry was evicted.

Loaded with a 64-entry v4 map and queryd with a 64-flow index: one target
TCP flow is made, time T is noted, then a few thousand other new flows
(UDP sendto to distinct ports) push it out of the LRU map and the index.
The live lookup no longer finds it (the pinned map, read with a plain bpf
syscall and with `connpidctl --direct`, has no entry; the daemon answers
found:false), while `lookup` with "at": T and `connpidctl lookup --at T`
find it with the right pid and comm."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import (PROTO_TCP, check, check_eq, history, log, lookup, main,  # noqa: E402
                          map_pid_v4, store_stats, wait_until)

N_PUSH = 4000


def test(env):
    env.load("--map-entries-v4", "64")
    d = env.daemon(db=env.path("at.db"), extra=["--max-flows", "64"])
    d.wait_ready()

    lport = env.listener()
    t_before = time.time()
    time.sleep(0.05)
    target = env.workload(comm="cps-target")
    f = target.tcp("127.0.0.1", lport)
    sport, dport = f["sport"], f["dport"]
    log("target flow: tcp %d -> 127.0.0.1:%d pid %d" % (sport, dport, target.pid))

    # The live paths know it now.
    check_eq(map_pid_v4(env.pin_dir, "127.0.0.1", sport, dport, PROTO_TCP), target.pid, "target in the map")
    ans = lookup(env, "tcp", "127.0.0.1", sport, dport)
    check(ans.get("found") and ans["flow"]["pid"] == target.pid, "live lookup finds the target", ans)
    # Wait for its row, then take T.
    wait_until(lambda: history(env, {"pid": target.pid}), timeout=10, what="target row in history")
    time.sleep(0.05)
    T = time.time()
    time.sleep(0.05)

    # Push it out: thousands of new flows, from every CPU. The kernel's LRU
    # keeps per-CPU lists of fresh nodes: a node allocated on the target's
    # CPU is only evicted once that CPU allocates again, so pushing from
    # one CPU alone may leave it in place.
    cpus = sorted(os.sched_getaffinity(0))
    for i, cpu in enumerate(cpus):
        pusher = env.workload(comm="cps-pusher")
        os.sched_setaffinity(pusher.pid, {cpu})
        pusher.udpflood(["127.0.0.3"], N_PUSH, first_port=2000 + i * N_PUSH)
    wait_until(lambda: store_stats(env)["rows_written"] >= len(cpus) * N_PUSH + 1
               and store_stats(env)["queue"] == 0, timeout=30, what="pushed flows written")
    st = store_stats(env)
    log("store stats:", st)

    # Gone from the map (plain bpf syscall) ...
    check_eq(map_pid_v4(env.pin_dir, "127.0.0.1", sport, dport, PROTO_TCP), None,
             "target still in the 64-entry LRU map after %d new flows" % N_PUSH)
    # ... and says so through connpidctl --direct ...
    r = env.ctl("--json", "--direct", "lookup", "127.0.0.1", sport, dport, "--protocol", "tcp")
    check_eq(r.returncode, 1, "connpidctl --direct lookup exit (not found)")
    check_eq(json.loads(r.stdout).get("found"), False, "connpidctl --direct found")
    # ... and from the daemon's index: the live lookup does not know it.
    ans = lookup(env, "tcp", "127.0.0.1", sport, dport)
    check(ans.get("ok") and ans.get("found") is False, "live lookup must not find the evicted target", ans)
    check(target.proc.poll() is None, "target process is still alive (its flow is just evicted)")

    # "as of" T: found, with the right owner.
    ans = lookup(env, "tcp", "127.0.0.1", sport, dport, at=T)
    log("lookup at T:", ans)
    check(ans.get("ok") and ans.get("found"), "lookup at T must find the target", ans)
    fl = ans["flow"]
    check_eq(fl["pid"], target.pid, "lookup at T pid")
    check_eq(fl["comm"], "cps-target", "lookup at T comm")
    check_eq(fl["exe"], target.exe, "lookup at T exe")
    check_eq((fl["proto"], fl["dst"], fl["sport"], fl["dport"]), ("tcp", "127.0.0.1", sport, dport),
             "lookup at T 4-tuple")
    check_eq(fl["socket_cookie"], f["cookie"], "lookup at T socket_cookie")
    check(fl["first_seen"] <= T, "first_seen <= T", fl)
    # An integer "at" works as well.
    ans = lookup(env, "tcp", "127.0.0.1", sport, dport, at=int(T) + 1)
    check(ans.get("found") and ans["flow"]["pid"] == target.pid, "lookup at int(T)+1", ans)
    # Before the flow existed: nobody owned it.
    ans = lookup(env, "tcp", "127.0.0.1", sport, dport, at=t_before - 60)
    check(ans.get("ok") and ans.get("found") is False, "lookup at a time before the flow: not found", ans)
    # Another protocol on the same ports: not found.
    ans = lookup(env, "udp", "127.0.0.1", sport, dport, at=T)
    check(ans.get("ok") and ans.get("found") is False, "lookup at T with udp: not found", ans)
    # Bad "at": an error, the daemon stays.
    for bad in ("yesterday", -5, [1], {}):
        ans = lookup(env, "tcp", "127.0.0.1", sport, dport, at=bad)
        check(not ans.get("ok") and ans["error"]["code"] == "invalid_argument", "at=%r refused" % (bad,), ans)

    # connpidctl lookup --at T
    r = env.ctl("--json", "lookup", "127.0.0.1", sport, dport, "--protocol", "tcp", "--at", "%.6f" % T)
    check_eq(r.returncode, 0, "connpidctl lookup --at exit (found)")
    o = json.loads(r.stdout)
    check(o.get("found") and o["flow"]["pid"] == target.pid and o["flow"]["comm"] == "cps-target",
          "connpidctl lookup --at T answer", o)
    r = env.ctl("lookup", "127.0.0.1", sport, dport, "--protocol", "tcp", "--at", "%.6f" % T)
    check_eq(r.returncode, 0, "connpidctl lookup --at (table) exit")
    check(str(target.pid) in r.stdout and "cps-target" in r.stdout, "table shows pid and comm", r.stdout)
    r = env.ctl("--json", "lookup", "127.0.0.1", sport, dport, "--protocol", "tcp", "--at", "%.6f" % (t_before - 60))
    check_eq(r.returncode, 1, "connpidctl lookup --at before the flow: not found")
    r = env.ctl("--json", "lookup", "127.0.0.1", sport, dport, "--protocol", "tcp", "--at", "-10m")
    check_eq(r.returncode, 1, "connpidctl lookup --at -10m: not found")
    # connpidctl's relative times are whole seconds (time(NULL)): "-0s" is
    # the start of this second, so let the flow be > 1 s old first.
    time.sleep(max(0.0, fl["first_seen"] + 1.2 - time.time()))
    r = env.ctl("--json", "lookup", "127.0.0.1", sport, dport, "--protocol", "tcp", "--at", "-0s")
    check_eq(r.returncode, 0, "connpidctl lookup --at -0s (now): found")
    r = env.ctl("--direct", "lookup", "127.0.0.1", sport, dport, "--protocol", "tcp", "--at", "%.6f" % T)
    check_eq(r.returncode, 2, "--at with --direct is an error")

    # Without a store, "at" is unavailable, not a crash.
    d.stop()
    d2 = env.daemon(db=None, extra=["--max-flows", "64"])
    d2.wait_ready()
    ans = lookup(env, "tcp", "127.0.0.1", sport, dport, at=T)
    check(not ans.get("ok") and ans["error"]["code"] == "unavailable", "--no-store: at is unavailable", ans)
    check_eq(d2.stop(), 0, "queryd exit status")


if __name__ == "__main__":
    main(test, "at")

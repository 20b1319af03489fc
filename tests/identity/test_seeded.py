#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 6, item 5: connections opened before the loader ran are found
after loading, with the right owner, marked "seen": "seeded".

Before loading: a workload in the test cgroup connects TCP to a listener
here and a connected UDP socket (+ send) to a bound port here; a second
workload in a nested sub-cgroup connects TCP too; this test process itself
(outside the cgroup) connects as well. Then the loader runs, then queryd.

- the workloads' flows: found, right pid/comm/cgroup, "seen": "seeded",
  alive, no creator (the socket predates sock_create's storage);
- `connpidctl --direct --json lookup` finds them too (pid from the map);
- the accepted ends (this process, outside the cgroup) and this process's
  own pre-existing connection are not seeded: out of scope;
- a connection made after loading is "seen": "event", and more sends on the
  seeded UDP socket leave it "seeded" with the same owner.
"""
import json
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identharness import check, check_eq, log, main  # noqa: E402

HOST = "127.0.0.1"


def check_seeded(f, what, w, cgroup_path, proto):
    got = {k: f.get(k) for k in ("pid", "comm", "proto", "seen", "alive", "cgroup",
                                 "start_time", "creator")}
    want = {"pid": w.pid, "comm": w.comm, "proto": proto, "seen": "seeded", "alive": True,
            "cgroup": cgroup_path, "start_time": w.start_ticks, "creator": None}
    check_eq(got, want, what)
    anc = f.get("ancestors") or []
    check(anc and anc[0].get("pid") == os.getpid(),
          "%s: first ancestor should be this test process (%d)" % (what, os.getpid()), anc)


def direct(env, proto, sport, dport):
    r = env.ctl("--json", "lookup", HOST, str(sport), str(dport), "--protocol", proto,
                "--direct")
    check(r.returncode in (0, 1), "connpidctl --direct failed (rc %d)" % r.returncode, r.stderr)
    ans = json.loads(r.stdout)
    check_eq(r.returncode, 0 if ans.get("found") else 1, "connpidctl exit code vs found")
    return ans


def test(env):
    lsock, lport = env.listener()
    uport = env.udp_port()
    cgroup_path = "/" + os.path.relpath(env.cgroup, env.mount)
    sub = env.subcgroup("system.slice/old.service")
    sub_path = "/" + os.path.relpath(sub, env.mount)

    # --- before connpid: flows in scope, and one outside it
    w = env.workload(comm="id-old")
    t = w.cmd({"cmd": "tcp", "host": HOST, "port": lport})
    u = w.cmd({"cmd": "udpc", "host": HOST, "port": uport})
    w2 = env.workload(sub, comm="id-old-sub")
    t2 = w2.cmd({"cmd": "tcp", "host": HOST, "port": lport})
    mine = socket.create_connection((HOST, lport))
    env.socks.append(mine)
    my_sport = mine.getsockname()[1]
    accepted = []
    for _ in range(3):
        conn, peer = lsock.accept()
        env.socks.append(conn)
        accepted.append(peer[1])
    check_eq(sorted(accepted), sorted([t["sport"], t2["sport"], my_sport]),
             "connections accepted before loading")

    env.load()
    env.daemon()
    cl = env.client()

    # --- the old flows, from queryd
    check_seeded(cl.lookup("tcp", HOST, t["sport"], lport), "old TCP", w, cgroup_path, "tcp")
    check_seeded(cl.lookup("udp", HOST, u["sport"], uport), "old connected UDP", w,
                 cgroup_path, "udp")
    f = cl.lookup("tcp", HOST, t2["sport"], lport)
    check_seeded(f, "old TCP in a sub-cgroup", w2, sub_path, "tcp")
    check_eq((f.get("unit"), f.get("slice")), ("old.service", "system.slice"),
             "old TCP in a sub-cgroup: unit, slice")
    check_eq(f.get("socket_cookie"), t2["cookie"], "old TCP in a sub-cgroup: socket_cookie")

    # --- and straight from the pinned maps
    for proto, c, dport, owner in (("tcp", t, lport, w), ("udp", u, uport, w),
                                   ("tcp", t2, lport, w2)):
        ans = direct(env, proto, c["sport"], dport)
        check_eq((ans.get("found"), ans.get("pid"), ans.get("comm")), (True, owner.pid, owner.comm),
                 "connpidctl --direct %s %d" % (proto, c["sport"]))

    # --- out of scope: never seeded
    out_of_scope = [("tcp", my_sport, lport, "this process's own connection")]
    out_of_scope += [("tcp", lport, sp, "accepted end of %d" % sp) for sp in accepted]
    for proto, sport, dport, what in out_of_scope:
        ans = cl.lookup_raw(proto, HOST, sport, dport)
        check_eq((ans.get("ok"), ans.get("found")), (True, False), "%s: lookup" % what)
        ans = direct(env, proto, sport, dport)
        check_eq(ans.get("found"), False, "%s: connpidctl --direct" % what)

    # --- after loading: live hooks, "event"
    t3 = w.cmd({"cmd": "tcp", "host": HOST, "port": lport})
    f = cl.lookup("tcp", HOST, t3["sport"], lport)
    check_eq((f.get("pid"), f.get("seen"), (f.get("creator") or {}).get("same_process")),
             (w.pid, "event", True), "new TCP after loading")
    u3 = w.cmd({"cmd": "udpc", "host": HOST, "port": uport})
    f = cl.lookup("udp", HOST, u3["sport"], uport)
    check_eq((f.get("pid"), f.get("seen")), (w.pid, "event"), "new UDP after loading")

    # more traffic on the old UDP socket: same owner, still the seeded record
    w.cmd({"cmd": "send", "sport": u["sport"]})
    f = cl.lookup("udp", HOST, u["sport"], uport)
    check_eq((f.get("pid"), f.get("seen")), (w.pid, "seeded"), "old UDP after another send")
    log("seeded flows found; new flows are events")


if __name__ == "__main__":
    main(test, "seeded")

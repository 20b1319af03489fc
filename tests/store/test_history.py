#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4, item 1: flows made by test processes appear in `history` with
their fields; the filters pid, comm, exe, dst, dport, proto, since, until
work and are ANDed; order and limit work; `connpidctl history --json`
agrees with the socket op.

Two workload processes with different comm names and different executables
(the second runs a copy of the Python binary) each make a TCP flow and a
UDP flow to different destination ports (and 127.0.0.1 vs 127.0.0.2)."""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import (check, check_eq, history, log, lookup, main,  # noqa: E402
                          wait_until)


def keyset(rows):
    return sorted((r["proto"], r["dst"], r["sport"], r["dport"], r["pid"]) for r in rows)


def test(env):
    env.load()
    db = env.path("h.db")
    d = env.daemon(db=db)
    d.wait_ready()

    # A second executable: a copy of the interpreter, so exe differs.
    exe2 = env.path("cps-python-copy")
    shutil.copy2(os.path.realpath(sys.executable), exe2)

    lport1, lport2 = env.listener(), env.listener()
    uport1, uport2 = env.free_udp_port(), env.free_udp_port()

    t_before = time.time()
    time.sleep(0.05)
    a = env.workload(comm="cps-alpha")
    b = env.workload(comm="cps-beta", exe=exe2)
    check(a.exe != b.exe, "the two workloads should have different executables", a.exe, b.exe)
    flows = {}
    flows["a_tcp"] = dict(a.tcp("127.0.0.1", lport1), proto="tcp", w=a)
    flows["a_udp"] = dict(a.udp("127.0.0.1", uport1), proto="udp", w=a)
    time.sleep(0.3)
    t_mid = time.time()
    time.sleep(0.3)
    flows["b_tcp"] = dict(b.tcp("127.0.0.1", lport2), proto="tcp", w=b)
    flows["b_udp"] = dict(b.udp("127.0.0.2", uport2), proto="udp", w=b)
    time.sleep(0.05)
    t_after = time.time()

    def want(name):
        f = flows[name]
        return (f["proto"], f["dst"], f["sport"], f["dport"], f["w"].pid)

    def by_key(rows):
        return {(r["proto"], r["dst"], r["sport"], r["dport"], r["pid"]): r for r in rows}

    mine = {"since": t_before}
    rows = wait_until(lambda: (lambda r: r if len(r) >= 4 else None)(history(env, mine, limit=100)),
                      timeout=10, what="4 flows in history")
    log("history rows:", json.dumps(rows, indent=1)[:3000])
    got = by_key(rows)
    check_eq(sorted(got), sorted(want(n) for n in flows), "flows in history since the test began")

    # -- fields
    for name, f in flows.items():
        r = got[want(name)]
        w = f["w"]
        check_eq(r["pid"], w.pid, name + " pid")
        check_eq(r["tid"], w.pid, name + " tid (single-threaded workload)")
        check_eq(r["comm"], w.comm, name + " comm")
        check_eq(r["exe"], w.exe, name + " exe")
        check_eq(r["cmdline"], w.cmdline, name + " cmdline")
        check_eq(r["proto"], f["proto"], name + " proto")
        check_eq(r["family"], "ipv4", name + " family")
        check_eq(r["dst"], f["dst"], name + " dst")
        check_eq(r["dport"], f["dport"], name + " dport")
        check_eq(r["sport"], f["sport"], name + " sport")
        check_eq(r["uid"], os.getuid(), name + " uid")
        check_eq(r["gid"], os.getgid(), name + " gid")
        check_eq(r["socket_cookie"], f["cookie"], name + " socket_cookie")
        check_eq(r["cgroup_id"], os.stat(env.cgroup).st_ino, name + " cgroup_id")
        check_eq(r["netns"], os.stat("/proc/%d/ns/net" % w.pid).st_ino, name + " netns")
        check(isinstance(r.get("row_id"), int), name + " has a row_id", r)
        check(t_before - 1 <= r["first_seen"] <= t_after + 1, name + " first_seen within the test",
              (t_before, r["first_seen"], t_after))
        check(abs(r["first_seen"] - f["t"]) < 2.0, name + " first_seen close to when the flow was made",
              (r["first_seen"], f["t"]))
        check(r["last_seen"] >= r["first_seen"], name + " last_seen >= first_seen", r)
        check_eq(r.get("seen"), "history", name + " seen")
        for k in ("src", "start_time"):
            check(k in r and r[k] is not None, name + " has " + k, r)
    check(got[want("a_tcp")]["first_seen"] < t_mid < got[want("b_tcp")]["first_seen"],
          "alpha's flows were seen before t_mid and beta's after",
          (got[want("a_tcp")]["first_seen"], t_mid, got[want("b_tcp")]["first_seen"]))

    # -- every filter alone (since=t_before keeps other tests' rows out; the
    # store is private anyway)
    def q(**kw):
        filt = dict(mine)
        filt.update(kw)
        return keyset(history(env, filt, limit=100))

    def names(*ns):
        return sorted(want(n) for n in ns)

    check_eq(q(pid=a.pid), names("a_tcp", "a_udp"), "filter pid=alpha")
    check_eq(q(pid=b.pid), names("b_tcp", "b_udp"), "filter pid=beta")
    check_eq(q(comm="cps-alpha"), names("a_tcp", "a_udp"), "filter comm=cps-alpha")
    check_eq(q(comm="cps-beta"), names("b_tcp", "b_udp"), "filter comm=cps-beta")
    check_eq(q(exe=a.exe), names("a_tcp", "a_udp"), "filter exe=alpha's")
    check_eq(q(exe=b.exe), names("b_tcp", "b_udp"), "filter exe=beta's")
    check_eq(q(dst="127.0.0.2"), names("b_udp"), "filter dst=127.0.0.2")
    check_eq(q(dst="127.0.0.1"), names("a_tcp", "a_udp", "b_tcp"), "filter dst=127.0.0.1")
    check_eq(q(dport=lport1), names("a_tcp"), "filter dport")
    check_eq(q(dport=uport2), names("b_udp"), "filter dport (udp)")
    check_eq(q(proto="tcp"), names("a_tcp", "b_tcp"), "filter proto=tcp")
    check_eq(q(proto="udp"), names("a_udp", "b_udp"), "filter proto=udp")
    check_eq(keyset(history(env, {"since": t_mid}, limit=100)), names("b_tcp", "b_udp"), "filter since")
    check_eq(q(until=t_mid), names("a_tcp", "a_udp"), "filter until")
    check_eq(keyset(history(env, {"since": t_after + 5}, limit=100)), [], "since in the future")

    # -- AND: each pair below matches rows on its own, but no row matches both
    check_eq(q(pid=a.pid, comm="cps-beta"), [], "pid=alpha AND comm=beta")
    check_eq(q(comm="cps-alpha", dst="127.0.0.2"), [], "comm=alpha AND dst=127.0.0.2")
    check_eq(q(exe=b.exe, dport=lport1), [], "exe=beta AND dport=alpha's")
    check_eq(q(proto="tcp", dport=uport1), [], "proto=tcp AND udp dport")
    check_eq(q(pid=b.pid, until=t_mid), [], "pid=beta AND until=t_mid")
    check_eq(q(comm="cps-beta", proto="udp", dst="127.0.0.2", dport=uport2, exe=b.exe, pid=b.pid,
               until=t_after + 1), names("b_udp"), "every filter at once")
    check_eq(q(comm="cps-alpha", proto="tcp"), names("a_tcp"), "comm AND proto")

    # -- order and limit
    asc = history(env, mine, limit=100, order="asc")
    desc = history(env, mine, limit=100, order="desc")
    dflt = history(env, mine, limit=100)
    ts_asc = [r["first_seen"] for r in asc]
    check_eq(ts_asc, sorted(ts_asc), "order asc is by first_seen ascending")
    check_eq([r["row_id"] for r in desc], [r["row_id"] for r in reversed(asc)], "desc is asc reversed")
    check_eq([r["row_id"] for r in dflt], [r["row_id"] for r in desc], "default order is desc (newest first)")
    lim = history(env, mine, limit=2, order="asc")
    check_eq([r["row_id"] for r in lim], [r["row_id"] for r in asc[:2]], "limit 2 asc = oldest two")
    lim = history(env, mine, limit=1)
    check_eq([r["row_id"] for r in lim], [desc[0]["row_id"]], "limit 1 = newest")
    check_eq(keyset(lim), names("b_udp"), "newest flow is beta's udp")

    # -- bad filters are errors, not crashes
    for bad in ({"pid": "x"}, {"dport": 0}, {"proto": "icmp"}, {"dst": "not-an-ip"}, {"since": -1},
                {"nosuch": 1}):
        ans = history(env, bad, ok=False)
        check(not ans.get("ok") and ans["error"]["code"] == "invalid_argument",
              "history filter %r must be invalid_argument" % bad, ans)
    # -- one filter module (issue 18): a member shared with recent/watch is
    # refused with the same words; a history-only member is no live one
    for bad in ({"pid": "x"}, {"dport": 0}, {"proto": "icmp"}, {"dst": "not-an-ip"}, {"netns": 0},
                {"direction": "up"}, {"src": 5}, {"comm": 1}):
        with env.client() as c:
            live = c.request({"op": "recent", "filter": bad})
        check_eq(history(env, bad, ok=False).get("error"), live.get("error"),
                 "history and recent refuse %r alike" % bad)
    with env.client() as c:
        live = c.request({"op": "recent", "filter": {"exe": "/bin/true"}})
    check(live.get("error", {}).get("code") == "invalid_argument" and
          "unknown filter" in live["error"].get("message", ""), "recent has no exe filter", live)
    ans = history(env, mine, order="sideways", ok=False)
    check(not ans.get("ok") and ans["error"]["code"] == "invalid_argument", "bad order refused", ans)

    # -- connpidctl history --json agrees with the socket
    r = env.ctl("--json", "history", "--since", "%.6f" % t_before, "--limit", "100")
    check_eq(r.returncode, 0, "connpidctl history exit")
    ctl_rows = json.loads(r.stdout)["flows"]
    check_eq([x["row_id"] for x in ctl_rows], [x["row_id"] for x in desc], "connpidctl history rows")
    check_eq(ctl_rows, desc, "connpidctl history --json = socket answer")
    r = env.ctl("--json", "history", "--since", "%.6f" % t_before, "--comm", "cps-beta", "--proto", "udp",
                "--dst", "127.0.0.2", "--dport", uport2, "--pid", b.pid, "--exe", b.exe, "--limit", "10")
    check_eq(r.returncode, 0, "connpidctl history with filters exit")
    check_eq(keyset(json.loads(r.stdout)["flows"]), names("b_udp"), "connpidctl history with every filter")
    r = env.ctl("--json", "history", "--since", "%.6f" % t_before, "--comm", "cps-alpha", "--dst", "127.0.0.2")
    check_eq(r.returncode, 0, "connpidctl history (no match) exit")
    check_eq(json.loads(r.stdout)["flows"], [], "connpidctl history AND with no match")
    r = env.ctl("--json", "history", "--since", "%.6f" % t_before, "--order", "asc", "--limit", "2")
    check_eq([x["row_id"] for x in json.loads(r.stdout)["flows"]], [x["row_id"] for x in asc[:2]],
             "connpidctl history --order asc --limit 2")
    r = env.ctl("history", "--since", "%.6f" % t_before, "--comm", "cps-alpha")
    check_eq(r.returncode, 0, "connpidctl history (table) exit")
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    check_eq(len(lines), 3, "table: header + 2 rows")
    check(all(str(a.pid) in l and "cps-alpha" in l for l in lines[1:]), "table rows show alpha", r.stdout)

    # -- live lookups still agree with the history
    for name, f in flows.items():
        ans = lookup(env, f["proto"], f["dst"], f["sport"], f["dport"])
        check(ans.get("found"), name + " live lookup found", ans)
        check_eq(ans["flow"]["pid"], f["w"].pid, name + " live lookup pid")

    check_eq(d.stop(), 0, "queryd exit status on SIGTERM")


if __name__ == "__main__":
    main(test, "hist")

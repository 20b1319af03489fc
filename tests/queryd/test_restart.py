#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 3, item 2: restart without detaching. queryd runs, workloads make
flows; queryd is killed with SIGKILL; more flows while it is down; queryd is
started again on the same (now stale) socket path. Every flow of both phases
is found with the right pid; the flows made while it was down come from the
ring buffer drained at restart ("seen":"event", first_seen before the
restart); flows the killed instance had drained are described from the
history, complete: alive, pid_reused and in_map in their FLOW places (the
order of a live answer), for an owner that runs and one that exited, and
narrowed by "fields" (a "lookup" with "at" has none of the three); the
cgroup's attachment count never changes."""
import json
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import Skip, attachments, check, check_eq, log, main, wait_until  # noqa: E402

N = 5


def make_flows(env, w, lport):
    flows = []
    for _ in range(N):
        c = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
        flows.append(("tcp", c["sport"], c["dport"], w))
    for _ in range(N):
        c = w.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": env.free_udp_port()})
        flows.append(("udp", c["sport"], c["dport"], w))
    return flows


def lookup(cl, proto, sport, dport):
    ans = cl.request({"op": "lookup", "proto": proto, "dst": "127.0.0.1", "sport": sport, "dport": dport,
                      "id": [proto, sport, dport]})
    check_eq(ans.get("id"), [proto, sport, dport], "id echoed")
    check(ans.get("ok") and ans.get("found"), "%s %d->%d not found" % (proto, sport, dport), ans)
    return ans["flow"]


def lookup_req(cl, proto, sport, dport, **extra):
    req = {"op": "lookup", "proto": proto, "dst": "127.0.0.1", "sport": sport, "dport": dport}
    req.update(extra)
    ans = cl.request(req)
    check(ans.get("ok") and ans.get("found"), "%s %d->%d not found (%r)" % (proto, sport, dport, extra), ans)
    return ans["flow"]


def check_flow_order(keys, live_keys, what):
    """keys in FLOW order: those of a live FLOW in its order, row_id last."""
    check_eq(keys[-1], "row_id", "%s: row_id last" % what)
    pos = [live_keys.index(k) if k in live_keys else -1 for k in keys[:-1]]
    check(-1 not in pos, "%s: members a live FLOW does not have" % what, keys, live_keys)
    check_eq(pos, sorted(pos), "%s: member positions in the live FLOW's order (%r)" % (what, keys))


def check_map_hits(cl, live, gone, live_keys, t_now):
    """Map hits the new instance has no event for: the history's rows."""
    for (proto, sp, dp, w), alive in [(f, True) for f in live] + [(f, False) for f in gone]:
        what = "history map hit %s %d (owner %s)" % (proto, sp, "runs" if alive else "exited")
        f = lookup_req(cl, proto, sp, dp)
        check_eq((f["seen"], f["pid"], f["comm"]), ("history", w.pid, w.comm), what)
        check_eq((f["alive"], f["pid_reused"], f["in_map"]), (alive, False, True),
                 what + ": alive, pid_reused, in_map")
        check_flow_order(list(f), live_keys[proto], what)
        for k in ("alive", "pid_reused", "in_map"):
            check(k in live_keys[proto], "a live FLOW has %s" % k, live_keys[proto])
        narrow = lookup_req(cl, proto, sp, dp, fields=["in_map", "comm", "pid_reused", "pid", "alive"])
        check_eq(list(narrow), ["pid", "comm", "alive", "pid_reused", "in_map", "row_id"],
                 what + ": \"fields\" narrows it, FLOW order")
        check_eq((narrow["alive"], narrow["pid_reused"], narrow["in_map"]), (alive, False, True),
                 what + ": narrowed values")
        check_eq(list(lookup_req(cl, proto, sp, dp, fields=["seen"])), ["seen", "row_id"], what + ": seen only")
        # the same row "at" now: what the history knows, nothing of now
        at = lookup_req(cl, proto, sp, dp, at=t_now)
        check_eq(list(at), [k for k in f if k not in ("alive", "pid_reused", "in_map")],
                 what + ": lookup at has the row without alive/pid_reused/in_map")
        check_eq(at["row_id"], f["row_id"], what + ": the same row at now")


def test(env):
    if not shutil.which("bpftool"):
        raise Skip("bpftool not installed")
    att = attachments(env.cgroup)
    check(att > 0, "loader attached nothing to %s" % env.cgroup)
    log("attachments:", att)
    _, lport = env.listener()

    d1 = env.daemon()
    d1.wait_ready()
    check_eq(attachments(env.cgroup), att, "attachments after queryd start")

    w1 = env.workload(comm="cpq-phase1")
    phase1 = make_flows(env, w1, lport)
    # made before the kill, its owner exits while queryd is down
    wg = env.workload(comm="cpq-gone1")
    c = wg.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    gone = [("tcp", c["sport"], c["dport"], wg)]
    c = wg.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": env.free_udp_port()})
    gone.append(("udp", c["sport"], c["dport"], wg))
    cl = env.client()
    live_keys = {}
    for proto, sp, dp, w in phase1 + gone:
        f = lookup(cl, proto, sp, dp)
        check_eq(f["pid"], w.pid, "phase 1 pid")
        check_eq(f["seen"], "event", "phase 1 flow is indexed from its event")
        check_eq(f["comm"], w.comm, "phase 1 comm")
        live_keys[proto] = list(f)
    # the history commits in batches (100 ms): wait for phase 1 to be on
    # disk, as a daemon that has run a while would have it
    wait_until(lambda: cl.request({"op": "stats"})["stats"]["store"]["queue"] == 0,
               what="phase-1 rows committed")
    cl.close()

    d1.kill9()
    wg.exit()
    check_eq(attachments(env.cgroup), att, "attachments after kill -9")
    check(os.path.exists(env.sock), "a killed daemon leaves its socket file (stale)")

    w2 = env.workload(comm="cpq-phase2")
    phase2 = make_flows(env, w2, lport)
    # connpidctl falls back to the pinned maps while the daemon is down
    proto, sp, dp, _ = phase2[0]
    r = env.ctl("--json", "lookup", "127.0.0.1", str(sp), str(dp), "--protocol", proto)
    check_eq(r.returncode, 0, "connpidctl lookup with queryd down (falls back to --direct): %r" % r.stderr)
    check_eq(json.loads(r.stdout)["pid"], w2.pid, "direct fallback pid")
    check("not reachable" in r.stderr, "fallback warns on stderr", r.stderr)
    check_eq(attachments(env.cgroup), att, "attachments while queryd is down")

    t_restart = time.time()
    time.sleep(0.05)
    d2 = env.daemon()
    d2.wait_ready()
    check_eq(attachments(env.cgroup), att, "attachments after restart")

    cl = env.client()
    st = cl.request({"op": "stats"})["stats"]
    check(st["events_received"] >= len(phase2),
          "the restarted daemon drained the events made while it was down", st)
    for proto, sp, dp, w in phase1 + phase2:
        f = lookup(cl, proto, sp, dp)
        check_eq(f["pid"], w.pid, "%s %d->%d pid after restart" % (proto, sp, dp))
        check_eq(f["alive"], True, "alive")
    for proto, sp, dp, w in phase1:
        # drained by the killed instance: the new one has no event for it,
        # so the details come from the history, not from /proc alone
        f = lookup(cl, proto, sp, dp)
        check_eq(f["seen"], "history", "phase-1 flow described from the history (%s %d)" % (proto, sp))
        check_eq(f["comm"], "cpq-phase1", "phase-1 comm from the history")
        check_eq(f["exe"], w1.exe, "phase-1 exe from the history")
        check_eq(f["in_map"], True, "phase-1 flow still in the map")
    for proto, sp, dp, w in phase2:
        f = lookup(cl, proto, sp, dp)
        check_eq(f["seen"], "event", "flow made while down was drained from the ring (%s %d)" % (proto, sp))
        check_eq(f["comm"], "cpq-phase2", "comm from the event")
        check_eq(f["exe"], w2.exe, "exe")
        check(f["first_seen"] <= t_restart,
              "first_seen of a flow made while down is its own time, not the drain time",
              "first_seen %.3f restart %.3f" % (f["first_seen"], t_restart))
    check_map_hits(cl, phase1[:1] + phase1[N:N + 1], gone, live_keys, time.time())
    rec = cl.request({"op": "recent", "limit": 100, "filter": {"pid": w2.pid}})
    check_eq(len(rec["flows"]), len(phase2), "recent shows every drained phase-2 flow")
    cl.close()
    check_eq(attachments(env.cgroup), att, "attachments at the end")
    check_eq(d2.stop(), 0, "queryd exit on SIGTERM")
    check(not os.path.exists(env.sock), "queryd removes its own socket on a clean stop")
    w1.exit()
    w2.exit()


if __name__ == "__main__":
    main(test, "rst")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 14, the live side of queryd on real outbound flows in the test
cgroup: "direction" in every FLOW (after "proto"), "fields" with direction
and listener; lookup "src", "netns", "direction" (bad values refused with
invalid_argument and a message naming the member; inbound without
`connpid-loader --inbound` is "unavailable"); one key from two source
addresses is two flows: the map's owner answers, the other is a candidate;
watch and recent filters by direction, netns and src. (Several network
namespaces and accepted connections end to end: tests/netns.)"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import check, check_eq, main, wait_until  # noqa: E402

INBOUND_OFF = "inbound tracking is off: load with connpid-loader --inbound"

# Binds SRC:SPORT, connects to 127.0.0.1:DPORT, says "ok", waits for stdin
# to close. Two of them with one sport and two sources make one map key.
CONNECTOR = r"""
import socket, sys
src, sport, dport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((src, sport))
    s.connect(("127.0.0.1", dport))
except OSError as e:
    print("error %s" % e, flush=True)
    sys.exit(0)
print("ok %d" % s.getsockname()[1], flush=True)
sys.stdin.read()
"""


def netns_ino():
    return os.stat("/proc/self/ns/net").st_ino


def error_of(ans):
    return (ans.get("ok"), ans.get("error", {}).get("code"))


def read_flows(cl, seconds):
    """The flow events a watcher gets within seconds."""
    return cl.read_events(seconds, flows=True, poll=0.2)


def check_lookup_errors(cl, q, cid):
    bad = [({"direction": "sideways"}, "direction"), ({"direction": 1}, "direction"),
           ({"direction": None}, "direction"), ({"netns": 0}, "netns"), ({"netns": -1}, "netns"),
           ({"netns": 4294967296}, "netns"), ({"netns": "4026531840"}, "netns"),
           ({"netns": 1.5}, "netns"), ({"src": "nope"}, "src"), ({"src": 5}, "src"),
           ({"src": "::1"}, "src"), ({"src": ""}, "src")]
    for extra, member in bad:
        ans = cl.request(dict(q, id=member, **extra))
        check_eq(error_of(ans) + (ans.get("id"),), (False, "invalid_argument", member),
                 "lookup with %r refused" % extra)
        check('"%s"' % member in ans["error"]["message"], "the message names %s: %r" % (member, ans))
    ans = cl.request({"op": "lookup", "community_id": cid, "src": "127.0.0.1"})
    check_eq(error_of(ans), (False, "invalid_argument"), "community_id with src refused (%r)" % ans)
    ans = cl.request(dict(q, direction="inbound"))
    check_eq(error_of(ans), (False, "unavailable"), "inbound lookup without --inbound (%r)" % ans)
    check_eq(ans["error"]["message"], INBOUND_OFF, "inbound lookup message")
    check_eq(cl.request({"op": "ping"}).get("pong"), True, "the connection goes on after refusals")


def check_flow_members(cl, q, w, sport):
    full = cl.request(q)
    check_eq((full.get("ok"), full.get("found")), (True, True), "lookup (%r)" % full)
    flow = full["flow"]
    check_eq(list(flow)[:2], ["proto", "direction"], "direction right after proto")
    check_eq(flow["direction"], "outbound", "an outbound flow")
    check("listener" not in flow and "creator" in flow, "outbound: creator, no listener", sorted(flow))
    check("candidates" not in full, "one variant: no candidates (%r)" % full)
    check_eq(flow["netns"], netns_ino(), "the flow's netns is the host's")
    ans = cl.request(dict(q, fields=["direction", "sport"]))
    check_eq(ans.get("flow"), {"direction": "outbound", "sport": sport}, "fields direction")
    ans = cl.request(dict(q, fields=["listener", "pid"]))
    check_eq(ans.get("flow"), {"pid": w.pid}, "fields listener on an outbound flow")
    return flow


def check_scoped_lookups(cl, q, w):
    ns = netns_ino()
    for extra in ({"src": "127.0.0.1"}, {"src": "::ffff:127.0.0.1"}, {"netns": ns},
                  {"direction": "outbound"}, {"src": "127.0.0.1", "netns": ns, "direction": "outbound"}):
        ans = cl.request(dict(q, **extra))
        check_eq((ans.get("found"), ans.get("flow", {}).get("pid"), ans.get("flow", {}).get("in_map")),
                 (True, w.pid, True), "lookup with %r" % extra)
    # the map has the key, but not from there: no /proc guess, not found
    for extra in ({"src": "127.0.0.2"}, {"netns": ns + 1 if ns < 4294967295 else ns - 1}):
        ans = cl.request(dict(q, **extra))
        check_eq((ans.get("ok"), ans.get("found")), (True, False), "lookup with %r (%r)" % (extra, ans))


def two_sources(env, lport):
    """Two processes, one source port, sources 127.0.0.1 and .2: one key."""
    for _ in range(20):
        a = env.popen([sys.executable, "-c", CONNECTOR, "127.0.0.1", "0", str(lport)], env.cgroup,
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        first = a.stdout.readline().split()
        check(first and first[0] == "ok", "connector on 127.0.0.1: %r" % first)
        sport = int(first[1])
        b = env.popen([sys.executable, "-c", CONNECTOR, "127.0.0.2", str(sport), str(lport)], env.cgroup,
                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        second = b.stdout.readline().split()
        if second and second[0] == "ok":
            return a, b, sport
        a.stdin.close()
        b.stdin.close()
        a.wait(10)
        b.wait(10)
    check(False, "no source port free on both 127.0.0.1 and 127.0.0.2")


def check_candidates(env, cl, lport):
    a, b, sport = two_sources(env, lport)
    q = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": sport, "dport": lport}
    ans = wait_until(lambda: (lambda r: r if len(r.get("candidates", [])) == 1 else None)(cl.request(q)),
                     what="the second source's flow as a candidate")
    # the map names the later connect()'s process
    check_eq((ans["flow"]["pid"], ans["flow"]["src"], ans["flow"]["in_map"]), (b.pid, "127.0.0.2", True),
             "flow: the map's owner")
    cand = ans["candidates"][0]
    check_eq((cand["pid"], cand["src"], cand["in_map"], cand["direction"]), (a.pid, "127.0.0.1", False, "outbound"),
             "candidate: the other source")
    ans = cl.request(dict(q, src="127.0.0.1"))
    check_eq((ans["flow"]["pid"], ans["flow"]["in_map"], "candidates" in ans), (a.pid, False, False),
             "src picks the other flow, not in the map")
    ans = cl.request(dict(q, src="127.0.0.2", fields=["pid"]))
    check_eq((ans.get("flow"), "candidates" in ans), ({"pid": b.pid}, False), "src .2: the map's owner")
    ans = cl.request(dict(q, netns=netns_ino(), fields=["pid", "src"]))
    check_eq((ans.get("flow"), ans.get("candidates")),
             ({"pid": b.pid, "src": "127.0.0.2"}, [{"pid": a.pid, "src": "127.0.0.1"}]),
             "netns: both match, the newest first, candidates with fields")
    for p in (a, b):
        p.stdin.close()
        p.wait(10)


def check_watch_filters(env, cl, w, lport):
    ns = netns_ino()
    bad = [({"direction": "up"}, "direction"), ({"netns": 0}, "netns"), ({"netns": "1"}, "netns"),
           ({"netns": 4294967296}, "netns"), ({"src": "x"}, "src"), ({"src": 1}, "src")]
    for f, member in bad:
        for op in ("watch", "recent"):
            ans = cl.request({"op": op, "filter": f})
            check_eq(error_of(ans), (False, "invalid_argument"), "%s filter %r refused (%r)" % (op, f, ans))
            check('"%s"' % member in ans["error"]["message"], "the message names %s: %r" % (member, ans))
    wanted = [{"direction": "outbound", "netns": ns, "src": "127.0.0.1"}, {"src": "::ffff:127.0.0.1"}]
    unwanted = [{"direction": "inbound"}, {"netns": ns + 1}, {"src": "127.0.0.9"}, {"src": "::1"}]
    watchers = []
    for f in wanted + unwanted:
        c = env.client()
        ans = c.request({"op": "watch", "filter": dict(f, pid=w.pid), "fields": ["dport", "direction"]})
        check_eq(ans.get("watching"), True, "watch %r (%r)" % (f, ans))
        watchers.append(c)
    wait_until(lambda: cl.request({"op": "stats"})["stats"]["watchers"] >= len(watchers), what="watchers")
    w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    for c, f in zip(watchers, wanted + unwanted):
        got = read_flows(c, 1.5 if f in wanted else 0.3)
        want = [{"dport": lport, "direction": "outbound"}] if f in wanted else []
        check_eq(got, want, "watch filter %r" % f)
        c.close()
    for f in wanted:
        rec = cl.request({"op": "recent", "filter": dict(f, pid=w.pid), "fields": ["pid", "direction"]})
        check(rec.get("flows") and all(x == {"pid": w.pid, "direction": "outbound"} for x in rec["flows"]),
              "recent filter %r" % f, rec)
    for f in unwanted:
        rec = cl.request({"op": "recent", "filter": dict(f, pid=w.pid)})
        check_eq(rec.get("flows"), [], "recent filter %r" % f)


def check_recent_cursor(cl, w):
    """Paging one flow at a time still walks every flow once."""
    seen = []
    ans = cl.request({"op": "recent", "limit": 1, "filter": {"pid": w.pid}, "fields": ["sport", "dport"]})
    for _ in range(50):
        seen += ans["flows"]
        if "cursor" not in ans:
            break
        ans = cl.request({"op": "recent", "limit": 1, "filter": {"pid": w.pid}, "cursor": ans["cursor"],
                          "fields": ["sport", "dport"]})
    full = cl.request({"op": "recent", "filter": {"pid": w.pid}, "fields": ["sport", "dport"]})["flows"]
    check(len(full) >= 3, "at least 3 flows of the workload", full)
    check_eq(seen, full, "recent paged by cursor")


def test(env):
    lport, d, w, cl = env.start("cpq-scope")

    st = cl.request({"op": "status"})
    check_eq(st.get("status", {}).get("inbound"), False, "status: inbound off without --inbound")

    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    q = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": t["sport"], "dport": lport}
    wait_until(lambda: cl.request(q).get("found"), what="the TCP flow")
    flow = check_flow_members(cl, q, w, t["sport"])
    check_scoped_lookups(cl, q, w)
    check_lookup_errors(cl, q, flow["community_id"])
    check_candidates(env, cl, lport)
    check_watch_filters(env, cl, w, lport)
    w.cmd({"cmd": "udp", "host": "127.0.0.1", "ports": [env.free_udp_port() for _ in range(3)]})
    wait_until(lambda: len(cl.request({"op": "recent", "filter": {"pid": w.pid}})["flows"]) >= 5,
               what="the UDP flows")
    check_recent_cursor(cl, w)

    cl.close()
    check_eq(d.stop(), 0, "queryd exit on SIGTERM")
    w.exit()


if __name__ == "__main__":
    main(test, "scope")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 14, "Show it": the same seed key in several network namespaces.

two_namespaces / ten_namespaces: a hub namespace holds a bridge with
10.77.1.1/16 and a server on 10.77.1.1:4443 (not in the test cgroup); N
client namespaces, each on a veth into the bridge with address 10.77.0.N,
each with a client process (in the test cgroup, joined to its namespace
with setns) bound to source port 40404 and connected to 10.77.1.1:4443,
all connections held open at once. So every client has the same seed key
{10.77.1.1, 40404, 4443, tcp}. Checks: a lookup with "src" 10.77.0.N, with
"netns" the namespace's inode, and with both, names the right pid every
time (100 %), also through `connpidctl --json lookup --src/--netns`
(and `--direct --src` is an error: the map has no source); mismatched src+netns and unused src/netns are not found; the
bare lookup answers the pid the kernel map names (the last connect) and
lists every other holder under "candidates" (in_map false): all N pids,
each once. recent and history filtered by src and by netns, and lookups
"at" (answered from the history store) with src and with netns, name each
client alone, and the rows keep src and netns.

same_full_tuple: the identical full 4-tuple (10.77.0.100:40404 ->
10.77.1.1:4443, both addresses on lo) in 4 namespaces, each with its own
server: a lookup by "netns" names the right pid each time; by "src" alone
(which all share) and bare, the flow + candidates hold all 4 pids.

Namespaces are cpn<PID>-*, removed at teardown (after the processes);
teardown that leaves one behind fails the test."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netnsharness import (all_flows, case, check, check_eq, ctl, ctl_lookup, log,  # noqa: E402
                          lookup, lookup_found, run_cases, wait_until)

SERVER = "10.77.1.1"
SPORT, DPORT = 40404, 4443


def make_star(env, n):
    """A hub namespace with a bridge and the server; n client namespaces on
    veths. [(netns name, address)]."""
    hub = env.add_netns("hub")
    env.ip("-n", hub, "link", "add", "br0", "type", "bridge")
    env.ip("-n", hub, "addr", "add", SERVER + "/16", "dev", "br0")
    env.ip("-n", hub, "link", "set", "br0", "up")
    out = []
    for i in range(1, n + 1):
        ns = env.add_netns("c%d" % i)
        addr = "10.77.0.%d" % i
        # made inside the namespaces: no name ever shows up on the host
        env.ip("-n", hub, "link", "add", "v%d" % i, "type", "veth", "peer", "name", "eth0", "netns", ns)
        env.ip("-n", hub, "link", "set", "v%d" % i, "master", "br0", "up")
        env.ip("-n", ns, "addr", "add", addr + "/16", "dev", "eth0")
        env.ip("-n", ns, "link", "set", "eth0", "up")
        out.append((ns, addr))
    server = env.workload(comm="cpn-server", netns=hub, in_cgroup=False)
    server.cmd({"cmd": "listen", "name": "srv", "host": SERVER, "port": DPORT, "backlog": 128})
    return hub, out


def connect_all(env, nets, src=None):
    clients = []
    for i, (ns, addr) in enumerate(nets):
        w = env.workload(comm="cpn-cli%d" % i, netns=ns)
        check_eq(w.netns, env.netns_ino(ns), "client %d runs in its namespace" % i)
        r = w.cmd({"cmd": "connect", "host": SERVER, "port": DPORT, "src": src or addr, "sport": SPORT})
        check_eq((r["src"], r["sport"]), (src or addr, SPORT), "client %d source" % i)
        clients.append(w)
    return clients


def check_flow(f, w, addr, what):
    check_eq(f.get("pid"), w.pid, what + ": pid")
    check_eq((f.get("dst"), f.get("sport"), f.get("dport"), f.get("proto")), (SERVER, SPORT, DPORT, "tcp"),
             what + ": key")
    check_eq(f.get("src"), addr, what + ": src")
    check_eq(f.get("netns"), w.netns, what + ": netns")
    check_eq(f.get("comm"), w.comm, what + ": comm")
    check_eq(f.get("direction"), "outbound", what + ": direction")


def check_all_listed(ans, clients, what):
    flows = all_flows(ans)
    pids = sorted(f.get("pid") for f in flows)
    check_eq(pids, sorted(w.pid for w in clients), what + ": pids in flow + candidates (each once)")
    for c in ans.get("candidates", []):
        check(c.get("in_map") is False, what + ": a candidate says in_map false", json.dumps(c))
    return flows


def pids_of(rows):
    return sorted(r.get("pid") for r in rows)


def check_recent_history(env, clients, nets, t0):
    """recent and history filtered by src and by netns, and lookups "at"
    (from the store) with src and with netns, name each client alone."""
    key = {"dst": SERVER, "sport": SPORT, "dport": DPORT}

    def ask(op, filt):
        req = {"op": op, "limit": 100, "filter": filt}
        if op == "history":
            filt["since"] = t0 - 1
        ans = env.request(req)
        check(ans.get("ok"), "%s %r failed" % (op, filt), json.dumps(ans))
        return ans["flows"]
    wait_until(lambda: len(ask("history", {"dport": DPORT})) >= len(clients), 15,
               what="every client's row in history")
    now = time.time()
    for w, (ns, addr) in zip(clients, nets):
        for op in ("recent", "history"):
            for filt in ({"src": addr}, {"netns": w.netns}):
                rows = ask(op, dict(filt))
                check_eq(pids_of(rows), [w.pid], "%s filtered by %r" % (op, filt))
                check_eq((rows[0].get("src"), rows[0].get("netns")), (addr, w.netns),
                         "%s %r: the row keeps src and netns" % (op, filt))
        for extra in ({"src": addr}, {"netns": w.netns}):
            ans = lookup(env, **key, **extra, at=now)
            check(ans.get("ok") and ans.get("found"), "lookup at with %r: found" % extra, json.dumps(ans))
            check_eq(ans["flow"].get("pid"), w.pid, "lookup at with %r: pid" % extra)
    log("recent/history filters and lookups \"at\" by src and netns: %d clients right" % len(clients))


def star(env, n):
    env.load()
    env.daemon(store=True)
    _, nets = make_star(env, n)
    t0 = time.time()
    clients = connect_all(env, nets)
    key = {"dst": SERVER, "sport": SPORT, "dport": DPORT}
    right = total = 0
    for w, (ns, addr) in zip(clients, nets):
        for what, extra in (("src", {"src": addr}), ("netns", {"netns": w.netns}),
                            ("src+netns", {"src": addr, "netns": w.netns})):
            ans = lookup_found(env, "%s by %s" % (ns, what), **key, **extra)
            total += 1
            check_flow(ans["flow"], w, addr, "%s by %s" % (ns, what))
            check("candidates" not in ans, "%s by %s: a unique match has no candidates" % (ns, what),
                  json.dumps(ans)[:2000])
            right += 1
    log("%d/%d lookups by src/netns named the right pid" % (right, total))
    for w, (ns, addr) in zip(clients, nets):   # the same through connpidctl
        for opt, val in (("--src", addr), ("--netns", str(w.netns))):
            ans = ctl_lookup(env, "connpidctl %s %s" % (opt, val), opt, val, SERVER, str(SPORT), str(DPORT))
            check_flow(ans["flow"], w, addr, "connpidctl %s %s" % (opt, val))
    log("%d/%d connpidctl lookups by --src/--netns named the right pid" % (2 * n, 2 * n))
    rc, out, err = ctl(env, "--direct", "lookup", "--src", nets[0][1], SERVER, str(SPORT), str(DPORT))
    check(rc == 2 and err.strip(), "connpidctl --direct --src: an error (the map has no source address)",
          (rc, out, err))

    a, b = clients[0], clients[1]
    ans = lookup(env, **key, src=nets[0][1], netns=b.netns)
    check(ans.get("ok") is True and ans.get("found") is False, "src of ns 1 with netns of ns 2: not found",
          json.dumps(ans))
    ans = lookup(env, **key, src="10.77.0.250")
    check(ans.get("ok") is True and ans.get("found") is False, "unused src: not found", json.dumps(ans))
    ans = lookup(env, **key, netns=env.netns_ino(env.ns_prefix + "hub"))
    check(ans.get("ok") is True and ans.get("found") is False, "the hub's netns (no client): not found",
          json.dumps(ans))

    ans = lookup_found(env, "bare lookup", **key)
    log("bare lookup: flow pid %s, %d candidates" % (ans["flow"].get("pid"), len(ans.get("candidates", []))))
    check_all_listed(ans, clients, "bare lookup")
    # every connect wrote the seed map; the last one is what it names
    check_eq(ans["flow"].get("pid"), clients[-1].pid, "bare lookup: flow is the pid the map names (last)")
    check(ans["flow"].get("in_map") is True, "bare lookup: flow in_map", json.dumps(ans["flow"]))
    by_pid = {w.pid: (w, addr) for w, (_, addr) in zip(clients, nets)}
    for f in all_flows(ans):
        w, addr = by_pid[f["pid"]]
        check_flow(f, w, addr, "bare lookup member pid %d" % w.pid)
    check_recent_history(env, clients, nets, t0)


@case
def two_namespaces(env):
    star(env, 2)


@case
def ten_namespaces(env):
    star(env, 10)


@case
def same_full_tuple(env):
    env.load()
    env.daemon()
    src = "10.77.0.100"
    clients = []
    for i in range(4):
        ns = env.add_netns("l%d" % i)
        env.ip("-n", ns, "addr", "add", src + "/32", "dev", "lo")
        env.ip("-n", ns, "addr", "add", SERVER + "/32", "dev", "lo")
        w = env.workload(comm="cpn-lo%d" % i, netns=ns)
        w.cmd({"cmd": "listen", "name": "srv", "host": SERVER, "port": DPORT})
        r = w.cmd({"cmd": "connect", "host": SERVER, "port": DPORT, "src": src, "sport": SPORT})
        check_eq((r["src"], r["sport"]), (src, SPORT), "client %d source" % i)
        clients.append(w)
    check_eq(len({w.netns for w in clients}), 4, "four distinct namespaces")
    key = {"dst": SERVER, "sport": SPORT, "dport": DPORT}
    for i, w in enumerate(clients):
        ans = lookup_found(env, "ns %d by netns" % i, **key, netns=w.netns)
        check_flow(ans["flow"], w, src, "ns %d by netns" % i)
        check("candidates" not in ans, "ns %d by netns: no candidates" % i, json.dumps(ans)[:2000])
    log("4/4 lookups by netns named the right pid")
    for what, extra in (("src only", {"src": src}), ("bare", {})):
        ans = lookup_found(env, what, **key, **extra)
        check_all_listed(ans, clients, what)


if __name__ == "__main__":
    run_cases("tup")

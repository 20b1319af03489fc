#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 14, "Show it", inbound: which process accepted a connection.

Every case loads `connpid-loader --inbound` into its own cgroup (except
no_inbound) and runs connpid-queryd with a private history database.
Lookups use the FLOW's naming: sport = the local (listening) port, dst/
dport = the remote client's address/port, "direction":"inbound".

forked_worker: a server (cpn-srv) listens, a forked worker (cpn-wrk0)
  accepts a client's connection: the inbound lookup names the worker, with
  "listener" the server (pid, comm, start_time) and no "creator" (also
  through `connpidctl --json lookup --inbound`); the
  client's own outbound flow is still answered as outbound; a watcher
  filtered by direction inbound gets the accepted flow and no outbound one,
  one filtered by outbound the reverse; after the store flushed, history
  filtered by direction inbound has the row (with listener) and no
  outbound row, and a lookup "at" with direction inbound answers from it;
  the accepted flow's key is not an outbound flow, neither in the index
  nor in the seed map (connpidctl --direct).
scm_rights: cpn-lsn calls listen() and passes the listener over
  SCM_RIGHTS to cpn-rcv, which accepts: acceptor cpn-rcv, listener cpn-lsn.
short_lived: five forked acceptors each accept one connection and exit at
  once (reaped before any lookup): each lookup still names its acceptor
  with comm and exe, listener the server.
dual_stack: a listener on "::" accepts an IPv4 client (v4-mapped socket,
  answered as IPv4, also when asked with the v4-mapped address) and an
  IPv6 one.
listener_per_address: a process listening on 127.0.0.2:P after the service
  on 127.0.0.1:P is not named as the listener of the service's connections.
no_inbound: loaded without --inbound, status says inbound false and an
  inbound lookup answers error "unavailable" (message names --inbound); a
  direction that is neither outbound nor inbound is invalid_argument."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netnsharness import (case, check, check_eq, ctl, ctl_lookup, log, lookup, lookup_found,  # noqa: E402
                          read_events, run_cases, wait_until)
import harness  # noqa: E402

HOST = "127.0.0.1"


def status_inbound(env):
    ans = env.request({"op": "status"})
    check(ans.get("ok"), "status failed", ans)
    st = ans.get("status") or {}
    return st.get("inbound", ans.get("inbound"))


def inbound(env, what, port, peer, **extra):
    """The inbound lookup of the connection accepted on `port` from `peer`."""
    return lookup_found(env, what, dst=peer[0], sport=port, dport=peer[1], direction="inbound",
                        **extra)["flow"]


def connect_accepted(cli, acceptor, port, what):
    """cli connects to HOST:port, acceptor accepts it: the peer it saw."""
    c = cli.cmd({"cmd": "connect", "host": HOST, "port": port})
    a = acceptor.cmd({"cmd": "accept", "name": "l"})
    check_eq(a["peer"], [HOST, c["sport"]], what + " accepted the client")
    return a["peer"]


def check_inbound(f, acceptor_pid, comm, listener, port, peer, what, exe=None, local=HOST):
    check_eq(f.get("direction"), "inbound", what + ": direction")
    check_eq(f.get("pid"), acceptor_pid, what + ": pid (the acceptor)")
    check_eq(f.get("comm"), comm, what + ": comm")
    if exe:   # /proc/PID/exe, or the path exec'd (a symlink here) when it came from the exec hook
        check(f.get("exe") and os.path.realpath(f["exe"]) == os.path.realpath(exe),
              what + ": exe %r names %r" % (f.get("exe"), exe), json.dumps(f))
    check_eq((f.get("src"), f.get("sport"), f.get("dst"), f.get("dport")), (local, port, peer[0], peer[1]),
             what + ": local src/sport, remote dst/dport")
    lst = f.get("listener")
    check(isinstance(lst, dict), what + ": has a listener object", json.dumps(f))
    check_eq((lst.get("pid"), lst.get("comm")), (listener.pid, listener.comm), what + ": listener pid/comm")
    check(isinstance(lst.get("start_time"), (int, float)) and lst["start_time"] > 0,
          what + ": listener start_time", json.dumps(lst))
    check("creator" not in f, what + ": an inbound flow carries no creator", json.dumps(f))


def start_watch(env, direction):
    cl = env.client()
    ack = cl.request({"op": "watch", "filter": {"direction": direction}})
    check(ack.get("ok") and ack.get("watching"), "watch direction %s ack" % direction, ack)
    return cl


@case
def forked_worker(env):
    env.load("--inbound")
    env.daemon(store=True)
    check_eq(status_inbound(env), True, "status inbound (loaded with --inbound)")
    t0 = time.time()
    w_in, w_out = start_watch(env, "inbound"), start_watch(env, "outbound")
    wait_until(lambda: env.request({"op": "stats"})["stats"].get("watchers", 0) >= 2, 5, what="2 watchers")

    srv = env.workload(comm="cpn-srv")
    port = srv.cmd({"cmd": "listen", "name": "l", "host": HOST})["port"]
    cli = env.workload(comm="cpn-cli")
    c = cli.cmd({"cmd": "connect", "host": HOST, "port": port})
    acc = srv.cmd({"cmd": "fork_accept", "name": "l", "count": 1, "comm": "cpn-wrk"})["acceptors"][0]
    peer = acc["peer"]
    check_eq(peer, [HOST, c["sport"]], "the worker accepted the client's connection")
    check(acc["pid"] != srv.pid, "the worker is a child process", acc)

    f = inbound(env, "worker", port, peer)
    check_inbound(f, acc["pid"], "cpn-wrk0", srv, port, peer, "worker")
    f = ctl_lookup(env, "connpidctl --inbound", "--inbound", peer[0], str(port), str(peer[1]))["flow"]
    check_inbound(f, acc["pid"], "cpn-wrk0", srv, port, peer, "connpidctl --inbound")
    f = inbound(env, "worker by src", port, peer, src=HOST)
    check_eq(f.get("pid"), acc["pid"], "worker by src: pid")
    out = lookup_found(env, "client outbound", dst=HOST, sport=c["sport"], dport=port)["flow"]
    check_eq((out.get("pid"), out.get("direction")), (cli.pid, "outbound"), "the client's own flow")
    check("listener" not in out, "an outbound flow has no listener", json.dumps(out))
    ans = lookup(env, dst=peer[0], sport=peer[1], dport=port, direction="inbound")
    check(ans.get("ok") and not ans.get("found"), "the outbound key is not an inbound flow", json.dumps(ans))
    ans = lookup(env, dst=peer[0], sport=port, dport=peer[1])
    check(ans.get("ok") and not ans.get("found"), "the inbound key is not an outbound flow", json.dumps(ans))
    rc, out, err = ctl(env, "--direct", "lookup", peer[0], str(port), str(peer[1]))
    check(rc == 1, "the seed map has no entry for an accepted flow (connpidctl --direct: not found)",
          (rc, out, err))

    # watch: each direction sees its own flows only
    ev_in = [e.get("flow", {}) for e in read_events(w_in, 1.5) if e.get("event") == "flow"]
    ev_out = [e.get("flow", {}) for e in read_events(w_out, 0.3) if e.get("event") == "flow"]
    log("watch inbound got %d flows, outbound %d" % (len(ev_in), len(ev_out)))
    check(any(e.get("pid") == acc["pid"] and e.get("sport") == port for e in ev_in),
          "watch inbound: the accepted flow", json.dumps(ev_in)[:2000])
    check(all(e.get("direction") == "inbound" for e in ev_in), "watch inbound: only inbound flows",
          json.dumps(ev_in)[:2000])
    check(any(e.get("pid") == cli.pid for e in ev_out), "watch outbound: the client's flow",
          json.dumps(ev_out)[:2000])
    check(all(e.get("direction") == "outbound" for e in ev_out), "watch outbound: only outbound flows",
          json.dumps(ev_out)[:2000])
    w_in.close()
    w_out.close()

    # history, once the store has the rows
    def hist(direction):
        ans = env.request({"op": "history", "filter": {"direction": direction, "since": t0 - 1},
                           "limit": 100})
        check(ans.get("ok"), "history direction %s failed" % direction, json.dumps(ans))
        return ans["flows"]
    rows = wait_until(lambda: [r for r in hist("inbound") if r.get("pid") == acc["pid"]], 15,
                      what="the inbound row in history")
    all_in = hist("inbound")
    check(all(r.get("direction") == "inbound" for r in all_in), "history inbound: only inbound rows",
          json.dumps(all_in)[:2000])
    check(not any(r.get("pid") == cli.pid for r in all_in), "history inbound: no client row",
          json.dumps(all_in)[:2000])
    r = rows[0]
    check_eq((r.get("sport"), r.get("dst"), r.get("dport")), (port, peer[0], peer[1]), "history row key")
    check_eq((r.get("listener") or {}).get("pid"), srv.pid, "history row listener pid")
    all_out = wait_until(lambda: [x for x in hist("outbound") if x.get("pid") == cli.pid] and hist("outbound"),
                         15, what="the client's outbound row in history")
    check(all(x.get("direction") == "outbound" for x in all_out), "history outbound: only outbound rows",
          json.dumps(all_out)[:2000])
    ans = lookup(env, dst=peer[0], sport=port, dport=peer[1], direction="inbound", at=time.time())
    check(ans.get("ok") and ans.get("found"), "lookup at, direction inbound: found", json.dumps(ans))
    check_eq(ans["flow"].get("pid"), acc["pid"], "lookup at, direction inbound: pid")
    check_eq(ans["flow"].get("direction"), "inbound", "lookup at: direction")


@case
def scm_rights(env):
    env.load("--inbound")
    env.daemon()
    lsn = env.workload(comm="cpn-lsn")
    rcv = env.workload(comm="cpn-rcv")
    path = os.path.join(env.tmp, "pass.sock")
    port = lsn.cmd({"cmd": "listen", "name": "l", "host": HOST})["port"]
    rcv.cmd({"cmd": "unix_listen", "path": path})
    lsn.cmd({"cmd": "send_listener", "name": "l", "path": path})
    check_eq(rcv.cmd({"cmd": "recv_listener", "name": "l"})["port"], port, "received the listener")
    cli = env.workload(comm="cpn-cli")
    peer = connect_accepted(cli, rcv, port, "the receiver")
    f = inbound(env, "scm_rights", port, peer)
    check_inbound(f, rcv.pid, "cpn-rcv", lsn, port, peer, "scm_rights")


@case
def listener_per_address(env):
    """Another process listening on the same port of another address never
    becomes the listener of a service's connections (hostile review)."""
    env.load("--inbound")
    env.daemon()
    srv = env.workload(comm="cpn-srv")
    port = srv.cmd({"cmd": "listen", "name": "l", "host": HOST})["port"]
    oth = env.workload(comm="cpn-oth")
    check_eq(oth.cmd({"cmd": "listen", "name": "l", "host": "127.0.0.2", "port": port})["port"], port,
             "the other listener took the same port on 127.0.0.2, after the service")
    cli = env.workload(comm="cpn-cli")
    peer = connect_accepted(cli, srv, port, "the service")
    f = inbound(env, "listener per address", port, peer)
    check_inbound(f, srv.pid, "cpn-srv", srv, port, peer, "listener per address")


@case
def short_lived(env):
    env.load("--inbound")
    env.daemon()
    srv = env.workload(comm="cpn-srv")
    port = srv.cmd({"cmd": "listen", "name": "l", "host": HOST})["port"]
    cli = env.workload(comm="cpn-cli")
    sports = {cli.cmd({"cmd": "connect", "host": HOST, "port": port})["sport"] for _ in range(5)}
    accs = srv.cmd({"cmd": "fork_accept", "name": "l", "count": 5, "comm": "cpn-sl", "exit": True})["acceptors"]
    check_eq(sorted(a["peer"][1] for a in accs), sorted(sports), "the five connections were accepted")
    for a in accs:
        check(not harness.pid_alive(a["pid"]), "acceptor %d has exited" % a["pid"])
    right = 0
    for i, a in enumerate(accs):
        f = inbound(env, "short-lived %d" % i, port, a["peer"])
        check_inbound(f, a["pid"], "cpn-sl%d" % i, srv, port, a["peer"], "short-lived %d" % i, exe=srv.exe)
        right += 1
    log("%d/%d exited acceptors named with comm and exe" % (right, len(accs)))


@case
def dual_stack(env):
    env.load("--inbound")
    env.daemon()
    srv = env.workload(comm="cpn-srv6")
    port = srv.cmd({"cmd": "listen", "name": "l", "host": "::"})["port"]
    cli = env.workload(comm="cpn-cli")
    for host, family in (("127.0.0.1", "ipv4"), ("::1", "ipv6")):
        c = cli.cmd({"cmd": "connect", "host": host, "port": port})
        a = srv.cmd({"cmd": "accept", "name": "l"})
        peer = [host, c["sport"]]
        # an IPv4 client of a "::" listener: the accepted socket is AF_INET6
        # with v4-mapped addresses, folded to IPv4 like outbound flows
        check_eq(a["peer"], ["::ffff:" + host if family == "ipv4" else host, c["sport"]], "accepted peer")
        what = "dual-stack listener, %s client" % family
        f = inbound(env, what, port, peer)
        check_inbound(f, srv.pid, "cpn-srv6", srv, port, peer, what, local=host)
        check_eq(f.get("family"), family, what + ": family")
        if family == "ipv4":
            f = inbound(env, what + " (v4-mapped dst)", port, ["::ffff:" + host, c["sport"]])
            check_eq(f.get("pid"), srv.pid, what + ", asked v4-mapped: pid")


@case
def no_inbound(env):
    env.load()
    env.daemon()
    check_eq(status_inbound(env), False, "status inbound (loaded without --inbound)")
    srv = env.workload(comm="cpn-srv")
    port = srv.cmd({"cmd": "listen", "name": "l", "host": HOST})["port"]
    cli = env.workload(comm="cpn-cli")
    c = cli.cmd({"cmd": "connect", "host": HOST, "port": port})
    srv.cmd({"cmd": "accept", "name": "l"})
    ans = lookup(env, dst=HOST, sport=port, dport=c["sport"], direction="inbound")
    err = ans.get("error") or {}
    check(ans.get("ok") is False and err.get("code") == "unavailable",
          "inbound lookup without --inbound: error unavailable", json.dumps(ans))
    check("--inbound" in err.get("message", ""), "the message names --inbound", json.dumps(ans))
    ans = lookup(env, dst=HOST, sport=port, dport=c["sport"], direction="sideways")
    check(ans.get("ok") is False and (ans.get("error") or {}).get("code") == "invalid_argument",
          "direction sideways: invalid_argument", json.dumps(ans))
    out = lookup_found(env, "outbound still works", dst=HOST, sport=c["sport"], dport=port)["flow"]
    check_eq(out.get("pid"), cli.pid, "outbound lookup without --inbound")


if __name__ == "__main__":
    run_cases("inb")

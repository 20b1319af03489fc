#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""`watch` with a filter streams the workload's new UDP flow and not its TCP
flow; `recent` with limit and filters returns the newest flows, newest
first; connpidctl recent/watch agree."""
import json
import os
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import binary, check, check_eq, main  # noqa: E402


def read_events(cl, seconds):
    """Every line the watcher gets within `seconds`."""
    return cl.read_events(seconds)


def test(env):
    _, lport = env.listener()
    d = env.daemon()
    d.wait_ready()
    w = env.workload(comm="cpq-watch")

    udpw = env.client()
    ack = udpw.request({"op": "watch", "filter": {"proto": "udp"}, "id": "w1"})
    check_eq((ack.get("ok"), ack.get("watching"), ack.get("id")), (True, True, "w1"), "watch ack")
    allw = env.client()
    ack = allw.request({"op": "watch", "filter": {"pid": w.pid}})
    check(ack.get("watching"), "second watch ack", ack)
    portw = env.client()
    uport = env.free_udp_port()
    ack = portw.request({"op": "watch", "filter": {"dport": uport, "dst": "127.0.0.1", "comm": "cpq-watch"}})
    check(ack.get("watching"), "third watch ack", ack)
    # connpidctl watch --json with a proto filter, as a real subprocess
    ctlw = subprocess.Popen([binary("CONNPIDCTL"), "--socket", env.sock, "--json", "--proto", "udp", "watch"],
                            stdout=subprocess.PIPE)
    env.track(ctlw)
    cl = env.client()
    deadline = time.monotonic() + 5
    while cl.request({"op": "stats"})["stats"]["watchers"] < 4:
        check(time.monotonic() < deadline, "watchers never registered")
        time.sleep(0.02)

    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    u = w.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": uport})

    got = read_events(udpw, 1.0)
    flows = [e["flow"] for e in got if e.get("event") == "flow"]
    check_eq(len(flows), len(got), "watch lines are flow events")
    check(all(f["proto"] == "udp" for f in flows), "udp filter lets only udp through", flows)
    mine = [f for f in flows if f["sport"] == u["sport"] and f["dport"] == uport]
    check_eq(len(mine), 1, "the workload's UDP flow is streamed once")
    f = mine[0]
    check_eq((f["pid"], f["comm"], f["exe"], f["dst"], f["seen"]),
             (w.pid, "cpq-watch", w.exe, "127.0.0.1", "event"), "streamed flow")
    check(not [f for f in flows if f["sport"] == t["sport"]], "the TCP flow is not streamed to the udp watcher")

    got = [e["flow"] for e in read_events(allw, 0.3)]
    keys = sorted((f["proto"], f["sport"]) for f in got)
    check_eq(keys, sorted([("tcp", t["sport"]), ("udp", u["sport"])]), "pid watcher sees both flows")
    got = [e["flow"] for e in read_events(portw, 0.3)]
    check_eq([(f["proto"], f["sport"]) for f in got], [("udp", u["sport"])], "dport/dst/comm watcher")

    lines = []
    buf = b""
    deadline = time.monotonic() + 5
    while len(lines) < 2 and time.monotonic() < deadline:
        r, _, _ = select.select([ctlw.stdout], [], [], 0.2)
        if r:
            chunk = os.read(ctlw.stdout.fileno(), 65536)
            check(chunk, "connpidctl watch exited")
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines += [json.loads(x) for x in done if x]
    check_eq(len(lines), 2, "connpidctl watch printed the ack and one flow (%r)" % lines)
    check_eq(lines[0].get("watching"), True, "connpidctl watch prints the ack first")
    ev = lines[1]
    check_eq((ev["flow"]["proto"], ev["flow"]["sport"]), ("udp", u["sport"]), "connpidctl watch flow")
    ctlw.terminate()
    ctlw.wait(10)

    # recent: 12 unconnected UDP flows to ports in order, then filters
    ports = [env.free_udp_port() for _ in range(12)]
    usend = w.cmd({"cmd": "udp", "host": "127.0.0.1", "ports": ports})
    rec = cl.request({"op": "recent", "limit": 3, "filter": {"pid": w.pid, "proto": "udp"}, "id": 9})
    check_eq(rec.get("id"), 9, "recent id")
    check_eq([f["dport"] for f in rec["flows"]], ports[::-1][:3], "recent limit 3: newest first")
    check(all(f["sport"] == usend["sport"] and f["pid"] == w.pid for f in rec["flows"]), "recent flows", rec)
    rec = cl.request({"op": "recent", "limit": 100, "filter": {"pid": w.pid, "proto": "tcp"}})
    check_eq([(f["sport"], f["dport"]) for f in rec["flows"]], [(t["sport"], lport)], "recent tcp filter")
    rec = cl.request({"op": "recent", "limit": 100, "filter": {"dport": ports[5]}})
    check_eq([f["sport"] for f in rec["flows"]], [usend["sport"]], "recent dport filter")
    rec = cl.request({"op": "recent", "limit": 100, "filter": {"comm": "cpq-watch", "dst": "127.0.0.1"}})
    check_eq(len(rec["flows"]), 2 + len(ports), "recent comm+dst filter: all the workload's flows")
    rec = cl.request({"op": "recent", "limit": 100, "filter": {"comm": "no-such-comm"}})
    check_eq(rec["flows"], [], "recent with a filter matching nothing")
    rec = cl.request({"op": "recent", "limit": 100, "filter": {"dst": "10.9.9.9"}})
    check_eq(rec["flows"], [], "recent dst filter matching nothing")
    stamps = [f["first_seen"] for f in cl.request({"op": "recent", "limit": 100})["flows"]]
    check_eq(stamps, sorted(stamps, reverse=True), "recent is ordered newest first")

    r = env.ctl("--json", "--limit", "2", "--pid", str(w.pid), "--proto", "udp", "recent")
    check_eq(r.returncode, 0, "connpidctl recent exit (%r)" % r.stderr)
    check_eq([f["dport"] for f in json.loads(r.stdout)["flows"]], ports[::-1][:2], "connpidctl recent --limit 2")
    r = env.ctl("--limit", "2", "--pid", str(w.pid), "recent")
    lines = r.stdout.strip().splitlines()
    check_eq(len(lines), 3, "human recent: header + 2 rows (%r)" % r.stdout)
    check_eq(lines[1].split()[5], str(ports[-1]), "human recent newest row dport")

    for c in (udpw, allw, portw, cl):
        c.close()
    check_eq(d.stop(), 0, "queryd exit on SIGTERM")
    w.exit()


if __name__ == "__main__":
    main(test, "watch")

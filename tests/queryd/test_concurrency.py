#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 3, item 5: 200 clients issue lookups at once while one `watch`
client never reads and a workload makes thousands of new UDP flows. Every
lookup is answered correctly, the non-reading watcher is disconnected
(stats.clients_dropped_slow >= 1: its output would be several MB, far past
the daemon's bound), and the daemon's RSS stays under 64 MB."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import check, check_eq, log, main, vmrss_kb  # noqa: E402

CLIENTS = 200
ROUNDS = 5          # lookups per client
FLOOD = 5000        # new UDP flows while the watcher sleeps
RSS_LIMIT_KB = 64 * 1024


def test(env):
    _, lport = env.listener(backlog=4096)
    d = env.daemon()
    d.wait_ready()

    # flows to look up: 40 TCP + 40 connected UDP from two workloads
    wt = env.workload(comm="cpq-tcp")
    wu = env.workload(comm="cpq-udp")
    flows = []
    for _ in range(40):
        c = wt.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
        flows.append(("tcp", c["sport"], c["dport"], wt.pid, "cpq-tcp"))
    for _ in range(40):
        c = wu.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": env.free_udp_port()})
        flows.append(("udp", c["sport"], c["dport"], wu.pid, "cpq-udp"))

    # the watcher that never reads (it does not even read the ack)
    watcher = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    watcher.connect(env.sock)
    watcher.sendall(b'{"op":"watch","id":"slow"}\n')
    cl = env.client()
    wait = time.monotonic() + 5
    while cl.request({"op": "stats"})["stats"]["watchers"] < 1:
        check(time.monotonic() < wait, "the watch client was never registered")
        time.sleep(0.02)

    # fat events: a long command line travels in every flow line
    flooder = env.workload(comm="cpq-flood", extra_args=["pad-" + "p" * 1500])
    rss0 = vmrss_kb(d.pid)

    errors = []
    answered = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(CLIENTS + 1)

    def client(i):
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(60)
            s.connect(env.sock)
            barrier.wait(60)
            f = s.makefile("rwb")
            import json
            r = 0
            # at least ROUNDS lookups, and keep going until the flood is over
            while r < ROUNDS or (not flood_done.is_set() and r < 10000):
                proto, sp, dp, pid, comm = flows[(i * ROUNDS + r) % len(flows)]
                f.write(json.dumps({"op": "lookup", "proto": proto, "dst": "127.0.0.1",
                                    "sport": sp, "dport": dp, "id": [i, r]}).encode() + b"\n")
                f.flush()
                line = f.readline()
                if not line:
                    raise AssertionError("client %d: connection closed" % i)
                ans = json.loads(line)
                if ans.get("id") != [i, r] or not ans.get("found") or ans["flow"]["pid"] != pid \
                        or ans["flow"]["comm"] != comm or ans["flow"]["proto"] != proto:
                    raise AssertionError("client %d round %d: wrong answer %r" % (i, r, ans))
                with lock:
                    answered[0] += 1
                r += 1
            s.close()
        except BaseException as e:   # noqa: B036 - collected and reported
            errors.append(repr(e))

    flood_done = threading.Event()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()

    def flood():
        try:
            flooder.cmd({"cmd": "udpflood", "host": "127.0.0.1", "base": 20000, "n": FLOOD}, timeout=120)
        except BaseException as e:   # noqa: B036
            errors.append("flood: %r" % e)
        flood_done.set()

    ft = threading.Thread(target=flood)
    t0 = time.monotonic()
    barrier.wait(60)           # all 200 connected: go
    ft.start()
    for t in threads:
        t.join(120)
    ft.join(120)
    log("%d lookups answered in %.2fs during the flood" % (answered[0], time.monotonic() - t0))
    check(not any(t.is_alive() for t in threads), "lookup clients hung")
    check(not errors, "%d lookup clients failed" % len(errors), *errors[:10])
    check(answered[0] >= CLIENTS * ROUNDS, "lookups answered: %d" % answered[0])
    check(flood_done.is_set(), "flood finished")

    # let the daemon drain the flood, then look at it
    def drained():
        st = cl.request({"op": "stats"})["stats"]
        return st if st["events_received"] >= 80 + FLOOD else None
    deadline = time.monotonic() + 30
    st = None
    while time.monotonic() < deadline and not st:
        st = drained()
        time.sleep(0.1)
    check(st, "the daemon drained the flood's events", cl.request({"op": "stats"}))
    rss = vmrss_kb(d.pid)
    log("queryd VmRSS %d kB before the flood, %d kB after; stats %r" % (rss0, rss, {
        k: st[k] for k in ("clients", "clients_total", "clients_dropped_slow", "watchers", "index_flows")}))
    limit = RSS_LIMIT_KB
    with open("/proc/%d/maps" % d.pid) as fh:
        if "libasan" in fh.read():
            limit *= 4   # ASan's shadow memory and quarantine are not the daemon's
            log("queryd runs under ASan: RSS limit %d kB" % limit)
    check(rss < limit, "queryd RSS %d kB >= %d kB" % (rss, limit))
    check(st["clients_dropped_slow"] >= 1, "the non-reading watch client was dropped", st)
    check_eq(st["watchers"], 0, "no watcher left")
    check_eq(st["kernel"]["ringbuf_drops"], 0, "no ring buffer drops")

    # the watcher's socket: what it got is bounded, then EOF
    watcher.settimeout(10)
    got = 0
    while True:
        try:
            b = watcher.recv(1 << 20)
        except ConnectionResetError:
            break
        if not b:
            break
        got += len(b)
    log("the slow watcher had %d bytes waiting before EOF" % got)
    check(got < 4 * 1024 * 1024, "the slow watcher's backlog is bounded (%d bytes)" % got)
    watcher.close()

    # lookups still right after all that, and a flood flow is found too
    for proto, sp, dp, pid, comm in flows[::8]:
        ans = cl.request({"op": "lookup", "proto": proto, "dst": "127.0.0.1", "sport": sp, "dport": dp})
        check(ans.get("found") and ans["flow"]["pid"] == pid, "lookup after the flood", ans)
    rec = cl.request({"op": "recent", "limit": 1, "filter": {"comm": "cpq-flood"}})
    check_eq(len(rec["flows"]), 1, "recent finds a flood flow")
    last = rec["flows"][0]
    check_eq(last["dport"], 20000 + FLOOD - 1, "newest flood flow is the last port")
    ans = cl.request({"op": "lookup", "proto": "udp", "dst": "127.0.0.1",
                      "sport": last["sport"], "dport": 20000 + FLOOD // 2})
    check(ans.get("found") and ans["flow"]["pid"] == flooder.pid, "a flood flow by lookup", ans)
    cl.close()
    check(d.alive(), "daemon alive", d.log())
    check_eq(d.stop(), 0, "queryd exit on SIGTERM")


if __name__ == "__main__":
    main(test, "conc")

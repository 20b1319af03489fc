#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 16, item 1: connpid's Community ID equals Wireshark's.

Real flows from a workload in a private cgroup, loaded into a private pin
dir: TCP and connected UDP, over 127.0.0.1 and ::1, captured with
`tshark -i lo -f "port ..." -w f.pcap`. For each flow, the community_id of
the live lookup, of the watch event, of the history row and of
`connpidctl lookup --json` must equal what
`tshark -r f.pcap --enable-protocol communityid -e communityid` computes
from the packets (independent code: Wireshark's epan). `lookup` by
community_id alone (live, and with "at" from the history) and
`connpidctl lookup --community-id ID [--at T]` name the workload's pid.
All of it twice: seed 0 (the default) and --community-id-seed 7 against
tshark's `-o communityid.seed:7`."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "store"))
from storeharness import (WORKLOAD, Env, Skip, check, check_eq, history, json_command,  # noqa: E402
                          log, main, wait_until)


class Work:
    def __init__(self, env, comm):
        self.proc = env.track(subprocess.Popen([sys.executable, WORKLOAD, "serve", "--cgroup", env.cgroup,
                                                "--comm", comm, "--tcp-data"], stdin=subprocess.PIPE,
                                               stdout=subprocess.PIPE, text=True, bufsize=1))
        self.pid = self.cmd({"cmd": "hello"})["pid"]

    def cmd(self, obj):
        return json_command(self.proc, obj, 60)


def listeners(env):
    """A TCP listener and a bound UDP socket on 127.0.0.1 and on ::1."""
    out = []
    for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        for kind, proto in ((socket.SOCK_STREAM, "tcp"), (socket.SOCK_DGRAM, "udp")):
            s = socket.socket(fam, kind)
            s.bind((host, 0))
            if kind == socket.SOCK_STREAM:
                s.listen(16)
            env.socks.append(s)
            out.append((proto, host, s.getsockname()[1]))
    return out


class Capture:
    def __init__(self, env, ports):
        self.path = env.path("flows-%d.pcap" % ports[0])
        filt = " or ".join("port %d" % p for p in ports)
        self.errpath = self.path + ".err"
        self.err = open(self.errpath, "w")
        self.proc = env.track(subprocess.Popen(["tshark", "-i", "lo", "-f", filt, "-w", self.path],
                                               stdout=subprocess.DEVNULL, stderr=self.err))
        wait_until(lambda: "Capturing on" in open(self.errpath).read() or self.proc.poll() is not None,
                   timeout=30, what="tshark capturing")
        check(self.proc.poll() is None, "tshark exited", open(self.errpath).read())

    def stop(self):
        time.sleep(0.5)  # the last packets reach the capture
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        self.err.close()

    def community_ids(self, seed):
        """{(proto, sport, dport): set of IDs} over every packet, both ways."""
        args = ["tshark", "-r", self.path, "--enable-protocol", "communityid", "-o",
                "communityid.seed:%d" % seed, "-T", "fields", "-E", "separator=,", "-e", "tcp.srcport",
                "-e", "tcp.dstport", "-e", "udp.srcport", "-e", "udp.dstport", "-e", "communityid"]
        r = subprocess.run(args, capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "tshark -r failed", r.stderr)
        ids = {}
        for line in r.stdout.splitlines():
            tsp, tdp, usp, udp, cid = line.split(",")
            proto, a, b = ("tcp", tsp, tdp) if tsp else ("udp", usp, udp)
            key = (proto,) + tuple(sorted((int(a), int(b))))
            ids.setdefault(key, set()).add(cid)
        return ids


def run_round(env, seed):
    extra = [] if seed == 0 else ["--community-id-seed", str(seed)]
    db = env.path("cid-%d.db" % seed)
    d = env.daemon(db=db, extra=extra)
    d.wait_ready()
    targets = listeners(env)
    cap = Capture(env, [p for _, _, p in targets])
    w = Work(env, "cid-seed%d" % seed)
    watch = env.client()
    check(watch.request({"op": "watch", "filter": {"pid": w.pid}}).get("ok"), "watch refused")

    flows = []
    for proto, host, port in targets:
        ans = w.cmd({"cmd": "tcp" if proto == "tcp" else "udpc", "host": host, "port": port})
        flows.append({"proto": proto, "dst": host, "dport": port, "sport": ans["sport"], "t": ans["t"]})
    cap.stop()
    tshark = cap.community_ids(seed)
    log("seed %d: tshark says %r" % (seed, tshark))

    events = {}
    while len(events) < len(flows):
        ev = watch.read_line()
        check(ev is not None, "watch closed")
        if ev.get("event") == "flow":
            f = ev["flow"]
            events[(f["proto"], f["sport"], f["dport"])] = f
    watch.close()

    for f in flows:
        what = "%s %s:%d -> %d (seed %d)" % (f["proto"], f["dst"], f["dport"], f["sport"], seed)
        key = (f["proto"],) + tuple(sorted((f["sport"], f["dport"])))
        want = tshark.get(key)
        check(want and len(want) == 1, "tshark: one Community ID for %s" % what, want)
        want = next(iter(want))
        check(want.startswith("1:") and len(want) == 30, "tshark's ID looks like one", want)

        with env.client() as c:
            live = c.request({"op": "lookup", "proto": f["proto"], "dst": f["dst"], "sport": f["sport"],
                              "dport": f["dport"]})
        check(live.get("found"), "live lookup finds " + what, live)
        check_eq(live["flow"]["community_id"], want, "live lookup community_id of " + what)
        check_eq(live["flow"]["pid"], w.pid, "live lookup pid of " + what)
        ev = events[(f["proto"], f["sport"], f["dport"])]
        check_eq(ev["community_id"], want, "watch event community_id of " + what)

        r = env.ctl("--json", "lookup", f["dst"], f["sport"], f["dport"], "--protocol", f["proto"])
        check_eq(json.loads(r.stdout)["flow"]["community_id"], want, "connpidctl lookup community_id of " + what)

        # by the ID alone: the index ...
        with env.client() as c:
            by_id = c.request({"op": "lookup", "community_id": want})
        check(by_id.get("found"), "lookup by community_id finds " + what, by_id)
        check_eq(by_id["flow"]["pid"], w.pid, "lookup by community_id pid of " + what)
        check_eq((by_id["flow"]["sport"], by_id["flow"]["dport"]), (f["sport"], f["dport"]),
                 "lookup by community_id ports of " + what)
        r = env.ctl("--json", "lookup", "--community-id", want)
        check(r.returncode == 0, "connpidctl lookup --community-id exit of " + what, r.stdout, r.stderr)
        check_eq(json.loads(r.stdout)["flow"]["pid"], w.pid, "connpidctl lookup --community-id pid")

        # ... and the history: its row, and lookup with "at"
        rows = wait_until(lambda: [x for x in history(env, {"dport": f["dport"], "pid": w.pid})
                                   if x["sport"] == f["sport"]], timeout=10, what="history row of " + what)
        check_eq(rows[0]["community_id"], want, "history row community_id of " + what)
        # the row is committed: the first answer must find it
        with env.client() as c:
            at = c.request({"op": "lookup", "community_id": want, "at": time.time()})
        check(at.get("found"), "lookup by community_id at now finds " + what, at)
        check_eq(at["flow"]["pid"], w.pid, "lookup by community_id at pid of " + what)
        check_eq(at["flow"]["community_id"], want, "lookup by community_id at: the row's ID")
        with env.client() as c:
            before = c.request({"op": "lookup", "community_id": want, "at": f["t"] - 60})
        check(before.get("ok") and before.get("found") is False, "no flow a minute before " + what, before)
        r = env.ctl("--json", "lookup", "--community-id", want, "--at", "%.3f" % time.time())
        check_eq(r.returncode, 0, "connpidctl lookup --community-id --at finds " + what)
        check_eq(json.loads(r.stdout)["flow"]["pid"], w.pid, "connpidctl lookup --community-id --at pid")

    # an ID nobody made, and input that is none
    with env.client() as c:
        none = c.request({"op": "lookup", "community_id": "1:AAAAAAAAAAAAAAAAAAAAAAAAAAA="})
        check(none.get("ok") and none.get("found") is False, "unknown ID not found", none)
        for bad in ("1:short=", "2:LQU9qZlK+B5F3KDmev6m5PMibrg=", 7, "1:LQU9qZlK+B5F3KDmev6m5PMibr!="):
            err = c.request({"op": "lookup", "community_id": bad})
            check_eq(err.get("error", {}).get("code"), "invalid_argument", "lookup community_id %r" % (bad,))
        err = c.request({"op": "lookup", "community_id": want, "dst": "127.0.0.1"})
        check_eq(err.get("error", {}).get("code"), "invalid_argument", "community_id with dst")
    w.proc.stdin.close()
    w.proc.wait(timeout=10)
    check_eq(d.stop(), 0, "queryd exit status")


def test(env):
    if not shutil.which("tshark"):
        raise Skip("tshark is not installed (apt-get install tshark; tests/install-deps.sh)")
    env.load()
    run_round(env, 0)
    run_round(env, 7)


if __name__ == "__main__":
    main(test, "cid")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 16 item 4 (+5 live): connpid-queryd --export ndjson:PATH with a
real loader and workload:
  - every line of PATH and its rotations is valid JSON, an ECS record of a
    flow the workload made (pid, process.name, destination.port, ...);
  - rotation by size (--ndjson-max-size 20000 --ndjson-keep 2): no file
    above the limit, at most PATH.1 and PATH.2 besides PATH, the newest
    flows in PATH;
  - a symlinked PATH, and a directory writable by others (not sticky),
    are refused at start (exit != 0, the reason logged), the link's target
    untouched;
  - `connpidctl stats --prometheus` of this live daemon parses with
    prometheus_client;
  - `connpidctl history --format ecs` gives the same ECS fields for a flow.
Exit 0 pass, 1 fail, 77 skip."""
import glob
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "queryd"))
from qdharness import binary, check, check_eq, main, wait_until  # noqa: E402

MAX = 20000
N = 120


def read_records(path):
    recs = []
    for p in sorted(glob.glob(path + "*")):
        size = os.path.getsize(p)
        check(size <= MAX, "%s is %d bytes, above the rotation size %d" % (p, size, MAX))
        with open(p, "rb") as f:
            for i, line in enumerate(f):
                try:
                    recs.append(json.loads(line.decode("utf-8")))
                except ValueError as e:
                    check(False, "%s line %d is not JSON: %s" % (p, i + 1, e), line[:200])
    return recs


def refused(env, path, why):
    d = env.daemon(extra=["--export", "ndjson:" + path])
    try:
        d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        check(False, "queryd accepted %s (%s)" % (path, why), d.log())
    check(d.proc.returncode != 0, "queryd exit 0 with %s" % path)
    check(why in d.log(), "the refusal does not say %r" % why, d.log())


def test(env):
    # refusals first: nothing written through a link, nothing in a 0777 dir
    victim = os.path.join(env.tmp, "victim")
    with open(victim, "w") as f:
        f.write("precious\n")
    link = os.path.join(env.tmp, "link.ndjson")
    os.symlink(victim, link)
    refused(env, link, "symbolic link")
    check_eq(open(victim).read(), "precious\n", "the link's target")
    wdir = os.path.join(env.tmp, "open")
    os.mkdir(wdir)
    os.chmod(wdir, 0o777)
    refused(env, os.path.join(wdir, "flows.ndjson"), "writable by others")

    out = os.path.join(env.tmp, "flows.ndjson")
    _, lport = env.listener()
    d = env.daemon(extra=["--export", "ndjson:" + out, "--ndjson-max-size", str(MAX), "--ndjson-keep", "2"])
    d.wait_ready()
    w = env.workload(comm="cpx-ndjson")
    sports = []
    for _ in range(N):
        sports.append(w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})["sport"])
    cl = env.client()
    wait_until(lambda: cl.request({"op": "stats"})["stats"]["events_received"] >= N, what="events")
    # the exporter flushes every second
    time.sleep(1.5)
    prom = env.ctl("stats", "--prometheus")
    check(prom.returncode == 0, "stats --prometheus rc %d" % prom.returncode, prom.stderr)
    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(prom.stdout)}
    check(fams["connpid_events"].type == "counter" and fams["connpid_events"].samples[0].value >= N,
          "live connpid_events_total", prom.stdout[:500])
    check("connpid_map_fill_ratio" in fams, "no map fill ratio", prom.stdout[:500])

    d.stop()
    files = sorted(glob.glob(out + "*"))
    check(set(files) <= {out, out + ".1", out + ".2"}, "rotated files: %r" % files)
    check(out + ".1" in files, "no rotation happened: %r" % files)
    recs = read_records(out)
    mine = [r for r in recs if r.get("process", {}).get("pid") == w.pid]
    check(len(mine) > 0, "no record of the workload's flows (pid %d)" % w.pid, len(recs),
          recs[-1] if recs else None)
    last = max(mine, key=lambda r: r["@timestamp"])
    for r in mine:
        check_eq(r["process"]["name"], "cpx-ndjson", "process.name")
        check_eq(r["destination"]["port"], lport, "destination.port")
        check_eq(r["destination"]["ip"], "127.0.0.1", "destination.ip")
        check_eq(r["network"]["transport"], "tcp", "network.transport")
        check_eq(r["event"]["category"], ["network"], "event.category")
        # issue 14: a connect() from this host
        check_eq(r["network"]["direction"], "egress", "network.direction")
        check_eq(r["event"]["action"], "connect", "event.action")
        check("listener" not in r.get("connpid", {}), "no connpid.listener on an outbound flow", r)
        check(r["source"]["port"] in sports, "source.port %r is not one of ours" % r["source"]["port"])
        for k in ("@timestamp",):
            check(k in r, "no %s" % k)
        check(r["process"].get("entity_id", "").count("-") >= 6, "process.entity_id", r["process"])
        check("id" in r["host"] and "name" in r["host"], "host.id/name", r["host"])
        check(r["user"]["id"] == str(os.getuid()), "user.id", r["user"])
    newest = [json.loads(x) for x in open(out, "rb")]
    check(any(r.get("source", {}).get("port") == sports[-1] for r in newest),
          "the newest flow is not in %s" % out)
    print("ndjson: %d records kept in %d files (of %d flows), last %s" %
          (len(recs), len(files), N, last["@timestamp"]))

    # history --format ecs: the same names from the history
    d2 = env.daemon()
    d2.wait_ready()
    h = env.ctl("history", "--format", "ecs", "--pid", str(w.pid), "--limit", "5")
    check(h.returncode == 0, "history --format ecs rc %d" % h.returncode, h.stderr)
    lines = [json.loads(x) for x in h.stdout.splitlines()]
    check(len(lines) == 5, "history --format ecs gave %d lines" % len(lines), h.stdout[:300])
    for r in lines:
        check_eq(r["process"]["pid"], w.pid, "history process.pid")
        check_eq(r["destination"]["port"], lport, "history destination.port")
        check_eq(r["connpid"]["seen"], "history", "history connpid.seen")
        check_eq(r["network"]["direction"], "egress", "history network.direction")
    d2.stop()


if __name__ == "__main__":
    main(test, "ndjson")

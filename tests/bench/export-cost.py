#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 16: what each --export costs connpid-queryd per flow.

  tests/bench/export-cost.py BUILD_DIR [--flows N] [--rounds R]

For each round and each mode (interleaved, so host noise spreads over all
modes): start connpid-queryd (--no-store --no-dns --no-docker, so the
export is what differs), have a workload in the private test cgroup send
N datagrams to N ports (N new UDP flows), wait until queryd has received
them all, and take queryd's utime+stime (/proc/PID/stat) from just before
the burst to then. Modes:

  none             no export
  journal          --export journal, bucket opened (--journal-rate and
                   --journal-burst 1000000): every flow is an entry
  journal-limited  --export journal with the default bucket (500/s, 5000):
                   past the burst, flows are counted and dropped
  ndjson           --export ndjson:TMP/flows.ndjson (default rotation)

There is no journald on the bench host: queryd runs in a private mount
namespace with a tmpfs on /run, where a sink process binds
/run/systemd/journal/socket and reads (and discards) every datagram, so
queryd's side (building the fields, sendmsg) is measured in full;
journald's own CPU per entry is not in these figures.
Prints medians and ranges of us per flow. Needs root, BPF and cgroup2.
"""
import argparse
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
from qdharness import main as qd_main  # noqa: E402
import harness  # noqa: E402

SINK = r'''
import os, socket, sys
ppid = os.getppid()
os.makedirs("/run/systemd/journal", exist_ok=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
s.bind("/run/systemd/journal/socket")
os.chmod("/run/systemd/journal/socket", 0o666)
open("/run/systemd/journal/.ready", "w").close()
s.settimeout(1.0)
while os.getppid() == ppid:
    try:
        s.recv(1 << 20)
    except socket.timeout:
        pass
'''

# the sink starts first (the socket exists before queryd's first entry),
# then the shell becomes queryd: the pid we measure is queryd's
WRAP = ('mount --make-rprivate / && mount -t tmpfs -o mode=0755 none /run && '
        '{ python3 -c "$0" & } && '
        'while [ ! -e /run/systemd/journal/.ready ]; do sleep 0.05; done && exec "$@"')

MODES = {
    "none": [],
    "journal": ["--export", "journal", "--journal-rate", "1000000/s", "--journal-burst", "1000000"],
    "journal-limited": ["--export", "journal"],
    "ndjson": ["--export", "ndjson:{tmp}/flows.ndjson"],
}


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime, stime


def one(env, mode, n, base):
    extra = ["--no-store", "--no-dns", "--no-docker"] + [a.format(tmp=env.tmp) for a in MODES[mode]]
    qd = harness.binary("CONNPID_QUERYD")
    args = ["unshare", "-m", "sh", "-c", WRAP, SINK, qd, "--pin-dir", env.pin_dir, "--socket", env.sock] + extra
    d = harness.Daemon(env, args)
    try:
        d.wait_ready()
        cl = env.client()
        stats = lambda: cl.request({"op": "stats"})["stats"]  # noqa: E731
        ev0 = stats()["events_received"]
        w = env.workload(comm="cpx-cost")
        t0 = cpu_ticks(d.pid)
        w.cmd({"cmd": "udpflood", "host": "127.0.0.1", "base": base, "n": n}, timeout=120)
        # all n, or what came when the count stops moving (ring drops)
        last, still = -1, 0
        while still < 10:
            ev = stats()["events_received"] - ev0
            if ev >= n:
                break
            still = still + 1 if ev == last else 0
            last = ev
            time.sleep(0.05)
        t1 = cpu_ticks(d.pid)
        s = stats()
        w.exit()
        got = s["events_received"] - ev0
        if got < n:
            print("  note: %d of %d events (kernel: %s)" % (got, n, s.get("kernel")))
        exp = s.get("export", {})
        return (t1 - t0) / os.sysconf("SC_CLK_TCK") / max(got, 1) * 1e6, exp
    finally:
        d.stop()


def bench(env, args):
    res = {m: [] for m in MODES}
    base = 20000
    for r in range(args.rounds):
        order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
        for m in order:
            us, exp = one(env, m, args.flows, base)
            res[m].append(us)
            print("round %d %-16s %6.2f us/flow  %s" % (r + 1, m, us, exp), flush=True)
    print("\n%-16s %8s %16s  (%d rounds of %d new UDP flows)" % ("mode", "median", "range", args.rounds, args.flows))
    none = statistics.median(res["none"])
    for m, v in res.items():
        med = statistics.median(v)
        print("%-16s %6.2f us %6.2f-%-6.2f us  %+.2f us/flow vs none" % (m, med, min(v), max(v), med - none))


def run(env):
    bench(env, ARGS)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("build")
    p.add_argument("--flows", type=int, default=20000)
    p.add_argument("--rounds", type=int, default=5)
    ARGS = p.parse_args()
    b = os.path.abspath(ARGS.build)
    os.environ.setdefault("CONNPID_LOADER", os.path.join(b, "loader/connpid-loader"))
    os.environ.setdefault("CONNPID_QUERYD", os.path.join(b, "queryd/connpid-queryd"))
    os.environ.setdefault("CONNPIDCTL", os.path.join(b, "queryd/ctl/connpidctl"))
    sys.argv = sys.argv[:1]
    qd_main(run, "cost")

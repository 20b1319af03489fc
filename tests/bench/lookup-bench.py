#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Lookup round trip and queryd footprint with a full index (issue 15).

    lookup-bench.py [--rounds N] [--seq N] [--pipe-ms MS] [--flows N] [--profile DIR]
                    [--placements one,two,free] [--cpu-ms MS] [--queryd-arg ARG ...]
                    [--client-spin-us N]

Loads connpid into a private child cgroup and pin dir, starts queryd
(--no-store), and has `lookup-bench workload` (in that cgroup) make FLOWS
UDP flows and then one TCP connection, the flow looked up. Then:
queryd VmRSS / RssAnon with the full index, and `lookup-bench measure`:
interleaved rounds of an echo server of ours, ping, lookup, lookup with
"fields", once per placement: "one" (client, echo server and queryd
pinned to one CPU), "two" (client on one CPU, echo server and queryd on
another), "free" (wherever the scheduler puts them: queryd, a process of
long standing, may sit on the other CPU than the client while the echo
server, just forked by the client, shares its CPU, so this one compares
unlike placements). With --profile DIR: perf record -g and strace -c of queryd
during pipelined lookups, into DIR. Binaries from CONNPID_LOADER,
CONNPID_QUERYD and LOOKUP_BENCH. Reports; asserts no timing.
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import harness  # noqa: E402
from harness import Client, binary, check, enter_cgroup_fn, log, wait_until  # noqa: E402


def status_kb(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[k] = int(v.split()[0])
    return out


def smaps_top(pid, n=6):
    """The mappings holding the most resident memory, by name."""
    per, name = {}, None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            parts = line.split()
            if "-" in parts[0] and len(parts) >= 5 and not line.startswith(("Rss", "Pss")):
                name = parts[5] if len(parts) > 5 else "[anon]"
            elif parts[0] == "Rss:":
                per[name] = per.get(name, 0) + int(parts[1])
    return sorted(per.items(), key=lambda kv: -kv[1])[:n]


def stats(sock):
    with Client(sock, 30) as c:
        return c.request({"op": "stats"})["stats"]


def profile(env, bench, qpid, wl, outdir):
    os.makedirs(outdir, exist_ok=True)
    args = [bench, "measure", env.sock, str(wl["sport"]), str(wl["dport"]), "1", "100", "3000"]
    for mode in ("lookup", "lookup_fields"):
        perf = subprocess.Popen(["perf", "record", "-g", "-o", os.path.join(outdir, "perf-%s.data" % mode),
                                 "-p", str(qpid), "--", "sleep", "5"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env.track(perf)
        time.sleep(0.3)
        subprocess.run(args, capture_output=True, timeout=120, env=dict(os.environ, LOOKUP_BENCH_ONLY=mode))
        perf.wait(timeout=60)
    st = subprocess.Popen(["strace", "-c", "-f", "-o", os.path.join(outdir, "strace.txt"),
                           "-p", str(qpid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env.track(st)
    time.sleep(0.5)
    before = stats(env.sock)["requests"]
    subprocess.run(args, capture_output=True, timeout=120)
    after = stats(env.sock)["requests"]
    st.terminate()
    st.wait(timeout=30)
    with open(os.path.join(outdir, "requests.txt"), "w") as f:
        f.write("%d requests during strace\n" % (after - before))
    log("profile in %s (%d requests under strace)" % (outdir, after - before))


def set_affinity(pid, cpus):
    """All threads of pid onto cpus."""
    for tid in os.listdir("/proc/%d/task" % pid):
        os.sched_setaffinity(int(tid), cpus)


# placement: (client CPU, server CPU); None = not pinned
PLACEMENTS = {"one": (0, 0), "two": (0, 1), "free": (None, None)}


def measure(env, bench, qpid, info, a, placement):
    client, server = PLACEMENTS[placement]
    allcpus = os.sched_getaffinity(0)
    if server is not None and server not in allcpus or client is not None and client not in allcpus:
        log("placement %s skipped: CPUs %r are not all available (have %r)" % (placement, (client, server),
                                                                                sorted(allcpus)))
        return
    set_affinity(qpid, allcpus if server is None else {server})
    envv = dict(os.environ, LOOKUP_BENCH_CLIENT_CPU="" if client is None else str(client),
                LOOKUP_BENCH_SERVER_CPU="" if server is None else str(server), LOOKUP_BENCH_SERVER_PID=str(qpid),
                LOOKUP_BENCH_CLIENT_SPIN_US=str(a.client_spin_us))
    print("\n=== placement %s: client CPU %s, echo server and queryd CPU %s" % (placement, client, server))
    sys.stdout.flush()
    try:
        r = subprocess.run([bench, "measure", env.sock, str(info["sport"]), str(info["dport"]), str(a.rounds),
                            str(a.seq), str(a.pipe_ms)], timeout=3600, env=envv)
    finally:
        set_affinity(qpid, allcpus)
    check(r.returncode == 0, "lookup-bench measure failed (rc %d)" % r.returncode)


def cpu_seconds(pid):
    """utime + stime of all of pid's threads."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request(env, bench, qpid, info, a):
    """queryd's own CPU time per request, client apart: pipelined
    requests of one mode for a few seconds, queryd's utime+stime over the
    requests it counted. On one CPU with the client, as placement one."""
    allcpus = os.sched_getaffinity(0)
    if 0 not in allcpus:
        log("queryd CPU per request skipped: CPU 0 is not available (have %r)" % sorted(allcpus))
        return
    set_affinity(qpid, {0})
    envv = dict(os.environ, LOOKUP_BENCH_CLIENT_CPU="0", LOOKUP_BENCH_SERVER_CPU="0")
    try:
        for mode in ("ping", "lookup", "lookup_fields"):
            n0, c0 = stats(env.sock)["requests"], cpu_seconds(qpid)
            r = subprocess.run([bench, "measure", env.sock, str(info["sport"]), str(info["dport"]), "1", "100",
                                str(a.cpu_ms)], capture_output=True, timeout=600,
                               env=dict(envv, LOOKUP_BENCH_ONLY=mode))
            check(r.returncode == 0, "lookup-bench measure failed (rc %d)" % r.returncode)
            n1, c1 = stats(env.sock)["requests"], cpu_seconds(qpid)
            print("queryd CPU per %s: %.2f us (%d requests, %.2f s of CPU)"
                  % (mode, (c1 - c0) / max(n1 - n0, 1) * 1e6, n1 - n0, c1 - c0))
            sys.stdout.flush()
    finally:
        set_affinity(qpid, allcpus)


def run(env, a):
    bench = binary("LOOKUP_BENCH")
    env.load()
    env.no_store_daemon(extra=a.queryd_arg)
    qpid = env.daemon_proc.pid
    idle = status_kb(qpid)
    wl = subprocess.Popen([bench, "workload", str(a.flows)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, preexec_fn=enter_cgroup_fn(env.cgroup))
    env.track(wl)
    info = json.loads(wl.stdout.readline())
    cap = stats(env.sock)["index_capacity"]
    want = min(cap, a.flows + 1)
    try:
        wait_until(lambda: stats(env.sock)["index_flows"] >= want, timeout=60, what="index filled")
    except AssertionError:
        log("stats: %r" % stats(env.sock))
        raise
    s = stats(env.sock)
    full = status_kb(qpid)
    res = {"index_flows": s["index_flows"], "index_capacity": cap, "rss_idle_kb": idle, "rss_full_kb": full}
    print(json.dumps(res))
    print("queryd VmRSS idle %d kB (anon %d), full index of %d flows: %d kB (anon %d, file %d, shmem %d)"
          % (idle["VmRSS"], idle["RssAnon"], s["index_flows"], full["VmRSS"], full["RssAnon"],
             full["RssFile"], full["RssShmem"]))
    print("largest resident mappings (kB): %s" % ", ".join("%s %d" % kv for kv in smaps_top(qpid)))
    sys.stdout.flush()
    if a.profile:
        profile(env, bench, qpid, info, a.profile)
    if a.cpu_ms:
        cpu_per_request(env, bench, qpid, info, a)
    for placement in a.placements:
        measure(env, bench, qpid, info, a, placement)
    print("queryd VmRSS after the rounds: %d kB" % status_kb(qpid)["VmRSS"])
    wl.stdin.close()
    wl.wait(timeout=30)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seq", type=int, default=3000)
    p.add_argument("--pipe-ms", type=int, default=1000)
    p.add_argument("--flows", type=int, default=81920)
    p.add_argument("--profile")
    p.add_argument("--placements", default="one,two,free", help="comma-separated; empty: none")
    p.add_argument("--queryd-arg", action="append", default=[],
                   help="one more argument for connpid-queryd (e.g. --busy-poll-us=200)")
    p.add_argument("--client-spin-us", type=int, default=0,
                   help="the client checks for its answer without sleeping this long first")
    p.add_argument("--cpu-ms", type=int, default=1000,
                   help="pipelined ms per mode for queryd's CPU per request (0: skip)")
    a = p.parse_args()
    a.placements = [pl for pl in a.placements.split(",") if pl]
    for pl in a.placements:
        if pl not in PLACEMENTS:
            p.error("--placements: one, two or free, not %r" % pl)
    sys.argv[1:] = []  # harness.main() reads case names from the arguments
    print("2-vCPU VM shared with other engineers: read figures as medians and ranges")
    harness.main(lambda env: run(env, a), harness.CgroupEnv, "lkb",
                 lambda: harness.require_environment("bpf, cgroups", ("CONNPID_LOADER", "CONNPID_QUERYD",
                                                                     "LOOKUP_BENCH")))


if __name__ == "__main__":
    main()

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Every flow kind lands in the pinned map with the right key and pid, and
produces exactly one ring event with the right fields; a repeated UDP send
on a known flow produces no second event (only a REPEATS count).

Keys are checked byte for byte with plain bpf(2) syscalls, the way the
original Python/ctypes reader does it."""
import contextlib
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402

# action: (listener kind, listener host, connect host, key family,
#          key dst, protocol, event source)
FLOWS = {
    "tcp4": ("tcp", "127.0.0.1", "127.0.0.1", 4, "127.0.0.1", T.PROTO_TCP,
             T.SRC_SOCKOPS_CONNECT),
    "tcp6": ("tcp", "::1", "::1", 6, "::1", T.PROTO_TCP, T.SRC_SOCKOPS_CONNECT),
    "tcp4mapped": ("tcp", "127.0.0.1", "::ffff:127.0.0.1", 4, "127.0.0.1",
                   T.PROTO_TCP, T.SRC_SOCKOPS_CONNECT),
    "udp4": ("udp", "127.0.0.1", "127.0.0.1", 4, "127.0.0.1", T.PROTO_UDP,
             T.SRC_SENDMSG),
    "udp6": ("udp", "::1", "::1", 6, "::1", T.PROTO_UDP, T.SRC_SENDMSG),
    "udp4c": ("udp", "127.0.0.1", "127.0.0.1", 4, "127.0.0.1", T.PROTO_UDP,
              T.SRC_SKB_EGRESS),
    "udp6c": ("udp", "::1", "::1", 6, "::1", T.PROTO_UDP, T.SRC_SKB_EGRESS),
    "udp4mapped": ("udp", "127.0.0.1", "::ffff:127.0.0.1", 4, "127.0.0.1",
                   T.PROTO_UDP, T.SRC_SENDMSG),
    # The kernel sends on a connected v4-mapped AF_INET6 UDP socket through
    # udp_sendmsg() with an explicit address, so cgroup/sendmsg4 sees it
    # first and the egress hook then counts a repeat for every packet.
    "udp4mappedc": ("udp", "127.0.0.1", "::ffff:127.0.0.1", 4, "127.0.0.1",
                    T.PROTO_UDP, T.SRC_SENDMSG),
}
# REPEATS per extra send on a known flow (hooks that see each packet)
REPEATS_PER_SEND = {"udp4mappedc": 2}


@contextlib.contextmanager
def loaded_env():
    with T.TestEnv("maps") as env:
        env.load()
        yield env


def flow_key(action, sport, dport):
    _, _, _, fam, dst, proto, _ = FLOWS[action]
    if fam == 4:
        return T.key_v4(dst, sport, dport, proto)
    return T.key_v6(dst, sport, dport, proto)


def check_map(env, action, w, dport):
    key = flow_key(action, w.info["sport"], dport)
    with env.maps() as m:
        pid = m.lookup_pid(key)
        check(pid is not None, "%s: key %s (%s) not in the map"
              % (action, key.hex(), T.decode_key(key)),
              "v4 keys: %s" % [T.decode_key(k) for k in m.keys(4)],
              "v6 keys: %s" % [T.decode_key(k) for k in m.keys(6)])
        check_eq(pid, w.pid, "%s: pid stored under %s" % (action, key.hex()))
        fam = FLOWS[action][3]
        keys = m.keys(fam)
        check(key in keys, "%s: key not found walking the map with "
              "BPF_MAP_GET_NEXT_KEY" % action)
        # The other family's map must not hold this flow.
        other = m.keys(6 if fam == 4 else 4)
        for k in other:
            _, sp, dp, proto = T.decode_key(k)
            check(not (sp == w.info["sport"] and dp == dport and
                       proto == FLOWS[action][5]),
                  "%s: flow also keyed in the v%d map: %s"
                  % (action, 6 if fam == 4 else 4, T.decode_key(k)))


def check_event(env, action, w, dport, ev, t0, t1):
    _, _, _, fam, dst, proto, source = FLOWS[action]
    info = w.info
    what = "%s event" % action
    check_eq(ev["pid"], w.pid, what + " pid")
    check_eq(ev["tid"], info["tid"], what + " tid")
    check_eq(ev["comm"], info["comm"], what + " comm")
    check_eq(ev["uid"], os.getuid(), what + " uid")
    check_eq(ev["gid"], os.getgid(), what + " gid")
    check_eq(ev["family"], T.AF_INET if fam == 4 else T.AF_INET6, what + " family")
    check_eq(ev["protocol"], proto, what + " protocol")
    check_eq(ev["source"], source, what + " source")
    check_eq(ev["flags"], 0, what + " flags")
    check_eq(ev["prev_pid"], 0, what + " prev_pid")
    check_eq(ev["dst"], dst, what + " dst")
    check_eq(ev["dst_port"], dport, what + " dst_port")
    check_eq(ev["src_port"], info["sport"], what + " src_port")
    src = T.v4_of(info["src"]) if fam == 4 else info["src"]
    if source == T.SRC_SENDMSG:
        # Unconnected, unbound sockets have no source address yet.
        check(ev["src"] in (T.v4_of(src), "0.0.0.0", "::"),
              "%s src: got %r, want %r or unspecified" % (what, ev["src"], src))
    else:
        check_eq(ev["src"], src, what + " src")
    check_eq(ev["cgroup_id"], env.cgroup_id, what + " cgroup_id (inode of %s)"
             % env.cgroup)
    check(ev["socket_cookie"] != 0, what + ": socket cookie is 0")
    check_eq(ev["socket_cookie"], info["cookie"], what + " socket_cookie (SO_COOKIE)")
    check_eq(ev["netns_ino"], T.netns_ino(w.pid), what + " netns_ino")
    check(t0 <= ev["ts_ns"] <= t1, "%s ts_ns %d not within the workload's "
          "run [%d, %d] (CLOCK_MONOTONIC)" % (what, ev["ts_ns"], t0, t1))
    tick_ns = 1e9 / T.clk_tck()
    ticks = T.proc_start_ticks(w.pid)
    diff = ev["start_boottime_ns"] - ticks * tick_ns
    check(abs(diff) <= tick_ns, "%s start_boottime_ns %d vs /proc/%d/stat "
          "starttime %d ticks (%.0f ns): off by %.0f ns, more than a tick"
          % (what, ev["start_boottime_ns"], w.pid, ticks, ticks * tick_ns, diff))


def one_flow(env, action, repeat=False):
    kind, lhost, chost = FLOWS[action][:3]
    env.ringdump(timeout_ms=100)  # drain leftovers of earlier cases
    with T.listener(kind, lhost) as dport:
        t0 = time.monotonic_ns()
        w = env.spawn(action, chost, dport, comm="cpt-" + action)
        t1 = time.monotonic_ns()
        check_map(env, action, w, dport)
        events = [e for e in env.ringdump(timeout_ms=400) if e["pid"] == w.pid]
        check_eq(len(events), 1, "%s: events for pid %d (%s)"
                 % (action, w.pid, events))
        check_event(env, action, w, dport, events[0], t0, t1)
        if repeat:
            with env.maps() as m:
                before = m.stats()
            ans = w.send()
            check(ans.get("ok"), "%s: second send failed" % action, ans)
            again = [e for e in env.ringdump(timeout_ms=400)]
            check_eq(again, [], "%s: events after a second send on the same flow"
                     % action)
            with env.maps() as m:
                after = m.stats()
                check_eq(m.lookup_pid(flow_key(action, w.info["sport"], dport)),
                         w.pid, "%s: pid after the second send" % action)
            check_eq(after[T.STAT_REPEATS] - before[T.STAT_REPEATS],
                     REPEATS_PER_SEND.get(action, 1),
                     "%s: REPEATS increase for one more send" % action)
            check_eq(after[T.STAT_EVENTS], before[T.STAT_EVENTS],
                     "%s: EVENTS after a repeat" % action)
            check_eq(after[T.STAT_RINGBUF_DROPS], 0, "ring buffer drops")
            check_eq(after[T.STAT_MAP_UPDATE_ERRORS], 0, "map update errors")
        w.close()


@case
def tcp4(env):
    one_flow(env, "tcp4")


@case
def tcp6(env):
    one_flow(env, "tcp6")


@case
def tcp4_mapped(env):
    one_flow(env, "tcp4mapped")


@case
def udp4_unconnected(env):
    one_flow(env, "udp4", repeat=True)


@case
def udp6_unconnected(env):
    one_flow(env, "udp6", repeat=True)


@case
def udp4_connected(env):
    one_flow(env, "udp4c", repeat=True)


@case
def udp6_connected(env):
    one_flow(env, "udp6c", repeat=True)


@case
def udp4_mapped_unconnected(env):
    """AF_INET6 socket, sendto ::ffff:127.0.0.1: the kernel takes the IPv4
    path (cgroup/sendmsg4); keyed in the v4 map."""
    one_flow(env, "udp4mapped", repeat=True)


@case
def udp4_mapped_connected(env):
    one_flow(env, "udp4mappedc", repeat=True)


@contextlib.contextmanager
def spawned_in(env, cgroup, action, host, port, comm):
    """A workload in another cgroup (env.spawn writes env.cgroup's procs):
    made here, emptied and removed on the way out, before env's own."""
    os.mkdir(cgroup, 0o755)
    sub = T.TestEnv.__new__(T.TestEnv)
    sub.cgroup, sub.workloads = cgroup, []
    try:
        yield T.TestEnv.spawn(sub, action, host, port, comm=comm)
    finally:
        for w in sub.workloads:
            w.close()
        T.TestEnv._kill_cgroup(sub)
        T.TestEnv._rmdir_cgroup(sub)


def connected_udp_in(env, cgroup, comm):
    """One connected UDP flow from a workload in `cgroup`: (pid in the map
    or None, events of its pid, the workload's cgroup id)."""
    env.ringdump(timeout_ms=100)
    with T.listener("udp", "127.0.0.1") as dport:
        with spawned_in(env, cgroup, "udp4c", "127.0.0.1", dport, comm) as w:
            key = flow_key("udp4c", w.info["sport"], dport)
            with env.maps() as m:
                pid = m.lookup_pid(key)
            events = [e for e in env.ringdump(timeout_ms=400) if e["pid"] == w.pid]
            return pid, w.pid, events, os.stat(cgroup).st_ino


@case
def udp4_connected_below_scope(env):
    """Connected UDP goes through a host-wide tracepoint that scopes itself
    by the socket's cgroup: a cgroup below the attach point is in scope."""
    pid, wpid, events, cg_id = connected_udp_in(env, os.path.join(env.cgroup, "cpt-sub"), "cpt-below")
    check_eq(pid, wpid, "connected UDP from a child cgroup: pid in the map")
    check_eq(len(events), 1, "connected UDP from a child cgroup: events (%s)" % events)
    check_eq(events[0]["source"], T.SRC_SKB_EGRESS, "event source")
    check_eq(events[0]["cgroup_id"], cg_id, "event cgroup_id (the child's)")


@case
def udp4_connected_deep_below_scope(env):
    """40 levels below the attach point (a delegated sub-tree may nest at
    will): still in scope, however deep."""
    top = os.path.join(env.cgroup, "cpt-deep")
    path = top
    os.mkdir(top, 0o755)
    try:
        for i in range(39):
            path = os.path.join(path, "d%d" % i)
            os.mkdir(path, 0o755)
        pid, wpid, events, _ = connected_udp_in(env, os.path.join(path, "leaf"), "cpt-deep")
        check_eq(pid, wpid, "connected UDP 40 cgroups below the scope: pid in the map")
        check_eq(len(events), 1, "connected UDP 40 cgroups below the scope: events (%s)" % events)
    finally:
        while path != env.cgroup:
            try:
                os.rmdir(path)
            except OSError:
                pass
            path = os.path.dirname(path)


@case
def udp4_connected_outside_scope(env):
    """... and a sibling of the attach point is not: no key, no event."""
    pid, _, events, _ = connected_udp_in(env, env.cgroup + "-out", "cpt-outside")
    check_eq(pid, None, "connected UDP from outside the scope: pid in the map")
    check_eq(events, [], "connected UDP from outside the scope: events")


@case
def ringdump_count_leaves_the_rest(env):
    """The helper itself: --count N stops after N and leaves later events."""
    env.ringdump(timeout_ms=100)
    with T.listener("udp", "127.0.0.1") as port:
        ws = [env.spawn("udp4", "127.0.0.1", port, comm="cpt-count%d" % i)
              for i in range(3)]
        first = env.ringdump(timeout_ms=2000, count=1)
        check_eq(len(first), 1, "events with --count 1")
        rest = env.ringdump(timeout_ms=300)
        check_eq(sorted(e["pid"] for e in first + rest),
                 sorted(w.pid for w in ws), "pids of the 3 events over two dumps")
        for w in ws:
            w.close()


@case
def stats_consistent(env):
    """Per-family flow counters match what the cases above created."""
    with env.maps() as m:
        st = m.stats()
        v4 = len(m.keys(4))
        v6 = len(m.keys(6))
    T.log("stats: %s, v4 keys %d, v6 keys %d" % (st, v4, v6))
    check(st[T.STAT_FLOWS_V4] >= v4, "FLOWS_V4 %d < v4 keys %d"
          % (st[T.STAT_FLOWS_V4], v4))
    check(st[T.STAT_FLOWS_V6] >= v6, "FLOWS_V6 %d < v6 keys %d"
          % (st[T.STAT_FLOWS_V6], v6))
    check_eq(st[T.STAT_EVENTS], st[T.STAT_FLOWS_V4] + st[T.STAT_FLOWS_V6],
             "EVENTS == FLOWS_V4 + FLOWS_V6")
    check_eq(st[T.STAT_BLOCKED_V6], 0, "BLOCKED_V6 without --ipv6-block")


if __name__ == "__main__":
    T.run_cases(shared=loaded_env)

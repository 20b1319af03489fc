#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The IPv6 blocker: with --ipv6-block native IPv6 connect()/sendto() get
EPERM, IPv4-mapped destinations pass, ::1 passes unless --block-loopback6;
refused attempts never reach the maps or the ring."""
import errno
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402

NATIVE6 = "2001:db8::1"  # documentation prefix: refused before routing
NATIVE6_PORT = 9


def spawn_refused(env, action, host, port):
    w = env.spawn(action, host, port, comm="cpt-blk-" + action, timeout=2,
                  expect_ok=False)
    check(not w.info["ok"], "%s to %s was allowed" % (action, host), w.info)
    check_eq(w.info["errno"], errno.EPERM, "%s to %s errno" % (action, host))
    return w


def check_not_recorded(env, pids, dsts):
    with env.maps() as m:
        for fam in (4, 6):
            for k in m.keys(fam):
                dst, sport, dport, proto = T.decode_key(k)
                check(dst not in dsts, "refused destination %s recorded in "
                      "the v%d map: %s" % (dst, fam, T.decode_key(k)))
    events = env.ringdump(timeout_ms=300)
    bad = [e for e in events if e["pid"] in pids or e["dst"] in dsts]
    check_eq(bad, [], "ring events for refused attempts")
    return events


def check_allowed(env, action, lhost, chost, key_fam, key_dst, proto):
    kind = "tcp" if action.startswith("tcp") else "udp"
    with T.listener(kind, lhost) as port:
        w = env.spawn(action, chost, port, comm="cpt-ok-" + action)
        if key_fam == 4:
            key = T.key_v4(key_dst, w.info["sport"], port, proto)
        else:
            key = T.key_v6(key_dst, w.info["sport"], port, proto)
        with env.maps() as m:
            check_eq(m.lookup_pid(key), w.pid, "%s to %s: map entry %s"
                     % (action, chost, T.decode_key(key)))
    return w


@case
def block_native_ipv6():
    with T.TestEnv("block") as env:
        env.load("--ipv6-block")
        st = env.status_json()
        check_eq(st.get("ipv6_block"), True, "status ipv6_block")
        with env.maps() as m:
            check_eq(m.config(), 1, "config[0] with --ipv6-block")
        refused = [spawn_refused(env, a, NATIVE6, NATIVE6_PORT)
                   for a in ("tcp6", "udp6", "udp6c")]
        with env.maps() as m:
            check_eq(m.stat(T.STAT_BLOCKED_V6), 3, "BLOCKED_V6 after 3 refusals")
        # v4-mapped passes and is keyed in the v4 map
        check_allowed(env, "tcp4mapped", "127.0.0.1", "::ffff:127.0.0.1", 4,
                      "127.0.0.1", T.PROTO_TCP)
        # ::1 passes by default
        check_allowed(env, "tcp6", "::1", "::1", 6, "::1", T.PROTO_TCP)
        check_allowed(env, "udp6", "::1", "::1", 6, "::1", T.PROTO_UDP)
        check_allowed(env, "udp6c", "::1", "::1", 6, "::1", T.PROTO_UDP)
        # plain IPv4 is untouched
        check_allowed(env, "tcp4", "127.0.0.1", "127.0.0.1", 4, "127.0.0.1",
                      T.PROTO_TCP)
        events = check_not_recorded(env, {w.pid for w in refused}, {NATIVE6})
        check_eq(len(events), 5, "events for the 5 allowed flows")
        with env.maps() as m:
            check_eq(m.stat(T.STAT_BLOCKED_V6), 3, "BLOCKED_V6 at the end")


@case
def block_loopback6_too():
    with T.TestEnv("blocklo") as env:
        env.load("--ipv6-block", "--block-loopback6")
        refused = [spawn_refused(env, a, h, NATIVE6_PORT if h == NATIVE6 else 9)
                   for a in ("tcp6", "udp6", "udp6c")
                   for h in ("::1", NATIVE6)]
        with env.maps() as m:
            check_eq(m.stat(T.STAT_BLOCKED_V6), 6, "BLOCKED_V6")
        check_allowed(env, "tcp4mapped", "127.0.0.1", "::ffff:127.0.0.1", 4,
                      "127.0.0.1", T.PROTO_TCP)
        check_allowed(env, "udp4", "127.0.0.1", "127.0.0.1", 4, "127.0.0.1",
                      T.PROTO_UDP)
        check_not_recorded(env, {w.pid for w in refused}, {NATIVE6, "::1"})
        with env.maps() as m:
            check_eq(m.keys(6), [], "v6 map with everything v6 refused")


@case
def no_block_without_flag():
    """Control: the blocker is loaded but config[0] is 0: nothing refused."""
    with T.TestEnv("noblock") as env:
        env.load()
        with env.maps() as m:
            check_eq(m.config(), 0, "config[0] without --ipv6-block")
        for action in ("tcp6", "udp6"):
            # In a fresh netns there is no address or route: the kernel's
            # own error (EADDRNOTAVAIL, ENETUNREACH) proves the hook let the
            # call through.
            w = env.spawn(action, NATIVE6, NATIVE6_PORT, timeout=1,
                          comm="cpt-ctl-" + action, expect_ok=False,
                          new_netns=True)
            check(not w.info["ok"], "%s to %s in an empty netns" % (action, NATIVE6),
                  w.info)
            check(w.info.get("errno") in (errno.ENETUNREACH, errno.EADDRNOTAVAIL,
                                          errno.EHOSTUNREACH),
                  "%s to %s without --ipv6-block: want a routing error, not "
                  "EPERM" % (action, NATIVE6), w.info)
        check_allowed(env, "tcp6", "::1", "::1", 6, "::1", T.PROTO_TCP)
        with env.maps() as m:
            check_eq(m.stat(T.STAT_BLOCKED_V6), 0, "BLOCKED_V6 without the flag")


if __name__ == "__main__":
    T.run_cases()

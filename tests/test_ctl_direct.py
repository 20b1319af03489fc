#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpidctl lookup --direct: reads the pinned maps without the daemon.
Exit 0 found, 1 not found, 2 error (bad input, nothing loaded)."""
import contextlib
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402

CTL = None


@contextlib.contextmanager
def loaded_env():
    global CTL
    CTL = T.binary("CONNPIDCTL")
    with T.TestEnv("ctl") as env:
        env.load()
        yield env


def ctl(env, *args, pin_dir=None):
    return T.run([CTL, "--pin-dir", pin_dir or env.pin_dir] + list(args))


def lookup(env, dst, sport, dport, proto="tcp", json_out=False):
    args = (["--json"] if json_out else []) + [
        "lookup", dst, str(sport), str(dport), "--protocol", proto, "--direct"]
    return ctl(env, *args)


def check_found(env, w, dst, dport, proto):
    exe = os.readlink("/proc/%d/exe" % w.pid)
    p = lookup(env, dst, w.info["sport"], dport, proto)
    check_eq(p.returncode, 0, "lookup %s %s %s/%s exit" % (dst, w.info["sport"],
                                                           dport, proto))
    for want, what in ((str(w.pid), "pid"), (w.info["comm"], "comm"), (exe, "exe")):
        check(want in p.stdout, "lookup output does not name the %s %r" % (what, want),
              p.stdout)

    p = lookup(env, dst, w.info["sport"], dport, proto, json_out=True)
    check_eq(p.returncode, 0, "lookup --json exit")
    lines = p.stdout.strip().splitlines()
    check_eq(len(lines), 1, "lines of lookup --json output")
    o = json.loads(lines[0])
    check_eq(o.get("ok"), True, "json ok")
    check_eq(o.get("found"), True, "json found")
    check_eq(o.get("pid"), w.pid, "json pid")
    check_eq(o.get("comm"), w.info["comm"], "json comm")
    check_eq(o.get("exe"), exe, "json exe")
    check_eq(o.get("alive"), True, "json alive")
    return o


@case
def found_tcp4(env):
    with T.listener("tcp", "127.0.0.1") as port:
        w = env.spawn("tcp4", "127.0.0.1", port, comm="cpt-ctl-tcp4")
        check_found(env, w, "127.0.0.1", port, "tcp")
        # the same flow asked as UDP, or with the ports swapped, is unknown
        p = lookup(env, "127.0.0.1", w.info["sport"], port, "udp")
        check_eq(p.returncode, 1, "lookup of the TCP flow as udp: exit")
        p = lookup(env, "127.0.0.1", port, w.info["sport"], "tcp")
        check_eq(p.returncode, 1, "lookup with swapped ports: exit")
        w.close()


@case
def found_v4mapped_query(env):
    """A v4-mapped destination in the query finds the v4 key."""
    with T.listener("tcp", "127.0.0.1") as port:
        w = env.spawn("tcp4mapped", "::ffff:127.0.0.1", port, comm="cpt-ctl-map")
        check_found(env, w, "127.0.0.1", port, "tcp")
        check_found(env, w, "::ffff:127.0.0.1", port, "tcp")
        w.close()


@case
def found_udp6(env):
    with T.listener("udp", "::1") as port:
        w = env.spawn("udp6", "::1", port, comm="cpt-ctl-udp6")
        check_found(env, w, "::1", port, "udp")
        w.close()


@case
def exited_owner_is_found_not_alive(env):
    with T.listener("tcp", "127.0.0.1") as port:
        w = env.spawn("tcp4", "127.0.0.1", port, comm="cpt-ctl-gone")
        sport, pid = w.info["sport"], w.pid
        w.close()
        check(not os.path.exists("/proc/%d" % pid), "workload %d still alive" % pid)
        p = lookup(env, "127.0.0.1", sport, port, "tcp", json_out=True)
        check_eq(p.returncode, 0, "lookup of an exited owner's flow: exit")
        o = json.loads(p.stdout)
        check_eq(o.get("found"), True, "found")
        check_eq(o.get("pid"), pid, "pid")
        check_eq(o.get("alive"), False, "alive")


@case
def unknown_flow_not_found(env):
    p = lookup(env, "127.0.0.1", 1, 2, "tcp")
    check_eq(p.returncode, 1, "unknown flow: exit")
    check("not found" in p.stdout, "unknown flow: output does not say 'not found'",
          p.stdout)
    p = lookup(env, "127.0.0.1", 1, 2, "udp", json_out=True)
    check_eq(p.returncode, 1, "unknown flow --json: exit")
    o = json.loads(p.stdout)
    check_eq((o.get("ok"), o.get("found")), (True, False), "unknown flow json")
    p = lookup(env, "2001:db8::7", 1, 2, "udp")
    check_eq(p.returncode, 1, "unknown v6 flow: exit")


@case
def seed_signature_not_found(env):
    p = ctl(env, "lookup", "142.250.80.46", "54321", "443", "--protocol", "tcp",
            "--direct")
    check_eq(p.returncode, 1, "seed signature on an empty map: exit")
    check("not found" in p.stdout, "seed signature: output", p.stdout)


@case
def bad_input_exit_2(env):
    bad = [
        (("300.1.1.1", "1000", "443", "tcp"), "300.1.1.1"),
        (("not-an-ip", "1000", "443", "tcp"), "not-an-ip"),
        (("", "1000", "443", "tcp"), "IP"),
        (("127.0.0.1", "0", "443", "tcp"), "'0'"),
        (("127.0.0.1", "70000", "443", "tcp"), "70000"),
        (("127.0.0.1", "abc", "443", "tcp"), "abc"),
        (("127.0.0.1", "1000", "0", "tcp"), "'0'"),
        (("127.0.0.1", "1000", "70000", "tcp"), "70000"),
        (("127.0.0.1", "1000", "abc", "tcp"), "abc"),
        (("127.0.0.1", "1000", "443", "icmp"), "icmp"),
        (("127.0.0.1", "1000", "443", ""), "protocol"),
    ]
    for (dst, sport, dport, proto), needle in bad:
        p = ctl(env, "lookup", dst, sport, dport, "--protocol", proto, "--direct")
        what = "lookup %r %r %r --protocol %r" % (dst, sport, dport, proto)
        check_eq(p.returncode, 2, what + ": exit")
        err = [l for l in p.stderr.splitlines() if l.strip()]
        check_eq(len(err), 1, what + ": lines on stderr")
        check(needle.lower() in err[0].lower(), "%s: message does not mention %r"
              % (what, needle), err[0])
        check_eq(p.stdout, "", what + ": stdout")
    # a negative port, after "--" so getopt does not take it for an option
    p = ctl(env, "--protocol", "tcp", "--direct", "lookup", "--", "127.0.0.1",
            "-1", "443")
    check_eq(p.returncode, 2, "negative source port: exit")
    check("-1" in p.stderr, "negative source port: message", p.stderr)
    # wrong arity
    for args in (["lookup", "127.0.0.1", "1000"],
                 ["lookup", "127.0.0.1", "1000", "443", "extra"]):
        p = ctl(env, *args, "--direct")
        check_eq(p.returncode, 2, "%s: exit" % args)
        check(p.stderr.strip(), "%s: no message" % args)


@case
def nothing_loaded_exit_2(env):
    missing = env.pin_dir + "-missing"
    p = ctl(env, "lookup", "127.0.0.1", "1000", "443", "--protocol", "tcp",
            "--direct", pin_dir=missing)
    check_eq(p.returncode, 2, "lookup --direct on a pin dir with nothing: exit")
    check("not loaded" in p.stderr or "connpid-loader" in p.stderr,
          "message does not say connpid is not loaded", p.stderr)
    check(not os.path.exists(missing), "connpidctl created %s" % missing)


if __name__ == "__main__":
    T.run_cases(shared=loaded_env)

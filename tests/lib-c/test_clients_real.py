#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpidctl and the Python client against the REAL connpid-queryd
(issue 14): lookup with src/netns finds the workload's flow and a wrong
src or netns does not; recent filters by direction/netns/src; the flow
says "direction":"outbound"; an inbound lookup while the loader ran
without --inbound is the error "unavailable" with its hint.
With the argument "inbound" the loader runs with --inbound: a server in
the test cgroup accepts a connection, and `connpidctl lookup --inbound
CLIENT_IP LOCAL_PORT CLIENT_PORT` and the Python client name it, with
its listener; the table shows DIR "in"; recent --direction inbound
lists it.
"fields" (issue 15): a lookup with fields answers with those members
only, from the Python client and from libconnpid (lookup-fields prints
the result struct: the members asked for filled, the others NULL/-1),
recent with fields too, and an unknown name is invalid_argument in both.

Root, BTF and cgroup2 needed (the queryd harness: own cgroup, pin dir,
socket; all removed at exit); exit 77 without them."""
import errno
import json
import os
import socket
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "python"))
import qdharness  # noqa: E402  (puts tests/lib on the path)
import harness  # noqa: E402
from qdharness import check, check_eq, main  # noqa: E402
from connpid_client import ConnpidClient, ConnpidProtocolError  # noqa: E402


def ctl_json(env, *args):
    r = env.ctl("--json", *args)
    try:
        return r.returncode, json.loads(r.stdout.splitlines()[0]) if r.stdout else None, r.stderr
    except ValueError:
        return r.returncode, None, r.stderr


def lookup_fields(env, key, *fields):
    """libconnpid's result struct for a lookup with fields, as lookup-fields prints it."""
    exe = os.environ.get("CONNPID_LOOKUP_FIELDS", "")
    check(exe and os.path.exists(exe), "CONNPID_LOOKUP_FIELDS is built", exe)
    r = subprocess.run([exe, env.sock] + key[1:] + list(fields), capture_output=True, text=True, timeout=30)
    check_eq(r.returncode, 0, "lookup-fields exit (%s)" % r.stderr)
    return json.loads(r.stdout)


def answer_bytes(env, req):
    with harness.Client(env.sock) as c:
        return len(c.request_raw(req))


def check_fields(env, w, t, lport):
    """A lookup with fields: those members only, the same values."""
    key = ["tcp", "127.0.0.1", str(t["sport"]), str(lport)]
    c = ConnpidClient(env.sock, timeout=5)
    full = c.lookup("tcp", "127.0.0.1", t["sport"], lport)
    names = ["pid", "comm", "exe", "user", "container", "domain"]
    f = c.lookup("tcp", "127.0.0.1", t["sport"], lport, fields=names)
    check(f is not None and set(f) <= set(names) and {"pid", "comm", "exe", "user"} <= set(f),
          "Python lookup with fields: those members only", f)
    check_eq({k: (f or {}).get(k) for k in ("pid", "comm", "exe", "user")},
             {k: (full or {}).get(k) for k in ("pid", "comm", "exe", "user")},
             "Python lookup with fields: the values of the whole FLOW")
    try:
        c.lookup("tcp", "127.0.0.1", t["sport"], lport, fields=["pid", "no_such_member"])
        check(False, "Python lookup with an unknown field did not fail")
    except ConnpidProtocolError as e:
        check_eq(e.code, "invalid_argument", "Python lookup with an unknown field")
    flows = c.recent(10, fields=["pid", "sport"], pid=w.pid)
    check(flows and all(set(x) == {"pid", "sport"} for x in flows) and
          t["sport"] in [x["sport"] for x in flows], "Python recent with fields", flows)
    c.close()

    r = lookup_fields(env, key, "pid", "comm", "exe")
    flow = json.loads(r.get("json") or "{}").get("flow", {})
    check_eq(sorted(flow), ["comm", "exe", "pid"], "libconnpid: the answer has the fields only")
    check_eq((r.get("rc"), r.get("found"), r.get("pid"), r.get("comm"), r.get("exe")),
             (0, True, w.pid, full.get("comm"), full.get("exe")), "libconnpid: the fields are filled")
    check_eq((r.get("user"), r.get("uid"), r.get("unit"), r.get("alive")), (None, -1, None, False),
             "libconnpid: the members not asked for are NULL, -1, false")
    r = lookup_fields(env, key, "uid", "user", "unit")
    check_eq((r.get("pid"), r.get("uid"), r.get("user"), r.get("comm"), r.get("unit")),
             (0, full.get("uid"), full.get("user"), None, full.get("unit")),
             "libconnpid: uid, user and unit asked for, pid and comm not")
    r = lookup_fields(env, key)
    check_eq((r.get("pid"), r.get("user"), r.get("uid")), (w.pid, full.get("user"), full.get("uid")),
             "libconnpid without fields: the whole FLOW")
    r = lookup_fields(env, key, "pid", "no_such_member")
    check_eq((r.get("rc"), r.get("error_code")), (-errno.EREMOTEIO, "invalid_argument"),
             "libconnpid: an unknown field is the daemon's invalid_argument")
    req = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": t["sport"], "dport": lport}
    harness.log("ANSWER BYTES: lookup %d bytes; fields pid,comm,exe,container,domain %d bytes"
                % (answer_bytes(env, req), answer_bytes(env, dict(req, fields=names[:3] + names[4:]))))


def test(env):
    _, lport = env.listener()
    d = env.daemon()
    d.wait_ready()
    w = env.workload(comm="cpq-scope")
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    netns = os.stat("/proc/%d/ns/net" % w.pid).st_ino
    key = ["tcp", "127.0.0.1", str(t["sport"]), str(lport)]

    rc, ans, err = ctl_json(env, "lookup", "--src", "127.0.0.1", "--netns", str(netns), *key)
    check_eq(rc, 0, "lookup --src --netns exit (%s)" % err)
    flow = (ans or {}).get("flow", {})
    check_eq((flow.get("pid"), flow.get("direction"), flow.get("netns"), flow.get("src")),
             (w.pid, "outbound", netns, "127.0.0.1"), "lookup --src --netns names the workload")
    rc, ans, err = ctl_json(env, "lookup", "--netns", str(netns + 1), *key)
    check_eq(rc, 1, "lookup with another netns: not found (%r %s)" % (ans, err))
    rc, ans, err = ctl_json(env, "lookup", "--src", "127.0.0.2", *key)
    check_eq(rc, 1, "lookup with another src: not found (%r %s)" % (ans, err))

    rc, ans, err = ctl_json(env, "recent", "--direction", "outbound", "--netns", str(netns),
                            "--src", "127.0.0.1", "--pid", str(w.pid))
    check_eq(rc, 0, "recent with filters exit (%s)" % err)
    check([f.get("sport") for f in (ans or {}).get("flows", [])] == [t["sport"]],
          "recent --direction outbound --netns --src lists the flow", ans)
    rc, ans, err = ctl_json(env, "recent", "--direction", "inbound", "--pid", str(w.pid))
    check(rc == 0 and (ans or {}).get("flows") == [], "recent --direction inbound: none", (rc, ans, err))

    st = env.client().request({"op": "status"})["status"]
    check(st.get("inbound") is False, "status says inbound false (loader without --inbound)", st)
    r = env.ctl("lookup", "--inbound", "127.0.0.1", str(lport), str(t["sport"]))
    check(r.returncode == 2 and "connpid-loader --inbound" in r.stderr and "unavailable" in r.stderr,
          "inbound lookup without --inbound: unavailable with its hint", (r.returncode, r.stderr))

    c = ConnpidClient(env.sock, timeout=5)
    f = c.lookup("tcp", "127.0.0.1", t["sport"], lport, src="127.0.0.1", netns=netns)
    check_eq((f or {}).get("pid"), w.pid, "Python lookup with src and netns")
    check(c.lookup("tcp", "127.0.0.1", t["sport"], lport, netns=netns + 1) is None,
          "Python lookup with another netns: None")
    try:
        c.lookup("tcp", "127.0.0.1", lport, t["sport"], direction="inbound")
        check(False, "Python inbound lookup without --inbound did not fail")
    except ConnpidProtocolError as e:
        check_eq(e.code, "unavailable", "Python inbound lookup error code")
    c.close()
    check_fields(env, w, t, lport)


SERVER = r"""
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(4)
print(s.getsockname()[1], flush=True)
c, peer = s.accept()
print(peer[1], flush=True)
sys.stdin.read()
"""


class InboundEnv(qdharness.TestEnv):
    def loader_args(self, *extra):
        return super().loader_args("--inbound", *extra)


def test_inbound(env):
    d = env.daemon()
    d.wait_ready()
    srv = env.popen([sys.executable, "-c", SERVER], env.cgroup, stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, text=True)
    lport = int(srv.stdout.readline())
    cl = socket.create_connection(("127.0.0.1", lport), timeout=10)
    env.socks.append(cl)
    cport = cl.getsockname()[1]
    check_eq(int(srv.stdout.readline()), cport, "server accepted our connection")
    st = env.client().request({"op": "status"})["status"]
    check(st.get("inbound") is True, "status says inbound true", st)

    key = ["127.0.0.1", str(lport), str(cport)]
    rc, ans, err = ctl_json(env, "lookup", "--inbound", *key)
    check_eq(rc, 0, "lookup --inbound exit (%s %r)" % (err, ans))
    flow = (ans or {}).get("flow", {})
    check_eq((flow.get("pid"), flow.get("direction"), flow.get("sport"), flow.get("dport")),
             (srv.pid, "inbound", lport, cport), "lookup --inbound names the server")
    check_eq((flow.get("listener") or {}).get("pid"), srv.pid, "the listener is the server")
    r = env.ctl("lookup", "--inbound", *key)
    rows = r.stdout.splitlines()
    check(len(rows) >= 2 and rows[1].split()[6] == "in", "table DIR in", r.stdout)
    rc, ans, err = ctl_json(env, "recent", "--direction", "inbound", "--pid", str(srv.pid))
    check([f.get("dport") for f in (ans or {}).get("flows", [])] == [cport],
          "recent --direction inbound lists the accepted flow", (rc, ans, err))
    c = ConnpidClient(env.sock, timeout=5)
    f = c.lookup("tcp", "127.0.0.1", lport, cport, direction="inbound")
    check_eq((f or {}).get("pid"), srv.pid, "Python inbound lookup")
    c.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["inbound"]:
        # argv=[]: "inbound" picks the mode, it is no case name to filter by
        harness.run_cases([test_inbound], InboundEnv, "clients-inbound", qdharness.require_environment,
                          argv=[])
    else:
        main(test, "clients-real")

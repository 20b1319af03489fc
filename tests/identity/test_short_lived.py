#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 6, item 4: a process that connects and exits within a millisecond
is still fully attributed: comm, exe, ancestry.

A C helper compiled at test time as `idparent` (started in the test cgroup
by this script) forks and execs the same code as `idquick`, which does
socket() + connect() to a listener here, writes its source port and
_exit()s: well under a millisecond after connect (measured and logged).
The answer must name pid and comm "idquick", exe = the idquick binary
(from the exec hook, "exe_source": "exec", when /proc was too late), and
ancestors = [idparent (pid, comm), this script (pid, comm), ...].

Three shapes, all checked (failures reported together):
- exec'd, reaped at once (the usual case);
- exec'd, left a zombie for a while before the parent reaps it: /proc/PID
  still exists then but has no exe any more; the answer must have the exe;
- forked without exec (subshells, pre-fork servers), reaped at once: comm
  and exe are idparent's, which was exec'd inside the cgroup.
"""
import json
import os
import select
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identharness import check, check_eq, log, main, proc_comm  # noqa: E402

HOST = "127.0.0.1"


def run_parent(env, parent_bin, quick_bin, n, lport, reap_delay_ms, no_exec=False):
    args = [parent_bin, "parent", str(n), HOST, str(lport), quick_bin, str(reap_delay_ms)]
    if no_exec:
        args.append("fork")
    p = env.popen(args, env.cgroup, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    check(p.returncode == 0, "idparent failed (rc %d)" % p.returncode, out, err)
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    parent_pid = lines[0]["parent_pid"]
    check_eq(parent_pid, p.pid, "idparent's pid")
    kids = lines[1:]
    check_eq(len(kids), n, "children reported")
    for k in kids:
        check("error" not in k, "child failed", k)
        log("child %d: sport %d, connect->exit %.1f us, reaped after %d ms%s"
            % (k["pid"], k["sport"], k["connect_to_exit_us"], k["reap_delay_ms"],
               " (fork, no exec)" if no_exec else ""))
    return parent_pid, kids


def child_problems(f, kid, parent_pid, comm, exe, cgroup_path):
    me = {"pid": os.getpid(), "comm": proc_comm()}
    problems = []

    def want(name, got, exp):
        if got != exp:
            problems.append("pid %d: %s: got %r, want %r" % (kid["pid"], name, got, exp))

    want("pid", f.get("pid"), kid["pid"])
    want("comm", f.get("comm"), comm)
    want("exe", f.get("exe"), exe)
    want("alive", f.get("alive"), False)
    want("cgroup", f.get("cgroup"), cgroup_path)
    anc = f.get("ancestors") or []
    want("ancestors[0]", anc[0] if anc else None, {"pid": parent_pid, "comm": "idparent"})
    want("ancestors[1]", anc[1] if len(anc) > 1 else None, me)
    creator = f.get("creator") or {}
    want("creator", (creator.get("pid"), creator.get("same_process")), (kid["pid"], True))
    if f.get("exe_source") not in (None, "exec"):
        problems.append("pid %d: exe_source %r" % (kid["pid"], f.get("exe_source")))
    return problems


def test(env):
    quick_bin = env.compile_helper("idquick")
    parent_bin = env.compile_helper("idparent")
    env.load()
    env.daemon()
    lsock, lport = env.listener()
    cl = env.client()
    cgroup_path = "/" + os.path.relpath(env.cgroup, env.mount)
    failed = []
    total = 0

    def phase(what, n, reap_delay_ms, no_exec):
        nonlocal total
        parent_pid, kids = run_parent(env, parent_bin, quick_bin, n, lport, reap_delay_ms,
                                      no_exec)
        total += n
        flows, problems = [], []
        for k in kids:
            f = cl.lookup("tcp", HOST, k["sport"], lport)
            flows.append(f)
            if no_exec:   # the child runs idparent's image under its comm
                problems += child_problems(f, k, parent_pid, "idparent", parent_bin, cgroup_path)
            else:
                problems += child_problems(f, k, parent_pid, "idquick", quick_bin, cgroup_path)
        if problems:
            failed.append("%s:\n      %s" % (what, "\n      ".join(problems)))
            log("FAILED: %s" % what)
        else:
            log("ok: %s" % what)
        return kids, flows

    # --- exec'd, reaped at once: by the time queryd looks, /proc/PID is gone
    kids, flows = phase("exec'd child, reaped at once", 8, 0, False)
    from_exec = sum(f.get("exe_source") == "exec" for f in flows)
    fastest = min(k["connect_to_exit_us"] for k in kids)
    log("%d of %d answers took exe from the exec hook; fastest connect->exit %.1f us"
        % (from_exec, len(kids), fastest))
    if fastest >= 1000.0:
        failed.append("no child exited within 1 ms of connecting (fastest %.1f us)" % fastest)
    if from_exec < 1:
        failed.append("no answer came from the exec hook: /proc was never too late, so "
                      "the short-lived path was not exercised")

    # --- exec'd, then a zombie for 400 ms before its parent reaps it:
    # /proc/PID exists (same start time) but has no exe any more
    phase("exec'd child left a zombie for 400 ms", 2, 400, False)

    # --- fork without exec (a subshell, a pre-fork worker), reaped at once:
    # same image as the parent, which was exec'd inside the cgroup
    phase("forked child (no exec), reaped at once", 3, 0, True)

    # the accepted ends live in this process, outside the cgroup
    lsock.setblocking(False)
    accepted = 0
    while select.select([lsock], [], [], 0)[0]:
        conn, _ = lsock.accept()
        conn.close()
        accepted += 1
    check_eq(accepted, total, "connections the listener saw")
    check(not failed, "short-lived processes not fully attributed", *failed)


if __name__ == "__main__":
    main(test, "short")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 6, item 3: the process that created a socket and the one that
connected it are both reported when they differ.

- normal connect: creator is the connector, "same_process": true;
- fork after socket(): the parent makes the socket, forks, the child
  (renamed) connects (TCP; connected UDP + send): pid/comm are the
  child's, creator {pid, comm, start_time} the parent's, same_process false;
- SCM_RIGHTS: process A (its own exec'd workload) makes a TCP / UDP socket
  and passes it over a Unix socketpair to process B (another exec'd
  workload, another comm), closing its copy; B connects (UDP: + send):
  pid/comm are B's, creator is A's. Once more with A gone before B
  connects: the creator is still A (captured at socket())."""
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from identharness import check, check_eq, log, main  # noqa: E402

HOST = "127.0.0.1"


def check_flow(f, what, pid, comm, creator_pid, creator_comm, creator_ticks, same,
               cookie=None):
    got = {"pid": f.get("pid"), "comm": f.get("comm"),
           "creator": f.get("creator")}
    want = {"pid": pid, "comm": comm,
            "creator": {"pid": creator_pid, "comm": creator_comm,
                        "start_time": creator_ticks, "same_process": same}}
    check_eq(got, want, what)
    if cookie is not None:
        check_eq(f.get("socket_cookie"), cookie, what + ": socket_cookie")
    check_eq(f.get("seen"), "event", what + ": seen")


def test(env):
    lport, uport, cl = env.start()
    dports = {"tcp": lport, "udpc": uport}
    lproto = {"tcp": "tcp", "udpc": "udp"}

    # --- a normal connect: creator == connector
    w = env.workload(comm="id-plain")
    for proto in ("tcp", "udpc"):
        c = w.cmd({"cmd": proto, "host": HOST, "port": dports[proto]})
        f = cl.lookup(lproto[proto], HOST, c["sport"], dports[proto])
        check_flow(f, "plain %s" % proto, w.pid, "id-plain", w.pid, "id-plain",
                   w.start_ticks, True, c["cookie"])

    # --- fork after socket(): the child connects the parent's socket
    p = env.workload(comm="id-forkparent")
    for proto in ("tcp", "udpc"):
        c = p.cmd({"cmd": "fork", "proto": proto, "host": HOST, "port": dports[proto],
                   "child_comm": "id-forkchild"})
        check(c["child_pid"] != p.pid, "fork did not make a new process", c)
        f = cl.lookup(lproto[proto], HOST, c["sport"], dports[proto])
        check_flow(f, "fork %s" % proto, c["child_pid"], "id-forkchild", p.pid,
                   "id-forkparent", p.start_ticks, False, c["cookie"])
        check_eq(f.get("start_time"), c["child_start_ticks"], "fork %s: start_time (child's)" % proto)
        anc = f.get("ancestors") or []
        check(anc and anc[0] == {"pid": p.pid, "comm": "id-forkparent"},
              "fork %s: first ancestor should be the parent" % proto, anc)

    # --- SCM_RIGHTS between two separately exec'd processes
    for proto in ("tcp", "udpc"):
        a_end, b_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            a = env.workload(comm="id-passer", extra_args=["--unix-fd", str(a_end.fileno())],
                             pass_fds=[a_end.fileno()])
            b = env.workload(comm="id-receiver", extra_args=["--unix-fd", str(b_end.fileno())],
                             pass_fds=[b_end.fileno()])
        finally:
            a_end.close()
            b_end.close()
        check(a.exe == b.exe and a.pid != b.pid, "two processes expected")
        sent = a.cmd({"cmd": "send_fd", "proto": "tcp" if proto == "tcp" else "udp"})
        c = b.cmd({"cmd": "recv_fd", "proto": proto, "host": HOST, "port": dports[proto]})
        check_eq(c["cookie"], sent["cookie"], "SCM_RIGHTS %s: B got A's socket" % proto)
        f = cl.lookup(lproto[proto], HOST, c["sport"], dports[proto])
        check_flow(f, "SCM_RIGHTS %s" % proto, b.pid, "id-receiver", a.pid, "id-passer",
                   a.start_ticks, False, c["cookie"])
        check_eq(f.get("start_time"), b.start_ticks, "SCM_RIGHTS %s: start_time (B's)" % proto)

    # --- SCM_RIGHTS, the creator exits before the receiver connects
    a_end, b_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        a = env.workload(comm="id-gonepasser", extra_args=["--unix-fd", str(a_end.fileno())],
                         pass_fds=[a_end.fileno()])
        b = env.workload(comm="id-lastholder", extra_args=["--unix-fd", str(b_end.fileno())],
                         pass_fds=[b_end.fileno()])
    finally:
        a_end.close()
        b_end.close()
    sent = a.cmd({"cmd": "send_fd", "proto": "tcp"})
    a.cmd({"cmd": "exit"})
    a.proc.wait(timeout=10)
    log("passer %d exited before the receiver connects" % a.pid)
    c = b.cmd({"cmd": "recv_fd", "proto": "tcp", "host": HOST, "port": lport})
    check_eq(c["cookie"], sent["cookie"], "SCM_RIGHTS after exit: B got A's socket")
    f = cl.lookup("tcp", HOST, c["sport"], lport)
    check_flow(f, "SCM_RIGHTS, creator gone", b.pid, "id-lastholder", a.pid, "id-gonepasser",
               a.start_ticks, False, c["cookie"])
    check_eq(f.get("alive"), True, "SCM_RIGHTS, creator gone: connector alive")


if __name__ == "__main__":
    main(test, "creator")

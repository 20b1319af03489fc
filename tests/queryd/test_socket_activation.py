#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 3, item 1: connpid-queryd socket-activated by the real
systemd-socket-activate; connpidctl lookup of a live TCP connection made by a
workload in the test cgroup names its pid, comm and exe (human and --json);
status reports socket_activated."""
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import Skip, check, check_eq, log, main  # noqa: E402


def test(env):
    if not shutil.which("systemd-socket-activate"):
        raise Skip("systemd-socket-activate not installed (apt package systemd)")
    _, lport = env.listener()
    w = env.workload(comm="cpq-act")
    conn = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    sport = conn["sport"]

    d = env.daemon(activated=True)
    # systemd-socket-activate binds the path and execs queryd on the first
    # connection: the first ping is what launches it.
    ping = d.wait_ready()
    check_eq(ping.get("version") is not None, True, "ping has a version")
    with open("/proc/%d/comm" % d.pid) as f:
        check_eq(f.read().strip(), "connpid-queryd", "the activated process runs queryd (same pid, exec'ed)")

    # --json lookup
    r = env.ctl("--json", "lookup", "127.0.0.1", str(sport), str(lport), "--protocol", "tcp")
    check_eq(r.returncode, 0, "connpidctl --json lookup exit code (stderr %r)" % r.stderr)
    ans = json.loads(r.stdout)
    check(ans["ok"] and ans["found"], "lookup not found", ans)
    f = ans["flow"]
    check_eq(f["pid"], w.pid, "pid")
    check_eq(f["comm"], "cpq-act", "comm")
    check_eq(f["exe"], w.exe, "exe")
    check_eq(f["alive"], True, "alive")
    check_eq(f["pid_reused"], False, "pid_reused")
    check_eq(f["proto"], "tcp", "proto")
    check_eq(f["sport"], sport, "sport")
    check_eq(f["dport"], lport, "dport")
    check_eq(f["dst"], "127.0.0.1", "dst")

    # human table
    r = env.ctl("lookup", "127.0.0.1", str(sport), str(lport), "--protocol", "tcp")
    check_eq(r.returncode, 0, "connpidctl lookup exit code (stderr %r)" % r.stderr)
    lines = r.stdout.strip().splitlines()
    check_eq(len(lines), 2, "human output: header + one row (%r)" % r.stdout)
    hdr, row = lines[0].split(), lines[1].split()
    # issue 14 added the direction and an inbound flow's listener
    check_eq([h for h in hdr if h not in ("DIR", "LISTENER")],
             ["PID", "COMM", "PROTO", "DST", "SPORT", "DPORT", "ALIVE", "UNIT", "CONTAINER", "DOMAIN", "EXE"],
             "header")
    check_eq(len(row), len(hdr), "one value per column (%r)" % lines[1])
    rec = dict(zip(hdr, row))
    check_eq(rec["CONTAINER"], "-", "human CONTAINER (none)")
    check_eq(rec["PID"], str(w.pid), "human PID")
    check_eq(rec["COMM"], "cpq-act", "human COMM")
    check_eq(rec["EXE"], w.exe, "human EXE")
    check_eq(rec["ALIVE"], "yes", "human ALIVE")
    check_eq(rec["SPORT"], str(sport), "human SPORT")
    check_eq(rec["DPORT"], str(lport), "human DPORT")

    # a flow nobody made: exit 1, "not found"
    r = env.ctl("lookup", "127.0.0.1", str(sport), str(lport), "--protocol", "udp")
    check_eq(r.returncode, 1, "lookup of an unknown flow exits 1 (out %r err %r)" % (r.stdout, r.stderr))
    check("not found" in r.stdout, "human not-found line", r.stdout)

    # status: socket activated, pins in use
    r = env.ctl("--json", "status")
    check_eq(r.returncode, 0, "status exit code (%r)" % r.stderr)
    st = json.loads(r.stdout)
    check(st["ok"], "status ok", st)
    q = st["status"]["queryd"]
    check_eq(q["socket_activated"], True, "status.queryd.socket_activated")
    check_eq(q["pins_in_use"], True, "status.queryd.pins_in_use")
    if q.get("socket") != env.sock:
        # Not part of the contract; reported as a daemon bug.
        log("NOTE: status.queryd.socket is %r when activated on %r" % (q.get("socket"), env.sock))
    r = env.ctl("status")
    check_eq(r.returncode, 0, "human status exit code")
    check(any(l.split() == ["queryd.socket_activated", "true"] for l in r.stdout.splitlines()),
          "human status shows queryd.socket_activated true", r.stdout)

    # still the same daemon process; it stops cleanly on SIGTERM
    check(d.alive(), "daemon still running", d.log())
    rc = d.stop()
    check_eq(rc, 0, "queryd exit code on SIGTERM (log: %s)" % d.log())
    w.exit()


if __name__ == "__main__":
    main(test, "act")

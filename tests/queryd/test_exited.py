#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 3, item 3: a process that made a flow and exited is still named
("alive": false); when its pid now belongs to another process, the answer
says so ("pid_reused": true) and still names the original comm/exe, never
the new process. PID reuse is made real: after the original exits, the host
pid namespace's ns_last_pid is set to pid-1 and a new process is forked
(retried; skip if the pid cannot be had)."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import Skip, check, check_eq, log, main  # noqa: E402

NS_LAST_PID = "/proc/sys/kernel/ns_last_pid"


def lookup(cl, proto, sport, dport):
    ans = cl.request({"op": "lookup", "proto": proto, "dst": "127.0.0.1", "sport": sport, "dport": dport})
    check(ans.get("ok") and ans.get("found"), "%s %d->%d not found" % (proto, sport, dport), ans)
    return ans["flow"]


def human_row(out):
    """connpidctl's table (header and one row) by column name."""
    lines = out.strip().splitlines()
    check(len(lines) >= 2, "a header and a row", out)
    hdr, row = lines[0].split(), lines[-1].split()
    check_eq(len(row), len(hdr), "one value per column (%r)" % out)
    return dict(zip(hdr, row))


def take_pid(env, pid, tries=200):
    """Start `sleep` with exactly this pid, or return None."""
    for _ in range(tries):
        try:
            with open(NS_LAST_PID, "w") as f:
                f.write(str(pid - 1))
        except OSError as e:
            raise Skip("cannot write %s: %s" % (NS_LAST_PID, e))
        p = subprocess.Popen(["sleep", "300"])
        env.track(p)
        if p.pid == pid:
            return p
        p.kill()
        p.wait()
        time.sleep(0.01)
    return None


def test(env):
    _, lport = env.listener()
    d = env.daemon()
    d.wait_ready()
    cl = env.client()

    # --- exited, TCP (the listener stays open in this process) and connected UDP
    w = env.workload(comm="cpq-gone")
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    u = w.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": env.free_udp_port()})
    for proto, c in (("tcp", t), ("udp", u)):
        f = lookup(cl, proto, c["sport"], c["dport"])
        check_eq((f["pid"], f["alive"], f["seen"]), (w.pid, True, "event"), "%s before exit" % proto)
    w.exit()
    for proto, c in (("tcp", t), ("udp", u)):
        f = lookup(cl, proto, c["sport"], c["dport"])
        check_eq(f["pid"], w.pid, "%s pid after exit" % proto)
        check_eq(f["alive"], False, "%s alive after exit" % proto)
        check_eq(f["pid_reused"], False, "%s pid_reused after exit (pid is free)" % proto)
        check_eq(f["comm"], "cpq-gone", "%s comm after exit" % proto)
        check_eq(f["exe"], w.exe, "%s exe after exit" % proto)
    r = env.ctl("lookup", "127.0.0.1", str(t["sport"]), str(lport), "--protocol", "tcp")
    check_eq(r.returncode, 0, "connpidctl lookup of an exited process exits 0")
    row = human_row(r.stdout)
    check_eq((row["PID"], row["COMM"], row["ALIVE"]), (str(w.pid), "cpq-gone", "exited"),
             "human row of an exited process")

    # --- PID reuse
    orig = env.workload(comm="cpq-orig")
    c = orig.cmd({"cmd": "udpc", "host": "127.0.0.1", "port": env.free_udp_port()})
    f = lookup(cl, "udp", c["sport"], c["dport"])
    check_eq((f["pid"], f["alive"], f["comm"], f["exe"]), (orig.pid, True, "cpq-orig", orig.exe),
             "original owner while alive")
    pid = orig.pid
    orig.exit()
    newp = take_pid(env, pid)
    if newp is None:
        raise Skip("could not get pid %d reused through %s after 200 tries" % (pid, NS_LAST_PID))
    # wait until the new process has exec'ed sleep
    for _ in range(200):
        try:
            with open("/proc/%d/comm" % pid) as fh:
                if fh.read().strip() == "sleep":
                    break
        except OSError:
            pass
        time.sleep(0.01)
    new_exe = os.readlink("/proc/%d/exe" % pid)
    log("pid %d now runs %s" % (pid, new_exe))
    check(new_exe != orig.exe, "the new process differs from the original")

    f = lookup(cl, "udp", c["sport"], c["dport"])
    check_eq(f["pid"], pid, "pid number")
    check_eq(f["alive"], False, "alive with the pid reused")
    check_eq(f["pid_reused"], True, "pid_reused")
    check_eq(f["comm"], "cpq-orig", "comm names the original process")
    check_eq(f["exe"], orig.exe, "exe names the original process")
    check(f["comm"] != "sleep" and f["exe"] != new_exe, "the new process is not named", f)
    r = env.ctl("--json", "lookup", "127.0.0.1", str(c["sport"]), str(c["dport"]), "--protocol", "udp")
    check_eq(r.returncode, 0, "connpidctl exit code")
    jf = json.loads(r.stdout)["flow"]
    check_eq((jf["alive"], jf["pid_reused"], jf["comm"]), (False, True, "cpq-orig"), "connpidctl --json")
    r = env.ctl("lookup", "127.0.0.1", str(c["sport"]), str(c["dport"]), "--protocol", "udp")
    row = human_row(r.stdout)
    check_eq((row["COMM"], row["ALIVE"]), ("cpq-orig", "reused"), "human row says reused")
    rec = cl.request({"op": "recent", "limit": 5, "filter": {"comm": "cpq-orig"}})
    check_eq(len(rec["flows"]), 1, "recent by comm finds the original")
    check_eq(rec["flows"][0]["pid_reused"], True, "recent marks it reused")
    newp.kill()
    newp.wait()
    cl.close()
    check_eq(d.stop(), 0, "queryd exit on SIGTERM")


if __name__ == "__main__":
    main(test, "exit")

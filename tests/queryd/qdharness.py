# SPDX-License-Identifier: GPL-2.0-or-later
"""Small harness for the connpid-queryd integration tests (stdlib only).

Every test gets a private child cgroup, a private pin dir and a private
socket path (TestEnv); the loader attaches to that cgroup only, workloads
move themselves into it before making sockets, and everything is torn down
on any exit: daemon and workloads killed by pid, `connpid-loader --unload`,
cgroup removed, temp dir removed. Exit codes: 0 pass, 1 fail, 77 skip.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import (SKIP, WORKLOAD, Client, Interrupted, Skip, binary,  # noqa: E402,F401
                     cgroup2_mount, check, check_eq, json_command, log, wait_until)


def require_environment():
    harness.require_environment("bpf, cgroups")


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


def attachments(cgroup_dir):
    out = subprocess.run(["bpftool", "cgroup", "show", cgroup_dir, "-j"],
                         capture_output=True, text=True, timeout=30)
    check(out.returncode == 0, "bpftool cgroup show failed", out.stderr)
    return len(json.loads(out.stdout or "[]"))


class Workload(harness.Workload):
    """workload.py serve; it moves itself into the test cgroup. extra_args:
    padding for a long command line."""
    timeout = 60

    def __init__(self, env, comm=None, extra_args=()):
        super().__init__(env, ["--cgroup", env.cgroup] + list(extra_args), comm, cgroup=env.cgroup_rel)


class Daemon(harness.Daemon):
    def __init__(self, env, activated=False, extra=()):
        qd = binary("CONNPID_QUERYD")
        # a private history database: never the shared default path
        db = ["--db", os.path.join(env.tmp, "history.db")]
        if activated:
            args = ["systemd-socket-activate", "-l", env.sock, qd, "--pin-dir", env.pin_dir] + db
        else:
            args = [qd, "--pin-dir", env.pin_dir, "--socket", env.sock] + db
        super().__init__(env, args + list(extra))


class TestEnv(harness.CgroupEnv):
    """Private cgroup + pin dir + temp dir, loaded by connpid-loader."""
    prefix = "cpq-"
    tmp_prefix = "cpq-"
    cgroup_tries = 100

    def __init__(self, tag):
        super().__init__(tag)
        self.mount = self.cgroup_root

    def setup(self):
        os.mkdir(self.cgroup)
        r = self.run(self.loader_args())
        check(r.returncode == 0, "connpid-loader failed (rc %d)" % r.returncode, r.stderr)

    def run(self, args, timeout=60, **kw):
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kw)

    def ctl(self, *args, timeout=30):
        r = self.run([binary("CONNPIDCTL"), "--socket", self.sock, "--pin-dir", self.pin_dir] + list(args),
                     timeout=timeout)
        return r

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    def workload(self, comm=None, extra_args=()):
        return Workload(self, comm, extra_args)

    def daemon(self, activated=False, extra=()):
        return Daemon(self, activated, extra)

    def start(self, comm):
        """The usual start of a test: a TCP listener, a daemon answering
        ping, a workload named comm, a client: (lport, daemon, workload,
        client)."""
        _, lport = self.listener()
        d = self.daemon()
        d.wait_ready()
        return lport, d, self.workload(comm=comm), self.client()

    def listener(self, backlog=1024):
        return self.listen_tcp(backlog)

    def free_udp_port(self):
        return self.bound_udp_port()


def main(test_fn, tag):
    """Run test_fn(env) in a TestEnv; exit 0/1/77."""
    harness.main(test_fn, TestEnv, tag, require_environment)

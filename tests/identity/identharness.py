# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness for the identity tests (issue 6, items 2-5). Stdlib only.

Each test file runs in its own Env: a private child cgroup (with nested
sub-cgroups when a test needs them), a private pin dir, a private temp dir
holding the query socket and compiled helpers. The loader attaches with
`--cgroup <test cgroup>`; sub-cgroups inherit the attachments. queryd runs
with `--pin-dir D --socket S --no-store`.

Leaving the Env (also on an exception or SIGTERM from meson) kills every
process this test started (by pid) and everything left in its cgroup tree,
unloads, removes the cgroups bottom-up, the pin dir and the temp dir.
Exit codes: 0 pass, 1 fail, 77 skip.
"""
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER_C = os.path.join(HERE, "identhelper.c")
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import (SKIP, Client, Interrupted, Skip, binary, cgroup2_mount,  # noqa: E402,F401
                     check, check_eq, json_command, log, proc_start_ticks, wait_until)


def require_environment():
    harness.require_environment("bpf, cgroups")


def proc_comm(pid="self"):
    with open("/proc/%s/comm" % pid) as f:
        return f.read().rstrip("\n")


class Workload(harness.Workload):
    """workload.py serve, started inside a cgroup directory (before exec)."""

    def __init__(self, env, cgroup_dir, comm=None, extra_args=(), pass_fds=()):
        super().__init__(env, extra_args, comm, cgroup_dir=cgroup_dir,
                         cgroup="/" + os.path.relpath(cgroup_dir, env.mount), pass_fds=pass_fds)


class Env(harness.CgroupEnv):
    prefix = "cpid-"
    tmp_prefix = "cpid-ident-"

    def __init__(self, tag):
        super().__init__(tag)
        self.mount = self.cgroup_root

    def run(self, args, timeout=60):
        return harness.run_logged(args, timeout)

    def daemon(self, timeout=15):
        """Start connpid-queryd --no-store and wait until it answers ping."""
        self.no_store_daemon(timeout)

    def start(self):
        """Load, a daemon answering ping, a TCP listener, a bound UDP port
        and a client: (TCP port, UDP port, client)."""
        self.load()
        self.daemon()
        _, lport = self.listener()
        uport = self.udp_port()
        return lport, uport, self.client()

    def daemon_output(self):
        return harness.file_tail(self.daemon_log)

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    def ctl(self, *args, timeout=30):
        return self.run([binary("CONNPIDCTL"), "--socket", self.sock, "--pin-dir",
                         self.pin_dir] + list(args), timeout=timeout)

    # -- cgroups and processes
    def subcgroup(self, rel):
        """Create <test cgroup>/rel (all levels); return its path."""
        path = os.path.join(self.cgroup, rel)
        os.makedirs(path, exist_ok=True)
        return path

    def workload(self, cgroup_dir=None, comm=None, extra_args=(), pass_fds=()):
        return Workload(self, cgroup_dir or self.cgroup, comm, extra_args, pass_fds)

    def listener(self):
        return self.listen_tcp(1024)

    def udp_port(self):
        return self.bound_udp_port()

    def compile_helper(self, name):
        """Compile identhelper.c into TMP/name (its comm is then `name`)."""
        cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
        if not cc:
            raise Skip("no C compiler for the short-lived helper")
        out = os.path.join(self.tmp, name)
        r = self.run([cc, "-O2", "-Wall", "-o", out, HELPER_C])
        check(r.returncode == 0, "cannot compile %s" % HELPER_C, r.stderr)
        return os.path.realpath(out)


def main(test_fn, tag):
    """Run test_fn(env) in an Env; exit 0/1/77."""
    harness.main(test_fn, Env, tag, require_environment)


def run_cases(cases, tag):
    """Several independent checks in one file: each gets its own Env; all
    run, the file fails if any does."""
    harness.run_cases(cases, Env, tag, require_environment, skip_skips_file=True)

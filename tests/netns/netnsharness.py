# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness of the netns suite (issue 14), stdlib only.

NetnsEnv is harness.CgroupEnv (private child cgroup, pin dir, temp dir)
plus network namespaces named after this test's pid (cpn<PID>-...),
removed at teardown after every process is gone (queryd first, with
SIGTERM: it must exit 0 without a sanitizer report); a teardown that
leaves something behind fails the test. Workloads
(tests/lib/workload.py serve) enter the cgroup and then their namespace with setns.
"""
import json
import os
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import (Client, Skip, TestFailure, binary, check, check_eq,  # noqa: E402,F401
                     json_command, log, run_logged, wait_until)


def require_environment():
    harness.require_environment("bpf, cgroups, network namespaces")
    for tool in ("ip",):
        if not any(os.access(os.path.join(d, tool), os.X_OK)
                   for d in ("/usr/sbin", "/sbin", "/usr/bin", "/bin")):
            raise Skip("%s (iproute2) not installed" % tool)


def netns_names():
    try:
        return set(os.listdir("/run/netns"))
    except OSError:
        return set()


class Workload(harness.Workload):
    def __init__(self, env, comm=None, netns=None, in_cgroup=True):
        # exec'd inside the cgroup (preexec_fn), so connpid's exec hook knows
        # its exe even for forked children that exit before queryd looks
        super().__init__(env, ["--netns", netns] if netns else [], comm,
                         cgroup_dir=env.cgroup if in_cgroup else None,
                         cgroup=env.cgroup_rel if in_cgroup else None)


class NetnsEnv(harness.CgroupEnv):
    prefix = "cpn-"
    tmp_prefix = "cpn-"

    def __init__(self, tag):
        super().__init__(tag)
        self.ns_prefix = "cpn%d-" % os.getpid()
        self.namespaces = []
        self.problems = []
        self.daemons = []

    def __exit__(self, exc_type, exc, tb):
        self.cleanup()
        if exc_type is None and self.problems:
            raise TestFailure("teardown left state behind: %s" % "; ".join(self.problems))
        return False

    # -- network namespaces
    def ip(self, *args):
        r = run_logged(["ip"] + list(args), timeout=30, quiet=True)
        check(r.returncode == 0, "ip %s failed (rc %d)" % (" ".join(args), r.returncode), r.stderr)
        return r

    def add_netns(self, suffix):
        """A new namespace cpn<PID>-<suffix> with lo up; its name."""
        name = self.ns_prefix + suffix
        check(len(name) <= 64, "netns name too long", name)
        self.namespaces.append(name)   # before: a half-made one is removed too
        self.ip("netns", "add", name)
        self.ip("-n", name, "link", "set", "lo", "up")
        return name

    def netns_ino(self, name):
        return os.stat(os.path.join("/run/netns", name)).st_ino

    # -- processes and queries
    def workload(self, comm=None, netns=None, in_cgroup=True):
        return Workload(self, comm, netns, in_cgroup)

    def daemon(self, store=False, extra=()):
        args = [binary("CONNPID_QUERYD"), "--pin-dir", self.pin_dir, "--socket", self.sock]
        args += ["--db", os.path.join(self.tmp, "history.db")] if store else ["--no-store"]
        d = harness.Daemon(self, args + list(extra))
        self.daemons.append(d)
        d.wait_ready()
        return d

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    def request(self, obj):
        with self.client() as c:
            return c.request(obj)

    # -- teardown
    def stop_procs(self):
        """queryd first, with SIGTERM: it must exit 0, and (in a sanitizer
        build) its log must show no sanitizer report."""
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)   # teardown runs to its end
        for d in self.daemons:
            rc = d.stop()
            text = harness.file_bytes(d.logpath).decode(errors="replace")
            for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
                if marker in text:
                    self.problems.append("queryd log has %r: %s" % (marker, text[text.index(marker):][:2000]))
            if rc != 0:
                self.problems.append("queryd exited %r on SIGTERM; log: %s" % (rc, d.log()[-2000:]))
        super().stop_procs()

    # (after processes, pins and cgroups: nothing holds a netns)
    def after_cleanup(self):
        for name in reversed(self.namespaces):
            if name in netns_names():
                subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
        left = sorted(n for n in netns_names() if n.startswith(self.ns_prefix))
        if left:
            self.problems.append("network namespaces left: %s" % left)
        if os.path.isdir(self.cgroup):
            self.problems.append("cgroup left: %s" % self.cgroup)
        if os.path.isdir(self.pin_dir):
            self.problems.append("pin dir left: %s" % self.pin_dir)
        for p in self.problems:
            log("cleanup problem:", p)


def lookup(env, **members):
    req = {"op": "lookup", "proto": "tcp"}
    req.update(members)
    return env.request(req)


def lookup_found(env, what, timeout=3.0, **members):
    """The answer once it says found (queryd may not have drained the
    event yet: found false is retried); an error answer fails at once."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        ans = lookup(env, **members)
        check(ans.get("ok") is True, "%s: lookup %r answered an error" % (what, members), json.dumps(ans))
        if ans.get("found"):
            if tries > 1:
                log("%s: found after %d tries" % (what, tries))
            return ans
        check(time.monotonic() < deadline, "%s: lookup %r not found after %.1f s" % (what, members, timeout),
              json.dumps(ans))
        time.sleep(0.05)


def ctl(env, *args):
    """connpidctl --socket S --pin-dir P ARGS: (rc, stdout, stderr)."""
    r = subprocess.run([binary("CONNPIDCTL"), "--socket", env.sock, "--pin-dir", env.pin_dir] + list(args),
                       capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout, r.stderr


def ctl_lookup(env, what, *args):
    """`connpidctl --json lookup ARGS`, which must exit 0 (found): the answer."""
    rc, out, err = ctl(env, "--json", "lookup", *args)
    check(rc == 0, "%s: connpidctl --json lookup %s exited %d" % (what, " ".join(args), rc), out, err)
    try:
        return json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise TestFailure("%s: connpidctl printed no JSON: %r %r" % (what, out, err))


def all_flows(ans):
    """flow + candidates of a found lookup answer."""
    out = [ans["flow"]] if ans.get("flow") else []
    cands = ans.get("candidates", [])
    check(isinstance(cands, list), "candidates is not a list", json.dumps(ans)[:2000])
    return out + cands


def read_events(cl, seconds):
    """Every line a watching client gets within `seconds`."""
    return cl.read_events(seconds)


def run_cases(tag):
    harness.run_cases(None, NetnsEnv, tag, require_environment, skip_skips_file=False)


case = harness.case

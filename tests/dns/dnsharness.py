# SPDX-License-Identifier: GPL-2.0-or-later
"""Harness for the DNS attribution tests (issue 5, items 1-6). Stdlib only.

Each test file runs in its own Env: a private child cgroup, a private pin
dir (the loader attaches there with `--cgroup <test cgroup>`, DNS programs
included), queryd `--pin-dir D --socket S --no-store`, a private temp dir,
and one or more private network namespaces (`cpdns-<tag>-<pid>-<rand>`) with
their own /etc/netns/<name>/resolv.conf pointing at a server on
127.0.0.53:53 inside the namespace: a real dnsmasq, or a test server.

Clients enter the test cgroup BEFORE `ip netns exec` (which remounts /sys):
they are started by a preexec hook that writes their pid to cgroup.procs.

Leaving the Env (also on an exception or SIGTERM from meson) kills every
process this test started (by pid) and whatever is left in its cgroup,
unloads, removes the cgroup, pin dir, namespaces, /etc/netns/<name> and the
temp dir. Exit codes: 0 pass, 1 fail, 77 skip.
"""
import json
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLIENT_PY = os.path.join(HERE, "dnsclient.py")
SERVER_PY = os.path.join(HERE, "dnsbadserver.py")
RESOLVE_C = os.path.join(HERE, "resolve.c")
RESOLVE_GO = os.path.join(HERE, "resolve.go")
DNS_IP = "127.0.0.53"
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from harness import (SKIP, Interrupted, Skip, binary, cgroup2_mount, check,  # noqa: E402,F401
                     check_eq, log, wait_until)


def require_environment(need_dnsmasq=True):
    harness.require_environment("bpf, cgroups, network namespaces",
                                ("CONNPID_LOADER", "CONNPID_QUERYD"))
    if not shutil.which("ip"):
        raise Skip("no `ip` (iproute2) for network namespaces")
    if need_dnsmasq and not shutil.which("dnsmasq"):
        raise Skip("no dnsmasq (apt-get install dnsmasq-base)")


class Client(harness.Client):
    """One connection to the query socket, JSON lines each way; lookup()
    logs the pid and domain."""

    def describe(self, flow):
        return "pid %s domain %s" % (flow.get("pid"), json.dumps(flow.get("domain")))

    def stats(self):
        ans = self.request({"op": "stats"})
        check(ans.get("ok"), "stats failed", ans)
        return ans["stats"]

    def ping(self):
        ans = self.request({"op": "ping"})
        check(ans.get("ok") and ans.get("pong"), "ping failed", ans)


class Proc:
    """A JSON-lines program (dnsclient.py, or a one-shot resolver whose
    first line is its result) started in the cgroup, inside a netns."""

    def __init__(self, env, args, what):
        self.what = what
        self.proc = env.popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, bufsize=1)
        self.pid = self.proc.pid   # `ip netns exec` execs the program: same pid

    def read(self, timeout=30):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "%s (pid %d) did not answer within %ds" % (self.what, self.proc.pid, timeout))
        line = self.proc.stdout.readline()
        check(line, "%s (pid %d) exited (rc %r) without answering"
              % (self.what, self.proc.pid, self.proc.poll()))
        ans = json.loads(line)
        check(ans.get("ok"), "%s failed: %r" % (self.what, ans))
        return ans

    def cmd(self, obj, timeout=30):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def close(self):
        try:
            self.proc.stdin.close()
        except OSError:
            pass


class Netns:
    def __init__(self, env, name):
        self.env = env
        self.name = name
        self.etc = os.path.join("/etc/netns", name)
        self.server = None

    def exec_args(self, *args):
        return ["ip", "netns", "exec", self.name] + list(args)

    def dnsmasq(self, *records):
        """A real dnsmasq on 127.0.0.53:53 in this namespace; records are
        dnsmasq options (--host-record=..., --cname=...)."""
        args = self.exec_args("dnsmasq", "--no-daemon", "--port=53",
                              "--listen-address=" + DNS_IP, "--bind-interfaces",
                              "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
                              "--group=root", "--log-queries", "--log-facility=-",
                              *records)
        logf = open(os.path.join(self.env.tmp, "dnsmasq-%s.log" % self.name), "w")
        self.server = self.env.popen(args, cgroup_dir=None, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.wait_server("dnsmasq")
        return self.server

    def bad_server(self):
        """dnsbadserver.py on 127.0.0.53:53 (outside the test cgroup)."""
        logf = open(os.path.join(self.env.tmp, "badserver-%s.log" % self.name), "w")
        self.server = self.env.popen(self.exec_args(sys.executable, SERVER_PY, DNS_IP),
                                     cgroup_dir=None, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        self.wait_server("test DNS server", probe="ready.test")
        return self.server

    def wait_server(self, what, probe="probe.invalid"):
        """Until the server answers a query (sent from outside the cgroup)."""
        q = build_query(0x4242, probe)
        code = ("import socket,sys\n"
                "s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(0.3)\n"
                "s.sendto(bytes.fromhex(sys.argv[1]),(%r,53))\n"
                "try:\n s.recv(4096);print('up')\nexcept OSError:\n print('down')\n" % DNS_IP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            check(self.server.poll() is None, "%s in %s exited (rc %r): %s"
                  % (what, self.name, self.server.returncode, self.env.file_tail(
                      os.path.join(self.env.tmp, "*-%s.log" % self.name))))
            r = subprocess.run(self.exec_args(sys.executable, "-c", code, q.hex()),
                               capture_output=True, text=True, timeout=10)
            if r.stdout.strip() == "up":
                log("%s answers on %s:53 in netns %s" % (what, DNS_IP, self.name))
                return
            time.sleep(0.1)
        raise AssertionError("%s in netns %s does not answer" % (what, self.name))


def build_query(qid, name, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.rstrip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0" + struct.pack(">HH", qtype, 1)


class Env(harness.CgroupEnv):
    prefix = "cpid-dns-"
    tmp_prefix = "cpid-dns-"

    def __init__(self, tag):
        super().__init__(tag)
        self.netns = []
        self.mount = self.cgroup_root

    def setup(self):
        os.chmod(self.tmp, 0o755)
        os.mkdir(self.cgroup)

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.dump_logs()
        self.cleanup()
        return False

    def file_tail(self, pattern, n=3000):
        import glob
        out = []
        for p in glob.glob(pattern):
            try:
                with open(p) as f:
                    out.append("--- %s\n%s" % (os.path.basename(p), f.read()[-n:]))
            except OSError:
                pass
        return "\n".join(out)

    def dump_logs(self):
        if self.tmp:
            log("logs:\n" + self.file_tail(os.path.join(self.tmp, "*.log")))

    def run(self, args, timeout=120, env=None, quiet=False):
        return harness.run_logged(args, timeout, env, quiet, tail=2000)

    def daemon(self, timeout=15):
        """Start connpid-queryd --no-store and wait until it answers ping."""
        self.no_store_daemon(timeout)

    def start(self):
        """Loader with DNS programs + queryd; a query client."""
        self.load()
        self.daemon()
        return self.client()

    def client(self, timeout=10.0):
        return Client(self.sock, timeout)

    # -- namespaces and processes
    def new_netns(self, nameserver=DNS_IP):
        name = "cpdns%d-%06x-%d" % (os.getpid(), random.getrandbits(24), len(self.netns))
        ns = Netns(self, name)
        self.netns.append(ns)   # before creating: cleanup removes half-made ones
        os.makedirs(ns.etc, exist_ok=True)
        with open(os.path.join(ns.etc, "resolv.conf"), "w") as f:
            f.write("nameserver %s\noptions timeout:2 attempts:2\n" % nameserver)
        r = self.run(["ip", "netns", "add", name])
        check(r.returncode == 0, "ip netns add %s failed" % name, r.stderr)
        r = self.run(["ip", "-n", name, "link", "set", "lo", "up"])
        check(r.returncode == 0, "ip -n %s link set lo up failed" % name, r.stderr)
        return ns

    def popen(self, args, cgroup_dir="default", **kw):
        """Start a process; with a cgroup_dir (default: the test cgroup) it
        enters that cgroup before exec."""
        if cgroup_dir == "default":
            cgroup_dir = self.cgroup
        return super().popen(args, cgroup_dir, **kw)

    def py_client(self, ns, what, wrap=()):
        """dnsclient.py (glibc: python3's getaddrinfo) in ns and the cgroup."""
        p = Proc(self, ns.exec_args(*wrap, sys.executable, CLIENT_PY), what)
        hello = p.read()
        p.pid = hello["pid"]
        check(self.in_cgroup(p.pid), "%s (pid %d) is not in the test cgroup" % (what, p.pid))
        return p

    def in_cgroup(self, pid):
        rel = "/" + os.path.relpath(self.cgroup, self.mount)
        try:
            with open("/proc/%d/cgroup" % pid) as f:
                return ("0::" + rel) in f.read().splitlines()
        except OSError:
            return False

    def stats(self, cl):
        s = cl.stats()
        k = s.get("kernel", {})
        return {"responses": s.get("dns_responses"), "malformed": s.get("dns_malformed"),
                "truncated": s.get("dns_truncated"), "getaddrinfo": s.get("dns_getaddrinfo"),
                "k_packets": k.get("dns_packets"), "k_drops": k.get("dns_drops"),
                "k_gai": k.get("getaddrinfo_calls")}

    def domain_of(self, cl, proto, dst, sport, dport, want=True, timeout=3.0):
        """The flow's domain; with want, waits a little for the name."""
        deadline = time.monotonic() + (timeout if want else 0)
        while True:
            f = cl.lookup(proto, dst, sport, dport)
            if f.get("domain") or time.monotonic() >= deadline:
                return f
            time.sleep(0.1)

    # -- teardown
    def after_cleanup(self):
        for ns in self.netns:
            if os.path.exists(os.path.join("/run/netns", ns.name)):
                r = subprocess.run(["ip", "netns", "del", ns.name], capture_output=True, text=True)
                if r.returncode != 0:
                    log("cleanup: ip netns del %s: %s" % (ns.name, r.stderr.strip()))
            shutil.rmtree(ns.etc, ignore_errors=True)


def run_cases(cases, tag, need_dnsmasq=True):
    """Each case gets its own Env; all run, the file fails if any does.
    A Skip in a case skips the file (exit 77) unless another case failed."""
    harness.run_cases(cases, Env, tag, lambda: require_environment(need_dnsmasq),
                      skip_skips_file=False)


def check_domain(flow, what, name, source, via, chain=None, ttl=None):
    """flow.domain has this name, source, via and (when given) CNAME chain;
    age_seconds is a small non-negative number."""
    d = flow.get("domain")
    check(isinstance(d, dict), "%s: no domain on the flow" % what, json.dumps(flow))
    got = {"name": d.get("name"), "source": d.get("source"), "via": d.get("via")}
    want = {"name": name, "source": source, "via": via}
    if chain is not None:
        got["cname_chain"] = d.get("cname_chain")
        want["cname_chain"] = chain
    if ttl is not None:
        got["ttl"] = d.get("ttl")
        want["ttl"] = ttl
    check_eq(got, want, what + ": domain")
    age = d.get("age_seconds")
    check(isinstance(age, (int, float)) and 0 <= age < 60,
          "%s: age_seconds %r is not a small non-negative number" % (what, age), d)
    check(flow.get("pid") is not None, "%s: flow has no pid" % what)


def run_static_resolver(env, ns, exe, name, what, extra_env=None):
    """A one-shot resolver (resolve.c / resolve.go) in ns and the cgroup:
    its JSON line, the process left running until closed."""
    p = Proc(env, ns.exec_args(*(["env"] + ["%s=%s" % kv for kv in (extra_env or {}).items()]
                                   if extra_env else []), exe, name), what)
    ans = p.read()
    check_eq(ans.get("pid"), p.proc.pid, "%s pid (ip netns exec should exec it)" % what)
    check(env.in_cgroup(p.proc.pid), "%s is not in the test cgroup" % what)
    return p, ans


def check_static_case(env, cl, ns, exe, what, name="static.example.test", ip="127.0.0.5",
                      extra_env=None, chain=()):
    """Issue 5, item 2 for one program that no uprobe sees: the name comes
    back from the packet, for this process."""
    before = env.stats(cl)
    p, ans = run_static_resolver(env, ns, exe, name, what, extra_env)
    check_eq(ans["addrs"], [ip], "%s: resolved addresses" % what)
    f = env.domain_of(cl, "tcp", ip, ans["sport"], ans["dport"])
    check_eq(f.get("pid"), p.proc.pid, "%s: flow pid" % what)
    check_domain(f, what, name, "same-process", "packet", chain=list(chain))
    after = env.stats(cl)
    log("%s: stats before %s after %s" % (what, before, after))
    check(after["k_packets"] > before["k_packets"], "%s: kernel counted no DNS packet" % what)
    check_eq(after["k_gai"] - before["k_gai"], 0,
             "%s: getaddrinfo uprobe calls (must not see a non-glibc program)" % what)
    check_eq(after["getaddrinfo"] - before["getaddrinfo"], 0, "%s: getaddrinfo events" % what)
    p.close()

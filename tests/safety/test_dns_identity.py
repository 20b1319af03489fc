#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12, items 13-15, against the real kernel (private cgroup, pin dir,
socket and network namespace per case; dnsmasq answers the queries):

13a. pid reuse: process A resolves one.example.test (127.0.0.3) and exits;
     a process B is made to get A's pid number back (ns_last_pid, retried
     until the kernel hands it out); B resolved nothing, so its connection
     to 127.0.0.3 must not carry A's name as its own ("same-process").
13b. two users (own uids and cgroups) resolve 127.0.0.3 to different
     names: fresh processes of each user get their own user's name first
     (asked_by "same-uid"), one of a third uid in the first user's cgroup
     gets that cgroup's ("same-cgroup"), one elsewhere gets a name flagged
     "other".
14.  a process in <test>/user.slice/.../docker-<id>.scope, where <id> is a
     container the Engine API knows, gets no container (and no name); the
     same id under system.slice gets it (positive control); an id the
     Engine does not know, or answered about another container (as it does
     for a name), is "unknown" with no name. The Engine API here is a MOCK
     (a small HTTP server on a unix socket in the temp dir), not Docker.
15.  `connpidctl status` says why Docker data is unavailable and how to
     enable it: a socket path that does not exist, and one queryd may not
     open (queryd runs as root without CAP_DAC_OVERRIDE/READ_SEARCH; the
     socket is mode 0000).

Exit 0 pass, 1 fail, 77 skip (no root, BTF, cgroup2, ip, dnsmasq)."""
import http.server
import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dns"))
sys.path.insert(0, os.path.join(HERE, "..", "identity"))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import harness  # noqa: E402
from dnsharness import CLIENT_PY, Proc, Skip, binary, check, check_eq, log, run_cases  # noqa: E402
from identharness import Workload  # noqa: E402

IP = "127.0.0.3"
RECORDS = ("--host-record=one.example.test,%s" % IP, "--host-record=two.example.test,%s" % IP)
REAL_ID = "4f1c2d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
ALIAS_ID = "aaaa2d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
UNKNOWN_ID = "bbbb2d3e5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
VICTIM = "victim-web"


# ---------------------------------------------------------------- helpers

def start_queryd(env, *extra, wrap=()):
    """connpid-queryd --no-store with extra args (wrap: a command prefix)."""
    check(env.daemon_proc is None, "one daemon per env")
    env.daemon_log = os.path.join(env.tmp, "queryd.log")
    with open(env.daemon_log, "w") as logf:
        env.daemon_proc = subprocess.Popen(
            list(wrap) + [binary("CONNPID_QUERYD"), "--pin-dir", env.pin_dir, "--socket", env.sock,
                          "--no-store"] + list(extra), stdout=logf, stderr=subprocess.STDOUT)
    env.procs.append(env.daemon_proc)
    harness.wait_queryd_ready(env.daemon_proc, env.sock, 15,
                              output=lambda: harness.file_tail(env.daemon_log))


def subcgroup(env, rel):
    """<test cgroup>/rel, all levels made; its path."""
    path = os.path.join(env.cgroup, rel)
    os.makedirs(path, exist_ok=True)
    return path


class CgProc(Proc):
    """dnsclient.py in a given cgroup, as a given uid, inside a netns."""

    def __init__(self, env, ns, cgroup_dir, what, uid=None):
        args = ns.exec_args()
        if uid is not None:
            args += ["setpriv", "--reuid=%d" % uid, "--regid=%d" % uid, "--clear-groups"]
        args += [sys.executable, CLIENT_PY]
        self.what = what
        self.proc = env.popen(args, cgroup_dir=cgroup_dir, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
        self.pid = self.proc.pid
        check_eq(self.read()["pid"], self.pid, "%s pid (ip netns exec and setpriv exec)" % what)

    def exit(self):
        self.close()
        self.proc.wait(timeout=10)


def domain(env, cl, p, what):
    """Connect from p to IP; the flow (pid checked) and its domain."""
    c = p.cmd({"cmd": "connect", "ip": IP})
    f = env.domain_of(cl, "tcp", IP, c["sport"], c["dport"])
    check_eq(f.get("pid"), p.pid, "%s: flow pid" % what)
    d = f.get("domain")
    check(isinstance(d, dict), "%s: no domain on the flow" % what, json.dumps(f))
    return f, d


def dns_setup(env):
    cl = env.start()
    ns = env.new_netns()
    ns.dnsmasq(*RECORDS)
    return cl, ns


# ---------------------------------------------------------------- 13a: pid reuse

def client_with_pid(env, ns, pid, what, tries=300):
    """A dnsclient.py whose pid is `pid`: ns_last_pid = pid - 1 right before
    the fork, again until no other fork on the host got there first."""
    for i in range(tries):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(pid - 1))
        proc = env.popen(ns.exec_args(sys.executable, CLIENT_PY), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, bufsize=1)
        if proc.pid == pid:
            p = Proc.__new__(Proc)
            p.what, p.proc, p.pid = what, proc, proc.pid
            check_eq(p.read()["pid"], pid, "%s pid" % what)
            log("%s got pid %d back after %d tries" % (what, pid, i + 1))
            return p
        proc.kill()
        proc.wait()
    raise Skip("pid %d was not handed out again in %d tries (busy host)" % (pid, tries))


def test_pid_reuse(env):
    cl, ns = dns_setup(env)
    a = env.py_client(ns, "process A")
    check_eq(a.cmd({"cmd": "resolve", "name": "one.example.test"})["addrs"], [IP], "A resolves")
    fa, da = domain(env, cl, a, "A")
    check(da.get("name") == "one.example.test" and da.get("source") in ("same-process", "getaddrinfo"),
          "A's own name, as its own", da)
    pid = a.pid
    a.close()
    a.proc.wait(timeout=10)
    b = client_with_pid(env, ns, pid, "process B (A's pid, resolved nothing)")
    fb, db = domain(env, cl, b, "B")
    check(fb.get("start_time") != fa.get("start_time"), "B and A have one start time", fb, fa)
    log("B's domain: %s" % json.dumps(db))
    check(db.get("source") == "global",
          "pid reuse: B (pid %d, another process) got A's name as its own" % pid, db)
    check_eq(db.get("asked_by"), "same-uid", "B's domain asked_by (A and B are both root)")


# ---------------------------------------------------------------- 13b: two users

def test_two_users(env):
    cl, ns = dns_setup(env)
    cg = {n: subcgroup(env, n) for n in ("ua", "ub", "uo")}
    ua = CgProc(env, ns, cg["ua"], "user 40001", uid=40001)
    ub = CgProc(env, ns, cg["ub"], "user 40002", uid=40002)
    check_eq(ua.cmd({"cmd": "resolve", "name": "one.example.test"})["addrs"], [IP], "40001 resolves")
    check_eq(ub.cmd({"cmd": "resolve", "name": "two.example.test"})["addrs"], [IP], "40002 resolves")
    _, d = domain(env, cl, ua, "40001 itself")
    check_eq((d.get("name"), d.get("asked_by")), ("one.example.test", "same-process"), "40001's own")
    cases = (
        ("fresh process of 40001", "ua", 40001, "one.example.test", "same-uid"),
        ("fresh process of 40002", "ub", 40002, "two.example.test", "same-uid"),
        ("uid 40003 in 40001's cgroup", "ua", 40003, "one.example.test", "same-cgroup"),
        ("uid 40003 elsewhere", "uo", 40003, "two.example.test", "other"),
    )
    failures = []
    for what, cgname, uid, name, by in cases:
        p = CgProc(env, ns, cg[cgname], what, uid=uid)
        f, d = domain(env, cl, p, what)
        got = (f.get("uid"), d.get("name"), d.get("source"), d.get("asked_by"))
        want = (uid, name, "global", by)
        if got != want:
            failures.append("%s: (uid, name, source, asked_by) = %r, want %r" % (what, got, want))
        else:
            log("%s: ok %r" % (what, got))
    check(not failures, "names across users", *failures)


# ---------------------------------------------------------------- 14: container trust

class MockDocker:
    """A MOCK Docker Engine API on a unix socket: GET /events streams
    nothing until stopped; GET /containers/<id>/json answers from a table
    (a reply whose Id differs is what the Engine does for a name)."""

    def __init__(self, path, table):
        self.path = path
        self.stop = threading.Event()
        self.requests = []
        mock = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def reply(self, status, obj):
                body = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                path = self.path.split("?")[0]
                mock.requests.append(path)
                if path.endswith("/events"):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    mock.stop.wait()
                    self.close_connection = True
                    return
                m = re.match(r"^/v[0-9.]+/containers/([^/]+)/json$", path)
                obj = table.get(m.group(1)) if m else None
                if obj is None:
                    self.reply(404, {"message": "No such container"})
                else:
                    self.reply(200, obj)

        class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
            daemon_threads = True

        self.server = Server(path, Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


def container_reply(cid, name):
    return {"Id": cid, "Name": "/" + name,
            "Config": {"Image": "victim/image:1", "Labels": {"com.docker.compose.project": "victim"}}}


def settled_lookup(cl, lport, w, timeout=10):
    """The flow of w's connection once Docker data is no longer pending."""
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    deadline = time.monotonic() + timeout
    while True:
        f = cl.lookup("tcp", "127.0.0.1", t["sport"], lport)
        cont = f.get("container")
        if not (isinstance(cont, dict) and cont.get("docker") == "pending") or time.monotonic() > deadline:
            return f
        time.sleep(0.1)


def test_container_trust(env):
    mock = MockDocker(os.path.join(env.tmp, "mock-docker.sock"), {
        REAL_ID: container_reply(REAL_ID, VICTIM),
        ALIAS_ID: container_reply(REAL_ID, VICTIM),   # as if ALIAS_ID matched by name
    })
    try:
        env.load()
        start_queryd(env, "--docker-socket", mock.path)
        cl = env.client()
        _, lport = env.listen_tcp()
        shapes = (
            ("user scope", "user.slice/user-1000.slice/user@1000.service/app.slice/docker-%s.scope"
             % REAL_ID, None),
            ("user session", "user.slice/user-1000.slice/docker-%s.scope" % REAL_ID, None),
            ("below a service", "system.slice/app.service/docker-%s.scope" % REAL_ID, None),
            ("real container", "system.slice/docker-%s.scope" % REAL_ID,
             {"id": REAL_ID, "runtime": "docker", "docker": "ok", "name": VICTIM,
              "image": "victim/image:1", "compose_project": "victim"}),
            ("unknown id", "system.slice/docker-%s.scope" % UNKNOWN_ID,
             {"id": UNKNOWN_ID, "runtime": "docker", "docker": "unknown"}),
            ("id answered for another", "system.slice/docker-%s.scope" % ALIAS_ID,
             {"id": ALIAS_ID, "runtime": "docker", "docker": "unknown"}),
        )
        failures = []
        for what, rel, want in shapes:
            w = Workload(env, subcgroup(env, rel), comm="ct-test")
            f = settled_lookup(cl, lport, w)
            got = f.get("container")
            if got != want:
                failures.append("%s (%s): container %r, want %r" % (what, rel, got, want))
            elif want is None and VICTIM in json.dumps(f):
                failures.append("%s: the container's name is in the answer: %s" % (what, json.dumps(f)))
            else:
                log("%s: ok %r" % (what, got))
        log("mock Engine API requests: %r" % mock.requests)
        check(not failures, "container identity", *failures)
    finally:
        mock.close()


# ---------------------------------------------------------------- 15: status says why

def docker_status(env, cl, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        ans = cl.request({"op": "status"})
        check(ans.get("ok"), "status failed", ans)
        d = ans["status"].get("queryd", {}).get("docker")
        check(isinstance(d, dict), "status has no queryd.docker (wired in protocol.c op_status?)",
              json.dumps(ans))
        if d.get("state") != "connecting" or time.monotonic() > deadline:
            return d
        time.sleep(0.1)


def ctl_status(env):
    r = harness.run_logged([binary("CONNPIDCTL"), "--socket", env.sock, "--pin-dir", env.pin_dir,
                            "status"], 30)
    check_eq(r.returncode, 0, "connpidctl status exit code")
    return r.stdout


def test_status_no_socket(env):
    env.load()
    path = os.path.join(env.tmp, "absent", "docker.sock")
    start_queryd(env, "--docker-socket", path)
    d = docker_status(env, env.client())
    log("status docker: %r" % d)
    check_eq((d.get("socket"), d.get("state"), d.get("reason")), (path, "unavailable", "no such socket"),
             "docker status for a missing socket")
    check("--docker-socket" in (d.get("hint") or ""), "the hint says how to point at Docker", d)
    out = ctl_status(env)
    check("no such socket" in out and "--docker-socket" in out, "connpidctl status does not say why", out)


def test_status_permission_denied(env):
    env.load()
    path = os.path.join(env.tmp, "docker.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    env.socks.append(s)
    s.bind(path)
    s.listen(8)
    os.chmod(path, 0)
    # root without the DAC capabilities: file modes apply, as they do to
    # the connpid user of the hardened unit facing root:docker 0660
    start_queryd(env, "--docker-socket", path,
                 wrap=("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--"))
    d = docker_status(env, env.client())
    log("status docker: %r" % d)
    check_eq((d.get("state"), d.get("reason")), ("unavailable", "permission denied"),
             "docker status for a socket queryd may not open")
    check("SupplementaryGroups=docker" in (d.get("hint") or ""), "the hint says how to enable it", d)
    out = ctl_status(env)
    check("permission denied" in out and "SupplementaryGroups=docker" in out,
          "connpidctl status does not say why", out)


run_cases([test_pid_reuse, test_two_users, test_container_trust, test_status_no_socket,
           test_status_permission_denied], "dnsid")

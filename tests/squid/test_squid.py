#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpid-squid-helper under Debian's real Squid (issue 17).

Squid 5 runs in the foreground (-N) from a temp dir owned by `proxy`, on
a free loopback port, with the helper as its external ACL. Squid starts
its helpers as user `proxy`; queryd runs on a private socket with
--allow-group proxy (proxy's own primary group) and the socket's
directory is made traversable, so the helper reaches the daemon the way
it would in production (there: `usermod -aG connpid-query proxy`).
Clients (curl, and Python's urllib as a second program) run in the test
cgroup the loader watches; the origin server is a thread of this test.

Cases: notes in access.log name each client's exe and pid; an allow list
lets curl through and denies urllib with 403; queryd stopped: Squid
denies promptly (helper answers BH), queryd back: allowed again; queryd
restarted under load of concurrent clients: no request hangs, all after
the restart are allowed; a benchmark of lookups per second through the
helper.
"""
import http.server
import json
import os
import pwd
import re
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
import qdharness  # noqa: E402
from qdharness import Skip, check, check_eq, log, wait_until  # noqa: E402
import harness  # noqa: E402

SQUID = shutil.which("squid") or "/usr/sbin/squid"
HELPER = os.environ.get("CONNPID_SQUID_HELPER", "")
CURL = shutil.which("curl")
# what connpid-squid-helper asks for (queryd/squid/connpid-squid-helper.c)
HELPER_FIELDS = ["pid", "user", "comm", "exe", "unit", "container", "domain"]

PY_CLIENT = r"""
import sys, urllib.request, urllib.error
proxy, url = sys.argv[1], sys.argv[2]
op = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
try:
    print(op.open(url, timeout=20).status)
except urllib.error.HTTPError as e:
    print(e.code)
"""


def require():
    qdharness.require_environment()
    if not os.path.exists(SQUID):
        raise Skip("squid is not installed (tests/install-deps.sh installs it)")
    if not HELPER or not os.path.exists(HELPER):
        raise Skip("CONNPID_SQUID_HELPER not built")
    if not CURL:
        raise Skip("curl is not installed")
    try:
        pwd.getpwnam("proxy")
    except KeyError:
        raise Skip("no user 'proxy' (Debian's squid package creates it)")


class Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from origin\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class SquidEnv(qdharness.TestEnv):
    prefix = "cpsq-"
    tmp_prefix = "cpsq-"

    def setup(self):
        super().setup()
        os.chmod(self.tmp, 0o711)      # proxy may reach the socket inside, nothing else
        self.origin = Origin(("127.0.0.1", 0), Handler)
        self.origin_port = self.origin.server_address[1]
        threading.Thread(target=self.origin.serve_forever, daemon=True).start()
        self.squid_dir = os.path.join(self.tmp, "squid")
        os.mkdir(self.squid_dir)
        pw = pwd.getpwnam("proxy")
        os.chown(self.squid_dir, pw.pw_uid, pw.pw_gid)
        self.squid = None
        self.qd = None

    def start_daemon(self):
        self.qd = self.daemon(extra=["--no-store", "--allow-group", "proxy"])
        self.qd.wait_ready()

    def start_squid(self, helper_args=(), rules="http_access allow connpid_ok\n"):
        self.port = free_port()
        helper = " ".join([HELPER, "--socket", self.sock, "--timeout", "500"] + list(helper_args))
        d = self.squid_dir
        self.conf = os.path.join(d, "squid.conf")
        with open(self.conf, "w") as f:
            f.write(f"""\
http_port 127.0.0.1:{self.port}
pid_filename {d}/squid.pid
cache_log {d}/cache.log
cache deny all
coredump_dir {d}
netdb_filename none
visible_hostname connpid-test
shutdown_lifetime 1 seconds
external_acl_type connpid concurrency=50 ttl=0 negative_ttl=0 children-max=1 children-startup=1 %SRC %SRCPORT %MYADDR %MYPORT {helper}
acl connpid_ok external connpid
logformat connpid %ts.%03tu %>a:%>p %rm %ru %>Hs pid=%{{pid}}note exe=%{{exe}}note comm=%{{comm}}note user=%{{user}}note
access_log stdio:{d}/access.log connpid
{rules}http_access deny all
""")
        self.squid_log = open(os.path.join(self.tmp, "squid.out"), "w")
        self.squid = self.track(subprocess.Popen([SQUID, "-N", "-f", self.conf],
                                                 stdout=self.squid_log, stderr=subprocess.STDOUT))

        def listening():
            check(self.squid.poll() is None, "squid exited: %s" % self.cache_log())
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_until(listening, timeout=30, what="squid listening")

    def cache_log(self):
        return harness.file_tail(os.path.join(self.squid_dir, "cache.log"))

    def access_lines(self):
        try:
            with open(os.path.join(self.squid_dir, "access.log")) as f:
                return f.read().splitlines()
        except OSError:
            return []

    def url(self, tag):
        return "http://127.0.0.1:%d/%s" % (self.origin_port, tag)

    def curl(self, tag, wait=True):
        p = self.popen([CURL, "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "20",
                        "-x", "http://127.0.0.1:%d" % self.port, self.url(tag)],
                       self.cgroup, stdout=subprocess.PIPE, text=True)
        return self.finish(p) if wait else p

    def python(self, tag):
        p = self.popen([sys.executable, "-c", PY_CLIENT, "http://127.0.0.1:%d" % self.port, self.url(tag)],
                       self.cgroup, stdout=subprocess.PIPE, text=True)
        return self.finish(p)

    def finish(self, p):
        out, _ = p.communicate(timeout=60)
        return p.pid, out.strip()

    def logged(self, tag):
        """The access.log line of the request for /tag (Squid writes it
        when the transaction ends)."""
        found = []

        def seen():
            found[:] = [ln for ln in self.access_lines() if ln.split()[2:3] == ["GET"] and
                        ln.split()[3].endswith("/" + tag)]
            return bool(found)
        wait_until(seen, timeout=10, what="access.log line for /%s" % tag)
        return found[0]

    def before_unload(self):
        if self.squid is not None and self.squid.poll() is None:
            self.squid.terminate()
            try:
                self.squid.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.squid.kill()
        if getattr(self, "origin", None):
            self.origin.shutdown()
            self.origin.server_close()


def note(line, key):
    m = re.search(r"\b%s=(\S+)" % key, line)
    return m.group(1) if m else None


def test_notes(env):
    env.start_daemon()
    env.start_squid()
    cpid, code = env.curl("curl-1")
    check_eq(code, "200", "curl through squid")
    ppid, code = env.python("py-1")
    check_eq(code, "200", "urllib through squid")
    lc, lp = env.logged("curl-1"), env.logged("py-1")
    log("access.log:", lc)
    log("access.log:", lp)
    check_eq(note(lc, "pid"), str(cpid), "curl's pid in access.log")
    check_eq(note(lc, "exe"), os.path.realpath(CURL), "curl's exe in access.log")
    check_eq(note(lp, "pid"), str(ppid), "urllib's pid in access.log")
    check_eq(note(lp, "exe"), os.path.realpath(sys.executable), "python's exe in access.log")
    check_eq(note(lc, "user"), "root", "user note")


def test_allow_list(env):
    env.start_daemon()
    env.start_squid(["--allow-exe", os.path.realpath(CURL)])
    _, code = env.curl("allowed")
    check_eq(code, "200", "curl is on the allow list")
    ppid, code = env.python("denied")
    check_eq(code, "403", "python is not on the allow list")
    line = env.logged("denied")
    log("access.log:", line)
    check(" 403 " in line, "the denial is logged", line)


def test_note_acl(env):
    """The man page's example: no allow list, an ACL on the exe note."""
    env.start_daemon()
    py = os.path.realpath(sys.executable)
    env.start_squid(rules="acl connpid_python note exe %s\n"
                          "http_access deny !connpid_ok\n"
                          "http_access deny connpid_python\n"
                          "http_access allow connpid_ok\n" % py)
    _, code = env.curl("curl-ok")
    check_eq(code, "200", "curl allowed")
    _, code = env.python("py-denied")
    check_eq(code, "403", "python denied by the note ACL")


def test_daemon_down(env):
    env.start_daemon()
    env.start_squid()
    _, code = env.curl("up-1")
    check_eq(code, "200", "daemon up")
    env.qd.stop()
    t0 = time.monotonic()
    _, code = env.curl("down-1")
    took = time.monotonic() - t0
    log("daemon down: HTTP %s in %.3fs" % (code, took))
    check_eq(code, "403", "daemon down: the helper answers BH, squid denies")
    check(took < 3, "daemon down: the denial took %.1fs" % took)
    check(env.squid.poll() is None, "squid still runs")
    env.start_daemon()
    _, code = env.curl("up-2")
    check_eq(code, "200", "daemon back: allowed again without restarting squid")


def test_restart_under_load(env):
    env.start_daemon()
    env.start_squid()
    stop = threading.Event()
    results = []
    lock = threading.Lock()

    def loop(n):
        i = 0
        while not stop.is_set():
            t0 = time.monotonic()
            _, code = env.curl("load-%d-%d" % (n, i))
            with lock:
                results.append((time.monotonic(), code, time.monotonic() - t0))
            i += 1
    threads = [threading.Thread(target=loop, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        t_restart = time.monotonic()
        env.qd.stop()
        env.start_daemon()
        t_back = time.monotonic()
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    codes = [c for _, c, _ in results]
    slowest = max(d for _, _, d in results)
    log("restart under load: %d requests, %d allowed, %d denied, slowest %.3fs, daemon away %.3fs"
        % (len(results), codes.count("200"), codes.count("403"), slowest, t_back - t_restart))
    check(len(results) > 20, "load ran", len(results))
    check(slowest < 5, "no request hung while queryd restarted: slowest %.1fs" % slowest)
    after = [c for t, c, _ in results if t - 0 > t_back + 0.5]
    check(after and all(c == "200" for c in after), "every request after the restart allowed", after[:20])
    check(set(codes) <= {"200", "403"}, "only allowed or denied", set(codes))
    check(env.squid.poll() is None, "squid still runs")


def answer_bytes(path, req):
    """The length of the daemon's answer line to req (newline excluded), and the answer."""
    with harness.Client(path, 5) as c:
        line = c.request_raw(req)
    return len(line), json.loads(line)


def bench_round(env, exe, sport, port, pid, n, window=100):
    """Lookups per second of one helper binary over n requests."""
    helper = subprocess.Popen([exe, "--socket", env.sock, "--timeout", "2000"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, bufsize=1)
    env.track(helper)
    # as Squid with concurrency=100 does: at most `window` requests in
    # flight, a channel reused once its answer came back
    out = []
    t0 = time.monotonic()
    for start in range(0, n, window):
        helper.stdin.write("".join("%d 127.0.0.1 %d 127.0.0.1 %d\n" % (i, sport, port) for i in range(window)))
        helper.stdin.flush()
        out += [helper.stdout.readline().strip() for _ in range(window)]
    took = time.monotonic() - t0
    helper.stdin.close()
    check_eq(helper.wait(timeout=10), 0, "helper exit status")
    ok = [ln for ln in out if " OK " in ln and "pid=%d " % pid in ln]
    check_eq(len(ok), n, "every answer OK with the client's pid (not OK: %r)"
             % [ln for ln in out if ln not in ok][:3])
    return n / took


def test_benchmark(env):
    """Lookups per second through the helper (stdin to stdout), for a
    live connection of a process in the test cgroup, and the size of the
    daemon's answer with and without the helper's "fields". With
    CONNPID_SQUID_HELPER_BASELINE (another build of the helper, e.g. one
    before a change) both run in alternating rounds of the same run."""
    env.start_daemon()
    srv, port = env.listen_tcp()
    p = env.popen([sys.executable, "-c",
                   "import socket,sys,time\n"
                   "s=socket.create_connection(('127.0.0.1',%d))\n"
                   "print(s.getsockname()[1],flush=True)\n"
                   "time.sleep(120)\n" % port], env.cgroup, stdout=subprocess.PIPE, text=True)
    sport = int(p.stdout.readline())
    req = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": sport, "dport": port}
    full, _ = answer_bytes(env.sock, req)
    narrow, ans = answer_bytes(env.sock, dict(req, fields=HELPER_FIELDS))
    check(ans.get("found") and set(ans.get("flow", {})) <= set(HELPER_FIELDS) and
          ans["flow"].get("pid") == p.pid, "the helper's fields answer", ans)
    log("ANSWER BYTES: lookup %d bytes, with the helper's fields %d bytes" % (full, narrow))
    baseline = os.environ.get("CONNPID_SQUID_HELPER_BASELINE", "")
    if not baseline:
        rate = bench_round(env, HELPER, sport, port, p.pid, 20000)
        log("BENCHMARK: 20000 lookups through connpid-squid-helper (window 100) = %.0f lookups/s" % rate)
        return
    rates = {HELPER: [], baseline: []}
    for r in range(8):
        exe = (HELPER, baseline)[(r + r // 2) % 2]  # ABBA ABBA: drift hits both alike
        rates[exe].append(bench_round(env, exe, sport, port, p.pid, 10000))
    for name, exe in (("this helper", HELPER), ("baseline", baseline)):
        v = sorted(rates[exe])
        log("BENCHMARK: %s: median %.0f lookups/s (range %.0f-%.0f, %d rounds of 10000, window 100)"
            % (name, statistics.median(v), v[0], v[-1], len(v)))


if __name__ == "__main__":
    harness.run_cases([test_notes, test_allow_list, test_note_acl, test_daemon_down, test_restart_under_load,
                       test_benchmark], SquidEnv, "squid", require=require, skip_skips_file=True)

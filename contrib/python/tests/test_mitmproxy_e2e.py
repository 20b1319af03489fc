#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""End-to-end tests: the REAL mitmproxy (Debian's mitmdump) + connpid_mitmproxy.py
+ the REAL connpid-loader / connpid-queryd.

    CONNPID_LOADER=build/loader/connpid-loader \\
    CONNPID_QUERYD=build/queryd/connpid-queryd \\
    CONNPIDCTL=build/queryd/ctl/connpidctl \\
        python3 contrib/python/tests/test_mitmproxy_e2e.py [CASE...]

Cases: regular, transparent, restart, allow-exe (default: all).

Each case loads connpid into a private pin dir (/sys/fs/bpf/connpid-e2e-*)
attached to a private child cgroup, runs queryd on a private socket, moves
the HTTP client (curl) into that cgroup before it connects, and removes
everything again (unload, kill what it started, rmdir the cgroup, delete
the netns), also on failure. Traffic stays on loopback or inside a private
network namespace.

Exit status: 0 all run cases passed, 1 a case failed, 77 nothing could run
(the reason is printed): meson counts that as "skipped".
"""

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRIB = os.path.dirname(HERE)
ADDON = os.path.join(CONTRIB, "connpid_mitmproxy.py")
DUMP_ADDON = os.path.join(HERE, "e2e_dump_addon.py")
sys.path.insert(0, CONTRIB)
from connpid_client import ConnpidClient, ConnpidError  # noqa: E402

SKIP = 77
NOBODY = 65534


class Skip(Exception):
    pass


def log(msg):
    print(f"[e2e] {msg}", flush=True)


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            if parts[sep + 1] == "cgroup2":
                return parts[4]
    return None


def free_port(host="127.0.0.1"):
    s = socket.socket()
    s.bind((host, 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_for(pred, timeout, what, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def check_prereqs():
    if os.geteuid() != 0:
        raise Skip("needs root (BPF, cgroups, netns)")
    paths = {}
    for var in ("CONNPID_LOADER", "CONNPID_QUERYD", "CONNPIDCTL"):
        p = os.environ.get(var)
        if not p:
            raise Skip(f"{var} is not set")
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise Skip(f"{var}={p} is not an executable file (not built yet?)")
        paths[var] = p
    for prog in ("mitmdump", "curl"):
        if not shutil.which(prog):
            raise Skip(f"{prog} not installed (apt-get install -y mitmproxy curl)")
    if not cgroup2_mount():
        raise Skip("no cgroup2 mount in /proc/self/mountinfo")
    if not os.path.isdir("/sys/fs/bpf"):
        raise Skip("bpffs not mounted at /sys/fs/bpf")
    return paths


class OriginHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from origin\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Env:
    """Everything one case starts, torn down in reverse order."""

    def __init__(self, name, paths):
        self.name = name
        self.paths = paths
        self.tag = f"connpid-e2e-{os.getpid()}-{name}"
        self.tmp = tempfile.mkdtemp(prefix=self.tag + "-")
        os.chmod(self.tmp, 0o755)
        self.pin_dir = f"/sys/fs/bpf/{self.tag}"
        self.cgroup = os.path.join(cgroup2_mount(), self.tag)
        self.sock = os.path.join(self.tmp, "queryd.sock")
        self.procs = []          # (name, Popen, logfile)
        self.queryd = None
        self.loaded = False
        self.netns = None
        self.httpd = None
        self.n = 0

    # -- setup pieces ---------------------------------------------------------

    def setup_bpf(self):
        os.mkdir(self.cgroup)
        r = subprocess.run([self.paths["CONNPID_LOADER"], "--pin-dir", self.pin_dir,
                            "--cgroup", self.cgroup],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise AssertionError(f"connpid-loader failed ({r.returncode}): {r.stderr.strip()}")
        self.loaded = True
        log(f"loaded into {self.pin_dir}, attached to {self.cgroup}")

    def queryd_args(self):
        args = [self.paths["CONNPID_QUERYD"], "--pin-dir", self.pin_dir,
                "--socket", self.sock]
        h = subprocess.run([self.paths["CONNPID_QUERYD"], "--help"],
                           capture_output=True, text=True, timeout=10)
        helptext = h.stdout + h.stderr
        if "--no-store" in helptext:
            args.append("--no-store")
        elif "--db" in helptext:
            args += ["--db", os.path.join(self.tmp, "connpid.db")]
        return args

    def start_queryd(self):
        assert self.queryd is None or self.queryd.poll() is not None
        self.queryd = self.spawn("queryd", self.queryd_args())
        c = ConnpidClient(self.sock, timeout=0.5)

        def up():
            if self.queryd.poll() is not None:
                raise AssertionError(f"queryd exited with {self.queryd.returncode}:\n"
                                     + self.read_log("queryd"))
            try:
                return c.ping()
            except ConnpidError:
                return None
        try:
            wait_for(up, 15, "queryd to answer ping")
        finally:
            c.close()
        log(f"queryd up on {self.sock}")

    def stop_queryd(self, sig=signal.SIGTERM):
        p = self.queryd
        p.send_signal(sig)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        log(f"queryd stopped (rc={p.returncode})")

    def spawn(self, name, args, env=None, netns=None):
        logpath = os.path.join(self.tmp, f"{name}.log")
        lf = open(logpath, "ab")
        if netns:
            args = ["nsenter", f"--net=/run/netns/{netns}"] + list(args)
        p = subprocess.Popen(args, stdout=lf, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env)
        lf.close()
        self.procs.append((name, p, logpath))
        return p

    def read_log(self, name):
        out = []
        for n, _p, path in self.procs:
            if n == name:
                with open(path, errors="replace") as f:
                    out.append(f.read())
        return "".join(out)

    def start_origin(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), OriginHandler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self.httpd.server_address[1]

    def start_mitmdump(self, name, listen_port, extra_set=(), mode=None,
                       netns=None, host="127.0.0.1"):
        dump = os.path.join(self.tmp, f"{name}.jsonl")
        args = ["mitmdump", "--listen-host", host, "--listen-port", str(listen_port),
                "-s", ADDON, "-s", DUMP_ADDON,
                "--set", f"confdir={os.path.join(self.tmp, 'mitmconf')}",
                "--set", f"connpid_socket={self.sock}",
                "--set", "connpid_timeout=0.5"]
        if mode:
            args += ["--mode", mode]
        for s in extra_set:
            args += ["--set", s]
        env = dict(os.environ, PYTHONUNBUFFERED="1", CONNPID_E2E_DUMP=dump)
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
            env.pop(k, None)
        p = self.spawn(name, args, env=env, netns=netns)

        def listening():
            if p.poll() is not None:
                raise AssertionError(f"mitmdump exited with {p.returncode}:\n"
                                     + self.read_log(name))
            return "listening at" in self.read_log(name)
        wait_for(listening, 30, "mitmdump to listen")
        log(f"{name} listening on {host}:{listen_port} (mode {mode or 'regular'})")
        return p, dump

    def client(self, argv, netns=None, uid=None, timeout=20):
        """Run argv inside the child cgroup (moved there before exec, so
        before it connects), optionally in netns and as uid. The process
        keeps its pid through the execs. Returns (pid, rc, stdout)."""
        inner = list(argv)
        if netns or uid is not None:
            ns = ["nsenter"]
            if netns:
                ns.append(f"--net=/run/netns/{netns}")
            if uid is not None:
                ns += ["--setuid", str(uid), "--setgid", str(uid)]
            inner = ns + inner
        sh = ['sh', '-c', 'echo $$ > "$0" && exec "$@"',
              os.path.join(self.cgroup, "cgroup.procs")] + inner
        env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
        p = subprocess.Popen(sh, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL, env=env)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise AssertionError(f"client {argv} hung")
        if err.strip():
            log(f"client stderr: {err.decode(errors='replace').strip()}")
        return p.pid, p.returncode, out.decode(errors="replace")

    def curl(self, url, proxy=None, exe="curl", **kw):
        argv = [exe, "-sS", "--max-time", "10", "-o", "/dev/null",
                "-w", "%{http_code}"]
        if proxy:
            argv += ["-x", proxy]
        else:
            argv += ["--noproxy", "*"]
        argv.append(url)
        pid, rc, out = self.client(argv, **kw)
        code = int(out.strip() or 0) if out.strip().isdigit() else 0
        return pid, rc, code

    def setup_netns(self):
        self.netns = self.tag[:40]
        subprocess.run(["ip", "netns", "add", self.netns], check=True, timeout=10)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"],
                       check=True, timeout=10)

    # -- checks ---------------------------------------------------------------

    @staticmethod
    def dumped(dump, n, timeout=10):
        def get():
            try:
                with open(dump) as f:
                    recs = [json.loads(ln) for ln in f if ln.strip()]
            except FileNotFoundError:
                return None
            return recs if len(recs) >= n else None
        return wait_for(get, timeout, f"{n} flow(s) in {dump}")

    def assert_attributed(self, rec, pid, comm="curl", exe=None, proc_log=""):
        meta = rec.get("connpid")
        assert meta, f"flow has no metadata['connpid']: {rec}"
        assert meta.get("status") == "found", f"flow not attributed: {meta}\n{proc_log}"
        assert meta.get("pid") == pid, f"pid {meta.get('pid')} != client pid {pid}: {meta}"
        assert meta.get("comm") == comm, f"comm {meta.get('comm')!r} != {comm!r}"
        if exe:
            assert meta.get("exe") == exe, f"exe {meta.get('exe')!r} != {exe!r}"
        assert rec.get("comment", "").startswith("connpid: "), rec.get("comment")
        assert f"[{pid}]" in rec["comment"], rec["comment"]

    def assert_proxy_healthy(self, name, p):
        assert p.poll() is None, f"{name} died (rc={p.returncode}):\n{self.read_log(name)}"
        text = self.read_log(name)
        assert "Traceback" not in text and "Addon error" not in text, \
            f"{name} logged an error:\n{text}"

    # -- teardown -------------------------------------------------------------

    def cleanup(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        for name, p, _ in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        if self.netns:
            subprocess.run(["ip", "netns", "del", self.netns], timeout=10)
        if self.loaded:
            r = subprocess.run([self.paths["CONNPID_LOADER"], "--unload",
                                "--pin-dir", self.pin_dir],
                               capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                log(f"WARNING: unload failed: {r.stderr.strip()}")
        if os.path.isdir(self.pin_dir):  # unload failed or left the dir
            for root, dirs, files in os.walk(self.pin_dir, topdown=False):
                for f in files:
                    os.unlink(os.path.join(root, f))
                for d in dirs:
                    os.rmdir(os.path.join(root, d))
            os.rmdir(self.pin_dir)
        if os.path.isdir(self.cgroup):
            parent = os.path.join(os.path.dirname(self.cgroup), "cgroup.procs")
            for _ in range(50):
                with open(os.path.join(self.cgroup, "cgroup.procs")) as f:
                    left = f.read().split()
                for pid in left:
                    try:
                        with open(parent, "w") as f:
                            f.write(pid)
                    except OSError:
                        pass
                try:
                    os.rmdir(self.cgroup)
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                log(f"WARNING: could not remove {self.cgroup}")
        shutil.rmtree(self.tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# cases

CURL = os.path.realpath(shutil.which("curl") or "/usr/bin/curl")


def case_regular(env):
    """(1) regular proxy mode, curl -x: curl's pid, comm, exe."""
    env.setup_bpf()
    env.start_queryd()
    origin = env.start_origin()
    mport = free_port()
    mitm, dump = env.start_mitmdump("mitmdump", mport)
    url = f"http://127.0.0.1:{origin}/regular"
    pid, rc, code = env.curl(url, proxy=f"http://127.0.0.1:{mport}")
    assert rc == 0 and code == 200, f"curl rc={rc} http={code}"
    rec = env.dumped(dump, 1)[0]
    env.assert_attributed(rec, pid, exe=CURL, proc_log=env.read_log("mitmdump"))
    text = env.read_log("mitmdump")
    assert f"pid={pid} comm=curl exe={CURL}" in text, \
        f"no per-connection log line for pid {pid}:\n{text}"
    env.assert_proxy_healthy("mitmdump", mitm)
    log(f"flow annotated: {rec['comment']}")
    log(f"metadata: {json.dumps(rec['connpid'], sort_keys=True)}")


def _nat_redirect(env, dst, dport, to_port):
    """Redirect uid NOBODY's TCP to dst:dport to 127.0.0.1:to_port, in the netns."""
    ns = ["ip", "netns", "exec", env.netns]
    rules = (f"table ip connpid_e2e {{\n"
             f"  chain output {{ type nat hook output priority -100; policy accept;\n"
             f"    meta skuid {NOBODY} ip daddr {dst} tcp dport {dport} redirect to :{to_port}\n"
             f"  }}\n}}\n")
    errs = []
    if shutil.which("nft"):
        r = subprocess.run(ns + ["nft", "-f", "-"], input=rules, text=True,
                           capture_output=True, timeout=10)
        if r.returncode == 0:
            return "nftables"
        errs.append(f"nft: {r.stderr.strip()}")
    if shutil.which("iptables"):
        r = subprocess.run(ns + ["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp",
                                 "-d", dst, "--dport", str(dport), "-m", "owner",
                                 "--uid-owner", str(NOBODY), "-j", "REDIRECT",
                                 "--to-ports", str(to_port)],
                           capture_output=True, text=True, timeout=10)
        if r.returncode == 0:
            return "iptables"
        errs.append(f"iptables: {r.stderr.strip()}")
    raise Skip("cannot install a NAT redirect in the netns (install nftables "
               "or iptables; kernel needs nf_nat): " + "; ".join(errs))


def case_transparent(env):
    """(2) transparent mode in a netns: a client that does not know about the
    proxy (curl as nobody to 127.0.0.2:8000) is redirected by NAT to
    mitmproxy and still attributed to its process."""
    if not shutil.which("nsenter") or not shutil.which("ip"):
        raise Skip("needs ip(8) and nsenter(1)")
    env.setup_netns()
    origin_ip, origin_port, mport = "127.0.0.2", 8000, 8080
    how = _nat_redirect(env, origin_ip, origin_port, mport)
    log(f"redirect via {how}: uid {NOBODY} -> {origin_ip}:{origin_port} => :{mport}")
    env.setup_bpf()
    env.start_queryd()
    origin = env.spawn("origin", [sys.executable, os.path.abspath(__file__),
                                  "--origin", origin_ip, str(origin_port)],
                       netns=env.netns)
    mitm, dump = env.start_mitmdump("mitmdump", mport, mode="transparent",
                                    netns=env.netns, host="127.0.0.1")
    # origin up? (root is not redirected)
    def origin_up():
        if origin.poll() is not None:
            raise AssertionError("origin http.server died:\n" + env.read_log("origin"))
        _, rc, code = env.curl(f"http://{origin_ip}:{origin_port}/", netns=env.netns)
        return code == 200
    wait_for(origin_up, 15, "origin server in netns", step=0.2)
    n_before = len(open(dump).readlines()) if os.path.exists(dump) else 0
    assert n_before == 0, "root's request should not have been redirected"

    url = f"http://{origin_ip}:{origin_port}/transparent"
    pid, rc, code = env.curl(url, netns=env.netns, uid=NOBODY)
    assert rc == 0 and code == 200, f"curl rc={rc} http={code}\n{env.read_log('mitmdump')}"
    rec = env.dumped(dump, 1)[0]
    assert rec["url"].startswith(f"http://{origin_ip}:{origin_port}/"), rec
    env.assert_attributed(rec, pid, exe=CURL, proc_log=env.read_log("mitmdump"))
    meta = rec["connpid"]
    if "uid" in meta:
        assert meta["uid"] == NOBODY, f"uid {meta['uid']} != {NOBODY}"
    text = env.read_log("mitmdump")
    assert f"-> {origin_ip}:{origin_port} pid={pid}" in text, \
        f"log line should name the original destination:\n{text}"
    env.assert_proxy_healthy("mitmdump", mitm)
    log(f"flow annotated: {rec['comment']}")


def case_restart(env):
    """(3) queryd restarted in the middle: later flows are annotated again,
    the proxy never stops; while queryd is down or hung (SIGSTOP) flows
    pass as unknown within the addon's timeout."""
    env.setup_bpf()
    env.start_queryd()
    origin = env.start_origin()
    mport = free_port()
    mitm, dump = env.start_mitmdump("mitmdump", mport)
    proxy = f"http://127.0.0.1:{mport}"
    n = 0

    def one(tag, expect_found, reason=None):
        nonlocal n
        t0 = time.monotonic()
        pid, rc, code = env.curl(f"http://127.0.0.1:{origin}/{tag}", proxy=proxy)
        took = time.monotonic() - t0
        assert rc == 0 and code == 200, f"{tag}: curl rc={rc} http={code}"
        n += 1
        rec = env.dumped(dump, n)[n - 1]
        assert rec["url"].endswith(tag), rec
        if expect_found:
            env.assert_attributed(rec, pid, exe=CURL, proc_log=env.read_log("mitmdump"))
        else:
            assert rec["connpid"]["status"] == "unknown", rec
            assert "unknown" in rec["comment"], rec
            if reason:
                assert reason in rec["connpid"]["reason"], rec
        env.assert_proxy_healthy("mitmdump", mitm)
        log(f"{tag} ({took:.2f}s): {rec['comment']}")
        return took

    one("before", True)
    env.stop_queryd()            # restart: the addon's connection goes stale
    env.start_queryd()
    one("after-restart", True)
    env.stop_queryd(signal.SIGKILL)   # crash, and stay down for a flow
    one("while-down", False)
    env.start_queryd()
    one("after-crash", True)
    one("again", True)
    # a hung daemon (SIGSTOP): bounded wait (connpid_timeout=0.5), unknown
    env.queryd.send_signal(signal.SIGSTOP)
    try:
        took = one("while-hung", False, reason="timeout")
        assert took < 3.0, f"a hung daemon stalled the flow for {took:.2f}s"
        one("during-backoff-or-hung", False)
    finally:
        env.queryd.send_signal(signal.SIGCONT)
    time.sleep(0.6)  # the addon skips lookups for 0.5 s after a timeout
    one("after-hang", True)


def case_allow_exe(env):
    """(4) connpid_allow_exe: a listed executable passes, another is refused
    (403, then with connpid_block_action=kill a closed connection); an
    unknown flow (queryd stopped) is refused too (fails closed) unless
    connpid_allow_unknown=true."""
    env.setup_bpf()
    env.start_queryd()
    origin = env.start_origin()
    other = os.path.join(env.tmp, "othercurl")   # same program, other executable
    shutil.copy2(CURL, other)
    os.chmod(other, 0o755)
    url = f"http://127.0.0.1:{origin}/"

    mport = free_port()
    mitm, dump = env.start_mitmdump("mitm-403", mport,
                                    extra_set=[f"connpid_allow_exe={CURL}"])
    proxy = f"http://127.0.0.1:{mport}"
    pid, rc, code = env.curl(url + "listed", proxy=proxy)
    assert rc == 0 and code == 200, f"listed exe refused? rc={rc} http={code}"
    pid2, rc, code = env.curl(url + "other", proxy=proxy, exe=other)
    assert code == 403, f"non-listed exe not refused: rc={rc} http={code}"
    recs = env.dumped(dump, 2)
    by = {r["url"].rsplit("/", 1)[1]: r for r in recs}
    env.assert_attributed(by["listed"], pid, exe=CURL)
    env.assert_attributed(by["other"], pid2, comm="othercurl", exe=other)
    assert "refused" in by["other"]["comment"], by["other"]
    text = env.read_log("mitm-403")
    assert "REFUSED" in text and f"pid={pid2} comm=othercurl" in text, text
    # queryd stopped: every flow is unknown, and an allow list refuses it,
    # whether or not the executable is listed (no fail-open bypass)
    env.stop_queryd()
    for n, (tag, exe) in enumerate((("unknown-other", other),
                                    ("unknown-listed", CURL)), start=3):
        _, rc, code = env.curl(url + tag, proxy=proxy, exe=exe)
        assert code == 403, f"unknown flow passed the allow list: rc={rc} http={code}"
        rec = env.dumped(dump, n)[n - 1]
        assert rec["url"].endswith(tag), rec
        assert rec["connpid"]["status"] == "unknown", rec
        assert "refused" in rec["comment"], rec
    text = env.read_log("mitm-403")
    assert "REFUSED: process unknown" in text, text
    env.assert_proxy_healthy("mitm-403", mitm)

    # ... unless the operator opts in
    mport3 = free_port()
    mitm3, dump3 = env.start_mitmdump(
        "mitm-optin", mport3,
        extra_set=[f"connpid_allow_exe={CURL}", "connpid_allow_unknown=true"])
    _, rc, code = env.curl(url + "unknown-optin", proxy=f"http://127.0.0.1:{mport3}",
                           exe=other)
    assert rc == 0 and code == 200, \
        f"unknown flow refused with connpid_allow_unknown: rc={rc} http={code}"
    rec = env.dumped(dump3, 1)[0]
    assert rec["connpid"]["status"] == "unknown", rec
    env.assert_proxy_healthy("mitm-optin", mitm3)

    mport2 = free_port()
    mitm2, dump2 = env.start_mitmdump(
        "mitm-kill", mport2,
        extra_set=["connpid_allow_exe=curl", "connpid_block_action=kill",
                   "connpid_block_unknown=true"])
    proxy2 = f"http://127.0.0.1:{mport2}"
    # queryd still down: unknown, refused with block_unknown
    _, rc, code = env.curl(url + "unknown", proxy=proxy2)
    assert rc != 0 and code != 200, f"unknown flow passed with block_unknown: rc={rc} http={code}"
    env.start_queryd()
    pid, rc, code = env.curl(url + "listed-by-name", proxy=proxy2)
    assert rc == 0 and code == 200, f"listed exe (by basename) refused: rc={rc} http={code}"
    _, rc, code = env.curl(url + "other", proxy=proxy2, exe=other)
    assert rc != 0 and code != 200, f"kill action let the flow through: rc={rc} http={code}"
    recs = env.dumped(dump2, 1)
    assert len(recs) == 1 and recs[0]["url"].endswith("listed-by-name"), recs
    env.assert_proxy_healthy("mitm-kill", mitm2)


CASES = {
    "regular": case_regular,
    "transparent": case_transparent,
    "restart": case_restart,
    "allow-exe": case_allow_exe,
}


def main(argv):
    names = argv or list(CASES)
    for n in names:
        if n not in CASES:
            print(f"unknown case {n!r}; cases: {', '.join(CASES)}", file=sys.stderr)
            return 2
    try:
        paths = check_prereqs()
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        return SKIP
    results = {}
    for n in names:
        env = Env(n, paths)
        log(f"=== {n}: {CASES[n].__doc__.strip().splitlines()[0]}")
        try:
            CASES[n](env)
            results[n] = "PASS"
        except Skip as e:
            results[n] = f"SKIP ({e})"
        except Exception:
            traceback.print_exc()
            for name, _p, _ in env.procs:
                text = env.read_log(name)
                print(f"--- {name} log (last 3000 chars) ---\n{text[-3000:]}", flush=True)
            results[n] = "FAIL"
        finally:
            try:
                env.cleanup()
            except Exception:
                traceback.print_exc()
                results[n] = "FAIL (cleanup)"
        log(f"=== {n}: {results[n]}")
    print("\n".join(f"{k}: {v}" for k, v in results.items()), flush=True)
    if any(v.startswith("FAIL") for v in results.values()):
        return 1
    if all(v.startswith("SKIP") for v in results.values()):
        return SKIP
    return 0


def serve_origin(host, port):
    """Helper mode: the origin HTTP server, run inside the netns."""
    http.server.ThreadingHTTPServer((host, int(port)), OriginHandler).serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--origin"]:
        serve_origin(*sys.argv[2:4])
    sys.exit(main(sys.argv[1:]))

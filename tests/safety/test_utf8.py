#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12, items 7 and 8: every answer is valid UTF-8 JSON, whatever the
bytes a process gave itself, and connpidctl never prints a control
character raw.

A real process, exec'd through a hard link whose name holds odd bytes,
with a command line holding invalid UTF-8 and an ESC sequence, renames
itself (prctl PR_SET_NAME) to b"\\xff\\xfe\\x1b[2K\\r" and makes a TCP and a
UDP flow in a private cgroup and pin dir with connpid-queryd running.
lookup, recent, watch, history, stats and status lines must decode as
strict UTF-8 (bytes.decode("utf-8")) and strict JSON (no raw controls,
no NaN); connpidctl's tables hold no raw ESC/CR and show them as \\x1b,
\\x0d; its --json output is valid JSON. Requests with NaN, Infinity or
1e999, integers out of range (pid 4294967297, dport 70000, limit -1),
doubles where integers go, or bytes that are not UTF-8, get an error and
the connection keeps working.

Run with --workload ... it is the odd process itself (no harness there).
"""
import json
import os
import select
import socket
import subprocess
import sys
import time

ODD_COMM = b"\xff\xfe\x1b[2K\r"
ODD_ARG = b"arg\xff\xfe\xc0\xaf\xed\xa0\x80\x1b]0;owned\x07\r"
ODD_EXE_NAME = b"py\xff\xfe \x1b[31m\xc2\x9b odd"


def workload(cgroup_dir):
    """The odd process: into the cgroup, renamed, then one flow per line
    on stdin ("tcp PORT" / "udp PORT"), its source port on stdout."""
    import ctypes

    with open(os.path.join(cgroup_dir, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(15, ODD_COMM, 0, 0, 0) != 0:   # PR_SET_NAME
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NAME)")
    keep = []
    print("ready %d" % os.getpid(), flush=True)
    for line in sys.stdin:
        what, _, port = line.strip().partition(" ")
        if what == "tcp":
            s = socket.create_connection(("127.0.0.1", int(port)), timeout=10)
        elif what == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("127.0.0.1", int(port)))
            s.send(b"connpid-utf8-test")
        else:
            return
        keep.append(s)
        print(s.getsockname()[1], flush=True)


if len(sys.argv) > 2 and sys.argv[1] == "--workload":
    workload(sys.argv[2])
    sys.exit(0)

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "queryd"))
from qdharness import Client, binary, check, check_eq, log, main  # noqa: E402


class RawClient(Client):
    """A query socket client that hands out each answer line as bytes,
    so that a line that is not UTF-8 is seen as such."""

    def __init__(self, path, timeout=15.0):
        super().__init__(path, timeout)

    def raw_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(1 << 20)
            check(chunk, "connection closed; got so far %r" % self.buf[:200])
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def line(self, what):
        return strict_json(self.raw_line(), what)

    def request(self, obj, what=None):
        self.send_raw(json.dumps(obj).encode() + b"\n")
        return self.line(what or obj.get("op"))


def no_constant(name):
    raise ValueError("non-finite number %s" % name)


def finite_float(text):
    v = float(text)
    if v in (float("inf"), float("-inf")):
        raise ValueError("non-finite number %s" % text)
    return v


def strict_json(raw, what):
    """bytes -> object: strict UTF-8, strict JSON (Python refuses raw
    control characters in strings by default; NaN, Infinity and 1e999
    refused here)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, "%s: answer is not UTF-8 (%s): %r" % (what, e, raw[:300]))
    try:
        return json.loads(text, parse_constant=no_constant, parse_float=finite_float)
    except ValueError as e:
        check(False, "%s: answer is not strict JSON (%s): %r" % (what, e, raw[:300]))


def check_terminal_safe(out, what):
    """Table output: UTF-8, and no byte a terminal would act on."""
    try:
        text = out.decode("utf-8")
    except UnicodeDecodeError as e:
        check(False, "%s: output is not UTF-8 (%s): %r" % (what, e, out[:300]))
    bad = [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
           or c in "\u202e\u202d\u2066\u2067\u2068\u2069"]
    check(not bad, "%s: raw control characters %r in %r" % (what, bad, out[:400]))
    return text


def make_odd_exe(env):
    """A hard link (or copy) of the system python under a name with odd bytes."""
    real = os.path.realpath("/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
    path = os.path.join(os.fsencode(env.tmp), ODD_EXE_NAME)
    try:
        os.link(real, path)
    except OSError:
        import shutil
        shutil.copy2(real, path)
    return path


class OddProcess:
    def __init__(self, env):
        exe = make_odd_exe(env)
        args = [exe, os.fsencode(os.path.abspath(__file__)), b"--workload", os.fsencode(env.cgroup), ODD_ARG]
        self.proc = env.track(subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE))
        line = self.readline(30)
        check(line.startswith(b"ready "), "odd workload did not start: %r" % line)
        self.pid = int(line.split()[1])
        with open("/proc/%d/comm" % self.pid, "rb") as f:
            check_eq(f.read().rstrip(b"\n"), ODD_COMM, "the kernel holds the odd comm")

    def readline(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        check(r, "odd workload silent for %ds" % timeout)
        return self.proc.stdout.readline()

    def flow(self, what, port):
        self.proc.stdin.write(b"%s %d\n" % (what.encode(), port))
        self.proc.stdin.flush()
        return int(self.readline(30))


ODD_COMM_DECODED = "\ufffd\ufffd\x1b[2K\r"


def check_flow(flow, pid, what):
    check_eq(flow.get("pid"), pid, "%s: pid" % what)
    check_eq(flow.get("comm"), ODD_COMM_DECODED, "%s: comm, each invalid byte as U+FFFD" % what)


def check_protocol_answers(env, odd, sport, lport, usport, uport, watcher):
    cl = RawClient(env.sock)
    try:
        ans = cl.request({"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": sport, "dport": lport})
        check(ans.get("found"), "tcp lookup found", ans)
        check_flow(ans["flow"], odd.pid, "lookup tcp")
        cmdline = ans["flow"].get("cmdline")
        check(isinstance(cmdline, list) and any("\ufffd" in a for a in cmdline),
              "lookup: cmdline with U+FFFD for the invalid bytes", cmdline)
        exe = ans["flow"].get("exe")
        check(isinstance(exe, str) and exe.endswith("py\ufffd\ufffd \x1b[31m\x9b odd"),
              "lookup: exe keeps its valid characters, U+FFFD for the rest", exe)
        ans = cl.request({"op": "lookup", "proto": "udp", "dst": "127.0.0.1", "sport": usport, "dport": uport})
        check(ans.get("found"), "udp lookup found", ans)
        check_flow(ans["flow"], odd.pid, "lookup udp")

        ans = cl.request({"op": "recent", "limit": 100, "filter": {"pid": odd.pid}})
        flows = ans.get("flows") or []
        check(len(flows) >= 2, "recent: both odd flows", ans)
        for f in flows:
            check_flow(f, odd.pid, "recent")

        ans = cl.request({"op": "history", "limit": 100, "filter": {"pid": odd.pid}})
        check(ans.get("ok"), "history ok", ans)
        rows = ans.get("flows") or []
        check(len(rows) >= 2, "history: both odd flows", ans)
        for r in rows:
            check_eq(r.get("comm"), ODD_COMM_DECODED, "history: comm")
        # what a client gets by naming the comm it was shown
        ans = cl.request({"op": "history", "limit": 5, "filter": {"comm": ODD_COMM_DECODED}})
        check(ans.get("ok"), "history by a comm with U+FFFD answers", ans)

        for op in ("stats", "status", "ping"):
            ans = cl.request({"op": op})
            check(ans.get("ok"), "%s ok" % op, ans)
    finally:
        cl.close()

    # the watch saw the flow as it happened: its line is valid too
    ev = watcher.line("watch event")
    check_eq(ev.get("event"), "flow", "watch event")
    check_flow(ev["flow"], odd.pid, "watch")


def check_numbers(env, sport, lport):
    """Non-finite numbers and integers out of range: invalid_argument, no
    NaN ever written, the connection keeps working."""
    good = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": sport, "dport": lport}
    cases = [
        (b'{"op":"ping","id":NaN}', "invalid_argument"),
        (b'{"op":"ping","id":Infinity}', "invalid_argument"),
        (b'{"op":"ping","id":-Infinity}', "invalid_argument"),
        (b'{"op":"ping","id":1e999}', "invalid_argument"),
        (b'{"op":"ping","id":[1,{"x":-1e999}]}', "invalid_argument"),
        (b'{"op":"recent","limit":NaN}', "invalid_argument"),
        (b'{"op":"lookup","proto":"tcp","dst":"127.0.0.1","sport":1,"dport":2,"at":1e999}', "invalid_argument"),
        (json.dumps(dict(good, at=-1)).encode(), "invalid_argument"),
        (json.dumps(dict(good, dport=70000)).encode(), "invalid_argument"),
        (json.dumps(dict(good, sport=4294967297)).encode(), "invalid_argument"),
        (json.dumps(dict(good, dport=443.5)).encode(), "invalid_argument"),
        (json.dumps(dict(good, proto=4294967302)).encode(), "invalid_argument"),   # 2^32 + 6 (tcp)
        (b'{"op":"history","filter":{"pid":4294967297}}', "invalid_argument"),
        (b'{"op":"history","filter":{"pid":-1}}', "invalid_argument"),
        (b'{"op":"history","filter":{"pid":1.5}}', "invalid_argument"),
        (b'{"op":"history","filter":{"pid":99999999999999999999}}', "invalid_argument"),
        (b'{"op":"history","filter":{"dport":70000}}', "invalid_argument"),
        (b'{"op":"history","filter":{"since":-5}}', "invalid_argument"),
        (b'{"op":"history","limit":-1}', "invalid_argument"),
        (b'{"op":"history","limit":2.0}', "invalid_argument"),
        (b'{"op":"history","limit":18446744073709551617}', "invalid_argument"),
        (b'{"op":"recent","limit":-1}', "invalid_argument"),
        (b'{"op":"recent","limit":1.5}', "invalid_argument"),
        (b'{"op":"recent","limit":4294967297}', "invalid_argument"),
        # bytes that are not UTF-8 are not JSON
        (b'{"op":"ping","id":"\xff\xfe"}', "bad_json"),
        (b'{"op":"\xc0\xaf"}', "bad_json"),
        (b'{"op":"ping","id":"\xed\xa0\x80"}', "bad_json"),
    ]
    cl = RawClient(env.sock)
    try:
        for i, (raw, code) in enumerate(cases):
            cl.send_raw(raw + b"\n")
            line = cl.raw_line()
            ans = strict_json(line, "answer to %r" % raw)
            check_eq(ans.get("ok"), False, "ok for %r" % raw)
            check_eq(ans["error"]["code"], code, "error code for %r (%r)" % (raw, ans["error"].get("message")))
            if b'"id":' in raw and code == "invalid_argument":
                check(ans.get("id") in (None, [1, {"x": None}]), "a non-finite id comes back null", ans)
            pong = cl.request({"op": "ping", "id": i})
            check_eq((pong.get("pong"), pong.get("id")), (True, i), "the connection still works after %r" % raw)
        # a finite id comes back as it was sent
        cl.send_raw(b'{"op":"ping","id":1.25e3}\n')
        check_eq(cl.line("ping 1.25e3").get("id"), 1250.0, "a finite double id echoed")
        # a long op quoted in the error is cut on a character, not inside one
        ans = cl.request({"op": "\u00e9" * 40}, "long op")
        msg = ans["error"]["message"]
        check("\u00e9" * 32 in msg and "\ufffd" not in msg, "64-byte quote cut on a character", msg)
        ans = cl.request(good, "lookup after the bad numbers")
        check(ans.get("found"), "lookup still answers on that connection", ans)
    finally:
        cl.close()


def ctl_out(env, what, *args):
    r = subprocess.run([binary("CONNPIDCTL"), "--socket", env.sock, "--pin-dir", env.pin_dir] + list(args),
                       capture_output=True, timeout=30)
    check(r.returncode in (0, 1), "%s: connpidctl rc %d: %r" % (what, r.returncode, r.stderr[-400:]))
    check_terminal_safe(r.stderr, what + " (stderr)")
    return r.stdout


def check_ctl(env, odd, sport, lport, usport, uport):
    pid = str(odd.pid)
    tables = {
        "lookup tcp": ["lookup", "127.0.0.1", str(sport), str(lport)],
        "lookup udp": ["--protocol", "udp", "lookup", "127.0.0.1", str(usport), str(uport)],
        "lookup --direct": ["--direct", "lookup", "127.0.0.1", str(sport), str(lport)],
        "recent": ["recent", "--pid", pid],
        "history": ["history", "--pid", pid],
        "status": ["status"],
        "stats": ["stats"],
    }
    for what, args in tables.items():
        text = check_terminal_safe(ctl_out(env, what, *args), "connpidctl " + what)
        if what.startswith("lookup"):
            log("connpidctl %s:\n%s" % (what, text))
        if what not in ("status", "stats"):
            check("\\x1b[2K\\x0d" in text, "connpidctl %s shows the ESC and CR as escapes" % what, text)
        if what == "lookup --direct":
            # straight from /proc: the raw bytes, shown as bytes
            check("\\xff\\xfe\\x1b[2K\\x0d" in text, "direct: invalid bytes as \\xHH", text)
            check("\\x1b[31m\\u009b odd" in text, "direct: the exe's ESC and C1 CSI escaped", text)
        if what == "lookup tcp":
            check("\\x1b[31m\\u009b odd" in text, "exe escaped", text)
    for what, args in tables.items():
        out = ctl_out(env, what + " --json", "--json", *args)
        lines = [ln for ln in out.split(b"\n") if ln]
        check(lines, "connpidctl --json %s printed nothing" % what)
        for ln in lines:
            obj = strict_json(ln, "connpidctl --json " + what)
            if what.startswith("lookup") and obj.get("found"):
                comm = obj.get("flow", obj).get("comm")
                check_eq(comm, ODD_COMM_DECODED, "connpidctl --json %s comm" % what)


def ctl_watch_line(env, odd, lport):
    """connpidctl watch prints the odd flow escaped."""
    p = env.track(subprocess.Popen([binary("CONNPIDCTL"), "--socket", env.sock, "watch", "--dport", str(lport)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    try:
        header = b""
        deadline = time.monotonic() + 10
        while b"\n" not in header and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                header += os.read(p.stdout.fileno(), 4096)
        time.sleep(0.3)   # the watch request reaches the daemon
        odd.flow("tcp", lport)
        out = header
        deadline = time.monotonic() + 15
        while out.count(b"\n") < 2 and time.monotonic() < deadline:
            r, _, _ = select.select([p.stdout], [], [], 1)
            if r:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        check(out.count(b"\n") >= 2, "connpidctl watch printed the flow", out)
        text = check_terminal_safe(out, "connpidctl watch")
        check("\\x1b[2K\\x0d" in text, "connpidctl watch escapes the comm", text)
    finally:
        p.kill()
        p.wait(timeout=10)


def test(env):
    srv, lport = env.listener()
    uport = env.free_udp_port()
    d = env.daemon()
    d.wait_ready()

    watcher = RawClient(env.sock, timeout=20)
    ans = watcher.request({"op": "watch", "filter": {"dport": lport}})
    check(ans.get("watching"), "watch started", ans)

    odd = OddProcess(env)
    sport = odd.flow("tcp", lport)
    usport = odd.flow("udp", uport)
    log("odd process %d: tcp %d -> %d, udp %d -> %d" % (odd.pid, sport, lport, usport, uport))

    check_protocol_answers(env, odd, sport, lport, usport, uport, watcher)
    watcher.close()
    check_numbers(env, sport, lport)
    check_ctl(env, odd, sport, lport, usport, uport)
    ctl_watch_line(env, odd, lport)
    check(d.alive(), "daemon alive", d.log())
    check_eq(d.stop(), 0, "queryd exit on SIGTERM (log %s)" % d.log())


if __name__ == "__main__":
    main(test, "utf8")

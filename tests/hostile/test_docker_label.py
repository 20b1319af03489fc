#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, strings from outside: a container's name, image and labels
are chosen by whoever builds or runs it. A MOCK Docker Engine API (a
Python HTTP server on a private unix socket, not a real dockerd: it
answers /containers/<id>/json and holds /events open) describes the
container with a 1 MB name, a 1 MB image, a 1 MB compose project label and
2000 other labels of 256 bytes; queryd --docker-socket points at it. A
workload in a cgroup shaped like a container under a container manager's
hierarchy (<test cgroup>/system.slice/docker-<id>.scope: trusted, see
queryd/cgroup-names.c) makes 200 UDP flows.

Each flow of `recent` is < 16 KiB (name, image, compose project cut at
512 bytes on a UTF-8 boundary; other labels not kept), the answer is
bounded, queryd's RSS < 128 MB, and pings stay fast. Before, the whole
label was cached and repeated in every flow: recent limit 200 -> 200 MB."""
import http.server
import json
import os
import secrets
import socket
import socketserver
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import (Watch, check, check_eq, log, main, qdharness, wait_until)  # noqa: E402

FLOWS = 200
BIG = 1000 * 1000
FLOW_MAX = 16 * 1024
STR_CAP = 512


class MockEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True


def make_handler(cid, stop):
    # "é" is two bytes: a cut at 512 bytes would split one, unless on a boundary
    body = json.dumps({
        "Id": cid,
        "Name": "/" + "n" + "é" * (BIG // 2),
        "Config": {"Image": "i" * BIG,
                   "Labels": dict({"com.docker.compose.project": "p" + "é" * (BIG // 2)},
                                  **{"label.%d" % i: "v" * 256 for i in range(1000)})},
    }, ensure_ascii=False).encode()   # UTF-8 as dockerd writes it; 3.3 MB, under queryd's 4 MiB body cap

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def address_string(self):
            return "unix"

        def do_GET(self):
            if self.path.startswith("/v1.41/containers/%s/json" % cid):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            elif self.path.startswith("/v1.41/events"):
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                self.wfile.flush()
                stop.wait(120)   # a stream with nothing to say
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

    return Handler


def test(env):
    cid = secrets.token_hex(32)
    stop = threading.Event()
    dsock = os.path.join(env.tmp, "docker.sock")
    srv = MockEngine(dsock, make_handler(cid, stop))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        run(env, cid, dsock)
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


def run(env, cid, dsock):
    d = env.daemon(extra=["--no-store", "--docker-socket", dsock])
    d.wait_ready()
    leaf = os.path.join(env.cgroup, "system.slice", "docker-%s.scope" % cid)
    os.makedirs(leaf)
    wl = subprocess.Popen([sys.executable, qdharness.WORKLOAD, "serve", "--cgroup", leaf,
                           "--comm", "ctr-label"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    env.track(wl)
    pid = qdharness.json_command(wl, {"cmd": "hello"}, 30)["pid"]
    qdharness.json_command(wl, {"cmd": "udpflood", "host": "127.0.0.1", "base": 20000, "n": FLOWS}, 60)

    def recent(c):
        c.send({"op": "recent", "limit": FLOWS, "filter": {"pid": pid}})
        while b"\n" not in c.buf:
            chunk = c.sock.recv(1 << 20)
            check(chunk, "queryd closed the connection")
            c.buf += chunk
        line, c.buf = c.buf.split(b"\n", 1)
        return len(line), json.loads(line)

    with Watch(env, d) as w, env.client(timeout=60) as c:
        def described():
            _, ans = recent(c)
            fl = ans.get("flows") or []
            state["last"] = (len(fl), sorted({str((f.get("container") or {}).get("docker")) for f in fl}))
            return len(fl) >= FLOWS and all((f.get("container") or {}).get("docker") == "ok" for f in fl)
        state = {}
        try:
            wait_until(described, timeout=30, what="%d flows with the container described (docker ok)" % FLOWS)
        finally:
            log("flows and docker states seen: %r" % (state.get("last"),))
        size, ans = recent(c)
    w.report("%d flows of a container with 1 MB labels" % FLOWS)
    flows = ans["flows"]
    sizes = [len(json.dumps(f, ensure_ascii=False).encode()) for f in flows]
    ctr = flows[0]["container"]
    log("answer %d bytes for %d flows, largest flow %d bytes; name %d, image %d, compose_project %d bytes"
        % (size, len(flows), max(sizes), len(ctr.get("name", "").encode()), len(ctr.get("image", "").encode()),
           len(ctr.get("compose_project", "").encode())))
    check_eq(ctr.get("id"), cid, "container id")
    check(max(sizes) < FLOW_MAX, "a flow is %d bytes, not < %d" % (max(sizes), FLOW_MAX))
    for k in ("name", "image", "compose_project"):
        v = ctr.get(k) or ""
        check(v and len(v.encode()) <= STR_CAP, "container %s is %d bytes, cap %d" % (k, len(v.encode()), STR_CAP))
        check("\ufffd" not in v, "container %s was cut inside a character" % k)
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "dockerlabel")

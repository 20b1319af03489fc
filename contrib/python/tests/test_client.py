#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Unit tests for connpid_client.py against a MOCK server.

The server here is a tiny fake speaking the JSON-lines protocol of
tests/SPEC-interfaces.md, written only to exercise the client's own logic
(id matching, timeouts, reconnects, error mapping). It is NOT connpid-queryd;
the real daemon is tested by tests/ and by test_mitmproxy_e2e.py.

Standard library only:  python3 -m unittest contrib/python/tests/test_client.py
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from connpid_client import (  # noqa: E402
    ConnpidClient,
    ConnpidError,
    ConnpidProtocolError,
    ConnpidTimeout,
    ConnpidUnavailable,
)

FLOW = {
    "proto": "tcp", "family": "ipv4", "src": "127.0.0.1", "sport": 40000,
    "dst": "127.0.0.1", "dport": 8080, "pid": 4242, "tid": 4242, "uid": 0,
    "gid": 0, "user": "root", "comm": "curl", "exe": "/usr/bin/curl",
    "cmdline": ["curl", "-x", "x"], "cgroup_id": 1, "cgroup": "/t",
    "start_time": 1.0, "first_seen": 2.0, "last_seen": 2.0, "alive": True,
    "pid_reused": False, "seen": "map",
}

# connpid(7)'s FLOW member names (queryd/flow-view.c), for "fields"
FLOW_MEMBERS = frozenset("""proto direction family src sport dst dport community_id pid tid
    uid gid user comm exe cmdline ppid cgroup_id cgroup unit slice user_unit pod_uid container
    netns socket_cookie start_time boot_id first_seen last_seen alive pid_reused previous_pid
    exe_source ancestors creator listener domain seen in_map""".split())


def narrow(flow, req):
    """flow with the members req's "fields" names only, as the daemon
    answers; None when "fields" is no non-empty list of member names."""
    if "fields" not in req:
        return flow
    f = req["fields"]
    if not isinstance(f, list) or not f or not all(isinstance(x, str) and x in FLOW_MEMBERS for x in f):
        return None
    return {k: v for k, v in flow.items() if k in f}


class MockQueryd:
    """Fake connpid-queryd (MOCK, for client unit tests only).

    behaviour(req) -> list of raw lines (bytes, without newline) to send,
    or None for the default answer. Hooks let a test delay, corrupt or
    drop answers.
    """

    CLOSE = object()

    def __init__(self, path):
        self.path = path
        self.requests = []
        self.connections = 0
        self.delay = {}          # op -> seconds to sleep before answering
        self.override = None     # callable(req) -> list[bytes] | None
        self.close_after = None  # close the connection after N answers on it
        self.watch_lines = None  # raw lines a watch sends after its ack
        self._stop = threading.Event()
        self._conns = []
        self._lock = threading.Lock()
        self.start()

    # -- lifecycle

    def start(self):
        self._stop.clear()
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.path)
        self.lsock.listen(16)
        self.lsock.settimeout(0.05)
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def stop(self):
        """Like a daemon exit: close listener and every client connection."""
        self._stop.set()
        self.thread.join(5)
        self.lsock.close()
        with self._lock:
            for c in self._conns:
                try:
                    c.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                c.close()
            self._conns.clear()
        if os.path.exists(self.path):
            os.unlink(self.path)

    def restart(self):
        self.stop()
        self.start()

    # -- serving

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self._conns.append(c)
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _answer(self, req):
        op = req.get("op")
        rid = req.get("id")
        if op == "ping":
            a = {"ok": True, "pong": True, "version": "0.1.0"}
        elif op == "lookup" and narrow(FLOW, req) is None:
            a = {"ok": False, "error": {"code": "invalid_argument",
                                        "message": "unknown field in \"fields\""}}
        elif op == "lookup":
            if req.get("sport") == FLOW["sport"]:
                a = {"ok": True, "found": True, "flow": narrow(dict(FLOW, dst=req["dst"]), req)}
            else:
                a = {"ok": True, "found": False}
        elif op == "recent":
            a = {"ok": True, "flows": [narrow(FLOW, req)] * min(int(req.get("limit", 50)), 3)}
        elif op == "stats":
            a = {"ok": True, "stats": {"events": 7, "clients": 1}}
        elif op == "status":
            a = {"ok": True, "status": {"pins": "ok"}}
        elif op == "bogus":
            a = {"ok": False, "error": {"code": "unknown_op",
                                        "message": "unknown op 'bogus'"}}
        else:
            a = {"ok": False, "error": {"code": "bad_request", "message": "?"}}
        if rid is not None:
            a["id"] = rid
        return [json.dumps(a).encode()]

    def _serve(self, c):
        buf = b""
        answered = 0
        c.settimeout(0.05)
        while not self._stop.is_set():
            try:
                chunk = c.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                try:
                    req = json.loads(line)
                except ValueError:
                    c.sendall(b'{"ok":false,"error":{"code":"bad_json","message":"x"}}\n')
                    continue
                self.requests.append(req)
                if req.get("op") == "watch":
                    self._watch(c, req)
                    return
                time.sleep(self.delay.get(req.get("op"), 0))
                lines = self.override(req) if self.override else None
                if lines is None:
                    lines = self._answer(req)
                if lines is self.CLOSE:  # read the request, close, no answer
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                    return
                try:
                    for ln in lines:
                        c.sendall(ln + b"\n")
                except OSError:
                    return
                answered += 1
                if self.close_after is not None and answered >= self.close_after:
                    c.shutdown(socket.SHUT_RDWR)
                    c.close()
                    return

    def _watch(self, c, req):
        ack = {"ok": True, "watching": True, "id": req.get("id")}
        c.sendall(json.dumps(ack).encode() + b"\n")
        if self.watch_lines is not None:
            try:
                for ln in self.watch_lines:
                    c.sendall(ln + b"\n")
            except OSError:
                return
            while not self._stop.is_set():
                time.sleep(0.02)
            return
        for i in range(3):
            ev = {"event": "flow", "flow": dict(FLOW, sport=50000 + i)}
            c.sendall(json.dumps(ev).encode() + b"\n")
        c.sendall(b'{"event":"something_else"}\n')
        ev = {"event": "flow", "flow": dict(FLOW, sport=50003)}
        c.sendall(json.dumps(ev).encode() + b"\n")
        while not self._stop.is_set():
            time.sleep(0.02)


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="connpid-client-test-")
        self.path = os.path.join(self.dir, "q.sock")
        self.srv = MockQueryd(self.path)
        self.client = ConnpidClient(self.path, timeout=1.0)

    def tearDown(self):
        self.client.close()
        self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    # basic ops

    def test_ping(self):
        a = self.client.ping()
        self.assertTrue(a["ok"])
        self.assertEqual(a["version"], "0.1.0")

    def test_lookup_found_and_not_found(self):
        f = self.client.lookup("tcp", "127.0.0.1", 40000, 8080)
        self.assertEqual(f["pid"], 4242)
        self.assertEqual(f["comm"], "curl")
        self.assertIsNone(self.client.lookup("tcp", "127.0.0.1", 40001, 8080))
        req = self.srv.requests[-1]
        self.assertEqual(req, {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1",
                               "sport": 40001, "dport": 8080, "id": req["id"]})

    def test_lookup_normalizes_arguments(self):
        self.client.lookup(6, "::ffff:10.1.2.3", "40000", 443)
        req = self.srv.requests[-1]
        self.assertEqual((req["proto"], req["dst"], req["sport"]), ("tcp", "10.1.2.3", 40000))
        self.client.lookup("UDP", "2001:db8::1", 1, 53)
        self.assertEqual(self.srv.requests[-1]["proto"], "udp")
        for bad in (("icmp", "1.2.3.4", 1, 1), ("tcp", "nope", 1, 1),
                    ("tcp", "1.2.3.4", 70000, 1)):
            with self.assertRaises(ValueError):
                self.client.lookup(*bad)

    def test_lookup_scope_members(self):
        """src (folded like dst), netns and direction are sent as the
        lookup members; direction only when inbound; bad ones never leave."""
        self.client.lookup("tcp", "10.0.0.5", 40000, 3128, src="::ffff:172.17.0.2",
                           netns=4026532001)
        req = self.srv.requests[-1]
        self.assertEqual((req["src"], req["netns"]), ("172.17.0.2", 4026532001))
        self.assertNotIn("direction", req)
        self.client.lookup("tcp", "192.0.2.7", 8080, 51000, direction="inbound")
        req = self.srv.requests[-1]
        self.assertEqual(req["direction"], "inbound")
        self.assertNotIn("src", req)
        self.assertNotIn("netns", req)
        self.client.lookup("tcp", "192.0.2.7", 8080, 51000, direction="outbound")
        self.assertNotIn("direction", self.srv.requests[-1])
        n = len(self.srv.requests)
        for bad in (dict(src="nope"), dict(src="::1"), dict(netns=0), dict(netns=1 << 32),
                    dict(netns="x"), dict(netns=True), dict(direction="sideways")):
            with self.assertRaises(ValueError, msg=repr(bad)):
                self.client.lookup("tcp", "10.0.0.5", 1, 2, **bad)
        self.assertEqual(len(self.srv.requests), n, "a bad member was sent")

    def test_lookup_fields(self):
        """fields is sent as the lookup's "fields" (as given, in order) and
        the answer has those members only; not sent without it; names are
        checked only as strings (the daemon's invalid_argument surfaces);
        anything else never leaves."""
        f = self.client.lookup("tcp", "127.0.0.1", 40000, 8080, fields=["pid", "exe", "comm"])
        self.assertEqual(f, {"pid": 4242, "exe": "/usr/bin/curl", "comm": "curl"})
        self.assertEqual(self.srv.requests[-1]["fields"], ["pid", "exe", "comm"])
        f = self.client.lookup("tcp", "127.0.0.1", 40000, 8080, fields=("pid",))
        self.assertEqual(f, {"pid": 4242})
        self.client.lookup("tcp", "127.0.0.1", 40000, 8080)
        self.assertNotIn("fields", self.srv.requests[-1])
        with self.assertRaises(ConnpidProtocolError) as cm:
            self.client.lookup("tcp", "127.0.0.1", 40000, 8080, fields=["pid", "no_such"])
        self.assertEqual(cm.exception.code, "invalid_argument")
        self.assertEqual(self.srv.requests[-1]["fields"], ["pid", "no_such"])
        self.assertEqual(self.client.ping()["version"], "0.1.0")  # still in step
        flows = self.client.recent(2, fields=["pid", "comm"])
        self.assertEqual(flows, [{"pid": 4242, "comm": "curl"}] * 2)
        self.assertEqual(self.srv.requests[-1]["fields"], ["pid", "comm"])
        n = len(self.srv.requests)
        for bad in ("pid", [], ["pid", 1], [""], ["x" * 64], ["\ud800"], {"pid": 1},
                    ["pid"] * 65):
            with self.assertRaises(ValueError, msg=repr(bad)):
                self.client.lookup("tcp", "127.0.0.1", 40000, 8080, fields=bad)
            with self.assertRaises(ValueError, msg=repr(bad)):
                self.client.recent(1, fields=bad)
        self.assertEqual(len(self.srv.requests), n, "a bad fields was sent")

    def test_watch_fields(self):
        w = self.client.watch(timeout=1, fields=["pid", "sport"])
        next(w)
        w.close()
        req = [r for r in self.srv.requests if r.get("op") == "watch"][-1]
        self.assertEqual(req["fields"], ["pid", "sport"])
        with self.assertRaises(ValueError):
            next(self.client.watch(timeout=1, fields="pid"))

    def test_lookup_all_candidates(self):
        self.srv.override = lambda req: [json.dumps({
            "ok": True, "found": True, "id": req["id"], "flow": {"pid": 1},
            "candidates": [{"pid": 2, "in_map": False}, {"pid": 3, "in_map": False}]}).encode()]
        flow, cands = self.client.lookup_all("tcp", "10.0.0.5", 1, 2, src="10.0.0.9")
        self.assertEqual((flow["pid"], [c["pid"] for c in cands]), (1, [2, 3]))
        self.srv.override = lambda req: [json.dumps({
            "ok": True, "found": True, "id": req["id"], "flow": {"pid": 1},
            "candidates": [1, 2]}).encode()]
        with self.assertRaises(ConnpidProtocolError) as cm:
            self.client.lookup("tcp", "10.0.0.5", 1, 2)
        self.assertEqual(cm.exception.code, "bad_answer")
        self.srv.override = None

    def test_recent_stats_status(self):
        flows = self.client.recent(limit=2, comm="curl", dport=8080)
        self.assertEqual(len(flows), 2)
        req = self.srv.requests[-1]
        self.assertEqual(req["limit"], 2)
        self.assertEqual(req["filter"], {"comm": "curl", "dport": 8080})
        self.client.recent()
        self.assertNotIn("filter", self.srv.requests[-1])
        self.assertEqual(self.client.stats()["events"], 7)
        self.assertEqual(self.client.status()["pins"], "ok")

    # ids

    def test_ids_increment_and_persistent_connection(self):
        for _ in range(5):
            self.client.ping()
        ids = [r["id"] for r in self.srv.requests]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(len(set(ids)), 5)
        self.assertEqual(self.srv.connections, 1)

    def test_stale_answer_is_skipped(self):
        # a late answer to an older id arrives before ours: skipped
        def ov(req):
            if req["op"] == "ping":
                return [json.dumps({"ok": True, "id": req["id"] - 1, "old": 1}).encode(),
                        json.dumps({"ok": True, "id": req["id"], "pong": True}).encode()]
            return None
        self.srv.override = ov
        a = self.client.ping()
        self.assertTrue(a["pong"])
        self.assertNotIn("old", a)

    def test_foreign_id_is_protocol_error(self):
        self.srv.override = lambda req: [json.dumps({"ok": True, "id": "zzz"}).encode()]
        with self.assertRaises(ConnpidProtocolError) as cm:
            self.client.ping()
        self.assertEqual(cm.exception.code, "bad_answer")
        self.assertFalse(self.client.connected)

    def test_concurrent_threads_get_their_own_answers(self):
        errors = []

        def worker(sport):
            try:
                for _ in range(20):
                    f = self.client.lookup("tcp", "127.0.0.1", sport, 80)
                    if sport == 40000:
                        assert f and f["pid"] == 4242, f
                    else:
                        assert f is None, f
            except Exception as e:  # pragma: no cover
                errors.append(e)
        ts = [threading.Thread(target=worker, args=(p,)) for p in (40000, 1, 40000, 2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join(10)
        self.assertEqual(errors, [])

    # timeouts

    def test_timeout_drops_connection_and_late_answer_is_not_misread(self):
        self.srv.delay["stats"] = 0.4
        with self.assertRaises(ConnpidTimeout):
            self.client.stats(timeout=0.1)
        self.assertFalse(self.client.connected)
        # the late stats answer must not be taken as the ping answer
        a = self.client.ping()
        self.assertTrue(a.get("pong"))
        self.assertNotIn("stats", a)
        self.assertEqual(self.srv.connections, 2)

    def test_default_timeout_from_constructor(self):
        c = ConnpidClient(self.path, timeout=0.1)
        self.srv.delay["ping"] = 0.5
        t0 = time.monotonic()
        with self.assertRaises(ConnpidTimeout):
            c.ping()
        self.assertLess(time.monotonic() - t0, 0.4)
        c.close()

    def test_timeout_is_a_connpid_error(self):
        self.assertTrue(issubclass(ConnpidTimeout, ConnpidError))
        self.assertTrue(issubclass(ConnpidUnavailable, ConnpidError))
        self.assertTrue(issubclass(ConnpidProtocolError, ConnpidError))

    # availability / reconnect

    def test_unavailable_when_no_socket(self):
        c = ConnpidClient(os.path.join(self.dir, "nope.sock"), timeout=0.2)
        with self.assertRaises(ConnpidUnavailable):
            c.ping()

    def test_unavailable_while_server_down_then_back(self):
        self.client.ping()
        self.srv.stop()
        with self.assertRaises(ConnpidUnavailable):
            self.client.ping()
        self.srv.start()
        self.assertTrue(self.client.ping()["pong"])

    def test_reconnect_after_server_restart(self):
        self.assertEqual(self.client.lookup("tcp", "127.0.0.1", 40000, 80)["pid"], 4242)
        self.srv.restart()
        # same client object, no error: stale connection detected, reconnected
        self.assertEqual(self.client.lookup("tcp", "127.0.0.1", 40000, 80)["pid"], 4242)
        self.assertEqual(self.srv.connections, 2)
        self.assertTrue(self.client.connected)

    def test_reconnect_once_when_peer_closes_after_request(self):
        # the daemon reads the request and closes without answering (it
        # was restarting): the client retries once on a new connection
        state = {"n": 0}

        def ov(req):
            state["n"] += 1
            return self.srv.CLOSE if state["n"] == 2 else None
        self.srv.override = ov
        self.client.ping()
        a = self.client.ping()  # n=2: closed without answer -> retried (n=3)
        self.assertTrue(a["pong"])
        self.assertEqual(state["n"], 3)
        self.assertEqual(self.srv.connections, 2)

    def test_no_endless_retry(self):
        self.client.ping()
        self.srv.override = lambda req: self.srv.CLOSE
        with self.assertRaises(ConnpidUnavailable):
            self.client.ping()
        self.assertEqual(len(self.srv.requests), 3)  # first ping + 2 attempts

    def test_fresh_connection_closed_is_not_retried(self):
        self.srv.override = lambda req: self.srv.CLOSE
        with self.assertRaises(ConnpidUnavailable):
            self.client.ping()
        self.assertEqual(len(self.srv.requests), 1)

    # server errors and malformed lines

    def test_server_error_maps_to_protocol_error(self):
        with self.assertRaises(ConnpidProtocolError) as cm:
            self.client.request("bogus")
        self.assertEqual(cm.exception.code, "unknown_op")
        self.assertIn("bogus", cm.exception.message)
        # the stream stays in sync: connection kept, next call fine
        self.assertTrue(self.client.connected)
        self.assertTrue(self.client.ping()["pong"])

    def test_error_without_id_is_still_ours(self):
        self.srv.override = lambda req: [
            b'{"ok":false,"error":{"code":"invalid_argument","message":"bad dst"}}']
        with self.assertRaises(ConnpidProtocolError) as cm:
            self.client.lookup("tcp", "1.2.3.4", 1, 2)
        self.assertEqual(cm.exception.code, "invalid_argument")
        self.assertEqual(cm.exception.message, "bad dst")

    def test_line_too_long_drops_connection(self):
        self.srv.override = lambda req: [json.dumps(
            {"ok": False, "id": req["id"],
             "error": {"code": "line_too_long", "message": "too long"}}).encode()]
        with self.assertRaises(ConnpidProtocolError):
            self.client.ping()
        self.assertFalse(self.client.connected)

    def test_malformed_line(self):
        for raw in (b"this is not json", b"[1,2,3]", b'{"id": %d}', b'{"id": %d, "ok": 1}',
                    b"\xff\xfe{"):
            self.srv.override = lambda req, raw=raw: [
                raw % req["id"] if b"%d" in raw else raw]
            with self.assertRaises(ConnpidProtocolError) as cm:
                self.client.ping()
            self.assertEqual(cm.exception.code, "bad_answer", raw)
            self.assertFalse(self.client.connected)
        self.srv.override = None
        self.assertTrue(self.client.ping()["pong"])

    def test_unusual_malformed_lines_are_bad_answer(self):
        # nothing the daemon sends may escape as another exception
        bad = [b"[" * 100000, b'{"ok":true,"id":%d,"x":NaN}',
               b'{"ok":true,"id":%d,"x":Infinity}',
               b'{"ok":true,"id":%d,"x":"\\ud800"}',
               b'{"ok":true,"id":%d,"x":' + b"9" * 5000 + b"}",
               b'{"ok":true,"id":%d,"x":"\xed\xa0\x80"}',  # CESU surrogate
               b'{"ok":true,"id":%d,"x":"\xc0\xaf"}']      # overlong
        for raw in bad:
            self.srv.override = lambda req, raw=raw: [
                raw.replace(b"%d", str(req["id"]).encode())]
            with self.assertRaises(ConnpidProtocolError, msg=raw[:40]) as cm:
                self.client.ping()
            self.assertEqual(cm.exception.code, "bad_answer", raw[:40])
            self.assertFalse(self.client.connected)
        # a valid surrogate pair is fine
        self.srv.override = lambda req: [
            b'{"ok":true,"id":%d,"x":"\\ud83d\\ude00"}' % req["id"]]
        self.assertEqual(self.client.ping()["x"], "\U0001F600")

    def test_answer_size_is_bounded(self):
        c = ConnpidClient(self.path, timeout=2.0, max_answer_bytes=1024)
        pad = "x" * 2000
        self.srv.override = lambda req: [json.dumps(
            {"ok": True, "id": req["id"], "pad": pad}).encode()]
        with self.assertRaises(ConnpidProtocolError) as cm:
            c.ping()
        self.assertEqual(cm.exception.code, "bad_answer")
        self.assertIn("longer than 1024", cm.exception.message)
        self.assertFalse(c.connected)
        self.srv.override = None
        self.assertTrue(c.ping()["pong"])
        c.close()

    def test_found_without_flow_is_protocol_error(self):
        self.srv.override = lambda req: [json.dumps(
            {"ok": True, "id": req["id"], "found": True}).encode()]
        with self.assertRaises(ConnpidProtocolError):
            self.client.lookup("tcp", "1.2.3.4", 1, 2)

    def test_truncated_answer_then_close(self):
        # the mock sends '{"ok":true,"id":' plus newline, then closes
        self.srv.override = lambda req: [b'{"ok":true,"id":']
        self.srv.close_after = 1
        with self.assertRaises(ConnpidProtocolError):
            self.client.ping()

    # watch

    def test_watch(self):
        got = []
        gen = self.client.watch(timeout=1.0, idle_timeout=2.0, comm="curl")
        for f in gen:
            got.append(f["sport"])
            if len(got) == 4:
                break
        gen.close()
        self.assertEqual(got, [50000, 50001, 50002, 50003])
        w = [r for r in self.srv.requests if r["op"] == "watch"][0]
        self.assertEqual(w["filter"], {"comm": "curl"})
        # the main connection is untouched by watch
        self.assertTrue(self.client.ping()["pong"])

    def test_watch_skips_bad_lines_and_goes_on(self):
        def ev(sport):
            return json.dumps({"event": "flow",
                               "flow": dict(FLOW, sport=sport)}).encode()
        self.srv.watch_lines = [
            ev(1),
            b'{"event":"flow","flow":{"comm":"\xff\xfe"}}',   # not UTF-8
            ev(2),
            b"not json at all",
            b"[1,2]",
            b'{"event":"flow","flow":{"comm":"\\udcff"}}',   # lone surrogate
            b"[" * 100000,
            b'{"event":"flow","flow":{"x":' + b"y" * 3000 + b'}}',  # too long
            b'{"x":"' + b"z" * 300000 + b'"}',   # too long, spans many reads
            ev(3),
        ]
        c = ConnpidClient(self.path, timeout=2.0, max_answer_bytes=2048)
        seen = []
        got = []
        gen = c.watch(idle_timeout=5.0, on_bad_answer=seen.append)
        for f in gen:
            got.append(f["sport"])
            if len(got) == 3:
                break
        gen.close()
        self.assertEqual(got, [1, 2, 3])
        self.assertEqual(c.watch_skipped, 7)
        self.assertEqual(len(seen), 7)
        for e in seen:
            self.assertIsInstance(e, ConnpidProtocolError)
            self.assertEqual(e.code, "bad_answer")
        self.assertEqual(seen[0].answer, b'{"event":"flow","flow":{"comm":"\xff\xfe"}}')
        c.close()

    def test_watch_bad_line_without_callback_is_logged(self):
        self.srv.watch_lines = [b"\xff", json.dumps(
            {"event": "flow", "flow": dict(FLOW, sport=7)}).encode()]
        gen = self.client.watch(idle_timeout=5.0)
        with self.assertLogs("connpid_client", "WARNING"):
            self.assertEqual(next(gen)["sport"], 7)
        gen.close()
        self.assertEqual(self.client.watch_skipped, 1)

    def test_watch_idle_timeout(self):
        gen = self.client.watch(idle_timeout=0.2)
        with self.assertRaises(ConnpidTimeout):
            for _ in range(10):
                next(gen)

    def test_watch_unavailable(self):
        c = ConnpidClient(os.path.join(self.dir, "nope.sock"))
        with self.assertRaises(ConnpidUnavailable):
            next(c.watch())


if __name__ == "__main__":
    unittest.main(verbosity=2)

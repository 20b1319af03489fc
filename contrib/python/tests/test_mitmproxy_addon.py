#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Unit tests for connpid_mitmproxy.py's policy against the MOCK server.

The addon runs inside mitmproxy's own test context (mitmproxy.test.taddons,
real option handling and real flow objects); the daemon is MockQueryd from
test_client.py (a fake, NOT connpid-queryd), which lets a test make the
answer unreadable, late or absent. The real daemon and the real mitmdump
are covered by test_mitmproxy_e2e.py.

mitmproxy must be importable: if this interpreter cannot import it, the
test re-executes itself with the interpreter of `mitmdump` (Debian's
package installs it for /usr/bin/python3); if that fails too it exits 77
and says why.
"""

import asyncio
import json
import os
import shutil
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)

SKIP = 77


def _mitmdump_python():
    exe = shutil.which("mitmdump")
    if not exe:
        return None
    try:
        with open(exe, "rb") as f:
            first = f.readline().decode("utf-8", "replace").strip()
    except OSError:
        return None
    if not first.startswith("#!"):
        return None
    interp = first[2:].split()
    return interp[0] if interp and os.path.isabs(interp[0]) else None


try:
    from mitmproxy.test import taddons, tflow
except ImportError as e:
    py = _mitmdump_python()
    if py and os.path.realpath(py) != os.path.realpath(sys.executable) \
            and not os.environ.get("CONNPID_ADDON_TEST_REEXEC"):
        os.environ["CONNPID_ADDON_TEST_REEXEC"] = "1"
        os.execv(py, [py, os.path.abspath(__file__)] + sys.argv[1:])
    print(f"SKIP: mitmproxy not importable ({e}); apt-get install -y mitmproxy",
          flush=True)
    sys.exit(SKIP)

import connpid_mitmproxy  # noqa: E402
from test_client import FLOW, MockQueryd  # noqa: E402

CURL = FLOW["exe"]          # the mock attributes sport 40000 to /usr/bin/curl
FOUND_SPORT, UNKNOWN_SPORT = FLOW["sport"], 40001


class AddonPolicyTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="connpid-addon-test-")
        self.path = os.path.join(self.dir, "q.sock")
        self.srv = MockQueryd(self.path)
        self.addon = connpid_mitmproxy.Connpid()
        self.tctx = taddons.context(self.addon)
        self.tctx.__enter__()
        self.configure()

    def tearDown(self):
        self.addon.done()
        self.tctx.__exit__(None, None, None)
        self.tctx.master.event_loop.close()  # taddons made it, never closes it
        self.srv.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def configure(self, **opts):
        opts.setdefault("connpid_socket", self.path)
        opts.setdefault("connpid_timeout", "0.5")
        self.tctx.configure(self.addon, **opts)

    def request(self, sport=FOUND_SPORT, hook="requestheaders", no_dst=False):
        """One HTTP flow from 127.0.0.1:sport to the proxy at :8080, through
        the addon's hook. Returns the flow (flow.response set = refused)."""
        f = tflow.tflow()
        f.client_conn.peername = ("127.0.0.1", sport)
        f.client_conn.sockname = None if no_dst else ("127.0.0.1", 8080)
        if no_dst:
            f.server_conn.address = None
        asyncio.run(self.hooks(f.client_conn, getattr(self.addon, hook), f))
        return f

    async def hooks(self, client, hook, flow):
        # mitmproxy's order: client_connected, then the flow's hooks
        await self.addon.client_connected(client)
        await hook(flow)

    def assertRefused(self, f, why=None):
        self.assertIsNotNone(f.response, f"flow passed: {f.comment}")
        self.assertEqual(f.response.status_code, 403)
        self.assertIn("refused", f.comment)
        if why:
            self.assertIn(why, f.response.get_text())

    def assertPassed(self, f):
        self.assertIsNone(f.response, f"flow refused: {f.comment}")

    # -- allow list, process known

    def test_allow_list_listed_and_not_listed(self):
        self.configure(connpid_allow_exe=CURL)
        f = self.request()
        self.assertPassed(f)
        self.assertEqual(f.metadata["connpid"]["status"], "found")
        self.configure(connpid_allow_exe="/usr/bin/wget")
        self.assertRefused(self.request(), "not allowed")

    # -- allow list, process unknown: refused unless connpid_allow_unknown

    def test_unknown_owner_refused_with_allow_list(self):
        self.configure(connpid_allow_exe=CURL)
        f = self.request(UNKNOWN_SPORT)
        self.assertEqual(f.metadata["connpid"]["status"], "unknown")
        self.assertRefused(f, "connpid_allow_unknown is off")

    def test_unknown_owner_allowed_with_opt_in(self):
        self.configure(connpid_allow_exe=CURL, connpid_allow_unknown=True)
        f = self.request(UNKNOWN_SPORT)
        self.assertEqual(f.metadata["connpid"]["status"], "unknown")
        self.assertPassed(f)
        # the allow list itself still applies to known processes
        self.configure(connpid_allow_exe="wget")
        self.assertRefused(self.request(), "not allowed")

    def test_daemon_down_refused_with_allow_list(self):
        self.configure(connpid_allow_exe=CURL)
        self.srv.stop()
        f = self.request()
        self.assertIn("unavailable", f.metadata["connpid"]["reason"])
        self.assertRefused(f)
        self.configure(connpid_allow_unknown=True)
        self.assertPassed(self.request())

    def test_unreadable_answers_refused_with_allow_list(self):
        # each answer is one the client reports as bad_answer
        self.configure(connpid_allow_exe=CURL)
        for raw in (b"\xff\xfe{", b"not json", b"[1]", b"[" * 100000,
                    b'{"ok":true,"id":%d,"x":NaN}',
                    b'{"ok":true,"id":%d,"found":true,"flow":{"comm":"\\udcff"}}'):
            with self.subTest(raw=raw[:40]):
                self.srv.override = lambda req, raw=raw: [
                    raw % req["id"] if b"%d" in raw else raw]
                f = self.request()
                meta = f.metadata["connpid"]
                self.assertEqual(meta["status"], "unknown")
                self.assertIn("bad_answer", meta["reason"])
                self.assertRefused(f)

    def test_timeout_refused_with_allow_list(self):
        self.configure(connpid_allow_exe=CURL, connpid_timeout="0.1")
        self.srv.delay["lookup"] = 0.5
        f = self.request()
        self.assertEqual(f.metadata["connpid"]["reason"], "timeout")
        self.assertRefused(f)

    def test_no_destination_refused_with_allow_list(self):
        # e.g. transparent mode when the original destination is unknown
        self.configure(connpid_allow_exe=CURL)
        f = self.request(no_dst=True)
        self.assertEqual(f.metadata["connpid"]["status"], "unknown")
        self.assertRefused(f)

    def test_found_with_non_string_exe_refused(self):
        self.configure(connpid_allow_exe=CURL)
        self.srv.override = lambda req: [json.dumps(
            {"ok": True, "id": req["id"], "found": True,
             "flow": dict(FLOW, exe=42)}).encode()]
        self.assertRefused(self.request(), "not allowed")

    def test_http_connect_and_raw_tcp_refused(self):
        self.configure(connpid_allow_exe=CURL)
        self.srv.stop()
        self.assertRefused(self.request(hook="http_connect"))
        tf = tflow.ttcpflow()
        tf.client_conn.peername = ("127.0.0.1", FOUND_SPORT)
        tf.client_conn.sockname = ("127.0.0.1", 8080)
        asyncio.run(self.hooks(tf.client_conn, self.addon.tcp_start, tf))
        tf.messages[-1].from_client = True
        tf.messages[-1].content = b"secret"
        self.addon.tcp_message(tf)
        self.assertEqual(tf.messages[-1].content, b"")

    # -- without an allow list, unknown passes unless connpid_block_unknown

    def test_no_policy_unknown_passes(self):
        self.srv.stop()
        self.assertPassed(self.request())

    def test_block_unknown_wins_over_allow_unknown(self):
        self.configure(connpid_block_unknown=True, connpid_allow_unknown=True)
        self.assertRefused(self.request(UNKNOWN_SPORT))
        self.assertPassed(self.request())

    # -- what the addon asks

    def test_client_address_sent_as_src(self):
        """Regular mode: the client's socket address is the flow's src
        (tells apart clients in containers/namespaces on the same port),
        the proxy's listen address and port are dst/dport."""
        self.configure(connpid_allow_exe=CURL)
        f = tflow.tflow()
        f.client_conn.peername = ("::ffff:172.17.0.2", FOUND_SPORT)
        f.client_conn.sockname = ("::ffff:172.17.0.1", 8080)
        asyncio.run(self.hooks(f.client_conn, self.addon.requestheaders, f))
        self.assertPassed(f)
        req = [r for r in self.srv.requests if r.get("op") == "lookup"][-1]
        self.assertEqual((req["src"], req["dst"], req["sport"], req["dport"]),
                         ("172.17.0.2", "172.17.0.1", FOUND_SPORT, 8080))
        self.assertNotIn("direction", req)

    def test_src_left_out_when_family_differs(self):
        """A client address that cannot be the flow's src (another family
        than dst) is not sent: the lookup stays as before."""
        f = tflow.tflow()
        f.client_conn.peername = ("2001:db8::2", FOUND_SPORT)
        f.client_conn.sockname = ("127.0.0.1", 8080)
        asyncio.run(self.hooks(f.client_conn, self.addon.requestheaders, f))
        req = [r for r in self.srv.requests if r.get("op") == "lookup"][-1]
        self.assertNotIn("src", req)
        self.assertEqual(f.metadata["connpid"]["status"], "found")

    def test_fields_asked(self):
        """The lookup asks for the members the addon uses only (the mock
        answers with those): the allow list, the comment and metadata
        work as with the whole FLOW."""
        self.configure(connpid_allow_exe=CURL)
        f = self.request()
        self.assertPassed(f)
        req = [r for r in self.srv.requests if r.get("op") == "lookup"][-1]
        self.assertEqual(req["fields"], list(connpid_mitmproxy.FIELDS))
        for k in ("exe", "unit", "container", "domain"):
            self.assertIn(k, req["fields"])
        meta = f.metadata["connpid"]
        self.assertEqual((meta["status"], meta["pid"], meta["exe"], meta["user"]),
                         ("found", FLOW["pid"], CURL, "root"))
        self.assertNotIn("cmdline", meta)
        self.assertIn("connpid: curl[%d] exe=%s user=root" % (FLOW["pid"], CURL), f.comment)

    def test_fields_option(self):
        """connpid_fields adds members (kept in metadata); 'all' asks for
        the whole FLOW (no "fields" sent); a bad value is refused."""
        self.configure(connpid_fields="cgroup, cmdline,exe")
        f = self.request()
        req = [r for r in self.srv.requests if r.get("op") == "lookup"][-1]
        self.assertEqual(req["fields"], list(connpid_mitmproxy.FIELDS) + ["cgroup", "cmdline"])
        self.assertEqual(f.metadata["connpid"]["cgroup"], FLOW["cgroup"])
        self.configure(connpid_fields="all")
        f = self.request(sport=FOUND_SPORT)
        req = [r for r in self.srv.requests if r.get("op") == "lookup"][-1]
        self.assertNotIn("fields", req)
        self.assertEqual(f.metadata["connpid"]["cmdline"], FLOW["cmdline"])
        with self.assertRaises(connpid_mitmproxy.exceptions.OptionsError):
            self.configure(connpid_fields="x" * 80)

    # -- what the operator sees

    def test_control_characters_escaped_in_comment(self):
        self.srv.override = lambda req: [json.dumps(
            {"ok": True, "id": req["id"], "found": True,
             "flow": dict(FLOW, comm="\x1b[2K\rok", exe="/tmp/\x07x")}).encode()]
        self.configure(connpid_allow_exe=CURL)
        f = self.request()
        self.assertRefused(f)
        self.assertNotIn("\x1b", f.comment)
        self.assertNotIn("\x07", f.comment)
        self.assertIn("\\x1b[2K\\x0dok", f.comment)
        self.assertNotIn("\x07", f.response.get_text())
        # metadata keeps the exact values
        self.assertEqual(f.metadata["connpid"]["comm"], "\x1b[2K\rok")


if __name__ == "__main__":
    unittest.main(verbosity=2)

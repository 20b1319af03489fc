#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpid_client.py against tests/protocol-cases.json, the cases
libconnpid is tested with (tests/lib-c/test-protocol-cases.c): a MOCK
daemon answers each lookup with the case's line, @ID@ replaced by the
request's id, and lookup() must return what the case expects. The request
the mock got must carry the case's src and netns, and "direction" only
when the case's is "inbound" (none of them when the case has none)."""
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
from connpid_client import ConnpidClient, ConnpidProtocolError  # noqa: E402
from test_client import MockQueryd  # noqa: E402


def field(flow, key):
    """The library's flat names, read from the FLOW object."""
    if key.startswith("container_"):
        c = flow.get("container")
        return c.get(key[len("container_"):]) if isinstance(c, dict) else None
    if key == "domain":
        d = flow.get("domain")
        return d.get("name") if isinstance(d, dict) else None
    return flow.get(key)


def sent_as_expected(sent, req):
    want = {k: req[k] for k in ("src", "netns") if k in req}
    if req.get("direction") == "inbound":
        want["direction"] = "inbound"
    got = {k: sent[k] for k in ("src", "netns", "direction") if k in sent}
    return got == want, got, want


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "..", "tests",
                                                             "protocol-cases.json")
    with open(path) as f:
        cases = json.load(f)["cases"]
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        mock = MockQueryd(os.path.join(tmp, "q.sock"))
        current = {}

        def answer(req):
            current["sent"] = req
            return [current["answer"].replace("@ID@", str(req.get("id"))).encode()]
        mock.override = answer
        try:
            client = ConnpidClient(mock.path, timeout=2)
            for case in cases:
                current["answer"] = case["answer"]
                req, expect = case["request"], case["expect"]
                current["sent"] = None
                try:
                    flow, cands = client.lookup_all(req["proto"], req["dst"], req["sport"],
                                                    req["dport"], src=req.get("src"),
                                                    netns=req.get("netns"),
                                                    direction=req.get("direction"))
                    got = {"found": flow is not None}
                    if flow is not None:
                        got.update({k: field(flow, k) for k in expect
                                    if k not in ("found", "n_candidates")})
                        if "n_candidates" in expect:
                            got["n_candidates"] = len(cands)
                except ConnpidProtocolError as e:
                    got = {"error": e.code}
                ok, sent, want_sent = sent_as_expected(current["sent"] or {}, req)
                if not ok:
                    print("FAIL: %s: sent %r, want %r" % (case["name"], sent, want_sent))
                    failures += 1
                    continue
                want = dict(expect)
                if not want.get("found", True):
                    want = {"found": False}
                if got != want:
                    print("FAIL: %s: got %r, want %r" % (case["name"], got, want))
                    failures += 1
                else:
                    print("ok: %s" % case["name"])
        finally:
            mock.stop()
    print("FAIL" if failures else "PASS")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

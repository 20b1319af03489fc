# SPDX-License-Identifier: GPL-2.0-or-later
"""Test helper for test_mitmproxy_e2e.py (loaded next to connpid_mitmproxy.py).

Writes one JSON line per finished HTTP flow to $CONNPID_E2E_DUMP with what
the connpid addon attached: flow.metadata["connpid"] and flow.comment.
"""

import json
import os

from mitmproxy import ctx


class Dump:
    def _write(self, flow, kind):
        path = os.environ.get("CONNPID_E2E_DUMP")
        if not path:
            return
        rec = {
            "kind": kind,
            "url": flow.request.pretty_url if flow.request else None,
            "status": flow.response.status_code if flow.response else None,
            "client_port": flow.client_conn.peername[1],
            "connpid": flow.metadata.get("connpid"),
            "comment": flow.comment,
            "error": flow.error.msg if flow.error else None,
        }
        with open(path, "a") as f:
            f.write(json.dumps(rec, default=str) + "\n")
        ctx.log.info(f"e2e-dump: {kind} {rec['url']} {rec['status']}")

    def response(self, flow):
        self._write(flow, "response")

    def error(self, flow):
        self._write(flow, "error")


addons = [Dump()]

"""A stand-in for connpid-queryd's socket: answers each request line with
the canned answer for its "op" (for connpidctl's output formats, which
need no kernel). Used by test_formats.py."""
import json
import os
import socket
import threading


class FakeDaemon:
    def __init__(self, path, answers):
        self.path = path
        self.answers = answers
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(8)
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            with c:
                f = c.makefile("rwb")
                for line in f:
                    req = json.loads(line)
                    ans = dict(self.answers.get(req.get("op"), {"ok": False, "error": "unknown_op"}))
                    if "id" in req:
                        ans["id"] = req["id"]
                    f.write(json.dumps(ans).encode() + b"\n")
                    f.flush()

    def close(self):
        self.srv.close()
        os.unlink(self.path)

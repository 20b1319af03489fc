#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpidctl's issue-14 options against a MOCK daemon (MockQueryd of
contrib/python/tests/test_client.py, NOT connpid-queryd; no root):

  * lookup --src/--netns/--inbound send the lookup members "src",
    "netns", "direction":"inbound" (direction only when inbound), also
    as `lookup tcp DST SPORT DPORT`;
  * "candidates" are kept in --json and shown one marked line each in the
    table, with the flow's direction and listener;
  * --direct with them is a clear error, and so is an unreachable daemon
    (no silent answer from the maps, which cannot honour them);
  * watch/recent/history --direction/--netns/--src become filter members;
  * bad values are refused before anything is sent.
"""
import json
import os
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "python", "tests"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "contrib", "python"))
from test_client import MockQueryd  # noqa: E402
from mockcheck import check, run  # noqa: E402

CTL = os.environ.get("CONNPIDCTL", "")

FLOW = {"proto": "tcp", "direction": "inbound", "family": "ipv4", "src": "10.0.0.1",
        "sport": 8080, "dst": "192.0.2.7", "dport": 51000, "netns": 4026532001,
        "pid": 700, "comm": "nginx", "exe": "/usr/sbin/nginx", "alive": True,
        "listener": {"pid": 699, "comm": "nginx-master", "start_time": 1},
        "seen": "event", "in_map": False}
CAND = dict(FLOW, pid=800, comm="other\x1b[2K", src="10.0.0.2", netns=4026532002)
CAND.pop("listener")


def ctl(sock, *args):
    r = subprocess.run([CTL, "--socket", sock] + list(args), capture_output=True, timeout=20)
    return r.returncode, r.stdout.decode("utf-8", "replace"), r.stderr.decode("utf-8", "replace")


def answer(req):
    a = {"ok": True, "id": req.get("id")}
    if req.get("op") == "lookup":
        a.update(found=True, flow=FLOW, candidates=[CAND])
    elif req.get("op") in ("recent", "history"):
        a["flows"] = [FLOW]
    elif req.get("op") == "watch":
        return None
    return [json.dumps(a).encode()]


def last(mock, op):
    reqs = [r for r in mock.requests if r.get("op") == op]
    return reqs[-1] if reqs else {}


def scenarios(tmp):
    sock = os.path.join(tmp, "q.sock")
    mock = MockQueryd(sock)
    mock.override = answer
    try:
        rc, out, err = ctl(sock, "--json", "lookup", "--src", "::ffff:10.0.0.1", "--netns",
                           "4026532001", "--inbound", "tcp", "192.0.2.7", "8080", "51000")
        req = last(mock, "lookup")
        check(rc == 0, "lookup rc 0", (rc, err))
        check((req.get("src"), req.get("netns"), req.get("direction"), req.get("sport"),
               req.get("dst"), req.get("dport")) ==
              ("10.0.0.1", 4026532001, "inbound", 8080, "192.0.2.7", 51000),
              "lookup members sent", req)
        ans = json.loads(out)
        check(len(ans.get("candidates", [])) == 1 and ans["candidates"][0]["pid"] == 800,
              "--json keeps the candidates", out)

        rc, out, err = ctl(sock, "lookup", "--src", "10.0.0.1", "192.0.2.7", "8080", "51000")
        req = last(mock, "lookup")
        check("direction" not in req and "netns" not in req, "outbound: no direction sent", req)
        lines = out.splitlines()
        check(len(lines) >= 4 and lines[0].split()[6] == "DIR" and lines[1].split()[6] == "in",
              "table shows the direction", out)
        check("nginx-master[699]" in lines[1], "table shows the listener", out)
        cand = [ln for ln in lines if ln.startswith("candidate ")]
        check(len(cand) == 1 and "pid=800" in cand[0] and "src=10.0.0.2" in cand[0]
              and "netns=4026532002" in cand[0], "one marked line per candidate", out)
        check("\x1b" not in out and "\\x1b[2K" in out, "candidate fields escaped", out)

        for args, what in ((["--direct", "--src", "10.0.0.1"], "--direct --src"),
                           (["--direct", "--inbound"], "--direct --inbound"),
                           (["--direct", "--netns", "5"], "--direct --netns")):
            n = len(mock.requests)
            rc, out, err = ctl(sock, *(args + ["lookup", "127.0.0.1", "1", "2"]))
            check(rc == 2 and "pinned maps" in err and len(mock.requests) == n,
                  what + " is a clear error", (rc, err))
        for args, what in ((["--src", "nope"], "bad --src"), (["--netns", "0"], "--netns 0"),
                           (["--netns", "4294967296"], "--netns too big"),
                           (["--direction", "up"], "bad --direction"),
                           (["--src", "::1"], "--src of another family")):
            n = len(mock.requests)
            rc, out, err = ctl(sock, *(args + ["lookup", "127.0.0.1", "1", "2"]))
            check(rc == 2 and len(mock.requests) == n, what + " refused", (rc, err))

        for op in ("recent", "history"):
            rc, out, err = ctl(sock, op, "--direction", "inbound", "--netns", "7", "--src", "10.0.0.1")
            f = last(mock, op).get("filter", {})
            check(rc == 0 and f == {"direction": "inbound", "netns": 7, "src": "10.0.0.1"},
                  op + " filters", (rc, err, f))
            check(" in " in out and "nginx-master[699]" in out, op + " table direction/listener", out)
    finally:
        mock.stop()

    # the daemon down: no fallback to the maps for a scoped lookup
    rc, out, err = ctl(os.path.join(tmp, "gone.sock"), "--pin-dir", tmp, "lookup", "--netns", "5",
                       "127.0.0.1", "1", "2")
    check(rc == 2 and "not reachable" in err and "directly" not in err,
          "daemon down: scoped lookup errors out", (rc, err))
    # watch filters (the mock acks and streams; read the ack only)
    mock = MockQueryd(sock)
    mock.watch_lines = []
    try:
        p = subprocess.Popen([CTL, "--socket", sock, "--json", "watch", "--direction", "outbound",
                              "--src", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        killer = threading.Timer(10, p.kill)  # a silent ctl must not hang the test
        killer.start()
        try:
            line = p.stdout.readline()
        finally:
            killer.cancel()
            p.kill()
            p.wait()
            p.stdout.close()
            p.stderr.close()
        f = last(mock, "watch").get("filter", {})
        check(b"watching" in line and f == {"direction": "outbound", "src": "127.0.0.1"},
              "watch filters", (line, f))
    finally:
        mock.stop()


def main():
    return run("CONNPIDCTL", "connpid-ctl-scope-", scenarios)


if __name__ == "__main__":
    sys.exit(main())

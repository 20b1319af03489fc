#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13: answers that come later (history on its reader thread, and
the slow lane for recent/stats/status) keep request order on a connection
and hold nobody else up.

Uses a TEST-ONLY op: with CONNPID_TEST_DEFER_MS=N in queryd's environment,
{"op":"test_defer"} is answered N ms later through client_defer() and
manager_client_complete(), exactly as a deferred history query is. Without
the variable the op does not exist (unknown_op).

  1. test_defer, ping, ping in one write: answers in that order, ids
     echoed, the first after >= N ms; meanwhile another client's ping is
     answered at once.
  2. test_defer then 3000 pings in one go (more than the 64 KiB line
     buffer: reading stops while the answer is pending, then resumes):
     3001 answers, in order.
  3. test_defer + ping, then shutdown(SHUT_WR): both answers, then EOF.
  4. test_defer, then the client closes: queryd carries on.
  5. recent, stats, status (the slow lane) between pings: in order."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import check, check_eq, log, main  # noqa: E402

DEFER_MS = 300


def read_lines(s, n, timeout=30):
    s.settimeout(timeout)
    buf, out = b"", []
    while len(out) < n:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            out.append(json.loads(line))
    return out


def connect(env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(env.sock)
    return s


def test(env):
    os.environ["CONNPID_TEST_DEFER_MS"] = str(DEFER_MS)
    d = env.daemon()
    d.wait_ready()

    # 1. order, and nobody else waits
    a, b = connect(env), connect(env)
    t0 = time.monotonic()
    a.sendall(b'{"op":"test_defer","id":1}\n{"op":"ping","id":2}\n{"op":"ping","id":3}\n')
    time.sleep(0.05)
    t1 = time.monotonic()
    b.sendall(b'{"op":"ping","id":"b"}\n')
    other = read_lines(b, 1)
    other_ms = (time.monotonic() - t1) * 1000
    got = read_lines(a, 3)
    took = time.monotonic() - t0
    check_eq([x.get("id") for x in got], [1, 2, 3], "ids of the answers, in order")
    check(got[0].get("ok") and got[0].get("deferred"), "test_defer answered (is the test op built in?)", got[0])
    check(took >= DEFER_MS / 1000.0 * 0.9, "the deferred answer came after %.3fs, before %d ms" % (took, DEFER_MS))
    check(other and other[0].get("pong"), "the other client's ping", other)
    check(other_ms < 100, "another client's ping waited %.0f ms for a deferred request" % other_ms)
    log("deferred answer after %.0f ms; another client's ping meanwhile %.1f ms" % (took * 1000, other_ms))
    a.close()
    b.close()

    # 2. more than a line buffer of requests behind a deferred one
    n = 3000
    a = connect(env)
    data = b'{"op":"test_defer","id":0}\n' + b"".join(
        b'{"op":"ping","id":%d}\n' % i for i in range(1, n + 1))
    check(len(data) > 64 * 1024, "the pipelined requests exceed the line buffer")
    sender = threading.Thread(target=a.sendall, args=(data,), daemon=True)
    sender.start()
    got = read_lines(a, n + 1, timeout=60)
    sender.join(timeout=30)
    check_eq(len(got), n + 1, "answers to a deferred request and %d pings" % n)
    check_eq([x.get("id") for x in got], list(range(n + 1)), "the ids, in order")
    a.close()

    # 3. half-closed after asking: still answered, then EOF
    a = connect(env)
    a.sendall(b'{"op":"test_defer","id":"h"}\n{"op":"ping","id":"h2"}\n')
    a.shutdown(socket.SHUT_WR)
    got = read_lines(a, 3, timeout=10)
    check_eq([x.get("id") for x in got], ["h", "h2"], "answers to a half-closed client, then EOF")
    a.close()

    # 4. gone while deferred
    for _ in range(20):
        a = connect(env)
        a.sendall(b'{"op":"test_defer"}\n{"op":"ping"}\n')
        a.close()
    time.sleep(DEFER_MS / 1000.0 + 0.3)
    check(d.alive(), "queryd died answering clients that left", d.log())

    # 5. the slow lane keeps order too
    a = connect(env)
    a.sendall(b'{"op":"ping","id":1}\n{"op":"recent","limit":5,"id":2}\n{"op":"ping","id":3}\n'
              b'{"op":"stats","id":4}\n{"op":"status","id":5}\n{"op":"ping","id":6}\n')
    got = read_lines(a, 6)
    check_eq([x.get("id") for x in got], [1, 2, 3, 4, 5, 6], "ids around slow requests, in order")
    check(all(x.get("ok") for x in got), "all answered ok", got)
    check("flows" in got[1] and "stats" in got[3] and "status" in got[4], "the right answers", got)
    a.close()
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "defer")

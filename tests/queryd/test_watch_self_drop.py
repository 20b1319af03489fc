#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A watch client that never reads its events but keeps sending requests on
the same connection while a workload floods new flows. `stats`/`recent`/
`lookup` drain the ring inside the request; the drain broadcasts to this very
client, whose output is past its bound, so it gets dropped in the middle of
its own request. The daemon must survive that (no use after free), keep
serving others, and count the client as dropped."""
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qdharness import check, check_eq, log, main  # noqa: E402

FLOOD = 6000


def test(env):
    d = env.daemon()
    d.wait_ready()
    flooder = env.workload(comm="cpq-flood", extra_args=["pad-" + "p" * 1500])
    cl = env.client()

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(env.sock)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b'{"op":"watch"}\n')
    deadline = time.monotonic() + 5
    while cl.request({"op": "stats"})["stats"]["watchers"] < 1:
        check(time.monotonic() < deadline, "watcher never registered")
        time.sleep(0.02)

    stop = threading.Event()
    sent = [0]

    def pester():
        # requests on the watching connection, never reading the answers
        s.settimeout(0.5)
        while not stop.is_set():
            try:
                s.sendall(b'{"op":"stats"}\n{"op":"recent","limit":1}\n')
                sent[0] += 2
            except (BrokenPipeError, ConnectionResetError):
                return
            except (TimeoutError, socket.timeout):
                pass
            time.sleep(0.001)

    pt = threading.Thread(target=pester)
    pt.start()
    for base in range(20000, 20000 + FLOOD, 1000):
        flooder.cmd({"cmd": "udpflood", "host": "127.0.0.1", "base": base, "n": 1000}, timeout=60)
        time.sleep(0.03)
        check(d.alive(), "queryd died during the flood (rc %r): %s" % (d.proc.poll(), d.log()))
    time.sleep(0.5)
    stop.set()
    pt.join(10)
    log("sent %d requests on the watching connection" % sent[0])
    check(d.alive(), "queryd died (rc %r): %s" % (d.proc.poll(), d.log()))
    st = cl.request({"op": "stats"})["stats"]
    check(st["clients_dropped_slow"] >= 1, "the non-reading watcher was dropped", st)
    check_eq(st["watchers"], 0, "no watcher left")
    ans = cl.request({"op": "ping"})
    check(ans.get("pong"), "ping after the drop", ans)
    s.close()
    cl.close()
    check_eq(d.stop(), 0, "queryd exit on SIGTERM (log: %s)" % d.log())
    log(d.log())
    check("ERROR: AddressSanitizer" not in d.log() and "runtime error" not in d.log(),
          "sanitizer report", d.log())


if __name__ == "__main__":
    main(test, "selfdrop")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 13, bounded output: one answer is at most 1 MiB (ANSWER_MAX_BYTES).

With 8000 flows in the index, `recent` with the largest limit (5000, some
4 MB before) stops under 1 MiB, says "truncated":true and gives a
"cursor"; paging with the cursor returns every flow exactly once. The
limit also ends a page with a cursor. A 60 KB request id still fits under
the cap. A cursor that is not ours is refused (invalid_argument)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hostile import check, check_eq, flood, log, main, stats, wait_until  # noqa: E402

FLOWS = 8000
CAP = 1024 * 1024


def raw_request(c, obj):
    c.send(obj)
    while b"\n" not in c.buf:
        chunk = c.sock.recv(1 << 20)
        check(chunk, "queryd closed the connection on %r" % (obj,))
        c.buf += chunk
    line, c.buf = c.buf.split(b"\n", 1)
    return len(line) + 1, json.loads(line)


def key(f):
    return (f["proto"], f["dst"], f["sport"], f["dport"])


def test(env):
    d = env.daemon(extra=["--no-store", "--max-flows", "20000"])
    d.wait_ready()
    flood(env, FLOWS)
    wait_until(lambda: stats(env)["index_flows"] >= FLOWS, timeout=60, what="%d flows indexed" % FLOWS)

    with env.client(timeout=60) as c:
        size, ans = raw_request(c, {"op": "recent", "limit": 5000})
        check(ans.get("ok"), "recent failed", ans)
        n = len(ans["flows"])
        log("recent limit 5000: %d flows, %d bytes, truncated %r" % (n, size, ans.get("truncated")))
        check(size <= CAP, "recent answer is %d bytes, over 1 MiB" % size)
        check(ans.get("truncated") is True, "a cut answer says truncated:true", {k: ans.get(k) for k in ("truncated", "cursor")})
        check(isinstance(ans.get("cursor"), str), "a cut answer has a cursor", ans.get("cursor"))
        check(500 < n < 5000, "a 1 MiB page holds hundreds of flows, not %d" % n)

        # page through everything
        seen, pages, cursor = set(), 0, None
        while True:
            req = {"op": "recent", "limit": 5000}
            if cursor:
                req["cursor"] = cursor
            size, ans = raw_request(c, req)
            check(ans.get("ok"), "recent with a cursor failed", ans)
            check(size <= CAP, "page %d is %d bytes" % (pages, size))
            pages += 1
            for f in ans["flows"]:
                check(key(f) not in seen, "flow %r came twice while paging" % (key(f),))
                seen.add(key(f))
            cursor = ans.get("cursor")
            if not cursor:
                check(ans.get("truncated") is False, "the last page is not truncated", ans.get("truncated"))
                break
            check(pages < 100, "paging does not end")
        ours = [k for k in seen if k[1].startswith("127.77.")]
        log("paged %d flows (%d of the flood) in %d pages" % (len(seen), len(ours), pages))
        check(len(ours) >= FLOWS, "paging returned %d of the %d flood flows" % (len(ours), FLOWS))

        # the limit ends a page too, and the next one follows on
        _, p1 = raw_request(c, {"op": "recent", "limit": 100})
        _, p2 = raw_request(c, {"op": "recent", "limit": 100, "cursor": p1["cursor"]})
        check_eq((len(p1["flows"]), len(p2["flows"]), p1["truncated"]), (100, 100, False), "pages by limit")
        check(not set(map(key, p1["flows"])) & set(map(key, p2["flows"])), "pages by limit overlap")

        # a long id still fits
        size, ans = raw_request(c, {"op": "recent", "limit": 5000, "id": "i" * 60000})
        check(ans.get("ok") and size <= CAP, "with a 60 KB id: %d bytes" % size)

        for bad in ("nonsense", "1.5/tcp/1.2.3.4/1/2/3", 7, "nan/udp/1.2.3.4/1/2", "1/udp/1.2.3.4/0/2"):
            _, ans = raw_request(c, {"op": "recent", "cursor": bad})
            check_eq((ans.get("ok"), ans.get("error", {}).get("code")), (False, "invalid_argument"),
                     "recent with cursor %r" % (bad,))
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "anscap")

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12, item 13 (part): the history's dns_events.answers column lists
every address a lookup returned, each once. The old dedupe was strstr(),
so 10.0.0.1 vanished when 10.0.0.11 was listed before it.

A glibc getaddrinfo() (python3) in the test cgroup resolves a name found
only in a private /etc/hosts (`unshare -m` + a bind mount) with addresses
that are substrings of each other, each listed twice; the row written for
it must hold exactly the distinct addresses getaddrinfo() returned."""
import json
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import check, check_eq, log, main, wait_until  # noqa: E402
from harness import enter_cgroup_fn  # noqa: E402

NAME = "answers.connpid.test"
# superstrings first: hosts order is kept by getaddrinfo here
ADDRS = ["10.0.0.110", "10.0.0.11", "10.0.0.10", "10.0.0.1"]

RESOLVE = r'''
import json, socket, sys
infos = socket.getaddrinfo(sys.argv[1], None, socket.AF_INET, socket.SOCK_STREAM)
print(json.dumps([i[4][0] for i in infos]))
'''


def answers_rows(db):
    con = sqlite3.connect(db, timeout=5)
    try:
        return [r[0] for r in con.execute("SELECT answers FROM dns_events WHERE query = ?", (NAME,))]
    finally:
        con.close()


def test(env):
    env.load()
    db = env.path("history.db")
    d = env.daemon(db=db)
    d.wait_ready()
    hosts = env.path("hosts")
    with open(hosts, "w") as f:
        f.write("127.0.0.1 localhost\n")
        for a in ADDRS + ADDRS:
            f.write("%s %s\n" % (a, NAME))
    r = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', hosts,
                        sys.executable, "-c", RESOLVE, NAME],
                       capture_output=True, text=True, timeout=60, preexec_fn=enter_cgroup_fn(env.cgroup))
    check(r.returncode == 0, "resolver failed (rc %d)" % r.returncode, r.stderr)
    got = json.loads(r.stdout)
    log("getaddrinfo(%s) -> %s" % (NAME, got))
    distinct = list(dict.fromkeys(got))
    check_eq(sorted(distinct), sorted(ADDRS), "addresses getaddrinfo returned")
    rows = wait_until(lambda: answers_rows(db), timeout=10, what="a dns_events row for %s" % NAME)
    log("answers column: %r" % rows)
    check_eq(len(rows), 1, "rows for one getaddrinfo() call")
    check_eq(rows[0].split(","), distinct, "answers column (each address once, in order)")
    check_eq(d.stop(), 0, "queryd exit code")


main(test, "answers")

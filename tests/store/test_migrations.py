#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 4, item 5: schema migrations from each older user_version, and
databases connpid must not write.

- user_version 0 (an empty file), 1 (the version-1 schema exactly as in
  store.c's migrations[0], one row in it), 2 (migrations[1] on top,
  a row with every version-2 column set) and 3 (migrations[2] on top of
  that): queryd migrates to 4 (issue 14: direction and listener columns,
  old rows read as "direction": "outbound", no "listener"); the old
  rows are still there (process, cgroup and domain details moved to their
  own tables, rows refer to them), `history` returns them with the same
  member names and values as before, new flows are written next to them.
- user_version 99 (from the future): refused with a message saying
  "newer"; the daemon keeps answering ping and lookups; `stats` shows the
  store disabled with the problem; history is `unavailable`; the file is
  untouched (same bytes, same mtime).
- a read-only database (read-only bind mount): the daemon keeps answering
  lookups, the problem shows in `stats`, the file is untouched.
"""
import hashlib
import json
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from storeharness import (check, check_eq, history, log, lookup, main, stats,  # noqa: E402
                          store_stats, wait_until)

SCHEMA_VERSION = 4

# store.c migrations[0], verbatim.
SCHEMA_V1 = (
    "CREATE TABLE connections ("
    "  id INTEGER PRIMARY KEY,"
    "  ts REAL NOT NULL,"
    "  proto TEXT NOT NULL,"
    "  src TEXT,"
    "  sport INTEGER NOT NULL,"
    "  dst TEXT NOT NULL,"
    "  dport INTEGER NOT NULL,"
    "  pid INTEGER,"
    "  comm TEXT);"
    "CREATE INDEX connections_ts ON connections(ts);"
    "CREATE TABLE dns_events ("
    "  id INTEGER PRIMARY KEY,"
    "  ts REAL NOT NULL,"
    "  pid INTEGER,"
    "  comm TEXT,"
    "  query TEXT NOT NULL,"
    "  answers TEXT);"
    "CREATE INDEX dns_events_ts ON dns_events(ts);")

# store.c migrations[1], verbatim.
SCHEMA_V2_STEP = (
    "ALTER TABLE connections ADD COLUMN family TEXT;"
    "ALTER TABLE connections ADD COLUMN tid INTEGER;"
    "ALTER TABLE connections ADD COLUMN uid INTEGER;"
    "ALTER TABLE connections ADD COLUMN gid INTEGER;"
    "ALTER TABLE connections ADD COLUMN exe TEXT;"
    "ALTER TABLE connections ADD COLUMN cmdline TEXT;"
    "ALTER TABLE connections ADD COLUMN start_time INTEGER;"
    "ALTER TABLE connections ADD COLUMN cgroup_id INTEGER;"
    "ALTER TABLE connections ADD COLUMN cgroup_path TEXT;"
    "ALTER TABLE connections ADD COLUMN unit TEXT;"
    "ALTER TABLE connections ADD COLUMN container_id TEXT;"
    "ALTER TABLE connections ADD COLUMN container_name TEXT;"
    "ALTER TABLE connections ADD COLUMN container_image TEXT;"
    "ALTER TABLE connections ADD COLUMN domain TEXT;"
    "ALTER TABLE connections ADD COLUMN last_seen REAL;"
    "ALTER TABLE connections ADD COLUMN socket_cookie INTEGER;"
    "ALTER TABLE connections ADD COLUMN netns INTEGER;"
    "CREATE INDEX connections_cookie ON connections(socket_cookie);"
    "ALTER TABLE dns_events ADD COLUMN source TEXT;"
    "ALTER TABLE dns_events ADD COLUMN ttl INTEGER;")

# store.c migrations[2], verbatim.
SCHEMA_V3_STEP = (
    "CREATE TABLE processes ("
    "  id INTEGER PRIMARY KEY, pid INTEGER, start_time INTEGER, exe TEXT, cmdline TEXT);"
    "CREATE INDEX processes_pid ON processes(pid, start_time);"
    "CREATE INDEX processes_exe ON processes(exe);"
    "CREATE TABLE cgroups ("
    "  id INTEGER PRIMARY KEY, cgroup_id INTEGER, cgroup_path TEXT, unit TEXT,"
    "  container_id TEXT, container_name TEXT, container_image TEXT);"
    "CREATE INDEX cgroups_cgroup_id ON cgroups(cgroup_id);"
    "CREATE INDEX cgroups_unit ON cgroups(unit);"
    "CREATE INDEX cgroups_container_id ON cgroups(container_id);"
    "CREATE INDEX cgroups_container_name ON cgroups(container_name);"
    "CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE connections3 ("
    "  id INTEGER PRIMARY KEY, ts REAL NOT NULL, proto INTEGER NOT NULL, src TEXT,"
    "  sport INTEGER NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL, pid INTEGER,"
    "  tid INTEGER, uid INTEGER, gid INTEGER, comm TEXT, proc INTEGER, cgroup INTEGER,"
    "  domain INTEGER, socket_cookie INTEGER, netns INTEGER);"
    "INSERT INTO processes (pid, start_time, exe, cmdline)"
    "  SELECT DISTINCT pid, start_time, exe, cmdline FROM connections"
    "  WHERE exe IS NOT NULL OR cmdline IS NOT NULL OR start_time IS NOT NULL;"
    "INSERT INTO cgroups (cgroup_id, cgroup_path, unit, container_id, container_name, container_image)"
    "  SELECT DISTINCT cgroup_id, cgroup_path, unit, container_id, container_name, container_image"
    "  FROM connections WHERE cgroup_id IS NOT NULL OR cgroup_path IS NOT NULL;"
    "INSERT INTO domains (name) SELECT DISTINCT domain FROM connections WHERE domain IS NOT NULL;"
    "INSERT INTO connections3 (id, ts, proto, src, sport, dst, dport, pid, tid, uid, gid, comm,"
    "  proc, cgroup, domain, socket_cookie, netns)"
    "  SELECT c.id, c.ts, CASE c.proto WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17"
    "    ELSE coalesce(CAST(c.proto AS INTEGER), 0) END, c.src, c.sport, c.dst, c.dport, c.pid,"
    "    c.tid, c.uid, c.gid, c.comm,"
    "    (SELECT p.id FROM processes p WHERE p.pid IS c.pid AND p.start_time IS c.start_time"
    "       AND p.exe IS c.exe AND p.cmdline IS c.cmdline),"
    "    (SELECT g.id FROM cgroups g WHERE g.cgroup_id IS c.cgroup_id AND g.cgroup_path IS c.cgroup_path"
    "       AND g.unit IS c.unit AND g.container_id IS c.container_id"
    "       AND g.container_name IS c.container_name AND g.container_image IS c.container_image),"
    "    (SELECT d.id FROM domains d WHERE d.name = c.domain),"
    "    c.socket_cookie, c.netns FROM connections c;"
    "DROP TABLE connections;"
    "ALTER TABLE connections3 RENAME TO connections;"
    "CREATE INDEX connections_ts ON connections(ts);"
    "CREATE VIEW connection_details AS SELECT c.id AS id, c.ts AS ts, c.ts AS last_seen,"
    "  CASE c.proto WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' ELSE CAST(c.proto AS TEXT) END AS proto,"
    "  CASE WHEN instr(c.dst, ':') THEN 'ipv6' ELSE 'ipv4' END AS family,"
    "  c.src AS src, c.sport AS sport, c.dst AS dst, c.dport AS dport, c.pid AS pid, c.tid AS tid,"
    "  c.uid AS uid, c.gid AS gid, c.comm AS comm, p.exe AS exe, p.cmdline AS cmdline,"
    "  p.start_time AS start_time, g.cgroup_id AS cgroup_id, g.cgroup_path AS cgroup_path,"
    "  g.unit AS unit, g.container_id AS container_id, g.container_name AS container_name,"
    "  g.container_image AS container_image, d.name AS domain, c.socket_cookie AS socket_cookie,"
    "  c.netns AS netns, c.proc AS proc_ref, c.cgroup AS cgroup_ref, c.domain AS domain_ref"
    "  FROM connections c LEFT JOIN processes p ON p.id = c.proc"
    "  LEFT JOIN cgroups g ON g.id = c.cgroup LEFT JOIN domains d ON d.id = c.domain;")

# A version-2 row with everything set, twice the same process (one
# processes row after the migration) and once another.
V2_ROWS = [
    dict(ts=1700000100.5, last_seen=1700000100.5, proto="udp", family="ipv6", src="fd00::5", sport=50001,
         dst="2001:db8::7", dport=53, pid=777, tid=778, uid=1000, gid=1000, comm="v2-proc",
         exe="/usr/bin/v2-proc", cmdline='["v2-proc","--flag"]', start_time=123456, cgroup_id=99,
         cgroup_path="/system.slice/v2.service", unit="v2.service", container_id="c0ffee",
         container_name="v2-ctr", container_image="img:1", domain="v2.example.test",
         socket_cookie=4242424242, netns=4026531840),
    dict(ts=1700000101.5, last_seen=1700000101.5, proto="tcp", family="ipv4", src="10.0.0.9", sport=50002,
         dst="192.0.2.9", dport=443, pid=777, tid=777, uid=1000, gid=1000, comm="v2-proc",
         exe="/usr/bin/v2-proc", cmdline='["v2-proc","--flag"]', start_time=123456, cgroup_id=99,
         cgroup_path="/system.slice/v2.service", unit="v2.service", container_id="c0ffee",
         container_name="v2-ctr", container_image="img:1", domain=None,
         socket_cookie=4242424243, netns=4026531840),
    dict(ts=1700000102.5, last_seen=1700000102.5, proto="tcp", family="ipv4", src="10.0.0.9", sport=50003,
         dst="192.0.2.10", dport=80, pid=888, tid=888, uid=0, gid=0, comm="v2-other",
         exe=None, cmdline=None, start_time=654321, cgroup_id=100, cgroup_path=None, unit=None,
         container_id=None, container_name=None, container_image=None, domain=None,
         socket_cookie=5, netns=4026531840),
]

V2_CONNECTION_COLUMNS = {
    "family", "tid", "uid", "gid", "exe", "cmdline", "start_time", "cgroup_id", "cgroup_path", "unit",
    "container_id", "container_name", "container_image", "domain", "last_seen", "socket_cookie", "netns"}
V2_DNS_COLUMNS = {"source", "ttl"}
V4_CONNECTION_COLUMNS = {"direction", "listener_pid", "listener_start_time", "listener_comm"}
V4_VIEW_COLUMNS = V4_CONNECTION_COLUMNS
OLD_ROW = dict(ts=1700000000.25, proto="tcp", src="10.0.0.5", sport=40000, dst="192.0.2.7", dport=443,
               pid=4242, comm="lanthorn-old")


def user_version(path):
    con = sqlite3.connect(path)
    try:
        return con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


def columns(con, table):
    return {r[1] for r in con.execute("PRAGMA table_info(%s)" % table)}


def fingerprint(path):
    st = os.stat(path)
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest(), st.st_size, st.st_mtime_ns


def live_flow_check(env, w, lport, what):
    t = w.tcp("127.0.0.1", lport)
    ans = lookup(env, "tcp", "127.0.0.1", t["sport"], t["dport"])
    check(ans.get("ok") and ans.get("found"), "%s: live lookup works" % what, ans)
    check_eq(ans["flow"]["pid"], w.pid, "%s: live lookup pid" % what)
    with env.client() as c:
        check(c.request({"op": "ping"}).get("pong"), "%s: ping" % what)
    return t


def migrate_case(env, w, lport, name, make):
    db = env.path(name + ".db")
    old_rows = make(db)
    start = {"v2": 2, "v3": 3}.get(name, 1) if old_rows else 0
    check_eq(user_version(db), start, name + ": starting user_version")
    d = env.daemon(db=db)
    d.wait_ready()
    check_eq(user_version(db), SCHEMA_VERSION, name + ": user_version after queryd opened it")
    st = store_stats(env)
    check(st["enabled"] and st["writable"], name + ": store enabled", st)
    con = sqlite3.connect(db)
    try:
        # version 3: details in their own tables, the view has every
        # version-2 column under its old name
        check(V2_CONNECTION_COLUMNS <= columns(con, "connection_details"),
              name + ": the view's columns", sorted(V2_CONNECTION_COLUMNS - columns(con, "connection_details")))
        check({"proc", "cgroup", "domain"} <= columns(con, "connections"), name + ": reference columns",
              columns(con, "connections"))
        for t in ("processes", "cgroups", "domains"):
            check(columns(con, t), name + ": table " + t)
        check(V2_DNS_COLUMNS <= columns(con, "dns_events"), name + ": new dns_events columns",
              sorted(V2_DNS_COLUMNS - columns(con, "dns_events")))
        # version 4: the direction and the listener of accepted flows
        check(V4_CONNECTION_COLUMNS <= columns(con, "connections"), name + ": version-4 columns",
              columns(con, "connections"))
        check(V4_VIEW_COLUMNS <= columns(con, "connection_details"), name + ": version-4 view columns",
              columns(con, "connection_details"))
        idx = {r[1] for r in con.execute("PRAGMA index_list(connections)")}
        check({"connections_ts"} <= idx, name + ": indexes", idx)
        check_eq(con.execute("PRAGMA journal_mode").fetchone()[0], "wal", name + ": journal_mode")
        check_eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok", name + ": integrity_check")
        if old_rows and name in ("v2", "v3"):
            check_eq(con.execute("SELECT count(*) FROM connections").fetchone()[0], 3, name + ": rows survive")
            # no UPDATE of the old rows: NULL reads as outbound
            check_eq(con.execute("SELECT count(*) FROM connection_details WHERE direction = 'outbound' "
                                 "AND listener_pid IS NULL").fetchone()[0], 3, name + ": old rows are outbound")
            check_eq(con.execute("SELECT count(*) FROM processes").fetchone()[0], 2,
                     name + ": one processes row per process")
            check_eq(con.execute("SELECT count(*) FROM cgroups").fetchone()[0], 2, name + ": cgroups rows")
        elif old_rows:
            got = con.execute("SELECT ts, proto, src, sport, dst, dport, pid, comm FROM connection_details "
                              "WHERE id = 1").fetchone()
            check_eq(got, tuple(OLD_ROW[k] for k in ("ts", "proto", "src", "sport", "dst", "dport", "pid",
                                                        "comm")), name + ": the old row survives")
            check_eq(con.execute("SELECT count(*) FROM dns_events").fetchone()[0], 1, name + ": old dns row")
    finally:
        con.close()
    if old_rows and name in ("v2", "v3"):
        rows = history(env, {"until": 1700000200}, order="asc", limit=10)
        check_eq(len(rows), 3, name + ": history returns the old rows")
        for r in rows:
            check_eq(r.get("direction"), "outbound", name + ": old row %d direction" % r["row_id"])
            check("listener" not in r, name + ": old row without a listener", r)
        check_eq(len(history(env, {"until": 1700000200, "direction": "outbound"})), 3,
                 name + ": direction filter outbound finds the old rows")
        check_eq(len(history(env, {"until": 1700000200, "direction": "inbound"})), 0,
                 name + ": direction filter inbound finds none of them")
        for r, want in zip(rows, V2_ROWS):
            # the row in the FLOW shape: the columns under FLOW names
            for k, v in want.items():
                if k.startswith("container_"):
                    continue
                k = {"ts": "first_seen", "cgroup_path": "cgroup"}.get(k, k)
                if k == "cmdline":
                    v = json.loads(v) if v is not None else []  # a FLOW's: empty if unknown
                if k == "domain" and v is not None:
                    v = {"name": v}
                check_eq(r.get(k), v, name + ": history old row %d member %s" % (r["row_id"], k))
            ctr = want["container_id"] and {"id": want["container_id"], "name": want["container_name"],
                                             "image": want["container_image"]}
            check_eq(r.get("container"), ctr or None, name + ": history old row %d container" % r["row_id"])
        for filt, want in (({"exe": "/usr/bin/v2-proc"}, 2), ({"unit": "v2.service"}, 2),
                           ({"container": "v2-ctr"}, 2), ({"container": "c0ffee"}, 2),
                           ({"domain": "v2.example.test"}, 1), ({"exe": "/nowhere"}, 0),
                           ({"proto": "udp", "until": 1700000200}, 1)):
            check_eq(len(history(env, filt)), want, name + ": history filter %r" % (filt,))
    elif old_rows:
        rows = history(env, {"pid": OLD_ROW["pid"]}, limit=10)
        check_eq(len(rows), 1, name + ": history returns the old row")
        r = rows[0]
        for k in ("proto", "src", "sport", "dst", "dport", "pid", "comm"):
            check_eq(r[k], OLD_ROW[k], name + ": history old row " + k)
        check_eq(r["first_seen"], OLD_ROW["ts"], name + ": history old row first_seen")
        check(r.get("exe") is None and r.get("socket_cookie") is None, name + ": new columns are null", r)
        rows = history(env, {"until": OLD_ROW["ts"] + 1, "comm": "lanthorn-old", "dst": "192.0.2.7"})
        check_eq([x["row_id"] for x in rows], [1], name + ": history filters on the old row")
    # New flows go in next to the old rows.
    t = live_flow_check(env, w, lport, name)
    rows = wait_until(lambda: history(env, {"pid": w.pid, "dport": lport}, limit=100), what="new row")
    check(any(x["sport"] == t["sport"] for x in rows), name + ": new flow written after the migration", rows)
    new = [x for x in rows if x["sport"] == t["sport"]][0]
    check(new.get("direction") == "outbound" and "listener" not in new, name + ": a new outbound row", new)
    check_eq(d.stop(), 0, name + ": queryd exit status")
    check_eq(user_version(db), SCHEMA_VERSION, name + ": user_version after restart")
    # Opening an up-to-date DB again changes nothing in the schema.
    d = env.daemon(db=db)
    d.wait_ready()
    check_eq(store_stats(env)["enabled"], True, name + ": reopened")
    check_eq(d.stop(), 0, name + ": queryd exit status (2)")


def make_v0(db):
    open(db, "wb").close()
    return None


def make_v1(db):
    con = sqlite3.connect(db)
    con.executescript(SCHEMA_V1)
    con.execute("INSERT INTO connections (ts, proto, src, sport, dst, dport, pid, comm) "
                "VALUES (:ts, :proto, :src, :sport, :dst, :dport, :pid, :comm)", OLD_ROW)
    con.execute("INSERT INTO dns_events (ts, pid, comm, query, answers) VALUES (?, ?, ?, ?, ?)",
                (OLD_ROW["ts"], OLD_ROW["pid"], OLD_ROW["comm"], "example.org", '["192.0.2.7"]'))
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()
    return [OLD_ROW]


def make_v2(db):
    make_v1(db)
    con = sqlite3.connect(db)
    con.executescript("DELETE FROM connections;" + SCHEMA_V2_STEP)
    for r in V2_ROWS:
        con.execute("INSERT INTO connections (%s) VALUES (%s)" % (", ".join(r), ", ".join(":" + k for k in r)), r)
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    return V2_ROWS


def make_v3(db):
    make_v2(db)
    con = sqlite3.connect(db)
    con.executescript(SCHEMA_V3_STEP)
    con.execute("PRAGMA user_version = 3")
    con.commit()
    con.close()
    return V2_ROWS


def refused_case(env, w, lport, name, db, expect_words):
    before = fingerprint(db)
    time.sleep(0.02)  # an mtime change would be visible
    d = env.daemon(db=db)
    d.wait_ready()
    live_flow_check(env, w, lport, name)
    st = store_stats(env)
    log(name, "store stats:", st)
    check_eq(st["enabled"], False, name + ": store.enabled")
    problem = st.get("problem", "")
    for word in expect_words:
        check(word in problem.lower(), "%s: stats store.problem mentions %r" % (name, word), problem)
    ans = history(env, {}, ok=False)
    check(not ans.get("ok") and ans["error"]["code"] == "unavailable", name + ": history unavailable", ans)
    check(problem in ans["error"]["message"] or problem[:40] in ans["error"]["message"],
          name + ": history's error says why", ans)
    ans = lookup(env, "tcp", "127.0.0.1", 1000, 80, at=time.time())
    check(not ans.get("ok") and ans["error"]["code"] == "unavailable", name + ": lookup at: unavailable", ans)
    check(stats(env)["loaded"], name + ": the rest of stats still works")
    check_eq(d.stop(), 0, name + ": queryd exit status")
    log_text = open(d.logpath).read()
    for word in expect_words:
        check(word in log_text.lower(), "%s: the log says %r" % (name, word), log_text[-1500:])
    check_eq(fingerprint(db), before, name + ": the database file is untouched (sha256, size, mtime)")
    return log_text


def test(env):
    env.load()
    lport = env.listener()
    w = env.workload(comm="cps-migr")

    migrate_case(env, w, lport, "v0-empty-file", make_v0)
    migrate_case(env, w, lport, "v1", make_v1)
    migrate_case(env, w, lport, "v2", make_v2)
    migrate_case(env, w, lport, "v3", make_v3)

    # From the future: refused, never touched.
    future = env.path("v99.db")
    con = sqlite3.connect(future)
    con.executescript("CREATE TABLE connections (id INTEGER PRIMARY KEY, ts REAL, hyperspace TEXT);"
                      "INSERT INTO connections (ts, hyperspace) VALUES (1, 'x');")
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    text = refused_case(env, w, lport, "v99", future, ["newer"])
    check("99" in text, "v99: the log names the version", text[-1500:])
    check_eq(user_version(future), 99, "v99: user_version unchanged")
    check(not os.path.exists(future + "-wal"), "v99: no WAL created next to the refused file")

    # Read-only: a good v2 database on a read-only bind mount.
    rodir = env.path("ro")
    os.mkdir(rodir)
    rodb = os.path.join(rodir, "ro.db")
    make_v1(rodb)
    d = env.daemon(db=rodb)    # migrate it to v2 while writable
    d.wait_ready()
    check_eq(d.stop(), 0, "ro: preparing queryd exit status")
    check(not os.path.exists(rodb + "-wal"), "ro: clean close removed the WAL")
    env.mount(["--bind", rodir], rodir)
    env.mount(["-o", "remount,ro,bind"], rodir)
    check(_ro_probe(rodir), "ro: the bind mount is read-only")
    before = fingerprint(rodb)
    d = env.daemon(db=rodb)
    d.wait_ready()
    live_flow_check(env, w, lport, "read-only")
    time.sleep(0.3)   # flows reach the store's flush (100 ms)
    st = store_stats(env)
    log("read-only store stats:", st)
    if st["enabled"]:
        # Opened read-only: every write fails, counted and explained.
        wait_until(lambda: store_stats(env)["write_errors"] > 0, timeout=10, what="a write error on a ro db")
        st = store_stats(env)
        check(not st["writable"] and st.get("last_error"), "ro: not writable, with a reason", st)
    else:
        check(st.get("problem"), "ro: stats store.problem says why", st)
    check_eq(d.stop(), 0, "ro: queryd exit status")
    check_eq(fingerprint(rodb), before, "ro: the database file is untouched")
    text = open(d.logpath).read()
    check("history store" in text.lower(), "ro: the log says what happened to the store", text[-1500:])
    env.umount(rodir)

    # Read-only when queryd starts, writable later: flows seen meanwhile are
    # queued, not lost, and land once the database can be created.
    latedir = env.path("late")
    os.mkdir(latedir)
    latedb = os.path.join(latedir, "late.db")
    env.mount(["--bind", latedir], latedir)
    env.mount(["-o", "remount,ro,bind"], latedir)
    d = env.daemon(db=latedb)
    d.wait_ready()
    t = live_flow_check(env, w, lport, "late")
    st = store_stats(env)
    check(st["enabled"] and not st.get("open") and st.get("last_error"),
          "late: store enabled but not open, with a reason", st)
    r = history(env, ok=False)
    check(not r.get("ok") and r["error"]["code"] == "unavailable", "late: history says unavailable", r)
    env.mount(["-o", "remount,rw,bind"], latedir)
    wait_until(lambda: store_stats(env).get("open") and store_stats(env)["queue"] == 0,
               timeout=15, what="the late database to open and drain")
    rows = history(env, filt={"dport": lport, "pid": w.pid})
    check(any(f["sport"] == t["sport"] for f in rows),
          "late: the flow made while read-only is in the history", rows)
    check_eq(d.stop(), 0, "late: queryd exit status")
    env.umount(latedir)


def _ro_probe(d):
    try:
        open(os.path.join(d, ".probe"), "w").close()
    except OSError:
        return True
    os.unlink(os.path.join(d, ".probe"))
    return False


if __name__ == "__main__":
    main(test, "migr")

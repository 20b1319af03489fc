#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12, items 5, 6, 11 and 12: the paths and the peers queryd trusts.

  5. --socket PATH never removes what is not a stale socket of ours: a
     regular file, a symbolic link, a live socket (also one whose backlog
     is full: the old blocking probe hung there) are refused with a
     message naming the path; a stale socket is replaced.
  6. --db never follows a symbolic link (the database's or its -wal's) and
     refuses a directory writable by group or others and not sticky:
     nothing is created at the link's target, the history is disabled
     with one message, and lookups are still answered.
 11. a member of --allow-group with more than 256 supplementary groups
     (the allowed one sorted past the 256th) may query.
 12. a socket queryd binds itself belongs to --allow-group's group, mode
     0660, so a member (not root) connects and queries.

Each case has its own cgroup, pin dir and temp dir; the temp groups made
for 11 and 12 are removed on any exit. Clients not root run through
setpriv with numeric groups, so only the allowed group needs to exist.
"""
import grp
import json
import os
import random
import socket
import stat
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "queryd"))
import harness  # noqa: E402
from harness import Client, Skip, binary, check, check_eq, log, wait_until  # noqa: E402
from qdharness import Workload  # noqa: E402

NOBODY = 65534
EXIT_WAIT = 15

# A client run as another user: connects, sends each op, prints the answers.
CLIENT = r'''
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(10)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(json.dumps({"connect_error": e.strerror}))
    sys.exit(0)
out, buf = [], b""
for op in sys.argv[2:]:
    s.sendall(json.dumps({"op": op}).encode() + b"\n")
    while b"\n" not in buf:
        chunk = s.recv(1 << 20)
        if not chunk:
            break
        buf += chunk
    line, _, buf = buf.partition(b"\n")
    out.append(json.loads(line) if line else None)
print(json.dumps({"answers": out}))
'''


class Env(harness.CgroupEnv):
    prefix = "cpsafe-sd-"
    tmp_prefix = "cpsafe-sd-"

    def __init__(self, tag):
        super().__init__(tag)
        self.groups = []

    def setup(self):
        # clients run as nobody: they must reach the socket in here
        os.chmod(self.tmp, 0o711)
        os.mkdir(self.cgroup)

    def queryd_args(self, *extra, sock=None, db=None):
        args = [binary("CONNPID_QUERYD"), "--pin-dir", self.pin_dir, "--socket", sock or self.sock,
                "--no-docker"]
        args += ["--db", db] if db else ["--no-store"]
        return args + list(extra)

    def daemon(self, *extra, db=None):
        return harness.Daemon(self, self.queryd_args(*extra, db=db))

    def run_to_exit(self, args):
        """queryd that must give up at once: (rc, output)."""
        try:
            r = subprocess.run(args, capture_output=True, text=True, timeout=EXIT_WAIT)
        except subprocess.TimeoutExpired as e:
            out = e.stderr or b""
            raise harness.TestFailure("queryd still running after %ds instead of refusing; output: %s"
                                      % (EXIT_WAIT, out.decode(errors="replace")[-2000:]))
        log("queryd rc %d: %s" % (r.returncode, r.stderr.strip()[-1000:]))
        return r.returncode, r.stdout + r.stderr

    def temp_group(self):
        """A new group with a free gid in 60100..60999; removed at cleanup."""
        for _ in range(20):
            gid = random.randint(60100, 60999)
            name = "cpsafe%d-%d" % (os.getpid() % 100000, gid)
            try:
                grp.getgrgid(gid)
                continue
            except KeyError:
                pass
            self.groups.append(name)   # before: cleanup tries even a half-made one
            r = harness.run_logged(["groupadd", "-g", str(gid), name], quiet=True)
            if r.returncode == 0:
                return name, gid
            self.groups.remove(name)
        raise Skip("could not create a temporary group (groupadd)")

    def as_user(self, groups, sock, *ops):
        """CLIENT as uid/gid nobody with these supplementary gids."""
        args = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY),
                "--groups", ",".join(str(g) for g in groups), "--",
                sys.executable, "-c", CLIENT, sock] + list(ops)
        r = harness.run_logged(args, timeout=30, quiet=True)
        check(r.returncode == 0, "client as nobody failed (rc %d)" % r.returncode, r.stderr)
        return json.loads(r.stdout)

    def after_cleanup(self):
        for name in self.groups:
            r = subprocess.run(["groupdel", name], capture_output=True, text=True)
            if r.returncode != 0 and "does not exist" not in r.stderr:
                log("cleanup: groupdel %s: %s" % (name, r.stderr.strip()))


def require():
    harness.require_environment("bpf, cgroups, users", ("CONNPID_LOADER", "CONNPID_QUERYD"))
    for tool in ("setpriv", "groupadd", "groupdel"):
        if not any(os.access(os.path.join(d, tool), os.X_OK) for d in os.environ.get(
                "PATH", "/usr/sbin:/usr/bin").split(":") + ["/usr/sbin", "/sbin"]):
            raise Skip("no %s" % tool)


def stale_socket(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()   # the file stays: what a kill -9 leaves


def ping(path):
    with Client(path) as c:
        return c.request({"op": "ping"}).get("pong") is True


# ---------------------------------------------------------------- item 5

def test_socket_regular_file(env):
    with open(env.sock, "w") as f:
        f.write("precious\n")
    rc, out = env.run_to_exit(env.queryd_args())
    check(rc != 0, "queryd started over a regular file", out)
    check(env.sock in out and "regular file" in out, "message names the path and what is there", out)
    with open(env.sock) as f:
        check_eq(f.read(), "precious\n", "the regular file's content")


def test_socket_symlink(env):
    target = os.path.join(env.tmp, "target")
    with open(target, "w") as f:
        f.write("t\n")
    os.symlink(target, env.sock)
    rc, out = env.run_to_exit(env.queryd_args())
    check(rc != 0, "queryd started over a symbolic link", out)
    check(env.sock in out and "symbolic link" in out, "message names the path and what is there", out)
    check(os.path.islink(env.sock) and os.readlink(env.sock) == target, "the symlink is still there")
    with open(target) as f:
        check_eq(f.read(), "t\n", "the link's target")


def test_socket_live(env):
    first = env.daemon()
    first.wait_ready()
    ino = os.lstat(env.sock).st_ino
    rc, out = env.run_to_exit(env.queryd_args())
    check(rc != 0, "a second queryd took a live socket", out)
    check(env.sock in out and "in use" in out, "message says the socket is in use", out)
    check(first.alive(), "the first queryd died")
    check_eq(os.lstat(env.sock).st_ino, ino, "the live socket's inode")
    check(ping(env.sock), "the first queryd answers on its socket")

    # Live but busy: the listener's backlog is full. The probe must not
    # wait (the old blocking connect() hung here forever).
    busy = os.path.join(env.tmp, "busy.sock")
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    env.socks.append(lst)
    lst.bind(busy)
    lst.listen(0)
    for _ in range(64):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.setblocking(False)
        env.socks.append(c)
        try:
            c.connect(busy)
        except BlockingIOError:
            break
    else:
        raise harness.TestFailure("could not fill the listener's backlog")
    rc, out = env.run_to_exit(env.queryd_args(sock=busy))
    check(rc != 0 and "in use" in out, "a busy live socket is refused", out)
    check(stat.S_ISSOCK(os.lstat(busy).st_mode), "the busy socket is still there")


def test_socket_stale(env):
    stale_socket(env.sock)
    d = env.daemon()
    d.wait_ready()   # answers on the path: the stale socket was replaced
    check("Removed stale socket " + env.sock in d.log(), "the log says a stale socket was removed", d.log())
    check_eq(d.stop(), 0, "queryd exit code")
    check(not os.path.lexists(env.sock), "queryd removes its own socket on exit")


# ---------------------------------------------------------------- items 11, 12

def test_self_bound_group(env):
    name, gid = env.temp_group()
    d = env.daemon("--allow-group", name)
    d.wait_ready()
    st = os.lstat(env.sock)
    check_eq(st.st_gid, gid, "group of the socket bound with --allow-group %s" % name)
    check_eq(stat.S_IMODE(st.st_mode), 0o660, "mode of the socket")
    r = env.as_user([gid], env.sock, "ping", "stats")
    check("answers" in r, "a member of %s cannot connect" % name, r)
    ping_ans, stats_ans = r["answers"]
    check(ping_ans and ping_ans.get("pong"), "ping as a member", r)
    check(stats_ans and stats_ans.get("ok"), "stats as a member", r)
    # not a member: the socket's mode keeps it out
    r = env.as_user([NOBODY], env.sock, "ping")
    check("connect_error" in r, "a non-member connected", r)


def test_many_groups(env):
    name, gid = env.temp_group()
    d = env.daemon("--allow-group", name)
    d.wait_ready()
    # The socket's group is item 12's business: set here so that only the
    # groups check stands between this member and its answer.
    os.chown(env.sock, -1, gid)
    os.chmod(env.sock, 0o660)
    # the kernel sorts them: 300 gids below ours put it past entry 256
    extra = list(range(50000, 50300))
    r = env.as_user(extra + [gid], env.sock, "stats")
    check("answers" in r, "the member could not connect", r)
    ans = r["answers"][0]
    check(ans and ans.get("ok"), "stats by a member with %d groups" % (len(extra) + 1), ans)
    # and one without the group among 300 others is still refused
    r = env.as_user(extra, env.sock, "stats")
    check("connect_error" in r or r["answers"][0]["error"]["code"] == "permission_denied",
          "a non-member with 300 groups is refused", r)


# ---------------------------------------------------------------- item 6

def store_of(path):
    with Client(path) as c:
        ans = c.request({"op": "stats"})
    check(ans.get("ok"), "stats", ans)
    return ans["stats"]["store"]


def test_db_symlink(env):
    dbdir = os.path.join(env.tmp, "db")
    os.mkdir(dbdir, 0o700)
    elsewhere = os.path.join(env.tmp, "elsewhere")
    os.mkdir(elsewhere, 0o700)
    victim = os.path.join(elsewhere, "victim")
    db = os.path.join(dbdir, "history.db")
    os.symlink(victim, db)
    d = env.daemon(db=db)
    d.wait_ready()
    time.sleep(0.5)
    check(not os.path.lexists(victim), "a file was created at the symlink's target")
    st = store_of(env.sock)
    check(not st.get("enabled"), "history disabled", st)
    check("symbolic link" in st.get("problem", ""), "stats say why", st)
    check(ping(env.sock), "queryd serves")
    check_eq(d.stop(), 0, "queryd exit code")
    check(not os.path.lexists(victim), "a file was created at the symlink's target (exit)")

    # the database is fine, its -wal is the link (SQLite's NOFOLLOW alone
    # does not cover it)
    os.unlink(db)
    wal_victim = os.path.join(elsewhere, "wal-victim")
    os.symlink(wal_victim, db + "-wal")
    d = env.daemon(db=db)
    d.wait_ready()
    time.sleep(0.5)
    check(not os.path.lexists(wal_victim), "a file was created at the -wal symlink's target")
    st = store_of(env.sock)
    check(not st.get("enabled") and "-wal" in st.get("problem", ""), "history disabled, -wal named", st)
    d.stop()
    check(not os.path.lexists(wal_victim), "a file was created at the -wal symlink's target (exit)")


def test_db_dir_writable(env):
    env.load()
    dbdir = os.path.join(env.tmp, "shared")
    os.mkdir(dbdir)
    os.chmod(dbdir, 0o777)
    db = os.path.join(dbdir, "history.db")
    d = env.daemon(db=db)
    d.wait_ready()
    # lookups are answered without the history
    lst, lport = env.listen_tcp()
    w = Workload(env)
    t = w.cmd({"cmd": "tcp", "host": "127.0.0.1", "port": lport})
    req = {"op": "lookup", "proto": "tcp", "dst": "127.0.0.1", "sport": t["sport"], "dport": lport}
    with Client(env.sock) as c:
        ans = wait_until(lambda: [a for a in [c.request(req)] if a.get("found")],
                         timeout=10, what="lookup of the workload's flow")[0]
    check_eq(ans["flow"]["pid"], w.pid, "lookup pid")
    st = store_of(env.sock)
    check(not st.get("enabled"), "history disabled in a world-writable dir", st)
    check(dbdir in st.get("problem", "") and "writable" in st.get("problem", ""), "stats say why", st)
    check(not os.path.lexists(db), "the database was created in a world-writable directory")
    # said once, not at every retry (those come every 2 s)
    time.sleep(4.5)
    n = d.log().count("refusing")
    check_eq(n, 1, "log lines refusing the db (log: %s)" % d.log())
    d.stop()

    # sticky (like /tmp): others cannot swap our files; accepted
    os.chmod(dbdir, 0o1777)
    d = env.daemon(db=db)
    d.wait_ready()
    st = store_of(env.sock)
    check(st.get("enabled") and st.get("open"), "history in a sticky directory", st)
    d.stop()
    check(os.path.isfile(db), "database created in the sticky directory")


def main():
    harness.run_cases([test_socket_regular_file, test_socket_symlink, test_socket_live,
                       test_socket_stale, test_self_bound_group, test_many_groups,
                       test_db_symlink, test_db_dir_writable],
                      Env, "sd", require, skip_skips_file=False)


main()

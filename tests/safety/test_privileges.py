#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 item 10: least privilege on the pins.

Every pin used to be 0660 in the group the socket admits, so a member
holding CAP_BPF could rewrite attributions or detach the programs. Now:
root owns every pin; links and programs are 0600 root:root (links/ and
progs/ 0700); maps are 0640 root:<daemon group> and opened read-only by
readers; only the rings are 0660 (their consumer page is mapped writable).

Two temporary users run a probe with CAP_BPF (setpriv, ambient caps; CAP_BPF
also passes kernel.unprivileged_bpf_disabled): one in the daemon's group
(the loader's --group, here a temporary group), one in a query group only.
The query member cannot open any map for writing nor any link or program,
even with CAP_DAC_READ_SEARCH; the daemon member reads every map read-only,
maps and drains the ring read-write, and can write no map but the rings nor
touch a link. Users and groups are removed at the end, even on failure."""
import grp
import json
import os
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402

RINGS = ("events", "dns_events")
PYTHON = "/usr/bin/python3"  # readable by the test users, unlike a root-only pyenv

# Run as the test user: try every pin read-only and read-write; for the
# rings, also map the consumer page writable; for meta, look key 0 up.
PROBE = r'''
import ctypes, json, mmap, os, struct, sys
NR = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "loongarch64": 280,
      "s390x": 351, "ppc64le": 361}[os.uname().machine]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def bpf(cmd, attr):
    r = libc.syscall(ctypes.c_long(NR), ctypes.c_int(cmd), ctypes.byref(attr),
                     ctypes.c_uint(len(attr)))
    return r if r >= 0 else -ctypes.get_errno()
def obj_get(path, flags):
    p = ctypes.create_string_buffer(os.fsencode(path))
    a = ctypes.create_string_buffer(128)
    struct.pack_into("=QII", a, 0, ctypes.addressof(p), 0, flags)
    return bpf(7, a)
def name(r):
    return "ok" if r >= 0 else __import__("errno").errorcode.get(-r, str(-r))
out = {}
pin_dir = sys.argv[1]
for rel in sys.argv[2:]:
    path = os.path.join(pin_dir, rel)
    res = {}
    for mode, flags in (("ro", 1 << 3), ("rw", 0)):
        fd = obj_get(path, flags)
        res[mode] = name(fd)
        if fd < 0:
            continue
        if mode == "rw" and rel in ("events", "dns_events"):
            try:
                mmap.mmap(fd, mmap.PAGESIZE, mmap.MAP_SHARED,
                          mmap.PROT_READ | mmap.PROT_WRITE).close()
                res["mmap_rw"] = "ok"
            except OSError as e:
                res["mmap_rw"] = __import__("errno").errorcode.get(e.errno, str(e.errno))
        if mode == "ro" and rel == "meta":
            k = ctypes.create_string_buffer(4)
            v = ctypes.create_string_buffer(4096)
            a = ctypes.create_string_buffer(128)
            struct.pack_into("=IIQQQ", a, 0, fd, 0, ctypes.addressof(k), ctypes.addressof(v), 0)
            res["lookup"] = name(bpf(1, a))
        os.close(fd)
    out[rel] = res
print(json.dumps(out))
'''


def sh(*args):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=60)
    check(p.returncode == 0, "%s failed (%d)" % (" ".join(args), p.returncode), p.stderr)


class Accounts:
    """Temporary groups and users, always removed again."""

    def __init__(self):
        tag = secrets.token_hex(3)
        self.daemon_group = "cpdg" + tag
        self.query_group = "cpqg" + tag
        self.daemon_user = "cpdu" + tag
        self.query_user = "cpqu" + tag
        self.made = []

    def __enter__(self):
        try:
            for g in (self.daemon_group, self.query_group):
                sh("groupadd", g)
                self.made.append(("groupdel", g))
            for u, g in ((self.daemon_user, self.daemon_group), (self.query_user, self.query_group)):
                sh("useradd", "-M", "-N", "-g", g, "-s", "/usr/sbin/nologin", u)
                self.made.insert(0, ("userdel", u))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        for cmd, name in self.made:
            p = subprocess.run([cmd, name], capture_output=True, text=True, timeout=60)
            if p.returncode != 0:
                T.log("cleanup: %s %s: %s" % (cmd, name, p.stderr.strip()))
        self.made = []


def probe(user, group, caps, pin_dir, entries):
    capargs = ",".join("+" + c for c in caps)
    p = subprocess.run(["setpriv", "--reuid", user, "--regid", group, "--init-groups",
                        "--inh-caps", capargs, "--ambient-caps", capargs,
                        PYTHON, "-c", PROBE, pin_dir] + entries,
                       capture_output=True, text=True, timeout=60, cwd="/")
    check(p.returncode == 0, "probe as %s (%s) failed" % (user, capargs), p.stderr)
    return json.loads(p.stdout)


def pin_entries(pin_dir):
    maps, other = [], []
    for n in sorted(os.listdir(pin_dir)):
        if n in ("links", "progs"):
            other += [n + "/" + x for x in sorted(os.listdir(os.path.join(pin_dir, n)))]
        else:
            maps.append(n)
    return maps, other


def check_modes(pin_dir, gid):
    def mode_of(path):
        st = os.lstat(path)
        return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)

    check_eq(mode_of(pin_dir), (0o750, 0, gid), "pin dir mode, uid, gid")
    maps, other = pin_entries(pin_dir)
    for sub in ("links", "progs"):
        check_eq(mode_of(os.path.join(pin_dir, sub)), (0o700, 0, 0), "%s/ mode, uid, gid" % sub)
    for rel in other:
        check_eq(mode_of(os.path.join(pin_dir, rel)), (0o600, 0, 0), "%s mode, uid, gid" % rel)
    for m in maps:
        want = 0o660 if m in RINGS else 0o640
        check_eq(mode_of(os.path.join(pin_dir, m)), (want, 0, gid), "%s mode, uid, gid" % m)
    return maps, other


def check_denied(res, rels, modes, who):
    for rel in rels:
        for mode in modes:
            check_eq(res[rel][mode], "EACCES", "%s: open %s %s" % (who, rel, mode))


@case
def pins_are_least_privilege():
    for tool in ("setpriv", "useradd", "groupadd"):
        if not shutil.which(tool):
            T.skip("%s is not installed" % tool)
    if not os.access(PYTHON, os.X_OK):
        T.skip("%s is missing (the probe runs as a plain user)" % PYTHON)
    with Accounts() as acc, T.TestEnv("privs") as env:
        env.load("--no-seed", "--group", acc.daemon_group)
        gid = grp.getgrnam(acc.daemon_group).gr_gid
        maps, other = check_modes(env.pin_dir, gid)
        check(len(other) > 10 and "events" in maps and "conn_to_pid_v4" in maps,
              "pins to probe", maps, other)
        writable_maps = [m for m in maps if m not in RINGS]
        everything = maps + other

        # the query group with CAP_BPF: the pin dir is closed to it
        res = probe(acc.query_user, acc.query_group, ["bpf"], env.pin_dir, everything)
        check_denied(res, everything, ("ro", "rw"), "query member with CAP_BPF")
        # ... even holding CAP_DAC_READ_SEARCH it writes nothing, touches no link
        res = probe(acc.query_user, acc.query_group, ["bpf", "dac_read_search"],
                    env.pin_dir, everything)
        check_denied(res, maps, ("rw",), "query member with CAP_BPF+DAC_READ_SEARCH")
        check_denied(res, other, ("rw",), "query member with CAP_BPF+DAC_READ_SEARCH")

        # the daemon's group, with the unit's capabilities
        for caps in (["bpf"], ["bpf", "dac_read_search"]):
            who = "daemon member with %s" % "+".join(caps)
            res = probe(acc.daemon_user, acc.daemon_group, caps, env.pin_dir, everything)
            for m in maps:
                check_eq(res[m]["ro"], "ok", "%s: open %s read-only" % (who, m))
            check_eq(res["meta"].get("lookup"), "ok", "%s: lookup in meta read-only" % who)
            check_denied(res, writable_maps, ("rw",), who)
            for r in RINGS:
                if r in res:
                    check_eq(res[r]["rw"], "ok", "%s: open %s read-write" % (who, r))
                    check_eq(res[r].get("mmap_rw"), "ok", "%s: map %s's consumer page" % (who, r))
            # links and programs only open read-write, and that is root's
            for rel in other:
                check(res[rel]["rw"] == "EACCES", "%s: open %s read-write: %s"
                      % (who, rel, res[rel]["rw"]))

        # the daemon itself, running as that user, still starts and reads the maps
        queryd = os.environ.get("CONNPID_QUERYD")
        if queryd:
            check_queryd_as(acc, env, queryd)


def check_queryd_as(acc, env, queryd):
    """connpid-queryd as the daemon user (CAP_BPF + CAP_DAC_READ_SEARCH, as
    the unit gives it) opens the pins: ring read-write, maps read-only."""
    tmp = tempfile.mkdtemp(prefix="connpid-privs-")
    try:
        os.chown(tmp, -1, grp.getgrnam(acc.daemon_group).gr_gid)
        os.chmod(tmp, 0o770)
        caps = "+bpf,+dac_read_search"
        p = subprocess.run(["setpriv", "--reuid", acc.daemon_user, "--regid", acc.daemon_group,
                            "--init-groups", "--inh-caps", caps, "--ambient-caps", caps,
                            "timeout", "-s", "TERM", "4", queryd, "--pin-dir", env.pin_dir,
                            "--socket", os.path.join(tmp, "s"), "--no-store", "--no-docker"],
                           capture_output=True, text=True, timeout=60, cwd="/")
        out = p.stdout + p.stderr
        check("Using pins in" in out, "queryd as %s did not open the pins" % acc.daemon_user, out[-2000:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    T.run_cases()

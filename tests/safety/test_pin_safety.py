#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 items 2-4: what a pin dir may hold that connpid did not put there.

2. A foreign `meta` (an ARRAY map with 16 KiB values) was read into a
   48-byte struct on the loader's stack. Every tool must refuse it cleanly.
3. The loader's "unfinished load" cleanup removed every pin in the dir,
   other tools' included. Foreign entries are now refused, by name, and
   never removed.
4. A symlink in links/ made --unload detach another instance's program.
   Nothing is followed: not a pin, not links/, not the pin dir itself.
"""
import ctypes
import json
import os
import secrets
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402
from harness import Client, scratch_queryd  # noqa: E402

BPF_MAP_CREATE = 0
BPF_OBJ_PIN = 6
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_HASH = 1


class Bpf(T.Bpf):
    def map_create(self, mtype, key_size, value_size, max_entries, name):
        attr = ctypes.create_string_buffer(self.ATTR_SIZE)
        struct.pack_into("=IIIIIII16s", attr, 0, mtype, key_size, value_size,
                         max_entries, 0, 0, 0, name.encode()[:15])
        return self._call(BPF_MAP_CREATE, attr)

    def obj_pin(self, fd, path):
        p = ctypes.create_string_buffer(os.fsencode(path))
        attr = ctypes.create_string_buffer(self.ATTR_SIZE)
        struct.pack_into("=QII", attr, 0, ctypes.addressof(p), fd, 0)
        self._call(BPF_OBJ_PIN, attr)

    def pin_new_map(self, path, mtype, key_size, value_size, name):
        fd = self.map_create(mtype, key_size, value_size, 1, name)
        try:
            self.obj_pin(fd, path)
        finally:
            os.close(fd)


class ForeignDir:
    """A private pin dir with foreign pins in it, removed on exit."""

    def __init__(self, tag):
        self.path = os.path.join(T.BPFFS_ROOT, "connpid-safety-%d-%s-%s"
                                 % (os.getpid(), secrets.token_hex(3), tag))

    def __enter__(self):
        os.mkdir(self.path, 0o700)
        return self

    def __exit__(self, *exc):
        T.remove_pin_tree(self.path)


def check_clean_failure(p, what, *names):
    """Exit 1 (not a signal), and one error that names each entry."""
    check(p.returncode == 1, "%s: want a clean exit 1, got %d" % (what, p.returncode),
          p.stderr[-1500:])
    for n in names:
        check(n in p.stderr, "%s: the error does not name '%s'" % (what, n), p.stderr)


def queryd_status(pin_dir):
    """Start queryd on pin_dir; its `status` answer, and that it survived."""
    with scratch_queryd(pin_dir, "connpid-pinsafety-") as q:
        with Client(q.sock, timeout=30) as c:
            ans = c.request({"op": "status"})
        check(ans.get("ok"), "queryd status on %s" % pin_dir, ans)
        check(q.poll() is None, "queryd died: %s" % q.log_text())
        return ans["status"]


@case
def foreign_meta_with_16k_values():
    bpf = Bpf()
    with T.TestEnv("fmeta") as env, ForeignDir("meta") as d:
        meta = os.path.join(d.path, "meta")
        bpf.pin_new_map(meta, BPF_MAP_TYPE_ARRAY, 4, 16384, "meta")

        p = T.run([env.loader, "--pin-dir", d.path, "--cgroup", env.cgroup, "--no-seed"])
        check_clean_failure(p, "load into a dir with a foreign meta", "meta")
        check(os.path.exists(meta), "the loader removed the foreign meta pin")
        T.check_nothing_attached(env.cgroup)

        for args in (["--status"], ["--status", "--json"]):
            p = T.run([env.loader, "--pin-dir", d.path] + args)
            check_eq(p.returncode, 0, "connpid-loader %s exit (stderr %s)" % (args, p.stderr[-800:]))
        st = json.loads(p.stdout)
        check_eq(st["loaded"], False, "--status --json loaded")
        check("meta" in st.get("problem", ""), "--status --json problem names meta", st)

        p = T.run([env.loader, "--pin-dir", d.path, "--unload"])
        check_clean_failure(p, "--unload of a dir with a foreign meta", "meta")
        check(os.path.exists(meta), "--unload removed the foreign meta pin")

        st = queryd_status(d.path)
        check_eq(st.get("loaded"), False, "queryd status loaded")
        check("meta" in st.get("problem", ""), "queryd status problem names meta", st)


@case
def foreign_pins_are_refused_and_kept():
    """An unfinished-looking dir with other tools' pins: refused by name,
    nothing removed (the old cleanup wiped the dir, a nested one too)."""
    bpf = Bpf()
    with T.TestEnv("fpins") as env, ForeignDir("pins") as d:
        other = os.path.join(d.path, "other_tool_map")
        bpf.pin_new_map(other, BPF_MAP_TYPE_HASH, 4, 4, "other_tool_map")
        # a known name, but not connpid's object
        config = os.path.join(d.path, "config")
        bpf.pin_new_map(config, BPF_MAP_TYPE_ARRAY, 4, 4, "not_config")
        # another tool's pin dir nested inside, as /sys/fs/bpf holds them
        os.mkdir(os.path.join(d.path, "othertool"))
        nested = os.path.join(d.path, "othertool", "state")
        bpf.pin_new_map(nested, BPF_MAP_TYPE_HASH, 4, 4, "state")

        p = T.run([env.loader, "--pin-dir", d.path, "--cgroup", env.cgroup, "--no-seed"])
        check_clean_failure(p, "load into a dir with foreign pins",
                            "other_tool_map", "config", "othertool")
        for path in (other, config, nested):
            check(os.path.exists(path), "the loader removed %s" % path)
        T.check_nothing_attached(env.cgroup)

        p = T.run([env.loader, "--pin-dir", d.path, "--unload"])
        check_clean_failure(p, "--unload of a dir with foreign pins", "other_tool_map")
        for path in (other, config, nested):
            check(os.path.exists(path), "--unload removed %s" % path)


def swap_for_symlink(path, target):
    os.unlink(path)
    os.symlink(target, path)


@case
def symlinks_are_never_followed():
    with T.TestEnv("symA") as a, T.TestEnv("symB") as b:
        a.load("--no-seed")
        b.load("--no-seed")
        T.check_attached_once(b.cgroup)
        a_link = os.path.join(a.pin_dir, "links", "connpid_sockops")
        b_link = os.path.join(b.pin_dir, "links", "connpid_sockops")
        swap_for_symlink(a_link, b_link)

        st = a.status_json()
        row = [l for l in st["links"] if l["name"] == "connpid_sockops"]
        check(row and "symlink" in row[0].get("error", ""),
              "--status: the symlinked link is reported, not described", st["links"])

        p = T.run([a.loader, "--unload", "--pin-dir", a.pin_dir])
        check_clean_failure(p, "--unload with a symlink in links/", "links/connpid_sockops")
        T.check_attached_once(b.cgroup)
        p = a.load("--no-seed", check_ok=False)
        check_clean_failure(p, "load with a symlink in links/", "links/connpid_sockops")
        T.check_attached_once(b.cgroup)
        os.unlink(a_link)

        # links/ itself a symlink to the other instance's links/
        a_links = os.path.join(a.pin_dir, "links")
        T.remove_pin_tree(a_links)
        os.symlink(os.path.join(b.pin_dir, "links"), a_links)
        p = T.run([a.loader, "--unload", "--pin-dir", a.pin_dir])
        check_clean_failure(p, "--unload with links/ a symlink", "links")
        T.check_attached_once(b.cgroup)
        check(os.path.exists(b_link), "B's link pin was removed through A's symlinked links/")
        os.unlink(a_links)

        # the pin dir itself a symlink to B's
        alias = a.pin_dir + "-alias"
        os.symlink(b.pin_dir, alias)
        try:
            p = T.run([a.loader, "--unload", "--pin-dir", alias])
            check_clean_failure(p, "--unload of a symlinked pin dir", alias)
            T.check_attached_once(b.cgroup)
            check(os.path.exists(b_link), "B's pins were removed through a symlinked pin dir")
        finally:
            os.unlink(alias)
        a.unload()
        T.check_attached_once(b.cgroup)


if __name__ == "__main__":
    T.run_cases()

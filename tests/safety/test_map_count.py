#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Issue 12 item 1: counting the hash maps of a busy host.

map_count_batch() used a 4-byte value buffer for every map: counting
sock_creators (32 B values), exec_info (264 B) or gai_calls (16 B) past a
few hundred entries overflowed the heap ("double free or corruption" from
`connpid-loader --status` and queryd's `status`). Here every hash map of a
private load is filled past 4096 entries (gai_calls, 4096 max, to full) and
every reader that counts them runs: no crash, and the counts are the
kernel's own (a key walk after the fill)."""
import ctypes
import json
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402
from harness import Client, scratch_queryd  # noqa: E402

FILL = 5000
# name: (key size, value size); gai_calls only holds 4096
HASH_MAPS = {
    "conn_to_pid_v4": (12, 4),
    "conn_to_pid_v6": (24, 4),
    "exec_info": (4, 264),
    "gai_calls": (4, 16),
}
BPF_MAP_UPDATE_BATCH = 26


class Bpf(T.Bpf):
    def update_batch(self, fd, keys, values, key_size, value_size):
        """BPF_MAP_UPDATE_BATCH of every (key, value) in one call."""
        n = len(keys)
        kb = ctypes.create_string_buffer(b"".join(keys), n * key_size)
        vb = ctypes.create_string_buffer(b"".join(values), n * value_size)
        attr = ctypes.create_string_buffer(self.ATTR_SIZE)
        # in_batch, out_batch, keys, values, count, map_fd, elem_flags, flags
        struct.pack_into("=QQQQIIQQ", attr, 0, 0, 0, ctypes.addressof(kb),
                         ctypes.addressof(vb), n, fd, 0, 0)
        self._call(BPF_MAP_UPDATE_BATCH, attr)


def fill(env, bpf):
    """Fill each hash map; return {name: entries the kernel holds}."""
    truth = {}
    for name, (ks, vs) in HASH_MAPS.items():
        fd = bpf.obj_get(os.path.join(env.pin_dir, name))
        try:
            mtype, _, key_size, value_size, max_entries = bpf.map_info(fd)
            check_eq((key_size, value_size), (ks, vs), "%s key and value size" % name)
            n = min(FILL, max_entries)
            keys = [struct.pack("<I", i + 1).ljust(ks, b"\x07") for i in range(n)]
            values = [bytes([(i * 7) & 0xff]) * vs for i in range(n)]
            for i in range(0, n, 1000):
                bpf.update_batch(fd, keys[i:i + 1000], values[i:i + 1000], ks, vs)
            truth[name] = len(bpf.keys(fd, ks))
            T.log("%s: %d B values, %d inserted, %d held (max %d)"
                  % (name, vs, n, truth[name], max_entries))
            check(truth[name] > 4000, "%s holds only %d entries after the fill"
                  % (name, truth[name]))
        finally:
            os.close(fd)
    return truth


def check_counts(maps, truth, what):
    by_name = {m["name"]: m for m in maps}
    for name, n in truth.items():
        m = by_name.get(name)
        check(m is not None, "%s: map %s not listed" % (what, name), maps)
        check_eq(m.get("entries"), n, "%s: entries of %s" % (what, name))


@case
def loader_status_counts_full_maps():
    bpf = Bpf()
    with T.TestEnv("mapcount") as env:
        env.load("--no-seed")
        truth = fill(env, bpf)
        p = T.run([env.loader, "--status", "--json", "--pin-dir", env.pin_dir])
        check_eq(p.returncode, 0, "connpid-loader --status --json exit (stderr: %s)"
                 % p.stderr[-500:])
        st = json.loads(p.stdout)
        check_counts(st["maps"], truth, "loader --status --json")
        p = T.run([env.loader, "--status", "--pin-dir", env.pin_dir])
        check_eq(p.returncode, 0, "connpid-loader --status exit (stderr: %s)" % p.stderr[-500:])
        for name, n in truth.items():
            line = [l for l in p.stdout.splitlines() if l.split()[:1] == [name]]
            check(line and line[0].split()[4] == str(n),
                  "--status table: %s row does not say %d entries" % (name, n), p.stdout)

        # connpidctl --direct reads the same filled maps: a key we put there
        ctl = T.binary("CONNPIDCTL")
        p = T.run([ctl, "--pin-dir", env.pin_dir, "--json", "lookup", "7.7.7.7",
                   "1", "1", "--protocol", "tcp", "--direct"])
        check(p.returncode in (0, 1), "connpidctl --direct lookup crashed or failed (rc %d): %s"
              % (p.returncode, p.stderr[-500:]))

        # queryd: `status` describes the pins (counting every map), `stats` the flow maps
        with scratch_queryd(env.pin_dir, "connpid-mapcount-") as q:
            with Client(q.sock, timeout=30) as c:
                ans = c.request({"op": "status"})
                check(ans.get("ok"), "queryd status answer", ans)
                check_counts(ans["status"]["maps"] if "status" in ans else ans["maps"],
                             truth, "queryd status")
                ans = c.request({"op": "stats"})
                check(ans.get("ok"), "queryd stats answer", ans)
            p = T.run([ctl, "--socket", q.sock, "status"])
            check_eq(p.returncode, 0, "connpidctl status exit (stderr: %s)" % p.stderr[-500:])
            check(q.poll() is None, "queryd died: %s" % q.log_text())
        check(q.returncode in (0, -15), "queryd exit %r" % q.returncode)


if __name__ == "__main__":
    T.run_cases()

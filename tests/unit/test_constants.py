#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The Python mirrors of the C constants (tests/lib/connpidtest.py) agree
with their one definition: common/connpid.h (ABI version, protocol and
address family numbers, name lengths, event sources and flags, meta
flags, stats slots and their names, key layouts) and loader/pindir.c (the map pin names). A
slot added to enum connpid_stat without its Python name fails here."""
import os
import re
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("CONNPID_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import connpidtest as T  # noqa: E402
from harness import case, check, check_eq, log, run_cases  # noqa: E402

C_TYPE_SIZES = {"__u8": 1, "char": 1, "__u16": 2, "__u32": 4, "__u64": 8}


def read_source(rel):
    with open(os.path.join(SOURCE, rel)) as f:
        # comments out, so that no commented-out line counts
        return re.sub(r"/\*.*?\*/", " ", f.read(), flags=re.S)


def defines(text):
    """#define NAME <integer> (with an optional u suffix and shift)."""
    out = {}
    for name, value in re.findall(r"^#define\s+(\w+)\s+\(?([0-9x]+u?(?:\s*<<\s*\d+)?)\)?\s*$",
                                  text, flags=re.M):
        base, _, shift = value.replace("u", "").partition("<<")
        out[name] = int(base, 0) << int(shift or 0)
    return out


def enum_members(text, name):
    """[(member, value)] of `enum name`, values counted as C does."""
    m = re.search(r"enum\s+%s\s*\{(.*?)\};" % re.escape(name), text, flags=re.S)
    check(m, "enum %s not found in common/connpid.h" % name)
    members, value = [], 0
    for item in filter(None, (s.strip() for s in m.group(1).split(","))):
        member, _, explicit = (p.strip() for p in item.partition("="))
        value = int(explicit, 0) if explicit else value
        members.append((member, value))
        value += 1
    return members


def packed_struct_size(text, name):
    """Size of a packed struct of plain __uN/char fields and arrays."""
    m = re.search(r"struct\s+%s\s*\{(.*?)\}\s*__attribute__\(\(packed\)\);" % re.escape(name),
                  text, flags=re.S)
    check(m, "packed struct %s not found in common/connpid.h" % name)
    size = 0
    for ctype, dims in re.findall(r"(\w+)\s+\w+((?:\[\d+\])*)\s*;", m.group(1)):
        check(ctype in C_TYPE_SIZES, "struct %s: unexpected field type %s" % (name, ctype))
        n = 1
        for d in re.findall(r"\[(\d+)\]", dims):
            n *= int(d)
        size += C_TYPE_SIZES[ctype] * n
    return size


@case
def defines_match():
    d = defines(read_source("common/connpid.h"))
    log("connpid.h defines: %s" % d)
    for py, c in (("ABI_VERSION", "CONNPID_ABI_VERSION"), ("PROTO_TCP", "CONNPID_PROTO_TCP"),
                  ("PROTO_UDP", "CONNPID_PROTO_UDP"), ("COMM_LEN", "CONNPID_COMM_LEN"),
                  ("EXE_LEN", "CONNPID_EXE_LEN"),
                  ("EVENT_FLAG_OWNER_CHANGED", "CONNPID_EVENT_FLAG_OWNER_CHANGED"),
                  ("EVENT_FLAG_INBOUND", "CONNPID_EVENT_FLAG_INBOUND"),
                  ("META_F_IPV6_BLOCKER", "CONNPID_META_F_IPV6_BLOCKER"),
                  ("META_F_BLOCK_LOOPBACK6", "CONNPID_META_F_BLOCK_LOOPBACK6"),
                  ("META_F_INBOUND", "CONNPID_META_F_INBOUND")):
        check(c in d, "%s is not defined in common/connpid.h" % c)
        check_eq(getattr(T, py), d[c], "connpidtest.%s against %s" % (py, c))
    # The events carry the kernel's numbers: the ones of this host's libc.
    check_eq(T.AF_INET, socket.AF_INET, "connpidtest.AF_INET")
    check_eq(T.AF_INET6, socket.AF_INET6, "connpidtest.AF_INET6")


@case
def event_sources_match():
    members = enum_members(read_source("common/connpid.h"), "connpid_source")
    check(members, "enum connpid_source is empty")
    for member, value in members:
        py = member.replace("CONNPID_", "", 1)
        check(hasattr(T, py), "connpidtest lacks %s (enum connpid_source)" % py)
        check_eq(getattr(T, py), value, "connpidtest.%s" % py)


@case
def stats_slots_match():
    members = enum_members(read_source("common/connpid.h"), "connpid_stat")
    check_eq(members[-1][0], "CONNPID_STAT_MAX", "last member of enum connpid_stat")
    slots = members[:-1]
    check_eq(T.STAT_MAX, members[-1][1], "connpidtest.STAT_MAX (slot count)")
    check_eq(len(T.STAT_NAMES), len(slots), "len(connpidtest.STAT_NAMES)")
    for i, (member, value) in enumerate(slots):
        check_eq(value, i, "%s is not slot %d: the stats map is dense" % (member, i))
        short = member.replace("CONNPID_STAT_", "", 1)
        py = "STAT_" + short
        check(hasattr(T, py), "connpidtest lacks %s" % py)
        check_eq(getattr(T, py), value, "connpidtest.%s" % py)
        check_eq(T.STAT_NAMES[i], short.lower(), "connpidtest.STAT_NAMES[%d]" % i)


@case
def key_layouts_match():
    text = read_source("common/connpid.h")
    for fmt, name in ((T.KEY_V4_FORMAT, "conn_key_v4"), (T.KEY_V6_FORMAT, "conn_key_v6")):
        check_eq(struct.calcsize(fmt), packed_struct_size(text, name),
                 "size of %r against struct %s" % (fmt, name))
    check_eq(len(T.key_v4("10.0.0.1", 1, 2, T.PROTO_TCP)), 12, "key_v4 length")
    check_eq(len(T.key_v6("::1", 1, 2, T.PROTO_UDP)), 24, "key_v6 length")


@case
def map_pins_match_the_loader():
    m = re.search(r"connpid_map_pins\[\]\s*=\s*\{(.*?)\};", read_source("loader/pindir.c"), flags=re.S)
    check(m, "connpid_map_pins[] not found in loader/pindir.c")
    names = re.findall(r'"(\w+)"', m.group(1))
    check_eq(sorted(T.MAP_PINS), sorted(names), "connpidtest.MAP_PINS against loader/pindir.c")


if __name__ == "__main__":
    # Reads source files only: no root, no BPF.
    run_cases(require=lambda: None)

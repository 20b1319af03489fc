/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The flow maps and the scope cgroup, shared by the tracker and the DNS
 * object through their pins (the loader points both at the same paths, and
 * gives both the same sizes).
 */
#pragma once

#include "connpid.h"

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNPID_MAP_V4_ENTRIES);
	__type(key, struct conn_key_v4);
	__type(value, __u32);
} conn_to_pid_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNPID_MAP_V6_ENTRIES);
	__type(key, struct conn_key_v6);
	__type(value, __u32);
} conn_to_pid_v6 SEC(".maps");

/* The cgroup the loader attached to (slot 0): global hooks (exec, seeding)
 * keep to the same scope as the cgroup hooks. */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} scope_cgroup SEC(".maps");

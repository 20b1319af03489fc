/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>
#include <linux/types.h>

struct load_opts {
	const char *pin_dir;
	const char *cgroup_path;   /* NULL: the cgroup2 mount root */
	bool tracker;              /* load bpf/connpid.bpf.c */
	bool blocker;              /* load bpf/ipv6_block.bpf.c */
	bool dns;                  /* load bpf/dns.bpf.c */
	bool creator;              /* cgroup/sock_create: who created each socket */
	bool inbound;              /* accept() tracepoints and listen() owners */
	bool ipv6_block;           /* write config[0] = 1 */
	bool block_loopback6;
	__u32 v4_entries;
	__u32 v6_entries;
	__u32 ringbuf_bytes;
	bool seed;                 /* seed flows that existed before loading */
	const char *pin_group;     /* group that may read the maps (and use the rings) */
	bool pin_group_explicit;   /* --group given: it must exist */
};

/* Pin directory handling: bpffs checks and the lock that serializes
 * loaders (xdp-tools' way: flock on the directory itself). */
int pindir_open_locked(const char *pin_dir, bool create, int *ret_fd, bool *ret_created);
int pindir_mkdir_sub(const char *pin_dir, const char *sub, bool *ret_created);
/* Refuse (-ENOTEMPTY, logged with their names) a pin dir holding anything
 * connpid did not pin: unknown names, symlinks, non-pin files, or objects
 * of a known name that are not connpid's (checked by kind and name). */
int pindir_check_ours(const char *pin_dir);
/* Remove connpid's pins only, never following a symlink. */
int pindir_remove_all(const char *pin_dir);
/* Pins present but meta never committed: a loader died midway. */
int pindir_is_half_loaded(const char *pin_dir, bool *ret);

int loader_load(const struct load_opts *o);
int loader_unload(const char *pin_dir);
int loader_status(const char *pin_dir, bool json);

/* Pin owner and modes (pin-modes.c): maps 0640 (rings 0660) root:gid,
 * links and programs root's alone. */
int pins_set_modes(const char *pin_dir, gid_t gid);
/* 1 and the gid if the group exists, 0 if an implicit one does not,
 * negative errno (logged) if an explicit one does not. */
int pins_resolve_group(const char *name, bool explicit, gid_t *ret);

/* --inbound: tracefs where libbpf looks for tracepoint ids (mounted if
 * missing), and the syscall tracepoints in it; logged on failure. */
int tracefs_ensure(void);

/* Test-only fault point: -ECANCELED when CONNPID_TEST_FAIL_AT=<point>,
 * never returns when CONNPID_TEST_HANG_AT=<point>, else 0. */
int fault_inject(const char *point);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Where connpid's pins live and how readers open them safely. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "connpid.h"

#define CONNPID_DEFAULT_PIN_DIR "/sys/fs/bpf/connpid"
#define CONNPID_BPFFS_ROOT "/sys/fs/bpf"
#define CONNPID_LINKS_SUBDIR "links"
#define CONNPID_PROGS_SUBDIR "progs"

/* The maps a reader needs, opened from pins and checked against the ABI. */
struct connpid_maps {
	int v4_fd;
	int v6_fd;
	int config_fd;
	int stats_fd;
	int events_fd;
	int meta_fd;
	int exec_info_fd;   /* -EBADF when absent (blocker-only pins) */
	int dns_events_fd;  /* -EBADF when loaded with --no-dns */
	__u32 v4_max_entries;
	__u32 v6_max_entries;
	struct connpid_meta meta;
};

/* "<pin_dir>/<sub>/<name>" or "<pin_dir>/<name>" when sub is NULL. */
int pin_path(char *buf, size_t size, const char *pin_dir, const char *sub, const char *name);

/* 1 if path is on bpffs, 0 if not, negative errno if it cannot be checked. */
int path_is_bpffs(const char *path);

/* Open a pin without ever following a symlink: lstat() first, and only a
 * plain pin file is opened (-ELOOP for a symlink, -EISDIR for a directory,
 * -EBADFD for anything else). Maps open read-only unless writable; program
 * and link pins only open writable (the kernel wants O_RDWR for them). The
 * pin dir is root's, so nobody else can swap the entry after the lstat(). */
int pin_open(const char *path, bool writable);

/* 0 if path is a real directory, -ELOOP if it is a symlink, -ENOTDIR if it
 * is something else, negative errno if it cannot be looked at. */
int pin_dir_check(const char *path);

enum pin_kind {
	PIN_KIND_OTHER,
	PIN_KIND_MAP,
	PIN_KIND_PROG,
	PIN_KIND_LINK,
};

/* What a bpf fd refers to: bpf_obj_get_info_by_fd() fills whichever info
 * struct the object has, so the kind must be known before reading it. */
enum pin_kind pin_fd_kind(int fd);

void connpid_maps_init(struct connpid_maps *m);
void connpid_maps_close(struct connpid_maps *m);

/* connpid_maps_open() flags. Least privilege: every map opens read-only
 * (BPF_F_RDONLY) unless asked otherwise, so readers need only read access
 * to the pins (0640 root:connpid). true/false from older callers still mean
 * "with events" / "without". */
#define CONNPID_MAPS_EVENTS    (1u << 0) /* the event rings, read-write: the consumer page is mmapped writable */
#define CONNPID_MAPS_CONFIG_RW (1u << 1) /* config writable (connpidctl ipv6-block, root) */

/* Open every pinned map and verify types, key/value sizes and the ABI
 * version. On failure returns negative errno and writes one line that says
 * exactly what is wrong into err (not loaded, not bpffs, wrong version...).
 * The rings are opened only with CONNPID_MAPS_EVENTS: connpidctl --direct
 * and status skip them. meta.version comes back NUL-terminated. */
int connpid_maps_open(const char *pin_dir, struct connpid_maps *m, unsigned flags,
		      char *err, size_t errlen);

/* The pinned meta map's content and map id (which changes when the
 * loader replaces the pins). -ENOENT when nothing is pinned, -EPROTO when
 * the pin is not a meta map of connpid's shape (type, key and value size
 * checked before reading it), -ELOOP when it is a symlink. meta.version
 * comes back NUL-terminated. */
int connpid_meta_read(const char *pin_dir, struct connpid_meta *ret_meta, __u32 *ret_map_id);

/* Sum one slot of the per-CPU stats map. */
int connpid_stats_read(int stats_fd, __u32 slot, __u64 *ret);

/* Count the entries of a hash map (map fill). Buffers are sized from the
 * map's own key and value sizes, so no caller can get them wrong.
 * -EOPNOTSUPP for maps that are not hashes; -EBUSY when the map changed so
 * fast that the key walk (the fallback without batch lookups) restarted
 * past twice max_entries steps: no honest count then. */
int connpid_map_count_entries(int map_fd, __u32 *ret);


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

void connpid_maps_init(struct connpid_maps *m);
void connpid_maps_close(struct connpid_maps *m);

/* Open every pinned map and verify types, key/value sizes and the ABI
 * version. On failure returns negative errno and writes one line that says
 * exactly what is wrong into err (not loaded, not bpffs, wrong version...).
 * events is optional (require_events false): connpidctl --direct skips it. */
int connpid_maps_open(const char *pin_dir, struct connpid_maps *m, bool require_events,
		      char *err, size_t errlen);

/* The pinned meta map's content and map id (which changes when the
 * loader replaces the pins). -ENOENT when nothing is pinned. */
int connpid_meta_read(const char *pin_dir, struct connpid_meta *ret_meta, __u32 *ret_map_id);

/* Sum one slot of the per-CPU stats map. */
int connpid_stats_read(int stats_fd, __u32 slot, __u64 *ret);
/* Count entries of a map with u32 values (map fill). */
int connpid_map_count(int map_fd, size_t key_size, __u32 *ret);

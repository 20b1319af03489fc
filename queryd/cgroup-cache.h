/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cgroup id -> path -> identity, resolved once per cgroup. On cgroup2 the
 * id BPF reports is the directory's inode, and kernfs accepts it as a file
 * handle: one open_by_handle_at() instead of walking the tree.
 */
#pragma once

#include <stdbool.h>
#include <linux/types.h>

#include "cgroup-names.h"

struct cgroup_info {
	__u64 id;
	bool resolved;        /* false: the cgroup was gone before we looked */
	char path[512];       /* relative to the cgroup2 root, "/" for the root */
	struct cgroup_identity ident;
};

struct cgroup_cache;

int cgroup_cache_new(struct cgroup_cache **ret);
struct cgroup_cache *cgroup_cache_free(struct cgroup_cache *c);
/* Never NULL for a valid cache; unresolved entries are cached too. */
const struct cgroup_info *cgroup_cache_get(struct cgroup_cache *c, __u64 id);

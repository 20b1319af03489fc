// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup-cache.h"
#include "cgroup2.h"
#include "htable.h"
#include "macro.h"

#define CG_BUCKETS 1024
#define CG_MAX 8192
#define FILEID_KERNFS 0xfe

struct cg_entry {
	struct hnode node;
	struct cgroup_info info;
};

struct cgroup_cache {
	int mount_fd;
	char mount_path[PATH_MAX];
	struct htable table; /* cg_entry by id, at most CG_MAX */
};

int cgroup_cache_new(struct cgroup_cache **ret)
{
	struct cgroup_cache *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	if (htable_init(&c->table, CG_BUCKETS) < 0) {
		free(c);
		return -ENOMEM;
	}
	c->mount_fd = -EBADF;
	r = cgroup2_find_mount(c->mount_path, sizeof(c->mount_path));
	if (r >= 0) {
		c->mount_fd = open(c->mount_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->mount_fd < 0)
			r = negative_errno();
	}
	/* Without cgroup2 we still answer, with ids only. */
	(void)r;
	*ret = c;
	return 0;
}

static void clear_all(struct cgroup_cache *c)
{
	for (struct hnode *n = htable_steal_all(&c->table), *next; n; n = next) {
		next = n->next;
		free(hnode_entry(n, struct cg_entry, node));
	}
}

struct cgroup_cache *cgroup_cache_free(struct cgroup_cache *c)
{
	if (!c)
		return NULL;
	clear_all(c);
	htable_done(&c->table);
	safe_close(c->mount_fd);
	free(c);
	return NULL;
}

static void resolve(struct cgroup_cache *c, struct cgroup_info *info)
{
	struct {
		struct file_handle fh;
		__u64 id;
	} h = { .fh = { .handle_bytes = sizeof(__u64), .handle_type = FILEID_KERNFS } };
	char link[64], target[PATH_MAX];
	size_t mlen = strlen(c->mount_path);
	_cleanup_close_ int fd = -EBADF;
	ssize_t n;

	if (c->mount_fd < 0)
		return;
	memcpy(h.fh.f_handle, &info->id, sizeof(info->id));
	fd = open_by_handle_at(c->mount_fd, &h.fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return;
	target[n] = '\0';
	if (strncmp(target, c->mount_path, mlen) != 0)
		return;
	snprintf(info->path, sizeof(info->path), "%s", target[mlen] ? target + mlen : "/");
	cgroup_identify(info->path, &info->ident);
	info->resolved = true;
}

const struct cgroup_info *cgroup_cache_get(struct cgroup_cache *c, __u64 id)
{
	uint64_t h = htable_hash(&c->table, &id, sizeof(id));
	struct cg_entry *e;

	HTABLE_FOREACH_HASH(n, &c->table, h) {
		e = hnode_entry(n, struct cg_entry, node);
		if (e->info.id == id)
			return &e->info;
	}
	if (c->table.n >= CG_MAX)
		clear_all(c); /* rare: simpler than LRU, and a miss is one syscall */
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->info.id = id;
	resolve(c, &e->info);
	htable_add(&c->table, &e->node, h);
	return &e->info;
}

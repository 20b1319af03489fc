// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "macro.h"
#include "pins.h"

int pin_path(char *buf, size_t size, const char *pin_dir, const char *sub, const char *name)
{
	int n;

	if (sub)
		n = snprintf(buf, size, "%s/%s/%s", pin_dir, sub, name);
	else
		n = snprintf(buf, size, "%s/%s", pin_dir, name);
	if (n < 0 || (size_t)n >= size)
		return -ENAMETOOLONG;
	return 0;
}

int path_is_bpffs(const char *path)
{
	struct statfs sfs;

	if (statfs(path, &sfs) < 0)
		return negative_errno();
	return sfs.f_type == BPF_FS_MAGIC;
}

void connpid_maps_init(struct connpid_maps *m)
{
	*m = (struct connpid_maps){
		.v4_fd = -EBADF, .v6_fd = -EBADF, .config_fd = -EBADF,
		.stats_fd = -EBADF, .events_fd = -EBADF, .meta_fd = -EBADF,
		.exec_info_fd = -EBADF, .dns_events_fd = -EBADF,
	};
}

void connpid_maps_close(struct connpid_maps *m)
{
	m->v4_fd = safe_close(m->v4_fd);
	m->v6_fd = safe_close(m->v6_fd);
	m->config_fd = safe_close(m->config_fd);
	m->stats_fd = safe_close(m->stats_fd);
	m->events_fd = safe_close(m->events_fd);
	m->meta_fd = safe_close(m->meta_fd);
	m->exec_info_fd = safe_close(m->exec_info_fd);
	m->dns_events_fd = safe_close(m->dns_events_fd);
}

struct map_expect {
	const char *name;
	__u32 type;
	__u32 key_size;
	__u32 value_size; /* 0: not checked (ring buffer) */
};

static int open_one(const char *pin_dir, const struct map_expect *x, int *ret_fd,
		    __u32 *ret_max_entries, char *err, size_t errlen)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	char path[4096];
	int fd, r;

	r = pin_path(path, sizeof(path), pin_dir, NULL, x->name);
	if (r < 0) {
		snprintf(err, errlen, "pin path for '%s' too long", x->name);
		return r;
	}
	fd = bpf_obj_get(path);
	if (fd < 0) {
		r = negative_errno();
		if (r == -ENOENT)
			snprintf(err, errlen, "map '%s' is not pinned: connpid is not loaded "
				 "(run connpid-loader --pin-dir %s)", path, pin_dir);
		else if (path_is_bpffs(pin_dir) == 0)
			snprintf(err, errlen, "%s is not on bpffs", pin_dir);
		else
			snprintf(err, errlen, "cannot open pinned map '%s': %s", path, strerror(-r));
		return r;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		r = negative_errno();
		snprintf(err, errlen, "cannot query map '%s': %s", path, strerror(-r));
		close(fd);
		return r;
	}
	if (info.type != x->type || info.key_size != x->key_size ||
	    (x->value_size && info.value_size != x->value_size)) {
		snprintf(err, errlen, "pinned map '%s' has type %u key %u B value %u B, expected "
			 "type %u key %u B value %u B: pins from another connpid version, "
			 "run connpid-loader --unload then load again",
			 path, info.type, info.key_size, info.value_size,
			 x->type, x->key_size, x->value_size);
		close(fd);
		return -EPROTO;
	}
	*ret_fd = fd;
	if (ret_max_entries)
		*ret_max_entries = info.max_entries;
	return 0;
}

int connpid_maps_open(const char *pin_dir, struct connpid_maps *m, bool require_events,
		      char *err, size_t errlen)
{
	const struct map_expect meta = { "meta", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct connpid_meta) };
	const struct map_expect v4 = { "conn_to_pid_v4", BPF_MAP_TYPE_LRU_HASH,
				       sizeof(struct conn_key_v4), 4 };
	const struct map_expect v6 = { "conn_to_pid_v6", BPF_MAP_TYPE_LRU_HASH,
				       sizeof(struct conn_key_v6), 4 };
	const struct map_expect config = { "config", BPF_MAP_TYPE_ARRAY, 4, 4 };
	const struct map_expect stats = { "stats", BPF_MAP_TYPE_PERCPU_ARRAY, 4, 8 };
	const struct map_expect events = { "events", BPF_MAP_TYPE_RINGBUF, 0, 0 };
	const struct map_expect dns_events = { "dns_events", BPF_MAP_TYPE_RINGBUF, 0, 0 };
	const struct map_expect exec_info = { "exec_info", BPF_MAP_TYPE_LRU_HASH, 4,
					      sizeof(struct connpid_exec_info) };
	__u32 zero = 0;
	int r;

	/* The version first: a mismatch explains every later surprise. */
	r = open_one(pin_dir, &meta, &m->meta_fd, NULL, err, errlen);
	if (r < 0)
		goto fail;
	if (bpf_map_lookup_elem(m->meta_fd, &zero, &m->meta) < 0) {
		r = negative_errno();
		snprintf(err, errlen, "cannot read %s/meta: %s", pin_dir, strerror(-r));
		goto fail;
	}
	if (m->meta.abi_version != CONNPID_ABI_VERSION) {
		snprintf(err, errlen, "%s holds connpid pins of ABI version %u, this build speaks %u: "
			 "run this version's connpid-loader --unload, then load again",
			 pin_dir, m->meta.abi_version, CONNPID_ABI_VERSION);
		r = -EPROTO;
		goto fail;
	}
	r = open_one(pin_dir, &v4, &m->v4_fd, &m->v4_max_entries, err, errlen);
	if (r < 0)
		goto fail;
	r = open_one(pin_dir, &v6, &m->v6_fd, &m->v6_max_entries, err, errlen);
	if (r < 0)
		goto fail;
	r = open_one(pin_dir, &config, &m->config_fd, NULL, err, errlen);
	if (r < 0)
		goto fail;
	r = open_one(pin_dir, &stats, &m->stats_fd, NULL, err, errlen);
	if (r < 0)
		goto fail;
	if (require_events) {
		r = open_one(pin_dir, &events, &m->events_fd, NULL, err, errlen);
		if (r < 0)
			goto fail;
	}
	/* Optional: only a help for processes gone before queryd looks. */
	if (open_one(pin_dir, &exec_info, &m->exec_info_fd, NULL, err, errlen) < 0) {
		m->exec_info_fd = -EBADF;
		err[0] = '\0';
	}
	/* Optional: absent when loaded with --no-dns. */
	if (require_events && open_one(pin_dir, &dns_events, &m->dns_events_fd, NULL, err, errlen) < 0) {
		m->dns_events_fd = -EBADF;
		err[0] = '\0';
	}
	return 0;
fail:
	connpid_maps_close(m);
	return r;
}

int connpid_meta_read(const char *pin_dir, struct connpid_meta *ret_meta, __u32 *ret_map_id)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), zero = 0;
	_cleanup_close_ int fd = -EBADF;
	char path[4096];
	int r;

	r = pin_path(path, sizeof(path), pin_dir, NULL, "meta");
	if (r < 0)
		return r;
	fd = bpf_obj_get(path);
	if (fd < 0)
		return negative_errno();
	if (ret_meta && bpf_map_lookup_elem(fd, &zero, ret_meta) < 0)
		return negative_errno();
	if (ret_map_id) {
		if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
			return negative_errno();
		*ret_map_id = info.id;
	}
	return 0;
}

int connpid_stats_read(int stats_fd, __u32 slot, __u64 *ret)
{
	int ncpus = libbpf_num_possible_cpus();
	_cleanup_free_ __u64 *vals = NULL;
	__u64 sum = 0;

	if (ncpus < 0)
		return ncpus;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(stats_fd, &slot, vals) < 0)
		return negative_errno();
	for (int i = 0; i < ncpus; i++)
		sum += vals[i];
	*ret = sum;
	return 0;
}

/* Batched lookups walk 65k entries in ~16 syscalls instead of 65k; the
 * key walk remains for kernels or maps without batch support. */
static int map_count_batch(int map_fd, size_t key_size, size_t value_size, __u32 *ret)
{
	const __u32 chunk = 4096;
	_cleanup_free_ void *keys = malloc(chunk * key_size);
	_cleanup_free_ void *values = malloc(chunk * value_size);
	__u64 in_batch = 0, out_batch = 0;
	bool first = true;
	__u32 n = 0;

	if (!keys || !values)
		return -ENOMEM;
	for (;;) {
		__u32 count = chunk;
		int r = bpf_map_lookup_batch(map_fd, first ? NULL : &in_batch, &out_batch,
					     keys, values, &count, NULL);

		if (r < 0 && errno != ENOENT)
			return negative_errno();
		n += count;
		if (r < 0)
			break; /* ENOENT: that was the last batch */
		in_batch = out_batch;
		first = false;
	}
	*ret = n;
	return 0;
}

int connpid_map_count(int map_fd, size_t key_size, __u32 *ret)
{
	unsigned char key[64], next[64];
	void *prev = NULL;
	__u32 n = 0;

	if (key_size > sizeof(key))
		return -EINVAL;
	if (map_count_batch(map_fd, key_size, sizeof(__u32), ret) == 0)
		return 0;
	while (bpf_map_get_next_key(map_fd, prev, next) == 0) {
		memcpy(key, next, key_size);
		prev = key;
		n++;
	}
	if (errno != ENOENT)
		return negative_errno();
	*ret = n;
	return 0;
}

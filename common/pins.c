// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "macro.h"
#include "pins.h"

#define MIN_SZ(a, b) ((a) < (b) ? (a) : (b))

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

int pin_open(const char *path, bool writable)
{
	LIBBPF_OPTS(bpf_obj_get_opts, opts, .file_flags = writable ? 0 : BPF_F_RDONLY);
	struct stat st;
	int fd;

	/* BPF_OBJ_GET always follows symlinks: refuse them before asking. */
	if (lstat(path, &st) < 0)
		return negative_errno();
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (!S_ISREG(st.st_mode))
		return -EBADFD;
	fd = bpf_obj_get_opts(path, &opts);
	if (fd < 0)
		return negative_errno();
	return fd;
}

int pin_dir_check(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return negative_errno();
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	return 0;
}

enum pin_kind pin_fd_kind(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return PIN_KIND_OTHER;
	target[n] = '\0';
	if (streq(target, "anon_inode:bpf-map"))
		return PIN_KIND_MAP;
	if (streq(target, "anon_inode:bpf-prog"))
		return PIN_KIND_PROG;
	if (streq(target, "anon_inode:bpf_link") || streq(target, "anon_inode:bpf-link"))
		return PIN_KIND_LINK;
	return PIN_KIND_OTHER;
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

/* Open one pinned map and check it is what connpid pins under that name,
 * before anything reads it into a struct of connpid's size. */
static int map_open_checked(const char *path, const struct map_expect *x, bool writable,
			    int *ret_fd, struct bpf_map_info *ret_info)
{
	_cleanup_close_ int fd = -EBADF;
	__u32 len = sizeof(*ret_info);

	*ret_info = (struct bpf_map_info){};
	fd = pin_open(path, writable);
	if (fd < 0)
		return fd;
	if (pin_fd_kind(fd) != PIN_KIND_MAP)
		return -EPROTO;
	if (bpf_obj_get_info_by_fd(fd, ret_info, &len) < 0)
		return negative_errno();
	if (ret_info->type != x->type || ret_info->key_size != x->key_size ||
	    (x->value_size && ret_info->value_size != x->value_size))
		return -EPROTO;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int open_one(const char *pin_dir, const struct map_expect *x, bool writable, int *ret_fd,
		    __u32 *ret_max_entries, char *err, size_t errlen)
{
	struct bpf_map_info info = {};
	char path[4096];
	int r;

	r = pin_path(path, sizeof(path), pin_dir, NULL, x->name);
	if (r < 0) {
		snprintf(err, errlen, "pin path for '%s' too long", x->name);
		return r;
	}
	r = map_open_checked(path, x, writable, ret_fd, &info);
	if (r == -EPROTO) {
		snprintf(err, errlen, "pinned '%s' is not connpid's %s map (%s type %u key %u B value %u B, "
			 "expected type %u key %u B value %u B): not a connpid pin, or pins from another "
			 "connpid version (run connpid-loader --unload then load again)",
			 path, x->name, info.type || info.key_size ? "a map of" : "not a map:",
			 info.type, info.key_size, info.value_size, x->type, x->key_size, x->value_size);
		return r;
	}
	if (r == -ENOENT)
		snprintf(err, errlen, "map '%s' is not pinned: connpid is not loaded "
			 "(run connpid-loader --pin-dir %s)", path, pin_dir);
	else if (r == -ELOOP || r == -EISDIR || r == -EBADFD)
		snprintf(err, errlen, "'%s' is not a plain pin (%s): refusing to follow it",
			 path, r == -ELOOP ? "a symlink" : r == -EISDIR ? "a directory" : "not a pin file");
	else if (r < 0 && path_is_bpffs(pin_dir) == 0)
		snprintf(err, errlen, "%s is not on bpffs", pin_dir);
	else if (r < 0)
		snprintf(err, errlen, "cannot open pinned map '%s'%s: %s", path,
			 writable ? " read-write" : " read-only", strerror(-r));
	if (r < 0)
		return r;
	if (ret_max_entries)
		*ret_max_entries = info.max_entries;
	return 0;
}

static const struct map_expect meta_expect = {
	"meta", BPF_MAP_TYPE_ARRAY, 4, sizeof(struct connpid_meta),
};

/* The loader writes a NUL-terminated version; a map is still only bytes. */
static int meta_lookup(int fd, struct connpid_meta *ret)
{
	__u32 zero = 0;

	if (bpf_map_lookup_elem(fd, &zero, ret) < 0)
		return negative_errno();
	ret->version[sizeof(ret->version) - 1] = '\0';
	return 0;
}

int connpid_maps_open(const char *pin_dir, struct connpid_maps *m, unsigned flags,
		      char *err, size_t errlen)
{
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
	bool with_events = flags & CONNPID_MAPS_EVENTS;
	int r;

	r = pin_dir_check(pin_dir);
	if (r == -ELOOP || r == -ENOTDIR) {
		snprintf(err, errlen, "pin dir %s is %s: refusing to follow it", pin_dir,
			 r == -ELOOP ? "a symlink" : "not a directory");
		return r;
	}
	/* The version first: a mismatch explains every later surprise. */
	r = open_one(pin_dir, &meta_expect, false, &m->meta_fd, NULL, err, errlen);
	if (r < 0)
		goto fail;
	r = meta_lookup(m->meta_fd, &m->meta);
	if (r < 0) {
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
	r = open_one(pin_dir, &v4, false, &m->v4_fd, &m->v4_max_entries, err, errlen);
	if (r < 0)
		goto fail;
	r = open_one(pin_dir, &v6, false, &m->v6_fd, &m->v6_max_entries, err, errlen);
	if (r < 0)
		goto fail;
	r = open_one(pin_dir, &config, flags & CONNPID_MAPS_CONFIG_RW, &m->config_fd, NULL, err, errlen);
	if (r < 0)
		goto fail;
	r = open_one(pin_dir, &stats, false, &m->stats_fd, NULL, err, errlen);
	if (r < 0)
		goto fail;
	if (with_events) {
		r = open_one(pin_dir, &events, true, &m->events_fd, NULL, err, errlen);
		if (r < 0)
			goto fail;
	}
	/* Optional: only a help for processes gone before queryd looks. */
	if (open_one(pin_dir, &exec_info, false, &m->exec_info_fd, NULL, err, errlen) < 0) {
		m->exec_info_fd = -EBADF;
		err[0] = '\0';
	}
	/* Optional: absent when loaded with --no-dns. */
	if (with_events && open_one(pin_dir, &dns_events, true, &m->dns_events_fd, NULL, err, errlen) < 0) {
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
	_cleanup_close_ int fd = -EBADF;
	struct bpf_map_info info;
	char path[4096];
	int r;

	r = pin_path(path, sizeof(path), pin_dir, NULL, "meta");
	if (r < 0)
		return r;
	/* A foreign "meta" with 16 KiB values must not be read into 48 bytes. */
	r = map_open_checked(path, &meta_expect, false, &fd, &info);
	if (r < 0)
		return r;
	if (ret_meta) {
		r = meta_lookup(fd, ret_meta);
		if (r < 0)
			return r;
	}
	if (ret_map_id)
		*ret_map_id = info.id;
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

/* Bytes one lookup writes per entry: per-CPU maps give a slot per possible
 * CPU, each rounded up to 8 bytes. */
static int map_value_bytes(const struct bpf_map_info *info, size_t *ret)
{
	int ncpus;

	if (info->type != BPF_MAP_TYPE_PERCPU_HASH && info->type != BPF_MAP_TYPE_LRU_PERCPU_HASH) {
		*ret = info->value_size;
		return 0;
	}
	ncpus = libbpf_num_possible_cpus();
	if (ncpus < 0)
		return ncpus;
	*ret = (size_t)((info->value_size + 7) & ~7u) * ncpus;
	return 0;
}

/* Batched lookups walk 65k entries in ~16 syscalls instead of 65k. The
 * buffers hold chunk entries of the map's own sizes, at most 8 MiB. */
static int map_count_batch(int map_fd, const struct bpf_map_info *info, size_t value_bytes, __u32 *ret)
{
	const size_t budget = 8u << 20;
	size_t per = info->key_size + value_bytes;
	__u32 chunk = per >= budget ? 1 : (__u32)MIN_SZ(4096, budget / per);
	_cleanup_free_ void *keys = calloc(chunk, info->key_size);
	_cleanup_free_ void *values = calloc(chunk, value_bytes);
	__u64 in_batch = 0, out_batch = 0;
	bool first = true;
	__u64 n = 0;

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
	/* Buckets are visited once each; entries moving meanwhile can still
	 * make the sum overshoot a full map. */
	*ret = (__u32)MIN_SZ(n, info->max_entries);
	return 0;
}

/* Without batch support: one key at a time. A key deleted under the walk
 * restarts it from the first bucket, so a churning map could keep it going
 * for ever: give up after twice max_entries steps. */
static int map_count_walk(int map_fd, const struct bpf_map_info *info, __u32 *ret)
{
	_cleanup_free_ void *key = calloc(1, info->key_size), *next = calloc(1, info->key_size);
	__u64 limit = 2ull * info->max_entries + 16, n = 0;
	void *prev = NULL;

	if (!key || !next)
		return -ENOMEM;
	while (bpf_map_get_next_key(map_fd, prev, next) == 0) {
		if (++n > limit)
			return -EBUSY;
		memcpy(key, next, info->key_size);
		prev = key;
	}
	if (errno != ENOENT)
		return negative_errno();
	*ret = (__u32)MIN_SZ(n, info->max_entries);
	return 0;
}

int connpid_map_count_entries(int map_fd, __u32 *ret)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	size_t value_bytes;
	int r;

	if (pin_fd_kind(map_fd) != PIN_KIND_MAP)
		return -EBADF;
	if (bpf_obj_get_info_by_fd(map_fd, &info, &len) < 0)
		return negative_errno();
	if (info.type != BPF_MAP_TYPE_HASH && info.type != BPF_MAP_TYPE_LRU_HASH &&
	    info.type != BPF_MAP_TYPE_PERCPU_HASH && info.type != BPF_MAP_TYPE_LRU_PERCPU_HASH)
		return -EOPNOTSUPP;
	if (info.key_size == 0)
		return -EINVAL;
	r = map_value_bytes(&info, &value_bytes);
	if (r < 0)
		return r;
	if (map_count_batch(map_fd, &info, value_bytes, ret) == 0)
		return 0;
	return map_count_walk(map_fd, &info, ret);
}

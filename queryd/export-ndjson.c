// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "export-ndjson.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "safe-path.h"

/* Lines wait in memory and go out in one write() each flush: the loop
 * pays a syscall per 64 KiB or per second, not per flow. */
#define FLUSH_BYTES (64 * 1024)
#define FLUSH_USEC (1000 * 1000ULL)
/* While the disk refuses, what is buffered stays bounded. */
#define BUFFER_MAX (4 * 1024 * 1024)

struct export_ndjson {
	sd_event_source *timer;
	int dir_fd, fd;
	char *dir, *base;
	uint64_t max_size, size;
	unsigned keep;
	char *buf;
	size_t len, cap;
	bool error_logged;
	struct export_ndjson_stats stats;
};

/* Whoever may add or swap entries in the directory could point PATH or a
 * rotated name at any file we would then write. */
static int check_dir(int dfd, const char *dir, char *err, size_t errlen)
{
	char why[128];
	struct stat st;

	if (fstat(dfd, &st) < 0)
		return negative_errno();
	if (dir_is_safe(&st, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "refusing %s: %s", dir, why);
		return -EPERM;
	}
	return 0;
}

static int open_file(struct export_ndjson *x, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	fd = openat(x->dir_fd, x->base, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		    0640);
	if (fd < 0) {
		int r = negative_errno();

		snprintf(err, errlen, "cannot open %s/%s: %s%s", x->dir, x->base, strerror(-r),
			 r == -ELOOP ? " (a symbolic link)" : "");
		return r == -ELOOP ? -EPERM : r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || !uid_is_trusted(st.st_uid) || st.st_nlink > 1) {
		snprintf(err, errlen, "refusing %s/%s: not a regular file of root or ours with one link", x->dir,
			 x->base);
		close(fd);
		return -EPERM;
	}
	x->fd = fd;
	x->size = (uint64_t)st.st_size;
	return 0;
}

/* PATH.keep-1 -> PATH.keep, ..., PATH -> PATH.1: the oldest goes. */
static int reopen(struct export_ndjson *x);

static int rotate(struct export_ndjson *x)
{
	char from[PATH_MAX], to[PATH_MAX];

	x->fd = safe_close(x->fd);
	x->stats.rotations++;
	for (unsigned i = x->keep; i > 0; i--) {
		if (i == 1)
			snprintf(from, sizeof(from), "%s", x->base);
		else
			snprintf(from, sizeof(from), "%s.%u", x->base, i - 1);
		snprintf(to, sizeof(to), "%s.%u", x->base, i);
		if (renameat(x->dir_fd, from, x->dir_fd, to) < 0 && errno != ENOENT)
			x->stats.errors++;
	}
	return reopen(x);
}

/* After a failure: the same file again, nothing renamed meanwhile. */
static int reopen(struct export_ndjson *x)
{
	char err[512];
	int r;

	x->fd = safe_close(x->fd);
	r = open_file(x, err, sizeof(err));
	if (r < 0 && !x->error_logged) {
		log_warning("ndjson export: %s", err);
		x->error_logged = true;
	}
	return r;
}

/* How much of buf[off..len) goes into the current file: whole lines
 * that keep it within max_size; a line longer than that goes alone. */
static size_t fitting(const struct export_ndjson *x, size_t off)
{
	size_t room = x->size < x->max_size ? (size_t)(x->max_size - x->size) : 0, end = off;

	if (x->len - off <= room)
		return x->len - off;
	for (size_t i = off; i < x->len && i - off < room; i++)
		if (x->buf[i] == '\n')
			end = i + 1;
	if (end == off && x->size == 0) {
		const char *nl = memchr(x->buf + off, '\n', x->len - off);

		end = nl ? (size_t)(nl - x->buf) + 1 : x->len;
	}
	return end - off;
}

static int write_all(struct export_ndjson *x, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(x->fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? negative_errno() : -EIO;
		p += w;
		n -= (size_t)w;
		x->size += (uint64_t)w;
		x->stats.bytes += (uint64_t)w;
	}
	return 0;
}

static void flush(struct export_ndjson *x)
{
	size_t off = 0;
	int r = 0;

	while (off < x->len) {
		size_t n;

		if (x->fd < 0) {
			r = reopen(x);
			if (r < 0)
				break;
		}
		n = fitting(x, off);
		if (n == 0) {
			r = rotate(x);
			if (r < 0)
				break;
			continue;
		}
		r = write_all(x, x->buf + off, n);
		if (r < 0) {
			if (!x->error_logged)
				log_warning_errno(r, "ndjson export: write to %s/%s: %m", x->dir, x->base);
			x->error_logged = true;
			break;
		}
		off += n;
	}
	if (r < 0)
		x->stats.errors++;
	if (off > 0 && off < x->len)
		memmove(x->buf, x->buf + off, x->len - off);
	x->len -= off;
	/* the disk refuses: keep what is bounded, count the rest */
	if (x->len > BUFFER_MAX) {
		for (size_t i = 0; i < x->len; i++)
			x->stats.dropped += x->buf[i] == '\n';
		x->len = 0;
	}
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct export_ndjson *x = userdata;

	flush(x);
	(void)sd_event_source_set_time(s, usec + FLUSH_USEC);
	return 0;
}

static int split_path(struct export_ndjson *x, const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash || !slash[1])
		return -EINVAL;
	x->dir = slash == path ? strdup("/") : strndup(path, (size_t)(slash - path));
	x->base = strdup(slash + 1);
	return x->dir && x->base ? 0 : -ENOMEM;
}

int export_ndjson_new(sd_event *e, const char *path, uint64_t max_size, unsigned keep,
		      struct export_ndjson **ret, char *err, size_t errlen)
{
	struct export_ndjson *x = calloc(1, sizeof(*x));
	uint64_t now;
	int r;

	if (!x)
		return -ENOMEM;
	x->fd = x->dir_fd = -EBADF;
	x->max_size = max_size ? max_size : EXPORT_NDJSON_MAX_SIZE;
	x->keep = keep ? keep : EXPORT_NDJSON_KEEP;
	r = split_path(x, path);
	if (r < 0) {
		snprintf(err, errlen, "%s: an absolute file path is needed", path);
		goto fail;
	}
	x->dir_fd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x->dir_fd < 0) {
		r = negative_errno();
		snprintf(err, errlen, "cannot open directory %s: %s", x->dir, strerror(-r));
		goto fail;
	}
	r = check_dir(x->dir_fd, x->dir, err, errlen);
	if (r < 0)
		goto fail;
	r = open_file(x, err, errlen);
	if (r < 0)
		goto fail;
	r = sd_event_now(e, CLOCK_MONOTONIC, &now);
	if (r >= 0)
		r = sd_event_add_time(e, &x->timer, CLOCK_MONOTONIC, now + FLUSH_USEC, 100 * 1000, on_timer, x);
	if (r >= 0)
		r = sd_event_source_set_enabled(x->timer, SD_EVENT_ON);
	if (r < 0) {
		snprintf(err, errlen, "cannot add the flush timer: %s", strerror(-r));
		goto fail;
	}
	*ret = x;
	return 0;
fail:
	export_ndjson_free(x);
	return r;
}

struct export_ndjson *export_ndjson_free(struct export_ndjson *x)
{
	if (!x)
		return NULL;
	flush(x);
	x->timer = sd_event_source_disable_unref(x->timer);
	x->fd = safe_close(x->fd);
	x->dir_fd = safe_close(x->dir_fd);
	free(x->buf);
	free(x->dir);
	free(x->base);
	free(x);
	return NULL;
}

static int reserve(struct export_ndjson *x, size_t need)
{
	size_t cap = x->cap ? x->cap : FLUSH_BYTES * 2;
	char *b;

	if (x->len + need <= x->cap)
		return 0;
	while (cap < x->len + need)
		cap *= 2;
	b = realloc(x->buf, cap);
	if (!b)
		return -ENOMEM;
	x->buf = b;
	x->cap = cap;
	return 0;
}

void export_ndjson_record(struct export_ndjson *x, json_object *rec)
{
	size_t n;
	const char *s = json_object_to_json_string_length(rec, JSON_LINE_FLAGS, &n);

	if (!s || reserve(x, n + 1) < 0) {
		x->stats.dropped++;
		return;
	}
	memcpy(x->buf + x->len, s, n);
	x->buf[x->len + n] = '\n';
	x->len += n + 1;
	x->stats.lines++;
	if (x->len >= FLUSH_BYTES)
		flush(x);
}

json_object *export_ndjson_stats_to_json(const struct export_ndjson *x)
{
	json_object *o = json_object_new_object();

	json_add_u64(o, "lines", x->stats.lines);
	json_add_u64(o, "bytes", x->stats.bytes);
	json_add_u64(o, "rotations", x->stats.rotations);
	json_add_u64(o, "errors", x->stats.errors);
	json_add_u64(o, "dropped", x->stats.dropped);
	return o;
}

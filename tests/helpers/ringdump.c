// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ringdump: a test helper that drains connpid's pinned `events` ring buffer
 * and prints each struct connpid_event as one JSON line on stdout.
 *
 *   ringdump --pin-dir DIR [--timeout-ms N] [--count N]
 *
 * Stops when --count events were printed or --timeout-ms passed (default
 * 1000). The tracker submits with BPF_RB_NO_WAKEUP, so epoll alone would
 * not see small bursts: every short poll is followed by a consume.
 * Exit 0 on success (also when no event arrived), 1 on any error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "connpid.h"

#define POLL_SLICE_MS 20
/* Returned by the callback once --count is reached: not an error. */
#define DUMP_DONE (-ECANCELED)

struct dump_state {
	unsigned long long printed;
	unsigned long long limit; /* 0: no limit */
	int error;                /* first error from the callback, negative errno */
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt, va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

static void json_comm(FILE *f, const char *comm, size_t len)
{
	fputc('"', f);
	for (size_t i = 0; i < len && comm[i]; i++) {
		unsigned char c = (unsigned char)comm[i];

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int addr_str(__u8 family, const __u32 addr[4], char *buf, size_t size)
{
	if (family == 2) {
		if (!inet_ntop(AF_INET, &addr[0], buf, size))
			return -errno;
	} else {
		if (!inet_ntop(AF_INET6, addr, buf, size))
			return -errno;
	}
	return 0;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct dump_state *st = ctx;
	struct connpid_event e;
	char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int r;

	if (st->limit && st->printed >= st->limit)
		return DUMP_DONE;
	if (size < sizeof(e)) {
		fprintf(stderr, "ringdump: short event: %zu bytes, expected %zu\n", size, sizeof(e));
		st->error = -EPROTO;
		return -EPROTO;
	}
	memcpy(&e, data, sizeof(e));
	r = addr_str(e.family, e.src_ip, src, sizeof(src));
	if (r == 0)
		r = addr_str(e.family, e.dst_ip, dst, sizeof(dst));
	if (r < 0) {
		fprintf(stderr, "ringdump: inet_ntop: %s\n", strerror(-r));
		st->error = r;
		return r;
	}
	printf("{\"ts_ns\":%llu,\"cgroup_id\":%llu,\"socket_cookie\":%llu,"
	       "\"start_boottime_ns\":%llu,\"netns_ino\":%llu,"
	       "\"pid\":%u,\"tid\":%u,\"uid\":%u,\"gid\":%u,"
	       "\"src\":\"%s\",\"dst\":\"%s\",\"src_port\":%u,\"dst_port\":%u,"
	       "\"family\":%u,\"protocol\":%u,\"source\":%u,\"flags\":%u,\"prev_pid\":%u,"
	       "\"size\":%zu,\"comm\":",
	       (unsigned long long)e.ts_ns, (unsigned long long)e.cgroup_id,
	       (unsigned long long)e.socket_cookie, (unsigned long long)e.start_boottime_ns,
	       (unsigned long long)e.netns_ino, e.pid, e.tid, e.uid, e.gid, src, dst,
	       e.src_port, e.dst_port, e.family, e.protocol, e.source, e.flags, e.prev_pid,
	       size);
	json_comm(stdout, e.comm, sizeof(e.comm));
	printf("}\n");
	if (fflush(stdout) == EOF) {
		st->error = -errno;
		return st->error;
	}
	st->printed++;
	/* Stop here so libbpf leaves later events in the ring for others. */
	if (st->limit && st->printed >= st->limit)
		return DUMP_DONE;
	return 0;
}

static int parse_ull(const char *s, const char *what, unsigned long long *ret)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || !*s || *end || s[0] == '-') {
		fprintf(stderr, "ringdump: invalid %s '%s'\n", what, s);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		return -1;
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: ringdump --pin-dir DIR [--timeout-ms N] [--count N]\n");
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct dump_state st = {};
	struct ring_buffer *rb = NULL;
	const char *pin_dir = NULL;
	unsigned long long timeout_ms = 1000;
	char path[PATH_MAX];
	long long deadline, now;
	int map_fd = -1, ret = EXIT_FAILURE, c, n, r;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (c) {
		case 'p':
			pin_dir = optarg;
			break;
		case 't':
			if (parse_ull(optarg, "--timeout-ms", &timeout_ms) < 0)
				goto out;
			break;
		case 'c':
			if (parse_ull(optarg, "--count", &st.limit) < 0)
				goto out;
			break;
		case 'h':
			usage(stdout);
			ret = EXIT_SUCCESS;
			goto out;
		default:
			usage(stderr);
			goto out;
		}
	}
	if (!pin_dir || optind < argc) {
		usage(stderr);
		goto out;
	}
	libbpf_set_print(libbpf_quiet);

	n = snprintf(path, sizeof(path), "%s/events", pin_dir);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		fprintf(stderr, "ringdump: pin path too long\n");
		goto out;
	}
	map_fd = bpf_obj_get(path);
	if (map_fd < 0) {
		fprintf(stderr, "ringdump: cannot open %s: %s\n", path, strerror(errno));
		goto out;
	}
	rb = ring_buffer__new(map_fd, on_event, &st, NULL);
	if (!rb) {
		fprintf(stderr, "ringdump: ring_buffer__new(%s): %s\n", path, strerror(errno));
		goto out;
	}

	now = now_ms();
	if (now < 0) {
		fprintf(stderr, "ringdump: clock_gettime: %s\n", strerror(errno));
		goto out;
	}
	deadline = now + (long long)timeout_ms;
	for (;;) {
		long long left = deadline - now;
		int slice = left < POLL_SLICE_MS ? (int)(left > 0 ? left : 0) : POLL_SLICE_MS;

		r = ring_buffer__poll(rb, slice);
		if (r == DUMP_DONE && st.error == 0)
			break;
		if (r < 0 && r != -EINTR) {
			fprintf(stderr, "ringdump: ring_buffer__poll: %s\n", strerror(-r));
			goto out;
		}
		/* Events submitted without a wakeup are only found by consuming. */
		r = ring_buffer__consume(rb);
		if (r == DUMP_DONE && st.error == 0)
			break;
		if (r < 0) {
			fprintf(stderr, "ringdump: ring_buffer__consume: %s\n", strerror(-r));
			goto out;
		}
		if (st.error < 0) {
			fprintf(stderr, "ringdump: %s\n", strerror(-st.error));
			goto out;
		}
		if (st.limit && st.printed >= st.limit)
			break;
		now = now_ms();
		if (now < 0) {
			fprintf(stderr, "ringdump: clock_gettime: %s\n", strerror(errno));
			goto out;
		}
		if (now >= deadline)
			break;
	}
	ret = EXIT_SUCCESS;
out:
	ring_buffer__free(rb);
	if (map_fd >= 0)
		close(map_fd);
	return ret;
}

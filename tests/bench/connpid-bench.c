// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * connpid-bench: what connpid costs the host, and what it saves a client.
 *
 * One process drives everything so that baseline and measured runs are
 * interleaved in the same process on the same (noisy) machine:
 *
 *   connect   TCP connect/accept/close and three UDP send patterns, rounds
 *             alternating between a child cgroup with connpid attached
 *             ("on") and a sibling without ("off"), the process moving
 *             itself between them; new sockets are made after each move.
 *   lookup    queryd's socket (sequential latency, pipelined throughput
 *             with 1 and 8 clients) vs `ss -tnpH`, `connpidctl --direct`,
 *             `connpidctl` via the daemon, and an in-process map lookup.
 *   burst     200k new UDP flows as fast as possible, for a few ring sizes:
 *             kernel events, events queryd received, drops, drain rate,
 *             queryd CPU per event.
 *   storage   the same burst with queryd writing its SQLite history
 *             (--db in a private temp dir): rows/s, drain time, drops,
 *             bytes per flow.
 *   footprint queryd VmRSS idle and with a full index; memlock of the maps.
 *   inbound   with --loader-arg --inbound: TCP connect+accept+close with the
 *             accept4 exit tracepoint attached or not (the bench holds that
 *             link itself, so it can toggle it between rounds), in the
 *             connpid cgroup and in the floor cgroup: the per-accept cost,
 *             and what an enabled syscall tracepoint costs everyone else.
 *   BPF cost  per connpid program, ns per run and runs per operation, from
 *             BPF_ENABLE_STATS (held by an fd, so the host's sysctl is not
 *             touched) in separate "on" rounds after the timed ones.
 *
 * Benchmarks report; nothing here asserts a timing. Everything lives in a
 * private cgroup subtree and pin dir, removed on every exit path.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/perf_event.h>
#include <linux/types.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include "bench-stats.h"
#include "cgroup2.h"
#include "connpid.h"
#include "pins.h"

#define MAX_ROUNDS 64
#define SINK_PORT_DEFAULT 0
#define BURST_V4_ENTRIES (512u * 1024u)
#define PIPE_WINDOW 64
#define EXEC_CALLS 20

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
	(void)sig;
	g_stop = 1;
}

static void warn_errno(int err, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "connpid-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (err)
		fprintf(stderr, ": %s", strerror(err < 0 ? -err : err));
	fputc('\n', stderr);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
		abort(); /* cannot happen for CLOCK_MONOTONIC */
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR && !g_stop)
		;
}

static double median_of(const double *src, size_t n)
{
	double tmp[MAX_ROUNDS > EXEC_CALLS ? MAX_ROUNDS : EXEC_CALLS];

	if (n > sizeof(tmp) / sizeof(tmp[0]))
		n = sizeof(tmp) / sizeof(tmp[0]);
	memcpy(tmp, src, n * sizeof(*src));
	return percentile(tmp, n, 50);
}

/* ---------- state ---------------------------------------------------- */

struct bench {
	/* options */
	const char *loader, *queryd, *ctl, *json_path, *log_path;
	const char *base_loader; /* --baseline-loader: a second tracker, section 1 only */
	bool quick, connect_only;
	const char *loader_args[4]; /* extra loader flags, e.g. --no-dns */
	unsigned n_loader_args, rounds_opt;
	unsigned tcp_n, udp_n, rounds, lookup_n, pipe_n, burst_n;
	/* environment */
	char cg_mount[1024], cg_orig[3072], cg_root[1100];
	char cg_on[1200], cg_off[1200], cg_base[1200];
	bool cg_root_made, cg_on_made, cg_off_made, cg_base_made;
	char pin_dir[PATH_MAX], base_pin_dir[PATH_MAX], sock_path[PATH_MAX], base_sock_path[PATH_MAX];
	char tmp_dir[PATH_MAX], db_path[PATH_MAX + 32]; /* db_path[0]: queryd runs with --db */
	bool loaded, base_loaded;
	pid_t queryd_pid, base_queryd_pid;
	int log_fd;
	int sink_fd;
	uint16_t sink_port;
	uint32_t next_ip; /* host order offset for distinct destinations */
	json_object *res;
};

/* ---------- small file helpers ---------------------------------------- */

static int read_text(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r < 0 ? r : (int)len;
}

static int write_text(const char *path, const char *s)
{
	size_t len = strlen(s);
	ssize_t n;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = write(fd, s, len);
	if (n < 0)
		r = -errno;
	else if ((size_t)n != len)
		r = -EIO;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* A "Key:\t value" line of a /proc file, as an integer. */
static int proc_field(const char *path, const char *key, long long *ret)
{
	char buf[8192], *p;
	size_t klen = strlen(key);
	int r;

	r = read_text(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (strncmp(p, key, klen) == 0 && p[klen] == ':') {
			*ret = strtoll(p + klen + 1, NULL, 10);
			return 0;
		}
	return -ENOENT;
}

static long long status_kb(pid_t pid, const char *key)
{
	char path[64];
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (proc_field(path, key, &v) < 0)
		return -1;
	return v;
}

static long long rss_kb(pid_t pid)
{
	char path[64];
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (proc_field(path, "VmRSS", &v) < 0)
		return -1;
	return v;
}

/* CPU of a process: utime+stime (ticks -> ns) and schedstat run time (ns). */
static int proc_cpu(pid_t pid, uint64_t *ticks_ns, uint64_t *sched_ns)
{
	char path[64], buf[2048], *p;
	unsigned long long ut = 0, st = 0, run = 0;
	long hz = sysconf(_SC_CLK_TCK);
	int r;

	if (hz <= 0)
		hz = 100;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_text(path, buf, sizeof(buf));
	if (r < 0)
		return r;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EBADMSG;
	*ticks_ns = (ut + st) * (1000000000ULL / (unsigned long long)hz);
	snprintf(path, sizeof(path), "/proc/%d/schedstat", (int)pid);
	r = read_text(path, buf, sizeof(buf));
	if (r < 0 || sscanf(buf, "%llu", &run) != 1)
		run = 0;
	*sched_ns = run;
	return 0;
}

/* ---------- cgroups ---------------------------------------------------- */

static int find_cgroup2(struct bench *b)
{
	char buf[65536], *line, *save = NULL;
	int r;

	r = cgroup2_find_mount(b->cg_mount, sizeof(b->cg_mount));
	if (r < 0)
		return r;
	r = read_text("/proc/self/cgroup", buf, sizeof(buf));
	if (r < 0)
		return r;
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "0::", 3) == 0) {
			snprintf(b->cg_orig, sizeof(b->cg_orig), "%s%s", b->cg_mount,
				 strcmp(line + 3, "/") == 0 ? "" : line + 3);
			return 0;
		}
	return -ENOENT;
}

static int cg_move_self(const char *cg)
{
	char path[PATH_MAX + 32], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	return write_text(path, pid);
}

static int setup_cgroups(struct bench *b)
{
	int r;

	r = find_cgroup2(b);
	if (r < 0) {
		warn_errno(r, "no cgroup2 mount or own cgroup2 path");
		return r;
	}
	snprintf(b->cg_root, sizeof(b->cg_root), "%s/connpid-bench-%d", b->cg_mount, (int)getpid());
	snprintf(b->cg_on, sizeof(b->cg_on), "%s/on", b->cg_root);
	snprintf(b->cg_off, sizeof(b->cg_off), "%s/off", b->cg_root);
	if (mkdir(b->cg_root, 0755) < 0) {
		warn_errno(errno, "mkdir %s", b->cg_root);
		return -errno;
	}
	b->cg_root_made = true;
	if (mkdir(b->cg_on, 0755) < 0) {
		warn_errno(errno, "mkdir %s", b->cg_on);
		return -errno;
	}
	b->cg_on_made = true;
	if (mkdir(b->cg_off, 0755) < 0) {
		warn_errno(errno, "mkdir %s", b->cg_off);
		return -errno;
	}
	b->cg_off_made = true;
	if (!b->base_loader)
		return 0;
	snprintf(b->cg_base, sizeof(b->cg_base), "%s/base", b->cg_root);
	if (mkdir(b->cg_base, 0755) < 0) {
		warn_errno(errno, "mkdir %s", b->cg_base);
		return -errno;
	}
	b->cg_base_made = true;
	return 0;
}

/* ---------- child processes ------------------------------------------- */

/* fork+exec with stdout to out_fd (or the log) and stderr to the log. */
static int spawn(struct bench *b, char *const argv[], int out_fd, pid_t *ret)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		if (dup2(out_fd >= 0 ? out_fd : b->log_fd, STDOUT_FILENO) < 0 ||
		    dup2(b->log_fd, STDERR_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		_exit(127);
	}
	*ret = pid;
	return 0;
}

static int wait_child(pid_t pid, int *ret_status)
{
	int st;

	for (;;) {
		pid_t w = waitpid(pid, &st, 0);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR)
			return -errno;
	}
	*ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	return 0;
}

/* Run to completion; capture stdout if cap != NULL. Returns exit status
 * (>= 0) or negative errno; *ret_ns is the wall time of the whole call. */
static int run_cmd(struct bench *b, char *const argv[], char *cap, size_t cap_size, uint64_t *ret_ns)
{
	int pfd[2] = { -1, -1 }, status = -1, r;
	size_t len = 0;
	uint64_t t0 = now_ns();
	pid_t pid = -1;

	if (cap && pipe2(pfd, O_CLOEXEC) < 0)
		return -errno;
	r = spawn(b, argv, cap ? pfd[1] : -1, &pid);
	if (cap && close(pfd[1]) < 0 && r >= 0)
		r = -errno;
	pfd[1] = -1;
	if (r < 0)
		goto out;
	while (cap) {
		char tmp[4096];
		ssize_t n = read(pfd[0], tmp, sizeof(tmp));

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (len + 1 < cap_size) {
			size_t k = (size_t)n < cap_size - 1 - len ? (size_t)n : cap_size - 1 - len;

			memcpy(cap + len, tmp, k);
			len += k;
		}
	}
	if (cap)
		cap[len] = '\0';
	r = wait_child(pid, &status);
	if (r >= 0)
		r = status;
out:
	if (ret_ns)
		*ret_ns = now_ns() - t0;
	if (pfd[0] >= 0 && close(pfd[0]) < 0 && r >= 0)
		r = -errno;
	return r;
}

static int loader_load_at(struct bench *b, bool base, unsigned ringbuf, unsigned v4)
{
	char rb[32], e4[32];
	char *argv[16];
	int n = 0, r;

	argv[n++] = (char *)(base ? b->base_loader : b->loader);
	argv[n++] = "--pin-dir";
	argv[n++] = base ? b->base_pin_dir : b->pin_dir;
	argv[n++] = "--cgroup";
	argv[n++] = base ? b->cg_base : b->cg_on;
	argv[n++] = "--no-ipv6-blocker";
	if (ringbuf) {
		snprintf(rb, sizeof(rb), "%u", ringbuf);
		argv[n++] = "--ringbuf-bytes";
		argv[n++] = rb;
	}
	if (v4) {
		snprintf(e4, sizeof(e4), "%u", v4);
		argv[n++] = "--map-entries-v4";
		argv[n++] = e4;
	}
	for (unsigned i = 0; i < b->n_loader_args; i++)
		argv[n++] = (char *)b->loader_args[i];
	argv[n] = NULL;
	/* a failed load may still leave pins: unload anyway */
	if (base)
		b->base_loaded = true;
	else
		b->loaded = true;
	r = run_cmd(b, argv, NULL, 0, NULL);
	if (r != 0) {
		warn_errno(r < 0 ? r : 0, "%s failed (status %d); see %s", argv[0], r, b->log_path);
		return r < 0 ? r : -EIO;
	}
	return 0;
}

static int loader_load(struct bench *b, unsigned ringbuf, unsigned v4)
{
	return loader_load_at(b, false, ringbuf, v4);
}

static int loader_unload_at(struct bench *b, bool base)
{
	char *argv[] = { (char *)(base ? b->base_loader : b->loader), "--unload", "--pin-dir",
			 base ? b->base_pin_dir : b->pin_dir, NULL };
	int r;

	if (!(base ? b->base_loaded : b->loaded))
		return 0;
	r = run_cmd(b, argv, NULL, 0, NULL);
	if (r != 0) {
		warn_errno(r < 0 ? r : 0, "connpid-loader --unload failed (status %d)", r);
		return r < 0 ? r : -EIO;
	}
	if (base)
		b->base_loaded = false;
	else
		b->loaded = false;
	return 0;
}

static int loader_unload(struct bench *b)
{
	return loader_unload_at(b, false);
}

/* ---------- queryd client ---------------------------------------------- */

struct qconn {
	int fd;
	size_t len, off;
	char buf[256 * 1024];
};

static int q_connect(const char *path, struct qconn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	c->len = c->off = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		(void)close(c->fd);
		c->fd = -1;
		return r;
	}
	return 0;
}

static void q_close(struct qconn *c)
{
	if (c->fd >= 0 && close(c->fd) < 0)
		warn_errno(errno, "close query socket");
	c->fd = -1;
}

static int q_send(struct qconn *c, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = send(c->fd, s, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR && !g_stop)
				continue;
			return -errno;
		}
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Next line (NUL-terminated, valid until the next call). */
static int q_readline(struct qconn *c, char **ret)
{
	for (;;) {
		char *nl = memchr(c->buf + c->off, '\n', c->len - c->off);
		ssize_t n;

		if (nl) {
			*nl = '\0';
			*ret = c->buf + c->off;
			c->off = (size_t)(nl - c->buf) + 1;
			return 0;
		}
		if (c->off > 0) {
			memmove(c->buf, c->buf + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		if (c->len + 1 >= sizeof(c->buf))
			return -E2BIG;
		n = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
		if (n < 0) {
			if (errno == EINTR && !g_stop)
				continue;
			return -errno;
		}
		if (n == 0)
			return -ECONNRESET;
		c->len += (size_t)n;
	}
}

/* One request, one parsed answer (caller puts it). */
static int q_call(struct qconn *c, const char *req, json_object **ret)
{
	char *line;
	int r;

	r = q_send(c, req, strlen(req));
	if (r < 0)
		return r;
	r = q_readline(c, &line);
	if (r < 0)
		return r;
	*ret = json_tokener_parse(line);
	return *ret ? 0 : -EBADMSG;
}

static long long jget(json_object *o, const char *path)
{
	char buf[128], *save = NULL, *tok;
	json_object *v = o;

	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save))
		if (!json_object_object_get_ex(v, tok, &v))
			return -1;
	return json_object_get_int64(v);
}

/* queryd's stats op: events_received and index_flows; *ret_ns its latency. */
static int q_stats(struct bench *b, long long *events_received, long long *index_flows, uint64_t *ret_ns)
{
	struct qconn *c = malloc(sizeof(*c));
	json_object *o = NULL;
	uint64_t t0;
	int r;

	if (!c)
		return -ENOMEM;
	r = q_connect(b->sock_path, c);
	if (r < 0)
		goto out;
	t0 = now_ns();
	r = q_call(c, "{\"op\":\"stats\"}\n", &o);
	if (ret_ns)
		*ret_ns = now_ns() - t0;
	if (r < 0)
		goto out;
	*events_received = jget(o, "stats.events_received");
	if (index_flows)
		*index_flows = jget(o, "stats.index_flows");
out:
	json_object_put(o);
	if (c->fd >= 0)
		q_close(c);
	free(c);
	return r;
}

static int queryd_stop_at(struct bench *b, pid_t *pid, const char *sock_path)
{
	int st = 0;

	if (*pid <= 0)
		return 0;
	if (kill(*pid, SIGTERM) < 0 && errno != ESRCH)
		warn_errno(errno, "kill queryd");
	for (int i = 0; i < 100; i++) {
		pid_t w = waitpid(*pid, &st, WNOHANG);

		if (w == *pid || (w < 0 && errno == ECHILD))
			goto done;
		sleep_ms(50);
	}
	if (kill(*pid, SIGKILL) < 0 && errno != ESRCH)
		warn_errno(errno, "kill -9 queryd");
	if (wait_child(*pid, &st) < 0)
		warn_errno(errno, "waitpid queryd");
done:
	*pid = 0;
	if (unlink(sock_path) < 0 && errno != ENOENT)
		warn_errno(errno, "unlink %s", sock_path);
	return 0;
}

static int queryd_stop(struct bench *b)
{
	return queryd_stop_at(b, &b->queryd_pid, b->sock_path);
}

/* queryd on the baseline's pins: its ring drained as the tested one is
 * (an undrained ring fills and every later event takes the cheap drop
 * path, which would flatter the baseline). */
static int queryd_start_at(struct bench *b, const char *pin_dir, const char *sock_path, pid_t *pid);

static int queryd_start(struct bench *b)
{
	return queryd_start_at(b, b->pin_dir, b->sock_path, &b->queryd_pid);
}

static int queryd_start_at(struct bench *b, const char *pin_dir, const char *sock_path, pid_t *pid)
{
	char *argv[] = { (char *)b->queryd, "--pin-dir", (char *)pin_dir, "--socket", (char *)sock_path,
			 b->db_path[0] ? "--db" : "--no-store", b->db_path[0] ? b->db_path : NULL, NULL };
	struct qconn *c;
	int r;

	if (unlink(sock_path) < 0 && errno != ENOENT)
		return -errno;
	r = spawn(b, argv, -1, pid);
	if (r < 0)
		return r;
	c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = -ETIMEDOUT;
	for (int i = 0; i < 200 && !g_stop; i++) {
		json_object *o = NULL;
		int st;

		if (waitpid(*pid, &st, WNOHANG) == *pid) {
			*pid = 0;
			r = -ECHILD;
			break;
		}
		if (q_connect(sock_path, c) == 0) {
			int k = q_call(c, "{\"op\":\"ping\"}\n", &o);

			json_object_put(o);
			q_close(c);
			if (k == 0) {
				r = 0;
				break;
			}
		}
		sleep_ms(25);
	}
	free(c);
	if (r < 0)
		warn_errno(r, "connpid-queryd did not come up; see %s", b->log_path);
	return r;
}

/* ---------- pinned maps ------------------------------------------------ */

static int bench_pin_open(struct bench *b, const char *name)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", b->pin_dir, name);
	fd = bpf_obj_get(path);
	return fd < 0 ? -errno : fd;
}

static int stat_sum(struct bench *b, __u32 slot, unsigned long long *ret)
{
	__u64 v = 0;
	int fd, r;

	fd = bench_pin_open(b, "stats");
	if (fd < 0)
		return fd;
	r = connpid_stats_read(fd, slot, &v);
	*ret = v;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	return r;
}

/* Ring positions, read-only, so draining can be watched without asking
 * queryd (its stats op walks the whole map). */
struct ringpos {
	int fd;
	size_t page;
	void *cons, *prod;
};

static int ringpos_open(struct bench *b, struct ringpos *rp)
{
	rp->page = (size_t)sysconf(_SC_PAGESIZE);
	rp->cons = rp->prod = MAP_FAILED;
	rp->fd = bench_pin_open(b, "events");
	if (rp->fd < 0)
		return rp->fd;
	rp->cons = mmap(NULL, rp->page, PROT_READ, MAP_SHARED, rp->fd, 0);
	if (rp->cons == MAP_FAILED)
		return -errno;
	rp->prod = mmap(NULL, rp->page, PROT_READ, MAP_SHARED, rp->fd, (off_t)rp->page);
	if (rp->prod == MAP_FAILED)
		return -errno;
	return 0;
}

static void ringpos_close(struct ringpos *rp)
{
	if (rp->cons != MAP_FAILED && munmap(rp->cons, rp->page) < 0)
		warn_errno(errno, "munmap");
	if (rp->prod != MAP_FAILED && munmap(rp->prod, rp->page) < 0)
		warn_errno(errno, "munmap");
	if (rp->fd >= 0 && close(rp->fd) < 0)
		warn_errno(errno, "close ring fd");
	rp->fd = -1;
	rp->cons = rp->prod = MAP_FAILED;
}

static bool ring_empty(const struct ringpos *rp)
{
	unsigned long c = __atomic_load_n((unsigned long *)rp->cons, __ATOMIC_ACQUIRE);
	unsigned long p = __atomic_load_n((unsigned long *)rp->prod, __ATOMIC_ACQUIRE);

	return c == p;
}

/* Wait until queryd consumed everything; bounded. */
static int wait_drained(struct bench *b, unsigned timeout_ms)
{
	struct ringpos rp;
	int r;

	r = ringpos_open(b, &rp);
	if (r < 0)
		goto out;
	r = -ETIMEDOUT;
	for (unsigned i = 0; i < timeout_ms && !g_stop; i++) {
		if (ring_empty(&rp)) {
			r = 0;
			break;
		}
		sleep_ms(1);
	}
out:
	ringpos_close(&rp);
	return r;
}

static long long fd_memlock(int fd)
{
	char path[64];
	long long v = -1;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (proc_field(path, "memlock", &v) < 0)
		return -1;
	return v;
}

static int maps_memlock(struct bench *b, json_object *out, long long *total)
{
	static const char *const names[] = { "conn_to_pid_v4", "conn_to_pid_v6", "events", "stats",
					     "config", "meta" };

	*total = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int fd = bench_pin_open(b, names[i]);
		long long v;

		if (fd < 0)
			continue;
		v = fd_memlock(fd);
		if (close(fd) < 0)
			return -errno;
		json_object_object_add(out, names[i], json_object_new_int64(v));
		if (v > 0)
			*total += v;
	}
	return 0;
}

/* ---------- traffic ------------------------------------------------------ */

static struct sockaddr_in lo_addr(uint32_t host_ip, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };

	a.sin_addr.s_addr = htonl(host_ip);
	return a;
}

static uint16_t sock_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		return 0;
	return ntohs(a.sin_port);
}

/* A UDP receiver on 0.0.0.0:port takes whatever we send to 127/8, so no
 * ICMP unreachable is generated; its queue overflows, which costs the
 * same with and without connpid. */
static int sink_open(struct bench *b)
{
	struct sockaddr_in a = lo_addr(INADDR_ANY, 0);

	b->sink_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (b->sink_fd < 0)
		return -errno;
	if (bind(b->sink_fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		return -errno;
	b->sink_port = sock_port(b->sink_fd);
	return b->sink_port ? 0 : -EADDRNOTAVAIL;
}

static int tcp_listener(uint16_t *port)
{
	struct sockaddr_in a = lo_addr(INADDR_LOOPBACK, 0);
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 1024) < 0) {
		int r = -errno;

		(void)close(fd);
		return r;
	}
	*port = sock_port(fd);
	return fd;
}

enum cmode { M_TCP, M_UDP_NEW, M_UDP_REPEAT, M_UDP_CONN, M_MAX };
static const char *const mode_name[M_MAX] = { "tcp_connect", "udp_sendto_new", "udp_sendto_repeat",
					      "udp_connected_send" };
static const char *const mode_label[M_MAX] = { "TCP connect+accept+close", "UDP sendto, new flow each",
					       "UDP sendto, same flow", "UDP connected send" };

/* One TCP round: connect/accept/close n times; server closes first so
 * TIME_WAIT sits on the listener side and ephemeral ports never run out. */
static int round_tcp(unsigned n, double *ns_per)
{
	struct sockaddr_in a;
	uint16_t port = 0;
	uint64_t t0;
	int lfd, r = 0;

	lfd = tcp_listener(&port);
	if (lfd < 0)
		return lfd;
	a = lo_addr(INADDR_LOOPBACK, port);
	t0 = now_ns();
	for (unsigned i = 0; i < n && !g_stop; i++) {
		int c, s;

		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0) {
			r = -errno;
			break;
		}
		if (connect(c, (struct sockaddr *)&a, sizeof(a)) < 0) {
			r = -errno;
			(void)close(c);
			break;
		}
		s = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (s < 0) {
			r = -errno;
			(void)close(c);
			break;
		}
		if (close(s) < 0 || close(c) < 0) {
			r = -errno;
			break;
		}
	}
	*ns_per = (double)(now_ns() - t0) / n;
	if (close(lfd) < 0 && r == 0)
		r = -errno;
	if (g_stop && r == 0)
		r = -EINTR;
	return r;
}

static int round_udp(struct bench *b, enum cmode m, unsigned n, double *ns_per)
{
	struct sockaddr_in dst = lo_addr(INADDR_LOOPBACK, b->sink_port);
	char payload[32] = "connpid-bench";
	uint64_t t0;
	int fd, r = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (m == M_UDP_CONN && connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		r = -errno;
		goto out;
	}
	/* the first packet of repeat modes is the new flow: not what we time */
	if (m != M_UDP_NEW && sendto(fd, payload, sizeof(payload), 0, m == M_UDP_CONN ? NULL : (struct sockaddr *)&dst,
				     m == M_UDP_CONN ? 0 : sizeof(dst)) < 0) {
		r = -errno;
		goto out;
	}
	t0 = now_ns();
	for (unsigned i = 0; i < n && !g_stop; i++) {
		ssize_t k;

		if (m == M_UDP_NEW) {
			/* distinct destinations in 127.16.0.0 - 127.255.255.255 */
			dst.sin_addr.s_addr = htonl(0x7f100000u + (b->next_ip++ % 0x00f00000u));
			k = sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&dst, sizeof(dst));
		} else if (m == M_UDP_REPEAT) {
			k = sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&dst, sizeof(dst));
		} else {
			k = send(fd, payload, sizeof(payload), 0);
		}
		if (k < 0) {
			r = -errno;
			break;
		}
	}
	*ns_per = (double)(now_ns() - t0) / n;
out:
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (g_stop && r == 0)
		r = -EINTR;
	return r;
}

/* ---------- 1. connect overhead ------------------------------------------ */

struct conn_res {
	unsigned n, rounds;
	double on[MAX_ROUNDS], off[MAX_ROUNDS], ratio[MAX_ROUNDS];
	double base[MAX_ROUNDS]; /* --baseline-loader's cgroup */
	double med_on, med_off, med_ratio, med_base;
};

/* Where one timed round of section 1 runs. */
enum cvar { CV_ON, CV_OFF, CV_BASE };

static const char *cvar_cgroup(const struct bench *b, enum cvar v)
{
	return v == CV_ON ? b->cg_on : v == CV_OFF ? b->cg_off : b->cg_base;
}

static struct conn_res g_conn[M_MAX];

static int bench_connect(struct bench *b, json_object *out)
{
	int r = 0;

	for (enum cmode m = 0; m < M_MAX; m++) {
		struct conn_res *cr = &g_conn[m];
		unsigned n = m == M_TCP ? b->tcp_n : b->udp_n;
		json_object *o = json_object_new_object(), *aon = json_object_new_array(),
			    *aoff = json_object_new_array();

		json_object_object_add(out, mode_name[m], o);
		json_object_object_add(o, "on_ns", aon);
		json_object_object_add(o, "off_ns", aoff);
		cr->n = n;
		cr->rounds = b->rounds;
		/* round 0 warms up every side and is not recorded; the order
		 * rotates (with a baseline: on, off, base, then off, base, on...) */
		unsigned nv = b->base_loader ? 3 : 2;

		for (unsigned rd = 0; rd <= b->rounds && r == 0; rd++)
			for (unsigned k = 0; k < nv && r == 0; k++) {
				enum cvar v = (enum cvar)((rd + k) % nv);
				bool on = v == CV_ON;
				double ns = 0;

				r = cg_move_self(cvar_cgroup(b, v));
				if (r < 0) {
					warn_errno(r, "moving into %s", cvar_cgroup(b, v));
					break;
				}
				r = m == M_TCP ? round_tcp(n, &ns) : round_udp(b, m, n, &ns);
				if (r < 0) {
					warn_errno(r, "%s round", mode_name[m]);
					break;
				}
				if (rd == 0)
					continue;
				if (on)
					cr->on[rd - 1] = ns;
				else if (v == CV_OFF)
					cr->off[rd - 1] = ns;
				else
					cr->base[rd - 1] = ns;
			}
		if (cg_move_self(b->cg_orig) < 0 && r == 0)
			r = -errno;
		if (r < 0)
			break;
		for (unsigned i = 0; i < cr->rounds; i++) {
			cr->ratio[i] = cr->on[i] / cr->off[i];
			json_object_array_add(aon, json_object_new_double(cr->on[i]));
			json_object_array_add(aoff, json_object_new_double(cr->off[i]));
		}
		cr->med_on = median_of(cr->on, cr->rounds);
		cr->med_off = median_of(cr->off, cr->rounds);
		cr->med_ratio = median_of(cr->ratio, cr->rounds);
		if (b->base_loader) {
			json_object *ab = json_object_new_array();

			for (unsigned i = 0; i < cr->rounds; i++)
				json_object_array_add(ab, json_object_new_double(cr->base[i]));
			json_object_object_add(o, "baseline_ns", ab);
			cr->med_base = median_of(cr->base, cr->rounds);
			json_object_object_add(o, "baseline_added_ns", json_object_new_double(cr->med_base - cr->med_off));
		}
		json_object_object_add(o, "ops_per_round", json_object_new_int64(n));
		json_object_object_add(o, "rounds", json_object_new_int64(cr->rounds));
		json_object_object_add(o, "median_on_ns", json_object_new_double(cr->med_on));
		json_object_object_add(o, "median_off_ns", json_object_new_double(cr->med_off));
		json_object_object_add(o, "median_pair_ratio", json_object_new_double(cr->med_ratio));
		json_object_object_add(o, "overhead_percent", json_object_new_double((cr->med_ratio - 1) * 100));
		json_object_object_add(o, "added_ns", json_object_new_double(cr->med_on - cr->med_off));
		fprintf(stderr, "  %-26s off %8.0f ns  on %8.0f ns  ratio %.3f\n", mode_label[m],
			cr->med_off, cr->med_on, cr->med_ratio);
	}
	return r;
}

/* ---------- 1c. inbound (--loader-arg --inbound) --------------------------- */

enum ivar { V_OFF, V_OFF_TP, V_ON, V_ON_TP, V_MAX };
static const char *const ivar_name[V_MAX] = { "off", "off_tracepoint", "on", "on_inbound" };
static const char *const ivar_label[V_MAX] = {
	"no connpid (floor)", "floor, accept tracepoint on", "connpid, inbound off", "connpid --inbound",
};

#define SYSCALL_N 200000

struct inbound_res {
	bool ran;
	unsigned n, rounds;
	double ns[V_MAX][MAX_ROUNDS], med[V_MAX];
	/* getppid() in the floor cgroup, tracepoint off / on: the price an
	 * enabled syscall tracepoint puts on every syscall of the host */
	double sys[2][MAX_ROUNDS], sys_med[2];
};
static struct inbound_res g_inb;

static bool wants_inbound(const struct bench *b)
{
	for (unsigned i = 0; i < b->n_loader_args; i++)
		if (strcmp(b->loader_args[i], "--inbound") == 0)
			return true;
	return false;
}

/* The loader's accept links go (unpinned: nothing else holds them, so
 * they detach); the bench attaches the pinned accept4 program itself. */
static int inbound_take_prog(struct bench *b, int *ret_fd)
{
	char path[PATH_MAX + 64];
	int fd;

	snprintf(path, sizeof(path), "%s/progs/connpid_accept4", b->pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	for (unsigned i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/links/%s", b->pin_dir, i ? "connpid_accept" : "connpid_accept4");
		if (unlink(path) < 0 && errno != ENOENT) {
			int r = -errno;

			(void)close(fd);
			return r;
		}
	}
	*ret_fd = fd;
	return 0;
}

/* As libbpf does: a perf event on the tracepoint's id, then a bpf_link. */
static int tp_attach(int prog_fd, int *ret_pfd, int *ret_lfd)
{
	struct perf_event_attr attr = { .type = PERF_TYPE_TRACEPOINT, .size = sizeof(attr),
					.sample_period = 1, .wakeup_events = 1 };
	char buf[32];
	int pfd, lfd, r;

	r = read_text("/sys/kernel/tracing/events/syscalls/sys_exit_accept4/id", buf, sizeof(buf));
	if (r < 0)
		return r;
	attr.config = strtoull(buf, NULL, 10);
	pfd = (int)syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (pfd < 0)
		return -errno;
	lfd = bpf_link_create(prog_fd, pfd, BPF_PERF_EVENT, NULL);
	if (lfd < 0) {
		r = -errno;
		(void)close(pfd);
		return r;
	}
	*ret_pfd = pfd;
	*ret_lfd = lfd;
	return 0;
}

static int tp_detach(int *pfd, int *lfd)
{
	int r = 0;

	if (*lfd >= 0 && close(*lfd) < 0)
		r = -errno;
	if (*pfd >= 0 && close(*pfd) < 0 && r == 0)
		r = -errno;
	*lfd = *pfd = -1;
	return r;
}

static void round_syscall(double *ns)
{
	uint64_t t0 = now_ns();

	for (unsigned i = 0; i < SYSCALL_N; i++)
		(void)syscall(SYS_getppid);
	*ns = (double)(now_ns() - t0) / SYSCALL_N;
}

/* One round of one variant: cgroup and tracepoint set, then the cycle
 * (and in the floor cgroup a syscall loop too). */
static int inbound_round(struct bench *b, enum ivar v, int prog_fd, double *ns, double *sys_ns)
{
	bool tp = v == V_OFF_TP || v == V_ON_TP;
	int pfd = -1, lfd = -1, r, r2;

	r = cg_move_self(v >= V_ON ? b->cg_on : b->cg_off);
	if (r < 0)
		return r;
	if (tp) {
		r = tp_attach(prog_fd, &pfd, &lfd);
		if (r < 0) {
			warn_errno(r, "attaching the accept4 tracepoint");
			return r;
		}
	}
	r = round_tcp(b->tcp_n, ns);
	if (v < V_ON)
		round_syscall(sys_ns);
	r2 = tp_detach(&pfd, &lfd);
	return r < 0 ? r : r2;
}

static int inbound_rounds(struct bench *b, int prog_fd)
{
	int r = 0;

	/* round 0 warms up; the order of the four rotates every round */
	for (unsigned rd = 0; rd <= b->rounds && r == 0; rd++)
		for (unsigned k = 0; k < V_MAX && r == 0; k++) {
			enum ivar v = (rd + k) % V_MAX;
			double ns = 0, sys_ns = 0;

			r = inbound_round(b, v, prog_fd, &ns, &sys_ns);
			if (r < 0 || rd == 0)
				continue;
			g_inb.ns[v][rd - 1] = ns;
			if (v < V_ON)
				g_inb.sys[v][rd - 1] = sys_ns;
		}
	if (cg_move_self(b->cg_orig) < 0 && r == 0)
		r = -errno;
	return r;
}

static int bench_inbound(struct bench *b, json_object *out)
{
	int prog_fd = -1, r;

	r = inbound_take_prog(b, &prog_fd);
	if (r < 0) {
		warn_errno(r, "the pinned connpid_accept4 program (loaded with --inbound?)");
		return r;
	}
	g_inb.n = b->tcp_n;
	g_inb.rounds = b->rounds;
	r = inbound_rounds(b, prog_fd);
	(void)close(prog_fd);
	if (r < 0)
		return r;
	g_inb.ran = true;
	json_object_object_add(out, "ops_per_round", json_object_new_int64(g_inb.n));
	json_object_object_add(out, "rounds", json_object_new_int64(g_inb.rounds));
	for (unsigned t = 0; t < 2; t++) {
		g_inb.sys_med[t] = median_of(g_inb.sys[t], g_inb.rounds);
		json_object_object_add(out, t ? "getppid_tracepoint_ns" : "getppid_ns",
				       json_object_new_double(g_inb.sys_med[t]));
	}
	for (enum ivar v = 0; v < V_MAX; v++) {
		json_object *o = json_object_new_object(), *a = json_object_new_array();

		for (unsigned i = 0; i < g_inb.rounds; i++)
			json_object_array_add(a, json_object_new_double(g_inb.ns[v][i]));
		g_inb.med[v] = median_of(g_inb.ns[v], g_inb.rounds);
		json_object_object_add(o, "ns", a);
		json_object_object_add(o, "median_ns", json_object_new_double(g_inb.med[v]));
		json_object_object_add(out, ivar_name[v], o);
		fprintf(stderr, "  %-30s %8.0f ns\n", ivar_label[v], g_inb.med[v]);
	}
	return 0;
}

/* ---------- 1b. BPF program cost (BPF_ENABLE_STATS) ----------------------- */

#define MAX_PROGS 32
#define EXEC_COST_CALLS 300

struct prog_snap {
	unsigned n;
	char name[MAX_PROGS][64];
	__u64 cnt[MAX_PROGS], ns[MAX_PROGS];
};

static int prog_snap(struct bench *b, struct prog_snap *s)
{
	char dir[PATH_MAX + 16];
	struct dirent *de;
	DIR *d;

	s->n = 0;
	snprintf(dir, sizeof(dir), "%s/progs", b->pin_dir);
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && s->n < MAX_PROGS) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		char path[PATH_MAX + 300];
		int fd;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
			snprintf(s->name[s->n], sizeof(s->name[0]), "%.63s", de->d_name);
			s->cnt[s->n] = info.run_cnt;
			s->ns[s->n] = info.run_time_ns;
			s->n++;
		}
		if (close(fd) < 0)
			warn_errno(errno, "close prog fd");
	}
	if (closedir(d) < 0)
		return -errno;
	return 0;
}

#define C_EXEC M_MAX
#define C_CONN_OFF (M_MAX + 1) /* connected UDP outside the scope: host-wide hooks */
struct cost_res {
	unsigned ops, n;
	char name[MAX_PROGS][64];
	double runs_per_op[MAX_PROGS], ns_per_run[MAX_PROGS], ns_per_op[MAX_PROGS];
	double total_ns_per_op;
};
static struct cost_res g_cost[M_MAX + 2];
static bool g_cost_ok;
static const char *cost_label(unsigned m)
{
	return m == C_EXEC ? "fork+exec /bin/true" : m == C_CONN_OFF ? "UDP connected, out of scope" : mode_label[m];
}

/* One "on" round per mode with run-time stats enabled: what each program
 * costs per run and how often it runs per operation. Not interleaved with
 * the timed rounds: stats add a clock read per run. */
static int bench_bpf_cost(struct bench *b, json_object *out)
{
	int sfd = bpf_enable_stats(BPF_STATS_RUN_TIME), r = 0;

	if (sfd < 0) {
		warn_errno(errno, "BPF_ENABLE_STATS (per-program cost not measured)");
		return 0;
	}
	for (unsigned m = 0; m <= C_CONN_OFF && r == 0; m++) {
		struct prog_snap s0, s1;
		struct cost_res *c = &g_cost[m];
		unsigned n = m == C_EXEC ? EXEC_COST_CALLS : m == M_TCP ? b->tcp_n : b->udp_n;
		json_object *o = json_object_new_object();
		double ns = 0;

		json_object_object_add(out, m == C_EXEC ? "fork_exec" : m == C_CONN_OFF ? "udp_connected_out_of_scope" :
				       mode_name[m], o);
		c->ops = n;
		r = prog_snap(b, &s0);
		if (r >= 0)
			r = cg_move_self(m == C_CONN_OFF ? b->cg_off : b->cg_on);
		if (r < 0)
			break;
		if (m == C_EXEC) {
			char *argv[] = { "/bin/true", NULL };

			for (unsigned i = 0; i < n && r >= 0; i++)
				r = run_cmd(b, argv, NULL, 0, NULL);
		} else {
			r = m == M_TCP ? round_tcp(n, &ns) :
			    round_udp(b, m == C_CONN_OFF ? M_UDP_CONN : (enum cmode)m, n, &ns);
		}
		if (cg_move_self(b->cg_orig) < 0 && r >= 0)
			r = -errno;
		if (r >= 0)
			r = prog_snap(b, &s1);
		if (r < 0)
			break;
		c->n = 0;
		c->total_ns_per_op = 0;
		json_object_object_add(o, "ops", json_object_new_int64(n));
		for (unsigned i = 0; i < s1.n; i++)
			for (unsigned j = 0; j < s0.n; j++) {
				__u64 runs, t;
				json_object *p;

				if (strcmp(s1.name[i], s0.name[j]) != 0)
					continue;
				runs = s1.cnt[i] - s0.cnt[j];
				t = s1.ns[i] - s0.ns[j];
				if (runs == 0)
					break;
				snprintf(c->name[c->n], sizeof(c->name[0]), "%s", s1.name[i]);
				c->runs_per_op[c->n] = (double)runs / n;
				c->ns_per_run[c->n] = (double)t / (double)runs;
				c->ns_per_op[c->n] = (double)t / n;
				c->total_ns_per_op += c->ns_per_op[c->n];
				p = json_object_new_object();
				json_object_object_add(p, "runs_per_op", json_object_new_double(c->runs_per_op[c->n]));
				json_object_object_add(p, "ns_per_run", json_object_new_double(c->ns_per_run[c->n]));
				json_object_object_add(p, "ns_per_op", json_object_new_double(c->ns_per_op[c->n]));
				json_object_object_add(o, s1.name[i], p);
				c->n++;
				break;
			}
		json_object_object_add(o, "bpf_ns_per_op_total", json_object_new_double(c->total_ns_per_op));
		fprintf(stderr, "  %-26s BPF %.0f ns/op:", cost_label(m), c->total_ns_per_op);
		for (unsigned i = 0; i < c->n; i++)
			fprintf(stderr, " %s %.0f ns x %.2f", c->name[i] + (strncmp(c->name[i], "connpid_", 8) ? 0 : 8),
				c->ns_per_run[i], c->runs_per_op[i]);
		fputc('\n', stderr);
	}
	if (close(sfd) < 0 && r >= 0)
		r = -errno;
	g_cost_ok = r >= 0;
	return r < 0 ? r : 0;
}

/* ---------- 2. lookups --------------------------------------------------- */

struct flows {
	int udp_fd, tcp_listen, tcp_client, tcp_server;
	uint16_t udp_sport, tcp_sport, tcp_dport;
	unsigned n_udp;
	uint32_t udp_base; /* host-order first destination */
};

static int flows_make(struct bench *b, struct flows *f, unsigned n)
{
	struct sockaddr_in a;
	char payload[8] = "flow";
	int r;

	f->udp_fd = f->tcp_listen = f->tcp_client = f->tcp_server = -1;
	r = cg_move_self(b->cg_on);
	if (r < 0)
		return r;
	f->n_udp = n;
	f->udp_base = 0x7f020000u; /* 127.2.0.0 + i */
	f->udp_fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (f->udp_fd < 0) {
		r = -errno;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		a = lo_addr(f->udp_base + i, b->sink_port);
		if (sendto(f->udp_fd, payload, sizeof(payload), 0, (struct sockaddr *)&a, sizeof(a)) < 0) {
			r = -errno;
			goto out;
		}
	}
	f->udp_sport = sock_port(f->udp_fd);
	f->tcp_listen = tcp_listener(&f->tcp_dport);
	if (f->tcp_listen < 0) {
		r = f->tcp_listen;
		goto out;
	}
	f->tcp_client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->tcp_client < 0) {
		r = -errno;
		goto out;
	}
	a = lo_addr(INADDR_LOOPBACK, f->tcp_dport);
	if (connect(f->tcp_client, (struct sockaddr *)&a, sizeof(a)) < 0) {
		r = -errno;
		goto out;
	}
	f->tcp_server = accept4(f->tcp_listen, NULL, NULL, SOCK_CLOEXEC);
	if (f->tcp_server < 0) {
		r = -errno;
		goto out;
	}
	f->tcp_sport = sock_port(f->tcp_client);
out:
	if (cg_move_self(b->cg_orig) < 0 && r == 0)
		r = -errno;
	return r;
}

static void flows_close(struct flows *f)
{
	int *fds[] = { &f->udp_fd, &f->tcp_listen, &f->tcp_client, &f->tcp_server };

	for (size_t i = 0; i < 4; i++)
		if (*fds[i] >= 0) {
			if (close(*fds[i]) < 0)
				warn_errno(errno, "close flow socket");
			*fds[i] = -1;
		}
}

/* Request line for flow i (i == n_udp: the TCP flow). */
static int lookup_req(const struct flows *f, uint16_t sink_port, unsigned i, char *buf, size_t size)
{
	if (i >= f->n_udp)
		return snprintf(buf, size,
				"{\"op\":\"lookup\",\"proto\":\"tcp\",\"dst\":\"127.0.0.1\",\"sport\":%u,\"dport\":%u}\n",
				f->tcp_sport, f->tcp_dport);
	return snprintf(buf, size,
			"{\"op\":\"lookup\",\"proto\":\"udp\",\"dst\":\"127.%u.%u.%u\",\"sport\":%u,\"dport\":%u}\n",
			(f->udp_base + i) >> 16 & 0xff, (f->udp_base + i) >> 8 & 0xff, (f->udp_base + i) & 0xff,
			f->udp_sport, sink_port);
}

struct pipe_arg {
	struct bench *b;
	const struct flows *f;
	unsigned id, total;
	pthread_barrier_t *bar;
	unsigned long found, answered;
	int r;
};

static void *pipe_thread(void *p)
{
	struct pipe_arg *a = p;
	struct qconn *c = malloc(sizeof(*c));
	char *batch = malloc(PIPE_WINDOW * 160);
	size_t blen = 0;
	int r;

	a->r = -ENOMEM;
	if (!c || !batch) {
		(void)pthread_barrier_wait(a->bar);
		goto out;
	}
	c->fd = -1;
	for (unsigned k = 0; k < PIPE_WINDOW; k++)
		blen += (size_t)lookup_req(a->f, a->b->sink_port,
					   (a->id * 1237u + k * 149u) % (a->f->n_udp + 1), batch + blen, 160);
	r = q_connect(a->b->sock_path, c);
	(void)pthread_barrier_wait(a->bar);
	if (r < 0)
		goto fail;
	for (unsigned done = 0; done < a->total && !g_stop; done += PIPE_WINDOW) {
		r = q_send(c, batch, blen);
		if (r < 0)
			goto fail;
		for (unsigned k = 0; k < PIPE_WINDOW; k++) {
			char *line;

			r = q_readline(c, &line);
			if (r < 0)
				goto fail;
			a->answered++;
			if (strstr(line, "\"found\":true"))
				a->found++;
		}
	}
	r = 0;
fail:
	a->r = r;
out:
	if (c)
		q_close(c);
	free(c);
	free(batch);
	return NULL;
}

static int pipelined(struct bench *b, const struct flows *f, unsigned clients, unsigned total,
		     double *per_s, double *found_frac)
{
	pthread_t th[8];
	struct pipe_arg args[8];
	pthread_barrier_t bar;
	unsigned started = 0;
	unsigned long found = 0, answered = 0;
	uint64_t t0 = 0;
	int r;

	if (clients > 8)
		return -EINVAL;
	r = -pthread_barrier_init(&bar, NULL, clients + 1);
	if (r < 0)
		return r;
	for (unsigned i = 0; i < clients; i++) {
		args[i] = (struct pipe_arg){ .b = b, .f = f, .id = i, .total = total / clients, .bar = &bar };
		r = -pthread_create(&th[i], NULL, pipe_thread, &args[i]);
		if (r < 0)
			break;
		started++;
	}
	if (started == clients) {
		(void)pthread_barrier_wait(&bar);
		t0 = now_ns();
	}
	for (unsigned i = 0; i < started; i++) {
		int k = pthread_join(th[i], NULL);

		if (k && r == 0)
			r = -k;
		if (args[i].r < 0 && r == 0)
			r = args[i].r;
		found += args[i].found;
		answered += args[i].answered;
	}
	if (started < clients) {
		/* a thread that never started left the others at the barrier:
		 * cannot happen after a successful create of all; bail out */
		r = r < 0 ? r : -EAGAIN;
	} else {
		*per_s = (double)answered / ((double)(now_ns() - t0) / 1e9);
		*found_frac = answered ? (double)found / (double)answered : 0;
	}
	if (pthread_barrier_destroy(&bar) && r == 0)
		r = -EBUSY;
	return r;
}

static double exec_median(struct bench *b, char *const argv[], const char *must_contain, int want_status,
			  unsigned *ok_calls)
{
	double t[EXEC_CALLS];
	char out[65536];

	*ok_calls = 0;
	for (unsigned i = 0; i < EXEC_CALLS && !g_stop; i++) {
		uint64_t ns = 0;
		int st = run_cmd(b, argv, out, sizeof(out), &ns);

		t[i] = (double)ns;
		if (st == want_status && (!must_contain || strstr(out, must_contain)))
			(*ok_calls)++;
	}
	return median_of(t, EXEC_CALLS);
}

static unsigned long count_host_fds(void)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	unsigned long n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[300];
		DIR *fd_dir;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", de->d_name);
		fd_dir = opendir(path);
		if (!fd_dir)
			continue;
		while (readdir(fd_dir))
			n++;
		if (closedir(fd_dir) < 0)
			break;
	}
	if (closedir(d) < 0)
		warn_errno(errno, "closedir /proc");
	return n;
}

struct lookup_res {
	double p50, p99, p999, tcp_p50, pipe1, pipe8, found1, found8, seq_found;
	double ss_ns, ctl_direct_ns, ctl_daemon_ns, map_ns;
	unsigned ss_ok, ctl_direct_ok, ctl_daemon_ok;
	unsigned long host_fds;
	long long map_entries;
	long long index_flows;
};

static struct lookup_res g_lk;

static int bench_lookup(struct bench *b, json_object *out)
{
	struct flows f = { .udp_fd = -1, .tcp_listen = -1, .tcp_client = -1, .tcp_server = -1 };
	struct qconn *c = malloc(sizeof(*c));
	unsigned n = b->lookup_n, nseq_tcp = n / 10;
	double *lat = calloc(n, sizeof(double));
	char req[256], sport[16], dport[16], want[64];
	unsigned long found = 0;
	long long ev = 0;
	int map_fd = -1, r;

	if (!c || !lat) {
		r = -ENOMEM;
		goto out;
	}
	c->fd = -1;
	r = flows_make(b, &f, 10000);
	if (r < 0) {
		warn_errno(r, "creating 10k flows");
		goto out;
	}
	r = wait_drained(b, 10000);
	if (r < 0) {
		warn_errno(r, "queryd did not drain the ring");
		goto out;
	}
	r = q_stats(b, &ev, &g_lk.index_flows, NULL);
	if (r < 0)
		goto out;
	map_fd = bench_pin_open(b, "conn_to_pid_v4");
	if (map_fd < 0) {
		r = map_fd;
		goto out;
	}
	{
		struct conn_key_v4 k = {}, nk;
		unsigned long cnt = 0;
		void *prev = NULL;

		while (cnt < (1ul << 24) && bpf_map_get_next_key(map_fd, prev, &nk) == 0) {
			k = nk;
			prev = &k;
			cnt++;
		}
		g_lk.map_entries = (long long)cnt;
	}

	/* sequential: one request in flight, random flows of the 10k + TCP */
	r = q_connect(b->sock_path, c);
	if (r < 0)
		goto out;
	for (unsigned i = 0; i < n && !g_stop; i++) {
		char *line;
		uint64_t t0;

		lookup_req(&f, b->sink_port, (i * 7919u) % (f.n_udp + 1), req, sizeof(req));
		t0 = now_ns();
		r = q_send(c, req, strlen(req));
		if (r >= 0)
			r = q_readline(c, &line);
		if (r < 0)
			goto out;
		lat[i] = (double)(now_ns() - t0);
		if (strstr(line, "\"found\":true"))
			found++;
	}
	g_lk.seq_found = (double)found / n;
	g_lk.p50 = percentile(lat, n, 50);
	g_lk.p99 = percentile(lat, n, 99);
	g_lk.p999 = percentile(lat, n, 99.9);
	/* the TCP flow alone: same question ss answers */
	lookup_req(&f, b->sink_port, f.n_udp, req, sizeof(req));
	for (unsigned i = 0; i < nseq_tcp && !g_stop; i++) {
		char *line;
		uint64_t t0 = now_ns();

		r = q_send(c, req, strlen(req));
		if (r >= 0)
			r = q_readline(c, &line);
		if (r < 0)
			goto out;
		lat[i] = (double)(now_ns() - t0);
	}
	g_lk.tcp_p50 = percentile(lat, nseq_tcp, 50);
	q_close(c);

	r = pipelined(b, &f, 1, b->pipe_n, &g_lk.pipe1, &g_lk.found1);
	if (r < 0) {
		warn_errno(r, "pipelined, 1 client");
		goto out;
	}
	r = pipelined(b, &f, 8, b->pipe_n, &g_lk.pipe8, &g_lk.found8);
	if (r < 0) {
		warn_errno(r, "pipelined, 8 clients");
		goto out;
	}

	/* in-process map lookup of the TCP flow */
	{
		struct conn_key_v4 k = { .dst_ip = htonl(INADDR_LOOPBACK), .src_port = f.tcp_sport,
					 .dst_port = f.tcp_dport, .protocol = CONNPID_PROTO_TCP };
		__u32 pid = 0;

		for (unsigned i = 0; i < n; i++) {
			uint64_t t0 = now_ns();

			if (bpf_map_lookup_elem(map_fd, &k, &pid) < 0) {
				r = -errno;
				warn_errno(r, "direct map lookup of the TCP flow");
				goto out;
			}
			lat[i] = (double)(now_ns() - t0);
		}
		g_lk.map_ns = percentile(lat, n, 50);
		if (pid != (__u32)getpid())
			warn_errno(0, "map says pid %u for our TCP flow, we are %d", pid, (int)getpid());
	}

	snprintf(sport, sizeof(sport), "%u", f.tcp_sport);
	snprintf(dport, sizeof(dport), "%u", f.tcp_dport);
	snprintf(want, sizeof(want), "pid=%d,", (int)getpid());
	{
		char src[64], dst[64];
		char *ss_argv[] = { "ss", "-tnpH", "src", src, "dst", dst, NULL };
		char *direct_argv[] = { (char *)b->ctl, "--pin-dir", b->pin_dir, "--json", "lookup", "127.0.0.1",
					sport, dport, "--protocol", "tcp", "--direct", NULL };
		char *daemon_argv[] = { (char *)b->ctl, "--socket", b->sock_path, "--json", "lookup", "127.0.0.1",
					sport, dport, "--protocol", "tcp", NULL };

		snprintf(src, sizeof(src), "127.0.0.1:%u", f.tcp_sport);
		snprintf(dst, sizeof(dst), "127.0.0.1:%u", f.tcp_dport);
		g_lk.host_fds = count_host_fds();
		g_lk.ss_ns = exec_median(b, ss_argv, want, 0, &g_lk.ss_ok);
		g_lk.ctl_direct_ns = exec_median(b, direct_argv, "\"found\"", 0, &g_lk.ctl_direct_ok);
		g_lk.ctl_daemon_ns = exec_median(b, daemon_argv, "\"found\"", 0, &g_lk.ctl_daemon_ok);
	}
	r = g_stop ? -EINTR : 0;

	json_object_object_add(out, "live_flows_in_v4_map", json_object_new_int64(g_lk.map_entries));
	json_object_object_add(out, "queryd_index_flows", json_object_new_int64(g_lk.index_flows));
	json_object_object_add(out, "sequential_lookups", json_object_new_int64(n));
	json_object_object_add(out, "sequential_found_fraction", json_object_new_double(g_lk.seq_found));
	json_object_object_add(out, "p50_us", json_object_new_double(g_lk.p50 / 1e3));
	json_object_object_add(out, "p99_us", json_object_new_double(g_lk.p99 / 1e3));
	json_object_object_add(out, "p999_us", json_object_new_double(g_lk.p999 / 1e3));
	json_object_object_add(out, "tcp_flow_p50_us", json_object_new_double(g_lk.tcp_p50 / 1e3));
	json_object_object_add(out, "pipelined_1_client_per_s", json_object_new_double(g_lk.pipe1));
	json_object_object_add(out, "pipelined_8_clients_per_s", json_object_new_double(g_lk.pipe8));
	json_object_object_add(out, "pipelined_found_fraction", json_object_new_double(g_lk.found1));
	json_object_object_add(out, "pipeline_window", json_object_new_int(PIPE_WINDOW));
	json_object_object_add(out, "direct_map_lookup_ns", json_object_new_double(g_lk.map_ns));
	json_object_object_add(out, "ss_tnpH_median_us", json_object_new_double(g_lk.ss_ns / 1e3));
	json_object_object_add(out, "ss_found_calls", json_object_new_int(g_lk.ss_ok));
	json_object_object_add(out, "host_fds", json_object_new_int64((int64_t)g_lk.host_fds));
	json_object_object_add(out, "connpidctl_direct_median_us", json_object_new_double(g_lk.ctl_direct_ns / 1e3));
	json_object_object_add(out, "connpidctl_direct_found_calls", json_object_new_int(g_lk.ctl_direct_ok));
	json_object_object_add(out, "connpidctl_daemon_median_us", json_object_new_double(g_lk.ctl_daemon_ns / 1e3));
	json_object_object_add(out, "connpidctl_daemon_found_calls", json_object_new_int(g_lk.ctl_daemon_ok));
	json_object_object_add(out, "ss_over_queryd_p50", json_object_new_double(g_lk.ss_ns / g_lk.tcp_p50));
	json_object_object_add(out, "ss_over_direct_map", json_object_new_double(g_lk.ss_ns / g_lk.map_ns));
	json_object_object_add(out, "ss_over_connpidctl_direct", json_object_new_double(g_lk.ss_ns / g_lk.ctl_direct_ns));
	fprintf(stderr, "  lookup p50 %.1f us p99 %.1f us p99.9 %.1f us; pipelined %.0f/s (1), %.0f/s (8); "
		"ss %.0f us; ctl --direct %.0f us; map %.0f ns\n",
		g_lk.p50 / 1e3, g_lk.p99 / 1e3, g_lk.p999 / 1e3, g_lk.pipe1, g_lk.pipe8, g_lk.ss_ns / 1e3,
		g_lk.ctl_direct_ns / 1e3, g_lk.map_ns);
out:
	if (map_fd >= 0 && close(map_fd) < 0 && r == 0)
		r = -errno;
	if (c && c->fd >= 0)
		q_close(c);
	free(c);
	free(lat);
	flows_close(&f);
	return r;
}

/* ---------- 3. burst ----------------------------------------------------- */

struct burst_res {
	unsigned ring;
	unsigned long long kevents, kdrops;
	long long received, index_flows;
	double send_s, drain_s, events_per_s, send_per_s, cpu_ns_per_ev, tick_ns_per_ev;
	double stats_op_ms;
	bool drained;
	long long rss_idle_kb, rss_full_kb, memlock_total, anon_idle_kb, anon_full_kb;
};

#define MAX_SIZES 8
static struct burst_res g_burst[MAX_SIZES];
static unsigned g_n_burst;

/* One burst of b->burst_n new flows (UDP to distinct loopback addresses),
 * sent from inside the measured cgroup; t0/t1 bracket the sending. */
static int send_burst(struct bench *b, uint64_t *ret_t0, uint64_t *ret_t1)
{
	static const char payload[16] = "burst";
	int fd = -1, r;

	r = cg_move_self(b->cg_on);
	if (r < 0)
		return r;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		goto back;
	}
	*ret_t0 = now_ns();
	for (unsigned i = 0; i < b->burst_n && !g_stop; i++) {
		struct sockaddr_in a = lo_addr(0x7f400000u + (b->next_ip++ % 0x00400000u), b->sink_port);

		if (sendto(fd, payload, sizeof(payload), 0, (struct sockaddr *)&a, sizeof(a)) < 0) {
			r = -errno;
			break;
		}
	}
	*ret_t1 = now_ns();
	if (close(fd) < 0 && r == 0)
		r = -errno;
back:
	if (cg_move_self(b->cg_orig) < 0 && r == 0)
		r = -errno;
	return r;
}

static int burst_once(struct bench *b, unsigned ring, struct burst_res *res, json_object *out)
{
	unsigned long long ev0 = 0, dr0 = 0, ev1 = 0, dr1 = 0;
	long long rcv0 = 0, rcv1 = 0;
	uint64_t tick0 = 0, sch0 = 0, tick1 = 0, sch1 = 0, t0 = 0, t1 = 0, t2, sop = 0;
	json_object *ml = json_object_new_object();
	int r;

	json_object_object_add(out, "maps_memlock_bytes", ml);
	res->ring = ring;
	r = queryd_stop(b);
	if (r >= 0)
		r = loader_unload(b);
	if (r >= 0)
		r = loader_load(b, ring, BURST_V4_ENTRIES);
	if (r >= 0)
		r = queryd_start(b);
	if (r < 0)
		goto out;
	sleep_ms(300);
	res->rss_idle_kb = rss_kb(b->queryd_pid);
	res->anon_idle_kb = status_kb(b->queryd_pid, "RssAnon");
	r = maps_memlock(b, ml, &res->memlock_total);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_EVENTS, &ev0);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_RINGBUF_DROPS, &dr0);
	if (r >= 0)
		r = q_stats(b, &rcv0, NULL, NULL);
	if (r >= 0)
		r = proc_cpu(b->queryd_pid, &tick0, &sch0);
	if (r < 0)
		goto out;

	r = send_burst(b, &t0, &t1);
	if (r < 0)
		goto out;
	r = wait_drained(b, 30000);
	t2 = now_ns();
	res->drained = r == 0;
	if (r < 0 && r != -ETIMEDOUT)
		goto out;
	r = proc_cpu(b->queryd_pid, &tick1, &sch1);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_EVENTS, &ev1);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_RINGBUF_DROPS, &dr1);
	if (r >= 0)
		r = q_stats(b, &rcv1, &res->index_flows, &sop);
	if (r < 0)
		goto out;
	res->rss_full_kb = rss_kb(b->queryd_pid);
	res->anon_full_kb = status_kb(b->queryd_pid, "RssAnon");
	res->kevents = ev1 - ev0;
	res->kdrops = dr1 - dr0;
	res->received = rcv1 - rcv0;
	res->send_s = (double)(t1 - t0) / 1e9;
	res->drain_s = (double)(t2 - t0) / 1e9;
	res->send_per_s = b->burst_n / res->send_s;
	res->events_per_s = (double)res->received / res->drain_s;
	res->cpu_ns_per_ev = res->received ? (double)(sch1 - sch0) / (double)res->received : 0;
	res->tick_ns_per_ev = res->received ? (double)(tick1 - tick0) / (double)res->received : 0;
	res->stats_op_ms = (double)sop / 1e6;

	json_object_object_add(out, "ringbuf_bytes", json_object_new_int64(ring));
	json_object_object_add(out, "flows_sent", json_object_new_int64(b->burst_n));
	json_object_object_add(out, "kernel_events", json_object_new_int64((int64_t)res->kevents));
	json_object_object_add(out, "kernel_ringbuf_drops", json_object_new_int64((int64_t)res->kdrops));
	json_object_object_add(out, "queryd_events_received", json_object_new_int64(res->received));
	json_object_object_add(out, "drained", json_object_new_boolean(res->drained));
	json_object_object_add(out, "send_seconds", json_object_new_double(res->send_s));
	json_object_object_add(out, "drain_seconds", json_object_new_double(res->drain_s));
	json_object_object_add(out, "flows_sent_per_s", json_object_new_double(res->send_per_s));
	json_object_object_add(out, "events_drained_per_s", json_object_new_double(res->events_per_s));
	json_object_object_add(out, "queryd_cpu_ns_per_event_schedstat", json_object_new_double(res->cpu_ns_per_ev));
	json_object_object_add(out, "queryd_cpu_ns_per_event_utime_stime", json_object_new_double(res->tick_ns_per_ev));
	json_object_object_add(out, "queryd_index_flows", json_object_new_int64(res->index_flows));
	json_object_object_add(out, "stats_op_ms_after_burst", json_object_new_double(res->stats_op_ms));
	json_object_object_add(out, "queryd_rss_idle_kb", json_object_new_int64(res->rss_idle_kb));
	json_object_object_add(out, "queryd_rss_full_kb", json_object_new_int64(res->rss_full_kb));
	json_object_object_add(out, "queryd_rss_anon_idle_kb", json_object_new_int64(res->anon_idle_kb));
	json_object_object_add(out, "queryd_rss_anon_full_kb", json_object_new_int64(res->anon_full_kb));
	json_object_object_add(out, "maps_memlock_total_bytes", json_object_new_int64(res->memlock_total));
	fprintf(stderr, "  ring %8u B: kernel %llu events, %llu drops; queryd got %lld in %.2f s (%.0f ev/s), "
		"%.0f ns CPU/event\n", ring, res->kevents, res->kdrops, res->received, res->drain_s,
		res->events_per_s, res->cpu_ns_per_ev);
out:
	return r;
}

static int bench_burst(struct bench *b, json_object *out)
{
	/* the default (CONNPID_RINGBUF_BYTES, 4 MiB) is among them */
	static const unsigned sizes[] = { 256u << 10, 1u << 20, 4u << 20, 16u << 20 };
	int r = 0;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]) && r == 0; i++) {
		json_object *o = json_object_new_object();

		json_object_array_add(out, o);
		r = burst_once(b, sizes[i], &g_burst[i], o);
		if (r < 0)
			warn_errno(r, "burst with a %u-byte ring", sizes[i]);
		else
			g_n_burst = (unsigned)i + 1;
	}
	return r;
}

/* ---------- 4. storage ------------------------------------------------------ */

static uint64_t real_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
		abort();
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Newest mtime (realtime ns) and total size of the db and its WAL. */
static void db_files(const struct bench *b, uint64_t *mtime, long long *db, long long *wal)
{
	char path[PATH_MAX + 40];
	struct stat st;

	*mtime = 0;
	*db = *wal = 0;
	if (stat(b->db_path, &st) == 0) {
		*db = st.st_size;
		*mtime = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;
	}
	snprintf(path, sizeof(path), "%s-wal", b->db_path);
	if (stat(path, &st) == 0) {
		uint64_t t = (uint64_t)st.st_mtim.tv_sec * 1000000000ULL + (uint64_t)st.st_mtim.tv_nsec;

		*wal = st.st_size;
		if (t > *mtime)
			*mtime = t;
	}
}

/* Watches the files' mtimes every 2 ms (stat only: queryd is not asked
 * anything), remembering the first and last change after start. */
struct db_watch {
	const struct bench *b;
	volatile int stop;
	uint64_t start, first, last;
};

static void *db_watch_thread(void *p)
{
	struct db_watch *w = p;
	uint64_t prev = 0;

	while (!w->stop && !g_stop) {
		uint64_t t;
		long long db, wal;

		db_files(w->b, &t, &db, &wal);
		if (t > w->start && t != prev) {
			if (!w->first)
				w->first = t;
			w->last = t;
			prev = t;
		}
		sleep_ms(2);
	}
	return NULL;
}

struct store_stat {
	long long written, queue, dropped, received, transactions;
	double op_ms;
};

static int q_store(struct bench *b, struct store_stat *s)
{
	struct qconn *c = malloc(sizeof(*c));
	json_object *o = NULL;
	uint64_t t0;
	int r;

	if (!c)
		return -ENOMEM;
	r = q_connect(b->sock_path, c);
	if (r < 0)
		goto out;
	t0 = now_ns();
	r = q_call(c, "{\"op\":\"stats\"}\n", &o);
	s->op_ms = (double)(now_ns() - t0) / 1e6;
	if (r < 0)
		goto out;
	s->written = jget(o, "stats.store.rows_written");
	s->queue = jget(o, "stats.store.queue");
	s->dropped = jget(o, "stats.store.rows_dropped");
	s->transactions = jget(o, "stats.store.transactions");
	s->received = jget(o, "stats.events_received");
	if (s->written < 0 || s->queue < 0)
		r = -ENODATA; /* store not enabled or fields renamed */
out:
	json_object_put(o);
	if (c->fd >= 0)
		q_close(c);
	free(c);
	return r;
}

struct store_res {
	bool done, ok;
	char fs[32];
	unsigned long long kevents, kdrops;
	long long received, rows, dropped, transactions, db_bytes, wal_bytes, rss_kb, anon_kb;
	double send_s, ring_drain_s, store_done_s, store_after_ring_s, rows_per_s, rows_per_s_writing;
	double bytes_per_row, cpu_ns_per_ev, max_stats_op_ms;
	unsigned polls;
};
static struct store_res g_store;

static void db_cleanup(struct bench *b)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char path[PATH_MAX + 48];

	if (!b->tmp_dir[0])
		return;
	for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++) {
		snprintf(path, sizeof(path), "%s/connpid.db%s", b->tmp_dir, sfx[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			warn_errno(errno, "unlink %s", path);
	}
	if (rmdir(b->tmp_dir) < 0 && errno != ENOENT)
		warn_errno(errno, "rmdir %s", b->tmp_dir);
	b->tmp_dir[0] = '\0';
	b->db_path[0] = '\0';
}

static int bench_store(struct bench *b, json_object *out)
{
	struct store_res *res = &g_store;
	struct store_stat s0 = {}, s1 = {};
	unsigned long long ev0 = 0, dr0 = 0, ev1 = 0, dr1 = 0;
	uint64_t t0 = 0, t1 = 0, t2, tick0 = 0, sch0 = 0, tick1 = 0, sch1 = 0, r0, mt;
	struct db_watch w = { .b = b };
	struct statfs sfs;
	pthread_t th;
	bool th_started = false;
	int r;

	snprintf(b->tmp_dir, sizeof(b->tmp_dir), "/var/tmp/connpid-bench-XXXXXX");
	if (!mkdtemp(b->tmp_dir)) {
		r = -errno;
		b->tmp_dir[0] = '\0';
		return r;
	}
	snprintf(b->db_path, sizeof(b->db_path), "%s/connpid.db", b->tmp_dir);
	if (statfs(b->tmp_dir, &sfs) == 0)
		snprintf(res->fs, sizeof(res->fs), "%s",
			 sfs.f_type == 0xEF53 ? "ext4" : sfs.f_type == 0x01021994 ? "tmpfs" :
			 sfs.f_type == 0x9123683E ? "btrfs" : sfs.f_type == 0x58465342 ? "xfs" : "other");
	r = queryd_stop(b);
	if (r >= 0)
		r = loader_unload(b);
	if (r >= 0)
		r = loader_load(b, 0, BURST_V4_ENTRIES);
	if (r >= 0)
		r = queryd_start(b);
	if (r < 0)
		goto out;
	sleep_ms(500);
	r = q_store(b, &s0);
	if (r < 0) {
		warn_errno(r, "queryd stats has no store.rows_written/queue (is --db honoured?)");
		goto out;
	}
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_EVENTS, &ev0);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_RINGBUF_DROPS, &dr0);
	if (r >= 0)
		r = proc_cpu(b->queryd_pid, &tick0, &sch0);
	if (r < 0)
		goto out;
	sleep_ms(200); /* the seeded rows' last write is older than the start */
	w.start = r0 = real_ns();
	r = -pthread_create(&th, NULL, db_watch_thread, &w);
	if (r < 0)
		goto out;
	th_started = true;

	r = send_burst(b, &t0, &t1);
	if (r < 0)
		goto out;
	r = wait_drained(b, 30000);
	t2 = now_ns();
	if (r < 0)
		goto out;
	/* then ask queryd, every 500 ms (its stats op counts the map), until
	 * the queue is empty and everything received is written */
	for (unsigned i = 0; i < 240 && !g_stop; i++) {
		r = q_store(b, &s1);
		if (r < 0)
			goto out;
		res->polls++;
		if (s1.op_ms > res->max_stats_op_ms)
			res->max_stats_op_ms = s1.op_ms;
		if (s1.queue == 0 && s1.written - s0.written >= s1.received - s0.received) {
			res->done = true;
			break;
		}
		sleep_ms(500);
	}
	sleep_ms(50);
	w.stop = 1;
	(void)pthread_join(th, NULL);
	th_started = false;
	r = proc_cpu(b->queryd_pid, &tick1, &sch1);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_EVENTS, &ev1);
	if (r >= 0)
		r = stat_sum(b, CONNPID_STAT_RINGBUF_DROPS, &dr1);
	if (r < 0)
		goto out;
	db_files(b, &mt, &res->db_bytes, &res->wal_bytes);
	res->rss_kb = rss_kb(b->queryd_pid);
	res->anon_kb = status_kb(b->queryd_pid, "RssAnon");
	res->kevents = ev1 - ev0;
	res->kdrops = dr1 - dr0;
	res->received = s1.received - s0.received;
	res->rows = s1.written - s0.written;
	res->dropped = s1.dropped - s0.dropped;
	res->transactions = s1.transactions - s0.transactions;
	res->send_s = (double)(t1 - t0) / 1e9;
	res->ring_drain_s = (double)(t2 - t0) / 1e9;
	/* realtime start r0 was taken just before t0 */
	res->store_done_s = w.last > r0 ? (double)(w.last - r0) / 1e9 : 0;
	res->store_after_ring_s = res->store_done_s - res->ring_drain_s;
	res->rows_per_s = res->store_done_s > 0 ? (double)res->rows / res->store_done_s : 0;
	res->rows_per_s_writing = w.last > w.first ? (double)res->rows / ((double)(w.last - w.first) / 1e9) : 0;
	res->bytes_per_row = s1.written > 0 ? (double)(res->db_bytes + res->wal_bytes) / (double)s1.written : 0;
	res->cpu_ns_per_ev = res->received ? (double)(sch1 - sch0) / (double)res->received : 0;
	res->ok = true;

	json_object_object_add(out, "filesystem", json_object_new_string(res->fs));
	json_object_object_add(out, "ringbuf_bytes", json_object_new_int64(CONNPID_RINGBUF_BYTES));
	json_object_object_add(out, "flows_sent", json_object_new_int64(b->burst_n));
	json_object_object_add(out, "kernel_events", json_object_new_int64((int64_t)res->kevents));
	json_object_object_add(out, "kernel_ringbuf_drops", json_object_new_int64((int64_t)res->kdrops));
	json_object_object_add(out, "queryd_events_received", json_object_new_int64(res->received));
	json_object_object_add(out, "rows_written", json_object_new_int64(res->rows));
	json_object_object_add(out, "rows_dropped", json_object_new_int64(res->dropped));
	json_object_object_add(out, "transactions", json_object_new_int64(res->transactions));
	json_object_object_add(out, "queue_drained", json_object_new_boolean(res->done));
	json_object_object_add(out, "send_seconds", json_object_new_double(res->send_s));
	json_object_object_add(out, "ring_drained_seconds", json_object_new_double(res->ring_drain_s));
	json_object_object_add(out, "last_db_write_seconds", json_object_new_double(res->store_done_s));
	json_object_object_add(out, "store_behind_ring_seconds", json_object_new_double(res->store_after_ring_s));
	json_object_object_add(out, "rows_per_s_from_burst_start", json_object_new_double(res->rows_per_s));
	json_object_object_add(out, "rows_per_s_first_to_last_write", json_object_new_double(res->rows_per_s_writing));
	json_object_object_add(out, "db_bytes", json_object_new_int64(res->db_bytes));
	json_object_object_add(out, "wal_bytes", json_object_new_int64(res->wal_bytes));
	json_object_object_add(out, "db_plus_wal_bytes_per_row", json_object_new_double(res->bytes_per_row));
	json_object_object_add(out, "queryd_cpu_ns_per_event_schedstat", json_object_new_double(res->cpu_ns_per_ev));
	json_object_object_add(out, "queryd_rss_kb_after", json_object_new_int64(res->rss_kb));
	json_object_object_add(out, "queryd_rss_anon_kb_after", json_object_new_int64(res->anon_kb));
	json_object_object_add(out, "stats_polls", json_object_new_int(res->polls));
	json_object_object_add(out, "stats_op_max_ms", json_object_new_double(res->max_stats_op_ms));
	fprintf(stderr, "  store (%s): %lld events received, %llu kernel drops; %lld rows written, %lld dropped; "
		"last write %.2f s after start (ring drained at %.2f s): %.0f rows/s; %.0f B/row; %.0f ns CPU/event\n",
		res->fs, res->received, res->kdrops, res->rows, res->dropped, res->store_done_s, res->ring_drain_s,
		res->rows_per_s, res->bytes_per_row, res->cpu_ns_per_ev);
out:
	if (th_started) {
		w.stop = 1;
		(void)pthread_join(th, NULL);
	}
	/* stop the storing queryd now so its files can go */
	if (queryd_stop(b) < 0 && r == 0)
		r = -EIO;
	db_cleanup(b);
	return r;
}

/* ---------- report --------------------------------------------------------- */

static void machine(json_object *out, char *desc, size_t size)
{
	char buf[65536], model[256] = "unknown", *p;
	struct utsname u;

	if (read_text("/proc/cpuinfo", buf, sizeof(buf)) > 0 && (p = strstr(buf, "model name"))) {
		p = strchr(p, ':');
		if (p) {
			size_t k = strcspn(p + 2, "\n");

			snprintf(model, sizeof(model), "%.*s", (int)k, p + 2);
		}
	}
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "unknown");
	snprintf(desc, size, "%ld CPUs, %s, kernel %s", sysconf(_SC_NPROCESSORS_ONLN), model, u.release);
	json_object_object_add(out, "nproc", json_object_new_int64(sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(out, "cpu_model", json_object_new_string(model));
	json_object_object_add(out, "kernel", json_object_new_string(u.release));
}

static const char *yes(bool b)
{
	return b ? "met" : "MISSED";
}

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Section 1: medians, and the middle half of the per-pair differences so a
 * noisy round shows as a range instead of moving the figure silently. */
static void print_connect(const struct bench *b)
{
	printf("\n1. Connect overhead (median of %u interleaved rounds; per op)\n", b->rounds);
	printf("   %-28s %10s %10s %8s %9s %17s\n", "", "off ns", "on ns", "ratio", "added ns", "added p25-p75");
	for (enum cmode m = 0; m < M_MAX; m++) {
		const struct conn_res *c = &g_conn[m];
		double d[MAX_ROUNDS];

		for (unsigned i = 0; i < c->rounds; i++)
			d[i] = c->on[i] - c->off[i];
		qsort(d, c->rounds, sizeof(d[0]), cmp_dbl);
		printf("   %-28s %10.0f %10.0f %8.3f %9.0f %8.0f-%-8.0f  (%u x %u ops)\n", mode_label[m], c->med_off,
		       c->med_on, c->med_ratio, c->med_on - c->med_off, c->rounds ? d[c->rounds / 4] : 0,
		       c->rounds ? d[(c->rounds * 3) / 4 - (c->rounds >= 4 ? 1 : 0)] : 0, c->rounds, c->n);
	}
	if (!b->base_loader)
		return;
	printf("   baseline (%s), same rounds, its own cgroup:\n", b->base_loader);
	for (enum cmode m = 0; m < M_MAX; m++) {
		const struct conn_res *c = &g_conn[m];
		double d[MAX_ROUNDS];

		for (unsigned i = 0; i < c->rounds; i++)
			d[i] = c->base[i] - c->off[i];
		qsort(d, c->rounds, sizeof(d[0]), cmp_dbl);
		printf("   %-28s %10.0f %10.0f %8.3f %9.0f %8.0f-%-8.0f\n", mode_label[m], c->med_off, c->med_base,
		       c->med_off > 0 ? c->med_base / c->med_off : 0, c->med_base - c->med_off,
		       c->rounds ? d[c->rounds / 4] : 0,
		       c->rounds ? d[(c->rounds * 3) / 4 - (c->rounds >= 4 ? 1 : 0)] : 0);
	}
}

/* Section 1c: each variant's median, and the median and middle half of
 * its per-round difference to the floor of the same round. */
static void print_inbound(void)
{
	if (!g_inb.ran)
		return;
	printf("\n1c. Inbound: TCP connect+accept+close (median of %u interleaved rounds x %u ops; per op)\n",
	       g_inb.rounds, g_inb.n);
	printf("   %-30s %10s %10s %17s\n", "", "ns", "added ns", "added p25-p75");
	for (enum ivar v = 0; v < V_MAX; v++) {
		double d[MAX_ROUNDS];
		unsigned n = g_inb.rounds;

		for (unsigned i = 0; i < n; i++)
			d[i] = g_inb.ns[v][i] - g_inb.ns[V_OFF][i];
		qsort(d, n, sizeof(d[0]), cmp_dbl);
		printf("   %-30s %10.0f %10.0f %8.0f-%-8.0f\n", ivar_label[v], g_inb.med[v],
		       n ? d[n / 2] : 0, n ? d[n / 4] : 0, n ? d[(n * 3) / 4 - (n >= 4 ? 1 : 0)] : 0);
	}
	printf("   any syscall, floor cgroup: getppid() %.0f ns, with the accept tracepoint on %.0f ns\n",
	       g_inb.sys_med[0], g_inb.sys_med[1]);
}

static void print_bpf_cost(void)
{
	if (!g_cost_ok)
		return;
	printf("\n6. BPF programs per operation (one \"on\" round each, BPF_ENABLE_STATS)\n");
	for (unsigned m = 0; m <= C_CONN_OFF; m++) {
		printf("   %-28s %5.0f ns BPF/op:", cost_label(m), g_cost[m].total_ns_per_op);
		for (unsigned i = 0; i < g_cost[m].n; i++)
			printf(" %s %.0f ns x %.2f;", g_cost[m].name[i] + (strncmp(g_cost[m].name[i], "connpid_", 8) ? 0 : 8),
			       g_cost[m].ns_per_run[i], g_cost[m].runs_per_op[i]);
		printf("\n");
	}
}

static void print_table(struct bench *b, const char *mdesc, long long rss_idle_default, json_object *targets)
{
	const struct burst_res *def = NULL, *small = NULL;
	double tcp_pct = (g_conn[M_TCP].med_ratio - 1) * 100;
	double udp_pct = 0;

	for (enum cmode m = M_UDP_NEW; m < M_MAX; m++)
		if ((g_conn[m].med_ratio - 1) * 100 > udp_pct)
			udp_pct = (g_conn[m].med_ratio - 1) * 100;
	for (unsigned i = 0; i < g_n_burst; i++) {
		if (g_burst[i].ring == CONNPID_RINGBUF_BYTES)
			def = &g_burst[i];
		if (!small && g_burst[i].kdrops == 0 && g_burst[i].received == (long long)g_burst[i].kevents)
			small = &g_burst[i];
	}
	printf("\nconnpid benchmarks: %s\n", mdesc);
	print_connect(b);
	print_inbound();
	printf("\n2. Lookups (%lld entries in the v4 map, %lld flows in queryd's index)\n", g_lk.map_entries,
	       g_lk.index_flows);
	printf("   queryd socket, sequential: p50 %.1f us, p99 %.1f us, p99.9 %.1f us (found %.0f%%)\n",
	       g_lk.p50 / 1e3, g_lk.p99 / 1e3, g_lk.p999 / 1e3, g_lk.seq_found * 100);
	printf("   queryd socket, TCP flow p50 %.1f us\n", g_lk.tcp_p50 / 1e3);
	printf("   pipelined (window %d): %.0f lookups/s with 1 client, %.0f with 8\n", PIPE_WINDOW, g_lk.pipe1,
	       g_lk.pipe8);
	printf("   in-process bpf map lookup: %.0f ns\n", g_lk.map_ns);
	printf("   connpidctl --direct (exec): %.0f us; connpidctl via queryd (exec): %.0f us\n",
	       g_lk.ctl_direct_ns / 1e3, g_lk.ctl_daemon_ns / 1e3);
	printf("   ss -tnpH (exec, %lu fds on host): %.0f us  -> %.0fx queryd p50, %.1fx connpidctl --direct\n",
	       g_lk.host_fds, g_lk.ss_ns / 1e3, g_lk.ss_ns / g_lk.tcp_p50, g_lk.ss_ns / g_lk.ctl_direct_ns);
	printf("\n3. Event burst (%u new UDP flows, v4 map %u entries)\n", b->burst_n, BURST_V4_ENTRIES);
	printf("   %10s %10s %8s %10s %8s %12s %12s %10s\n", "ring B", "k.events", "drops", "received", "drain s",
	       "events/s", "send flows/s", "CPU ns/ev");
	for (unsigned i = 0; i < g_n_burst; i++)
		printf("   %10u %10llu %8llu %10lld %8.2f %12.0f %12.0f %10.0f\n", g_burst[i].ring, g_burst[i].kevents,
		       g_burst[i].kdrops, g_burst[i].received, g_burst[i].drain_s, g_burst[i].events_per_s,
		       g_burst[i].send_per_s, g_burst[i].cpu_ns_per_ev);
	if (small)
		printf("   smallest ring with zero loss: %u bytes (of those tried)\n", small->ring);
	else
		printf("   smallest ring with zero loss: none of those tried\n");
	if (def)
		printf("   stats op after the burst (walks the map): %.1f ms\n", def->stats_op_ms);
	if (g_store.ok) {
		const struct store_res *st = &g_store;

		printf("\n4. Storage (same burst, default ring, queryd --db on %s)\n", st->fs);
		printf("   kernel %llu events, %llu drops; queryd received %lld\n", st->kevents, st->kdrops, st->received);
		printf("   rows written %lld, dropped %lld, in %lld transactions; queue drained: %s\n", st->rows,
		       st->dropped, st->transactions, st->done ? "yes" : "NO");
		printf("   send %.2f s, ring drained %.2f s, last db write %.2f s after start (store %.2f s behind)\n",
		       st->send_s, st->ring_drain_s, st->store_done_s, st->store_after_ring_s);
		printf("   %.0f rows/s from burst start; %.0f rows/s first to last write\n", st->rows_per_s,
		       st->rows_per_s_writing);
		printf("   db %lld B + wal %lld B = %.0f B per row; queryd %.0f ns CPU/event; VmRSS %lld kB (anon %lld kB)\n",
		       st->db_bytes, st->wal_bytes, st->bytes_per_row, st->cpu_ns_per_ev, st->rss_kb, st->anon_kb);
	}
	print_bpf_cost();
	printf("\n5. Footprint\n");
	printf("   queryd VmRSS idle %lld kB; after burst %lld kB (%lld flows indexed)\n", rss_idle_default,
	       def ? def->rss_full_kb : -1, def ? def->index_flows : -1);
	if (def)
		printf("   of which anonymous (heap: index, caches): idle %lld kB, after burst %lld kB;\n"
		       "   the rest is the %u-byte ring mmapped twice (counted in VmRSS)\n",
		       def->anon_idle_kb, def->anon_full_kb, def->ring);
	for (unsigned i = 0; i < g_n_burst; i++)
		printf("   ring %8u B: VmRSS idle %lld kB, after burst %lld kB\n", g_burst[i].ring,
		       g_burst[i].rss_idle_kb, g_burst[i].rss_full_kb);
	if (def)
		printf("   maps memlock (v4 map %u entries, %u B ring): %lld bytes\n", BURST_V4_ENTRIES, def->ring,
		       def->memlock_total);

	printf("\nTargets\n");
#define TARGET(name, ok, fmt, ...) do { \
		char v[128]; \
		snprintf(v, sizeof(v), fmt, __VA_ARGS__); \
		printf("   %-40s %-24s %s\n", name, v, yes(ok)); \
		json_object *t = json_object_new_object(); \
		json_object_object_add(t, "value", json_object_new_string(v)); \
		json_object_object_add(t, "met", json_object_new_boolean(ok)); \
		json_object_object_add(targets, name, t); \
	} while (0)
	TARGET("TCP connect overhead <= 3%", tcp_pct <= 3, "%.1f%%", tcp_pct);
	TARGET("UDP overhead <= 10% (worst mode)", udp_pct <= 10, "%.1f%%", udp_pct);
	TARGET("lookup p50 < 20 us", g_lk.p50 < 20000, "%.1f us", g_lk.p50 / 1e3);
	TARGET("lookup p99 < 100 us", g_lk.p99 < 100000, "%.1f us", g_lk.p99 / 1e3);
	TARGET(">= 100k lookups/s pipelined", g_lk.pipe1 >= 1e5 || g_lk.pipe8 >= 1e5, "%.0f/s",
	       g_lk.pipe1 > g_lk.pipe8 ? g_lk.pipe1 : g_lk.pipe8);
	TARGET(">= 500x faster than ss -tnp", g_lk.ss_ns / g_lk.tcp_p50 >= 500, "%.0fx", g_lk.ss_ns / g_lk.tcp_p50);
	TARGET("zero loss, 200k burst, default ring", def && def->kdrops == 0 && def->received == (long long)def->kevents,
	       "%llu dropped", def ? def->kdrops : 0ULL);
	TARGET("queryd RSS <= 32 MB (VmRSS, full index)", def && def->rss_full_kb <= 32 * 1024, "%lld kB",
	       def ? def->rss_full_kb : -1);
	TARGET(">= 200k rows/s stored, 0 dropped", g_store.ok && g_store.done && g_store.rows_per_s >= 2e5 &&
	       g_store.dropped == 0, "%.0f/s, %lld dropped", g_store.rows_per_s, g_store.dropped);
#undef TARGET
	fflush(stdout);
}

/* ---------- main ------------------------------------------------------------- */

static int parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "loader", required_argument, NULL, 'l' },
		{ "queryd", required_argument, NULL, 'q' },
		{ "connpidctl", required_argument, NULL, 'c' },
		{ "json", required_argument, NULL, 'j' },
		{ "log", required_argument, NULL, 'L' },
		{ "quick", no_argument, NULL, 'Q' },
		{ "connect-only", no_argument, NULL, 'C' },
		{ "rounds", required_argument, NULL, 'R' },
		{ "loader-arg", required_argument, NULL, 'A' },
		{ "baseline-loader", required_argument, NULL, 'B' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) >= 0) {
		switch (c) {
		case 'l': b->loader = optarg; break;
		case 'q': b->queryd = optarg; break;
		case 'c': b->ctl = optarg; break;
		case 'j': b->json_path = optarg; break;
		case 'L': b->log_path = optarg; break;
		case 'Q': b->quick = true; break;
		case 'C': b->connect_only = true; break;
		case 'B': b->base_loader = optarg; break;
		case 'R':
			b->rounds_opt = (unsigned)strtoul(optarg, NULL, 10);
			if (b->rounds_opt < 1 || b->rounds_opt > MAX_ROUNDS) {
				warn_errno(0, "--rounds: 1..%d", MAX_ROUNDS);
				return -EINVAL;
			}
			break;
		case 'A':
			if (b->n_loader_args >= sizeof(b->loader_args) / sizeof(b->loader_args[0])) {
				warn_errno(0, "too many --loader-arg");
				return -EINVAL;
			}
			b->loader_args[b->n_loader_args++] = optarg;
			break;
		case 'h':
			printf("Usage: connpid-bench --loader PATH --queryd PATH --connpidctl PATH\n"
			       "                     [--json FILE] [--log FILE] [--quick]\n"
			       "                     [--connect-only] [--rounds N] [--loader-arg ARG]...\n"
			       "  --connect-only  sections 1 and 6 only (connect overhead, BPF cost)\n"
			       "  --baseline-loader PATH  also time section 1 under another connpid-loader\n"
			       "                  (same flags) in a third cgroup, rounds interleaved\n"
			       "  --loader-arg    passed to connpid-loader, e.g. --no-dns (up to 4);\n"
			       "                  --inbound adds section 1c (accept tracepoint off/on)\n");
			return 1;
		default:
			return -EINVAL;
		}
	}
	if (!b->loader || !b->queryd || !b->ctl) {
		warn_errno(0, "--loader, --queryd and --connpidctl are required");
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct bench b = {
		.json_path = "bench-results.json",
		.log_path = "bench.log",
		.log_fd = -1,
		.sink_fd = -1,
		.tcp_n = 10000, .udp_n = 50000, .rounds = 10,
		.lookup_n = 20000, .pipe_n = 200000, .burst_n = 200000,
	};
	struct sigaction sa = { .sa_handler = on_signal };
	json_object *conn = NULL, *lk = NULL, *burst = NULL, *targets = NULL, *mach = NULL;
	char mdesc[512];
	long long rss_idle = -1, memlock_default = 0;
	int r, exit_code = EXIT_FAILURE;

	r = parse_args(&b, argc, argv);
	if (r != 0)
		return r > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	if (b.quick) {
		b.tcp_n = 2000;
		b.udp_n = 10000;
		b.rounds = 4;
		b.lookup_n = 5000;
		b.pipe_n = 40000;
	}
	if (b.rounds_opt)
		b.rounds = b.rounds_opt;
	if (geteuid() != 0) {
		warn_errno(0, "needs root (BPF, cgroups)");
		return 77;
	}
	b.res = json_object_new_object();
	if (sigemptyset(&sa.sa_mask) < 0 || sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0 ||
	    signal(SIGPIPE, SIG_IGN) == SIG_ERR) {
		warn_errno(errno, "signal setup");
		goto out;
	}
	b.log_fd = open(b.log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (b.log_fd < 0) {
		warn_errno(errno, "open %s", b.log_path);
		goto out;
	}
	snprintf(b.pin_dir, sizeof(b.pin_dir), "/sys/fs/bpf/connpid-bench-%d", (int)getpid());
	snprintf(b.base_pin_dir, sizeof(b.base_pin_dir), "/sys/fs/bpf/connpid-bench-%d-base", (int)getpid());
	snprintf(b.sock_path, sizeof(b.sock_path), "/tmp/connpid-bench-%d.sock", (int)getpid());
	snprintf(b.base_sock_path, sizeof(b.base_sock_path), "/tmp/connpid-bench-%d-base.sock", (int)getpid());
	r = setup_cgroups(&b);
	if (r < 0)
		goto out;
	r = sink_open(&b);
	if (r < 0) {
		warn_errno(r, "UDP sink");
		goto out;
	}
	mach = json_object_new_object();
	json_object_object_add(b.res, "machine", mach);
	machine(mach, mdesc, sizeof(mdesc));
	json_object_object_add(b.res, "quick", json_object_new_boolean(b.quick));

	/* default sizes for connect overhead and lookups: what a host runs */
	r = loader_load(&b, 0, 0);
	if (r >= 0 && b.base_loader)
		r = loader_load_at(&b, true, 0, 0);
	if (r >= 0)
		r = queryd_start(&b);
	if (r >= 0 && b.base_loader)
		r = queryd_start_at(&b, b.base_pin_dir, b.base_sock_path, &b.base_queryd_pid);
	if (r < 0)
		goto out;
	sleep_ms(300);
	rss_idle = rss_kb(b.queryd_pid);
	{
		json_object *fp = json_object_new_object(), *ml = json_object_new_object();

		json_object_object_add(b.res, "footprint", fp);
		json_object_object_add(fp, "queryd_rss_idle_kb", json_object_new_int64(rss_idle));
		json_object_object_add(fp, "maps_memlock_bytes_default_sizes", ml);
		r = maps_memlock(&b, ml, &memlock_default);
		if (r < 0)
			goto out;
		json_object_object_add(fp, "maps_memlock_total_default_sizes", json_object_new_int64(memlock_default));
	}

	fprintf(stderr, "connpid-bench: connect overhead...\n");
	conn = json_object_new_object();
	json_object_object_add(b.res, "connect", conn);
	r = bench_connect(&b, conn);
	if (r >= 0)
		r = queryd_stop_at(&b, &b.base_queryd_pid, b.base_sock_path);
	if (r >= 0)
		r = loader_unload_at(&b, true); /* section 1 only: nothing else to share the host with */
	if (r < 0)
		goto out;

	fprintf(stderr, "connpid-bench: BPF cost per program...\n");
	{
		json_object *cost = json_object_new_object();

		json_object_object_add(b.res, "bpf_cost", cost);
		r = bench_bpf_cost(&b, cost);
		if (r < 0)
			goto out;
	}

	if (wants_inbound(&b)) {
		json_object *inb = json_object_new_object();

		fprintf(stderr, "connpid-bench: inbound (accept tracepoint off/on)...\n");
		json_object_object_add(b.res, "inbound", inb);
		r = bench_inbound(&b, inb);
		if (r < 0)
			goto out;
	}

	if (b.connect_only) {
		printf("\nconnpid benchmarks (connect only): %s\n", mdesc);
		print_connect(&b);
		print_inbound();
		print_bpf_cost();
		fflush(stdout);
		exit_code = EXIT_SUCCESS;
		goto out;
	}

	fprintf(stderr, "connpid-bench: lookups...\n");
	lk = json_object_new_object();
	json_object_object_add(b.res, "lookup", lk);
	r = bench_lookup(&b, lk);
	if (r < 0)
		goto out;
	{
		json_object *fp;

		if (json_object_object_get_ex(b.res, "footprint", &fp))
			json_object_object_add(fp, "queryd_rss_after_lookup_bench_kb",
					       json_object_new_int64(rss_kb(b.queryd_pid)));
	}

	fprintf(stderr, "connpid-bench: event burst...\n");
	burst = json_object_new_array();
	json_object_object_add(b.res, "burst", burst);
	r = bench_burst(&b, burst);
	if (r < 0)
		goto out;
	fprintf(stderr, "connpid-bench: storage (burst with --db)...\n");
	{
		json_object *st = json_object_new_object();

		json_object_object_add(b.res, "storage", st);
		r = bench_store(&b, st);
		if (r < 0) {
			warn_errno(r, "storage benchmark");
			goto out;
		}
	}

	targets = json_object_new_object();
	json_object_object_add(b.res, "targets", targets);
	print_table(&b, mdesc, rss_idle, targets);
	exit_code = EXIT_SUCCESS;
out:
	/* single exit: stop queryd, detach, leave and remove the cgroups */
	if (queryd_stop(&b) < 0 || queryd_stop_at(&b, &b.base_queryd_pid, b.base_sock_path) < 0)
		exit_code = EXIT_FAILURE;
	db_cleanup(&b);
	if (loader_unload(&b) < 0 || loader_unload_at(&b, true) < 0)
		exit_code = EXIT_FAILURE;
	if (rmdir(b.base_pin_dir) < 0 && errno != ENOENT) {
		warn_errno(errno, "rmdir %s", b.base_pin_dir);
		exit_code = EXIT_FAILURE;
	}
	if (rmdir(b.pin_dir) < 0 && errno != ENOENT) {
		warn_errno(errno, "rmdir %s", b.pin_dir);
		exit_code = EXIT_FAILURE;
	}
	if (b.cg_orig[0] && cg_move_self(b.cg_orig) < 0) {
		warn_errno(errno, "moving back to %s", b.cg_orig);
		exit_code = EXIT_FAILURE;
	}
	if (b.cg_on_made && rmdir(b.cg_on) < 0) {
		warn_errno(errno, "rmdir %s", b.cg_on);
		exit_code = EXIT_FAILURE;
	}
	if (b.cg_off_made && rmdir(b.cg_off) < 0) {
		warn_errno(errno, "rmdir %s", b.cg_off);
		exit_code = EXIT_FAILURE;
	}
	if (b.cg_base_made && rmdir(b.cg_base) < 0) {
		warn_errno(errno, "rmdir %s", b.cg_base);
		exit_code = EXIT_FAILURE;
	}
	if (b.cg_root_made && rmdir(b.cg_root) < 0) {
		warn_errno(errno, "rmdir %s", b.cg_root);
		exit_code = EXIT_FAILURE;
	}
	if (b.sink_fd >= 0 && close(b.sink_fd) < 0)
		exit_code = EXIT_FAILURE;
	if (b.res) {
		json_object_object_add(b.res, "complete", json_object_new_boolean(exit_code == EXIT_SUCCESS));
		if (json_object_to_file_ext(b.json_path, b.res, JSON_C_TO_STRING_PRETTY) < 0) {
			warn_errno(0, "cannot write %s", b.json_path);
			exit_code = EXIT_FAILURE;
		} else {
			fprintf(stderr, "connpid-bench: results in %s\n", b.json_path);
		}
		json_object_put(b.res);
	}
	if (b.log_fd >= 0 && close(b.log_fd) < 0)
		exit_code = EXIT_FAILURE;
	return exit_code;
}

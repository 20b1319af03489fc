// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * lookup-bench: the lookup round trip against its floor (issue 15).
 *
 *   lookup-bench workload N
 *       Run inside the measured cgroup (lookup-bench.py puts it there):
 *       N UDP sends to distinct loopback addresses (N flows for the
 *       index), then one TCP connection kept open, the flow to look up.
 *       Prints {"sport":S,"dport":D} and waits for EOF on stdin.
 *   lookup-bench measure SOCK SPORT DPORT ROUNDS SEQ_N PIPE_MS
 *       Interleaved rounds of (a) a bare epoll AF_UNIX echo server of ours
 *       answering a 100-byte line, forked so that it is a process of its
 *       own like queryd, (b) queryd `ping`, (c) `lookup` of the live flow,
 *       (d) the same with "fields": SEQ_N sequential requests each (p50,
 *       p99), then pipelined requests/s with 1 and 8 clients for PIPE_MS
 *       each. Prints one JSON object per round and the medians and ranges
 *       over the rounds. With LOOKUP_BENCH_ONLY=MODE in the environment
 *       (echo, ping, lookup, lookup_fields) only that one runs: for perf.
 *
 * It reports; nothing here asserts a timing.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench-stats.h"

#define MAX_ROUNDS 32
#define PIPE_WINDOW 64
#define PIPE_CLIENTS_MAX 8
#define ECHO_LINE_LEN 100

enum mode { M_ECHO, M_PING, M_LOOKUP, M_FIELDS, M_N };
static const char *const mode_name[M_N] = { "echo", "ping", "lookup", "lookup_fields" };
static char g_req[M_N][256];
static size_t g_req_len[M_N];
static char g_echo_path[108], g_sock_path[108];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---------- workload ------------------------------------------------ */

static int workload(unsigned n)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(9) };
	socklen_t len = sizeof(a);
	int u, l, c, s;
	char buf[16];

	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0)
		return perror("socket"), 1;
	for (unsigned i = 0; i < n; i++) {
		a.sin_addr.s_addr = htonl(0x7f400000u + i);
		(void)sendto(u, "x", 1, 0, (struct sockaddr *)&a, sizeof(a)); /* refusals do not matter */
	}
	/* the looked-up flow comes last: the newest in a full index */
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = 0;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 4) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0)
		return perror("listener"), 1;
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)) < 0)
		return perror("connect"), 1;
	s = accept(l, NULL, NULL);
	{
		struct sockaddr_in me;
		socklen_t ml = sizeof(me);

		if (s < 0 || getsockname(c, (struct sockaddr *)&me, &ml) < 0)
			return perror("accept"), 1;
		printf("{\"sport\":%u,\"dport\":%u,\"udp_flows\":%u}\n", ntohs(me.sin_port), ntohs(a.sin_port), n);
		fflush(stdout);
	}
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}

/* ---------- echo server --------------------------------------------- */

/* Answers every line with itself: the least any line server can do. */
static void echo_serve(int lfd)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd }, evs[32];
	static char buf[PIPE_CLIENTS_MAX + 64][8192];
	static size_t have[PIPE_CLIENTS_MAX + 64];

	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	for (;;) {
		int n = epoll_wait(ep, evs, 32, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			ssize_t r;

			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

				if (c < 0 || c >= (int)(sizeof(have) / sizeof(have[0]))) {
					if (c >= 0)
						close(c);
					continue;
				}
				have[c] = 0;
				ev.data.fd = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				continue;
			}
			r = recv(fd, buf[fd] + have[fd], sizeof(buf[fd]) - have[fd], MSG_DONTWAIT);
			if (r <= 0) {
				if (r == 0 || errno != EAGAIN)
					close(fd);
				continue;
			}
			have[fd] += (size_t)r;
			/* answer the complete lines, keep a partial one */
			{
				char *end = memrchr(buf[fd], '\n', have[fd]);
				size_t done;

				if (!end)
					continue;
				done = (size_t)(end - buf[fd]) + 1;
				(void)send(fd, buf[fd], done, MSG_NOSIGNAL);
				memmove(buf[fd], buf[fd] + done, have[fd] - done);
				have[fd] -= done;
			}
		}
	}
}

static pid_t echo_start(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t pid;

	snprintf(g_echo_path, sizeof(g_echo_path), "/tmp/lookup-bench-echo-%d.sock", (int)getpid());
	strcpy(sa.sun_path, g_echo_path);
	unlink(g_echo_path);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		echo_serve(lfd);
		_exit(0);
	}
	close(lfd);
	return pid;
}

/* ---------- clients ------------------------------------------------- */

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sa.sun_path, path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

static const char *path_of(enum mode m)
{
	return m == M_ECHO ? g_echo_path : g_sock_path;
}

/* Read until k newlines came; returns bytes of the last answer seen. */
static size_t read_lines(int fd, unsigned k, char *last, size_t lastsz)
{
	static __thread char buf[1 << 16];
	size_t got = 0;

	while (k > 0) {
		ssize_t r = recv(fd, buf, sizeof(buf), 0);

		if (r <= 0) {
			fprintf(stderr, "lookup-bench: server closed\n");
			exit(1);
		}
		for (ssize_t i = 0; i < r; i++) {
			got++;
			if (buf[i] == '\n') {
				if (last && k == 1 && (size_t)i < lastsz) {
					memcpy(last, buf, (size_t)i);
					last[i] = '\0';
				}
				k--;
				if (k == 0)
					break;
			}
		}
	}
	return got;
}

struct seq_res {
	double p50, p99, bytes;
};

static struct seq_res run_seq(enum mode m, unsigned n)
{
	double *lat = calloc(n, sizeof(double));
	int fd = dial(path_of(m));
	struct seq_res res;
	size_t bytes = 0;

	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		if (send(fd, g_req[m], g_req_len[m], MSG_NOSIGNAL) != (ssize_t)g_req_len[m])
			exit(1);
		bytes += read_lines(fd, 1, NULL, 0);
		lat[i] = (double)(now_ns() - t0) / 1e3;
	}
	close(fd);
	res.bytes = (double)bytes / n;
	res.p50 = percentile(lat, n, 50);
	res.p99 = percentile(lat, n, 99);
	free(lat);
	return res;
}

struct pipe_arg {
	enum mode m;
	uint64_t until;
	uint64_t done;
};

static void *pipe_client(void *p)
{
	struct pipe_arg *a = p;
	int fd = dial(path_of(a->m));
	char *burst = malloc(g_req_len[a->m] * PIPE_WINDOW);
	unsigned inflight = 0;

	for (unsigned i = 0; i < PIPE_WINDOW; i++)
		memcpy(burst + i * g_req_len[a->m], g_req[a->m], g_req_len[a->m]);
	/* keep PIPE_WINDOW in flight: a new request for each answer */
	while (now_ns() < a->until) {
		static __thread char buf[1 << 16];
		ssize_t r;
		unsigned lines = 0;

		if (inflight < PIPE_WINDOW) {
			size_t len = g_req_len[a->m] * (PIPE_WINDOW - inflight);

			if (send(fd, burst, len, MSG_NOSIGNAL) != (ssize_t)len)
				exit(1);
			inflight = PIPE_WINDOW;
		}
		r = recv(fd, buf, sizeof(buf), 0);
		if (r <= 0)
			exit(1);
		for (ssize_t i = 0; i < r; i++)
			lines += buf[i] == '\n';
		inflight -= lines;
		a->done += lines;
	}
	read_lines(fd, inflight, NULL, 0);
	close(fd);
	free(burst);
	return NULL;
}

static double run_pipe(enum mode m, unsigned clients, unsigned ms)
{
	struct pipe_arg a[PIPE_CLIENTS_MAX] = {};
	pthread_t t[PIPE_CLIENTS_MAX];
	uint64_t t0 = now_ns(), total = 0;

	for (unsigned i = 0; i < clients; i++) {
		a[i].m = m;
		a[i].until = t0 + (uint64_t)ms * 1000000ULL;
		pthread_create(&t[i], NULL, pipe_client, &a[i]);
	}
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(t[i], NULL);
		total += a[i].done;
	}
	return (double)total / ((double)(now_ns() - t0) / 1e9);
}

static void summary(const char *what, double v[], unsigned n)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	printf("  %-28s median %10.1f  range %10.1f - %10.1f\n", what, s[n / 2], s[0], s[n - 1]);
}

static int measure(int argc, char **argv)
{
	unsigned rounds, seq_n, pipe_ms;
	double p50[M_N][MAX_ROUNDS], p99[M_N][MAX_ROUNDS], bytes[M_N][MAX_ROUNDS];
	double pipe1[M_N][MAX_ROUNDS], pipe8[M_N][MAX_ROUNDS];
	char line[4096];
	const char *only;
	pid_t echo;
	int fd;

	if (argc < 8)
		return fprintf(stderr, "usage: lookup-bench measure SOCK SPORT DPORT ROUNDS SEQ_N PIPE_MS\n"), 2;
	snprintf(g_sock_path, sizeof(g_sock_path), "%s", argv[2]);
	rounds = (unsigned)atoi(argv[5]);
	seq_n = (unsigned)atoi(argv[6]);
	pipe_ms = (unsigned)atoi(argv[7]);
	if (rounds < 1 || rounds > MAX_ROUNDS || seq_n < 100)
		return fprintf(stderr, "lookup-bench: 1-%d rounds, at least 100 requests\n", MAX_ROUNDS), 2;
	/* a 100-byte line, answered with itself */
	memset(g_req[M_ECHO], 'e', ECHO_LINE_LEN - 1);
	g_req[M_ECHO][ECHO_LINE_LEN - 1] = '\n';
	g_req_len[M_ECHO] = ECHO_LINE_LEN;
	g_req_len[M_PING] = (size_t)snprintf(g_req[M_PING], sizeof(g_req[0]), "{\"op\":\"ping\"}\n");
	g_req_len[M_LOOKUP] = (size_t)snprintf(g_req[M_LOOKUP], sizeof(g_req[0]),
		"{\"op\":\"lookup\",\"proto\":\"tcp\",\"dst\":\"127.0.0.1\",\"sport\":%s,\"dport\":%s}\n",
		argv[3], argv[4]);
	g_req_len[M_FIELDS] = (size_t)snprintf(g_req[M_FIELDS], sizeof(g_req[0]),
		"{\"op\":\"lookup\",\"proto\":\"tcp\",\"dst\":\"127.0.0.1\",\"sport\":%s,\"dport\":%s,"
		"\"fields\":[\"pid\",\"comm\",\"exe\",\"container\",\"domain\"]}\n", argv[3], argv[4]);
	echo = echo_start();
	if (echo < 0)
		return perror("echo server"), 1;

	/* the answers, once, so the reader sees what is measured */
	for (int m = M_PING; m < M_N; m++) {
		fd = dial(g_sock_path);
		if (send(fd, g_req[m], g_req_len[m], MSG_NOSIGNAL) < 0)
			return 1;
		read_lines(fd, 1, line, sizeof(line));
		close(fd);
		fprintf(stderr, "%s -> %.300s%s\n", mode_name[m], line, strlen(line) > 300 ? "..." : "");
	}
	only = getenv("LOOKUP_BENCH_ONLY");
	for (unsigned r = 0; r < rounds; r++) {
		for (int m = 0; m < M_N; m++) {
			struct seq_res s = { 0 };

			if (!only || strcmp(only, mode_name[m]) == 0)
				s = run_seq(m, seq_n);

			p50[m][r] = s.p50;
			p99[m][r] = s.p99;
			bytes[m][r] = s.bytes;
		}
		for (int m = 0; m < M_N; m++) {
			pipe1[m][r] = pipe8[m][r] = 0;
			if (only && strcmp(only, mode_name[m]) != 0)
				continue;
			pipe1[m][r] = run_pipe(m, 1, pipe_ms);
			pipe8[m][r] = run_pipe(m, PIPE_CLIENTS_MAX, pipe_ms);
		}
		printf("{\"round\":%u", r);
		for (int m = 0; m < M_N; m++)
			printf(",\"%s\":{\"p50_us\":%.1f,\"p99_us\":%.1f,\"answer_bytes\":%.0f,\"pipe1_per_s\":%.0f,"
			       "\"pipe8_per_s\":%.0f}", mode_name[m], p50[m][r], p99[m][r], bytes[m][r], pipe1[m][r],
			       pipe8[m][r]);
		printf("}\n");
		fflush(stdout);
	}
	kill(echo, SIGTERM);
	waitpid(echo, NULL, 0);
	unlink(g_echo_path);

	printf("\nover %u rounds of %u sequential requests, %u ms pipelined (window %d):\n", rounds, seq_n,
	       pipe_ms, PIPE_WINDOW);
	for (int m = 0; m < M_N; m++) {
		char what[64];

		printf(" %s (%.0f B answers)\n", mode_name[m], bytes[m][0]);
		snprintf(what, sizeof(what), "p50 us");
		summary(what, p50[m], rounds);
		summary("p99 us", p99[m], rounds);
		summary("pipelined/s, 1 client", pipe1[m], rounds);
		summary("pipelined/s, 8 clients", pipe8[m], rounds);
	}
	{
		double r50[MAX_ROUNDS], r99[MAX_ROUNDS], f50[MAX_ROUNDS], f99[MAX_ROUNDS];

		/* per round: each round's lookup against that round's floor */
		for (unsigned r = 0; r < rounds; r++) {
			r50[r] = p50[M_LOOKUP][r] / p50[M_ECHO][r];
			r99[r] = p99[M_LOOKUP][r] / p99[M_ECHO][r];
			f50[r] = p50[M_FIELDS][r] / p50[M_ECHO][r];
			f99[r] = p99[M_FIELDS][r] / p99[M_ECHO][r];
		}
		printf(" ratios to the echo floor, same round\n");
		summary("lookup p50 / echo p50", r50, rounds);
		summary("lookup p99 / echo p99", r99, rounds);
		summary("fields p50 / echo p50", f50, rounds);
		summary("fields p99 / echo p99", f99, rounds);
	}
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 3 && strcmp(argv[1], "workload") == 0)
		return workload((unsigned)atoi(argv[2]));
	if (argc >= 2 && strcmp(argv[1], "measure") == 0)
		return measure(argc, argv);
	fprintf(stderr, "usage: lookup-bench workload N | measure SOCK SPORT DPORT ROUNDS SEQ_N PIPE_MS\n");
	return 2;
}

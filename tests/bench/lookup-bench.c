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
 *       The sequential client waits for each answer both ways a client
 *       can: in poll() (as libconnpid, the Squid helper and Python with a
 *       timeout do) and in a blocking recv(). They differ: the server's
 *       read of the request frees the client's skb, and unix_write_space()
 *       then wakes a task sleeping in recv() (an unfiltered wait) but not
 *       one in poll(POLLIN) (its wakeup is filtered by the poll key); a
 *       woken client may preempt the server mid-request.
 *       LOOKUP_BENCH_CLIENT_CPU / LOOKUP_BENCH_SERVER_CPU pin this process
 *       (and its threads) and the echo server: lookup-bench.py pins queryd
 *       the same way, so floor and queryd are placed alike. With
 *       LOOKUP_BENCH_SERVER_PID (queryd's), each sequential run also says
 *       how often the server was preempted per request. With
 *       LOOKUP_BENCH_CLIENT_SPIN_US=N the poll() wait first checks the
 *       socket without sleeping for up to N us (libconnpid's
 *       connpid_set_busy_poll()), for every server alike.
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
#include <sched.h>
#include <poll.h>
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
/* how the sequential client waits for its answer (the comment above) */
enum wait_kind { W_POLL, W_RECV, W_N };
static const char *const wait_name[W_N] = { "poll", "recv" };
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

/* CPU from the environment variable, or -1. */
static int cpu_from_env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : -1;
}

static void pin_to(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) < 0) {
		perror("sched_setaffinity");
		exit(1);
	}
}

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
		pin_to(cpu_from_env("LOOKUP_BENCH_SERVER_CPU"));
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

/* Up to LOOKUP_BENCH_CLIENT_SPIN_US us of checking fd without sleeping:
 * an answer that comes meanwhile wakes nobody. */
static void spin_for_answer(int fd)
{
	static int spin_us = -1;
	uint64_t until;
	char c;

	if (spin_us < 0)
		spin_us = getenv("LOOKUP_BENCH_CLIENT_SPIN_US") ? atoi(getenv("LOOKUP_BENCH_CLIENT_SPIN_US")) : 0;
	if (spin_us <= 0)
		return;
	until = now_ns() + 1000ULL * (uint64_t)spin_us;
	/* yielding: a server on this CPU runs at once (libconnpid does so) */
	while (now_ns() < until && recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) < 0)
		sched_yield();
}

/* Read until k newlines came; returns bytes of the last answer seen. */
static size_t read_lines(int fd, unsigned k, char *last, size_t lastsz, enum wait_kind wait)
{
	static __thread char buf[1 << 16];
	size_t got = 0;

	while (k > 0) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (wait == W_POLL)
			spin_for_answer(fd);
		if (wait == W_POLL && poll(&p, 1, -1) < 0) {
			perror("poll");
			exit(1);
		}
		r = recv(fd, buf, sizeof(buf), 0);

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
	double preempted; /* the server's involuntary context switches per request */
};

/* The server of mode m: the echo server, or queryd (its pid from
 * LOOKUP_BENCH_SERVER_PID; 0: not known). */
static pid_t g_echo_pid;

static pid_t server_pid(enum mode m)
{
	const char *v = getenv("LOOKUP_BENCH_SERVER_PID");

	return m == M_ECHO ? g_echo_pid : v ? (pid_t)atoi(v) : 0;
}

/* Involuntary context switches of pid's main thread (queryd's loop, the
 * echo server): how often the scheduler took the CPU from the server. */
static double preemptions(pid_t pid)
{
	char path[64], line[128];
	double n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = pid > 0 ? fopen(path, "re") : NULL;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "nonvoluntary_ctxt_switches:", 27) == 0)
			n = atof(line + 27);
	fclose(f);
	return n;
}

static struct seq_res run_seq(enum mode m, unsigned n, enum wait_kind wait)
{
	double *lat = calloc(n, sizeof(double)), pre0;
	int fd = dial(path_of(m));
	struct seq_res res;
	size_t bytes = 0;

	pre0 = preemptions(server_pid(m));
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_ns();

		if (send(fd, g_req[m], g_req_len[m], MSG_NOSIGNAL) != (ssize_t)g_req_len[m])
			exit(1);
		bytes += read_lines(fd, 1, NULL, 0, wait);
		lat[i] = (double)(now_ns() - t0) / 1e3;
	}
	res.preempted = (preemptions(server_pid(m)) - pre0) / n;
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
	read_lines(fd, inflight, NULL, 0, W_RECV);
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

/* Median and range; ratios get two decimals (1.46 is not 1.5). */
static void summary_prec(const char *what, double v[], unsigned n, int prec)
{
	double s[MAX_ROUNDS];

	memcpy(s, v, n * sizeof(*v));
	qsort(s, n, sizeof(*s), cmp_double);
	printf("  %-28s median %10.*f  range %10.*f - %10.*f\n", what, prec, s[n / 2], prec, s[0], prec, s[n - 1]);
}

static void summary(const char *what, double v[], unsigned n)
{
	summary_prec(what, v, n, 1);
}

/* Everything one run measures, per round. */
struct figures {
	unsigned rounds;
	double p50[W_N][M_N][MAX_ROUNDS], p99[W_N][M_N][MAX_ROUNDS], bytes[M_N][MAX_ROUNDS];
	double preempted[W_N][M_N][MAX_ROUNDS];
	double pipe1[M_N][MAX_ROUNDS], pipe8[M_N][MAX_ROUNDS];
};

static bool mode_runs(enum mode m)
{
	const char *only = getenv("LOOKUP_BENCH_ONLY");

	return !only || strcmp(only, mode_name[m]) == 0;
}

/* Round r: the sequential runs, both waits, then the pipelined ones. */
static void measure_round(struct figures *f, unsigned r, unsigned seq_n, unsigned pipe_ms)
{
	for (int w = 0; w < W_N; w++)
		for (int m = 0; m < M_N; m++) {
			struct seq_res s = { 0 };

			if (mode_runs(m))
				s = run_seq(m, seq_n, w);
			f->p50[w][m][r] = s.p50;
			f->p99[w][m][r] = s.p99;
			f->preempted[w][m][r] = s.preempted;
			f->bytes[m][r] = s.bytes;
		}
	for (int m = 0; m < M_N; m++) {
		f->pipe1[m][r] = f->pipe8[m][r] = 0;
		if (!mode_runs(m))
			continue;
		f->pipe1[m][r] = run_pipe(m, 1, pipe_ms);
		f->pipe8[m][r] = run_pipe(m, PIPE_CLIENTS_MAX, pipe_ms);
	}
	printf("{\"round\":%u", r);
	for (int m = 0; m < M_N; m++) {
		printf(",\"%s\":{\"answer_bytes\":%.0f,\"pipe1_per_s\":%.0f,\"pipe8_per_s\":%.0f", mode_name[m],
		       f->bytes[m][r], f->pipe1[m][r], f->pipe8[m][r]);
		for (int w = 0; w < W_N; w++)
			printf(",\"p50_us_%s\":%.1f,\"p99_us_%s\":%.1f,\"preempted_%s\":%.2f", wait_name[w],
			       f->p50[w][m][r], wait_name[w], f->p99[w][m][r], wait_name[w], f->preempted[w][m][r]);
		printf("}");
	}
	printf("}\n");
	fflush(stdout);
}

/* Each round's figure for mode m against that round's floor. */
static void ratio(const struct figures *f, double (*v)[M_N][MAX_ROUNDS], int w, enum mode m, const char *what)
{
	double q[MAX_ROUNDS];

	for (unsigned r = 0; r < f->rounds; r++)
		q[r] = v[w][m][r] / v[w][M_ECHO][r];
	summary_prec(what, q, f->rounds, 2);
}

static void print_summary(struct figures *f, unsigned seq_n, unsigned pipe_ms)
{
	char what[64];

	printf("\nover %u rounds of %u sequential requests, %u ms pipelined (window %d):\n", f->rounds, seq_n,
	       pipe_ms, PIPE_WINDOW);
	for (int m = 0; m < M_N; m++) {
		printf(" %s (%.0f B answers)\n", mode_name[m], f->bytes[m][0]);
		for (int w = 0; w < W_N; w++) {
			snprintf(what, sizeof(what), "p50 us, %s wait", wait_name[w]);
			summary(what, f->p50[w][m], f->rounds);
			snprintf(what, sizeof(what), "p99 us, %s wait", wait_name[w]);
			summary(what, f->p99[w][m], f->rounds);
			if (m != M_ECHO && !getenv("LOOKUP_BENCH_SERVER_PID"))
				continue;
			snprintf(what, sizeof(what), "preempted/request, %s", wait_name[w]);
			summary_prec(what, f->preempted[w][m], f->rounds, 2);
		}
		summary("pipelined/s, 1 client", f->pipe1[m], f->rounds);
		summary("pipelined/s, 8 clients", f->pipe8[m], f->rounds);
	}
	for (int w = 0; w < W_N; w++) {
		printf(" ratios to the echo floor, same round, %s wait\n", wait_name[w]);
		ratio(f, f->p50, w, M_LOOKUP, "lookup p50 / echo p50");
		ratio(f, f->p99, w, M_LOOKUP, "lookup p99 / echo p99");
		ratio(f, f->p50, w, M_FIELDS, "fields p50 / echo p50");
		ratio(f, f->p99, w, M_FIELDS, "fields p99 / echo p99");
	}
}

static void make_requests(const char *sport, const char *dport)
{
	/* a 100-byte line, answered with itself */
	memset(g_req[M_ECHO], 'e', ECHO_LINE_LEN - 1);
	g_req[M_ECHO][ECHO_LINE_LEN - 1] = '\n';
	g_req_len[M_ECHO] = ECHO_LINE_LEN;
	g_req_len[M_PING] = (size_t)snprintf(g_req[M_PING], sizeof(g_req[0]), "{\"op\":\"ping\"}\n");
	g_req_len[M_LOOKUP] = (size_t)snprintf(g_req[M_LOOKUP], sizeof(g_req[0]),
		"{\"op\":\"lookup\",\"proto\":\"tcp\",\"dst\":\"127.0.0.1\",\"sport\":%s,\"dport\":%s}\n",
		sport, dport);
	g_req_len[M_FIELDS] = (size_t)snprintf(g_req[M_FIELDS], sizeof(g_req[0]),
		"{\"op\":\"lookup\",\"proto\":\"tcp\",\"dst\":\"127.0.0.1\",\"sport\":%s,\"dport\":%s,"
		"\"fields\":[\"pid\",\"comm\",\"exe\",\"container\",\"domain\"]}\n", sport, dport);
}

/* The answers, once, so the reader sees what is measured. */
static int show_answers(void)
{
	char line[4096];

	for (int m = M_PING; m < M_N; m++) {
		int fd = dial(g_sock_path);

		if (send(fd, g_req[m], g_req_len[m], MSG_NOSIGNAL) < 0)
			return -1;
		read_lines(fd, 1, line, sizeof(line), W_POLL);
		close(fd);
		fprintf(stderr, "%s -> %.300s%s\n", mode_name[m], line, strlen(line) > 300 ? "..." : "");
	}
	return 0;
}

static int measure(int argc, char **argv)
{
	static struct figures f;
	unsigned seq_n, pipe_ms;
	pid_t echo;

	if (argc < 8)
		return fprintf(stderr, "usage: lookup-bench measure SOCK SPORT DPORT ROUNDS SEQ_N PIPE_MS\n"), 2;
	snprintf(g_sock_path, sizeof(g_sock_path), "%s", argv[2]);
	f.rounds = (unsigned)atoi(argv[5]);
	seq_n = (unsigned)atoi(argv[6]);
	pipe_ms = (unsigned)atoi(argv[7]);
	if (f.rounds < 1 || f.rounds > MAX_ROUNDS || seq_n < 100)
		return fprintf(stderr, "lookup-bench: 1-%d rounds, at least 100 requests\n", MAX_ROUNDS), 2;
	make_requests(argv[3], argv[4]);
	pin_to(cpu_from_env("LOOKUP_BENCH_CLIENT_CPU"));
	echo = g_echo_pid = echo_start();
	if (echo < 0)
		return perror("echo server"), 1;
	if (show_answers() < 0)
		return 1;
	for (unsigned r = 0; r < f.rounds; r++)
		measure_round(&f, r, seq_n, pipe_ms);
	kill(echo, SIGTERM);
	waitpid(echo, NULL, 0);
	unlink(g_echo_path);
	print_summary(&f, seq_n, pipe_ms);
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

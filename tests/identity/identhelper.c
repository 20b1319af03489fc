// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Short-lived processes for the identity tests, compiled at test time
 * (twice, as `idquick` and `idparent`, so the two have different comms).
 *
 *   idquick quick HOST PORT
 *       socket(), connect() (TCP), write "SPORT\n" to stdout, _exit(0).
 *       Lives well under a millisecond after exec.
 *
 *   idparent parent N HOST PORT QUICK REAP_DELAY_MS [fork]
 *       N times: fork + exec QUICK quick HOST PORT (with "fork": fork only,
 *       the child runs quick() itself, no exec), read its line, reap it
 *       after REAP_DELAY_MS (0: at once; >0: it stays a zombie that long),
 *       print one JSON line:
 *       {"pid":P,"sport":S,"connect_to_exit_us":U,"reap_delay_ms":D}
 *       where U is from just after connect() to the pipe's EOF (the child's
 *       exit). First line: {"parent_pid":P}. Exits when done.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int quick(const char *host, const char *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(port)) };
	struct sockaddr_in l;
	socklen_t ll = sizeof(l);
	char buf[64];
	int fd, n;

	if (inet_pton(AF_INET, host, &a.sin_addr) != 1)
		_exit(2);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		_exit(3);
	if (getsockname(fd, (struct sockaddr *)&l, &ll) < 0)
		_exit(4);
	n = snprintf(buf, sizeof(buf), "%u %lld\n", ntohs(l.sin_port), now_ns());
	if (write(1, buf, (size_t)n) != n)
		_exit(5);
	_exit(0);
}

static int parent(int n, const char *host, const char *port, const char *quick_path, int delay_ms,
		  int no_exec)
{
	printf("{\"parent_pid\":%d}\n", (int)getpid());
	fflush(stdout);
	for (int i = 0; i < n; i++) {
		char buf[128] = "";
		size_t len = 0;
		unsigned sport = 0;
		long long t_conn = 0, t_eof;
		int p[2], status = 0;
		ssize_t r;
		pid_t pid;

		if (pipe(p) < 0)
			return 1;
		pid = fork();
		if (pid < 0)
			return 1;
		if (pid == 0) {
			close(p[0]);
			if (dup2(p[1], 1) < 0)
				_exit(6);
			if (no_exec)
				quick(host, port);
			execl(quick_path, quick_path, "quick", host, port, (char *)NULL);
			_exit(7);
		}
		close(p[1]);
		while ((r = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
			len += (size_t)r;
		t_eof = now_ns(); /* EOF: the child's fds are closed, it has exited */
		close(p[0]);
		buf[len] = '\0';
		if (delay_ms > 0)
			usleep((useconds_t)delay_ms * 1000);
		if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
		    sscanf(buf, "%u %lld", &sport, &t_conn) != 2) {
			printf("{\"error\":\"child %d failed: status %d, output '%s'\"}\n", (int)pid, status, buf);
			fflush(stdout);
			return 1;
		}
		printf("{\"pid\":%d,\"sport\":%u,\"connect_to_exit_us\":%.1f,\"reap_delay_ms\":%d}\n",
		       (int)pid, sport, (double)(t_eof - t_conn) / 1000.0, delay_ms);
		fflush(stdout);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "quick"))
		return quick(argv[2], argv[3]);
	if ((argc == 7 || (argc == 8 && !strcmp(argv[7], "fork"))) && !strcmp(argv[1], "parent"))
		return parent(atoi(argv[2]), argv[3], argv[4], argv[5], atoi(argv[6]), argc == 8);
	fprintf(stderr, "usage: %s quick HOST PORT | parent N HOST PORT QUICK REAP_DELAY_MS [fork]\n", argv[0]);
	return 2;
}

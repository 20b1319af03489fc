// SPDX-License-Identifier: GPL-2.0-or-later
/* connpid_set_busy_poll() for test_busy_poll_real.py, against the real
 * daemon. Each mode prints one JSON object per line.
 *
 *   busy-poll args
 *       the bounds: 1001 and a NULL handle -EINVAL, 0 and 1000 taken
 *       (no daemon needed; exit 1 on a failure)
 *   busy-poll lookup SOCKET USEC DST SPORT DPORT
 *       one connpid_lookup() with busy poll USEC: rc, found, pid; then a
 *       connpid_call() ping on the same handle: rc, ok
 *   busy-poll stopped SOCKET USEC TIMEOUT_MS DST SPORT DPORT
 *       the daemon is stopped (SIGSTOP): one connpid_lookup() and one
 *       connpid_call() ping, each with its rc, wall time and this
 *       thread's CPU time over the call (CLOCK_THREAD_CPUTIME_ID) */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../queryd/lib/connpid.h"

static long long usec_of(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int check_args(void)
{
	connpid *h = NULL;
	int r1001, r0, r1000, rnull, rmax;

	if (connpid_open(&h, "/nonexistent/connpid.sock", 0) < 0)
		return 2;
	r1001 = connpid_set_busy_poll(h, 1001);
	rmax = connpid_set_busy_poll(h, UINT64_MAX);
	r0 = connpid_set_busy_poll(h, 0);
	r1000 = connpid_set_busy_poll(h, 1000);
	rnull = connpid_set_busy_poll(NULL, 10);
	connpid_close(h);
	printf("{\"1001\": %d, \"max\": %d, \"0\": %d, \"1000\": %d, \"null\": %d}\n", r1001, rmax, r0, r1000, rnull);
	return r1001 == -EINVAL && rmax == -EINVAL && r0 == 0 && r1000 == 0 && rnull == -EINVAL ? 0 : 1;
}

static connpid *open_handle(const char *sock, const char *usec, uint64_t timeout_usec)
{
	connpid *h = NULL;

	if (connpid_open(&h, sock, 0) < 0)
		return NULL;
	if (connpid_set_timeout(h, timeout_usec) < 0 || connpid_set_busy_poll(h, strtoull(usec, NULL, 10)) < 0) {
		connpid_close(h);
		return NULL;
	}
	return h;
}

static int lookup(char **argv)
{
	struct connpid_result *r = NULL;
	char *answer = NULL;
	connpid *h;
	int rl, rc;

	h = open_handle(argv[0], argv[1], 5000000);
	if (!h)
		return 2;
	rl = connpid_lookup(h, IPPROTO_TCP, argv[2], (uint16_t)atoi(argv[3]), (uint16_t)atoi(argv[4]), NULL, &r);
	printf("{\"op\": \"lookup\", \"rc\": %d, \"found\": %s, \"pid\": %u}\n", rl,
	       r && r->found ? "true" : "false", r ? r->pid : 0);
	connpid_result_free(r);
	rc = connpid_call(h, "{\"op\":\"ping\"}", &answer);
	printf("{\"op\": \"ping\", \"rc\": %d, \"ok\": %s}\n", rc,
	       answer && strstr(answer, "\"ok\":true") ? "true" : "false");
	free(answer);
	connpid_close(h);
	return 0;
}

static void report(const char *op, int rc, long long wall0, long long cpu0)
{
	printf("{\"op\": \"%s\", \"rc\": %d, \"wall_us\": %lld, \"cpu_us\": %lld}\n", op, rc,
	       usec_of(CLOCK_MONOTONIC) - wall0, usec_of(CLOCK_THREAD_CPUTIME_ID) - cpu0);
}

static int stopped(char **argv)
{
	struct connpid_result *r = NULL;
	char *answer = NULL;
	long long wall0, cpu0;
	connpid *h;
	int rc;

	h = open_handle(argv[0], argv[1], strtoull(argv[2], NULL, 10) * 1000);
	if (!h)
		return 2;
	wall0 = usec_of(CLOCK_MONOTONIC);
	cpu0 = usec_of(CLOCK_THREAD_CPUTIME_ID);
	rc = connpid_lookup(h, IPPROTO_TCP, argv[3], (uint16_t)atoi(argv[4]), (uint16_t)atoi(argv[5]), NULL, &r);
	report("lookup", rc, wall0, cpu0);
	connpid_result_free(r);
	wall0 = usec_of(CLOCK_MONOTONIC);
	cpu0 = usec_of(CLOCK_THREAD_CPUTIME_ID);
	rc = connpid_call(h, "{\"op\":\"ping\"}", &answer);
	report("ping", rc, wall0, cpu0);
	free(answer);
	connpid_close(h);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "args") == 0)
		return check_args();
	if (argc == 7 && strcmp(argv[1], "lookup") == 0)
		return lookup(argv + 2);
	if (argc == 8 && strcmp(argv[1], "stopped") == 0)
		return stopped(argv + 2);
	fprintf(stderr, "usage: %s args | lookup SOCKET USEC DST SPORT DPORT |"
		" stopped SOCKET USEC TIMEOUT_MS DST SPORT DPORT\n", argv[0]);
	return 2;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sport-connect SPORT DST DPORT SECONDS: connect over TCP from source port
 * SPORT to DST:DPORT (IPv4), hold the connection SECONDS (at most 600),
 * exit. Linked statically: it runs inside a busybox container, whose nc
 * cannot choose its source port when it connects. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int parse_num(const char *s, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_in src = { .sin_family = AF_INET }, dst = { .sin_family = AF_INET };
	long sport, dport, secs;
	int fd, one = 1;

	if (argc != 5 || parse_num(argv[1], 65535, &sport) < 0 || parse_num(argv[3], 65535, &dport) < 0 ||
	    parse_num(argv[4], 600, &secs) < 0 || inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
		fprintf(stderr, "usage: sport-connect SPORT DST DPORT SECONDS\n");
		return 2;
	}
	src.sin_port = htons((uint16_t)sport);
	dst.sin_port = htons((uint16_t)dport);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0 ||
	    connect(fd, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
		fprintf(stderr, "sport-connect: %s\n", strerror(errno));
		return 1;
	}
	sleep((unsigned)secs);
	close(fd);
	return 0;
}

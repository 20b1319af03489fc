// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A one-shot resolver for the DNS tests, built `musl-gcc -static`: musl's
 * own stub resolver sends the queries (no glibc, so no getaddrinfo uprobe
 * can see it). getaddrinfo(argv[1], AF_INET), then a TCP connect to a
 * listener opened here on the first address (port 0). Prints one JSON
 * line {"ok":true,"pid":..,"addrs":[..],"sport":..,"dport":..} and keeps
 * the sockets open until stdin closes.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res, *ai;
	struct sockaddr_in a;
	socklen_t alen = sizeof(a);
	char buf[INET_ADDRSTRLEN];
	int r, lst, s, first = 1;
	unsigned short dport, sport;

	if (argc != 2) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	r = getaddrinfo(argv[1], NULL, &hints, &res);
	if (r != 0) {
		printf("{\"ok\":false,\"error\":\"getaddrinfo: %s\"}\n", gai_strerror(r));
		return 1;
	}
	printf("{\"ok\":true,\"pid\":%d,\"addrs\":[", (int)getpid());
	for (ai = res; ai; ai = ai->ai_next) {
		inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, buf, sizeof(buf));
		printf("%s\"%s\"", first ? "" : ",", buf);
		first = 0;
	}
	memcpy(&a, res->ai_addr, sizeof(a));
	freeaddrinfo(res);
	a.sin_port = 0;
	lst = socket(AF_INET, SOCK_STREAM, 0);
	if (lst < 0 || bind(lst, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(lst, 4) < 0 ||
	    getsockname(lst, (struct sockaddr *)&a, &alen) < 0) {
		printf("],\"error\":\"listener\"}\n");
		return 1;
	}
	dport = ntohs(a.sin_port);
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		printf("],\"error\":\"connect\"}\n");
		return 1;
	}
	alen = sizeof(a);
	getsockname(s, (struct sockaddr *)&a, &alen);
	sport = ntohs(a.sin_port);
	printf("],\"sport\":%u,\"dport\":%u}\n", sport, dport);
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * hostile-flood N [FIRST_OCTET]: N new UDP flows as fast as the kernel takes
 * them, as any local user could make: one-byte datagrams from one
 * unconnected socket to N distinct (address, port) pairs on 127.FIRST.x.y
 * (default 127.77), ports 1024-61023, sendmmsg() in batches. Nothing
 * listens there; each send is a flow for connpid all the same. Prints
 * "sent N" and exits 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 256
#define PORTS 60000
#define PORT_BASE 1024

int main(int argc, char **argv)
{
	struct sockaddr_in addr[BATCH];
	struct mmsghdr msg[BATCH];
	struct iovec iov = { .iov_base = "x", .iov_len = 1 };
	unsigned long n, sent = 0, first = 77;
	int fd;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: %s N [FIRST_OCTET]\n", argv[0]);
		return 2;
	}
	n = strtoul(argv[1], NULL, 10);
	if (argc == 3)
		first = strtoul(argv[2], NULL, 10) & 0xff;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	while (sent < n) {
		unsigned k = n - sent < BATCH ? (unsigned)(n - sent) : BATCH;
		int r;

		memset(msg, 0, sizeof(msg));
		for (unsigned i = 0; i < k; i++) {
			unsigned long j = sent + i;
			unsigned long host = j / PORTS + 1;

			addr[i].sin_family = AF_INET;
			addr[i].sin_port = htons(PORT_BASE + j % PORTS);
			addr[i].sin_addr.s_addr = htonl(0x7f000000u | (first << 16) | (host & 0xffff));
			msg[i].msg_hdr.msg_name = &addr[i];
			msg[i].msg_hdr.msg_namelen = sizeof(addr[i]);
			msg[i].msg_hdr.msg_iov = &iov;
			msg[i].msg_hdr.msg_iovlen = 1;
		}
		r = sendmmsg(fd, msg, k, 0);
		if (r < 0) {
			if (errno == EINTR || errno == ECONNREFUSED || errno == ENOBUFS || errno == EAGAIN)
				continue;
			perror("sendmmsg");
			return 1;
		}
		sent += (unsigned)r;
	}
	printf("sent %lu\n", sent);
	close(fd);
	return 0;
}

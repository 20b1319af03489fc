// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <bpf/bpf.h>

#include "flowkey.h"
#include "macro.h"
#include "parse-util.h"

int parse_protocol(const char *s, __u8 *ret)
{
	if (!strcasecmp(s, "tcp") || streq(s, "6"))
		*ret = CONNPID_PROTO_TCP;
	else if (!strcasecmp(s, "udp") || streq(s, "17"))
		*ret = CONNPID_PROTO_UDP;
	else
		return -EINVAL;
	return 0;
}

int parse_ip(const char *s, int *ret_family, __u32 ret_addr[4])
{
	struct in6_addr a6;
	struct in_addr a4;

	memset(ret_addr, 0, 16);
	if (inet_pton(AF_INET, s, &a4) == 1) {
		*ret_family = AF_INET;
		ret_addr[0] = a4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			*ret_family = AF_INET;
			memcpy(&ret_addr[0], &a6.s6_addr[12], 4);
		} else {
			*ret_family = AF_INET6;
			memcpy(ret_addr, &a6, 16);
		}
		return 0;
	}
	return -EINVAL;
}

int flow_query_parse(const char *dst, const char *sport, const char *dport,
		     const char *proto, struct flow_query *ret)
{
	struct flow_query q = {};
	int r;

	r = parse_ip(dst, &q.family, q.dst_ip);
	if (r < 0)
		return r;
	r = parse_port_number(sport, &q.src_port);
	if (r < 0)
		return r;
	r = parse_port_number(dport, &q.dst_port);
	if (r < 0)
		return r;
	r = parse_protocol(proto ? proto : "tcp", &q.protocol);
	if (r < 0)
		return r;
	*ret = q;
	return 0;
}

void flow_query_key_v4(const struct flow_query *q, struct conn_key_v4 *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->dst_ip = q->dst_ip[0];
	ret->src_port = q->src_port;
	ret->dst_port = q->dst_port;
	ret->protocol = q->protocol;
}

void flow_query_key_v6(const struct flow_query *q, struct conn_key_v6 *ret)
{
	memset(ret, 0, sizeof(*ret));
	memcpy(ret->dst_ip, q->dst_ip, sizeof(ret->dst_ip));
	ret->src_port = q->src_port;
	ret->dst_port = q->dst_port;
	ret->protocol = q->protocol;
}

int flow_query_lookup(const struct flow_query *q, int v4_fd, int v6_fd, __u32 *ret_pid)
{
	struct conn_key_v4 k4;
	struct conn_key_v6 k6;
	int r;

	if (q->family == AF_INET) {
		flow_query_key_v4(q, &k4);
		r = bpf_map_lookup_elem(v4_fd, &k4, ret_pid);
	} else {
		flow_query_key_v6(q, &k6);
		r = bpf_map_lookup_elem(v6_fd, &k6, ret_pid);
	}
	if (r == 0)
		return 1;
	return errno == ENOENT ? 0 : negative_errno();
}

const char *protocol_name(__u8 proto)
{
	switch (proto) {
	case CONNPID_PROTO_TCP:
		return "tcp";
	case CONNPID_PROTO_UDP:
		return "udp";
	default:
		return "?";
	}
}

/* IPv4 as inet_ntop() writes it, by hand: its sprintf was a tenth of
 * rendering a FLOW. IPv6 stays inet_ntop()'s (the zero-run rules are not
 * worth copying). */
static void format_ipv4(const __u32 addr[1], char *p)
{
	const unsigned char *b = (const unsigned char *)addr;

	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];

		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = i < 3 ? '.' : '\0';
	}
}

const char *format_ip(int family, const __u32 addr[4], char *buf, size_t size)
{
	if (family == AF_INET && size >= INET_ADDRSTRLEN)
		format_ipv4(addr, buf);
	else if (!inet_ntop(family, addr, buf, size))
		snprintf(buf, size, "?");
	return buf;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Parsing user input into the map keys of DESIGN.md, and back. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#include "connpid.h"

/* A destination as the maps key it: v4-mapped IPv6 already folded to v4. */
struct flow_query {
	int family;        /* AF_INET or AF_INET6 */
	__u32 dst_ip[4];   /* network order; v4 in [0] */
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;     /* CONNPID_PROTO_TCP / _UDP */
};

/* "tcp"/"udp" (any case) or "6"/"17". -EINVAL otherwise. */
int parse_protocol(const char *s, __u8 *ret);
/* An IPv4 or IPv6 literal; ::ffff:a.b.c.d becomes AF_INET. */
int parse_ip(const char *s, int *ret_family, __u32 ret_addr[4]);

int flow_query_parse(const char *dst, const char *sport, const char *dport,
		     const char *proto, struct flow_query *ret);

void flow_query_key_v4(const struct flow_query *q, struct conn_key_v4 *ret);
void flow_query_key_v6(const struct flow_query *q, struct conn_key_v6 *ret);

/* Look the query up in the matching pinned map. 1 found, 0 not, <0 error. */
int flow_query_lookup(const struct flow_query *q, int v4_fd, int v6_fd, __u32 *ret_pid);

const char *protocol_name(__u8 proto);
/* Format family/address (network order) into buf (INET6_ADDRSTRLEN+). */
const char *format_ip(int family, const __u32 addr[4], char *buf, size_t size);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Community ID flow hashing, spec v1 (corelight/community-id-spec):
 * "1:" + base64(SHA1(seed, saddr, daddr, proto, 0, sport, dport)), the
 * smaller endpoint (address, then port) first, numbers in network order.
 * The string other tools (Zeek, Suricata, Wireshark, Elastic) compute for
 * the same flow, so records join across them. */
#pragma once

#include <stddef.h>
#include <linux/types.h>

/* "1:" + 28 base64 characters + NUL */
#define COMMUNITY_ID_LEN 31

struct community_id_flow {
	int family;        /* AF_INET or AF_INET6; v4-mapped already folded */
	__u32 src_ip[4];   /* network order; v4 in [0] */
	__u32 dst_ip[4];
	__u16 src_port;    /* host order */
	__u16 dst_port;
	__u8 protocol;     /* IPPROTO_TCP / IPPROTO_UDP */
};

/* Writes the ID into out (COMMUNITY_ID_LEN bytes). -EINVAL for a flow
 * whose source address is unknown (all zero: unconnected UDP without a
 * chosen source), whose hash would name no real flow. */
int community_id_v1(const struct community_id_flow *f, __u16 seed, char out[COMMUNITY_ID_LEN]);

// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <nettle/base64.h>
#include <nettle/sha1.h>

#include "community-id.h"

/* The spec orders the endpoints so both directions of a flow hash alike:
 * the smaller address first, the smaller port when the addresses tie. */
static bool src_first(const __u8 *src, const __u8 *dst, size_t alen, __u16 sport, __u16 dport)
{
	int c = memcmp(src, dst, alen);

	return c < 0 || (c == 0 && sport <= dport);
}

int community_id_v1(const struct community_id_flow *f, __u16 seed, char out[COMMUNITY_ID_LEN])
{
	static const __u32 zero[4];
	size_t alen = f->family == AF_INET ? 4 : 16;
	const __u8 *a = (const __u8 *)f->src_ip, *b = (const __u8 *)f->dst_ip;
	__u16 pa = f->src_port, pb = f->dst_port, be;
	__u8 digest[SHA1_DIGEST_SIZE], proto_pad[2] = { f->protocol, 0 };
	struct sha1_ctx ctx;

	if (f->family != AF_INET && f->family != AF_INET6)
		return -EINVAL;
	if (memcmp(f->src_ip, zero, alen) == 0)
		return -EINVAL;
	if (!src_first(a, b, alen, pa, pb)) {
		const __u8 *t = a;
		__u16 tp = pa;

		a = b, b = t;
		pa = pb, pb = tp;
	}
	sha1_init(&ctx);
	be = htons(seed);
	sha1_update(&ctx, 2, (const __u8 *)&be);
	sha1_update(&ctx, alen, a);
	sha1_update(&ctx, alen, b);
	sha1_update(&ctx, 2, proto_pad);
	be = htons(pa);
	sha1_update(&ctx, 2, (const __u8 *)&be);
	be = htons(pb);
	sha1_update(&ctx, 2, (const __u8 *)&be);
	sha1_digest(&ctx, sizeof(digest), digest);

	out[0] = '1';
	out[1] = ':';
	/* 20 bytes: 28 characters, padding included */
	base64_encode_raw(out + 2, sizeof(digest), digest);
	out[2 + BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* community_id_v1() against the spec's own baseline
 * (corelight/community-id-spec, baseline/baseline_deflt.json and
 * baseline_seed1.json): TCP, UDP and SCTP over v4 and v6, each flow from
 * both ends, seeds 0 and 1; and the flow with no source refused. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "community-id.h"

struct vector {
	__u8 proto;
	const char *saddr, *daddr;
	__u16 sport, dport, seed;
	const char *id;
};

static const struct vector vectors[] = {
	{ 6, "128.232.110.120", "66.35.250.204", 34855, 80, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" },
	{ 6, "66.35.250.204", "128.232.110.120", 80, 34855, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg=" },
	{ 6, "128.232.110.120", "66.35.250.204", 34855, 80, 1, "1:3V71V58M3Ksw/yuFALMcW0LAHvc=" },
	{ 17, "192.168.1.52", "8.8.8.8", 54585, 53, 0, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=" },
	{ 17, "8.8.8.8", "192.168.1.52", 53, 54585, 0, "1:d/FP5EW3wiY1vCndhwleRRKHowQ=" },
	{ 17, "192.168.1.52", "8.8.8.8", 54585, 53, 1, "1:Q9We8WO3piVF8yEQBNJF4uiSVrI=" },
	{ 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, 0,
	  "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=" },
	{ 6, "2607:f8b0:400c:c03::1a", "2001:470:e5bf:dead:4957:2174:e82c:4887", 25, 63943, 0,
	  "1:/qFaeAR+gFe1KYjMzVDsMv+wgU4=" },
	{ 6, "2001:470:e5bf:dead:4957:2174:e82c:4887", "2607:f8b0:400c:c03::1a", 63943, 25, 1,
	  "1:eJYTW6AOzFLlSUoESovMjnu7rMw=" },
	/* equal addresses: the ports decide the order */
	{ 132, "192.168.170.8", "192.168.170.56", 7, 7, 0, "1:MP2EtRCAUIZvTw6MxJHLV7N7JDs=" },
	{ 132, "192.168.170.56", "192.168.170.8", 7, 7, 1, "1:5w3ZRjeKBzqT3zsaEECDGjUbYeg=" },
};

static int make_flow(const struct vector *v, struct community_id_flow *f)
{
	memset(f, 0, sizeof(*f));
	f->family = strchr(v->saddr, ':') ? AF_INET6 : AF_INET;
	f->protocol = v->proto;
	f->src_port = v->sport;
	f->dst_port = v->dport;
	if (inet_pton(f->family, v->saddr, f->src_ip) != 1 || inet_pton(f->family, v->daddr, f->dst_ip) != 1)
		return -EINVAL;
	return 0;
}

int main(void)
{
	struct community_id_flow f;
	char id[COMMUNITY_ID_LEN];
	int failed = 0, r;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];

		memset(id, 'X', sizeof(id));
		if (make_flow(v, &f) < 0 || community_id_v1(&f, v->seed, id) < 0 ||
		    strnlen(id, sizeof(id)) != COMMUNITY_ID_LEN - 1 || strcmp(id, v->id) != 0) {
			printf("FAIL %s:%u -> %s:%u proto %u seed %u: got %.31s, want %s\n", v->saddr, v->sport,
			       v->daddr, v->dport, v->proto, v->seed, id, v->id);
			failed++;
		} else {
			printf("ok   %s:%u -> %s:%u proto %u seed %u: %s\n", v->saddr, v->sport, v->daddr, v->dport,
			       v->proto, v->seed, id);
		}
	}

	/* unconnected UDP without a chosen source: no flow to name */
	make_flow(&vectors[3], &f);
	memset(f.src_ip, 0, sizeof(f.src_ip));
	r = community_id_v1(&f, 0, id);
	printf("%s zero v4 source refused: %d\n", r == -EINVAL ? "ok  " : "FAIL", r);
	failed += r != -EINVAL;
	make_flow(&vectors[6], &f);
	memset(f.src_ip, 0, sizeof(f.src_ip));
	r = community_id_v1(&f, 0, id);
	printf("%s zero v6 source refused: %d\n", r == -EINVAL ? "ok  " : "FAIL", r);
	failed += r != -EINVAL;
	f.family = 99;
	r = community_id_v1(&f, 0, id);
	printf("%s unknown family refused: %d\n", r == -EINVAL ? "ok  " : "FAIL", r);
	failed += r != -EINVAL;
	return failed ? 1 : 0;
}

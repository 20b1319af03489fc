// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DNS events from the kernel into the cache (and the history): responses
 * parsed here, getaddrinfo() results taken as they are; and the name a
 * new flow's destination came from, looked up when the flow arrives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "dns-cache.h"
#include "dns-parse.h"
#include "flowkey.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "store.h"

#define CHAIN_MAX_HOPS 8

/* qname -> ... -> owner through the CNAME records, as "a -> b -> c";
 * NULL when the address record answers the question name itself. */
static char *cname_chain(const struct dns_message *msg, const char *owner)
{
	char buf[CHAIN_MAX_HOPS * DNS_NAME_MAX + 64];
	const char *cur = msg->qname;
	size_t o = 0;

	if (streq(cur, owner))
		return NULL;
	o += (size_t)snprintf(buf, sizeof(buf), "%s", cur);
	for (int hop = 0; hop < CHAIN_MAX_HOPS && !streq(cur, owner); hop++) {
		const char *next = NULL;

		for (size_t i = 0; i < msg->n_records; i++)
			if (msg->records[i].type == DNS_TYPE_CNAME && streq(msg->records[i].name, cur)) {
				next = msg->records[i].target;
				break;
			}
		if (!next)
			break;
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, " -> %s", next);
		cur = next;
		if (o >= sizeof(buf))
			break;
	}
	if (!streq(cur, owner))
		return NULL; /* owner not reached from the question: do not invent a path */
	return strdup(buf);
}

static void ingest_packet(struct manager *m, const struct connpid_dns_event *e, double when)
{
	struct dns_message *msg;
	char answers[2048] = "";
	size_t ao = 0;
	uint32_t min_ttl = UINT32_MAX;
	int r;

	msg = malloc(sizeof(*msg));
	if (!msg)
		return;
	r = dns_parse_response(e->payload, e->payload_len, msg);
	if (r == -EBADMSG) {
		if (e->payload_len < e->msg_len)
			m->dns_truncated++;
		else
			m->dns_malformed++;
		goto out;
	}
	if (r < 0)
		goto out;
	m->dns_responses++;
	for (size_t i = 0; i < msg->n_records; i++) {
		const struct dns_record *rec = &msg->records[i];
		int family;
		char addr[64];
		char *chain;

		if (rec->type != DNS_TYPE_A && rec->type != DNS_TYPE_AAAA)
			continue;
		family = rec->type == DNS_TYPE_A ? AF_INET : AF_INET6;
		chain = cname_chain(msg, rec->name);
		if (!chain && !streq(rec->name, msg->qname))
			continue; /* not an answer to the question: never trusted */
		(void)dns_cache_add(m->dns, e->pid, family, rec->addr, msg->qname, chain, rec->ttl,
				    DNS_ORIGIN_PACKET, when);
		free(chain);
		if (rec->ttl < min_ttl)
			min_ttl = rec->ttl;
		format_ip(family, (const __u32 *)rec->addr, addr, sizeof(addr));
		ao += (size_t)snprintf(answers + ao, ao < sizeof(answers) ? sizeof(answers) - ao : 0,
				       "%s%s", ao ? "," : "", addr);
	}
	if (m->store && ao)
		store_add_dns(m->store, when, e->pid, NULL, msg->qname, answers, "packet",
			      min_ttl == UINT32_MAX ? 0 : min_ttl);
out:
	free(msg);
}

static void ingest_gai(struct manager *m, const struct connpid_dns_event *e, double when)
{
	const struct connpid_gai_result *g = &e->gai;
	char name[CONNPID_DNS_NAME_LEN], answers[2048] = "", comm[CONNPID_COMM_LEN + 1];
	size_t ao = 0;
	__u32 n = g->n_addrs < CONNPID_GAI_ADDRS ? g->n_addrs : CONNPID_GAI_ADDRS;

	memcpy(name, g->name, sizeof(name));
	name[sizeof(name) - 1] = '\0';
	{
		__u32 lit[4];
		int fam;

		/* getaddrinfo("127.0.0.2") names nothing: it is an address already */
		if (parse_ip(name, &fam, lit) == 0)
			return;
	}
	memcpy(comm, e->comm, CONNPID_COMM_LEN);
	comm[CONNPID_COMM_LEN] = '\0';
	m->dns_getaddrinfo++;
	for (__u32 i = 0; i < n; i++) {
		const struct connpid_gai_addr *a = &g->addrs[i];
		int family = a->family == AF_INET ? AF_INET : a->family == AF_INET6 ? AF_INET6 : 0;
		char addr[64];

		if (!family)
			continue;
		/* getaddrinfo() has no TTL: kept for the floor. */
		(void)dns_cache_add(m->dns, e->pid, family, a->addr, name, NULL, 0, DNS_ORIGIN_GETADDRINFO, when);
		format_ip(family, a->addr, addr, sizeof(addr));
		if (!strstr(answers, addr))
			ao += (size_t)snprintf(answers + ao, ao < sizeof(answers) ? sizeof(answers) - ao : 0,
					       "%s%s", ao ? "," : "", addr);
	}
	if (m->store && ao)
		store_add_dns(m->store, when, e->pid, comm, name, answers, "getaddrinfo", 0);
}

int manager_on_dns_event(void *ctx, void *data, size_t size)
{
	struct manager *m = ctx;
	const struct connpid_dns_event *e = data;

	if (size < sizeof(*e) || !m->dns)
		return 0;
	if (e->source == CONNPID_DNS_SRC_PACKET)
		ingest_packet(m, e, monotonic_ns_to_realtime(e->ts_ns));
	else if (e->source == CONNPID_DNS_SRC_GETADDRINFO)
		ingest_gai(m, e, monotonic_ns_to_realtime(e->ts_ns));
	return 0;
}

struct flow_domain *manager_domain_for(struct manager *m, __u32 pid, int family, const __u32 dst[4])
{
	struct flow_domain *d;
	struct dns_hit hit;

	if (!m->dns || !dns_cache_find(m->dns, pid, family, dst, now_realtime(), &hit))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = strdup(hit.name);
	d->chain = hit.chain ? strdup(hit.chain) : NULL;
	if (!d->name) {
		free(d->chain);
		free(d);
		return NULL;
	}
	d->origin = (__u8)hit.origin;
	d->same_process = hit.same_process;
	d->ttl = hit.ttl;
	d->resolved_at = now_realtime() - hit.age;
	return d;
}

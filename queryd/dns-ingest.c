// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DNS events from the kernel into the cache (and the history): responses
 * parsed here, getaddrinfo() results taken as they are; and the name a
 * new flow's destination came from, looked up when the flow arrives.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "cgroup2.h"
#include "dns-cache.h"
#include "dns-ingest.h"
#include "dns-parse.h"
#include "flowkey.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "procinfo.h"
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

/* bpf_ktime_get_ns() (monotonic) on /proc's clock: ticks since boot. */
static __u64 monotonic_ns_to_ticks(__u64 ns)
{
	struct timespec boot, mono;
	__s64 offset;

	if (clock_gettime(CLOCK_BOOTTIME, &boot) < 0 || clock_gettime(CLOCK_MONOTONIC, &mono) < 0)
		return boottime_ns_to_ticks(ns);
	offset = ((__s64)boot.tv_sec - (__s64)mono.tv_sec) * 1000000000LL + (boot.tv_nsec - mono.tv_nsec);
	return boottime_ns_to_ticks(ns + (__u64)(offset > 0 ? offset : 0));
}

/* The cgroup2 id of a process: the inode of the directory its
 * /proc/PID/cgroup "0::" line names. 0 when unknown. */
static __u64 proc_cgroup_id(pid_t pid)
{
	char path[64], line[PATH_MAX], mount[PATH_MAX], dir[2 * PATH_MAX];
	_cleanup_fclose_ FILE *f = NULL;
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3) != 0)
			continue;
		line[strcspn(line, "\n")] = '\0';
		if (cgroup2_find_mount(mount, sizeof(mount)) < 0)
			return 0;
		snprintf(dir, sizeof(dir), "%s%s", mount, line + 3);
		return stat(dir, &st) == 0 ? (__u64)st.st_ino : 0;
	}
	return 0;
}

/* uid and cgroup of (pid, start) from /proc, once per process; unknown
 * when the pid names another process by now. */
static void asker_from_proc(struct manager *m, struct dns_asker *who)
{
	struct procinfo p;
	__u64 again = 0;
	__u64 cg;

	if (dns_cache_asker_get(m->dns, who->pid, who->start_ticks, who))
		return;
	if (procinfo_read((pid_t)who->pid, &p) < 0 || p.start_ticks != who->start_ticks)
		return;
	cg = proc_cgroup_id((pid_t)who->pid);
	/* still the same process after the reads: the pid was not reused */
	if (procinfo_start_ticks((pid_t)who->pid, &again) < 0 || again != who->start_ticks)
		return;
	who->uid = p.uid;
	who->cgroup_id = cg;
	dns_cache_asker_put(m->dns, who);
}

static struct dns_asker asker_of_flow(const struct connpid_event *ev)
{
	return (struct dns_asker) {
		.pid = ev->pid,
		.start_ticks = boottime_ns_to_ticks(ev->start_boottime_ns),
		.uid = ev->uid,
		.cgroup_id = ev->cgroup_id,
	};
}

/*
 * Who a response was for. The kernel gives the pid owning the query's
 * flow, not its start time: the flow event of the query socket has it
 * (same pid, same socket). When that event is not in yet (the DNS ring is
 * drained first), /proc says, but only for a process that started no
 * later than the response arrived: a pid reused since then asked nothing.
 */
static struct dns_asker packet_asker(struct manager *m, const struct connpid_dns_event *e)
{
	struct dns_asker who = { .uid = DNS_UID_UNKNOWN };
	struct flow_key k = {
		.family = e->family == AF_INET ? AF_INET : AF_INET6,
		.protocol = CONNPID_PROTO_UDP,
		.src_port = e->client_port,
		.dst_port = e->server_port,
		.direction = FLOW_OUTBOUND,
	};
	const struct flow *f;
	__u64 start = 0;

	if (!e->pid)
		return who;
	if (k.family == AF_INET)
		k.dst_ip[0] = e->server_ip[0];
	else
		memcpy(k.dst_ip, e->server_ip, sizeof(k.dst_ip));
	/* the query socket's own variant (of its namespace), outbound */
	for (f = m->flows ? flow_index_first(m->flows, &k) : NULL; f; f = flow_next_variant(f))
		if (f->ev.pid == e->pid && f->ev.socket_cookie == e->socket_cookie && f->who)
			return (struct dns_asker) {
				.pid = f->ev.pid,
				.start_ticks = boottime_ns_to_ticks(f->who->k.start_boottime_ns),
				.uid = f->who->k.uid,
				.cgroup_id = f->ev.cgroup_id,
			};
	if (procinfo_start_ticks((pid_t)e->pid, &start) < 0 || start > monotonic_ns_to_ticks(e->ts_ns))
		return who;
	who.pid = e->pid;
	who.start_ticks = start;
	asker_from_proc(m, &who);
	return who;
}

static void ingest_packet(struct manager *m, const struct connpid_dns_event *e, double when)
{
	struct dns_asker who;
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
			m->dns_in.truncated++;
		else
			m->dns_in.malformed++;
		goto out;
	}
	if (r < 0)
		goto out;
	m->dns_in.responses++;
	who = packet_asker(m, e);
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
		(void)dns_cache_add(m->dns, &who, family, rec->addr, msg->qname, chain, rec->ttl,
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

/* Is item one of the comma-separated list's members (not a substring:
 * 10.0.0.1 is not in "10.0.0.11")? */
static bool list_has(const char *list, const char *item)
{
	size_t n = strlen(item);

	for (const char *p = list; *p;) {
		size_t len = strcspn(p, ",");

		if (len == n && memcmp(p, item, n) == 0)
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

static void ingest_gai(struct manager *m, const struct connpid_dns_event *e, double when)
{
	const struct connpid_gai_result *g = &e->gai;
	struct dns_asker who = { .uid = DNS_UID_UNKNOWN };
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
	m->dns_in.getaddrinfo++;
	/* the probe gives pid and start time; uid and cgroup come from /proc */
	if (e->pid && e->start_boottime_ns) {
		who.pid = e->pid;
		who.start_ticks = boottime_ns_to_ticks(e->start_boottime_ns);
		asker_from_proc(m, &who);
	}
	for (__u32 i = 0; i < n; i++) {
		const struct connpid_gai_addr *a = &g->addrs[i];
		int family = a->family == AF_INET ? AF_INET : a->family == AF_INET6 ? AF_INET6 : 0;
		char addr[64];

		if (!family)
			continue;
		/* getaddrinfo() has no TTL: kept for the floor. */
		(void)dns_cache_add(m->dns, &who, family, a->addr, name, NULL, 0, DNS_ORIGIN_GETADDRINFO, when);
		format_ip(family, a->addr, addr, sizeof(addr));
		if (!list_has(answers, addr))
			ao += (size_t)snprintf(answers + ao, ao < sizeof(answers) ? sizeof(answers) - ao : 0,
					       "%s%s", ao ? "," : "", addr);
	}
	if (m->store && ao)
		store_add_dns(m->store, when, e->pid, comm, name, answers, "getaddrinfo", 0);
}

int dns_ingest_event(struct manager *m, const void *data, size_t size)
{
	const struct connpid_dns_event *e = data;

	if (size < sizeof(*e) || !m->dns)
		return 0;
	if (e->source == CONNPID_DNS_SRC_PACKET)
		ingest_packet(m, e, monotonic_ns_to_realtime(e->ts_ns));
	else if (e->source == CONNPID_DNS_SRC_GETADDRINFO)
		ingest_gai(m, e, monotonic_ns_to_realtime(e->ts_ns));
	return 0;
}

static struct flow_domain *domain_for(struct manager *m, const struct dns_asker *who, int family,
				      const __u32 dst[4])
{
	struct flow_domain *d;
	struct dns_hit hit;

	if (!m->dns || !dns_cache_find(m->dns, who, family, dst, now_realtime(), &hit))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->name = strdup(hit.name);
	d->chain = hit.chain ? strdup(hit.chain) : NULL;
	if (!d->name || (hit.chain && !d->chain)) {
		free(d->name);
		free(d->chain);
		free(d);
		return NULL;
	}
	d->origin = (__u8)hit.origin;
	d->same_process = hit.same_process;
	d->asked_by = (__u8)hit.asked_by;
	d->ttl = hit.ttl;
	d->resolved_at = now_realtime() - hit.age;
	return d;
}

struct flow_domain *manager_domain_for_event(struct manager *m, const struct connpid_event *e)
{
	struct dns_asker who = asker_of_flow(e);

	return domain_for(m, &who, e->family, e->dst_ip);
}

void dns_ingest_stats_to_json(const struct dns_ingest *d, json_object *s)
{
	json_add_u64(s, "dns_responses", d->responses);
	json_add_u64(s, "dns_malformed", d->malformed);
	json_add_u64(s, "dns_truncated", d->truncated);
	json_add_u64(s, "dns_getaddrinfo", d->getaddrinfo);
}

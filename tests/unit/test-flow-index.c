// SPDX-License-Identifier: GPL-2.0-or-later
/* The flow index's variants (issue 14): one key in several network
 * namespaces or from several sources is several flows; an event replaces
 * only the variant of its namespace and source (or socket); a key keeps
 * at most FLOW_VARIANTS_MAX; inbound and outbound never mix. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "flow-index.h"

#include "check.h"

/* pids no process has: /proc is read once and finds nothing */
#define PID0 0x3ffff000u
#define NETNS0 4026531840ull

static double now = 1000;

static struct connpid_event event(__u32 pid, __u64 netns, __u8 src_last, bool inbound, __u64 cookie)
{
	struct connpid_event e = {
		.pid = pid, .netns_ino = netns, .socket_cookie = cookie,
		.family = AF_INET, .protocol = CONNPID_PROTO_TCP,
		.src_port = 40000, .dst_port = 443,
		.flags = inbound ? CONNPID_EVENT_FLAG_INBOUND : 0,
		.source = inbound ? CONNPID_SRC_ACCEPT : CONNPID_SRC_SOCKOPS_CONNECT,
	};

	e.dst_ip[0] = htonl(0x5db8d822); /* 93.184.216.34 */
	e.src_ip[0] = htonl(0x0a000000 | src_last);
	return e;
}

static struct flow *add(struct flow_index *x, struct connpid_event e)
{
	now += 1;
	return flow_index_add(x, &e, now);
}

static struct flow_key key(enum flow_direction d)
{
	struct connpid_event e = event(0, 0, 0, d == FLOW_INBOUND, 0);
	struct flow_key k;

	flow_key_from_event(&e, &k);
	return k;
}

static size_t variants(struct flow_index *x, const struct flow_key *k)
{
	size_t n = 0;

	for (struct flow *f = flow_index_first(x, k); f && n < 1000; f = flow_next_variant(f))
		n++;
	return n;
}

static struct lookup_scope in_netns(__u64 netns)
{
	return (struct lookup_scope) { .netns = netns };
}

static void test_namespaces(struct proc_cache *pc, unsigned n_netns)
{
	struct flow_key k = key(FLOW_OUTBOUND);
	struct flow_index *x;
	struct flow *f;

	CHECK(flow_index_new(1000, pc, &x) == 0, "new");
	/* one process per namespace, all from 10.0.0.2 (a bridge's default) */
	for (unsigned i = 0; i < n_netns; i++)
		CHECK(add(x, event(PID0 + i, NETNS0 + i, 2, false, 100 + i)), "add netns %u", i);
	CHECK(flow_index_size(x) == n_netns, "%u netns: %zu flows", n_netns, flow_index_size(x));
	CHECK(variants(x, &k) == n_netns, "%u netns: %zu variants", n_netns, variants(x, &k));
	for (unsigned i = 0; i < n_netns; i++) {
		struct lookup_scope s = in_netns(NETNS0 + i);

		f = flow_index_find(x, &k, &s, 0);
		CHECK(f && f->ev.pid == PID0 + i, "netns %u: pid %u", i, f ? f->ev.pid : 0);
		/* the map's pid picks among them without a scope */
		f = flow_index_find(x, &k, NULL, PID0 + i);
		CHECK(f && f->who->k.netns_ino == NETNS0 + i, "pid %u: netns %llu", PID0 + i,
		      f ? (unsigned long long)f->who->k.netns_ino : 0);
	}
	f = flow_index_find(x, &k, NULL, 0);
	CHECK(f && f->ev.pid == PID0 + n_netns - 1, "no scope, no pid: the newest");
	{
		struct lookup_scope s = in_netns(NETNS0 + n_netns);

		CHECK(!flow_index_find(x, &k, &s, 0), "a namespace with no flow finds none");
	}
	/* a pid the map names but no variant has: the newest still */
	f = flow_index_find(x, &k, NULL, 1);
	CHECK(f && f->ev.pid == PID0 + n_netns - 1, "unknown pid: the newest");
	flow_index_free(x);
}

static void test_replacement(struct proc_cache *pc)
{
	struct flow_key k = key(FLOW_OUTBOUND);
	struct lookup_scope s = in_netns(NETNS0 + 1);
	struct flow_index *x;
	struct flow *f;

	CHECK(flow_index_new(1000, pc, &x) == 0, "new");
	add(x, event(PID0, NETNS0, 2, false, 1));
	add(x, event(PID0 + 1, NETNS0 + 1, 2, false, 2));
	/* port reuse in netns 1 by another process and socket: replaced */
	add(x, event(PID0 + 2, NETNS0 + 1, 2, false, 3));
	CHECK(variants(x, &k) == 2, "replaced, not added: %zu variants", variants(x, &k));
	f = flow_index_find(x, &k, &s, 0);
	CHECK(f && f->ev.pid == PID0 + 2 && f->first_seen == now, "netns 1 now pid %u", f ? f->ev.pid : 0);
	s = in_netns(NETNS0);
	f = flow_index_find(x, &k, &s, 0);
	CHECK(f && f->ev.pid == PID0, "netns 0 untouched");

	/* another source address in one namespace: another flow */
	add(x, event(PID0 + 3, NETNS0, 3, false, 4));
	CHECK(variants(x, &k) == 3, "two sources: %zu variants", variants(x, &k));
	s = (struct lookup_scope) { .has_src = true };
	s.src_ip[0] = htonl(0x0a000003);
	f = flow_index_find(x, &k, &s, 0);
	CHECK(f && f->ev.pid == PID0 + 3, "by src 10.0.0.3");
	s.src_ip[0] = htonl(0x0a000002);
	s.netns = NETNS0;
	f = flow_index_find(x, &k, &s, 0);
	CHECK(f && f->ev.pid == PID0, "by src 10.0.0.2 and netns 0");

	/* the same socket again, its source known now: the same flow */
	add(x, event(PID0 + 3, NETNS0, 9, false, 4));
	CHECK(variants(x, &k) == 3, "same socket: %zu variants", variants(x, &k));
	CHECK(flow_index_size(x) == 3, "size %zu", flow_index_size(x));
	flow_index_free(x);
}

static void test_cap(struct proc_cache *pc)
{
	struct flow_key k = key(FLOW_OUTBOUND);
	struct flow_index *x;
	struct connpid_event other = event(PID0, NETNS0, 2, false, 999);

	CHECK(flow_index_new(1000, pc, &x) == 0, "new");
	other.dst_port = 80; /* another key: never evicted by this one's flood */
	add(x, other);
	for (unsigned i = 0; i < FLOW_VARIANTS_MAX + 6; i++)
		add(x, event(PID0 + i, NETNS0 + i, 2, false, 100 + i));
	CHECK(variants(x, &k) == FLOW_VARIANTS_MAX, "capped: %zu variants", variants(x, &k));
	CHECK(flow_index_size(x) == FLOW_VARIANTS_MAX + 1, "size %zu", flow_index_size(x));
	CHECK(flow_index_evictions(x) == 6, "evictions %llu", (unsigned long long)flow_index_evictions(x));
	for (unsigned i = 0; i < FLOW_VARIANTS_MAX + 6; i++) {
		struct lookup_scope s = in_netns(NETNS0 + i);
		bool kept = flow_index_find(x, &k, &s, 0) != NULL;

		CHECK(kept == (i >= 6), "netns %u: kept %d (the oldest 6 go)", i, kept);
	}
	{
		struct flow_key ko;

		flow_key_from_event(&other, &ko);
		CHECK(flow_index_find(x, &ko, NULL, 0), "the other key stays");
	}
	/* refreshing the oldest survivor makes it the newest: the next to go is netns 7 */
	add(x, event(PID0 + 6, NETNS0 + 6, 2, false, 106));
	add(x, event(PID0 + 500, NETNS0 + 500, 2, false, 600));
	{
		struct lookup_scope s6 = in_netns(NETNS0 + 6), s7 = in_netns(NETNS0 + 7);

		CHECK(flow_index_find(x, &k, &s6, 0), "refreshed netns 6 kept");
		CHECK(!flow_index_find(x, &k, &s7, 0), "netns 7 evicted");
	}
	flow_index_free(x);
}

static void test_directions(struct proc_cache *pc)
{
	struct flow_key ko = key(FLOW_OUTBOUND), ki = key(FLOW_INBOUND);
	struct flow_index *x;
	struct flow *f;

	CHECK(flow_index_new(1000, pc, &x) == 0, "new");
	add(x, event(PID0, NETNS0, 2, false, 1));
	add(x, event(PID0 + 1, NETNS0, 2, true, 2));
	CHECK(variants(x, &ko) == 1 && variants(x, &ki) == 1, "apart: %zu out, %zu in", variants(x, &ko),
	      variants(x, &ki));
	f = flow_index_find(x, &ko, NULL, 0);
	CHECK(f && f->ev.pid == PID0 && flow_direction(f) == FLOW_OUTBOUND, "outbound");
	f = flow_index_find(x, &ki, NULL, 0);
	CHECK(f && f->ev.pid == PID0 + 1 && flow_direction(f) == FLOW_INBOUND, "inbound");
	/* the inbound flow again, accepted by another process: replaced */
	add(x, event(PID0 + 2, NETNS0, 2, true, 3));
	f = flow_index_find(x, &ki, NULL, 0);
	CHECK(variants(x, &ki) == 1 && f && f->ev.pid == PID0 + 2, "inbound replaced");
	f = flow_index_find(x, &ko, NULL, 0);
	CHECK(f && f->ev.pid == PID0, "outbound untouched");
	flow_index_free(x);
}

/* Issue 15: what is per process is kept once, and every flow gives back
 * its event whole; links survive eviction and slot reuse. */
static struct connpid_event full_event(__u32 i, const char *comm)
{
	struct connpid_event e = event(PID0, NETNS0, 2, false, 5000 + i);

	e.src_port = (__u16)(20000 + i);
	e.tid = PID0 + 1;
	e.uid = 1000;
	e.gid = 100;
	e.cgroup_id = 77;
	e.start_boottime_ns = 123456789000ULL;
	e.creator_pid = PID0 - 1;
	e.creator_start_boottime_ns = 1000000000ULL;
	memcpy(e.creator_comm, "creator-comm-16b", CONNPID_COMM_LEN); /* no NUL: 16 bytes */
	snprintf(e.comm, sizeof(e.comm), "%s", comm);
	for (int a = 0; a < CONNPID_ANCESTORS; a++) {
		e.ancestor_pid[a] = 100 + a;
		snprintf(e.ancestor_comm[a], sizeof(e.ancestor_comm[a]), "anc%d", a);
	}
	return e;
}

static void test_compact(struct proc_cache *pc)
{
	struct connpid_event e, back;
	struct flow_index *x;
	struct flow *f;
	size_t n = 0;
	double prev = 1e300;
	char id[COMMUNITY_ID_LEN];

	CHECK(flow_index_new(64, pc, &x) == 0, "new");
	for (__u32 i = 0; i < 100; i++)
		add(x, full_event(i, i % 2 ? "odd" : "even"));
	CHECK(flow_index_size(x) == 64 && flow_index_evictions(x) == 36, "size %zu", flow_index_size(x));
	CHECK(flow_index_whos(x) == 2, "two thread names, two records: %zu", flow_index_whos(x));
	CHECK(proc_cache_size(pc) == 1, "one process read once: %zu", proc_cache_size(pc));
	/* bytes after a comm's NUL render nothing: no record of their own */
	e = full_event(99, "odd");
	memcpy(e.comm + 4, "junk", 4);
	memcpy(e.ancestor_comm[1] + 5, "junk", 4);
	add(x, e);
	CHECK(flow_index_whos(x) == 2, "junk after the NUL: %zu records", flow_index_whos(x));
	/* the newest first, each once, after 36 slots were reused */
	for (f = flow_index_newest(x); f && n < 1000; f = flow_older(f), n++) {
		CHECK(f->last_seen < prev, "recency order");
		prev = f->last_seen;
	}
	CHECK(n == 64, "recent walk: %zu flows", n);
	e = full_event(99, "odd");
	{
		struct flow_key k;

		flow_key_from_event(&e, &k);
		f = flow_index_find(x, &k, NULL, 0);
	}
	CHECK(f && flow_proc(f) && flow_proc(f)->pid == (pid_t)PID0, "found, with its process");
	if (f) {
		flow_to_event(f, &back);
		e.ts_ns = back.ts_ns = 0;
		CHECK(memcmp(&e, &back, sizeof(e)) == 0, "the event, whole, from a compact flow");
		CHECK(flow_community_id(f, 0, id) == 0, "community id");
		CHECK(flow_index_find_community_id(x, 0, id) == f, "found by community id");
	}
	/* a flow of the evicted first 36: not found by its id any more */
	e = full_event(0, "even");
	{
		struct flow g = {};
		struct flow_who w = {};

		flow_fill(&g, &w, &e);
		CHECK(flow_community_id(&g, 0, id) == 0 && !flow_index_find_community_id(x, 0, id),
		      "evicted: no id match");
	}
	/* the same socket with a new thread name: its old record goes when unused */
	for (__u32 i = 36; i < 100; i++)
		add(x, full_event(i, "renamed"));
	CHECK(flow_index_size(x) == 64 && flow_index_whos(x) == 1, "one record left: %zu", flow_index_whos(x));
	flow_index_free(x);
	CHECK(proc_cache_size(pc) == 0, "process released: %zu", proc_cache_size(pc));
}

/* The index's own bound still holds with variants about. */
static void test_capacity(struct proc_cache *pc)
{
	struct flow_index *x;

	CHECK(flow_index_new(8, pc, &x) == 0, "new");
	for (unsigned i = 0; i < 20; i++) {
		struct connpid_event e = event(PID0, NETNS0 + i % 3, 2, false, 0);

		e.src_port = (__u16)(1000 + i / 3);
		add(x, e);
	}
	CHECK(flow_index_size(x) == 8, "size %zu", flow_index_size(x));
	CHECK(flow_index_evictions(x) == 12, "evictions %llu", (unsigned long long)flow_index_evictions(x));
	flow_index_free(x);
}

int main(void)
{
	struct proc_cache *pc;

	if (proc_cache_new(NULL, &pc) < 0) {
		fprintf(stderr, "proc_cache_new failed\n");
		return 1;
	}
	test_namespaces(pc, 2);
	test_namespaces(pc, 10);
	test_replacement(pc);
	test_cap(pc);
	test_directions(pc);
	test_capacity(pc);
	test_compact(pc);
	proc_cache_free(pc);
	if (!check_failures)
		printf("flow-index: all checks passed\n");
	return check_failures != 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The in-memory flow index: what the ring buffer told us, keyed like the
 * pinned maps plus the direction, bounded, least recently seen evicted
 * first. The newest-first list doubles as the `recent` view.
 *
 * One key can stand for several flows at once: the same destination and
 * ports from two network namespaces, or from two source addresses. Each
 * is a "variant" of the key: a flow is (key, netns, src_ip), and all
 * variants of a key share its hash, so one bucket walk finds them all.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/types.h>

#include "community-id.h"
#include "htable.h"
#include "connpid.h"
#include "lookup-scope.h"
#include "proc-cache.h"

/* Variants of one key and direction kept at most: a flood from many
 * namespaces or sources pushes out that key's oldest, not other flows. */
#define FLOW_VARIANTS_MAX 64

struct flow_key {
	__u32 dst_ip[4];  /* network order; v4 in [0] */
	__u16 src_port;
	__u16 dst_port;
	__u8 family;      /* AF_INET / AF_INET6 */
	__u8 protocol;
	__u8 direction;   /* enum flow_direction */
	__u8 pad;
};

/* The name the flow's destination was resolved from, fixed at ingest. */
struct flow_domain {
	char *name;
	char *chain;
	__u8 origin;       /* enum dns_origin */
	bool same_process;
	__u8 asked_by;     /* enum dns_asked_by: whose query named it */
	__u32 ttl;
	double resolved_at; /* unix time of the answer */
};

/*
 * What the kernel said about a flow, split in two (issue 15). Most of an
 * event (ancestry, creator, comm, ids, source address: 184 of its 232
 * bytes) is the same for the flows of one thread of one process: that
 * part is a flow_who, interned by content and shared, so a full index of
 * 81,920 flows costs ~8 MB instead of 28. Keyed by content, not by pid,
 * it renders exactly what each event said (a process reparented, a thread
 * renamed, a socket passed on is another record); at worst every flow
 * has its own, which still costs less than the whole event did.
 */
struct flow_who {
	struct hnode node;           /* in the index's intern table */
	unsigned refs;
	__u32 hash;
	struct proc_entry *proc;     /* one reference per record; may be unenriched */
	/* the interned content, compared whole */
	struct flow_who_key {
		__u64 start_boottime_ns;  /* thread group leader's */
		__u64 netns_ino;
		__u64 creator_start_boottime_ns;
		__u32 pid;
		__u32 tid;
		__u32 prev_pid;           /* owner before, when OWNER_CHANGED */
		__u32 uid;
		__u32 gid;
		__u32 creator_pid;        /* inbound: the listener's */
		__u32 pad;
		__u32 src_ip[4];          /* network order; v4 in [0] */
		char comm[CONNPID_COMM_LEN];
		char creator_comm[CONNPID_COMM_LEN];
		__u32 ancestor_pid[CONNPID_ANCESTORS];
		char ancestor_comm[CONNPID_ANCESTORS][CONNPID_COMM_LEN];
	} k;
};

/* The part of an event each flow has its own: the member names are the
 * event's (f->ev.pid, f->ev.protocol, ...). The rest of the 5-tuple is
 * the key's, the rest of the event its who's. */
struct flow_event {
	__u64 socket_cookie;
	__u64 cgroup_id;  /* of the thread, at the event */
	__u32 pid;        /* tgid */
	__u8 protocol;
	__u8 family;
	__u8 source;      /* enum connpid_source */
	__u8 flags;       /* CONNPID_EVENT_FLAG_* */
};

/* 96 bytes, in one mapping of the index's capacity, touched as flows
 * come (no allocator header per flow). Links are offsets in flows from
 * the flow itself (0: none), so a walk needs no index at hand. */
struct flow {
	struct flow_key key;
	__u32 hash;                  /* compared before the key: fewer cache misses */
	__s32 hnext;                 /* bucket chain */
	__s32 newer, older;          /* recency list */
	struct flow_event ev;
	struct flow_who *who;        /* shared; NULL only in a flow made by hand */
	struct flow_domain *domain;  /* NULL: no DNS answer known for it */
	double first_seen;           /* unix time */
	double last_seen;
};

static inline struct flow *flow_link(const struct flow *f, __s32 off)
{
	return off ? (struct flow *)f + off : NULL;
}

/* The process the flow was seen in; NULL when unknown. */
static inline struct proc_entry *flow_proc(const struct flow *f)
{
	return f->who ? f->who->proc : NULL;
}

struct flow_index;

int flow_index_new(size_t max_flows, struct proc_cache *procs, struct flow_index **ret);
struct flow_index *flow_index_free(struct flow_index *x);

/* The key of an event: inbound when it carries CONNPID_EVENT_FLAG_INBOUND. */
static inline void flow_key_from_event(const struct connpid_event *e, struct flow_key *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->family = e->family;
	ret->protocol = e->protocol;
	ret->src_port = e->src_port;
	ret->dst_port = e->dst_port;
	ret->direction = e->flags & CONNPID_EVENT_FLAG_INBOUND ? FLOW_INBOUND : FLOW_OUTBOUND;
	if (e->family == AF_INET)
		ret->dst_ip[0] = e->dst_ip[0];
	else
		memcpy(ret->dst_ip, e->dst_ip, sizeof(ret->dst_ip));
}

/* A comm as rendered (up to its NUL or 16 bytes), the rest zeroed: what
 * a hook left after the NUL must not make one process two records. */
static inline void flow_comm_copy(char dst[CONNPID_COMM_LEN], const char *src)
{
	memcpy(dst, src, strnlen(src, CONNPID_COMM_LEN));
}

/* The per-process part of e, as rendered and zero-padded elsewhere: it
 * is compared and hashed whole. */
static inline void flow_who_key_from_event(const struct connpid_event *e, struct flow_who_key *k)
{
	memset(k, 0, sizeof(*k));
	k->start_boottime_ns = e->start_boottime_ns;
	k->netns_ino = e->netns_ino;
	k->creator_start_boottime_ns = e->creator_start_boottime_ns;
	k->pid = e->pid;
	k->tid = e->tid;
	k->prev_pid = e->prev_pid;
	k->uid = e->uid;
	k->gid = e->gid;
	k->creator_pid = e->creator_pid;
	memcpy(k->src_ip, e->src_ip, sizeof(k->src_ip));
	flow_comm_copy(k->comm, e->comm);
	flow_comm_copy(k->creator_comm, e->creator_comm);
	/* rendered up to the first 0 pid */
	for (int i = 0; i < CONNPID_ANCESTORS && e->ancestor_pid[i]; i++) {
		k->ancestor_pid[i] = e->ancestor_pid[i];
		flow_comm_copy(k->ancestor_comm[i], e->ancestor_comm[i]);
	}
}

static inline void flow_event_from_event(const struct connpid_event *e, struct flow_event *ret)
{
	*ret = (struct flow_event) {
		.socket_cookie = e->socket_cookie, .cgroup_id = e->cgroup_id, .pid = e->pid,
		.protocol = e->protocol, .family = e->family, .source = e->source, .flags = e->flags,
	};
}

/* A flow made by hand from e, outside any index (tests, benches): its
 * who is the caller's (who->proc the caller's too, or NULL). */
static inline void flow_fill(struct flow *f, struct flow_who *who, const struct connpid_event *e)
{
	flow_key_from_event(e, &f->key);
	flow_event_from_event(e, &f->ev);
	flow_who_key_from_event(e, &who->k);
	f->who = who;
}

/* The event f was made from, again (ts_ns aside): for code that speaks events. */
void flow_to_event(const struct flow *f, struct connpid_event *ret);
/* Interned records held now (each shared by the flows of one process,
 * thread name and source address, mostly). */
size_t flow_index_whos(const struct flow_index *x);
static inline enum flow_direction flow_direction(const struct flow *f)
{
	return (enum flow_direction)f->key.direction;
}

/* Insert or refresh from an event: it replaces the variant of its key with
 * the same netns and source address (or the same socket); a new variant
 * past FLOW_VARIANTS_MAX evicts the key's least recently seen one; a new
 * flow in a full index evicts the index's least recently seen. */
struct flow *flow_index_add(struct flow_index *x, const struct connpid_event *e, double now);

/* Whether f is in scope: its source address (scope->has_src) and network
 * namespace (scope->netns != 0) as asked. NULL: every flow. The direction
 * is the key's (k->direction), not looked at here. */
bool flow_in_scope(const struct flow *f, const struct lookup_scope *scope);
/* The best variant of k in scope: the newest whose pid is pid (0: any
 * pid), else the newest. NULL: none. One bucket walk, no allocation. */
struct flow *flow_index_find(struct flow_index *x, const struct flow_key *k, const struct lookup_scope *scope,
			     __u32 pid);
/* Every variant of k (at most FLOW_VARIANTS_MAX), in no particular order:
 * for (f = flow_index_first(x, k); f; f = flow_next_variant(f)). */
struct flow *flow_index_first(struct flow_index *x, const struct flow_key *k);
struct flow *flow_next_variant(const struct flow *f);
/* The same walk from a flow of the index: its key's first variant, the
 * bucket found by the hash the flow keeps (no hashing again). */
struct flow *flow_first_variant_of(struct flow_index *x, const struct flow *f);

/* Newest first; NULL at the end. */
struct flow *flow_index_newest(struct flow_index *x);
static inline struct flow *flow_older(const struct flow *f)
{
	return flow_link(f, f->older);
}

/* f's Community ID (spec v1) with seed: -EINVAL when its source address
 * is unknown (unconnected UDP without a chosen source). */
int flow_community_id(const struct flow *f, __u16 seed, char out[COMMUNITY_ID_LEN]);
/* The newest flow whose Community ID with seed is id, or NULL. A second
 * hash table: the first call hashes every flow once (tens of ms at the
 * largest index), later ones cost a bucket; from then on each new flow
 * costs one SHA1 at ingest. A scan per lookup would cost that every time. */
struct flow *flow_index_find_community_id(struct flow_index *x, __u16 seed, const char *id);

void flow_set_domain(struct flow *f, struct flow_domain *d);
void flow_domain_free(struct flow_domain *d);
size_t flow_index_size(const struct flow_index *x);
size_t flow_index_capacity(const struct flow_index *x);
__u64 flow_index_evictions(const struct flow_index *x);

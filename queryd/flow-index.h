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
#include <linux/types.h>

#include "community-id.h"
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

/* 336 bytes, in one array of the index's capacity (no allocator header
 * per flow); the event is most of it. */
struct flow {
	struct flow_key key;
	__u32 hash;                  /* compared before the key: fewer cache misses */
	/* Linked only once a lookup by Community ID asked for it (below); the
	 * ID itself is recomputed for the few flows of a bucket, not kept. */
	__u32 cid_hash;
	struct flow *hnext;
	struct flow *newer, *older;  /* recency list */
	struct connpid_event ev;     /* what the kernel said, copied out */
	struct proc_entry *proc;     /* shared; may be unenriched */
	struct flow_domain *domain;  /* NULL: no DNS answer known for it */
	double first_seen;           /* unix time */
	double last_seen;
	struct flow *cid_next;
	bool has_cid;                /* false: unknown source, or not linked */
};

struct flow_index;

int flow_index_new(size_t max_flows, struct proc_cache *procs, struct flow_index **ret);
struct flow_index *flow_index_free(struct flow_index *x);

/* The key of an event: inbound when it carries CONNPID_EVENT_FLAG_INBOUND. */
void flow_key_from_event(const struct connpid_event *e, struct flow_key *ret);
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

/* Newest first; NULL at the end. */
struct flow *flow_index_newest(struct flow_index *x);
static inline struct flow *flow_older(const struct flow *f)
{
	return f->older;
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
size_t flow_index_size(const struct flow_index *x);
size_t flow_index_capacity(const struct flow_index *x);
__u64 flow_index_evictions(const struct flow_index *x);

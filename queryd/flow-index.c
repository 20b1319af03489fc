// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "flow-index.h"
#include "macro.h"
#include "procinfo.h"

#define SLOT_CHUNK 2048

struct flow_index {
	/* All flows, in chunks of SLOT_CHUNK allocated as flows come (no
	 * allocator header per flow); evicted slots are reused (free list
	 * via hnext). Chunks live as long as the index. */
	struct flow **chunks;
	size_t slots_used;  /* never-used slots start here */
	struct flow *free_slots;
	struct flow **buckets;
	size_t n_buckets;   /* power of two */
	size_t n;
	size_t max;
	struct flow *newest, *oldest;
	struct proc_cache *procs;
	__u64 evictions;
	/* by Community ID: NULL until a lookup by it asked */
	struct flow **cid_buckets;
	__u16 cid_seed;
	__u64 cid_key;      /* random: nobody can aim flows at one bucket */
	__u64 key;          /* the same for buckets */
};

static void domain_free(struct flow_domain *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->chain);
	free(d);
}

void flow_set_domain(struct flow *f, struct flow_domain *d)
{
	domain_free(f->domain);
	f->domain = d;
}

int flow_index_new(size_t max_flows, struct proc_cache *procs, struct flow_index **ret)
{
	struct flow_index *x;

	if (max_flows < 1)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->n_buckets = 1024;
	while (x->n_buckets < max_flows)
		x->n_buckets <<= 1;
	x->buckets = calloc(x->n_buckets, sizeof(*x->buckets));
	x->chunks = calloc((max_flows + SLOT_CHUNK - 1) / SLOT_CHUNK, sizeof(*x->chunks));
	if (!x->buckets || !x->chunks) {
		free(x->buckets);
		free(x->chunks);
		free(x);
		return -ENOMEM;
	}
	if (getrandom(&x->key, sizeof(x->key), GRND_NONBLOCK) != sizeof(x->key))
		x->key = (__u64)(uintptr_t)x ^ 0x9e3779b97f4a7c15ULL;
	x->max = max_flows;
	x->procs = procs;
	*ret = x;
	return 0;
}

struct flow_index *flow_index_free(struct flow_index *x)
{
	if (!x)
		return NULL;
	for (struct flow *f = x->newest, *next; f; f = next) {
		next = f->older;
		proc_entry_unref(x->procs, f->proc);
		domain_free(f->domain);
	}
	for (size_t i = 0; i * SLOT_CHUNK < x->slots_used; i++)
		free(x->chunks[i]);
	free(x->chunks);
	free(x->buckets);
	free(x->cid_buckets);
	free(x);
	return NULL;
}

void flow_key_from_event(const struct connpid_event *e, struct flow_key *ret)
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

static __u32 hash_key(const struct flow_index *x, const struct flow_key *k)
{
	/* FNV-1a over the packed key, then a murmur finalizer so the low bits
	 * used for the bucket depend on every byte; seeded with random bits,
	 * as the key is what any local process picks (a destination and
	 * ports): nobody can aim a flood at one chain. */
	const unsigned char *p = (const unsigned char *)k;
	__u64 h = x->key ^ 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < sizeof(*k); i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (__u32)h;
}

int flow_community_id(const struct flow *f, __u16 seed, char out[COMMUNITY_ID_LEN])
{
	const struct connpid_event *e = &f->ev;
	struct community_id_flow c = {
		.family = e->family, .src_port = e->src_port, .dst_port = e->dst_port, .protocol = e->protocol,
	};

	memcpy(c.src_ip, e->src_ip, sizeof(c.src_ip));
	memcpy(c.dst_ip, e->dst_ip, sizeof(c.dst_ip));
	return community_id_v1(&c, seed, out);
}

static __u32 hash_cid(const struct flow_index *x, const char *id)
{
	__u64 h = x->cid_key ^ 0xcbf29ce484222325ULL;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 0x100000001b3ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return (__u32)h;
}

static void cid_unlink(struct flow_index *x, struct flow *f)
{
	struct flow **pp;

	if (!x->cid_buckets || !f->has_cid)
		return;
	for (pp = &x->cid_buckets[f->cid_hash & (x->n_buckets - 1)]; *pp; pp = &(*pp)->cid_next)
		if (*pp == f) {
			*pp = f->cid_next;
			break;
		}
	f->cid_next = NULL;
	f->has_cid = false;
}

static void cid_link(struct flow_index *x, struct flow *f)
{
	char id[COMMUNITY_ID_LEN];
	struct flow **head;

	if (!x->cid_buckets || flow_community_id(f, x->cid_seed, id) < 0)
		return;
	f->has_cid = true;
	f->cid_hash = hash_cid(x, id);
	head = &x->cid_buckets[f->cid_hash & (x->n_buckets - 1)];
	f->cid_next = *head;
	*head = f;
}

/* The second table, for this seed: every flow hashed once. */
static int cid_build(struct flow_index *x, __u16 seed)
{
	free(x->cid_buckets);
	x->cid_buckets = calloc(x->n_buckets, sizeof(*x->cid_buckets));
	if (!x->cid_buckets)
		return -ENOMEM;
	if (getrandom(&x->cid_key, sizeof(x->cid_key), GRND_NONBLOCK) != sizeof(x->cid_key))
		x->cid_key = (__u64)(uintptr_t)x ^ 0x9e3779b97f4a7c15ULL;
	x->cid_seed = seed;
	for (struct flow *f = x->oldest; f; f = f->newer) {
		f->has_cid = false;
		f->cid_next = NULL;
		cid_link(x, f);
	}
	return 0;
}

struct flow *flow_index_find_community_id(struct flow_index *x, __u16 seed, const char *id)
{
	struct flow *best = NULL;
	__u32 h;

	if (strlen(id) != COMMUNITY_ID_LEN - 1)
		return NULL;
	if ((!x->cid_buckets || x->cid_seed != seed) && cid_build(x, seed) < 0)
		return NULL;
	h = hash_cid(x, id);
	/* both ends of one local flow may be tracked: the newest wins */
	for (struct flow *f = x->cid_buckets[h & (x->n_buckets - 1)]; f; f = f->cid_next) {
		char fid[COMMUNITY_ID_LEN];

		if (f->cid_hash == h && (!best || f->last_seen > best->last_seen) &&
		    flow_community_id(f, x->cid_seed, fid) >= 0 && streq(fid, id))
			best = f;
	}
	return best;
}

static size_t addr_len(__u8 family)
{
	return family == AF_INET ? 4 : 16;
}

static bool same_key(const struct flow *f, const struct flow_key *k, __u32 h)
{
	return f->hash == h && memcmp(&f->key, k, sizeof(*k)) == 0;
}

/* e describes f again: same namespace and source address (the same socket,
 * or its port reused there), or the very same socket (an unconnected UDP
 * socket's source is known only from its second event on). */
static bool same_identity(const struct flow *f, const struct connpid_event *e)
{
	if (e->socket_cookie && f->ev.socket_cookie == e->socket_cookie)
		return true;
	return f->ev.netns_ino == e->netns_ino && memcmp(f->ev.src_ip, e->src_ip, addr_len(e->family)) == 0;
}

bool flow_in_scope(const struct flow *f, const struct lookup_scope *scope)
{
	if (!scope)
		return true;
	if (scope->netns && f->ev.netns_ino != scope->netns)
		return false;
	return !scope->has_src || memcmp(f->ev.src_ip, scope->src_ip, addr_len(f->key.family)) == 0;
}

static void chain_unlink(struct flow_index *x, struct flow *f)
{
	struct flow **pp = &x->buckets[f->hash & (x->n_buckets - 1)];

	while (*pp && *pp != f)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = f->hnext;
	f->hnext = NULL;
}

static void list_unlink(struct flow_index *x, struct flow *f)
{
	if (f->newer)
		f->newer->older = f->older;
	else
		x->newest = f->older;
	if (f->older)
		f->older->newer = f->newer;
	else
		x->oldest = f->newer;
	f->newer = f->older = NULL;
}

static void list_push_newest(struct flow_index *x, struct flow *f)
{
	f->older = x->newest;
	f->newer = NULL;
	if (x->newest)
		x->newest->newer = f;
	x->newest = f;
	if (!x->oldest)
		x->oldest = f;
}

static void evict(struct flow_index *x, struct flow *f)
{
	if (!f)
		return;
	chain_unlink(x, f);
	cid_unlink(x, f);
	list_unlink(x, f);
	proc_entry_unref(x->procs, f->proc);
	domain_free(f->domain);
	f->hnext = x->free_slots;
	x->free_slots = f;
	x->n--;
	x->evictions++;
}

/* A zeroed slot; x->n < x->max, so one is free. */
static struct flow *slot_take(struct flow_index *x)
{
	struct flow *f = x->free_slots;

	if (f)
		x->free_slots = f->hnext;
	else if (x->slots_used < x->max) {
		size_t c = x->slots_used / SLOT_CHUNK;

		if (!x->chunks[c]) {
			x->chunks[c] = malloc(SLOT_CHUNK * sizeof(struct flow));
			if (!x->chunks[c])
				return NULL;
		}
		f = &x->chunks[c][x->slots_used++ % SLOT_CHUNK];
	} else
		return NULL;
	memset(f, 0, sizeof(*f));
	return f;
}

/* A new variant of k in its bucket: room made first, by the key's least
 * recently seen variant when it has FLOW_VARIANTS_MAX, else by the index's
 * when full. */
static struct flow *variant_new(struct flow_index *x, const struct flow_key *k, __u32 h, size_t n_variants,
				struct flow *oldest_variant, double now)
{
	struct flow *f, **head;

	if (n_variants >= FLOW_VARIANTS_MAX)
		evict(x, oldest_variant);
	else if (x->n >= x->max)
		evict(x, x->oldest);
	f = slot_take(x);
	if (!f)
		return NULL;
	f->key = *k;
	f->hash = h;
	f->first_seen = now;
	head = &x->buckets[h & (x->n_buckets - 1)];
	f->hnext = *head;
	*head = f;
	x->n++;
	return f;
}

struct flow *flow_index_add(struct flow_index *x, const struct connpid_event *e, double now)
{
	struct flow *f = NULL, *same = NULL, *oldest = NULL;
	struct proc_entry *proc;
	struct flow_key k;
	size_t n = 0;
	__u32 h;

	flow_key_from_event(e, &k);
	h = hash_key(x, &k);
	proc = proc_cache_get(x->procs, (pid_t)e->pid, boottime_ns_to_ticks(e->start_boottime_ns));
	/* bounded: a key has at most FLOW_VARIANTS_MAX variants */
	for (struct flow *v = x->buckets[h & (x->n_buckets - 1)]; v; v = v->hnext) {
		if (!same_key(v, &k, h))
			continue;
		n++;
		if (!same && same_identity(v, e))
			same = v;
		if (!oldest || v->last_seen < oldest->last_seen)
			oldest = v;
	}
	if (same) {
		/* The same flow, maybe a new owner: the newest event wins. */
		f = same;
		proc_entry_unref(x->procs, f->proc);
		list_unlink(x, f);
		cid_unlink(x, f); /* the source may differ now */
		if (f->ev.pid != e->pid || f->ev.socket_cookie != e->socket_cookie) {
			f->first_seen = now;
			flow_set_domain(f, NULL); /* another flow now: resolved anew */
		}
	} else {
		f = variant_new(x, &k, h, n, oldest, now);
		if (!f) {
			proc_entry_unref(x->procs, proc);
			return NULL;
		}
	}
	f->ev = *e;
	f->proc = proc;
	f->last_seen = now;
	list_push_newest(x, f);
	cid_link(x, f);
	return f;
}

struct flow *flow_index_find(struct flow_index *x, const struct flow_key *k, const struct lookup_scope *scope,
			     __u32 pid)
{
	struct flow *best = NULL;
	bool best_has_pid = false;
	__u32 h = hash_key(x, k);

	for (struct flow *f = x->buckets[h & (x->n_buckets - 1)]; f; f = f->hnext) {
		bool has_pid;

		if (!same_key(f, k, h) || !flow_in_scope(f, scope))
			continue;
		has_pid = pid && f->ev.pid == pid;
		if (!best || (has_pid && !best_has_pid) ||
		    (has_pid == best_has_pid && f->last_seen > best->last_seen)) {
			best = f;
			best_has_pid = has_pid;
		}
	}
	return best;
}

static struct flow *variant_from(struct flow *f, const struct flow_key *k, __u32 h)
{
	while (f && !same_key(f, k, h))
		f = f->hnext;
	return f;
}

struct flow *flow_index_first(struct flow_index *x, const struct flow_key *k)
{
	__u32 h = hash_key(x, k);

	return variant_from(x->buckets[h & (x->n_buckets - 1)], k, h);
}

struct flow *flow_next_variant(const struct flow *f)
{
	return variant_from(f->hnext, &f->key, f->hash);
}

struct flow *flow_index_newest(struct flow_index *x)
{
	return x->newest;
}

size_t flow_index_size(const struct flow_index *x)
{
	return x->n;
}

size_t flow_index_capacity(const struct flow_index *x)
{
	return x->max;
}

__u64 flow_index_evictions(const struct flow_index *x)
{
	return x->evictions;
}

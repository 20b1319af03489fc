// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "flow-index.h"
#include "macro.h"
#include "procinfo.h"

#define WHO_BUCKETS 4096

/* hashed and compared whole: no padding with unknown bytes in it */
_Static_assert(sizeof(struct flow_who_key) == 184, "flow_who_key has padding");
/* the budget of issue 15: a full default index in 32 MB of RSS */
_Static_assert(sizeof(struct flow) == 96, "struct flow grew");

/* A flow's place in the Community ID table: kept beside the flows, not
 * in them, as few deployments ever look a flow up by it. */
struct cid_slot {
	__u32 hash;
	__u32 next;   /* slot + 1; 0: end of chain */
	bool linked;  /* false: unknown source, or not linked */
};

struct flow_index {
	/* All flows, in one anonymous mapping of the capacity: the kernel
	 * gives pages as slots are first used (no allocator header per flow,
	 * no chunk table), and offsets between flows are whole slots.
	 * Evicted slots are reused (free list via hnext). */
	struct flow *slots;
	size_t map_len;
	size_t slots_used;  /* never-used slots start here */
	struct flow *free_slots;
	__u32 *buckets;     /* slot + 1; 0: empty */
	size_t n_buckets;   /* power of two */
	size_t n;
	size_t max;
	struct flow *newest, *oldest;
	struct proc_cache *procs;
	struct htable whos; /* struct flow_who, by content */
	__u64 evictions;
	/* by Community ID: NULL until a lookup by it asked */
	__u32 *cid_buckets;
	struct cid_slot *cid;  /* per slot */
	__u16 cid_seed;
	__u64 cid_key;      /* random: nobody can aim flows at one bucket */
	__u64 key;          /* the same for buckets */
};

static __u32 slot_of(const struct flow_index *x, const struct flow *f)
{
	return (__u32)(f - x->slots);
}

/* A bucket's or a chain's reference: slot + 1, 0 for none. */
static struct flow *flow_at(const struct flow_index *x, __u32 ref)
{
	return ref ? &x->slots[ref - 1] : NULL;
}

static __u32 ref_of(const struct flow_index *x, const struct flow *f)
{
	return f ? slot_of(x, f) + 1 : 0;
}

static __s32 off_to(const struct flow *from, const struct flow *to)
{
	return to ? (__s32)(to - from) : 0;
}

void flow_domain_free(struct flow_domain *d)
{
	if (!d)
		return;
	free(d->name);
	free(d->chain);
	free(d);
}

void flow_set_domain(struct flow *f, struct flow_domain *d)
{
	flow_domain_free(f->domain);
	f->domain = d;
}

/* A reference to the record for e's per-process part, made on first
 * sight (with the process's proc cache reference). NULL: out of memory. */
static struct flow_who *who_get(struct flow_index *x, const struct connpid_event *e)
{
	struct flow_who_key k;
	struct flow_who *w;
	uint64_t h;

	flow_who_key_from_event(e, &k);
	h = htable_hash(&x->whos, &k, sizeof(k));
	HTABLE_FOREACH_HASH(n, &x->whos, h) {
		w = hnode_entry(n, struct flow_who, node);
		if (w->hash == (__u32)h && memcmp(&w->k, &k, sizeof(k)) == 0) {
			w->refs++;
			return w;
		}
	}
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->k = k;
	w->refs = 1;
	w->hash = (__u32)h;
	w->proc = proc_cache_get(x->procs, (pid_t)e->pid, boottime_ns_to_ticks(e->start_boottime_ns));
	htable_add(&x->whos, &w->node, h);
	return w;
}

static void who_unref(struct flow_index *x, struct flow_who *w)
{
	if (!w || --w->refs > 0)
		return;
	/* the low bits pick the bucket: WHO_BUCKETS fits in 32 */
	(void)htable_remove(&x->whos, &w->node, w->hash);
	proc_entry_unref(x->procs, w->proc);
	free(w);
}

size_t flow_index_whos(const struct flow_index *x)
{
	return x->whos.n;
}

void flow_to_event(const struct flow *f, struct connpid_event *ret)
{
	const struct flow_who_key *k = f->who ? &f->who->k : NULL;

	memset(ret, 0, sizeof(*ret));
	ret->socket_cookie = f->ev.socket_cookie;
	ret->cgroup_id = f->ev.cgroup_id;
	ret->pid = f->ev.pid;
	ret->source = f->ev.source;
	ret->flags = f->ev.flags;
	ret->family = f->key.family;
	ret->protocol = f->key.protocol;
	ret->src_port = f->key.src_port;
	ret->dst_port = f->key.dst_port;
	memcpy(ret->dst_ip, f->key.dst_ip, sizeof(ret->dst_ip));
	if (!k)
		return;
	ret->start_boottime_ns = k->start_boottime_ns;
	ret->netns_ino = k->netns_ino;
	ret->creator_start_boottime_ns = k->creator_start_boottime_ns;
	ret->tid = k->tid;
	ret->prev_pid = k->prev_pid;
	ret->uid = k->uid;
	ret->gid = k->gid;
	ret->creator_pid = k->creator_pid;
	memcpy(ret->src_ip, k->src_ip, sizeof(ret->src_ip));
	memcpy(ret->comm, k->comm, sizeof(ret->comm));
	memcpy(ret->creator_comm, k->creator_comm, sizeof(ret->creator_comm));
	memcpy(ret->ancestor_pid, k->ancestor_pid, sizeof(ret->ancestor_pid));
	memcpy(ret->ancestor_comm, k->ancestor_comm, sizeof(ret->ancestor_comm));
}

int flow_index_new(size_t max_flows, struct proc_cache *procs, struct flow_index **ret)
{
	struct flow_index *x;

	/* slot offsets are __s32 */
	if (max_flows < 1 || max_flows > INT32_MAX / 2)
		return -EINVAL;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->n_buckets = 1024;
	while (x->n_buckets < max_flows)
		x->n_buckets <<= 1;
	x->buckets = calloc(x->n_buckets, sizeof(*x->buckets));
	x->map_len = max_flows * sizeof(struct flow);
	x->slots = mmap(NULL, x->map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (x->slots == MAP_FAILED)
		x->slots = NULL;
	if (!x->buckets || !x->slots || htable_init(&x->whos, WHO_BUCKETS) < 0) {
		free(x->buckets);
		if (x->slots)
			munmap(x->slots, x->map_len);
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
		next = flow_older(f);
		who_unref(x, f->who);
		flow_domain_free(f->domain);
	}
	htable_done(&x->whos);
	munmap(x->slots, x->map_len);
	free(x->buckets);
	free(x->cid_buckets);
	free(x->cid);
	free(x);
	return NULL;
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
	const struct flow_key *k = &f->key;
	struct community_id_flow c = {
		.family = k->family, .src_port = k->src_port, .dst_port = k->dst_port, .protocol = k->protocol,
	};

	if (f->who)
		memcpy(c.src_ip, f->who->k.src_ip, sizeof(c.src_ip));
	memcpy(c.dst_ip, k->dst_ip, sizeof(c.dst_ip));
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
	struct cid_slot *c;
	__u32 *pp, ref = ref_of(x, f);

	if (!x->cid_buckets || !x->cid[ref - 1].linked)
		return;
	c = &x->cid[ref - 1];
	for (pp = &x->cid_buckets[c->hash & (x->n_buckets - 1)]; *pp; pp = &x->cid[*pp - 1].next)
		if (*pp == ref) {
			*pp = c->next;
			break;
		}
	c->next = 0;
	c->linked = false;
}

static void cid_link(struct flow_index *x, struct flow *f)
{
	char id[COMMUNITY_ID_LEN];
	struct cid_slot *c;
	__u32 *head;

	if (!x->cid_buckets || flow_community_id(f, x->cid_seed, id) < 0)
		return;
	c = &x->cid[slot_of(x, f)];
	c->linked = true;
	c->hash = hash_cid(x, id);
	head = &x->cid_buckets[c->hash & (x->n_buckets - 1)];
	c->next = *head;
	*head = ref_of(x, f);
}

/* The second table, for this seed: every flow hashed once. */
static int cid_build(struct flow_index *x, __u16 seed)
{
	free(x->cid_buckets);
	x->cid_buckets = calloc(x->n_buckets, sizeof(*x->cid_buckets));
	if (!x->cid_buckets)
		return -ENOMEM;
	free(x->cid);
	x->cid = calloc(x->max, sizeof(*x->cid));
	if (!x->cid) {
		free(x->cid_buckets);
		x->cid_buckets = NULL;
		return -ENOMEM;
	}
	if (getrandom(&x->cid_key, sizeof(x->cid_key), GRND_NONBLOCK) != sizeof(x->cid_key))
		x->cid_key = (__u64)(uintptr_t)x ^ 0x9e3779b97f4a7c15ULL;
	x->cid_seed = seed;
	for (struct flow *f = x->oldest; f; f = flow_link(f, f->newer))
		cid_link(x, f);
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
	for (__u32 ref = x->cid_buckets[h & (x->n_buckets - 1)]; ref; ref = x->cid[ref - 1].next) {
		struct flow *f = flow_at(x, ref);
		char fid[COMMUNITY_ID_LEN];

		if (x->cid[ref - 1].hash == h && (!best || f->last_seen > best->last_seen) &&
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
	return f->who->k.netns_ino == e->netns_ino && memcmp(f->who->k.src_ip, e->src_ip, addr_len(e->family)) == 0;
}

bool flow_in_scope(const struct flow *f, const struct lookup_scope *scope)
{
	if (!scope)
		return true;
	if (scope->netns && f->who->k.netns_ino != scope->netns)
		return false;
	return !scope->has_src || memcmp(f->who->k.src_ip, scope->src_ip, addr_len(f->key.family)) == 0;
}

static void chain_unlink(struct flow_index *x, struct flow *f)
{
	__u32 *bucket = &x->buckets[f->hash & (x->n_buckets - 1)];
	struct flow *prev = NULL, *v = flow_at(x, *bucket), *next = flow_link(f, f->hnext);

	while (v && v != f) {
		prev = v;
		v = flow_link(v, v->hnext);
	}
	if (v && prev)
		prev->hnext = off_to(prev, next);
	else if (v)
		*bucket = ref_of(x, next);
	f->hnext = 0;
}

static void list_unlink(struct flow_index *x, struct flow *f)
{
	struct flow *newer = flow_link(f, f->newer), *older = flow_link(f, f->older);

	if (newer)
		newer->older = off_to(newer, older);
	else
		x->newest = older;
	if (older)
		older->newer = off_to(older, newer);
	else
		x->oldest = newer;
	f->newer = f->older = 0;
}

static void list_push_newest(struct flow_index *x, struct flow *f)
{
	f->older = off_to(f, x->newest);
	f->newer = 0;
	if (x->newest)
		x->newest->newer = off_to(x->newest, f);
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
	who_unref(x, f->who);
	flow_domain_free(f->domain);
	f->hnext = off_to(f, x->free_slots);
	x->free_slots = f;
	x->n--;
	x->evictions++;
}

/* A zeroed slot; x->n < x->max, so one is free. */
static struct flow *slot_take(struct flow_index *x)
{
	struct flow *f = x->free_slots;

	if (f)
		x->free_slots = flow_link(f, f->hnext);
	else if (x->slots_used < x->max)
		f = &x->slots[x->slots_used++];
	else
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
	struct flow *f;
	__u32 *head;

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
	f->hnext = off_to(f, flow_at(x, *head));
	*head = ref_of(x, f);
	x->n++;
	return f;
}

struct flow *flow_index_add(struct flow_index *x, const struct connpid_event *e, double now)
{
	struct flow *f = NULL, *same = NULL, *oldest = NULL;
	struct flow_who *who;
	struct flow_key k;
	size_t n = 0;
	__u32 h;

	flow_key_from_event(e, &k);
	h = hash_key(x, &k);
	who = who_get(x, e);
	if (!who)
		return NULL;
	/* bounded: a key has at most FLOW_VARIANTS_MAX variants */
	for (struct flow *v = flow_at(x, x->buckets[h & (x->n_buckets - 1)]); v; v = flow_link(v, v->hnext)) {
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
		who_unref(x, f->who);
		list_unlink(x, f);
		cid_unlink(x, f); /* the source may differ now */
		if (f->ev.pid != e->pid || f->ev.socket_cookie != e->socket_cookie) {
			f->first_seen = now;
			flow_set_domain(f, NULL); /* another flow now: resolved anew */
		}
	} else {
		f = variant_new(x, &k, h, n, oldest, now);
		if (!f) {
			who_unref(x, who);
			return NULL;
		}
	}
	flow_event_from_event(e, &f->ev);
	f->who = who;
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

	for (struct flow *f = flow_at(x, x->buckets[h & (x->n_buckets - 1)]); f; f = flow_link(f, f->hnext)) {
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
		f = flow_link(f, f->hnext);
	return f;
}

struct flow *flow_index_first(struct flow_index *x, const struct flow_key *k)
{
	__u32 h = hash_key(x, k);

	return variant_from(flow_at(x, x->buckets[h & (x->n_buckets - 1)]), k, h);
}

struct flow *flow_first_variant_of(struct flow_index *x, const struct flow *f)
{
	return variant_from(flow_at(x, x->buckets[f->hash & (x->n_buckets - 1)]), &f->key, f->hash);
}

struct flow *flow_next_variant(const struct flow *f)
{
	return variant_from(flow_link(f, f->hnext), &f->key, f->hash);
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

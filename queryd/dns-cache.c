// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns-cache.h"
#include "htable.h"
#include "macro.h"

#define DNS_BUCKETS 4096
#define DNS_BYTES_PER_ENTRY 1024
#define DNS_ASKER_MEMO 256

struct dns_answer {
	char *name;
	char *chain;
	enum dns_origin origin;
	uint32_t ttl;
	double seen;
	double expires;
	__u32 uid;             /* who asked */
	__u64 cgroup_id;
};

/* Per process (pid != 0): one answer. Global (pid 0): up to
 * DNS_GLOBAL_SLOTS answers, one per asker (uid, cgroup). */
struct dns_entry {
	struct hnode node;
	struct dns_entry *newer, *older;
	__u32 pid;
	__u64 start_ticks;
	int family;
	uint8_t addr[16];
	size_t n_answers;
	struct dns_answer answers[DNS_GLOBAL_SLOTS];
};

struct dns_cache {
	struct htable table; /* dns_entry by (pid, start, family, addr) */
	struct dns_entry *newest, *oldest;
	size_t max;
	size_t bytes, max_bytes;
	struct dns_asker askers[DNS_ASKER_MEMO];
};

int dns_cache_new(size_t max_entries, struct dns_cache **ret)
{
	struct dns_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (htable_init(&c->table, DNS_BUCKETS) < 0) {
		free(c);
		return -ENOMEM;
	}
	c->max = max_entries ? max_entries : 16384;
	c->max_bytes = c->max * DNS_BYTES_PER_ENTRY;
	*ret = c;
	return 0;
}

static size_t str_bytes(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static void answer_clear(struct dns_cache *c, struct dns_answer *a)
{
	c->bytes -= str_bytes(a->name) + str_bytes(a->chain);
	free(a->name);
	free(a->chain);
	*a = (struct dns_answer) {};
}

static void entry_free(struct dns_cache *c, struct dns_entry *e)
{
	for (size_t i = 0; i < e->n_answers; i++)
		answer_clear(c, &e->answers[i]);
	c->bytes -= sizeof(*e);
	free(e);
}

struct dns_cache *dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return NULL;
	for (struct dns_entry *e = c->newest, *next; e; e = next) {
		next = e->older;
		entry_free(c, e);
	}
	htable_done(&c->table);
	free(c);
	return NULL;
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static uint64_t hash_of(const struct dns_cache *c, __u32 pid, __u64 start, int family, const void *addr)
{
	struct {
		__u64 start;
		__u32 pid;
		__u32 family;
		uint8_t addr[16];
	} k = { .start = start, .pid = pid, .family = (__u32)family };

	memcpy(k.addr, addr, addr_len(family));
	return htable_hash(&c->table, &k, sizeof(k));
}

static struct dns_entry *find(const struct dns_cache *c, __u32 pid, __u64 start, int family, const void *addr)
{
	HTABLE_FOREACH_HASH(n, &c->table, hash_of(c, pid, start, family, addr)) {
		struct dns_entry *e = hnode_entry(n, struct dns_entry, node);

		if (e->pid == pid && e->start_ticks == start && e->family == family &&
		    memcmp(e->addr, addr, addr_len(family)) == 0)
			return e;
	}
	return NULL;
}

static void list_unlink(struct dns_cache *c, struct dns_entry *e)
{
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	e->newer = e->older = NULL;
}

static void list_push_newest(struct dns_cache *c, struct dns_entry *e)
{
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	c->newest = e;
	if (!c->oldest)
		c->oldest = e;
}

static void entry_drop(struct dns_cache *c, struct dns_entry *e)
{
	(void)htable_remove(&c->table, &e->node, hash_of(c, e->pid, e->start_ticks, e->family, e->addr));
	list_unlink(c, e);
	entry_free(c, e);
}

/* The entry for this key, made newest; created empty when absent. */
static struct dns_entry *entry_touch(struct dns_cache *c, __u32 pid, __u64 start, int family, const void *addr)
{
	struct dns_entry *e = find(c, pid, start, family, addr);

	if (e) {
		list_unlink(c, e);
		list_push_newest(c, e);
		return e;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->pid = pid;
	e->start_ticks = start;
	e->family = family;
	memcpy(e->addr, addr, addr_len(family));
	htable_add(&c->table, &e->node, hash_of(c, pid, start, family, addr));
	list_push_newest(c, e);
	c->bytes += sizeof(*e);
	return e;
}

/* Oldest out until both bounds hold; never the entry just written. */
static void enforce_bounds(struct dns_cache *c, const struct dns_entry *keep)
{
	while ((c->table.n > c->max || c->bytes > c->max_bytes) && c->oldest && c->oldest != keep)
		entry_drop(c, c->oldest);
}

/* Expired answers go first, then the least recently written. */
static bool staler(const struct dns_answer *a, const struct dns_answer *b, double now)
{
	bool ea = now > a->expires, eb = now > b->expires;

	return ea != eb ? ea : a->seen < b->seen;
}

/* Which answer of a global entry this asker writes: its own; a free one;
 * its uid's oldest once the uid holds its share; else the stalest. */
static struct dns_answer *global_slot(struct dns_entry *e, const struct dns_asker *who, double now,
				      bool *ret_own)
{
	struct dns_answer *oldest = NULL, *oldest_mine = NULL;
	size_t mine = 0;

	*ret_own = false;
	for (size_t i = 0; i < e->n_answers; i++) {
		struct dns_answer *a = &e->answers[i];

		if (a->uid == who->uid && a->cgroup_id == who->cgroup_id) {
			*ret_own = true;
			return a;
		}
		if (a->uid == who->uid) {
			mine++;
			if (!oldest_mine || a->seen < oldest_mine->seen)
				oldest_mine = a;
		}
		if (!oldest || staler(a, oldest, now))
			oldest = a;
	}
	if (e->n_answers < DNS_GLOBAL_SLOTS)
		return &e->answers[e->n_answers++];
	if (mine >= DNS_SLOTS_PER_UID)
		return oldest_mine;
	return oldest;
}

static int answer_set(struct dns_cache *c, struct dns_answer *a, const struct dns_asker *who,
		      const char *name, const char *chain, uint32_t ttl, enum dns_origin origin, double now)
{
	uint32_t keep = ttl < DNS_TTL_FLOOR ? DNS_TTL_FLOOR : ttl > DNS_TTL_CEILING ? DNS_TTL_CEILING : ttl;
	_cleanup_free_ char *n = strdup(name), *ch = chain ? strdup(chain) : NULL;

	if (!n || (chain && !ch))
		return -ENOMEM;
	answer_clear(c, a);
	a->name = TAKE_PTR(n);
	a->chain = TAKE_PTR(ch);
	c->bytes += str_bytes(a->name) + str_bytes(a->chain);
	a->origin = origin;
	a->ttl = ttl;
	a->seen = now;
	a->expires = now + keep;
	a->uid = who->uid;
	a->cgroup_id = who->cgroup_id;
	return 0;
}

/* getaddrinfo() echoing what a packet already said adds nothing, and the
 * packet knows the TTL and the CNAME chain: keep it. */
static bool is_echo(const struct dns_answer *a, const char *name, enum dns_origin origin, double now)
{
	return origin == DNS_ORIGIN_GETADDRINFO && a->origin == DNS_ORIGIN_PACKET && a->name &&
	       now <= a->expires && streq(a->name, name);
}

static int put(struct dns_cache *c, const struct dns_asker *who, bool global, int family, const void *addr,
	       const char *name, const char *chain, uint32_t ttl, enum dns_origin origin, double now)
{
	struct dns_entry *e;
	struct dns_answer *a;
	bool own = false;
	int r;

	if (global)
		e = entry_touch(c, 0, 0, family, addr);
	else
		e = entry_touch(c, who->pid, who->start_ticks, family, addr);
	if (!e)
		return -ENOMEM;
	if (global) {
		a = global_slot(e, who, now, &own);
	} else {
		own = e->n_answers > 0;
		a = &e->answers[0];
		e->n_answers = 1;
	}
	if (!(own && is_echo(a, name, origin, now))) {
		r = answer_set(c, a, who, name, chain, ttl, origin, now);
		if (r < 0 && !a->name) {
			/* a fresh slot left empty: give it back */
			*a = e->answers[--e->n_answers];
			e->answers[e->n_answers] = (struct dns_answer) {};
			if (e->n_answers == 0)
				entry_drop(c, e);
			return r;
		}
		if (r < 0)
			return r;
	}
	enforce_bounds(c, e);
	return 0;
}

int dns_cache_add(struct dns_cache *c, const struct dns_asker *who, int family, const void *addr,
		  const char *name, const char *chain, uint32_t ttl, enum dns_origin origin, double now)
{
	int r = 0;

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	if (who->pid && who->start_ticks)
		r = put(c, who, false, family, addr, name, chain, ttl, origin, now);
	if (r >= 0)
		r = put(c, who, true, family, addr, name, chain, ttl, origin, now);
	return r;
}

static void fill(const struct dns_answer *a, enum dns_asked_by by, double now, struct dns_hit *ret)
{
	ret->name = a->name;
	ret->chain = a->chain;
	ret->origin = a->origin;
	ret->same_process = by == DNS_ASKED_SAME_PROCESS;
	ret->asked_by = by;
	ret->age = now - a->seen;
	ret->ttl = a->ttl;
}

/* 0 best: same uid and cgroup, then same uid, same cgroup, anyone. */
static int rank(const struct dns_answer *a, const struct dns_asker *who)
{
	bool uid = who->uid != DNS_UID_UNKNOWN && a->uid == who->uid;
	bool cg = who->cgroup_id != 0 && a->cgroup_id == who->cgroup_id;

	return uid && cg ? 0 : uid ? 1 : cg ? 2 : 3;
}

bool dns_cache_find(struct dns_cache *c, const struct dns_asker *who, int family, const void *addr,
		    double now, struct dns_hit *ret)
{
	const struct dns_entry *e;
	const struct dns_answer *best = NULL;
	int best_rank = 4;

	if (family != AF_INET && family != AF_INET6)
		return false;
	if (who->pid && who->start_ticks) {
		e = find(c, who->pid, who->start_ticks, family, addr);
		if (e && e->n_answers && now <= e->answers[0].expires) {
			fill(&e->answers[0], DNS_ASKED_SAME_PROCESS, now, ret);
			return true;
		}
	}
	e = find(c, 0, 0, family, addr);
	for (size_t i = 0; e && i < e->n_answers; i++) {
		const struct dns_answer *a = &e->answers[i];
		int k = rank(a, who);

		if (now > a->expires)
			continue;
		if (k < best_rank || (k == best_rank && a->seen > best->seen)) {
			best = a;
			best_rank = k;
		}
	}
	if (!best)
		return false;
	fill(best, best_rank <= 1 ? DNS_ASKED_SAME_UID : best_rank == 2 ? DNS_ASKED_SAME_CGROUP : DNS_ASKED_OTHER,
	     now, ret);
	return true;
}

size_t dns_cache_size(const struct dns_cache *c)
{
	return c->table.n;
}

size_t dns_cache_bytes(const struct dns_cache *c)
{
	return c->bytes;
}

static size_t asker_index(__u32 pid, __u64 start)
{
	return (size_t)((pid ^ start * 0x9E3779B97F4A7C15ULL) % DNS_ASKER_MEMO);
}

bool dns_cache_asker_get(struct dns_cache *c, __u32 pid, __u64 start_ticks, struct dns_asker *ret)
{
	const struct dns_asker *a = &c->askers[asker_index(pid, start_ticks)];

	if (!pid || a->pid != pid || a->start_ticks != start_ticks)
		return false;
	*ret = *a;
	return true;
}

void dns_cache_asker_put(struct dns_cache *c, const struct dns_asker *a)
{
	if (a->pid && a->start_ticks)
		c->askers[asker_index(a->pid, a->start_ticks)] = *a;
}

// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "dns-cache.h"

#define DNS_BUCKETS 4096

struct dns_entry {
	struct dns_entry *hnext;
	struct dns_entry *newer, *older;
	__u32 pid;             /* 0: global */
	int family;
	uint8_t addr[16];
	char *name;
	char *chain;
	enum dns_origin origin;
	uint32_t ttl;
	double seen;
	double expires;
};

struct dns_cache {
	struct dns_entry *buckets[DNS_BUCKETS];
	struct dns_entry *newest, *oldest;
	size_t n, max;
};

int dns_cache_new(size_t max_entries, struct dns_cache **ret)
{
	struct dns_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->max = max_entries ? max_entries : 16384;
	*ret = c;
	return 0;
}

static void entry_free(struct dns_entry *e)
{
	free(e->name);
	free(e->chain);
	free(e);
}

struct dns_cache *dns_cache_free(struct dns_cache *c)
{
	if (!c)
		return NULL;
	for (struct dns_entry *e = c->newest, *next; e; e = next) {
		next = e->older;
		entry_free(e);
	}
	free(c);
	return NULL;
}

static size_t addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

static size_t bucket_of(__u32 pid, int family, const void *addr)
{
	const uint8_t *p = addr;
	uint64_t h = 0xcbf29ce484222325ULL ^ pid;

	for (size_t i = 0; i < addr_len(family); i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return (size_t)(h ^ (h >> 31)) % DNS_BUCKETS;
}

static struct dns_entry **slot_of(struct dns_cache *c, __u32 pid, int family, const void *addr)
{
	struct dns_entry **pp = &c->buckets[bucket_of(pid, family, addr)];

	while (*pp && ((*pp)->pid != pid || (*pp)->family != family ||
		       memcmp((*pp)->addr, addr, addr_len(family)) != 0))
		pp = &(*pp)->hnext;
	return pp;
}

static void unlink_entry(struct dns_cache *c, struct dns_entry *e)
{
	struct dns_entry **pp = slot_of(c, e->pid, e->family, e->addr);

	if (*pp == e)
		*pp = e->hnext;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->newest = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->oldest = e->newer;
	c->n--;
}

static int put(struct dns_cache *c, __u32 pid, int family, const void *addr, const char *name,
	       const char *chain, uint32_t ttl, enum dns_origin origin, double now)
{
	struct dns_entry **pp = slot_of(c, pid, family, addr), *e = *pp;
	uint32_t keep = ttl < DNS_TTL_FLOOR ? DNS_TTL_FLOOR : ttl > DNS_TTL_CEILING ? DNS_TTL_CEILING : ttl;

	if (e) {
		/* getaddrinfo() echoing what a packet already said adds nothing,
		 * and the packet knows the TTL and the CNAME chain: keep it.
		 * Otherwise the newest answer wins. */
		if (origin == DNS_ORIGIN_GETADDRINFO && e->origin == DNS_ORIGIN_PACKET &&
		    now <= e->expires && strcmp(e->name, name) == 0)
			return 0;
		unlink_entry(c, e);
		entry_free(e);
	}
	while (c->n >= c->max && c->oldest) {
		struct dns_entry *old = c->oldest;

		unlink_entry(c, old);
		entry_free(old);
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->pid = pid;
	e->family = family;
	memcpy(e->addr, addr, addr_len(family));
	e->name = strdup(name);
	e->chain = chain ? strdup(chain) : NULL;
	if (!e->name || (chain && !e->chain)) {
		entry_free(e);
		return -ENOMEM;
	}
	e->origin = origin;
	e->ttl = ttl;
	e->seen = now;
	e->expires = now + keep;
	pp = slot_of(c, pid, family, addr);
	e->hnext = *pp;
	*pp = e;
	e->older = c->newest;
	if (c->newest)
		c->newest->newer = e;
	c->newest = e;
	if (!c->oldest)
		c->oldest = e;
	c->n++;
	return 0;
}

int dns_cache_add(struct dns_cache *c, __u32 pid, int family, const void *addr, const char *name,
		  const char *chain, uint32_t ttl, enum dns_origin origin, double now)
{
	int r = 0;

	if (family != AF_INET && family != AF_INET6)
		return -EAFNOSUPPORT;
	if (pid)
		r = put(c, pid, family, addr, name, chain, ttl, origin, now);
	if (r >= 0)
		r = put(c, 0, family, addr, name, chain, ttl, origin, now);
	return r;
}

static bool fill(const struct dns_entry *e, bool same, double now, struct dns_hit *ret)
{
	if (!e || now > e->expires)
		return false;
	ret->name = e->name;
	ret->chain = e->chain;
	ret->origin = e->origin;
	ret->same_process = same;
	ret->age = now - e->seen;
	ret->ttl = e->ttl;
	return true;
}

bool dns_cache_find(struct dns_cache *c, __u32 pid, int family, const void *addr, double now,
		    struct dns_hit *ret)
{
	if (family != AF_INET && family != AF_INET6)
		return false;
	if (pid && fill(*slot_of(c, pid, family, addr), true, now, ret))
		return true;
	return fill(*slot_of(c, 0, family, addr), false, now, ret);
}

size_t dns_cache_size(const struct dns_cache *c)
{
	return c->n;
}

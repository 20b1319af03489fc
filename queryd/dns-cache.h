/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * address -> the name it was resolved from, per process and globally,
 * honouring TTLs between a floor and a ceiling, bounded (oldest first
 * out). Per process comes first: two processes resolving different names
 * to one shared IP each get their own name.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#define DNS_TTL_FLOOR 60
#define DNS_TTL_CEILING (6 * 3600)

enum dns_origin {
	DNS_ORIGIN_PACKET = 1,
	DNS_ORIGIN_GETADDRINFO = 2,
};

struct dns_hit {
	const char *name;     /* what the process asked for */
	const char *chain;    /* "a.example -> b.example -> c.example" or NULL */
	enum dns_origin origin;
	bool same_process;
	double age;           /* seconds since the answer */
	uint32_t ttl;         /* as the record said */
};

struct dns_cache;

int dns_cache_new(size_t max_entries, struct dns_cache **ret);
struct dns_cache *dns_cache_free(struct dns_cache *c);

/* pid 0: unknown asker, global only. addr: network order, 4 or 16 bytes. */
int dns_cache_add(struct dns_cache *c, __u32 pid, int family, const void *addr, const char *name,
		  const char *chain, uint32_t ttl, enum dns_origin origin, double now);
/* The hit's strings live until the next add. */
bool dns_cache_find(struct dns_cache *c, __u32 pid, int family, const void *addr, double now,
		    struct dns_hit *ret);
size_t dns_cache_size(const struct dns_cache *c);

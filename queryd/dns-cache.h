/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * address -> the name it was resolved from, per process and globally,
 * honouring TTLs between a floor and a ceiling, bounded (oldest first
 * out, by entries and by bytes). Per process comes first: two processes
 * resolving different names to one shared IP each get their own name.
 *
 * A process is its pid AND its start time: a reused pid is another
 * process and inherits nothing. The global cache keeps, per address, a
 * few answers with who asked (uid, cgroup); a lookup prefers the name
 * asked by the same uid, then by the same cgroup, and says which it got,
 * so a name from someone else's query is never passed off as one's own.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#define DNS_TTL_FLOOR 60
#define DNS_TTL_CEILING (6 * 3600)
/* Answers kept per address in the global cache, and at most this many
 * of them from one uid, so no single user can push the others out. */
#define DNS_GLOBAL_SLOTS 4
#define DNS_SLOTS_PER_UID 2
#define DNS_UID_UNKNOWN UINT32_MAX

enum dns_origin {
	DNS_ORIGIN_PACKET = 1,
	DNS_ORIGIN_GETADDRINFO = 2,
};

/* Whose query the name came from, seen from the process looking. */
enum dns_asked_by {
	DNS_ASKED_SAME_PROCESS = 0,
	DNS_ASKED_SAME_UID,
	DNS_ASKED_SAME_CGROUP,
	DNS_ASKED_OTHER,
};

/* A process, as the kernel named it: pid 0 or start 0 is unknown (the
 * global cache only); uid DNS_UID_UNKNOWN and cgroup 0 are unknown too. */
struct dns_asker {
	__u32 pid;
	__u64 start_ticks;   /* /proc/PID/stat field 22 */
	__u32 uid;
	__u64 cgroup_id;
};

struct dns_hit {
	const char *name;     /* what the process asked for */
	const char *chain;    /* "a.example -> b.example -> c.example" or NULL */
	enum dns_origin origin;
	bool same_process;
	enum dns_asked_by asked_by;
	double age;           /* seconds since the answer */
	uint32_t ttl;         /* as the record said */
};

struct dns_cache;

/* max_entries 0: 16384. Bytes are bounded at 1 KiB per entry on average. */
int dns_cache_new(size_t max_entries, struct dns_cache **ret);
struct dns_cache *dns_cache_free(struct dns_cache *c);

/* addr: network order, 4 or 16 bytes. */
int dns_cache_add(struct dns_cache *c, const struct dns_asker *who, int family, const void *addr,
		  const char *name, const char *chain, uint32_t ttl, enum dns_origin origin, double now);
/* The hit's strings live until the next add. */
bool dns_cache_find(struct dns_cache *c, const struct dns_asker *who, int family, const void *addr,
		    double now, struct dns_hit *ret);
size_t dns_cache_size(const struct dns_cache *c);
size_t dns_cache_bytes(const struct dns_cache *c);

/* uid and cgroup of an asker by (pid, start), remembered so /proc is read
 * once per asking process, not per answer. Fixed size, newest wins. */
bool dns_cache_asker_get(struct dns_cache *c, __u32 pid, __u64 start_ticks, struct dns_asker *ret);
void dns_cache_asker_put(struct dns_cache *c, const struct dns_asker *a);

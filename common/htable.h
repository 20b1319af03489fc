/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one hash table: chained, intrusive (a `struct hnode` inside each
 * entry, 8 bytes, no allocation per entry), a fixed number of buckets
 * chosen at init (every table here is bounded by its owner, so it never
 * resizes) and a hash keyed with random bits: what a process, a DNS server
 * or a container picks (pids, addresses, ids) cannot be aimed at one chain.
 * The owner compares keys; the table only chains.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hnode {
	struct hnode *next;
};

struct htable {
	struct hnode **buckets;
	size_t mask;     /* buckets - 1, a power of two minus one */
	uint64_t key;    /* random: seeds the hash */
	size_t n;
};

#define hnode_entry(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* At least min_buckets (rounded up to a power of two, at least 16). */
int htable_init(struct htable *t, size_t min_buckets);
/* Frees the buckets, not the entries (htable_steal_all() first). */
void htable_done(struct htable *t);

/* Keyed FNV-1a with a murmur finalizer: fast on the short keys we have. */
uint64_t htable_hash(const struct htable *t, const void *data, size_t len);

static inline struct hnode *htable_bucket(const struct htable *t, uint64_t h)
{
	return t->buckets[h & t->mask];
}

void htable_add(struct htable *t, struct hnode *n, uint64_t h);
/* false: n was not in h's chain. */
bool htable_remove(struct htable *t, struct hnode *n, uint64_t h);
/* Empties the table and hands every node over, linked through ->next. */
struct hnode *htable_steal_all(struct htable *t);

/* Every node of the chain h falls in (h from htable_hash()). */
#define HTABLE_FOREACH_HASH(n, t, h) for (struct hnode *n = htable_bucket((t), (h)); n; n = n->next)
/* Every node; the body must not add or remove. */
#define HTABLE_FOREACH(n, t)                                          \
	for (size_t n##_i = 0; n##_i <= (t)->mask; n##_i++)           \
		for (struct hnode *n = (t)->buckets[n##_i]; n; n = n->next)

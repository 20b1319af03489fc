// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "htable.h"

int htable_init(struct htable *t, size_t min_buckets)
{
	size_t n = 16;

	while (n < min_buckets && n < ((size_t)1 << 30))
		n <<= 1;
	t->buckets = calloc(n, sizeof(*t->buckets));
	if (!t->buckets)
		return -ENOMEM;
	t->mask = n - 1;
	t->n = 0;
	/* Without entropy yet (early boot), an address still differs per run. */
	if (getrandom(&t->key, sizeof(t->key), GRND_NONBLOCK) != sizeof(t->key))
		t->key = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ULL;
	return 0;
}

void htable_done(struct htable *t)
{
	free(t->buckets);
	t->buckets = NULL;
	t->mask = 0;
	t->n = 0;
}

uint64_t htable_hash(const struct htable *t, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ t->key;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ULL;
	h ^= h >> 33;
	return h;
}

void htable_add(struct htable *t, struct hnode *n, uint64_t h)
{
	struct hnode **b = &t->buckets[h & t->mask];

	n->next = *b;
	*b = n;
	t->n++;
}

bool htable_remove(struct htable *t, struct hnode *n, uint64_t h)
{
	for (struct hnode **pp = &t->buckets[h & t->mask]; *pp; pp = &(*pp)->next)
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->n--;
			return true;
		}
	return false;
}

struct hnode *htable_steal_all(struct htable *t)
{
	struct hnode *all = NULL;

	for (size_t i = 0; i <= t->mask; i++)
		while (t->buckets[i]) {
			struct hnode *n = t->buckets[i];

			t->buckets[i] = n->next;
			n->next = all;
			all = n;
		}
	t->n = 0;
	return all;
}

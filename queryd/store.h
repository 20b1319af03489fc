/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The on-disk history: every flow the daemon saw, in SQLite (WAL,
 * synchronous=NORMAL), written in batched transactions off the lookup
 * path, indexed by time and socket cookie only (an index on random
 * 4-tuples costs ~18x the ingest rate here, DESIGN.md).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <json-c/json.h>

#include "flow-index.h"

#define STORE_SCHEMA_VERSION 2

struct store;

struct store_options {
	const char *path;
	double retain_days;     /* <= 0: keep forever */
	__u64 retain_rows;      /* 0: no row limit */
	size_t max_queue;       /* rows held in memory while the disk refuses */
};

struct store_stats {
	__u64 rows_queued;
	__u64 rows_written;
	__u64 rows_dropped;     /* queue overflow while writes failed */
	__u64 write_errors;
	__u64 rows_pruned;
	__u64 transactions;
	size_t queue_len;
	bool writable;          /* last write succeeded */
	const char *last_error; /* NULL when fine */
};

/* Opens (creating or migrating) the database. A file from a newer schema
 * version is refused with -EPROTO and a message in err; never touched.
 * A path others could redirect (a symbolic link, a file not root's or
 * ours, a directory writable by group or others and not sticky, or owned
 * by another user) is refused with -EPERM, also when a later retry finds
 * it so.
 * Any other failure still gives a store: it queues and retries. */
int store_open(const struct store_options *o, struct store **ret, char *err, size_t errlen);
struct store *store_close(struct store *s);
/* False while the file cannot be opened (read-only, missing dir...):
 * rows queue and each flush tries again. */
bool store_is_open(const struct store *s);

/* Queue a flow for the next batch; never blocks, never touches the disk. */
struct cgroup_info;
void store_queue_flow(struct store *s, const struct flow *f, const struct cgroup_info *cg);
/* Write up to max_rows queued rows in one transaction. Returns rows
 * written, or negative errno (rows stay queued for a retry). */
int store_flush(struct store *s, size_t max_rows);
size_t store_queue_len(const struct store *s);
/* A DNS answer: rare enough to write at once (WAL, no fsync per commit). */
void store_add_dns(struct store *s, double ts, __u32 pid, const char *comm, const char *query,
		   const char *answers, const char *source, __u32 ttl);
/* Delete a batch of rows past retention; returns rows deleted. */
int store_prune(struct store *s, double now, size_t batch);

void store_get_stats(const struct store *s, struct store_stats *ret);

struct history_query {
	bool has_pid, has_dport, has_since, has_until, has_proto;
	__u32 pid;
	__u16 dport;
	__u8 proto;
	double since, until;
	const char *comm, *exe, *dst, *domain, *container, *unit;
	int limit;
	bool ascending;
};

/* history op: rows as FLOW-shaped JSON objects in an array. */
int store_history(struct store *s, const struct history_query *q, json_object **ret);
/* Who owned proto/dst/sport/dport at time `at` (the newest flow first seen
 * at or before it). 1 found (*ret set), 0 not found, <0 error. */
int store_lookup_at(struct store *s, __u8 proto, const char *dst, __u16 sport, __u16 dport,
		    double at, json_object **ret);

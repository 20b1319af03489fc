/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The on-disk history: every flow the daemon saw, in SQLite (WAL,
 * synchronous=NORMAL). A writer thread with its own connection writes
 * batched transactions and prunes; a reader thread with another answers
 * history questions under a time budget each. The loop only queues rows
 * and jobs and collects finished jobs: it never waits on SQLite.
 * Process, cgroup and domain details are stored once each in their own
 * tables and referred to by id (schema 3); rows are indexed by time only
 * (tests/bench/RESULTS.md has the measurements behind that choice).
 * Schema 4 adds the direction and, for accepted connections, the process
 * that listened (columns NULL for outbound rows, so those cost nothing).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <json-c/json.h>

#include "community-id.h"
#include "flow-index.h"
#include "flow-view.h"
#include "flowkey.h"
#include "lookup-scope.h"

#define STORE_SCHEMA_VERSION 4
/* Default time budget of one history query. */
#define STORE_QUERY_BUDGET_MS 2000
/* Jobs waiting for the reader past this: "busy". */
#define STORE_MAX_JOBS 32

struct store;

struct store_options {
	const char *path;
	double retain_days;     /* <= 0: keep forever */
	__u64 retain_rows;      /* 0: no row limit */
	size_t max_queue;       /* rows held in memory while the disk is behind or refuses */
	unsigned query_budget_ms; /* 0: STORE_QUERY_BUDGET_MS */
};

struct store_stats {
	__u64 rows_queued;
	__u64 rows_written;
	__u64 rows_dropped;     /* queue overflow: the disk refused or fell behind */
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

/* Queue a flow for the writer; never blocks, never touches the disk. */
struct cgroup_info;
void store_queue_flow(struct store *s, const struct flow *f, const struct cgroup_info *cg);
size_t store_queue_len(const struct store *s);
/* A DNS answer, queued like a flow. */
void store_add_dns(struct store *s, double ts, __u32 pid, const char *comm, const char *query,
		   const char *answers, const char *source, __u32 ttl);
/* Wait on the calling thread until the rows queued now are committed
 * (tests, tools): the rows waited for, 0 if none, -ETIME after timeout_ms
 * or -EIO when the writer cannot write. Never called on the loop. */
int store_flush(struct store *s, unsigned timeout_ms);
/* True once the path was found to be others' (-EPERM): give up. */
bool store_refused(struct store *s);

void store_get_stats(const struct store *s, struct store_stats *ret);

struct history_query {
	bool has_pid, has_dport, has_since, has_until, has_proto, has_direction;
	enum flow_direction direction;
	__u32 pid;
	__u64 netns;            /* 0: any */
	__u16 dport;
	__u8 proto;
	double since, until;
	char *comm, *exe, *dst, *src, *domain, *container, *unit; /* owned by the job */
	int limit;
	bool ascending;
	bool has_cursor;        /* go on after this row (in this order) */
	double cursor_ts;
	__s64 cursor_id;
};

enum store_job_kind {
	STORE_JOB_HISTORY,
	STORE_JOB_LOOKUP_AT,    /* who owned proto/dst/sport/dport at `at` */
	STORE_JOB_LOOKUP_CID,   /* the newest flow with community_id at or before `at` */
};

/* A question for the reader thread. The loop fills the query part and
 * submits; the reader fills the answer part; done() runs on the loop. */
struct store_job {
	struct store_job *next;
	enum store_job_kind kind;
	/* query */
	struct history_query q;
	__u8 proto;
	char dst[64];
	__u16 sport, dport;
	double at;
	/* LOOKUP_AT's scope: the direction, and src ("" any) and netns (0
	 * any) when the question named them */
	enum flow_direction direction;
	char src[64];
	__u64 netns;
	/* Rows carry no Community ID: it is computed from their addresses
	 * as they are read, with this seed (the daemon's). */
	__u16 seed;
	char community_id[COMMUNITY_ID_LEN]; /* LOOKUP_CID */
	__u64 want_rows;        /* rows queued when asked: wait (a little) for them */
	size_t max_bytes;       /* HISTORY: stop before this much JSON, "truncated" */
	uint64_t fields;        /* the FLOW members each row has (flow-view.h) */
	/* LOOKUP_AT for the pid the map names (map_hit; any pid, 0 too):
	 * only a row of that pid is found, with alive, pid_reused and in_map
	 * as of now */
	bool map_hit;
	__u32 map_pid;
	/* answer (reader) */
	int r;                  /* <0 errno; -ETIME: over budget */
	/* FLOW text (jw_to_object): HISTORY's array; a lookup's row or NULL */
	json_object *rows;
	bool truncated;
	double next_ts;         /* the cursor, when truncated */
	__s64 next_id;
	double elapsed;
	/* loop only: never touched by the reader */
	void (*done)(struct store_job *j);
	void *userdata;
	__u64 client_id;
	struct flow_query fq;
};

struct store_job *store_job_new(enum store_job_kind kind);
void store_job_free(struct store_job *j);
static inline void store_job_freep(struct store_job **j)
{
	store_job_free(*j);
}
/* Queue a job: 0, -EBUSY when STORE_MAX_JOBS wait already, -ENOTCONN
 * when the database is not open. On success the store owns j until its
 * done() runs on the loop. */
int store_submit(struct store *s, struct store_job *j);
/* The fd that turns readable when jobs are done; then call
 * store_dispatch_done() on the loop. */
int store_done_fd(const struct store *s);
void store_dispatch_done(struct store *s);

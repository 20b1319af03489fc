/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What store.c (the writer thread) and store-read.c (the reader thread)
 * share. The loop only queues rows and jobs under `lock`; each thread owns
 * its SQLite connection, so the loop never waits on a commit or a query.
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "htable.h"
#include "store.h"

/* A flow or a DNS answer as the writer will store it: copied out on the
 * loop, so the index and the process cache may drop theirs. The strings
 * live in one allocation; the process, cgroup and domain parts are also
 * the keys the writer interns them by. */
struct store_item {
	/* one byte of flags: the item stays 152 bytes, and the queue holds
	 * up to 262144 of them */
	bool dns : 1;
	bool inbound : 1;   /* accept()ed: src is the local end, dst the peer */
	bool has_answers : 1;
	__u8 proto, family;
	__u16 sport, dport;
	__u32 pid, tid, uid, gid, ttl;
	__u32 src[4], dst[4];
	char comm[16];
	double ts;
	__u64 cookie, netns;
	char *blob;
	/* segments of blob, len 0: absent */
	__u32 proc_off, proc_len, cg_off, cg_len, dom_off, dom_len;
	/* DNS: query, answers, source are NUL-terminated in blob */
	__u32 query_off, answers_off, source_off;
	/* inbound with a known listener: its pid (4), start ticks (8) and
	 * comm (16) at this offset of blob; 0: none (outbound rows pay
	 * nothing for it) */
	__u32 lis_off;
};

/* A segment's bytes -> its row id; the bytes come from processes (exe,
 * cmdline) and cgroups: the table's hash is keyed (common/htable.c). */
struct intern_entry {
	struct hnode node;
	__u64 hash;
	sqlite3_int64 id;
	__u32 len;
	char key[];
};

struct intern {
	struct htable t; /* buckets made on the first add */
};

struct store {
	struct store_options opt;
	pthread_mutex_t lock;
	pthread_cond_t writer_wake;   /* rows queued, or stop */
	pthread_cond_t written;       /* a commit happened (readers wait for it) */
	pthread_cond_t reader_wake;

	/* loop -> writer, under lock */
	struct store_item *queue;     /* ring */
	size_t q_head, q_len, q_cap;
	bool writer_sleeping;
	bool stopping;
	bool refused;                 /* -EPERM: the path is others' now */
	_Atomic bool open;
	struct store_stats st;        /* under lock */
	char last_error[256];         /* under lock */
	char last_error_copy[256];    /* loop's snapshot for store_get_stats */
	pthread_t writer;
	bool writer_started;

	/* writer thread only */
	sqlite3 *db;
	sqlite3_stmt *insert, *insert_dns, *ins_proc, *sel_proc, *ins_cg, *sel_cg, *ins_dom, *sel_dom;
	struct intern procs, cgroups, domains;

	/* reader: jobs in, results out, under lock */
	struct store_job *jobs_head, *jobs_tail, *done_head, *done_tail;
	size_t n_jobs;
	pthread_t reader;
	bool reader_started;
	int done_fd;                  /* eventfd: completions for the loop */
	sqlite3 *rdb;                 /* reader thread only */
};

int store_sqlite_to_errno(int rc);
int store_check_path(const char *path, char *err, size_t errlen);
void *store_reader_main(void *arg);
void store_jobs_free_all(struct store *s);

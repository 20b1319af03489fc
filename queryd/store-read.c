// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The history store's reader thread: one job at a time on its own
 * read-only connection (WAL lets it read while the writer writes), each
 * under a time budget enforced by sqlite3_progress_handler(). Finished
 * jobs go back to the loop through an eventfd; the loop never waits here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "flowkey.h"
#include "jsonw.h"
#include "log.h"
#include "macro.h"
#include "store-internal.h"

/* How long a question waits for rows queued before it was asked: a
 * writer that keeps up commits within its 50 ms linger. */
#define READ_YOUR_WRITES_MS 1000
/* An answer's size is estimated per row: names and quotes on top. */
#define ROW_OVERHEAD 16

struct store_job *store_job_new(enum store_job_kind kind)
{
	struct store_job *j = calloc(1, sizeof(*j));

	if (j)
		j->kind = kind;
	return j;
}

void store_job_free(struct store_job *j)
{
	if (!j)
		return;
	free(j->q.comm);
	free(j->q.exe);
	free(j->q.dst);
	free(j->q.src);
	free(j->q.domain);
	free(j->q.container);
	free(j->q.unit);
	json_object_put(j->rows);
	free(j);
}

int store_done_fd(const struct store *s)
{
	return s->done_fd;
}

int store_submit(struct store *s, struct store_job *j)
{
	int r = 0;

	pthread_mutex_lock(&s->lock);
	if (!atomic_load(&s->open))
		r = -ENOTCONN;
	else if (s->n_jobs >= STORE_MAX_JOBS)
		r = -EBUSY;
	else {
		/* "rows committed up to now": what the loop queued before
		 * this question, the reader waits for (a little) */
		j->want_rows = s->st.rows_queued;
		j->next = NULL;
		if (s->jobs_tail)
			s->jobs_tail->next = j;
		else
			s->jobs_head = j;
		s->jobs_tail = j;
		s->n_jobs++;
		pthread_cond_signal(&s->reader_wake);
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

void store_dispatch_done(struct store *s)
{
	struct store_job *list;
	__u64 n;

	(void)!read(s->done_fd, &n, sizeof(n));
	pthread_mutex_lock(&s->lock);
	list = s->done_head;
	s->done_head = s->done_tail = NULL;
	pthread_mutex_unlock(&s->lock);
	while (list) {
		struct store_job *j = list;

		list = j->next;
		if (j->done)
			j->done(j);
		store_job_free(j);
	}
}

void store_jobs_free_all(struct store *s)
{
	struct store_job *lists[] = { s->jobs_head, s->done_head };

	for (size_t i = 0; i < ARRAY_SIZE(lists); i++)
		while (lists[i]) {
			struct store_job *j = lists[i];

			lists[i] = j->next;
			store_job_free(j);
		}
	s->jobs_head = s->jobs_tail = s->done_head = s->done_tail = NULL;
	s->n_jobs = 0;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct budget {
	double deadline;
};

static int over_budget(void *userdata)
{
	const struct budget *b = userdata;

	return mono_s() > b->deadline;
}

/* A row's Community ID from its stored columns: the seed may change
 * between runs and the answer follows the daemon's seed of now, like
 * its live answers. -EINVAL: no source (or not a flow we can name). */
static int row_community_id(const char *src, const char *dst, int sport, int dport, const char *proto,
			    int num_proto, __u16 seed, char out[COMMUNITY_ID_LEN])
{
	struct community_id_flow f = { .src_port = (__u16)sport, .dst_port = (__u16)dport };
	int dfam;
	__u8 p = (__u8)num_proto;

	if (!src || !dst || sport < 0 || sport > 65535 || dport < 0 || dport > 65535)
		return -EINVAL;
	if (proto && parse_protocol(proto, &p) < 0)
		return -EINVAL;
	f.protocol = p;
	if (parse_ip(src, &f.family, f.src_ip) < 0 || parse_ip(dst, &dfam, f.dst_ip) < 0 || dfam != f.family)
		return -EINVAL;
	return community_id_v1(&f, seed, out);
}

/* community_id(src, dst, sport, dport, proto, seed): for the walk of a
 * lookup by Community ID. */
static void sql_community_id(sqlite3_context *ctx, int argc, sqlite3_value **v)
{
	char id[COMMUNITY_ID_LEN];
	bool text_proto = sqlite3_value_type(v[4]) == SQLITE_TEXT;

	if (row_community_id((const char *)sqlite3_value_text(v[0]), (const char *)sqlite3_value_text(v[1]),
			     sqlite3_value_int(v[2]), sqlite3_value_int(v[3]),
			     text_proto ? (const char *)sqlite3_value_text(v[4]) : NULL, sqlite3_value_int(v[4]),
			     (__u16)sqlite3_value_int(v[5]), id) < 0)
		sqlite3_result_null(ctx);
	else
		sqlite3_result_text(ctx, id, -1, SQLITE_TRANSIENT);
}

static int reader_connect(struct store *s)
{
	char err[512];
	int rc, r;

	r = store_check_path(s->opt.path, err, sizeof(err));
	if (r < 0)
		return r;
	rc = sqlite3_open_v2(s->opt.path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX |
			     SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close_v2(s->rdb);
		s->rdb = NULL;
		return store_sqlite_to_errno(rc);
	}
	sqlite3_busy_timeout(s->rdb, 200);
	rc = sqlite3_create_function_v2(s->rdb, "community_id", 6, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
					sql_community_id, NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_close_v2(s->rdb);
		s->rdb = NULL;
		return store_sqlite_to_errno(rc);
	}
	return 0;
}

static void add_community_id(json_object *o, __u16 seed, size_t *size)
{
	json_object *v[5] = {};
	static const char *const names[] = { "src", "dst", "sport", "dport", "proto" };
	char id[COMMUNITY_ID_LEN];
	bool ok = true;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		ok = ok && json_object_object_get_ex(o, names[i], &v[i]) && v[i];
	ok = ok && row_community_id(json_object_get_string(v[0]), json_object_get_string(v[1]),
				    json_object_get_int(v[2]), json_object_get_int(v[3]),
				    json_object_get_string(v[4]), 0, seed, id) >= 0;
	json_object_object_add(o, "community_id", ok ? json_object_new_string(id) : NULL);
	*size += 16 + COMMUNITY_ID_LEN + ROW_OVERHEAD;
}

/* listener_pid, listener_comm, listener_start_time: "listener": {pid,
 * comm, start_time} as in a FLOW, only when the row knows the listener. */
static bool listener_member(json_object *o, const char *name, json_object *v)
{
	json_object *l;

	if (!startswith(name, "listener_"))
		return false;
	if (!v)
		return true;
	if (!json_object_object_get_ex(o, "listener", &l)) {
		l = json_object_new_object();
		json_object_object_add(o, "listener", l);
	}
	json_object_object_add(l, name + strlen("listener_"), v);
	return true;
}

static json_object *row_to_json(sqlite3_stmt *st, __u16 seed, size_t *size)
{
	json_object *o = json_object_new_object();
	int n = sqlite3_column_count(st);

	*size = 32;
	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_object *v = NULL;

		/* the view's references are for joins, not for clients */
		if (streq(name, "proc_ref") || streq(name, "cgroup_ref") || streq(name, "domain_ref"))
			continue;
		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v = json_object_new_int64(sqlite3_column_int64(st, i));
			*size += 20;
			break;
		case SQLITE_FLOAT:
			v = json_object_new_double(sqlite3_column_double(st, i));
			*size += 24;
			break;
		case SQLITE_TEXT:
			if (streq(name, "cmdline"))
				v = json_tokener_parse((const char *)sqlite3_column_text(st, i));
			else
				v = json_object_new_string((const char *)sqlite3_column_text(st, i));
			/* escapes may double it: count it twice */
			*size += 2 * (size_t)sqlite3_column_bytes(st, i);
			break;
		default:
			*size += 4;
			break;
		}
		/* The protocol's names: ts is when the flow was first seen. */
		if (streq(name, "ts"))
			name = "first_seen";
		else if (streq(name, "id"))
			name = "row_id";
		*size += strlen(name) + ROW_OVERHEAD;
		if (!listener_member(o, name, v))
			json_object_object_add(o, name, v);
	}
	add_community_id(o, seed, size);
	json_object_object_add(o, "seen", json_object_new_string("history"));
	return o;
}

#define DETAILS "SELECT * FROM connection_details "

/* The view's words for a direction (schema 4). */
static const char *direction_name(enum flow_direction d)
{
	return d == FLOW_INBOUND ? "inbound" : "outbound";
}

/* One statement per order: every filter is in it, and an absent filter is
 * bound to NULL, so each filter is named once, next to its value. The
 * process, cgroup and domain filters go through their small tables'
 * indexes; rows are walked by time. */
#define HISTORY_SQL(order, cmp) \
	DETAILS \
	"WHERE ts >= coalesce(:since, -1e300) AND ts <= coalesce(:until, 1e300) " \
	"AND (:cts IS NULL OR ts " cmp " :cts OR (ts = :cts AND id " cmp " :cid)) " \
	"AND (:pid IS NULL OR pid = :pid) AND (:comm IS NULL OR comm = :comm) " \
	"AND (:exe IS NULL OR proc_ref IN (SELECT id FROM processes WHERE exe = :exe)) " \
	"AND (:dst IS NULL OR dst = :dst) AND (:src IS NULL OR src = :src) " \
	"AND (:dir IS NULL OR direction = :dir) AND (:netns IS NULL OR netns = :netns) " \
	"AND (:dport IS NULL OR dport = :dport) AND (:proto IS NULL OR proto = :proto) " \
	"AND (:domain IS NULL OR domain_ref IN (SELECT id FROM domains WHERE name = :domain)) " \
	"AND (:unit IS NULL OR cgroup_ref IN (SELECT id FROM cgroups WHERE unit = :unit)) " \
	"AND (:container IS NULL OR cgroup_ref IN (SELECT id FROM cgroups WHERE container_id = :container " \
	"     UNION SELECT id FROM cgroups WHERE container_name = :container)) " \
	"ORDER BY ts " order ", id " order " LIMIT :limit"

static int bind_name_text(sqlite3_stmt *st, const char *name, const char *v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static void bind_name_int(sqlite3_stmt *st, const char *name, bool has, int64_t v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (has)
		sqlite3_bind_int64(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

static void bind_name_double(sqlite3_stmt *st, const char *name, bool has, double v)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (has)
		sqlite3_bind_double(st, i, v);
	else
		sqlite3_bind_null(st, i);
}

/* A name filter that names nothing stored answers at once: no walk. */
static int name_exists(sqlite3 *db, const char *sql, const char *v)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (!v)
		return 1;
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_to_errno(rc);
	sqlite3_bind_text(st, 1, v, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : store_sqlite_to_errno(rc);
}

static int run_history(struct store *s, struct store_job *j)
{
	const struct history_query *q = &j->q;
	sqlite3_stmt *st = NULL;
	size_t total = 64, cap = j->max_bytes;
	const char *checks[][2] = {
		{ "SELECT 1 FROM processes WHERE exe = ?1 LIMIT 1", q->exe },
		{ "SELECT 1 FROM domains WHERE name = ?1 LIMIT 1", q->domain },
		{ "SELECT 1 FROM cgroups WHERE unit = ?1 LIMIT 1", q->unit },
		{ "SELECT 1 FROM cgroups WHERE container_id = ?1 OR container_name = ?1 LIMIT 1", q->container },
	};
	int rc, r;

	j->rows = json_object_new_array();
	for (size_t i = 0; i < ARRAY_SIZE(checks); i++) {
		r = name_exists(s->rdb, checks[i][0], checks[i][1]);
		if (r <= 0)
			return r;
	}
	rc = sqlite3_prepare_v2(s->rdb, q->ascending ? HISTORY_SQL("ASC", ">") : HISTORY_SQL("DESC", "<"),
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_to_errno(rc);
	bind_name_double(st, ":since", q->has_since, q->since);
	bind_name_double(st, ":until", q->has_until, q->until);
	bind_name_double(st, ":cts", q->has_cursor, q->cursor_ts);
	bind_name_int(st, ":cid", q->has_cursor, q->cursor_id);
	bind_name_int(st, ":pid", q->has_pid, q->pid);
	bind_name_text(st, ":comm", q->comm);
	bind_name_text(st, ":exe", q->exe);
	bind_name_text(st, ":dst", q->dst);
	bind_name_text(st, ":src", q->src);
	bind_name_text(st, ":dir", q->has_direction ? direction_name(q->direction) : NULL);
	bind_name_int(st, ":netns", q->netns != 0, (int64_t)q->netns);
	bind_name_int(st, ":dport", q->has_dport, q->dport);
	bind_name_text(st, ":proto", q->has_proto ? protocol_name(q->proto) : NULL);
	bind_name_text(st, ":domain", q->domain);
	bind_name_text(st, ":unit", q->unit);
	bind_name_text(st, ":container", q->container);
	bind_name_int(st, ":limit", true, q->limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		size_t size;
		json_object *row = row_to_json(st, j->seed, &size);

		if (cap && total + size > cap && json_object_array_length(j->rows) > 0) {
			/* stop before the cap; the cursor names the last row sent */
			json_object_put(row);
			j->truncated = true;
			break;
		}
		total += size;
		j->next_ts = sqlite3_column_double(st, 1);
		j->next_id = sqlite3_column_int64(st, 0);
		json_object_array_add(j->rows, row);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return store_sqlite_to_errno(rc);
	r = (int)json_object_array_length(j->rows);
	/* up to 1 MiB of rows: checked and rendered here, not on the loop */
	j->rows = json_prerender(j->rows);
	return r;
}

/* Who owned a flow at `at`: the newest row at or before it, walking the
 * time index backwards (the log has no 4-tuple or Community ID index, on
 * purpose: ingest), bounded by the budget. By 4-tuple and its scope (the
 * direction always; src and netns when asked: more rows to tell apart,
 * the same walk), or by Community ID,
 * which has no column either: it is hashed per row walked (no cost at
 * ingest; a flow looked up near its time is found at once). */
static int run_lookup_at(struct store *s, struct store_job *j)
{
	bool by_cid = j->kind == STORE_JOB_LOOKUP_CID;
	sqlite3_stmt *st = NULL;
	size_t size;
	int rc;

	rc = sqlite3_prepare_v2(s->rdb, by_cid ?
				DETAILS "WHERE ts <= :at AND community_id(src, dst, sport, dport, proto, :seed) = :cid "
					"ORDER BY ts DESC, id DESC LIMIT 1" :
				DETAILS "WHERE ts <= :at AND sport = :sport AND dport = :dport AND dst = :dst "
					"AND proto = :proto AND direction = :dir AND (:src IS NULL OR src = :src) "
					"AND (:netns IS NULL OR netns = :netns) "
					"ORDER BY ts DESC, id DESC LIMIT 1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_to_errno(rc);
	bind_name_double(st, ":at", true, j->at);
	if (by_cid) {
		bind_name_int(st, ":seed", true, j->seed);
		(void)bind_name_text(st, ":cid", j->community_id);
	} else {
		bind_name_int(st, ":sport", true, j->sport);
		bind_name_int(st, ":dport", true, j->dport);
		(void)bind_name_text(st, ":dst", j->dst);
		(void)bind_name_text(st, ":proto", protocol_name(j->proto));
		(void)bind_name_text(st, ":dir", direction_name(j->direction));
		(void)bind_name_text(st, ":src", j->src[0] ? j->src : NULL);
		bind_name_int(st, ":netns", j->netns != 0, (int64_t)j->netns);
	}
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		j->rows = row_to_json(st, j->seed, &size);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlite_to_errno(rc);
	return rc == SQLITE_ROW;
}

static void wait_written_locked(struct store *s, __u64 want)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += READ_YOUR_WRITES_MS / 1000;
	while (!s->stopping && s->st.writable && s->st.rows_written + s->st.rows_dropped < want)
		if (pthread_cond_timedwait(&s->written, &s->lock, &ts) != 0)
			break;
}

static void run_job(struct store *s, struct store_job *j)
{
	struct budget b;
	double t0 = mono_s();

	if (!s->rdb) {
		j->r = reader_connect(s);
		if (j->r < 0)
			return;
	}
	b.deadline = t0 + s->opt.query_budget_ms / 1000.0;
	/* every 1000 VM steps: ~10 us here, far finer than the budget */
	sqlite3_progress_handler(s->rdb, 1000, over_budget, &b);
	j->r = j->kind == STORE_JOB_HISTORY ? run_history(s, j) : run_lookup_at(s, j);
	sqlite3_progress_handler(s->rdb, 0, NULL, NULL);
	j->elapsed = mono_s() - t0;
	if (j->r == -EIO && sqlite3_errcode(s->rdb) == SQLITE_INTERRUPT)
		j->r = -ETIME;
	if (j->r < 0 && j->r != -ETIME) {
		/* reopen next time: the file may have been replaced */
		sqlite3_close_v2(s->rdb);
		s->rdb = NULL;
	}
}

void *store_reader_main(void *arg)
{
	struct store *s = arg;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		struct store_job *j = s->jobs_head;
		__u64 one = 1;

		if (!j) {
			pthread_cond_wait(&s->reader_wake, &s->lock);
			continue;
		}
		wait_written_locked(s, j->want_rows);
		s->jobs_head = j->next;
		if (!s->jobs_head)
			s->jobs_tail = NULL;
		s->n_jobs--;
		pthread_mutex_unlock(&s->lock);

		run_job(s, j);

		pthread_mutex_lock(&s->lock);
		j->next = NULL;
		if (s->done_tail)
			s->done_tail->next = j;
		else
			s->done_head = j;
		s->done_tail = j;
		(void)!write(s->done_fd, &one, sizeof(one));
	}
	pthread_mutex_unlock(&s->lock);
	if (s->rdb)
		sqlite3_close_v2(s->rdb);
	s->rdb = NULL;
	return NULL;
}

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
#include "flow-view.h"
#include "jsonutil.h"
#include "jsonw.h"
#include "log.h"
#include "macro.h"
#include "procinfo.h"
#include "store-internal.h"

/* How long a question waits for rows queued before it was asked: a
 * writer that keeps up commits within its 50 ms linger. */
#define READ_YOUR_WRITES_MS 1000

struct store_job *store_job_new(enum store_job_kind kind)
{
	struct store_job *j = calloc(1, sizeof(*j));

	if (j) {
		j->kind = kind;
		j->fields = FLOW_FIELDS_ALL;
	}
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

/* The connection_details columns a row is read from, found by name once
 * per statement: a database of an older schema lacks some (NULL then). */
enum row_col {
	RC_ID, RC_TS, RC_LAST_SEEN, RC_PROTO, RC_DIRECTION, RC_FAMILY, RC_SRC, RC_SPORT, RC_DST, RC_DPORT,
	RC_PID, RC_TID, RC_UID, RC_GID, RC_COMM, RC_EXE, RC_CMDLINE, RC_START_TIME, RC_CGROUP_ID,
	RC_CGROUP_PATH, RC_UNIT, RC_CONTAINER_ID, RC_CONTAINER_NAME, RC_CONTAINER_IMAGE, RC_DOMAIN,
	RC_SOCKET_COOKIE, RC_NETNS, RC_LISTENER_PID, RC_LISTENER_COMM, RC_LISTENER_START_TIME,
	_RC_MAX,
};

static const char *const row_col_names[_RC_MAX] = {
	"id", "ts", "last_seen", "proto", "direction", "family", "src", "sport", "dst", "dport",
	"pid", "tid", "uid", "gid", "comm", "exe", "cmdline", "start_time", "cgroup_id",
	"cgroup_path", "unit", "container_id", "container_name", "container_image", "domain",
	"socket_cookie", "netns", "listener_pid", "listener_comm", "listener_start_time",
};

/* Reads a statement's rows as FLOW views (flow-view.h). */
struct row_reader {
	sqlite3_stmt *st;
	int col[_RC_MAX];          /* -1: no such column */
	__u16 seed;
	uint64_t fields;
	char community_id[COMMUNITY_ID_LEN];
	char *cmdline;             /* the row's arguments, NUL-separated */
	size_t cmdline_cap;
	struct jsonw row;          /* one row's JSON, reused */
};

static void row_reader_init(struct row_reader *r, sqlite3_stmt *st, __u16 seed, uint64_t fields)
{
	int n = sqlite3_column_count(st);

	*r = (struct row_reader) { .st = st, .seed = seed, .fields = fields };
	jw_init(&r->row);
	for (size_t c = 0; c < _RC_MAX; c++) {
		r->col[c] = -1;
		for (int i = 0; i < n; i++)
			if (streq(sqlite3_column_name(st, i), row_col_names[c]))
				r->col[c] = i;
	}
}

static void row_reader_done(struct row_reader *r)
{
	free(r->cmdline);
	jw_free(&r->row);
}

static const char *col_text(const struct row_reader *r, enum row_col c)
{
	if (r->col[c] < 0 || sqlite3_column_type(r->st, r->col[c]) == SQLITE_NULL)
		return NULL;
	return (const char *)sqlite3_column_text(r->st, r->col[c]);
}

/* An integer member: its value, or its bit in v->null when the row has
 * none. */
static int64_t col_int(const struct row_reader *r, enum row_col c, struct flow_view *v, enum flow_field b)
{
	if (r->col[c] < 0 || sqlite3_column_type(r->st, r->col[c]) == SQLITE_NULL) {
		v->null |= FF_BIT(b);
		return 0;
	}
	return sqlite3_column_int64(r->st, r->col[c]);
}

/* The cmdline column holds the JSON array the writer rendered: back to
 * NUL-separated arguments (a value that is no array of strings: none). */
static void row_cmdline(struct row_reader *r, struct flow_view *v)
{
	const char *text = col_text(r, RC_CMDLINE);
	_cleanup_json_ json_object *a = text ? json_tokener_parse(text) : NULL;
	size_t n = json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0, len = 0;
	size_t need = text ? strlen(text) + 1 : 0;
	char *p;

	if (n == 0)
		return;
	if (need > r->cmdline_cap) {
		p = realloc(r->cmdline, need);
		if (!p)
			return;
		r->cmdline = p;
		r->cmdline_cap = need;
	}
	/* each argument is shorter unescaped than quoted: it fits */
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(a, i);
		size_t l = json_object_is_type(e, json_type_string) ? (size_t)json_object_get_string_len(e) : 0;

		memcpy(r->cmdline + len, l ? json_object_get_string(e) : "", l);
		r->cmdline[len + l] = '\0';
		len += l + 1;
	}
	v->cmdline = r->cmdline;
	v->cmdline_len = len;
}

/* A history row knows what the writer stored; the rest of a FLOW (the
 * user's name, slice, ancestry, liveness...) it cannot know: absent. */
#define ROW_ABSENT (FF_BIT(FF_USER) | FF_BIT(FF_PPID) | FF_BIT(FF_SLICE) | FF_BIT(FF_USER_UNIT) | \
		    FF_BIT(FF_POD_UID) | FF_BIT(FF_BOOT_ID) | FF_BIT(FF_ALIVE) | FF_BIT(FF_PID_REUSED) | \
		    FF_BIT(FF_PREVIOUS_PID) | FF_BIT(FF_EXE_SOURCE) | FF_BIT(FF_ANCESTORS) | \
		    FF_BIT(FF_CREATOR) | FF_BIT(FF_IN_MAP))

/* Who listened, for an inbound row: null when unknown; an outbound row
 * has no such member. */
static void row_listener(struct row_reader *r, struct flow_view *v)
{
	struct flow_view *scratch = &(struct flow_view) {};

	if (!v->direction || !streq(v->direction, "inbound")) {
		v->absent |= FF_BIT(FF_LISTENER);
		return;
	}
	v->listener.pid = col_int(r, RC_LISTENER_PID, scratch, FF_PID);
	v->listener.comm = col_text(r, RC_LISTENER_COMM);
	v->listener.comm_len = v->listener.comm ? strlen(v->listener.comm) : 0;
	v->listener.start_time = col_int(r, RC_LISTENER_START_TIME, scratch, FF_START_TIME);
	v->listener.has_start_time = !(scratch->null & FF_BIT(FF_START_TIME));
}

static void row_addresses(struct row_reader *r, struct flow_view *v)
{
	v->proto = col_text(r, RC_PROTO);
	v->direction = col_text(r, RC_DIRECTION);
	v->family = col_text(r, RC_FAMILY);
	v->src = col_text(r, RC_SRC);
	v->sport = col_int(r, RC_SPORT, v, FF_SPORT);
	v->dst = col_text(r, RC_DST);
	v->dport = col_int(r, RC_DPORT, v, FF_DPORT);
	if (row_community_id(v->src, v->dst, (int)v->sport, (int)v->dport, v->proto, 0, r->seed,
			     r->community_id) >= 0)
		v->community_id = r->community_id;
}

static void row_view(struct row_reader *r, struct flow_view *v)
{
	*v = (struct flow_view) { .absent = ROW_ABSENT, .seen = "history", .has_row_id = true };
	v->row_id = sqlite3_column_int64(r->st, r->col[RC_ID]);
	row_addresses(r, v);
	v->pid = col_int(r, RC_PID, v, FF_PID);
	v->tid = col_int(r, RC_TID, v, FF_TID);
	v->uid = col_int(r, RC_UID, v, FF_UID);
	v->gid = col_int(r, RC_GID, v, FF_GID);
	v->comm = col_text(r, RC_COMM);
	v->comm_len = v->comm ? strlen(v->comm) : 0;
	v->exe = col_text(r, RC_EXE);
	if (r->fields & FF_BIT(FF_CMDLINE))
		row_cmdline(r, v);
	v->cgroup_id = col_int(r, RC_CGROUP_ID, v, FF_CGROUP_ID);
	v->cgroup = col_text(r, RC_CGROUP_PATH);
	v->unit = col_text(r, RC_UNIT);
	v->container.id = col_text(r, RC_CONTAINER_ID);
	v->container.name = col_text(r, RC_CONTAINER_NAME);
	v->container.image = col_text(r, RC_CONTAINER_IMAGE);
	v->netns = col_int(r, RC_NETNS, v, FF_NETNS);
	v->socket_cookie = col_int(r, RC_SOCKET_COOKIE, v, FF_SOCKET_COOKIE);
	v->start_time = col_int(r, RC_START_TIME, v, FF_START_TIME);
	/* the protocol's names: ts is when the flow was first seen */
	v->first_seen = r->col[RC_TS] >= 0 ? sqlite3_column_double(r->st, r->col[RC_TS]) : 0;
	v->last_seen = r->col[RC_LAST_SEEN] >= 0 ? sqlite3_column_double(r->st, r->col[RC_LAST_SEEN]) : v->first_seen;
	row_listener(r, v);
	v->domain.name = col_text(r, RC_DOMAIN);
	v->domain.name_only = true;
}

/* The current row as FLOW text in r->row (valid UTF-8: jsonw's). */
static const char *row_render(struct row_reader *r, size_t *len)
{
	struct flow_view v;

	/* the same buffer again, emptied */
	jw_attach(&r->row, r->row.buf, 0, r->row.cap);
	row_view(r, &v);
	flow_view_write(&r->row, &v, r->fields);
	*len = r->row.oom ? 0 : r->row.len;
	return r->row.oom ? NULL : r->row.buf;
}

/* A map hit's row says what the map's owner is now: alive (the same
 * start time), or its pid taken by another process (pid_reused, never
 * named), read from /proc here, off the loop. false: the row is another
 * pid's, not the owner's. */
static bool row_map_hit(__u32 map_pid, struct flow_view *v)
{
	__u64 now_ticks = 0;
	bool same;
	int r;

	/* an unknown pid is never the map's; an unknown start time never
	 * matches a process's */
	if ((v->null & FF_BIT(FF_PID)) || (__u32)v->pid != map_pid)
		return false;
	r = procinfo_start_ticks((pid_t)map_pid, &now_ticks);
	same = r == 0 && !(v->null & FF_BIT(FF_START_TIME)) && (__u64)v->start_time == now_ticks;
	v->alive = same;
	v->pid_reused = r == 0 && !same;
	v->in_map = true;
	v->absent &= ~(FF_BIT(FF_ALIVE) | FF_BIT(FF_PID_REUSED) | FF_BIT(FF_IN_MAP));
	return true;
}

/* A lookup's row: the current row of st as j->fields asks, in j->rows as
 * text (as history rows travel). 1, or 0 when a map hit's row is not the
 * owner's, or -ENOMEM. */
static int lookup_row(struct store_job *j, sqlite3_stmt *st)
{
	struct row_reader r;
	struct flow_view v;
	int found;

	row_reader_init(&r, st, j->seed, j->fields);
	row_view(&r, &v);
	found = !j->map_hit || row_map_hit(j->map_pid, &v);
	if (found) {
		flow_view_write(&r.row, &v, r.fields);
		j->rows = jw_to_object(&r.row);
	}
	row_reader_done(&r);
	return found && !j->rows ? -ENOMEM : found;
}

#define DETAILS "SELECT * FROM connection_details "

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

/* name's index, or 0 with NULL bound when !has: the SQL reads NULL as
 * "no such filter". */
static int param_unless_null(sqlite3_stmt *st, const char *name, bool has)
{
	int i = sqlite3_bind_parameter_index(st, name);

	if (!has)
		sqlite3_bind_null(st, i);
	return has ? i : 0;
}

static void bind_name_int(sqlite3_stmt *st, const char *name, bool has, int64_t v)
{
	int i = param_unless_null(st, name, has);

	if (i)
		sqlite3_bind_int64(st, i, v);
}

static void bind_name_double(sqlite3_stmt *st, const char *name, bool has, double v)
{
	int i = param_unless_null(st, name, has);

	if (i)
		sqlite3_bind_double(st, i, v);
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

static void history_bind(sqlite3_stmt *st, const struct history_query *q)
{
	bind_name_double(st, ":since", q->has_since, q->since);
	bind_name_double(st, ":until", q->has_until, q->until);
	bind_name_double(st, ":cts", q->has_cursor, q->cursor_ts);
	bind_name_int(st, ":cid", q->has_cursor, q->cursor_id);
	bind_name_int(st, ":pid", q->has_pid, q->pid);
	bind_name_text(st, ":comm", q->comm);
	bind_name_text(st, ":exe", q->exe);
	bind_name_text(st, ":dst", q->dst);
	bind_name_text(st, ":src", q->src);
	bind_name_text(st, ":dir", q->has_direction ? flow_direction_name(q->direction) : NULL);
	bind_name_int(st, ":netns", q->netns != 0, (int64_t)q->netns);
	bind_name_int(st, ":dport", q->has_dport, q->dport);
	bind_name_text(st, ":proto", q->has_proto ? protocol_name(q->proto) : NULL);
	bind_name_text(st, ":domain", q->domain);
	bind_name_text(st, ":unit", q->unit);
	bind_name_text(st, ":container", q->container);
	bind_name_int(st, ":limit", true, q->limit);
}

/* The rows of st as one JSON array in j->rows, rendered here, not on the
 * loop. It stops before j->max_bytes, counted exactly as written (the
 * cursor then names the last row sent), but holds at least one row. The
 * number of rows, or a negative errno. */
static int collect_rows(struct store_job *j, sqlite3_stmt *st)
{
	struct row_reader r;
	struct jsonw all;
	size_t cap = j->max_bytes, len;
	const char *text;
	int rc, n = 0;

	row_reader_init(&r, st, j->seed, j->fields);
	jw_init(&all);
	jw_arr_begin(&all);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		text = row_render(&r, &len);
		if (!text) {
			rc = SQLITE_NOMEM;
			break;
		}
		/* with its comma and the closing bracket */
		if (cap && all.len + 1 + len + 1 > cap && n > 0) {
			j->truncated = true;
			break;
		}
		jw_raw(&all, text, len);
		j->next_ts = sqlite3_column_double(st, r.col[RC_TS]);
		j->next_id = sqlite3_column_int64(st, r.col[RC_ID]);
		n++;
	}
	jw_arr_end(&all);
	row_reader_done(&r);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		jw_free(&all);
		return store_sqlite_to_errno(rc);
	}
	j->rows = jw_to_object(&all);
	return j->rows ? n : -ENOMEM;
}

static int run_history(struct store *s, struct store_job *j)
{
	const struct history_query *q = &j->q;
	sqlite3_stmt *st = NULL;
	const char *checks[][2] = {
		{ "SELECT 1 FROM processes WHERE exe = ?1 LIMIT 1", q->exe },
		{ "SELECT 1 FROM domains WHERE name = ?1 LIMIT 1", q->domain },
		{ "SELECT 1 FROM cgroups WHERE unit = ?1 LIMIT 1", q->unit },
		{ "SELECT 1 FROM cgroups WHERE container_id = ?1 OR container_name = ?1 LIMIT 1", q->container },
	};
	int rc, r;

	for (size_t i = 0; i < ARRAY_SIZE(checks); i++) {
		r = name_exists(s->rdb, checks[i][0], checks[i][1]);
		if (r <= 0) {
			j->rows = json_object_new_array();
			return r;
		}
	}
	rc = sqlite3_prepare_v2(s->rdb, q->ascending ? HISTORY_SQL("ASC", ">") : HISTORY_SQL("DESC", "<"),
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_to_errno(rc);
	history_bind(st, q);
	r = collect_rows(j, st);
	sqlite3_finalize(st);
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
	int rc, r;

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
		(void)bind_name_text(st, ":dir", flow_direction_name(j->direction));
		(void)bind_name_text(st, ":src", j->src[0] ? j->src : NULL);
		bind_name_int(st, ":netns", j->netns != 0, (int64_t)j->netns);
	}
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? lookup_row(j, st) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_sqlite_to_errno(rc);
	return r;
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

// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sqlite3.h>

#include "cgroup-cache.h"
#include "flowkey.h"
#include "log.h"
#include "macro.h"
#include "procinfo.h"
#include "store.h"

/* A flow as it will be written: copied out so the index may evict it. */
struct store_row {
	struct connpid_event ev;
	double first_seen;
	char *exe;
	char *cmdline_json;
	char *cgroup_path;
	char *unit;
	char *container_id;
	char *domain;
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *insert;
	sqlite3_stmt *insert_dns;
	struct store_options opt;
	struct store_row *queue;   /* ring */
	size_t q_head, q_len, q_cap;
	struct store_stats st;
	char last_error[256];
};

/* Each step takes the schema from version i to i + 1, inside one
 * transaction with the user_version bump. Version 1 is the Lanthorn-shaped
 * tables; version 2 adds process identity, cgroup and container columns. */
static const char *const migrations[STORE_SCHEMA_VERSION] = {
	"CREATE TABLE connections ("
	"  id INTEGER PRIMARY KEY,"
	"  ts REAL NOT NULL,"
	"  proto TEXT NOT NULL,"
	"  src TEXT,"
	"  sport INTEGER NOT NULL,"
	"  dst TEXT NOT NULL,"
	"  dport INTEGER NOT NULL,"
	"  pid INTEGER,"
	"  comm TEXT);"
	"CREATE INDEX connections_ts ON connections(ts);"
	"CREATE TABLE dns_events ("
	"  id INTEGER PRIMARY KEY,"
	"  ts REAL NOT NULL,"
	"  pid INTEGER,"
	"  comm TEXT,"
	"  query TEXT NOT NULL,"
	"  answers TEXT);"
	"CREATE INDEX dns_events_ts ON dns_events(ts);",

	"ALTER TABLE connections ADD COLUMN family TEXT;"
	"ALTER TABLE connections ADD COLUMN tid INTEGER;"
	"ALTER TABLE connections ADD COLUMN uid INTEGER;"
	"ALTER TABLE connections ADD COLUMN gid INTEGER;"
	"ALTER TABLE connections ADD COLUMN exe TEXT;"
	"ALTER TABLE connections ADD COLUMN cmdline TEXT;"
	"ALTER TABLE connections ADD COLUMN start_time INTEGER;"
	"ALTER TABLE connections ADD COLUMN cgroup_id INTEGER;"
	"ALTER TABLE connections ADD COLUMN cgroup_path TEXT;"
	"ALTER TABLE connections ADD COLUMN unit TEXT;"
	"ALTER TABLE connections ADD COLUMN container_id TEXT;"
	"ALTER TABLE connections ADD COLUMN container_name TEXT;"
	"ALTER TABLE connections ADD COLUMN container_image TEXT;"
	"ALTER TABLE connections ADD COLUMN domain TEXT;"
	"ALTER TABLE connections ADD COLUMN last_seen REAL;"
	"ALTER TABLE connections ADD COLUMN socket_cookie INTEGER;"
	"ALTER TABLE connections ADD COLUMN netns INTEGER;"
	"CREATE INDEX connections_cookie ON connections(socket_cookie);"
	"ALTER TABLE dns_events ADD COLUMN source TEXT;"
	"ALTER TABLE dns_events ADD COLUMN ttl INTEGER;",
};

#define ROW_COLUMNS \
	"ts, last_seen, proto, family, src, sport, dst, dport, pid, tid, uid, gid, comm, exe, " \
	"cmdline, start_time, cgroup_id, cgroup_path, unit, container_id, container_name, " \
	"container_image, domain, socket_cookie, netns"

static void set_error_msg(struct store *s, const char *now)
{
	/* Said once per new reason; the counters say how often. */
	if (!s->st.last_error || strcmp(now, s->last_error) != 0)
		log_warning("History store: %s", now);
	snprintf(s->last_error, sizeof(s->last_error), "%s", now);
	s->st.last_error = s->last_error;
	s->st.writable = false;
}

static void set_error(struct store *s, const char *what)
{
	char now[sizeof(s->last_error)];

	snprintf(now, sizeof(now), "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "database not open");
	/* Said once per new reason; the counters say how often. */
	if (!s->st.last_error || strcmp(now, s->last_error) != 0)
		log_warning("History store: %s", now);
	memcpy(s->last_error, now, sizeof(now));
	s->st.last_error = s->last_error;
	s->st.writable = false;
}

static int sqlite_to_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
		return -EROFS;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_CANTOPEN:
		return -EACCES;
	default:
		return -EIO;
	}
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sqlite_to_errno(rc);
}

static int get_user_version(sqlite3 *db, int *ret)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

static int migrate(sqlite3 *db, int from, char *err, size_t errlen)
{
	for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
		char bump[64];
		int r;

		r = exec_sql(db, "BEGIN IMMEDIATE");
		if (r >= 0)
			r = exec_sql(db, migrations[v]);
		snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", v + 1);
		if (r >= 0)
			r = exec_sql(db, bump);
		if (r >= 0)
			r = exec_sql(db, "COMMIT");
		if (r < 0) {
			snprintf(err, errlen, "migrating the schema from version %d to %d failed: %s",
				 v, v + 1, sqlite3_errmsg(db));
			(void)exec_sql(db, "ROLLBACK");
			return r;
		}
	}
	return 0;
}

static void disconnect(struct store *s)
{
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->insert_dns);
	s->insert = s->insert_dns = NULL;
	if (s->db)
		sqlite3_close_v2(s->db);
	s->db = NULL;
}

/* Whose files we may trust: root's and our own. */
static bool trusted_owner(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* The database's directory: whoever may add or swap entries there could
 * point the database or its -wal/-shm at any file we would then write.
 * A missing directory is not refused: the store retries until it exists. */
static int check_db_dir(const char *path, char *err, size_t errlen)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash;
	struct stat st;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else
		slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) < 0)
		return 0; /* sqlite says why, and we retry */
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "refusing %s: %s is not a directory", path, dir);
		return -EPERM;
	}
	if (!trusted_owner(st.st_uid)) {
		snprintf(err, errlen, "refusing %s: its directory %s is owned by uid %u, neither root nor us (uid %u)",
			 path, dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(err, errlen, "refusing %s: its directory %s is writable by %s (mode %04o) and not sticky, "
			 "so others could swap the files in it", path, dir,
			 st.st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

/* The database and the files SQLite puts beside it: absent, or regular
 * files of root or ours. SQLite's NOFOLLOW refuses a linked -wal only when
 * it first writes, as "unable to open database file" at every retry;
 * checked here, the refusal is said once, naming the file. */
static int check_db_files(const char *path, char *err, size_t errlen)
{
	static const char *const suffixes[] = { "", "-wal", "-shm", "-journal" };

	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		char p[4096];
		struct stat st;

		if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffixes[i]) >= sizeof(p)) {
			snprintf(err, errlen, "refusing %s: path too long", path);
			return -EPERM;
		}
		if (lstat(p, &st) < 0)
			continue;
		if (S_ISLNK(st.st_mode)) {
			snprintf(err, errlen, "refusing %s: %s is a symbolic link", path, p);
			return -EPERM;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen, "refusing %s: %s is not a regular file", path, p);
			return -EPERM;
		}
		if (!trusted_owner(st.st_uid)) {
			snprintf(err, errlen, "refusing %s: %s is owned by uid %u, neither root nor us", path, p,
				 (unsigned)st.st_uid);
			return -EPERM;
		}
	}
	return 0;
}

/* Open, check the version, migrate, prepare. On failure nothing stays
 * open, and err says why. */
static int connect_db(struct store *s, char *err, size_t errlen)
{
	const char *path = s->opt.path;
	int version = 0, rc, r;

	r = check_db_dir(path, err, errlen);
	if (r >= 0)
		r = check_db_files(path, err, errlen);
	if (r < 0)
		return r;
	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
			     SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc != SQLITE_OK) {
		if (s->db && sqlite3_extended_errcode(s->db) == SQLITE_CANTOPEN_SYMLINK) {
			snprintf(err, errlen, "refusing %s: a directory on its path is a symbolic link", path);
			r = -EPERM;
			goto fail;
		}
		snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
		r = sqlite_to_errno(rc);
		goto fail;
	}
	/* The loop must never wait on another writer: fail fast, retry later. */
	sqlite3_busy_timeout(s->db, 20);
	r = get_user_version(s->db, &version);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	if (version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s has schema version %d, newer than this connpid-queryd's %d: "
			 "refusing to touch it (upgrade connpid or use another --db)",
			 path, version, STORE_SCHEMA_VERSION);
		r = -EPROTO;
		goto fail;
	}
	r = exec_sql(s->db, "PRAGMA journal_mode = WAL");
	if (r >= 0)
		r = exec_sql(s->db, "PRAGMA synchronous = NORMAL");
	if (r < 0) {
		snprintf(err, errlen, "cannot set WAL mode on %s: %s", path, sqlite3_errmsg(s->db));
		goto fail;
	}
	r = migrate(s->db, version, err, errlen);
	if (r < 0)
		goto fail;
	rc = sqlite3_prepare_v3(s->db,
		"INSERT INTO connections (" ROW_COLUMNS ") VALUES "
		"(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, "
		"?20, ?21, ?22, ?23, ?24, ?25)", -1, SQLITE_PREPARE_PERSISTENT, &s->insert, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(s->db,
			"INSERT INTO dns_events (ts, pid, comm, query, answers, source, ttl) "
			"VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1, SQLITE_PREPARE_PERSISTENT, &s->insert_dns, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot prepare statements: %s", sqlite3_errmsg(s->db));
		r = sqlite_to_errno(rc);
		goto fail;
	}
	return 0;
fail:
	disconnect(s);
	return r;
}

int store_open(const struct store_options *o, struct store **ret, char *err, size_t errlen)
{
	struct store *s;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opt = *o;
	if (!s->opt.max_queue)
		s->opt.max_queue = 65536;
	r = connect_db(s, err, errlen);
	if (r == -EPROTO || r == -EPERM) {
		/* a newer schema, or a path others control: never ours to
		 * write, not even later */
		store_close(s);
		return r;
	}
	if (r < 0) {
		/* Read-only, full, missing directory...: queue and retry. */
		set_error_msg(s, err);
	} else {
		s->st.writable = true;
	}
	*ret = s;
	return 0;
}

bool store_is_open(const struct store *s)
{
	return s->db != NULL;
}

static int bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static void row_clear(struct store_row *row)
{
	free(row->exe);
	free(row->cmdline_json);
	free(row->cgroup_path);
	free(row->unit);
	free(row->container_id);
	free(row->domain);
	row->exe = row->cmdline_json = row->cgroup_path = row->unit = row->container_id = NULL;
	row->domain = NULL;
}

struct store *store_close(struct store *s)
{
	if (!s)
		return NULL;
	for (size_t i = 0; i < s->q_len; i++)
		row_clear(&s->queue[(s->q_head + i) % s->q_cap]);
	free(s->queue);
	disconnect(s);
	free(s);
	return NULL;
}

static char *cmdline_to_json(const struct proc_entry *p)
{
	json_object *a;
	char *out;

	if (!p || !p->cmdline_len)
		return NULL;
	a = json_object_new_array();
	for (size_t i = 0; i < p->cmdline_len;) {
		size_t n = strnlen(p->cmdline + i, p->cmdline_len - i);

		json_object_array_add(a, json_object_new_string_len(p->cmdline + i, (int)n));
		i += n + 1;
	}
	out = strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(a);
	return out;
}

static int queue_grow(struct store *s)
{
	size_t cap = s->q_cap ? s->q_cap * 2 : 1024;
	struct store_row *q;

	if (cap > s->opt.max_queue)
		cap = s->opt.max_queue;
	if (cap <= s->q_cap)
		return -ENOBUFS;
	q = calloc(cap, sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < s->q_len; i++)
		q[i] = s->queue[(s->q_head + i) % s->q_cap];
	free(s->queue);
	s->queue = q;
	s->q_cap = cap;
	s->q_head = 0;
	return 0;
}

/* Whether the comma-separated list holds this exact item: whole items
 * are compared, never substrings (10.0.0.1 is not in "10.0.0.11"). */
static bool list_has(const char *list, size_t list_len, const char *item, size_t len)
{
	for (size_t i = 0; i < list_len;) {
		const char *comma = memchr(list + i, ',', list_len - i);
		size_t n = comma ? (size_t)(comma - (list + i)) : list_len - i;

		if (n == len && memcmp(list + i, item, len) == 0)
			return true;
		i += n + 1;
	}
	return false;
}

/* The answers column: each address once, in the order first given. */
static char *answers_dedup(const char *answers)
{
	size_t len = strlen(answers), out_len = 0;
	char *out = malloc(len + 1);

	if (!out)
		return NULL;
	for (const char *p = answers; *p;) {
		size_t n = strcspn(p, ",");

		if (n > 0 && !list_has(out, out_len, p, n)) {
			if (out_len)
				out[out_len++] = ',';
			memcpy(out + out_len, p, n);
			out_len += n;
		}
		p += n;
		if (*p == ',')
			p++;
	}
	out[out_len] = '\0';
	return out;
}

void store_add_dns(struct store *s, double ts, __u32 pid, const char *comm, const char *query,
		   const char *answers, const char *source, __u32 ttl)
{
	_cleanup_free_ char *unique = NULL;
	sqlite3_stmt *st = s->insert_dns;
	int rc;

	if (!s->db) {
		s->st.write_errors++;
		return;
	}
	unique = answers ? answers_dedup(answers) : NULL;
	if (answers && !unique) {
		s->st.write_errors++;
		return;
	}
	sqlite3_reset(st);
	sqlite3_bind_double(st, 1, ts);
	if (pid)
		sqlite3_bind_int64(st, 2, pid);
	else
		sqlite3_bind_null(st, 2);
	bind_opt_text(st, 3, comm && comm[0] ? comm : NULL);
	sqlite3_bind_text(st, 4, query, -1, SQLITE_STATIC);
	bind_opt_text(st, 5, unique);
	sqlite3_bind_text(st, 6, source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, ttl);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE) {
		set_error(s, "DNS write failed");
		s->st.write_errors++;
	}
	sqlite3_reset(st);
}

static char *dup_nonempty(const char *s)
{
	return s && s[0] ? strdup(s) : NULL;
}

void store_queue_flow(struct store *s, const struct flow *f, const struct cgroup_info *cg)
{
	struct store_row *row;

	/* Full while the disk is fine: write a batch now rather than drop.
	 * The loop pauses for one transaction; the kernel ring holds the rest. */
	if (s->q_len == s->q_cap && s->q_cap >= s->opt.max_queue && s->st.writable)
		(void)store_flush(s, 2000);
	if (s->q_len == s->q_cap && queue_grow(s) < 0) {
		/* The disk has refused writes for long: drop the oldest, count it. */
		row_clear(&s->queue[s->q_head]);
		s->q_head = (s->q_head + 1) % s->q_cap;
		s->q_len--;
		s->st.rows_dropped++;
	}
	row = &s->queue[(s->q_head + s->q_len) % s->q_cap];
	row->ev = f->ev;
	row->first_seen = f->first_seen;
	row->exe = f->proc && f->proc->exe ? strdup(f->proc->exe) : NULL;
	/* rendered once per process, not per row: it was the costliest part
	 * of queueing a row (json-c per row, perf) */
	if (f->proc && !f->proc->cmdline_json)
		f->proc->cmdline_json = cmdline_to_json(f->proc);
	row->cmdline_json = f->proc && f->proc->cmdline_json ? strdup(f->proc->cmdline_json) : NULL;
	row->domain = f->domain ? dup_nonempty(f->domain->name) : NULL;
	if (cg && cg->resolved) {
		row->cgroup_path = dup_nonempty(cg->path);
		row->unit = dup_nonempty(cg->ident.unit);
		row->container_id = dup_nonempty(cg->ident.container_id);
	}
	s->q_len++;
	s->st.rows_queued++;
}

size_t store_queue_len(const struct store *s)
{
	return s->q_len;
}

static int bind_row(sqlite3_stmt *st, const struct store_row *row)
{
	const struct connpid_event *e = &row->ev;
	char src[64], dst[64];
	int rc = SQLITE_OK;

	format_ip(e->family, e->src_ip, src, sizeof(src));
	format_ip(e->family, e->dst_ip, dst, sizeof(dst));
	rc |= sqlite3_bind_double(st, 1, row->first_seen);
	rc |= sqlite3_bind_double(st, 2, row->first_seen);
	rc |= sqlite3_bind_text(st, 3, protocol_name(e->protocol), -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 4, e->family == AF_INET ? "ipv4" : "ipv6", -1, SQLITE_STATIC);
	rc |= sqlite3_bind_text(st, 5, src, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int(st, 6, e->src_port);
	rc |= sqlite3_bind_text(st, 7, dst, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int(st, 8, e->dst_port);
	rc |= sqlite3_bind_int64(st, 9, e->pid);
	rc |= sqlite3_bind_int64(st, 10, e->tid);
	rc |= sqlite3_bind_int64(st, 11, e->uid);
	rc |= sqlite3_bind_int64(st, 12, e->gid);
	rc |= sqlite3_bind_text(st, 13, e->comm, (int)strnlen(e->comm, sizeof(e->comm)), SQLITE_TRANSIENT);
	rc |= row->exe ? sqlite3_bind_text(st, 14, row->exe, -1, SQLITE_STATIC) : sqlite3_bind_null(st, 14);
	rc |= row->cmdline_json ? sqlite3_bind_text(st, 15, row->cmdline_json, -1, SQLITE_STATIC)
				: sqlite3_bind_null(st, 15);
	rc |= sqlite3_bind_int64(st, 16, (sqlite3_int64)boottime_ns_to_ticks(e->start_boottime_ns));
	rc |= sqlite3_bind_int64(st, 17, (sqlite3_int64)e->cgroup_id);
	rc |= bind_opt_text(st, 18, row->cgroup_path);
	rc |= bind_opt_text(st, 19, row->unit);
	rc |= bind_opt_text(st, 20, row->container_id);
	/* container name and image: Docker answers later than rows are written */
	rc |= sqlite3_bind_null(st, 21);
	rc |= sqlite3_bind_null(st, 22);
	rc |= bind_opt_text(st, 23, row->domain);
	rc |= sqlite3_bind_int64(st, 24, (sqlite3_int64)e->socket_cookie);
	rc |= sqlite3_bind_int64(st, 25, (sqlite3_int64)e->netns_ino);
	return rc == SQLITE_OK ? 0 : -EINVAL;
}

int store_flush(struct store *s, size_t max_rows)
{
	size_t n = s->q_len < max_rows ? s->q_len : max_rows, done = 0;
	int r;

	if (n == 0)
		return 0;
	if (!s->db) {
		char err[512];

		r = connect_db(s, err, sizeof(err));
		if (r < 0) {
			set_error_msg(s, err);
			s->st.write_errors++;
			return r;
		}
		log_info("History store: %s is open", s->opt.path);
	}
	r = exec_sql(s->db, "BEGIN IMMEDIATE");
	if (r < 0)
		goto fail;
	for (; done < n; done++) {
		const struct store_row *row = &s->queue[(s->q_head + done) % s->q_cap];
		int rc;

		sqlite3_reset(s->insert);
		r = bind_row(s->insert, row);
		if (r < 0)
			goto rollback;
		rc = sqlite3_step(s->insert);
		if (rc != SQLITE_DONE) {
			r = sqlite_to_errno(rc);
			goto rollback;
		}
	}
	r = exec_sql(s->db, "COMMIT");
	if (r < 0)
		goto rollback;
	sqlite3_reset(s->insert);
	/* Only now are the rows on disk: release them from the queue. */
	for (size_t i = 0; i < n; i++) {
		row_clear(&s->queue[s->q_head]);
		s->q_head = (s->q_head + 1) % s->q_cap;
	}
	s->q_len -= n;
	s->st.rows_written += n;
	s->st.transactions++;
	if (!s->st.writable)
		log_info("History store: writing again (%zu rows waiting)", s->q_len);
	s->st.writable = true;
	s->st.last_error = NULL;
	return (int)n;
rollback:
	/* the message first: resetting the statement clears it */
	set_error(s, "write failed");
	sqlite3_reset(s->insert);
	(void)exec_sql(s->db, "ROLLBACK");
	s->st.write_errors++;
	return r;
fail:
	set_error(s, "cannot start a transaction");
	s->st.write_errors++;
	return r;
}

/* One bounded DELETE: ?1 is the statement's threshold, ?2 the batch. */
static int delete_batch(struct store *s, const char *sql, double threshold, size_t limit)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	sqlite3_bind_double(st, 1, threshold);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	return sqlite3_changes(s->db);
}

int store_prune(struct store *s, double now, size_t batch)
{
	int deleted = 0, r;

	if (!s->db)
		return 0;
	if (s->opt.retain_days > 0) {
		double cutoff = now - s->opt.retain_days * 86400.0;

		/* DNS answers age out with the flows they explained. */
		r = delete_batch(s, "DELETE FROM dns_events WHERE id IN "
				 "(SELECT id FROM dns_events WHERE ts < ?1 ORDER BY ts LIMIT ?2)", cutoff, batch);
		if (r < 0)
			return r;
		r = delete_batch(s, "DELETE FROM connections WHERE id IN "
				 "(SELECT id FROM connections WHERE ts < ?1 ORDER BY ts LIMIT ?2)", cutoff, batch);
		if (r < 0)
			return r;
		deleted += r;
	}
	if (s->opt.retain_rows > 0 && (size_t)deleted < batch) {
		/* ids grow with time: the newest retain_rows ids stay. */
		r = delete_batch(s, "DELETE FROM connections WHERE id IN "
				 "(SELECT id FROM connections WHERE id <= "
				 "(SELECT max(id) FROM connections) - ?1 ORDER BY id LIMIT ?2)",
				 (double)s->opt.retain_rows, batch - (size_t)deleted);
		if (r < 0)
			return r;
		deleted += r;
	}
	s->st.rows_pruned += deleted;
	return deleted;
}

void store_get_stats(const struct store *s, struct store_stats *ret)
{
	*ret = s->st;
	ret->queue_len = s->q_len;
}

static json_object *row_to_json(sqlite3_stmt *st)
{
	json_object *o = json_object_new_object();
	int n = sqlite3_column_count(st);

	for (int i = 0; i < n; i++) {
		const char *name = sqlite3_column_name(st, i);
		json_object *v = NULL;

		switch (sqlite3_column_type(st, i)) {
		case SQLITE_INTEGER:
			v = json_object_new_int64(sqlite3_column_int64(st, i));
			break;
		case SQLITE_FLOAT:
			v = json_object_new_double(sqlite3_column_double(st, i));
			break;
		case SQLITE_TEXT:
			if (streq(name, "cmdline"))
				v = json_tokener_parse((const char *)sqlite3_column_text(st, i));
			else
				v = json_object_new_string((const char *)sqlite3_column_text(st, i));
			break;
		default:
			break;
		}
		/* The protocol's names: ts is when the flow was first seen. */
		if (streq(name, "ts"))
			name = "first_seen";
		else if (streq(name, "id"))
			name = "row_id";
		json_object_object_add(o, name, v);
	}
	json_object_object_add(o, "seen", json_object_new_string("history"));
	return o;
}

/* One statement per order: every filter is in it, and an absent filter is
 * bound to NULL, so each filter is named once, next to its value. */
#define HISTORY_SQL(order) \
	"SELECT id, " ROW_COLUMNS " FROM connections " \
	"WHERE ts >= coalesce(:since, -1e300) AND ts <= coalesce(:until, 1e300) " \
	"AND (:pid IS NULL OR pid = :pid) AND (:comm IS NULL OR comm = :comm) " \
	"AND (:exe IS NULL OR exe = :exe) AND (:dst IS NULL OR dst = :dst) " \
	"AND (:dport IS NULL OR dport = :dport) AND (:proto IS NULL OR proto = :proto) " \
	"AND (:domain IS NULL OR domain = :domain) AND (:unit IS NULL OR unit = :unit) " \
	"AND (:container IS NULL OR container_id = :container OR container_name = :container) " \
	"ORDER BY ts " order ", id " order " LIMIT :limit"

static void bind_name_text(sqlite3_stmt *st, const char *name, const char *v)
{
	(void)bind_opt_text(st, sqlite3_bind_parameter_index(st, name), v);
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

int store_history(struct store *s, const struct history_query *q, json_object **ret)
{
	sqlite3_stmt *st = NULL;
	json_object *arr;
	int rc, n = 0;

	if (!s->db)
		return -ENOTCONN;
	rc = sqlite3_prepare_v2(s->db, q->ascending ? HISTORY_SQL("ASC") : HISTORY_SQL("DESC"), -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	bind_name_double(st, ":since", q->has_since, q->since);
	bind_name_double(st, ":until", q->has_until, q->until);
	bind_name_int(st, ":pid", q->has_pid, q->pid);
	bind_name_text(st, ":comm", q->comm);
	bind_name_text(st, ":exe", q->exe);
	bind_name_text(st, ":dst", q->dst);
	bind_name_int(st, ":dport", q->has_dport, q->dport);
	bind_name_text(st, ":proto", q->has_proto ? protocol_name(q->proto) : NULL);
	bind_name_text(st, ":domain", q->domain);
	bind_name_text(st, ":unit", q->unit);
	bind_name_text(st, ":container", q->container);
	bind_name_int(st, ":limit", true, q->limit);

	arr = json_object_new_array();
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		json_object_array_add(arr, row_to_json(st));
		n++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		json_object_put(arr);
		return sqlite_to_errno(rc);
	}
	*ret = arr;
	return n;
}

int store_lookup_at(struct store *s, __u8 proto, const char *dst, __u16 sport, __u16 dport,
		    double at, json_object **ret)
{
	sqlite3_stmt *st = NULL;
	int rc, found = 0;

	if (!s->db)
		return -ENOTCONN;
	/* Walks the time index backwards from `at`: the log has no 4-tuple
	 * index on purpose, and this is not the live lookup path. */
	rc = sqlite3_prepare_v2(s->db, "SELECT id, " ROW_COLUMNS " FROM connections "
				"WHERE ts <= ?1 AND sport = ?2 AND dport = ?3 AND dst = ?4 AND proto = ?5 "
				"ORDER BY ts DESC, id DESC LIMIT 1", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	sqlite3_bind_double(st, 1, at);
	sqlite3_bind_int(st, 2, sport);
	sqlite3_bind_int(st, 3, dport);
	sqlite3_bind_text(st, 4, dst, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, protocol_name(proto), -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = row_to_json(st);
		found = 1;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	return found;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The history store's writer side: schema and migrations, the queue the
 * loop fills, and the writer thread that empties it in batched
 * transactions and prunes past retention. Nothing here runs SQLite on the
 * loop except store_open() at startup.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cgroup-cache.h"
#include "flowkey.h"
#include "log.h"
#include "macro.h"
#include "procinfo.h"
#include "safe-path.h"
#include "store-internal.h"

#define WRITE_BATCH 4096
#define WRITE_LINGER_MS 50        /* a lone row waits this long for company */
#define RETRY_MS 2000             /* a refusing disk is tried again this often */
#define PRUNE_EVERY_MS 30000
#define PRUNE_BATCH 5000
#define PRUNE_MAX 50000 /* rows one prune transaction deletes at most */
#define DEFAULT_MAX_QUEUE 262144  /* ~1.3 s of a 200k flows/s burst */
#define INTERN_MAX 65536          /* cached ids per table; past it, start over */

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#endif

/* Each step takes the schema from version i to i + 1, inside one
 * transaction with the user_version bump. Version 1 is the Lanthorn-shaped
 * tables; version 2 adds process identity, cgroup and container columns;
 * version 3 stores process, cgroup and domain details once, in their own
 * tables, and the `connection_details` view puts rows back together with
 * the version 2 column names; version 4 adds the direction and the
 * listener of accepted connections. */
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

	/* proto as its IP protocol number, family from the address, last_seen
	 * was always ts; the cookie index went (random order: it cost more
	 * per row than it saved, RESULTS.md). */
	"CREATE TABLE processes ("
	"  id INTEGER PRIMARY KEY, pid INTEGER, start_time INTEGER, exe TEXT, cmdline TEXT);"
	"CREATE INDEX processes_pid ON processes(pid, start_time);"
	"CREATE INDEX processes_exe ON processes(exe);"
	"CREATE TABLE cgroups ("
	"  id INTEGER PRIMARY KEY, cgroup_id INTEGER, cgroup_path TEXT, unit TEXT,"
	"  container_id TEXT, container_name TEXT, container_image TEXT);"
	"CREATE INDEX cgroups_cgroup_id ON cgroups(cgroup_id);"
	"CREATE INDEX cgroups_unit ON cgroups(unit);"
	"CREATE INDEX cgroups_container_id ON cgroups(container_id);"
	"CREATE INDEX cgroups_container_name ON cgroups(container_name);"
	"CREATE TABLE domains (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
	"CREATE TABLE connections3 ("
	"  id INTEGER PRIMARY KEY, ts REAL NOT NULL, proto INTEGER NOT NULL, src TEXT,"
	"  sport INTEGER NOT NULL, dst TEXT NOT NULL, dport INTEGER NOT NULL, pid INTEGER,"
	"  tid INTEGER, uid INTEGER, gid INTEGER, comm TEXT, proc INTEGER, cgroup INTEGER,"
	"  domain INTEGER, socket_cookie INTEGER, netns INTEGER);"
	"INSERT INTO processes (pid, start_time, exe, cmdline)"
	"  SELECT DISTINCT pid, start_time, exe, cmdline FROM connections"
	"  WHERE exe IS NOT NULL OR cmdline IS NOT NULL OR start_time IS NOT NULL;"
	"INSERT INTO cgroups (cgroup_id, cgroup_path, unit, container_id, container_name, container_image)"
	"  SELECT DISTINCT cgroup_id, cgroup_path, unit, container_id, container_name, container_image"
	"  FROM connections WHERE cgroup_id IS NOT NULL OR cgroup_path IS NOT NULL;"
	"INSERT INTO domains (name) SELECT DISTINCT domain FROM connections WHERE domain IS NOT NULL;"
	"INSERT INTO connections3 (id, ts, proto, src, sport, dst, dport, pid, tid, uid, gid, comm,"
	"  proc, cgroup, domain, socket_cookie, netns)"
	"  SELECT c.id, c.ts, CASE c.proto WHEN 'tcp' THEN 6 WHEN 'udp' THEN 17"
	"    ELSE coalesce(CAST(c.proto AS INTEGER), 0) END, c.src, c.sport, c.dst, c.dport, c.pid,"
	"    c.tid, c.uid, c.gid, c.comm,"
	"    (SELECT p.id FROM processes p WHERE p.pid IS c.pid AND p.start_time IS c.start_time"
	"       AND p.exe IS c.exe AND p.cmdline IS c.cmdline),"
	"    (SELECT g.id FROM cgroups g WHERE g.cgroup_id IS c.cgroup_id AND g.cgroup_path IS c.cgroup_path"
	"       AND g.unit IS c.unit AND g.container_id IS c.container_id"
	"       AND g.container_name IS c.container_name AND g.container_image IS c.container_image),"
	"    (SELECT d.id FROM domains d WHERE d.name = c.domain),"
	"    c.socket_cookie, c.netns FROM connections c;"
	"DROP TABLE connections;"
	"ALTER TABLE connections3 RENAME TO connections;"
	"CREATE INDEX connections_ts ON connections(ts);"
	"CREATE VIEW connection_details AS SELECT c.id AS id, c.ts AS ts, c.ts AS last_seen,"
	"  CASE c.proto WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' ELSE CAST(c.proto AS TEXT) END AS proto,"
	"  CASE WHEN instr(c.dst, ':') THEN 'ipv6' ELSE 'ipv4' END AS family,"
	"  c.src AS src, c.sport AS sport, c.dst AS dst, c.dport AS dport, c.pid AS pid, c.tid AS tid,"
	"  c.uid AS uid, c.gid AS gid, c.comm AS comm, p.exe AS exe, p.cmdline AS cmdline,"
	"  p.start_time AS start_time, g.cgroup_id AS cgroup_id, g.cgroup_path AS cgroup_path,"
	"  g.unit AS unit, g.container_id AS container_id, g.container_name AS container_name,"
	"  g.container_image AS container_image, d.name AS domain, c.socket_cookie AS socket_cookie,"
	"  c.netns AS netns, c.proc AS proc_ref, c.cgroup AS cgroup_ref, c.domain AS domain_ref"
	"  FROM connections c LEFT JOIN processes p ON p.id = c.proc"
	"  LEFT JOIN cgroups g ON g.id = c.cgroup LEFT JOIN domains d ON d.id = c.domain;",

	/* Accepted connections (issue 14): direction NULL or 0 is outbound,
	 * 1 inbound; the listener's columns are set only for inbound rows
	 * whose listening process is known. Columns added, not rewritten:
	 * the old rows need no UPDATE (NULL reads as outbound). The view
	 * says the direction in words and sits after proto, as in a FLOW. */
	"ALTER TABLE connections ADD COLUMN direction INTEGER;"
	"ALTER TABLE connections ADD COLUMN listener_pid INTEGER;"
	"ALTER TABLE connections ADD COLUMN listener_start_time INTEGER;"
	"ALTER TABLE connections ADD COLUMN listener_comm TEXT;"
	"DROP VIEW connection_details;"
	"CREATE VIEW connection_details AS SELECT c.id AS id, c.ts AS ts, c.ts AS last_seen,"
	"  CASE c.proto WHEN 6 THEN 'tcp' WHEN 17 THEN 'udp' ELSE CAST(c.proto AS TEXT) END AS proto,"
	"  CASE c.direction WHEN 1 THEN 'inbound' ELSE 'outbound' END AS direction,"
	"  CASE WHEN instr(c.dst, ':') THEN 'ipv6' ELSE 'ipv4' END AS family,"
	"  c.src AS src, c.sport AS sport, c.dst AS dst, c.dport AS dport, c.pid AS pid, c.tid AS tid,"
	"  c.uid AS uid, c.gid AS gid, c.comm AS comm, p.exe AS exe, p.cmdline AS cmdline,"
	"  p.start_time AS start_time, g.cgroup_id AS cgroup_id, g.cgroup_path AS cgroup_path,"
	"  g.unit AS unit, g.container_id AS container_id, g.container_name AS container_name,"
	"  g.container_image AS container_image, d.name AS domain, c.socket_cookie AS socket_cookie,"
	"  c.netns AS netns, c.listener_pid AS listener_pid, c.listener_comm AS listener_comm,"
	"  c.listener_start_time AS listener_start_time,"
	"  c.proc AS proc_ref, c.cgroup AS cgroup_ref, c.domain AS domain_ref"
	"  FROM connections c LEFT JOIN processes p ON p.id = c.proc"
	"  LEFT JOIN cgroups g ON g.id = c.cgroup LEFT JOIN domains d ON d.id = c.domain;",
};

static void set_error_locked(struct store *s, const char *now)
{
	/* Said once per new reason; the counters say how often. */
	if (!s->st.last_error || strcmp(now, s->last_error) != 0)
		log_warning("History store: %s", now);
	snprintf(s->last_error, sizeof(s->last_error), "%s", now);
	s->st.last_error = s->last_error;
	s->st.writable = false;
}

static void set_error_msg(struct store *s, const char *now)
{
	pthread_mutex_lock(&s->lock);
	set_error_locked(s, now);
	pthread_mutex_unlock(&s->lock);
}

/* Only the writer calls it: s->db is its connection. */
static void set_error(struct store *s, const char *what)
{
	char now[sizeof(s->last_error)];

	snprintf(now, sizeof(now), "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "database not open");
	set_error_msg(s, now);
}

int store_sqlite_to_errno(int rc)
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
	case SQLITE_INTERRUPT:
		return -ETIME;
	default:
		return -EIO;
	}
}

static int exec_sql(sqlite3 *db, const char *sql)
{
	int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : store_sqlite_to_errno(rc);
}

static int get_user_version(sqlite3 *db, int *ret)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_to_errno(rc);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : store_sqlite_to_errno(rc);
}

static int migrate(sqlite3 *db, int from, char *err, size_t errlen)
{
	for (int v = from; v < STORE_SCHEMA_VERSION; v++) {
		char bump[64];
		int r;

		if (v > 0)
			log_info("History store: migrating the schema from version %d to %d", v, v + 1);
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

/* Every entry freed; the buckets (and the hash's key) stay. */
static void intern_empty(struct intern *t)
{
	if (!t->t.buckets)
		return;
	for (struct hnode *n = htable_steal_all(&t->t), *next; n; n = next) {
		next = n->next;
		free(hnode_entry(n, struct intern_entry, node));
	}
}

static void intern_clear(struct intern *t)
{
	intern_empty(t);
	htable_done(&t->t);
}

static void disconnect(struct store *s)
{
	sqlite3_stmt **sts[] = { &s->insert, &s->insert_dns, &s->ins_proc, &s->sel_proc, &s->ins_cg,
				 &s->sel_cg, &s->ins_dom, &s->sel_dom };

	for (size_t i = 0; i < ARRAY_SIZE(sts); i++) {
		sqlite3_finalize(*sts[i]);
		*sts[i] = NULL;
	}
	if (s->db)
		sqlite3_close_v2(s->db);
	s->db = NULL;
	atomic_store(&s->open, false);
	/* ids cached for a connection that rolled back may not exist */
	intern_clear(&s->procs);
	intern_clear(&s->cgroups);
	intern_clear(&s->domains);
}

/* The database's directory: whoever may add or swap entries there could
 * point the database or its -wal/-shm at any file we would then write.
 * A missing directory is not refused: the store retries until it exists. */
static int check_db_dir(const char *path, char *err, size_t errlen)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash, why[128];
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
	if (dir_is_safe(&st, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "refusing %s: its directory %s is %s", path, dir, why);
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
		if (!uid_is_trusted(st.st_uid)) {
			snprintf(err, errlen, "refusing %s: %s is owned by uid %u, neither root nor us", path, p,
				 (unsigned)st.st_uid);
			return -EPERM;
		}
	}
	return 0;
}

/* Everything an open would be refused for, before SQLite touches it. */
int store_check_path(const char *path, char *err, size_t errlen)
{
	int r = check_db_dir(path, err, errlen);

	return r < 0 ? r : check_db_files(path, err, errlen);
}

/* The writer's statements, prepared once per connection. */
static const struct {
	size_t off;
	const char *sql;
} writer_statements[] = {
	{ offsetof(struct store, insert),
	  "INSERT INTO connections (ts, proto, src, sport, dst, dport, pid, tid, uid, gid, comm, "
	  "proc, cgroup, domain, socket_cookie, netns, direction, listener_pid, "
	  "listener_start_time, listener_comm) VALUES "
	  "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)" },
	{ offsetof(struct store, insert_dns),
	  "INSERT INTO dns_events (ts, pid, comm, query, answers, source, ttl) "
	  "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
	{ offsetof(struct store, sel_proc),
	  "SELECT id FROM processes WHERE pid IS ?1 AND start_time IS ?2 AND exe IS ?3 "
	  "AND cmdline IS ?4 LIMIT 1" },
	{ offsetof(struct store, ins_proc),
	  "INSERT INTO processes (pid, start_time, exe, cmdline) VALUES (?1, ?2, ?3, ?4)" },
	{ offsetof(struct store, sel_cg),
	  "SELECT id FROM cgroups WHERE cgroup_id IS ?1 AND cgroup_path IS ?2 AND unit IS ?3 "
	  "AND container_id IS ?4 AND container_name IS NULL AND container_image IS NULL LIMIT 1" },
	{ offsetof(struct store, ins_cg),
	  "INSERT INTO cgroups (cgroup_id, cgroup_path, unit, container_id) VALUES (?1, ?2, ?3, ?4)" },
	{ offsetof(struct store, sel_dom), "SELECT id FROM domains WHERE name = ?1" },
	{ offsetof(struct store, ins_dom), "INSERT INTO domains (name) VALUES (?1)" },
};

static int prepare_writer_statements(struct store *s, char *err, size_t errlen)
{
	for (size_t i = 0; i < ARRAY_SIZE(writer_statements); i++) {
		int rc = sqlite3_prepare_v3(s->db, writer_statements[i].sql, -1, SQLITE_PREPARE_PERSISTENT,
					    (sqlite3_stmt **)((char *)s + writer_statements[i].off), NULL);

		if (rc != SQLITE_OK) {
			snprintf(err, errlen, "cannot prepare statements: %s", sqlite3_errmsg(s->db));
			return store_sqlite_to_errno(rc);
		}
	}
	return 0;
}

/* sqlite3_open_v2() without following links, saying which refusal. */
static int open_db(struct store *s, char *err, size_t errlen)
{
	const char *path = s->opt.path;
	int rc;

	rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
			     SQLITE_OPEN_NOFOLLOW, NULL);
	if (rc == SQLITE_OK)
		return 0;
	if (s->db && sqlite3_extended_errcode(s->db) == SQLITE_CANTOPEN_SYMLINK) {
		snprintf(err, errlen, "refusing %s: a directory on its path is a symbolic link", path);
		return -EPERM;
	}
	snprintf(err, errlen, "cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : "out of memory");
	return store_sqlite_to_errno(rc);
}

/* The file's schema version, refused when newer than ours; WAL mode. */
static int check_version(struct store *s, int *ret_version, char *err, size_t errlen)
{
	const char *path = s->opt.path;
	int r;

	r = get_user_version(s->db, ret_version);
	if (r < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, sqlite3_errmsg(s->db));
		return r;
	}
	if (*ret_version > STORE_SCHEMA_VERSION) {
		snprintf(err, errlen, "%s has schema version %d, newer than this connpid-queryd's %d: "
			 "refusing to touch it (upgrade connpid or use another --db)",
			 path, *ret_version, STORE_SCHEMA_VERSION);
		return -EPROTO;
	}
	r = exec_sql(s->db, "PRAGMA journal_mode = WAL");
	if (r >= 0)
		r = exec_sql(s->db, "PRAGMA synchronous = NORMAL");
	if (r < 0)
		snprintf(err, errlen, "cannot set WAL mode on %s: %s", path, sqlite3_errmsg(s->db));
	return r;
}

/* Open, check the version, migrate, prepare. On failure nothing stays
 * open, and err says why. */
static int connect_db(struct store *s, char *err, size_t errlen)
{
	int version = 0, r;

	r = store_check_path(s->opt.path, err, errlen);
	if (r < 0)
		return r;
	r = open_db(s, err, errlen);
	if (r < 0)
		goto fail;
	/* The writer thread may wait a little for another writer; the loop
	 * never waits on it. */
	sqlite3_busy_timeout(s->db, 200);
	r = check_version(s, &version, err, errlen);
	if (r >= 0)
		r = migrate(s->db, version, err, errlen);
	if (r >= 0)
		r = prepare_writer_statements(s, err, errlen);
	if (r < 0)
		goto fail;
	atomic_store(&s->open, true);
	return 0;
fail:
	disconnect(s);
	return r;
}

static void item_clear(struct store_item *it)
{
	free(it->blob);
	it->blob = NULL;
}

/* --- interning: each process, cgroup and domain stored once --- */

static sqlite3_int64 intern_find(const struct intern *t, const char *key, __u32 len, __u64 h)
{
	if (!t->t.buckets)
		return 0;
	HTABLE_FOREACH_HASH(n, &t->t, h) {
		const struct intern_entry *e = hnode_entry(n, struct intern_entry, node);

		/* the whole key is compared: a collision finds nothing, it
		 * never borrows another process's row */
		if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
			return e->id;
	}
	return 0;
}

static void intern_add(struct intern *t, const char *key, __u32 len, __u64 h, sqlite3_int64 id)
{
	struct intern_entry *e;

	if (!t->t.buckets)
		return; /* no memory for buckets: every lookup is a SELECT */
	if (t->t.n >= INTERN_MAX)
		intern_empty(t); /* start over: a miss only costs a SELECT */
	e = malloc(sizeof(*e) + len);
	if (!e)
		return;
	memcpy(e->key, key, len);
	e->len = len;
	e->hash = h;
	e->id = id;
	htable_add(&t->t, &e->node, h);
}

static int bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
	return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Step a SELECT id (0: none) or an INSERT (its rowid). */
static int step_id(struct store *s, sqlite3_stmt *st, bool insert, sqlite3_int64 *ret)
{
	int rc = sqlite3_step(st);

	*ret = 0;
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE && insert)
		*ret = sqlite3_last_insert_rowid(s->db);
	else if (rc != SQLITE_DONE) {
		sqlite3_reset(st);
		return store_sqlite_to_errno(rc);
	}
	sqlite3_reset(st);
	return 0;
}

/* Segment "proc": start ticks (8), pid (4), flags (1), exe\0, cmdline\0.
 * Segment "cg": cgroup id (8), flags (1), path\0, unit\0, container\0. */
#define SEG_HAS_A 1
#define SEG_HAS_B 2
#define SEG_HAS_C 4

static const char *seg_str(const char **p, bool has)
{
	const char *v = *p;

	*p += strlen(v) + 1;
	return has ? v : NULL;
}

static int bind_proc(sqlite3_stmt *st, const char *seg)
{
	__u64 start;
	__u32 pid;
	__u8 fl;
	const char *p = seg + 13, *exe, *cmd;

	memcpy(&start, seg, 8);
	memcpy(&pid, seg + 8, 4);
	fl = (__u8)seg[12];
	exe = seg_str(&p, fl & SEG_HAS_A);
	cmd = seg_str(&p, fl & SEG_HAS_B);
	sqlite3_bind_int64(st, 1, pid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)start);
	bind_opt_text(st, 3, exe);
	return bind_opt_text(st, 4, cmd);
}

static int bind_cg(sqlite3_stmt *st, const char *seg)
{
	__u64 id;
	__u8 fl;
	const char *p = seg + 9, *path, *unit, *cid;

	memcpy(&id, seg, 8);
	fl = (__u8)seg[8];
	path = seg_str(&p, fl & SEG_HAS_A);
	unit = seg_str(&p, fl & SEG_HAS_B);
	cid = seg_str(&p, fl & SEG_HAS_C);
	sqlite3_bind_int64(st, 1, (sqlite3_int64)id);
	bind_opt_text(st, 2, path);
	bind_opt_text(st, 3, unit);
	return bind_opt_text(st, 4, cid);
}

static int intern_id(struct store *s, struct intern *t, const char *seg, __u32 len,
		     sqlite3_stmt *sel, sqlite3_stmt *ins, int (*bind)(sqlite3_stmt *, const char *),
		     sqlite3_int64 *ret)
{
	__u64 h;
	int r;

	*ret = 0;
	if (!len)
		return 0;
	if (!t->t.buckets)
		(void)htable_init(&t->t, INTERN_MAX); /* failing, the SELECT answers */
	h = t->t.buckets ? htable_hash(&t->t, seg, len) : 0;
	*ret = intern_find(t, seg, len, h);
	if (*ret)
		return 0;
	bind(sel, seg);
	r = step_id(s, sel, false, ret);
	if (r >= 0 && !*ret) {
		bind(ins, seg);
		r = step_id(s, ins, true, ret);
	}
	if (r < 0)
		return r;
	intern_add(t, seg, len, h, *ret);
	return 0;
}

static int bind_dom(sqlite3_stmt *st, const char *seg)
{
	return sqlite3_bind_text(st, 1, seg, -1, SQLITE_STATIC);
}

/* ?first: direction, then the listener's pid, start time and comm. An
 * outbound row binds NULLs: no payload, one record-header byte each (the
 * bench: 100.1 -> 104.5 bytes per row), and no work on the writer. */
static int bind_direction(sqlite3_stmt *st, int first, const struct store_item *it)
{
	const char *lis = it->lis_off ? it->blob + it->lis_off : NULL;
	__u64 start;
	__u32 pid;
	int rc = SQLITE_OK;

	if (!it->inbound) {
		for (int i = 0; i < 4; i++)
			rc |= sqlite3_bind_null(st, first + i);
		return rc;
	}
	rc |= sqlite3_bind_int(st, first, FLOW_INBOUND);
	if (!lis) {
		for (int i = 1; i < 4; i++)
			rc |= sqlite3_bind_null(st, first + i);
		return rc;
	}
	memcpy(&pid, lis, 4);
	memcpy(&start, lis + 4, 8);
	rc |= sqlite3_bind_int64(st, first + 1, pid);
	rc |= sqlite3_bind_int64(st, first + 2, (sqlite3_int64)start);
	return rc | sqlite3_bind_text(st, first + 3, lis + 12, (int)strnlen(lis + 12, CONNPID_COMM_LEN),
				      SQLITE_TRANSIENT);
}

static int write_flow(struct store *s, const struct store_item *it)
{
	sqlite3_stmt *st = s->insert;
	sqlite3_int64 proc = 0, cg = 0, dom = 0;
	char src[64], dst[64];
	int rc = SQLITE_OK, r;

	r = intern_id(s, &s->procs, it->blob + it->proc_off, it->proc_len, s->sel_proc, s->ins_proc, bind_proc, &proc);
	if (r >= 0)
		r = intern_id(s, &s->cgroups, it->blob + it->cg_off, it->cg_len, s->sel_cg, s->ins_cg, bind_cg, &cg);
	if (r >= 0)
		r = intern_id(s, &s->domains, it->blob + it->dom_off, it->dom_len, s->sel_dom, s->ins_dom, bind_dom, &dom);
	if (r < 0)
		return r;
	format_ip(it->family, it->src, src, sizeof(src));
	format_ip(it->family, it->dst, dst, sizeof(dst));
	rc |= sqlite3_bind_double(st, 1, it->ts);
	rc |= sqlite3_bind_int(st, 2, it->proto);
	rc |= sqlite3_bind_text(st, 3, src, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int(st, 4, it->sport);
	rc |= sqlite3_bind_text(st, 5, dst, -1, SQLITE_TRANSIENT);
	rc |= sqlite3_bind_int(st, 6, it->dport);
	rc |= sqlite3_bind_int64(st, 7, it->pid);
	rc |= sqlite3_bind_int64(st, 8, it->tid);
	rc |= sqlite3_bind_int64(st, 9, it->uid);
	rc |= sqlite3_bind_int64(st, 10, it->gid);
	rc |= sqlite3_bind_text(st, 11, it->comm, (int)strnlen(it->comm, sizeof(it->comm)), SQLITE_TRANSIENT);
	rc |= proc ? sqlite3_bind_int64(st, 12, proc) : sqlite3_bind_null(st, 12);
	rc |= cg ? sqlite3_bind_int64(st, 13, cg) : sqlite3_bind_null(st, 13);
	rc |= dom ? sqlite3_bind_int64(st, 14, dom) : sqlite3_bind_null(st, 14);
	rc |= sqlite3_bind_int64(st, 15, (sqlite3_int64)it->cookie);
	rc |= sqlite3_bind_int64(st, 16, (sqlite3_int64)it->netns);
	rc |= bind_direction(st, 17, it);
	if (rc != SQLITE_OK)
		return -EINVAL;
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_to_errno(rc);
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

static int write_dns(struct store *s, const struct store_item *it)
{
	_cleanup_free_ char *unique = NULL;
	sqlite3_stmt *st = s->insert_dns;
	const char *answers = it->has_answers ? it->blob + it->answers_off : NULL;
	int rc;

	unique = answers ? answers_dedup(answers) : NULL;
	if (answers && !unique)
		return -ENOMEM;
	if (it->pid)
		sqlite3_bind_int64(st, 2, it->pid);
	else
		sqlite3_bind_null(st, 2);
	sqlite3_bind_double(st, 1, it->ts);
	bind_opt_text(st, 3, it->comm[0] ? it->comm : NULL);
	sqlite3_bind_text(st, 4, it->blob + it->query_off, -1, SQLITE_STATIC);
	bind_opt_text(st, 5, unique);
	sqlite3_bind_text(st, 6, it->blob + it->source_off, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, it->ttl);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	return rc == SQLITE_DONE ? 0 : store_sqlite_to_errno(rc);
}

/* One transaction for the batch: all or nothing, the batch stays for a
 * retry on failure. */
static int write_batch(struct store *s, const struct store_item *batch, size_t n)
{
	int r;

	r = exec_sql(s->db, "BEGIN IMMEDIATE");
	if (r < 0) {
		set_error(s, "cannot start a transaction");
		return r;
	}
	for (size_t i = 0; i < n && r >= 0; i++)
		r = batch[i].dns ? write_dns(s, &batch[i]) : write_flow(s, &batch[i]);
	if (r >= 0)
		r = exec_sql(s->db, "COMMIT");
	if (r < 0) {
		/* the message first: the rollback clears it */
		set_error(s, "write failed");
		(void)exec_sql(s->db, "ROLLBACK");
		/* ids interned in this transaction are gone with it */
		intern_clear(&s->procs);
		intern_clear(&s->cgroups);
		intern_clear(&s->domains);
	}
	return r;
}

/* One bounded DELETE: ?1 is the statement's threshold, ?2 the batch. */
static int delete_batch(struct store *s, const char *sql, double threshold, size_t limit)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		return store_sqlite_to_errno(rc);
	sqlite3_bind_double(st, 1, threshold);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return store_sqlite_to_errno(rc);
	return sqlite3_changes(s->db);
}

static double realtime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Delete one batch of rows past retention, on the writer thread. Process,
 * cgroup and domain rows stay: they are few, and rows may still use them. */
static int prune(struct store *s, double now, size_t batch)
{
	int deleted = 0, r;

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
	return deleted;
}

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000 + (__u64)ts.tv_nsec / 1000000;
}

static void wait_until_ms(struct store *s, pthread_cond_t *c, __u64 deadline)
{
	struct timespec ts;
	__u64 now = mono_ms();

	if (deadline <= now)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)((deadline - now) / 1000);
	ts.tv_nsec += (long)((deadline - now) % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(c, &s->lock, &ts);
}

static void wake_loop(struct store *s)
{
	__u64 one = 1;

	(void)!write(s->done_fd, &one, sizeof(one));
}

/* Not open yet (or lost): try again, under the lock released. */
static int writer_connect(struct store *s)
{
	char err[512];
	int r;

	r = connect_db(s, err, sizeof(err));
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		set_error_locked(s, err);
		s->st.write_errors++;
		if (r == -EPERM) {
			/* others' path now: the loop gives the store up */
			s->refused = true;
			wake_loop(s);
		}
		pthread_mutex_unlock(&s->lock);
		return r;
	}
	log_info("History store: %s is open", s->opt.path);
	return 0;
}

/* The writer thread's own state between loop passes. */
struct writer {
	struct store_item *batch; /* WRITE_BATCH items */
	size_t n, since_prune;
	__u64 first_row, next_try, next_prune;
	bool behind; /* the last prune found more past retention */
};

/* Under the lock: true when it is not time to write yet (slept a while). */
static bool writer_wait_locked(struct store *s, struct writer *w, __u64 now, bool stop, bool have)
{
	__u64 deadline = w->next_prune;

	/* wait for a full batch, the linger time, a retry or the pruner */
	if (have)
		deadline = MIN(deadline, MAX(w->first_row + WRITE_LINGER_MS, w->next_try));
	if (stop || now >= deadline || (w->n + s->q_len >= WRITE_BATCH && now >= w->next_try))
		return false;
	s->writer_sleeping = true;
	if (have || deadline != (__u64)-1)
		wait_until_ms(s, &s->writer_wake, deadline);
	s->writer_sleeping = false;
	return true;
}

static void writer_take_locked(struct store *s, struct writer *w)
{
	while (w->n < WRITE_BATCH && s->q_len > 0) {
		w->batch[w->n++] = s->queue[s->q_head];
		s->q_head = (s->q_head + 1) % s->q_cap;
		s->q_len--;
	}
	s->st.queue_len = w->n;
}

static void writer_written_locked(struct store *s, struct writer *w)
{
	if (!s->st.writable)
		log_info("History store: writing again (%zu rows waiting)", s->q_len);
	s->st.rows_written += w->n;
	w->since_prune += w->n;
	s->st.transactions++;
	s->st.writable = true;
	s->st.last_error = NULL;
	for (size_t i = 0; i < w->n; i++)
		item_clear(&w->batch[i]);
	w->n = 0;
	s->st.queue_len = 0;
	w->first_row = 0;
	w->next_try = 0;
	pthread_cond_broadcast(&s->written);
}

/* At or past retention, every write batch is followed by a prune of more
 * rows than it wrote, so the table shrinks back to the limit and stays
 * there even at full ingest (a fixed batch every 200 ms did ~25k rows/s).
 * With a row limit every batch checks (an indexed no-op under the limit):
 * a timer would let a burst run millions of rows past it before the next
 * look. Called and returns with the lock held. */
static void writer_prune_locked(struct store *s, struct writer *w, __u64 now)
{
	size_t want;
	int r;

	if (now < w->next_prune && !(w->since_prune > 0 && (w->behind || s->opt.retain_rows > 0)))
		return;
	want = w->behind ? MIN(w->since_prune + PRUNE_BATCH, (size_t)PRUNE_MAX) : PRUNE_BATCH;
	pthread_mutex_unlock(&s->lock);
	r = prune(s, realtime_now(), want);
	pthread_mutex_lock(&s->lock);
	if (r > 0)
		s->st.rows_pruned += (__u64)r;
	else if (r < 0)
		set_error_locked(s, "cannot prune past retention");
	/* rows were past retention: so will the next batch's be */
	w->behind = r > 0;
	w->since_prune = 0;
	w->next_prune = mono_ms() + (w->behind ? 200 : PRUNE_EVERY_MS);
}

/* Outside the lock: connect if needed, write the batch. */
static int writer_write(struct store *s, struct writer *w, __u64 now)
{
	int r = 0;

	if (!s->db && !s->refused && (w->n || now >= w->next_prune))
		r = writer_connect(s);
	if (r >= 0 && s->db && w->n > 0)
		r = write_batch(s, w->batch, w->n);
	return r;
}

static void *writer_main(void *arg)
{
	struct store *s = arg;
	_cleanup_free_ struct store_item *batch = calloc(WRITE_BATCH, sizeof(*batch));
	struct writer w = { .batch = batch, .next_prune = mono_ms() + 1000 };

	if (!batch)
		return NULL;
	pthread_mutex_lock(&s->lock);
	for (;;) {
		__u64 now = mono_ms();
		bool stop = s->stopping, have = w.n + s->q_len > 0;
		int r;

		if (have && !w.first_row)
			w.first_row = now;
		if (stop && (!have || s->refused))
			break;
		if (writer_wait_locked(s, &w, now, stop, have))
			continue;
		writer_take_locked(s, &w);
		pthread_mutex_unlock(&s->lock);
		r = writer_write(s, &w, now);
		pthread_mutex_lock(&s->lock);
		if (r < 0 || !s->db) {
			s->st.write_errors += r < 0 && s->db ? 1 : 0;
			w.next_try = mono_ms() + RETRY_MS;
			if (stop) {
				log_warning("History store: %zu rows could not be written before exit", w.n + s->q_len);
				break;
			}
			if (w.next_prune <= now)
				w.next_prune = now + PRUNE_EVERY_MS;
			continue;
		}
		if (w.n > 0)
			writer_written_locked(s, &w);
		if (!stop)
			writer_prune_locked(s, &w, now);
	}
	for (size_t i = 0; i < w.n; i++)
		item_clear(&w.batch[i]);
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int store_open(const struct store_options *o, struct store **ret, char *err, size_t errlen)
{
	struct store *s;
	pthread_condattr_t ca;
	int r;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->opt = *o;
	s->done_fd = -EBADF;
	if (!s->opt.max_queue)
		s->opt.max_queue = DEFAULT_MAX_QUEUE;
	if (!s->opt.query_budget_ms)
		s->opt.query_budget_ms = STORE_QUERY_BUDGET_MS;
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->writer_wake, &ca);
	pthread_cond_init(&s->written, &ca);
	pthread_cond_init(&s->reader_wake, &ca);
	pthread_condattr_destroy(&ca);
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
	s->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->done_fd < 0) {
		r = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(-r));
		store_close(s);
		return r;
	}
	r = -pthread_create(&s->writer, NULL, writer_main, s);
	if (r == 0) {
		s->writer_started = true;
		r = -pthread_create(&s->reader, NULL, store_reader_main, s);
		s->reader_started = r == 0;
	}
	if (r < 0) {
		snprintf(err, errlen, "cannot start the store's threads: %s", strerror(-r));
		store_close(s);
		return r;
	}
	*ret = s;
	return 0;
}

bool store_is_open(const struct store *s)
{
	return atomic_load(&((struct store *)s)->open);
}

bool store_refused(struct store *s)
{
	bool r;

	pthread_mutex_lock(&s->lock);
	r = s->refused;
	pthread_mutex_unlock(&s->lock);
	return r;
}

struct store *store_close(struct store *s)
{
	if (!s)
		return NULL;
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	pthread_cond_broadcast(&s->writer_wake);
	pthread_cond_broadcast(&s->reader_wake);
	pthread_cond_broadcast(&s->written);
	pthread_mutex_unlock(&s->lock);
	/* the writer writes what is queued first, if the disk lets it */
	if (s->writer_started)
		pthread_join(s->writer, NULL);
	if (s->reader_started)
		pthread_join(s->reader, NULL);
	for (size_t i = 0; i < s->q_len; i++)
		item_clear(&s->queue[(s->q_head + i) % s->q_cap]);
	free(s->queue);
	store_jobs_free_all(s);
	disconnect(s);
	if (s->done_fd >= 0)
		close(s->done_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->writer_wake);
	pthread_cond_destroy(&s->written);
	pthread_cond_destroy(&s->reader_wake);
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
	struct store_item *q;

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

/* Under the lock: the item goes in, or the oldest goes out for it. */
static void queue_push_locked(struct store *s, struct store_item *it)
{
	if (s->q_len == s->q_cap && queue_grow(s) < 0) {
		/* The writer is far behind or the disk refuses: drop the
		 * oldest, count it. The loop never waits for the disk. */
		item_clear(&s->queue[s->q_head]);
		s->q_head = (s->q_head + 1) % s->q_cap;
		s->q_len--;
		s->st.rows_dropped++;
	}
	s->queue[(s->q_head + s->q_len) % s->q_cap] = *it;
	s->q_len++;
	s->st.rows_queued++;
	if (s->writer_sleeping && (s->q_len == 1 || s->q_len == WRITE_BATCH))
		pthread_cond_signal(&s->writer_wake);
}

static size_t opt_len(const char *v)
{
	return v && v[0] ? strlen(v) + 1 : 1;
}

static char *put_str(char *p, const char *v)
{
	size_t n = v && v[0] ? strlen(v) : 0;

	memcpy(p, v && v[0] ? v : "", n);
	p[n] = '\0';
	return p + n + 1;
}

/* Segment "listener" (inbound only): pid (4), start ticks (8), comm (16). */
#define LIS_LEN (4 + 8 + CONNPID_COMM_LEN)

static void put_listener(struct store_item *it, char *p, const struct flow_who_key *w)
{
	__u64 start = boottime_ns_to_ticks(w->creator_start_boottime_ns);

	it->lis_off = (__u32)(p - it->blob);
	memcpy(p, &w->creator_pid, 4);
	memcpy(p + 4, &start, 8);
	memcpy(p + 12, w->creator_comm, CONNPID_COMM_LEN);
}

/* The strings of a row that are stored once per process, cgroup and
 * domain (the writer interns them). */
struct row_strings {
	const char *exe, *cmd, *path, *unit, *cid, *dom;
	__u64 start;
	bool listener;
};

static void row_strings_of(const struct flow *f, const struct flow_who_key *w, const struct cgroup_info *cg,
			   bool inbound, struct row_strings *rs)
{
	struct proc_entry *proc = flow_proc(f);

	/* rendered once per process, not per row (json-c per row, perf) */
	if (proc && !proc->cmdline_json)
		proc->cmdline_json = cmdline_to_json(proc);
	*rs = (struct row_strings) {
		.exe = proc ? proc->exe : NULL,
		.cmd = proc ? proc->cmdline_json : NULL,
		.dom = f->domain && f->domain->name && f->domain->name[0] ? f->domain->name : NULL,
		.start = boottime_ns_to_ticks(w->start_boottime_ns),
		/* inbound: creator_* is whoever called listen() on the listener */
		.listener = inbound && w->creator_pid,
	};
	if (cg && cg->resolved) {
		rs->path = cg->path;
		rs->unit = cg->ident.unit;
		rs->cid = cg->ident.container_id;
	}
}

/* The row's blob: process, cgroup, domain and listener segments, each the
 * writer's key for its interned row, so equal bytes are one row. */
static int pack_blob(struct store_item *it, const struct row_strings *rs, __u32 pid, __u64 cgroup_id,
		     const struct flow_who_key *w)
{
	size_t len = 13 + opt_len(rs->exe) + opt_len(rs->cmd) + 9 + opt_len(rs->path) + opt_len(rs->unit) +
		     opt_len(rs->cid) + (rs->dom ? strlen(rs->dom) + 1 : 0) + (rs->listener ? LIS_LEN : 0);
	char *p;

	it->blob = p = malloc(len);
	if (!p)
		return -ENOMEM;
	memcpy(p, &rs->start, 8);
	memcpy(p + 8, &pid, 4);
	p[12] = (char)((rs->exe && rs->exe[0] ? SEG_HAS_A : 0) | (rs->cmd && rs->cmd[0] ? SEG_HAS_B : 0));
	p = put_str(put_str(p + 13, rs->exe), rs->cmd);
	it->proc_len = (__u32)(p - it->blob);
	it->cg_off = it->proc_len;
	memcpy(p, &cgroup_id, 8);
	p[8] = (char)((rs->path && rs->path[0] ? SEG_HAS_A : 0) | (rs->unit && rs->unit[0] ? SEG_HAS_B : 0) |
		      (rs->cid && rs->cid[0] ? SEG_HAS_C : 0));
	p = put_str(put_str(put_str(p + 9, rs->path), rs->unit), rs->cid);
	it->cg_len = (__u32)(p - it->blob) - it->cg_off;
	if (rs->dom) {
		it->dom_off = (__u32)(p - it->blob);
		p = put_str(p, rs->dom);
		it->dom_len = (__u32)(p - it->blob) - it->dom_off;
	}
	if (rs->listener)
		put_listener(it, p, w);
	return 0;
}

void store_queue_flow(struct store *s, const struct flow *f, const struct cgroup_info *cg)
{
	static const struct flow_who_key nobody;
	const struct flow_event *e = &f->ev;
	const struct flow_key *k = &f->key;
	const struct flow_who_key *w = f->who ? &f->who->k : &nobody;
	struct store_item it = {
		.proto = k->protocol, .family = k->family, .sport = k->src_port, .dport = k->dst_port,
		.pid = e->pid, .tid = w->tid, .uid = w->uid, .gid = w->gid, .ts = f->first_seen,
		.cookie = e->socket_cookie, .netns = w->netns_ino,
		.inbound = e->flags & CONNPID_EVENT_FLAG_INBOUND,
	};
	struct row_strings rs;
	int r;

	memcpy(it.src, w->src_ip, sizeof(it.src));
	memcpy(it.dst, k->dst_ip, sizeof(it.dst));
	memcpy(it.comm, w->comm, sizeof(it.comm));
	row_strings_of(f, w, cg, it.inbound, &rs);
	r = pack_blob(&it, &rs, e->pid, e->cgroup_id, w); /* outside the lock: the writer waits on it */
	pthread_mutex_lock(&s->lock);
	if (r < 0)
		s->st.rows_dropped++;
	else
		queue_push_locked(s, &it);
	pthread_mutex_unlock(&s->lock);
}

void store_add_dns(struct store *s, double ts, __u32 pid, const char *comm, const char *query,
		   const char *answers, const char *source, __u32 ttl)
{
	struct store_item it = { .dns = true, .ts = ts, .pid = pid, .ttl = ttl, .has_answers = answers != NULL };
	size_t lq = strlen(query) + 1, la = answers ? strlen(answers) + 1 : 1, ls = strlen(source) + 1;

	if (comm)
		snprintf(it.comm, sizeof(it.comm), "%s", comm);
	it.blob = malloc(lq + la + ls);
	if (!it.blob) {
		pthread_mutex_lock(&s->lock);
		s->st.write_errors++;
		pthread_mutex_unlock(&s->lock);
		return;
	}
	memcpy(it.blob, query, lq);
	it.answers_off = (__u32)lq;
	memcpy(it.blob + lq, answers ? answers : "", la);
	it.source_off = (__u32)(lq + la);
	memcpy(it.blob + lq + la, source, ls);
	pthread_mutex_lock(&s->lock);
	queue_push_locked(s, &it);
	pthread_mutex_unlock(&s->lock);
}

size_t store_queue_len(const struct store *s)
{
	struct store *w = (struct store *)s;
	size_t n;

	pthread_mutex_lock(&w->lock);
	n = w->q_len + w->st.queue_len;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void store_get_stats(const struct store *s, struct store_stats *ret)
{
	struct store *w = (struct store *)s;

	pthread_mutex_lock(&w->lock);
	*ret = w->st;
	ret->queue_len = w->q_len + w->st.queue_len;
	if (w->st.last_error) {
		memcpy(w->last_error_copy, w->last_error, sizeof(w->last_error_copy));
		ret->last_error = w->last_error_copy;
	}
	pthread_mutex_unlock(&w->lock);
}

int store_flush(struct store *s, unsigned timeout_ms)
{
	__u64 deadline = mono_ms() + timeout_ms, want;
	int r = 0;

	pthread_mutex_lock(&s->lock);
	want = s->st.rows_queued;
	if (s->st.rows_written + s->st.rows_dropped < want) {
		r = (int)MIN(want - s->st.rows_written - s->st.rows_dropped, (__u64)INT32_MAX);
		pthread_cond_signal(&s->writer_wake);
	}
	while (s->st.rows_written + s->st.rows_dropped < want) {
		if (mono_ms() >= deadline) {
			r = s->st.writable ? -ETIME : -EIO;
			break;
		}
		wait_until_ms(s, &s->written, MIN(deadline, mono_ms() + 100));
	}
	pthread_mutex_unlock(&s->lock);
	return r;
}

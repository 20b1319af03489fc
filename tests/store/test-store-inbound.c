// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Issue 14, history side: the store's writer and reader with accepted
 * (inbound) flows, without the kernel part. The events below are a MOCK
 * of what the loader's --inbound programs send (common/connpid.h,
 * CONNPID_EVENT_FLAG_INBOUND: src = the local end, dst = the peer,
 * creator_* = whoever called listen()); they go through the same
 * store_queue_flow() queryd calls for every ring-buffer event.
 *
 * Checked: the columns written (outbound rows: direction and listener
 * NULL; inbound: 1 and the listener when known), the history rows'
 * "direction" and "listener" members (as a live FLOW has them), and "lookup at" narrowed by
 * direction, src and netns (the same key in four namespaces/directions).
 * And a plain lookup's history fallback (map_pid): the reader writes the
 * row whole, alive/pid_reused/in_map in their FLOW places, as "fields"
 * asks; a row of another pid is no answer.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sqlite3.h>

#include "check.h"
#include "macro.h"
#include "procinfo.h"
#include "store.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct mock {
	const char *src, *dst;
	__u16 sport, dport;
	__u32 pid;
	__u64 netns;
	bool inbound;
	__u32 listener_pid; /* creator_pid */
	const char *comm, *listener_comm;
};

/* A mock of one kernel event, as ringbuf.c would index it; its owner
 * started start_ns after boot (0: 7 s). */
static void queue_mock(struct store *s, const struct mock *m, double ts, __u64 start_ns)
{
	struct flow f = { .first_seen = ts, .last_seen = ts };
	struct flow_who who = {};
	struct connpid_event ev = {}, *e = &ev;

	e->family = AF_INET;
	e->protocol = CONNPID_PROTO_TCP;
	inet_pton(AF_INET, m->src, &e->src_ip[0]);
	inet_pton(AF_INET, m->dst, &e->dst_ip[0]);
	e->src_port = m->sport;
	e->dst_port = m->dport;
	e->pid = e->tid = m->pid;
	e->netns_ino = m->netns;
	e->start_boottime_ns = start_ns ? start_ns : 7000000000ULL;
	snprintf(e->comm, sizeof(e->comm), "%s", m->comm);
	if (m->inbound) {
		e->flags = CONNPID_EVENT_FLAG_INBOUND;
		e->source = CONNPID_SRC_ACCEPT;
		e->creator_pid = m->listener_pid;
		if (m->listener_pid) {
			e->creator_start_boottime_ns = 5000000000ULL;
			/* up to 16 bytes, maybe no NUL: the writer must bound it */
			memcpy(e->creator_comm, m->listener_comm, strnlen(m->listener_comm, CONNPID_COMM_LEN));
		}
	}
	flow_fill(&f, &who, e);
	store_queue_flow(s, &f, NULL);
}

static json_object *answer;
static int answer_r;

static void on_done(struct store_job *j)
{
	answer_r = j->r;
	/* rows are pre-rendered text: parse them back to look inside */
	answer = j->rows ? json_tokener_parse(json_object_to_json_string(j->rows)) : NULL;
}

/* Submit j and run the loop's part until it is done. */
static int run(struct store *s, struct store_job *j)
{
	struct pollfd p = { .fd = store_done_fd(s), .events = POLLIN };

	json_object_put(answer);
	answer = NULL;
	answer_r = -EINPROGRESS;
	j->done = on_done;
	if (store_submit(s, j) < 0) {
		store_job_free(j);
		return -EIO;
	}
	while (answer_r == -EINPROGRESS && poll(&p, 1, 10000) > 0)
		store_dispatch_done(s);
	return answer_r;
}

static int64_t member_int(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

static const char *member_str(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && v ? json_object_get_string(v) : "(absent)";
}

/* Who owned tcp dst:sport->dport at `at`, in this scope. */
static int64_t lookup_at(struct store *s, enum flow_direction d, const char *src, __u64 netns, double at)
{
	struct store_job *j = store_job_new(STORE_JOB_LOOKUP_AT);

	j->proto = CONNPID_PROTO_TCP;
	snprintf(j->dst, sizeof(j->dst), "192.0.2.9");
	j->sport = 8080;
	j->dport = 51000;
	j->at = at;
	j->direction = d;
	snprintf(j->src, sizeof(j->src), "%s", src ? src : "");
	j->netns = netns;
	if (run(s, j) < 0)
		return -2;
	return answer ? member_int(answer, "pid") : -1;
}

static int history_count(struct store *s, void (*fill)(struct history_query *q))
{
	struct store_job *j = store_job_new(STORE_JOB_HISTORY);

	j->q.limit = 100;
	fill(&j->q);
	if (run(s, j) < 0 || !answer)
		return -1;
	return (int)json_object_array_length(answer);
}

static void f_inbound(struct history_query *q)
{
	q->has_direction = true;
	q->direction = FLOW_INBOUND;
}

static void f_outbound(struct history_query *q)
{
	q->has_direction = true;
	q->direction = FLOW_OUTBOUND;
}

static void f_netns(struct history_query *q)
{
	q->netns = 444;
}

static void f_src(struct history_query *q)
{
	q->src = strdup("10.0.0.2");
}

static void f_src_inbound_netns(struct history_query *q)
{
	f_inbound(q);
	q->src = strdup("10.0.0.1");
	q->netns = 222;
}

static const struct mock mocks[] = {
	/* outbound, as before issue 14 */
	{ "10.0.0.1", "192.0.2.1", 40000, 443, 100, 111, false, 0, "curl", NULL },
	/* accepted on 10.0.0.1:8080 from 192.0.2.9:51000, listener known */
	{ "10.0.0.1", "192.0.2.9", 8080, 51000, 200, 222, true, 150, "worker", "listenerd-16byte" },
	/* accepted, listener unknown (listen() before loading) */
	{ "10.0.0.3", "192.0.2.7", 22, 52000, 210, 333, true, 0, "sshd", NULL },
	/* the same key accepted in another namespace, on another address */
	{ "10.0.0.2", "192.0.2.9", 8080, 51000, 201, 444, true, 151, "worker2", "l2" },
	/* the same key, outbound (a connect() from port 8080 to the peer) */
	{ "10.0.0.1", "192.0.2.9", 8080, 51000, 300, 555, false, 0, "client", NULL },
};

static void check_columns(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int n = 0;

	CHECK(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open %s", path);
	CHECK(sqlite3_prepare_v2(db, "SELECT pid, direction, listener_pid, listener_start_time, listener_comm "
				 "FROM connections ORDER BY id", -1, &st, NULL) == SQLITE_OK, "prepare");
	while (sqlite3_step(st) == SQLITE_ROW) {
		const struct mock *m = &mocks[n++];

		CHECK(sqlite3_column_int64(st, 0) == m->pid, "row %d pid", n);
		if (!m->inbound) {
			for (int i = 1; i < 5; i++)
				CHECK(sqlite3_column_type(st, i) == SQLITE_NULL, "outbound row %d column %d is NULL", n, i);
			continue;
		}
		CHECK(sqlite3_column_int(st, 1) == 1, "inbound row %d direction 1", n);
		if (!m->listener_pid) {
			CHECK(sqlite3_column_type(st, 2) == SQLITE_NULL, "row %d: no listener pid", n);
			continue;
		}
		CHECK(sqlite3_column_int64(st, 2) == m->listener_pid, "row %d listener_pid", n);
		CHECK(sqlite3_column_int64(st, 3) == 5 * sysconf(_SC_CLK_TCK), "row %d listener_start_time", n);
		CHECK(strncmp((const char *)sqlite3_column_text(st, 4), m->listener_comm, 16) == 0 &&
		      sqlite3_column_bytes(st, 4) == (int)strnlen(m->listener_comm, 16), "row %d listener_comm", n);
	}
	CHECK(n == (int)(sizeof(mocks) / sizeof(mocks[0])), "rows written: %d", n);
	sqlite3_finalize(st);
	sqlite3_close(db);
}

static void check_rows(struct store *s)
{
	struct store_job *j = store_job_new(STORE_JOB_HISTORY);

	j->q.limit = 100;
	j->q.ascending = true;
	CHECK(run(s, j) == 5 && answer, "history: %d", answer_r);
	if (!answer)
		return;
	for (size_t i = 0; i < json_object_array_length(answer); i++) {
		json_object *row = json_object_array_get_idx(answer, i);
		const struct mock *m = &mocks[i];
		json_object *l = NULL;
		bool has_l = json_object_object_get_ex(row, "listener", &l);

		CHECK(streq(member_str(row, "direction"), m->inbound ? "inbound" : "outbound"),
		      "row %zu direction %s", i, member_str(row, "direction"));
		/* as in a live FLOW: inbound rows have it (null when unknown),
		 * outbound rows have none */
		CHECK(has_l == m->inbound, "row %zu listener present: %d", i, has_l);
		CHECK(!json_object_object_get_ex(row, "listener_pid", NULL), "row %zu: no listener_pid column", i);
		CHECK(member_int(row, "row_id") > 0 && streq(member_str(row, "seen"), "history"),
		      "row %zu: row_id and seen", i);
		if (!has_l || !m->listener_pid) {
			CHECK(!l, "row %zu: listener null when unknown", i);
			continue;
		}
		CHECK(member_int(l, "pid") == m->listener_pid, "row %zu listener.pid", i);
		CHECK(strncmp(member_str(l, "comm"), m->listener_comm, 16) == 0, "row %zu listener.comm %s", i,
		      member_str(l, "comm"));
		CHECK(member_int(l, "start_time") == 5 * sysconf(_SC_CLK_TCK), "row %zu listener.start_time", i);
		CHECK(json_object_object_length(l) == 3, "row %zu listener has pid, comm, start_time only", i);
	}
}

/* The members of the answer, in order, joined by ',' into buf. */
static const char *keys_of(json_object *o, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	json_object_object_foreach(o, k, v) {
		(void)v;
		len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s", len ? "," : "", k);
	}
	return buf;
}

static bool member_bool(json_object *o, const char *k, bool *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_boolean))
		return false;
	*ret = json_object_get_boolean(v);
	return true;
}

/* Not a map hit: "lookup ... at", the row as stored. */
#define LOOKUP_AT UINT32_MAX

/* A plain lookup the map names pid for (sport -> 192.0.2.50:443): its
 * history row as the reader writes it (answer), 1; 0: no row of pid. */
static int map_hit(struct store *s, __u16 sport, __u32 pid, uint64_t fields)
{
	struct store_job *j = store_job_new(STORE_JOB_LOOKUP_AT);

	j->proto = CONNPID_PROTO_TCP;
	snprintf(j->dst, sizeof(j->dst), "192.0.2.50");
	j->sport = sport;
	j->dport = 443;
	j->at = now_s();
	j->direction = FLOW_OUTBOUND;
	j->map_hit = pid != LOOKUP_AT;
	j->map_pid = pid;
	j->fields = fields;
	return run(s, j);
}

static void check_map_hit_marks(struct store *s, __u16 sport, __u32 pid, bool alive, bool reused)
{
	bool a = !alive, r = !reused, in_map = false;

	CHECK(map_hit(s, sport, pid, FLOW_FIELDS_ALL) == 1 && answer, "map hit %u: %d", sport, answer_r);
	CHECK(member_int(answer, "pid") == pid, "map hit %u pid", sport);
	CHECK(member_bool(answer, "alive", &a) && a == alive, "map hit %u alive %d", sport, a);
	CHECK(member_bool(answer, "pid_reused", &r) && r == reused, "map hit %u pid_reused %d", sport, r);
	CHECK(member_bool(answer, "in_map", &in_map) && in_map, "map hit %u in_map", sport);
}

/* A pid no process has now (the highest free one). */
static __u32 free_pid(void)
{
	__u32 pid = 4194303;
	__u64 ticks;

	while (pid > 300000 && procinfo_start_ticks((pid_t)pid, &ticks) == 0)
		pid--;
	return pid;
}

static void check_map_hits(struct store *s, double t0)
{
	__u32 me = (__u32)getpid(), gone = free_pid();
	__u64 my_ticks = 0;
	long hz = sysconf(_SC_CLK_TCK);
	char keys[1024];
	const struct mock hits[] = {
		/* the map's owner still runs: our own process, its start time */
		{ "10.0.0.1", "192.0.2.50", 41001, 443, me, 111, false, 0, "me", NULL },
		/* our pid, another start time: the pid was taken since */
		{ "10.0.0.1", "192.0.2.50", 41002, 443, me, 111, false, 0, "before-me", NULL },
		/* a pid no process has now: the owner exited */
		{ "10.0.0.1", "192.0.2.50", 41003, 443, gone, 111, false, 0, "gone", NULL },
	};
	CHECK(procinfo_start_ticks((pid_t)me, &my_ticks) == 0 && hz > 0, "our start time");
	queue_mock(s, &hits[0], t0 + 20, my_ticks * (1000000000ULL / (__u64)(hz > 0 ? hz : 100)));
	queue_mock(s, &hits[1], t0 + 21, 0);
	queue_mock(s, &hits[2], t0 + 22, 0);
	CHECK(store_flush(s, 10000) == 3, "flush the map-hit rows");

	check_map_hit_marks(s, 41001, me, true, false);
	/* FLOW order: alive and pid_reused after last_seen, in_map after seen */
	CHECK(answer && streq(keys_of(answer, keys, sizeof(keys)),
			      "proto,direction,family,src,sport,dst,dport,community_id,pid,tid,uid,gid,comm,exe,"
			      "cmdline,cgroup_id,cgroup,netns,socket_cookie,start_time,first_seen,last_seen,alive,"
			      "pid_reused,domain,seen,in_map,row_id"), "map hit FLOW order: %s", keys);
	check_map_hit_marks(s, 41002, me, false, true);
	check_map_hit_marks(s, 41003, gone, false, false);
	/* the map names another pid than the row: no answer (/proc's then) */
	CHECK(map_hit(s, 41003, me, FLOW_FIELDS_ALL) == 0 && !answer, "map hit of another pid: %d", answer_r);
	/* pid 0 in the map is a pid like another: not this row's */
	CHECK(map_hit(s, 41001, 0, FLOW_FIELDS_ALL) == 0 && !answer, "map hit of pid 0: %d", answer_r);
	/* "fields" narrows it on the reader; row_id stays */
	CHECK(map_hit(s, 41001, me, FF_BIT(FF_IN_MAP) | FF_BIT(FF_PID) | FF_BIT(FF_ALIVE)) == 1 && answer &&
	      streq(keys_of(answer, keys, sizeof(keys)), "pid,alive,in_map,row_id"), "narrowed map hit: %s", keys);
	/* lookup at: the row as stored, none of the three */
	CHECK(map_hit(s, 41001, LOOKUP_AT, FLOW_FIELDS_ALL) == 1 && answer &&
	      !json_object_object_get_ex(answer, "alive", NULL) &&
	      !json_object_object_get_ex(answer, "pid_reused", NULL) &&
	      !json_object_object_get_ex(answer, "in_map", NULL), "lookup at has no alive/pid_reused/in_map");
}

int main(void)
{
	char dir[] = "/tmp/cps-inbound-XXXXXX", path[64], err[512] = "";
	struct store_options o = { .path = path };
	struct store *s = NULL;
	double t0 = now_s() - 100;

	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/h.db", dir);
	CHECK(store_open(&o, &s, err, sizeof(err)) == 0 && store_is_open(s), "store_open: %s", err);
	if (!s)
		return 1;
	for (size_t i = 0; i < sizeof(mocks) / sizeof(mocks[0]); i++)
		queue_mock(s, &mocks[i], t0 + (double)i, 0);
	CHECK(store_flush(s, 10000) == 5, "flush");
	check_columns(path);
	check_rows(s);

	/* history filters, as history-ops.c fills them */
	CHECK(history_count(s, f_inbound) == 3, "direction inbound: %d", history_count(s, f_inbound));
	CHECK(history_count(s, f_outbound) == 2, "direction outbound");
	CHECK(history_count(s, f_netns) == 1, "netns 444");
	CHECK(history_count(s, f_src) == 1, "src 10.0.0.2");
	CHECK(history_count(s, f_src_inbound_netns) == 1, "inbound src 10.0.0.1 netns 222");

	/* lookup at: the key 192.0.2.9 8080 -> 51000 in four scopes */
	CHECK(lookup_at(s, FLOW_OUTBOUND, NULL, 0, t0 + 10) == 300, "outbound: the connect()");
	CHECK(lookup_at(s, FLOW_INBOUND, NULL, 0, t0 + 10) == 201, "inbound, any netns: the newest");
	CHECK(lookup_at(s, FLOW_INBOUND, NULL, 222, t0 + 10) == 200, "inbound in netns 222");
	CHECK(lookup_at(s, FLOW_INBOUND, "10.0.0.1", 0, t0 + 10) == 200, "inbound to 10.0.0.1");
	CHECK(lookup_at(s, FLOW_INBOUND, "10.0.0.2", 444, t0 + 10) == 201, "inbound to 10.0.0.2 in 444");
	CHECK(lookup_at(s, FLOW_INBOUND, "10.0.0.2", 222, t0 + 10) == -1, "no such flow: src and netns disagree");
	CHECK(lookup_at(s, FLOW_OUTBOUND, NULL, 222, t0 + 10) == -1, "outbound in 222: none");
	CHECK(lookup_at(s, FLOW_INBOUND, NULL, 0, t0 + 2.5) == 200, "inbound before the second accept");
	check_map_hits(s, t0);
	json_object_put(answer);

	store_close(s);
	for (const char *suf = ""; suf; suf = streq(suf, "") ? "-wal" : streq(suf, "-wal") ? "-shm" : NULL) {
		char p[80];

		snprintf(p, sizeof(p), "%s%s", path, suf);
		(void)unlink(p);
	}
	(void)rmdir(dir);
	if (check_failures)
		fprintf(stderr, "%d checks failed\n", check_failures);
	else
		printf("all checks passed\n");
	return check_failures != 0;
}

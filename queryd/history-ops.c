// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The requests that read the SQLite history: "history", "lookup" with
 * "at", and the history fallback of a plain lookup. None of them reads
 * SQLite on the loop: each becomes a job for the store's reader thread
 * (its own connection, a time budget each), the client is deferred, and
 * the answer goes out from the job's done() on the loop. "Read your
 * writes" means rows the loop had queued when the question came: the
 * reader waits (up to a second) for the writer to commit them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "filter.h"
#include "flow-json.h"
#include "flowkey.h"
#include "history-ops.h"
#include "lookup-scope.h"
#include "jsonutil.h"
#include "macro.h"
#include "manager.h"
#include "protocol-args.h"
#include "store.h"

static json_object *store_unavailable(struct store *st)
{
	struct store_stats ss;

	store_get_stats(st, &ss);
	return protocol_error("unavailable", "the history database is not open yet (retrying): %s",
			      ss.last_error ? ss.last_error : "unknown reason");
}

static json_object *store_off(struct manager *m)
{
	return protocol_error("unavailable", "the history store is off: %s",
			      m->store_problem[0] ? m->store_problem : "--no-store");
}

static int get_time(json_object *v, double *ret)
{
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return -EINVAL;
	*ret = json_object_get_double(v);
	return isfinite(*ret) && *ret >= 0 ? 0 : -EINVAL;
}

static json_object *job_error(struct manager *m, const struct store_job *j, const char *what)
{
	if (j->r == -ETIME)
		return protocol_error("too_expensive", "the %s ran past its time budget (%.1f s): narrow it "
				      "with since/until or more filters", what, j->elapsed);
	if (j->r == -EBUSY)
		return protocol_error("busy", "too many history questions are waiting (%d): try again later",
				      STORE_MAX_JOBS);
	if (j->r == -ENOTCONN)
		return m->store ? store_unavailable(m->store) : store_off(m);
	return protocol_error("internal", "%s failed: %s", what, strerror(-j->r));
}

/* Hand j to the reader and defer c; on failure, the answer now. */
static json_object *submit(struct manager *m, struct client *c, struct store_job *j, const char *what)
{
	json_object *ans;
	int r;

	j->userdata = m;
	j->client_id = c->id;
	/* Once submitted, j belongs to the reader until done(): not even
	 * its result may be written here (the reader may have set it). */
	r = store_submit(m->store, j);
	if (r >= 0) {
		(void)client_defer(c);
		return NULL;
	}
	j->r = r;
	ans = job_error(m, j, what);
	store_job_free(j);
	return ans;
}

static void finish(struct store_job *j, json_object *ans)
{
	struct manager *m = j->userdata;

	manager_client_complete(m, j->client_id, ans);
}

/* --- lookup with "at" --- */

static void lookup_at_done(struct store_job *j)
{
	struct manager *m = j->userdata;
	json_object *ans;

	if (j->r < 0) {
		finish(j, job_error(m, j, "history lookup"));
		return;
	}
	ans = ok_answer();
	json_object_object_add(ans, "found", json_object_new_boolean(j->r > 0));
	if (j->r > 0) {
		json_object_object_add(ans, "flow", TAKE_PTR(j->rows));
		m->lookups_found++;
	}
	finish(j, ans);
}

/* A job asking who owned a flow at `at`, named by kind: the 4-tuple or
 * the Community ID goes in after. NULL and the answer (an error) in
 * *ret_err when the question cannot be asked. */
static struct store_job *lookup_at_job(struct manager *m, struct client *c, enum store_job_kind kind,
				       json_object *vat, json_object **ret_err)
{
	struct store_job *j = NULL;
	double at = 0;

	*ret_err = NULL;
	if (get_time(vat, &at) < 0)
		*ret_err = protocol_error("invalid_argument", "\"at\" must be a unix time in seconds");
	else if (!m->store)
		*ret_err = store_off(m);
	else if (!store_is_open(m->store))
		*ret_err = store_unavailable(m->store);
	else if (!(j = store_job_new(kind)))
		*ret_err = protocol_error("internal", "out of memory");
	if (*ret_err)
		return NULL;
	m->lookups++;
	j->at = at;
	j->seed = m->cfg.community_id_seed;
	/* the row is written as the request's "fields" asks, on the reader */
	j->fields = c->answer_fields;
	j->done = lookup_at_done;
	return j;
}

/* The flow's key and scope, written as the rows store them: addresses
 * in format_ip()'s words (v4-mapped already folded by the caller), the
 * direction as the view says it. NULL scope: outbound, any src/netns. */
static void job_set_flow(struct store_job *j, const struct flow_query *q, const struct lookup_scope *scope)
{
	j->proto = q->protocol;
	j->sport = q->src_port;
	j->dport = q->dst_port;
	format_ip(q->family, q->dst_ip, j->dst, sizeof(j->dst));
	if (!scope)
		return;
	j->direction = scope->direction;
	j->netns = scope->netns;
	if (scope->has_src)
		format_ip(q->family, scope->src_ip, j->src, sizeof(j->src));
}

json_object *history_lookup_at(struct manager *m, struct client *c, const struct flow_query *q,
			      const struct lookup_scope *scope, json_object *vat)
{
	json_object *err;
	struct store_job *j = lookup_at_job(m, c, STORE_JOB_LOOKUP_AT, vat, &err);

	if (!j)
		return err;
	job_set_flow(j, q, scope);
	return submit(m, c, j, "history lookup");
}

json_object *history_lookup_community_id(struct manager *m, struct client *c, const char *id, json_object *vat)
{
	json_object *err;
	struct store_job *j = lookup_at_job(m, c, STORE_JOB_LOOKUP_CID, vat, &err);

	if (!j)
		return err;
	snprintf(j->community_id, sizeof(j->community_id), "%s", id);
	return submit(m, c, j, "history lookup");
}

/* --- the history fallback of a plain lookup --- */

/* The reader's row for the map's owner, complete (alive, pid_reused and
 * in_map set there); /proc and the map when the history has no row of
 * that pid. */
static void map_hit_done(struct store_job *j)
{
	struct manager *m = j->userdata;
	json_object *ans = ok_answer();

	json_object_object_add(ans, "found", json_object_new_boolean(true));
	json_object_object_add(ans, "flow", j->r > 0 ? TAKE_PTR(j->rows) : map_hit_to_json(&j->fq, j->map_pid));
	m->lookups_found++;
	finish(j, ans);
}

static struct store_job *map_hit_job(struct manager *m, struct client *c, const struct flow_query *q,
				     __u32 pid, const struct lookup_scope *scope)
{
	struct store_job *j;

	if (!m->store || !store_is_open(m->store))
		return NULL;
	j = store_job_new(STORE_JOB_LOOKUP_AT);
	if (!j)
		return NULL;
	j->at = now_realtime();
	j->seed = m->cfg.community_id_seed;
	j->fields = c->answer_fields;
	job_set_flow(j, q, scope);
	j->fq = *q;
	j->map_hit = true;
	j->map_pid = pid;
	j->done = map_hit_done;
	j->userdata = m;
	j->client_id = c->id;
	return j;
}

json_object *history_map_hit(struct manager *m, struct client *c, const struct flow_query *q, __u32 pid,
			     const struct lookup_scope *scope, json_object *ans)
{
	struct store_job *j = map_hit_job(m, c, q, pid, scope);

	/* a lookup never waits for a busy reader: /proc answers then */
	if (j && store_submit(m->store, j) >= 0) {
		(void)client_defer(c);
		json_object_put(ans);
		return NULL;
	}
	store_job_free(j);
	json_object_object_add(ans, "found", json_object_new_boolean(true));
	json_object_object_add(ans, "flow", map_hit_to_json(q, pid));
	m->lookups_found++;
	return ans;
}

/* --- history --- */

static int get_opt_str(json_object *f, const char *key, const char **ret)
{
	json_object *v;

	if (!json_object_object_get_ex(f, key, &v))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return -EINVAL;
	*ret = json_object_get_string(v);
	return 0;
}

static void history_done(struct store_job *j)
{
	struct manager *m = j->userdata;
	json_object *ans;

	if (j->r < 0) {
		finish(j, job_error(m, j, "history query"));
		return;
	}
	ans = ok_answer();
	json_object_object_add(ans, "flows", TAKE_PTR(j->rows));
	/* the same members as recent's answer */
	json_object_object_add(ans, "truncated", json_object_new_boolean(j->truncated));
	if (j->truncated) {
		char cursor[64];

		snprintf(cursor, sizeof(cursor), "%.17g/%lld", j->next_ts, (long long)j->next_id);
		json_object_object_add(ans, "cursor", json_object_new_string(cursor));
	}
	finish(j, ans);
}

/* "TS/ROW_ID" as history_done() wrote it. */
static int parse_cursor(const char *s, double *ts, __s64 *id)
{
	char *end;

	errno = 0;
	*ts = strtod(s, &end);
	if (errno || end == s || *end != '/' || !isfinite(*ts))
		return -EINVAL;
	s = end + 1;
	*id = strtoll(s, &end, 10);
	if (errno || end == s || *end)
		return -EINVAL;
	return 0;
}

/* limit, order and cursor of a history request into q: NULL, or the
 * error answer. */
static json_object *parse_page(json_object *req, struct history_query *q)
{
	const char *order = NULL, *cursor = NULL;
	int64_t num;
	int r;

	q->limit = RECENT_DEFAULT;
	r = get_int_member(req, "limit", 1, RECENT_MAX, &num);
	if (r < 0 && r != -ENOENT)
		return protocol_error("invalid_argument", "\"limit\" must be an integer 1-%d", RECENT_MAX);
	if (r == 0)
		q->limit = (int)num;
	if (get_opt_str(req, "order", &order) < 0 ||
	    (order && !streq(order, "asc") && !streq(order, "desc")))
		return protocol_error("invalid_argument", "\"order\" must be \"asc\" or \"desc\"");
	q->ascending = order && streq(order, "asc");
	if (get_opt_str(req, "cursor", &cursor) < 0 ||
	    (cursor && parse_cursor(cursor, &q->cursor_ts, &q->cursor_id) < 0))
		return protocol_error("invalid_argument", "\"cursor\" must be the \"cursor\" of an earlier "
				      "history answer, with the same order");
	q->has_cursor = cursor != NULL;
	return NULL;
}

static json_object *prepare_history(struct manager *m, json_object *req, struct store_job **ret)
{
	_cleanup_(store_job_freep) struct store_job *j = NULL;
	json_object *f = NULL, *err;
	char err_text[512];
	int r;

	if (!m->store)
		return store_off(m);
	if (!store_is_open(m->store))
		return store_unavailable(m->store);
	j = store_job_new(STORE_JOB_HISTORY);
	if (!j)
		return protocol_error("internal", "out of memory");
	err = parse_page(req, &j->q);
	if (err)
		return err;
	/* json-c hands a JSON null over as NULL: present but not an object. */
	if (json_object_object_get_ex(req, "filter", &f) && !json_object_is_type(f, json_type_object))
		return protocol_error("invalid_argument", "\"filter\" must be an object");
	r = f ? history_filter_parse(f, &j->q, err_text, sizeof(err_text)) : 0;
	if (r == -ENOMEM)
		return protocol_error("internal", "out of memory");
	if (r < 0)
		return protocol_error("invalid_argument", "%s", err_text);
	if (flow_fields_parse(req, &j->fields, err_text, sizeof(err_text)) < 0)
		return protocol_error("invalid_argument", "%s", err_text);
	j->max_bytes = answer_rows_budget(req);
	j->seed = m->cfg.community_id_seed;
	j->done = history_done;
	(void)manager_ringbuf_drain(m);
	*ret = TAKE_PTR(j);
	return NULL;
}

json_object *history_op(struct manager *m, struct client *c, json_object *req)
{
	struct store_job *j = NULL;
	json_object *ans = prepare_history(m, req, &j);

	return ans ? ans : submit(m, c, j, "history query");
}

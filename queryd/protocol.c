// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Requests on the query socket (grammar in man/connpid.7). Every request
 * gets exactly one answer line, in order; an error answers that request
 * only and never closes the connection (a line over 64 KiB aside).
 */
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "client.h"
#include "docker.h"
#include "exporters.h"
#include "flow-json.h"
#include "flowkey.h"
#include "history-ops.h"
#include "jsonutil.h"
#include "jsonw.h"
#include "macro.h"
#include "manager.h"
#include "pin-describe.h"
#include "procinfo.h"
#include "protocol-args.h"

json_object *protocol_error(const char *code, const char *fmt, ...)
{
	json_object *o = json_object_new_object(), *e = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* a long message loses its tail, never half a character */
	msg[utf8_cut(msg, strlen(msg))] = '\0';
	json_object_object_add(o, "ok", json_object_new_boolean(false));
	json_object_object_add(e, "code", json_object_new_string(code));
	json_object_object_add(e, "message", json_object_new_string(msg));
	json_object_object_add(o, "error", e);
	return o;
}

json_object *ok_answer(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

/* How much of a client's string to quote in an error: 64 bytes at most,
 * never half a character. */
int quote_len(const char *s)
{
	return (int)utf8_cut(s, strnlen(s, 64));
}

/* The one check for integers in requests: an integer (not 1.5, not 2.0,
 * not "2", not null) in [min, max]. json-c clamps what int64 cannot hold,
 * so 4294967297 or 1e30 never wrap into range here. */
int int_in_range(json_object *v, int64_t min, int64_t max, int64_t *ret)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return -EINVAL;
	x = json_object_get_int64(v);
	if (x < min || x > max)
		return -ERANGE;
	*ret = x;
	return 0;
}

/* The same for a member of req: -ENOENT when absent. */
int get_int_member(json_object *req, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(req, key, &v))
		return -ENOENT;
	return int_in_range(v, min, max, ret);
}

/* NaN and Infinity (and 1e999, which json-c reads as Infinity) anywhere
 * in a request: JSON has no such numbers, and we would echo them back. */
static bool has_nonfinite(json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_double:
		return !isfinite(json_object_get_double(o));
	case json_type_object:
		for (struct lh_entry *e = json_object_get_object(o)->head; e; e = e->next)
			if (has_nonfinite((json_object *)lh_entry_v(e)))
				return true;
		return false;
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(o); i++)
			if (has_nonfinite(json_object_array_get_idx(o, i)))
				return true;
		return false;
	default:
		return false;
	}
}

/* Ports and protocol may come as numbers or strings ("443", "tcp"). */
static int get_port(json_object *req, const char *key, char *buf, size_t size)
{
	json_object *v;
	int64_t port;
	int r;

	if (!json_object_object_get_ex(req, key, &v))
		return -ENOENT;
	if (json_object_is_type(v, json_type_int)) {
		r = int_in_range(v, 1, 65535, &port);
		if (r < 0)
			return r;
		snprintf(buf, size, "%lld", (long long)port);
	} else if (json_object_is_type(v, json_type_string))
		snprintf(buf, size, "%s", json_object_get_string(v));
	else
		return -EINVAL;
	return 0;
}

/* "1:" and the base64 of a SHA1: 27 characters and one "=". */
static bool community_id_valid(const char *id)
{
	static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	if (strlen(id) != COMMUNITY_ID_LEN - 1 || strncmp(id, "1:", 2) != 0 || id[COMMUNITY_ID_LEN - 2] != '=')
		return false;
	for (int i = 2; i < COMMUNITY_ID_LEN - 2; i++)
		if (!strchr(b64, id[i]))
			return false;
	return true;
}

/* Whether the map still names f's owner: 1, 0, or -1 when no map is open. */
static int flow_in_map(struct manager *m, const struct flow *f)
{
	struct flow_query q = {
		.family = f->key.family, .src_port = f->key.src_port, .dst_port = f->key.dst_port,
		.protocol = f->key.protocol,
	};
	__u32 pid = 0;

	if (!m->pins.open)
		return -1;
	if (flow_direction(f) == FLOW_INBOUND)
		return 0; /* the map holds outbound flows only */
	memcpy(q.dst_ip, f->key.dst_ip, sizeof(q.dst_ip));
	return flow_query_lookup(&q, m->pins.maps.v4_fd, m->pins.maps.v6_fd, &pid) > 0 && pid == f->ev.pid;
}

/* Past this many bytes of one answer no further candidate is written: 64
 * FLOWs fit many times over, unless each is near its largest. */
#define CANDIDATES_MAX_BYTES (ANSWER_MAX_BYTES - 128 * 1024)

/* The other variants of best's key in scope, newest first, into cand (at
 * most FLOW_VARIANTS_MAX: a key has no more). Returns how many. */
static size_t candidates_of(struct manager *m, const struct lookup_scope *scope, const struct flow *best,
			    const struct flow **cand)
{
	size_t n = 0;

	for (const struct flow *f = flow_first_variant_of(m->flows, best); f && n < FLOW_VARIANTS_MAX;
	     f = flow_next_variant(f)) {
		size_t i;

		if (f == best || !flow_in_scope(f, scope))
			continue;
		/* insertion into an array of at most 64: newest first */
		for (i = n++; i > 0 && cand[i - 1]->last_seen < f->last_seen; i--)
			cand[i] = cand[i - 1];
		cand[i] = f;
	}
	return n;
}

/* {"ok":true,"found":true,"flow":FLOW} written straight into the client's
 * output: the hot path of a lookup allocates nothing and builds no tree.
 * With a scope, the key's other variants in it follow as "candidates". */
static void answer_flow(struct manager *m, struct client *c, const struct flow *f, int in_map,
			const struct lookup_scope *scope, json_object *vid)
{
	const struct flow *cand[FLOW_VARIANTS_MAX];
	struct jsonw *w = client_answer_begin(c);
	size_t n, start;

	m->lookups_found++;
	if (!w)
		return; /* the client is gone: nobody to answer */
	n = scope ? candidates_of(m, scope, f, cand) : 0;
	start = w->len;
	jw_kbool(w, "ok", true);
	jw_kbool(w, "found", true);
	jw_key(w, "flow");
	flow_write(w, m, f, in_map, c->answer_fields);
	if (n > 0) {
		jw_key(w, "candidates");
		jw_arr_begin(w);
		for (size_t i = 0; i < n && w->len - start < CANDIDATES_MAX_BYTES; i++)
			flow_write(w, m, cand[i], 0, c->answer_fields);
		jw_arr_end(w);
	}
	client_answer_end(c, vid);
}

/* "lookup" by "community_id" alone: the index's second table, or with
 * "at" the history (a reader job). NULL when answered (answer_flow). */
static json_object *lookup_community_id(struct manager *m, struct client *c, json_object *req, json_object *vcid,
					json_object *vid)
{
	static const char *const tuple[] = { "dst", "sport", "dport", "proto" };
	static const char *const scope_members[] = { "src", "netns", "direction" };
	json_object *vat, *ans;
	const char *id;
	struct flow *f;

	if (!json_object_is_type(vcid, json_type_string) || !community_id_valid(json_object_get_string(vcid)))
		return protocol_error("invalid_argument", "\"community_id\" must be a Community ID: \"1:\" and "
				      "28 base64 characters");
	for (size_t i = 0; i < ARRAY_SIZE(tuple); i++)
		if (json_object_object_get_ex(req, tuple[i], NULL))
			return protocol_error("invalid_argument", "lookup takes \"community_id\" or "
					      "dst/sport/dport/proto, not both");
	for (size_t i = 0; i < ARRAY_SIZE(scope_members); i++)
		if (json_object_object_get_ex(req, scope_members[i], NULL))
			return protocol_error("invalid_argument", "lookup by \"community_id\" takes no \"%s\": "
					      "the ID names the flow's addresses already", scope_members[i]);
	id = json_object_get_string(vcid);
	if (json_object_object_get_ex(req, "at", &vat))
		return history_lookup_community_id(m, c, id, vat);

	m->lookups++;
	f = flow_index_find_community_id(m->flows, m->cfg.community_id_seed, id);
	if (!f) {
		/* its event may still wait in the ring */
		(void)manager_ringbuf_drain(m);
		f = flow_index_find_community_id(m->flows, m->cfg.community_id_seed, id);
	}
	if (f && m->cfg.no_tcp && f->ev.protocol == CONNPID_PROTO_TCP)
		f = NULL;
	if (f) {
		answer_flow(m, c, f, flow_in_map(m, f), NULL, vid);
		return NULL;
	}
	ans = ok_answer();
	json_object_object_add(ans, "found", json_object_new_boolean(false));
	return ans;
}

/* The request's "fields" into c->answer_fields. */
static json_object *take_fields(struct client *c, json_object *req)
{
	char err[256];

	if (flow_fields_parse(req, &c->answer_fields, err, sizeof(err)) < 0) {
		c->answer_fields = FLOW_FIELDS_ALL;
		return protocol_error("invalid_argument", "%s", err);
	}
	return NULL;
}

/* dst, sport, dport and proto of a lookup into q: NULL, or the error answer. */
static json_object *parse_tuple(json_object *req, struct flow_query *q)
{
	json_object *vdst, *vproto;
	char sport[32], dport[32], proto[16] = "tcp";
	const char *dst;

	if (!json_object_object_get_ex(req, "dst", &vdst) || !json_object_is_type(vdst, json_type_string))
		return protocol_error("invalid_argument", "lookup needs \"dst\": an IP address string");
	if (get_port(req, "sport", sport, sizeof(sport)) < 0 || get_port(req, "dport", dport, sizeof(dport)) < 0)
		return protocol_error("invalid_argument", "lookup needs \"sport\" and \"dport\": ports 1-65535");
	if (json_object_object_get_ex(req, "proto", &vproto)) {
		int64_t num;

		if (json_object_is_type(vproto, json_type_string))
			snprintf(proto, sizeof(proto), "%s", json_object_get_string(vproto));
		else if (int_in_range(vproto, 0, 255, &num) == 0)
			snprintf(proto, sizeof(proto), "%d", (int)num);
		else
			return protocol_error("invalid_argument", "\"proto\" must be \"tcp\" or \"udp\"");
	}
	dst = json_object_get_string(vdst);
	if (flow_query_parse(dst, sport, dport, proto, q) >= 0)
		return NULL;
	if (parse_protocol(proto, &q->protocol) < 0)
		return protocol_error("invalid_argument", "\"proto\" must be \"tcp\" or \"udp\", not \"%.*s\"",
				      quote_len(proto), proto);
	if (parse_ip(dst, &q->family, q->dst_ip) < 0)
		return protocol_error("invalid_argument", "\"dst\" is not an IP address: \"%.*s\"", quote_len(dst), dst);
	return protocol_error("invalid_argument", "ports must be 1-65535 (sport \"%.*s\", dport \"%.*s\")",
			      quote_len(sport), sport, quote_len(dport), dport);
}

/* "direction", "netns" and "src" of a lookup into scope (src in the
 * family of q's dst): NULL, or the error answer. */
static json_object *parse_scope(json_object *req, const struct flow_query *q, struct lookup_scope *scope)
{
	json_object *v;
	int64_t netns;
	int r, family;

	*scope = (struct lookup_scope) { .direction = FLOW_OUTBOUND };
	if (json_object_object_get_ex(req, "direction", &v) &&
	    (!json_object_is_type(v, json_type_string) ||
	     flow_direction_parse(json_object_get_string(v), &scope->direction) < 0))
		return protocol_error("invalid_argument", "\"direction\" must be \"outbound\" or \"inbound\"");
	r = get_int_member(req, "netns", 1, UINT32_MAX, &netns);
	if (r < 0 && r != -ENOENT)
		return protocol_error("invalid_argument", "\"netns\" must be a network namespace inode: an integer "
				      "1-4294967295");
	scope->netns = r == 0 ? (__u64)netns : 0;
	if (!json_object_object_get_ex(req, "src", &v))
		return NULL;
	if (!json_object_is_type(v, json_type_string))
		return protocol_error("invalid_argument", "\"src\" must be an IP address string");
	if (parse_ip(json_object_get_string(v), &family, scope->src_ip) < 0)
		return protocol_error("invalid_argument", "\"src\" is not an IP address: \"%.*s\"",
				      quote_len(json_object_get_string(v)), json_object_get_string(v));
	if (family != q->family)
		return protocol_error("invalid_argument", "\"src\" is %s but \"dst\" is %s: one flow has one family",
				      family == AF_INET ? "IPv4" : "IPv6", q->family == AF_INET ? "IPv4" : "IPv6");
	scope->has_src = true;
	return NULL;
}

static void key_of_query(const struct flow_query *q, enum flow_direction d, struct flow_key *k)
{
	*k = (struct flow_key) {
		.family = (__u8)q->family, .protocol = q->protocol, .src_port = q->src_port,
		.dst_port = q->dst_port, .direction = (__u8)d,
	};
	memcpy(k->dst_ip, q->dst_ip, q->family == AF_INET ? 4 : 16);
}

static json_object *not_found(void)
{
	json_object *ans = ok_answer();

	json_object_object_add(ans, "found", json_object_new_boolean(false));
	return ans;
}

/* Accepted connections: no kernel map has them, the index is all. */
static json_object *lookup_inbound(struct manager *m, struct client *c, const struct flow_query *q,
				   const struct lookup_scope *scope, json_object *vid)
{
	struct flow_key k;
	struct flow *f;

	if (!(m->pins.maps.meta.flags & CONNPID_META_F_INBOUND))
		return protocol_error("unavailable", "inbound tracking is off: load with connpid-loader --inbound");
	m->lookups++;
	key_of_query(q, FLOW_INBOUND, &k);
	f = flow_index_find(m->flows, &k, scope, 0);
	if (!f) {
		/* its event may still wait in the ring */
		(void)manager_ringbuf_drain(m);
		f = flow_index_find(m->flows, &k, scope, 0);
	}
	if (!f)
		return not_found();
	answer_flow(m, c, f, 0, scope, vid);
	return NULL;
}

/* Outbound: the map names the current owner even before its event has
 * been drained; the index tells which namespace and source it is. */
static json_object *lookup_outbound(struct manager *m, struct client *c, const struct flow_query *q,
				    const struct lookup_scope *scope, json_object *vid)
{
	bool scoped = scope->has_src || scope->netns;
	struct flow_key k;
	struct flow *f;
	__u32 pid = 0;
	int in_map;

	m->lookups++;
	in_map = flow_query_lookup(q, m->pins.maps.v4_fd, m->pins.maps.v6_fd, &pid);
	if (in_map < 0)
		return protocol_error("internal", "map lookup failed: %s", strerror(-in_map));
	key_of_query(q, FLOW_OUTBOUND, &k);
	f = flow_index_find(m->flows, &k, scope, pid);
	if (in_map && (!f || f->ev.pid != pid)) {
		(void)manager_ringbuf_drain(m);
		f = flow_index_find(m->flows, &k, scope, pid);
	}
	if (f && (!in_map || f->ev.pid == pid || scoped)) {
		/* !in_map: evicted from the LRU map, still described by its
		 * event; scoped: the map's owner is another namespace's or
		 * source's, this one is what was asked for */
		answer_flow(m, c, f, in_map && f->ev.pid == pid, scope, vid);
		return NULL;
	}
	if (in_map && !scoped)
		/* No event for it here: the history may describe it (on the
		 * reader thread, the client deferred), else /proc. */
		return history_map_hit(m, c, q, pid, scope, ok_answer());
	return not_found();
}

/* NULL: answered already (answer_flow) or deferred (client_defer). */
static json_object *op_lookup(struct manager *m, struct client *c, json_object *req, json_object *vid)
{
	struct lookup_scope scope;
	struct flow_query q;
	json_object *vat, *vcid, *ans;

	ans = take_fields(c, req);
	if (ans)
		return ans;
	if (json_object_object_get_ex(req, "community_id", &vcid))
		return lookup_community_id(m, c, req, vcid, vid);
	ans = parse_tuple(req, &q);
	if (!ans)
		ans = parse_scope(req, &q, &scope);
	if (ans)
		return ans;
	if (m->cfg.no_tcp && q.protocol == CONNPID_PROTO_TCP)
		return protocol_error("unavailable", "TCP reporting is off (--no-tcp)");
	if (json_object_object_get_ex(req, "at", &vat))
		return history_lookup_at(m, c, &q, &scope, vat);
	if (!m->pins.open)
		return protocol_error("unavailable", "%s", m->pins.problem[0] ? m->pins.problem : "connpid is not loaded");
	if (scope.direction == FLOW_INBOUND)
		return lookup_inbound(m, c, &q, &scope, vid);
	return lookup_outbound(m, c, &q, &scope, vid);
}

/* Room for {"ok":true,"flows":[...],"truncated":true,"cursor":"...","id":}
 * around the rows, with a wide margin. */
#define ANSWER_ENVELOPE 4096

size_t answer_rows_budget(json_object *req)
{
	json_object *vid;
	size_t len = 0;

	if (req && json_object_object_get_ex(req, "id", &vid))
		(void)json_object_to_json_string_length(vid, JSON_LINE_FLAGS, &len);
	/* the id comes from one request line: never near the cap */
	return len + ANSWER_ENVELOPE < ANSWER_MAX_BYTES ? ANSWER_MAX_BYTES - ANSWER_ENVELOPE - len : 0;
}

/* A page of `recent` ends at a flow; the next one starts after it. The
 * cursor names it by last_seen and key: "LAST_SEEN/PROTO/DST/SPORT/DPORT"
 * (of the variants of that key, in either direction, the one last seen
 * then: two at the same nanosecond are as good as one). */
static void recent_cursor(const struct flow *f, char *buf, size_t size)
{
	char dst[64];

	snprintf(buf, size, "%.17g/%s/%s/%u/%u", f->last_seen, protocol_name(f->key.protocol),
		 format_ip(f->key.family, f->key.dst_ip, dst, sizeof(dst)),
		 (unsigned)f->key.src_port, (unsigned)f->key.dst_port);
}

/* Where the page after cursor starts: after the cursor's flow if it has
 * not moved; if it was seen again (now at the front) or evicted, at the
 * first flow last seen before it. -EINVAL: not a cursor of ours. */
static int recent_resume(struct manager *m, const char *cursor, struct flow **ret)
{
	char buf[160], *part[5], *save = NULL, *end;
	struct flow_query q;
	struct flow_key k;
	struct flow *f;
	double t;
	int i = 0;

	if (strlen(cursor) >= sizeof(buf))
		return -EINVAL;
	strcpy(buf, cursor);
	for (char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
		if (i == 5)
			return -EINVAL;
		part[i++] = p;
	}
	if (i != 5)
		return -EINVAL;
	errno = 0;
	t = strtod(part[0], &end);
	if (errno || *end || !isfinite(t) || flow_query_parse(part[2], part[3], part[4], part[1], &q) < 0)
		return -EINVAL;
	for (int d = FLOW_OUTBOUND; d <= FLOW_INBOUND; d++) {
		key_of_query(&q, d, &k);
		for (f = flow_index_first(m->flows, &k); f; f = flow_next_variant(f))
			if (f->last_seen == t) {
				*ret = flow_older(f);
				return 0;
			}
	}
	for (f = flow_index_newest(m->flows); f && f->last_seen >= t; f = flow_older(f))
		;
	*ret = f;
	return 0;
}

/* What a `recent` request asks for. */
struct recent_req {
	struct watch_filter filter;
	int64_t limit;
	uint64_t fields;
	size_t budget;   /* bytes of rows (answer_rows_budget) */
};

/* The page from *fp on into arr: the flows the filter passes, newest
 * first, at most limit and budget bytes of rows; *fp is left where it
 * stopped. Returns the last flow written (NULL: none); *truncated when the
 * byte cap cut the page. */
static struct flow *recent_page(struct manager *m, struct flow **fp, const struct recent_req *rq,
				json_object *arr, bool *truncated)
{
	struct flow *f = *fp, *last = NULL;
	size_t used = 0;
	int64_t n = 0;

	for (; f && n < rq->limit; f = flow_older(f)) {
		json_object *o;
		size_t len = 0;

		if (!watch_filter_match(&rq->filter, f))
			continue;
		o = flow_to_json_fields(m, f, -1, rq->fields);
		if (!o)
			break;
		(void)json_object_to_json_string_length(o, JSON_LINE_FLAGS, &len);
		/* at least one flow a page, so paging always moves on */
		if (n > 0 && used + len + 1 > rq->budget) {
			json_object_put(o);
			*truncated = true;
			break;
		}
		used += len + 1;
		json_object_array_add(arr, o);
		last = f;
		n++;
	}
	*fp = f;
	return last;
}

/* Newest first, at most "limit" flows and ANSWER_MAX_BYTES: a cut page
 * says "truncated":true; "cursor" (given back in the request) goes on
 * where a page stopped, by the byte cap or by the limit. */
static json_object *op_recent(struct manager *m, json_object *req)
{
	struct recent_req rq = { .limit = RECENT_DEFAULT, .budget = answer_rows_budget(req) };
	json_object *v, *arr, *ans;
	struct flow *f, *last;
	bool truncated = false;
	char err[256], cursor[160];
	int r;

	if (flow_fields_parse(req, &rq.fields, err, sizeof(err)) < 0)
		return protocol_error("invalid_argument", "%s", err);
	r = get_int_member(req, "limit", 1, RECENT_MAX, &rq.limit);
	if (r < 0 && r != -ENOENT)
		return protocol_error("invalid_argument", "\"limit\" must be an integer 1-%d", RECENT_MAX);
	if (watch_filter_parse(json_object_object_get_ex(req, "filter", &v) ? v : NULL, &rq.filter, err,
			       sizeof(err)) < 0)
		return protocol_error("invalid_argument", "%s", err);
	(void)manager_ringbuf_drain(m);
	f = flow_index_newest(m->flows);
	if (json_object_object_get_ex(req, "cursor", &v) &&
	    (!json_object_is_type(v, json_type_string) || recent_resume(m, json_object_get_string(v), &f) < 0))
		return protocol_error("invalid_argument", "\"cursor\" must be a cursor string from an earlier answer");
	ans = ok_answer();
	arr = json_object_new_array();
	last = recent_page(m, &f, &rq, arr, &truncated);
	json_object_object_add(ans, "flows", arr);
	json_object_object_add(ans, "truncated", json_object_new_boolean(truncated));
	if (f && last) {
		recent_cursor(last, cursor, sizeof(cursor));
		json_object_object_add(ans, "cursor", json_object_new_string(cursor));
	}
	return ans;
}

static json_object *op_watch(struct manager *m, struct client *c, json_object *req)
{
	struct watch_filter w;
	json_object *v, *ans;
	char err[256];
	uint64_t fields;

	if (watch_filter_parse(json_object_object_get_ex(req, "filter", &v) ? v : NULL, &w, err, sizeof(err)) < 0)
		return protocol_error("invalid_argument", "%s", err);
	if (flow_fields_parse(req, &fields, err, sizeof(err)) < 0)
		return protocol_error("invalid_argument", "%s", err);
	client_watch(c, &w, fields);
	ans = ok_answer();
	json_object_object_add(ans, "watching", json_object_new_boolean(true));
	return ans;
}

void protocol_stats_to_json(const struct manager *m, json_object *s)
{
	json_add_u64(s, "lookups", m->lookups);
	json_add_u64(s, "lookups_found", m->lookups_found);
	json_add_u64(s, "requests", m->requests);
	json_add_u64(s, "request_errors", m->request_errors);
}

/* The members of `stats`, each module's from the module (man/connpid.7). */
static json_object *op_stats(struct manager *m)
{
	json_object *ans = ok_answer(), *s = json_object_new_object(), *k = json_object_new_object();
	uint64_t mono_now = 0;

	(void)manager_ringbuf_drain(m);
	ringbuf_stats_to_json(&m->ring, s);
	protocol_stats_to_json(m, s);
	server_stats_to_json(&m->server, s);
	json_add_u64(s, "index_flows", flow_index_size(m->flows));
	json_add_u64(s, "index_capacity", flow_index_capacity(m->flows));
	json_add_u64(s, "index_evictions", flow_index_evictions(m->flows));
	json_add_u64(s, "processes", proc_cache_size(m->procs));
	json_add_u64(s, "proc_reads", proc_cache_reads(m->procs));
	dns_ingest_stats_to_json(&m->dns_in, s);
	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &mono_now);
	json_object_object_add(s, "uptime_seconds",
			       json_object_new_double((double)(mono_now - m->started_mono_us) / 1e6));
	pins_stats_to_json(&m->pins, s, k);
	json_object_object_add(s, "kernel", k);
	json_object_object_add(s, "store", store_io_stats_to_json(m));
	json_object_object_add(s, "export", exporters_stats_json(m->exporters));
	json_object_object_add(ans, "stats", s);
	return ans;
}

static json_object *op_status(struct manager *m)
{
	json_object *ans = ok_answer(), *st = NULL, *q = json_object_new_object();
	struct connpid_meta meta;
	int r;

	r = pins_describe(m->cfg.pin_dir, &st);
	if (r < 0) {
		st = json_object_new_object();
		json_object_object_add(st, "error", json_object_new_string(strerror(-r)));
	}
	json_object_object_add(q, "version", json_object_new_string(CONNPID_VERSION));
	json_object_object_add(q, "abi_version", json_object_new_int(CONNPID_ABI_VERSION));
	json_object_object_add(q, "socket", json_object_new_string(m->cfg.socket_path));
	json_object_object_add(q, "socket_activated", json_object_new_boolean(m->server.listen_fd_activated));
	json_object_object_add(q, "allow_group", m->cfg.allow_group ?
			       json_object_new_string(m->cfg.allow_group) : NULL);
	json_object_object_add(q, "allow_group_exists", json_object_new_boolean(m->server.allow_gid_valid));
	json_object_object_add(q, "pins_in_use", json_object_new_boolean(m->pins.open));
	/* from the pins as "blocker_loaded" (pins_describe() said it when the
	 * maps opened), and from the meta pin alone when they did not */
	if (!json_object_object_get_ex(st, "inbound", NULL))
		json_object_object_add(st, "inbound", json_object_new_boolean(
			connpid_meta_read(m->cfg.pin_dir, &meta, NULL) == 0 && (meta.flags & CONNPID_META_F_INBOUND)));
	if (!m->pins.open)
		json_object_object_add(q, "problem", json_object_new_string(m->pins.problem));
	json_object_object_add(q, "docker", docker_status_json(m->docker));
	json_object_object_add(st, "queryd", q);
	json_object_object_add(ans, "status", st);
	return ans;
}

/*
 * Requests whose answer takes milliseconds (recent: up to ANSWER_MAX_BYTES
 * of flows; stats and status: map walks, pin reads) wait in a queue served
 * one per loop pass at a lower priority than client I/O, so a ping or a
 * lookup never waits behind hundreds of them (sd-event serves pending
 * sources oldest first within a priority). A timer serves the oldest at
 * least every SLOW_MAX_WAIT_USEC, so a busy loop never starves them. Each
 * client waits for its answer (client_defer): order holds per client.
 */
#define SLOW_PRIORITY (SD_EVENT_PRIORITY_NORMAL + 10)
#define SLOW_MAX_WAIT_USEC (100 * 1000ULL)

typedef json_object *(*slow_fn)(struct manager *m, json_object *req);

struct slow_job {
	struct slow_job *next;
	uint64_t client_id;
	uint64_t queued_usec;
	json_object *req;
	slow_fn run;
};

struct slow_queue {
	struct slow_job *head, *tail;
	sd_event_source *defer;
	sd_event_source *timer;
};

static void slow_schedule(struct slow_queue *q)
{
	if (!q->head) {
		(void)sd_event_source_set_enabled(q->defer, SD_EVENT_OFF);
		(void)sd_event_source_set_enabled(q->timer, SD_EVENT_OFF);
		return;
	}
	(void)sd_event_source_set_enabled(q->defer, SD_EVENT_ONESHOT);
	(void)sd_event_source_set_time(q->timer, q->head->queued_usec + SLOW_MAX_WAIT_USEC);
	(void)sd_event_source_set_enabled(q->timer, SD_EVENT_ONESHOT);
}

static void slow_run_one(struct manager *m)
{
	struct slow_queue *q = m->slow;
	struct slow_job *j = q->head;

	if (!j)
		return;
	q->head = j->next;
	if (!q->head)
		q->tail = NULL;
	/* nobody to answer: no work */
	if (manager_client_waiting(m, j->client_id))
		manager_client_complete(m, j->client_id, j->run(m, j->req));
	json_object_put(j->req);
	free(j);
	slow_schedule(q);
}

static int on_slow_defer(sd_event_source *s, void *userdata)
{
	slow_run_one(userdata);
	return 0;
}

static int on_slow_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	slow_run_one(userdata);
	return 0;
}

/* The queue and its sources, made on first use. */
static struct slow_queue *slow_queue_get(struct manager *m)
{
	struct slow_queue *q;

	if (m->slow)
		return m->slow;
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	if (sd_event_add_defer(m->event, &q->defer, on_slow_defer, m) < 0)
		return slow_queue_free(q);
	(void)sd_event_source_set_priority(q->defer, SLOW_PRIORITY);
	if (sd_event_add_time(m->event, &q->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_slow_timer, m) < 0)
		return slow_queue_free(q);
	m->slow = q;
	return q;
}

/* Queue req for run(); the client waits for the answer. NULL: deferred. */
static json_object *slow_enqueue(struct manager *m, struct client *c, json_object *req, slow_fn run)
{
	struct slow_queue *q = slow_queue_get(m);
	struct slow_job *j;

	if (!q || !(j = calloc(1, sizeof(*j))))
		return run(m, req); /* answered at once, as before */
	j->client_id = client_defer(c);
	j->req = json_object_get(req);
	j->run = run;
	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &j->queued_usec);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	slow_schedule(q);
	return NULL;
}

struct slow_queue *slow_queue_free(struct slow_queue *q)
{
	if (!q)
		return NULL;
	while (q->head) {
		struct slow_job *j = q->head;

		q->head = j->next;
		json_object_put(j->req);
		free(j);
	}
	sd_event_source_disable_unref(q->defer);
	sd_event_source_disable_unref(q->timer);
	free(q);
	return NULL;
}

static json_object *slow_stats(struct manager *m, json_object *req)
{
	return op_stats(m);
}

static json_object *slow_status(struct manager *m, json_object *req)
{
	return op_status(m);
}

/* TEST ONLY: with CONNPID_TEST_DEFER_MS=N in the environment, the hidden
 * op "test_defer" is answered N ms later through client_defer() and
 * manager_client_complete(), as history is; tests/hostile checks that
 * answers keep their order. Without the variable the op does not exist. */
static uint64_t test_defer_usec(struct manager *m)
{
	static int64_t usec = -1;

	if (usec < 0) {
		const char *e = getenv("CONNPID_TEST_DEFER_MS");

		usec = e ? (int64_t)strtoul(e, NULL, 10) * 1000 : 0;
	}
	return (uint64_t)usec;
}

struct test_defer {
	struct manager *m;
	uint64_t client_id;
};

static int on_test_defer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct test_defer *d = userdata;
	json_object *ans = ok_answer();

	json_object_object_add(ans, "deferred", json_object_new_boolean(true));
	manager_client_complete(d->m, d->client_id, ans);
	free(d);
	sd_event_source_disable_unref(s);
	return 0;
}

static json_object *op_test_defer(struct manager *m, struct client *c)
{
	struct test_defer *d = malloc(sizeof(*d));

	if (!d)
		return NULL;
	d->m = m;
	d->client_id = c->id;
	if (sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, test_defer_usec(m), 0,
				       on_test_defer, d) < 0) {
		free(d);
		return protocol_error("internal", "cannot arm the test timer");
	}
	client_defer(c);
	return NULL;
}

/*
 * The common lines, {"op":"lookup","proto":"tcp","dst":"10.0.0.5",
 * "sport":40000,"dport":3128} with an optional "id" and "fields", and
 * {"op":"ping"}, read without json-c: its parse, tree and walks were a
 * fifth of a lookup's time on the loop (tests/bench/RESULTS.md, issue 15).
 * Only a strict subset of JSON: strings of printable ASCII without
 * escapes, non-negative integers without leading zeros, fraction or
 * exponent, each known member at most once, nothing after the object.
 * Anything else, and any value the lookup would refuse, takes the full
 * path below, which answers it (errors included) as it always has.
 */
#define FAST_STR_MAX 256
#define FAST_FIELDS_MAX 1024

enum fast_kind { FK_NONE, FK_STR, FK_INT, FK_ARR };

struct fast_val {
	enum fast_kind kind;
	const char *p;   /* a string's bytes between its quotes; an array's text */
	size_t n;
	int64_t i;
};

enum { FM_OP, FM_PROTO, FM_DST, FM_SPORT, FM_DPORT, FM_ID, FM_FIELDS, FM_SRC, _FM_MAX };

static const char *const fast_members[_FM_MAX] = {
	[FM_OP] = "op", [FM_PROTO] = "proto", [FM_DST] = "dst", [FM_SPORT] = "sport",
	[FM_DPORT] = "dport", [FM_ID] = "id", [FM_FIELDS] = "fields", [FM_SRC] = "src",
};

static const char *fast_ws(const char *s, const char *end)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	return s;
}

/* "..." of printable ASCII, no escapes. The position after it, or NULL. */
static const char *fast_string(const char *s, const char *end, struct fast_val *v)
{
	if (s >= end || *s != '"')
		return NULL;
	for (const char *q = ++s; q < end && q - s <= FAST_STR_MAX; q++) {
		unsigned char ch = (unsigned char)*q;

		if (ch == '"') {
			*v = (struct fast_val) { .kind = FK_STR, .p = s, .n = (size_t)(q - s) };
			return q + 1;
		}
		if (ch < 0x20 || ch >= 0x7f || ch == '\\')
			return NULL;
	}
	return NULL;
}

/* An integer as json-c reads it into an int64, at most 18 digits. */
static const char *fast_int(const char *s, const char *end, struct fast_val *v)
{
	const char *p = s;
	int64_t x = 0;

	if (p >= end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9'))
		return NULL;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		if (p - s >= 18)
			return NULL;
		x = x * 10 + (*p - '0');
	}
	if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
		return NULL;
	*v = (struct fast_val) { .kind = FK_INT, .p = s, .n = (size_t)(p - s), .i = x };
	return p;
}

/* [ "..." , ... ]: its whole text, for "fields". */
static const char *fast_array(const char *s, const char *end, struct fast_val *v)
{
	const char *start = s;
	struct fast_val e;

	s = fast_ws(s + 1, end);
	for (int i = 0; i < 64; i++) {
		s = fast_string(s, end, &e);
		if (!s)
			return NULL;
		s = fast_ws(s, end);
		if (s < end && *s == ']') {
			*v = (struct fast_val) { .kind = FK_ARR, .p = start, .n = (size_t)(s + 1 - start) };
			return s + 1;
		}
		if (s >= end || *s != ',')
			return NULL;
		s = fast_ws(s + 1, end);
	}
	return NULL;
}

static int fast_member(const struct fast_val *key)
{
	for (int i = 0; i < _FM_MAX; i++)
		if (strlen(fast_members[i]) == key->n && memcmp(fast_members[i], key->p, key->n) == 0)
			return i;
	return -1;
}

static const char *fast_value(const char *s, const char *end, struct fast_val *v)
{
	if (s >= end)
		return NULL;
	if (*s == '"')
		return fast_string(s, end, v);
	if (*s == '[')
		return fast_array(s, end, v);
	return fast_int(s, end, v);
}

/* The members of a line in the subset into v. false: not in the subset. */
static bool fast_parse(const char *s, size_t len, struct fast_val v[_FM_MAX])
{
	const char *end = s + len;

	s = fast_ws(s, end);
	if (s >= end || *s != '{')
		return false;
	s = fast_ws(s + 1, end);
	for (int i = 0; i < _FM_MAX; i++) {
		struct fast_val key;
		int k;

		s = fast_string(s, end, &key);
		if (!s || (k = fast_member(&key)) < 0 || v[k].kind != FK_NONE)
			return false;
		s = fast_ws(s, end);
		if (s >= end || *s != ':')
			return false;
		s = fast_value(fast_ws(s + 1, end), end, &v[k]);
		if (!s)
			return false;
		s = fast_ws(s, end);
		if (s < end && *s == '}')
			return fast_ws(s + 1, end) == end;
		if (s >= end || *s != ',')
			return false;
		s = fast_ws(s + 1, end);
	}
	return false;
}

static bool fast_is(const struct fast_val *v, const char *s)
{
	return v->kind == FK_STR && strlen(s) == v->n && memcmp(s, v->p, v->n) == 0;
}

/* A string member copied out as the full path copies it (no cut: too long
 * a value takes the full path). */
static bool fast_copy(const struct fast_val *v, char *buf, size_t size)
{
	if (v->n >= size)
		return false;
	memcpy(buf, v->p, v->n);
	buf[v->n] = '\0';
	return true;
}

/* A port as get_port() passes it on: an integer 1-65535, or a string. */
static bool fast_port(const struct fast_val *v, char *buf, size_t size)
{
	if (v->kind == FK_INT) {
		/* the digits as written: no leading zero, so as "%d" writes them */
		if (v->i < 1 || v->i > 65535)
			return false;
		return fast_copy(v, buf, size);
	}
	return v->kind == FK_STR && fast_copy(v, buf, size);
}

/* "fields" as a mask. A client sends the same list with each lookup: the
 * last list's text and mask are kept, a new one goes through
 * flow_fields_parse(). <0: not a valid list (the full path says why). */
static int fast_fields(const struct fast_val *v, uint64_t *ret)
{
	static char last[FAST_FIELDS_MAX];
	static size_t last_n;
	static uint64_t last_mask;
	char buf[FAST_FIELDS_MAX + 16], err[256];
	_cleanup_json_ json_object *o = NULL;

	if (v->n >= FAST_FIELDS_MAX)
		return -E2BIG;
	if (last_n == v->n && memcmp(last, v->p, v->n) == 0) {
		*ret = last_mask;
		return 0;
	}
	snprintf(buf, sizeof(buf), "{\"fields\":%.*s}", (int)v->n, v->p);
	o = json_tokener_parse(buf);
	if (!o || flow_fields_parse(o, ret, err, sizeof(err)) < 0)
		return -EINVAL;
	memcpy(last, v->p, v->n);
	last_n = v->n;
	last_mask = *ret;
	return 0;
}

/* The id as json-c would have read it: the same value, the same text back. */
static bool fast_id(const struct fast_val *v, json_object **ret)
{
	if (v->kind == FK_NONE)
		return true;
	if (v->kind == FK_INT)
		*ret = json_object_new_int64(v->i);
	else if (v->kind == FK_STR)
		*ret = json_object_new_string_len(v->p, (int)v->n);
	return *ret != NULL;
}

/* dst, sport, dport and proto into q, when parse_tuple() would accept them. */
static bool fast_tuple(const struct fast_val v[_FM_MAX], struct flow_query *q)
{
	char dst[FAST_STR_MAX + 1], sport[32], dport[32], proto[16] = "tcp";

	if (v[FM_DST].kind != FK_STR || !fast_copy(&v[FM_DST], dst, sizeof(dst)) ||
	    !fast_port(&v[FM_SPORT], sport, sizeof(sport)) || !fast_port(&v[FM_DPORT], dport, sizeof(dport)))
		return false;
	if (v[FM_PROTO].kind == FK_INT) {
		if (v[FM_PROTO].i > 255)
			return false;
		snprintf(proto, sizeof(proto), "%d", (int)v[FM_PROTO].i);
	} else if (v[FM_PROTO].kind == FK_STR && !fast_copy(&v[FM_PROTO], proto, sizeof(proto)))
		return false;
	else if (v[FM_PROTO].kind == FK_ARR)
		return false;
	return flow_query_parse(dst, sport, dport, proto, q) >= 0;
}

/* "src" as parse_scope() takes it; false (the slow path says why) for
 * anything else. Proxies send it with every lookup (issue 14). */
static bool fast_src(const struct fast_val *v, const struct flow_query *q, struct lookup_scope *scope)
{
	char src[FAST_STR_MAX + 1];
	int family;

	if (v->kind == FK_NONE)
		return true;
	if (v->kind != FK_STR || !fast_copy(v, src, sizeof(src)) || parse_ip(src, &family, scope->src_ip) < 0 ||
	    family != q->family)
		return false;
	scope->has_src = true;
	return true;
}

static void answer_or_defer(struct client *c, json_object *ans, json_object *vid);
static void answer_ping(struct client *c, json_object *vid);

/* true: the line was answered (or deferred) here. */
static bool fast_request(struct manager *m, struct client *c, const char *line, size_t len)
{
	struct lookup_scope scope = { .direction = FLOW_OUTBOUND };
	struct fast_val v[_FM_MAX] = {};
	_cleanup_json_ json_object *vid = NULL;
	uint64_t fields = FLOW_FIELDS_ALL;
	struct flow_query q;
	json_object *ans;

	if (!fast_parse(line, len, v) || !fast_id(&v[FM_ID], &vid))
		return false;
	if (fast_is(&v[FM_OP], "ping")) {
		for (int i = FM_PROTO; i < _FM_MAX; i++)
			if (i != FM_ID && v[i].kind != FK_NONE)
				return false;
		answer_ping(c, vid);
		return true;
	}
	if (!fast_is(&v[FM_OP], "lookup") || !c->may_query || !m->pins.open || !fast_tuple(v, &q) ||
	    !fast_src(&v[FM_SRC], &q, &scope) ||
	    (m->cfg.no_tcp && q.protocol == CONNPID_PROTO_TCP) ||
	    (v[FM_FIELDS].kind != FK_NONE && (v[FM_FIELDS].kind != FK_ARR || fast_fields(&v[FM_FIELDS], &fields) < 0)))
		return false;
	c->answer_fields = fields;
	ans = lookup_outbound(m, c, &q, &scope, vid);
	if (ans || c->deferred)
		answer_or_defer(c, ans, vid);
	return true;
}

/* One tokener for every request of the process (the loop thread parses
 * them all): a new one per line cost a 1 KiB calloc, and with it a
 * malloc_consolidate() pass, each time (tests/bench/lookup-bench). */
static json_object *parse_request(const char *line, enum json_tokener_error *ret_err)
{
	static json_tokener *tok;
	json_object *o;

	if (!tok) {
		/* json-c switches to the C locale around every parse, by
		 * duplocale() and newlocale() of the thread's locale: a tenth
		 * of a request's CPU, under a global lock. queryd never calls
		 * setlocale(), so its locale is "C" anyway; naming it as the
		 * C locale object turns that dance into no-ops (glibc returns
		 * the object itself, allocating nothing). */
		locale_t c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);

		if (c_locale)
			(void)uselocale(c_locale);
		tok = json_tokener_new();
		if (!tok)
			return json_tokener_parse_verbose(line, ret_err);
	}
	/* as json_tokener_parse_verbose(): whatever follows the value is not looked at */
	json_tokener_reset(tok);
	o = json_tokener_parse_ex(tok, line, -1);
	*ret_err = json_tokener_get_error(tok);
	if (*ret_err != json_tokener_success) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* Written in place, as a found lookup is. */
static void answer_ping(struct client *c, json_object *vid)
{
	struct jsonw *w = client_answer_begin(c);

	if (w) {
		jw_kbool(w, "ok", true);
		jw_kbool(w, "pong", true);
		jw_kstr(w, "version", CONNPID_VERSION);
		jw_kint(w, "schema", FLOW_SCHEMA_VERSION);
		client_answer_end(c, vid);
	}
}

/* ans (taken) to the client; none and deferred: the answer comes later. */
static void answer_or_defer(struct client *c, json_object *ans, json_object *vid)
{
	if (!ans && c->deferred) {
		/* answered by manager_client_complete(), with this id */
		c->deferred_id = vid ? json_object_get(vid) : NULL;
		return;
	}
	if (!ans)
		ans = protocol_error("internal", "out of memory");
	client_answer(c, ans, vid);
}

/* A line the fast path did not take, as a request object: NULL with the
 * error answer in *ret_err. */
static json_object *request_parse(const char *line, size_t len, json_object **ret_err)
{
	enum json_tokener_error jerr;
	json_object *req;

	/* JSON is UTF-8 (RFC 8259), and json-c does not check: bytes that
	 * are not would come back in errors and echoed ids. */
	if (!utf8_is_valid(line, len)) {
		*ret_err = protocol_error("bad_json", "request is not valid JSON: not UTF-8");
		return NULL;
	}
	req = parse_request(line, &jerr);
	if (!req) {
		/* json-c parses the valid JSON `null` to NULL with success */
		if (jerr == json_tokener_success)
			*ret_err = protocol_error("bad_request", "request must be a JSON object");
		else
			*ret_err = protocol_error("bad_json", "request is not valid JSON: %s",
						  json_tokener_error_desc(jerr));
		return NULL;
	}
	if (!json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		*ret_err = protocol_error("bad_request", "request must be a JSON object");
		return NULL;
	}
	return req;
}

/* The op of req, when c may ask it: NULL with the error answer in *ret_err. */
static const char *request_op(struct manager *m, struct client *c, json_object *req, json_object *vid,
			      json_object **ret_err)
{
	json_object *vop;
	const char *op;

	if (has_nonfinite(req)) {
		*ret_err = protocol_error("invalid_argument", "numbers must be finite: NaN, Infinity and values "
					  "beyond a double's range (1e999) are not JSON");
		return NULL;
	}
	/* The id goes back as given, through every answer path (also the
	 * ones written without a tree): numbers in our own rendering. */
	json_sanitize(vid);
	if (!json_object_object_get_ex(req, "op", &vop) || !json_object_is_type(vop, json_type_string)) {
		*ret_err = protocol_error("bad_request", "request needs \"op\": a string");
		return NULL;
	}
	op = json_object_get_string(vop);
	if (!c->may_query && !streq(op, "ping")) {
		*ret_err = protocol_error("permission_denied", "uid %u may not query connpid: only root and "
					  "members of group '%s' may", (unsigned)c->uid,
					  m->cfg.allow_group ? m->cfg.allow_group : "(none)");
		return NULL;
	}
	return op;
}

/* Run op. true: answered in place (ping, a found lookup), nothing more to
 * send; else its answer in *ret_ans (NULL: deferred). */
static bool request_run(struct manager *m, struct client *c, json_object *req, const char *op, json_object *vid,
			json_object **ret_ans)
{
	if (streq(op, "ping")) {
		answer_ping(c, vid);
		return true;
	}
	if (streq(op, "lookup")) {
		*ret_ans = op_lookup(m, c, req, vid);
		return !*ret_ans && !c->deferred;
	}
	if (streq(op, "recent"))
		*ret_ans = slow_enqueue(m, c, req, op_recent);
	else if (streq(op, "history"))
		*ret_ans = history_op(m, c, req);
	else if (streq(op, "watch"))
		*ret_ans = op_watch(m, c, req);
	else if (streq(op, "stats"))
		*ret_ans = slow_enqueue(m, c, req, slow_stats);
	else if (streq(op, "status"))
		*ret_ans = slow_enqueue(m, c, req, slow_status);
	else if (streq(op, "test_defer") && test_defer_usec(m) > 0)
		*ret_ans = op_test_defer(m, c);
	else
		*ret_ans = protocol_error("unknown_op", "unknown op \"%.*s\" (lookup, recent, history, watch, "
					  "stats, status, ping)", quote_len(op), op);
	return false;
}

void protocol_handle_line(struct manager *m, struct client *c, char *line, size_t len)
{
	_cleanup_json_ json_object *req = NULL, *ans = NULL;
	json_object *vid = NULL;
	const char *op;

	/* Tolerate CRLF and blank keep-alive lines. */
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0)
		return;
	m->requests++;
	m->requests_may_query += c->may_query;
	c->answer_fields = FLOW_FIELDS_ALL;
	if (fast_request(m, c, line, len))
		return;

	req = request_parse(line, len, &ans);
	if (req) {
		json_object_object_get_ex(req, "id", &vid);
		op = request_op(m, c, req, vid, &ans);
		if (op && request_run(m, c, req, op, vid, &ans))
			return;
	}
	answer_or_defer(c, TAKE_PTR(ans), vid);
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Requests on the query socket (grammar in man/connpid.7). Every request
 * gets exactly one answer line, in order; an error answers that request
 * only and never closes the connection (a line over 64 KiB aside).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "client.h"
#include "flow-json.h"
#include "flowkey.h"
#include "jsonutil.h"
#include "jsonw.h"
#include "macro.h"
#include "manager.h"
#include "pin-describe.h"
#include "procinfo.h"
#include "store.h"

#define RECENT_DEFAULT 50
#define RECENT_MAX 5000

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

static json_object *ok_answer(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(true));
	return o;
}

/* How much of a client's string to quote in an error: 64 bytes at most,
 * never half a character. */
static int quote_len(const char *s)
{
	return (int)utf8_cut(s, strnlen(s, 64));
}

/* The one check for integers in requests: an integer (not 1.5, not 2.0,
 * not "2", not null) in [min, max]. json-c clamps what int64 cannot hold,
 * so 4294967297 or 1e30 never wrap into range here. */
static int int_in_range(json_object *v, int64_t min, int64_t max, int64_t *ret)
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
static int get_int_member(json_object *req, const char *key, int64_t min, int64_t max, int64_t *ret)
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

static json_object *store_unavailable(struct store *st)
{
	struct store_stats ss;

	store_get_stats(st, &ss);
	return protocol_error("unavailable", "the history database is not open yet (retrying): %s",
			      ss.last_error ? ss.last_error : "unknown reason");
}

static int get_time(json_object *v, double *ret)
{
	if (!json_object_is_type(v, json_type_int) && !json_object_is_type(v, json_type_double))
		return -EINVAL;
	*ret = json_object_get_double(v);
	return isfinite(*ret) && *ret >= 0 ? 0 : -EINVAL;
}

/* "as of": who owned the flow at that time, from the history, even after
 * it left the LRU map and the index. */
static json_object *lookup_at(struct manager *m, const struct flow_query *q, json_object *vat)
{
	json_object *ans, *row = NULL;
	char dst[64];
	double at;
	int r;

	if (get_time(vat, &at) < 0)
		return protocol_error("invalid_argument", "\"at\" must be a unix time in seconds");
	if (!m->store)
		return protocol_error("unavailable", "the history store is off: %s",
				      m->store_problem[0] ? m->store_problem : "--no-store");
	if (!store_is_open(m->store))
		return store_unavailable(m->store);
	/* Rows still queued must be visible to the question. */
	while (store_queue_len(m->store) > 0 && store_flush(m->store, 2000) > 0)
		;
	m->lookups++;
	format_ip(q->family, q->dst_ip, dst, sizeof(dst));
	r = store_lookup_at(m->store, q->protocol, dst, q->src_port, q->dst_port, at, &row);
	if (r < 0)
		return protocol_error("internal", "history lookup failed: %s", strerror(-r));
	ans = ok_answer();
	json_object_object_add(ans, "found", json_object_new_boolean(r > 0));
	if (r > 0) {
		json_object_object_add(ans, "flow", row);
		m->lookups_found++;
	}
	return ans;
}

/* The map names the owner but the index has no event for it: an earlier
 * queryd drained it before a restart, or the index evicted it. The
 * history still has the details, if the row names the same pid; /proc
 * is the last resort. */
static json_object *map_hit_from_history(struct manager *m, const struct flow_query *q, __u32 pid)
{
	json_object *row = NULL, *vpid;
	char dst[64];

	if (m->store && store_is_open(m->store)) {
		while (store_queue_len(m->store) > 0 && store_flush(m->store, 2000) > 0)
			;
		format_ip(q->family, q->dst_ip, dst, sizeof(dst));
		if (store_lookup_at(m->store, q->protocol, dst, q->src_port, q->dst_port, now_realtime(), &row) > 0) {
			if (json_object_object_get_ex(row, "pid", &vpid) && (__u32)json_object_get_int64(vpid) == pid) {
				json_object *vstart;
				__u64 now_ticks = 0;
				bool same = false;
				int r;

				r = procinfo_start_ticks((pid_t)pid, &now_ticks);
				if (r == 0 && json_object_object_get_ex(row, "start_time", &vstart))
					same = (__u64)json_object_get_int64(vstart) == now_ticks;
				json_object_object_add(row, "alive", json_object_new_boolean(same));
				json_object_object_add(row, "pid_reused", json_object_new_boolean(r == 0 && !same));
				json_object_object_add(row, "in_map", json_object_new_boolean(true));
				return row;
			}
			json_object_put(row);
		}
	}
	return map_hit_to_json(q, pid);
}

static json_object *op_lookup(struct manager *m, json_object *req)
{
	json_object *vdst, *vproto, *vat, *ans;
	char sport[32], dport[32], proto[16] = "tcp";
	struct flow_query q;
	struct flow_key k = {};
	struct flow *f;
	__u32 pid = 0;
	int r, in_map;

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
	r = flow_query_parse(json_object_get_string(vdst), sport, dport, proto, &q);
	if (r < 0) {
		const char *dst = json_object_get_string(vdst);

		if (parse_protocol(proto, &q.protocol) < 0)
			return protocol_error("invalid_argument", "\"proto\" must be \"tcp\" or \"udp\", not \"%.*s\"",
					      quote_len(proto), proto);
		if (parse_ip(dst, &q.family, q.dst_ip) < 0)
			return protocol_error("invalid_argument", "\"dst\" is not an IP address: \"%.*s\"",
					      quote_len(dst), dst);
		return protocol_error("invalid_argument", "ports must be 1-65535 (sport \"%.*s\", dport \"%.*s\")",
				      quote_len(sport), sport, quote_len(dport), dport);
	}
	if (m->cfg.no_tcp && q.protocol == CONNPID_PROTO_TCP)
		return protocol_error("unavailable", "TCP reporting is off (--no-tcp)");
	if (json_object_object_get_ex(req, "at", &vat))
		return lookup_at(m, &q, vat);
	if (!m->maps_open)
		return protocol_error("unavailable", "%s", m->maps_problem[0] ? m->maps_problem : "connpid is not loaded");

	m->lookups++;
	/* The map is written in the connect()/send() path: it is the truth
	 * about the current owner even before its event has been drained. */
	in_map = flow_query_lookup(&q, m->maps.v4_fd, m->maps.v6_fd, &pid);
	if (in_map < 0)
		return protocol_error("internal", "map lookup failed: %s", strerror(-in_map));
	k.family = (__u8)q.family;
	k.protocol = q.protocol;
	k.src_port = q.src_port;
	k.dst_port = q.dst_port;
	memcpy(k.dst_ip, q.dst_ip, q.family == AF_INET ? 4 : 16);
	f = flow_index_find(m->flows, &k);
	if (in_map && (!f || f->ev.pid != pid)) {
		(void)manager_ringbuf_drain(m);
		f = flow_index_find(m->flows, &k);
	}

	ans = ok_answer();
	if (in_map && f && f->ev.pid == pid) {
		json_object_object_add(ans, "found", json_object_new_boolean(true));
		json_object_object_add(ans, "flow", flow_to_json(m, f, 1));
	} else if (in_map) {
		json_object_object_add(ans, "found", json_object_new_boolean(true));
		json_object_object_add(ans, "flow", map_hit_from_history(m, &q, pid));
	} else if (f) {
		/* Evicted from the LRU map, still described by its event. */
		json_object_object_add(ans, "found", json_object_new_boolean(true));
		json_object_object_add(ans, "flow", flow_to_json(m, f, 0));
	} else {
		json_object_object_add(ans, "found", json_object_new_boolean(false));
		return ans;
	}
	m->lookups_found++;
	return ans;
}

static json_object *op_recent(struct manager *m, json_object *req)
{
	struct watch_filter w;
	json_object *v, *arr, *ans;
	int64_t limit = RECENT_DEFAULT, n = 0;
	char err[256];
	int r;

	r = get_int_member(req, "limit", 1, RECENT_MAX, &limit);
	if (r < 0 && r != -ENOENT)
		return protocol_error("invalid_argument", "\"limit\" must be an integer 1-%d", RECENT_MAX);
	if (watch_filter_parse(json_object_object_get_ex(req, "filter", &v) ? v : NULL, &w, err, sizeof(err)) < 0)
		return protocol_error("invalid_argument", "%s", err);
	(void)manager_ringbuf_drain(m);
	ans = ok_answer();
	arr = json_object_new_array();
	for (struct flow *f = flow_index_newest(m->flows); f && n < limit; f = flow_older(f))
		if (watch_filter_match(&w, f)) {
			json_object_array_add(arr, flow_to_json(m, f, -1));
			n++;
		}
	json_object_object_add(ans, "flows", arr);
	return ans;
}

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

static json_object *op_history(struct manager *m, json_object *req)
{
	struct history_query q = { .limit = RECENT_DEFAULT };
	json_object *f = NULL, *rows = NULL, *ans;
	const char *order = NULL;
	char dst_canon[64];
	int64_t num;
	int r;

	if (!m->store)
		return protocol_error("unavailable", "the history store is off: %s",
				      m->store_problem[0] ? m->store_problem : "--no-store");
	if (!store_is_open(m->store))
		return store_unavailable(m->store);
	r = get_int_member(req, "limit", 1, RECENT_MAX, &num);
	if (r < 0 && r != -ENOENT)
		return protocol_error("invalid_argument", "\"limit\" must be an integer 1-%d", RECENT_MAX);
	if (r == 0)
		q.limit = (int)num;
	if (get_opt_str(req, "order", &order) < 0 ||
	    (order && !streq(order, "asc") && !streq(order, "desc")))
		return protocol_error("invalid_argument", "\"order\" must be \"asc\" or \"desc\"");
	q.ascending = order && streq(order, "asc");
	if (json_object_object_get_ex(req, "filter", &f) && f && !json_object_is_type(f, json_type_object))
		return protocol_error("invalid_argument", "\"filter\" must be an object");
	if (f) {
		json_object_object_foreach(f, key, val) {
			if (streq(key, "pid")) {
				if (int_in_range(val, 0, UINT32_MAX, &num) < 0)
					goto bad;
				q.has_pid = true;
				q.pid = (__u32)num;
			} else if (streq(key, "dport")) {
				if (int_in_range(val, 1, 65535, &num) < 0)
					goto bad;
				q.has_dport = true;
				q.dport = (__u16)num;
			} else if (streq(key, "proto")) {
				if (!json_object_is_type(val, json_type_string) ||
				    parse_protocol(json_object_get_string(val), &q.proto) < 0)
					goto bad;
				q.has_proto = true;
			} else if (streq(key, "since") || streq(key, "until")) {
				double t;

				if (get_time(val, &t) < 0)
					goto bad;
				if (streq(key, "since")) {
					q.has_since = true;
					q.since = t;
				} else {
					q.has_until = true;
					q.until = t;
				}
			} else if (streq(key, "dst")) {
				int fam;
				__u32 a[4];

				if (!json_object_is_type(val, json_type_string) ||
				    parse_ip(json_object_get_string(val), &fam, a) < 0)
					goto bad;
				q.dst = format_ip(fam, a, dst_canon, sizeof(dst_canon));
			} else if (streq(key, "comm") || streq(key, "exe") || streq(key, "domain") ||
				   streq(key, "container") || streq(key, "unit")) {
				const char **slot = streq(key, "comm") ? &q.comm : streq(key, "exe") ? &q.exe :
						    streq(key, "domain") ? &q.domain :
						    streq(key, "container") ? &q.container : &q.unit;

				if (!json_object_is_type(val, json_type_string))
					goto bad;
				*slot = json_object_get_string(val);
			} else {
				return protocol_error("invalid_argument", "unknown history filter \"%.*s\" (pid, comm, "
						      "exe, dst, dport, proto, domain, container, unit, since, until)",
						      quote_len(key), key);
			}
			continue;
bad:
			return protocol_error("invalid_argument", "invalid value for history filter \"%.*s\"",
					      quote_len(key), key);
		}
	}
	(void)manager_ringbuf_drain(m);
	while (store_queue_len(m->store) > 0 && store_flush(m->store, 2000) > 0)
		;
	r = store_history(m->store, &q, &rows);
	if (r < 0)
		return protocol_error("internal", "history query failed: %s", strerror(-r));
	ans = ok_answer();
	json_object_object_add(ans, "flows", rows);
	return ans;
}

static json_object *op_watch(struct manager *m, struct client *c, json_object *req)
{
	struct watch_filter w;
	json_object *v, *ans;
	char err[256];

	if (watch_filter_parse(json_object_object_get_ex(req, "filter", &v) ? v : NULL, &w, err, sizeof(err)) < 0)
		return protocol_error("invalid_argument", "%s", err);
	if (!c->watching)
		m->n_watchers++;
	c->watching = true;
	c->filter = w;
	ans = ok_answer();
	json_object_object_add(ans, "watching", json_object_new_boolean(true));
	return ans;
}

static void add_u64(json_object *o, const char *k, __u64 v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

static json_object *op_stats(struct manager *m)
{
	json_object *ans = ok_answer(), *s = json_object_new_object(), *k = json_object_new_object();
	static const char *const names[CONNPID_STAT_MAX] = {
		[CONNPID_STAT_EVENTS] = "events",
		[CONNPID_STAT_RINGBUF_DROPS] = "ringbuf_drops",
		[CONNPID_STAT_MAP_UPDATE_ERRORS] = "map_update_errors",
		[CONNPID_STAT_FLOWS_V4] = "flows_v4",
		[CONNPID_STAT_FLOWS_V6] = "flows_v6",
		[CONNPID_STAT_REPEATS] = "repeats",
		[CONNPID_STAT_BLOCKED_V6] = "blocked_v6",
		[CONNPID_STAT_DNS_PACKETS] = "dns_packets",
		[CONNPID_STAT_DNS_DROPS] = "dns_drops",
		[CONNPID_STAT_GAI_CALLS] = "getaddrinfo_calls",
	};
	uint64_t mono_now = 0;

	(void)manager_ringbuf_drain(m);
	add_u64(s, "events_received", m->events_received);
	add_u64(s, "lookups", m->lookups);
	add_u64(s, "lookups_found", m->lookups_found);
	add_u64(s, "requests", m->requests);
	add_u64(s, "request_errors", m->request_errors);
	add_u64(s, "clients", m->n_clients);
	add_u64(s, "clients_total", m->clients_total);
	add_u64(s, "watchers", m->n_watchers);
	add_u64(s, "clients_dropped_slow", m->clients_dropped_slow);
	add_u64(s, "accept_starved", m->accept_starved);
	add_u64(s, "index_flows", flow_index_size(m->flows));
	add_u64(s, "index_capacity", flow_index_capacity(m->flows));
	add_u64(s, "index_evictions", flow_index_evictions(m->flows));
	add_u64(s, "processes", proc_cache_size(m->procs));
	add_u64(s, "proc_reads", proc_cache_reads(m->procs));
	add_u64(s, "dns_responses", m->dns_responses);
	add_u64(s, "dns_malformed", m->dns_malformed);
	add_u64(s, "dns_truncated", m->dns_truncated);
	add_u64(s, "dns_getaddrinfo", m->dns_getaddrinfo);
	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &mono_now);
	json_object_object_add(s, "uptime_seconds",
			       json_object_new_double((double)(mono_now - m->started_mono_us) / 1e6));
	json_object_object_add(s, "loaded", json_object_new_boolean(m->maps_open));
	if (m->maps_open) {
		__u32 n4 = 0, n6 = 0;

		for (__u32 i = 0; i < CONNPID_STAT_MAX; i++) {
			__u64 v = 0;

			if (connpid_stats_read(m->maps.stats_fd, i, &v) == 0)
				add_u64(k, names[i], v);
		}
		if (connpid_map_count_entries(m->maps.v4_fd, &n4) == 0) {
			add_u64(s, "map_v4_entries", n4);
			json_object_object_add(s, "map_v4_fill_percent",
					       m->maps.v4_max_entries ? json_object_new_double(100.0 * n4 / m->maps.v4_max_entries) : NULL);
		}
		if (connpid_map_count_entries(m->maps.v6_fd, &n6) == 0) {
			add_u64(s, "map_v6_entries", n6);
			json_object_object_add(s, "map_v6_fill_percent",
					       m->maps.v6_max_entries ? json_object_new_double(100.0 * n6 / m->maps.v6_max_entries) : NULL);
		}
	}
	json_object_object_add(s, "kernel", k);
	{
		json_object *h = json_object_new_object();

		json_object_object_add(h, "enabled", json_object_new_boolean(m->store != NULL));
		if (m->store) {
			struct store_stats ss;

			store_get_stats(m->store, &ss);
			add_u64(h, "rows_queued", ss.rows_queued);
			add_u64(h, "rows_written", ss.rows_written);
			add_u64(h, "rows_dropped", ss.rows_dropped);
			add_u64(h, "rows_pruned", ss.rows_pruned);
			add_u64(h, "write_errors", ss.write_errors);
			add_u64(h, "transactions", ss.transactions);
			add_u64(h, "queue", ss.queue_len);
			json_object_object_add(h, "writable", json_object_new_boolean(ss.writable));
			json_object_object_add(h, "open", json_object_new_boolean(store_is_open(m->store)));
			if (ss.last_error)
				json_object_object_add(h, "last_error", json_object_new_string(ss.last_error));
		} else if (m->store_problem[0]) {
			json_object_object_add(h, "problem", json_object_new_string(m->store_problem));
		}
		json_object_object_add(s, "store", h);
	}
	json_object_object_add(ans, "stats", s);
	return ans;
}

static json_object *op_status(struct manager *m)
{
	json_object *ans = ok_answer(), *st = NULL, *q = json_object_new_object();
	int r;

	r = pins_describe(m->cfg.pin_dir, &st);
	if (r < 0) {
		st = json_object_new_object();
		json_object_object_add(st, "error", json_object_new_string(strerror(-r)));
	}
	json_object_object_add(q, "version", json_object_new_string(CONNPID_VERSION));
	json_object_object_add(q, "abi_version", json_object_new_int(CONNPID_ABI_VERSION));
	json_object_object_add(q, "socket", json_object_new_string(m->cfg.socket_path));
	json_object_object_add(q, "socket_activated", json_object_new_boolean(m->listen_fd_activated));
	json_object_object_add(q, "allow_group", m->cfg.allow_group ?
			       json_object_new_string(m->cfg.allow_group) : NULL);
	json_object_object_add(q, "allow_group_exists", json_object_new_boolean(m->allow_gid_valid));
	json_object_object_add(q, "pins_in_use", json_object_new_boolean(m->maps_open));
	if (!m->maps_open)
		json_object_object_add(q, "problem", json_object_new_string(m->maps_problem));
	json_object_object_add(st, "queryd", q);
	json_object_object_add(ans, "status", st);
	return ans;
}

void protocol_handle_line(struct manager *m, struct client *c, char *line, size_t len)
{
	_cleanup_json_ json_object *req = NULL, *ans = NULL;
	json_object *vop, *vid = NULL;
	enum json_tokener_error jerr;
	const char *op;

	/* Tolerate CRLF and blank keep-alive lines. */
	if (len > 0 && line[len - 1] == '\r')
		line[--len] = '\0';
	if (len == 0)
		return;
	m->requests++;

	/* JSON is UTF-8 (RFC 8259), and json-c does not check: bytes that
	 * are not would come back in errors and echoed ids. */
	if (!utf8_is_valid(line, len)) {
		ans = protocol_error("bad_json", "request is not valid JSON: not UTF-8");
		goto out;
	}
	req = json_tokener_parse_verbose(line, &jerr);
	if (!req) {
		/* json-c parses the valid JSON `null` to NULL with success */
		if (jerr == json_tokener_success)
			ans = protocol_error("bad_request", "request must be a JSON object");
		else
			ans = protocol_error("bad_json", "request is not valid JSON: %s",
					     json_tokener_error_desc(jerr));
		goto out;
	}
	if (!json_object_is_type(req, json_type_object)) {
		ans = protocol_error("bad_request", "request must be a JSON object");
		goto out;
	}
	json_object_object_get_ex(req, "id", &vid);
	if (has_nonfinite(req)) {
		ans = protocol_error("invalid_argument", "numbers must be finite: NaN, Infinity and values "
				     "beyond a double's range (1e999) are not JSON");
		goto out;
	}
	if (!json_object_object_get_ex(req, "op", &vop) || !json_object_is_type(vop, json_type_string)) {
		ans = protocol_error("bad_request", "request needs \"op\": a string");
		goto out;
	}
	op = json_object_get_string(vop);
	if (!c->may_query && !streq(op, "ping")) {
		ans = protocol_error("permission_denied", "uid %u may not query connpid: only root and members "
				     "of group '%s' may", (unsigned)c->uid,
				     m->cfg.allow_group ? m->cfg.allow_group : "(none)");
		goto out;
	}
	if (streq(op, "ping")) {
		ans = ok_answer();
		json_object_object_add(ans, "pong", json_object_new_boolean(true));
		json_object_object_add(ans, "version", json_object_new_string(CONNPID_VERSION));
	} else if (streq(op, "lookup"))
		ans = op_lookup(m, req);
	else if (streq(op, "recent"))
		ans = op_recent(m, req);
	else if (streq(op, "history"))
		ans = op_history(m, req);
	else if (streq(op, "watch"))
		ans = op_watch(m, c, req);
	else if (streq(op, "stats"))
		ans = op_stats(m);
	else if (streq(op, "status"))
		ans = op_status(m);
	else
		ans = protocol_error("unknown_op", "unknown op \"%.*s\" (lookup, recent, history, watch, stats, status, ping)",
				     quote_len(op), op);
out:
	if (vid)
		json_object_object_add(ans, "id", json_object_get(vid));
	/* The last word on what leaves: json-c built parts of this answer
	 * from bytes we did not choose (history rows, pin names, errors). */
	json_sanitize(ans);
	{
		json_object *ok;

		if (json_object_object_get_ex(ans, "ok", &ok) && !json_object_get_boolean(ok))
			m->request_errors++;
	}
	(void)client_send(c, ans);
}

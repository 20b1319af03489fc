// SPDX-License-Identifier: GPL-2.0-or-later
/* connpidctl: ask connpid-queryd (or, with --direct, the pinned maps). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>

#include "connpid.h"
#include "ecs.h"
#include "flowkey.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "pins.h"
#include "procinfo.h"
#include "../lib/connpid.h"

#define EXIT_FOUND 0
#define EXIT_NOT_FOUND 1
#define EXIT_ERROR 2
#define DEFAULT_SOCKET CONNPID_DEFAULT_SOCKET

static void connpid_closep(connpid **h)
{
	connpid_close(*h);
}

static void connpid_result_freep(struct connpid_result **r)
{
	connpid_result_free(*r);
}

struct ctl {
	const char *socket_path;
	const char *pin_dir;
	const char *protocol;
	bool json;
	bool direct;
	long limit;
	json_object *filter;
	const char *order;
	bool has_at;
	double at;
	bool ecs;        /* --format ecs */
	bool prometheus; /* stats --prometheus */
	const char *community_id;
	/* lookup members, and filters of watch/recent/history */
	const char *src;
	uint32_t netns;  /* 0: any */
	int direction;   /* -1 unset, CONNPID_DIRECTION_* */
};

static bool ctl_scoped(const struct ctl *c)
{
	return c->src || c->netns || c->direction == CONNPID_DIRECTION_INBOUND;
}

static void help(void)
{
	printf("Usage: connpidctl [OPTIONS] COMMAND ...\n\n"
	       "Commands:\n"
	       "  lookup [tcp|udp] DST_IP SPORT DPORT\n"
	       "                              who owns SPORT -> DST_IP:DPORT (inbound: who\n"
	       "                              accepted DST_IP:DPORT -> local port SPORT)\n"
	       "  lookup --community-id ID    who owns the flow with that Community ID\n"
	       "  watch                       new flows as they happen\n"
	       "  recent                      the newest flows in the daemon's index\n"
	       "  history                     flows from the on-disk history (filters below)\n"
	       "  stats                       counters (events, drops, map fill, clients)\n"
	       "  status                      pins, attachments, versions\n"
	       "  ping                        is the daemon there\n"
	       "  ipv6-block on|off           refuse or allow native IPv6 (root only)\n\n"
	       "Options:\n"
	       "  --protocol tcp|udp   for lookup (default tcp)\n"
	       "  --direct             read the pinned maps, no daemon\n"
	       "  --json               print JSON (the daemon's answer as is)\n"
	       "  --at TIME            for lookup: who owned the flow at TIME (history)\n"
	       "  --community-id ID    for lookup: the flow's Community ID (\"1:...\")\n"
	       "  --src IP             lookup: this host's address of the flow (a container's\n"
	       "                       or namespace's client address); filter for the rest\n"
	       "  --netns N            lookup: the network namespace inode; filter for the rest\n"
	       "  --inbound            lookup: an accepted connection (SPORT is the local\n"
	       "                       port, DST_IP:DPORT the client); needs the daemon\n"
	       "  --direction outbound|inbound\n"
	       "                       filter for watch, recent and history (lookup too)\n"
	       "  --limit N            for recent and history (default 20)\n"
	       "  --pid N, --comm NAME, --dport N, --dst IP, --proto tcp|udp\n"
	       "                       filters for watch, recent and history\n"
	       "  --exe PATH, --domain NAME, --container ID|NAME, --unit NAME,\n"
	       "  --since TIME, --until TIME, --order asc|desc\n"
	       "                       more filters for history\n"
	       "  TIME is unix seconds, YYYY-MM-DDTHH:MM:SS (local), or -N[smhd] (ago)\n"
	       "  --socket PATH        daemon socket (default %s)\n"
	       "  --pin-dir DIR        pin dir for --direct (default %s)\n"
	       "  --format ecs         for history and recent: one ECS record (JSON) per line\n"
	       "  --prometheus         for stats: the Prometheus text exposition format\n"
	       "  --version            print the version and the pin ABI it speaks\n\n"
	       "Exit status: 0 found/ok, 1 not found, 2 error.\n",
	       DEFAULT_SOCKET, CONNPID_DEFAULT_PIN_DIR);
}

/* Errors of connecting, as opposed to those of a connection that broke. */
static bool unreachable(int r)
{
	switch (-r) {
	case ENOENT: case ECONNREFUSED: case EACCES: case EPERM: case ENAMETOOLONG: case EAGAIN: case ENOTSOCK:
		return true;
	default:
		return false;
	}
}

static int open_daemon(const struct ctl *c, connpid **ret)
{
	int r = connpid_open(ret, c->socket_path, 0);

	if (r < 0)
		return r;
	/* the daemon's answers (a long history) take what they take */
	return connpid_set_timeout(*ret, 0);
}

/* One request, one parsed answer. */
static int call_daemon(connpid *h, json_object *req, json_object **ret)
{
	_cleanup_free_ char *answer = NULL;
	int r;

	r = connpid_call(h, json_object_to_json_string_ext(req, JSON_LINE_FLAGS), &answer);
	if (r < 0)
		return r;
	*ret = json_tokener_parse(answer);
	return *ret ? 0 : -EBADMSG;
}

static const char *jget_str(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

static bool jget_bool(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* One field of a table row, through text_escape(): a comm holding
 * "\x1b[2K\r" is shown, not obeyed. Padded to width characters and
 * followed by a space; width 0 is the last field and ends the line. */
static void put_field(const char *s, int width)
{
	_cleanup_free_ char *e = text_escape(s ?: "-");
	int chars = 0;

	if (!e) {
		e = strdup("?");
		if (!e)
			return;
	}
	fputs(e, stdout);
	if (width == 0) {
		putchar('\n');
		return;
	}
	for (const char *p = e; *p; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80; /* a character starts here */
	printf("%*s", width > chars ? width - chars + 1 : 1, "");
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_LINE_FLAGS));
}

static int answer_error(json_object *ans)
{
	json_object *e, *msg, *code;

	if (jget_bool(ans, "ok"))
		return 0;
	if (json_object_object_get_ex(ans, "error", &e) &&
	    json_object_object_get_ex(e, "message", &msg) && json_object_object_get_ex(e, "code", &code))
		log_error("%s (%s)", json_object_get_string(msg), json_object_get_string(code));
	else
		log_error("The daemon answered with an error");
	return -EREMOTEIO;
}

static void print_flow_row_header(void)
{
	printf("%-8s %-16s %-6s %-20s %-5s %-6s %-4s %-8s %-24s %-20s %-24s %-22s %s\n",
	       "PID", "COMM", "PROTO", "DST", "SPORT", "DPORT", "DIR", "ALIVE", "UNIT", "CONTAINER", "DOMAIN",
	       "LISTENER", "EXE");
}

/* "in" / "out" ("-" for an answer of an older daemon without it). */
static const char *direction_label(json_object *f)
{
	const char *d = jget_str(f, "direction");

	return streq(d, "inbound") ? "in" : streq(d, "outbound") ? "out" : "-";
}

/* An inbound flow's listener as comm[pid], "-" when none. */
static const char *listener_label(json_object *f, char *buf, size_t size)
{
	json_object *l;

	if (!json_object_object_get_ex(f, "listener", &l) || !json_object_is_type(l, json_type_object))
		return "-";
	snprintf(buf, size, "%s[%s]", jget_str(l, "comm"), jget_str(l, "pid"));
	return buf;
}

/* The first 12 characters of a container id, never half a character. */
static const char *short_id(const char *id, char buf[static 13])
{
	snprintf(buf, 13, "%.*s", (int)utf8_cut(id, strnlen(id, 12)), id);
	return buf;
}

/* The container's name when Docker told us, else a short id. */
static const char *container_label(json_object *f, char idbuf[static 13])
{
	json_object *c, *v;

	/* history rows carry flat columns */
	if (json_object_object_get_ex(f, "container_name", &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_object_get_ex(f, "container_id", &v) && json_object_is_type(v, json_type_string))
		return short_id(json_object_get_string(v), idbuf);
	if (!json_object_object_get_ex(f, "container", &c) || !json_object_is_type(c, json_type_object))
		return "-";
	if (json_object_object_get_ex(c, "name", &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	if (json_object_object_get_ex(c, "id", &v) && json_object_is_type(v, json_type_string))
		return short_id(json_object_get_string(v), idbuf);
	return "-";
}

static const char *domain_label(json_object *f)
{
	json_object *d, *v;

	if (json_object_object_get_ex(f, "domain", &d) && json_object_is_type(d, json_type_object) &&
	    json_object_object_get_ex(d, "name", &v) && v)
		return json_object_get_string(v);
	if (json_object_object_get_ex(f, "domain", &d) && json_object_is_type(d, json_type_string))
		return json_object_get_string(d);
	return "-";
}

static const char *alive_label(json_object *f)
{
	return !json_object_object_get_ex(f, "alive", NULL) ? "-" :
	       jget_bool(f, "alive") ? "yes" : (jget_bool(f, "pid_reused") ? "reused" : "exited");
}

static void print_flow_row(json_object *f)
{
	char idbuf[13], lbuf[64];

	put_field(jget_str(f, "pid"), 8);
	put_field(jget_str(f, "comm"), 16);
	put_field(jget_str(f, "proto"), 6);
	put_field(jget_str(f, "dst"), 20);
	put_field(jget_str(f, "sport"), 5);
	put_field(jget_str(f, "dport"), 6);
	put_field(direction_label(f), 4);
	put_field(alive_label(f), 8);
	put_field(jget_str(f, "unit"), 24);
	put_field(container_label(f, idbuf), 20);
	put_field(domain_label(f), 24);
	put_field(listener_label(f, lbuf, sizeof(lbuf)), 22);
	put_field(jget_str(f, "exe"), 0);
}

/* One "key=value " of a candidate line, the value escaped. */
static void put_kv(const char *key, const char *value)
{
	_cleanup_free_ char *e = text_escape(value ?: "-");

	printf(" %s=%s", key, e ?: "?");
}

/* The other flows of the same key (another namespace or source address):
 * one marked line each, so that nobody takes them for the answer. */
static void print_candidates(json_object *ans)
{
	json_object *cands;
	size_t n;

	if (!json_object_object_get_ex(ans, "candidates", &cands) || !json_object_is_type(cands, json_type_array) ||
	    (n = json_object_array_length(cands)) == 0)
		return;
	printf("%zu other candidate%s with these ports (another network namespace or source address;\n"
	       "pass --src/--netns to pick one):\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_array_get_idx(cands, i);
		char idbuf[13], lbuf[64];

		if (!json_object_is_type(f, json_type_object))
			continue;
		fputs("candidate", stdout);
		put_kv("pid", jget_str(f, "pid"));
		put_kv("comm", jget_str(f, "comm"));
		put_kv("src", jget_str(f, "src"));
		put_kv("netns", jget_str(f, "netns"));
		put_kv("dir", direction_label(f));
		put_kv("alive", alive_label(f));
		put_kv("container", container_label(f, idbuf));
		put_kv("listener", listener_label(f, lbuf, sizeof(lbuf)));
		put_kv("exe", jget_str(f, "exe"));
		putchar('\n');
	}
}

static int lookup_direct(const struct ctl *c, const struct flow_query *q)
{
	struct connpid_maps maps;
	struct procinfo p;
	char err[512] = "", dst[64];
	__u32 pid = 0;
	bool alive;
	int r;

	connpid_maps_init(&maps);
	r = connpid_maps_open(c->pin_dir, &maps, 0, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return EXIT_ERROR;
	}
	r = flow_query_lookup(q, maps.v4_fd, maps.v6_fd, &pid);
	connpid_maps_close(&maps);
	if (r < 0) {
		log_error_errno(r, "Map lookup failed: %m");
		return EXIT_ERROR;
	}
	format_ip(q->family, q->dst_ip, dst, sizeof(dst));
	if (r == 0) {
		if (c->json)
			printf("{\"ok\":true,\"found\":false}\n");
		else
			printf("not found: %s %u -> %s:%u\n", protocol_name(q->protocol), q->src_port, dst, q->dst_port);
		return EXIT_NOT_FOUND;
	}
	alive = procinfo_read((pid_t)pid, &p) == 0;
	if (c->json) {
		_cleanup_json_ json_object *o = json_object_new_object();

		json_object_object_add(o, "ok", json_object_new_boolean(true));
		json_object_object_add(o, "found", json_object_new_boolean(true));
		json_object_object_add(o, "pid", json_object_new_int64(pid));
		json_object_object_add(o, "comm", alive ? json_new_string_utf8(p.comm) : NULL);
		json_object_object_add(o, "exe", alive && p.exe[0] ? json_new_string_utf8(p.exe) : NULL);
		json_object_object_add(o, "alive", json_object_new_boolean(alive));
		json_object_object_add(o, "seen", json_object_new_string("map"));
		print_json(o);
	} else {
		printf("%-8s %-16s %-8s %s\n", "PID", "COMM", "ALIVE", "EXE");
		printf("%-8u ", pid);
		put_field(alive ? p.comm : "-", 16);
		put_field(alive ? "yes" : "exited", 8);
		put_field(alive && p.exe[0] ? p.exe : "-", 0);
	}
	return EXIT_FOUND;
}

static int cmd_lookup(const struct ctl *c, char **args, int n)
{
	_cleanup_(connpid_closep) connpid *h = NULL;
	_cleanup_(connpid_result_freep) struct connpid_result *res = NULL;
	struct connpid_lookup_options opts = { .size = sizeof(opts) };
	_cleanup_json_ json_object *ans = NULL;
	const char *proto_name = c->protocol;
	struct flow_query q;
	json_object *flow;
	int r;

	if (n == 4 && (streq(args[0], "tcp") || streq(args[0], "udp"))) {
		proto_name = args[0]; /* lookup PROTO DST SPORT DPORT */
		args++;
		n--;
	}
	if (n != 3) {
		log_error("lookup takes [tcp|udp] DST_IP SPORT DPORT (see --help)");
		return EXIT_ERROR;
	}
	r = flow_query_parse(args[0], args[1], args[2], proto_name, &q);
	if (r < 0) {
		int fam;
		__u32 a[4];
		__u16 port;
		__u8 proto;

		if (parse_ip(args[0], &fam, a) < 0)
			log_error("Invalid destination IP '%s'", args[0]);
		else if (parse_port(args[1], &port) < 0)
			log_error("Invalid source port '%s': expected 1-65535", args[1]);
		else if (parse_port(args[2], &port) < 0)
			log_error("Invalid destination port '%s': expected 1-65535", args[2]);
		else if (parse_protocol(proto_name, &proto) < 0)
			log_error("Invalid protocol '%s': expected tcp or udp", proto_name);
		return EXIT_ERROR;
	}
	if (c->direct && c->has_at) {
		log_error("--at needs the daemon's history; it cannot be used with --direct");
		return EXIT_ERROR;
	}
	if (c->direct && ctl_scoped(c)) {
		log_error("--src, --netns and --inbound need the daemon: the pinned maps --direct reads hold no "
			  "source address, network namespace or inbound flow");
		return EXIT_ERROR;
	}
	if (c->direct)
		return lookup_direct(c, &q);

	r = open_daemon(c, &h);
	if (r < 0)
		return log_error_errno(r, "Cannot set up the client: %m"), EXIT_ERROR;
	if (c->has_at) {
		opts.flags |= CONNPID_LOOKUP_AT;
		opts.at = c->at;
	}
	opts.src = c->src;
	opts.netns = c->netns;
	opts.direction = c->direction == CONNPID_DIRECTION_INBOUND ? CONNPID_DIRECTION_INBOUND
								   : CONNPID_DIRECTION_OUTBOUND;
	r = connpid_lookup(h, q.protocol == CONNPID_PROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP, args[0], q.src_port,
			   q.dst_port, &opts, &res);
	if (r == -EINVAL && c->src) {
		log_error("Invalid --src '%s': an IP address of the destination's family", c->src);
		return EXIT_ERROR;
	}
	if (unreachable(r) && (c->has_at || ctl_scoped(c))) {
		/* the maps could not honour --at, --src, --netns or --inbound */
		log_error_errno(r, "connpid-queryd is not reachable at %s: %m", c->socket_path);
		return EXIT_ERROR;
	}
	if (unreachable(r)) {
		log_warning_errno(r, "connpid-queryd is not reachable at %s (%m); reading the pinned maps directly",
				  c->socket_path);
		return lookup_direct(c, &q);
	}
	if (r < 0 && r != -EREMOTEIO) {
		log_error_errno(r, "No answer from connpid-queryd: %m");
		return EXIT_ERROR;
	}
	ans = json_tokener_parse(res->json);
	if (!ans) {
		log_error_errno(-EBADMSG, "No answer from connpid-queryd: %m");
		return EXIT_ERROR;
	}
	json_object_object_del(ans, "id"); /* ours, not the daemon's to show */
	if (c->json)
		print_json(ans);
	if (answer_error(ans) < 0)
		return EXIT_ERROR;
	if (!jget_bool(ans, "found")) {
		if (!c->json) {
			printf("not found: %s %s -> %s:%s\n", protocol_name(q.protocol), args[1], args[0], args[2]);
			print_candidates(ans);
		}
		return EXIT_NOT_FOUND;
	}
	if (!c->json && json_object_object_get_ex(ans, "flow", &flow)) {
		print_flow_row_header();
		print_flow_row(flow);
		print_candidates(ans);
	}
	return EXIT_FOUND;
}

/* Request/answer for ops that print their object. */
static int simple_op(const struct ctl *c, const char *op, json_object *extra, json_object **ret_ans)
{
	_cleanup_json_ json_object *req = json_object_new_object();
	_cleanup_(connpid_closep) connpid *h = NULL;
	int r;

	json_object_object_add(req, "op", json_object_new_string(op));
	if (extra) {
		json_object_object_foreach(extra, k, v)
			json_object_object_add(req, k, json_object_get(v));
	}
	r = open_daemon(c, &h);
	if (r >= 0)
		r = call_daemon(h, req, ret_ans);
	if (unreachable(r))
		return log_error_errno(r, "connpid-queryd is not reachable at %s: %m", c->socket_path);
	if (r < 0)
		return log_error_errno(r, "No answer from connpid-queryd: %m");
	return 0;
}

/* "lookup" by Community ID: the daemon's index, or its history with --at. */
static int cmd_lookup_community_id(const struct ctl *c, int n)
{
	_cleanup_json_ json_object *extra = json_object_new_object(), *ans = NULL;
	json_object *flow;

	if (n != 0) {
		log_error("lookup --community-id takes no DST_IP SPORT DPORT (see --help)");
		return EXIT_ERROR;
	}
	if (c->direct) {
		log_error("--community-id needs the daemon; it cannot be used with --direct");
		return EXIT_ERROR;
	}
	if (ctl_scoped(c)) {
		log_error("--community-id names one flow already; --src, --netns and --inbound do not apply");
		return EXIT_ERROR;
	}
	json_object_object_add(extra, "community_id", json_object_new_string(c->community_id));
	if (c->has_at)
		json_object_object_add(extra, "at", json_object_new_double(c->at));
	if (simple_op(c, "lookup", extra, &ans) < 0)
		return EXIT_ERROR;
	if (c->json)
		print_json(ans);
	if (answer_error(ans) < 0)
		return EXIT_ERROR;
	if (!jget_bool(ans, "found")) {
		if (!c->json)
			printf("not found: %s\n", c->community_id);
		return EXIT_NOT_FOUND;
	}
	if (!c->json && json_object_object_get_ex(ans, "flow", &flow)) {
		print_flow_row_header();
		print_flow_row(flow);
	}
	return EXIT_FOUND;
}

static void print_object_flat(const char *prefix, json_object *o)
{
	json_object_object_foreach(o, k, v) {
		_cleanup_free_ char *key = NULL;

		if (asprintf(&key, "%s%s", prefix, k) < 0)
			return;
		if (json_object_is_type(v, json_type_object)) {
			_cleanup_free_ char *sub = NULL;

			if (asprintf(&sub, "%s.", key) < 0)
				return;
			print_object_flat(sub, v);
		} else if (json_object_is_type(v, json_type_array)) {
			char items[32];

			snprintf(items, sizeof(items), "%zu items", json_object_array_length(v));
			put_field(key, 32);
			put_field(items, 0);
		} else {
			put_field(key, 32);
			put_field(v ? json_object_get_string(v) : "-", 0);
		}
	}
}

static int cmd_show(const struct ctl *c, const char *op, const char *member)
{
	_cleanup_json_ json_object *ans = NULL;
	json_object *body;

	if (simple_op(c, op, NULL, &ans) < 0)
		return EXIT_ERROR;
	if (c->json)
		print_json(ans);
	if (answer_error(ans) < 0)
		return EXIT_ERROR;
	if (!c->json) {
		if (member && json_object_object_get_ex(ans, member, &body))
			print_object_flat("", body);
		else
			print_object_flat("", ans);
	}
	return EXIT_FOUND;
}

/* stats in the Prometheus text exposition format (0.0.4): counters end
 * in _total, gauges do not; labels only where a few values exist. */
struct prom_metric {
	const char *path;  /* in the stats object: "a" or "a.b" */
	const char *name;
	const char *type;
	const char *help;
};

static const struct prom_metric prom_metrics[] = {
	{ "events_received", "connpid_events_total", "counter", "Flow events drained from the kernel's ring buffer." },
	{ "lookups", "connpid_lookups_total", "counter", "Lookup requests that reached the maps or the history." },
	{ "lookups_found", "connpid_lookups_found_total", "counter", "Lookup requests that found an owner." },
	{ "requests", "connpid_requests_total", "counter", "Requests answered." },
	{ "request_errors", "connpid_request_errors_total", "counter", "Requests answered with an error." },
	{ "clients_total", "connpid_clients_accepted_total", "counter", "Client connections accepted." },
	{ "clients_dropped_slow", "connpid_clients_dropped_slow_total", "counter", "Clients dropped for reading too slowly." },
	{ "clients_dropped_output_cap", "connpid_clients_dropped_output_cap_total", "counter", "Clients dropped past the output cap." },
	{ "ring_budget_stops", "connpid_ring_budget_stops_total", "counter", "Ring drains cut at their budget." },
	{ "accept_starved", "connpid_accept_starved_total", "counter", "Connections not taken for want of a file descriptor." },
	{ "index_evictions", "connpid_index_evictions_total", "counter", "Flows evicted from the in-memory index." },
	{ "proc_reads", "connpid_proc_reads_total", "counter", "Process details read from /proc." },
	{ "dns_responses", "connpid_dns_responses_total", "counter", "DNS responses parsed." },
	{ "dns_malformed", "connpid_dns_malformed_total", "counter", "DNS responses that did not parse." },
	{ "dns_truncated", "connpid_dns_truncated_total", "counter", "DNS responses cut at 1 KiB." },
	{ "dns_getaddrinfo", "connpid_dns_getaddrinfo_total", "counter", "getaddrinfo results taken." },
	{ "clients", "connpid_clients", "gauge", "Clients connected now." },
	{ "watchers", "connpid_watchers", "gauge", "Connections watching now." },
	{ "output_queued_bytes", "connpid_output_queued_bytes", "gauge", "Answer bytes not yet read by clients." },
	{ "index_flows", "connpid_index_flows", "gauge", "Flows in the in-memory index." },
	{ "index_capacity", "connpid_index_capacity", "gauge", "Capacity of the in-memory index." },
	{ "processes", "connpid_processes", "gauge", "Processes in the process cache." },
	{ "uptime_seconds", "connpid_uptime_seconds", "gauge", "Seconds since connpid-queryd started." },
	{ "loaded", "connpid_loaded", "gauge", "1 when the pinned programs and maps are in use." },
	{ "store.rows_queued", "connpid_store_rows_queued_total", "counter", "History rows queued." },
	{ "store.rows_written", "connpid_store_rows_written_total", "counter", "History rows written." },
	{ "store.rows_dropped", "connpid_store_rows_dropped_total", "counter", "History rows lost while the disk refused writes." },
	{ "store.rows_pruned", "connpid_store_rows_pruned_total", "counter", "History rows removed by retention." },
	{ "store.write_errors", "connpid_store_write_errors_total", "counter", "Failed history writes." },
	{ "store.transactions", "connpid_store_transactions_total", "counter", "History transactions committed." },
	{ "store.queue", "connpid_store_queue_rows", "gauge", "History rows waiting to be written." },
	{ "store.writable", "connpid_store_writable", "gauge", "1 when the last history write succeeded." },
	{ "export.journal.sent", "connpid_export_journal_entries_total", "counter", "Flow entries sent to journald." },
	{ "export.journal.dropped", "connpid_export_journal_dropped_total", "counter", "Flow entries dropped by the export rate limit." },
	{ "export.journal.errors", "connpid_export_journal_errors_total", "counter", "Entries journald refused." },
	{ "export.ndjson.lines", "connpid_export_ndjson_lines_total", "counter", "ECS records queued for the NDJSON file." },
	{ "export.ndjson.bytes", "connpid_export_ndjson_bytes_total", "counter", "Bytes written to the NDJSON file." },
	{ "export.ndjson.rotations", "connpid_export_ndjson_rotations_total", "counter", "Rotations of the NDJSON file." },
	{ "export.ndjson.errors", "connpid_export_ndjson_errors_total", "counter", "Failed NDJSON writes, opens or renames." },
	{ "export.ndjson.dropped", "connpid_export_ndjson_dropped_total", "counter", "ECS records lost to such failures." },
};

/* a.b.c in o; NULL when absent or null */
static json_object *jpath(json_object *o, const char *path)
{
	char key[64];

	for (const char *dot; o && (dot = strchr(path, '.')); path = dot + 1) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
	}
	return o && json_object_object_get_ex(o, path, &o) ? o : NULL;
}

static void prom_header(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(const char *name, const char *labels, json_object *v)
{
	if (json_object_is_type(v, json_type_boolean))
		printf("%s%s %d\n", name, labels, json_object_get_boolean(v) ? 1 : 0);
	else if (json_object_is_type(v, json_type_int))
		printf("%s%s %" PRId64 "\n", name, labels, json_object_get_int64(v));
	else
		printf("%s%s %.17g\n", name, labels, json_object_get_double(v));
}

/* The map fill, by family: two values of one metric. */
static void prom_maps(json_object *s)
{
	static const char *const fam[] = { "v4", "v6" };
	char key[64];

	if (!jpath(s, "map_v4_entries") && !jpath(s, "map_v6_entries"))
		return;
	prom_header("connpid_map_entries", "gauge", "Entries in the pinned flow map.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "map_%s_entries", fam[i]);
		if (jpath(s, key))
			printf("connpid_map_entries{family=\"%s\"} %" PRId64 "\n", fam[i],
			       json_object_get_int64(jpath(s, key)));
	}
	prom_header("connpid_map_fill_ratio", "gauge", "Fill of the pinned flow map, 0 to 1.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "map_%s_fill_percent", fam[i]);
		if (jpath(s, key))
			printf("connpid_map_fill_ratio{family=\"%s\"} %.17g\n", fam[i],
			       json_object_get_double(jpath(s, key)) / 100.0);
	}
}

/* The kernel's slots are all counts since the load. */
static void prom_kernel(json_object *s)
{
	json_object *k = jpath(s, "kernel");

	if (!k || !json_object_is_type(k, json_type_object))
		return;
	json_object_object_foreach(k, name, v) {
		char metric[128];
		bool ok = name[0] != '\0';

		for (const char *p = name; *p; p++)
			ok = ok && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
		if (!ok || !v)
			continue;
		snprintf(metric, sizeof(metric), "connpid_kernel_%s_total", name);
		prom_header(metric, "counter", "Kernel-side count (the stats map, summed over CPUs).");
		prom_value(metric, "", v);
	}
}

static int cmd_stats_prometheus(const struct ctl *c)
{
	_cleanup_json_ json_object *ans = NULL;
	json_object *s;

	if (simple_op(c, "stats", NULL, &ans) < 0)
		return EXIT_ERROR;
	if (answer_error(ans) < 0 || !json_object_object_get_ex(ans, "stats", &s))
		return EXIT_ERROR;
	for (size_t i = 0; i < ARRAY_SIZE(prom_metrics); i++) {
		const struct prom_metric *pm = &prom_metrics[i];
		json_object *v = jpath(s, pm->path);

		if (!v || json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array) ||
		    json_object_is_type(v, json_type_string))
			continue;
		prom_header(pm->name, pm->type, pm->help);
		prom_value(pm->name, "", v);
	}
	prom_maps(s);
	prom_kernel(s);
	return fflush(stdout) == 0 ? EXIT_FOUND : EXIT_ERROR;
}

/* The same records as connpid-queryd --export ndjson:PATH writes. */
static int print_ecs(json_object *flows)
{
	struct ecs_host host;

	ecs_host_read(&host);
	for (size_t i = 0; i < json_object_array_length(flows); i++) {
		_cleanup_json_ json_object *rec = ecs_from_flow(json_object_array_get_idx(flows, i), &host);

		if (!rec)
			return log_error("Out of memory"), EXIT_ERROR;
		puts(json_object_to_json_string_ext(rec, JSON_LINE_FLAGS));
	}
	return fflush(stdout) == 0 ? EXIT_FOUND : EXIT_ERROR;
}

static int cmd_list(const struct ctl *c, const char *op)
{
	_cleanup_json_ json_object *ans = NULL, *extra = json_object_new_object();
	json_object *flows;

	json_object_object_add(extra, "limit", json_object_new_int64(c->limit));
	if (c->filter)
		json_object_object_add(extra, "filter", json_object_get(c->filter));
	if (c->order)
		json_object_object_add(extra, "order", json_object_new_string(c->order));
	if (simple_op(c, op, extra, &ans) < 0)
		return EXIT_ERROR;
	if (c->json)
		print_json(ans);
	if (answer_error(ans) < 0)
		return EXIT_ERROR;
	if (c->ecs && json_object_object_get_ex(ans, "flows", &flows))
		return print_ecs(flows);
	if (!c->json && json_object_object_get_ex(ans, "flows", &flows)) {
		print_flow_row_header();
		for (size_t i = 0; i < json_object_array_length(flows); i++)
			print_flow_row(json_object_array_get_idx(flows, i));
	}
	return EXIT_FOUND;
}

static int cmd_watch(const struct ctl *c)
{
	_cleanup_json_ json_object *req = json_object_new_object(), *ack = NULL;
	_cleanup_(connpid_closep) connpid *h = NULL;
	int r;

	json_object_object_add(req, "op", json_object_new_string("watch"));
	if (c->filter)
		json_object_object_add(req, "filter", json_object_get(c->filter));
	r = open_daemon(c, &h);
	if (r >= 0)
		r = call_daemon(h, req, &ack);
	if (unreachable(r)) {
		log_error_errno(r, "connpid-queryd is not reachable at %s: %m", c->socket_path);
		return EXIT_ERROR;
	}
	if (r < 0) {
		log_error_errno(r, "Cannot send: %m");
		return EXIT_ERROR;
	}
	if (c->json)
		print_json(ack);
	else if (answer_error(ack) < 0)
		return EXIT_ERROR;
	fflush(stdout); /* a reader of a pipe sees the ack before the first flow */
	if (!c->json) {
		printf("%-8s %-5s %-4s %-6s %-28s %-8s %-16s %-20s %-24s %-22s %s\n", "TIME", "PROTO", "DIR", "SPORT",
		       "DST", "PID", "COMM", "CONTAINER", "DOMAIN", "LISTENER", "EXE");
		fflush(stdout);
	}
	for (;;) {
		_cleanup_json_ json_object *o = NULL;
		_cleanup_free_ char *line = NULL;
		json_object *f;

		r = connpid_read_line(h, UINT64_MAX, &line);
		if (r >= 0 && !(o = json_tokener_parse(line)))
			r = -EBADMSG;
		if (r < 0) {
			if (r == -ECONNRESET)
				return EXIT_FOUND; /* daemon went away: the watch is over */
			log_error_errno(r, "Watch ended: %m");
			return EXIT_ERROR;
		}
		if (c->json) {
			print_json(o);
		} else if (json_object_object_get_ex(o, "flow", &f)) {
			json_object *ts;
			char when[16] = "-", idbuf[13], lbuf[64];
			_cleanup_free_ char *dst = NULL;
			time_t t;
			struct tm tm;

			if (json_object_object_get_ex(f, "first_seen", &ts)) {
				t = (time_t)json_object_get_double(ts);
				if (localtime_r(&t, &tm))
					strftime(when, sizeof(when), "%H:%M:%S", &tm);
			}
			if (asprintf(&dst, "%s:%s", jget_str(f, "dst"), jget_str(f, "dport")) < 0)
				dst = NULL;
			put_field(when, 8);
			put_field(jget_str(f, "proto"), 5);
			put_field(direction_label(f), 4);
			put_field(jget_str(f, "sport"), 6);
			put_field(dst, 28);
			put_field(jget_str(f, "pid"), 8);
			put_field(jget_str(f, "comm"), 16);
			put_field(container_label(f, idbuf), 20);
			put_field(domain_label(f), 24);
			put_field(listener_label(f, lbuf, sizeof(lbuf)), 22);
			put_field(jget_str(f, "exe"), 0);
		} else if (answer_error(o) < 0) {
			return EXIT_ERROR;
		}
		fflush(stdout);
	}
}

static int cmd_ipv6_block(const struct ctl *c, char **args, int n)
{
	struct connpid_maps maps;
	char err[512] = "";
	__u32 zero = 0, val;
	int r, ret = EXIT_FOUND;

	if (n != 1 || (!streq(args[0], "on") && !streq(args[0], "off"))) {
		log_error("ipv6-block takes 'on' or 'off'");
		return EXIT_ERROR;
	}
	if (geteuid() != 0) {
		log_error("ipv6-block changes what this host may connect to: root only");
		return EXIT_ERROR;
	}
	connpid_maps_init(&maps);
	r = connpid_maps_open(c->pin_dir, &maps, CONNPID_MAPS_CONFIG_RW, err, sizeof(err));
	if (r < 0) {
		log_error("%s", err);
		return EXIT_ERROR;
	}
	if (!(maps.meta.flags & CONNPID_META_F_IPV6_BLOCKER))
		log_warning("The IPv6 blocker is not loaded (--no-ipv6-blocker): the setting has no effect");
	val = streq(args[0], "on") ? CONNPID_CONFIG_BLOCK_IPV6 : 0;
	if (bpf_map_update_elem(maps.config_fd, &zero, &val, BPF_ANY) < 0) {
		log_error_errno(negative_errno(), "Cannot write %s/config: %m", c->pin_dir);
		ret = EXIT_ERROR;
	} else {
		printf("ipv6-block %s\n", args[0]);
	}
	connpid_maps_close(&maps);
	return ret;
}

static int add_filter(struct ctl *c, const char *key, json_object *v)
{
	if (!v)
		return -ENOMEM;
	if (!c->filter)
		c->filter = json_object_new_object();
	json_object_object_add(c->filter, key, v);
	return 0;
}

static int parse_num_filter(struct ctl *c, const char *key, const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < 1 || v > max)
		return log_error_errno(-EINVAL, "Invalid --%s '%s'", key, s);
	return add_filter(c, key, json_object_new_int64(v));
}

/* unix seconds, local YYYY-MM-DDTHH:MM:SS, or -N[smhd] meaning ago. */
static int parse_time(const char *s, double *ret)
{
	struct tm tm = {};
	char *end;
	double v;

	if (s[0] == '-' && s[1]) {
		static const struct { char unit; double mult; } units[] = {
			{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
		};

		errno = 0;
		v = strtod(s + 1, &end);
		if (errno || end == s + 1 || v < 0)
			return -EINVAL;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++)
			if (end[0] == units[i].unit && end[1] == '\0') {
				struct timespec now;

				clock_gettime(CLOCK_REALTIME, &now);
				*ret = (double)now.tv_sec + now.tv_nsec / 1e9 - v * units[i].mult;
				return 0;
			}
		return -EINVAL;
	}
	errno = 0;
	v = strtod(s, &end);
	if (!errno && end != s && *end == '\0' && v >= 0) {
		*ret = v;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || *end)
		return -EINVAL;
	tm.tm_isdst = -1;
	*ret = (double)mktime(&tm);
	return 0;
}

static int add_time_filter(struct ctl *c, const char *key, const char *s)
{
	double t;

	if (parse_time(s, &t) < 0)
		return log_error_errno(-EINVAL, "Invalid --%s '%s' (unix seconds, YYYY-MM-DDTHH:MM:SS or -N[smhd])",
				       key, s);
	return add_filter(c, key, json_object_new_double(t));
}

/* --src IP, --netns N, --inbound, --direction D: checked here, sent as
 * lookup members or (scope_filters) as filter members. */
static int parse_scope_option(struct ctl *c, const char *name, const char *value)
{
	int fam;
	__u32 a[4];
	char *end;
	unsigned long long n;

	if (streq(name, "src")) {
		if (parse_ip(value, &fam, a) < 0)
			return log_error_errno(-EINVAL, "Invalid --src '%s': expected an IP address", value);
		c->src = value;
	} else if (streq(name, "netns")) {
		errno = 0;
		n = strtoull(value, &end, 10);
		if (errno || !*value || *end || value[0] == '-' || n < 1 || n > UINT32_MAX)
			return log_error_errno(-EINVAL, "Invalid --netns '%s': a namespace inode, 1-4294967295", value);
		c->netns = (uint32_t)n;
	} else if (streq(name, "inbound")) {
		c->direction = CONNPID_DIRECTION_INBOUND;
	} else if (streq(value, "inbound") || streq(value, "outbound")) {
		c->direction = streq(value, "inbound") ? CONNPID_DIRECTION_INBOUND : CONNPID_DIRECTION_OUTBOUND;
	} else {
		return log_error_errno(-EINVAL, "Invalid --direction '%s': outbound or inbound", value);
	}
	return 0;
}

/* For watch, recent and history the same options are filters. */
static int scope_filters(struct ctl *c)
{
	int r = 0;

	if (c->src)
		r = add_filter(c, "src", json_object_new_string(c->src));
	if (r >= 0 && c->netns)
		r = add_filter(c, "netns", json_object_new_int64(c->netns));
	if (r >= 0 && c->direction >= 0)
		r = add_filter(c, "direction", json_object_new_string(
				       c->direction == CONNPID_DIRECTION_INBOUND ? "inbound" : "outbound"));
	return r < 0 ? log_error_errno(r, "Out of memory") : 0;
}

int main(int argc, char **argv)
{
	enum { ARG_FORMAT = 0x80, ARG_PROMETHEUS, ARG_PROTOCOL = 0x100, ARG_DIRECT, ARG_JSON, ARG_SOCKET, ARG_PIN_DIR, ARG_LIMIT,
	       ARG_PID, ARG_COMM, ARG_DPORT, ARG_DST, ARG_PROTO, ARG_EXE, ARG_DOMAIN, ARG_CONTAINER,
	       ARG_UNIT, ARG_SINCE, ARG_UNTIL, ARG_ORDER, ARG_AT, ARG_COMMUNITY_ID, ARG_VERSION,
	       ARG_SRC, ARG_NETNS, ARG_INBOUND, ARG_DIRECTION };
	static const struct option options[] = {
		{ "protocol", required_argument, NULL, ARG_PROTOCOL },
		{ "format", required_argument, NULL, ARG_FORMAT },
		{ "prometheus", no_argument, NULL, ARG_PROMETHEUS },
		{ "direct", no_argument, NULL, ARG_DIRECT },
		{ "json", no_argument, NULL, ARG_JSON },
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "pin-dir", required_argument, NULL, ARG_PIN_DIR },
		{ "limit", required_argument, NULL, ARG_LIMIT },
		{ "pid", required_argument, NULL, ARG_PID },
		{ "comm", required_argument, NULL, ARG_COMM },
		{ "dport", required_argument, NULL, ARG_DPORT },
		{ "dst", required_argument, NULL, ARG_DST },
		{ "proto", required_argument, NULL, ARG_PROTO },
		{ "exe", required_argument, NULL, ARG_EXE },
		{ "domain", required_argument, NULL, ARG_DOMAIN },
		{ "container", required_argument, NULL, ARG_CONTAINER },
		{ "unit", required_argument, NULL, ARG_UNIT },
		{ "since", required_argument, NULL, ARG_SINCE },
		{ "until", required_argument, NULL, ARG_UNTIL },
		{ "order", required_argument, NULL, ARG_ORDER },
		{ "at", required_argument, NULL, ARG_AT },
		{ "community-id", required_argument, NULL, ARG_COMMUNITY_ID },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "src", required_argument, NULL, ARG_SRC },
		{ "netns", required_argument, NULL, ARG_NETNS },
		{ "inbound", no_argument, NULL, ARG_INBOUND },
		{ "direction", required_argument, NULL, ARG_DIRECTION },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct ctl c = {
		.socket_path = DEFAULT_SOCKET,
		.pin_dir = CONNPID_DEFAULT_PIN_DIR,
		.protocol = "tcp",
		.limit = 20,
		.direction = -1,
	};
	const char *cmd;
	char *end;
	int opt, ret = EXIT_ERROR;

	log_set_program("connpidctl");
	log_setup_libbpf(false);
	while ((opt = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
		switch (opt) {
		case ARG_PROTOCOL:
			c.protocol = optarg;
			break;
		case ARG_DIRECT:
			c.direct = true;
			break;
		case ARG_FORMAT:
			if (!streq(optarg, "ecs")) {
				log_error("Invalid --format '%s': ecs", optarg);
				goto out;
			}
			c.ecs = true;
			break;
		case ARG_PROMETHEUS:
			c.prometheus = true;
			break;
		case ARG_JSON:
			c.json = true;
			break;
		case ARG_SOCKET:
			c.socket_path = optarg;
			break;
		case ARG_PIN_DIR:
			c.pin_dir = optarg;
			break;
		case ARG_LIMIT:
			errno = 0;
			c.limit = strtol(optarg, &end, 10);
			if (errno || *end || c.limit < 1 || c.limit > 5000) {
				log_error("Invalid --limit '%s': expected 1-5000", optarg);
				goto out;
			}
			break;
		case ARG_PID:
			if (parse_num_filter(&c, "pid", optarg, 1L << 30) < 0)
				goto out;
			break;
		case ARG_DPORT:
			if (parse_num_filter(&c, "dport", optarg, 65535) < 0)
				goto out;
			break;
		case ARG_COMM:
			add_filter(&c, "comm", json_object_new_string(optarg));
			break;
		case ARG_DST:
			add_filter(&c, "dst", json_object_new_string(optarg));
			break;
		case ARG_PROTO:
			add_filter(&c, "proto", json_object_new_string(optarg));
			break;
		case ARG_EXE:
			add_filter(&c, "exe", json_object_new_string(optarg));
			break;
		case ARG_DOMAIN:
			add_filter(&c, "domain", json_object_new_string(optarg));
			break;
		case ARG_CONTAINER:
			add_filter(&c, "container", json_object_new_string(optarg));
			break;
		case ARG_UNIT:
			add_filter(&c, "unit", json_object_new_string(optarg));
			break;
		case ARG_SINCE:
		case ARG_UNTIL:
			if (add_time_filter(&c, opt == ARG_SINCE ? "since" : "until", optarg) < 0)
				goto out;
			break;
		case ARG_ORDER:
			if (!streq(optarg, "asc") && !streq(optarg, "desc")) {
				log_error("Invalid --order '%s': asc or desc", optarg);
				goto out;
			}
			c.order = optarg;
			break;
		case ARG_AT:
			if (parse_time(optarg, &c.at) < 0) {
				log_error("Invalid --at '%s' (unix seconds, YYYY-MM-DDTHH:MM:SS or -N[smhd])", optarg);
				goto out;
			}
			c.has_at = true;
			break;
		case ARG_COMMUNITY_ID:
			c.community_id = optarg;
			break;
		case ARG_SRC:
		case ARG_NETNS:
		case ARG_INBOUND:
		case ARG_DIRECTION:
			if (parse_scope_option(&c, opt == ARG_SRC ? "src" : opt == ARG_NETNS ? "netns" :
					       opt == ARG_INBOUND ? "inbound" : "direction", optarg) < 0)
				goto out;
			break;
		case ARG_VERSION:
			printf("connpidctl %s (ABI %d)\n", CONNPID_VERSION, CONNPID_ABI_VERSION);
			ret = EXIT_FOUND;
			goto out;
		case 'h':
			help();
			ret = EXIT_FOUND;
			goto out;
		default:
			goto out;
		}
	}
	if (optind >= argc) {
		log_error("Missing command (see --help)");
		goto out;
	}
	cmd = argv[optind];
	if (!streq(cmd, "lookup") && scope_filters(&c) < 0)
		goto out;
	if (streq(cmd, "lookup") && c.community_id)
		ret = cmd_lookup_community_id(&c, argc - optind - 1);
	else if (streq(cmd, "lookup"))
		ret = cmd_lookup(&c, argv + optind + 1, argc - optind - 1);
	else if (optind + 1 < argc && !streq(cmd, "ipv6-block")) {
		log_error("'%s' takes no arguments", cmd);
	} else if (streq(cmd, "watch"))
		ret = cmd_watch(&c);
	else if (streq(cmd, "recent"))
		ret = cmd_list(&c, "recent");
	else if (streq(cmd, "history"))
		ret = cmd_list(&c, "history");
	else if (streq(cmd, "stats") && c.prometheus)
		ret = cmd_stats_prometheus(&c);
	else if (streq(cmd, "stats"))
		ret = cmd_show(&c, "stats", "stats");
	else if (streq(cmd, "status"))
		ret = cmd_show(&c, "status", "status");
	else if (streq(cmd, "ping"))
		ret = cmd_show(&c, "ping", NULL);
	else if (streq(cmd, "ipv6-block"))
		ret = cmd_ipv6_block(&c, argv + optind + 1, argc - optind - 1);
	else
		log_error("Unknown command '%s' (see --help)", cmd);
out:
	json_object_put(c.filter);
	return ret;
}

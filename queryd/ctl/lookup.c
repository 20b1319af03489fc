// SPDX-License-Identifier: GPL-2.0-or-later
/* connpidctl lookup: by the daemon, or (--direct, or the daemon away)
 * by the pinned maps. */
#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <linux/types.h>

#include "connpid.h"
#include "flowkey.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "pins.h"
#include "procinfo.h"
#include "commands.h"
#include "ctl.h"
#include "daemon.h"
#include "output.h"

/* What the maps say of a pid: p NULL when the process is gone. */
static void print_direct(__u32 pid, const struct procinfo *p)
{
	if (arg_json) {
		_cleanup_json_ json_object *o = json_object_new_object();

		json_object_object_add(o, "ok", json_object_new_boolean(true));
		json_object_object_add(o, "found", json_object_new_boolean(true));
		json_object_object_add(o, "pid", json_object_new_int64(pid));
		json_object_object_add(o, "comm", p ? json_new_string_utf8(p->comm) : NULL);
		json_object_object_add(o, "exe", p && p->exe[0] ? json_new_string_utf8(p->exe) : NULL);
		json_object_object_add(o, "alive", json_object_new_boolean(p != NULL));
		json_object_object_add(o, "seen", json_object_new_string("map"));
		print_json(o);
		return;
	}
	printf("%-8s %-16s %-8s %s\n", "PID", "COMM", "ALIVE", "EXE");
	printf("%-8u ", pid);
	put_field(p ? p->comm : "-", 16);
	put_field(p ? "yes" : "exited", 8);
	put_field(p && p->exe[0] ? p->exe : "-", 0);
}

static int lookup_direct(const struct flow_query *q)
{
	struct connpid_maps maps;
	struct procinfo p;
	char err[512] = "", dst[64];
	__u32 pid = 0;
	int r;

	connpid_maps_init(&maps);
	r = connpid_maps_open(arg_pin_dir, &maps, 0, err, sizeof(err));
	if (r < 0)
		return log_error("%s", err), EXIT_ERROR;
	r = flow_query_lookup(q, maps.v4_fd, maps.v6_fd, &pid);
	connpid_maps_close(&maps);
	if (r < 0)
		return log_error_errno(r, "Map lookup failed: %m"), EXIT_ERROR;
	if (r == 0) {
		format_ip(q->family, q->dst_ip, dst, sizeof(dst));
		if (arg_json)
			printf("{\"ok\":true,\"found\":false}\n");
		else
			printf("not found: %s %u -> %s:%u\n", protocol_name(q->protocol), q->src_port, dst, q->dst_port);
		return EXIT_NOT_FOUND;
	}
	print_direct(pid, procinfo_read((pid_t)pid, &p) == 0 ? &p : NULL);
	return EXIT_FOUND;
}

/* The daemon's answer, as is (--json) or as a row; `what` names the flow
 * when none is found. */
static int print_answer(json_object *ans, const char *what, bool candidates)
{
	json_object *flow;

	if (answer_accept(ans) < 0)
		return EXIT_ERROR;
	if (!jget_bool(ans, "found")) {
		if (!arg_json)
			printf("not found: %s\n", what);
		if (!arg_json && candidates)
			print_candidates(ans);
		return EXIT_NOT_FOUND;
	}
	if (!arg_json && json_object_object_get_ex(ans, "flow", &flow)) {
		print_flow_row_header();
		print_flow_row(flow);
		if (candidates)
			print_candidates(ans);
	}
	return EXIT_FOUND;
}

static int print_lookup_result(const struct connpid_result *res, const struct flow_query *q, char **args)
{
	_cleanup_json_ json_object *ans = json_tokener_parse(res->json);
	_cleanup_free_ char *what = NULL;

	if (!ans)
		return log_error_errno(-EBADMSG, "No answer from connpid-queryd: %m"), EXIT_ERROR;
	json_object_object_del(ans, "id"); /* ours, not the daemon's to show */
	if (asprintf(&what, "%s %s -> %s:%s", protocol_name(q->protocol), args[1], args[0], args[2]) < 0)
		return log_error("Out of memory"), EXIT_ERROR;
	return print_answer(ans, what, true);
}

static struct connpid_lookup_options lookup_options(void)
{
	struct connpid_lookup_options o = {
		.size = sizeof(o),
		.src = arg_src,
		.netns = arg_netns,
		.direction = arg_direction == CONNPID_DIRECTION_INBOUND ? CONNPID_DIRECTION_INBOUND
									: CONNPID_DIRECTION_OUTBOUND,
	};

	if (arg_has_at) {
		o.flags |= CONNPID_LOOKUP_AT;
		o.at = arg_at;
	}
	return o;
}

static int lookup_daemon(const struct flow_query *q, char **args)
{
	_cleanup_(connpid_closep) connpid *h = NULL;
	_cleanup_(connpid_result_freep) struct connpid_result *res = NULL;
	struct connpid_lookup_options opts = lookup_options();
	int r;

	r = open_daemon(&h);
	if (r < 0)
		return log_error_errno(r, "Cannot set up the client: %m"), EXIT_ERROR;
	r = connpid_lookup(h, q->protocol == CONNPID_PROTO_UDP ? IPPROTO_UDP : IPPROTO_TCP, args[0], q->src_port,
			   q->dst_port, &opts, &res);
	if (r == -EINVAL && arg_src)
		return log_error("Invalid --src '%s': an IP address of the destination's family", arg_src), EXIT_ERROR;
	if (unreachable(r) && (arg_has_at || arg_scoped()))
		/* the maps could not honour --at, --src, --netns or --inbound */
		return log_error_errno(r, "connpid-queryd is not reachable at %s: %m", arg_socket_path), EXIT_ERROR;
	if (unreachable(r)) {
		log_warning_errno(r, "connpid-queryd is not reachable at %s (%m); reading the pinned maps directly",
				  arg_socket_path);
		return lookup_direct(q);
	}
	if (r < 0 && r != -EREMOTEIO)
		return log_error_errno(r, "No answer from connpid-queryd: %m"), EXIT_ERROR;
	return print_lookup_result(res, q, args);
}

/* Says which word of DST_IP SPORT DPORT (or the protocol) is wrong. */
static void explain_bad_flow(char **args, const char *proto_name)
{
	int fam;
	__u32 a[4];
	__u16 port;
	__u8 proto;

	if (parse_ip(args[0], &fam, a) < 0)
		log_error("Invalid destination IP '%s'", args[0]);
	else if (parse_port_number(args[1], &port) < 0)
		log_error("Invalid source port '%s': expected 1-65535", args[1]);
	else if (parse_port_number(args[2], &port) < 0)
		log_error("Invalid destination port '%s': expected 1-65535", args[2]);
	else if (parse_protocol(proto_name, &proto) < 0)
		log_error("Invalid protocol '%s': expected tcp or udp", proto_name);
}

/* lookup [tcp|udp] DST_IP SPORT DPORT */
static int lookup_flow(char **args, int n)
{
	const char *proto_name = arg_protocol;
	struct flow_query q;

	if (n == 4 && (streq(args[0], "tcp") || streq(args[0], "udp"))) {
		proto_name = args[0];
		args++;
		n--;
	}
	if (n != 3)
		return log_error("lookup takes [tcp|udp] DST_IP SPORT DPORT (see --help)"), EXIT_ERROR;
	if (flow_query_parse(args[0], args[1], args[2], proto_name, &q) < 0)
		return explain_bad_flow(args, proto_name), EXIT_ERROR;
	if (arg_direct && arg_has_at)
		return log_error("--at needs the daemon's history; it cannot be used with --direct"), EXIT_ERROR;
	if (arg_direct && arg_scoped()) {
		log_error("--src, --netns and --inbound need the daemon: the pinned maps --direct reads hold no "
			  "source address, network namespace or inbound flow");
		return EXIT_ERROR;
	}
	return arg_direct ? lookup_direct(&q) : lookup_daemon(&q, args);
}

/* lookup --community-id ID: the daemon's index, or its history with --at. */
static int lookup_community_id(int n)
{
	_cleanup_json_ json_object *extra = json_object_new_object(), *ans = NULL;

	if (n != 0)
		return log_error("lookup --community-id takes no DST_IP SPORT DPORT (see --help)"), EXIT_ERROR;
	if (arg_direct)
		return log_error("--community-id needs the daemon; it cannot be used with --direct"), EXIT_ERROR;
	if (arg_scoped())
		return log_error("--community-id names one flow already; --src, --netns and --inbound do not apply"),
		       EXIT_ERROR;
	json_object_object_add(extra, "community_id", json_object_new_string(arg_community_id));
	if (arg_has_at)
		json_object_object_add(extra, "at", json_object_new_double(arg_at));
	if (simple_op("lookup", extra, &ans) < 0)
		return EXIT_ERROR;
	return print_answer(ans, arg_community_id, false);
}

int verb_lookup(char **args, int n)
{
	return arg_community_id ? lookup_community_id(n) : lookup_flow(args, n);
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* connpidctl's commands but lookup (lookup.c). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include <linux/types.h>

#include "connpid.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "pins.h"
#include "commands.h"
#include "ctl.h"
#include "daemon.h"
#include "output.h"
#include "prometheus.h"

/* An op whose answer is printed whole: as JSON, or flat ("a.b value")
 * from its member `member` (NULL: the whole answer). */
static int show(const char *op, const char *member)
{
	_cleanup_json_ json_object *ans = NULL;
	json_object *body;

	if (simple_op(op, NULL, &ans) < 0)
		return EXIT_ERROR;
	if (answer_accept(ans) < 0)
		return EXIT_ERROR;
	if (!arg_json) {
		if (member && json_object_object_get_ex(ans, member, &body))
			print_object_flat("", body);
		else
			print_object_flat("", ans);
	}
	return EXIT_FOUND;
}

int verb_status(char **args, int n)
{
	return show("status", "status");
}

int verb_ping(char **args, int n)
{
	return show("ping", NULL);
}

static int stats_prometheus(void)
{
	_cleanup_json_ json_object *ans = NULL;
	json_object *s;

	if (simple_op("stats", NULL, &ans) < 0)
		return EXIT_ERROR;
	if (answer_error(ans) < 0 || !json_object_object_get_ex(ans, "stats", &s))
		return EXIT_ERROR;
	print_prometheus(s);
	return fflush(stdout) == 0 ? EXIT_FOUND : EXIT_ERROR;
}

int verb_stats(char **args, int n)
{
	return arg_prometheus ? stats_prometheus() : show("stats", "stats");
}

/* recent and history: a list of flows, filtered. */
static int list(const char *op)
{
	_cleanup_json_ json_object *ans = NULL, *extra = json_object_new_object();
	json_object *flows;

	json_object_object_add(extra, "limit", json_object_new_int64(arg_limit));
	if (arg_filter)
		json_object_object_add(extra, "filter", json_object_get(arg_filter));
	if (arg_order)
		json_object_object_add(extra, "order", json_object_new_string(arg_order));
	if (simple_op(op, extra, &ans) < 0)
		return EXIT_ERROR;
	if (answer_accept(ans) < 0)
		return EXIT_ERROR;
	if (arg_ecs && json_object_object_get_ex(ans, "flows", &flows))
		return print_ecs(flows);
	if (!arg_json && json_object_object_get_ex(ans, "flows", &flows)) {
		print_flow_row_header();
		for (size_t i = 0; i < json_object_array_length(flows); i++)
			print_flow_row(json_object_array_get_idx(flows, i));
	}
	return EXIT_FOUND;
}

int verb_recent(char **args, int n)
{
	return list("recent");
}

int verb_history(char **args, int n)
{
	return list("history");
}

/* The watch request and its ack; *ret_h then carries the events. */
static int watch_start(connpid **ret_h)
{
	_cleanup_json_ json_object *req = json_object_new_object(), *ack = NULL;

	json_object_object_add(req, "op", json_object_new_string("watch"));
	if (arg_filter)
		json_object_object_add(req, "filter", json_object_get(arg_filter));
	if (request_daemon(req, "Cannot send", ret_h, &ack) < 0)
		return -EIO;
	if (arg_json)
		print_json(ack);
	else if (answer_error(ack) < 0)
		return -EREMOTEIO;
	fflush(stdout); /* a reader of a pipe sees the ack before the first flow */
	if (!arg_json) {
		print_watch_header();
		fflush(stdout);
	}
	return 0;
}

/* One line of the watch: 1 printed, 0 the watch is over, < 0 failed. */
static int watch_line(connpid *h)
{
	_cleanup_json_ json_object *o = NULL;
	_cleanup_free_ char *line = NULL;
	json_object *f;
	int r;

	r = connpid_read_line(h, UINT64_MAX, &line);
	if (r >= 0 && !(o = json_tokener_parse(line)))
		r = -EBADMSG;
	if (r == -ECONNRESET)
		return 0; /* daemon went away: the watch is over */
	if (r < 0)
		return log_error_errno(r, "Watch ended: %m");
	if (arg_json)
		print_json(o);
	else if (json_object_object_get_ex(o, "flow", &f))
		print_watch_row(f);
	else if (answer_error(o) < 0)
		return -EREMOTEIO;
	fflush(stdout);
	return 1;
}

int verb_watch(char **args, int n)
{
	_cleanup_(connpid_closep) connpid *h = NULL;
	int r;

	if (watch_start(&h) < 0)
		return EXIT_ERROR;
	while ((r = watch_line(h)) > 0)
		;
	return r == 0 ? EXIT_FOUND : EXIT_ERROR;
}

static int write_ipv6_block(bool on)
{
	struct connpid_maps maps;
	char err[512] = "";
	__u32 zero = 0, val = on ? CONNPID_CONFIG_BLOCK_IPV6 : 0;
	int r;

	connpid_maps_init(&maps);
	r = connpid_maps_open(arg_pin_dir, &maps, CONNPID_MAPS_CONFIG_RW, err, sizeof(err));
	if (r < 0)
		return log_error("%s", err), r;
	if (!(maps.meta.flags & CONNPID_META_F_IPV6_BLOCKER))
		log_warning("The IPv6 blocker is not loaded (--no-ipv6-blocker): the setting has no effect");
	r = 0;
	if (bpf_map_update_elem(maps.config_fd, &zero, &val, BPF_ANY) < 0)
		r = log_error_errno(negative_errno(), "Cannot write %s/config: %m", arg_pin_dir);
	connpid_maps_close(&maps);
	return r;
}

int verb_ipv6_block(char **args, int n)
{
	if (n != 1 || (!streq(args[0], "on") && !streq(args[0], "off")))
		return log_error("ipv6-block takes 'on' or 'off'"), EXIT_ERROR;
	if (geteuid() != 0)
		return log_error("ipv6-block changes what this host may connect to: root only"), EXIT_ERROR;
	if (write_ipv6_block(streq(args[0], "on")) < 0)
		return EXIT_ERROR;
	printf("ipv6-block %s\n", args[0]);
	return EXIT_FOUND;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* connpidctl: ask connpid-queryd (or, with --direct, the pinned maps).
 * This file reads the command line and runs the command: commands.c and
 * lookup.c do the asking, output.c and prometheus.c the printing. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>

#include "connpid.h"
#include "flowkey.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "pins.h"
#include "../lib/connpid.h"
#include "commands.h"
#include "ctl.h"
#include "filters.h"

const char *arg_socket_path = CONNPID_DEFAULT_SOCKET;
const char *arg_pin_dir = CONNPID_DEFAULT_PIN_DIR;
const char *arg_protocol = "tcp";
bool arg_json;
bool arg_direct;
long arg_limit = 20;
json_object *arg_filter;
const char *arg_order;
bool arg_has_at;
double arg_at;
bool arg_ecs;
bool arg_prometheus;
const char *arg_community_id;
const char *arg_src;
uint32_t arg_netns;
int arg_direction = -1;

bool arg_scoped(void)
{
	return arg_src || arg_netns || arg_direction == CONNPID_DIRECTION_INBOUND;
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
	       CONNPID_DEFAULT_SOCKET, CONNPID_DEFAULT_PIN_DIR);
}

enum {
	ARG_PROTOCOL = 0x100, ARG_FORMAT, ARG_PROMETHEUS, ARG_DIRECT, ARG_JSON, ARG_SOCKET, ARG_PIN_DIR,
	ARG_LIMIT, ARG_ORDER, ARG_AT, ARG_COMMUNITY_ID, ARG_VERSION, ARG_SRC, ARG_NETNS, ARG_INBOUND,
	ARG_DIRECTION,
	ARG_FILTER = 0x200, /* + the index of filters.c's table */
};

/* Options whose value is kept as given, and flags. */
static const struct string_option string_options[] = {
	{ ARG_PROTOCOL, &arg_protocol },
	{ ARG_SOCKET, &arg_socket_path },
	{ ARG_PIN_DIR, &arg_pin_dir },
	{ ARG_COMMUNITY_ID, &arg_community_id },
};

static const struct flag_option flag_options[] = {
	{ ARG_DIRECT, &arg_direct },
	{ ARG_JSON, &arg_json },
	{ ARG_PROMETHEUS, &arg_prometheus },
};

static int parse_limit(const char *arg)
{
	unsigned long long v;

	if (parse_unsigned(arg, NULL, 1, 5000, &v) < 0)
		return log_error_errno(-EINVAL, "Invalid --limit '%s': expected 1-5000", arg);
	arg_limit = (long)v;
	return 0;
}

static int parse_netns(const char *arg)
{
	unsigned long long v;

	if (parse_unsigned(arg, NULL, 1, UINT32_MAX, &v) < 0)
		return log_error_errno(-EINVAL, "Invalid --netns '%s': a namespace inode, 1-4294967295", arg);
	arg_netns = (uint32_t)v;
	return 0;
}

static int parse_direction(const char *arg)
{
	if (streq(arg, "inbound"))
		arg_direction = CONNPID_DIRECTION_INBOUND;
	else if (streq(arg, "outbound"))
		arg_direction = CONNPID_DIRECTION_OUTBOUND;
	else
		return log_error_errno(-EINVAL, "Invalid --direction '%s': outbound or inbound", arg);
	return 0;
}

static int parse_at(const char *arg)
{
	if (parse_time(arg, &arg_at) < 0)
		return log_error_errno(-EINVAL, "Invalid --at '%s' (unix seconds, YYYY-MM-DDTHH:MM:SS or -N[smhd])",
				       arg);
	arg_has_at = true;
	return 0;
}

/* The options with a value to check; -ENOENT: not one of them. */
static int parse_checked(int c, const char *arg)
{
	int fam;
	__u32 a[4];

	switch (c) {
	case ARG_FORMAT:
		if (!streq(arg, "ecs"))
			return log_error_errno(-EINVAL, "Invalid --format '%s': ecs", arg);
		arg_ecs = true;
		return 0;
	case ARG_ORDER:
		if (!streq(arg, "asc") && !streq(arg, "desc"))
			return log_error_errno(-EINVAL, "Invalid --order '%s': asc or desc", arg);
		arg_order = arg;
		return 0;
	case ARG_SRC:
		if (parse_ip(arg, &fam, a) < 0)
			return log_error_errno(-EINVAL, "Invalid --src '%s': expected an IP address", arg);
		arg_src = arg;
		return 0;
	case ARG_INBOUND:
		arg_direction = CONNPID_DIRECTION_INBOUND;
		return 0;
	case ARG_LIMIT:
		return parse_limit(arg);
	case ARG_NETNS:
		return parse_netns(arg);
	case ARG_DIRECTION:
		return parse_direction(arg);
	case ARG_AT:
		return parse_at(arg);
	}
	return -ENOENT;
}

/* 0: taken; 1: done (--help, --version); < 0: bad (logged), -ENOENT:
 * not an option getopt knows. */
static int parse_option(int c, char *arg)
{
	int r;

	if (c == 'h') {
		help();
		return 1;
	}
	if (c == ARG_VERSION) {
		printf("connpidctl %s (ABI %d)\n", CONNPID_VERSION, CONNPID_ABI_VERSION);
		return 1;
	}
	if (c >= ARG_FILTER)
		return filter_option_parse((size_t)(c - ARG_FILTER), arg);
	r = parse_checked(c, arg);
	if (r != -ENOENT)
		return r;
	return parse_plain_option(c, arg, string_options, ARRAY_SIZE(string_options), flag_options,
				  ARRAY_SIZE(flag_options)) ? 0 : -ENOENT;
}

static const struct option fixed_options[] = {
	{ "protocol", required_argument, NULL, ARG_PROTOCOL },
	{ "format", required_argument, NULL, ARG_FORMAT },
	{ "prometheus", no_argument, NULL, ARG_PROMETHEUS },
	{ "direct", no_argument, NULL, ARG_DIRECT },
	{ "json", no_argument, NULL, ARG_JSON },
	{ "socket", required_argument, NULL, ARG_SOCKET },
	{ "pin-dir", required_argument, NULL, ARG_PIN_DIR },
	{ "limit", required_argument, NULL, ARG_LIMIT },
	{ "order", required_argument, NULL, ARG_ORDER },
	{ "at", required_argument, NULL, ARG_AT },
	{ "community-id", required_argument, NULL, ARG_COMMUNITY_ID },
	{ "version", no_argument, NULL, ARG_VERSION },
	{ "src", required_argument, NULL, ARG_SRC },
	{ "netns", required_argument, NULL, ARG_NETNS },
	{ "inbound", no_argument, NULL, ARG_INBOUND },
	{ "direction", required_argument, NULL, ARG_DIRECTION },
	{ "help", no_argument, NULL, 'h' },
};

/* 1: run; 0: done (--help, --version); < 0: bad arguments, logged. */
static int parse_argv(int argc, char **argv)
{
	struct option options[ARRAY_SIZE(fixed_options) + FILTER_OPTIONS_MAX + 1] = {};
	size_t n = ARRAY_SIZE(fixed_options);
	int r;

	memcpy(options, fixed_options, sizeof(fixed_options));
	filter_getopt_options(options + n, ARG_FILTER);
	r = parse_options(argc, argv, "h", options, parse_option);
	if (r <= 0)
		return r;
	if (optind >= argc)
		return log_error_errno(-EINVAL, "Missing command (see --help)");
	if (!streq(argv[optind], "lookup"))
		return scope_filters() < 0 ? -ENOMEM : 1;
	return 1;
}

static const struct verb {
	const char *name;
	bool takes_args;
	int (*run)(char **args, int n);
} verbs[] = {
	{ "lookup", true, verb_lookup },
	{ "watch", false, verb_watch },
	{ "recent", false, verb_recent },
	{ "history", false, verb_history },
	{ "stats", false, verb_stats },
	{ "status", false, verb_status },
	{ "ping", false, verb_ping },
	{ "ipv6-block", true, verb_ipv6_block },
};

static int run(const char *name, char **args, int n)
{
	const struct verb *v = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(verbs) && !v; i++)
		if (streq(verbs[i].name, name))
			v = &verbs[i];
	if ((!v || !v->takes_args) && n > 0)
		return log_error("'%s' takes no arguments", name), EXIT_ERROR;
	if (!v)
		return log_error("Unknown command '%s' (see --help)", name), EXIT_ERROR;
	return v->run(args, n);
}

int main(int argc, char **argv)
{
	int r;

	log_set_program("connpidctl");
	log_setup_libbpf(false);
	r = parse_argv(argc, argv);
	if (r > 0)
		r = run(argv[optind], argv + optind + 1, argc - optind - 1);
	else
		r = r < 0 ? EXIT_ERROR : EXIT_FOUND;
	json_object_put(arg_filter);
	return r;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* connpid-queryd: drain, enrich, index and answer; never detaches. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "export-journal.h"
#include "export-ndjson.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "parse-util.h"

#define DEFAULT_SOCKET "/run/connpid.sock"
/* the two LRU maps' default sizes: the index mirrors at most that much */
#define DEFAULT_MAX_FLOWS 81920
#define DEFAULT_DB "/var/lib/connpid/connpid.db"
/* who may query: not the daemon's own group `connpid` (least privilege) */
#define DEFAULT_ALLOW_GROUP "connpid-query"

enum { ARG_PIN_DIR = 0x100, ARG_SOCKET, ARG_NO_TCP, ARG_NO_DNS, ARG_NO_DOCKER, ARG_DB,
       ARG_NO_STORE, ARG_MAX_FLOWS, ARG_MAX_CLIENTS, ARG_VERSION, ARG_RETAIN_DAYS,
       ARG_RETAIN_ROWS, ARG_ALLOW_GROUP, ARG_DOCKER_SOCKET, ARG_QUERY_BUDGET,
       ARG_COMMUNITY_ID_SEED, ARG_EXPORT, ARG_JOURNAL_RATE, ARG_JOURNAL_BURST,
       ARG_NDJSON_MAX_SIZE, ARG_NDJSON_KEEP, ARG_BUSY_POLL_US };

/* Bounds of the export tuning: a bucket past a million entries is no
 * limit at all; a file below 4 KiB rotates on every flush. */
#define JOURNAL_MAX 1000000ULL
#define NDJSON_SIZE_MIN 4096ULL
#define NDJSON_SIZE_MAX (1ULL << 40)
#define NDJSON_KEEP_MAX 1000ULL
/* A longer spin is a core given away, not a shorter wait. */
#define BUSY_POLL_US_MAX 1000ULL

static void help(void)
{
	printf("Usage: connpid-queryd [OPTIONS]\n\n"
	       "Drain connpid's ring buffer, keep an index of flows with their processes,\n"
	       "and answer JSON-lines queries on a Unix socket (see connpid(7)).\n\n"
	       "  --pin-dir DIR       pins made by connpid-loader (default %s)\n"
	       "  --socket PATH       socket to bind when not socket-activated (default %s)\n"
	       "  --max-flows N       flows kept in the index (default %d)\n"
	       "  --max-clients N     concurrent clients (default 1024)\n"
	       "  --allow-group NAME  besides root, members of NAME may query (default %s)\n"
	       "  --no-tcp            do not report TCP flows\n"
	       "  --no-dns            no DNS attribution (names of destinations)\n"
	       "  --docker-socket P   Docker Engine API socket (default /var/run/docker.sock)\n"
	       "  --no-docker         no container names and images from Docker\n"
	       "  --db PATH           history database (default %s)\n"
	       "  --no-store          run without a history database\n"
	       "  --retain-days N     prune history older than N days (default 7, 0 = never)\n"
	       "  --retain-rows N     keep at most N rows of history (default 10000000, 0 = no limit)\n"
	       "  --query-budget-ms N time budget of one history query (default 2000)\n"
	       "  --community-id-seed N  Community ID seed, 0-65535 (default 0)\n"
	       "  --busy-poll-us N    after a request of a caller that may query, poll without\n"
	       "                      sleeping for N us, 0-1000 (default 0: off): CPU for latency\n"
	       "                      to clients on other CPUs\n"
	       "  --export SPEC       also write each flow to: journal, or ndjson:PATH (repeatable)\n"
	       "  --journal-rate N/s  journal export: entries per second sustained (default %d)\n"
	       "  --journal-burst N   journal export: entries at once (default %d)\n"
	       "  --ndjson-max-size BYTES  ndjson export: rotate past this size, K/M/G suffix (default 64M)\n"
	       "  --ndjson-keep N     ndjson export: rotated files kept, PATH.1..PATH.N (default %d)\n"
	       "  -v, --verbose       debug logging\n"
	       "      --version       print the version and the pin ABI\n"
	       "  -h, --help          this text\n",
	       CONNPID_DEFAULT_PIN_DIR, DEFAULT_SOCKET, DEFAULT_MAX_FLOWS, DEFAULT_ALLOW_GROUP, DEFAULT_DB,
	       EXPORT_JOURNAL_RATE, EXPORT_JOURNAL_BURST, EXPORT_NDJSON_KEEP);
}

static struct manager_config arg_cfg = {
	.pin_dir = CONNPID_DEFAULT_PIN_DIR,
	.socket_path = DEFAULT_SOCKET,
	.max_flows = DEFAULT_MAX_FLOWS,
	.max_clients = 1024,
	.db_path = DEFAULT_DB,
	.allow_group = DEFAULT_ALLOW_GROUP,
	.docker_socket = "/var/run/docker.sock",
	.retain_days = 7,
	.retain_rows = 10000000,
};
static bool arg_verbose;

#define CFG(field) offsetof(struct manager_config, field), sizeof(((struct manager_config *)0)->field)

/* The options that take a number: its bounds, what may follow it, and
 * the member of arg_cfg it goes to. */
static const struct numeric_option {
	int c;
	const char *name, *suffix, *range;
	unsigned long long min, max;
	size_t offset, size;
} numeric_options[] = {
	{ ARG_MAX_FLOWS, "--max-flows", NULL, "1-16777216", 1, 1ULL << 24, CFG(max_flows) },
	{ ARG_MAX_CLIENTS, "--max-clients", NULL, "1-16777216", 1, 1ULL << 24, CFG(max_clients) },
	{ ARG_RETAIN_ROWS, "--retain-rows", NULL, "0 or more", 0, ULLONG_MAX, CFG(retain_rows) },
	{ ARG_QUERY_BUDGET, "--query-budget-ms", NULL, "1-3600000", 1, 3600000, CFG(query_budget_ms) },
	{ ARG_COMMUNITY_ID_SEED, "--community-id-seed", NULL, "0-65535", 0, 65535, CFG(community_id_seed) },
	{ ARG_JOURNAL_RATE, "--journal-rate", "/s", "1-1000000 per second", 1, JOURNAL_MAX, CFG(journal_rate) },
	{ ARG_JOURNAL_BURST, "--journal-burst", NULL, "1-1000000", 1, JOURNAL_MAX, CFG(journal_burst) },
	{ ARG_NDJSON_MAX_SIZE, "--ndjson-max-size", "KMG", "4096 to 1099511627776 bytes, K/M/G suffix",
	  NDJSON_SIZE_MIN, NDJSON_SIZE_MAX, CFG(ndjson_max_size) },
	{ ARG_NDJSON_KEEP, "--ndjson-keep", NULL, "1-1000", 1, NDJSON_KEEP_MAX, CFG(ndjson_keep) },
	{ ARG_BUSY_POLL_US, "--busy-poll-us", NULL, "0-1000", 0, BUSY_POLL_US_MAX, CFG(busy_poll_us) },
};

static const struct string_option string_options[] = {
	{ ARG_PIN_DIR, &arg_cfg.pin_dir },
	{ ARG_SOCKET, &arg_cfg.socket_path },
	{ ARG_DOCKER_SOCKET, &arg_cfg.docker_socket },
	{ ARG_DB, &arg_cfg.db_path },
	{ ARG_ALLOW_GROUP, &arg_cfg.allow_group },
};

static const struct flag_option flag_options[] = {
	{ ARG_NO_TCP, &arg_cfg.no_tcp },
	{ ARG_NO_DNS, &arg_cfg.no_dns },
	{ 'v', &arg_verbose },
};

/* v fits: parse_unsigned() checked it against the option's max. */
static void cfg_set_number(size_t offset, size_t size, unsigned long long v)
{
	void *p = (char *)&arg_cfg + offset;

	if (size == sizeof(__u16))
		*(__u16 *)p = (__u16)v;
	else if (size == sizeof(unsigned))
		*(unsigned *)p = (unsigned)v;
	else
		*(__u64 *)p = v;
}

/* 1: c was a numeric option, taken; 0: not one; -EINVAL: logged. */
static int parse_numeric(int c, const char *arg)
{
	unsigned long long v;

	for (size_t i = 0; i < ARRAY_SIZE(numeric_options); i++) {
		const struct numeric_option *o = &numeric_options[i];

		if (o->c != c)
			continue;
		if (parse_unsigned(arg, o->suffix, o->min, o->max, &v) < 0)
			return log_error_errno(-EINVAL, "Invalid %s '%s' (%s)", o->name, arg, o->range);
		cfg_set_number(o->offset, o->size, v);
		return 1;
	}
	return 0;
}

static int parse_retain_days(const char *arg)
{
	char *end;

	errno = 0;
	arg_cfg.retain_days = strtod(arg, &end);
	if (errno || *end || !*arg || !(arg_cfg.retain_days >= 0))
		return log_error_errno(-EINVAL, "Invalid --retain-days '%s' (0 or more days)", arg);
	return 0;
}

static int parse_export(const char *arg)
{
	if (streq(arg, "journal"))
		arg_cfg.export_journal = true;
	else if (startswith(arg, "ndjson:") && arg[7] == '/')
		arg_cfg.export_ndjson_path = arg + 7;
	else
		return log_error_errno(-EINVAL, "Invalid --export '%s' (journal, or ndjson:/ABSOLUTE/PATH)", arg);
	return 0;
}

/* 0: taken; 1: done (--help, --version printed); < 0: bad (logged),
 * -ENOENT: not an option getopt knows. */
static int parse_option(int c, char *arg)
{
	int r;

	r = parse_numeric(c, arg);
	if (r == 0)
		r = parse_plain_option(c, arg, string_options, ARRAY_SIZE(string_options), flag_options,
				       ARRAY_SIZE(flag_options));
	if (r != 0)
		return r < 0 ? r : 0;
	switch (c) {
	case ARG_NO_DOCKER:
		arg_cfg.docker_socket = NULL;
		return 0;
	case ARG_NO_STORE:
		arg_cfg.db_path = NULL;
		return 0;
	case ARG_RETAIN_DAYS:
		return parse_retain_days(arg);
	case ARG_EXPORT:
		return parse_export(arg);
	case 'h':
		help();
		return 1;
	case ARG_VERSION:
		printf("connpid-queryd %s (ABI %d)\n", CONNPID_VERSION, CONNPID_ABI_VERSION);
		return 1;
	}
	return -ENOENT;
}

/* 1: run; 0: done (--help, --version); < 0: bad arguments, logged. */
static int parse_argv(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pin-dir", required_argument, NULL, ARG_PIN_DIR },
		{ "socket", required_argument, NULL, ARG_SOCKET },
		{ "no-tcp", no_argument, NULL, ARG_NO_TCP },
		{ "no-dns", no_argument, NULL, ARG_NO_DNS },
		{ "no-docker", no_argument, NULL, ARG_NO_DOCKER },
		{ "db", required_argument, NULL, ARG_DB },
		{ "no-store", no_argument, NULL, ARG_NO_STORE },
		{ "max-flows", required_argument, NULL, ARG_MAX_FLOWS },
		{ "retain-days", required_argument, NULL, ARG_RETAIN_DAYS },
		{ "allow-group", required_argument, NULL, ARG_ALLOW_GROUP },
		{ "docker-socket", required_argument, NULL, ARG_DOCKER_SOCKET },
		{ "retain-rows", required_argument, NULL, ARG_RETAIN_ROWS },
		{ "max-clients", required_argument, NULL, ARG_MAX_CLIENTS },
		{ "query-budget-ms", required_argument, NULL, ARG_QUERY_BUDGET },
		{ "community-id-seed", required_argument, NULL, ARG_COMMUNITY_ID_SEED },
		{ "export", required_argument, NULL, ARG_EXPORT },
		{ "journal-rate", required_argument, NULL, ARG_JOURNAL_RATE },
		{ "journal-burst", required_argument, NULL, ARG_JOURNAL_BURST },
		{ "ndjson-max-size", required_argument, NULL, ARG_NDJSON_MAX_SIZE },
		{ "ndjson-keep", required_argument, NULL, ARG_NDJSON_KEEP },
		{ "busy-poll-us", required_argument, NULL, ARG_BUSY_POLL_US },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int r;

	r = parse_options(argc, argv, "vh", options, parse_option);
	if (r <= 0)
		return r;
	if (optind < argc)
		return log_error_errno(-EINVAL, "Unexpected argument '%s' (see --help)", argv[optind]);
	return 1;
}

/* A pidfd per indexed process: take the hard limit, as systemd allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			log_debug_errno(negative_errno(), "Cannot raise RLIMIT_NOFILE: %m");
	}
}

int main(int argc, char **argv)
{
	struct manager *m = NULL;
	int r;

	log_set_program("connpid-queryd");
	/* Under systemd stderr is the journal: give it levels, not a name. */
	if (getenv("JOURNAL_STREAM")) {
		log_set_program(NULL);
		log_set_prefix_levels(true);
	}
	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	log_setup_libbpf(arg_verbose);
	raise_fd_limit();

	r = manager_new(&arg_cfg, &m);
	if (r < 0) {
		log_error_errno(r, "Cannot set up: %m");
		return EXIT_FAILURE;
	}
	r = manager_startup(m);
	if (r >= 0)
		r = manager_run(m);
	manager_free(m);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

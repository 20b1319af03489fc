// SPDX-License-Identifier: GPL-2.0-or-later
/* connpid-queryd: drain, enrich, index and answer; never detaches. */
#include <errno.h>
#include <getopt.h>
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
       ARG_NDJSON_MAX_SIZE, ARG_NDJSON_KEEP };

/* Bounds of the export tuning: a bucket past a million entries is no
 * limit at all; a file below 4 KiB rotates on every flush. */
#define JOURNAL_MAX 1000000ULL
#define NDJSON_SIZE_MIN 4096ULL
#define NDJSON_SIZE_MAX (1ULL << 40)
#define NDJSON_KEEP_MAX 1000ULL

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

/* A decimal number in [min, max]; suffix: what may follow it ("/s" for a
 * rate, "KMG" for a size in binary units), NULL for nothing. */
static int parse_bounded(const char *s, const char *suffix, unsigned long long min, unsigned long long max,
			 unsigned long long *ret)
{
	unsigned long long v;
	char *end;

	if (!*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end && suffix && streq(suffix, "/s") && streq(end, "/s"))
		end += 2;
	else if (*end && suffix && !end[1] && strchr("KMG", *end) && strchr(suffix, *end)) {
		unsigned shift = *end == 'K' ? 10 : *end == 'M' ? 20 : 30;

		if (v > (max >> shift))
			return -ERANGE;
		v <<= shift;
		end++;
	}
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

/* The export tuning options; false (logged) when out of range. */
static bool parse_export_tuning(int c, const char *arg, struct manager_config *cfg)
{
	static const struct {
		int c;
		const char *name, *suffix, *range;
		unsigned long long min, max;
	} opts[] = {
		{ ARG_JOURNAL_RATE, "--journal-rate", "/s", "1-1000000 per second", 1, JOURNAL_MAX },
		{ ARG_JOURNAL_BURST, "--journal-burst", NULL, "1-1000000", 1, JOURNAL_MAX },
		{ ARG_NDJSON_MAX_SIZE, "--ndjson-max-size", "KMG", "4096 to 1099511627776 bytes, K/M/G suffix", NDJSON_SIZE_MIN, NDJSON_SIZE_MAX },
		{ ARG_NDJSON_KEEP, "--ndjson-keep", NULL, "1-1000", 1, NDJSON_KEEP_MAX },
	};
	unsigned long long v;

	for (size_t i = 0; i < ARRAY_SIZE(opts); i++) {
		if (opts[i].c != c)
			continue;
		if (parse_bounded(arg, opts[i].suffix, opts[i].min, opts[i].max, &v) < 0) {
			log_error("Invalid %s '%s' (%s)", opts[i].name, arg, opts[i].range);
			return false;
		}
		if (c == ARG_JOURNAL_RATE)
			cfg->journal_rate = (unsigned)v;
		else if (c == ARG_JOURNAL_BURST)
			cfg->journal_burst = (unsigned)v;
		else if (c == ARG_NDJSON_MAX_SIZE)
			cfg->ndjson_max_size = v;
		else
			cfg->ndjson_keep = (unsigned)v;
		return true;
	}
	return false;
}

int main(int argc, char **argv)
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
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct manager_config cfg = {
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
	struct manager *m = NULL;
	bool verbose = false;
	char *end;
	int c, r;

	log_set_program("connpid-queryd");
	/* Under systemd stderr is the journal: give it levels, not a name. */
	if (getenv("JOURNAL_STREAM")) {
		log_set_program(NULL);
		log_set_prefix_levels(true);
	}
	while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
		switch (c) {
		case ARG_PIN_DIR:
			cfg.pin_dir = optarg;
			break;
		case ARG_SOCKET:
			cfg.socket_path = optarg;
			break;
		case ARG_NO_TCP:
			cfg.no_tcp = true;
			break;
		case ARG_NO_DNS:
			cfg.no_dns = true;
			break;
		case ARG_NO_DOCKER:
			cfg.docker_socket = NULL;
			break;
		case ARG_DOCKER_SOCKET:
			cfg.docker_socket = optarg;
			break;
		case ARG_DB:
			cfg.db_path = optarg;
			break;
		case ARG_ALLOW_GROUP:
			cfg.allow_group = optarg;
			break;
		case ARG_NO_STORE:
			cfg.db_path = NULL;
			break;
		case ARG_RETAIN_DAYS:
			errno = 0;
			cfg.retain_days = strtod(optarg, &end);
			if (errno || *end || !*optarg || cfg.retain_days < 0) {
				log_error("Invalid --retain-days '%s'", optarg);
				return EXIT_FAILURE;
			}
			break;
		case ARG_RETAIN_ROWS:
			errno = 0;
			cfg.retain_rows = strtoull(optarg, &end, 10);
			if (errno || *end || !*optarg || optarg[0] == '-') {
				log_error("Invalid --retain-rows '%s'", optarg);
				return EXIT_FAILURE;
			}
			break;
		case ARG_MAX_FLOWS:
		case ARG_MAX_CLIENTS: {
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || v < 1 || v > (1UL << 24)) {
				log_error("Invalid %s '%s'", c == ARG_MAX_FLOWS ? "--max-flows" : "--max-clients", optarg);
				return EXIT_FAILURE;
			}
			if (c == ARG_MAX_FLOWS)
				cfg.max_flows = v;
			else
				cfg.max_clients = v;
			break;
		}
		case ARG_QUERY_BUDGET:
		case ARG_COMMUNITY_ID_SEED: {
			unsigned long v, max = c == ARG_QUERY_BUDGET ? 3600000 : 65535;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || !*optarg || v > max || (c == ARG_QUERY_BUDGET && v == 0)) {
				log_error("Invalid %s '%s' (%s)", c == ARG_QUERY_BUDGET ? "--query-budget-ms" :
					  "--community-id-seed", optarg, c == ARG_QUERY_BUDGET ? "1-3600000" : "0-65535");
				return EXIT_FAILURE;
			}
			if (c == ARG_QUERY_BUDGET)
				cfg.query_budget_ms = (unsigned)v;
			else
				cfg.community_id_seed = (__u16)v;
			break;
		}
		case ARG_EXPORT:
			if (streq(optarg, "journal"))
				cfg.export_journal = true;
			else if (startswith(optarg, "ndjson:") && optarg[7] == '/')
				cfg.export_ndjson_path = optarg + 7;
			else {
				log_error("Invalid --export '%s' (journal, or ndjson:/ABSOLUTE/PATH)", optarg);
				return EXIT_FAILURE;
			}
			break;
		case ARG_JOURNAL_RATE:
		case ARG_JOURNAL_BURST:
		case ARG_NDJSON_MAX_SIZE:
		case ARG_NDJSON_KEEP:
			if (!parse_export_tuning(c, optarg, &cfg))
				return EXIT_FAILURE;
			break;
		case 'v':
			verbose = true;
			break;
		case ARG_VERSION:
			printf("connpid-queryd %s (ABI %d)\n", CONNPID_VERSION, CONNPID_ABI_VERSION);
			return EXIT_SUCCESS;
		case 'h':
			help();
			return EXIT_SUCCESS;
		default:
			return EXIT_FAILURE;
		}
	}
	if (optind < argc) {
		log_error("Unexpected argument '%s' (see --help)", argv[optind]);
		return EXIT_FAILURE;
	}
	log_setup_libbpf(verbose);
	/* A pidfd per indexed process: take the hard limit, as systemd allows. */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
				log_debug_errno(negative_errno(), "Cannot raise RLIMIT_NOFILE: %m");
		}
	}

	r = manager_new(&cfg, &m);
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

// SPDX-License-Identifier: GPL-2.0-or-later
/* connpid-loader: load, attach to the cgroup2 root, pin, exit. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include "connpid.h"
#include "loader.h"
#include "log.h"
#include "macro.h"
#include "pins.h"

enum {
	ARG_UNLOAD = 0x100, ARG_STATUS, ARG_JSON, ARG_PIN_DIR, ARG_CGROUP, ARG_IPV6_BLOCK,
	ARG_BLOCK_LOOPBACK6, ARG_NO_BLOCKER, ARG_BLOCKER_ONLY, ARG_NO_DNS, ARG_NO_CREATOR, ARG_V4, ARG_V6,
	ARG_RINGBUF, ARG_VERSION, ARG_GROUP, ARG_NO_SEED,
};

static void help(void)
{
	printf("Usage: connpid-loader [OPTIONS]\n"
	       "       connpid-loader --unload [--pin-dir DIR]\n"
	       "       connpid-loader --status [--json] [--pin-dir DIR]\n\n"
	       "Load connpid's BPF programs, attach them to a cgroup2 directory with\n"
	       "bpf_links and pin maps, links and programs, then exit. Idempotent.\n\n"
	       "  --pin-dir DIR         pin directory on bpffs (default %s)\n"
	       "  --cgroup PATH         cgroup2 directory to attach to (default: the cgroup2 root)\n"
	       "  --ipv6-block          refuse native IPv6 connect/sendto (config[0] = 1)\n"
	       "  --block-loopback6     when blocking, refuse ::1 too (default: allowed)\n"
	       "  --no-ipv6-blocker     do not load the IPv6 blocker object\n"
	       "  --blocker-only        load only the IPv6 blocker\n"
	       "  --map-entries-v4 N    conn_to_pid_v4 size (default %u)\n"
	       "  --map-entries-v6 N    conn_to_pid_v6 size (default %u)\n"
	       "  --ringbuf-bytes N     event ring size, a power of two (default %u)\n"
	       "  --group NAME          the daemon's group: may read the maps and drain the\n"
	       "                        event rings; links and programs stay root's\n"
	       "                        (default: connpid, when that group exists)\n"
	       "  --no-seed             do not record connections that existed before loading\n"
	       "  --no-dns              do not load the DNS programs (packet parser, getaddrinfo probes)\n"
	       "  --no-creator          do not record who created each socket (saves an\n"
	       "                        update per socket(); events then carry no creator)\n"
	       "  --unload              detach everything and remove every pin (refused if\n"
	       "                        the pin dir holds anything connpid did not pin)\n"
	       "  --status              show what is pinned and attached\n"
	       "  --json                with --status: JSON output\n"
	       "  -v, --verbose         debug output, including the verifier log\n"
	       "      --version         print the version and the pin ABI\n"
	       "  -h, --help            this text\n",
	       CONNPID_DEFAULT_PIN_DIR, CONNPID_MAP_V4_ENTRIES, CONNPID_MAP_V6_ENTRIES,
	       CONNPID_RINGBUF_BYTES);
}

static int parse_u32(const char *s, const char *what, __u32 min, __u32 max, __u32 *ret)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || !*s || *end || s[0] == '-' || v < min || v > max)
		return log_error_errno(-EINVAL, "Invalid %s '%s': expected %u..%u", what, s, min, max);
	*ret = (__u32)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pin-dir", required_argument, NULL, ARG_PIN_DIR },
		{ "cgroup", required_argument, NULL, ARG_CGROUP },
		{ "unload", no_argument, NULL, ARG_UNLOAD },
		{ "status", no_argument, NULL, ARG_STATUS },
		{ "json", no_argument, NULL, ARG_JSON },
		{ "ipv6-block", no_argument, NULL, ARG_IPV6_BLOCK },
		{ "block-loopback6", no_argument, NULL, ARG_BLOCK_LOOPBACK6 },
		{ "no-ipv6-blocker", no_argument, NULL, ARG_NO_BLOCKER },
		{ "blocker-only", no_argument, NULL, ARG_BLOCKER_ONLY },
		{ "no-dns", no_argument, NULL, ARG_NO_DNS },
		{ "no-creator", no_argument, NULL, ARG_NO_CREATOR },
		{ "map-entries-v4", required_argument, NULL, ARG_V4 },
		{ "map-entries-v6", required_argument, NULL, ARG_V6 },
		{ "ringbuf-bytes", required_argument, NULL, ARG_RINGBUF },
		{ "group", required_argument, NULL, ARG_GROUP },
		{ "no-seed", no_argument, NULL, ARG_NO_SEED },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct load_opts o = {
		.pin_dir = CONNPID_DEFAULT_PIN_DIR,
		.tracker = true,
		.blocker = true,
		.dns = true,
		.creator = true,
		.v4_entries = CONNPID_MAP_V4_ENTRIES,
		.v6_entries = CONNPID_MAP_V6_ENTRIES,
		.ringbuf_bytes = CONNPID_RINGBUF_BYTES,
		.pin_group = "connpid",
		.seed = true,
	};
	bool unload = false, status = false, json = false, verbose = false;
	int c, r;

	log_set_program("connpid-loader");
	while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
		switch (c) {
		case ARG_PIN_DIR:
			o.pin_dir = optarg;
			break;
		case ARG_CGROUP:
			o.cgroup_path = optarg;
			break;
		case ARG_UNLOAD:
			unload = true;
			break;
		case ARG_STATUS:
			status = true;
			break;
		case ARG_JSON:
			json = true;
			break;
		case ARG_IPV6_BLOCK:
			o.ipv6_block = true;
			break;
		case ARG_BLOCK_LOOPBACK6:
			o.block_loopback6 = true;
			break;
		case ARG_NO_BLOCKER:
			o.blocker = false;
			break;
		case ARG_BLOCKER_ONLY:
			o.tracker = false;
			break;
		case ARG_NO_DNS:
			o.dns = false;
			break;
		case ARG_NO_CREATOR:
			o.creator = false;
			break;
		case ARG_V4:
			if (parse_u32(optarg, "--map-entries-v4", 16, 1u << 24, &o.v4_entries) < 0)
				return EXIT_FAILURE;
			break;
		case ARG_V6:
			if (parse_u32(optarg, "--map-entries-v6", 16, 1u << 24, &o.v6_entries) < 0)
				return EXIT_FAILURE;
			break;
		case ARG_RINGBUF:
			if (parse_u32(optarg, "--ringbuf-bytes", 4096, 1u << 30, &o.ringbuf_bytes) < 0)
				return EXIT_FAILURE;
			if (o.ringbuf_bytes & (o.ringbuf_bytes - 1)) {
				log_error("--ringbuf-bytes must be a power of two, not %u", o.ringbuf_bytes);
				return EXIT_FAILURE;
			}
			break;
		case ARG_NO_SEED:
			o.seed = false;
			break;
		case ARG_GROUP:
			o.pin_group = optarg;
			o.pin_group_explicit = true;
			break;
		case 'v':
			verbose = true;
			break;
		case ARG_VERSION:
			printf("connpid-loader %s (ABI %d)\n", CONNPID_VERSION, CONNPID_ABI_VERSION);
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
	if (!o.tracker && !o.blocker) {
		log_error("--blocker-only and --no-ipv6-blocker leave nothing to load");
		return EXIT_FAILURE;
	}
	if (unload + status > 1) {
		log_error("--unload and --status exclude each other");
		return EXIT_FAILURE;
	}
	if (o.pin_dir[0] != '/') {
		log_error("--pin-dir must be an absolute path, not '%s'", o.pin_dir);
		return EXIT_FAILURE;
	}
	log_setup_libbpf(verbose);

	if (unload)
		r = loader_unload(o.pin_dir);
	else if (status)
		r = loader_status(o.pin_dir, json);
	else
		r = loader_load(&o);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

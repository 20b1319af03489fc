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
#include "parse-util.h"
#include "pins.h"

enum {
	ARG_UNLOAD = 0x100, ARG_STATUS, ARG_JSON, ARG_PIN_DIR, ARG_CGROUP, ARG_IPV6_BLOCK,
	ARG_BLOCK_LOOPBACK6, ARG_NO_BLOCKER, ARG_BLOCKER_ONLY, ARG_NO_DNS, ARG_NO_CREATOR, ARG_V4, ARG_V6,
	ARG_RINGBUF, ARG_VERSION, ARG_GROUP, ARG_NO_SEED, ARG_INBOUND,
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
	       "  --inbound             also report accepted TCP connections (accept()/accept4()\n"
	       "                        tracepoints, listen() owners); off by default\n"
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

static struct load_opts arg_load = {
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
static bool arg_unload = false;
static bool arg_status = false;
static bool arg_json = false;
static bool arg_verbose = false;

/* The options that only set or clear a flag. */
static const struct {
	int option;
	bool *flag;
	bool value;
} flag_options[] = {
	{ ARG_UNLOAD, &arg_unload, true },
	{ ARG_STATUS, &arg_status, true },
	{ ARG_JSON, &arg_json, true },
	{ ARG_IPV6_BLOCK, &arg_load.ipv6_block, true },
	{ ARG_BLOCK_LOOPBACK6, &arg_load.block_loopback6, true },
	{ ARG_NO_BLOCKER, &arg_load.blocker, false },
	{ ARG_BLOCKER_ONLY, &arg_load.tracker, false },
	{ ARG_NO_DNS, &arg_load.dns, false },
	{ ARG_NO_CREATOR, &arg_load.creator, false },
	{ ARG_NO_SEED, &arg_load.seed, false },
	{ ARG_INBOUND, &arg_load.inbound, true },
	{ 'v', &arg_verbose, true },
};

static bool set_flag_option(int c)
{
	for (size_t i = 0; i < ARRAY_SIZE(flag_options); i++)
		if (flag_options[i].option == c) {
			*flag_options[i].flag = flag_options[i].value;
			return true;
		}
	return false;
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

static int parse_ringbuf_bytes(const char *s)
{
	int r;

	r = parse_u32(s, "--ringbuf-bytes", 4096, 1u << 30, &arg_load.ringbuf_bytes);
	if (r < 0)
		return r;
	if (arg_load.ringbuf_bytes & (arg_load.ringbuf_bytes - 1))
		return log_error_errno(-EINVAL, "--ringbuf-bytes must be a power of two, not %u",
				       arg_load.ringbuf_bytes);
	return 0;
}

/* Options that conflict, or say nothing to do. */
static int check_args(int argc, char **argv)
{
	if (optind < argc)
		return log_error_errno(-EINVAL, "Unexpected argument '%s' (see --help)", argv[optind]);
	if (!arg_load.tracker && !arg_load.blocker)
		return log_error_errno(-EINVAL, "--blocker-only and --no-ipv6-blocker leave nothing to load");
	if (arg_load.inbound && !arg_load.tracker)
		return log_error_errno(-EINVAL, "--inbound needs the tracker: not with --blocker-only");
	if (arg_unload && arg_status)
		return log_error_errno(-EINVAL, "--unload and --status exclude each other");
	if (arg_load.pin_dir[0] != '/')
		return log_error_errno(-EINVAL, "--pin-dir must be an absolute path, not '%s'",
				       arg_load.pin_dir);
	return 0;
}

/* 1: go on, 0: done (--help, --version), negative: bad arguments (logged). */
/* 0: taken; 1: done (--help, --version printed); < 0: bad (logged),
 * -ENOENT: not an option getopt knows. */
static int parse_option(int c, char *arg)
{
	if (set_flag_option(c))
		return 0;
	switch (c) {
	case ARG_PIN_DIR:
		arg_load.pin_dir = arg;
		return 0;
	case ARG_CGROUP:
		arg_load.cgroup_path = arg;
		return 0;
	case ARG_GROUP:
		arg_load.pin_group = arg;
		arg_load.pin_group_explicit = true;
		return 0;
	case ARG_V4:
		return parse_u32(arg, "--map-entries-v4", 16, 1u << 24, &arg_load.v4_entries);
	case ARG_V6:
		return parse_u32(arg, "--map-entries-v6", 16, 1u << 24, &arg_load.v6_entries);
	case ARG_RINGBUF:
		return parse_ringbuf_bytes(arg);
	case ARG_VERSION:
		printf("connpid-loader %s (ABI %d)\n", CONNPID_VERSION, CONNPID_ABI_VERSION);
		return 1;
	case 'h':
		help();
		return 1;
	}
	return -ENOENT;
}

static int parse_argv(int argc, char **argv)
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
		{ "inbound", no_argument, NULL, ARG_INBOUND },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, ARG_VERSION },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	int r;

	r = parse_options(argc, argv, "vh", options, parse_option);
	if (r <= 0)
		return r;
	r = check_args(argc, argv);
	return r < 0 ? r : 1;
}

int main(int argc, char **argv)
{
	int r;

	log_set_program("connpid-loader");
	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	log_setup_libbpf(arg_verbose);

	if (arg_unload)
		r = loader_unload(arg_load.pin_dir);
	else if (arg_status)
		r = loader_status(arg_load.pin_dir, arg_json);
	else
		r = loader_load(&arg_load);
	return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

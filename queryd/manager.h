/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's context: the only long-lived state connpid-queryd has. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "dns-ingest.h"
#include "flow-index.h"
#include "pins-watch.h"
#include "proc-cache.h"
#include "protocol-args.h"
#include "ringbuf.h"
#include "server.h"
#include "store-io.h"

struct store;
struct cgroup_cache;
struct docker;
struct dns_cache;
struct exporters;

struct manager_config {
	const char *pin_dir;
	const char *socket_path;
	size_t max_flows;
	bool no_tcp;      /* do not report TCP flows (Lanthorn's flag) */
	size_t max_clients;
	const char *allow_group; /* besides root, who may query */
	const char *docker_socket; /* NULL: --no-docker */
	bool no_dns;
	const char *db_path;     /* NULL: --no-store */
	double retain_days;
	__u64 retain_rows;
	unsigned query_budget_ms;   /* 0: STORE_QUERY_BUDGET_MS */
	__u16 community_id_seed;
	bool export_journal;        /* --export journal */
	const char *export_ndjson_path; /* --export ndjson:PATH, or NULL */
	unsigned journal_rate;      /* --journal-rate, entries/s; 0: EXPORT_JOURNAL_RATE */
	unsigned journal_burst;     /* --journal-burst; 0: EXPORT_JOURNAL_BURST */
	uint64_t ndjson_max_size;   /* --ndjson-max-size, bytes; 0: EXPORT_NDJSON_MAX_SIZE */
	unsigned ndjson_keep;       /* --ndjson-keep; 0: EXPORT_NDJSON_KEEP */
	unsigned busy_poll_us;      /* --busy-poll-us; 0: sleep as soon as idle */
};

/* The manager holds the modules and wires them: each satellite owns its
 * state (and its counters, with its *_stats_to_json()) and declares its
 * functions in its own header. */
struct manager {
	struct manager_config cfg;
	sd_event *event;
	sd_event_source *status_timer;

	struct pins_watch pins;     /* pins-watch.h */
	struct ringbuf ring;        /* ringbuf.h */
	struct server server;       /* server.h, client.h */
	struct store_io sio;        /* store-io.h */
	struct dns_ingest dns_in;   /* dns-ingest.h */
	struct slow_queue *slow;    /* protocol-args.h: recent, stats, status */

	/* leaf modules */
	struct proc_cache *procs;
	struct flow_index *flows;
	struct cgroup_cache *cgroups;
	struct docker *docker;
	struct dns_cache *dns;       /* NULL: --no-dns */
	struct exporters *exporters; /* NULL: no --export */
	struct store *store;         /* NULL: --no-store, or given up */
	char store_problem[512];     /* why there is no store */

	/* request counters for `stats` (protocol.c, history-ops.c) */
	__u64 requests;
	/* of them, from callers that may query: only these start the spin
	 * of --busy-poll-us (manager_run), so a caller who may only ping
	 * cannot keep a CPU busy with a ping a millisecond */
	__u64 requests_may_query;
	__u64 request_errors;
	__u64 lookups;
	__u64 lookups_found;

	char boot_id[40];     /* pid + start time + boot id name a process for good */
	uint64_t started_mono_us;
};

int manager_new(const struct manager_config *cfg, struct manager **ret);
struct manager *manager_free(struct manager *m);
int manager_startup(struct manager *m);
int manager_run(struct manager *m);

double now_realtime(void);
double monotonic_ns_to_realtime(__u64 ns);

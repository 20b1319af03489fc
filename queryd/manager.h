/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's context: the only long-lived state connpid-queryd has. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "flow-index.h"
#include "pins.h"
#include "proc-cache.h"

struct client;
struct ring_buffer;
struct store;
struct cgroup_cache;
struct docker;
struct dns_cache;
struct flow_domain;
struct slow_job;

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
};

struct manager {
	struct manager_config cfg;
	sd_event *event;

	/* Pins: reopened when the loader replaces them. */
	struct connpid_maps maps;
	bool maps_open;
	__u32 meta_map_id;
	char maps_problem[512];
	struct ring_buffer *rb;      /* flow events */
	struct ring_buffer *rb_dns;  /* DNS answers: drained before rb */
	sd_event_source *rb_io;
	sd_event_source *rb_dns_io;
	/* A drain stopped at its budget: the rest next loop pass, after the
	 * clients that were waiting. */
	sd_event_source *rb_more;
	unsigned rb_budget_left;
	uint64_t rb_deadline_usec;
	sd_event_source *rb_timer;
	sd_event_source *pins_timer;
	sd_event_source *status_timer;

	struct proc_cache *procs;
	struct flow_index *flows;
	struct cgroup_cache *cgroups;
	struct docker *docker;
	struct dns_cache *dns;       /* NULL: --no-dns */
	struct exporters *exporters; /* NULL: no --export */

	struct store *store;
	char store_problem[512];
	sd_event_source *store_flush_timer;
	sd_event_source *store_prune_timer;

	bool allow_gid_valid;
	gid_t allow_gid;

	int listen_fd;
	bool listen_fd_activated;
	/* the inode we bound, so exit removes it and nothing put there since */
	bool listen_inode_known;
	dev_t listen_dev;
	ino_t listen_ino;
	char activated_path[108];
	sd_event_source *reaper;
	sd_event_source *listen_io;
	/* Out of fds: accepting paused until one frees (or the timer says
	 * try again); said once per episode. */
	sd_event_source *accept_retry;
	bool accept_paused;
	bool accept_starved_logged;
	__u64 accept_starved;     /* connections we could not take for want of an fd */
	struct client *clients;
	size_t n_clients;
	size_t n_watchers;
	uint64_t next_client_id;
	size_t output_queued;     /* unread bytes of all clients together */
	/* Requests that take milliseconds, served after client I/O
	 * (protocol.c): a ping never waits behind hundreds of them. */
	struct slow_job *slow_head, *slow_tail;
	sd_event_source *slow_defer;
	sd_event_source *slow_timer;

	/* counters for `stats` */
	__u64 events_received;
	__u64 lookups;
	__u64 lookups_found;
	__u64 requests;
	__u64 request_errors;
	__u64 clients_total;
	__u64 clients_dropped_slow;
	__u64 clients_dropped_output_cap; /* slowest readers, past OUTPUT_MAX_TOTAL */
	__u64 ring_budget_stops;  /* drains cut at their budget, resumed next pass */
	__u64 watch_events_dropped;
	__u64 dns_responses;
	__u64 dns_malformed;
	__u64 dns_truncated;
	__u64 dns_getaddrinfo;
	double started_at;
	char boot_id[40];     /* pid + start time + boot id name a process for good */
	uint64_t started_mono_us;
};

int manager_new(const struct manager_config *cfg, struct manager **ret);
struct manager *manager_free(struct manager *m);
int manager_startup(struct manager *m);
int manager_run(struct manager *m);

double now_realtime(void);
double monotonic_ns_to_realtime(__u64 ns);

/* pins.c in queryd: open pins, watch for the loader replacing them */
int manager_open_pins(struct manager *m);
void manager_close_pins(struct manager *m);
/* Reopen the pins when the loader replaces or removes them. */
int manager_watch_pins(struct manager *m);

/* ringbuf.c */
int manager_ringbuf_attach(struct manager *m);
void manager_ringbuf_detach(struct manager *m);
/* Drain what is waiting now; used before answering a map hit the index
 * has not seen yet. */
int manager_ringbuf_drain(struct manager *m);

/* store-io.c: the history store driven from the loop */
int manager_store_start(struct manager *m);
void manager_store_flow(struct manager *m, const struct flow *f);
void manager_store_stop(struct manager *m);

/* dns-ingest.c */
int manager_on_dns_event(void *ctx, void *data, size_t size);

/* protocol.c: drop the queue of slow requests (at exit) */
void manager_slow_queue_free(struct manager *m);

/* server.c */
int manager_listen(struct manager *m);
void manager_broadcast_flow(struct manager *m, const struct flow *f);
void manager_close_clients(struct manager *m);
void manager_unlink_socket(struct manager *m);

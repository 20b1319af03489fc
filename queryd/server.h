/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The query socket and its clients (each one's framing and bounded output
 * in client.h). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

struct manager;
struct client;
struct flow;

struct server {
	int listen_fd;
	bool listen_fd_activated;
	/* the inode we bound, so exit removes it and nothing put there since */
	bool listen_inode_known;
	dev_t listen_dev;
	ino_t listen_ino;
	char activated_path[108];
	sd_event_source *listen_io;
	/* Out of fds: accepting paused until one frees (or the timer says
	 * try again); said once per episode. */
	sd_event_source *accept_retry;
	bool accept_paused;
	bool accept_starved_logged;
	sd_event_source *reaper;    /* frees the clients marked dead */

	/* besides root, who may query (--allow-group) */
	bool allow_gid_valid;
	gid_t allow_gid;

	struct client *clients;
	size_t n_clients;
	size_t n_watchers;
	uint64_t next_client_id;
	size_t output_queued;       /* unread bytes of all clients together */

	__u64 clients_total;
	__u64 clients_dropped_slow;
	__u64 clients_dropped_output_cap; /* slowest readers, past OUTPUT_MAX_TOTAL */
	__u64 accept_starved;       /* connections we could not take for want of an fd */
	__u64 watch_events_dropped;
};

void server_init(struct server *s);
/* The group of --allow-group, if it exists. */
void server_resolve_allow_group(struct server *s, const char *group);
/* Take the socket systemd passed, or bind our own; accept on it. */
int server_listen(struct manager *m);
/* At exit: every client gone; then (server_free) the listening socket
 * closed, and ours removed. */
void server_close_clients(struct server *s);
void server_free(struct manager *m);

/* One new flow to the watchers whose filter it passes. */
void server_broadcast_flow(struct manager *m, const struct flow *f);

/* clients, clients_total, watchers, clients_dropped_slow,
 * clients_dropped_output_cap, output_queued_bytes and accept_starved into
 * the `stats` object s */
void server_stats_to_json(const struct server *s, json_object *o);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One connection on the query socket: line framing and bounded output
 * (functions in server.c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "flow-index.h"
#include "jsonw.h"
#include "protocol-args.h"

#define CLIENT_MAX_LINE (64 * 1024)
/* Unread output past which a client is dropped; checked before a line is
 * queued, so one answer always goes in: at most ANSWER_MAX_BYTES more. */
#define CLIENT_MAX_OUT (1024 * 1024)
/* The largest answer line (echoed id included): `recent` and `history`
 * stop before it and say "truncated":true with a "cursor" to go on. */
#define ANSWER_MAX_BYTES (1024 * 1024)
/* Unread output of all clients together. Past it the clients with the
 * most unread bytes are dropped first (stats: clients_dropped_output_cap).
 * 32 MiB: room for 16 clients a full backlog behind, while queryd (some
 * 40 MB with the rings mapped) stays well under 128 MB under attack. */
#define OUTPUT_MAX_TOTAL (32 * 1024 * 1024)

struct watch_filter {
	bool has_pid, has_comm, has_proto, has_dst, has_dport, has_direction, has_src;
	__u32 pid;
	char comm[16];
	__u8 proto;
	__u8 direction;  /* enum flow_direction */
	int dst_family;
	__u32 dst[4];
	__u16 dport;
	int src_family;
	__u32 src[4];
	__u64 netns;     /* 0: any */
};

struct manager;

struct client {
	struct manager *m;
	struct client *next, *prev;
	uint64_t id;     /* unique for the daemon's life, given at accept */
	int fd;
	sd_event_source *io;
	uid_t uid;
	gid_t gid;
	pid_t pid;
	bool may_query;  /* root or a member of the allowed group */
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_off, out_cap;
	uint64_t out_since;  /* CLOCK_MONOTONIC usec: unread output since then */
	bool watching;
	struct watch_filter filter;
	uint64_t watch_fields;    /* FLOW members a watcher gets (flow-json.h) */
	/* The current request's "fields": the FLOW members of its answer,
	 * kept while it is deferred (no other line is parsed meanwhile). */
	uint64_t answer_fields;
	struct jsonw ow;          /* writes an answer into out (client_answer_begin) */
	/* A request answered later: no further line is parsed until then. */
	bool deferred;
	json_object *deferred_id;   /* its "id", echoed on completion */
	bool read_eof;       /* the peer shut its side: answer what came, close */
	bool close_after_flush;
	bool dead;
};

/* Queue one JSON value as a line. Drops the client past CLIENT_MAX_OUT,
 * and the slowest readers past OUTPUT_MAX_TOTAL. */
int client_send(struct client *c, json_object *o);
/* Queue one line of JSON text (valid UTF-8 already; no newline in it). */
int client_send_text(struct client *c, const char *s, size_t len);
/* The one way an answer leaves: echoes the request's id (NULL: none),
 * keeps the members of its "flow" that answer_fields names, sanitizes,
 * counts errors, queues it. Takes ans. */
void client_answer(struct client *c, json_object *ans, json_object *id);
/* The fast way for an answer that is not an error: written by jsonw straight
 * into the client's output buffer, no tree, no copy, no allocation once
 * the buffer has grown. begin writes "{" and gives the writer for the
 * members (NULL: the client is gone or dropped, write nothing); end adds
 * the id and "}\n" and queues the line under the same bounds as
 * client_send(). jsonw makes valid UTF-8, so no sanitize pass. */
struct jsonw *client_answer_begin(struct client *c);
void client_answer_end(struct client *c, json_object *id);

/* A request whose answer comes later (history on the reader thread).
 * The handler calls client_defer(c) and returns no answer; no further line
 * of c is parsed (input stays buffered; reading may stop at the line
 * limit) until manager_client_complete() sends the answer; then the
 * buffered lines are processed. Returns the client's id. */
uint64_t client_defer(struct client *c);
/* Send ans (taking the reference) to the client with this id, if still
 * connected, and resume it; drops ans if the client is gone. On the loop
 * thread only. */
void manager_client_complete(struct manager *m, uint64_t client_id, json_object *ans);
/* Is the client with this id still connected and waiting for an answer? */
bool manager_client_waiting(struct manager *m, uint64_t client_id);
void client_close_after_flush(struct client *c);
/* Drop it at the next safe point (never frees in place). */
void client_mark_dead(struct client *c);

/* c watches from now on: the flows w passes, with the FLOW members fields. */
void client_watch(struct client *c, const struct watch_filter *w, uint64_t fields);

bool watch_filter_match(const struct watch_filter *w, const struct flow *f);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* One connection on the query socket: line framing and bounded output. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "flow-index.h"

#define CLIENT_MAX_LINE (64 * 1024)
#define CLIENT_MAX_OUT (1024 * 1024)

struct watch_filter {
	bool has_pid, has_comm, has_proto, has_dst, has_dport;
	__u32 pid;
	char comm[16];
	__u8 proto;
	int dst_family;
	__u32 dst[4];
	__u16 dport;
};

struct manager;

struct client {
	struct manager *m;
	struct client *next, *prev;
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
	bool watching;
	struct watch_filter filter;
	bool close_after_flush;
	bool dead;
};

/* Queue one JSON value as a line. Drops the client past CLIENT_MAX_OUT. */
int client_send(struct client *c, json_object *o);
void client_close_after_flush(struct client *c);
/* Drop it at the next safe point (never frees in place). */
void client_mark_dead(struct client *c);

bool watch_filter_match(const struct watch_filter *w, const struct flow *f);

/* protocol.c: one request line in, one answer (or a watch start) out. */
void protocol_handle_line(struct manager *m, struct client *c, char *line, size_t len);
json_object *protocol_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

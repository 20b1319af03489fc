/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Requests answered from the SQLite history (history-ops.c). Each hands a
 * job to the store's reader thread, defers the client (client_defer) and
 * returns NULL; or returns the answer at once (an error, "busy", or for a
 * lookup whose history the reader cannot take now, /proc's view). */
#pragma once

#include <linux/types.h>
#include <json-c/json.h>

struct manager;
struct client;
struct flow_query;
struct lookup_scope;

json_object *history_op(struct manager *m, struct client *c, json_object *req);
/* "lookup" with "at": who owned the flow at that time. */
json_object *history_lookup_at(struct manager *m, struct client *c, const struct flow_query *q,
			      const struct lookup_scope *scope, json_object *vat);
/* "lookup" with "community_id" (valid) and "at": the newest flow with
 * that ID (the daemon's seed) first seen at or before `at`. */
json_object *history_lookup_community_id(struct manager *m, struct client *c, const char *id, json_object *vat);
/* The map names pid but the index has no event: describe it from the
 * history, or from /proc if the reader is busy. Takes ans ({"ok":true}),
 * adds "found" and "flow" and counts the find. */
json_object *history_map_hit(struct manager *m, struct client *c, const struct flow_query *q, __u32 pid,
			     const struct lookup_scope *scope, json_object *ans);


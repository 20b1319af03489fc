/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The requests (protocol.c): one line in, one answer out; and small
 * helpers the request handlers share. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

struct manager;
struct client;

#define RECENT_DEFAULT 50
#define RECENT_MAX 5000

json_object *ok_answer(void);
/* How much of a client's string to quote in an error. */
int quote_len(const char *s);
/* An integer (not 1.5, not "2") in [min, max]: 0, -EINVAL or -ERANGE. */
int int_in_range(json_object *v, int64_t min, int64_t max, int64_t *ret);
/* The same for a member of req: -ENOENT when absent. */
int get_int_member(json_object *req, const char *key, int64_t min, int64_t max, int64_t *ret);

/* One request line in, one answer (or a watch start) out. */
void protocol_handle_line(struct manager *m, struct client *c, char *line, size_t len);
json_object *protocol_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes a list answer to req may spend on its rows (each row counted with
 * its comma) so that the line, echoed id and envelope included, stays
 * under ANSWER_MAX_BYTES. */
size_t answer_rows_budget(json_object *req);

/* The queue of requests that take milliseconds (recent, stats, status),
 * served after client I/O: made on first use, dropped at exit. */
struct slow_queue;
struct slow_queue *slow_queue_free(struct slow_queue *q);

/* The request counters (requests, request_errors, lookups, lookups_found)
 * into the `stats` object s. */
void protocol_stats_to_json(const struct manager *m, json_object *s);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What connpidctl prints: table rows, key/value lines, JSON lines. Every
 * text from the daemon goes through text_escape(). */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

/* o's member k as text; "-" when absent or null. */
const char *jget_str(json_object *o, const char *k);
bool jget_bool(json_object *o, const char *k);

/* One field of a table row, padded to width characters and followed by
 * a space; width 0 is the last field and ends the line. */
void put_field(const char *s, int width);
void print_json(json_object *o);

void print_flow_row_header(void);
void print_flow_row(json_object *f);
/* The other flows of the same key ("candidates" of a lookup answer). */
void print_candidates(json_object *ans);
void print_watch_header(void);
void print_watch_row(json_object *f);
/* "key value" lines, nested objects as "a.b". */
void print_object_flat(const char *prefix, json_object *o);
/* One ECS record per flow, as connpid-queryd --export ndjson writes. */
int print_ecs(json_object *flows);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --export ndjson:PATH: the ECS record of each flow, one JSON line each,
 * to a file rotated by size, for any log shipper to tail. */
#pragma once

#include <stdint.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#define EXPORT_NDJSON_MAX_SIZE (64ULL << 20) /* rotate past 64 MiB */
#define EXPORT_NDJSON_KEEP 4                 /* PATH.1 .. PATH.4 */

struct export_ndjson;

struct export_ndjson_stats {
	uint64_t lines;      /* written */
	uint64_t bytes;
	uint64_t rotations;
	uint64_t errors;     /* failed writes, opens, renames */
	uint64_t dropped;    /* lines lost to such failures */
};

/* Opens PATH for appending. Refused (-EPERM, a reason in err): a
 * symbolic link, not a regular file, a file or directory not root's or
 * ours, a directory writable by group or others and not sticky.
 * max_size/keep 0: the defaults above. */
int export_ndjson_new(sd_event *e, const char *path, uint64_t max_size, unsigned keep,
		      struct export_ndjson **ret, char *err, size_t errlen);
/* Writes what is buffered, then frees. */
struct export_ndjson *export_ndjson_free(struct export_ndjson *x);
void export_ndjson_record(struct export_ndjson *x, json_object *rec);
/* The `stats` member "exports"."ndjson": lines, bytes, rotations, errors,
 * dropped. */
json_object *export_ndjson_stats_to_json(const struct export_ndjson *x);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Flows as the protocol shows them, and the filters clients give. */
#pragma once

#include <stdint.h>
#include <json-c/json.h>

#include "client.h"
#include "flow-index.h"
#include "flowkey.h"
#include "flow-view.h"
#include "filter.h"
#include "jsonw.h"

struct manager;

/* The "fields" of request req (absent: every member): -EINVAL with a
 * message in err for anything but a non-empty array of FLOW member names
 * (null too). */
int flow_fields_parse(json_object *req, uint64_t *ret, char *err, size_t errlen);
/* Drop the members of a json-c FLOW or MAP FLOW that fields does not
 * name (a history row's row_id stays). */
void flow_fields_filter(json_object *flow, uint64_t fields);

/* in_map: 1 or 0 adds "in_map", -1 leaves it out. */
json_object *flow_to_json(struct manager *m, const struct flow *f, int in_map);
json_object *flow_to_json_fields(struct manager *m, const struct flow *f, int in_map, uint64_t fields);
/* The FLOW object written into w, only the members in fields. */
void flow_write(struct jsonw *w, struct manager *m, const struct flow *f, int in_map, uint64_t fields);
/* "outbound" or "inbound" into *ret; -EINVAL for anything else. */
int flow_direction_parse(const char *s, enum flow_direction *ret);

/* A flow the map knows but no event has described: pid and /proc only. */
json_object *map_hit_to_json(const struct flow_query *q, __u32 pid);

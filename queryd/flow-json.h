/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Flows as the protocol shows them, and the filters clients give. */
#pragma once

#include <json-c/json.h>

#include "client.h"
#include "flow-index.h"
#include "flowkey.h"

struct manager;

/* in_map: 1 or 0 adds "in_map", -1 leaves it out. */
json_object *flow_to_json(struct manager *m, const struct flow *f, int in_map);
/* A flow the map knows but no event has described: pid and /proc only. */
json_object *map_hit_to_json(const struct flow_query *q, __u32 pid);

/* Parse {"pid":..,"comm":..,"proto":..,"dst":..,"dport":..}; on error
 * returns -EINVAL with a message in err. */
int watch_filter_parse(json_object *o, struct watch_filter *ret, char *err, size_t errlen);

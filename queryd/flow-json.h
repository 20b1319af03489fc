/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Flows as the protocol shows them, and the filters clients give. */
#pragma once

#include <stdint.h>
#include <json-c/json.h>

#include "client.h"
#include "flow-index.h"
#include "flowkey.h"
#include "jsonw.h"

struct manager;

/* The members of a FLOW (man/connpid.7), one bit each: a "fields" list in
 * a request becomes a mask of them. */
enum flow_field {
	FF_PROTO, FF_DIRECTION, FF_FAMILY, FF_SRC, FF_SPORT, FF_DST, FF_DPORT, FF_COMMUNITY_ID,
	FF_PID, FF_TID, FF_UID, FF_GID, FF_USER, FF_COMM, FF_EXE, FF_CMDLINE, FF_PPID,
	FF_CGROUP_ID, FF_CGROUP, FF_UNIT, FF_SLICE, FF_USER_UNIT, FF_POD_UID, FF_CONTAINER,
	FF_NETNS, FF_SOCKET_COOKIE, FF_START_TIME, FF_BOOT_ID, FF_FIRST_SEEN, FF_LAST_SEEN,
	FF_ALIVE, FF_PID_REUSED, FF_PREVIOUS_PID, FF_EXE_SOURCE, FF_ANCESTORS, FF_CREATOR,
	FF_LISTENER, FF_DOMAIN, FF_SEEN, FF_IN_MAP,
	_FF_MAX,
};
#define FLOW_FIELDS_ALL ((UINT64_C(1) << _FF_MAX) - 1)

/* The "fields" of request req (absent: every member): -EINVAL with a
 * message in err for anything but a non-empty array of FLOW member names
 * (null too). */
int flow_fields_parse(json_object *req, uint64_t *ret, char *err, size_t errlen);
/* Drop the members of a json-c FLOW, MAP FLOW or HISTORY ROW that fields
 * does not name (a row's container_* count as "container", cgroup_path
 * as "cgroup"; its row_id stays). */
void flow_fields_filter(json_object *flow, uint64_t fields);

/* in_map: 1 or 0 adds "in_map", -1 leaves it out. */
json_object *flow_to_json(struct manager *m, const struct flow *f, int in_map);
json_object *flow_to_json_fields(struct manager *m, const struct flow *f, int in_map, uint64_t fields);
/* The FLOW object written into w, only the members in fields. */
void flow_write(struct jsonw *w, struct manager *m, const struct flow *f, int in_map, uint64_t fields);
const char *flow_direction_name(enum flow_direction d);
/* "outbound" or "inbound" into *ret; -EINVAL for anything else. */
int flow_direction_parse(const char *s, enum flow_direction *ret);

/* A flow the map knows but no event has described: pid and /proc only. */
json_object *map_hit_to_json(const struct flow_query *q, __u32 pid);

/* Parse {"pid":..,"comm":..,"proto":..,"dst":..,"dport":..,"direction":..,
 * "netns":..,"src":..}; on error returns -EINVAL with a message in err. */
int watch_filter_parse(json_object *o, struct watch_filter *ret, char *err, size_t errlen);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A flow as an Elastic Common Schema (ECS) record: the field names that
 * Elasticsearch, OpenSearch, Kibana, Vector and OpenTelemetry's semantic
 * conventions share, so fleets query connpid's flows next to everything
 * else. connpid(7) "ECS RECORD" lists the fields. */
#pragma once

#include <json-c/json.h>

/* What the record says about the machine, read once. */
struct ecs_host {
	char id[64];        /* /etc/machine-id, or "" */
	char name[256];     /* gethostname() */
	char boot_id[40];   /* this boot's, without the newline */
	double boot_realtime; /* wall clock time of boot, seconds */
	long ticks_per_sec;
};

/* Fills h from /etc/machine-id, the hostname, the boot id and the clocks;
 * what cannot be read stays empty (never an error). */
void ecs_host_read(struct ecs_host *h);

/* The ECS record of a FLOW (connpid(7): live or a history row, one
 * shape): a new object, nested ("source":{"ip":..}) as Elasticsearch
 * stores it. NULL only when out of memory. */
json_object *ecs_from_flow(json_object *flow, const struct ecs_host *h);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" for unix time t. */
void ecs_format_time(double t, char buf[static 32]);

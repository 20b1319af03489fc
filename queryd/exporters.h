/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --export: where each new flow goes besides the index, the history and
 * the watchers (journald, an NDJSON file), as an ECS record. */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

struct manager;
struct manager_config;
struct flow;
struct exporters;

/* *ret is NULL when cfg asks for no export. A file export that cannot be
 * opened safely fails here, with the reason logged. */
int exporters_new(sd_event *e, const struct manager_config *cfg, struct exporters **ret);
/* Writes what is buffered and says what was dropped. */
struct exporters *exporters_free(struct exporters *x);
/* flow: a FLOW object (connpid(7)); journal: export_journal_admit()
 * let it through. */
void exporters_flow(struct exporters *x, json_object *flow, bool journal);
/* The "export" member of stats. */
json_object *exporters_stats_json(const struct exporters *x);

/* The hook of ringbuf.c: renders the flow once and hands it over. */
void manager_export_flow(struct manager *m, const struct flow *f);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* --export journal: one structured journal entry per flow. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

/* Our own token bucket, below journald's per-service limit (10000 per
 * 30 s, scaled up with free disk space), so a flood of flows costs
 * neither journald's other messages nor our own log lines. */
#define EXPORT_JOURNAL_RATE 500    /* entries per second, sustained */
#define EXPORT_JOURNAL_BURST 5000  /* entries at once */

/* MESSAGE_ID of a flow entry, and of "entries were dropped" */
#define EXPORT_JOURNAL_FLOW_ID "6fbf37b088f84c9a9face276c073f54e"
#define EXPORT_JOURNAL_DROPPED_ID "59bcb4a855874261b0a809748979b33e"

struct export_journal;

struct export_journal_stats {
	uint64_t sent;
	uint64_t dropped;  /* over the rate limit */
	uint64_t errors;   /* journald refused or is absent */
};

/* rate/burst 0: the defaults above. */
int export_journal_new(unsigned rate, unsigned burst, struct export_journal **ret);
/* Says what was dropped since the last entry, then frees. */
struct export_journal *export_journal_free(struct export_journal *j);
/* Whether the rate limit lets one more flow through (a dropped one is
 * counted): asked first, so a dropped flow costs no record. */
bool export_journal_admit(struct export_journal *j);
/* After export_journal_admit() said yes. rec: the ECS record; flow: the
 * FLOW it was made from (for MESSAGE). */
void export_journal_flow(struct export_journal *j, json_object *rec, json_object *flow);
/* The `stats` member "exports"."journal": sent, dropped, errors. */
json_object *export_journal_stats_to_json(const struct export_journal *j);

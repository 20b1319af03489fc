/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The history store driven from the loop: rows queued for its writer
 * thread, finished questions back through an eventfd. */
#pragma once

#include <json-c/json.h>
#include <systemd/sd-event.h>

struct manager;
struct flow;

/* The store itself is m->store (NULL: --no-store, or given up), why it
 * is not there m->store_problem: the history requests read both. */
struct store_io {
	sd_event_source *done_io;   /* the store's completion eventfd */
};

int store_io_start(struct manager *m);
void store_io_flow(struct manager *m, const struct flow *f);
void store_io_stop(struct manager *m);

/* The `stats` member "store": an object. */
json_object *store_io_stats_to_json(const struct manager *m);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The loader's pins, opened and reopened when the loader replaces or
 * removes them (checked once a second against the meta map's id). */
#pragma once

#include <stdbool.h>
#include <linux/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "pins.h"

struct manager;

struct pins_watch {
	struct connpid_maps maps;
	bool open;
	__u32 meta_map_id;
	/* why they are not open, said once per change of reason */
	char problem[512];
	sd_event_source *timer;
};

void pins_watch_init(struct pins_watch *p);
/* Open the pins of m's pin dir and start draining their rings. */
int pins_watch_open(struct manager *m);
void pins_watch_close(struct manager *m);
/* Reopen the pins when the loader replaces or removes them. */
int pins_watch_start(struct manager *m);
/* Stop watching and close (at exit). */
void pins_watch_free(struct manager *m);

/* "loaded", and when loaded the map fill members, into the `stats`
 * object s; the kernel's counters into k. */
void pins_stats_to_json(const struct pins_watch *p, json_object *s, json_object *k);

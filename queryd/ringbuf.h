/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The kernel's rings (flow events, DNS answers) drained inside the loop,
 * within a budget per pass. */
#pragma once

#include <stdint.h>
#include <linux/types.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

struct manager;
struct ring_buffer;

struct ringbuf {
	struct ring_buffer *rb;      /* flow events */
	struct ring_buffer *rb_dns;  /* DNS answers: drained before rb */
	sd_event_source *io;
	sd_event_source *dns_io;
	sd_event_source *timer;
	/* A drain stopped at its budget: the rest next loop pass, after the
	 * clients that were waiting. */
	sd_event_source *more;
	unsigned budget_left;
	uint64_t deadline_usec;

	__u64 events_received;
	__u64 budget_stops;  /* drains cut at their budget, resumed next pass */
};

/* On the pins m has open: events go to the index, the store, the
 * watchers and the exporters. */
int ringbuf_attach(struct manager *m);
void ringbuf_detach(struct ringbuf *rb);
/* Drain what is waiting now; used before answering a map hit the index
 * has not seen yet. */
int manager_ringbuf_drain(struct manager *m);

/* events_received and ring_budget_stops, into the `stats` object s */
void ringbuf_stats_to_json(const struct ringbuf *rb, json_object *s);

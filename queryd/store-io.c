// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * When the history store writes: batches of at most STORE_BATCH rows per
 * loop iteration, flushed every STORE_FLUSH_USEC or as soon as a batch is
 * full, so a burst never holds the loop for more than one transaction and
 * lookups interleave with ingest. A refusing disk is retried every few
 * seconds while rows wait in a bounded queue.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cgroup-cache.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "store.h"

#define STORE_BATCH 2000
#define STORE_FLUSH_USEC (100 * 1000ULL)
#define STORE_RETRY_USEC (2 * 1000 * 1000ULL)
#define STORE_PRUNE_USEC (30 * 1000 * 1000ULL)
#define STORE_PRUNE_BATCH 5000

static int arm(sd_event_source *s, uint64_t delay)
{
	uint64_t now = 0;
	int r;

	r = sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &now);
	if (r < 0)
		return r;
	r = sd_event_source_set_time(s, now + delay);
	if (r < 0)
		return r;
	return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

/* The path turned out to be one others control: no more retries, one
 * line said, lookups go on without the history. */
static int store_give_up(struct manager *m)
{
	struct store_stats ss;

	store_get_stats(m->store, &ss);
	snprintf(m->store_problem, sizeof(m->store_problem), "%s", ss.last_error ? ss.last_error : "refused");
	log_error("History store disabled: %s", m->store_problem);
	m->store_flush_timer = sd_event_source_disable_unref(m->store_flush_timer);
	m->store_prune_timer = sd_event_source_disable_unref(m->store_prune_timer);
	m->store = store_close(m->store);
	return 0;
}

static int on_flush(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	int r = store_flush(m->store, STORE_BATCH);

	if (r == -EPERM)
		return store_give_up(m);
	if (r < 0 || (!store_is_open(m->store) && store_queue_len(m->store) == 0))
		return arm(s, STORE_RETRY_USEC);
	if (store_queue_len(m->store) > 0)
		return arm(s, store_queue_len(m->store) >= STORE_BATCH ? 0 : STORE_FLUSH_USEC);
	return 0; /* idle until the next row */
}

static int on_prune(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	int r = store_prune(m->store, now_realtime(), STORE_PRUNE_BATCH);

	/* A full batch means more is due: come back soon, not in one go. */
	return arm(s, r == STORE_PRUNE_BATCH ? 200 * 1000ULL : STORE_PRUNE_USEC);
}

void manager_store_flow(struct manager *m, const struct flow *f)
{
	int enabled = SD_EVENT_OFF;

	if (!m->store)
		return;
	store_queue_flow(m->store, f, cgroup_cache_get(m->cgroups, f->ev.cgroup_id));
	(void)sd_event_source_get_enabled(m->store_flush_timer, &enabled);
	if (store_queue_len(m->store) >= STORE_BATCH)
		(void)arm(m->store_flush_timer, 0);
	else if (enabled == SD_EVENT_OFF)
		(void)arm(m->store_flush_timer, STORE_FLUSH_USEC);
}

int manager_store_start(struct manager *m)
{
	struct store_options o = {
		.path = m->cfg.db_path,
		.retain_days = m->cfg.retain_days,
		.retain_rows = m->cfg.retain_rows,
	};
	int r;

	if (!m->cfg.db_path)
		return 0;
	r = store_open(&o, &m->store, m->store_problem, sizeof(m->store_problem));
	if (r < 0) {
		/* Lookups do not need the history: serve without it, loudly. */
		log_error("History store disabled: %s", m->store_problem);
		return 0;
	}
	r = sd_event_add_time_relative(m->event, &m->store_flush_timer, CLOCK_MONOTONIC,
				       STORE_FLUSH_USEC, 10 * 1000, on_flush, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->store_flush_timer, SD_EVENT_OFF);
	if (r >= 0)
		r = sd_event_add_time_relative(m->event, &m->store_prune_timer, CLOCK_MONOTONIC,
					       1000 * 1000ULL, 1000 * 1000ULL, on_prune, m);
	if (r >= 0)
		r = sd_event_source_set_enabled(m->store_prune_timer, SD_EVENT_ONESHOT);
	if (r < 0)
		return log_error_errno(r, "Cannot schedule history writes: %m");
	/* Not open yet (read-only, missing directory): the first flush retries. */
	if (!store_is_open(m->store))
		(void)arm(m->store_flush_timer, STORE_RETRY_USEC);
	log_info("History store: %s (schema %d)", m->cfg.db_path, STORE_SCHEMA_VERSION);
	return 0;
}

void manager_store_stop(struct manager *m)
{
	m->store_flush_timer = sd_event_source_disable_unref(m->store_flush_timer);
	m->store_prune_timer = sd_event_source_disable_unref(m->store_prune_timer);
	if (!m->store)
		return;
	/* Whatever is queued goes to disk before we exit, if the disk lets us. */
	while (store_queue_len(m->store) > 0)
		if (store_flush(m->store, STORE_BATCH) <= 0)
			break;
	if (store_queue_len(m->store) > 0)
		log_warning("History store: %zu rows could not be written before exit",
			    store_queue_len(m->store));
	m->store = store_close(m->store);
}

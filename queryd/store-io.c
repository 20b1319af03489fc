// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The history store seen from the loop: rows are queued for the store's
 * writer thread (batches, retries and pruning happen there, never on the
 * loop), and finished history questions come back through an eventfd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-cache.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "store-io.h"
#include "store.h"

/* The path turned out to be one others control: no more retries, one
 * line said, lookups go on without the history. */
static void store_give_up(struct manager *m)
{
	struct store_stats ss;

	store_get_stats(m->store, &ss);
	snprintf(m->store_problem, sizeof(m->store_problem), "%s", ss.last_error ? ss.last_error : "refused");
	log_error("History store disabled: %s", m->store_problem);
	m->sio.done_io = sd_event_source_disable_unref(m->sio.done_io);
	m->store = store_close(m->store);
}

static int on_store_done(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;

	store_dispatch_done(m->store);
	if (store_refused(m->store))
		store_give_up(m);
	return 0;
}

void store_io_flow(struct manager *m, const struct flow *f)
{
	if (m->store)
		store_queue_flow(m->store, f, cgroup_cache_get(m->cgroups, f->ev.cgroup_id));
}

int store_io_start(struct manager *m)
{
	struct store_options o = {
		.path = m->cfg.db_path,
		.retain_days = m->cfg.retain_days,
		.retain_rows = m->cfg.retain_rows,
	};
	int r;

	if (!m->cfg.db_path)
		return 0;
	o.query_budget_ms = m->cfg.query_budget_ms;
	r = store_open(&o, &m->store, m->store_problem, sizeof(m->store_problem));
	if (r < 0) {
		/* Lookups do not need the history: serve without it, loudly. */
		log_error("History store disabled: %s", m->store_problem);
		return 0;
	}
	r = sd_event_add_io(m->event, &m->sio.done_io, store_done_fd(m->store), EPOLLIN, on_store_done, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the history store: %m");
	log_info("History store: %s (schema %d)", m->cfg.db_path, STORE_SCHEMA_VERSION);
	return 0;
}

void store_io_stop(struct manager *m)
{
	m->sio.done_io = sd_event_source_disable_unref(m->sio.done_io);
	/* the writer writes what is queued before it exits, if the disk lets it */
	m->store = store_close(m->store);
}

static void store_stats_members(const struct store *st, json_object *h)
{
	struct store_stats ss;

	store_get_stats(st, &ss);
	json_add_u64(h, "rows_queued", ss.rows_queued);
	json_add_u64(h, "rows_written", ss.rows_written);
	json_add_u64(h, "rows_dropped", ss.rows_dropped);
	json_add_u64(h, "rows_pruned", ss.rows_pruned);
	json_add_u64(h, "write_errors", ss.write_errors);
	json_add_u64(h, "transactions", ss.transactions);
	json_add_u64(h, "queue", ss.queue_len);
	json_object_object_add(h, "writable", json_object_new_boolean(ss.writable));
	json_object_object_add(h, "open", json_object_new_boolean(store_is_open(st)));
	if (ss.last_error)
		json_object_object_add(h, "last_error", json_object_new_string(ss.last_error));
}

json_object *store_io_stats_to_json(const struct manager *m)
{
	json_object *h = json_object_new_object();

	json_object_object_add(h, "enabled", json_object_new_boolean(m->store != NULL));
	if (m->store)
		store_stats_members(m->store, h);
	else if (m->store_problem[0])
		json_object_object_add(h, "problem", json_object_new_string(m->store_problem));
	return h;
}

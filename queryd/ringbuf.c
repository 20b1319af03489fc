// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Draining the events ring buffer inside the sd-event loop. The kernel
 * side submits without wakeups (a wakeup per event costs ~10 us here) and
 * forces one only past a fill threshold, so we also poll on a short timer.
 *
 * Any local user can fill the rings (a flood of new flows, of DNS
 * packets): one drain takes at most RB_BUDGET events or RB_BUDGET_USEC,
 * then a defer source takes the rest on the next loop pass, behind the
 * clients that were waiting meanwhile.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <bpf/libbpf.h>

#include "cgroup-cache.h"
#include "dns-ingest.h"
#include "docker.h"
#include "exporters.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "ringbuf.h"
#include "server.h"
#include "store-io.h"

#define RB_POLL_USEC (20 * 1000ULL)
#define RB_BUDGET 4096                /* events per pass, both rings */
#define RB_BUDGET_USEC (5 * 1000ULL)  /* time per pass, both rings */
/* the clock is read once every this many events */
#define RB_CLOCK_EVERY 64
/* what a sample callback returns to stop ring_buffer__consume() after it
 * (libbpf has moved the consumer past that sample already) */
#define RB_STOP (-EAGAIN)

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

/* Spend one event of this pass's budget: false once it is gone. */
static bool budget_take(struct ringbuf *rb)
{
	if (rb->budget_left == 0)
		return false;
	rb->budget_left--;
	if (rb->budget_left % RB_CLOCK_EVERY == 0 && now_usec() >= rb->deadline_usec)
		rb->budget_left = 0;
	return rb->budget_left > 0;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct manager *m = ctx;
	const struct cgroup_info *cg;
	struct connpid_event e;
	struct flow *f;

	if (size < sizeof(e))
		return 0; /* from a future layout we cannot read; meta guards this */
	/* Copy out: the ring slot is reused once we return. */
	memcpy(&e, data, sizeof(e));
	m->ring.events_received++;
	if (m->cfg.no_tcp && e.protocol == CONNPID_PROTO_TCP)
		return 0;
	/* Resolve the cgroup now: a container may be gone by the time anyone
	 * asks; and ask Docker now so the answer is ready by then. */
	cg = cgroup_cache_get(m->cgroups, e.cgroup_id);
	if (m->docker && cg && cg->ident.container_id[0])
		docker_want(m->docker, cg->ident.container_id);
	f = flow_index_add(m->flows, &e, monotonic_ns_to_realtime(e.ts_ns));
	/* An accepted connection's peer was not resolved by its process: a
	 * name for it would be a guess. */
	if (f && !f->domain && flow_direction(f) == FLOW_OUTBOUND) {
		flow_set_domain(f, manager_domain_for_event(m, &e));
		/* The answer to its lookup may have reached the DNS ring after
		 * this pass drained it (about 1 flow in 300 under churn): the
		 * history row is written now, so look there once more. No
		 * syscall: an empty ring is one read of its producer position. */
		if (!f->domain && m->ring.rb_dns && ring_buffer__consume(m->ring.rb_dns) > 0)
			flow_set_domain(f, manager_domain_for_event(m, &e));
	}
	if (f) {
		store_io_flow(m, f);
		server_broadcast_flow(m, f);
		manager_export_flow(m, f);
	}
	return 0;
}

static int on_event_budgeted(void *ctx, void *data, size_t size)
{
	struct manager *m = ctx;

	(void)on_event(ctx, data, size);
	return budget_take(&m->ring) ? 0 : RB_STOP;
}

static int on_dns_event_budgeted(void *ctx, void *data, size_t size)
{
	struct manager *m = ctx;

	(void)dns_ingest_event(m, data, size);
	return budget_take(&m->ring) ? 0 : RB_STOP;
}

/* One ring, within its half of the pass's budget (a flood in one ring
 * never starves the other). 1: stopped at it. */
static int drain_one(struct ringbuf *rb, struct ring_buffer *ring)
{
	int r;

	if (!ring)
		return 0;
	rb->budget_left = RB_BUDGET / 2;
	rb->deadline_usec = now_usec() + RB_BUDGET_USEC / 2;
	r = ring_buffer__consume(ring);
	if (r == RB_STOP)
		return 1;
	return r < 0 ? r : 0;
}

static int on_rb_more(sd_event_source *s, void *userdata)
{
	(void)manager_ringbuf_drain(userdata);
	return 0;
}

/* The budget ran out with events left: go on next pass. */
static void drain_later(struct manager *m)
{
	struct ringbuf *rb = &m->ring;

	rb->budget_stops++;
	if (!rb->more && sd_event_add_defer(m->event, &rb->more, on_rb_more, m) < 0)
		return; /* the poll timer takes the rest */
	(void)sd_event_source_set_enabled(rb->more, SD_EVENT_ONESHOT);
}

int manager_ringbuf_drain(struct manager *m)
{
	struct ringbuf *rb = &m->ring;
	int r, r2;

	if (!rb->rb)
		return 0;
	/* DNS first: a flow made right after its lookup finds the answer */
	r = drain_one(rb, rb->rb_dns);
	r2 = drain_one(rb, rb->rb);
	if (r > 0 || r2 > 0)
		drain_later(m);
	return r < 0 ? r : r2 < 0 ? r2 : 0;
}

static int on_rb_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	int r;

	r = manager_ringbuf_drain(m);
	if (r < 0 && r != -EINTR)
		log_warning_errno(r, "Draining the ring buffer failed: %m");
	return 0;
}

static int on_rb_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;

	(void)manager_ringbuf_drain(m);
	return sd_event_source_set_time(s, usec + RB_POLL_USEC);
}

void ringbuf_detach(struct ringbuf *rb)
{
	rb->io = sd_event_source_disable_unref(rb->io);
	rb->dns_io = sd_event_source_disable_unref(rb->dns_io);
	rb->timer = sd_event_source_disable_unref(rb->timer);
	rb->more = sd_event_source_disable_unref(rb->more);
	ring_buffer__free(rb->rb);
	rb->rb = NULL;
	ring_buffer__free(rb->rb_dns);
	rb->rb_dns = NULL;
}

void ringbuf_stats_to_json(const struct ringbuf *rb, json_object *s)
{
	json_add_u64(s, "events_received", rb->events_received);
	json_add_u64(s, "ring_budget_stops", rb->budget_stops);
}

int ringbuf_attach(struct manager *m)
{
	const struct connpid_maps *maps = &m->pins.maps;
	struct ringbuf *rb = &m->ring;
	int r;

	/* One ring_buffer each: a stop at the budget in one ring must not
	 * starve the other (libbpf 1.1 cannot consume a single ring of a
	 * set); both drained together, the DNS ring first, so a flow made
	 * right after its lookup finds the answer already cached. */
	rb->rb = ring_buffer__new(maps->events_fd, on_event_budgeted, m, NULL);
	if (!rb->rb)
		return negative_errno();
	r = sd_event_add_io(m->event, &rb->io, ring_buffer__epoll_fd(rb->rb), EPOLLIN, on_rb_io, m);
	if (r < 0)
		goto fail;
	if (maps->dns_events_fd >= 0 && m->dns) {
		rb->rb_dns = ring_buffer__new(maps->dns_events_fd, on_dns_event_budgeted, m, NULL);
		if (!rb->rb_dns) {
			r = negative_errno();
			goto fail;
		}
		r = sd_event_add_io(m->event, &rb->dns_io, ring_buffer__epoll_fd(rb->rb_dns), EPOLLIN,
				    on_rb_io, m);
		if (r < 0)
			goto fail;
	}
	r = sd_event_add_time_relative(m->event, &rb->timer, CLOCK_MONOTONIC, RB_POLL_USEC,
				       5 * 1000, on_rb_timer, m);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_enabled(rb->timer, SD_EVENT_ON);
	if (r < 0)
		goto fail;
	/* Whatever waited while we were down comes first. */
	(void)manager_ringbuf_drain(m);
	return 0;
fail:
	ringbuf_detach(rb);
	return r;
}

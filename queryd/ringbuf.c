// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Draining the events ring buffer inside the sd-event loop. The kernel
 * side submits without wakeups (a wakeup per event costs ~10 us here) and
 * forces one only past a fill threshold, so we also poll on a short timer.
 */
#include <errno.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <bpf/libbpf.h>

#include "cgroup-cache.h"
#include "docker.h"
#include "log.h"
#include "macro.h"
#include "manager.h"

#define RB_POLL_USEC (20 * 1000ULL)

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
	m->events_received++;
	if (m->cfg.no_tcp && e.protocol == CONNPID_PROTO_TCP)
		return 0;
	/* Resolve the cgroup now: a container may be gone by the time anyone
	 * asks; and ask Docker now so the answer is ready by then. */
	cg = cgroup_cache_get(m->cgroups, e.cgroup_id);
	if (m->docker && cg && cg->ident.container_id[0])
		docker_want(m->docker, cg->ident.container_id);
	f = flow_index_add(m->flows, &e, monotonic_ns_to_realtime(e.ts_ns));
	if (f && !f->domain)
		flow_set_domain(f, manager_domain_for(m, e.pid, e.family, e.dst_ip));
	if (f) {
		manager_store_flow(m, f);
		manager_broadcast_flow(m, f);
	}
	return 0;
}

int manager_ringbuf_drain(struct manager *m)
{
	int r;

	if (!m->rb)
		return 0;
	r = ring_buffer__consume(m->rb);
	return r < 0 ? r : 0;
}

static int on_rb_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	int r;

	r = ring_buffer__poll(m->rb, 0);
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

void manager_ringbuf_detach(struct manager *m)
{
	m->rb_io = sd_event_source_disable_unref(m->rb_io);
	m->rb_timer = sd_event_source_disable_unref(m->rb_timer);
	ring_buffer__free(m->rb);
	m->rb = NULL;
}

int manager_ringbuf_attach(struct manager *m)
{
	int r;

	/* One epoll fd, one drain for both rings; the DNS ring first, so a
	 * flow made right after its lookup finds the answer already cached. */
	if (m->maps.dns_events_fd >= 0 && m->dns) {
		m->rb = ring_buffer__new(m->maps.dns_events_fd, manager_on_dns_event, m, NULL);
		if (!m->rb)
			return negative_errno();
		r = ring_buffer__add(m->rb, m->maps.events_fd, on_event, m);
		if (r < 0)
			goto fail;
	} else {
		m->rb = ring_buffer__new(m->maps.events_fd, on_event, m, NULL);
		if (!m->rb)
			return negative_errno();
	}
	r = sd_event_add_io(m->event, &m->rb_io, ring_buffer__epoll_fd(m->rb), EPOLLIN, on_rb_io, m);
	if (r < 0)
		goto fail;
	r = sd_event_add_time_relative(m->event, &m->rb_timer, CLOCK_MONOTONIC, RB_POLL_USEC,
				       5 * 1000, on_rb_timer, m);
	if (r < 0)
		goto fail;
	r = sd_event_source_set_enabled(m->rb_timer, SD_EVENT_ON);
	if (r < 0)
		goto fail;
	/* Whatever waited while we were down comes first. */
	(void)manager_ringbuf_drain(m);
	return 0;
fail:
	manager_ringbuf_detach(m);
	return r;
}

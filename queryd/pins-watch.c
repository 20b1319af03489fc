// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Opening the loader's pins, and noticing when they change: queryd may
 * start before the loader, and a reload replaces every map. Checked once a
 * second against the id of the pinned meta map.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "pins-watch.h"
#include "ringbuf.h"

#define PINS_CHECK_USEC (1000 * 1000ULL)

static int pinned_meta_id(const char *pin_dir, __u32 *ret)
{
	return connpid_meta_read(pin_dir, NULL, ret);
}

void pins_watch_init(struct pins_watch *p)
{
	connpid_maps_init(&p->maps);
}

void pins_watch_close(struct manager *m)
{
	ringbuf_detach(&m->ring);
	if (m->procs)
		proc_cache_set_exec_map(m->procs, -EBADF);
	connpid_maps_close(&m->pins.maps);
	m->pins.open = false;
	m->pins.meta_map_id = 0;
}

int pins_watch_open(struct manager *m)
{
	struct pins_watch *p = &m->pins;
	char err[512] = "";
	__u32 id = 0;
	int r;

	connpid_maps_init(&p->maps);
	r = connpid_maps_open(m->cfg.pin_dir, &p->maps, CONNPID_MAPS_EVENTS, err, sizeof(err));
	if (r < 0) {
		/* Said once per change of reason, not once a second. */
		if (strcmp(err, p->problem) != 0)
			log_warning("Pins not usable yet: %s", err);
		snprintf(p->problem, sizeof(p->problem), "%s", err);
		return r;
	}
	r = pinned_meta_id(m->cfg.pin_dir, &id);
	if (r < 0) {
		connpid_maps_close(&p->maps);
		return r;
	}
	r = ringbuf_attach(m);
	if (r < 0) {
		connpid_maps_close(&p->maps);
		snprintf(p->problem, sizeof(p->problem), "cannot consume the events ring buffer: %s", strerror(-r));
		return log_error_errno(r, "Cannot consume %s/events: %m", m->cfg.pin_dir);
	}
	p->open = true;
	p->meta_map_id = id;
	proc_cache_set_exec_map(m->procs, p->maps.exec_info_fd);
	p->problem[0] = '\0';
	log_info("Using pins in %s (ABI %u, loader %s)", m->cfg.pin_dir, p->maps.meta.abi_version,
		 p->maps.meta.version);
	return 0;
}

/* A later loader run may add the DNS object to pins made with --no-dns:
 * same meta map, one more ring to drain. */
static bool dns_pins_appeared(struct manager *m)
{
	char path[PATH_MAX];

	if (!m->pins.open || !m->dns || m->pins.maps.dns_events_fd >= 0)
		return false;
	if (pin_path(path, sizeof(path), m->cfg.pin_dir, NULL, "dns_events") < 0)
		return false;
	return access(path, F_OK) == 0;
}

static int on_pins_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;
	bool dns_new;
	__u32 id = 0;
	int r;

	r = pinned_meta_id(m->cfg.pin_dir, &id);
	dns_new = r >= 0 && dns_pins_appeared(m);
	if (m->pins.open && (r < 0 || id != m->pins.meta_map_id || dns_new)) {
		log_warning("Pins in %s were %s; reopening", m->cfg.pin_dir,
			    r < 0 ? "removed" : dns_new ? "extended with the DNS programs" : "replaced by a new load");
		/* What is still waiting in the old ring belongs to flows we want. */
		(void)manager_ringbuf_drain(m);
		pins_watch_close(m);
		snprintf(m->pins.problem, sizeof(m->pins.problem),
			 "connpid is not loaded in %s", m->cfg.pin_dir);
	}
	if (!m->pins.open)
		(void)pins_watch_open(m);
	return sd_event_source_set_time(s, usec + PINS_CHECK_USEC);
}

int pins_watch_start(struct manager *m)
{
	int r;

	r = sd_event_add_time_relative(m->event, &m->pins.timer, CLOCK_MONOTONIC,
				       PINS_CHECK_USEC, 100 * 1000, on_pins_timer, m);
	if (r < 0)
		return log_error_errno(r, "Cannot add pins timer: %m");
	return sd_event_source_set_enabled(m->pins.timer, SD_EVENT_ON);
}

void pins_watch_free(struct manager *m)
{
	m->pins.timer = sd_event_source_disable_unref(m->pins.timer);
	pins_watch_close(m);
}

static void map_fill_to_json(json_object *s, const char *entries, const char *percent, int fd, __u32 max)
{
	__u32 n = 0;

	if (connpid_map_count_entries(fd, &n) != 0)
		return;
	json_add_u64(s, entries, n);
	json_object_object_add(s, percent, max ? json_object_new_double(100.0 * n / max) : NULL);
}

void pins_stats_to_json(const struct pins_watch *p, json_object *s, json_object *k)
{
	static const char *const names[CONNPID_STAT_MAX] = {
		[CONNPID_STAT_EVENTS] = "events",
		[CONNPID_STAT_RINGBUF_DROPS] = "ringbuf_drops",
		[CONNPID_STAT_MAP_UPDATE_ERRORS] = "map_update_errors",
		[CONNPID_STAT_FLOWS_V4] = "flows_v4",
		[CONNPID_STAT_FLOWS_V6] = "flows_v6",
		[CONNPID_STAT_REPEATS] = "repeats",
		[CONNPID_STAT_BLOCKED_V6] = "blocked_v6",
		[CONNPID_STAT_DNS_PACKETS] = "dns_packets",
		[CONNPID_STAT_DNS_DROPS] = "dns_drops",
		[CONNPID_STAT_GAI_CALLS] = "getaddrinfo_calls",
		[CONNPID_STAT_ACCEPTS] = "accepts",
	};

	json_object_object_add(s, "loaded", json_object_new_boolean(p->open));
	if (!p->open)
		return;
	for (__u32 i = 0; i < CONNPID_STAT_MAX; i++) {
		__u64 v = 0;

		if (connpid_stats_read(p->maps.stats_fd, i, &v) == 0)
			json_add_u64(k, names[i], v);
	}
	map_fill_to_json(s, "map_v4_entries", "map_v4_fill_percent", p->maps.v4_fd, p->maps.v4_max_entries);
	map_fill_to_json(s, "map_v6_entries", "map_v6_fill_percent", p->maps.v6_fd, p->maps.v6_max_entries);
}

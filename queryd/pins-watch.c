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

#include "log.h"
#include "macro.h"
#include "manager.h"

#define PINS_CHECK_USEC (1000 * 1000ULL)

static int pinned_meta_id(const char *pin_dir, __u32 *ret)
{
	return connpid_meta_read(pin_dir, NULL, ret);
}

void manager_close_pins(struct manager *m)
{
	manager_ringbuf_detach(m);
	if (m->procs)
		proc_cache_set_exec_map(m->procs, -EBADF);
	connpid_maps_close(&m->maps);
	m->maps_open = false;
	m->meta_map_id = 0;
}

int manager_open_pins(struct manager *m)
{
	char err[512] = "";
	__u32 id = 0;
	int r;

	connpid_maps_init(&m->maps);
	r = connpid_maps_open(m->cfg.pin_dir, &m->maps, CONNPID_MAPS_EVENTS, err, sizeof(err));
	if (r < 0) {
		/* Said once per change of reason, not once a second. */
		if (strcmp(err, m->maps_problem) != 0)
			log_warning("Pins not usable yet: %s", err);
		snprintf(m->maps_problem, sizeof(m->maps_problem), "%s", err);
		return r;
	}
	r = pinned_meta_id(m->cfg.pin_dir, &id);
	if (r < 0) {
		connpid_maps_close(&m->maps);
		return r;
	}
	r = manager_ringbuf_attach(m);
	if (r < 0) {
		connpid_maps_close(&m->maps);
		snprintf(m->maps_problem, sizeof(m->maps_problem),
			 "cannot consume the events ring buffer: %s", strerror(-r));
		return log_error_errno(r, "Cannot consume %s/events: %m", m->cfg.pin_dir);
	}
	m->maps_open = true;
	m->meta_map_id = id;
	proc_cache_set_exec_map(m->procs, m->maps.exec_info_fd);
	m->maps_problem[0] = '\0';
	log_info("Using pins in %s (ABI %u, loader %s)", m->cfg.pin_dir,
		 m->maps.meta.abi_version, m->maps.meta.version);
	return 0;
}

/* A later loader run may add the DNS object to pins made with --no-dns:
 * same meta map, one more ring to drain. */
static bool dns_pins_appeared(struct manager *m)
{
	char path[PATH_MAX];

	if (!m->maps_open || !m->dns || m->maps.dns_events_fd >= 0)
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
	if (m->maps_open && (r < 0 || id != m->meta_map_id || dns_new)) {
		log_warning("Pins in %s were %s; reopening", m->cfg.pin_dir,
			    r < 0 ? "removed" : dns_new ? "extended with the DNS programs" : "replaced by a new load");
		/* What is still waiting in the old ring belongs to flows we want. */
		(void)manager_ringbuf_drain(m);
		manager_close_pins(m);
		snprintf(m->maps_problem, sizeof(m->maps_problem),
			 "connpid is not loaded in %s", m->cfg.pin_dir);
	}
	if (!m->maps_open)
		(void)manager_open_pins(m);
	return sd_event_source_set_time(s, usec + PINS_CHECK_USEC);
}

int manager_watch_pins(struct manager *m)
{
	int r;

	r = sd_event_add_time_relative(m->event, &m->pins_timer, CLOCK_MONOTONIC,
				       PINS_CHECK_USEC, 100 * 1000, on_pins_timer, m);
	if (r < 0)
		return log_error_errno(r, "Cannot add pins timer: %m");
	return sd_event_source_set_enabled(m->pins_timer, SD_EVENT_ON);
}

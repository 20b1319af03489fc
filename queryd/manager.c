// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "log.h"
#include "macro.h"
#include "cgroup-cache.h"
#include "dns-cache.h"
#include "docker.h"
#include "exporters.h"
#include "manager.h"

#define STATUS_USEC (5 * 1000 * 1000ULL)

double now_realtime(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bpf_ktime_get_ns() is CLOCK_MONOTONIC: place an event on the wall clock
 * by its age, so what is drained late keeps the time it happened. */
double monotonic_ns_to_realtime(__u64 ns)
{
	struct timespec mono;
	double age;

	clock_gettime(CLOCK_MONOTONIC, &mono);
	age = ((double)mono.tv_sec * 1e9 + (double)mono.tv_nsec - (double)ns) / 1e9;
	return now_realtime() - (age > 0 ? age : 0);
}

int manager_new(const struct manager_config *cfg, struct manager **ret)
{
	struct manager *m;
	int r;

	/* Answers and output buffers of up to a few MiB come and go with
	 * clients: from mmap() they return to the system when freed. glibc
	 * would otherwise raise this threshold after the first such free and
	 * keep them in a heap that fragmentation stops from shrinking. */
	(void)mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	server_init(&m->server);
	pins_watch_init(&m->pins);
	r = sd_event_default(&m->event);
	if (r < 0)
		goto fail;
	r = proc_cache_new(m->event, &m->procs);
	if (r < 0)
		goto fail;
	r = flow_index_new(cfg->max_flows, m->procs, &m->flows);
	if (r < 0)
		goto fail;
	r = cgroup_cache_new(&m->cgroups);
	if (r < 0)
		goto fail;
	if (!cfg->no_dns) {
		r = dns_cache_new(32768, &m->dns);
		if (r < 0)
			goto fail;
	}
	if (cfg->docker_socket) {
		r = docker_new(m->event, cfg->docker_socket, &m->docker);
		if (r < 0)
			goto fail;
	}
	r = exporters_new(m->event, cfg, &m->exporters);
	if (r < 0)
		goto fail;
	*ret = m;
	return 0;
fail:
	manager_free(m);
	return r;
}

struct manager *manager_free(struct manager *m)
{
	if (!m)
		return NULL;
	server_close_clients(&m->server);
	m->slow = slow_queue_free(m->slow);
	m->status_timer = sd_event_source_disable_unref(m->status_timer);
	pins_watch_free(m);
	store_io_stop(m);
	/* last: the socket is not taken over while the store still writes */
	server_free(m);
	flow_index_free(m->flows);
	cgroup_cache_free(m->cgroups);
	m->exporters = exporters_free(m->exporters);
	docker_free(m->docker);
	dns_cache_free(m->dns);
	proc_cache_free(m->procs);
	sd_event_unref(m->event);
	free(m);
	return NULL;
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;

	(void)sd_notifyf(false, "STATUS=%s: %llu events, %zu flows indexed, %zu clients, %llu lookups",
			 m->pins.open ? "Serving" : "Waiting for pins",
			 (unsigned long long)m->ring.events_received, flow_index_size(m->flows),
			 m->server.n_clients, (unsigned long long)m->lookups);
	return sd_event_source_set_time(s, usec + STATUS_USEC);
}

static int on_stop_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct manager *m = userdata;

	(void)sd_notify(false, "STOPPING=1");
	log_info("Stopping on signal %u", si->ssi_signo);
	return sd_event_exit(m->event, 0);
}

static int on_stop_watchdog(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;

	log_warning("Test hook: no more watchdog pings");
	return sd_event_set_watchdog(m->event, false);
}

/* Test-only: CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC=N stops the pings so a
 * test can watch systemd restart us. */
static int setup_test_watchdog_stop(struct manager *m)
{
	const char *e = getenv("CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC");
	char *end;
	unsigned long sec;

	if (!e)
		return 0;
	errno = 0;
	sec = strtoul(e, &end, 10);
	if (errno || *end || !*e)
		return log_error_errno(-EINVAL, "Invalid CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC '%s'", e);
	return sd_event_add_time_relative(m->event, NULL, CLOCK_MONOTONIC, sec * 1000000ULL, 0,
					  on_stop_watchdog, m);
}

static void read_boot_id(struct manager *m)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	if (!f || !fgets(m->boot_id, sizeof(m->boot_id), f))
		m->boot_id[0] = '\0';
	m->boot_id[strcspn(m->boot_id, "\n")] = '\0';
}

/* SIGTERM and SIGINT stop the loop; SIGPIPE is ignored (send() says EPIPE). */
static int setup_signals(struct manager *m)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return log_error_errno(negative_errno(), "sigprocmask(): %m");
	signal(SIGPIPE, SIG_IGN);
	r = sd_event_add_signal(m->event, NULL, SIGTERM, on_stop_signal, m);
	if (r >= 0)
		r = sd_event_add_signal(m->event, NULL, SIGINT, on_stop_signal, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch signals: %m");
	return 0;
}

int manager_startup(struct manager *m)
{
	int r;

	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &m->started_mono_us);
	r = setup_signals(m);
	if (r < 0)
		return r;
	/* Sends WATCHDOG=1 at half of WATCHDOG_USEC when the unit asks for it. */
	r = sd_event_set_watchdog(m->event, true);
	if (r < 0)
		return log_error_errno(r, "Cannot enable the watchdog: %m");
	r = setup_test_watchdog_stop(m);
	if (r < 0)
		return r;
	server_resolve_allow_group(&m->server, m->cfg.allow_group);
	read_boot_id(m);

	r = store_io_start(m);
	if (r < 0)
		return r;
	r = server_listen(m);
	if (r < 0)
		return r;
	/* Not loaded yet is not fatal: we keep serving and say why. */
	(void)pins_watch_open(m);
	r = pins_watch_start(m);
	if (r < 0)
		return r;
	r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC, 0, 0,
				       on_status_timer, m);
	if (r < 0)
		return log_error_errno(r, "Cannot add status timer: %m");
	r = sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
	if (r < 0)
		return log_error_errno(r, "Cannot enable status timer: %m");
	(void)sd_notify(false, "READY=1");
	return 0;
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* With --busy-poll-us, the loop polls without sleeping for that long
 * after the last request: a client on another CPU then wakes nobody (on
 * a VM, waking a halted vCPU is most of a cross-CPU round trip,
 * tests/bench/RESULTS.md). Only requests of callers that may query start
 * it: ring events, timers and pings of anyone never keep the loop awake. */
int manager_run(struct manager *m)
{
	uint64_t last_request = 0, seen = m->requests_may_query;
	int r;

	if (!m->cfg.busy_poll_us)
		r = sd_event_loop(m->event);
	else
		for (r = 0; r >= 0 && sd_event_get_state(m->event) != SD_EVENT_FINISHED;) {
			bool spin = now_us() - last_request < m->cfg.busy_poll_us;

			r = sd_event_run(m->event, spin ? 0 : UINT64_MAX);
			/* a client on this CPU gets it at once: without the
			 * yield, a client that spins too waited out our spin
			 * (lookup p50 11 -> 62 us, RESULTS.md) */
			if (spin && r == 0)
				(void)sched_yield();
			if (m->requests_may_query != seen) {
				seen = m->requests_may_query;
				last_request = now_us();
			}
		}
	if (r >= 0 && m->cfg.busy_poll_us)
		(void)sd_event_get_exit_code(m->event, &r); /* as sd_event_loop() returns */
	if (r < 0)
		return log_error_errno(r, "Event loop failed: %m");
	return 0;
}

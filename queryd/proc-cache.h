/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Processes behind live flows, read from /proc once per process (pid +
 * start time) and shared by every flow of that process. Entries live as
 * long as a flow holds them, so exe and cmdline outlive the process.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>
#include <systemd/sd-event.h>

#include "htable.h"

struct proc_entry {
	struct hnode node;    /* in the cache's table, by (pid, start) */
	unsigned refs;
	pid_t pid;
	pid_t ppid;
	__u64 start_ticks;
	bool enriched;        /* /proc was read while it lived */
	bool exe_from_exec;   /* exe known only from the exec hook: process was gone */
	char *exe;            /* NULL when unknown */
	char *cmdline;        /* NUL-separated args */
	size_t cmdline_len;
	char *user;           /* name of the uid /proc showed, NULL if none */
	char *cmdline_json;   /* the history's rendering, made once per process */
	/* A pidfd tells exit without a /proc read per answer, and never
	 * points at a reused pid; -EBADF when it could not be had. */
	int pidfd;
	sd_event_source *exit_source;
	bool exited;
};

struct proc_cache;

/* With an event loop, exits are noticed through pidfds. */
int proc_cache_new(sd_event *event, struct proc_cache **ret);
struct proc_cache *proc_cache_free(struct proc_cache *c);

/* A reference to the entry for (pid, start); reads /proc on first sight.
 * Never fails for lack of /proc data: the entry is then not enriched. */
struct proc_entry *proc_cache_get(struct proc_cache *c, pid_t pid, __u64 start_ticks);
void proc_entry_unref(struct proc_cache *c, struct proc_entry *e);
size_t proc_cache_size(const struct proc_cache *c);
/* Is this still the process we captured? 1 alive, 0 exited, and
 * *ret_reused set when its pid now names another process. */
int proc_entry_alive(const struct proc_entry *e, bool *ret_reused);
/* The pinned exec_info map, consulted when /proc is too late (-EBADF: none). */
void proc_cache_set_exec_map(struct proc_cache *c, int fd);
/* /proc reads done since start (each a new process). */
__u64 proc_cache_reads(const struct proc_cache *c);

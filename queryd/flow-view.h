/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one FLOW shape (connpid(7) "FLOW", schema FLOW_SCHEMA_VERSION):
 * live answers, watch events, history rows and the exports built on them
 * all come out of flow_view_write(). A view holds values already looked
 * up, so it is filled where the facts are (flow-json.c from a live flow
 * and the manager's caches; store-read.c from a history row, on the
 * reader thread) and written here, in one order, by one set of rules.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/types.h>

#include "connpid.h"
#include "jsonw.h"

/* The FLOW shape's version, answered by "ping": raised when a member
 * changes its name, type or nesting (never for a member added). 2: one
 * shape for live flows and history rows (issue 18). */
#define FLOW_SCHEMA_VERSION 2

/* The members of a FLOW (man/connpid.7), one bit each, in FLOW order: a
 * "fields" list in a request becomes a mask of them. */
enum flow_field {
	FF_PROTO, FF_DIRECTION, FF_FAMILY, FF_SRC, FF_SPORT, FF_DST, FF_DPORT, FF_COMMUNITY_ID,
	FF_PID, FF_TID, FF_UID, FF_GID, FF_USER, FF_COMM, FF_EXE, FF_CMDLINE, FF_PPID,
	FF_CGROUP_ID, FF_CGROUP, FF_UNIT, FF_SLICE, FF_USER_UNIT, FF_POD_UID, FF_CONTAINER,
	FF_NETNS, FF_SOCKET_COOKIE, FF_START_TIME, FF_BOOT_ID, FF_FIRST_SEEN, FF_LAST_SEEN,
	FF_ALIVE, FF_PID_REUSED, FF_PREVIOUS_PID, FF_EXE_SOURCE, FF_ANCESTORS, FF_CREATOR,
	FF_LISTENER, FF_DOMAIN, FF_SEEN, FF_IN_MAP,
	_FF_MAX,
};
#define FLOW_FIELDS_ALL ((UINT64_C(1) << _FF_MAX) - 1)
#define FF_BIT(b) (UINT64_C(1) << (b))

/* A member's bit for its name ("pid"), -1 for no member. */
int flow_field_of(const char *name);

/* A process a FLOW names besides its owner: an ancestor, the creator or
 * the listener. */
struct flow_view_proc {
	int64_t pid;
	const char *comm;          /* not NUL-terminated past comm_len */
	size_t comm_len;
	bool has_start_time;
	int64_t start_time;        /* clock ticks since boot */
	bool has_same_process;     /* the creator's */
	bool same_process;
};

struct flow_view {
	/* FF_* bits of members the flow does not have: not written at all;
	 * and of integer members that are unknown: written as null (a NULL
	 * string is null by itself). */
	uint64_t absent, null;

	const char *proto, *direction, *family, *src, *dst, *community_id;
	int64_t sport, dport, pid, tid, uid, gid, ppid;
	const char *user, *exe, *exe_source, *boot_id, *seen;
	const char *comm;          /* not NUL-terminated past comm_len */
	size_t comm_len;
	const char *cmdline;       /* NUL-separated arguments */
	size_t cmdline_len;
	int64_t cgroup_id, netns, socket_cookie, start_time, previous_pid;
	/* NULL cgroup: unit, slice, user_unit, pod_uid and container are
	 * not written (the path was not resolved, or is not stored) */
	const char *cgroup, *unit, *slice, *user_unit, *pod_uid;
	struct {
		const char *id;    /* NULL: "container":null */
		const char *runtime, *name, *image; /* NULL: not written */
		/* writes what the runtime knows instead of name/image */
		void (*describe)(void *ctx, const char *id, struct jsonw *w);
		void *describe_ctx;
	} container;
	double first_seen, last_seen;
	bool alive, pid_reused, in_map;
	struct flow_view_proc ancestors[CONNPID_ANCESTORS];
	size_t n_ancestors;
	/* creator (outbound) or listener (inbound); pid 0: null */
	struct flow_view_proc creator, listener;
	struct {
		const char *name;  /* NULL: "domain":null */
		bool name_only;    /* all a history row knows */
		const char *source, *via, *asked_by;
		const char *chain; /* "a -> b -> c" */
		int64_t ttl;
		double age_seconds;
	} domain;
	/* a history row's id: written last, whatever fields asks */
	bool has_row_id;
	int64_t row_id;
};

/* The FLOW object of v into w: the members fields names that v has, in
 * FLOW order. */
void flow_view_write(struct jsonw *w, const struct flow_view *v, uint64_t fields);

// SPDX-License-Identifier: GPL-2.0-or-later
#include <string.h>

#include "flow-view.h"
#include "macro.h"

static const char *const field_names[_FF_MAX] = {
	[FF_PROTO] = "proto", [FF_DIRECTION] = "direction", [FF_FAMILY] = "family", [FF_SRC] = "src",
	[FF_SPORT] = "sport", [FF_DST] = "dst", [FF_DPORT] = "dport", [FF_COMMUNITY_ID] = "community_id",
	[FF_PID] = "pid", [FF_TID] = "tid", [FF_UID] = "uid", [FF_GID] = "gid", [FF_USER] = "user",
	[FF_COMM] = "comm", [FF_EXE] = "exe", [FF_CMDLINE] = "cmdline", [FF_PPID] = "ppid",
	[FF_CGROUP_ID] = "cgroup_id", [FF_CGROUP] = "cgroup", [FF_UNIT] = "unit", [FF_SLICE] = "slice",
	[FF_USER_UNIT] = "user_unit", [FF_POD_UID] = "pod_uid", [FF_CONTAINER] = "container",
	[FF_NETNS] = "netns", [FF_SOCKET_COOKIE] = "socket_cookie", [FF_START_TIME] = "start_time",
	[FF_BOOT_ID] = "boot_id", [FF_FIRST_SEEN] = "first_seen", [FF_LAST_SEEN] = "last_seen",
	[FF_ALIVE] = "alive", [FF_PID_REUSED] = "pid_reused", [FF_PREVIOUS_PID] = "previous_pid",
	[FF_EXE_SOURCE] = "exe_source", [FF_ANCESTORS] = "ancestors", [FF_CREATOR] = "creator",
	[FF_LISTENER] = "listener", [FF_DOMAIN] = "domain", [FF_SEEN] = "seen", [FF_IN_MAP] = "in_map",
};

int flow_field_of(const char *name)
{
	/* the first byte first: a few strcmp() per name instead of 40 */
	for (int i = 0; i < _FF_MAX; i++)
		if (field_names[i][0] == name[0] && streq(field_names[i], name))
			return i;
	return -1;
}

/* Only the members asked for and present; the key is the member's name. */
static bool key(struct jsonw *w, uint64_t want, enum flow_field b)
{
	if (!(want & FF_BIT(b)))
		return false;
	jw_key(w, field_names[b]);
	return true;
}

static void w_str(struct jsonw *w, uint64_t want, enum flow_field b, const char *s)
{
	if (key(w, want, b))
		jw_str(w, s);
}

static void w_int(struct jsonw *w, const struct flow_view *v, uint64_t want, enum flow_field b, int64_t n)
{
	if (!key(w, want, b))
		return;
	if (v->null & FF_BIT(b))
		jw_null(w);
	else
		jw_int(w, n);
}

static void w_proc(struct jsonw *w, const struct flow_view_proc *p)
{
	if (!p->pid) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kint(w, "pid", p->pid);
	jw_key(w, "comm");
	jw_strn(w, p->comm ? p->comm : "", p->comm ? p->comm_len : 0);
	if (p->has_start_time)
		jw_kint(w, "start_time", p->start_time);
	if (p->has_same_process)
		jw_kbool(w, "same_process", p->same_process);
	jw_obj_end(w);
}

static void w_cmdline(struct jsonw *w, const struct flow_view *v)
{
	jw_arr_begin(w);
	for (size_t i = 0; v->cmdline && i < v->cmdline_len;) {
		size_t n = strnlen(v->cmdline + i, v->cmdline_len - i);

		jw_strn(w, v->cmdline + i, n);
		i += n + 1;
	}
	jw_arr_end(w);
}

static void w_container(struct jsonw *w, const struct flow_view *v)
{
	if (!v->container.id) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kstr(w, "id", v->container.id);
	if (v->container.runtime)
		jw_kstr(w, "runtime", v->container.runtime);
	if (v->container.describe)
		v->container.describe(v->container.describe_ctx, v->container.id, w);
	if (!v->container.describe && v->container.name)
		jw_kstr(w, "name", v->container.name);
	if (!v->container.describe && v->container.image)
		jw_kstr(w, "image", v->container.image);
	jw_obj_end(w);
}

/* What the cgroup's path names; nothing of it when the path is unknown. */
static void w_cgroup(struct jsonw *w, const struct flow_view *v, uint64_t want)
{
	w_str(w, want, FF_CGROUP, v->cgroup);
	if (!v->cgroup)
		return;
	w_str(w, want, FF_UNIT, v->unit);
	w_str(w, want, FF_SLICE, v->slice);
	w_str(w, want, FF_USER_UNIT, v->user_unit);
	w_str(w, want, FF_POD_UID, v->pod_uid);
	if (key(w, want, FF_CONTAINER))
		w_container(w, v);
}

static void w_ancestors(struct jsonw *w, const struct flow_view *v)
{
	jw_arr_begin(w);
	for (size_t i = 0; i < v->n_ancestors && i < ARRAY_SIZE(v->ancestors); i++)
		w_proc(w, &v->ancestors[i]);
	jw_arr_end(w);
}

static void w_domain(struct jsonw *w, const struct flow_view *v)
{
	if (!v->domain.name) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kstr(w, "name", v->domain.name);
	if (v->domain.name_only) {
		jw_obj_end(w);
		return;
	}
	jw_kstr(w, "source", v->domain.source);
	jw_kstr(w, "via", v->domain.via);
	jw_key(w, "cname_chain");
	jw_arr_begin(w);
	/* stored as "a -> b -> c" */
	for (const char *p = v->domain.chain; p && *p;) {
		const char *arrow = strstr(p, " -> ");
		size_t n = arrow ? (size_t)(arrow - p) : strlen(p);

		jw_strn(w, p, n);
		p += n + (arrow ? 4 : 0);
	}
	jw_arr_end(w);
	jw_kstr(w, "asked_by", v->domain.asked_by);
	jw_kint(w, "ttl", v->domain.ttl);
	jw_key(w, "age_seconds");
	jw_double(w, v->domain.age_seconds);
	jw_obj_end(w);
}

/* proto .. ppid: the addresses, then who. */
static void w_who(struct jsonw *w, const struct flow_view *v, uint64_t want)
{
	w_str(w, want, FF_PROTO, v->proto);
	w_str(w, want, FF_DIRECTION, v->direction);
	w_str(w, want, FF_FAMILY, v->family);
	w_str(w, want, FF_SRC, v->src);
	w_int(w, v, want, FF_SPORT, v->sport);
	w_str(w, want, FF_DST, v->dst);
	w_int(w, v, want, FF_DPORT, v->dport);
	w_str(w, want, FF_COMMUNITY_ID, v->community_id);
	w_int(w, v, want, FF_PID, v->pid);
	w_int(w, v, want, FF_TID, v->tid);
	w_int(w, v, want, FF_UID, v->uid);
	w_int(w, v, want, FF_GID, v->gid);
	w_str(w, want, FF_USER, v->user);
	if (key(w, want, FF_COMM))
		jw_strn(w, v->comm ? v->comm : "", v->comm ? v->comm_len : 0);
	w_str(w, want, FF_EXE, v->exe);
	if (key(w, want, FF_CMDLINE))
		w_cmdline(w, v);
	w_int(w, v, want, FF_PPID, v->ppid);
}

void flow_view_write(struct jsonw *w, const struct flow_view *v, uint64_t fields)
{
	uint64_t want = fields & ~v->absent;

	jw_obj_begin(w);
	w_who(w, v, want);
	w_int(w, v, want, FF_CGROUP_ID, v->cgroup_id);
	w_cgroup(w, v, want);
	w_int(w, v, want, FF_NETNS, v->netns);
	w_int(w, v, want, FF_SOCKET_COOKIE, v->socket_cookie);
	w_int(w, v, want, FF_START_TIME, v->start_time);
	w_str(w, want, FF_BOOT_ID, v->boot_id);
	if (key(w, want, FF_FIRST_SEEN))
		jw_double(w, v->first_seen);
	if (key(w, want, FF_LAST_SEEN))
		jw_double(w, v->last_seen);
	if (key(w, want, FF_ALIVE))
		jw_bool(w, v->alive);
	if (key(w, want, FF_PID_REUSED))
		jw_bool(w, v->pid_reused);
	w_int(w, v, want, FF_PREVIOUS_PID, v->previous_pid);
	w_str(w, want, FF_EXE_SOURCE, v->exe_source);
	if (key(w, want, FF_ANCESTORS))
		w_ancestors(w, v);
	if (key(w, want, FF_CREATOR))
		w_proc(w, &v->creator);
	if (key(w, want, FF_LISTENER))
		w_proc(w, &v->listener);
	if (key(w, want, FF_DOMAIN))
		w_domain(w, v);
	w_str(w, want, FF_SEEN, v->seen);
	if (key(w, want, FF_IN_MAP))
		jw_bool(w, v->in_map);
	if (v->has_row_id)
		jw_kint(w, "row_id", v->row_id);
	jw_obj_end(w);
}

// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cgroup-cache.h"
#include "dns-cache.h"
#include "dns-ingest.h"
#include "docker.h"
#include "flow-json.h"
#include "jsonutil.h"
#include "jsonw.h"
#include "macro.h"
#include "manager.h"
#include "procinfo.h"

#define WANT(fields, b) (((fields) >> (b)) & 1)
#define CGROUP_FIELDS (UINT64_C(1) << FF_CGROUP | UINT64_C(1) << FF_UNIT | UINT64_C(1) << FF_SLICE | \
		       UINT64_C(1) << FF_USER_UNIT | UINT64_C(1) << FF_POD_UID | UINT64_C(1) << FF_CONTAINER)

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

static void add_int(json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static json_object *cmdline_array(const char *cmd, size_t len)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; cmd && i < len;) {
		size_t n = strnlen(cmd + i, len - i);

		json_object_array_add(a, json_object_new_string_len(cmd + i, (int)n));
		i += n + 1;
	}
	return a;
}

static void add_user(json_object *o, uid_t uid)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		add_str(o, "user", res->pw_name);
	else
		json_object_object_add(o, "user", NULL);
}

/* From here on: flows as they are answered, through the streaming writer. */

static void w_nonempty(struct jsonw *w, const char *k, const char *v)
{
	jw_kstr(w, k, v && v[0] ? v : NULL);
}

static void w_comm(struct jsonw *w, const char *k, const char *comm)
{
	jw_key(w, k);
	jw_strn(w, comm, strnlen(comm, CONNPID_COMM_LEN));
}

static void w_user(struct jsonw *w, const struct flow *f)
{
	struct passwd pw, *res = NULL;
	char buf[1024];

	/* The name was looked up once per process, not per answer. */
	if (flow_proc(f) && flow_proc(f)->user) {
		jw_kstr(w, "user", flow_proc(f)->user);
		return;
	}
	if (getpwuid_r(f->who ? f->who->k.uid : 0, &pw, buf, sizeof(buf), &res) == 0 && res)
		jw_kstr(w, "user", res->pw_name);
	else
		jw_kstr(w, "user", NULL);
}

static void w_cmdline(struct jsonw *w, const struct proc_entry *p)
{
	jw_key(w, "cmdline");
	jw_arr_begin(w);
	for (size_t i = 0; p && p->cmdline && i < p->cmdline_len;) {
		size_t n = strnlen(p->cmdline + i, p->cmdline_len - i);

		jw_strn(w, p->cmdline + i, n);
		i += n + 1;
	}
	jw_arr_end(w);
}

/* Alive means the pid still runs the process we captured. */
static void w_liveness(struct jsonw *w, const struct flow *f, uint64_t fields)
{
	__u64 now_ticks = 0, start = boottime_ns_to_ticks(f->who ? f->who->k.start_boottime_ns : 0);
	bool reused = false;
	int r, alive;

	if (flow_proc(f)) {
		alive = proc_entry_alive(flow_proc(f), &reused);
	} else {
		r = procinfo_start_ticks((pid_t)f->ev.pid, &now_ticks);
		alive = r == 0 && now_ticks == start;
		reused = r == 0 && !alive;
	}
	if (WANT(fields, FF_ALIVE))
		jw_kbool(w, "alive", alive);
	if (WANT(fields, FF_PID_REUSED))
		jw_kbool(w, "pid_reused", reused);
}

/* cgroup path and who it belongs to: unit, slice, container, pod. */
static void w_cgroup(struct jsonw *w, struct manager *m, __u64 cgroup_id, uint64_t fields)
{
	const struct cgroup_info *cg = cgroup_cache_get(m->cgroups, cgroup_id);
	const struct cgroup_identity *id;

	if (!cg || !cg->resolved) {
		/* as before: the members it has not, absent; cgroup null */
		if (WANT(fields, FF_CGROUP))
			jw_kstr(w, "cgroup", NULL);
		return;
	}
	id = &cg->ident;
	if (WANT(fields, FF_CGROUP))
		jw_kstr(w, "cgroup", cg->path);
	if (WANT(fields, FF_UNIT))
		w_nonempty(w, "unit", id->unit);
	if (WANT(fields, FF_SLICE))
		w_nonempty(w, "slice", id->slice);
	if (WANT(fields, FF_USER_UNIT))
		w_nonempty(w, "user_unit", id->user_unit);
	if (WANT(fields, FF_POD_UID))
		w_nonempty(w, "pod_uid", id->pod_uid);
	if (!WANT(fields, FF_CONTAINER))
		return;
	jw_key(w, "container");
	if (!id->container_id[0]) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kstr(w, "id", id->container_id);
	jw_kstr(w, "runtime", id->runtime);
	if (m->docker && (streq(id->runtime, "docker") || streq(id->runtime, "unknown")))
		docker_describe(m->docker, id->container_id, w);
	jw_obj_end(w);
}

/* Parent first, as the hook saw them when the flow was made. */
static void w_ancestors(struct jsonw *w, const struct flow_who_key *e)
{
	jw_key(w, "ancestors");
	jw_arr_begin(w);
	for (int i = 0; i < CONNPID_ANCESTORS && e->ancestor_pid[i]; i++) {
		jw_obj_begin(w);
		jw_kint(w, "pid", e->ancestor_pid[i]);
		w_comm(w, "comm", e->ancestor_comm[i]);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

/* The socket's creator: differs from the owner after fork() or when the
 * fd was passed over SCM_RIGHTS; unknown for sockets older than connpid. */
static void w_creator(struct jsonw *w, const struct flow_who_key *e)
{
	jw_key(w, "creator");
	if (!e->creator_pid) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kint(w, "pid", e->creator_pid);
	w_comm(w, "comm", e->creator_comm);
	jw_kint(w, "start_time", (int64_t)boottime_ns_to_ticks(e->creator_start_boottime_ns));
	jw_kbool(w, "same_process", e->creator_pid == e->pid &&
				    e->creator_start_boottime_ns == e->start_boottime_ns);
	jw_obj_end(w);
}

/* Who listen()ed on the socket an inbound flow was accepted from: the
 * event's creator_* (an accepted socket has no creator of its own). */
static void w_listener(struct jsonw *w, const struct flow_who_key *e)
{
	jw_key(w, "listener");
	if (!e->creator_pid) {
		jw_null(w);
		return;
	}
	jw_obj_begin(w);
	jw_kint(w, "pid", e->creator_pid);
	w_comm(w, "comm", e->creator_comm);
	jw_kint(w, "start_time", (int64_t)boottime_ns_to_ticks(e->creator_start_boottime_ns));
	jw_obj_end(w);
}

const char *flow_direction_name(enum flow_direction d)
{
	return d == FLOW_INBOUND ? "inbound" : "outbound";
}

int flow_direction_parse(const char *s, enum flow_direction *ret)
{
	if (streq(s, "outbound"))
		*ret = FLOW_OUTBOUND;
	else if (streq(s, "inbound"))
		*ret = FLOW_INBOUND;
	else
		return -EINVAL;
	return 0;
}

/* Whose query named the address: a name from someone else's query is
 * a hint, not this process's word. */
static const char *asked_by_name(__u8 by)
{
	switch (by) {
	case DNS_ASKED_SAME_PROCESS:
		return "same-process";
	case DNS_ASKED_SAME_UID:
		return "same-uid";
	case DNS_ASKED_SAME_CGROUP:
		return "same-cgroup";
	default:
		return "other";
	}
}

static void w_domain_of(struct jsonw *w, const struct flow_domain *d)
{
	const char *source;

	if (d->origin == DNS_ORIGIN_GETADDRINFO && d->same_process)
		source = "getaddrinfo";
	else
		source = d->same_process ? "same-process" : "global";
	jw_obj_begin(w);
	jw_kstr(w, "name", d->name);
	jw_kstr(w, "source", source);
	jw_kstr(w, "via", d->origin == DNS_ORIGIN_PACKET ? "packet" : "getaddrinfo");
	jw_key(w, "cname_chain");
	jw_arr_begin(w);
	/* stored as "a -> b -> c" */
	for (const char *p = d->chain; p && *p;) {
		const char *arrow = strstr(p, " -> ");
		size_t n = arrow ? (size_t)(arrow - p) : strlen(p);

		jw_strn(w, p, n);
		p += n + (arrow ? 4 : 0);
	}
	jw_arr_end(w);
	jw_kstr(w, "asked_by", asked_by_name(d->asked_by));
	jw_kint(w, "ttl", d->ttl);
	jw_key(w, "age_seconds");
	jw_double(w, now_realtime() - d->resolved_at);
	jw_obj_end(w);
}

/* Fixed when the flow arrived; if no answer was known then, ask again. */
static void w_domain(struct jsonw *w, struct manager *m, const struct flow *f)
{
	struct flow_domain *late;
	struct connpid_event e;

	jw_key(w, "domain");
	if (f->domain) {
		w_domain_of(w, f->domain);
		return;
	}
	if (flow_direction(f) == FLOW_INBOUND) {
		jw_null(w); /* the peer's name was nobody's question here */
		return;
	}
	flow_to_event(f, &e);
	late = manager_domain_for_event(m, &e);
	if (!late) {
		jw_null(w);
		return;
	}
	w_domain_of(w, late);
	free(late->name);
	free(late->chain);
	free(late);
}

/* null when the source is unknown: such a hash would name no real flow */
static void w_community_id(struct jsonw *w, struct manager *m, const struct flow *f)
{
	char id[COMMUNITY_ID_LEN];

	jw_kstr(w, "community_id", flow_community_id(f, m->cfg.community_id_seed, id) >= 0 ? id : NULL);
}

/* Members in the order of man/connpid.7 FLOW; each only if asked for. */
void flow_write(struct jsonw *w, struct manager *m, const struct flow *f, int in_map, uint64_t fields)
{
	static const struct flow_who_key nobody;
	const struct flow_event *e = &f->ev;
	const struct flow_key *k = &f->key;
	const struct flow_who_key *who = f->who ? &f->who->k : &nobody;
	const struct proc_entry *proc = flow_proc(f);
	char ip[64];

	jw_obj_begin(w);
	if (WANT(fields, FF_PROTO))
		jw_kstr(w, "proto", protocol_name(k->protocol));
	if (WANT(fields, FF_DIRECTION))
		jw_kstr(w, "direction", flow_direction_name(flow_direction(f)));
	if (WANT(fields, FF_FAMILY))
		jw_kstr(w, "family", k->family == AF_INET ? "ipv4" : "ipv6");
	if (WANT(fields, FF_SRC))
		jw_kstr(w, "src", format_ip(k->family, who->src_ip, ip, sizeof(ip)));
	if (WANT(fields, FF_SPORT))
		jw_kint(w, "sport", k->src_port);
	if (WANT(fields, FF_DST))
		jw_kstr(w, "dst", format_ip(k->family, k->dst_ip, ip, sizeof(ip)));
	if (WANT(fields, FF_DPORT))
		jw_kint(w, "dport", k->dst_port);
	if (WANT(fields, FF_COMMUNITY_ID))
		w_community_id(w, m, f);
	if (WANT(fields, FF_PID))
		jw_kint(w, "pid", e->pid);
	if (WANT(fields, FF_TID))
		jw_kint(w, "tid", who->tid);
	if (WANT(fields, FF_UID))
		jw_kint(w, "uid", who->uid);
	if (WANT(fields, FF_GID))
		jw_kint(w, "gid", who->gid);
	if (WANT(fields, FF_USER))
		w_user(w, f);
	if (WANT(fields, FF_COMM))
		w_comm(w, "comm", who->comm);
	if (WANT(fields, FF_EXE))
		jw_kstr(w, "exe", proc && proc->exe ? proc->exe : NULL);
	if (WANT(fields, FF_CMDLINE))
		w_cmdline(w, proc);
	if (WANT(fields, FF_PPID) && proc && proc->enriched)
		jw_kint(w, "ppid", proc->ppid);
	if (WANT(fields, FF_CGROUP_ID))
		jw_kint(w, "cgroup_id", (int64_t)e->cgroup_id);
	if (fields & CGROUP_FIELDS)
		w_cgroup(w, m, e->cgroup_id, fields);
	if (WANT(fields, FF_NETNS))
		jw_kint(w, "netns", (int64_t)who->netns_ino);
	if (WANT(fields, FF_SOCKET_COOKIE))
		jw_kint(w, "socket_cookie", (int64_t)e->socket_cookie);
	if (WANT(fields, FF_START_TIME))
		jw_kint(w, "start_time", (int64_t)boottime_ns_to_ticks(who->start_boottime_ns));
	if (WANT(fields, FF_BOOT_ID))
		w_nonempty(w, "boot_id", m->boot_id);
	if (WANT(fields, FF_FIRST_SEEN)) {
		jw_key(w, "first_seen");
		jw_double(w, f->first_seen);
	}
	if (WANT(fields, FF_LAST_SEEN)) {
		jw_key(w, "last_seen");
		jw_double(w, f->last_seen);
	}
	if (WANT(fields, FF_ALIVE) || WANT(fields, FF_PID_REUSED))
		w_liveness(w, f, fields);
	if (WANT(fields, FF_PREVIOUS_PID) && e->flags & CONNPID_EVENT_FLAG_OWNER_CHANGED)
		jw_kint(w, "previous_pid", who->prev_pid);
	if (WANT(fields, FF_EXE_SOURCE) && proc && proc->exe_from_exec)
		jw_kstr(w, "exe_source", "exec");
	if (WANT(fields, FF_ANCESTORS))
		w_ancestors(w, who);
	if (WANT(fields, FF_CREATOR) && flow_direction(f) == FLOW_OUTBOUND)
		w_creator(w, who);
	if (WANT(fields, FF_LISTENER) && flow_direction(f) == FLOW_INBOUND)
		w_listener(w, who);
	if (WANT(fields, FF_DOMAIN))
		w_domain(w, m, f);
	if (WANT(fields, FF_SEEN))
		jw_kstr(w, "seen", e->source == CONNPID_SRC_SEEDED ? "seeded" : "event");
	if (WANT(fields, FF_IN_MAP) && in_map >= 0)
		jw_kbool(w, "in_map", in_map > 0);
	jw_obj_end(w);
}

json_object *flow_to_json_fields(struct manager *m, const struct flow *f, int in_map, uint64_t fields)
{
	struct jsonw w;

	jw_init(&w);
	flow_write(&w, m, f, in_map, fields);
	return jw_to_object(&w);
}

json_object *flow_to_json(struct manager *m, const struct flow *f, int in_map)
{
	return flow_to_json_fields(m, f, in_map, FLOW_FIELDS_ALL);
}

json_object *map_hit_to_json(const struct flow_query *q, __u32 pid)
{
	json_object *o = json_object_new_object();
	struct procinfo p;
	char dst[64];

	add_str(o, "proto", protocol_name(q->protocol));
	add_str(o, "family", q->family == AF_INET ? "ipv4" : "ipv6");
	add_int(o, "sport", q->src_port);
	add_str(o, "dst", format_ip(q->family, q->dst_ip, dst, sizeof(dst)));
	add_int(o, "dport", q->dst_port);
	/* the map does not know the source: no Community ID */
	json_object_object_add(o, "community_id", NULL);
	add_int(o, "pid", pid);
	/* No event tells us which process it was: what /proc says now is all
	 * we know, and we cannot tell a reused pid. */
	if (procinfo_read((pid_t)pid, &p) == 0) {
		add_str(o, "comm", p.comm);
		add_str(o, "exe", p.exe[0] ? p.exe : NULL);
		json_object_object_add(o, "cmdline", cmdline_array(p.cmdline, p.cmdline_len));
		add_int(o, "uid", p.uid);
		add_user(o, p.uid);
		add_int(o, "ppid", p.ppid);
		add_int(o, "start_time", (int64_t)p.start_ticks);
		json_object_object_add(o, "alive", json_object_new_boolean(true));
	} else {
		json_object_object_add(o, "alive", json_object_new_boolean(false));
	}
	add_str(o, "seen", "map");
	return o;
}

static const char *const field_names[_FF_MAX] = {
	[FF_PROTO] = "proto", [FF_DIRECTION] = "direction", [FF_FAMILY] = "family", [FF_SRC] = "src", [FF_SPORT] = "sport",
	[FF_DST] = "dst", [FF_DPORT] = "dport", [FF_COMMUNITY_ID] = "community_id", [FF_PID] = "pid",
	[FF_TID] = "tid", [FF_UID] = "uid", [FF_GID] = "gid", [FF_USER] = "user", [FF_COMM] = "comm",
	[FF_EXE] = "exe", [FF_CMDLINE] = "cmdline", [FF_PPID] = "ppid", [FF_CGROUP_ID] = "cgroup_id",
	[FF_CGROUP] = "cgroup", [FF_UNIT] = "unit", [FF_SLICE] = "slice", [FF_USER_UNIT] = "user_unit",
	[FF_POD_UID] = "pod_uid", [FF_CONTAINER] = "container", [FF_NETNS] = "netns",
	[FF_SOCKET_COOKIE] = "socket_cookie", [FF_START_TIME] = "start_time", [FF_BOOT_ID] = "boot_id",
	[FF_FIRST_SEEN] = "first_seen", [FF_LAST_SEEN] = "last_seen", [FF_ALIVE] = "alive",
	[FF_PID_REUSED] = "pid_reused", [FF_PREVIOUS_PID] = "previous_pid", [FF_EXE_SOURCE] = "exe_source",
	[FF_ANCESTORS] = "ancestors", [FF_CREATOR] = "creator", [FF_LISTENER] = "listener", [FF_DOMAIN] = "domain", [FF_SEEN] = "seen",
	[FF_IN_MAP] = "in_map",
};

static int field_of(const char *name)
{
	/* the first byte first: a few strcmp() per name instead of 40 */
	for (int i = 0; i < _FF_MAX; i++)
		if (field_names[i][0] == name[0] && streq(field_names[i], name))
			return i;
	return -1;
}

int flow_fields_parse(json_object *req, uint64_t *ret, char *err, size_t errlen)
{
	uint64_t fields = 0;
	json_object *v;
	size_t n;

	if (!json_object_object_get_ex(req, "fields", &v)) {
		*ret = FLOW_FIELDS_ALL;
		return 0;
	}
	if (!json_object_is_type(v, json_type_array) || (n = json_object_array_length(v)) == 0) {
		snprintf(err, errlen, "\"fields\" must be a non-empty array of FLOW member names");
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_object *e = json_object_array_get_idx(v, i);
		const char *name;
		int b;

		if (!json_object_is_type(e, json_type_string)) {
			snprintf(err, errlen, "\"fields\" must hold strings: FLOW member names");
			return -EINVAL;
		}
		name = json_object_get_string(e);
		b = field_of(name);
		if (b < 0) {
			/* a request is valid UTF-8: cut at a character, not a byte */
			snprintf(err, errlen, "unknown field \"%.*s\" in \"fields\" (a FLOW member name: pid, comm, "
				 "exe, container, domain, ...)", (int)utf8_cut(name, strnlen(name, 64)), name);
			return -EINVAL;
		}
		fields |= UINT64_C(1) << b;
	}
	*ret = fields;
	return 0;
}

/* A HISTORY ROW is flat and names some FLOW members its own way; its
 * row_id stays, whatever was asked: it names the row. */
static bool member_wanted(const char *k, uint64_t fields)
{
	int b = field_of(k);

	if (b < 0 && streq(k, "cgroup_path"))
		b = FF_CGROUP;
	else if (b < 0 && strncmp(k, "container_", 10) == 0)
		b = FF_CONTAINER;
	return b >= 0 ? WANT(fields, b) : streq(k, "row_id");
}

void flow_fields_filter(json_object *flow, uint64_t fields)
{
	struct lh_entry *e, *next;

	if (fields == FLOW_FIELDS_ALL || !json_object_is_type(flow, json_type_object))
		return;
	/* deleting the current entry is safe when the next is taken first */
	for (e = json_object_get_object(flow)->head; e; e = next) {
		next = e->next;
		if (!member_wanted((const char *)lh_entry_k(e), fields))
			json_object_object_del(flow, (const char *)lh_entry_k(e));
	}
}

bool watch_filter_match(const struct watch_filter *w, const struct flow *f)
{
	static const struct flow_who_key nobody;
	const struct flow_who_key *e = f->who ? &f->who->k : &nobody;

	if (w->has_pid && f->ev.pid != w->pid)
		return false;
	if (w->has_comm && strncmp(e->comm, w->comm, sizeof(e->comm)) != 0)
		return false;
	if (w->has_proto && f->key.protocol != w->proto)
		return false;
	if (w->has_dport && f->key.dst_port != w->dport)
		return false;
	if (w->has_dst && (f->key.family != w->dst_family ||
			   memcmp(f->key.dst_ip, w->dst, w->dst_family == AF_INET ? 4 : 16) != 0))
		return false;
	if (w->has_direction && f->key.direction != w->direction)
		return false;
	if (w->netns && e->netns_ino != w->netns)
		return false;
	if (w->has_src && (f->key.family != w->src_family ||
			   memcmp(e->src_ip, w->src, w->src_family == AF_INET ? 4 : 16) != 0))
		return false;
	return true;
}

static int refuse(char *err, size_t errlen, const char *why)
{
	snprintf(err, errlen, "%s", why);
	return -EINVAL;
}

/* One member of a watch/recent "filter": 0, -ENOENT for an unknown name,
 * -EINVAL with the reason in err. */
static int watch_filter_member(struct watch_filter *w, const char *key, json_object *val, char *err, size_t errlen)
{
	bool is_str = json_object_is_type(val, json_type_string);
	const char *str = is_str ? json_object_get_string(val) : "";
	int64_t n = json_object_is_type(val, json_type_int) ? json_object_get_int64(val) : -1;
	enum flow_direction d;

	if (streq(key, "pid")) {
		if (n < 0 || n > UINT32_MAX)
			goto bad;
		w->has_pid = true;
		w->pid = (__u32)n;
	} else if (streq(key, "comm")) {
		if (!is_str)
			goto bad;
		w->has_comm = true;
		snprintf(w->comm, sizeof(w->comm), "%s", str);
	} else if (streq(key, "proto")) {
		if (!is_str || parse_protocol(str, &w->proto) < 0)
			goto bad;
		w->has_proto = true;
	} else if (streq(key, "dst")) {
		if (!is_str || parse_ip(str, &w->dst_family, w->dst) < 0)
			goto bad;
		w->has_dst = true;
	} else if (streq(key, "dport")) {
		if (n < 1 || n > 65535)
			goto bad;
		w->has_dport = true;
		w->dport = (__u16)n;
	} else if (streq(key, "direction")) {
		if (!is_str || flow_direction_parse(str, &d) < 0)
			return refuse(err, errlen, "filter \"direction\" must be \"outbound\" or \"inbound\"");
		w->has_direction = true;
		w->direction = (__u8)d;
	} else if (streq(key, "netns")) {
		if (n < 1 || n > UINT32_MAX)
			return refuse(err, errlen, "filter \"netns\" must be a network namespace inode: "
				      "an integer 1-4294967295");
		w->netns = (__u64)n;
	} else if (streq(key, "src")) {
		if (!is_str || parse_ip(str, &w->src_family, w->src) < 0)
			return refuse(err, errlen, "filter \"src\" must be an IP address string");
		w->has_src = true;
	} else
		return -ENOENT;
	return 0;
bad:
	snprintf(err, errlen, "invalid value for filter \"%s\"", key);
	return -EINVAL;
}

int watch_filter_parse(json_object *o, struct watch_filter *ret, char *err, size_t errlen)
{
	struct watch_filter w = {};
	int r;

	if (!o) {
		*ret = w;
		return 0;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "\"filter\" must be an object");
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		r = watch_filter_member(&w, key, val, err, errlen);
		if (r == -ENOENT) {
			snprintf(err, errlen, "unknown filter \"%.*s\" (pid, comm, proto, dst, dport, direction, "
				 "netns, src)", (int)utf8_cut(key, strnlen(key, 64)), key);
			return -EINVAL;
		}
		if (r < 0)
			return r;
	}
	*ret = w;
	return 0;
}

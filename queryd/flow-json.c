// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
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
#include "user-name.h"

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
	char buf[1024];

	add_str(o, "user", user_name(uid, buf, sizeof(buf)));
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

/* From here on: a live flow as a view (flow-view.h), for the writer. */

#define WANT(fields, b) (((fields) >> (b)) & 1)

/* What a view of a live flow points into, beside the flow and caches:
 * lives until the view is written. */
struct live_scratch {
	char src[64], dst[64];
	char community_id[COMMUNITY_ID_LEN];
	char pw[1024];              /* getpwuid_r()'s */
	struct flow_domain *late;   /* a name looked up for this answer */
};

static void comm_of(struct flow_view_proc *p, __u32 pid, const char *comm)
{
	p->pid = pid;
	p->comm = comm;
	p->comm_len = strnlen(comm, CONNPID_COMM_LEN);
}

/* The name was looked up once per process, not per answer. */
static const char *user_of(const struct flow *f, char *buf, size_t size)
{
	if (flow_proc(f) && flow_proc(f)->user)
		return flow_proc(f)->user;
	return user_name(f->who ? f->who->k.uid : 0, buf, size);
}

/* Alive means the pid still runs the process we captured. */
static void view_liveness(struct flow_view *v, const struct flow *f)
{
	__u64 now_ticks = 0, start = boottime_ns_to_ticks(f->who ? f->who->k.start_boottime_ns : 0);
	int r;

	if (flow_proc(f)) {
		v->alive = proc_entry_alive(flow_proc(f), &v->pid_reused);
		return;
	}
	r = procinfo_start_ticks((pid_t)f->ev.pid, &now_ticks);
	v->alive = r == 0 && now_ticks == start;
	v->pid_reused = r == 0 && !v->alive;
}

static void describe_docker(void *ctx, const char *id, struct jsonw *w)
{
	docker_describe(ctx, id, w);
}

static const char *nonempty(const char *s)
{
	return s && s[0] ? s : NULL;
}

/* cgroup path and who it belongs to: unit, slice, container, pod. */
static void view_cgroup(struct flow_view *v, struct manager *m, __u64 cgroup_id)
{
	const struct cgroup_info *cg = cgroup_cache_get(m->cgroups, cgroup_id);
	const struct cgroup_identity *id;

	if (!cg || !cg->resolved)
		return; /* cgroup null, what it names absent */
	id = &cg->ident;
	v->cgroup = cg->path;
	v->unit = nonempty(id->unit);
	v->slice = nonempty(id->slice);
	v->user_unit = nonempty(id->user_unit);
	v->pod_uid = nonempty(id->pod_uid);
	if (!id->container_id[0])
		return;
	v->container.id = id->container_id;
	v->container.runtime = id->runtime;
	if (m->docker && (streq(id->runtime, "docker") || streq(id->runtime, "unknown"))) {
		v->container.describe = describe_docker;
		v->container.describe_ctx = m->docker;
	}
}

/* Parent first, as the hook saw them when the flow was made; then the
 * socket's creator (outbound: differs from the owner after fork() or an
 * SCM_RIGHTS hand-over; unknown for sockets older than connpid) or the
 * listener (inbound: the event's creator_*, an accepted socket has no
 * creator of its own). */
static void view_relatives(struct flow_view *v, const struct flow_who_key *e, bool inbound)
{
	struct flow_view_proc *p = inbound ? &v->listener : &v->creator;

	for (int i = 0; i < CONNPID_ANCESTORS && e->ancestor_pid[i]; i++)
		comm_of(&v->ancestors[v->n_ancestors++], e->ancestor_pid[i], e->ancestor_comm[i]);
	v->absent |= FF_BIT(inbound ? FF_CREATOR : FF_LISTENER);
	if (!e->creator_pid)
		return;
	comm_of(p, e->creator_pid, e->creator_comm);
	p->has_start_time = true;
	p->start_time = (int64_t)boottime_ns_to_ticks(e->creator_start_boottime_ns);
	p->has_same_process = !inbound;
	p->same_process = e->creator_pid == e->pid && e->creator_start_boottime_ns == e->start_boottime_ns;
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

static void view_domain_of(struct flow_view *v, const struct flow_domain *d)
{
	if (d->origin == DNS_ORIGIN_GETADDRINFO && d->same_process)
		v->domain.source = "getaddrinfo";
	else
		v->domain.source = d->same_process ? "same-process" : "global";
	v->domain.name = d->name;
	v->domain.via = d->origin == DNS_ORIGIN_PACKET ? "packet" : "getaddrinfo";
	v->domain.chain = d->chain;
	v->domain.asked_by = asked_by_name(d->asked_by);
	v->domain.ttl = d->ttl;
	v->domain.age_seconds = now_realtime() - d->resolved_at;
}

/* Fixed when the flow arrived; if no answer was known then, ask again:
 * the caller frees what *late holds once the view is written. Inbound:
 * the peer's name was nobody's question here. */
static void view_domain(struct flow_view *v, struct manager *m, const struct flow *f, struct flow_domain **late)
{
	struct connpid_event e;

	if (f->domain) {
		view_domain_of(v, f->domain);
		return;
	}
	if (flow_direction(f) == FLOW_INBOUND)
		return;
	flow_to_event(f, &e);
	*late = manager_domain_for_event(m, &e);
	if (*late)
		view_domain_of(v, *late);
}

/* What the process cache knows of the owner. */
static void view_proc(struct flow_view *v, const struct proc_entry *proc)
{
	v->exe = proc ? proc->exe : NULL;
	v->cmdline = proc ? proc->cmdline : NULL;
	v->cmdline_len = proc ? proc->cmdline_len : 0;
	v->ppid = proc ? proc->ppid : 0;
	if (!proc || !proc->enriched)
		v->absent |= FF_BIT(FF_PPID);
	v->exe_source = proc && proc->exe_from_exec ? "exec" : NULL;
	if (!v->exe_source)
		v->absent |= FF_BIT(FF_EXE_SOURCE);
}

/* proto .. community_id: the key and the source the event gave. */
static void view_key(struct flow_view *v, struct manager *m, const struct flow *f, const struct flow_who_key *who,
		     uint64_t fields, struct live_scratch *x)
{
	const struct flow_key *k = &f->key;

	v->proto = protocol_name(k->protocol);
	v->direction = flow_direction_name(flow_direction(f));
	v->family = k->family == AF_INET ? "ipv4" : "ipv6";
	if (WANT(fields, FF_SRC))
		v->src = format_ip(k->family, who->src_ip, x->src, sizeof(x->src));
	v->sport = k->src_port;
	if (WANT(fields, FF_DST))
		v->dst = format_ip(k->family, k->dst_ip, x->dst, sizeof(x->dst));
	v->dport = k->dst_port;
	/* null when the source is unknown: such a hash would name no flow */
	if (WANT(fields, FF_COMMUNITY_ID) && flow_community_id(f, m->cfg.community_id_seed, x->community_id) >= 0)
		v->community_id = x->community_id;
}

/* The members whose values cost a lookup are looked up only when asked
 * for (fields); the rest are copies. */
static void view_from_flow(struct flow_view *v, struct manager *m, const struct flow *f, int in_map,
			   uint64_t fields, struct live_scratch *x)
{
	static const struct flow_who_key nobody;
	const struct flow_who_key *who = f->who ? &f->who->k : &nobody;

	view_key(v, m, f, who, fields, x);
	v->pid = f->ev.pid;
	v->tid = who->tid;
	v->uid = who->uid;
	v->gid = who->gid;
	if (WANT(fields, FF_USER))
		v->user = user_of(f, x->pw, sizeof(x->pw));
	v->comm = who->comm;
	v->comm_len = strnlen(who->comm, CONNPID_COMM_LEN);
	view_proc(v, flow_proc(f));
	v->cgroup_id = (int64_t)f->ev.cgroup_id;
	if (fields & (FF_BIT(FF_CGROUP) | FF_BIT(FF_UNIT) | FF_BIT(FF_SLICE) | FF_BIT(FF_USER_UNIT) |
		      FF_BIT(FF_POD_UID) | FF_BIT(FF_CONTAINER)))
		view_cgroup(v, m, f->ev.cgroup_id);
	v->netns = (int64_t)who->netns_ino;
	v->socket_cookie = (int64_t)f->ev.socket_cookie;
	v->start_time = (int64_t)boottime_ns_to_ticks(who->start_boottime_ns);
	v->boot_id = nonempty(m->boot_id);
	v->first_seen = f->first_seen;
	v->last_seen = f->last_seen;
	if (fields & (FF_BIT(FF_ALIVE) | FF_BIT(FF_PID_REUSED)))
		view_liveness(v, f);
	v->previous_pid = who->prev_pid;
	if (!(f->ev.flags & CONNPID_EVENT_FLAG_OWNER_CHANGED))
		v->absent |= FF_BIT(FF_PREVIOUS_PID);
	view_relatives(v, who, flow_direction(f) == FLOW_INBOUND);
	if (WANT(fields, FF_DOMAIN))
		view_domain(v, m, f, &x->late);
	v->seen = f->ev.source == CONNPID_SRC_SEEDED ? "seeded" : "event";
	v->in_map = in_map > 0;
	if (in_map < 0)
		v->absent |= FF_BIT(FF_IN_MAP);
}

/* Members in the order of man/connpid.7 FLOW; each only if asked for. */
void flow_write(struct jsonw *w, struct manager *m, const struct flow *f, int in_map, uint64_t fields)
{
	struct flow_view v = {};
	struct live_scratch x;

	x.late = NULL;
	view_from_flow(&v, m, f, in_map, fields, &x);
	flow_view_write(w, &v, fields);
	flow_domain_free(x.late);
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
		b = flow_field_of(name);
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

/* A history row's row_id stays, whatever was asked: it names the row. */
static bool member_wanted(const char *k, uint64_t fields)
{
	int b = flow_field_of(k);

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

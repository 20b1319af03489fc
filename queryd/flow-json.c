// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "cgroup-cache.h"
#include "dns-cache.h"
#include "docker.h"
#include "flow-json.h"
#include "macro.h"
#include "manager.h"
#include "procinfo.h"

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

/* Alive means the pid still runs the process we captured. */
static void add_liveness(json_object *o, const struct flow *f)
{
	__u64 now_ticks = 0, start = boottime_ns_to_ticks(f->ev.start_boottime_ns);
	bool reused = false;
	int r, alive;

	if (f->proc) {
		alive = proc_entry_alive(f->proc, &reused);
	} else {
		r = procinfo_start_ticks((pid_t)f->ev.pid, &now_ticks);
		alive = r == 0 && now_ticks == start;
		reused = r == 0 && !alive;
	}
	json_object_object_add(o, "alive", json_object_new_boolean(alive));
	json_object_object_add(o, "pid_reused", json_object_new_boolean(reused));
}

static void add_nonempty(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v && v[0] ? json_object_new_string(v) : NULL);
}

/* cgroup path and who it belongs to: unit, slice, container, pod. */
static void add_cgroup(json_object *o, struct manager *m, __u64 cgroup_id)
{
	const struct cgroup_info *cg = cgroup_cache_get(m->cgroups, cgroup_id);
	const struct cgroup_identity *id;

	if (!cg || !cg->resolved) {
		json_object_object_add(o, "cgroup", NULL);
		return;
	}
	id = &cg->ident;
	add_str(o, "cgroup", cg->path);
	add_nonempty(o, "unit", id->unit);
	add_nonempty(o, "slice", id->slice);
	add_nonempty(o, "user_unit", id->user_unit);
	add_nonempty(o, "pod_uid", id->pod_uid);
	if (id->container_id[0]) {
		json_object *c = json_object_new_object();

		add_str(c, "id", id->container_id);
		add_str(c, "runtime", id->runtime);
		if (m->docker && (streq(id->runtime, "docker") || streq(id->runtime, "unknown")))
			docker_describe(m->docker, id->container_id, c);
		json_object_object_add(o, "container", c);
	} else {
		json_object_object_add(o, "container", NULL);
	}
}

static json_object *comm_json(const char *comm)
{
	return json_object_new_string_len(comm, (int)strnlen(comm, CONNPID_COMM_LEN));
}

/* Parent first, as the hook saw them when the flow was made. */
static void add_ancestors(json_object *o, const struct connpid_event *e)
{
	json_object *a = json_object_new_array();

	for (int i = 0; i < CONNPID_ANCESTORS && e->ancestor_pid[i]; i++) {
		json_object *p = json_object_new_object();

		add_int(p, "pid", e->ancestor_pid[i]);
		json_object_object_add(p, "comm", comm_json(e->ancestor_comm[i]));
		json_object_array_add(a, p);
	}
	json_object_object_add(o, "ancestors", a);
}

/* The socket's creator: differs from the owner after fork() or when the
 * fd was passed over SCM_RIGHTS; unknown for sockets older than connpid. */
static void add_creator(json_object *o, const struct connpid_event *e)
{
	json_object *c;

	if (!e->creator_pid) {
		json_object_object_add(o, "creator", NULL);
		return;
	}
	c = json_object_new_object();
	add_int(c, "pid", e->creator_pid);
	json_object_object_add(c, "comm", comm_json(e->creator_comm));
	add_int(c, "start_time", (int64_t)boottime_ns_to_ticks(e->creator_start_boottime_ns));
	json_object_object_add(c, "same_process",
			       json_object_new_boolean(e->creator_pid == e->pid &&
						       e->creator_start_boottime_ns == e->start_boottime_ns));
	json_object_object_add(o, "creator", c);
}

static void domain_json(json_object *o, const struct flow_domain *d)
{
	json_object *dj = json_object_new_object(), *chain = json_object_new_array();
	const char *source;

	if (d->origin == DNS_ORIGIN_GETADDRINFO && d->same_process)
		source = "getaddrinfo";
	else
		source = d->same_process ? "same-process" : "global";
	add_str(dj, "name", d->name);
	add_str(dj, "source", source);
	add_str(dj, "via", d->origin == DNS_ORIGIN_PACKET ? "packet" : "getaddrinfo");
	if (d->chain) {
		/* stored as "a -> b -> c" */
		const char *p = d->chain;

		while (*p) {
			const char *arrow = strstr(p, " -> ");
			size_t n = arrow ? (size_t)(arrow - p) : strlen(p);

			json_object_array_add(chain, json_object_new_string_len(p, (int)n));
			p += n + (arrow ? 4 : 0);
		}
	}
	json_object_object_add(dj, "cname_chain", chain);
	add_int(dj, "ttl", d->ttl);
	json_object_object_add(dj, "age_seconds", json_object_new_double(now_realtime() - d->resolved_at));
	json_object_object_add(o, "domain", dj);
}

/* Fixed when the flow arrived; if no answer was known then, ask again. */
static void add_domain(json_object *o, struct manager *m, const struct flow *f)
{
	struct flow_domain *late;

	if (f->domain) {
		domain_json(o, f->domain);
		return;
	}
	late = manager_domain_for(m, f->ev.pid, f->ev.family, f->ev.dst_ip);
	if (!late) {
		json_object_object_add(o, "domain", NULL);
		return;
	}
	domain_json(o, late);
	free(late->name);
	free(late->chain);
	free(late);
}

json_object *flow_to_json(struct manager *m, const struct flow *f)
{
	const struct connpid_event *e = &f->ev;
	json_object *o = json_object_new_object();
	char src[64], dst[64];
	__u64 start = boottime_ns_to_ticks(e->start_boottime_ns);

	add_str(o, "proto", protocol_name(e->protocol));
	add_str(o, "family", e->family == AF_INET ? "ipv4" : "ipv6");
	add_str(o, "src", format_ip(e->family, e->src_ip, src, sizeof(src)));
	add_int(o, "sport", e->src_port);
	add_str(o, "dst", format_ip(e->family, e->dst_ip, dst, sizeof(dst)));
	add_int(o, "dport", e->dst_port);
	add_int(o, "pid", e->pid);
	add_int(o, "tid", e->tid);
	add_int(o, "uid", e->uid);
	add_int(o, "gid", e->gid);
	/* The name was looked up once per process, not per answer. */
	if (f->proc && f->proc->user)
		add_str(o, "user", f->proc->user);
	else
		add_user(o, e->uid);
	json_object_object_add(o, "comm", json_object_new_string_len(e->comm, (int)strnlen(e->comm, sizeof(e->comm))));
	add_str(o, "exe", f->proc && f->proc->exe ? f->proc->exe : NULL);
	json_object_object_add(o, "cmdline", cmdline_array(f->proc ? f->proc->cmdline : NULL,
							   f->proc ? f->proc->cmdline_len : 0));
	if (f->proc && f->proc->enriched)
		add_int(o, "ppid", f->proc->ppid);
	add_int(o, "cgroup_id", (int64_t)e->cgroup_id);
	add_cgroup(o, m, e->cgroup_id);
	add_int(o, "netns", (int64_t)e->netns_ino);
	add_int(o, "socket_cookie", (int64_t)e->socket_cookie);
	add_int(o, "start_time", (int64_t)start);
	add_nonempty(o, "boot_id", m->boot_id);
	json_object_object_add(o, "first_seen", json_object_new_double(f->first_seen));
	json_object_object_add(o, "last_seen", json_object_new_double(f->last_seen));
	add_liveness(o, f);
	if (e->flags & CONNPID_EVENT_FLAG_OWNER_CHANGED)
		add_int(o, "previous_pid", e->prev_pid);
	if (f->proc && f->proc->exe_from_exec)
		add_str(o, "exe_source", "exec");
	add_ancestors(o, e);
	add_creator(o, e);
	add_domain(o, m, f);
	add_str(o, "seen", e->source == CONNPID_SRC_SEEDED ? "seeded" : "event");
	return o;
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

bool watch_filter_match(const struct watch_filter *w, const struct flow *f)
{
	const struct connpid_event *e = &f->ev;

	if (w->has_pid && e->pid != w->pid)
		return false;
	if (w->has_comm && strncmp(e->comm, w->comm, sizeof(e->comm)) != 0)
		return false;
	if (w->has_proto && e->protocol != w->proto)
		return false;
	if (w->has_dport && e->dst_port != w->dport)
		return false;
	if (w->has_dst && (f->key.family != w->dst_family ||
			   memcmp(f->key.dst_ip, w->dst, w->dst_family == AF_INET ? 4 : 16) != 0))
		return false;
	return true;
}

int watch_filter_parse(json_object *o, struct watch_filter *ret, char *err, size_t errlen)
{
	struct watch_filter w = {};

	if (!o) {
		*ret = w;
		return 0;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "\"filter\" must be an object");
		return -EINVAL;
	}
	json_object_object_foreach(o, key, val) {
		if (streq(key, "pid")) {
			if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 0 ||
			    json_object_get_int64(val) > UINT32_MAX)
				goto bad;
			w.has_pid = true;
			w.pid = (__u32)json_object_get_int64(val);
		} else if (streq(key, "comm")) {
			if (!json_object_is_type(val, json_type_string))
				goto bad;
			w.has_comm = true;
			snprintf(w.comm, sizeof(w.comm), "%s", json_object_get_string(val));
		} else if (streq(key, "proto")) {
			if (!json_object_is_type(val, json_type_string) ||
			    parse_protocol(json_object_get_string(val), &w.proto) < 0)
				goto bad;
			w.has_proto = true;
		} else if (streq(key, "dst")) {
			if (!json_object_is_type(val, json_type_string) ||
			    parse_ip(json_object_get_string(val), &w.dst_family, w.dst) < 0)
				goto bad;
			w.has_dst = true;
		} else if (streq(key, "dport")) {
			if (!json_object_is_type(val, json_type_int) || json_object_get_int64(val) < 1 ||
			    json_object_get_int64(val) > 65535)
				goto bad;
			w.has_dport = true;
			w.dport = (__u16)json_object_get_int64(val);
		} else {
			snprintf(err, errlen, "unknown filter \"%s\" (pid, comm, proto, dst, dport)", key);
			return -EINVAL;
		}
		continue;
bad:
		snprintf(err, errlen, "invalid value for filter \"%s\"", key);
		return -EINVAL;
	}
	*ret = w;
	return 0;
}

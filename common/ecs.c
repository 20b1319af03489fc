// SPDX-License-Identifier: GPL-2.0-or-later
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ecs.h"
#include "jsonutil.h"
#include "macro.h"

#define ECS_VERSION "8.11.0"

static void read_line(const char *path, char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen(path, "re");

	buf[0] = '\0';
	if (!f || !fgets(buf, (int)size, f)) {
		buf[0] = '\0';
		return;
	}
	buf[strcspn(buf, "\n")] = '\0';
}

void ecs_host_read(struct ecs_host *h)
{
	struct timespec rt, bt;

	memset(h, 0, sizeof(*h));
	read_line("/etc/machine-id", h->id, sizeof(h->id));
	read_line("/proc/sys/kernel/random/boot_id", h->boot_id, sizeof(h->boot_id));
	if (gethostname(h->name, sizeof(h->name) - 1) < 0)
		h->name[0] = '\0';
	clock_gettime(CLOCK_REALTIME, &rt);
	clock_gettime(CLOCK_BOOTTIME, &bt);
	h->boot_realtime = (double)(rt.tv_sec - bt.tv_sec) + (double)(rt.tv_nsec - bt.tv_nsec) / 1e9;
	h->ticks_per_sec = sysconf(_SC_CLK_TCK);
}

void ecs_format_time(double t, char buf[static 32])
{
	time_t s = (time_t)t;
	long ms = (long)((t - (double)s) * 1000.0);
	struct tm tm;

	if (ms < 0 || ms > 999)
		ms = 0;
	if (!gmtime_r(&s, &tm)) {
		snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	/* years past 9999 do not fit, and no flow has them */
	if (strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm) == 0 || strlen(buf) > 19) {
		snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf + 19, 32 - 19, ".%03ldZ", ms % 1000);
}

/* rec[a][b]... = v for "a.b...": the nested shape ECS documents have.
 * A NULL v (unknown) leaves the field out rather than writing null. */
static void set(json_object *rec, const char *dotted, json_object *v)
{
	char key[64];
	const char *dot;
	json_object *sub;

	if (!v)
		return;
	while ((dot = strchr(dotted, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - dotted), dotted);
		if (!json_object_object_get_ex(rec, key, &sub) || !json_object_is_type(sub, json_type_object)) {
			sub = json_object_new_object();
			json_object_object_add(rec, key, sub);
		}
		rec = sub;
		dotted = dot + 1;
	}
	json_object_object_add(rec, dotted, v);
}

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v)[0] ? json_object_get_string(v) : NULL;
}

static bool jint(json_object *o, const char *k, int64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*ret = json_object_get_int64(v);
	return true;
}

static bool jnum(json_object *o, const char *k, double *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return false;
	*ret = json_object_get_double(v);
	return true;
}

static json_object *str_or_null(const char *s)
{
	return s ? json_new_string_utf8(s) : NULL;
}

static void set_str(json_object *rec, const char *dotted, json_object *flow, const char *k)
{
	set(rec, dotted, str_or_null(jstr(flow, k)));
}

static void set_int(json_object *rec, const char *dotted, json_object *flow, const char *k)
{
	int64_t v;

	if (jint(flow, k, &v))
		set(rec, dotted, json_object_new_int64(v));
}

/* ECS keeps ids as keywords: "0", not 0. */
static void set_id(json_object *rec, const char *dotted, json_object *flow, const char *k)
{
	char buf[24];
	int64_t v;

	if (!jint(flow, k, &v))
		return;
	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	set(rec, dotted, json_object_new_string(buf));
}

/* A FLOW says "direction"; one without it comes from a connpid before
 * accept() tracking, which saw outbound flows only. */
static bool inbound(json_object *flow)
{
	const char *d = jstr(flow, "direction");

	return d && streq(d, "inbound");
}

/* ECS network.direction from the host's point of view, as ECS asks of
 * host-based monitoring: "ingress" accepted here, "egress" made from here;
 * a direction this version does not know is "unknown". */
static const char *network_direction(json_object *flow)
{
	const char *d = jstr(flow, "direction");

	if (!d || streq(d, "outbound"))
		return "egress";
	return streq(d, "inbound") ? "ingress" : "unknown";
}

static void set_event(json_object *rec, json_object *flow)
{
	json_object *cat = json_object_new_array(), *type = json_object_new_array();
	double t;
	char ts[32];

	if (jnum(flow, "first_seen", &t) || jnum(flow, "last_seen", &t)) {
		ecs_format_time(t, ts);
		set(rec, "@timestamp", json_object_new_string(ts));
	}
	json_object_array_add(cat, json_object_new_string("network"));
	json_object_array_add(type, json_object_new_string("connection"));
	json_object_array_add(type, json_object_new_string("start"));
	set(rec, "ecs.version", json_object_new_string(ECS_VERSION));
	set(rec, "event.kind", json_object_new_string("event"));
	set(rec, "event.category", cat);
	set(rec, "event.type", type);
	/* The hooks see connect() and the first send of a socket, or (loader
	 * --inbound) the accept() of a connection. */
	set(rec, "event.action", json_object_new_string(inbound(flow) ? "accept" : "connect"));
	set(rec, "event.module", json_object_new_string("connpid"));
	set(rec, "event.dataset", json_object_new_string("connpid.flow"));
}

/* An unspecified source (the hook did not know it) is no address. */
static bool unspecified(const char *ip)
{
	return !ip || streq(ip, "0.0.0.0") || streq(ip, "::");
}

/* ECS "source" is who opened the connection: for an accepted one that is
 * the remote peer (the FLOW's dst/dport), and this host's end (src/sport)
 * is the "destination". Outbound: the FLOW's names as they are. */
static void set_network(json_object *rec, json_object *flow)
{
	bool in = inbound(flow);
	const char *proto = jstr(flow, "proto"), *src = jstr(flow, "src");
	const char *local = in ? "destination" : "source", *remote = in ? "source" : "destination";
	char key[32];
	json_object *dom;

	set_str(rec, "network.transport", flow, "proto");
	set_str(rec, "network.type", flow, "family");
	set(rec, "network.direction", json_object_new_string(network_direction(flow)));
	if (proto)
		set(rec, "network.iana_number", json_object_new_string(streq(proto, "tcp") ? "6" : "17"));
	set_str(rec, "network.community_id", flow, "community_id");
	snprintf(key, sizeof(key), "%s.ip", local);
	if (!unspecified(src))
		set(rec, key, json_new_string_utf8(src));
	snprintf(key, sizeof(key), "%s.port", local);
	set_int(rec, key, flow, "sport");
	snprintf(key, sizeof(key), "%s.ip", remote);
	set_str(rec, key, flow, "dst");
	snprintf(key, sizeof(key), "%s.port", remote);
	set_int(rec, key, flow, "dport");
	/* the domain names the peer */
	snprintf(key, sizeof(key), "%s.domain", remote);
	if (json_object_object_get_ex(flow, "domain", &dom) && json_object_is_type(dom, json_type_object)) {
		set_str(rec, key, dom, "name");
		set(rec, "connpid.domain", json_object_get(dom));
	}
}

static void set_cmdline(json_object *rec, json_object *flow)
{
	json_object *cmd, *args;
	size_t n, len = 0;

	if (!json_object_object_get_ex(flow, "cmdline", &cmd) || !json_object_is_type(cmd, json_type_array))
		return;
	n = json_object_array_length(cmd);
	if (n == 0)
		return;
	args = json_object_new_array();
	for (size_t i = 0; i < n; i++) {
		const char *a = json_object_get_string(json_object_array_get_idx(cmd, i));

		json_object_array_add(args, json_new_string_utf8(a ? a : ""));
		len += strlen(a ? a : "") + 1;
	}
	{
		_cleanup_free_ char *line = malloc(len + 1);
		char *p = line;

		if (line) {
			for (size_t i = 0; i < n; i++) {
				const char *a = json_object_get_string(json_object_array_get_idx(cmd, i));

				p = stpcpy(p, a ? a : "");
				if (i + 1 < n)
					*p++ = ' ';
			}
			*p = '\0';
			set(rec, "process.command_line", json_new_string_utf8(line));
		}
	}
	set(rec, "process.args", args);
	set(rec, "process.args_count", json_object_new_int64((int64_t)n));
}

/* Which boot the flow's start_time counts from: a live FLOW says; a
 * history row does not, and is of this boot only if first seen after it. */
static const char *boot_of(json_object *flow, const struct ecs_host *h)
{
	const char *b = jstr(flow, "boot_id");
	double t;

	if (b)
		return b;
	if (h->boot_id[0] && jnum(flow, "first_seen", &t) && t >= h->boot_realtime)
		return h->boot_id;
	return NULL;
}

static void set_process(json_object *rec, json_object *flow, const struct ecs_host *h)
{
	const char *boot = boot_of(flow, h);
	int64_t pid, start;
	char buf[128];

	set_int(rec, "process.pid", flow, "pid");
	set_str(rec, "process.name", flow, "comm");
	set_str(rec, "process.executable", flow, "exe");
	set_cmdline(rec, flow);
	set_int(rec, "process.parent.pid", flow, "ppid");
	set_int(rec, "process.thread.id", flow, "tid");
	if (!jint(flow, "pid", &pid) || !jint(flow, "start_time", &start) || !boot)
		return;
	/* pid + start time + boot: names one process for good, on any host */
	snprintf(buf, sizeof(buf), "%s-%lld-%lld", boot, (long long)pid, (long long)start);
	set(rec, "process.entity_id", json_new_string_utf8(buf));
	if (h->boot_id[0] && streq(boot, h->boot_id) && h->ticks_per_sec > 0) {
		ecs_format_time(h->boot_realtime + (double)start / (double)h->ticks_per_sec, buf);
		set(rec, "process.start", json_object_new_string(buf));
	}
}

static void set_container(json_object *rec, json_object *flow)
{
	json_object *c;

	if (!json_object_object_get_ex(flow, "container", &c) || !json_object_is_type(c, json_type_object))
		return;
	set_str(rec, "container.id", c, "id");
	set_str(rec, "container.name", c, "name");
	set_str(rec, "container.image.name", c, "image");
	set_str(rec, "container.runtime", c, "runtime");
	set(rec, "connpid.container", json_object_get(c));
}

static void set_host(json_object *rec, json_object *flow, const struct ecs_host *h)
{
	set(rec, "host.id", h->id[0] ? json_new_string_utf8(h->id) : NULL);
	set(rec, "host.name", h->name[0] ? json_new_string_utf8(h->name) : NULL);
	set(rec, "host.hostname", h->name[0] ? json_new_string_utf8(h->name) : NULL);
	set_str(rec, "host.boot.id", flow, "boot_id");
}

/* Members with a standard name above; everything else keeps its connpid
 * name under "connpid.", so the record loses nothing. */
static bool mapped(const char *k)
{
	static const char *const keys[] = {
		"proto", "family", "src", "sport", "dst", "dport", "community_id", "domain",
		"pid", "comm", "exe", "cmdline", "ppid", "tid", "uid", "gid", "user", "container",
		"boot_id", "first_seen", "direction",
	};

	for (size_t i = 0; i < ARRAY_SIZE(keys); i++)
		if (streq(k, keys[i]))
			return true;
	return false;
}

json_object *ecs_from_flow(json_object *flow, const struct ecs_host *h)
{
	json_object *rec = json_object_new_object();

	if (!rec)
		return NULL;
	set_event(rec, flow);
	set_network(rec, flow);
	set_process(rec, flow, h);
	set_id(rec, "user.id", flow, "uid");
	set_str(rec, "user.name", flow, "user");
	set_id(rec, "group.id", flow, "gid");
	set_container(rec, flow);
	set_host(rec, flow, h);
	json_object_object_foreach(flow, k, v) {
		char key[128];

		if (mapped(k))
			continue;
		snprintf(key, sizeof(key), "connpid.%s", k);
		set(rec, key, json_object_get(v));
	}
	return rec;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Turning answers (the daemon's lines, or the pinned maps) into results. */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>

#include "internal.h"
#include "../../common/flowkey.h"
#include "../../common/jsonutil.h"
#include "../../common/macro.h"
#include "../../common/pins.h"
#include "../../common/procinfo.h"
#include "../../common/user-name.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

struct connpid_result *result_new(uint64_t id, int error)
{
	struct result_priv *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->pub.size = sizeof(p->pub);
	p->pub.id = id;
	p->pub.error = error;
	p->pub.uid = -1;
	return &p->pub;
}

void connpid_result_free(struct connpid_result *r)
{
	struct result_priv *p;

	if (!r)
		return;
	p = container_of(r, struct result_priv, pub);
	for (unsigned i = 0; i < p->n_strings; i++)
		free(p->strings[i]);
	json_object_put(p->json_obj);
	free(p);
}

static const char *keep_string(struct connpid_result *r, const char *s)
{
	struct result_priv *p = container_of(r, struct result_priv, pub);
	char *c;

	if (!s || p->n_strings >= ARRAY_SIZE(p->strings))
		return NULL;
	c = strdup(s);
	if (c)
		p->strings[p->n_strings++] = c;
	return c;
}

/* A string member, or NULL when absent, null or not a string: the answer
 * is the daemon's, but a client still takes nothing on trust. */
static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static json_object *jobj(json_object *o, const char *k)
{
	json_object *v;

	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

static bool jint(json_object *o, const char *k, int64_t min, int64_t max, int64_t *ret)
{
	json_object *v;
	int64_t i;

	if (!o || !json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_int))
		return false;
	errno = 0;
	i = json_object_get_int64(v);
	if (errno || i < min || i > max)
		return false;
	*ret = i;
	return true;
}

static bool jtrue(json_object *o, const char *k)
{
	json_object *v;

	return o && json_object_object_get_ex(o, k, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

/* One FLOW shape (connpid(7), schema 2): live answers and history rows
 * alike nest container and domain. */
static void result_from_flow(struct connpid_result *r, json_object *f)
{
	json_object *c = jobj(f, "container"), *d = jobj(f, "domain");
	int64_t i;

	if (jint(f, "pid", 0, UINT32_MAX, &i))
		r->pid = (uint32_t)i;
	if (jint(f, "uid", 0, UINT32_MAX, &i))
		r->uid = i;
	r->alive = jtrue(f, "alive");
	r->user = keep_string(r, jstr(f, "user"));
	r->comm = keep_string(r, jstr(f, "comm"));
	r->exe = keep_string(r, jstr(f, "exe"));
	r->unit = keep_string(r, jstr(f, "unit"));
	r->container_id = keep_string(r, jstr(c, "id"));
	r->container_name = keep_string(r, jstr(c, "name"));
	r->container_image = keep_string(r, jstr(c, "image"));
	r->domain = keep_string(r, jstr(d, "name"));
}

int result_from_answer(struct connpid_result *r, const char *line, json_object *o)
{
	json_object *ok, *f, *c;

	r->json = keep_string(r, line);
	if (!r->json)
		return -ENOMEM;
	if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean))
		return r->error = -EBADMSG;
	if (!json_object_get_boolean(ok)) {
		r->error_code = keep_string(r, jstr(jobj(o, "error"), "code") ?: "internal");
		return r->error = -EREMOTEIO;
	}
	r->found = jtrue(o, "found");
	f = jobj(o, "flow");
	if (r->found && f)
		result_from_flow(r, f);
	/* the daemon sends at most 64; a hostile line's count still fits */
	if (json_object_object_get_ex(o, "candidates", &c) && json_object_is_type(c, json_type_array))
		r->n_candidates = json_object_array_length(c) > UINT_MAX ? UINT_MAX : (unsigned)json_object_array_length(c);
	return 0;
}

/* The MAP FLOW shape of connpid(7), so that a caller reading json sees
 * the same members as from the daemon. */
static json_object *map_flow_json(const struct flow_query *q, __u32 pid, const struct procinfo *p)
{
	json_object *f = json_object_new_object();
	char ip[64], ubuf[1024];
	const char *user = p ? user_name(p->uid, ubuf, sizeof(ubuf)) : NULL;

	json_object_object_add(f, "proto", json_object_new_string(protocol_name(q->protocol)));
	json_object_object_add(f, "family", json_object_new_string(q->family == AF_INET ? "ipv4" : "ipv6"));
	json_object_object_add(f, "sport", json_object_new_int(q->src_port));
	json_object_object_add(f, "dst", json_object_new_string(format_ip(q->family, q->dst_ip, ip, sizeof(ip))));
	json_object_object_add(f, "dport", json_object_new_int(q->dst_port));
	json_object_object_add(f, "pid", json_object_new_int64(pid));
	if (p) {
		json_object_object_add(f, "comm", json_new_string_utf8(p->comm));
		json_object_object_add(f, "exe", p->exe[0] ? json_new_string_utf8(p->exe) : NULL);
		json_object_object_add(f, "uid", json_object_new_int64(p->uid));
		json_object_object_add(f, "user", user ? json_new_string_utf8(user) : NULL);
		json_object_object_add(f, "ppid", json_object_new_int64(p->ppid));
		json_object_object_add(f, "start_time", json_object_new_int64((int64_t)p->start_ticks));
	}
	json_object_object_add(f, "alive", json_object_new_boolean(p != NULL));
	json_object_object_add(f, "seen", json_object_new_string("map"));
	return f;
}

int result_from_maps(struct connpid_result *r, const char *pin_dir, int proto, const char *dst,
		     uint16_t sport, uint16_t dport)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	struct connpid_maps maps;
	struct flow_query q;
	struct procinfo p;
	char sp[8], dp[8], err[512];
	__u32 pid = 0;
	bool alive;
	int rr;

	snprintf(sp, sizeof(sp), "%u", sport);
	snprintf(dp, sizeof(dp), "%u", dport);
	if (flow_query_parse(dst, sp, dp, proto == IPPROTO_UDP ? "udp" : "tcp", &q) < 0)
		return r->error = -EINVAL;
	r->direct = true;
	connpid_maps_init(&maps);
	rr = connpid_maps_open(pin_dir, &maps, 0, err, sizeof(err));
	if (rr < 0)
		return r->error = rr;
	rr = flow_query_lookup(&q, maps.v4_fd, maps.v6_fd, &pid);
	connpid_maps_close(&maps);
	if (rr < 0)
		return r->error = rr;
	json_object_object_add(o, "ok", json_object_new_boolean(true));
	json_object_object_add(o, "found", json_object_new_boolean(rr > 0));
	if (rr > 0) {
		alive = procinfo_read((pid_t)pid, &p) == 0;
		json_object_object_add(o, "flow", map_flow_json(&q, pid, alive ? &p : NULL));
	}
	json_object_object_add(o, "direct", json_object_new_boolean(true));
	rr = result_from_answer(r, json_object_to_json_string_ext(o, JSON_LINE_FLAGS), o);
	r->direct = true;
	return rr;
}

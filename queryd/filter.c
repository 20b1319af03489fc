// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "flow-json.h"
#include "flowkey.h"
#include "jsonutil.h"
#include "macro.h"
#include "protocol-args.h"

enum filter_member {
	FM_PID, FM_COMM, FM_PROTO, FM_DST, FM_DPORT, FM_DIRECTION, FM_NETNS, FM_SRC,
	/* history only: columns a live flow is not matched by */
	FM_EXE, FM_DOMAIN, FM_CONTAINER, FM_UNIT, FM_SINCE, FM_UNTIL,
	_FM_MAX,
};
#define FM_LIVE_MAX FM_EXE

enum value_kind { V_INT, V_STRING, V_PROTO, V_ADDRESS, V_DIRECTION, V_TIME };

static const struct member {
	const char *name;
	enum value_kind kind;
	int64_t min, max;  /* V_INT */
	const char *rule;  /* what the value must be, said when it is not */
} members[_FM_MAX] = {
	[FM_PID] = { "pid", V_INT, 0, UINT32_MAX, "an integer 0-4294967295" },
	[FM_COMM] = { "comm", V_STRING, .rule = "a string" },
	[FM_PROTO] = { "proto", V_PROTO, .rule = "\"tcp\", \"udp\", \"6\" or \"17\"" },
	[FM_DST] = { "dst", V_ADDRESS, .rule = "an IP address string" },
	[FM_DPORT] = { "dport", V_INT, 1, 65535, "an integer 1-65535" },
	[FM_DIRECTION] = { "direction", V_DIRECTION, .rule = "\"outbound\" or \"inbound\"" },
	[FM_NETNS] = { "netns", V_INT, 1, UINT32_MAX, "a network namespace inode: an integer 1-4294967295" },
	[FM_SRC] = { "src", V_ADDRESS, .rule = "an IP address string" },
	[FM_EXE] = { "exe", V_STRING, .rule = "a string" },
	[FM_DOMAIN] = { "domain", V_STRING, .rule = "a string" },
	[FM_CONTAINER] = { "container", V_STRING, .rule = "a string" },
	[FM_UNIT] = { "unit", V_STRING, .rule = "a string" },
	[FM_SINCE] = { "since", V_TIME, .rule = "a unix time in seconds, not negative" },
	[FM_UNTIL] = { "until", V_TIME, .rule = "a unix time in seconds, not negative" },
};

/* One member's value, checked against its rule. */
struct filter_value {
	int64_t n;
	double t;
	const char *s;
	__u8 proto;
	int family;
	__u32 addr[4];
	enum flow_direction direction;
};

static int parse_value(const struct member *mb, json_object *val, struct filter_value *v)
{
	const char *s = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : NULL;

	switch (mb->kind) {
	case V_INT:
		return int_in_range(val, mb->min, mb->max, &v->n);
	case V_STRING:
		v->s = s;
		return s ? 0 : -EINVAL;
	case V_PROTO:
		return s ? parse_protocol(s, &v->proto) : -EINVAL;
	case V_ADDRESS:
		return s ? parse_ip(s, &v->family, v->addr) : -EINVAL;
	case V_DIRECTION:
		return s ? flow_direction_parse(s, &v->direction) : -EINVAL;
	case V_TIME:
		if (!json_object_is_type(val, json_type_int) && !json_object_is_type(val, json_type_double))
			return -EINVAL;
		v->t = json_object_get_double(val);
		return isfinite(v->t) && v->t >= 0 ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* "pid, comm, ..., src": the members of the first n, for the message. */
static void member_list(size_t n, char *buf, size_t size)
{
	size_t len = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && len < size; i++)
		len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "", members[i].name);
}

typedef int (*apply_fn)(void *dst, enum filter_member m, const struct filter_value *v);

/* Every member of object o, checked against the first n of the table
 * and handed to apply: 0, -EINVAL with the reason in err, or apply's
 * error. */
static int filter_walk(json_object *o, size_t n, apply_fn apply, void *dst, char *err, size_t errlen)
{
	json_object_object_foreach(o, key, val) {
		struct filter_value v = {};
		char names[256];
		size_t i;
		int r;

		for (i = 0; i < n && !streq(key, members[i].name); i++)
			;
		if (i == n) {
			member_list(n, names, sizeof(names));
			/* a request is valid UTF-8: cut at a character, not a byte */
			snprintf(err, errlen, "unknown filter \"%.*s\" (%s)", quote_len(key), key, names);
			return -EINVAL;
		}
		if (parse_value(&members[i], val, &v) < 0) {
			snprintf(err, errlen, "filter \"%s\" must be %s", members[i].name, members[i].rule);
			return -EINVAL;
		}
		r = apply(dst, (enum filter_member)i, &v);
		if (r < 0) {
			snprintf(err, errlen, "%s", strerror(-r));
			return r;
		}
	}
	return 0;
}

static int apply_live(void *dst, enum filter_member m, const struct filter_value *v)
{
	struct watch_filter *w = dst;

	switch (m) {
	case FM_PID:
		w->has_pid = true;
		w->pid = (__u32)v->n;
		break;
	case FM_COMM:
		/* the kernel's comm is 15 bytes: longer names are cut */
		w->has_comm = true;
		snprintf(w->comm, sizeof(w->comm), "%s", v->s);
		break;
	case FM_PROTO:
		w->has_proto = true;
		w->proto = v->proto;
		break;
	case FM_DST:
	case FM_SRC:
		*(m == FM_DST ? &w->has_dst : &w->has_src) = true;
		*(m == FM_DST ? &w->dst_family : &w->src_family) = v->family;
		memcpy(m == FM_DST ? w->dst : w->src, v->addr, sizeof(v->addr));
		break;
	case FM_DPORT:
		w->has_dport = true;
		w->dport = (__u16)v->n;
		break;
	case FM_DIRECTION:
		w->has_direction = true;
		w->direction = (__u8)v->direction;
		break;
	case FM_NETNS:
		w->netns = (__u64)v->n;
		break;
	default:
		return -EINVAL; /* not in the live part of the table */
	}
	return 0;
}

int watch_filter_parse(json_object *o, struct watch_filter *ret, char *err, size_t errlen)
{
	struct watch_filter w = {};
	int r;

	if (o && !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "\"filter\" must be an object");
		return -EINVAL;
	}
	if (o) {
		r = filter_walk(o, FM_LIVE_MAX, apply_live, &w, err, errlen);
		if (r < 0)
			return r;
	}
	*ret = w;
	return 0;
}

static int set_string(char **slot, const char *v)
{
	free(*slot);
	*slot = strdup(v);
	return *slot ? 0 : -ENOMEM;
}

static int apply_history(void *dst, enum filter_member m, const struct filter_value *v)
{
	struct history_query *q = dst;
	char canon[64];

	switch (m) {
	case FM_PID:
		q->has_pid = true;
		q->pid = (__u32)v->n;
		return 0;
	case FM_DPORT:
		q->has_dport = true;
		q->dport = (__u16)v->n;
		return 0;
	case FM_NETNS:
		q->netns = (__u64)v->n;
		return 0;
	case FM_PROTO:
		q->has_proto = true;
		q->proto = v->proto;
		return 0;
	case FM_DIRECTION:
		q->has_direction = true;
		q->direction = v->direction;
		return 0;
	case FM_SINCE:
	case FM_UNTIL:
		*(m == FM_SINCE ? &q->has_since : &q->has_until) = true;
		*(m == FM_SINCE ? &q->since : &q->until) = v->t;
		return 0;
	case FM_DST:
	case FM_SRC:
		/* the rows' words: v4-mapped folded, one spelling */
		return set_string(m == FM_DST ? &q->dst : &q->src, format_ip(v->family, v->addr, canon, sizeof(canon)));
	case FM_COMM:
		return set_string(&q->comm, v->s);
	case FM_EXE:
		return set_string(&q->exe, v->s);
	case FM_DOMAIN:
		return set_string(&q->domain, v->s);
	case FM_CONTAINER:
		return set_string(&q->container, v->s);
	case FM_UNIT:
		return set_string(&q->unit, v->s);
	default:
		return -EINVAL;
	}
}

int history_filter_parse(json_object *o, struct history_query *q, char *err, size_t errlen)
{
	return filter_walk(o, _FM_MAX, apply_history, q, err, errlen);
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

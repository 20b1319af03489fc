// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "../lib/connpid.h"
#include "log.h"
#include "macro.h"
#include "parse-util.h"
#include "ctl.h"
#include "filters.h"

enum filter_type { FILTER_STRING, FILTER_NUMBER, FILTER_TIME };

/* Each sent as the filter member of its name. */
static const struct filter_option {
	const char *name;
	enum filter_type type;
	unsigned long long max;  /* FILTER_NUMBER: 1 to max */
} filter_options[] = {
	{ "pid", FILTER_NUMBER, 1u << 30 },
	{ "dport", FILTER_NUMBER, 65535 },
	{ "comm", FILTER_STRING, 0 },
	{ "dst", FILTER_STRING, 0 },
	{ "proto", FILTER_STRING, 0 },
	{ "exe", FILTER_STRING, 0 },
	{ "domain", FILTER_STRING, 0 },
	{ "container", FILTER_STRING, 0 },
	{ "unit", FILTER_STRING, 0 },
	{ "since", FILTER_TIME, 0 },
	{ "until", FILTER_TIME, 0 },
};
_Static_assert(ARRAY_SIZE(filter_options) <= FILTER_OPTIONS_MAX, "FILTER_OPTIONS_MAX");

size_t filter_getopt_options(struct option *ret, int first)
{
	for (size_t i = 0; i < ARRAY_SIZE(filter_options); i++)
		ret[i] = (struct option) { filter_options[i].name, required_argument, NULL, first + (int)i };
	return ARRAY_SIZE(filter_options);
}

static int add_filter(const char *key, json_object *v)
{
	if (!v)
		return log_error_errno(-ENOMEM, "Out of memory");
	if (!arg_filter)
		arg_filter = json_object_new_object();
	if (!arg_filter) {
		json_object_put(v);
		return log_error_errno(-ENOMEM, "Out of memory");
	}
	json_object_object_add(arg_filter, key, v);
	return 0;
}

/* -N[smhd]: N seconds, minutes, hours or days ago. */
static int parse_ago(const char *s, double *ret)
{
	static const struct { char unit; double mult; } units[] = {
		{ 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 },
	};
	struct timespec now;
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (end[0] == units[i].unit && end[1] == '\0') {
			clock_gettime(CLOCK_REALTIME, &now);
			*ret = (double)now.tv_sec + now.tv_nsec / 1e9 - v * units[i].mult;
			return 0;
		}
	return -EINVAL;
}

int parse_time(const char *s, double *ret)
{
	struct tm tm = {};
	char *end;
	double v;

	if (s[0] == '-' && s[1])
		return parse_ago(s + 1, ret);
	errno = 0;
	v = strtod(s, &end);
	if (!errno && end != s && *end == '\0' && v >= 0) {
		*ret = v;
		return 0;
	}
	end = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!end || *end)
		return -EINVAL;
	tm.tm_isdst = -1;
	*ret = (double)mktime(&tm);
	return 0;
}

int filter_option_parse(size_t index, const char *value)
{
	const struct filter_option *o = &filter_options[index];
	unsigned long long n;
	double t;

	switch (o->type) {
	case FILTER_NUMBER:
		if (parse_unsigned(value, NULL, 1, o->max, &n) < 0)
			return log_error_errno(-EINVAL, "Invalid --%s '%s'", o->name, value);
		return add_filter(o->name, json_object_new_int64((int64_t)n));
	case FILTER_TIME:
		if (parse_time(value, &t) < 0)
			return log_error_errno(-EINVAL, "Invalid --%s '%s' (unix seconds, YYYY-MM-DDTHH:MM:SS or "
					       "-N[smhd])", o->name, value);
		return add_filter(o->name, json_object_new_double(t));
	default:
		return add_filter(o->name, json_object_new_string(value));
	}
}

int scope_filters(void)
{
	int r = 0;

	if (arg_src)
		r = add_filter("src", json_object_new_string(arg_src));
	if (r >= 0 && arg_netns)
		r = add_filter("netns", json_object_new_int64(arg_netns));
	if (r >= 0 && arg_direction >= 0)
		r = add_filter("direction", json_object_new_string(
				       arg_direction == CONNPID_DIRECTION_INBOUND ? "inbound" : "outbound"));
	return r;
}

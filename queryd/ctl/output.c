// SPDX-License-Identifier: GPL-2.0-or-later
/* connpidctl's tables: one column list per table, so a header and its
 * rows cannot disagree about a width. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ecs.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"
#include "ctl.h"
#include "output.h"

/* A column: a member shown as is, or a label made of the flow. */
struct column {
	const char *title;   /* the header; the key on a candidate line */
	int width;           /* 0: the last column */
	const char *member;
	const char *(*label)(json_object *f, char *buf, size_t size);
};

/* Room for any label; a dst:dport of a sane daemon is under 64 bytes. */
#define LABEL_MAX 1024

const char *jget_str(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || json_object_is_type(v, json_type_null))
		return "-";
	return json_object_get_string(v);
}

bool jget_bool(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) && json_object_get_boolean(v);
}

/* Through text_escape(): a comm holding "\x1b[2K\r" is shown, not obeyed. */
void put_field(const char *s, int width)
{
	_cleanup_free_ char *e = text_escape(s ?: "-");
	int chars = 0;

	if (!e) {
		e = strdup("?");
		if (!e)
			return;
	}
	fputs(e, stdout);
	if (width == 0) {
		putchar('\n');
		return;
	}
	for (const char *p = e; *p; p++)
		chars += ((unsigned char)*p & 0xc0) != 0x80; /* a character starts here */
	printf("%*s", width > chars ? width - chars + 1 : 1, "");
}

void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_LINE_FLAGS));
}

/* "in" / "out" ("-" for an answer of an older daemon without it). */
static const char *direction_label(json_object *f, char *buf, size_t size)
{
	const char *d = jget_str(f, "direction");

	return streq(d, "inbound") ? "in" : streq(d, "outbound") ? "out" : "-";
}

/* An inbound flow's listener as comm[pid], "-" when none. */
static const char *listener_label(json_object *f, char *buf, size_t size)
{
	json_object *l;

	if (!json_object_object_get_ex(f, "listener", &l) || !json_object_is_type(l, json_type_object))
		return "-";
	snprintf(buf, size, "%s[%s]", jget_str(l, "comm"), jget_str(l, "pid"));
	return buf;
}

/* The first 12 characters of a container id, never half a character. */
static const char *short_id(const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%.*s", (int)utf8_cut(id, strnlen(id, 12)), id);
	return buf;
}

/* A string member of o, or NULL. */
static const char *jstring(json_object *o, const char *k)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* The container's name when Docker told us, else a short id. */
static const char *container_label(json_object *f, char *buf, size_t size)
{
	json_object *c = NULL;
	const char *s;

	if (!json_object_object_get_ex(f, "container", &c) || !json_object_is_type(c, json_type_object))
		return "-";
	if ((s = jstring(c, "name")))
		return s;
	if ((s = jstring(c, "id")))
		return short_id(s, buf, size);
	return "-";
}

static const char *domain_label(json_object *f, char *buf, size_t size)
{
	json_object *d, *v;

	if (json_object_object_get_ex(f, "domain", &d) && json_object_is_type(d, json_type_object) &&
	    json_object_object_get_ex(d, "name", &v) && v)
		return json_object_get_string(v);
	return "-";
}

static const char *alive_label(json_object *f, char *buf, size_t size)
{
	return !json_object_object_get_ex(f, "alive", NULL) ? "-" :
	       jget_bool(f, "alive") ? "yes" : (jget_bool(f, "pid_reused") ? "reused" : "exited");
}

/* first_seen as local HH:MM:SS. */
static const char *time_label(json_object *f, char *buf, size_t size)
{
	json_object *ts;
	struct tm tm;
	time_t t;

	snprintf(buf, size, "-");
	if (json_object_object_get_ex(f, "first_seen", &ts)) {
		t = (time_t)json_object_get_double(ts);
		if (localtime_r(&t, &tm))
			strftime(buf, size, "%H:%M:%S", &tm);
	}
	return buf;
}

static const char *dst_port_label(json_object *f, char *buf, size_t size)
{
	snprintf(buf, size, "%s:%s", jget_str(f, "dst"), jget_str(f, "dport"));
	return buf;
}

static const struct column flow_columns[] = {
	{ "PID", 8, "pid", NULL }, { "COMM", 16, "comm", NULL }, { "PROTO", 6, "proto", NULL }, { "DST", 20, "dst", NULL },
	{ "SPORT", 5, "sport", NULL }, { "DPORT", 6, "dport", NULL }, { "DIR", 4, NULL, direction_label },
	{ "ALIVE", 8, NULL, alive_label }, { "UNIT", 24, "unit", NULL }, { "CONTAINER", 20, NULL, container_label },
	{ "DOMAIN", 24, NULL, domain_label }, { "LISTENER", 22, NULL, listener_label }, { "EXE", 0, "exe", NULL },
};

static const struct column watch_columns[] = {
	{ "TIME", 8, NULL, time_label }, { "PROTO", 5, "proto", NULL }, { "DIR", 4, NULL, direction_label },
	{ "SPORT", 6, "sport", NULL }, { "DST", 28, NULL, dst_port_label }, { "PID", 8, "pid", NULL },
	{ "COMM", 16, "comm", NULL }, { "CONTAINER", 20, NULL, container_label }, { "DOMAIN", 24, NULL, domain_label },
	{ "LISTENER", 22, NULL, listener_label }, { "EXE", 0, "exe", NULL },
};

static const struct column candidate_columns[] = {
	{ "pid", 0, "pid", NULL }, { "comm", 0, "comm", NULL }, { "src", 0, "src", NULL }, { "netns", 0, "netns", NULL },
	{ "dir", 0, NULL, direction_label }, { "alive", 0, NULL, alive_label },
	{ "container", 0, NULL, container_label }, { "listener", 0, NULL, listener_label }, { "exe", 0, "exe", NULL },
};

static const char *column_value(const struct column *c, json_object *f, char *buf, size_t size)
{
	return c->label ? c->label(f, buf, size) : jget_str(f, c->member);
}

static void print_titles(const struct column *cols, size_t n)
{
	for (size_t i = 0; i < n; i++)
		put_field(cols[i].title, cols[i].width);
}

static void print_row(const struct column *cols, size_t n, json_object *f)
{
	char buf[LABEL_MAX];

	for (size_t i = 0; i < n; i++)
		put_field(column_value(&cols[i], f, buf, sizeof(buf)), cols[i].width);
}

void print_flow_row_header(void)
{
	print_titles(flow_columns, ARRAY_SIZE(flow_columns));
}

void print_flow_row(json_object *f)
{
	print_row(flow_columns, ARRAY_SIZE(flow_columns), f);
}

void print_watch_header(void)
{
	print_titles(watch_columns, ARRAY_SIZE(watch_columns));
}

void print_watch_row(json_object *f)
{
	print_row(watch_columns, ARRAY_SIZE(watch_columns), f);
}

/* One "candidate key=value ..." line, the values escaped. */
static void print_candidate(json_object *f)
{
	char buf[LABEL_MAX];

	fputs("candidate", stdout);
	for (size_t i = 0; i < ARRAY_SIZE(candidate_columns); i++) {
		const struct column *c = &candidate_columns[i];
		_cleanup_free_ char *e = text_escape(column_value(c, f, buf, sizeof(buf)));

		printf(" %s=%s", c->title, e ?: "?");
	}
	putchar('\n');
}

/* The other flows of the same key (another namespace or source address):
 * one marked line each, so that nobody takes them for the answer. */
void print_candidates(json_object *ans)
{
	json_object *cands;
	size_t n;

	if (!json_object_object_get_ex(ans, "candidates", &cands) || !json_object_is_type(cands, json_type_array) ||
	    (n = json_object_array_length(cands)) == 0)
		return;
	printf("%zu other candidate%s with these ports (another network namespace or source address;\n"
	       "pass --src/--netns to pick one):\n", n, n == 1 ? "" : "s");
	for (size_t i = 0; i < n; i++) {
		json_object *f = json_object_array_get_idx(cands, i);

		if (json_object_is_type(f, json_type_object))
			print_candidate(f);
	}
}

static void print_member_flat(const char *key, json_object *v)
{
	char items[32];

	if (json_object_is_type(v, json_type_object)) {
		_cleanup_free_ char *sub = NULL;

		if (asprintf(&sub, "%s.", key) >= 0)
			print_object_flat(sub, v);
		return;
	}
	put_field(key, 32);
	if (json_object_is_type(v, json_type_array)) {
		snprintf(items, sizeof(items), "%zu items", json_object_array_length(v));
		put_field(items, 0);
	} else {
		put_field(v ? json_object_get_string(v) : "-", 0);
	}
}

void print_object_flat(const char *prefix, json_object *o)
{
	json_object_object_foreach(o, k, v) {
		_cleanup_free_ char *key = NULL;

		if (asprintf(&key, "%s%s", prefix, k) < 0)
			return;
		print_member_flat(key, v);
	}
}

int print_ecs(json_object *flows)
{
	struct ecs_host host;

	ecs_host_read(&host);
	for (size_t i = 0; i < json_object_array_length(flows); i++) {
		_cleanup_json_ json_object *rec = ecs_from_flow(json_object_array_get_idx(flows, i), &host);

		if (!rec)
			return log_error("Out of memory"), EXIT_ERROR;
		puts(json_object_to_json_string_ext(rec, JSON_LINE_FLAGS));
	}
	return fflush(stdout) == 0 ? EXIT_FOUND : EXIT_ERROR;
}

// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "export-journal.h"
#include "jsonutil.h"
#include "log.h"
#include "macro.h"

/* journald takes field names of [A-Z0-9_], at most 64 bytes */
#define FIELD_MAX 64
#define FIELDS_MAX 256
/* In a flood, one "N were dropped" entry a second at most: the tokens
 * go to flows, not to notices of one or two drops each. */
#define NOTICE_INTERVAL_USEC (1000 * 1000ULL)

struct export_journal {
	double rate, burst, tokens;
	uint64_t last_usec;
	uint64_t last_notice_usec;
	uint64_t pending_dropped; /* since the last notice we sent */
	struct export_journal_stats stats;
};

/* The fields of one entry: "NAME=value" strings, freed together. */
struct fields {
	struct iovec iov[FIELDS_MAX];
	size_t n;
};

static void fields_done(struct fields *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->iov[i].iov_base);
	f->n = 0;
}

static void fields_add(struct fields *f, const char *name, const char *value, size_t len)
{
	size_t nl = strlen(name);
	char *s;

	if (f->n >= FIELDS_MAX)
		return;
	s = malloc(nl + 1 + len);
	if (!s)
		return;
	memcpy(s, name, nl);
	s[nl] = '=';
	memcpy(s + nl + 1, value, len);
	f->iov[f->n].iov_base = s;
	f->iov[f->n].iov_len = nl + 1 + len;
	f->n++;
}

static void fields_addf(struct fields *f, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fields_addf(struct fields *f, const char *name, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n >= 0)
		fields_add(f, name, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

/* "source.ip" -> CONNPID_SOURCE_IP; what is connpid's own already has
 * the prefix: "connpid.unit" -> CONNPID_UNIT. */
static void field_name(const char *path, char out[static FIELD_MAX + 1])
{
	size_t n;

	if (startswith(path, "connpid."))
		path += strlen("connpid.");
	n = (size_t)snprintf(out, FIELD_MAX + 1, "CONNPID_%s", path);
	if (n > FIELD_MAX)
		n = FIELD_MAX;
	for (size_t i = 0; i < n; i++) {
		char c = out[i];

		if (c >= 'a' && c <= 'z')
			out[i] = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			out[i] = '_';
	}
	out[n] = '\0';
}

static void add_leaf(struct fields *f, const char *path, json_object *v)
{
	char name[FIELD_MAX + 1];
	const char *s;

	if (!v)
		return;
	field_name(path, name);
	if (json_object_is_type(v, json_type_string)) {
		s = json_object_get_string(v);
		fields_add(f, name, s, (size_t)json_object_get_string_len(v));
	} else {
		s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		fields_add(f, name, s, strlen(s));
	}
}

static bool is_scalar(json_object *v)
{
	return v && !json_object_is_type(v, json_type_object) && !json_object_is_type(v, json_type_array);
}

/* Objects flatten; an array of scalars is the same field repeated, as
 * journald keeps it; anything deeper is JSON text. */
static void add_tree(struct fields *f, const char *prefix, json_object *o)
{
	json_object_object_foreach(o, k, v) {
		char path[256];
		bool scalars = true;

		snprintf(path, sizeof(path), "%s%s%s", prefix, prefix[0] ? "." : "", k[0] == '@' ? k + 1 : k);
		if (json_object_is_type(v, json_type_object)) {
			add_tree(f, path, v);
			continue;
		}
		if (!json_object_is_type(v, json_type_array)) {
			add_leaf(f, path, v);
			continue;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++)
			scalars = scalars && is_scalar(json_object_array_get_idx(v, i));
		if (!scalars) {
			add_leaf(f, path, v);
			continue;
		}
		for (size_t i = 0; i < json_object_array_length(v); i++)
			add_leaf(f, path, json_object_array_get_idx(v, i));
	}
}

static const char *member(json_object *o, const char *k, const char *dflt)
{
	json_object *v;

	if (!json_object_object_get_ex(o, k, &v) || !v)
		return dflt;
	return json_object_get_string(v);
}

static void add_message(struct fields *f, json_object *flow)
{
	json_object *d;
	const char *domain = NULL;

	if (json_object_object_get_ex(flow, "domain", &d) && json_object_is_type(d, json_type_object))
		domain = member(d, "name", NULL);
	const char *unit = member(flow, "unit", NULL);
	/* src is always this host's end: an accepted flow came the other way */
	bool in = streq(member(flow, "direction", "outbound"), "inbound");

	fields_addf(f, "MESSAGE", "%s %s:%s %s %s:%s%s%s%s %s pid %s %s%s%s%s%s",
		    member(flow, "proto", "?"), member(flow, "src", "?"), member(flow, "sport", "?"),
		    in ? "<-" : "->",
		    member(flow, "dst", "?"), member(flow, "dport", "?"),
		    domain ? " (" : "", domain ? domain : "", domain ? ")" : "",
		    in ? "accepted by" : "by", member(flow, "pid", "?"), member(flow, "comm", "?"),
		    member(flow, "exe", NULL) ? " " : "", member(flow, "exe", ""),
		    unit ? " in " : "", unit ? unit : "");
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

static bool take_token(struct export_journal *j)
{
	uint64_t now = now_usec();

	j->tokens += (double)(now - j->last_usec) * j->rate / 1e6;
	if (j->tokens > j->burst)
		j->tokens = j->burst;
	j->last_usec = now;
	if (j->tokens < 1.0)
		return false;
	j->tokens -= 1.0;
	return true;
}

static void send_fields(struct export_journal *j, struct fields *f)
{
	int r = sd_journal_sendv(f->iov, (int)f->n);

	if (r < 0)
		j->stats.errors++;
	else
		j->stats.sent++;
}

/* One entry says how many went unlogged, so the gap shows in the journal. */
static void say_dropped(struct export_journal *j)
{
	struct fields f = {};

	fields_addf(&f, "MESSAGE", "%llu flow entries were not logged (connpid export rate limit %.0f/s, burst %.0f)",
		    (unsigned long long)j->pending_dropped, j->rate, j->burst);
	fields_add(&f, "MESSAGE_ID", EXPORT_JOURNAL_DROPPED_ID, strlen(EXPORT_JOURNAL_DROPPED_ID));
	fields_add(&f, "PRIORITY", "4", 1);
	fields_addf(&f, "CONNPID_EXPORT_DROPPED", "%llu", (unsigned long long)j->pending_dropped);
	fields_addf(&f, "CONNPID_EXPORT_DROPPED_TOTAL", "%llu", (unsigned long long)j->stats.dropped);
	send_fields(j, &f);
	fields_done(&f);
	j->pending_dropped = 0;
	j->last_notice_usec = j->last_usec;
}

int export_journal_new(unsigned rate, unsigned burst, struct export_journal **ret)
{
	struct export_journal *j = calloc(1, sizeof(*j));

	if (!j)
		return -ENOMEM;
	j->rate = rate ? rate : EXPORT_JOURNAL_RATE;
	j->burst = burst ? burst : EXPORT_JOURNAL_BURST;
	j->tokens = j->burst;
	j->last_usec = now_usec();
	*ret = j;
	return 0;
}

struct export_journal *export_journal_free(struct export_journal *j)
{
	if (!j)
		return NULL;
	if (j->pending_dropped)
		say_dropped(j);
	free(j);
	return NULL;
}

static void drop(struct export_journal *j)
{
	j->stats.dropped++;
	j->pending_dropped++;
}

bool export_journal_admit(struct export_journal *j)
{
	if (!take_token(j)) {
		drop(j);
		return false;
	}
	/* The notice takes this token; the flow needs one more. */
	if (j->pending_dropped && j->last_usec - j->last_notice_usec >= NOTICE_INTERVAL_USEC) {
		say_dropped(j);
		if (!take_token(j)) {
			drop(j);
			return false;
		}
	}
	return true;
}

void export_journal_flow(struct export_journal *j, json_object *rec, json_object *flow)
{
	struct fields f = {};

	add_message(&f, flow);
	fields_add(&f, "MESSAGE_ID", EXPORT_JOURNAL_FLOW_ID, strlen(EXPORT_JOURNAL_FLOW_ID));
	fields_add(&f, "PRIORITY", "6", 1);
	add_tree(&f, "", rec);
	send_fields(j, &f);
	fields_done(&f);
}

json_object *export_journal_stats_to_json(const struct export_journal *j)
{
	json_object *o = json_object_new_object();

	json_add_u64(o, "sent", j->stats.sent);
	json_add_u64(o, "dropped", j->stats.dropped);
	json_add_u64(o, "errors", j->stats.errors);
	return o;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A streaming JSON writer for the hot answer path: flows are written
 * straight into one growing buffer instead of a json-c tree of some sixty
 * allocations per answer (40% of queryd's CPU per lookup, tests/bench).
 * Strings are escaped as json-c escapes them (plus DEL and C1 controls)
 * and always come out as valid UTF-8, whatever bytes they are given. jw_to_object() hands the result to json-c as a value
 * that serializes to exactly that text.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

#define JW_MAX_DEPTH 8

struct jsonw {
	char *buf;
	size_t len, cap;
	bool oom;
	int depth;
	bool first[JW_MAX_DEPTH + 1]; /* no element written yet at this depth */
};

void jw_init(struct jsonw *w);
void jw_free(struct jsonw *w);
/* Append to a buffer someone else owns (malloc'd, grown with realloc):
 * afterwards w->buf, w->len and w->cap are its new state. No allocation
 * per answer when the buffer is a client's output buffer. */
void jw_attach(struct jsonw *w, char *buf, size_t len, size_t cap);

void jw_obj_begin(struct jsonw *w);
void jw_obj_end(struct jsonw *w);
void jw_arr_begin(struct jsonw *w);
void jw_arr_end(struct jsonw *w);
/* A key inside an object; the value follows. */
void jw_key(struct jsonw *w, const char *key);

void jw_str(struct jsonw *w, const char *s);      /* NULL writes null */
void jw_strn(struct jsonw *w, const char *s, size_t n);
void jw_int(struct jsonw *w, int64_t v);
void jw_double(struct jsonw *w, double v);
void jw_bool(struct jsonw *w, bool v);
void jw_null(struct jsonw *w);
/* A value given as JSON text that is valid already (json-c's rendering). */
void jw_raw(struct jsonw *w, const char *s, size_t n);

/* key + value in one call, for objects */
void jw_kstr(struct jsonw *w, const char *key, const char *s);
void jw_kint(struct jsonw *w, const char *key, int64_t v);
void jw_kbool(struct jsonw *w, const char *key, bool v);

/* A json-c value that serializes to the written text; takes the buffer.
 * NULL when out of memory. */
json_object *jw_to_object(struct jsonw *w);

/* Make a json-c answer safe to write, in place: strings with bytes that
 * are not UTF-8 get U+FFFD for each (as jw_str does; json-c passes them
 * through), non-finite numbers become null (json-c writes NaN). For every
 * answer built with json-c: history rows, status, errors, echoed ids. */
void json_sanitize(json_object *o);


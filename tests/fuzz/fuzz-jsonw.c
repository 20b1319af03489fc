// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target (e): the streaming JSON writer (queryd/jsonw.c), which
 * writes every flow answer, with bytes from anywhere (comm, exe, cmdline,
 * cgroup paths, DNS names, Docker names). The input is a program: each
 * byte an operation, strings and numbers taken from the bytes after it;
 * only well-formed sequences are written (keys in objects, values in
 * arrays, nesting up to JW_MAX_DEPTH, finite doubles). The text and its
 * jw_to_object() serialization must be identical, strict UTF-8 and one
 * JSON value that json-c's strict parser accepts; when every string given
 * was valid UTF-8 the decoded value must equal what was written.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-check.h"
#include "jsonw.h"
#include "jsonutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct reader {
	const uint8_t *p;
	size_t n;
};

static size_t take(struct reader *r, size_t want, const uint8_t **ret)
{
	size_t n = want < r->n ? want : r->n;

	*ret = r->p;
	r->p += n;
	r->n -= n;
	return n;
}

static uint64_t take_u64(struct reader *r)
{
	const uint8_t *p;
	uint64_t v = 0;
	size_t n = take(r, 8, &p);

	memcpy(&v, p, n);
	return v;
}

/* A string: one length byte, then that many bytes (fewer at the end). */
static size_t take_str(struct reader *r, const uint8_t **ret)
{
	const uint8_t *lp;

	if (!take(r, 1, &lp))
		return take(r, 0, ret);
	return take(r, *lp, ret);
}

struct level {
	json_object *expect;    /* what the text must decode to */
	bool is_obj;
	char *key;              /* object: the key written, waiting for its value */
};

struct prog {
	struct jsonw w;
	struct level st[JW_MAX_DEPTH + 1];
	int depth;
	bool all_utf8;
};

/* A value is due: in an array always, in an object after a key. */
static bool value_due(const struct prog *g)
{
	const struct level *l = &g->st[g->depth - 1];

	return !l->is_obj || l->key;
}

static void add_expect(struct prog *g, json_object *v)
{
	struct level *l = &g->st[g->depth - 1];

	if (l->is_obj) {
		json_object_object_add(l->expect, l->key, v);
		free(l->key);
		l->key = NULL;
	} else {
		json_object_array_add(l->expect, v);
	}
}

static void open_level(struct prog *g, bool obj)
{
	json_object *o = obj ? json_object_new_object() : json_object_new_array();

	if (g->depth > 0)
		add_expect(g, json_object_get(o));
	g->st[g->depth++] = (struct level){ .expect = o, .is_obj = obj };
	if (obj)
		jw_obj_begin(&g->w);
	else
		jw_arr_begin(&g->w);
}

static void close_level(struct prog *g)
{
	struct level *l = &g->st[g->depth - 1];

	if (l->is_obj && l->key) {
		/* a key without a value yet: give it one */
		jw_null(&g->w);
		add_expect(g, NULL);
	}
	if (l->is_obj)
		jw_obj_end(&g->w);
	else
		jw_arr_end(&g->w);
	if (g->depth > 1)
		json_object_put(l->expect);
	g->depth--;
}

static void op(struct prog *g, uint8_t code, struct reader *r)
{
	const uint8_t *s;
	size_t n;

	switch (code % 10) {
	case 0: /* object */
	case 1: /* array */
		if (value_due(g) && g->depth < JW_MAX_DEPTH)
			open_level(g, code % 10 == 0);
		break;
	case 2:
		if (g->depth > 1)
			close_level(g);
		break;
	case 3: /* a key: C string, as every caller passes one */
		if (g->st[g->depth - 1].is_obj && !g->st[g->depth - 1].key) {
			char *k;

			n = take_str(r, &s);
			k = fuzz_strndup(s, n);
			n = strlen(k);
			g->all_utf8 &= fuzz_utf8_valid(k, n);
			jw_key(&g->w, k);
			g->st[g->depth - 1].key = k;
		}
		break;
	case 4: /* bytes with a length: NULs and all */
		if (value_due(g)) {
			n = take_str(r, &s);
			g->all_utf8 &= fuzz_utf8_valid(s, n);
			jw_strn(&g->w, (const char *)s, n);
			add_expect(g, json_object_new_string_len((const char *)s, (int)n));
		}
		break;
	case 5: /* a C string */
		if (value_due(g)) {
			char *c;

			n = take_str(r, &s);
			c = fuzz_strndup(s, n);
			g->all_utf8 &= fuzz_utf8_valid(c, strlen(c));
			jw_str(&g->w, c);
			add_expect(g, json_object_new_string(c));
			free(c);
		}
		break;
	case 6:
		if (value_due(g)) {
			int64_t v = (int64_t)take_u64(r);

			jw_int(&g->w, v);
			add_expect(g, json_object_new_int64(v));
		}
		break;
	case 7:
		if (value_due(g)) {
			uint64_t u = take_u64(r);
			double d;

			memcpy(&d, &u, sizeof(d));
			if (!isfinite(d))
				break; /* JSON has no NaN or infinity: callers must not pass them */
			jw_double(&g->w, d);
			add_expect(g, json_object_new_double(d));
		}
		break;
	case 8:
		if (value_due(g)) {
			jw_bool(&g->w, code & 0x80);
			add_expect(g, json_object_new_boolean(!!(code & 0x80)));
		}
		break;
	case 9:
		if (value_due(g)) {
			if (code & 0x80) {
				jw_str(&g->w, NULL);
			} else {
				jw_null(&g->w);
			}
			add_expect(g, NULL);
		}
		break;
	}
}

static bool same(json_object *a, json_object *b);

static bool same_obj(json_object *a, json_object *b)
{
	if (json_object_object_length(a) != json_object_object_length(b))
		return false;
	json_object_object_foreach(a, k, v) {
		json_object *w;

		if (!json_object_object_get_ex(b, k, &w) || !same(v, w))
			return false;
	}
	return true;
}

static bool same(json_object *a, json_object *b)
{
	if (!a || !b)
		return a == b;
	if (json_object_get_type(a) != json_object_get_type(b))
		return false;
	switch (json_object_get_type(a)) {
	case json_type_object:
		return same_obj(a, b);
	case json_type_array:
		if (json_object_array_length(a) != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < json_object_array_length(a); i++)
			if (!same(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	case json_type_string:
		return json_object_get_string_len(a) == json_object_get_string_len(b) &&
		       memcmp(json_object_get_string(a), json_object_get_string(b),
			      (size_t)json_object_get_string_len(a)) == 0;
	case json_type_int:
		return json_object_get_int64(a) == json_object_get_int64(b);
	case json_type_double:
		return json_object_get_double(a) == json_object_get_double(b);
	case json_type_boolean:
		return json_object_get_boolean(a) == json_object_get_boolean(b);
	default:
		return true;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct reader r = { data, size };
	struct prog g = { .all_utf8 = true };
	json_object *got, *raw;
	const char *text2;
	size_t len2;
	char *text;
	size_t len;

	jw_init(&g.w);
	open_level(&g, true);
	while (r.n > 0) {
		const uint8_t *c;

		take(&r, 1, &c);
		op(&g, *c, &r);
	}
	while (g.depth > 0)
		close_level(&g);
	if (g.w.oom)
		abort();
	text = fuzz_strndup((const uint8_t *)g.w.buf, g.w.len);
	len = g.w.len;
	got = fuzz_check_json(text, len);
	if (g.all_utf8 && !same(g.st[0].expect, got)) {
		fprintf(stderr, "expected: %s\n", json_object_to_json_string_ext(g.st[0].expect, JSON_LINE_FLAGS));
		fuzz_fail("decoded value differs from what was written", 0, text, len);
	}
	/* the json-c value queryd puts in answers serializes to the same text */
	raw = jw_to_object(&g.w);
	if (!raw)
		abort();
	text2 = json_object_to_json_string_length(raw, JSON_LINE_FLAGS, &len2);
	if (len2 != len || memcmp(text2, text, len) != 0)
		fuzz_fail("jw_to_object() serializes to other text", 0, text2, len2);
	json_object_put(raw);
	json_object_put(got);
	json_object_put(g.st[0].expect);
	jw_free(&g.w);
	free(text);
	return 0;
}

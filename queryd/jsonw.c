// SPDX-License-Identifier: GPL-2.0-or-later
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "macro.h"
#include "growbuf.h"
#include "jsonw.h"

void jw_init(struct jsonw *w)
{
	memset(w, 0, sizeof(*w));
	w->first[0] = true;
}

void jw_attach(struct jsonw *w, char *buf, size_t len, size_t cap)
{
	jw_init(w);
	w->buf = buf;
	w->len = len;
	w->cap = cap;
}

void jw_free(struct jsonw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}

/* Room for n more bytes and the NUL: true, or out of memory. */
static bool room(struct jsonw *w, size_t n)
{
	if (w->oom)
		return false;
	/* the buffer seldom grows: no call for the common case */
	if (w->len + n + 1 <= w->cap)
		return true;
	if (growbuf_reserve(&w->buf, &w->cap, w->len + n + 1, 1024) < 0) {
		w->oom = true;
		return false;
	}
	return true;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
	if (!room(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

/* Inlined, as before_value(): a call each was a tenth of rendering. */
static inline __attribute__((always_inline)) void putc_(struct jsonw *w, char c)
{
	/* most bytes of an answer are single ones: no memcpy for them */
	if (!w->oom && w->len + 2 <= w->cap) {
		w->buf[w->len++] = c;
		w->buf[w->len] = '\0';
		return;
	}
	put(w, &c, 1);
}

/* A value at this depth: a comma before all but the first. Keys handle
 * their own comma and leave the value to follow without one. */
static inline __attribute__((always_inline)) void before_value(struct jsonw *w)
{
	if (w->first[w->depth])
		w->first[w->depth] = false;
	else
		putc_(w, ',');
}

static void open_(struct jsonw *w, char c)
{
	putc_(w, c);
	if (w->depth < JW_MAX_DEPTH)
		w->depth++;
	w->first[w->depth] = true;
}

void jw_obj_begin(struct jsonw *w)
{
	before_value(w);
	open_(w, '{');
}

void jw_arr_begin(struct jsonw *w)
{
	before_value(w);
	open_(w, '[');
}

void jw_obj_end(struct jsonw *w)
{
	putc_(w, '}');
	if (w->depth > 0)
		w->depth--;
}

void jw_arr_end(struct jsonw *w)
{
	putc_(w, ']');
	if (w->depth > 0)
		w->depth--;
}

/* A control character as \u00XX, the way json-c writes C0 controls. */
static void put_u_escape(struct jsonw *w, unsigned c)
{
	char u[8];

	snprintf(u, sizeof(u), "\\u%04x", c);
	put(w, u, 6);
}

/* Bytes copied as they are inside a string: printable ASCII but " and \
 * (0x22, 0x5c). One load a byte: keys and strings are most of an answer. */
static const unsigned char plain_bytes[256] = {
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};

static inline bool plain_byte(unsigned char c)
{
	return plain_bytes[c];
}

/* ", \ and C0 controls escaped as json-c escapes them (without the slash:
 * we always print NOSLASHESCAPE). DEL and C1 controls too, which JSON
 * allows raw but a terminal acts on. Each byte that is not part of a
 * well-formed UTF-8 character becomes U+FFFD (jsonutil.h): the answer is
 * valid UTF-8 whatever the bytes, so a strict client always decodes it. */
static void put_escaped(struct jsonw *w, const char *s, size_t n)
{
	size_t start = 0;

	putc_(w, '"');
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		unsigned ctl = 0x100; /* none */
		int l;

		/* printable ASCII, the bulk of it: copied as it is */
		if (plain_byte(c)) {
			i++;
			continue;
		}
		l = utf8_char_len(s + i, n - i);
		if (l == 1) {
			switch (c) {
			case '"': esc = "\\\""; break;
			case '\\': esc = "\\\\"; break;
			case '\b': esc = "\\b"; break;
			case '\f': esc = "\\f"; break;
			case '\n': esc = "\\n"; break;
			case '\r': esc = "\\r"; break;
			case '\t': esc = "\\t"; break;
			default:
				if (c < 0x20 || c == 0x7f)
					ctl = c;
			}
		} else if (l == 2 && c == 0xc2 && (unsigned char)s[i + 1] < 0xa0)
			ctl = (unsigned char)s[i + 1]; /* U+0080-U+009F */
		else if (l <= 0)
			esc = UTF8_REPLACEMENT;
		if (!esc && ctl == 0x100) {
			i += (size_t)l;
			continue;
		}
		put(w, s + start, i - start);
		if (esc)
			put(w, esc, strlen(esc));
		else
			put_u_escape(w, ctl);
		i += l > 0 ? (size_t)l : 1;
		start = i;
	}
	put(w, s + start, n - start);
	putc_(w, '"');
}

/* A key that needs no escaping (all of ours) copied as it is checked:
 * "key": in one pass. false (nothing kept) for any other key. */
static bool put_plain_key(struct jsonw *w, const char *key)
{
	size_t n = 0;
	char *d;

	if (!room(w, 64 + 3))
		return false;
	d = w->buf + w->len;
	*d++ = '"';
	for (; key[n]; n++) {
		if (n == 64 || !plain_byte((unsigned char)key[n])) {
			w->buf[w->len] = '\0'; /* the text stays what it was */
			return false;
		}
		d[n] = key[n];
	}
	d[n] = '"';
	d[n + 1] = ':';
	w->len += n + 3;
	w->buf[w->len] = '\0';
	return true;
}

void jw_key(struct jsonw *w, const char *key)
{
	before_value(w);
	if (!put_plain_key(w, key)) {
		put_escaped(w, key, strlen(key));
		putc_(w, ':');
	}
	/* the value that follows takes no comma */
	w->first[w->depth] = true;
}

void jw_strn(struct jsonw *w, const char *s, size_t n)
{
	before_value(w);
	put_escaped(w, s, n);
}

void jw_str(struct jsonw *w, const char *s)
{
	if (!s)
		jw_null(w);
	else
		jw_strn(w, s, strlen(s));
}

void jw_int(struct jsonw *w, int64_t v)
{
	/* by hand: snprintf was a tenth of a lookup's rendering */
	char b[24], *p = b + sizeof(b);
	uint64_t u = v < 0 ? -(uint64_t)v : (uint64_t)v;

	do
		*--p = (char)('0' + u % 10);
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	before_value(w);
	put(w, p, (size_t)(b + sizeof(b) - p));
}

static const uint64_t pow10_u64[18] = {
	1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL, 100000000ULL,
	1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL, 10000000000000ULL,
	100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
};

/*
 * "%.17g" of v in [1, 2^53) (timestamps, ages), as glibc prints it but
 * without its multi-precision path (a tenth of a lookup's CPU, issue 15):
 * v is N / 2^s exactly; N * 10^k (k = 17 - integer digits, < 2^107) is
 * shifted and rounded half to even, as printf rounds in the default mode;
 * then trailing fraction zeros go, as %g drops them. The length, or 0
 * for any other v (printf writes it). tests/queryd/test-jsonw-double.c
 * compares the two over millions of values.
 */
static int format_g17(double v, char *out)
{
	unsigned __int128 x, q, rem, half;
	uint64_t ip, digits;
	int e, s, d = 1, k, n;

	if (!(v >= 1.0 && v < 9007199254740992.0))
		return 0;
	(void)frexp(v, &e);
	s = 53 - e;
	ip = (uint64_t)v;
	while (d < 17 && ip >= pow10_u64[d])
		d++;
	k = 17 - d;
	x = (unsigned __int128)(uint64_t)ldexp(v, s) * pow10_u64[k];
	q = x >> s;
	if (s > 0) {
		rem = x & (((unsigned __int128)1 << s) - 1);
		half = (unsigned __int128)1 << (s - 1);
		if (rem > half || (rem == half && (q & 1)))
			q++;
	}
	if (q >= pow10_u64[17])
		return 0; /* rounded up to one more integer digit */
	digits = (uint64_t)q;
	/* 17 digits: d before the point, k after it; zeros at the end dropped */
	while (k > 0 && digits % 10 == 0) {
		digits /= 10;
		k--;
	}
	n = d + (k > 0 ? k + 1 : 0);
	for (int i = n - 1; i >= 0; i--) {
		if (k > 0 && i == d) {
			out[i] = '.';
			continue;
		}
		out[i] = (char)('0' + digits % 10);
		digits /= 10;
	}
	out[n] = '\0';
	return n;
}

void jw_double(struct jsonw *w, double v)
{
	char b[40];
	int n;

	/* JSON has no NaN or Infinity: the value is unknown */
	if (!isfinite(v)) {
		jw_null(w);
		return;
	}
	n = format_g17(v, b);
	if (n == 0)
		n = snprintf(b, sizeof(b), "%.17g", v);
	before_value(w);
	put(w, b, (size_t)n);
	/* json-c keeps a double a double: "3" would read back as an int */
	if (!strpbrk(b, ".eE"))
		put(w, ".0", 2);
}

void jw_bool(struct jsonw *w, bool v)
{
	before_value(w);
	put(w, v ? "true" : "false", v ? 4 : 5);
}

void jw_null(struct jsonw *w)
{
	before_value(w);
	put(w, "null", 4);
}

void jw_raw(struct jsonw *w, const char *s, size_t n)
{
	before_value(w);
	put(w, s, n);
}

void jw_kstr(struct jsonw *w, const char *key, const char *s)
{
	jw_key(w, key);
	jw_str(w, s);
}

void jw_kint(struct jsonw *w, const char *key, int64_t v)
{
	jw_key(w, key);
	jw_int(w, v);
}

void jw_kbool(struct jsonw *w, const char *key, bool v)
{
	jw_key(w, key);
	jw_bool(w, v);
}

static int raw_serializer(struct json_object *jso, struct printbuf *pb, int level, int flags)
{
	const char *text = json_object_get_userdata(jso);

	return printbuf_memappend(pb, text, (int)strlen(text));
}

static void raw_free(struct json_object *jso, void *userdata)
{
	free(userdata);
}

json_object *jw_to_object(struct jsonw *w)
{
	json_object *o;

	if (w->oom || !w->buf) {
		jw_free(w);
		return NULL;
	}
	/* any type would do: only the serializer is ever used */
	o = json_object_new_object();
	if (!o) {
		jw_free(w);
		return NULL;
	}
	json_object_set_serializer(o, raw_serializer, w->buf, raw_free);
	w->buf = NULL;
	w->len = w->cap = 0;
	return o;
}

static json_object *sanitize_value(json_object *v);

static void sanitize_string(json_object *v)
{
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v), len;
	_cleanup_free_ char *fixed = NULL;

	if (utf8_is_valid(s, n))
		return;
	fixed = utf8_make_valid(s, n, &len);
	if (!fixed || len > INT_MAX || json_object_set_string_len(v, fixed, (int)len) < 0)
		(void)json_object_set_string(v, ""); /* out of memory: nothing rather than bad bytes */
}

/* Keys are ours, or from a request already checked to be UTF-8. */
static void sanitize_object(json_object *v)
{
	json_object_object_foreach(v, key, val)
		if (val && !sanitize_value(val))
			json_object_object_add(v, key, NULL); /* in place: the walk goes on */
}

static void sanitize_array(json_object *v)
{
	for (size_t i = 0; i < json_object_array_length(v); i++) {
		json_object *e = json_object_array_get_idx(v, i);

		if (e && !sanitize_value(e))
			json_object_array_put_idx(v, i, NULL);
	}
}

/* The replacement for v: v itself, mended in place, or NULL (JSON null)
 * for a number JSON cannot write. */
static json_object *sanitize_value(json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_double:
		if (!isfinite(json_object_get_double(v)))
			return NULL;
		/* json-c writes a parsed number back as its source text, which
		 * its lenient parser took as given ("031e" is written "031"):
		 * our own rendering of the value instead */
		(void)json_object_set_double(v, json_object_get_double(v));
		return v;
	case json_type_string:
		sanitize_string(v);
		break;
	case json_type_object:
		sanitize_object(v);
		break;
	case json_type_array:
		sanitize_array(v);
		break;
	default:
		break;
	}
	return v;
}

void json_sanitize(json_object *o)
{
	/* containers and numbers are mended in place; a bare string is ours */
	if (o && (json_object_is_type(o, json_type_object) || json_object_is_type(o, json_type_array) ||
		  json_object_is_type(o, json_type_double)))
		(void)sanitize_value(o);
}

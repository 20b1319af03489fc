/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <json-c/json.h>

static inline void json_putp(json_object **o)
{
	json_object_put(*o);
}
#define _cleanup_json_ __attribute__((cleanup(json_putp)))

/* A counter as a member (json-c has no unsigned 64-bit type; counters
 * stay far below 2^63). */
static inline void json_add_u64(json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_int64((int64_t)v));
}

/* One line per object, and paths without "\/". */
#define JSON_LINE_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/*
 * UTF-8 as JSON needs it (RFC 3629, Unicode table 3-7): no overlong forms,
 * no surrogates, nothing above U+10FFFF. Everything we answer with comes
 * from outside (comm, cmdline, paths, Docker, DNS) and is only bytes, and
 * json-c checks none of it.
 *
 * The length of the well-formed character at s[0..n): 1-4; 0 when s[0]
 * does not start one; -1 when the n bytes are a well-formed start cut
 * short (the character would need bytes past n).
 */
static inline int utf8_char_len(const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	unsigned char lo = 0x80, hi = 0xbf;
	int len;

	if (n == 0)
		return 0;
	if (u[0] < 0x80)
		return 1;
	if (u[0] < 0xc2) /* a continuation byte, or an overlong 2-byte lead */
		return 0;
	if (u[0] <= 0xdf)
		len = 2;
	else if (u[0] <= 0xef) {
		len = 3;
		if (u[0] == 0xe0)
			lo = 0xa0; /* overlong */
		else if (u[0] == 0xed)
			hi = 0x9f; /* surrogates */
	} else if (u[0] <= 0xf4) {
		len = 4;
		if (u[0] == 0xf0)
			lo = 0x90; /* overlong */
		else if (u[0] == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0;
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return -1;
		if (u[i] < lo || u[i] > hi)
			return 0;
		lo = 0x80;
		hi = 0xbf;
	}
	return len;
}

static inline bool utf8_is_valid(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		int l = utf8_char_len(s + i, n - i);

		if (l <= 0)
			return false;
		i += (size_t)l;
	}
	return true;
}

/* Where to cut s[0..n) so that a character cut short at the end goes
 * whole rather than half: for truncating to a byte budget. */
static inline size_t utf8_cut(const char *s, size_t n)
{
	for (size_t k = 1; k <= 3 && k <= n; k++) {
		if (((unsigned char)s[n - k] & 0xc0) == 0x80)
			continue;
		return utf8_char_len(s + n - k, k) < 0 ? n - k : n;
	}
	return n;
}

/* The bytes of U+FFFD, which stands for each byte that is not part of a
 * well-formed character: the rule every answer follows (connpid(7)). */
#define UTF8_REPLACEMENT "\xef\xbf\xbd"

/* s[0..n) with each such byte replaced; NUL-terminated, length in
 * *ret_len. NULL when out of memory. */
static inline char *utf8_make_valid(const char *s, size_t n, size_t *ret_len)
{
	char *out = malloc(3 * n + 1), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		int l = utf8_char_len(s + i, n - i);

		if (l > 0) {
			memcpy(p, s + i, (size_t)l);
			p += l;
			i += (size_t)l;
		} else {
			memcpy(p, UTF8_REPLACEMENT, 3);
			p += 3;
			i++;
		}
	}
	*p = '\0';
	*ret_len = (size_t)(p - out);
	return out;
}

/* A json-c string from bytes we did not choose (/proc, pin names, rows):
 * json-c would keep them as they are. NULL when out of memory. */
static inline json_object *json_new_string_utf8(const char *s)
{
	size_t len;
	char *v = utf8_make_valid(s, strlen(s), &len);
	json_object *o = v && len <= INT32_MAX ? json_object_new_string_len(v, (int)len) : NULL;

	free(v);
	return o;
}

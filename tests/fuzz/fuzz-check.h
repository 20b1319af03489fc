/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What every fuzz target asserts about text queryd sends out: strict
 * UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF), no raw control bytes (queryd writes compact JSON, so one
 * can only come from an unescaped string), and one complete JSON value
 * that json-c's strict, UTF-8 validating parser accepts. A violation
 * prints the text in hex and aborts, which libFuzzer reports as a crash.
 *
 * CONNPID_FUZZ_ALLOW_BAD_UTF8=1 skips the UTF-8 part only, to look for
 * other defects while a known UTF-8 one is being fixed.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

/* Offset of the first byte that is not strict UTF-8, or SIZE_MAX. */
static inline size_t fuzz_utf8_invalid_at(const void *p, size_t n)
{
	const unsigned char *s = p;
	size_t i = 0;

	while (i < n) {
		unsigned char c = s[i];
		uint32_t cp, min;
		size_t k;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return i;
		}
		if (n - i <= k)
			return i;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return i;
			cp = cp << 6 | (s[i + j] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i;
		i += k + 1;
	}
	return SIZE_MAX;
}

static inline bool fuzz_utf8_valid(const void *p, size_t n)
{
	return fuzz_utf8_invalid_at(p, n) == SIZE_MAX;
}

static inline bool fuzz_allow_bad_utf8(void)
{
	static int cached = -1;

	if (cached < 0) {
		const char *e = getenv("CONNPID_FUZZ_ALLOW_BAD_UTF8");

		cached = e && e[0] == '1';
	}
	return cached;
}

static inline void fuzz_hexdump(const char *label, const void *p, size_t n)
{
	const unsigned char *s = p;

	fprintf(stderr, "%s (%zu bytes):\n", label, n);
	for (size_t i = 0; i < n && i < 4096; i++)
		fprintf(stderr, "%02x%s", s[i], (i + 1) % 32 == 0 ? "\n" : "");
	fprintf(stderr, "%s\n", n > 4096 ? " ..." : "");
}

static inline void fuzz_fail(const char *why, size_t at, const void *text, size_t n)
{
	const unsigned char *s = text;
	size_t from = at > 48 ? at - 48 : 0, to = at + 48 < n ? at + 48 : n;

	fprintf(stderr, "FUZZ CHECK FAILED: %s at byte %zu of %zu\n  near: \"", why, at, n);
	for (size_t i = from; i < to; i++)
		fprintf(stderr, s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\' ? "%c" : "\\x%02x",
			s[i]);
	fprintf(stderr, "\"\n");
	fuzz_hexdump("  text", text, n);
	abort();
}

/* Check one output text; returns the parsed value (caller puts it). */
static inline json_object *fuzz_check_json(const char *text, size_t n)
{
	int flags = JSON_TOKENER_STRICT | (fuzz_allow_bad_utf8() ? 0 : JSON_TOKENER_VALIDATE_UTF8);
	enum json_tokener_error err;
	struct json_tokener *tok;
	json_object *o;
	size_t at, end;

	if (!fuzz_allow_bad_utf8() && (at = fuzz_utf8_invalid_at(text, n)) != SIZE_MAX)
		fuzz_fail("output is not valid UTF-8", at, text, n);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)text[i] < 0x20)
			fuzz_fail("raw control byte in compact JSON output", i, text, n);
	tok = json_tokener_new_ex(JSON_TOKENER_DEFAULT_DEPTH);
	if (!tok)
		abort();
	json_tokener_set_flags(tok, flags);
	o = json_tokener_parse_ex(tok, text, (int)n);
	err = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (err != json_tokener_success || !o) {
		json_object_put(o);
		fprintf(stderr, "json-c: %s\n", json_tokener_error_desc(err));
		fuzz_fail("output is not one valid JSON value", end, text, n);
	}
	if (end != n) {
		json_object_put(o);
		fuzz_fail("trailing bytes after the JSON value", end, text, n);
	}
	return o;
}

/* A heap copy with a NUL after it: ASan sees reads past either end. */
static inline char *fuzz_strndup(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1);

	if (!s)
		abort();
	if (size)
		memcpy(s, data, size);
	s[size] = '\0';
	return s;
}

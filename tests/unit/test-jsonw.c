// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The JSON writer and the UTF-8 rule (issue 12, item 7): whatever bytes a
 * string holds, the text written is JSON a strict decoder accepts, with
 * each byte that is not part of a well-formed character as U+FFFD and
 * controls escaped. The strict decoder here is written apart from
 * jsonutil.h's (decode, then check the code point), so one cannot hide a
 * mistake of the other. Also the terminal escaper of connpidctl and logs.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonutil.h"
#include "jsonw.h"
#include "log.h"
#include "macro.h"

#include "check.h"

/* Strict UTF-8, the other way round: take the bits, then refuse what is
 * overlong, a surrogate or beyond U+10FFFF. true when all of s is valid. */
static bool strict_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t len;

		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((s[i] & 0xe0) == 0xc0)
			len = 2, cp = s[i] & 0x1f;
		else if ((s[i] & 0xf0) == 0xe0)
			len = 3, cp = s[i] & 0x0f;
		else if ((s[i] & 0xf8) == 0xf0)
			len = 4, cp = s[i] & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
			return false; /* overlong */
		if ((cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
			return false;
		i += len;
	}
	return true;
}

/* A JSON text must be strict UTF-8 without raw controls (C0, DEL, C1). */
static bool clean_json_text(const char *t)
{
	size_t n = strlen(t);

	if (!strict_utf8((const unsigned char *)t, n))
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == 0xc2 && i + 1 < n && (unsigned char)t[i + 1] < 0xa0)
			return false;
	}
	return true;
}

/* jw_strn(s, n) as a whole JSON text. */
static char *write_str(const char *s, size_t n)
{
	struct jsonw w;
	char *t;

	jw_init(&w);
	jw_strn(&w, s, n);
	t = strdup(w.buf ? w.buf : "");
	jw_free(&w);
	return t;
}

/* The writer's text, expected text, and a strict parse giving back want. */
static void check_str(const char *in, size_t n, const char *want_text, const char *want_value, size_t want_len)
{
	_cleanup_free_ char *t = write_str(in, n);
	struct json_tokener *tok = json_tokener_new();
	json_object *o;

	CHECK(t && clean_json_text(t), "not clean JSON text: %s", t ? t : "(null)");
	if (want_text)
		CHECK(t && streq(t, want_text), "wrote %s, want %s", t ? t : "(null)", want_text);
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, t, (int)strlen(t));
	CHECK(o && json_object_is_type(o, json_type_string), "strict json-c refuses %s", t);
	if (o && want_value)
		CHECK((size_t)json_object_get_string_len(o) == want_len &&
		      memcmp(json_object_get_string(o), want_value, want_len) == 0,
		      "round trip of %s differs", t);
	json_object_put(o);
	json_tokener_free(tok);
}

#define R UTF8_REPLACEMENT
#define STR(s) s, sizeof(s) - 1

static void test_strings(void)
{
	/* plain, quotes, backslash, and every kind of control */
	check_str(STR("abc"), "\"abc\"", STR("abc"));
	check_str(STR("a\"b\\c/"), "\"a\\\"b\\\\c/\"", STR("a\"b\\c/"));
	check_str(STR("\x1b[2K\r\n\t\b\f"), "\"\\u001b[2K\\r\\n\\t\\b\\f\"", STR("\x1b[2K\r\n\t\b\f"));
	check_str(STR("a\0b"), "\"a\\u0000b\"", STR("a\0b"));
	check_str(STR("\x7f"), "\"\\u007f\"", STR("\x7f"));
	check_str(STR("\xc2\x80\xc2\x85\xc2\x9f"), "\"\\u0080\\u0085\\u009f\"", STR("\xc2\x80\xc2\x85\xc2\x9f"));
	check_str(STR("\xc2\xa0"), "\"\xc2\xa0\"", STR("\xc2\xa0")); /* NBSP is no control */

	/* well-formed, at the edges of each length */
	check_str(STR("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
		  STR("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
	check_str(STR("\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"),
		  NULL, STR("\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80\xef\xbf\xbf\xf0\x90\x80\x80\xf4\x8f\xbf\xbf"));

	/* each invalid byte is one U+FFFD */
	check_str(STR("\xff\xfe"), "\"" R R "\"", STR(R R));
	check_str(STR("\xff\xfe\x1b[2K\r"), "\"" R R "\\u001b[2K\\r\"", STR(R R "\x1b[2K\r"));
	check_str(STR("\x80"), "\"" R "\"", STR(R));
	check_str(STR("\xc0\xaf"), NULL, STR(R R));                 /* overlong '/' */
	check_str(STR("\xc1\xbf"), NULL, STR(R R));                 /* overlong */
	check_str(STR("\xe0\x80\xaf"), NULL, STR(R R R));           /* overlong, 3 bytes */
	check_str(STR("\xe0\x9f\xbf"), NULL, STR(R R R));           /* overlong U+07FF */
	check_str(STR("\xf0\x80\x80\xaf"), NULL, STR(R R R R));     /* overlong, 4 bytes */
	check_str(STR("\xf0\x8f\xbf\xbf"), NULL, STR(R R R R));     /* overlong U+FFFF */
	check_str(STR("\xed\xa0\x80"), NULL, STR(R R R));           /* U+D800 */
	check_str(STR("\xed\xbf\xbf"), NULL, STR(R R R));           /* U+DFFF */
	check_str(STR("\xed\xa0\xbd\xed\xb8\x80"), NULL, STR(R R R R R R)); /* CESU pair */
	check_str(STR("\xf4\x90\x80\x80"), NULL, STR(R R R R));     /* U+110000 */
	check_str(STR("\xf5\x80\x80\x80"), NULL, STR(R R R R));
	check_str(STR("\xf8\x88\x80\x80\x80"), NULL, STR(R R R R R));
	check_str(STR("a\xe2\x82z"), NULL, STR("a" R R "z"));       /* cut short mid-string */
	check_str(STR("a\xf0\x9f\x98"), NULL, STR("a" R R R));      /* cut short at the end */
	check_str(STR("\xe2\x82\xac\x80"), NULL, STR("\xe2\x82\xac" R)); /* stray continuation */

	/* a key goes through the same escaping */
	{
		struct jsonw w;

		jw_init(&w);
		jw_obj_begin(&w);
		jw_kstr(&w, "k\xff", "\x1b");
		jw_obj_end(&w);
		CHECK(w.buf && streq(w.buf, "{\"k" R "\":\"\\u001b\"}"), "object: %s", w.buf ? w.buf : "(null)");
		jw_free(&w);
	}
}

/* Any bytes at all: random strings, biased toward UTF-8 lead and
 * continuation bytes so that near-misses are common. Valid input comes
 * back unchanged; any input comes out as clean JSON text. */
static void test_random(void)
{
	static const unsigned char pool[] = { 0x00, 0x1b, 0x22, 0x5c, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
					      0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xee,
					      0xef, 0xf0, 0xf1, 0xf4, 0xf5, 0xff };
	unsigned seed = 12;

	for (int round = 0; round < 20000; round++) {
		char in[12];
		size_t n = (size_t)(rand_r(&seed) % (int)sizeof(in));
		_cleanup_free_ char *t = NULL, *fixed = NULL;
		size_t flen = 0;

		for (size_t i = 0; i < n; i++)
			in[i] = (char)(rand_r(&seed) % 4 ? pool[rand_r(&seed) % sizeof(pool)] : rand_r(&seed));
		fixed = utf8_make_valid(in, n, &flen);
		CHECK(fixed && strict_utf8((unsigned char *)fixed, flen), "utf8_make_valid left bad bytes");
		CHECK(utf8_is_valid(in, n) == strict_utf8((unsigned char *)in, n), "validators disagree");
		if (strict_utf8((unsigned char *)in, n))
			CHECK(flen == n && memcmp(fixed, in, n) == 0, "valid input changed");
		check_str(in, n, NULL, fixed, flen);
		t = write_str(in, n);
		CHECK(t && clean_json_text(t), "round %d: not clean", round);
	}
}

static void test_cut(void)
{
	CHECK(utf8_cut(STR("ab\xe2\x82\xac")) == 5, "whole char kept");
	CHECK(utf8_cut("ab\xe2\x82\xac", 4) == 2, "half of 3 bytes goes");
	CHECK(utf8_cut("ab\xe2\x82\xac", 3) == 2, "lead alone goes");
	CHECK(utf8_cut("\xf0\x9f\x98\x80", 3) == 0, "3 of 4 bytes go");
	CHECK(utf8_cut(STR("\xf0\x9f\x98\x80")) == 4, "4 bytes kept");
	CHECK(utf8_cut(STR("a\xff")) == 2, "an invalid byte is not a cut character");
	CHECK(utf8_cut(STR("a\xed\xa0")) == 3, "a surrogate start is no character to keep whole");
	CHECK(utf8_cut(STR("\x80\x80\x80")) == 3, "continuations only");
	CHECK(utf8_cut("", 0) == 0, "empty");
	/* every cut of a mixed string is valid UTF-8 */
	{
		const char s[] = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z";

		for (size_t n = 0; n < sizeof(s); n++)
			CHECK(strict_utf8((const unsigned char *)s, utf8_cut(s, n)), "cut at %zu", n);
	}
}

static void test_numbers(void)
{
	struct jsonw w;

	jw_init(&w);
	jw_arr_begin(&w);
	jw_double(&w, NAN);
	jw_double(&w, INFINITY);
	jw_double(&w, -INFINITY);
	jw_double(&w, 1.5);
	jw_double(&w, 3);
	jw_arr_end(&w);
	CHECK(w.buf && streq(w.buf, "[null,null,null,1.5,3.0]"), "doubles: %s", w.buf ? w.buf : "(null)");
	jw_free(&w);
}

/* json-c trees: strings mended, non-finite numbers to null, raw objects
 * from the writer left alone. */
static void test_sanitize(void)
{
	_cleanup_json_ json_object *o = json_object_new_object();
	json_object *a = json_object_new_array();
	struct jsonw w;
	const char *t;

	json_object_object_add(o, "comm", json_object_new_string_len("\xff\xfe" "x", 3));
	json_object_object_add(o, "nan", json_object_new_double(NAN));
	json_object_object_add(o, "ok", json_object_new_double(0.5));
	json_object_array_add(a, json_object_new_double(INFINITY));
	json_object_array_add(a, json_object_new_string("\xed\xa0\x80"));
	json_object_array_add(a, json_object_new_int(7));
	json_object_object_add(o, "list", a);
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "raw", "\xc0");
	jw_obj_end(&w);
	json_object_object_add(o, "flow", jw_to_object(&w));
	json_sanitize(o);
	t = json_object_to_json_string_ext(o, JSON_LINE_FLAGS);
	CHECK(streq(t, "{\"comm\":\"" R R "x\",\"nan\":null,\"ok\":0.5,\"list\":[null,\"" R R R "\",7],"
		       "\"flow\":{\"raw\":\"" R "\"}}"), "sanitized: %s", t);
	CHECK(clean_json_text(t), "sanitized text not clean");
}

static void test_new_string(void)
{
	_cleanup_json_ json_object *o = json_new_string_utf8("\xff\xfe\x1b[2K\r");

	CHECK(o && streq(json_object_get_string(o), R R "\x1b[2K\r"), "json_new_string_utf8");
	CHECK(o && streq(json_object_to_json_string_ext(o, JSON_LINE_FLAGS), "\"" R R "\\u001b[2K\\r\""),
	      "json_new_string_utf8 text");
}

static void test_text_escape(void)
{
	static const struct { const char *in, *want; } rows[] = {
		{ "curl", "curl" },
		{ "\xff\xfe\x1b[2K\r", "\\xff\\xfe\\x1b[2K\\x0d" },
		{ "a\tb\nc\x7f", "a\\x09b\\x0ac\\x7f" },
		{ "back\\slash", "back\\\\slash" },
		{ "\xc2\x9b" "31m", "\\u009b31m" },             /* C1 CSI */
		{ "evil\xe2\x80\xaegnp.exe", "evil\\u202egnp.exe" }, /* right-to-left override */
		{ "caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80" },
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "\xc0\xaf", "\\xc0\\xaf" },
		{ "", "" },
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		_cleanup_free_ char *e = text_escape(rows[i].in);

		CHECK(e && streq(e, rows[i].want), "text_escape row %zu: %s, want %s", i, e ? e : "(null)", rows[i].want);
		CHECK(e && clean_json_text(e), "text_escape row %zu left a control", i);
	}
}

int main(void)
{
	test_strings();
	test_random();
	test_cut();
	test_numbers();
	test_sanitize();
	test_new_string();
	test_text_escape();
	if (check_failures) {
		fprintf(stderr, "%d failures\n", check_failures);
		return 1;
	}
	printf("ok\n");
	return 0;
}

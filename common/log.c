// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "jsonutil.h"
#include "log.h"
#include "macro.h"

/* Process-wide logging settings: the only state outside a daemon context,
 * like any logger's. */
static struct {
	enum log_level max_level;
	bool prefix_levels;
	const char *program;
} log_state = { .max_level = LOG_LVL_INFO };

void log_set_max_level(enum log_level level)
{
	log_state.max_level = level;
}

enum log_level log_get_max_level(void)
{
	return log_state.max_level;
}

void log_set_prefix_levels(bool on)
{
	log_state.prefix_levels = on;
}

void log_set_program(const char *name)
{
	log_state.program = name;
}

/* Characters that reorder or hide the text around them on a terminal:
 * LRM, RLM, the line/paragraph separators, embeddings, overrides and
 * isolates. */
static bool is_direction_control(unsigned cp)
{
	return cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2066 && cp <= 0x2069);
}

/* The code point of a well-formed character of l (2 or 3) bytes. */
static unsigned decode2or3(const unsigned char *u, int l)
{
	if (l == 2)
		return (u[0] & 0x1fu) << 6 | (u[1] & 0x3fu);
	return (u[0] & 0x0fu) << 12 | (u[1] & 0x3fu) << 6 | (u[2] & 0x3fu);
}

char *text_escape(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * n + 1), *p = out; /* \xHH: 4 bytes per byte at most */

	if (!out)
		return NULL;
	for (size_t i = 0; i < n;) {
		const unsigned char *u = (const unsigned char *)s + i;
		int l = utf8_char_len(s + i, n - i);
		unsigned cp;

		if (l <= 0 || (l == 1 && (u[0] < 0x20 || u[0] == 0x7f))) {
			p += sprintf(p, "\\x%02x", u[0]);
			i++;
			continue;
		}
		if (l == 1 && u[0] == '\\') {
			p = stpcpy(p, "\\\\");
			i++;
			continue;
		}
		cp = l == 2 || l == 3 ? decode2or3(u, l) : 0;
		if ((cp >= 0x80 && cp <= 0x9f) || is_direction_control(cp))
			p += sprintf(p, "\\u%04x", cp);
		else
			p = mempcpy(p, u, (size_t)l);
		i += (size_t)l;
	}
	*p = '\0';
	return out;
}

/* Expand %m ourselves, with the error we were given rather than errno. */
static void format_with_error(char *buf, size_t size, const char *fmt, int error, va_list ap)
{
	char fmt2[1024];
	size_t o = 0;

	for (const char *p = fmt; *p && o + 1 < sizeof(fmt2); p++) {
		if (p[0] == '%' && p[1] == 'm') {
			const char *msg = strerror(error > 0 ? error : -error);

			for (; *msg && o + 2 < sizeof(fmt2); msg++) {
				if (*msg == '%')
					fmt2[o++] = '%';
				fmt2[o++] = *msg;
			}
			p++;
			continue;
		}
		if (p[0] == '%' && p[1] == '%') {
			fmt2[o++] = '%';
			if (o + 1 < sizeof(fmt2))
				fmt2[o++] = '%';
			p++;
			continue;
		}
		fmt2[o++] = *p;
	}
	fmt2[o] = '\0';
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
	vsnprintf(buf, size, fmt2, ap);
#pragma GCC diagnostic pop
}

int log_internal(enum log_level level, int error, const char *fmt, ...)
{
	_cleanup_free_ char *safe = NULL;
	char buf[2048];
	const char *line;
	va_list ap;

	if (error < 0)
		error = -error;
	if (level > log_state.max_level)
		return -error;

	va_start(ap, fmt);
	format_with_error(buf, sizeof(buf), fmt, error, ap);
	va_end(ap);
	/* A name with "\n<0>..." in it would forge a journal line, one with
	 * ESC rewrite the terminal: what we print is one plain line. */
	buf[utf8_cut(buf, strlen(buf))] = '\0';
	safe = text_escape(buf);
	line = safe ?: "(a message was lost: out of memory)";

	if (log_state.prefix_levels)
		fprintf(stderr, "<%d>%s\n", (int)level, line);
	else if (log_state.program)
		fprintf(stderr, "%s: %s\n", log_state.program, line);
	else
		fprintf(stderr, "%s\n", line);
	return -error;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (log_state.max_level < LOG_LVL_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

void log_setup_libbpf(bool verbose)
{
	if (verbose)
		log_state.max_level = LOG_LVL_DEBUG;
	libbpf_set_print(libbpf_print);
}

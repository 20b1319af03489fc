// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "log.h"

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
	char buf[2048];
	va_list ap;

	if (error < 0)
		error = -error;
	if (level > log_state.max_level)
		return -error;

	va_start(ap, fmt);
	format_with_error(buf, sizeof(buf), fmt, error, ap);
	va_end(ap);

	if (log_state.prefix_levels)
		fprintf(stderr, "<%d>%s\n", (int)level, buf);
	else if (log_state.program)
		fprintf(stderr, "%s: %s\n", log_state.program, buf);
	else
		fprintf(stderr, "%s\n", buf);
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

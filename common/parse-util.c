// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "parse-util.h"

static int apply_unit(char unit, unsigned long long max, unsigned long long *v)
{
	unsigned shift = unit == 'K' ? 10 : unit == 'M' ? 20 : 30;

	if (*v > (max >> shift))
		return -ERANGE;
	*v <<= shift;
	return 0;
}

int parse_unsigned(const char *s, const char *suffix, unsigned long long min, unsigned long long max,
		   unsigned long long *ret)
{
	unsigned long long v;
	char *end;
	int r;

	/* strtoull() takes leading blanks, signs and "-1" as 2^64-1 */
	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -ERANGE;
	if (*end && suffix && streq(suffix, "/s") && streq(end, "/s"))
		end += 2;
	else if (*end && suffix && !end[1] && strchr("KMG", *end) && strchr(suffix, *end)) {
		r = apply_unit(*end, max, &v);
		if (r < 0)
			return r;
		end++;
	}
	if (*end)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_plain_option(int c, const char *arg, const struct string_option *strings, size_t n_strings,
		       const struct flag_option *flags, size_t n_flags)
{
	for (size_t i = 0; i < n_strings; i++)
		if (strings[i].c == c) {
			*strings[i].value = arg;
			return 1;
		}
	for (size_t i = 0; i < n_flags; i++)
		if (flags[i].c == c) {
			*flags[i].flag = true;
			return 1;
		}
	return 0;
}

int parse_port_number(const char *s, uint16_t *ret)
{
	unsigned long long v;
	int r;

	r = parse_unsigned(s, NULL, 1, UINT16_MAX, &v);
	if (r < 0)
		return r;
	*ret = (uint16_t)v;
	return 0;
}

int parse_options(int argc, char **argv, const char *shortopts, const struct option *options,
		  int (*parse)(int c, char *arg))
{
	int c, r;

	while ((c = getopt_long(argc, argv, shortopts, options, NULL)) >= 0) {
		r = parse(c, optarg);
		if (r == -ENOENT)
			return -EINVAL; /* getopt_long() said what was wrong */
		if (r != 0)
			return r > 0 ? 0 : r;
	}
	return 1;
}

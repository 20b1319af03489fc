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

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Numbers from the command line, one way for every binary. */
#pragma once

/* A decimal number in [min, max], nothing before or after it but what
 * `suffix` allows: "/s" (a rate), any of "KMG" (binary units), or NULL.
 * -EINVAL: not such a number; -ERANGE: outside [min, max]. */
int parse_unsigned(const char *s, const char *suffix, unsigned long long min, unsigned long long max,
		   unsigned long long *ret);

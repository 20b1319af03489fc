/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Numbers from the command line, one way for every binary. */
#pragma once

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A decimal number in [min, max], nothing before or after it but what
 * `suffix` allows: "/s" (a rate), any of "KMG" (binary units), or NULL.
 * -EINVAL: not such a number; -ERANGE: outside [min, max]. */
int parse_unsigned(const char *s, const char *suffix, unsigned long long min, unsigned long long max,
		   unsigned long long *ret);

/* Options that only keep their value, or only set a flag. */
struct string_option {
	int c;
	const char **value;
};
struct flag_option {
	int c;
	bool *flag;
};

/* 1: c is one of strings (its value kept) or of flags (set); 0: not. */
int parse_plain_option(int c, const char *arg, const struct string_option *strings, size_t n_strings,
		       const struct flag_option *flags, size_t n_flags);

/* A port, 1-65535, decimal digits only. */
int parse_port_number(const char *s, uint16_t *ret);

/* getopt_long() over argv, every option handed to parse(c, optarg),
 * which returns 0 (taken), 1 (done: --help or --version printed),
 * -ENOENT (no option: getopt_long() said why) or another error (logged).
 * Returns 1: run on (optind at the first operand); 0: done; < 0: bad. */
int parse_options(int argc, char **argv, const char *shortopts, const struct option *options,
		  int (*parse)(int c, char *arg));

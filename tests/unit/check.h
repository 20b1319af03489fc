/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The C unit tests' one assertion: say where and what, count, go on; the
 * test's main() returns check_failures != 0. */
#pragma once

#include <stdio.h>

static int check_failures;

#define CHECK(cond, ...)                                                     \
	do {                                                                 \
		if (!(cond)) {                                               \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
			check_failures++;                                    \
		}                                                            \
	} while (0)

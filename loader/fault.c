// SPDX-License-Identifier: GPL-2.0-or-later
/* Test-only fault points: the loader's rollback is tested by making a
 * named step fail (CONNPID_TEST_FAIL_AT=<point>) or hang so that a test
 * can SIGKILL it there (CONNPID_TEST_HANG_AT=<point>). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "loader.h"
#include "macro.h"

int fault_inject(const char *point)
{
	const char *fail = getenv("CONNPID_TEST_FAIL_AT");
	const char *hang = getenv("CONNPID_TEST_HANG_AT");

	if (hang && streq(hang, point)) {
		fprintf(stderr, "connpid-loader: test hang at %s\n", point);
		for (;;)
			pause();
	}
	return fail && streq(fail, point) ? -ECANCELED : 0;
}

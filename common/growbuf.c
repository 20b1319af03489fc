// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "growbuf.h"

int growbuf_reserve(char **buf, size_t *cap, size_t need, size_t first)
{
	size_t n = *cap ? *cap : first ? first : 64;
	char *p;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return -EOVERFLOW;
		n *= 2;
	}
	p = realloc(*buf, n);
	if (!p)
		return -ENOMEM;
	*buf = p;
	*cap = n;
	return 0;
}

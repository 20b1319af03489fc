/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Percentiles of timing samples, shared by the bench programs. */
#pragma once

#include <stdlib.h>

static inline int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Percentile of an array sorted in place (nearest rank). */
static inline double percentile(double *v, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_double);
	i = (size_t)(p / 100.0 * (double)n);
	return v[i >= n ? n - 1 : i];
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * jw_double() writes doubles in [1, 2^53) by its own integer path (issue
 * 15): it must write exactly what printf("%.17g") (+ ".0" for a whole
 * number) writes. Compared here over timestamps of this century at every
 * scale, random bit patterns in range, exact ties (values with one more
 * binary place than 17 digits keep, where half-to-even matters),
 * numbers that round up to the next power of ten, and the range's edges.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonw.h"

static unsigned long failures, checked;

static void check_one(double v)
{
	struct jsonw w;
	char want[64];

	jw_init(&w);
	jw_double(&w, v);
	snprintf(want, sizeof(want), "%.17g", v);
	if (!strpbrk(want, ".eE"))
		strcat(want, ".0");
	checked++;
	if (w.oom || !w.buf || strcmp(w.buf, want) != 0) {
		if (failures++ < 10)
			fprintf(stderr, "FAIL %a: jw_double wrote %s, printf %s\n", v, w.buf ? w.buf : "(null)", want);
	}
	jw_free(&w);
}

static uint64_t rnd(void)
{
	static uint64_t x = 0x9e3779b97f4a7c15ULL;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static double from_bits(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

int main(void)
{
	/* wall-clock seconds with nanoseconds, as flows carry them */
	for (int i = 0; i < 300000; i++)
		check_one(1.7e9 + (double)(rnd() % 1000000000000ULL) / 1e4);
	/* any bit pattern in [1, 2^53), and around it */
	for (int i = 0; i < 1000000; i++) {
		double v = from_bits(rnd() & 0x7fffffffffffffffULL);

		if (isfinite(v))
			check_one(v);
		check_one(1.0 + (double)(rnd() >> 11) / 9007199254740992.0 * (double)(1ULL << (rnd() % 53)));
	}
	/* ties: N / 2^s with exactly 18 significant decimal digits */
	for (int s = 1; s <= 52; s++)
		for (int i = 0; i < 2000; i++)
			check_one(ldexp((double)((rnd() >> 11) | 1), -s));
	for (int d = 0; d < 17; d++) {
		double p = pow(10, d);

		check_one(p);
		check_one(nextafter(p, 0));
		check_one(nextafter(p, INFINITY));
	}
	check_one(1.0);
	check_one(0.0);
	check_one(0.5);
	check_one(9007199254740991.0);
	check_one(9007199254740992.0);
	check_one(nextafter(1.0, 0));
	check_one(99999999999999999.0);
	check_one(9.99999999999999999);
	printf("%lu values, %lu differ from printf\n", checked, failures);
	return failures ? 1 : 0;
}

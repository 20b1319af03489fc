// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target for queryd/dns-parse.c, the parser of DNS responses
 * copied out of the kernel (whatever arrived from port 53). Built with
 * clang -fsanitize=fuzzer,address,undefined; run for a while from
 * tests/dns/corpus (valid responses) and tests/dns/malformed by
 * run-fuzz.py. Any crash, sanitizer report or broken invariant
 * (dns-parse-check.h) fails.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dns-parse.h"
#include "dns-parse-check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns_message msg;
	uint8_t *copy;
	const char *bad;
	int r;

	/* an exact-size heap copy: ASan sees any read past the end */
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	for (size_t i = 0; i < size; i++)
		copy[i] = data[i];
	r = dns_parse_response(copy, size, &msg);
	bad = dns_result_violation(r, &msg);
	if (bad) {
		fprintf(stderr, "dns_parse_response() returned %d: %s\n", r, bad);
		abort();
	}
	free(copy);
	return 0;
}

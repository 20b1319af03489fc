// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target (b): the "filter" of a request, i.e. the one filter
 * module (filter.c) for history (and its SQL in store-read.c, rows
 * written with and without "fields") and for recent and watch. The input is pasted as the filter's text into
 * requests that otherwise are valid, so nearly every input reaches the
 * parsers rather than stopping at bad_json; the answers are checked like
 * any answer (fuzz-queryd-ctx.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz-queryd-ctx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const templates[][2] = {
	{ "{\"op\":\"history\",\"filter\":", "}\n" },
	{ "{\"op\":\"history\",\"order\":\"asc\",\"limit\":3,\"filter\":", ",\"id\":1}\n" },
	{ "{\"op\":\"history\",\"fields\":[\"pid\",\"container\",\"domain\"],\"filter\":", "}\n" },
	{ "{\"op\":\"recent\",\"limit\":5,\"filter\":", "}\n" },
	{ "{\"op\":\"watch\",\"filter\":", "}\n" },
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)fuzz_queryd_get();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cap = 0, len = 0;
	char *text;

	/* A newline in the filter would split the request: keep it one line
	 * (the request-line target covers framing). */
	if (memchr(data, '\n', size))
		return -1;
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++)
		cap += strlen(templates[i][0]) + size + strlen(templates[i][1]);
	text = malloc(cap);
	if (!text)
		abort();
	for (size_t i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		size_t a = strlen(templates[i][0]), b = strlen(templates[i][1]);

		memcpy(text + len, templates[i][0], a);
		memcpy(text + len + a, data, size);
		memcpy(text + len + a + size, templates[i][1], b);
		len += a + size + b;
	}
	(void)fuzz_queryd_feed(fuzz_queryd_get(), text, len);
	free(text);
	return 0;
}

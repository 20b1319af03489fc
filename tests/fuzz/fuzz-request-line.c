// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target (a): bytes a client writes to the query socket, split
 * into lines as server.c does, each answered by protocol_handle_line()
 * against a real flow index, process cache and history store
 * (fuzz-queryd-ctx.c). Each answer must be one line of valid UTF-8 JSON,
 * an object with a boolean "ok", one per request; ASan/UBSan watch the rest.
 */
#include <stddef.h>
#include <stdint.h>

#include "fuzz-queryd-ctx.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)fuzz_queryd_get();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	(void)fuzz_queryd_feed(fuzz_queryd_get(), (const char *)data, size);
	return 0;
}

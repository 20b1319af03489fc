/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A queryd without its daemon, for the protocol fuzz targets: the real
 * manager (manager_new), a real flow index and process cache filled from
 * made-up kernel events (hostile comms included), a real history store
 * (SQLite in memory) holding the same flows, DNS names for some of them,
 * and, when this process may create BPF maps, real hash maps keyed like
 * the pinned ones so `lookup` takes each of its paths. Nothing is pinned,
 * bound or written to disk; the event loop never runs.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "manager.h"

struct fuzz_queryd {
	struct manager *m;
	struct client client;
	bool have_maps;
};

/* Built on first call, kept for the process (libFuzzer runs in-process). */
struct fuzz_queryd *fuzz_queryd_get(void);

/* Feed text as a client connection would: split into lines at '\n' like
 * server.c, each through protocol_handle_line(). A leading space selects
 * a client that is not allowed to query (only ping). Then check every
 * answer line (fuzz-check.h) and reset the client. Returns answers. */
size_t fuzz_queryd_feed(struct fuzz_queryd *q, const char *text, size_t len);

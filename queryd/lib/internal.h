/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libconnpid's insides, shared by its .c files; never installed. */
#pragma once

#include <stdint.h>

#include "connpid.h"

/* A result and the strings it points at, freed together. */
struct result_priv {
	struct connpid_result pub;
	char *strings[16];
	unsigned n_strings;
	void *json_obj; /* kept alive while pub's strings point into it */
};

struct json_object;

struct connpid_result *result_new(uint64_t id, int error);
/* Fill r from one answer line of the daemon (ok, found, flow, error); o
 * is the line parsed already (not taken over), NULL when it is no JSON. */
int result_from_answer(struct connpid_result *r, const char *line, struct json_object *o);
/* Answer from the pinned maps under pin_dir; r->direct is set. */
int result_from_maps(struct connpid_result *r, const char *pin_dir, int proto, const char *dst,
		     uint16_t sport, uint16_t dport);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What one loader run added, so a failure can take exactly that back. */
#pragma once

#include <stddef.h>

struct bpf_link;

#define ROLLBACK_MAX 64

struct rollback {
	char *pins[ROLLBACK_MAX];              /* unlinked in reverse order */
	size_t n_pins;
	struct bpf_link *links[ROLLBACK_MAX];  /* destroyed: detaches */
	size_t n_links;
};

int rollback_add_pin(struct rollback *rb, const char *path);
int rollback_add_link(struct rollback *rb, struct bpf_link *link);
/* Undo: remove the recorded pins (newest first) and detach the links. */
void rollback_run(struct rollback *rb);
/* Forget the records; links that stay pinned stay attached. */
void rollback_free(struct rollback *rb);

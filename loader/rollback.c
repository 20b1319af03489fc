// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/libbpf.h>

#include "log.h"
#include "macro.h"
#include "rollback.h"

int rollback_add_pin(struct rollback *rb, const char *path)
{
	if (rb->n_pins >= ROLLBACK_MAX)
		return -E2BIG;
	rb->pins[rb->n_pins] = strdup(path);
	if (!rb->pins[rb->n_pins])
		return -ENOMEM;
	rb->n_pins++;
	return 0;
}

int rollback_add_link(struct rollback *rb, struct bpf_link *link)
{
	if (rb->n_links >= ROLLBACK_MAX)
		return -E2BIG;
	rb->links[rb->n_links++] = link;
	return 0;
}

/* A pin dir or subdir this run made is a directory: rmdir() it. */
static int remove_pin(const char *path)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	if ((errno == EISDIR || errno == EPERM) && rmdir(path) == 0)
		return 0;
	return negative_errno();
}

void rollback_run(struct rollback *rb)
{
	for (size_t i = rb->n_pins; i > 0; i--) {
		int r = remove_pin(rb->pins[i - 1]);

		if (r < 0)
			log_warning_errno(r, "Rollback: cannot remove %s: %m", rb->pins[i - 1]);
	}
	for (size_t i = 0; i < rb->n_links; i++) {
		bpf_link__detach(rb->links[i]);
		bpf_link__destroy(rb->links[i]);
		rb->links[i] = NULL;
	}
	rb->n_links = 0;
}

void rollback_free(struct rollback *rb)
{
	for (size_t i = 0; i < rb->n_pins; i++)
		free(rb->pins[i]);
	rb->n_pins = 0;
	/* Links that stay pinned keep their attachment after we exit. */
	for (size_t i = 0; i < rb->n_links; i++)
		bpf_link__destroy(rb->links[i]);
	rb->n_links = 0;
}

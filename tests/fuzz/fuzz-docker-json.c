// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target (d): what the Docker Engine API answers, as docker.c
 * parses it: the body of GET /containers/<id>/json (on_inspect) and the
 * lines of the GET /events stream (on_event_line), then what
 * docker_describe() writes into an answer, which must be valid UTF-8
 * JSON. A hostile container controls its name, image and labels, and
 * whoever reaches the Docker socket controls every byte.
 *
 * The parsers are static in docker.c, so this file includes it (no
 * change to the product is needed) and calls them as http-loop.c does:
 * the body NUL-terminated with its length; stream lines split at '\n'
 * without it, empty ones skipped, the unterminated rest delivered last.
 *
 * Input: byte 0 picks the reply (bits 0-1: status 200, 404, 500, or a
 * transport error; bit 2: a second container); then the inspect body up
 * to the first NUL byte; after it, the events stream.
 */
#include "../../queryd/docker.c"

#include "fuzz-check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID_A "4f1c2d3e5a6b7c8d9e0f11223344556677889900aabbccddeeff001122334455"
#define ID_B "0000000000000000000000000000000000000000000000000000000000000001"

static sd_event *event;
static struct docker *dk;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	log_set_max_level(LOG_LVL_ERR);
	if (sd_event_new(&event) < 0)
		abort();
	/* The socket is never reached: the loop never runs, so the events
	 * request queued here and every refetch stay queued. */
	if (docker_new(event, "/nonexistent/connpid-fuzz-docker.sock", &dk) < 0)
		abort();
	return 0;
}

static void deliver_inspect(const char *id, int error, long status, const char *body, size_t len)
{
	struct inspect_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		abort();
	ctx->d = dk;
	snprintf(ctx->id, sizeof(ctx->id), "%s", id);
	on_inspect(NULL, error, status, body, len, ctx); /* frees ctx */
}

static void deliver_events(const uint8_t *p, size_t n)
{
	char *buf = fuzz_strndup(p, n), *line = buf;
	size_t left = n;

	for (;;) {
		char *nl = memchr(line, '\n', left);
		size_t l;

		if (!nl)
			break;
		*nl = '\0';
		l = (size_t)(nl - line);
		if (l > 0) {
			char *copy = fuzz_strndup((const uint8_t *)line, l);

			on_event_line(copy, l, dk);
			free(copy);
		}
		line = nl + 1;
		left -= l + 1;
	}
	if (left > 0) {
		char *copy = fuzz_strndup((const uint8_t *)line, left);

		on_event_line(copy, left, dk);
		free(copy);
	}
	free(buf);
}

static void check_describe(const char *id)
{
	struct jsonw w;
	json_object *o, *v;

	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "id", id);
	docker_describe(dk, id, &w);
	jw_obj_end(&w);
	if (w.oom)
		abort();
	o = fuzz_check_json(w.buf, w.len);
	if (!json_object_object_get_ex(o, "docker", &v) || !json_object_is_type(v, json_type_string))
		fuzz_fail("no \"docker\" state written", 0, w.buf, w.len);
	json_object_put(o);
	jw_free(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const long statuses[] = { 200, 404, 500, 200 };
	const uint8_t *body, *nul;
	size_t body_len;
	char *body_copy;
	int flags;

	if (size < 1)
		return -1;
	flags = data[0];
	body = data + 1;
	nul = memchr(body, '\0', size - 1);
	body_len = nul ? (size_t)(nul - body) : size - 1;

	clear_all(dk);
	dk->reachable = true;
	docker_want(dk, ID_A);
	if (flags & 4)
		docker_want(dk, ID_B);
	body_copy = fuzz_strndup(body, body_len);
	deliver_inspect(ID_A, (flags & 3) == 3 ? -ECONNREFUSED : 0, statuses[flags & 3], body_copy, body_len);
	if (flags & 4)
		deliver_inspect(ID_B, 0, 200, body_copy, body_len);
	free(body_copy);
	if (nul)
		deliver_events(nul + 1, size - 1 - body_len - 1);
	check_describe(ID_A);
	if (flags & 4)
		check_describe(ID_B);
	return 0;
}

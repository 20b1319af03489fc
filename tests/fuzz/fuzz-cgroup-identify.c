// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * libFuzzer target (c): cgroup_identify() over any path. Paths come from
 * the cgroup filesystem, where a container or a delegated user may name
 * directories as they like. Asserted: every field is NUL-terminated in
 * its buffer and holds only what the path shape allows (a container id
 * is 64 lowercase hex digits and comes with a runtime; units, slices and
 * user units end as their type requires; nothing contains a '/'; every
 * name is a piece of the path); and the identity, written as queryd
 * writes it (jsonw), is valid UTF-8 JSON.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup-names.h"
#include "fuzz-check.h"
#include "jsonw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FIELD(f) { #f, offsetof(struct cgroup_identity, f), sizeof(((struct cgroup_identity *)0)->f) }

static const struct {
	const char *name;
	size_t off, size;
} fields[] = {
	FIELD(unit), FIELD(slice), FIELD(user_unit), FIELD(runtime), FIELD(container_id), FIELD(pod_uid),
};

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

static void bad(const char *why, const char *field, const char *path, const char *value)
{
	fprintf(stderr, "cgroup_identify(): %s: %s=\"%s\"\n", why, field, value);
	fuzz_fail(why, 0, path, strlen(path));
}

static void check(const char *path, const struct cgroup_identity *id)
{
	const char *base = (const char *)id;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const char *v = base + fields[i].off;

		if (!memchr(v, '\0', fields[i].size))
			bad("field not NUL-terminated", fields[i].name, path, "");
		if (strchr(v, '/'))
			bad("field contains '/'", fields[i].name, path, v);
		/* pod_uid has '_' turned into '-'; the others are verbatim */
		if (v[0] && strcmp(fields[i].name, "pod_uid") && strcmp(fields[i].name, "runtime") &&
		    !strstr(path, v))
			bad("field is not a piece of the path", fields[i].name, path, v);
	}
	if (!!id->container_id[0] != !!id->runtime[0])
		bad("container id and runtime not both set or both empty", "runtime", path, id->runtime);
	if (id->container_id[0]) {
		if (strlen(id->container_id) != 64 || strspn(id->container_id, "0123456789abcdef") != 64)
			bad("container id is not 64 lowercase hex digits", "container_id", path, id->container_id);
		if (strspn(id->runtime, "abcdefghijklmnopqrstuvwxyz-") != strlen(id->runtime))
			bad("runtime is not a lowercase word", "runtime", path, id->runtime);
	}
	if (id->unit[0] && !ends_with(id->unit, ".service") && !ends_with(id->unit, ".scope"))
		bad("unit is neither .service nor .scope", "unit", path, id->unit);
	if (id->slice[0] && !ends_with(id->slice, ".slice"))
		bad("slice does not end in .slice", "slice", path, id->slice);
	if (id->user_unit[0] && (strncmp(id->user_unit, "user@", 5) || !ends_with(id->user_unit, ".service")))
		bad("user unit is not user@*.service", "user_unit", path, id->user_unit);
	if (id->pod_uid[0] && (strlen(id->pod_uid) < 32 || strchr(id->pod_uid, '_')))
		bad("pod uid shorter than 32 or with '_'", "pod_uid", path, id->pod_uid);
}

static void check_written(const struct cgroup_identity *id, const char *path)
{
	struct jsonw w;
	json_object *o;

	/* as flow-json.c writes them into an answer */
	jw_init(&w);
	jw_obj_begin(&w);
	jw_kstr(&w, "cgroup", path);
	jw_kstr(&w, "unit", id->unit[0] ? id->unit : NULL);
	jw_kstr(&w, "slice", id->slice[0] ? id->slice : NULL);
	jw_kstr(&w, "user_unit", id->user_unit[0] ? id->user_unit : NULL);
	jw_kstr(&w, "pod_uid", id->pod_uid[0] ? id->pod_uid : NULL);
	jw_key(&w, "container");
	jw_obj_begin(&w);
	jw_kstr(&w, "id", id->container_id);
	jw_kstr(&w, "runtime", id->runtime);
	jw_obj_end(&w);
	jw_obj_end(&w);
	if (w.oom)
		abort();
	o = fuzz_check_json(w.buf, w.len);
	json_object_put(o);
	jw_free(&w);
}

static bool component_too_long(const uint8_t *p, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		run = p[i] == '/' ? 0 : run + 1;
		if (run > NAME_MAX)
			return true;
	}
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cgroup_identity id;
	char *path;

	/* readlink() gives at most PATH_MAX bytes and no NUL inside, and no
	 * name in a path is longer than NAME_MAX */
	if (size >= PATH_MAX || memchr(data, '\0', size) || component_too_long(data, size))
		return -1;
	path = fuzz_strndup(data, size);
	memset(&id, 0xa5, sizeof(id)); /* no help from a zeroed struct */
	cgroup_identify(path, &id);
	check(path, &id);
	check_written(&id, path);
	free(path);
	return 0;
}

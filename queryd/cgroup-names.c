// SPDX-License-Identifier: GPL-2.0-or-later
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "cgroup-names.h"

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);

	return len >= n && memcmp(s + len - n, suffix, n) == 0;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

/* Runtimes name containers by 64 lowercase hex digits. */
static bool is_container_id(const char *s, size_t len)
{
	if (len != 64)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return false;
	return true;
}

static void copy_part(char *dst, size_t size, const char *s, size_t len)
{
	if (len >= size)
		len = size - 1;
	memcpy(dst, s, len);
	dst[len] = '\0';
}

/* "<prefix><id>.scope" or "<prefix><id>" for each runtime's naming. */
static bool match_prefixed_id(const char *s, size_t len, const char *prefix, struct cgroup_identity *id,
			      const char *runtime)
{
	size_t plen = strlen(prefix);

	if (!starts_with(s, len, prefix))
		return false;
	s += plen;
	len -= plen;
	if (ends_with(s, len, ".scope"))
		len -= strlen(".scope");
	if (!is_container_id(s, len))
		return false;
	copy_part(id->container_id, sizeof(id->container_id), s, len);
	snprintf(id->runtime, sizeof(id->runtime), "%s", runtime);
	return true;
}

/* kubepods-burstable-pod<uid with _>.slice (systemd) or pod<uid> (cgroupfs). */
static void match_pod(const char *s, size_t len, struct cgroup_identity *id)
{
	const char *p = NULL;
	size_t n;

	for (size_t i = 0; i + 3 <= len; i++)
		if (memcmp(s + i, "pod", 3) == 0 && (i == 0 || s[i - 1] == '-')) {
			p = s + i + 3;
			break;
		}
	if (!p)
		return;
	n = len - (size_t)(p - s);
	if (ends_with(p, n, ".slice"))
		n -= strlen(".slice");
	if (n < 32 || n >= sizeof(id->pod_uid))
		return;
	copy_part(id->pod_uid, sizeof(id->pod_uid), p, n);
	for (char *c = id->pod_uid; *c; c++)
		if (*c == '_')
			*c = '-';
}

/* A unit's sub-tree is delegated (Delegate=yes, user@UID.service) or a
 * container's own: whoever runs there names its cgroups as it likes. */
static bool is_unit(const char *s, size_t len)
{
	return ends_with(s, len, ".service") || ends_with(s, len, ".scope");
}

static bool container_at(const char *s, size_t len, bool docker_parent, bool kube, struct cgroup_identity *id)
{
	if (match_prefixed_id(s, len, "docker-", id, "docker") ||
	    match_prefixed_id(s, len, "cri-containerd-", id, "containerd") ||
	    match_prefixed_id(s, len, "crio-", id, "cri-o") ||
	    match_prefixed_id(s, len, "libpod-", id, "podman"))
		return true;
	if (!is_container_id(s, len))
		return false;
	/* cgroupfs drivers: /docker/<id>, /kubepods/.../pod<uid>/<id>, or any
	 * --cgroup-parent chosen by the admin */
	copy_part(id->container_id, sizeof(id->container_id), s, len);
	snprintf(id->runtime, sizeof(id->runtime), "%s",
		 kube ? "kubernetes" : docker_parent ? "docker" : "unknown");
	return true;
}

/*
 * A container id is believed only where a container manager put it: in
 * slices (systemd drivers: system.slice/docker-<id>.scope, machine.slice,
 * kubepods.slice/...) or in directories outside systemd's names (cgroupfs
 * drivers: /docker/<id>, /kubepods/..., a configured cgroup parent). Only
 * root makes those. Never in user.slice, nor below a unit (.service,
 * .scope), whose sub-tree may be delegated to a user: there
 * "docker-<id>.scope" is just a scope's name. The first container wins,
 * and what lies inside it (the container's own cgroups) names nothing.
 */
void cgroup_identify(const char *path, struct cgroup_identity *id)
{
	const char *s = path;
	bool kube = false, docker_parent = false, trusted = true;

	memset(id, 0, sizeof(*id));
	while (*s) {
		const char *e;
		size_t len;

		while (*s == '/')
			s++;
		e = strchrnul(s, '/');
		len = (size_t)(e - s);
		if (len == 0)
			break;

		if (len == strlen("user.slice") && memcmp(s, "user.slice", len) == 0)
			trusted = false;
		if (trusted && starts_with(s, len, "kubepods"))
			kube = true;
		if (trusted && kube)
			match_pod(s, len, id);

		if (trusted && container_at(s, len, docker_parent, kube, id)) {
			break; /* a container scope is not the service we want to name */
		} else if (ends_with(s, len, ".slice")) {
			copy_part(id->slice, sizeof(id->slice), s, len);
		} else if (starts_with(s, len, "user@") && ends_with(s, len, ".service")) {
			copy_part(id->user_unit, sizeof(id->user_unit), s, len);
		} else if (is_unit(s, len)) {
			copy_part(id->unit, sizeof(id->unit), s, len);
		}
		if (is_unit(s, len))
			trusted = false;
		if (memmem(s, len, "docker", 6))
			docker_parent = true;
		s = e;
	}
	if (kube && id->container_id[0] && !strcmp(id->runtime, "unknown"))
		snprintf(id->runtime, sizeof(id->runtime), "kubernetes");
}

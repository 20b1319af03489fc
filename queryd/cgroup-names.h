/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who a cgroup path belongs to: systemd unit and slice, container runtime
 * and id, Kubernetes pod. Pure string functions over the path shapes each
 * manager writes, so they are table-tested without any of them running.
 */
#pragma once

#include <stdbool.h>

#define CGROUP_NAME_MAX 256

struct cgroup_identity {
	char unit[CGROUP_NAME_MAX];       /* nginx.service, app-foo.scope */
	char slice[CGROUP_NAME_MAX];      /* system.slice, user-1000.slice */
	char user_unit[CGROUP_NAME_MAX];  /* user@1000.service when under a user manager */
	char runtime[16];                 /* docker, containerd, cri-o, podman, kubernetes */
	char container_id[80];            /* the runtime's hex id */
	char pod_uid[64];                 /* Kubernetes pod UID, dashes restored */
};

/* Fills what the path says; empty strings for what it does not. */
void cgroup_identify(const char *path, struct cgroup_identity *ret);

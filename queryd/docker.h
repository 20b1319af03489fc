/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Container names, images and compose projects from the Docker Engine API,
 * fetched asynchronously (a slow or absent Docker never stalls a lookup:
 * the answer says "pending" or "unavailable"), kept fresh from the /events
 * stream (rename, destroy), cached.
 */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>

struct docker;

int docker_new(sd_event *event, const char *socket_path, struct docker **ret);
struct docker *docker_free(struct docker *d);

/* A container id was seen: fetch what Docker knows, once. */
void docker_want(struct docker *d, const char *id);
struct jsonw;
/* Write "docker" (ok/pending/unavailable/unknown/removed) and, when
 * known, name, image and compose_project into an open container object. */
void docker_describe(struct docker *d, const char *id, struct jsonw *w);
/* For `status`: {"socket", "state": ok|connecting|unavailable|disabled,
 * "reason", "hint"} saying why answers carry no Docker data and how to
 * get it. d NULL (--no-docker): "disabled". A new object for the caller. */
json_object *docker_status_json(struct docker *d);

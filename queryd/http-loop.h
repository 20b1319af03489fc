/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libcurl's multi interface driven by the sd-event loop: HTTP over a Unix
 * socket (the Docker Engine API) without a thread and without ever
 * blocking a lookup. Each request calls back once when done; a streaming
 * request also calls back per line as data arrives.
 */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

struct http_loop;
struct http_request;

typedef void (*http_done_fn)(struct http_request *req, int error, long status,
			     const char *body, size_t len, void *userdata);
typedef void (*http_line_fn)(const char *line, size_t len, void *userdata);
/* The status line arrived: for streams, the moment the peer answered. */
typedef void (*http_status_fn)(long status, void *userdata);

int http_loop_new(sd_event *event, struct http_loop **ret);
struct http_loop *http_loop_free(struct http_loop *l);

/* GET url over unix_socket. line_fn set: a stream, delivered per line and
 * never buffered whole. timeout_ms 0: none (streams). The request is freed
 * by the loop after done_fn returns. */
int http_get(struct http_loop *l, const char *unix_socket, const char *url, long timeout_ms,
	     http_line_fn line_fn, http_done_fn done_fn, void *userdata, struct http_request **ret);
/* Call status_fn once when the response's status line arrives. */
void http_request_on_status(struct http_request *req, http_status_fn status_fn);

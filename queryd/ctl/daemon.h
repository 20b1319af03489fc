/* SPDX-License-Identifier: GPL-2.0-or-later */
/* connpidctl's talk with connpid-queryd, through libconnpid. */
#pragma once

#include <stdbool.h>
#include <json-c/json.h>

#include "../lib/connpid.h"

static inline void connpid_closep(connpid **h)
{
	connpid_close(*h);
}

static inline void connpid_result_freep(struct connpid_result **r)
{
	connpid_result_free(*r);
}

/* Errors of connecting, as opposed to those of a connection that broke. */
bool unreachable(int r);
/* A handle on --socket that waits as long as answers take. */
int open_daemon(connpid **ret);
/* One request, one parsed answer. */
int call_daemon(connpid *h, json_object *req, json_object **ret);
/* 0 for {"ok":true}, else the daemon's error logged and -EREMOTEIO. */
int answer_error(json_object *ans);
/* The answer printed as is under --json, then answer_error(). */
int answer_accept(json_object *ans);
/* req asked on a new handle (*ret_h, the caller closes it); failures
 * logged: unreachable, or `failure` and why. */
int request_daemon(json_object *req, const char *failure, connpid **ret_h, json_object **ret_ans);
/* {"op":op} plus extra's members, asked on a connection of its own;
 * failures logged. */
int simple_op(const char *op, json_object *extra, json_object **ret_ans);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by the request handlers (bodies in protocol.c). */
#pragma once

#include <stdint.h>
#include <json-c/json.h>

#define RECENT_DEFAULT 50
#define RECENT_MAX 5000

json_object *ok_answer(void);
/* How much of a client's string to quote in an error. */
int quote_len(const char *s);
/* An integer (not 1.5, not "2") in [min, max]: 0, -EINVAL or -ERANGE. */
int int_in_range(json_object *v, int64_t min, int64_t max, int64_t *ret);
/* The same for a member of req: -ENOENT when absent. */
int get_int_member(json_object *req, const char *key, int64_t min, int64_t max, int64_t *ret);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A request's "filter", for watch and recent (FILTER in connpid(7)) and
 * for history (HFILTER): one table of members, so a member has the same
 * name, the same rule for its value and the same error message in all
 * three. watch and recent know the members that a live flow can be
 * matched by; history knows those and a few columns more.
 */
#pragma once

#include <stddef.h>
#include <json-c/json.h>

#include "client.h"
#include "store.h"

/* Parse {"pid":..,"comm":..,"proto":..,"dst":..,"dport":..,"direction":..,
 * "netns":..,"src":..}; NULL is no filter. On error returns -EINVAL with
 * a message in err. */
int watch_filter_parse(json_object *o, struct watch_filter *ret, char *err, size_t errlen);
/* watch_filter_match() is client.h's. */

/* The members of object o into q (strings copied, owned by q): 0,
 * -EINVAL with a message in err, or -ENOMEM. */
int history_filter_parse(json_object *o, struct history_query *q, char *err, size_t errlen);

/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <json-c/json.h>

/* The "stats" object of connpid-queryd in the Prometheus text exposition
 * format (0.0.4). */
void print_prometheus(json_object *stats);

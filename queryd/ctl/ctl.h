/* SPDX-License-Identifier: GPL-2.0-or-later */
/* connpidctl's command line, read by its commands (as systemctl's arg_*). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#define EXIT_FOUND 0
#define EXIT_NOT_FOUND 1
#define EXIT_ERROR 2

extern const char *arg_socket_path;
extern const char *arg_pin_dir;
extern const char *arg_protocol;       /* for lookup without a PROTO word */
extern bool arg_json;
extern bool arg_direct;
extern long arg_limit;
extern json_object *arg_filter;        /* of watch, recent and history; NULL: none */
extern const char *arg_order;
extern bool arg_has_at;
extern double arg_at;
extern bool arg_ecs;                   /* --format ecs */
extern bool arg_prometheus;            /* stats --prometheus */
extern const char *arg_community_id;
/* lookup members, and filters of watch/recent/history */
extern const char *arg_src;
extern uint32_t arg_netns;             /* 0: any */
extern int arg_direction;              /* -1 unset, CONNPID_DIRECTION_* */

/* --src, --netns or --inbound: what the pinned maps cannot answer. */
bool arg_scoped(void);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What a lookup may say beyond the map's key (dst, sport, dport, proto):
 * the flow's direction, its source address and its network namespace.
 * Two namespaces can hold the same key at once; these tell them apart
 * (connpid(7), "lookup").
 */
#pragma once

#include <stdbool.h>
#include <linux/types.h>

enum flow_direction {
	FLOW_OUTBOUND = 0, /* connect()/send(): the default */
	FLOW_INBOUND = 1,  /* accept() */
};

/* The FLOW's and the history view's word for it. */
static inline const char *flow_direction_name(enum flow_direction d)
{
	return d == FLOW_INBOUND ? "inbound" : "outbound";
}

struct lookup_scope {
	enum flow_direction direction;
	bool has_src;
	__u32 src_ip[4]; /* network order, the query's family; v4 in [0] */
	__u64 netns;     /* 0: any namespace */
};

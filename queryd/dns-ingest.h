/* SPDX-License-Identifier: GPL-2.0-or-later */
/* DNS events into the cache, and the name a flow's destination came from. */
#pragma once

#include <stddef.h>
#include <linux/types.h>
#include <json-c/json.h>

#include "connpid.h"

struct manager;
struct flow_domain;

struct dns_ingest {
	__u64 responses;    /* parsed */
	__u64 malformed;    /* did not parse, whole */
	__u64 truncated;    /* did not parse, cut at the probe's copy size */
	__u64 getaddrinfo;  /* getaddrinfo() results taken */
};

/* One record of the DNS ring (a ring_buffer sample callback's ctx and
 * data): into m->dns and the history. Always 0. */
int dns_ingest_event(struct manager *m, const void *data, size_t size);

/* The name the flow's process (pid + start time), else its uid or
 * cgroup, else anyone resolved dst from; NULL when none is known. */
struct flow_domain *manager_domain_for_event(struct manager *m, const struct connpid_event *e);

/* dns_responses, dns_malformed, dns_truncated, dns_getaddrinfo into the
 * `stats` object s */
void dns_ingest_stats_to_json(const struct dns_ingest *d, json_object *s);

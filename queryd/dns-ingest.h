/* SPDX-License-Identifier: GPL-2.0-or-later */
/* DNS events into the cache, and the name a flow's destination came from. */
#pragma once

#include "connpid.h"

struct manager;
struct flow_domain;

/* The name the flow's process (pid + start time), else its uid or
 * cgroup, else anyone resolved dst from; NULL when none is known. */
struct flow_domain *manager_domain_for_event(struct manager *m, const struct connpid_event *e);

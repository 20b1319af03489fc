/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>

/* The cgroup2 mount point from /proc/self/mountinfo (/sys/fs/cgroup on
 * unified hosts, /sys/fs/cgroup/unified on hybrid ones). -ENOENT if none. */
int cgroup2_find_mount(char *buf, size_t size);

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What /proc says about a process, read once per process, never per packet. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#define PROCINFO_CMDLINE_MAX 1024

struct procinfo {
	pid_t pid;
	pid_t ppid;
	uid_t uid;
	gid_t gid;
	__u64 start_ticks;        /* /proc/PID/stat field 22, clock ticks since boot */
	char comm[16];
	char exe[4096];           /* "" when unreadable */
	char cmdline[PROCINFO_CMDLINE_MAX]; /* argv joined by NUL, cmdline_len bytes */
	size_t cmdline_len;
};

/* -ESRCH when the process is gone. */
int procinfo_read(pid_t pid, struct procinfo *ret);
/* Only the start time: cheap check that a pid still names the same process. */
int procinfo_start_ticks(pid_t pid, __u64 *ret);
/* The BPF side's start_boottime (ns) in /proc's clock ticks. */
__u64 boottime_ns_to_ticks(__u64 ns);

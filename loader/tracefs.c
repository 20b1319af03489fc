// SPDX-License-Identifier: GPL-2.0-or-later
/* tracefs for the accept tracepoints (--inbound): libbpf attaches a
 * "tracepoint/<cat>/<name>" program through the event's id file, which
 * only tracefs has. libbpf reads it under /sys/kernel/debug/tracing when
 * that exists, else under /sys/kernel/tracing, which we mount when
 * nothing is there (as systemd does at boot). */
#include <errno.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "loader.h"
#include "log.h"
#include "macro.h"

#define DEBUGFS_TRACING "/sys/kernel/debug/tracing"
#define TRACEFS "/sys/kernel/tracing"
#define ACCEPT_EVENT "events/syscalls/sys_exit_accept4/id"

static int tracefs_mount_if_needed(void)
{
	struct statfs sfs;

	if (statfs(TRACEFS, &sfs) < 0)
		return log_error_errno(negative_errno(), "Cannot look at %s: %m "
				       "(the kernel lacks tracefs? --inbound needs it)", TRACEFS);
	if (sfs.f_type == TRACEFS_MAGIC)
		return 0;
	if (mount("tracefs", TRACEFS, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return log_error_errno(negative_errno(), "tracefs is not mounted at %s and mounting it "
				       "failed: %m (--inbound attaches to syscall tracepoints)", TRACEFS);
	log_info("Mounted tracefs at %s for the accept tracepoints", TRACEFS);
	return 0;
}

int tracefs_ensure(void)
{
	const char *root = TRACEFS;
	char path[128];
	int r;

	/* libbpf's own choice, so that we check the place it will read. */
	if (access(DEBUGFS_TRACING, F_OK) == 0) {
		root = DEBUGFS_TRACING;
	} else {
		r = tracefs_mount_if_needed();
		if (r < 0)
			return r;
	}
	snprintf(path, sizeof(path), "%s/%s", root, ACCEPT_EVENT);
	if (access(path, R_OK) < 0)
		return log_error_errno(negative_errno(), "No syscall tracepoint %s: %m (--inbound needs "
				       "a kernel with CONFIG_FTRACE_SYSCALLS)", path);
	return 0;
}

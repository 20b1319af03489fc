// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup2.h"
#include "macro.h"

/* mountinfo: id parent maj:min root mountpoint opts [optional...] - fstype src superopts */
int cgroup2_find_mount(char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return negative_errno();
	while (getline(&line, &cap, f) > 0) {
		char mountpoint[4096], fstype[64];
		const char *sep = strstr(line, " - ");

		if (!sep || sscanf(sep + 3, "%63s", fstype) != 1 || !streq(fstype, "cgroup2"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mountpoint) != 1)
			continue;
		/* mountinfo escapes spaces as \040; cgroup mounts never have them */
		if (strlen(mountpoint) >= size)
			return -ENAMETOOLONG;
		strcpy(buf, mountpoint);
		return 0;
	}
	return -ENOENT;
}

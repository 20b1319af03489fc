// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "safe-path.h"

bool uid_is_trusted(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

int dir_is_safe(const struct stat *st, char *why, size_t whylen)
{
	if (!uid_is_trusted(st->st_uid)) {
		snprintf(why, whylen, "owned by uid %u, neither root nor us (uid %u)", (unsigned)st->st_uid,
			 (unsigned)geteuid());
		return -EPERM;
	}
	/* Whoever may write the directory could point a name we open at any
	 * file; the sticky bit keeps them to their own entries. */
	if ((st->st_mode & (S_IWGRP | S_IWOTH)) && !(st->st_mode & S_ISVTX)) {
		snprintf(why, whylen, "writable by %s (mode %04o) and not sticky",
			 st->st_mode & S_IWOTH ? "others" : "its group", (unsigned)(st->st_mode & 07777));
		return -EPERM;
	}
	return 0;
}

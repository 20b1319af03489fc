/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Whether a directory a root daemon writes files in can be trusted: the
 * one rule the history database and the NDJSON export share. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

/* root, or the uid we run as */
bool uid_is_trusted(uid_t uid);

/* Only trusted users can add, remove or swap entries in the directory st
 * describes: it is owned by root or us, and not writable by its group or
 * others unless sticky. 0, or -EPERM with the reason ("owned by uid 1000,
 * neither root nor us (uid 0)" / "writable by others (mode 0777) and not
 * sticky") in why. */
int dir_is_safe(const struct stat *st, char *why, size_t whylen);

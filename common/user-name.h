/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* uid's name in the password database, written into buf (the entry's
 * scratch space, 1 KiB is plenty for files and systemd's userdb), or NULL
 * when it has none or buf is too small: the caller then shows the uid. */
const char *user_name(uid_t uid, char *buf, size_t size);

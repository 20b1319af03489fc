// SPDX-License-Identifier: GPL-2.0-or-later
#include <pwd.h>

#include "user-name.h"

const char *user_name(uid_t uid, char *buf, size_t size)
{
	struct passwd pw, *res = NULL;

	if (getpwuid_r(uid, &pw, buf, size, &res) != 0 || !res)
		return NULL;
	return res->pw_name;
}

// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "macro.h"
#include "pins.h"

/* Everything connpid pins; --unload removes a directory only if it holds
 * nothing else, so a mistyped --pin-dir cannot wipe someone else's pins. */
static const char *const connpid_pins[] = {
	"conn_to_pid_v4", "conn_to_pid_v6", "config", "stats", "events", "meta",
	"sock_creators", "exec_info", "scope_cgroup", "dns_events", "gai_calls",
	CONNPID_LINKS_SUBDIR, CONNPID_PROGS_SUBDIR,
};

static int check_only_connpid_pins(const char *pin_dir)
{
	_cleanup_(closedirp) DIR *d = opendir(pin_dir);
	struct dirent *de;

	if (!d)
		return log_error_errno(negative_errno(), "Cannot read %s: %m", pin_dir);
	while ((de = readdir(d))) {
		bool known = false;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		for (size_t i = 0; i < ARRAY_SIZE(connpid_pins); i++)
			known = known || streq(de->d_name, connpid_pins[i]);
		if (!known)
			return log_error_errno(-ENOTEMPTY, "%s holds '%s', which connpid does not pin: "
					       "not a connpid pin dir, refusing to unload it", pin_dir, de->d_name);
	}
	return 0;
}

int loader_unload(const char *pin_dir)
{
	_cleanup_close_ int lock_fd = -EBADF;
	struct stat st;
	int r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "connpid-loader --unload must run as root");
	if (stat(pin_dir, &st) < 0) {
		if (errno == ENOENT) {
			log_info("Nothing to unload: %s does not exist", pin_dir);
			return 0;
		}
		return log_error_errno(negative_errno(), "Cannot stat %s: %m", pin_dir);
	}
	r = pindir_open_locked(pin_dir, false, &lock_fd, NULL);
	if (r < 0)
		return r;
	r = check_only_connpid_pins(pin_dir);
	if (r < 0)
		return r;
	r = pindir_remove_all(pin_dir);
	if (r < 0)
		return log_error_errno(r, "Unloading %s left something behind: %m", pin_dir);
	log_info("Unloaded: links detached, pins under %s removed", pin_dir);
	return 0;
}

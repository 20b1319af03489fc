// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader.h"
#include "log.h"
#include "macro.h"
#include "pins.h"

/* --unload removes a directory only if everything in it is connpid's (by
 * name, kind and object name, no symlinks): a mistyped --pin-dir, or a
 * link pin replaced by a symlink to another instance's, cannot make it
 * detach or remove what is not ours. */
int loader_unload(const char *pin_dir)
{
	_cleanup_close_ int lock_fd = -EBADF;
	struct stat st;
	int r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "connpid-loader --unload must run as root");
	if (lstat(pin_dir, &st) < 0) {
		if (errno == ENOENT) {
			log_info("Nothing to unload: %s does not exist", pin_dir);
			return 0;
		}
		return log_error_errno(negative_errno(), "Cannot stat %s: %m", pin_dir);
	}
	r = pindir_open_locked(pin_dir, false, &lock_fd, NULL);
	if (r < 0)
		return r;
	r = pindir_check_ours(pin_dir);
	if (r < 0)
		return r;
	r = pindir_remove_all(pin_dir);
	if (r < 0)
		return log_error_errno(r, "Unloading %s left something behind: %m", pin_dir);
	log_info("Unloaded: links detached, pins under %s removed", pin_dir);
	return 0;
}

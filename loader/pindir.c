// SPDX-License-Identifier: GPL-2.0-or-later
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include <linux/types.h>
#include "connpid.h"
#include "loader.h"
#include "log.h"
#include "macro.h"
#include "pins.h"

/* Mount bpffs at /sys/fs/bpf when the pin dir lives there and nothing is
 * mounted yet; any other location must already be bpffs. */
static int ensure_bpffs(const char *pin_dir)
{
	int r;

	if (strncmp(pin_dir, CONNPID_BPFFS_ROOT "/", strlen(CONNPID_BPFFS_ROOT) + 1) != 0)
		return 0;
	r = path_is_bpffs(CONNPID_BPFFS_ROOT);
	if (r < 0)
		return log_error_errno(r, "Cannot check %s: %m", CONNPID_BPFFS_ROOT);
	if (r > 0)
		return 0;
	if (mount("bpf", CONNPID_BPFFS_ROOT, "bpf", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700") < 0)
		return log_error_errno(negative_errno(), "bpffs is not mounted at %s and mounting it failed: %m",
				       CONNPID_BPFFS_ROOT);
	log_debug("Mounted bpffs at %s", CONNPID_BPFFS_ROOT);
	return 0;
}

int pindir_open_locked(const char *pin_dir, bool create, int *ret_fd, bool *ret_created)
{
	bool created = false;
	int r;

	if (create) {
		r = ensure_bpffs(pin_dir);
		if (r < 0)
			return r;
		if (mkdir(pin_dir, 0700) == 0)
			created = true;
		else if (errno != EEXIST)
			return log_error_errno(negative_errno(), "Cannot create pin dir %s: %m", pin_dir);
	}

	for (;;) {
		_cleanup_close_ int fd = -EBADF;
		struct stat a, b;

		fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return log_error_errno(negative_errno(), "Cannot open pin dir %s: %m", pin_dir);
		r = path_is_bpffs(pin_dir);
		if (r < 0)
			return log_error_errno(r, "Cannot check pin dir %s: %m", pin_dir);
		if (r == 0) {
			if (created)
				(void)rmdir(pin_dir);
			return log_error_errno(-EMEDIUMTYPE, "Pin dir %s is not on bpffs "
					       "(mount -t bpf bpf %s, or choose a dir there)",
					       pin_dir, CONNPID_BPFFS_ROOT);
		}
		if (flock(fd, LOCK_EX) < 0)
			return log_error_errno(negative_errno(), "Cannot lock pin dir %s: %m", pin_dir);
		/* An unloader may have removed the dir while we waited. */
		if (fstat(fd, &a) < 0)
			return log_error_errno(negative_errno(), "Cannot stat pin dir %s: %m", pin_dir);
		if (stat(pin_dir, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			*ret_fd = TAKE_FD(fd);
			if (ret_created)
				*ret_created = created;
			return 0;
		}
		if (!create)
			return log_error_errno(-ENOENT, "Pin dir %s was removed while waiting for its lock", pin_dir);
		if (mkdir(pin_dir, 0700) == 0)
			created = true;
		else if (errno != EEXIST)
			return log_error_errno(negative_errno(), "Cannot create pin dir %s: %m", pin_dir);
	}
}

int pindir_mkdir_sub(const char *pin_dir, const char *sub, bool *ret_created)
{
	char path[PATH_MAX];
	int r;

	r = pin_path(path, sizeof(path), pin_dir, NULL, sub);
	if (r < 0)
		return log_error_errno(r, "Pin path %s/%s: %m", pin_dir, sub);
	*ret_created = false;
	if (mkdir(path, 0700) == 0)
		*ret_created = true;
	else if (errno != EEXIST)
		return log_error_errno(negative_errno(), "Cannot create %s: %m", path);
	return 0;
}

/* Detach every pinned link first (a pin is not the only reference a link
 * may have), then unlink every pin and remove the directories. */
static int remove_dir_entries(const char *dir, bool detach_links)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int ret = 0;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), dir, NULL, de->d_name) < 0) {
			ret = -ENAMETOOLONG;
			continue;
		}
		if (de->d_type == DT_DIR) {
			int r = remove_dir_entries(path, streq(de->d_name, CONNPID_LINKS_SUBDIR));

			if (r < 0 && ret == 0)
				ret = r;
			if (rmdir(path) < 0 && ret == 0)
				ret = negative_errno();
			continue;
		}
		if (detach_links) {
			_cleanup_close_ int fd = bpf_obj_get(path);

			/* Not fatal: unlinking the last reference detaches too. */
			if (fd >= 0 && bpf_link_detach(fd) < 0)
				log_debug_errno(negative_errno(), "Detaching %s: %m", path);
		}
		if (unlink(path) < 0 && errno != ENOENT && ret == 0)
			ret = negative_errno();
	}
	return ret;
}

int pindir_remove_all(const char *pin_dir)
{
	int r;

	r = remove_dir_entries(pin_dir, false);
	if (rmdir(pin_dir) < 0 && errno != ENOENT && r == 0)
		r = negative_errno();
	return r;
}

int pindir_is_half_loaded(const char *pin_dir, bool *ret)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct connpid_meta meta = {};
	struct dirent *de;
	bool any = false;

	d = opendir(pin_dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d)))
		if (!streq(de->d_name, ".") && !streq(de->d_name, "..") &&
		    !streq(de->d_name, CONNPID_LINKS_SUBDIR) && !streq(de->d_name, CONNPID_PROGS_SUBDIR))
			any = true;
	if (!any) {
		/* Only empty subdirectories or nothing: a clean slate. */
		*ret = false;
		return 0;
	}
	/* No readable meta next to other pins, or one never committed. */
	*ret = connpid_meta_read(pin_dir, &meta, NULL) < 0 || meta.abi_version == 0;
	return 0;
}

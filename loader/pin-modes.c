// SPDX-License-Identifier: GPL-2.0-or-later
/* Least privilege (connpid(7), PERMISSIONS): root owns every pin and is
 * the only one to write a map or touch a link or program. The daemon's
 * group reads the maps (readers open them BPF_F_RDONLY) and gets
 * read-write on the rings only, whose consumer page is mmapped writable.
 * Set on every run, so pins of an older, laxer connpid are tightened. */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "loader.h"
#include "log.h"
#include "macro.h"
#include "pins.h"

static int set_pin_mode(const char *path, gid_t gid, mode_t mode)
{
	struct stat st;

	/* pindir_check_ours() vetted the dir; still, chmod() would follow. */
	if (lstat(path, &st) < 0)
		return negative_errno();
	if (S_ISLNK(st.st_mode))
		return -ELOOP;
	if (lchown(path, 0, gid) < 0 || chmod(path, mode) < 0)
		return negative_errno();
	return 0;
}

static mode_t map_pin_mode(const char *path)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);
	_cleanup_close_ int fd = pin_open(path, false);

	if (fd >= 0 && pin_fd_kind(fd) == PIN_KIND_MAP &&
	    bpf_obj_get_info_by_fd(fd, &info, &len) == 0 && info.type == BPF_MAP_TYPE_RINGBUF)
		return 0660;
	return 0640;
}

static bool is_sub_dir_name(const char *name)
{
	return streq(name, CONNPID_LINKS_SUBDIR) || streq(name, CONNPID_PROGS_SUBDIR);
}

/* The top holds the maps (the group's) and the links/ and progs/
 * subdirectories, whose entries are root's alone. */
static int set_dir_modes(const char *dir, gid_t gid, bool top)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int r;

	r = set_pin_mode(dir, gid, top ? 0750 : 0700);
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		r = pin_path(path, sizeof(path), dir, NULL, de->d_name);
		if (r >= 0 && !top)
			r = set_pin_mode(path, 0, 0600);
		else if (r >= 0 && is_sub_dir_name(de->d_name))
			r = set_dir_modes(path, 0, false);
		else if (r >= 0)
			r = set_pin_mode(path, gid, map_pin_mode(path));
		if (r < 0)
			return r;
	}
	return 0;
}

int pins_set_modes(const char *pin_dir, gid_t gid)
{
	return set_dir_modes(pin_dir, gid, true);
}

int pins_resolve_group(const char *name, bool explicit, gid_t *ret)
{
	struct group gr, *res = NULL;
	char buf[4096];
	int r;

	r = getgrnam_r(name, &gr, buf, sizeof(buf), &res);
	if (r != 0 || !res) {
		if (explicit)
			return log_error_errno(r ? -r : -ENOENT, "Group '%s' for the pins does not exist", name);
		return 0; /* the default group is optional: root-only pins */
	}
	*ret = res->gr_gid;
	return 1;
}

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
#include <linux/bpf.h>

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

		/* Never a symlink: it could point at another tool's pins. */
		fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 && (errno == ELOOP || errno == ENOTDIR))
			return log_error_errno(-ELOOP, "Pin dir %s is a symlink or not a directory: "
					       "refusing to follow it", pin_dir);
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
		if (lstat(pin_dir, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
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
	r = pin_dir_check(path);
	if (r < 0)
		return log_error_errno(r, "%s is a symlink or not a directory: refusing to use it", path);
	return 0;
}

/* Every map connpid pins at the top of its pin dir. */
static const char *const connpid_map_pins[] = {
	"conn_to_pid_v4", "conn_to_pid_v6", "config", "stats", "events", "meta",
	"sock_creators", "exec_info", "scope_cgroup", "dns_events", "gai_calls",
	"listen_owners",
};

static bool is_connpid_map_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(connpid_map_pins); i++)
		if (streq(name, connpid_map_pins[i]))
			return true;
	return false;
}

/* The kernel keeps object names to 15 characters. */
static bool object_name_is(const char *obj_name, const char *pin_name)
{
	char want[BPF_OBJ_NAME_LEN];

	snprintf(want, sizeof(want), "%s", pin_name);
	return streq(obj_name, want);
}

static const char *map_not_ours(int fd, const char *name)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return "cannot query it";
	if (!object_name_is(info.name, name))
		return "a map of another name";
	if (streq(name, "meta") && (info.type != BPF_MAP_TYPE_ARRAY || info.key_size != 4 ||
				    info.value_size != sizeof(struct connpid_meta)))
		return "not connpid's meta map";
	return NULL;
}

static const char *prog_id_not_ours(__u32 prog_id, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	_cleanup_close_ int fd = bpf_prog_get_fd_by_id(prog_id);

	if (fd < 0 || bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return "cannot query its program";
	return object_name_is(info.name, name) ? NULL : "a program of another name";
}

static const char *link_not_ours(int fd, const char *name)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return "cannot query it";
	return prog_id_not_ours(info.prog_id, name);
}

static const char *prog_not_ours(int fd, const char *name)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return "cannot query it";
	return object_name_is(info.name, name) ? NULL : "a program of another name";
}

/* Why the entry at path is not a pin connpid made, or NULL if it is one:
 * a plain pin file (never followed if a symlink) of the expected kind
 * whose object carries the pin's name. */
static const char *pin_not_ours(const char *path, const char *name, enum pin_kind want)
{
	static const char *const kind_names[] = {
		[PIN_KIND_MAP] = "not a map", [PIN_KIND_PROG] = "not a program", [PIN_KIND_LINK] = "not a link",
	};
	_cleanup_close_ int fd = -EBADF;

	if (want != PIN_KIND_MAP && strncmp(name, "connpid_", 8) != 0)
		return "not a connpid program name";
	fd = pin_open(path, want != PIN_KIND_MAP);
	if (fd == -ELOOP)
		return "a symlink";
	if (fd == -EISDIR)
		return "a directory";
	if (fd == -EBADFD)
		return "not a pin file";
	if (fd < 0)
		return "cannot open it";
	if (pin_fd_kind(fd) != want)
		return kind_names[want];
	if (want == PIN_KIND_MAP)
		return map_not_ours(fd, name);
	if (want == PIN_KIND_LINK)
		return link_not_ours(fd, name);
	return prog_not_ours(fd, name);
}

/* The entries found not to be connpid's, named in one error line. */
struct foreign {
	char list[1024];
	unsigned n;
};

static void foreign_add(struct foreign *f, const char *sub, const char *name, const char *why)
{
	size_t len = strlen(f->list);

	if (f->n++ < 8)
		snprintf(f->list + len, sizeof(f->list) - len, "%s'%s%s%s' (%s)", len ? ", " : "",
			 sub ?: "", sub ? "/" : "", name, why);
}

static int check_sub(const char *pin_dir, const char *sub, enum pin_kind want, struct foreign *f)
{
	_cleanup_(closedirp) DIR *d = NULL;
	char dir[PATH_MAX];
	struct dirent *de;
	int r;

	r = pin_path(dir, sizeof(dir), pin_dir, NULL, sub);
	if (r < 0)
		return r;
	r = pin_dir_check(dir);
	if (r == -ENOENT)
		return 0;
	if (r == -ELOOP || r == -ENOTDIR) {
		foreign_add(f, NULL, sub, r == -ELOOP ? "a symlink" : "not a directory");
		return 0;
	}
	if (r < 0)
		return r;
	d = opendir(dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		const char *why;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), dir, NULL, de->d_name) < 0) {
			foreign_add(f, sub, de->d_name, "name too long");
			continue;
		}
		why = pin_not_ours(path, de->d_name, want);
		if (why)
			foreign_add(f, sub, de->d_name, why);
	}
	return 0;
}

int pindir_check_ours(const char *pin_dir)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct foreign f = {};
	struct dirent *de;
	int r;

	d = opendir(pin_dir);
	if (!d)
		return log_error_errno(negative_errno(), "Cannot read %s: %m", pin_dir);
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		const char *why;

		if (streq(de->d_name, ".") || streq(de->d_name, "..") ||
		    streq(de->d_name, CONNPID_LINKS_SUBDIR) || streq(de->d_name, CONNPID_PROGS_SUBDIR))
			continue;
		if (!is_connpid_map_name(de->d_name)) {
			foreign_add(&f, NULL, de->d_name, "a name connpid does not pin");
			continue;
		}
		if (pin_path(path, sizeof(path), pin_dir, NULL, de->d_name) < 0)
			return log_error_errno(-ENAMETOOLONG, "Pin path %s/%s: %m", pin_dir, de->d_name);
		why = pin_not_ours(path, de->d_name, PIN_KIND_MAP);
		if (why)
			foreign_add(&f, NULL, de->d_name, why);
	}
	r = check_sub(pin_dir, CONNPID_LINKS_SUBDIR, PIN_KIND_LINK, &f);
	if (r >= 0)
		r = check_sub(pin_dir, CONNPID_PROGS_SUBDIR, PIN_KIND_PROG, &f);
	if (r < 0)
		return log_error_errno(r, "Cannot inspect %s: %m", pin_dir);
	if (f.n > 0)
		return log_error_errno(-ENOTEMPTY, "%s holds %u entr%s connpid did not create: %s%s; "
				       "refusing to touch it (move them away, or choose another --pin-dir)",
				       pin_dir, f.n, f.n == 1 ? "y" : "ies", f.list, f.n > 8 ? ", ..." : "");
	return 0;
}

/* Detach every pinned link first (a pin is not the only reference a link
 * may have), then unlink every pin and remove the directories. Only plain
 * pin files are touched and only links/ and progs/ entered: a symlink is
 * never followed, and whatever else is there stays (and keeps the pin dir
 * from being removed). Callers run pindir_check_ours() first. */
static int remove_dir_entries(const char *dir, bool top, bool detach_links)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int ret = 0;

	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		struct stat st;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), dir, NULL, de->d_name) < 0) {
			ret = -ENAMETOOLONG;
			continue;
		}
		if (lstat(path, &st) < 0)
			continue;
		if (top && S_ISDIR(st.st_mode) &&
		    (streq(de->d_name, CONNPID_LINKS_SUBDIR) || streq(de->d_name, CONNPID_PROGS_SUBDIR))) {
			int r = remove_dir_entries(path, false, streq(de->d_name, CONNPID_LINKS_SUBDIR));

			if (r < 0 && ret == 0)
				ret = r;
			if (rmdir(path) < 0 && ret == 0)
				ret = negative_errno();
			continue;
		}
		if (!S_ISREG(st.st_mode) || (top && !is_connpid_map_name(de->d_name))) {
			log_warning("Leaving %s alone: not a pin connpid made", path);
			if (ret == 0)
				ret = -ENOTEMPTY;
			continue;
		}
		if (detach_links) {
			_cleanup_close_ int fd = pin_open(path, true);

			/* Not fatal: unlinking the last reference detaches too. */
			if (fd >= 0 && pin_fd_kind(fd) == PIN_KIND_LINK && bpf_link_detach(fd) < 0)
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

	r = remove_dir_entries(pin_dir, true, false);
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

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Load, attach and pin. Re-running is safe by construction (systemd-
 * nsresourced's way): maps are reused from their pins by libbpf, a program
 * whose link pin already exists is left attached, and only what is missing
 * is added. Everything this run creates is recorded and removed again if a
 * later step fails; the meta map's ABI version is written last and marks
 * the pins as complete.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup2.h"
#include <linux/types.h>
#include "connpid.h"
#include "loader.h"
#include "log.h"
#include "macro.h"
#include "pins.h"

#include "connpid.skel.h"
#include "ipv6_block.skel.h"
#include "dns.skel.h"

static void connpid_bpf__destroyp(struct connpid_bpf **p)
{
	connpid_bpf__destroy(*p);
}

static void ipv6_block_bpf__destroyp(struct ipv6_block_bpf **p)
{
	ipv6_block_bpf__destroy(*p);
}

static void dns_bpf__destroyp(struct dns_bpf **p)
{
	dns_bpf__destroy(*p);
}

/* The libc this loader runs with is the system's: its path from our own
 * mappings, not from a list of guesses. */
static int find_libc(char *buf, size_t size)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/maps", "re");
	char line[4096];

	if (!f)
		return negative_errno();
	while (fgets(line, sizeof(line), f)) {
		char *path = strchr(line, '/');
		char *base;

		if (!path)
			continue;
		path[strcspn(path, "\n")] = '\0';
		base = strrchr(path, '/') + 1;
		if (strncmp(base, "libc.so", 7) == 0 || strncmp(base, "libc-", 5) == 0) {
			if (strlen(path) >= size)
				return -ENAMETOOLONG;
			strcpy(buf, path);
			return 0;
		}
	}
	return -ENOENT;
}

#define BTF_PATH "/sys/kernel/btf/vmlinux"
#define MAX_CREATED 64

/* What this run added, so a failure can take exactly that back. */
struct rollback {
	char *pins[MAX_CREATED];     /* unlinked in reverse order */
	size_t n_pins;
	struct bpf_link *links[MAX_CREATED]; /* destroyed: detaches */
	size_t n_links;
};

static int rollback_add_pin(struct rollback *rb, const char *path)
{
	if (rb->n_pins >= MAX_CREATED)
		return -E2BIG;
	rb->pins[rb->n_pins] = strdup(path);
	if (!rb->pins[rb->n_pins])
		return -ENOMEM;
	rb->n_pins++;
	return 0;
}

static int remove_pin(const char *path)
{
	if (unlink(path) == 0 || errno == ENOENT)
		return 0;
	if ((errno == EISDIR || errno == EPERM) && rmdir(path) == 0)
		return 0;
	return negative_errno();
}

static void rollback_run(struct rollback *rb)
{
	for (size_t i = rb->n_pins; i > 0; i--) {
		int r = remove_pin(rb->pins[i - 1]);

		if (r < 0)
			log_warning_errno(r, "Rollback: cannot remove %s: %m", rb->pins[i - 1]);
	}
	for (size_t i = 0; i < rb->n_links; i++) {
		bpf_link__detach(rb->links[i]);
		bpf_link__destroy(rb->links[i]);
		rb->links[i] = NULL;
	}
	rb->n_links = 0;
}

static void rollback_free(struct rollback *rb)
{
	for (size_t i = 0; i < rb->n_pins; i++)
		free(rb->pins[i]);
	rb->n_pins = 0;
	/* Links that stay pinned keep their attachment after we exit. */
	for (size_t i = 0; i < rb->n_links; i++)
		bpf_link__destroy(rb->links[i]);
	rb->n_links = 0;
}

bool test_fail_at(const char *step)
{
	const char *e = getenv("CONNPID_TEST_FAIL_AT");
	const char *h = getenv("CONNPID_TEST_HANG_AT");

	/* Hang lets a test SIGKILL the loader at an exact point. */
	if (h && streq(h, step)) {
		fprintf(stderr, "connpid-loader: test hang at %s\n", step);
		for (;;)
			pause();
	}
	return e && streq(e, step);
}

/* Depth below the cgroup2 root: the index of this cgroup in a
 * descendant's ancestors[] array. */
static int cgroup_level_of(const char *path, __u32 *ret)
{
	char mount[PATH_MAX], real[PATH_MAX], rmount[PATH_MAX];
	const char *rel;
	__u32 level = 0;
	int r;

	r = cgroup2_find_mount(mount, sizeof(mount));
	if (r < 0)
		return r;
	if (!realpath(path, real) || !realpath(mount, rmount))
		return negative_errno();
	if (strncmp(real, rmount, strlen(rmount)) != 0)
		return -EXDEV;
	rel = real + strlen(rmount);
	for (const char *p = rel; *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			level++;
	*ret = level;
	return 0;
}

static int open_cgroup(const char *path_opt, int *ret_fd, char *ret_path, size_t size,
		       __u64 *ret_id, __u32 *ret_level)
{
	_cleanup_close_ int fd = -EBADF;
	struct statfs sfs;
	struct stat st;
	int r;

	if (path_opt) {
		if (strlen(path_opt) >= size)
			return log_error_errno(-ENAMETOOLONG, "Cgroup path too long: %s", path_opt);
		strcpy(ret_path, path_opt);
	} else {
		r = cgroup2_find_mount(ret_path, size);
		if (r < 0)
			return log_error_errno(r, "cgroup2 is not mounted (no cgroup2 line in "
					       "/proc/self/mountinfo); mount it or pass --cgroup PATH");
	}
	fd = open(ret_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(negative_errno(), "Cannot open cgroup %s: %m", ret_path);
	if (fstatfs(fd, &sfs) < 0)
		return log_error_errno(negative_errno(), "Cannot check cgroup %s: %m", ret_path);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return log_error_errno(-EMEDIUMTYPE, "%s is not a cgroup2 directory", ret_path);
	if (fstat(fd, &st) < 0)
		return log_error_errno(negative_errno(), "Cannot stat cgroup %s: %m", ret_path);
	r = cgroup_level_of(ret_path, ret_level);
	if (r < 0)
		return log_error_errno(r, "Cannot place %s under the cgroup2 root: %m", ret_path);
	*ret_id = st.st_ino; /* on cgroup2 the inode is the cgroup id */
	*ret_fd = TAKE_FD(fd);
	return 0;
}

/* Point every non-internal map at its pin so libbpf reuses or pins it;
 * note which pins are new so a rollback can remove them. */
static int set_map_pins(struct bpf_object *obj, const char *pin_dir, bool existed[], size_t max)
{
	struct bpf_map *map;
	size_t i = 0;
	int r;

	bpf_object__for_each_map(map, obj) {
		char path[PATH_MAX];
		struct stat st;

		if (bpf_map__is_internal(map))
			continue;
		if (i >= max)
			return -E2BIG;
		r = pin_path(path, sizeof(path), pin_dir, NULL, bpf_map__name(map));
		if (r < 0)
			return r;
		r = bpf_map__set_pin_path(map, path);
		if (r < 0)
			return r;
		existed[i++] = lstat(path, &st) == 0;
	}
	return 0;
}

static int record_new_map_pins(struct bpf_object *obj, const bool existed[], struct rollback *rb)
{
	struct bpf_map *map;
	size_t i = 0;
	int r;

	bpf_object__for_each_map(map, obj) {
		if (bpf_map__is_internal(map))
			continue;
		if (!existed[i++] && bpf_map__pin_path(map)) {
			r = rollback_add_pin(rb, bpf_map__pin_path(map));
			if (r < 0)
				return r;
		}
	}
	return 0;
}

static int load_object(struct bpf_object *obj, const char *what, const char *pin_dir,
		       struct rollback *rb)
{
	bool existed[16] = {};
	int r;

	r = set_map_pins(obj, pin_dir, existed, ARRAY_SIZE(existed));
	if (r < 0)
		return log_error_errno(r, "Cannot set map pin paths for %s: %m", what);
	if (test_fail_at("load"))
		return log_error_errno(-ECANCELED, "Test failure injected before loading %s", what);
	r = bpf_object__load(obj);
	/* libbpf may have pinned some maps before failing: record them first. */
	(void)record_new_map_pins(obj, existed, rb);
	if (r < 0) {
		if (r == -EINVAL || r == -EACCES || r == -EPERM)
			return log_error_errno(r, "Kernel refused %s (verifier or permissions): %m; "
					       "run with -v for the verifier log", what);
		if (r == -ENOMEM || r == -E2BIG)
			return log_error_errno(r, "Loading %s failed: %m (map sizes too large?)", what);
		return log_error_errno(r, "Loading %s failed: %m (incompatible maps already pinned "
				       "in %s? run connpid-loader --unload)", what, pin_dir);
	}
	if (test_fail_at("pin-maps"))
		return log_error_errno(-ECANCELED, "Test failure injected after pinning maps of %s", what);
	return 0;
}

/* A pinned cgroup link is only "attached" if it still points at the
 * cgroup we were asked for: someone may have detached it, or the cgroup
 * may have been removed and made again. */
static bool link_is_live(int link_fd, __u64 cgroup_id, bool is_cgroup)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &len) < 0)
		return false;
	if (!is_cgroup)
		return true;
	return info.type == BPF_LINK_TYPE_CGROUP && info.cgroup.cgroup_id == cgroup_id;
}

static bool is_iter(const struct bpf_program *prog)
{
	return bpf_program__type(prog) == BPF_PROG_TYPE_TRACING &&
	       bpf_program__expected_attach_type(prog) == BPF_TRACE_ITER;
}

static bool is_cgroup_prog(const struct bpf_program *prog)
{
	return bpf_program__type(prog) != BPF_PROG_TYPE_TRACING &&
	       bpf_program__type(prog) != BPF_PROG_TYPE_KPROBE;
}

/* Attach one program unless its link pin shows it is attached already. */
static int attach_program(struct bpf_program *prog, int cgroup_fd, __u64 cgroup_id, const char *pin_dir,
			  unsigned idx, struct rollback *rb, unsigned *ret_attached)
{
	char path[PATH_MAX], step[32];
	_cleanup_close_ int existing = -EBADF;
	struct bpf_link *link;
	int r;

	r = pin_path(path, sizeof(path), pin_dir, CONNPID_LINKS_SUBDIR, bpf_program__name(prog));
	if (r < 0)
		return log_error_errno(r, "Link pin path: %m");
	existing = pin_open(path, true);
	if (existing >= 0) {
		if (link_is_live(existing, cgroup_id, is_cgroup_prog(prog))) {
			log_debug("%s already attached (%s)", bpf_program__name(prog), path);
			return 0;
		}
		log_warning("%s was detached or points at another cgroup; attaching it again",
			    bpf_program__name(prog));
		if (unlink(path) < 0)
			return log_error_errno(negative_errno(), "Cannot remove stale link pin %s: %m", path);
	} else if (existing != -ENOENT) {
		return log_error_errno(existing, "Cannot open link pin %s: %m", path);
	}

	snprintf(step, sizeof(step), "attach:%u", idx);
	if (test_fail_at(step))
		return log_error_errno(-ECANCELED, "Test failure injected before attaching %s",
				       bpf_program__name(prog));
	if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE) {
		/* getaddrinfo() in the system's libc; the exit half is the uretprobe */
		char libc[PATH_MAX];
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "getaddrinfo",
			    .retprobe = strstr(bpf_program__name(prog), "_exit") != NULL);

		r = find_libc(libc, sizeof(libc));
		if (r < 0)
			return log_error_errno(r, "Cannot find libc for the getaddrinfo probes: %m "
					       "(use --no-dns to go without)");
		link = bpf_program__attach_uprobe_opts(prog, -1, libc, 0, &uo);
	} else if (is_cgroup_prog(prog)) {
		link = bpf_program__attach_cgroup(prog, cgroup_fd);
	} else {
		link = bpf_program__attach(prog);
	}
	if (!link)
		return log_error_errno(negative_errno(), "Cannot attach %s: %m", bpf_program__name(prog));
	rb->links[rb->n_links++] = link;
	r = bpf_link__pin(link, path);
	if (r < 0)
		return log_error_errno(r, "Cannot pin link %s: %m", path);
	r = rollback_add_pin(rb, path);
	if (r < 0)
		return log_error_errno(r, "Rollback bookkeeping: %m");
	(*ret_attached)++;
	return 0;
}

/* Run the seeding iterator once: flows older than connpid enter the maps
 * and the ring as "seeded". Nothing to pin: it is done when read to EOF. */
static int seed_existing_flows(struct bpf_program *prog)
{
	struct bpf_link *link;
	_cleanup_close_ int fd = -EBADF;
	char buf[64];
	int r = 0;

	if (test_fail_at("seed"))
		return log_error_errno(-ECANCELED, "Test failure injected before seeding");
	link = bpf_program__attach_iter(prog, NULL);
	if (!link)
		return log_error_errno(negative_errno(), "Cannot create the seeding iterator: %m");
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		r = log_error_errno(negative_errno(), "Cannot start the seeding iterator: %m");
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = log_error_errno(negative_errno(), "Seeding iterator failed: %m");
			break;
		}
	}
out:
	bpf_link__destroy(link);
	return r;
}

static int pin_program(struct bpf_program *prog, const char *pin_dir, struct rollback *rb)
{
	char path[PATH_MAX];
	struct stat st;
	int r;

	r = pin_path(path, sizeof(path), pin_dir, CONNPID_PROGS_SUBDIR, bpf_program__name(prog));
	if (r < 0)
		return log_error_errno(r, "Program pin path: %m");
	if (lstat(path, &st) == 0)
		return 0; /* the attached one, from an earlier run */
	if (bpf_obj_pin(bpf_program__fd(prog), path) < 0)
		return log_error_errno(negative_errno(), "Cannot pin program %s: %m", path);
	return rollback_add_pin(rb, path);
}

static int write_meta_and_config(struct bpf_object *obj, const struct load_opts *o)
{
	struct bpf_map *meta_map = bpf_object__find_map_by_name(obj, "meta");
	struct bpf_map *config_map = bpf_object__find_map_by_name(obj, "config");
	struct connpid_meta meta = {}, old = {};
	struct timespec ts;
	__u32 zero = 0, cfg;

	if (!meta_map || !config_map)
		return log_error_errno(-ENOENT, "BPF object lacks its meta or config map");
	if (o->ipv6_block) {
		cfg = CONNPID_CONFIG_BLOCK_IPV6;
		if (bpf_map_update_elem(bpf_map__fd(config_map), &zero, &cfg, BPF_ANY) < 0)
			return log_error_errno(negative_errno(), "Cannot write config: %m");
	}
	if (bpf_map_lookup_elem(bpf_map__fd(meta_map), &zero, &old) == 0 &&
	    old.abi_version == CONNPID_ABI_VERSION)
		meta = old; /* keep the first load's time; flags may grow */
	clock_gettime(CLOCK_REALTIME, &ts);
	if (!meta.abi_version)
		meta.loaded_at_realtime_ns = (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	meta.abi_version = CONNPID_ABI_VERSION;
	if (o->blocker)
		meta.flags |= CONNPID_META_F_IPV6_BLOCKER;
	if (o->block_loopback6)
		meta.flags |= CONNPID_META_F_BLOCK_LOOPBACK6;
	snprintf(meta.version, sizeof(meta.version), "%s", CONNPID_VERSION);
	if (test_fail_at("meta"))
		return log_error_errno(-ECANCELED, "Test failure injected before writing meta");
	if (bpf_map_update_elem(bpf_map__fd(meta_map), &zero, &meta, BPF_ANY) < 0)
		return log_error_errno(negative_errno(), "Cannot write meta: %m");
	return 0;
}

static int check_existing_abi(const char *pin_dir)
{
	struct connpid_meta meta = {};

	if (connpid_meta_read(pin_dir, &meta, NULL) < 0)
		return 0; /* nothing usable pinned: a fresh load */
	if (meta.abi_version && meta.abi_version != CONNPID_ABI_VERSION)
		return log_error_errno(-EPROTO, "%s holds pins of connpid ABI %u, this loader is ABI %u: "
				       "unload them with the matching connpid-loader --unload first",
				       pin_dir, meta.abi_version, CONNPID_ABI_VERSION);
	return 0;
}

/* Least privilege (connpid(7), PERMISSIONS): root owns every pin and is
 * the only one to write a map or touch a link or program. The daemon's
 * group reads the maps (readers open them BPF_F_RDONLY) and gets
 * read-write on the rings only, whose consumer page is mmapped writable.
 * Set on every run, so pins of an older, laxer connpid are tightened. */
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

static int set_sub_modes(const char *pin_dir, const char *sub)
{
	_cleanup_(closedirp) DIR *d = NULL;
	char dir[PATH_MAX];
	struct dirent *de;
	int r;

	r = pin_path(dir, sizeof(dir), pin_dir, NULL, sub);
	if (r < 0)
		return r;
	r = set_pin_mode(dir, 0, 0700);
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
		if (r >= 0)
			r = set_pin_mode(path, 0, 0600);
		if (r < 0)
			return r;
	}
	return 0;
}

static int set_pin_modes(const char *pin_dir, gid_t gid)
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int r;

	r = set_pin_mode(pin_dir, gid, 0750);
	if (r < 0)
		return r;
	d = opendir(pin_dir);
	if (!d)
		return negative_errno();
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (streq(de->d_name, CONNPID_LINKS_SUBDIR) || streq(de->d_name, CONNPID_PROGS_SUBDIR)) {
			r = set_sub_modes(pin_dir, de->d_name);
		} else {
			r = pin_path(path, sizeof(path), pin_dir, NULL, de->d_name);
			if (r >= 0)
				r = set_pin_mode(path, gid, map_pin_mode(path));
		}
		if (r < 0)
			return r;
	}
	return 0;
}

static int resolve_group(const char *name, bool explicit, gid_t *ret)
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

int loader_load(const struct load_opts *o)
{
	_cleanup_(connpid_bpf__destroyp) struct connpid_bpf *tracker = NULL;
	_cleanup_(ipv6_block_bpf__destroyp) struct ipv6_block_bpf *blocker = NULL;
	_cleanup_(dns_bpf__destroyp) struct dns_bpf *dns = NULL;
	_cleanup_close_ int cgroup_fd = -EBADF, lock_fd = -EBADF;
	struct rollback rb = {};
	char cgroup_path[PATH_MAX];
	bool dir_created = false, sub_created, half = false;
	unsigned attached = 0, total = 0, idx = 0;
	struct bpf_program *prog;
	struct bpf_object *objs[3] = {};
	size_t n_objs = 0;
	gid_t pins_gid = 0;
	__u64 cgroup_id = 0;
	__u32 cgroup_level = 0, zero = 0;
	int gid_found, r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "connpid-loader must run as root "
				       "(it loads BPF programs and attaches them to a cgroup)");
	gid_found = resolve_group(o->pin_group, o->pin_group_explicit, &pins_gid);
	if (gid_found < 0)
		return gid_found;
	if (access(BTF_PATH, R_OK) < 0)
		return log_error_errno(negative_errno(), "Kernel BTF %s is not readable: %m "
				       "(connpid needs a kernel built with CONFIG_DEBUG_INFO_BTF)", BTF_PATH);
	r = open_cgroup(o->cgroup_path, &cgroup_fd, cgroup_path, sizeof(cgroup_path), &cgroup_id, &cgroup_level);
	if (r < 0)
		return r;
	r = pindir_open_locked(o->pin_dir, true, &lock_fd, &dir_created);
	if (r < 0)
		return r;
	if (dir_created) {
		r = rollback_add_pin(&rb, o->pin_dir);
		if (r < 0)
			goto fail_log;
	}

	/* Before anything reads or removes a pin: all must be ours. */
	r = pindir_check_ours(o->pin_dir);
	if (r < 0)
		goto fail;
	r = check_existing_abi(o->pin_dir);
	if (r < 0)
		goto fail;
	/* A loader killed midway leaves pins without a committed meta: start over. */
	r = pindir_is_half_loaded(o->pin_dir, &half);
	if (r < 0) {
		log_error_errno(r, "Cannot inspect %s: %m", o->pin_dir);
		goto fail;
	}
	if (half) {
		log_warning("%s holds pins of an unfinished load; removing them first", o->pin_dir);
		r = pindir_remove_all(o->pin_dir);
		if (r < 0) {
			log_error_errno(r, "Cannot clean %s: %m", o->pin_dir);
			goto fail;
		}
		{
			int new_fd = -EBADF;

			r = pindir_open_locked(o->pin_dir, true, &new_fd, &dir_created);
			if (r < 0)
				goto fail;
			safe_close(lock_fd);
			lock_fd = new_fd;
		}
		if (dir_created) {
			r = rollback_add_pin(&rb, o->pin_dir);
			if (r < 0)
				goto fail_log;
		}
	}

	for (const char *sub = CONNPID_LINKS_SUBDIR; sub;
	     sub = streq(sub, CONNPID_LINKS_SUBDIR) ? CONNPID_PROGS_SUBDIR : NULL) {
		char path[PATH_MAX];

		r = pindir_mkdir_sub(o->pin_dir, sub, &sub_created);
		if (r < 0)
			goto fail;
		if (sub_created) {
			(void)pin_path(path, sizeof(path), o->pin_dir, NULL, sub);
			r = rollback_add_pin(&rb, path);
			if (r < 0)
				goto fail_log;
		}
	}

	if (o->tracker) {
		tracker = connpid_bpf__open();
		if (!tracker) {
			r = log_error_errno(negative_errno(), "Cannot open the tracker BPF object: %m");
			goto fail;
		}
		bpf_map__set_max_entries(tracker->maps.conn_to_pid_v4, o->v4_entries);
		bpf_map__set_max_entries(tracker->maps.conn_to_pid_v6, o->v6_entries);
		bpf_map__set_max_entries(tracker->maps.events, o->ringbuf_bytes);
		tracker->rodata->wakeup_bytes = o->ringbuf_bytes / 16;
		tracker->rodata->block_loopback6 = o->block_loopback6;
		tracker->rodata->honor_ipv6_block = o->blocker;
		tracker->rodata->scope_cgroup_id = cgroup_id;
		tracker->rodata->scope_cgroup_level = cgroup_level;
		/* Without the creator hook the events skip the lookup too. */
		tracker->rodata->track_creators = o->creator;
		if (!o->creator)
			bpf_program__set_autoload(tracker->progs.connpid_sock_create, false);
		r = load_object(tracker->obj, "the tracker (connpid.bpf.o)", o->pin_dir, &rb);
		if (r < 0)
			goto fail;
		objs[n_objs++] = tracker->obj;
		/* Global hooks (exec) keep to the attach cgroup through this. */
		if (bpf_map_update_elem(bpf_map__fd(tracker->maps.scope_cgroup), &zero, &cgroup_fd, BPF_ANY) < 0) {
			r = log_error_errno(negative_errno(), "Cannot set the scope cgroup: %m");
			goto fail;
		}
	}
	if (o->blocker) {
		blocker = ipv6_block_bpf__open();
		if (!blocker) {
			r = log_error_errno(negative_errno(), "Cannot open the IPv6 blocker BPF object: %m");
			goto fail;
		}
		blocker->rodata->block_loopback6 = o->block_loopback6;
		r = load_object(blocker->obj, "the IPv6 blocker (ipv6_block.bpf.o)", o->pin_dir, &rb);
		if (r < 0)
			goto fail;
		objs[n_objs++] = blocker->obj;
	}
	if (o->dns && o->tracker) {
		dns = dns_bpf__open();
		if (!dns) {
			r = log_error_errno(negative_errno(), "Cannot open the DNS BPF object: %m");
			goto fail;
		}
		/* Shares the flow maps by pin: same sizes or libbpf refuses them. */
		bpf_map__set_max_entries(dns->maps.conn_to_pid_v4, o->v4_entries);
		bpf_map__set_max_entries(dns->maps.conn_to_pid_v6, o->v6_entries);
		r = load_object(dns->obj, "the DNS object (dns.bpf.o)", o->pin_dir, &rb);
		if (r < 0)
			goto fail;
		objs[n_objs++] = dns->obj;
	}

	/* Attach order: the blocker's connect6/sendmsg6 first, then the tracker.
	 * Cgroup multi-programs all run whatever the order, so the order does
	 * not decide tracking: the tracker asks the same config map and never
	 * records a refused native-IPv6 send, and a refused TCP connect never
	 * reaches sockops. */
	{
		/* blocker, tracker, DNS: in that order, whatever was loaded */
		struct bpf_object *order[3] = {
			blocker ? blocker->obj : NULL, tracker ? tracker->obj : NULL, dns ? dns->obj : NULL,
		};

		for (size_t i = 0; i < ARRAY_SIZE(order); i++) {
			if (!order[i])
				continue;
			bpf_object__for_each_program(prog, order[i]) {
				if (is_iter(prog) || !bpf_program__autoload(prog))
					continue;
				total++;
				r = attach_program(prog, cgroup_fd, cgroup_id, o->pin_dir, idx++, &rb, &attached);
				if (r < 0)
					goto fail;
			}
		}
	}
	if (test_fail_at("pin-progs")) {
		r = log_error_errno(-ECANCELED, "Test failure injected before pinning programs");
		goto fail;
	}
	for (size_t i = 0; i < n_objs; i++) {
		bpf_object__for_each_program(prog, objs[i]) {
			if (is_iter(prog) || !bpf_program__autoload(prog))
				continue;
			r = pin_program(prog, o->pin_dir, &rb);
			if (r < 0)
				goto fail;
		}
	}
	if (tracker && o->seed) {
		r = seed_existing_flows(tracker->progs.connpid_seed);
		if (r < 0)
			goto fail;
	}
	r = write_meta_and_config(objs[0], o);
	if (r < 0)
		goto fail;
	/* Without the group (gid 0): the same modes, root's alone. */
	r = set_pin_modes(o->pin_dir, gid_found > 0 ? pins_gid : 0);
	if (r < 0) {
		log_error_errno(r, "Cannot set owner and modes of the pins in %s: %m", o->pin_dir);
		goto fail;
	}

	if (attached == 0)
		log_info("Already loaded: %u programs attached to %s, pins in %s", total, cgroup_path, o->pin_dir);
	else
		log_info("Loaded: %u of %u programs attached to %s, pins in %s",
			 attached, total, cgroup_path, o->pin_dir);
	rollback_free(&rb);
	return 0;

fail_log:
	log_error_errno(r, "Loader bookkeeping failed: %m");
fail:
	rollback_run(&rb);
	rollback_free(&rb);
	return r;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Load, attach and pin. Re-running is safe by construction (systemd-
 * nsresourced's way): maps are reused from their pins by libbpf, a program
 * whose link pin already exists is left attached, and only what is missing
 * is added. Everything this run creates is recorded (rollback.c) and
 * removed again if a later step fails; the meta map's ABI version is
 * written last and marks the pins as complete.
 *
 * One run is a struct loader going through the steps of loader_load() in
 * order: check the host, prepare the pin dir, open and load the objects of
 * objects[], attach, pin the programs, seed, commit.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "rollback.h"

#include "connpid.skel.h"
#include "ipv6_block.skel.h"
#include "dns.skel.h"

#define BTF_PATH "/sys/kernel/btf/vmlinux"

/* The BPF objects, in load order. */
enum {
	OBJ_TRACKER,
	OBJ_BLOCKER,
	OBJ_DNS,
	_OBJ_MAX,
};

/* One run, from the host checks to the commit. */
struct loader {
	const struct load_opts *opts;
	int cgroup_fd;
	int lock_fd;                        /* flock on the pin dir */
	char cgroup_path[PATH_MAX];
	__u64 cgroup_id;
	gid_t pins_gid;                     /* 0: root-only pins */
	struct connpid_bpf *tracker;
	struct ipv6_block_bpf *blocker;
	struct dns_bpf *dns;
	struct bpf_object *objs[_OBJ_MAX];  /* the loaded ones, NULL for the others */
	struct rollback rb;
	unsigned attached, total;
};

static void loader_done(struct loader *l)
{
	rollback_free(&l->rb);
	connpid_bpf__destroy(l->tracker);
	ipv6_block_bpf__destroy(l->blocker);
	dns_bpf__destroy(l->dns);
	safe_close(l->cgroup_fd);
	safe_close(l->lock_fd); /* last: nothing of this run is left to settle */
}

/* ---- Step: check the host ---- */

/* The cgroup must lie under the cgroup2 mount: -EXDEV otherwise. */
static int cgroup_check_under_mount(const char *path)
{
	char mount[PATH_MAX], real[PATH_MAX], rmount[PATH_MAX];
	int r;

	r = cgroup2_find_mount(mount, sizeof(mount));
	if (r < 0)
		return r;
	if (!realpath(path, real) || !realpath(mount, rmount))
		return negative_errno();
	if (strncmp(real, rmount, strlen(rmount)) != 0)
		return -EXDEV;
	return 0;
}

static int cgroup_pick_path(const char *path_opt, char *ret_path, size_t size)
{
	int r;

	if (path_opt) {
		if (strlen(path_opt) >= size)
			return log_error_errno(-ENAMETOOLONG, "Cgroup path too long: %s", path_opt);
		strcpy(ret_path, path_opt);
		return 0;
	}
	r = cgroup2_find_mount(ret_path, size);
	if (r < 0)
		return log_error_errno(r, "cgroup2 is not mounted (no cgroup2 line in "
				       "/proc/self/mountinfo); mount it or pass --cgroup PATH");
	return 0;
}

static int loader_open_cgroup(struct loader *l)
{
	_cleanup_close_ int fd = -EBADF;
	const char *path = l->cgroup_path;
	struct statfs sfs;
	struct stat st;
	int r;

	r = cgroup_pick_path(l->opts->cgroup_path, l->cgroup_path, sizeof(l->cgroup_path));
	if (r < 0)
		return r;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(negative_errno(), "Cannot open cgroup %s: %m", path);
	if (fstatfs(fd, &sfs) < 0)
		return log_error_errno(negative_errno(), "Cannot check cgroup %s: %m", path);
	if (sfs.f_type != CGROUP2_SUPER_MAGIC)
		return log_error_errno(-EMEDIUMTYPE, "%s is not a cgroup2 directory", path);
	if (fstat(fd, &st) < 0)
		return log_error_errno(negative_errno(), "Cannot stat cgroup %s: %m", path);
	r = cgroup_check_under_mount(path);
	if (r < 0)
		return log_error_errno(r, "Cannot place %s under the cgroup2 root: %m", path);
	l->cgroup_id = st.st_ino; /* on cgroup2 the inode is the cgroup id */
	l->cgroup_fd = TAKE_FD(fd);
	return 0;
}

static int loader_check_host(struct loader *l)
{
	const struct load_opts *o = l->opts;
	int r;

	if (geteuid() != 0)
		return log_error_errno(-EPERM, "connpid-loader must run as root "
				       "(it loads BPF programs and attaches them to a cgroup)");
	/* Not found (0): pins_gid stays 0, the pins root's alone. */
	r = pins_resolve_group(o->pin_group, o->pin_group_explicit, &l->pins_gid);
	if (r < 0)
		return r;
	if (access(BTF_PATH, R_OK) < 0)
		return log_error_errno(negative_errno(), "Kernel BTF %s is not readable: %m "
				       "(connpid needs a kernel built with CONFIG_DEBUG_INFO_BTF)", BTF_PATH);
	if (o->inbound) {
		r = tracefs_ensure();
		if (r < 0)
			return r;
	}
	return loader_open_cgroup(l);
}

/* ---- Step: prepare the pin dir ---- */

static int loader_record_pin(struct loader *l, const char *path)
{
	int r = rollback_add_pin(&l->rb, path);

	if (r < 0)
		return log_error_errno(r, "Loader bookkeeping failed: %m");
	return 0;
}

/* Take the pin dir's lock (again, after the dir was re-created). */
static int loader_lock_pin_dir(struct loader *l)
{
	bool created = false;
	int fd = -EBADF, r;

	r = pindir_open_locked(l->opts->pin_dir, true, &fd, &created);
	if (r < 0)
		return r;
	safe_close(l->lock_fd);
	l->lock_fd = fd;
	return created ? loader_record_pin(l, l->opts->pin_dir) : 0;
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

/* The listen() owners are recorded by the sockops program, which a re-run
 * leaves attached: --inbound on top of a load without it would report
 * accepts but never their listener. Say so instead of half doing it. */
static int check_existing_inbound(const struct load_opts *o)
{
	struct connpid_meta meta = {};
	char path[PATH_MAX];
	struct stat st;

	if (connpid_meta_read(o->pin_dir, &meta, NULL) < 0 || meta.abi_version != CONNPID_ABI_VERSION)
		return 0;
	if (meta.flags & CONNPID_META_F_INBOUND) {
		if (!o->inbound)
			log_info("Inbound tracking stays on (loaded with --inbound before; "
				 "--unload to turn it off)");
		return 0;
	}
	if (!o->inbound || pin_path(path, sizeof(path), o->pin_dir, CONNPID_LINKS_SUBDIR,
				    "connpid_sockops") < 0 || lstat(path, &st) < 0)
		return 0;
	return log_error_errno(-EEXIST, "%s is loaded without --inbound: run connpid-loader --unload "
			       "first, then load with --inbound", o->pin_dir);
}

/* A loader killed midway leaves pins without a committed meta: start over. */
static int loader_heal_half_loaded(struct loader *l)
{
	const char *dir = l->opts->pin_dir;
	bool half = false;
	int r;

	r = pindir_is_half_loaded(dir, &half);
	if (r < 0)
		return log_error_errno(r, "Cannot inspect %s: %m", dir);
	if (!half)
		return 0;
	log_warning("%s holds pins of an unfinished load; removing them first", dir);
	r = pindir_remove_all(dir);
	if (r < 0)
		return log_error_errno(r, "Cannot clean %s: %m", dir);
	return loader_lock_pin_dir(l);
}

static int loader_make_sub_dirs(struct loader *l)
{
	static const char *const subs[] = { CONNPID_LINKS_SUBDIR, CONNPID_PROGS_SUBDIR };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
		char path[PATH_MAX];
		bool created;

		r = pindir_mkdir_sub(l->opts->pin_dir, subs[i], &created);
		if (r < 0)
			return r;
		if (!created)
			continue;
		(void)pin_path(path, sizeof(path), l->opts->pin_dir, NULL, subs[i]);
		r = loader_record_pin(l, path);
		if (r < 0)
			return r;
	}
	return 0;
}

static int loader_prepare_pin_dir(struct loader *l)
{
	int r;

	r = loader_lock_pin_dir(l);
	if (r < 0)
		return r;
	/* Before anything reads or removes a pin: all must be ours. */
	r = pindir_check_ours(l->opts->pin_dir);
	if (r < 0)
		return r;
	r = check_existing_abi(l->opts->pin_dir);
	if (r < 0)
		return r;
	r = check_existing_inbound(l->opts);
	if (r < 0)
		return r;
	r = loader_heal_half_loaded(l);
	if (r < 0)
		return r;
	return loader_make_sub_dirs(l);
}

/* ---- Step: open and load the objects ---- */

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

static int log_load_error(int r, const char *what, const char *pin_dir)
{
	if (r == -EINVAL || r == -EACCES || r == -EPERM)
		return log_error_errno(r, "Kernel refused %s (verifier or permissions): %m; "
				       "run with -v for the verifier log", what);
	if (r == -ENOMEM || r == -E2BIG)
		return log_error_errno(r, "Loading %s failed: %m (map sizes too large?)", what);
	return log_error_errno(r, "Loading %s failed: %m (incompatible maps already pinned "
			       "in %s? run connpid-loader --unload)", what, pin_dir);
}

static int load_object(struct bpf_object *obj, const char *what, const char *pin_dir,
		       struct rollback *rb)
{
	bool existed[16] = {};
	int r;

	r = set_map_pins(obj, pin_dir, existed, ARRAY_SIZE(existed));
	if (r < 0)
		return log_error_errno(r, "Cannot set map pin paths for %s: %m", what);
	r = fault_inject("load");
	if (r < 0)
		return log_error_errno(r, "Test failure injected before loading %s", what);
	r = bpf_object__load(obj);
	/* libbpf may have pinned some maps before failing: record them first. */
	(void)record_new_map_pins(obj, existed, rb);
	if (r < 0)
		return log_load_error(r, what, pin_dir);
	r = fault_inject("pin-maps");
	if (r < 0)
		return log_error_errno(r, "Test failure injected after pinning maps of %s", what);
	return 0;
}

static struct bpf_object *tracker_open(struct loader *l)
{
	const struct load_opts *o = l->opts;
	struct connpid_bpf *s = l->tracker = connpid_bpf__open();

	if (!s)
		return NULL;
	bpf_map__set_max_entries(s->maps.conn_to_pid_v4, o->v4_entries);
	bpf_map__set_max_entries(s->maps.conn_to_pid_v6, o->v6_entries);
	bpf_map__set_max_entries(s->maps.events, o->ringbuf_bytes);
	s->rodata->wakeup_bytes = o->ringbuf_bytes / 16;
	s->rodata->block_loopback6 = o->block_loopback6;
	s->rodata->honor_ipv6_block = o->blocker;
	s->rodata->scope_cgroup_id = l->cgroup_id;
	/* Without the creator hook the events skip the lookup too. */
	s->rodata->track_creators = o->creator;
	if (!o->creator)
		bpf_program__set_autoload(s->progs.connpid_sock_create, false);
	/* Without --inbound nothing of it runs: sockops skips listen(). */
	s->rodata->track_inbound = o->inbound;
	if (!o->inbound) {
		bpf_program__set_autoload(s->progs.connpid_accept, false);
		bpf_program__set_autoload(s->progs.connpid_accept4, false);
	}
	return s->obj;
}

static int tracker_loaded(struct loader *l)
{
	__u32 zero = 0;

	/* Global hooks (exec) keep to the attach cgroup through this. */
	if (bpf_map_update_elem(bpf_map__fd(l->tracker->maps.scope_cgroup), &zero, &l->cgroup_fd, BPF_ANY) < 0)
		return log_error_errno(negative_errno(), "Cannot set the scope cgroup: %m");
	return 0;
}

static struct bpf_object *blocker_open(struct loader *l)
{
	struct ipv6_block_bpf *s = l->blocker = ipv6_block_bpf__open();

	if (!s)
		return NULL;
	s->rodata->block_loopback6 = l->opts->block_loopback6;
	return s->obj;
}

static struct bpf_object *dns_open(struct loader *l)
{
	struct dns_bpf *s = l->dns = dns_bpf__open();

	if (!s)
		return NULL;
	/* Shares the flow maps by pin: same sizes or libbpf refuses them. */
	bpf_map__set_max_entries(s->maps.conn_to_pid_v4, l->opts->v4_entries);
	bpf_map__set_max_entries(s->maps.conn_to_pid_v6, l->opts->v6_entries);
	return s->obj;
}

static bool tracker_wanted(const struct load_opts *o)
{
	return o->tracker;
}

static bool blocker_wanted(const struct load_opts *o)
{
	return o->blocker;
}

static bool dns_wanted(const struct load_opts *o)
{
	return o->dns && o->tracker;
}

static const struct object_desc {
	const char *name;                               /* in "Cannot open the %s BPF object" */
	const char *what;                               /* in load errors */
	bool (*wanted)(const struct load_opts *o);
	struct bpf_object *(*open)(struct loader *l);   /* open and set up; NULL and errno */
	int (*loaded)(struct loader *l);                /* after the load, if set */
} objects[_OBJ_MAX] = {
	[OBJ_TRACKER] = { "tracker", "the tracker (connpid.bpf.o)", tracker_wanted, tracker_open, tracker_loaded },
	[OBJ_BLOCKER] = { "IPv6 blocker", "the IPv6 blocker (ipv6_block.bpf.o)", blocker_wanted, blocker_open },
	[OBJ_DNS] = { "DNS", "the DNS object (dns.bpf.o)", dns_wanted, dns_open },
};

static int loader_open_object(struct loader *l, size_t i)
{
	const struct object_desc *d = &objects[i];
	struct bpf_object *obj;
	int r;

	obj = d->open(l);
	if (!obj)
		return log_error_errno(negative_errno(), "Cannot open the %s BPF object: %m", d->name);
	r = load_object(obj, d->what, l->opts->pin_dir, &l->rb);
	if (r < 0)
		return r;
	l->objs[i] = obj;
	return d->loaded ? d->loaded(l) : 0;
}

static int loader_open_objects(struct loader *l)
{
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(objects); i++) {
		if (!objects[i].wanted(l->opts))
			continue;
		r = loader_open_object(l, i);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- Step: attach ---- */

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
	       bpf_program__type(prog) != BPF_PROG_TYPE_KPROBE &&
	       bpf_program__type(prog) != BPF_PROG_TYPE_TRACEPOINT;
}

/* The programs that are attached and pinned: the seeding iterator only
 * runs once, and a program left out (--no-creator) is not loaded. */
static bool prog_is_attached_kind(const struct bpf_program *prog)
{
	return !is_iter(prog) && bpf_program__autoload(prog);
}

/* 1 if the program's link pin shows it attached already, 0 if it is to
 * be attached (a stale pin is removed first). */
static int link_pin_state(const struct loader *l, const struct bpf_program *prog, const char *path)
{
	_cleanup_close_ int fd = pin_open(path, true);

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return log_error_errno(fd, "Cannot open link pin %s: %m", path);
	if (link_is_live(fd, l->cgroup_id, is_cgroup_prog(prog))) {
		log_debug("%s already attached (%s)", bpf_program__name(prog), path);
		return 1;
	}
	log_warning("%s was detached or points at another cgroup; attaching it again",
		    bpf_program__name(prog));
	if (unlink(path) < 0)
		return log_error_errno(negative_errno(), "Cannot remove stale link pin %s: %m", path);
	return 0;
}

static int attach_one(const struct loader *l, struct bpf_program *prog, struct bpf_link **ret)
{
	struct bpf_link *link;

	if (bpf_program__type(prog) == BPF_PROG_TYPE_KPROBE) {
		/* getaddrinfo() in the system's libc; the exit half is the uretprobe */
		char libc[PATH_MAX];
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .func_name = "getaddrinfo",
			    .retprobe = strstr(bpf_program__name(prog), "_exit") != NULL);
		int r = find_libc(libc, sizeof(libc));

		if (r < 0)
			return log_error_errno(r, "Cannot find libc for the getaddrinfo probes: %m "
					       "(use --no-dns to go without)");
		link = bpf_program__attach_uprobe_opts(prog, -1, libc, 0, &uo);
	} else if (is_cgroup_prog(prog)) {
		link = bpf_program__attach_cgroup(prog, l->cgroup_fd);
	} else {
		link = bpf_program__attach(prog);
	}
	if (!link)
		return log_error_errno(negative_errno(), "Cannot attach %s: %m", bpf_program__name(prog));
	*ret = link;
	return 0;
}

/* Attach one program unless its link pin shows it is attached already. */
static int loader_attach_program(struct loader *l, struct bpf_program *prog, unsigned idx)
{
	char path[PATH_MAX], point[32];
	struct bpf_link *link = NULL;
	int r;

	r = pin_path(path, sizeof(path), l->opts->pin_dir, CONNPID_LINKS_SUBDIR, bpf_program__name(prog));
	if (r < 0)
		return log_error_errno(r, "Link pin path: %m");
	r = link_pin_state(l, prog, path);
	if (r != 0)
		return r < 0 ? r : 0;
	snprintf(point, sizeof(point), "attach:%u", idx);
	r = fault_inject(point);
	if (r < 0)
		return log_error_errno(r, "Test failure injected before attaching %s", bpf_program__name(prog));
	r = attach_one(l, prog, &link);
	if (r < 0)
		return r;
	r = rollback_add_link(&l->rb, link);
	if (r < 0) {
		bpf_link__destroy(link);
		return log_error_errno(r, "Rollback bookkeeping: %m");
	}
	r = bpf_link__pin(link, path);
	if (r < 0)
		return log_error_errno(r, "Cannot pin link %s: %m", path);
	r = rollback_add_pin(&l->rb, path);
	if (r < 0)
		return log_error_errno(r, "Rollback bookkeeping: %m");
	l->attached++;
	return 0;
}

/* The blocker's connect6/sendmsg6 first, then the tracker, then DNS.
 * Cgroup multi-programs all run whatever the order, so the order does
 * not decide tracking: the tracker asks the same config map and never
 * records a refused native-IPv6 send, and a refused TCP connect never
 * reaches sockops. */
static const unsigned attach_order[] = { OBJ_BLOCKER, OBJ_TRACKER, OBJ_DNS };

static int loader_attach(struct loader *l)
{
	struct bpf_program *prog;
	unsigned idx = 0;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(attach_order); i++) {
		struct bpf_object *obj = l->objs[attach_order[i]];

		if (!obj)
			continue;
		bpf_object__for_each_program(prog, obj) {
			if (!prog_is_attached_kind(prog))
				continue;
			l->total++;
			r = loader_attach_program(l, prog, idx++);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- Step: pin the programs ---- */

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

static int loader_pin_programs(struct loader *l)
{
	struct bpf_program *prog;
	int r;

	r = fault_inject("pin-progs");
	if (r < 0)
		return log_error_errno(r, "Test failure injected before pinning programs");
	for (size_t i = 0; i < ARRAY_SIZE(l->objs); i++) {
		if (!l->objs[i])
			continue;
		bpf_object__for_each_program(prog, l->objs[i]) {
			if (!prog_is_attached_kind(prog))
				continue;
			r = pin_program(prog, l->opts->pin_dir, &l->rb);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ---- Step: seed ---- */

static int drain_iter(int fd)
{
	char buf[64];

	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));

		if (n == 0)
			return 0;
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return log_error_errno(negative_errno(), "Seeding iterator failed: %m");
	}
}

/* Run the seeding iterator once: flows older than connpid enter the maps
 * and the ring as "seeded". Nothing to pin: it is done when read to EOF. */
static int loader_seed(struct loader *l)
{
	struct bpf_link *link;
	_cleanup_close_ int fd = -EBADF;
	int r;

	if (!l->tracker || !l->opts->seed)
		return 0;
	r = fault_inject("seed");
	if (r < 0)
		return log_error_errno(r, "Test failure injected before seeding");
	link = bpf_program__attach_iter(l->tracker->progs.connpid_seed, NULL);
	if (!link)
		return log_error_errno(negative_errno(), "Cannot create the seeding iterator: %m");
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0)
		r = log_error_errno(negative_errno(), "Cannot start the seeding iterator: %m");
	else
		r = drain_iter(fd);
	bpf_link__destroy(link);
	return r;
}

/* ---- Step: commit ---- */

static void meta_fill(struct connpid_meta *meta, const struct load_opts *o)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (!meta->abi_version)
		meta->loaded_at_realtime_ns = (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	meta->abi_version = CONNPID_ABI_VERSION;
	if (o->blocker)
		meta->flags |= CONNPID_META_F_IPV6_BLOCKER;
	if (o->block_loopback6)
		meta->flags |= CONNPID_META_F_BLOCK_LOOPBACK6;
	if (o->inbound) /* check_args(): --inbound needs the tracker */
		meta->flags |= CONNPID_META_F_INBOUND;
	snprintf(meta->version, sizeof(meta->version), "%s", CONNPID_VERSION);
}

static int write_meta_and_config(struct bpf_object *obj, const struct load_opts *o)
{
	struct bpf_map *meta_map = bpf_object__find_map_by_name(obj, "meta");
	struct bpf_map *config_map = bpf_object__find_map_by_name(obj, "config");
	struct connpid_meta meta = {}, old = {};
	__u32 zero = 0, cfg;
	int r;

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
	meta_fill(&meta, o);
	r = fault_inject("meta");
	if (r < 0)
		return log_error_errno(r, "Test failure injected before writing meta");
	if (bpf_map_update_elem(bpf_map__fd(meta_map), &zero, &meta, BPF_ANY) < 0)
		return log_error_errno(negative_errno(), "Cannot write meta: %m");
	return 0;
}

/* The meta map of the first object loaded (the tracker's, or the
 * blocker's when it is loaded alone) marks the pins complete. */
static int loader_commit(struct loader *l)
{
	struct bpf_object *first = NULL;
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(l->objs) && !first; i++)
		first = l->objs[i];
	r = write_meta_and_config(first, l->opts);
	if (r < 0)
		return r;
	/* Without the group (gid 0): the same modes, root's alone. */
	r = pins_set_modes(l->opts->pin_dir, l->pins_gid);
	if (r < 0)
		return log_error_errno(r, "Cannot set owner and modes of the pins in %s: %m", l->opts->pin_dir);
	return 0;
}

/* ---- The steps, in order ---- */

static int (*const loader_steps[])(struct loader *l) = {
	loader_check_host,
	loader_prepare_pin_dir,
	loader_open_objects,
	loader_attach,
	loader_pin_programs,
	loader_seed,
	loader_commit,
};

int loader_load(const struct load_opts *o)
{
	_cleanup_(loader_done) struct loader l = { .opts = o, .cgroup_fd = -EBADF, .lock_fd = -EBADF };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(loader_steps); i++) {
		r = loader_steps[i](&l);
		if (r < 0) {
			rollback_run(&l.rb);
			return r;
		}
	}
	if (l.attached == 0)
		log_info("Already loaded: %u programs attached to %s, pins in %s",
			 l.total, l.cgroup_path, o->pin_dir);
	else
		log_info("Loaded: %u of %u programs attached to %s, pins in %s",
			 l.attached, l.total, l.cgroup_path, o->pin_dir);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* What is pinned and attached under a pin dir, as JSON: shared by
 * `connpid-loader --status` and queryd's `status` op. */
#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "connpid.h"
#include "jsonutil.h"
#include "macro.h"
#include "pin-describe.h"
#include "pins.h"

static json_object *describe_map(const char *name, int fd)
{
	struct bpf_map_info info = {};
	__u32 len = sizeof(info), count = 0;
	json_object *o = json_object_new_object();
	int r;

	json_object_object_add(o, "name", json_object_new_string(name));
	if (pin_fd_kind(fd) != PIN_KIND_MAP) {
		json_object_object_add(o, "error", json_object_new_string("not a map"));
		return o;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		json_object_object_add(o, "error", json_object_new_string(strerror(errno)));
		return o;
	}
	json_object_object_add(o, "id", json_object_new_int64(info.id));
	json_object_object_add(o, "type", json_object_new_string(libbpf_bpf_map_type_str(info.type) ?: "?"));
	json_object_object_add(o, "max_entries", json_object_new_int64(info.max_entries));
	r = connpid_map_count_entries(fd, &count);
	if (r == 0) {
		json_object_object_add(o, "entries", json_object_new_int64(count));
		json_object_object_add(o, "fill_percent",
				       json_object_new_double(info.max_entries ? 100.0 * count / info.max_entries : 0));
	} else if (r != -EOPNOTSUPP) {
		json_object_object_add(o, "entries_error", json_object_new_string(
			r == -EBUSY ? "changed too fast to count" : strerror(-r)));
	}
	return o;
}

static json_object *describe_link(const char *name, int fd)
{
	struct bpf_link_info info = {};
	struct bpf_prog_info pinfo = {};
	__u32 len = sizeof(info), plen = sizeof(pinfo);
	json_object *o = json_object_new_object();
	_cleanup_close_ int pfd = -EBADF;

	json_object_object_add(o, "name", json_object_new_string(name));
	if (pin_fd_kind(fd) != PIN_KIND_LINK) {
		json_object_object_add(o, "error", json_object_new_string("not a link"));
		return o;
	}
	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0) {
		json_object_object_add(o, "error", json_object_new_string(strerror(errno)));
		return o;
	}
	json_object_object_add(o, "id", json_object_new_int64(info.id));
	json_object_object_add(o, "prog_id", json_object_new_int64(info.prog_id));
	json_object_object_add(o, "link_type", json_object_new_string(libbpf_bpf_link_type_str(info.type) ?: "?"));
	if (info.type == BPF_LINK_TYPE_CGROUP) {
		json_object_object_add(o, "attach_type",
				       json_object_new_string(libbpf_bpf_attach_type_str(info.cgroup.attach_type) ?: "?"));
		json_object_object_add(o, "cgroup_id", json_object_new_int64((int64_t)info.cgroup.cgroup_id));
		/* A detached link keeps its pin but has no cgroup any more. */
		json_object_object_add(o, "attached", json_object_new_boolean(info.cgroup.cgroup_id != 0));
	} else {
		/* tracing links (the exec hook) have no cgroup to lose */
		json_object_object_add(o, "attached", json_object_new_boolean(true));
	}
	pfd = bpf_prog_get_fd_by_id(info.prog_id);
	if (pfd >= 0 && bpf_obj_get_info_by_fd(pfd, &pinfo, &plen) == 0) {
		json_object_object_add(o, "prog_name", json_object_new_string(pinfo.name));
		json_object_object_add(o, "prog_type",
				       json_object_new_string(libbpf_bpf_prog_type_str(pinfo.type) ?: "?"));
	}
	return o;
}

static json_object *pin_error(const char *name, const char *error)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(name));
	json_object_object_add(o, "error", json_object_new_string(error));
	return o;
}

/* Walk one directory of pins, describing each with fn. Nothing is
 * followed: a symlink or other non-pin is listed as such and skipped. Maps
 * open read-only; links and programs only open for root (0600 pins). */
static int list_pins(const char *dir, bool maps, json_object *arr, json_object *(*fn)(const char *, int))
{
	_cleanup_(closedirp) DIR *d = NULL;
	struct dirent *de;
	int r;

	r = pin_dir_check(dir);
	if (r == -ENOENT)
		return 0;
	if (r < 0) {
		json_object_array_add(arr, pin_error(dir, r == -ELOOP ? "a symlink, not followed"
							      : "not a directory"));
		return r;
	}
	d = opendir(dir);
	if (!d)
		return errno == ENOENT ? 0 : negative_errno();
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		_cleanup_close_ int fd = -EBADF;

		if (streq(de->d_name, ".") || streq(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), dir, NULL, de->d_name) < 0)
			continue;
		fd = pin_open(path, !maps);
		if (fd == -EISDIR && maps)
			continue; /* links/, progs/: listed on their own */
		if (fd == -ELOOP || fd == -EISDIR || fd == -EBADFD) {
			json_object_array_add(arr, pin_error(de->d_name, fd == -ELOOP ? "a symlink, not followed"
									 : "not a pin, skipped"));
			continue;
		}
		if (fd < 0) {
			json_object_array_add(arr, pin_error(de->d_name, strerror(-fd)));
			continue;
		}
		json_object_array_add(arr, fn(de->d_name, fd));
	}
	return 0;
}

static json_object *describe_prog(const char *name, int fd)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(name));
	if (pin_fd_kind(fd) != PIN_KIND_PROG) {
		json_object_object_add(o, "error", json_object_new_string("not a program"));
	} else if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0) {
		json_object_object_add(o, "id", json_object_new_int64(info.id));
		json_object_object_add(o, "type", json_object_new_string(libbpf_bpf_prog_type_str(info.type) ?: "?"));
	}
	return o;
}

int pins_describe(const char *pin_dir, json_object **ret)
{
	_cleanup_json_ json_object *st = json_object_new_object();
	json_object *maps = json_object_new_array(), *links = json_object_new_array(),
		    *progs = json_object_new_array();
	char sub[PATH_MAX];
	struct connpid_maps m;
	char err[512] = "";
	int r;

	json_object_object_add(st, "pin_dir", json_object_new_string(pin_dir));
	json_object_object_add(st, "maps", maps);
	json_object_object_add(st, "links", links);
	json_object_object_add(st, "programs", progs);

	connpid_maps_init(&m);
	r = connpid_maps_open(pin_dir, &m, false, err, sizeof(err));
	json_object_object_add(st, "loaded", json_object_new_boolean(r == 0));
	if (r == 0) {
		__u32 zero = 0, cfg = 0;

		json_object_object_add(st, "abi_version", json_object_new_int64(m.meta.abi_version));
		json_object_object_add(st, "version", json_object_new_string_len(
			m.meta.version, strnlen(m.meta.version, sizeof(m.meta.version))));
		if (bpf_map_lookup_elem(m.config_fd, &zero, &cfg) == 0)
			json_object_object_add(st, "ipv6_block",
					       json_object_new_boolean(cfg & CONNPID_CONFIG_BLOCK_IPV6));
		json_object_object_add(st, "blocker_loaded",
				       json_object_new_boolean(m.meta.flags & CONNPID_META_F_IPV6_BLOCKER));
		json_object_object_add(st, "inbound",
				       json_object_new_boolean(m.meta.flags & CONNPID_META_F_INBOUND));
	} else {
		json_object_object_add(st, "problem", json_object_new_string(err));
	}
	connpid_maps_close(&m);

	r = list_pins(pin_dir, true, maps, describe_map);
	if (r < 0 && r != -ENOENT)
		return r;
	(void)pin_path(sub, sizeof(sub), pin_dir, NULL, CONNPID_LINKS_SUBDIR);
	(void)list_pins(sub, false, links, describe_link);
	(void)pin_path(sub, sizeof(sub), pin_dir, NULL, CONNPID_PROGS_SUBDIR);
	(void)list_pins(sub, false, progs, describe_prog);

	*ret = TAKE_PTR(st);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* `connpid-loader --status`: what is pinned and attached, as a table or JSON. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <json-c/json.h>

#include <linux/types.h>
#include "connpid.h"
#include "loader.h"
#include "log.h"
#include "macro.h"
#include "jsonutil.h"
#include "pin-describe.h"
#include "pins.h"

static const char *jstr(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : "-";
}

static void print_table(json_object *st)
{
	json_object *maps, *links, *progs, *v;

	printf("pin dir:  %s\n", jstr(st, "pin_dir"));
	printf("loaded:   %s", jstr(st, "loaded"));
	if (json_object_object_get_ex(st, "abi_version", &v))
		printf("  (ABI %s, version %s)", json_object_get_string(v), jstr(st, "version"));
	printf("\n");
	if (json_object_object_get_ex(st, "ipv6_block", &v))
		printf("ipv6 block: %s\n", json_object_get_boolean(v) ? "on" : "off");
	if (json_object_object_get_ex(st, "inbound", &v))
		printf("inbound:  %s\n", json_object_get_boolean(v) ? "on" : "off");

	json_object_object_get_ex(st, "maps", &maps);
	printf("\n%-16s %-10s %-14s %10s %9s %6s\n", "MAP", "ID", "TYPE", "MAX", "ENTRIES", "FILL%");
	for (size_t i = 0; i < json_object_array_length(maps); i++) {
		json_object *m = json_object_array_get_idx(maps, i), *fill;

		printf("%-16s %-10s %-14s %10s %9s ", jstr(m, "name"), jstr(m, "id"), jstr(m, "type"),
		       jstr(m, "max_entries"), jstr(m, "entries"));
		if (json_object_object_get_ex(m, "fill_percent", &fill))
			printf("%6.1f\n", json_object_get_double(fill));
		else
			printf("%6s\n", "-");
	}
	json_object_object_get_ex(st, "links", &links);
	printf("\n%-24s %-8s %-8s %-18s %-10s\n", "LINK", "ID", "PROG", "ATTACH", "CGROUP");
	for (size_t i = 0; i < json_object_array_length(links); i++) {
		json_object *l = json_object_array_get_idx(links, i);

		printf("%-24s %-8s %-8s %-18s %-10s\n", jstr(l, "name"), jstr(l, "id"), jstr(l, "prog_id"),
		       jstr(l, "attach_type"), jstr(l, "cgroup_id"));
	}
	json_object_object_get_ex(st, "programs", &progs);
	printf("\n%-24s %-8s %-18s\n", "PROGRAM", "ID", "TYPE");
	for (size_t i = 0; i < json_object_array_length(progs); i++) {
		json_object *p = json_object_array_get_idx(progs, i);

		printf("%-24s %-8s %-18s\n", jstr(p, "name"), jstr(p, "id"), jstr(p, "type"));
	}
}

int loader_status(const char *pin_dir, bool json)
{
	_cleanup_json_ json_object *st = NULL;
	int r;

	r = pins_describe(pin_dir, &st);
	if (r < 0)
		return log_error_errno(r, "Cannot describe %s: %m", pin_dir);
	if (json)
		printf("%s\n", json_object_to_json_string_ext(st, JSON_LINE_FLAGS));
	else
		print_table(st);
	return 0;
}

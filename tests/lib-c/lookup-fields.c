// SPDX-License-Identifier: GPL-2.0-or-later
/* One connpid_lookup() with "fields", for test_clients_real.py against the
 * real daemon: prints the result struct as one JSON object (null for NULL
 * strings) and the raw answer line, so the test can check that the
 * members asked for are filled and the others are not.
 *
 *   lookup-fields SOCKET DST SPORT DPORT [FIELD...]   (no FIELD: the whole FLOW) */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <json-c/json.h>

#include "../../queryd/lib/connpid.h"

static void add_str(json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v ? json_object_new_string(v) : NULL);
}

int main(int argc, char **argv)
{
	struct connpid_lookup_options opts = { .size = sizeof(opts) };
	struct connpid_result *r = NULL;
	json_object *o;
	connpid *h = NULL;
	int rr;

	if (argc < 5) {
		fprintf(stderr, "usage: %s SOCKET DST SPORT DPORT [FIELD...]\n", argv[0]);
		return 2;
	}
	if (argc > 5) {
		opts.fields = (const char *const *)(argv + 5);
		opts.n_fields = (size_t)(argc - 5);
	}
	if (connpid_open(&h, argv[1], 0) < 0)
		return 2;
	connpid_set_timeout(h, 5000000);
	rr = connpid_lookup(h, IPPROTO_TCP, argv[2], (uint16_t)atoi(argv[3]), (uint16_t)atoi(argv[4]), &opts, &r);
	o = json_object_new_object();
	json_object_object_add(o, "rc", json_object_new_int(rr));
	if (r) {
		add_str(o, "error_code", r->error_code);
		json_object_object_add(o, "found", json_object_new_boolean(r->found));
		json_object_object_add(o, "alive", json_object_new_boolean(r->alive));
		json_object_object_add(o, "pid", json_object_new_int64(r->pid));
		json_object_object_add(o, "uid", json_object_new_int64(r->uid));
		add_str(o, "user", r->user);
		add_str(o, "comm", r->comm);
		add_str(o, "exe", r->exe);
		add_str(o, "unit", r->unit);
		add_str(o, "container_id", r->container_id);
		add_str(o, "domain", r->domain);
		add_str(o, "json", r->json);
	}
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	connpid_result_free(r);
	connpid_close(h);
	return 0;
}

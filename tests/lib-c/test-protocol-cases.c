// SPDX-License-Identifier: GPL-2.0-or-later
/* libconnpid against tests/protocol-cases.json, the same cases the Python
 * client is tested with: a forked MOCK daemon answers each lookup with the
 * case's line (@ID@ replaced by the request's id), and the result must be
 * what the case expects. The mock also checks that the request carried the
 * case's src/netns, "direction":"inbound" and "fields" (and none of them
 * when the case has none): else it answers the error "mock_mismatch". Also: the
 * daemon gone (-ENOENT), a daemon that never answers (-ETIMEDOUT on time),
 * pipelined submit/collect with and without those members, "fields" (the
 * result has the members asked for, the daemon's invalid_argument comes
 * back), and the option checks (bad src, bad fields, direct lookups that
 * cannot honour them). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "../../queryd/lib/connpid.h"

static int failures;

#define CHECK(cond, ...) do { if (!(cond)) { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); failures++; } } while (0)

static const char *jstr(json_object *o, const char *k)
{
	json_object *v;

	return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* Does the lookup request carry exactly the case's src, netns and
 * direction ("inbound" only: outbound is the default and never sent)? */
static bool request_matches(json_object *req, json_object *want)
{
	static const char *const keys[] = { "src", "netns", "direction" };

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_object *g = NULL, *w = NULL;
		const char *ws;

		json_object_object_get_ex(req, keys[i], &g);
		json_object_object_get_ex(want, keys[i], &w);
		ws = w ? json_object_get_string(w) : NULL;
		if (ws && strcmp(keys[i], "direction") == 0 && strcmp(ws, "outbound") == 0)
			ws = NULL;
		if (!ws != !g || (ws && strcmp(ws, json_object_get_string(g)) != 0))
			return false;
		if (g && strcmp(keys[i], "netns") == 0 && !json_object_is_type(g, json_type_int))
			return false;
	}
	/* "fields": the same names in the same order, or none on both sides */
	return json_object_equal(json_object_object_get(req, "fields"), json_object_object_get(want, "fields"));
}

/* The mock: one line in, the next case's answer out, for every case. */
static void serve(int lfd, json_object *cases, bool silent)
{
	size_t next = 0;

	for (;;) {
		int c = accept(lfd, NULL, NULL);
		char buf[65536];
		size_t len = 0;

		if (c < 0)
			_exit(0);
		for (;;) {
			ssize_t n = read(c, buf + len, sizeof(buf) - len - 1);
			char *nl;

			if (n <= 0)
				break;
			len += (size_t)n;
			buf[len] = '\0';
			while ((nl = strchr(buf, '\n'))) {
				json_object *req, *id, *cs = json_object_array_get_idx(cases, next++);
				const char *ans = cs ? jstr(cs, "answer") : "{\"ok\":true,\"found\":false,\"id\":@ID@}";
				char out[65536], ids[32] = "null";
				const char *at;

				*nl = '\0';
				req = json_tokener_parse(buf);
				if (req && json_object_object_get_ex(req, "id", &id))
					snprintf(ids, sizeof(ids), "%s", json_object_get_string(id));
				if (cs && !request_matches(req, json_object_object_get(cs, "request")))
					ans = "{\"ok\":false,\"error\":{\"code\":\"mock_mismatch\","
					      "\"message\":\"src/netns/direction not as the case says\"},\"id\":@ID@}";
				json_object_put(req);
				at = strstr(ans, "@ID@");
				if (at)
					snprintf(out, sizeof(out), "%.*s%s%s\n", (int)(at - ans), ans, ids, at + 4);
				else
					snprintf(out, sizeof(out), "%s\n", ans);
				if (!silent && write(c, out, strlen(out)) < 0)
					break;
				memmove(buf, nl + 1, strlen(nl + 1) + 1);
				len = strlen(buf);
			}
		}
		close(c);
	}
}

static pid_t start_mock(const char *path, json_object *cases, bool silent)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	pid_t pid;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 16) < 0) {
		perror("mock");
		exit(1);
	}
	pid = fork();
	if (pid == 0)
		serve(fd, cases, silent);
	close(fd);
	return pid;
}

static void stop_mock(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static bool str_eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_field(const char *name, const struct connpid_result *r, const char *key, json_object *want)
{
	static const struct { const char *key; size_t off; } strs[] = {
		{ "user", offsetof(struct connpid_result, user) },
		{ "comm", offsetof(struct connpid_result, comm) },
		{ "exe", offsetof(struct connpid_result, exe) },
		{ "unit", offsetof(struct connpid_result, unit) },
		{ "container_id", offsetof(struct connpid_result, container_id) },
		{ "container_name", offsetof(struct connpid_result, container_name) },
		{ "container_image", offsetof(struct connpid_result, container_image) },
		{ "domain", offsetof(struct connpid_result, domain) },
	};

	if (strcmp(key, "found") == 0) {
		CHECK(r->found == json_object_get_boolean(want), "%s: found", name);
	} else if (strcmp(key, "alive") == 0) {
		CHECK(r->alive == json_object_get_boolean(want), "%s: alive", name);
	} else if (strcmp(key, "pid") == 0) {
		CHECK(r->pid == (uint32_t)json_object_get_int64(want), "%s: pid %u", name, r->pid);
	} else if (strcmp(key, "n_candidates") == 0) {
		CHECK(r->size > offsetof(struct connpid_result, n_candidates) &&
		      r->n_candidates == (unsigned)json_object_get_int(want), "%s: n_candidates %u", name, r->n_candidates);
	} else if (strcmp(key, "uid") == 0) {
		CHECK(r->uid == (want ? json_object_get_int64(want) : -1), "%s: uid %lld", name, (long long)r->uid);
	} else {
		for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
			if (strcmp(strs[i].key, key) == 0) {
				const char *got = *(const char *const *)((const char *)r + strs[i].off);
				const char *w = want ? json_object_get_string(want) : NULL;

				CHECK(str_eq(got, w), "%s: %s is '%s', want '%s'", name, key, got ?: "(null)",
				      w ?: "(null)");
				return;
			}
		CHECK(false, "%s: unknown expectation %s", name, key);
	}
}

static void run_case(connpid *h, json_object *c)
{
	json_object *req = json_object_object_get(c, "request"), *expect = json_object_object_get(c, "expect");
	const char *name = jstr(c, "name"), *err = jstr(expect, "error");
	struct connpid_result *r = NULL;
	struct connpid_lookup_options o = { .size = sizeof(o) };
	int proto = strcmp(jstr(req, "proto"), "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
	json_object *v;
	int rr;

	if (json_object_object_get_ex(req, "src", &v))
		o.src = json_object_get_string(v);
	if (json_object_object_get_ex(req, "netns", &v))
		o.netns = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(req, "direction", &v) && strcmp(json_object_get_string(v), "inbound") == 0)
		o.direction = CONNPID_DIRECTION_INBOUND;
	rr = connpid_lookup(h, proto, jstr(req, "dst"), (uint16_t)json_object_get_int(json_object_object_get(req, "sport")),
			    (uint16_t)json_object_get_int(json_object_object_get(req, "dport")), &o, &r);
	if (err && strcmp(err, "bad_answer") == 0) {
		CHECK(rr == -EBADMSG && !r, "%s: want -EBADMSG, got %d", name, rr);
	} else if (err) {
		CHECK(rr == -EREMOTEIO && r && str_eq(r->error_code, err), "%s: want %s, got %d", name, err, rr);
	} else {
		CHECK(rr == 0 && r, "%s: lookup failed: %d", name, rr);
		if (rr == 0 && r) {
			json_object_object_foreach(expect, k, w)
				check_field(name, r, k, w);
			CHECK(r->json && strstr(r->json, "\"ok\":true"), "%s: raw json", name);
		}
	}
	printf("%s: %s\n", failures ? "checked" : "ok", name);
	connpid_result_free(r);
}

/* The case a scoped pipelined lookup i is: src on odd i, netns on every
 * third, inbound on every fourth; the answer names pid 100+i and has i%3
 * candidates. */
static json_object *scoped_case(int i)
{
	json_object *c = json_object_new_object(), *req = json_object_new_object();
	char ans[512];

	if (i % 2)
		json_object_object_add(req, "src", json_object_new_string("127.0.0.2"));
	if (i % 3 == 0)
		json_object_object_add(req, "netns", json_object_new_int64(4026531840LL + i));
	if (i % 4 == 3)
		json_object_object_add(req, "direction", json_object_new_string("inbound"));
	snprintf(ans, sizeof(ans),
		 "{\"ok\":true,\"found\":true,\"flow\":{\"pid\":%d,\"direction\":\"%s\"},"
		 "\"candidates\":[%s],\"id\":@ID@}", 100 + i, i % 4 == 3 ? "inbound" : "outbound",
		 i % 3 == 0 ? "" : i % 3 == 1 ? "{\"pid\":1,\"in_map\":false}" :
		 "{\"pid\":1,\"in_map\":false},{\"pid\":2,\"in_map\":false}");
	json_object_object_add(c, "request", req);
	json_object_object_add(c, "answer", json_object_new_string(ans));
	return c;
}

static uint64_t now_ms(void);

/* A case for the mock: a request with these fields (none: NULL), its answer. */
static void add_case(json_object *cases, const char *const *fields, size_t n, const char *answer)
{
	json_object *c = json_object_new_object(), *req = json_object_new_object();

	if (fields) {
		json_object *f = json_object_new_array();

		for (size_t i = 0; i < n; i++)
			json_object_array_add(f, json_object_new_string(fields[i]));
		json_object_object_add(req, "fields", f);
	}
	json_object_object_add(c, "request", req);
	json_object_object_add(c, "answer", json_object_new_string(answer));
	json_object_array_add(cases, c);
}

/* A lookup with "fields": the mock checks the list went out as given, the
 * answer has those members only, and the result has them and nothing
 * else; the daemon's invalid_argument for an unknown name comes back. */
static void fields_cases(const char *path)
{
	static const char *const names[] = { "pid", "comm", "exe", "container", "domain" };
	static const char *const unknown[] = { "pid", "no_such_member" };
	json_object *cases = json_object_new_array();
	struct connpid_lookup_options o = { .size = sizeof(o), .fields = names, .n_fields = 5 };
	struct connpid_result *r = NULL;
	connpid *h = NULL;
	pid_t mock;
	int rr;

	add_case(cases, names, 5, "{\"ok\":true,\"found\":true,\"flow\":{\"pid\":42,\"comm\":\"curl\","
		 "\"exe\":\"/usr/bin/curl\",\"container\":{\"id\":\"c0ffee\",\"name\":\"web\"},"
		 "\"domain\":{\"name\":\"example.org\"}},\"id\":@ID@}");
	add_case(cases, unknown, 2, "{\"ok\":false,\"error\":{\"code\":\"invalid_argument\","
		 "\"message\":\"unknown field\"},\"id\":@ID@}");
	add_case(cases, NULL, 0, "{\"ok\":true,\"found\":false,\"id\":@ID@}");
	mock = start_mock(path, cases, false);
	connpid_open(&h, path, 0);
	rr = connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1000, 80, &o, &r);
	CHECK(rr == 0 && r && r->found, "fields lookup: %d %s", rr, r && r->error_code ? r->error_code : "");
	if (rr == 0 && r) {
		CHECK(r->pid == 42 && str_eq(r->comm, "curl") && str_eq(r->exe, "/usr/bin/curl") &&
		      str_eq(r->container_id, "c0ffee") && str_eq(r->container_name, "web") &&
		      str_eq(r->domain, "example.org"), "fields: the members asked for are filled");
		CHECK(!r->user && !r->unit && !r->container_image && r->uid == -1 && !r->alive,
		      "fields: the members not asked for are NULL, -1, false");
	}
	connpid_result_free(r);
	r = NULL;
	o.fields = unknown;
	o.n_fields = 2;
	rr = connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1000, 80, &o, &r);
	CHECK(rr == -EREMOTEIO && r && str_eq(r->error_code, "invalid_argument"),
	      "fields: an unknown name is the daemon's invalid_argument: %d", rr);
	connpid_result_free(r);
	r = NULL;
	/* no fields: none sent (the mock checks) */
	rr = connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1000, 80, NULL, &r);
	CHECK(rr == 0 && r && !r->found, "no fields: none sent: %d %s", rr, r && r->error_code ? r->error_code : "");
	connpid_result_free(r);
	connpid_close(h);
	stop_mock(mock);
	json_object_put(cases);
}

/* What the library refuses of "fields" before sending anything. */
static void fields_checks(const char *path)
{
	static const char *const one[] = { "pid" }, *const with_null[] = { "pid", NULL },
		*const empty[] = { "" }, *const bad_utf8[] = { "pi\xff" },
		*const long_name[] = { "0123456789012345678901234567890123456789012345678901234567890123" };
	static const char *many[65];
	struct { const char *const *f; size_t n; const char *what; } bad[] = {
		{ NULL, 1, "n_fields without fields" }, { one, 0, "fields without n_fields" },
		{ with_null, 2, "a NULL name" }, { empty, 1, "an empty name" },
		{ bad_utf8, 1, "a name that is no UTF-8" }, { long_name, 1, "a name of 64 bytes" },
		{ many, 65, "65 names" },
	};
	struct connpid_result *r = NULL;
	connpid *h = NULL;

	for (size_t i = 0; i < 65; i++)
		many[i] = "pid";
	connpid_open(&h, path, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct connpid_lookup_options o = { .size = sizeof(o), .fields = bad[i].f, .n_fields = bad[i].n };

		CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EINVAL, "fields: %s", bad[i].what);
	}
	{
		/* 64 names pass the checks (then: no daemon) */
		struct connpid_lookup_options o = { .size = sizeof(o), .fields = many, .n_fields = 64 };

		CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -ENOENT, "fields: 64 names");
	}
	connpid_close(h);
}

/* Eight lookups in flight, each with its own members; the mock checks
 * what each request carried, the answers come back to the right id. */
static void pipelined_scoped(const char *path)
{
	json_object *cases = json_object_new_array();
	struct connpid_result *r;
	uint64_t ids[8], t0;
	connpid *h = NULL;
	pid_t mock;

	for (int i = 0; i < 8; i++)
		json_object_array_add(cases, scoped_case(i));
	mock = start_mock(path, cases, false);
	connpid_open(&h, path, 0);
	for (int i = 0; i < 8; i++) {
		json_object *req = json_object_object_get(json_object_array_get_idx(cases, i), "request"), *v;
		struct connpid_lookup_options o = { .size = sizeof(o) };

		if (json_object_object_get_ex(req, "src", &v))
			o.src = json_object_get_string(v);
		if (json_object_object_get_ex(req, "netns", &v))
			o.netns = (uint64_t)json_object_get_int64(v);
		if (json_object_object_get_ex(req, "direction", &v))
			o.direction = CONNPID_DIRECTION_INBOUND;
		CHECK(connpid_submit(h, IPPROTO_TCP, "127.0.0.1", (uint16_t)(2000 + i), 80, &o, &ids[i]) == 0,
		      "scoped submit %d", i);
	}
	t0 = now_ms();
	for (int got = 0; got < 8 && now_ms() - t0 < 5000;) {
		struct pollfd p = { .fd = connpid_get_fd(h), .events = connpid_get_events(h) };

		poll(&p, 1, connpid_get_timeout_ms(h));
		connpid_process(h);
		while (connpid_collect(h, &r) > 0) {
			CHECK(r->error == 0 && r->found && r->id == ids[got] && r->pid == (uint32_t)(100 + got) &&
			      r->n_candidates == (unsigned)(got % 3),
			      "scoped pipelined answer %d: error %d (%s) pid %u candidates %u", got, r->error,
			      r->error_code ?: "-", r->pid, r->n_candidates);
			got++;
			connpid_result_free(r);
		}
	}
	CHECK(connpid_pending(h) == 0, "all scoped collected");
	connpid_close(h);
	stop_mock(mock);
	json_object_put(cases);
}

/* What the library refuses before sending anything: a src that is no IP
 * or not dst's family, a netns past 32 bits, an unknown direction, and
 * src/netns/inbound on a direct lookup (the maps have none of them). A
 * daemon that cannot be reached makes the fallback answer plain lookups
 * from the maps, never scoped ones. */
static void option_checks(const char *path, const char *dir)
{
	struct connpid_lookup_options o = { .size = sizeof(o) };
	struct connpid_result *r = NULL;
	char notsock[160];
	connpid *h = NULL;
	int fd, rr;

	connpid_open(&h, path, 0);
	o.src = "not-an-ip";
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EINVAL, "src no IP");
	o.src = "::1";
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EINVAL, "src of another family");
	o.src = "::ffff:10.0.0.1"; /* v4-mapped counts as IPv4, like dst: passes, then no daemon */
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -ENOENT, "v4-mapped src");
	o.src = NULL;
	o.netns = 1ull << 32;
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EINVAL, "netns past 32 bits");
	o.netns = 0;
	o.direction = 2;
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EINVAL, "direction 2");
	o.direction = CONNPID_DIRECTION_INBOUND;
	o.flags = CONNPID_LOOKUP_DIRECT;
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EOPNOTSUPP, "direct inbound");
	o = (struct connpid_lookup_options) { .size = sizeof(o), .flags = CONNPID_LOOKUP_DIRECT, .src = "10.0.0.1" };
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EOPNOTSUPP, "direct src");
	/* an old caller's options, without src/netns/direction, still work */
	o = (struct connpid_lookup_options) { .size = offsetof(struct connpid_lookup_options, src) };
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -ENOENT, "old-size options");
	connpid_close(h);

	connpid_open(&h, path, CONNPID_OPEN_DIRECT_ONLY);
	o = (struct connpid_lookup_options) { .size = sizeof(o), .netns = 4026531840u };
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EOPNOTSUPP, "direct-only netns");
	connpid_close(h);

	/* a file, not a socket: connect says ECONNREFUSED, the missing pins ENOENT */
	snprintf(notsock, sizeof(notsock), "%s/not-a-socket", dir);
	fd = open(notsock, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	connpid_open(&h, notsock, CONNPID_OPEN_DIRECT_FALLBACK);
	connpid_set_pin_dir(h, dir); /* holds no pins */
	rr = connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, NULL, &r);
	CHECK(rr == -ENOENT || rr == -EPERM, "fallback to the (missing) maps: %d", rr);
	o = (struct connpid_lookup_options) { .size = sizeof(o), .src = "127.0.0.1" };
	rr = connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r);
	CHECK(rr == -ECONNREFUSED, "no fallback for a lookup with src: %d", rr);
	connpid_close(h);
	unlink(notsock);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/connpid-cases-XXXXXX", path[128];
	json_object *file, *cases, *nothing = json_object_new_array();
	struct connpid_result *r = NULL;
	connpid *h = NULL;
	uint64_t t0, ids[8];
	pid_t mock;
	int rr;

	if (argc != 2 || !(file = json_object_from_file(argv[1])) ||
	    !json_object_object_get_ex(file, "cases", &cases) || !mkdtemp(dir)) {
		fprintf(stderr, "usage: %s protocol-cases.json\n", argv[0]);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/q.sock", dir);

	/* the shared cases, in order, one connection */
	mock = start_mock(path, cases, false);
	CHECK(connpid_open(&h, path, 0) == 0, "open");
	for (size_t i = 0; i < json_object_array_length(cases); i++)
		run_case(h, json_object_array_get_idx(cases, i));
	connpid_close(h);
	stop_mock(mock);

	/* pipelined: eight in flight, collected by id (answers: not found) */
	mock = start_mock(path, nothing, false);
	connpid_open(&h, path, 0);
	for (int i = 0; i < 8; i++)
		CHECK(connpid_submit(h, IPPROTO_TCP, "127.0.0.1", (uint16_t)(1000 + i), 80, NULL, &ids[i]) == 0, "submit");
	t0 = now_ms();
	for (int got = 0; got < 8 && now_ms() - t0 < 5000;) {
		struct pollfd p = { .fd = connpid_get_fd(h), .events = connpid_get_events(h) };

		poll(&p, 1, connpid_get_timeout_ms(h));
		connpid_process(h);
		while (connpid_collect(h, &r) > 0) {
			CHECK(r->error == 0 && !r->found && r->id == ids[got], "pipelined answer %d", got);
			got++;
			connpid_result_free(r);
		}
	}
	CHECK(connpid_pending(h) == 0, "all collected");
	connpid_close(h);
	stop_mock(mock);
	printf("ok: pipelined\n");

	pipelined_scoped(path);
	printf("ok: pipelined with src/netns/direction\n");

	fields_cases(path);
	printf("ok: fields\n");

	/* a daemon that reads and never answers: -ETIMEDOUT on time */
	mock = start_mock(path, nothing, true);
	connpid_open(&h, path, 0);
	connpid_set_timeout(h, 200000);
	t0 = now_ms();
	rr = connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, NULL, &r);
	CHECK(rr == -ETIMEDOUT && now_ms() - t0 < 1000, "silent daemon: %d after %llums", rr,
	      (unsigned long long)(now_ms() - t0));
	connpid_close(h);
	stop_mock(mock);
	printf("ok: timeout\n");

	/* no daemon: connecting fails at once; bad arguments and reserved options */
	unlink(path);
	connpid_open(&h, path, 0);
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, NULL, &r) == -ENOENT, "no daemon");
	CHECK(connpid_lookup(h, 99, "127.0.0.1", 1, 2, NULL, &r) == -EINVAL, "bad protocol");
	CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 0, 2, NULL, &r) == -EINVAL, "port 0");
	connpid_close(h);
	option_checks(path, dir);
	fields_checks(path);
	printf("ok: errors\n");

	rmdir(dir);
	json_object_put(file);
	json_object_put(nothing);
	if (failures)
		printf("FAIL: %d checks\n", failures);
	return failures ? 1 : 0;
}

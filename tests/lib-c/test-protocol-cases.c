// SPDX-License-Identifier: GPL-2.0-or-later
/* libconnpid against tests/protocol-cases.json, the same cases the Python
 * client is tested with: a forked mock daemon answers each lookup with the
 * case's line (@ID@ replaced by the request's id), and the result must be
 * what the case expects. Also: the daemon gone (-ENOENT), a daemon that
 * never answers (-ETIMEDOUT on time), and pipelined submit/collect. */
#include <errno.h>
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
	int proto = strcmp(jstr(req, "proto"), "udp") == 0 ? IPPROTO_UDP : IPPROTO_TCP;
	int rr;

	rr = connpid_lookup(h, proto, jstr(req, "dst"), (uint16_t)json_object_get_int(json_object_object_get(req, "sport")),
			    (uint16_t)json_object_get_int(json_object_object_get(req, "dport")), NULL, &r);
	if (err && strcmp(err, "bad_answer") == 0) {
		CHECK(rr == -EBADMSG && !r, "%s: want -EBADMSG, got %d", name, rr);
	} else if (err) {
		CHECK(rr == -EREMOTEIO && r && str_eq(r->error_code, err), "%s: want %s, got %d", name, err, rr);
	} else {
		CHECK(rr == 0 && r, "%s: lookup failed: %d", name, rr);
		if (rr == 0 && r) {
			json_object_object_foreach(expect, k, v)
				check_field(name, r, k, v);
			CHECK(r->json && strstr(r->json, "\"ok\":true"), "%s: raw json", name);
		}
	}
	printf("%s: %s\n", failures ? "checked" : "ok", name);
	connpid_result_free(r);
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
	{
		struct connpid_lookup_options o = { .size = sizeof(o), .src = "10.0.0.1" };

		CHECK(connpid_lookup(h, IPPROTO_TCP, "127.0.0.1", 1, 2, &o, &r) == -EOPNOTSUPP, "reserved src");
	}
	connpid_close(h);
	printf("ok: errors\n");

	rmdir(dir);
	json_object_put(file);
	json_object_put(nothing);
	if (failures)
		printf("FAIL: %d checks\n", failures);
	return failures ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "docker.h"
#include "htable.h"
#include "http-loop.h"
#include "jsonutil.h"
#include "jsonw.h"
#include "log.h"
#include "macro.h"

#define DOCKER_API "http://localhost/v1.41"
#define DOCKER_BUCKETS 256
#define DOCKER_MAX 4096
#define DOCKER_RETRY_USEC (2 * 1000 * 1000ULL)
#define DOCKER_INSPECT_TIMEOUT_MS 3000
/* Names, images and labels are the container owner's choice: bounded. */
#define DOCKER_STR_MAX 512

enum container_state { C_PENDING, C_KNOWN, C_GONE, C_FAILED };

struct container {
	struct hnode node;
	char id[80];
	enum container_state state;
	char *name;
	char *image;
	char *compose_project;
	bool removed;           /* Docker said destroy: data is the last known */
	bool want_fetch;        /* an inspect is due at the next loop pass */
};

struct docker {
	sd_event *event;
	struct http_loop *http;
	char *socket_path;
	struct htable containers; /* by id, at most DOCKER_MAX */
	struct http_request *events_req;
	sd_event_source *retry_timer;
	sd_event_source *fetch_defer;
	bool reachable;
	bool said_unreachable;
	/* Why not reachable, for `status`: -errno of the last failure, or
	 * the HTTP status Docker answered with; both 0 before any answer. */
	int last_error;
	long last_http_status;
};

static struct container *find(struct docker *d, const char *id)
{
	HTABLE_FOREACH_HASH(n, &d->containers, htable_hash(&d->containers, id, strlen(id))) {
		struct container *c = hnode_entry(n, struct container, node);

		if (streq(c->id, id))
			return c;
	}
	return NULL;
}

static void container_clear(struct container *c)
{
	free(c->name);
	free(c->image);
	free(c->compose_project);
	c->name = c->image = c->compose_project = NULL;
}

static void clear_all(struct docker *d)
{
	for (struct hnode *n = htable_steal_all(&d->containers), *next; n; n = next) {
		struct container *c = hnode_entry(n, struct container, node);

		next = n->next;
		container_clear(c);
		free(c);
	}
}

static const char *jpath_str(json_object *o, const char *a, const char *b)
{
	json_object *v;

	if (!json_object_object_get_ex(o, a, &v))
		return NULL;
	if (b && !json_object_object_get_ex(v, b, &v))
		return NULL;
	return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

static char *dup_or_null(const char *s)
{
	size_t n;

	if (!s)
		return NULL;
	n = strnlen(s, DOCKER_STR_MAX + 1);
	if (n > DOCKER_STR_MAX)
		n = utf8_cut(s, DOCKER_STR_MAX);
	return strndup(s, n);
}

/* What an error from the Engine API socket means and how to mend it. */
static const char *error_reason(int error, const char **ret_hint)
{
	switch (error) {
	case -EACCES:
	case -EPERM:
		*ret_hint = "connpid-queryd may not open the socket (root:docker 0660 by default): add "
			    "SupplementaryGroups=docker to connpid-queryd.service (a drop-in; membership in "
			    "group docker is root-equivalent), or pass --no-docker to go without container names";
		return "permission denied";
	case -ENOENT:
	case -ENOTDIR:
		*ret_hint = "Docker is not running here or listens elsewhere: start it, or pass "
			    "--docker-socket PATH (or --no-docker)";
		return "no such socket";
	case -ECONNREFUSED:
		*ret_hint = "nothing accepts connections on the socket: is dockerd running?";
		return "connection refused";
	case -ETIMEDOUT:
		*ret_hint = "Docker did not answer in time: is dockerd stuck?";
		return "timed out";
	default:
		*ret_hint = "check that dockerd runs and serves the Engine API on this socket";
		return error < 0 ? strerror(-error) : "no answer";
	}
}

static void set_reachable(struct docker *d, bool on, int error)
{
	const char *hint = NULL, *reason;

	if (on && !d->reachable)
		log_info("Docker Engine API reachable at %s", d->socket_path);
	if (on) {
		d->last_error = 0;
		d->last_http_status = 0;
	} else {
		d->last_error = error < 0 ? error : -EIO;
	}
	if (!on && (d->reachable || !d->said_unreachable)) {
		reason = error_reason(d->last_error, &hint);
		log_info("Docker Engine API at %s not reachable (%s): answers carry no Docker data; %s",
			 d->socket_path, reason, hint);
		d->said_unreachable = true;
	}
	d->reachable = on;
}

struct inspect_ctx {
	struct docker *d;
	char id[80];
};

static void on_inspect(struct http_request *req, int error, long status, const char *body, size_t len,
		       void *userdata)
{
	struct inspect_ctx *ctx = userdata;
	struct docker *d = ctx->d;
	struct container *c = find(d, ctx->id);
	json_object *o = NULL, *labels, *cfg;

	if (!c)
		goto out;
	if (error < 0) {
		c->state = C_FAILED;
		set_reachable(d, false, error);
		goto out;
	}
	set_reachable(d, true, 0);
	if (status == 404) {
		c->state = C_GONE;
		goto out;
	}
	o = json_tokener_parse(body);
	if (status != 200 || !o) {
		c->state = C_FAILED;
		goto out;
	}
	/* The Engine also finds containers by name: a reply about another
	 * container than the id asked is no confirmation of this one. */
	{
		const char *got = jpath_str(o, "Id", NULL);

		if (!got || !streq(got, c->id)) {
			c->state = C_GONE;
			goto out;
		}
	}
	container_clear(c);
	{
		const char *name = jpath_str(o, "Name", NULL);

		c->name = dup_or_null(name && name[0] == '/' ? name + 1 : name);
	}
	c->image = dup_or_null(jpath_str(o, "Config", "Image"));
	if (json_object_object_get_ex(o, "Config", &cfg) && json_object_object_get_ex(cfg, "Labels", &labels) &&
	    json_object_is_type(labels, json_type_object))
		c->compose_project = dup_or_null(jpath_str(labels, "com.docker.compose.project", NULL));
	c->state = C_KNOWN;
out:
	json_object_put(o);
	free(ctx);
}

static void send_inspect(struct docker *d, struct container *c)
{
	struct inspect_ctx *ctx = calloc(1, sizeof(*ctx));
	char url[256];

	if (!ctx)
		return;
	ctx->d = d;
	snprintf(ctx->id, sizeof(ctx->id), "%s", c->id);
	snprintf(url, sizeof(url), DOCKER_API "/containers/%s/json", c->id);
	c->state = C_PENDING;
	if (http_get(d->http, d->socket_path, url, DOCKER_INSPECT_TIMEOUT_MS, NULL, on_inspect, ctx, NULL) < 0) {
		c->state = C_FAILED;
		free(ctx);
	}
}

static int on_fetch_defer(sd_event_source *s, void *userdata)
{
	struct docker *d = userdata;

	HTABLE_FOREACH(n, &d->containers) {
		struct container *c = hnode_entry(n, struct container, node);

		if (c->want_fetch) {
			c->want_fetch = false;
			send_inspect(d, c);
		}
	}
	return 0;
}

/* Requests start from the loop, never from inside a curl callback (the
 * events stream asks for refetches while curl is delivering its data). */
static void fetch(struct docker *d, struct container *c)
{
	c->state = C_PENDING;
	c->want_fetch = true;
	if (!d->fetch_defer && sd_event_add_defer(d->event, &d->fetch_defer, on_fetch_defer, d) < 0) {
		c->want_fetch = false;
		send_inspect(d, c); /* no defer source: do it now rather than never */
		return;
	}
	(void)sd_event_source_set_enabled(d->fetch_defer, SD_EVENT_ONESHOT);
}

/* One JSON object per line: rename gives the new name in the actor's
 * attributes; destroy leaves the last known data, marked removed. */
static void on_event_line(const char *line, size_t len, void *userdata)
{
	struct docker *d = userdata;
	json_object *o = json_tokener_parse(line), *actor, *attrs;
	const char *action, *id, *name;
	struct container *c;

	if (!o)
		return;
	set_reachable(d, true, 0);
	action = jpath_str(o, "Action", NULL);
	if (!json_object_object_get_ex(o, "Actor", &actor))
		goto out;
	id = jpath_str(actor, "ID", NULL);
	if (!action || !id || !(c = find(d, id)))
		goto out;
	if (streq(action, "rename")) {
		name = json_object_object_get_ex(actor, "Attributes", &attrs) ? jpath_str(attrs, "name", NULL) : NULL;
		if (name) {
			free(c->name);
			c->name = dup_or_null(name[0] == '/' ? name + 1 : name);
		} else {
			fetch(d, c);
		}
	} else if (streq(action, "destroy")) {
		c->removed = true;
	} else if (streq(action, "start") && c->state != C_KNOWN) {
		fetch(d, c);
	}
out:
	json_object_put(o);
}

static void start_events(struct docker *d);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct docker *d = userdata;

	start_events(d);
	return 0;
}

static void schedule_retry(struct docker *d)
{
	uint64_t now = 0;

	if (sd_event_now(d->event, CLOCK_MONOTONIC, &now) < 0)
		return;
	if (!d->retry_timer) {
		if (sd_event_add_time(d->event, &d->retry_timer, CLOCK_MONOTONIC, now + DOCKER_RETRY_USEC,
				      100 * 1000, on_retry, d) < 0)
			return;
	} else {
		(void)sd_event_source_set_time(d->retry_timer, now + DOCKER_RETRY_USEC);
	}
	(void)sd_event_source_set_enabled(d->retry_timer, SD_EVENT_ONESHOT);
}

static void on_events_done(struct http_request *req, int error, long status, const char *body, size_t len,
			   void *userdata)
{
	struct docker *d = userdata;

	d->events_req = NULL;
	if (error == 0 && status != 200)
		d->last_http_status = status;
	if (d->reachable || !d->said_unreachable)
		set_reachable(d, false, error < 0 ? error : -ECONNRESET);
	else
		d->last_error = error < 0 ? error : -ECONNRESET;
	/* Docker restarted or stopped: what we knew may be stale. */
	HTABLE_FOREACH(n, &d->containers) {
		struct container *c = hnode_entry(n, struct container, node);

		if (c->state == C_KNOWN || c->state == C_PENDING)
			c->state = C_FAILED;
	}
	schedule_retry(d);
}

/* The events stream answered: Docker is there. Whatever failed while it
 * was away is asked again. */
static void on_events_status(long status, void *userdata)
{
	struct docker *d = userdata;

	if (status != 200)
		return;
	set_reachable(d, true, 0);
	HTABLE_FOREACH(n, &d->containers) {
		struct container *c = hnode_entry(n, struct container, node);

		if (c->state == C_FAILED)
			fetch(d, c);
	}
}

static void start_events(struct docker *d)
{
	static const char url[] = DOCKER_API "/events?filters=%7B%22type%22%3A%5B%22container%22%5D%7D";
	int r;

	if (d->events_req)
		return;
	/* Reachable is decided by an answer (inspect or event), not by
	 * having asked: a missing socket must not flap in the log. */
	r = http_get(d->http, d->socket_path, url, 0, on_event_line, on_events_done, d, &d->events_req);
	if (r < 0) {
		d->last_error = r;
		schedule_retry(d);
	}
	else
		http_request_on_status(d->events_req, on_events_status);
}

int docker_new(sd_event *event, const char *socket_path, struct docker **ret)
{
	struct docker *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->event = sd_event_ref(event);
	d->socket_path = strdup(socket_path);
	if (!d->socket_path || htable_init(&d->containers, DOCKER_BUCKETS) < 0) {
		docker_free(d);
		return -ENOMEM;
	}
	r = http_loop_new(event, &d->http);
	if (r < 0) {
		docker_free(d);
		return r;
	}
	start_events(d);
	*ret = d;
	return 0;
}

struct docker *docker_free(struct docker *d)
{
	if (!d)
		return NULL;
	d->http = http_loop_free(d->http); /* no callbacks from here on */
	sd_event_source_disable_unref(d->retry_timer);
	sd_event_source_disable_unref(d->fetch_defer);
	if (d->containers.buckets)
		clear_all(d);
	htable_done(&d->containers);
	sd_event_unref(d->event);
	free(d->socket_path);
	free(d);
	return NULL;
}

void docker_want(struct docker *d, const char *id)
{
	struct container *c = find(d, id);

	if (c) {
		/* After Docker came back, ask again. */
		if (c->state == C_FAILED && d->reachable)
			fetch(d, c);
		return;
	}
	if (d->containers.n >= DOCKER_MAX)
		clear_all(d);
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	snprintf(c->id, sizeof(c->id), "%s", id);
	htable_add(&d->containers, &c->node, htable_hash(&d->containers, c->id, strlen(c->id)));
	fetch(d, c);
}

void docker_describe(struct docker *d, const char *id, struct jsonw *w)
{
	struct container *c = find(d, id);
	const char *state;

	if (!c || (c->state == C_FAILED && d->reachable)) {
		/* new, or failed while Docker was away and it is back */
		docker_want(d, id);
		c = find(d, id);
	}
	if (!c || (!d->reachable && c->state != C_KNOWN)) {
		jw_kstr(w, "docker", "unavailable");
		return;
	}
	if (!d->reachable) {
		/* Docker is gone: say so rather than serve stale names. */
		jw_kstr(w, "docker", "unavailable");
		return;
	}
	switch (c->state) {
	case C_KNOWN:
		state = c->removed ? "removed" : "ok";
		break;
	case C_PENDING:
		state = "pending";
		break;
	case C_GONE:
		state = "unknown";
		break;
	default:
		state = "unavailable";
		break;
	}
	jw_kstr(w, "docker", state);
	if (c->state != C_KNOWN)
		return;
	if (c->name)
		jw_kstr(w, "name", c->name);
	if (c->image)
		jw_kstr(w, "image", c->image);
	if (c->compose_project)
		jw_kstr(w, "compose_project", c->compose_project);
}

json_object *docker_status_json(struct docker *d)
{
	json_object *o = json_object_new_object();
	const char *state, *reason = NULL, *hint = NULL;
	char http[64];

	if (!d) {
		json_object_object_add(o, "state", json_object_new_string("disabled"));
		json_object_object_add(o, "reason", json_object_new_string("--no-docker"));
		return o;
	}
	if (d->reachable) {
		state = "ok";
	} else if (d->last_http_status) {
		state = "unavailable";
		snprintf(http, sizeof(http), "the Engine API answered HTTP %ld", d->last_http_status);
		reason = http;
		hint = "is this socket Docker's Engine API (v1.41 or later)?";
	} else if (d->last_error) {
		state = "unavailable";
		reason = error_reason(d->last_error, &hint);
	} else {
		state = "connecting";
	}
	json_object_object_add(o, "socket", json_object_new_string(d->socket_path));
	json_object_object_add(o, "state", json_object_new_string(state));
	if (reason) {
		json_object_object_add(o, "reason", json_object_new_string(reason));
		json_object_object_add(o, "hint", json_object_new_string(hint));
	}
	return o;
}

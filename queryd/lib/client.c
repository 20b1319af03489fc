/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libconnpid: one handle, one connection, a queue of requests.
 *
 * Answers come in the order of the requests (connpid(7)), so the queue of
 * sent requests is matched strictly first-in first-out; the "id" each
 * lookup carries is checked against it, and a mismatch means the stream
 * is out of step: the connection is dropped. A request that timed out
 * stays in the queue (answered already, as -ETIMEDOUT) until its late
 * answer arrives, so that answer is never taken for the next one's. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "internal.h"
#include "../../common/flowkey.h"
#include "../../common/growbuf.h"
#include "../../common/jsonutil.h"
#include "../../common/macro.h"
#include "../../common/pins.h"

#define DEFAULT_TIMEOUT_USEC 1000000ull
#define BUSY_POLL_MAX_USEC 1000u   /* connpid-queryd's --busy-poll-us bound too */
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define LINE_MAX_BYTES (64u << 20) /* a long `recent` answer may be megabytes */
/* "fields": a FLOW has some 40 members; the daemon reads at most 64 names
 * on its fast path, and no member's name is near 64 bytes. */
#define FIELDS_MAX 64u
#define FIELD_NAME_MAX 64u

struct request {
	struct request *next;
	uint64_t id;           /* 0 for raw requests (connpid_call) */
	char *line;            /* with its newline */
	size_t len;
	uint64_t deadline;     /* CLOCK_MONOTONIC usec, 0 = none */
	bool retried;          /* already sent again after a lost connection */
	bool expired;          /* answered -ETIMEDOUT; its answer is dropped */
	bool scoped;           /* has src, netns or inbound: the maps cannot answer it */
	/* for the direct fallback */
	int proto;
	char dst[64];
	uint16_t sport, dport;
};

struct line {
	struct line *next;
	char *text;
};

struct connpid {
	pthread_mutex_t lock;
	char *socket_path;
	char *pin_dir;
	unsigned flags;
	uint64_t timeout_usec;
	uint64_t busy_poll_usec;  /* 0: sleep in poll() at once */
	uint64_t next_id;
	int fd;
	bool connected_fresh;     /* no answer read on this connection yet */

	struct request *sent, *sent_tail;    /* written (or being written) on fd */
	struct request *queued, *queued_tail; /* waiting for a connection */
	char *out;                /* bytes still to write */
	size_t out_len, out_off, out_cap;
	char *in;                 /* bytes read, not yet a whole line */
	size_t in_len, in_cap;

	struct connpid_result **done; /* finished, not collected */
	size_t n_done, cap_done;
	struct line *events, *events_tail; /* unasked lines (watch) */
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void request_free(struct request *q)
{
	if (!q)
		return;
	free(q->line);
	free(q);
}

/* ---- events of a watch: lines that answer no request */

static int push_event(connpid *h, const char *text)
{
	struct line *l = calloc(1, sizeof(*l));

	if (!l || !(l->text = strdup(text))) {
		free(l);
		return -ENOMEM;
	}
	if (h->events_tail)
		h->events_tail->next = l;
	else
		h->events = l;
	h->events_tail = l;
	return 0;
}

/* The oldest event line, NULL when none. */
static char *pop_event(connpid *h)
{
	struct line *l = h->events;
	char *text;

	if (!l)
		return NULL;
	h->events = l->next;
	if (!h->events)
		h->events_tail = NULL;
	text = l->text;
	free(l);
	return text;
}

/* A request whose line is text (len bytes) and a newline. */
static struct request *request_new(const char *text, size_t len)
{
	struct request *q = calloc(1, sizeof(*q));

	if (!q)
		return NULL;
	q->line = malloc(len + 1);
	if (!q->line) {
		free(q);
		return NULL;
	}
	memcpy(q->line, text, len);
	q->line[len] = '\n';
	q->len = len + 1;
	return q;
}

int connpid_open(connpid **ret, const char *socket_path, unsigned flags)
{
	connpid *h;

	if (!ret || (flags & ~(unsigned)(CONNPID_OPEN_DIRECT_FALLBACK | CONNPID_OPEN_DIRECT_ONLY)))
		return -EINVAL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->fd = -EBADF;
	h->flags = flags;
	h->timeout_usec = DEFAULT_TIMEOUT_USEC;
	h->next_id = 1;
	h->socket_path = strdup(socket_path ?: CONNPID_DEFAULT_SOCKET);
	h->pin_dir = strdup(CONNPID_DEFAULT_PIN_DIR);
	if (!h->socket_path || !h->pin_dir || pthread_mutex_init(&h->lock, NULL) != 0) {
		free(h->socket_path);
		free(h->pin_dir);
		free(h);
		return -ENOMEM;
	}
	*ret = h;
	return 0;
}

static void free_requests(struct request *q)
{
	while (q) {
		struct request *n = q->next;

		request_free(q);
		q = n;
	}
}

void connpid_close(connpid *h)
{
	if (!h)
		return;
	if (h->fd >= 0)
		close(h->fd);
	free_requests(h->sent);
	free_requests(h->queued);
	for (size_t i = 0; i < h->n_done; i++)
		connpid_result_free(h->done[i]);
	free(h->done);
	for (char *text; (text = pop_event(h)); )
		free(text);
	free(h->out);
	free(h->in);
	free(h->socket_path);
	free(h->pin_dir);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

int connpid_set_timeout(connpid *h, uint64_t usec)
{
	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	h->timeout_usec = usec;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int connpid_set_busy_poll(connpid *h, uint64_t usec)
{
	if (!h || usec > BUSY_POLL_MAX_USEC)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	h->busy_poll_usec = usec;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int connpid_set_pin_dir(connpid *h, const char *pin_dir)
{
	char *d;

	if (!h || !pin_dir)
		return -EINVAL;
	d = strdup(pin_dir);
	if (!d)
		return -ENOMEM;
	pthread_mutex_lock(&h->lock);
	free(h->pin_dir);
	h->pin_dir = d;
	pthread_mutex_unlock(&h->lock);
	return 0;
}

/* ---- finished requests */

static int push_done(connpid *h, struct connpid_result *r)
{
	if (h->n_done == h->cap_done) {
		size_t cap = h->cap_done ? h->cap_done * 2 : 16;
		struct connpid_result **d = realloc(h->done, cap * sizeof(*d));

		if (!d) {
			connpid_result_free(r);
			return -ENOMEM;
		}
		h->done = d;
		h->cap_done = cap;
	}
	h->done[h->n_done++] = r;
	return 0;
}

static int finish_error(connpid *h, struct request *q, int error)
{
	struct connpid_result *r = result_new(q->id, error);

	return r ? push_done(h, r) : -ENOMEM;
}

/* Daemon unreachable: the maps answer when allowed, else the error. */
static int finish_unreachable(connpid *h, struct request *q, int error)
{
	struct connpid_result *r;

	if (q->id == 0 || q->scoped || !(h->flags & (CONNPID_OPEN_DIRECT_FALLBACK | CONNPID_OPEN_DIRECT_ONLY)))
		return finish_error(h, q, error);
	r = result_new(q->id, 0);
	if (!r)
		return -ENOMEM;
	(void)result_from_maps(r, h->pin_dir, q->proto, q->dst, q->sport, q->dport);
	return push_done(h, r);
}

static struct connpid_result *take_done(connpid *h, uint64_t id)
{
	for (size_t i = 0; i < h->n_done; i++)
		if (h->done[i]->id == id) {
			struct connpid_result *r = h->done[i];

			memmove(h->done + i, h->done + i + 1, (h->n_done - i - 1) * sizeof(*h->done));
			h->n_done--;
			return r;
		}
	return NULL;
}

/* ---- the connection */

static void append(struct request **head, struct request **tail, struct request *q)
{
	q->next = NULL;
	if (*tail)
		(*tail)->next = q;
	else
		*head = q;
	*tail = q;
}

static int out_append(connpid *h, const char *data, size_t len)
{
	size_t pending = h->out_len - h->out_off;
	int r;

	if (h->out_off > 0) {
		memmove(h->out, h->out + h->out_off, pending);
		h->out_len = pending;
		h->out_off = 0;
	}
	if (len > SIZE_MAX - h->out_len)
		return -ENOMEM;
	r = growbuf_reserve(&h->out, &h->out_cap, h->out_len + len, 0);
	if (r < 0)
		return r;
	memcpy(h->out + h->out_len, data, len);
	h->out_len += len;
	return 0;
}

static int try_connect(connpid *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(h->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, h->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect never waits: it succeeds, or fails with EAGAIN when
	 * the daemon's backlog is full. Neither may block the caller. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	h->fd = fd;
	h->connected_fresh = true;
	h->in_len = 0;
	h->out_len = h->out_off = 0;
	return 0;
}

/* Move queued requests onto a connection, connecting first if needed;
 * when that fails they finish as unreachable. */
static int flush_queue(connpid *h)
{
	int r = 0;

	if (!h->queued)
		return 0;
	if (h->fd < 0 && !(h->flags & CONNPID_OPEN_DIRECT_ONLY))
		r = try_connect(h);
	if (h->fd < 0) {
		if (r == 0)
			r = -ECONNREFUSED;
		while (h->queued) {
			struct request *q = h->queued;

			h->queued = q->next;
			(void)finish_unreachable(h, q, r);
			request_free(q);
		}
		h->queued_tail = NULL;
		return 0;
	}
	while (h->queued) {
		struct request *q = h->queued;

		h->queued = q->next;
		if (out_append(h, q->line, q->len) < 0) {
			(void)finish_error(h, q, -ENOMEM);
			request_free(q);
			continue;
		}
		append(&h->sent, &h->sent_tail, q);
	}
	h->queued_tail = NULL;
	return 0;
}

/* The connection is gone: requests not answered are sent once more on a
 * new one (the daemon restarted); those sent twice already fail. */
static void drop_connection(connpid *h, int error)
{
	struct request *q = h->sent, *requeue = NULL, *requeue_tail = NULL;

	if (h->fd >= 0)
		close(h->fd);
	h->fd = -EBADF;
	h->out_len = h->out_off = 0;
	h->in_len = 0;
	h->sent = h->sent_tail = NULL;
	while (q) {
		struct request *n = q->next;

		if (q->expired) {
			request_free(q);
		} else if (q->retried || q->id == 0) {
			(void)finish_error(h, q, error);
			request_free(q);
		} else {
			q->retried = true;
			append(&requeue, &requeue_tail, q);
		}
		q = n;
	}
	if (requeue) {
		requeue_tail->next = h->queued;
		if (!h->queued)
			h->queued_tail = requeue_tail;
		h->queued = requeue;
	}
}

static int handle_line(connpid *h, char *text)
{
	_cleanup_json_ json_object *o = NULL;
	struct request *q = h->sent;
	struct connpid_result *r;
	json_object *v;
	bool has_ok;

	o = json_tokener_parse(text);
	has_ok = o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "ok", NULL);
	if (!has_ok && o && json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "event", NULL))
		return push_event(h, text); /* an event of a watch: not an answer */
	if (!q)
		return -EPROTO; /* an answer nobody asked for */
	if (q->id != 0 && o && json_object_object_get_ex(o, "id", &v) &&
	    (!json_object_is_type(v, json_type_int) || (uint64_t)json_object_get_int64(v) != q->id))
		return -EPROTO;
	h->sent = q->next;
	if (!h->sent)
		h->sent_tail = NULL;
	h->connected_fresh = false;
	if (!q->expired) {
		r = result_new(q->id, 0);
		if (!r) {
			request_free(q);
			return -ENOMEM;
		}
		/* parsed once: an answer's parse is most of a lookup's cost here */
		(void)result_from_answer(r, text, o);
		(void)push_done(h, r);
	}
	request_free(q);
	return 0;
}

/* The whole lines in h->in, each handled and dropped from it. */
static int handle_lines(connpid *h)
{
	char *nl;

	while ((nl = h->in_len ? memchr(h->in, '\n', h->in_len) : NULL)) {
		size_t used = (size_t)(nl - h->in) + 1;
		int r;

		*nl = '\0';
		if (nl > h->in && nl[-1] == '\r')
			nl[-1] = '\0';
		r = handle_line(h, h->in);
		memmove(h->in, h->in + used, h->in_len - used);
		h->in_len -= used;
		if (r < 0)
			return r;
	}
	return 0;
}

static int read_some(connpid *h)
{
	for (;;) {
		ssize_t n;
		int r;

		r = handle_lines(h);
		if (r < 0)
			return r;
		if (h->in_len == h->in_cap) {
			if (h->in_cap >= LINE_MAX_BYTES)
				return -EMSGSIZE;
			r = growbuf_reserve(&h->in, &h->in_cap, h->in_len + 1, 16384);
			if (r < 0)
				return r;
		}
		n = recv(h->fd, h->in + h->in_len, h->in_cap - h->in_len, MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (n == 0)
			return -ECONNRESET;
		h->in_len += (size_t)n;
	}
}

static int write_some(connpid *h)
{
	while (h->out_off < h->out_len) {
		ssize_t n = send(h->fd, h->out + h->out_off, h->out_len - h->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		h->out_off += (size_t)n;
	}
	return 0;
}

static void expire(connpid *h)
{
	uint64_t now = now_usec();

	for (struct request *q = h->sent; q; q = q->next)
		if (!q->expired && q->deadline && q->deadline <= now) {
			q->expired = true;
			(void)finish_error(h, q, -ETIMEDOUT);
		}
}

static int process_locked(connpid *h)
{
	int r;

	for (int round = 0; round < 2; round++) {
		(void)flush_queue(h);
		if (h->fd < 0)
			break;
		r = write_some(h);
		if (r >= 0)
			r = read_some(h);
		if (r >= 0)
			break;
		drop_connection(h, r);  /* then send what is left once more */
	}
	expire(h);
	return (int)h->n_done;
}

int connpid_process(connpid *h)
{
	int r;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	r = process_locked(h);
	pthread_mutex_unlock(&h->lock);
	return r;
}

/* ---- submitting */

/* An idle connection the daemon has closed (restart, idle timeout) shows
 * EOF: replace it before sending rather than after losing a request. */
static void check_idle_connection(connpid *h)
{
	char c;
	ssize_t n;

	if (h->fd < 0 || h->sent)
		return;
	n = recv(h->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		drop_connection(h, -ECONNRESET);
}

static int enqueue(connpid *h, struct request *q)
{
	q->deadline = h->timeout_usec ? now_usec() + h->timeout_usec : 0;
	check_idle_connection(h);
	append(&h->queued, &h->queued_tail, q);
	return 0;
}

/* A lookup's options, checked. */
struct lookup_args {
	unsigned flags;
	double at;
	char src_text[INET6_ADDRSTRLEN]; /* "": no src */
	uint32_t netns;
	bool inbound;
	const char *const *fields; /* NULL: the whole FLOW */
	size_t n_fields;
};

/* The address family of an IP literal, v4-mapped IPv6 counted as IPv4
 * (the daemon folds it so), and its canonical text (v4-mapped folded)
 * when ret_text (INET6_ADDRSTRLEN bytes) is given; AF_UNSPEC when s is no IP literal. */
static int ip_family(const char *s, char *ret_text)
{
	__u32 a[4];
	int f;

	if (strnlen(s, INET6_ADDRSTRLEN) >= INET6_ADDRSTRLEN || parse_ip(s, &f, a) < 0)
		return AF_UNSPEC;
	if (ret_text)
		format_ip(f, a, ret_text, INET6_ADDRSTRLEN);
	return f;
}

/* src must be an IP of dst's family; a dst that is no IP is left to
 * the daemon to refuse, as before. Sent folded, as the daemon reads it. */
static int src_check(const char *src, const char *dst, char ret_text[static INET6_ADDRSTRLEN])
{
	int fs, fd;

	fs = ip_family(src, ret_text);
	if (fs == AF_UNSPEC)
		return -EINVAL;
	fd = dst ? ip_family(dst, NULL) : AF_UNSPEC;
	return fd != AF_UNSPEC && fd != fs ? -EINVAL : 0;
}

/* Names are only checked as strings: which are FLOW members is the
 * daemon's to say (invalid_argument), so a newer daemon's member works. */
static int fields_check(const char *const *fields, size_t n)
{
	if (!fields)
		return n == 0 ? 0 : -EINVAL;
	if (n == 0 || n > FIELDS_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t len;

		if (!fields[i])
			return -EINVAL;
		len = strnlen(fields[i], FIELD_NAME_MAX);
		if (len == 0 || len >= FIELD_NAME_MAX || !utf8_is_valid(fields[i], len))
			return -EINVAL;
	}
	return 0;
}

static int lookup_options_check(const struct connpid_lookup_options *o, const char *dst, struct lookup_args *ret)
{
	struct connpid_lookup_options c = {};
	int r;

	*ret = (struct lookup_args) {};
	if (!o)
		return 0;
	if (o->size < offsetof(struct connpid_lookup_options, src))
		return -EINVAL;
	memcpy(&c, o, MIN(o->size, sizeof(c)));
	if (o->size > sizeof(c)) {
		/* members of a newer header: only zeros are understood */
		for (size_t i = sizeof(c); i < o->size; i++)
			if (((const char *)o)[i])
				return -EOPNOTSUPP;
	}
	if (c.flags & ~(unsigned)(CONNPID_LOOKUP_AT | CONNPID_LOOKUP_DIRECT))
		return -EINVAL;
	if ((c.flags & CONNPID_LOOKUP_AT) && !(c.at >= 0 && c.at < 1e15))
		return -EINVAL;
	if (c.netns > UINT32_MAX)
		return -EINVAL;
	if (c.direction != CONNPID_DIRECTION_OUTBOUND && c.direction != CONNPID_DIRECTION_INBOUND)
		return -EINVAL;
	if (c.src && (r = src_check(c.src, dst, ret->src_text)) < 0)
		return r;
	r = fields_check(c.fields, c.n_fields);
	if (r < 0)
		return r;
	ret->flags = c.flags;
	ret->at = c.at;
	ret->netns = (uint32_t)c.netns;
	ret->inbound = c.direction == CONNPID_DIRECTION_INBOUND;
	ret->fields = c.fields;
	ret->n_fields = c.n_fields;
	return 0;
}

static bool lookup_args_scoped(const struct lookup_args *a)
{
	return a->src_text[0] || a->netns || a->inbound;
}

static void add_scope(json_object *o, const struct lookup_args *a)
{
	if (a->src_text[0])
		json_object_object_add(o, "src", json_object_new_string(a->src_text));
	if (a->netns)
		json_object_object_add(o, "netns", json_object_new_int64(a->netns));
	if (a->inbound)
		json_object_object_add(o, "direction", json_object_new_string("inbound"));
}

static int add_fields(json_object *o, const struct lookup_args *a)
{
	json_object *f;

	if (!a->fields)
		return 0;
	f = json_object_new_array_ext((int)a->n_fields);
	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < a->n_fields; i++) {
		json_object *name = json_object_new_string(a->fields[i]);

		if (!name || json_object_array_add(f, name) < 0) {
			json_object_put(name);
			json_object_put(f);
			return -ENOMEM;
		}
	}
	return json_object_object_add(o, "fields", f) < 0 ? -ENOMEM : 0;
}

/* The lookup's JSON line: op, the 5-tuple's members, scope, at, fields, id. */
static json_object *lookup_json(int proto, const char *dst, uint16_t sport, uint16_t dport,
				const struct lookup_args *a, uint64_t id)
{
	json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "op", json_object_new_string("lookup"));
	json_object_object_add(o, "proto", json_object_new_string(proto == IPPROTO_UDP ? "udp" : "tcp"));
	json_object_object_add(o, "dst", json_object_new_string(dst));
	json_object_object_add(o, "sport", json_object_new_int(sport));
	json_object_object_add(o, "dport", json_object_new_int(dport));
	add_scope(o, a);
	if (a->flags & CONNPID_LOOKUP_AT)
		json_object_object_add(o, "at", json_object_new_double(a->at));
	if (add_fields(o, a) < 0) {
		json_object_put(o);
		return NULL;
	}
	json_object_object_add(o, "id", json_object_new_int64((int64_t)id));
	return o;
}

static struct request *lookup_request(connpid *h, int proto, const char *dst, uint16_t sport, uint16_t dport,
				      const struct lookup_args *a)
{
	_cleanup_json_ json_object *o = NULL;
	struct request *q;
	const char *s;
	size_t len;

	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || !dst || strlen(dst) >= sizeof(q->dst) ||
	    sport == 0 || dport == 0)
		return NULL;
	o = lookup_json(proto, dst, sport, dport, a, h->next_id);
	if (!o)
		return NULL;
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	q = request_new(s, len);
	if (!q)
		return NULL;
	q->id = h->next_id++;
	q->proto = proto;
	strcpy(q->dst, dst);
	q->sport = sport;
	q->dport = dport;
	q->scoped = lookup_args_scoped(a);
	return q;
}

static int submit_locked(connpid *h, int proto, const char *dst, uint16_t sport, uint16_t dport,
			 const struct connpid_lookup_options *opts, uint64_t *ret_id)
{
	struct lookup_args a;
	struct request *q;
	bool direct;
	int r;

	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || !dst || sport == 0 || dport == 0)
		return -EINVAL;
	r = lookup_options_check(opts, dst, &a);
	if (r < 0)
		return r;
	direct = (a.flags & CONNPID_LOOKUP_DIRECT) || (h->flags & CONNPID_OPEN_DIRECT_ONLY);
	/* the maps know neither source address nor namespace nor inbound flows */
	if (direct && lookup_args_scoped(&a))
		return -EOPNOTSUPP;
	q = lookup_request(h, proto, dst, sport, dport, &a);
	if (!q)
		return -ENOMEM;
	*ret_id = q->id;
	if (direct) {
		struct connpid_result *res = result_new(q->id, 0);

		if (res)
			(void)result_from_maps(res, h->pin_dir, proto, dst, sport, dport);
		request_free(q);
		return res ? push_done(h, res) : -ENOMEM;
	}
	return enqueue(h, q);
}

int connpid_submit(connpid *h, int proto, const char *dst, uint16_t sport, uint16_t dport,
		   const struct connpid_lookup_options *opts, uint64_t *ret_id)
{
	uint64_t id;
	int r;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	r = submit_locked(h, proto, dst, sport, dport, opts, &id);
	if (r >= 0)
		(void)process_locked(h);
	pthread_mutex_unlock(&h->lock);
	if (r >= 0 && ret_id)
		*ret_id = id;
	return r;
}

int connpid_get_fd(connpid *h)
{
	int fd;

	if (!h)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	fd = h->fd;
	pthread_mutex_unlock(&h->lock);
	return fd;
}

short connpid_get_events(connpid *h)
{
	short ev;

	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	ev = h->fd < 0 ? 0 : POLLIN | (h->out_off < h->out_len ? POLLOUT : 0);
	pthread_mutex_unlock(&h->lock);
	return ev;
}

/* Is an answer owed to a request nobody gave up on? *ret_first: the
 * earliest deadline among them, 0 when none has one. */
static bool answer_due(connpid *h, uint64_t *ret_first)
{
	uint64_t first = 0;
	bool due = false;

	for (struct request *q = h->sent; q; q = q->next) {
		if (q->expired)
			continue;
		due = true;
		if (q->deadline && (!first || q->deadline < first))
			first = q->deadline;
	}
	*ret_first = first;
	return due;
}

static int timeout_ms_locked(connpid *h)
{
	uint64_t first, now = now_usec();

	if (h->queued)
		return 0;
	(void)answer_due(h, &first);
	if (!first)
		return -1;
	return first <= now ? 0 : (int)MIN((first - now + 999) / 1000, (uint64_t)INT32_MAX);
}

int connpid_get_timeout_ms(connpid *h)
{
	int t;

	if (!h)
		return -1;
	pthread_mutex_lock(&h->lock);
	t = h->n_done ? 0 : timeout_ms_locked(h);
	pthread_mutex_unlock(&h->lock);
	return t;
}

int connpid_collect(connpid *h, struct connpid_result **ret)
{
	if (!h || !ret)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	*ret = NULL;
	if (h->n_done > 0) {
		*ret = h->done[0];
		memmove(h->done, h->done + 1, (h->n_done - 1) * sizeof(*h->done));
		h->n_done--;
	}
	pthread_mutex_unlock(&h->lock);
	return *ret ? 1 : 0;
}

size_t connpid_pending(connpid *h)
{
	size_t n = 0;

	if (!h)
		return 0;
	pthread_mutex_lock(&h->lock);
	for (struct request *q = h->sent; q; q = q->next)
		n += !q->expired;
	for (struct request *q = h->queued; q; q = q->next)
		n++;
	n += h->n_done;
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* ---- waiting (synchronous use) */

/* How long connpid_set_busy_poll() lets this wait spin: only while an
 * answer is due and nothing is left to send, never past the wait's own
 * timeout nor the first request's deadline. */
static uint64_t spin_usec(connpid *h, int timeout_ms)
{
	uint64_t first, now, usec = h->busy_poll_usec;

	if (usec == 0 || timeout_ms == 0 || h->out_off < h->out_len || !answer_due(h, &first))
		return 0;
	if (timeout_ms > 0)
		usec = MIN(usec, (uint64_t)timeout_ms * 1000u);
	if (first) {
		now = now_usec();
		usec = first <= now ? 0 : MIN(usec, first - now);
	}
	return usec;
}

/* Look at the socket without sleeping for up to usec: a peer on another
 * CPU then answers a thread that is running, not one to be woken. True
 * when there is something to read (or EOF, or an error to read). The
 * usec spent are added to *spent. */
static bool busy_poll(connpid *h, uint64_t usec, uint64_t *spent)
{
	uint64_t start = now_usec(), now = start;
	bool ready = false;
	char c;

	do {
		ssize_t n = recv(h->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

		if (n >= 0 || (errno != EAGAIN && errno != EINTR)) {
			ready = true;
			break;
		}
		/* a daemon on this CPU runs at once: two spinners that do not
		 * yield wait out each other (tests/bench/RESULTS.md) */
		(void)sched_yield();
		now = now_usec();
	} while (now - start < usec);
	*spent = now - start;
	return ready;
}

static void wait_io(connpid *h, int timeout_ms)
{
	struct pollfd p = { .fd = h->fd, .events = POLLIN };
	uint64_t usec, spent = 0;

	if (h->fd < 0)
		return;
	if (h->out_off < h->out_len)
		p.events |= POLLOUT;
	usec = spin_usec(h, timeout_ms);
	if (usec > 0) {
		if (busy_poll(h, usec, &spent))
			return;
		if (timeout_ms > 0)
			timeout_ms -= (int)MIN(spent / 1000u, (uint64_t)timeout_ms);
	}
	(void)poll(&p, 1, timeout_ms);
}

/* Until the request id has finished; its result. */
static struct connpid_result *wait_for(connpid *h, uint64_t id)
{
	for (;;) {
		struct connpid_result *r;

		(void)process_locked(h);
		r = take_done(h, id);
		if (r)
			return r;
		wait_io(h, timeout_ms_locked(h));
	}
}

int connpid_lookup(connpid *h, int proto, const char *dst, uint16_t sport, uint16_t dport,
		   const struct connpid_lookup_options *opts, struct connpid_result **ret)
{
	struct connpid_result *r;
	uint64_t id;
	int e;

	if (!h || !ret)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	e = submit_locked(h, proto, dst, sport, dport, opts, &id);
	r = e < 0 ? NULL : wait_for(h, id);
	pthread_mutex_unlock(&h->lock);
	if (!r)
		return e;
	e = r->error;
	if (e < 0 && e != -EREMOTEIO) {
		connpid_result_free(r);
		return e;
	}
	*ret = r;
	return e;
}

static struct request *raw_request(const char *request)
{
	size_t len = strlen(request);

	if (len == 0 || memchr(request, '\n', len))
		return NULL;
	return request_new(request, len);
}

int connpid_call(connpid *h, const char *request, char **ret_answer)
{
	struct connpid_result *r;
	struct request *q;
	int e;

	if (!h || !request || !ret_answer)
		return -EINVAL;
	q = raw_request(request);
	if (!q)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	if (h->flags & CONNPID_OPEN_DIRECT_ONLY) {
		pthread_mutex_unlock(&h->lock);
		request_free(q);
		return -EOPNOTSUPP;
	}
	enqueue(h, q);
	r = wait_for(h, 0);
	pthread_mutex_unlock(&h->lock);
	e = r->error;
	if (e == 0 || e == -EREMOTEIO || e == -EBADMSG) {
		*ret_answer = r->json ? strdup(r->json) : NULL;
		e = *ret_answer ? 0 : -ENOMEM;
	}
	connpid_result_free(r);
	return e;
}

int connpid_read_line(connpid *h, uint64_t timeout_usec, char **ret_line)
{
	uint64_t deadline = timeout_usec == UINT64_MAX ? 0 : now_usec() + timeout_usec;
	int r = 0;

	if (!h || !ret_line)
		return -EINVAL;
	pthread_mutex_lock(&h->lock);
	for (;;) {
		char *text = pop_event(h);
		uint64_t now;

		if (text) {
			*ret_line = text;
			r = 0;
			break;
		}
		if (r < 0)
			break;
		if (h->fd < 0) {
			r = -ECONNRESET;
			break;
		}
		now = now_usec();
		if (deadline && now >= deadline) {
			r = -ETIMEDOUT;
			break;
		}
		wait_io(h, deadline ? (int)MIN((deadline - now + 999) / 1000, (uint64_t)INT32_MAX) : -1);
		r = write_some(h);
		if (r >= 0)
			r = read_some(h);
		if (r < 0) {
			/* a watch is over when its connection is: never resent */
			drop_connection(h, r);
		}
	}
	pthread_mutex_unlock(&h->lock);
	return r;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The query socket: taken from systemd when socket-activated, bound by us
 * otherwise; each client gets a read buffer of one maximal line and a
 * bounded write buffer, so a client that never reads costs at most
 * CLIENT_MAX_OUT + ANSWER_MAX_BYTES before it is dropped and never slows
 * anyone else; all of them together at most OUTPUT_MAX_TOTAL, past which
 * those with the most unread output go first.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "client.h"
#include "flow-json.h"
#include "jsonutil.h"
#include "jsonw.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "server.h"

#define ACCEPT_RETRY_USEC (1000 * 1000ULL)
#define ACCEPT_BATCH 16
/* An emptied write buffer larger than this is given back: one large
 * answer must not stay resident for the client's whole life. */
#define CLIENT_OUT_KEEP (64 * 1024)

static void accept_resume(struct server *s)
{
	if (!s->accept_paused)
		return;
	s->accept_paused = false;
	(void)sd_event_source_set_enabled(s->listen_io, SD_EVENT_ON);
	(void)sd_event_source_set_enabled(s->accept_retry, SD_EVENT_OFF);
}

/* Fds freed elsewhere (a process's pidfd, a pin) wake no client_free():
 * try again now and then. */
static int on_accept_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct manager *m = userdata;

	accept_resume(&m->server);
	return 0;
}

/* accept() cannot get an fd: the connection stays in the backlog and
 * epoll reports it again at once, so retrying now would spin. Stop
 * watching the socket until an fd frees. */
static void accept_pause(struct manager *m, int error)
{
	struct server *s = &m->server;
	uint64_t now = 0;

	s->accept_starved++;
	if (!s->accept_starved_logged) {
		log_warning_errno(error, "Cannot accept clients: %m; waiting until a file descriptor frees");
		s->accept_starved_logged = true;
	}
	s->accept_paused = true;
	(void)sd_event_source_set_enabled(s->listen_io, SD_EVENT_OFF);
	if (!s->accept_retry &&
	    sd_event_add_time_relative(m->event, &s->accept_retry, CLOCK_MONOTONIC, ACCEPT_RETRY_USEC, 0,
				       on_accept_retry, m) < 0)
		return;
	(void)sd_event_now(m->event, CLOCK_MONOTONIC, &now);
	(void)sd_event_source_set_time(s->accept_retry, now + ACCEPT_RETRY_USEC);
	(void)sd_event_source_set_enabled(s->accept_retry, SD_EVENT_ONESHOT);
}

static size_t client_pending(const struct client *c)
{
	return c->out_len - c->out_off;
}

/* Forget the client's queued output, and its memory. */
static void client_out_release(struct client *c)
{
	c->m->server.output_queued -= client_pending(c);
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = c->out_cap = 0;
}

static void client_free(struct client *c)
{
	struct server *s = &c->m->server;

	if (c->prev)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->watching)
		s->n_watchers--;
	s->n_clients--;
	sd_event_source_disable_unref(c->io);
	safe_close(c->fd);
	client_out_release(c);
	json_object_put(c->deferred_id);
	free(c->in);
	free(c);
	/* an fd is free again: take the next waiting client */
	accept_resume(s);
}

void server_close_clients(struct server *s)
{
	while (s->clients)
		client_free(s->clients);
}

/* Reading stops when the client is closing, and while a deferred
 * request holds a full line buffer (parsing waits for its answer). */
static bool client_wants_input(const struct client *c)
{
	return !c->close_after_flush && !c->read_eof && !c->dead && c->in_len < CLIENT_MAX_LINE;
}

static void client_update_events(struct client *c)
{
	uint32_t ev = client_wants_input(c) ? EPOLLIN : 0;

	if (c->out_len > c->out_off)
		ev |= EPOLLOUT;
	(void)sd_event_source_set_io_events(c->io, ev);
}

/* Write what we can without blocking. <0: the client is gone. */
static int client_flush(struct client *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			return negative_errno();
		}
		c->out_off += n;
		c->m->server.output_queued -= n;
	}
	if (c->out_off == c->out_len) {
		c->out_off = c->out_len = 0;
		if (c->out_cap > CLIENT_OUT_KEEP)
			client_out_release(c);
	}
	return 0;
}

/* The live client whose unread output is the largest, the oldest on a tie. */
static struct client *slowest_reader(struct server *s)
{
	struct client *best = NULL;

	for (struct client *c = s->clients; c; c = c->next) {
		if (c->dead || client_pending(c) == 0)
			continue;
		if (!best || client_pending(c) > client_pending(best) ||
		    (client_pending(c) == client_pending(best) && c->out_since < best->out_since))
			best = c;
	}
	return best;
}

/* All output together is past its cap: drop the slowest readers until it
 * is under, so memory stays bounded whatever the number of clients. */
static void output_shed(struct server *s)
{
	while (s->output_queued > OUTPUT_MAX_TOTAL) {
		struct client *c = slowest_reader(s);

		if (!c)
			break;
		log_debug("Dropping client pid %d: %zu bytes unread, %zu queued for all clients",
			  (int)c->pid, client_pending(c), s->output_queued);
		s->clients_dropped_output_cap++;
		client_mark_dead(c);
	}
}

/* Room for len more bytes after the queued output. <0: the client was
 * dropped (it stopped reading, or out of memory). */
static int client_out_reserve(struct client *c, size_t len)
{
	size_t pending = client_pending(c);

	if (c->dead)
		return -EPIPE;
	/* The bound is on what is still unread, so one large answer to a
	 * caught-up client always goes out. */
	if (pending > CLIENT_MAX_OUT) {
		/* It stopped reading: drop it rather than grow without bound. */
		log_debug("Dropping client pid %d: %zu bytes unread", (int)c->pid, pending);
		c->m->server.clients_dropped_slow++;
		client_mark_dead(c);
		return -ENOBUFS;
	}
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (pending == 0)
		(void)sd_event_now(c->m->event, CLOCK_MONOTONIC, &c->out_since);
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		/* compact first: sent bytes need no room */
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, pending);
			c->out_len = pending;
			c->out_off = 0;
		}
		while (cap < c->out_len + len)
			cap *= 2;
		if (cap != c->out_cap) {
			p = realloc(c->out, cap);
			if (!p) {
				client_mark_dead(c);
				return -ENOMEM;
			}
			c->out = p;
			c->out_cap = cap;
		}
	}
	return 0;
}

/* len bytes were appended to out: count them, shed if all is too much. */
static int client_out_commit(struct client *c, size_t len)
{
	struct server *s = &c->m->server;

	c->out_len += len;
	s->output_queued += len;
	if (s->output_queued > OUTPUT_MAX_TOTAL)
		output_shed(s);
	return c->dead ? -ENOBUFS : 0;
}

int client_send_text(struct client *c, const char *s, size_t len)
{
	int r = client_out_reserve(c, len + 1);

	if (r < 0)
		return r;
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	return client_out_commit(c, len + 1);
}

int client_send(struct client *c, json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_LINE_FLAGS, &len);

	return client_send_text(c, s, len);
}

/* Room kept free before an answer is written in place: most answers fit,
 * so the writer seldom reallocates. */
#define ANSWER_ROOM 2048

struct jsonw *client_answer_begin(struct client *c)
{
	if (client_out_reserve(c, ANSWER_ROOM) < 0)
		return NULL;
	jw_attach(&c->ow, c->out, c->out_len, c->out_cap);
	jw_obj_begin(&c->ow);
	return &c->ow;
}

void client_answer_end(struct client *c, json_object *id)
{
	struct jsonw *w = &c->ow;
	size_t start = c->out_len;

	if (id) {
		size_t n = 0;
		const char *s = json_object_to_json_string_length(id, JSON_LINE_FLAGS, &n);

		jw_key(w, "id");
		jw_raw(w, s, n);
	}
	jw_obj_end(w);
	/* the buffer may have moved; it is the client's either way */
	c->out = w->buf;
	c->out_cap = w->cap;
	if (w->oom || w->len + 1 > w->cap) {
		client_mark_dead(c);
		return;
	}
	c->out[w->len] = '\n'; /* jsonw keeps room for its NUL */
	(void)client_out_commit(c, w->len + 1 - start);
}

void client_answer(struct client *c, json_object *ans, json_object *id)
{
	json_object *ok, *flow;

	if (!ans)
		return;
	if (id)
		json_object_object_add(ans, "id", json_object_get(id));
	/* a /proc map hit: a json-c tree, filtered here (history rows come
	 * written as "fields" asks) */
	if (c->answer_fields != FLOW_FIELDS_ALL && json_object_object_get_ex(ans, "flow", &flow))
		flow_fields_filter(flow, c->answer_fields);
	/* The last word on what leaves: json-c built parts of this answer
	 * from bytes we did not choose (history rows, pin names, errors). */
	json_sanitize(ans);
	if (json_object_object_get_ex(ans, "ok", &ok) && !json_object_get_boolean(ok))
		c->m->request_errors++;
	(void)client_send(c, ans);
	json_object_put(ans);
}

static int on_reap(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;

	for (struct client *c = m->server.clients, *next; c; c = next) {
		next = c->next;
		if (c->dead)
			client_free(c);
	}
	return 0;
}

void client_mark_dead(struct client *c)
{
	struct manager *m = c->m;

	c->dead = true;
	/* Its output will never be read: free it now, not at the reaper. */
	client_out_release(c);
	if (!m->server.reaper && sd_event_add_defer(m->event, &m->server.reaper, on_reap, m) < 0)
		return; /* freed on its next I/O event instead */
	(void)sd_event_source_set_enabled(m->server.reaper, SD_EVENT_ONESHOT);
}

void client_close_after_flush(struct client *c)
{
	c->close_after_flush = true;
}

static bool client_may_parse(const struct client *c)
{
	return !c->deferred && !c->dead && !c->close_after_flush;
}

/* Split complete lines out of the input buffer; in order, and none while
 * a deferred request waits for its answer. */
static void client_process_input(struct client *c)
{
	size_t start = 0;

	if (!c->in)
		return;
	while (client_may_parse(c)) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - (c->in + start));
		*nl = '\0';
		protocol_handle_line(c->m, c, c->in + start, len);
		start += len + 1;
	}
	if (start > 0) {
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
	}
	if (client_may_parse(c) && c->in_len >= CLIENT_MAX_LINE) {
		client_answer(c, protocol_error("line_too_long", "request line exceeds %d bytes; closing",
						CLIENT_MAX_LINE), NULL);
		client_close_after_flush(c);
	}
}

/* One read. <0: the client is gone. */
static int client_read(struct client *c)
{
	ssize_t n;

	if (!c->in) {
		c->in = malloc(CLIENT_MAX_LINE + 1);
		if (!c->in)
			return -ENOMEM;
	}
	n = recv(c->fd, c->in + c->in_len, CLIENT_MAX_LINE - c->in_len, MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : negative_errno();
	if (n == 0) {
		/* Shut for writing: what it asked is still answered (a
		 * deferred request, queued output), then we close. */
		c->read_eof = true;
		return 0;
	}
	c->in_len += n;
	client_process_input(c);
	return 0;
}

/* Write what is queued and choose what to wait for. <0: close it now. */
static int client_settle(struct client *c)
{
	if (c->dead || client_flush(c) < 0)
		return -EPIPE;
	if ((c->close_after_flush || c->read_eof) && !c->deferred && c->out_len == c->out_off)
		return -ESHUTDOWN;
	client_update_events(c);
	return 0;
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;

	if (revents & EPOLLIN && client_wants_input(c)) {
		if (client_read(c) < 0) {
			client_free(c);
			return 0;
		}
	} else if (revents & (EPOLLHUP | EPOLLERR) && !(revents & EPOLLOUT)) {
		client_free(c);
		return 0;
	}
	if (client_settle(c) < 0)
		client_free(c);
	return 0;
}

uint64_t client_defer(struct client *c)
{
	c->deferred = true;
	return c->id;
}

static struct client *client_by_id(struct manager *m, uint64_t id)
{
	for (struct client *c = m->server.clients; c; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

bool manager_client_waiting(struct manager *m, uint64_t client_id)
{
	struct client *c = client_by_id(m, client_id);

	return c && !c->dead && c->deferred;
}

void manager_client_complete(struct manager *m, uint64_t client_id, json_object *ans)
{
	struct client *c = client_by_id(m, client_id);
	json_object *id;

	if (!c || c->dead || !c->deferred) {
		json_object_put(ans);
		return;
	}
	id = TAKE_PTR(c->deferred_id);
	c->deferred = false;
	client_answer(c, ans, id);
	json_object_put(id);
	/* The lines that came meanwhile, in order. */
	client_process_input(c);
	/* Not inside this client's callback: the reaper frees it. */
	if (client_settle(c) < 0)
		client_mark_dead(c);
}

void server_broadcast_flow(struct manager *m, const struct flow *f)
{
	struct jsonw w;
	uint64_t fields = 0;
	bool rendered = false;

	if (m->server.n_watchers == 0)
		return;
	jw_init(&w);
	for (struct client *c = m->server.clients, *next; c; c = next) {
		next = c->next;
		if (!c->watching || c->dead || !watch_filter_match(&c->filter, f))
			continue;
		/* rendered once for all watchers asking the same members */
		if (!rendered || fields != c->watch_fields) {
			fields = c->watch_fields;
			jw_attach(&w, w.buf, 0, w.cap); /* the buffer kept, the writer reset */
			jw_obj_begin(&w);
			jw_kstr(&w, "event", "flow");
			jw_key(&w, "flow");
			flow_write(&w, m, f, -1, fields);
			jw_obj_end(&w);
			rendered = true;
		}
		if (w.oom || client_send_text(c, w.buf, w.len) < 0 || client_flush(c) < 0) {
			/* Never freed here: the client may be the one whose request
			 * caused this drain. The reaper frees it after dispatch. */
			m->server.watch_events_dropped++;
			client_mark_dead(c);
			continue;
		}
		client_update_events(c);
	}
	jw_free(&w);
}

/* The peer's supplementary groups as the kernel saw them at connect().
 * Any number of them: on ERANGE the kernel says how much room it needs. */
static int peer_groups(int fd, gid_t **ret, size_t *ret_n)
{
	socklen_t len = 64 * sizeof(gid_t);

	for (int tries = 0; tries < 4; tries++) {
		_cleanup_free_ gid_t *groups = malloc(len);
		socklen_t got = len;

		if (!groups)
			return -ENOMEM;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &got) == 0) {
			*ret_n = got / sizeof(gid_t);
			*ret = TAKE_PTR(groups);
			return 0;
		}
		if (errno != ERANGE || got <= len)
			return negative_errno();
		len = got;
	}
	return -ERANGE;
}

/* Root, or a member of the allowed group (primary or supplementary, as
 * the kernel saw it at connect()). The socket's mode is the first gate;
 * this is the second, and it gives a clear refusal instead of EACCES. */
static bool peer_may_query(const struct server *s, int fd, const struct ucred *cred)
{
	_cleanup_free_ gid_t *groups = NULL;
	size_t n = 0;
	int r;

	if (cred->uid == 0)
		return true;
	if (!s->allow_gid_valid)
		return false;
	if (cred->gid == s->allow_gid)
		return true;
	r = peer_groups(fd, &groups, &n);
	if (r < 0) {
		log_debug_errno(r, "Cannot read the groups of client pid %d: %m", (int)cred->pid);
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (groups[i] == s->allow_gid)
			return true;
	return false;
}

/* A client for the connected fd cfd, watched and listed; it takes cfd.
 * <0: refused (cfd closed). */
static int client_new(struct manager *m, int cfd)
{
	struct server *s = &m->server;
	struct ucred cred = {};
	socklen_t len = sizeof(cred);
	struct client *c;
	int r;

	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return -ENOMEM;
	}
	c->m = m;
	c->id = ++s->next_client_id;
	c->answer_fields = c->watch_fields = FLOW_FIELDS_ALL;
	c->fd = cfd;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->pid = cred.pid;
		c->may_query = peer_may_query(s, cfd, &cred);
	}
	r = sd_event_add_io(m->event, &c->io, cfd, EPOLLIN, on_client_io, c);
	if (r < 0) {
		log_warning_errno(r, "Cannot watch client fd: %m");
		close(cfd);
		free(c);
		return r;
	}
	c->next = s->clients;
	if (s->clients)
		s->clients->prev = c;
	s->clients = c;
	s->n_clients++;
	s->clients_total++;
	return 0;
}

/* Take one waiting client. 1: taken (or refused), 0: none waiting,
 * <0: stop for now (out of fds: paused). */
static int accept_one(struct manager *m, int fd)
{
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		r = negative_errno();
		if (r == -EMFILE || r == -ENFILE || r == -ENOBUFS || r == -ENOMEM) {
			accept_pause(m, r);
			return r;
		}
		if (r == -EAGAIN) {
			/* Caught up with every waiting client: a shortage after
			 * this is a new episode, worth a new line. */
			m->server.accept_starved_logged = false;
			return 0;
		}
		if (r != -EINTR && r != -ECONNABORTED)
			log_warning_errno(r, "accept() failed: %m");
		return r == -EINTR || r == -ECONNABORTED ? 1 : r;
	}
	if (m->server.n_clients >= m->cfg.max_clients) {
		log_warning("Refusing client: %zu clients connected already", m->server.n_clients);
		close(cfd);
		return 1;
	}
	r = client_new(m, cfd);
	return r < 0 ? r : 1;
}

/* A few per wakeup: a burst of connects is taken in few loop passes, and
 * the backlog is seen empty (EAGAIN), which ends a shortage episode. */
static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	for (int i = 0; i < ACCEPT_BATCH; i++)
		if (accept_one(userdata, fd) <= 0)
			break;
	return 0;
}

static int take_activated_socket(struct manager *m)
{
	char **names = NULL;
	int n, fd = -EBADF;

	n = sd_listen_fds_with_names(true, &names);
	if (n < 0)
		return log_error_errno(n, "sd_listen_fds_with_names() failed: %m");
	for (int i = 0; i < n; i++) {
		int cand = SD_LISTEN_FDS_START + i;

		if (fd < 0 && sd_is_socket(cand, AF_UNIX, SOCK_STREAM, 1) > 0)
			fd = cand;
		else
			close(cand); /* not ours to use */
	}
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	if (n > 0 && fd < 0)
		return log_error_errno(-ENOTSOCK, "systemd passed %d sockets, none a listening AF_UNIX stream", n);
	return fd;
}

/* What is at a path, in words, for an error message. */
static const char *file_kind(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG:
		return "a regular file";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symbolic link";
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
	case S_IFBLK:
		return "a device node";
	case S_IFSOCK:
		return "a socket";
	default:
		return "a file of unknown type";
	}
}

/* The directory holding path, opened, and the name in it: every later
 * step acts on that name in that directory, so a swapped parent cannot
 * redirect an unlink or a chown. */
static int open_parent(const char *path, const char **ret_name)
{
	_cleanup_free_ char *dir = strdup(path);
	char *slash;
	int fd;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	*ret_name = slash ? path + (slash - dir) + 1 : path;
	if (!**ret_name)
		return log_error_errno(-EISDIR, "Socket path %s names a directory", path);
	if (slash)
		slash[slash == dir ? 1 : 0] = '\0';
	fd = open(slash ? dir : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return log_error_errno(negative_errno(), "Cannot open the directory of %s: %m", path);
	return fd;
}

/* A socket left at path by a daemon that died: nobody accepts on it. A
 * non-blocking probe, so a live daemon with a full backlog (EAGAIN)
 * counts as live, and we never wait on it. */
static int socket_is_stale(const struct sockaddr_un *sa)
{
	_cleanup_close_ int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (probe < 0)
		return negative_errno();
	if (connect(probe, (const struct sockaddr *)sa, sizeof(*sa)) == 0 || errno == EAGAIN)
		return false;
	if (errno == ECONNREFUSED)
		return true;
	return negative_errno();
}

/* Make room at path: nothing there, or a stale socket of ours that we
 * remove. Anything else is someone's file and is refused, never removed. */
static int clear_socket_path(int dir_fd, const char *name, const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int r;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
		if (errno == ENOENT)
			return 0;
		return log_error_errno(negative_errno(), "Cannot stat %s: %m", path);
	}
	if (!S_ISSOCK(st.st_mode))
		return log_error_errno(-EEXIST, "%s exists and is %s, not a socket: refusing to replace it "
				       "(remove it or choose another --socket)", path, file_kind(st.st_mode));
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return log_error_errno(-EEXIST, "%s is a socket owned by uid %u, not by us: refusing to replace it",
				       path, (unsigned)st.st_uid);
	r = socket_is_stale(sa);
	if (r < 0)
		return log_error_errno(r, "Cannot probe %s: %m", path);
	if (!r)
		return log_error_errno(-EADDRINUSE, "%s is in use by a running daemon (it accepts connections): "
				       "refusing to take it over", path);
	if (unlinkat(dir_fd, name, 0) < 0)
		return log_error_errno(negative_errno(), "Cannot remove stale socket %s: %m", path);
	log_info("Removed stale socket %s", path);
	return 0;
}

/* Hand the socket we just bound to the query group. By fd on the inode
 * found under the name (O_PATH, no symlink followed), checked to be a
 * socket of ours, so nothing swapped in at the path gets chowned. */
static int socket_set_group(struct manager *m, int dir_fd, const char *name, const char *path)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;

	if (fd < 0 || fstat(fd, &st) < 0)
		return log_error_errno(negative_errno(), "Cannot open the socket %s we bound: %m", path);
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
		return log_error_errno(-EPERM, "%s changed under us (now %s, uid %u): refusing to use it",
				       path, file_kind(st.st_mode), (unsigned)st.st_uid);
	m->server.listen_dev = st.st_dev;
	m->server.listen_ino = st.st_ino;
	m->server.listen_inode_known = true;
	if (!m->server.allow_gid_valid || st.st_gid == m->server.allow_gid)
		return 0;
	if (fchownat(fd, "", (uid_t)-1, m->server.allow_gid, AT_EMPTY_PATH) < 0)
		/* Root still queries; members would get EACCES: say so. */
		log_warning_errno(negative_errno(), "Cannot give %s to group '%s' (members of it cannot connect): %m",
				  path, m->cfg.allow_group);
	return 0;
}

static int bind_own_socket(struct manager *m, const char *path)
{
	_cleanup_close_ int fd = -EBADF, dir_fd = -EBADF;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	const char *name;
	mode_t old_umask;
	int r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "Socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	dir_fd = open_parent(path, &name);
	if (dir_fd < 0)
		return dir_fd;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(negative_errno(), "socket(): %m");
	r = clear_socket_path(dir_fd, name, path, &sa);
	if (r < 0)
		return r;
	/* Born 0660: never a moment when others may connect. */
	old_umask = umask(0117);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_umask);
	if (r < 0) {
		if (errno == EADDRINUSE)
			return log_error_errno(-EADDRINUSE, "Cannot bind %s: something appeared there meanwhile", path);
		return log_error_errno(negative_errno(), "Cannot bind %s: %m", path);
	}
	r = socket_set_group(m, dir_fd, name, path);
	if (r < 0)
		return r;
	if (listen(fd, SOMAXCONN) < 0)
		return log_error_errno(negative_errno(), "Cannot listen on %s: %m", path);
	return TAKE_FD(fd);
}

/* On exit: remove our own socket, and only if the name still holds it. */
static void unlink_socket(struct manager *m)
{
	const struct server *s = &m->server;
	_cleanup_close_ int dir_fd = -EBADF;
	const char *name;
	struct stat st;

	if (s->listen_fd < 0 || s->listen_fd_activated || !m->cfg.socket_path || !s->listen_inode_known)
		return;
	dir_fd = open_parent(m->cfg.socket_path, &name);
	if (dir_fd < 0)
		return;
	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISSOCK(st.st_mode) ||
	    st.st_dev != s->listen_dev || st.st_ino != s->listen_ino) {
		log_warning("%s is no longer our socket: leaving it", m->cfg.socket_path);
		return;
	}
	(void)unlinkat(dir_fd, name, 0);
}

int server_listen(struct manager *m)
{
	struct server *s = &m->server;
	int fd, r;

	fd = take_activated_socket(m);
	if (fd < 0 && fd != -EBADF)
		return fd;
	if (fd >= 0) {
		struct sockaddr_un sa = {};
		socklen_t salen = sizeof(sa);

		s->listen_fd_activated = true;
		if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 && sa.sun_path[0]) {
			snprintf(s->activated_path, sizeof(s->activated_path), "%s", sa.sun_path);
			m->cfg.socket_path = s->activated_path;
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			return log_error_errno(negative_errno(), "Cannot make the activated socket non-blocking: %m");
		log_info("Serving on the socket passed by systemd");
	} else {
		fd = bind_own_socket(m, m->cfg.socket_path);
		if (fd < 0)
			return fd;
		log_info("Serving on %s", m->cfg.socket_path);
	}
	if (s->allow_gid_valid)
		log_info("Root and members of group '%s' may query", m->cfg.allow_group);
	s->listen_fd = fd;
	r = sd_event_add_io(m->event, &s->listen_io, fd, EPOLLIN, on_accept, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the listening socket: %m");
	return 0;
}

void server_init(struct server *s)
{
	*s = (struct server) { .listen_fd = -EBADF };
}

void server_resolve_allow_group(struct server *s, const char *group)
{
	struct group gr, *res = NULL;
	char buf[4096];

	if (!group)
		return;
	if (getgrnam_r(group, &gr, buf, sizeof(buf), &res) == 0 && res) {
		s->allow_gid = res->gr_gid;
		s->allow_gid_valid = true;
	} else {
		log_info("Group '%s' does not exist: only root may query", group);
	}
}

void server_free(struct manager *m)
{
	struct server *s = &m->server;

	server_close_clients(s);
	s->reaper = sd_event_source_disable_unref(s->reaper);
	s->listen_io = sd_event_source_disable_unref(s->listen_io);
	s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
	/* An activated socket belongs to systemd; our own one we remove. */
	unlink_socket(m);
	s->listen_fd = safe_close(s->listen_fd);
}

void client_watch(struct client *c, const struct watch_filter *w, uint64_t fields)
{
	c->watch_fields = fields;
	if (!c->watching)
		c->m->server.n_watchers++;
	c->watching = true;
	c->filter = *w;
}

void server_stats_to_json(const struct server *s, json_object *o)
{
	json_add_u64(o, "clients", s->n_clients);
	json_add_u64(o, "clients_total", s->clients_total);
	json_add_u64(o, "watchers", s->n_watchers);
	json_add_u64(o, "clients_dropped_slow", s->clients_dropped_slow);
	json_add_u64(o, "clients_dropped_output_cap", s->clients_dropped_output_cap);
	json_add_u64(o, "output_queued_bytes", s->output_queued);
	json_add_u64(o, "accept_starved", s->accept_starved);
}

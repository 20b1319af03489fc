// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The query socket: taken from systemd when socket-activated, bound by us
 * otherwise; each client gets a read buffer of one maximal line and a
 * bounded write buffer, so a client that never reads costs at most
 * CLIENT_MAX_OUT before it is dropped and never slows anyone else.
 */
#include <errno.h>
#include <fcntl.h>
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
#include "log.h"
#include "macro.h"
#include "manager.h"

static void client_free(struct client *c)
{
	struct manager *m = c->m;

	if (c->prev)
		c->prev->next = c->next;
	else
		m->clients = c->next;
	if (c->next)
		c->next->prev = c->prev;
	if (c->watching)
		m->n_watchers--;
	m->n_clients--;
	sd_event_source_disable_unref(c->io);
	safe_close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

void manager_close_clients(struct manager *m)
{
	while (m->clients)
		client_free(m->clients);
}

static void client_update_events(struct client *c)
{
	uint32_t ev = c->close_after_flush ? 0 : EPOLLIN;

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
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	return 0;
}

int client_send(struct client *c, json_object *o)
{
	size_t len;
	const char *s = json_object_to_json_string_length(o, JSON_LINE_FLAGS, &len);
	size_t pending = c->out_len - c->out_off;

	if (c->dead)
		return -EPIPE;
	/* The bound is on what is still unread, so one large answer to a
	 * caught-up client always goes out. */
	if (pending > CLIENT_MAX_OUT) {
		/* It stopped reading: drop it rather than grow without bound. */
		log_debug("Dropping client pid %d: %zu bytes unread", (int)c->pid, pending);
		c->m->clients_dropped_slow++;
		client_mark_dead(c);
		return -ENOBUFS;
	}
	if (c->out_off > 0 && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		char *p;

		/* compact first: sent bytes need no room */
		if (c->out_off) {
			memmove(c->out, c->out + c->out_off, pending);
			c->out_len = pending;
			c->out_off = 0;
		}
		while (cap < c->out_len + len + 1)
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
	memcpy(c->out + c->out_len, s, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	return 0;
}

static int on_reap(sd_event_source *s, void *userdata)
{
	struct manager *m = userdata;

	for (struct client *c = m->clients, *next; c; c = next) {
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
	if (!m->reaper && sd_event_add_defer(m->event, &m->reaper, on_reap, m) < 0)
		return; /* freed on its next I/O event instead */
	(void)sd_event_source_set_enabled(m->reaper, SD_EVENT_ONESHOT);
}

void client_close_after_flush(struct client *c)
{
	c->close_after_flush = true;
}

/* Split complete lines out of the input buffer. */
static void client_process_input(struct client *c)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(c->in + start, '\n', c->in_len - start);
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - (c->in + start));
		*nl = '\0';
		protocol_handle_line(c->m, c, c->in + start, len);
		start += len + 1;
		if (c->dead || c->close_after_flush)
			return;
	}
	if (start > 0) {
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
	}
	if (c->in_len >= CLIENT_MAX_LINE) {
		json_object *e = protocol_error("line_too_long", "request line exceeds %d bytes; closing",
						 CLIENT_MAX_LINE);

		(void)client_send(c, e);
		json_object_put(e);
		c->m->request_errors++;
		client_close_after_flush(c);
	}
}

static int on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;

	if (revents & EPOLLIN && !c->close_after_flush) {
		ssize_t n;

		if (!c->in) {
			c->in = malloc(CLIENT_MAX_LINE + 1);
			if (!c->in) {
				client_free(c);
				return 0;
			}
		}
		n = recv(c->fd, c->in + c->in_len, CLIENT_MAX_LINE - c->in_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_free(c);
			return 0;
		}
		if (n > 0) {
			c->in_len += n;
			client_process_input(c);
		}
	} else if (revents & (EPOLLHUP | EPOLLERR) && !(revents & EPOLLOUT)) {
		client_free(c);
		return 0;
	}
	if (c->dead || client_flush(c) < 0) {
		client_free(c);
		return 0;
	}
	if (c->close_after_flush && c->out_len == c->out_off) {
		client_free(c);
		return 0;
	}
	client_update_events(c);
	return 0;
}

void manager_broadcast_flow(struct manager *m, const struct flow *f);

void manager_broadcast_flow(struct manager *m, const struct flow *f)
{
	json_object *line = NULL;

	if (m->n_watchers == 0)
		return;
	for (struct client *c = m->clients, *next; c; c = next) {
		next = c->next;
		if (!c->watching || c->dead || !watch_filter_match(&c->filter, f))
			continue;
		if (!line) {
			line = json_object_new_object();
			json_object_object_add(line, "event", json_object_new_string("flow"));
			json_object_object_add(line, "flow", flow_to_json(m, f, -1));
		}
		if (client_send(c, line) < 0 || client_flush(c) < 0) {
			/* Never freed here: the client may be the one whose request
			 * caused this drain. The reaper frees it after dispatch. */
			m->watch_events_dropped++;
			client_mark_dead(c);
			continue;
		}
		client_update_events(c);
	}
	json_object_put(line);
}

/* Root, or a member of the allowed group (primary or supplementary, as
 * the kernel saw it at connect()). The socket's mode is the first gate;
 * this is the second, and it gives a clear refusal instead of EACCES. */
static bool peer_may_query(struct manager *m, int fd, const struct ucred *cred)
{
	gid_t groups[256];
	socklen_t len = sizeof(groups);

	if (cred->uid == 0)
		return true;
	if (!m->allow_gid_valid)
		return false;
	if (cred->gid == m->allow_gid)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) < 0)
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == m->allow_gid)
			return true;
	return false;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct manager *m = userdata;
	struct ucred cred = {};
	socklen_t len = sizeof(cred);
	struct client *c;
	int cfd, r;

	cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (cfd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warning_errno(negative_errno(), "accept() failed: %m");
		return 0;
	}
	if (m->n_clients >= m->cfg.max_clients) {
		log_warning("Refusing client: %zu clients connected already", m->n_clients);
		close(cfd);
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cfd);
		return 0;
	}
	c->m = m;
	c->fd = cfd;
	if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->uid = cred.uid;
		c->gid = cred.gid;
		c->pid = cred.pid;
		c->may_query = peer_may_query(m, cfd, &cred);
	}
	r = sd_event_add_io(m->event, &c->io, cfd, EPOLLIN, on_client_io, c);
	if (r < 0) {
		log_warning_errno(r, "Cannot watch client fd: %m");
		close(cfd);
		free(c);
		return 0;
	}
	c->next = m->clients;
	if (m->clients)
		m->clients->prev = c;
	m->clients = c;
	m->n_clients++;
	m->clients_total++;
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

static int bind_own_socket(const char *path)
{
	_cleanup_close_ int fd = -EBADF;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(sa.sun_path))
		return log_error_errno(-ENAMETOOLONG, "Socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return log_error_errno(negative_errno(), "socket(): %m");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		_cleanup_close_ int probe = -EBADF;

		if (errno != EADDRINUSE)
			return log_error_errno(negative_errno(), "Cannot bind %s: %m", path);
		/* A live daemon answers on it; a stale file from a crash does not. */
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return log_error_errno(-EADDRINUSE, "%s is in use by a running daemon", path);
		if (unlink(path) < 0)
			return log_error_errno(negative_errno(), "Cannot remove stale socket %s: %m", path);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			return log_error_errno(negative_errno(), "Cannot bind %s: %m", path);
	}
	if (chmod(path, 0660) < 0)
		return log_error_errno(negative_errno(), "Cannot chmod %s: %m", path);
	if (listen(fd, SOMAXCONN) < 0)
		return log_error_errno(negative_errno(), "Cannot listen on %s: %m", path);
	return TAKE_FD(fd);
}

int manager_listen(struct manager *m)
{
	int fd, r;

	fd = take_activated_socket(m);
	if (fd < 0 && fd != -EBADF)
		return fd;
	if (fd >= 0) {
		struct sockaddr_un sa = {};
		socklen_t salen = sizeof(sa);

		m->listen_fd_activated = true;
		if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0 && sa.sun_path[0]) {
			snprintf(m->activated_path, sizeof(m->activated_path), "%s", sa.sun_path);
			m->cfg.socket_path = m->activated_path;
		}
		if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
			return log_error_errno(negative_errno(), "Cannot make the activated socket non-blocking: %m");
		log_info("Serving on the socket passed by systemd");
	} else {
		fd = bind_own_socket(m->cfg.socket_path);
		if (fd < 0)
			return fd;
		log_info("Serving on %s", m->cfg.socket_path);
	}
	m->listen_fd = fd;
	r = sd_event_add_io(m->event, &m->listen_io, fd, EPOLLIN, on_accept, m);
	if (r < 0)
		return log_error_errno(r, "Cannot watch the listening socket: %m");
	return 0;
}

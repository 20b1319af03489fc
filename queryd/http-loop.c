// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <curl/curl.h>

#include "growbuf.h"
#include "http-loop.h"
#include "log.h"
#include "macro.h"

#define HTTP_MAX_BODY (4u << 20)

struct http_loop {
	sd_event *event;
	CURLM *multi;
	sd_event_source *timer;
	struct http_request *active; /* freed without callbacks at the end */
};

struct http_request {
	struct http_request *next, *prev;
	struct http_loop *loop;
	CURL *easy;
	char *buf;
	size_t len, cap;
	http_line_fn line_fn;
	http_done_fn done_fn;
	http_status_fn status_fn;
	bool status_seen;
	void *userdata;
	bool overflow;
};

static void request_free(struct http_request *req)
{
	if (!req)
		return;
	if (req->prev)
		req->prev->next = req->next;
	else if (req->loop && req->loop->active == req)
		req->loop->active = req->next;
	if (req->next)
		req->next->prev = req->prev;
	curl_easy_cleanup(req->easy);
	free(req->buf);
	free(req);
}

/* The errno connect() failed with tells a missing socket (ENOENT) from
 * one we may not open (EACCES), which the operator mends differently. */
static int result_to_errno(CURL *easy, CURLcode result)
{
	long os_errno = 0;

	if (result == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	if (result != CURLE_COULDNT_CONNECT)
		return -EIO;
	if (curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK && os_errno > 0 &&
	    os_errno < 4096)
		return -(int)os_errno;
	return -ECONNREFUSED;
}

static void check_done(struct http_loop *l)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(l->multi, &left))) {
		struct http_request *req = NULL;
		long status = 0;
		int error = 0;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&req);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		if (msg->data.result != CURLE_OK)
			error = result_to_errno(msg->easy_handle, msg->data.result);
		else if (req->overflow)
			error = -EFBIG;
		curl_multi_remove_handle(l->multi, msg->easy_handle);
		if (req->line_fn && req->len > 0 && !error)
			req->line_fn(req->buf, req->len, req->userdata); /* last line, no newline */
		req->done_fn(req, error, status, req->buf ? req->buf : "", req->len, req->userdata);
		request_free(req);
	}
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct http_loop *l = userdata;
	int action = 0, running;

	if (revents & EPOLLIN)
		action |= CURL_CSELECT_IN;
	if (revents & EPOLLOUT)
		action |= CURL_CSELECT_OUT;
	if (revents & (EPOLLERR | EPOLLHUP))
		action |= CURL_CSELECT_ERR;
	curl_multi_socket_action(l->multi, fd, action, &running);
	check_done(l);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct http_loop *l = userdata;
	int running;

	curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(l);
	return 0;
}

/* curl tells which fds to watch; the sd-event source rides in socketp. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_loop *l = userp;
	sd_event_source *src = socketp;
	uint32_t events = 0;

	if (what == CURL_POLL_REMOVE) {
		sd_event_source_disable_unref(src);
		curl_multi_assign(l->multi, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		events |= EPOLLOUT;
	if (src)
		return sd_event_source_set_io_events(src, events) < 0 ? -1 : 0;
	if (sd_event_add_io(l->event, &src, fd, events, on_io, l) < 0)
		return -1;
	curl_multi_assign(l->multi, fd, src);
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_loop *l = userp;
	uint64_t now = 0;

	if (timeout_ms < 0)
		return sd_event_source_set_enabled(l->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
	if (sd_event_now(l->event, CLOCK_MONOTONIC, &now) < 0)
		return -1;
	if (sd_event_source_set_time(l->timer, now + (uint64_t)timeout_ms * 1000) < 0)
		return -1;
	return sd_event_source_set_enabled(l->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int http_loop_new(sd_event *event, struct http_loop **ret)
{
	struct http_loop *l;
	int r;

	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->event = sd_event_ref(event);
	l->multi = curl_multi_init();
	if (!l->multi) {
		http_loop_free(l);
		return -ENOMEM;
	}
	r = sd_event_add_time(event, &l->timer, CLOCK_MONOTONIC, UINT64_MAX, 1000, on_timer, l);
	if (r >= 0)
		r = sd_event_source_set_enabled(l->timer, SD_EVENT_OFF);
	if (r < 0) {
		http_loop_free(l);
		return r;
	}
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	*ret = l;
	return 0;
}

struct http_loop *http_loop_free(struct http_loop *l)
{
	if (!l)
		return NULL;
	/* Requests still running: free them without callbacks. */
	while (l->active) {
		curl_multi_remove_handle(l->multi, l->active->easy);
		request_free(l->active);
	}
	if (l->multi)
		curl_multi_cleanup(l->multi);
	sd_event_source_disable_unref(l->timer);
	sd_event_unref(l->event);
	free(l);
	return NULL;
}

static size_t on_data(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_request *req = userdata;
	size_t n = size * nmemb;

	if (req->len + n > HTTP_MAX_BODY) {
		req->overflow = true;
		return 0; /* aborts the transfer */
	}
	if (growbuf_reserve(&req->buf, &req->cap, req->len + n + 1, 4096) < 0)
		return 0;
	memcpy(req->buf + req->len, data, n);
	req->len += n;
	req->buf[req->len] = '\0';

	if (req->line_fn) {
		char *nl;

		while ((nl = memchr(req->buf, '\n', req->len))) {
			size_t used = (size_t)(nl - req->buf) + 1;

			*nl = '\0';
			if (used > 1)
				req->line_fn(req->buf, used - 1, req->userdata);
			memmove(req->buf, req->buf + used, req->len - used);
			req->len -= used;
			req->buf[req->len] = '\0';
		}
	}
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct http_request *req = userdata;
	size_t n = size * nmemb;
	long status = 0;

	if (!req->status_seen && n > 9 && memcmp(data, "HTTP/", 5) == 0) {
		const char *sp = memchr(data, ' ', n);

		if (sp && (size_t)(sp - data) + 4 <= n)
			status = strtol(sp + 1, NULL, 10);
		req->status_seen = true;
		if (req->status_fn)
			req->status_fn(status, req->userdata);
	}
	return n;
}

void http_request_on_status(struct http_request *req, http_status_fn status_fn)
{
	req->status_fn = status_fn;
}

int http_get(struct http_loop *l, const char *unix_socket, const char *url, long timeout_ms,
	     http_line_fn line_fn, http_done_fn done_fn, void *userdata, struct http_request **ret)
{
	struct http_request *req;

	req = calloc(1, sizeof(*req));
	if (!req)
		return -ENOMEM;
	req->easy = curl_easy_init();
	if (!req->easy) {
		free(req);
		return -ENOMEM;
	}
	req->line_fn = line_fn;
	req->done_fn = done_fn;
	req->userdata = userdata;
	curl_easy_setopt(req->easy, CURLOPT_URL, url);
	curl_easy_setopt(req->easy, CURLOPT_UNIX_SOCKET_PATH, unix_socket);
	curl_easy_setopt(req->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(req->easy, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(req->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(req->easy, CURLOPT_HEADERDATA, req);
	curl_easy_setopt(req->easy, CURLOPT_PRIVATE, req);
	curl_easy_setopt(req->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(req->easy, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	if (timeout_ms > 0)
		curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
	if (curl_multi_add_handle(l->multi, req->easy) != CURLM_OK) {
		request_free(req);
		return -EIO;
	}
	req->loop = l;
	req->next = l->active;
	if (l->active)
		l->active->prev = req;
	l->active = req;
	if (ret)
		*ret = req;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libconnpid: ask connpid-queryd which process owns a connection.
 *
 * The stable C API of connpid(7)'s socket protocol; see connpid_lookup(3).
 * Every function returns 0 (or a positive count) on success and a negative
 * errno-style value on failure; none sets errno or prints anything. A
 * handle has no global state behind it and may be used from several
 * threads (calls on one handle are serialized by its lock). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CONNPID_DEFAULT_SOCKET "/run/connpid.sock"

typedef struct connpid connpid;

/* connpid_open() flags */
enum {
	/* When the daemon cannot be reached, answer lookups from the pinned
	 * maps (read-only; needs read access to the pins). Such results have
	 * direct set and carry only what the map and /proc say now. */
	CONNPID_OPEN_DIRECT_FALLBACK = 1u << 0,
	/* Never talk to the daemon: every lookup reads the pinned maps. */
	CONNPID_OPEN_DIRECT_ONLY     = 1u << 1,
};

/* Open a handle for the daemon at socket_path (NULL: /run/connpid.sock).
 * Connecting is lazy: the first request connects, and a connection the
 * daemon closed (restart) is replaced on the next request. */
int connpid_open(connpid **ret, const char *socket_path, unsigned flags);
/* Close the connection and free the handle and unread answers. NULL is a no-op. */
void connpid_close(connpid *h);

/* Per-request timeout for connect + send + answer (default 1 s, 0 = wait forever). */
int connpid_set_timeout(connpid *h, uint64_t usec);
/* Busy polling (LIBCONNPID_0.2): while a synchronous call (connpid_lookup,
 * connpid_call, ...) waits for an answer with nothing left to send, look
 * at the socket without sleeping for up to usec (0-1000; default 0 = off;
 * more: -EINVAL) before sleeping in poll(). Saves the wake-up of the
 * calling thread when the daemon runs on another CPU (best with
 * connpid-queryd --busy-poll-us); costs that thread's CPU, at most usec
 * per wait, never past the request's timeout. */
int connpid_set_busy_poll(connpid *h, uint64_t usec);
/* Pin dir read by the direct fallback (default /sys/fs/bpf/connpid). */
int connpid_set_pin_dir(connpid *h, const char *pin_dir);

/* Optional members of a lookup. Zero-initialize and set size to
 * sizeof(struct connpid_lookup_options): members added later are
 * appended, and the library reads only the first size bytes. */
struct connpid_lookup_options {
	size_t size;
	unsigned flags;          /* CONNPID_LOOKUP_* */
	double at;               /* with CONNPID_LOOKUP_AT: who owned it at this Unix time (history) */
	/* Narrow the lookup to one variant of the key (connpid(7) "lookup").
	 * Naming is the flow's: src/sport are this host's end, dst/dport the
	 * peer, for inbound flows too. */
	const char *src;         /* this host's address of the flow (IP literal, same family as dst), or NULL */
	uint64_t netns;          /* network namespace inode (1..UINT32_MAX), or 0 for any */
	int direction;           /* CONNPID_DIRECTION_OUTBOUND (0) or CONNPID_DIRECTION_INBOUND */
	/* The pinned maps hold no source address, namespace or inbound flow:
	 * a direct lookup (CONNPID_LOOKUP_DIRECT, CONNPID_OPEN_DIRECT_ONLY)
	 * with any of the three fails with -EOPNOTSUPP, and the fallback
	 * (CONNPID_OPEN_DIRECT_FALLBACK) does not answer such a lookup from
	 * the maps: it fails with the daemon's unreachability error. */
	/* Appended in 0.1.x (issue 15): answer with these FLOW members only
	 * (connpid(7) "fields"), e.g. { "pid", "comm", "exe" }: n_fields
	 * names (1..64, each a non-empty UTF-8 string shorter than 64
	 * bytes; read during the call only), or NULL and 0 for the whole
	 * FLOW. Names are not checked here: one the daemon does not know is
	 * its "invalid_argument" (-EREMOTEIO).
	 * The result's members not asked for are then NULL, 0, false, or
	 * -1 for uid. A direct answer (the maps) is not narrowed. */
	const char *const *fields;
	size_t n_fields;
};

#define CONNPID_DIRECTION_OUTBOUND 0 /* a connection this host's process made (connect, sendto) */
#define CONNPID_DIRECTION_INBOUND  1 /* a connection a process here accept()ed */

enum {
	CONNPID_LOOKUP_AT     = 1u << 0, /* use options->at */
	CONNPID_LOOKUP_DIRECT = 1u << 1, /* this lookup reads the pinned maps only */
};

/* A lookup's answer. Allocated by the library, read-only for the caller,
 * freed with connpid_result_free(); members may be appended in later
 * versions (size says how big this one is). Strings are UTF-8 or NULL. */
struct connpid_result {
	size_t size;
	uint64_t id;             /* the request id (asynchronous use) */
	int error;               /* 0, or negative errno: -ETIMEDOUT, -ECONNRESET, -EREMOTEIO (daemon error), ... */
	const char *error_code;  /* the daemon's error code with -EREMOTEIO ("invalid_argument", ...) */
	bool found;
	bool direct;             /* answered from the pinned maps, not the daemon */
	bool alive;              /* the pid still runs the same process */
	uint32_t pid;
	int64_t uid;             /* -1 unknown */
	const char *user;
	const char *comm;
	const char *exe;
	const char *unit;
	const char *container_id;
	const char *container_name;
	const char *container_image;
	const char *domain;
	const char *json;        /* the raw answer line (direct: one made in the same shape) */
	/* Other flows of the same key (another namespace or source address):
	 * the answer's "candidates" array, read from json. Appended in 0.1.x:
	 * read it only when size > offsetof(struct connpid_result, n_candidates). */
	unsigned n_candidates;
};

void connpid_result_free(struct connpid_result *r);

/* Who owns the flow sport -> dst:dport? proto is IPPROTO_TCP or
 * IPPROTO_UDP; dst an IPv4 or IPv6 literal; opts may be NULL. Returns 0
 * with *ret set (found or not), or a negative errno when no answer could
 * be had (-EINVAL bad arguments, -ETIMEDOUT, -ECONNREFUSED/-ENOENT daemon
 * down, -EACCES, -EREMOTEIO the daemon refused: *ret is then still set
 * with error_code). */
int connpid_lookup(connpid *h, int proto, const char *dst, uint16_t sport, uint16_t dport,
		   const struct connpid_lookup_options *opts, struct connpid_result **ret);

/* Pipelined asynchronous use: submit lookups (each gets an id), poll
 * connpid_get_fd() for connpid_get_events(), call connpid_process(), then
 * connpid_collect() the answers in any order. Requests older than the
 * timeout complete with error -ETIMEDOUT; on a lost connection unanswered
 * requests are sent once more on a new one. */
int connpid_submit(connpid *h, int proto, const char *dst, uint16_t sport, uint16_t dport,
		   const struct connpid_lookup_options *opts, uint64_t *ret_id);
/* The fd to poll (-EBADF while not connected) and the poll(2) events it wants. */
int connpid_get_fd(connpid *h);
short connpid_get_events(connpid *h);
/* Milliseconds until the oldest request times out (-1: none pending). */
int connpid_get_timeout_ms(connpid *h);
/* Non-blocking: write what can be written, read what arrived, expire old
 * requests. Returns the number of results ready to collect. */
int connpid_process(connpid *h);
/* One finished request: 1 with *ret set, 0 when none is ready. */
int connpid_collect(connpid *h, struct connpid_result **ret);
/* Requests submitted and not collected yet. */
size_t connpid_pending(connpid *h);

/* Raw protocol access for the other operations (ping, stats, recent,
 * history, watch): send one request line (a JSON object, without
 * newline; an "id" is not added) and return the answer line, to be
 * freed with free(). Waits for answers to earlier submitted lookups. */
int connpid_call(connpid *h, const char *request, char **ret_answer);
/* The next line the daemon sends unasked (watch events); timeout_usec
 * UINT64_MAX waits forever. -ETIMEDOUT, -ECONNRESET at end. */
int connpid_read_line(connpid *h, uint64_t timeout_usec, char **ret_line);

#ifdef __cplusplus
}
#endif

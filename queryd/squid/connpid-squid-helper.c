// SPDX-License-Identifier: GPL-2.0-or-later
/* connpid-squid-helper: Squid's external ACL helper answering "which
 * process sent this request" (connpid-squid-helper(8)).
 *
 * Squid's client is the proxy's client: the connection to look up is the
 * one the client process opened to Squid's http_port, keyed by that
 * process as sport = the client's port (%SRCPORT), dst = the address and
 * port it connected to (%MYADDR %MYPORT, Squid's side). %DST %PORT name the
 * origin server of the request, which no local socket of the client
 * points at (except when Squid intercepts): they are not the key. %SRC,
 * the client's address, is the flow's "src": it keeps apart clients in
 * containers or network namespaces that use the same source port.
 *
 * Squid waits for every answer, so nothing here may block: stdin and the
 * daemon are multiplexed with poll(), requests are pipelined through
 * libconnpid with the channel ids of `concurrency=`, and a request that
 * is not answered within --timeout gets BH. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "parse-util.h"
#include "../lib/connpid.h"

#define LINE_MAX_BYTES 8192   /* a Squid request line is a few dozen bytes */
#define MAX_FIELDS 16
#define BUSY_POLL_MAX_USEC 1000  /* as connpid-queryd's --busy-poll-us */
#define MIN(a, b) ((a) < (b) ? (a) : (b))

enum field {
	F_IGNORE, F_SRC, F_SRCPORT, F_MYADDR, F_MYPORT,
};

struct list {
	char **v;
	size_t n;
};

struct pending {
	uint64_t id;
	char channel[32];   /* "" without concurrency */
	/* a lookup with src, to be asked of the maps (without it) when the
	 * daemon is down and --direct-fallback is on */
	bool has_src;
	char dst[64];
	uint16_t sport, dport;
};

static const char *arg_socket_path;
static const char *arg_pin_dir;
static uint64_t arg_timeout_usec = 500000;
static uint64_t arg_busy_poll_usec;
static bool arg_concurrency = true;
static bool arg_direct_fallback;
static enum field arg_fields[MAX_FIELDS] = { F_SRC, F_SRCPORT, F_MYADDR, F_MYPORT };
static size_t arg_n_fields = 4;
static const char *arg_proxy_addr;     /* --proxy: when the format has no %MYADDR %MYPORT */
static uint16_t arg_proxy_port;
static struct list arg_allow_exe, arg_allow_unit, arg_allow_container;

/* The FLOW members the notes and the allow lists use: the daemon's answer
 * is then under 200 bytes instead of 1.1-1.5 KB with the cmdline and
 * ancestry (connpid(7) "fields"), which the helper would only parse and
 * drop; about three times the lookups per second (tests/squid). */
static const char *const lookup_fields[] = { "pid", "user", "comm", "exe", "unit", "container", "domain" };

static struct pending *pending;
static size_t n_pending, cap_pending;

static void help(void)
{
	printf("Usage: connpid-squid-helper [OPTIONS]\n\n"
	       "Squid external ACL helper: OK with notes pid= user= exe= comm= unit= container=\n"
	       "domain= for the process that owns the client's connection to Squid.\n\n"
	       "  --format LIST          the fields after the channel id, as in external_acl_type:\n"
	       "                         comma list of src,srcport,myaddr,myport,- (ignored);\n"
	       "                         default src,srcport,myaddr,myport (%%SRC %%SRCPORT %%MYADDR %%MYPORT)\n"
	       "  --proxy ADDR:PORT      Squid's http_port, when the format has no myaddr,myport\n"
	       "  --no-concurrency       lines carry no channel id (concurrency=0)\n"
	       "  --timeout MS           answer BH after MS milliseconds (default 500)\n"
	       "  --busy-poll-us N       while answers are due, poll without sleeping for up to\n"
	       "                         N us (0-1000, default 0): saves a wake-up per answer\n"
	       "                         when the daemon runs on another CPU, costs that CPU time\n"
	       "  --allow-exe PATH       only these executables get OK (repeatable)\n"
	       "  --allow-unit NAME      only these systemd units get OK (repeatable)\n"
	       "  --allow-container X    only these container ids (or 12+ hex prefix) or names\n"
	       "  --direct-fallback      daemon down: read the pinned maps (needs read access)\n"
	       "  --socket PATH          connpid-queryd's socket (default %s)\n"
	       "  --pin-dir DIR          pins for --direct-fallback\n",
	       CONNPID_DEFAULT_SOCKET);
}

static int list_add(char *s, void *target)
{
	struct list *l = target;
	char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = s;
	return 0;
}

static bool list_has(const struct list *l, const char *s)
{
	for (size_t i = 0; s && i < l->n; i++)
		if (streq(l->v[i], s))
			return true;
	return false;
}

static bool allow_list_set(void)
{
	return arg_allow_exe.n || arg_allow_unit.n || arg_allow_container.n;
}

/* A container is named by its name, its id, or an id prefix of at least
 * 12 characters (what `docker ps` shows). */
static bool container_allowed(const struct connpid_result *r)
{
	for (size_t i = 0; i < arg_allow_container.n; i++) {
		const char *a = arg_allow_container.v[i];

		if (r->container_name && streq(r->container_name, a))
			return true;
		if (r->container_id && strlen(a) >= 12 && strncmp(r->container_id, a, strlen(a)) == 0)
			return true;
	}
	return false;
}

static bool allowed(const struct connpid_result *r)
{
	return list_has(&arg_allow_exe, r->exe) || list_has(&arg_allow_unit, r->unit) || container_allowed(r);
}

/* Squid decodes a note's value with rfc1738_unescape() after splitting
 * the line on white space (helper/Reply.cc): %XX for every byte that is
 * not plainly safe keeps spaces, quotes, '%' and control bytes intact. */
static void put_value(FILE *f, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    strchr("/._:@+-", *p))
			fputc(*p, f);
		else
			fprintf(f, "%%%02X", *p);
	}
}

static void put_note(FILE *f, const char *key, const char *value)
{
	if (!value || !*value)
		return;
	fprintf(f, " %s=", key);
	put_value(f, value);
}

static void answer_start(FILE *f, const char *channel, const char *word)
{
	if (*channel)
		fprintf(f, "%s ", channel);
	fputs(word, f);
}

static void answer_message(const char *channel, const char *word, const char *message)
{
	answer_start(stdout, channel, word);
	put_note(stdout, "message", message);
	fputc('\n', stdout);
}

static void answer_result(const char *channel, const struct connpid_result *r)
{
	char num[32];

	if (r->error) {
		answer_message(channel, "BH", r->error_code ?: strerror(-r->error));
		return;
	}
	if (!r->found) {
		answer_message(channel, "ERR", "unknown owner");
		return;
	}
	answer_start(stdout, channel, !allow_list_set() || allowed(r) ? "OK" : "ERR");
	snprintf(num, sizeof(num), "%u", r->pid);
	put_note(stdout, "pid", num);
	put_note(stdout, "user", r->user);
	put_note(stdout, "exe", r->exe);
	put_note(stdout, "comm", r->comm);
	put_note(stdout, "unit", r->unit);
	put_note(stdout, "container", r->container_name ?: r->container_id);
	put_note(stdout, "domain", r->domain);
	if (r->direct)
		put_note(stdout, "source", "direct");
	fputc('\n', stdout);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 :
	       c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Squid URL-escapes the format's values (unless quote=shell). */
static void url_unescape(char *s)
{
	char *o = s;

	for (char *p = s; *p; p++) {
		if (p[0] == '%' && hexval(p[1]) >= 0 && hexval(p[2]) >= 0) {
			*o++ = (char)(hexval(p[1]) * 16 + hexval(p[2]));
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

static int remember(uint64_t id, const char *channel, const struct pending *lookup)
{
	if (n_pending == cap_pending) {
		size_t cap = cap_pending ? cap_pending * 2 : 64;
		struct pending *p = realloc(pending, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		pending = p;
		cap_pending = cap;
	}
	pending[n_pending] = *lookup;
	pending[n_pending].id = id;
	snprintf(pending[n_pending].channel, sizeof(pending[n_pending].channel), "%s", channel);
	n_pending++;
	return 0;
}

static bool forget(uint64_t id, struct pending *ret)
{
	for (size_t i = 0; i < n_pending; i++)
		if (pending[i].id == id) {
			*ret = pending[i];
			pending[i] = pending[--n_pending];
			return true;
		}
	return false;
}

/* IPv4, IPv6 or 0 for no IP literal; v4-mapped IPv6 counts as IPv4
 * (connpid folds it, and Squid may print either). */
static int ip_family(const char *s)
{
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	unsigned char a[16];

	if (inet_pton(AF_INET, s, a) == 1)
		return AF_INET;
	if (inet_pton(AF_INET6, s, a) == 1)
		return memcmp(a, mapped, sizeof(mapped)) == 0 ? AF_INET : AF_INET6;
	return 0;
}

static bool same_family(const char *a, const char *b)
{
	int f = ip_family(a);

	return f != 0 && f == ip_family(b);
}

/* What a request line says of the flow to look up. */
struct line_key {
	const char *src, *dst;
	uint16_t sport, dport;
};

/* The channel id, "" without concurrency; NULL (answered BH) when the
 * first word is none: the configuration and we disagree. */
static const char *line_channel(char **tok)
{
	if (!arg_concurrency)
		return "";
	if (strlen(tok[0]) >= 32 || strspn(tok[0], "0123456789") != strlen(tok[0])) {
		answer_message("", "BH", "expected a channel id (concurrency=N)");
		return NULL;
	}
	return tok[0];
}

/* The --format fields, URL-unescaped, into k (which holds --proxy's
 * address and port as defaults). */
static void line_fields(char **tok, struct line_key *k)
{
	const char **addr[] = { [F_SRC] = &k->src, [F_MYADDR] = &k->dst };
	uint16_t *port[] = { [F_SRCPORT] = &k->sport, [F_MYPORT] = &k->dport };

	for (size_t i = 0; i < arg_n_fields; i++) {
		enum field f = arg_fields[i];

		url_unescape(tok[i]);
		if (f < ARRAY_SIZE(addr) && addr[f])
			*addr[f] = tok[i];
		else if (f < ARRAY_SIZE(port) && port[f])
			(void)parse_port_number(tok[i], port[f]);
	}
}

static void submit_lookup(connpid *h, const char *channel, const struct line_key *k)
{
	struct connpid_lookup_options opts = {
		.size = sizeof(opts), .fields = lookup_fields, .n_fields = ARRAY_SIZE(lookup_fields),
	};
	uint64_t id;
	int r;

	/* A %SRC that cannot be the flow's src (no IP, "-", another family
	 * than the proxy address) is left out: the lookup is made as before. */
	opts.src = k->src && same_family(k->src, k->dst) ? k->src : NULL;
	r = connpid_submit(h, IPPROTO_TCP, k->dst, k->sport, k->dport, &opts, &id);
	if (r == -EINVAL) {
		answer_message(channel, "ERR", "not an address");
		return;
	}
	if (r >= 0) {
		struct pending lookup = { .has_src = opts.src, .sport = k->sport, .dport = k->dport };

		snprintf(lookup.dst, sizeof(lookup.dst), "%s", k->dst); /* fits: libconnpid took it */
		r = remember(id, channel, &lookup);
	}
	if (r < 0)
		answer_message(channel, "BH", strerror(-r));
}

/* One request line: submit its lookup, or answer at once when it cannot
 * be one. */
static void handle_line(connpid *h, char *line)
{
	char *tok[MAX_FIELDS + 1], *save = NULL;
	struct line_key k = { .dst = arg_proxy_addr, .dport = arg_proxy_port };
	const char *channel;
	size_t n = 0;

	for (char *t = strtok_r(line, " \t", &save); t && n < ARRAY_SIZE(tok); t = strtok_r(NULL, " \t", &save))
		tok[n++] = t;
	if (n == 0 || !(channel = line_channel(tok)))
		return;
	if (n - arg_concurrency < arg_n_fields) {
		answer_message(channel, "BH", "fewer fields than --format names");
		return;
	}
	line_fields(tok + arg_concurrency, &k);
	if (!k.dst || k.sport == 0 || k.dport == 0) {
		answer_message(channel, "ERR", "no client port or proxy address");
		return;
	}
	submit_lookup(h, channel, &k);
}

/* Errors of reaching the daemon, after which libconnpid's fallback would
 * have read the maps, had the lookup not carried src. */
static bool unreachable(int error)
{
	return error == -ENOENT || error == -ECONNREFUSED || error == -EACCES || error == -EPERM ||
	       error == -EAGAIN || error == -ENOTSOCK;
}

/* --direct-fallback answered lookups from the maps before src was sent;
 * the maps know no source address, so ask them without it, as then. */
static bool retry_direct(connpid *h, const struct connpid_result *r, const struct pending *p)
{
	struct connpid_lookup_options opts = { .size = sizeof(opts), .flags = CONNPID_LOOKUP_DIRECT };
	uint64_t id;

	if (!arg_direct_fallback || !p->has_src || !unreachable(r->error))
		return false;
	if (connpid_submit(h, IPPROTO_TCP, p->dst, p->sport, p->dport, &opts, &id) < 0)
		return false;
	if (remember(id, p->channel, &(struct pending) { .has_src = false }) < 0)
		return false; /* its result is dropped: the request gets BH below */
	return true;
}

static void collect_all(connpid *h)
{
	struct connpid_result *r;

	while (connpid_collect(h, &r) > 0) {
		struct pending p;

		if (forget(r->id, &p) && !retry_direct(h, r, &p))
			answer_result(p.channel, r);
		connpid_result_free(r);
	}
}

/* Whole lines from stdin's buffer; what is left is a partial line. A line
 * longer than any Squid sends is answered BH and dropped. */
static size_t handle_input(connpid *h, char *buf, size_t len, bool *discarding)
{
	size_t start = 0;

	for (;;) {
		char *nl = memchr(buf + start, '\n', len - start);

		if (!nl)
			break;
		*nl = '\0';
		if (nl > buf + start && nl[-1] == '\r')
			nl[-1] = '\0';
		if (!*discarding)
			handle_line(h, buf + start);
		*discarding = false;
		start = (size_t)(nl - buf) + 1;
	}
	if (len - start >= LINE_MAX_BYTES) {
		answer_message("", "BH", "line too long");
		*discarding = true;
		return len;
	}
	return start;
}

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* --busy-poll-us: while the daemon owes answers and nothing is left to
 * send, look at both fds without sleeping, so an answer from a daemon on
 * another CPU finds us running. True when poll() filled in p's revents;
 * else *t is what is left of the timeout, for the poll() that sleeps. */
static bool busy_poll(struct pollfd p[2], int *t)
{
	uint64_t usec = arg_busy_poll_usec, start, now;

	if (usec == 0 || n_pending == 0 || p[1].fd < 0 || (p[1].events & POLLOUT) || *t == 0)
		return false;
	if (*t > 0)
		usec = MIN(usec, (uint64_t)*t * 1000u);
	start = now = now_usec();
	do {
		int n = poll(p, 2, 0);

		if (n > 0)
			return true;
		if (n < 0 && errno != EINTR)
			break; /* the poll() that sleeps says it */
		(void)sched_yield(); /* a daemon on this CPU runs at once */
		now = now_usec();
	} while (now - start < usec);
	if (*t > 0)
		*t -= (int)MIN((now - start) / 1000u, (uint64_t)*t);
	return false;
}

static int run(connpid *h)
{
	static char buf[LINE_MAX_BYTES + 1];
	size_t len = 0;
	bool eof = false, discarding = false;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = eof ? -1 : STDIN_FILENO, .events = POLLIN },
			{ .fd = connpid_get_fd(h), .events = connpid_get_events(h) },
		};
		int t = connpid_get_timeout_ms(h);

		if (eof && n_pending == 0)
			return 0;
		fflush(stdout);
		if (!busy_poll(p, &t) && poll(p, 2, t) < 0 && errno != EINTR)
			return -errno;
		if (p[0].revents) {
			ssize_t n = read(STDIN_FILENO, buf + len, LINE_MAX_BYTES - len);

			if (n <= 0 && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
				eof = true;  /* Squid is done with us: finish what is pending */
			} else if (n > 0) {
				size_t used = handle_input(h, buf, len + (size_t)n, &discarding);

				len = len + (size_t)n - used;
				memmove(buf, buf + used, len);
			}
		}
		(void)connpid_process(h);
		collect_all(h);
	}
}

static int parse_format(char *s, void *target)
{
	_cleanup_free_ char *copy = strdup(s);
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	arg_n_fields = 0;
	for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		static const struct { const char *name; enum field f; } names[] = {
			{ "src", F_SRC }, { "srcport", F_SRCPORT }, { "myaddr", F_MYADDR },
			{ "myport", F_MYPORT }, { "-", F_IGNORE }, { "dst", F_IGNORE }, { "port", F_IGNORE },
		};
		size_t i;

		for (i = 0; i < ARRAY_SIZE(names) && !streq(names[i].name, t); i++)
			;
		if (i == ARRAY_SIZE(names) || arg_n_fields == MAX_FIELDS)
			return -EINVAL;
		arg_fields[arg_n_fields++] = names[i].f;
	}
	return arg_n_fields > 0 ? 0 : -EINVAL;
}

/* ADDR:PORT or [IPV6]:PORT */
static int parse_proxy(char *s, void *target)
{
	char *colon = strrchr(s, ':');

	if (!colon)
		return -EINVAL;
	*colon = '\0';
	if (s[0] == '[' && colon > s && colon[-1] == ']') {
		colon[-1] = '\0';
		s++;
	}
	arg_proxy_addr = s;
	return parse_port_number(colon + 1, &arg_proxy_port);
}

static int parse_timeout(char *s, void *target)
{
	unsigned long long ms;
	int r;

	r = parse_unsigned(s, NULL, 1, 60000, &ms);
	if (r < 0)
		return r;
	arg_timeout_usec = ms * 1000;
	return 0;
}

static int parse_busy_poll(char *s, void *target)
{
	unsigned long long usec;
	int r;

	r = parse_unsigned(s, NULL, 0, BUSY_POLL_MAX_USEC, &usec);
	if (r < 0)
		return r;
	arg_busy_poll_usec = usec;
	return 0;
}

static int set_string(char *s, void *target)
{
	*(const char **)target = s;
	return 0;
}

static int set_true(char *s, void *target)
{
	*(bool *)target = true;
	return 0;
}

static int set_false(char *s, void *target)
{
	*(bool *)target = false;
	return 0;
}

static int show_help(char *s, void *target)
{
	help();
	return 1;
}

static int show_version(char *s, void *target)
{
	printf("connpid-squid-helper %s\n", CONNPID_VERSION);
	return 1;
}

/* Each option, with what takes its value (1 from it: done); getopt's val is the index. */
static const struct helper_option {
	const char *name;
	int has_arg;
	int (*parse)(char *value, void *target);
	void *target;
	const char *range;  /* said when a value is refused */
} helper_options[] = {
	{ "format", required_argument, parse_format, NULL, NULL },
	{ "proxy", required_argument, parse_proxy, NULL, NULL },
	{ "no-concurrency", no_argument, set_false, &arg_concurrency, NULL },
	{ "timeout", required_argument, parse_timeout, NULL, "1-60000 milliseconds" },
	{ "busy-poll-us", required_argument, parse_busy_poll, NULL, "0-1000 microseconds" },
	{ "allow-exe", required_argument, list_add, &arg_allow_exe, NULL },
	{ "allow-unit", required_argument, list_add, &arg_allow_unit, NULL },
	{ "allow-container", required_argument, list_add, &arg_allow_container, NULL },
	{ "direct-fallback", no_argument, set_true, &arg_direct_fallback, NULL },
	{ "socket", required_argument, set_string, &arg_socket_path, NULL },
	{ "pin-dir", required_argument, set_string, &arg_pin_dir, NULL },
	{ "version", no_argument, show_version, NULL, NULL },
	{ "help", no_argument, show_help, NULL, NULL },
};
#define OPTION_VAL 0x100 /* + the index in helper_options */

static bool format_has(enum field f)
{
	for (size_t i = 0; i < arg_n_fields; i++)
		if (arg_fields[i] == f)
			return true;
	return false;
}

/* What is wrong once all options are read; logged. */
static int check_argv(int argc, char **argv)
{
	if ((!format_has(F_MYADDR) || !format_has(F_MYPORT)) && !arg_proxy_addr) {
		fprintf(stderr, "connpid-squid-helper: --format without myaddr,myport needs --proxy ADDR:PORT\n");
		return -EINVAL;
	}
	if (optind < argc) {
		fprintf(stderr, "connpid-squid-helper: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/* 0: taken; 1: done (--help, --version); < 0: bad, logged. */
static int parse_option(int c, char *arg)
{
	const struct helper_option *o;
	int r;

	if (c == 'h')
		return show_help(NULL, NULL);
	if (c < OPTION_VAL || c >= OPTION_VAL + (int)ARRAY_SIZE(helper_options))
		return -ENOENT;
	o = &helper_options[c - OPTION_VAL];
	r = o->parse(arg, o->target);
	if (r < 0 && o->range)
		fprintf(stderr, "connpid-squid-helper: invalid --%s '%s' (%s)\n", o->name, arg, o->range);
	else if (r < 0)
		fprintf(stderr, "connpid-squid-helper: invalid --%s '%s'\n", o->name, arg);
	return r;
}

/* 1: run; 0: done (--help, --version); < 0: bad arguments, logged. */
static int parse_argv(int argc, char **argv)
{
	struct option options[ARRAY_SIZE(helper_options) + 1] = {};
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(helper_options); i++)
		options[i] = (struct option) { helper_options[i].name, helper_options[i].has_arg, NULL,
					       OPTION_VAL + (int)i };
	r = parse_options(argc, argv, "h", options, parse_option);
	if (r <= 0)
		return r;
	r = check_argv(argc, argv);
	return r < 0 ? r : 1;
}

int main(int argc, char **argv)
{
	connpid *h = NULL;
	int r;

	r = parse_argv(argc, argv);
	if (r <= 0)
		return r < 0 ? 2 : 0;
	r = connpid_open(&h, arg_socket_path, arg_direct_fallback ? CONNPID_OPEN_DIRECT_FALLBACK : 0);
	if (r >= 0)
		r = connpid_set_timeout(h, arg_timeout_usec);
	if (r >= 0 && arg_pin_dir)
		r = connpid_set_pin_dir(h, arg_pin_dir);
	if (r < 0) {
		fprintf(stderr, "connpid-squid-helper: %s\n", strerror(-r));
		return 2;
	}
	r = run(h);
	fflush(stdout);
	connpid_close(h);
	free(pending);
	free(arg_allow_exe.v);
	free(arg_allow_unit.v);
	free(arg_allow_container.v);
	return r < 0 ? 1 : 0;
}

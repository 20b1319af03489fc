// SPDX-License-Identifier: GPL-2.0-or-later
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup2.h"
#include "flowkey.h"
#include "fuzz-check.h"
#include "fuzz-queryd-ctx.h"
#include "log.h"
#include "procinfo.h"
#include "store.h"

/* One made-up flow: what the kernel would have said, and the map state. */
struct seed_flow {
	const char *proto, *dst, *src;
	__u16 sport, dport;
	const char *comm;           /* raw bytes: hostile on purpose */
	bool self;                  /* owned by this process (alive, enriched) */
	__u32 pid;                  /* when not self */
	int in_map;                 /* 0 no, 1 same owner, 2 another owner */
	bool owner_changed, creator, own_cgroup;
	const char *domain, *chain; /* DNS answer seen for it (raw label bytes), CNAME first */
	const char *ancestor;
	bool inbound;               /* accepted: creator_* is the listener */
	__u64 netns;                /* 0: the host's */
};

static const struct seed_flow seeds[] = {
	{ "tcp", "93.184.216.34", "10.0.0.2", 40000, 443, "curl", true, 0, 1, false, true, true,
	  "example.com", "www.example.com", "bash" },
	{ "udp", "2001:db8::53", "2001:db8::2", 5353, 53, "\xff\xfe\x01odd\x80name", false, 4000001, 0,
	  true, true, false, "\xc3\x28.bad\xe2\x82", "\xed\xa0\x80.x", "\x7f\x1b[31m" },
	{ "tcp", "192.0.2.7", "10.0.0.2", 51000, 80, "wget\xc3", true, 0, 2, false, false, true,
	  NULL, NULL, "sshd" },
	{ "udp", "198.51.100.9", "10.0.0.2", 33333, 123, "ntpd \"q\" \\", false, 7, 1, false, false, false,
	  "\xf4\x90\x80\x80time", NULL, "\xe6\x97\xa5\xe6\x9c\xac" },
	{ "tcp", "::ffff:203.0.113.1", "10.0.0.2", 1024, 65535, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81",
	  false, 123456, 0, false, true, true, "\xe6\x97\xa5.jp", NULL, NULL },
	{ "tcp", "2001:db8::80", "fe80::1", 65535, 1, "", true, 0, 1, true, false, true, NULL, NULL, "" },
	/* issue 14: the first key again from another namespace (a candidate),
	 * and an accepted connection with its listener */
	{ .proto = "tcp", .dst = "93.184.216.34", .src = "10.0.0.2", .sport = 40000, .dport = 443,
	  .comm = "curl-ns2", .pid = 4000002, .creator = true, .netns = 4026532999ULL },
	{ .proto = "tcp", .dst = "198.51.100.20", .src = "10.0.0.2", .sport = 8080, .dport = 52000,
	  .comm = "nginx\xc3", .self = true, .creator = true, .inbound = true, .ancestor = "systemd" },
};

static __u64 own_cgroup_id(void)
{
	char mount[512], line[1024], path[2048];
	struct stat st;
	FILE *f;
	__u64 id = 0;

	if (cgroup2_find_mount(mount, sizeof(mount)) < 0)
		return 0;
	f = fopen("/proc/self/cgroup", "re");
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "0::", 3) == 0) {
			line[strcspn(line, "\n")] = '\0';
			snprintf(path, sizeof(path), "%s%s", mount, line + 3);
			if (stat(path, &st) == 0)
				id = st.st_ino;
		}
	fclose(f);
	return id;
}

static void copy_comm(char dst[CONNPID_COMM_LEN], const char *s)
{
	/* the kernel's comm is 16 bytes, not always NUL-terminated here */
	memset(dst, 0, CONNPID_COMM_LEN);
	memcpy(dst, s, strnlen(s, CONNPID_COMM_LEN));
}

/* A DNS name in wire form; labels are raw bytes, as on the wire. */
static size_t put_name(uint8_t *p, const char *name)
{
	size_t o = 0;

	while (*name) {
		size_t n = strcspn(name, ".");

		p[o++] = (uint8_t)n;
		memcpy(p + o, name, n);
		o += n;
		name += n + (name[n] == '.');
	}
	p[o++] = 0;
	return o;
}

static size_t put_rr(uint8_t *p, const char *owner, uint16_t type, const void *rdata, size_t rdlen)
{
	size_t o = put_name(p, owner);

	p[o++] = (uint8_t)(type >> 8), p[o++] = (uint8_t)type;
	p[o++] = 0, p[o++] = 1;                               /* IN */
	p[o++] = 0, p[o++] = 0, p[o++] = 0x0e, p[o++] = 0x10; /* TTL 3600 */
	p[o++] = (uint8_t)(rdlen >> 8), p[o++] = (uint8_t)rdlen;
	memcpy(p + o, rdata, rdlen);
	return o + rdlen;
}

/* What the kernel would hand over for a response naming e's destination:
 * a packet event (with a CNAME when given); getaddrinfo's event when the
 * name has no chain and the flow is IPv4, so both ingest paths are used. */
static void dns_answer(struct manager *m, const struct connpid_event *e, const char *name, const char *cname)
{
	static struct connpid_dns_event d;
	const char *qname = cname ? cname : name;
	uint8_t *p = d.payload, target[300];
	uint16_t type = e->family == AF_INET ? 1 : 28;
	size_t o = 12;

	memset(&d, 0, sizeof(d));
	d.ts_ns = 1;
	d.pid = e->pid;
	d.start_boottime_ns = e->start_boottime_ns;
	d.family = e->family;
	d.server_port = 53;
	memcpy(d.comm, e->comm, sizeof(d.comm));
	if (!cname && e->family == AF_INET) {
		d.source = CONNPID_DNS_SRC_GETADDRINFO;
		snprintf(d.gai.name, sizeof(d.gai.name), "%s", name);
		d.gai.n_addrs = 1;
		d.gai.addrs[0].family = AF_INET;
		d.gai.addrs[0].addr[0] = e->dst_ip[0];
		(void)dns_ingest_event(m, &d, sizeof(d));
		return;
	}
	d.source = CONNPID_DNS_SRC_PACKET;
	p[0] = 0x12, p[1] = 0x34, p[2] = 0x81, p[3] = 0x80; /* id, QR RD RA */
	p[5] = 1;                                           /* one question */
	p[7] = cname ? 2 : 1;                               /* answers */
	o += put_name(p + o, qname);
	p[o++] = 0, p[o++] = (uint8_t)type, p[o++] = 0, p[o++] = 1;
	if (cname)
		o += put_rr(p + o, cname, 5, target, put_name(target, name));
	o += put_rr(p + o, name, type, e->dst_ip, e->family == AF_INET ? 4 : 16);
	d.payload_len = d.msg_len = (__u32)o;
	(void)dns_ingest_event(m, &d, sizeof(d));
}

static void make_maps(struct fuzz_queryd *q)
{
	struct manager *m = q->m;
	LIBBPF_OPTS(bpf_map_create_opts, o);

	m->pins.maps.v4_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "fz_v4", sizeof(struct conn_key_v4), sizeof(__u32),
				       1024, &o);
	m->pins.maps.v6_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "fz_v6", sizeof(struct conn_key_v6), sizeof(__u32),
				       1024, &o);
	m->pins.maps.stats_fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "fz_stats", sizeof(__u32), sizeof(__u64),
					  CONNPID_STAT_MAX, &o);
	if (m->pins.maps.v4_fd < 0 || m->pins.maps.v6_fd < 0 || m->pins.maps.stats_fd < 0) {
		fprintf(stderr, "fuzz: cannot create BPF maps (%s): lookup answers only \"unavailable\" "
			"or from history\n", strerror(errno));
		connpid_maps_close(&m->pins.maps);
		connpid_maps_init(&m->pins.maps);
		snprintf(m->pins.problem, sizeof(m->pins.problem), "fuzz: no BPF maps");
		return;
	}
	m->pins.maps.v4_max_entries = m->pins.maps.v6_max_entries = 1024;
	m->pins.maps.meta.flags = CONNPID_META_F_INBOUND; /* as with connpid-loader --inbound */
	m->pins.open = true;
	q->have_maps = true;
}

static void add_seed(struct fuzz_queryd *q, const struct seed_flow *s, __u64 cgroup_id, __u64 self_start_ns)
{
	struct manager *m = q->m;
	struct connpid_event e = {};
	struct flow_query fq;
	char sport[8], dport[8];
	int fam;
	struct flow *f;

	snprintf(sport, sizeof(sport), "%u", s->sport);
	snprintf(dport, sizeof(dport), "%u", s->dport);
	if (flow_query_parse(s->dst, sport, dport, s->proto, &fq) < 0)
		abort();
	e.ts_ns = 1;
	e.cgroup_id = s->own_cgroup ? cgroup_id : 0x100000000ULL + s->sport;
	e.socket_cookie = 0x1000 + s->sport + (s->netns ? 0x100000 : 0); /* one socket, one cookie */
	e.pid = e.tid = s->self ? (__u32)getpid() : s->pid;
	e.start_boottime_ns = s->self ? self_start_ns : 1000000000ULL * s->sport;
	e.netns_ino = s->netns ? s->netns : 4026531840U;
	e.uid = s->self ? getuid() : 65534;
	e.gid = 65534;
	if (parse_ip(s->src, &fam, e.src_ip) < 0)
		abort();
	memcpy(e.dst_ip, fq.dst_ip, sizeof(e.dst_ip));
	e.src_port = s->sport;
	e.dst_port = s->dport;
	e.family = (__u8)fq.family;
	e.protocol = fq.protocol;
	e.source = s->inbound ? CONNPID_SRC_ACCEPT : s->in_map ? CONNPID_SRC_SOCKOPS_CONNECT : CONNPID_SRC_SEEDED;
	e.flags = (s->owner_changed ? CONNPID_EVENT_FLAG_OWNER_CHANGED : 0) |
		  (s->inbound ? CONNPID_EVENT_FLAG_INBOUND : 0);
	e.prev_pid = s->owner_changed ? 1 : 0;
	copy_comm(e.comm, s->comm);
	if (s->creator) {
		e.creator_pid = e.pid + 1;
		e.creator_start_boottime_ns = e.start_boottime_ns;
		copy_comm(e.creator_comm, s->comm);
	}
	if (s->ancestor) {
		e.ancestor_pid[0] = 1;
		copy_comm(e.ancestor_comm[0], s->ancestor);
		e.ancestor_pid[1] = 2;
		memset(e.ancestor_comm[1], 0xff, CONNPID_COMM_LEN); /* no NUL at all */
	}
	if (s->domain)
		dns_answer(m, &e, s->domain, s->chain);
	/* the name is found when a flow is written (w_domain asks the cache) */
	f = flow_index_add(m->flows, &e, now_realtime() - 2);
	if (!f)
		abort();
	store_io_flow(m, f);
	if (s->in_map && q->have_maps) {
		__u32 owner = s->in_map == 1 ? e.pid : (__u32)getppid();
		struct conn_key_v4 k4;
		struct conn_key_v6 k6;
		int r;

		if (fq.family == AF_INET) {
			flow_query_key_v4(&fq, &k4);
			r = bpf_map_update_elem(m->pins.maps.v4_fd, &k4, &owner, BPF_ANY);
		} else {
			flow_query_key_v6(&fq, &k6);
			r = bpf_map_update_elem(m->pins.maps.v6_fd, &k6, &owner, BPF_ANY);
		}
		if (r < 0)
			abort();
	}
}

static struct fuzz_queryd *build(void)
{
	static struct fuzz_queryd q;
	struct manager_config cfg = {
		.pin_dir = "/nonexistent/connpid-fuzz-pins",
		.socket_path = "/nonexistent/connpid-fuzz.sock",
		.max_flows = 64,
		.max_clients = 16,
		.allow_group = "connpid",
		.db_path = ":memory:",
		.retain_days = 7,
		.retain_rows = 1000,
	};
	__u64 ticks = 0, cgid;
	long hz = sysconf(_SC_CLK_TCK);

	log_set_max_level(LOG_LVL_ERR);
	if (manager_new(&cfg, &q.m) < 0 || store_io_start(q.m) < 0 || !q.m->store ||
	    !store_is_open(q.m->store)) {
		fprintf(stderr, "fuzz: cannot build the queryd context: %s\n",
			q.m ? q.m->store_problem : "manager_new() failed");
		abort();
	}
	(void)sd_event_now(q.m->event, CLOCK_MONOTONIC, &q.m->started_mono_us);
	snprintf(q.m->boot_id, sizeof(q.m->boot_id), "00000000-fuzz-0000-0000-000000000000");
	make_maps(&q);
	if (procinfo_start_ticks(getpid(), &ticks) < 0)
		abort();
	cgid = own_cgroup_id();
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		add_seed(&q, &seeds[i], cgid, ticks * (1000000000ULL / (unsigned long long)(hz > 0 ? hz : 100)));
	while (store_queue_len(q.m->store) > 0)
		if (store_flush(q.m->store, 1000) <= 0)
			abort();
	q.client.m = q.m;
	q.client.fd = -EBADF;
	q.client.pid = getpid();
	return &q;
}

struct fuzz_queryd *fuzz_queryd_get(void)
{
	static struct fuzz_queryd *q;

	if (!q)
		q = build();
	return q;
}

/* Each answer line: valid JSON, an object with a boolean "ok". */
static size_t check_answers(const char *out, size_t len)
{
	size_t n = 0, start = 0;

	if (len > 0 && out[len - 1] != '\n')
		fuzz_fail("answer does not end with a newline", len, out, len);
	while (start < len) {
		const char *nl = memchr(out + start, '\n', len - start);
		size_t l = (size_t)(nl - (out + start));
		json_object *o = fuzz_check_json(out + start, l), *ok;

		if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "ok", &ok) ||
		    !json_object_is_type(ok, json_type_boolean))
			fuzz_fail("answer is not an object with a boolean \"ok\"", 0, out + start, l);
		json_object_put(o);
		start += l + 1;
		n++;
	}
	return n;
}

/* History questions are answered later, from the store's reader thread
 * through the loop, to a client found in m->server.clients. This harness calls
 * protocol_handle_line() directly and cannot follow that yet: the answer
 * is let go (dropped on completion, our client is not listed) and not
 * checked. TODO: drive a real socket through server_listen() instead. */
static int undefer(struct client *c)
{
	if (!c->deferred)
		return 0;
	c->deferred = false;
	json_object_put(c->deferred_id);
	c->deferred_id = NULL;
	(void)sd_event_run(c->m->event, 0);
	return 1;
}

size_t fuzz_queryd_feed(struct fuzz_queryd *q, const char *text, size_t len)
{
	struct client *c = &q->client;
	size_t start = 0, lines = 0, requests = 0, answers;
	char *copy;

	c->may_query = !(len > 0 && text[0] == ' ');
	c->uid = c->may_query ? 0 : 65534;
	/* server.c hands over complete lines without the '\n', NUL-terminated
	 * in place; the last, unterminated piece would wait for more input. */
	while (start < len) {
		const char *nl = memchr(text + start, '\n', len - start);
		size_t l;

		if (!nl)
			break;
		l = (size_t)(nl - (text + start));
		copy = fuzz_strndup((const uint8_t *)text + start, l);
		requests += l > 1 || (l == 1 && copy[0] != '\r');
		protocol_handle_line(q->m, c, copy, l);
		requests -= undefer(c);
		free(copy);
		start += l + 1;
		lines++;
		if (c->dead || c->close_after_flush)
			break;
	}
	/* A fuzz input without a newline is one line: most inputs are. */
	if (lines == 0 && len > 0 && len < CLIENT_MAX_LINE) {
		copy = fuzz_strndup((const uint8_t *)text, len);
		requests += len > 1 || copy[0] != '\r';
		protocol_handle_line(q->m, c, copy, len);
		requests -= undefer(c);
		free(copy);
	}
	if (getenv("CONNPID_FUZZ_PRINT") && c->out) /* to see what the context answers */
		fprintf(stderr, "%.*s", (int)(c->out_len - c->out_off), c->out + c->out_off);
	answers = c->out ? check_answers(c->out + c->out_off, c->out_len - c->out_off) : 0;
	/* "Every request gets exactly one answer line" (man/connpid.7). */
	if (!c->dead && answers != requests) {
		fprintf(stderr, "%zu request line(s), %zu answer(s)\n", requests, answers);
		fuzz_fail("not one answer per request", 0, text, len);
	}
	c->out_len = c->out_off = 0;
	if (c->watching)
		q->m->server.n_watchers--;
	c->watching = false;
	c->dead = false;
	c->close_after_flush = false;
	return answers;
}

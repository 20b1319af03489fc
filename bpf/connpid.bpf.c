// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The tracker: writes `flow -> pid` into the LRU maps on the path of the
 * syscall that creates the flow, so the map is already right when the
 * first packet reaches a proxy, and emits one ring-buffer event per new
 * flow (or new owner of a known key) for queryd to enrich.
 *
 *   TCP            sockops BPF_SOCK_OPS_TCP_CONNECT_CB (source port known)
 *   UDP unconnected  cgroup/sendmsg4|6 (source port autobound by then)
 *   UDP connected    tp_btf/sock_send_length: connect()ed sockets never
 *                    reach the sendmsg hooks, and cgroup/connect4|6 runs
 *                    before the source port exists. The tracepoint fires
 *                    at the end of each send call, in the sender's
 *                    context, once per call (not per packet, not on TCP's
 *                    packets): current is the owner.
 *
 * Inbound (loader --inbound only; nothing of it runs otherwise):
 *   TCP accepted     sockops BPF_SOCK_OPS_TCP_LISTEN_CB records who called
 *                    listen(); tracepoints syscalls/sys_exit_accept[4] read
 *                    the new fd's socket in the acceptor's context and emit
 *                    an inbound event. No seed map entry: the maps stay the
 *                    outbound contract. io_uring accepts are not seen.
 *                    The seeding walk records listeners older than the load.
 *
 * Around them: cgroup/sock_create remembers who created each socket (a
 * fork()ed child or an SCM_RIGHTS receiver may connect it), tp_btf on
 * sched_process_exec remembers each process's executable (queryd may read
 * /proc only after a short-lived process is gone), and an iter/task_file
 * program, run once by the loader, seeds flows older than connpid.
 */
/* vmlinux.h has a type named `config`; the map of that name is contract. */
#define config vmlinux_config
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "maps.bpf.h"
#include "flowmaps.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define UDP_CONNECTED_STATE 1 /* TCP_ESTABLISHED, what connect() sets */


struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CONNPID_RINGBUF_BYTES);
} events SEC(".maps");

/* Who created a socket: written at socket(), read when its flow's event
 * is made. A direct-mapped table: slot = cookie modulo its size, the
 * cookie's low half kept as a tag. Cookies are handed out in increasing
 * order, so a slot is reused only after CREATOR_SLOTS newer sockets: the
 * same "a socket that lives long without connecting loses its entry" as
 * an LRU of that size, but once every slot exists socket() costs one
 * lookup and an in-place store (~0.1 us) instead of an LRU insert and an
 * eviction (0.55-0.8 us): consecutive sockets share a page and a cache
 * line here, where a hash touches a random bucket (0.12 vs 0.5-0.8 us,
 * tests/bench/RESULTS.md). */
#define CREATOR_SLOTS 65536
#define compiler_barrier() asm volatile("" ::: "memory")
struct sock_creator {
	__u32 pid;
	__u32 cookie_tag; /* low 32 bits of the cookie; 0 while being written */
	__u64 start_boottime_ns;
	char comm[CONNPID_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, CREATOR_SLOTS);
	__type(key, __u32);
	__type(value, struct sock_creator);
} sock_creators SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct connpid_exec_info);
} exec_info SEC(".maps");


/* Who called listen() on a TCP socket, for the inbound events of the
 * connections accepted from it. Keyed by the listening socket's network
 * namespace (its cookie: both hooks read the socket's own namespace, not
 * the task's), local port and family as the socket has it (a dual-stack
 * [::] listener stays AF_INET6, as do the v4 children it accepts) and the
 * bound address (0 for a wildcard listener): an accept looks up its local
 * address first, then the wildcard, so a listener on 127.0.0.1:P can never
 * be named for a service's connections on 10.0.0.1:P. Two listeners on
 * the very same address and port (SO_REUSEPORT) share an entry: the last
 * listen() wins. LRU: a listener idle past LISTENER_SLOTS newer ones loses
 * its entry and its accepts carry no listener (creator_* 0). */
#define LISTENER_SLOTS 4096
struct listener_key {
	__u64 netns_cookie;
	__u32 addr[4];       /* bound address, network order, v4 in [0]; 0: any */
	__u16 port;          /* host order */
	__u16 family;
	__u32 pad;
};

struct listener_owner {
	__u32 pid;
	__u32 pad;
	__u64 start_boottime_ns;
	char comm[CONNPID_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LISTENER_SLOTS);
	__type(key, struct listener_key);
	__type(value, struct listener_owner);
} listen_owners SEC(".maps");

/* The scope's cgroup id, for sockets and tasks other than current. Its
 * depth the programs read from the kernel (kernel_scope_level). */
const volatile __u64 scope_cgroup_id = 0;

/* Cleared by the loader with --no-creator (cgroup/sock_create not loaded). */
const volatile bool track_creators = true;

/* Set by the loader with --inbound (the accept programs are loaded then). */
const volatile bool track_inbound = false;

/* Wake the consumer only once this much is waiting; queryd also polls on
 * a short timer. A wakeup per event costs ~10 us here (DESIGN.md). */
const volatile __u64 wakeup_bytes = CONNPID_RINGBUF_BYTES / 16;

#define WAKEUP_CHECK_EVERY 16

/* A flow as seen by one hook, before it is keyed. */
struct flow {
	__u32 src_ip[4];
	__u32 dst_ip[4];
	__u16 src_port;
	__u16 dst_port;
	__u8 family; /* AF_INET6 here may still turn out v4-mapped */
	__u8 protocol;
	__u8 source;
	__u64 cookie;
	struct task_struct *task;   /* set when not current: seeding */
};

/* All reads below go through BTF pointers (bpf_get_current_task_btf(),
 * the iterator's task): direct loads the verifier guards, not a helper
 * call per field. That halved the cost of a new flow's event. */
static __always_inline void copy_comm(char dst[CONNPID_COMM_LEN], const struct task_struct *t)
{
	const __u64 *src = (const __u64 *)t->comm;

	((__u64 *)dst)[0] = src[0];
	((__u64 *)dst)[1] = src[1];
	dst[CONNPID_COMM_LEN - 1] = '\0';
}

static __always_inline void fill_ancestors(struct connpid_event *e, struct task_struct *task)
{
	struct task_struct *p = task->group_leader->real_parent;

	for (int i = 0; i < CONNPID_ANCESTORS; i++) {
		__u32 pid;

		if (!p)
			break;
		pid = p->tgid;
		if (!pid)
			break;
		e->ancestor_pid[i] = pid;
		copy_comm(e->ancestor_comm[i], p);
		if (pid == 1)
			break;
		p = p->group_leader->real_parent;
	}
}

static __always_inline void fill_identity(struct connpid_event *e)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->start_boottime_ns = task->group_leader->start_boottime;
	e->netns_ino = task->nsproxy->net_ns->ns.inum;
	copy_comm(e->comm, task);
	fill_ancestors(e, task);
}

/* The same from a task that is not current (the seeding iterator). */
static __always_inline void fill_identity_task(struct connpid_event *e, struct task_struct *task)
{
	e->pid = task->tgid;
	e->tid = task->pid;
	e->uid = task->cred->uid.val;
	e->gid = task->cred->gid.val;
	e->cgroup_id = task->cgroups->dfl_cgrp->kn->id;
	e->start_boottime_ns = task->group_leader->start_boottime;
	e->netns_ino = task->nsproxy->net_ns->ns.inum;
	copy_comm(e->comm, task);
	fill_ancestors(e, task);
}

static __always_inline void fill_creator(struct connpid_event *e, __u64 cookie)
{
	__u32 slot = cookie & (CREATOR_SLOTS - 1);
	const struct sock_creator *c = bpf_map_lookup_elem(&sock_creators, &slot);
	__u32 tag = (__u32)cookie ?: 1;

	if (!c || c->cookie_tag != tag)
		return;
	compiler_barrier();
	e->creator_pid = c->pid;
	e->creator_start_boottime_ns = c->start_boottime_ns;
	__builtin_memcpy(e->creator_comm, c->comm, sizeof(e->creator_comm));
	compiler_barrier();
	/* A newer socket took the slot while we copied: unknown, not mixed. */
	if (c->cookie_tag != tag) {
		e->creator_pid = 0;
		e->creator_start_boottime_ns = 0;
		__builtin_memset(e->creator_comm, 0, sizeof(e->creator_comm));
	}
}

/* An accepted connection's listener stands where an outbound event has
 * the socket's creator (the field meaning is set by the INBOUND flag). */
static __always_inline void fill_listener(struct connpid_event *e, const struct listener_owner *o)
{
	if (!o)
		return;
	e->creator_pid = o->pid;
	e->creator_start_boottime_ns = o->start_boottime_ns;
	__builtin_memcpy(e->creator_comm, o->comm, sizeof(e->creator_comm));
}

/* inbound is a constant at every call site: outbound hooks compile to
 * the same code as before it existed. */
static __always_inline void emit_event(const struct flow *f, __u32 pid, __u32 prev_pid,
				       bool inbound, const struct listener_owner *listener)
{
	struct connpid_event *e;
	__u64 flags = BPF_RB_NO_WAKEUP;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CONNPID_STAT_RINGBUF_DROPS);
		return;
	}
	/* Ring memory is reused: fields a hook leaves unset (no creator,
	 * fewer ancestors) must read as zero, not as an older event's. */
	__builtin_memset(e, 0, sizeof(*e));
	struct task_struct *task = f->task;

	if (task)
		fill_identity_task(e, task);
	else
		fill_identity(e);
	/* only for events: a repeat packet never pays for this lookup */
	if (inbound)
		fill_listener(e, listener);
	else if (track_creators)
		fill_creator(e, f->cookie);
	e->ts_ns = bpf_ktime_get_ns();
	e->socket_cookie = f->cookie;
	__builtin_memcpy(e->src_ip, f->src_ip, sizeof(e->src_ip));
	__builtin_memcpy(e->dst_ip, f->dst_ip, sizeof(e->dst_ip));
	e->src_port = f->src_port;
	e->dst_port = f->dst_port;
	e->family = f->family;
	e->protocol = f->protocol;
	e->source = f->source;
	e->flags = prev_pid ? CONNPID_EVENT_FLAG_OWNER_CHANGED : 0;
	if (inbound)
		e->flags |= CONNPID_EVENT_FLAG_INBOUND;
	e->prev_pid = prev_pid;
	e->pid = pid;

	/* Asking the ring how full it is reads the position the consumer
	 * writes: a cache miss while queryd drains, 0.2-0.3 us (RESULTS.md).
	 * Ask every WAKEUP_CHECK_EVERY-th event of a CPU only, when that many
	 * events are at most half the threshold (1/16 of the ring): a wakeup
	 * then comes at most that late. A small ring is asked every time. */
	__u64 check_mask = wakeup_bytes >= 2 * WAKEUP_CHECK_EVERY * sizeof(*e) ? WAKEUP_CHECK_EVERY - 1 : 0;

	if ((stat_inc_ret(CONNPID_STAT_EVENTS) & check_mask) == 0 &&
	    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

static __always_inline void emit(const struct flow *f, __u32 pid, __u32 prev_pid)
{
	emit_event(f, pid, prev_pid, false, NULL);
}

/* Insert or refresh one key. `dedup` is for packet hooks: a key already
 * owned by this pid is a repeat and costs one lookup, no event. */
static __always_inline void record(void *map, const void *key, struct flow *f,
				   bool dedup, __u32 flow_stat)
{
	struct task_struct *task = f->task;
	__u32 pid = task ? task->tgid : bpf_get_current_pid_tgid() >> 32;
	__u32 prev = 0, *cur;

	cur = bpf_map_lookup_elem(map, key);
	/* Seeding never overrides what the live hooks recorded. */
	if (cur && f->source == CONNPID_SRC_SEEDED)
		return;
	if (cur) {
		if (*cur == pid && dedup) {
			stat_inc(CONNPID_STAT_REPEATS);
			return;
		}
		if (*cur != pid)
			prev = *cur;
	}
	if (!cur || *cur != pid) {
		if (bpf_map_update_elem(map, key, &pid, BPF_ANY)) {
			stat_inc(CONNPID_STAT_MAP_UPDATE_ERRORS);
			return;
		}
	}
	stat_inc(flow_stat);
	emit(f, pid, prev);
}

/* A dual-stack socket talking to an IPv4 peer is an IPv4 flow. */
static __always_inline void fold_v4mapped(struct flow *f)
{
	if (f->family == AF_INET6 && ip6_is_v4mapped(f->dst_ip)) {
		f->family = AF_INET;
		f->dst_ip[0] = f->dst_ip[3];
		f->src_ip[0] = ip6_is_v4mapped(f->src_ip) ? f->src_ip[3] : 0;
		f->dst_ip[1] = f->dst_ip[2] = f->dst_ip[3] = 0;
		f->src_ip[1] = f->src_ip[2] = f->src_ip[3] = 0;
	}
}

/* The map keys of a flow (byte-exact with the seed's, connpid.h). */
static __always_inline void key_v4(const struct flow *f, struct conn_key_v4 *k)
{
	k->dst_ip = f->dst_ip[0];
	k->src_port = f->src_port;
	k->dst_port = f->dst_port;
	k->protocol = f->protocol;
}

static __always_inline void key_v6(const struct flow *f, struct conn_key_v6 *k)
{
	__builtin_memcpy(k->dst_ip, f->dst_ip, sizeof(k->dst_ip));
	k->src_port = f->src_port;
	k->dst_port = f->dst_port;
	k->protocol = f->protocol;
}

/* Key the flow: v4 and v4-mapped v6 go to the v4 map with the v4 address. */
static __always_inline void track(struct flow *f, bool dedup)
{
	fold_v4mapped(f);

	if (f->family == AF_INET) {
		struct conn_key_v4 k = {};

		key_v4(f, &k);
		record(&conn_to_pid_v4, &k, f, dedup, CONNPID_STAT_FLOWS_V4);
	} else if (f->family == AF_INET6) {
		struct conn_key_v6 k = {};

		key_v6(f, &k);
		record(&conn_to_pid_v6, &k, f, dedup, CONNPID_STAT_FLOWS_V6);
	}
}

/* listen() runs in the owner's context: remember it for the accepts. */
static __always_inline void record_listener(struct bpf_sock_ops *skops)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct listener_key k = {
		.netns_cookie = bpf_get_netns_cookie(skops),
		.port = (__u16)skops->local_port,
		.family = (__u16)skops->family,
	};

	if (k.family == AF_INET) {
		k.addr[0] = skops->local_ip4;
	} else {
		k.addr[0] = skops->local_ip6[0];
		k.addr[1] = skops->local_ip6[1];
		k.addr[2] = skops->local_ip6[2];
		k.addr[3] = skops->local_ip6[3];
	}
	struct listener_owner o = {
		.pid = bpf_get_current_pid_tgid() >> 32,
		.start_boottime_ns = task->group_leader->start_boottime,
	};

	copy_comm(o.comm, task);
	bpf_map_update_elem(&listen_owners, &k, &o, BPF_ANY);
}

SEC("sockops")
int connpid_sockops(struct bpf_sock_ops *skops)
{
	struct flow f = {};

	/* Called for every op of every TCP socket in the cgroup: leave at once
	 * for all but the one that sees a new outgoing connection (and, with
	 * --inbound, listen(); the verifier drops that branch without it). */
	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB) {
		if (track_inbound && skops->op == BPF_SOCK_OPS_TCP_LISTEN_CB)
			record_listener(skops);
		return 1;
	}

	f.family = skops->family;
	f.protocol = CONNPID_PROTO_TCP;
	f.source = CONNPID_SRC_SOCKOPS_CONNECT;
	f.src_port = (__u16)skops->local_port;
	f.dst_port = (__u16)bpf_ntohl(skops->remote_port);
	f.cookie = bpf_get_socket_cookie(skops);
	if (f.family == AF_INET) {
		f.src_ip[0] = skops->local_ip4;
		f.dst_ip[0] = skops->remote_ip4;
	} else if (f.family == AF_INET6) {
		f.src_ip[0] = skops->local_ip6[0];
		f.src_ip[1] = skops->local_ip6[1];
		f.src_ip[2] = skops->local_ip6[2];
		f.src_ip[3] = skops->local_ip6[3];
		f.dst_ip[0] = skops->remote_ip6[0];
		f.dst_ip[1] = skops->remote_ip6[1];
		f.dst_ip[2] = skops->remote_ip6[2];
		f.dst_ip[3] = skops->remote_ip6[3];
	} else {
		return 1;
	}
	track(&f, false);
	return 1;
}

static __always_inline bool sendmsg_flow(struct bpf_sock_addr *ctx, struct flow *f)
{
	struct bpf_sock *sk = ctx->sk;

	if (!sk || ctx->protocol != IPPROTO_UDP)
		return false;
	f->protocol = CONNPID_PROTO_UDP;
	f->source = CONNPID_SRC_SENDMSG;
	f->src_port = (__u16)sk->src_port;
	f->dst_port = bpf_ntohs((__u16)ctx->user_port);
	f->cookie = bpf_get_socket_cookie(ctx);
	return true;
}

SEC("cgroup/sendmsg4")
int connpid_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct flow f = {};

	if (!sendmsg_flow(ctx, &f))
		return 1;
	f.family = AF_INET;
	f.dst_ip[0] = ctx->user_ip4;
	f.src_ip[0] = ctx->msg_src_ip4;
	track(&f, true);
	return 1;
}

SEC("cgroup/sendmsg6")
int connpid_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct flow f = {};

	if (!sendmsg_flow(ctx, &f))
		return 1;
	f.family = AF_INET6;
	f.dst_ip[0] = ctx->user_ip6[0];
	f.dst_ip[1] = ctx->user_ip6[1];
	f.dst_ip[2] = ctx->user_ip6[2];
	f.dst_ip[3] = ctx->user_ip6[3];
	/* The blocker refuses this send; a flow that never leaves is not one. */
	if (ip6_dst_blocked(f.dst_ip))
		return 1;
	f.src_ip[0] = ctx->msg_src_ip6[0];
	f.src_ip[1] = ctx->msg_src_ip6[1];
	f.src_ip[2] = ctx->msg_src_ip6[2];
	f.src_ip[3] = ctx->msg_src_ip6[3];
	track(&f, true);
	return 1;
}

/* Does the map already say this flow (folded as track() keys it) is the
 * calling process's? Then it is a repeat, counted as track() would: the
 * steady state of a connected socket, before the cookie is asked for
 * (155 -> 130 ns per send with stats, RESULTS.md). */
static __always_inline bool known_repeat(struct flow *f)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32, *cur;

	fold_v4mapped(f);
	if (f->family == AF_INET) {
		struct conn_key_v4 k = {};

		key_v4(f, &k);
		cur = bpf_map_lookup_elem(&conn_to_pid_v4, &k);
	} else {
		struct conn_key_v6 k = {};

		key_v6(f, &k);
		cur = bpf_map_lookup_elem(&conn_to_pid_v6, &k);
	}
	if (!cur || *cur != pid)
		return false;
	stat_inc(CONNPID_STAT_REPEATS);
	return true;
}

/* Is the socket's cgroup (the one it was created in, which is what the
 * cgroup hooks go by) the scope or below it? This runs for connected UDP
 * sends of the whole host. */
extern struct cgroup *bpf_cgroup_from_id(__u64 cgid) __ksym;
extern void bpf_cgroup_release(struct cgroup *cgrp) __ksym;

/* The scope's level in the kernel's own tree, read once per load (the
 * loader's count is relative to its cgroup namespace). */
static int scope_level = -1;

static __always_inline int kernel_scope_level(void)
{
	struct cgroup *scope;
	int level = scope_level;

	if (level >= 0)
		return level;
	scope = bpf_cgroup_from_id(scope_cgroup_id);
	if (!scope)
		return -1;
	level = scope->level;
	bpf_cgroup_release(scope);
	scope_level = level;
	return level;
}

/* Is cg the scope or below it? One look at its ancestor at the scope's
 * level: no walk, so no depth (a user may nest delegated cgroups as deep
 * as they like) hides anything. */
static __always_inline bool cgroup_in_scope(struct cgroup *cg)
{
	struct cgroup *anc = NULL;
	int level = kernel_scope_level();
	unsigned long slot;

	if (!cg || level < 0 || BPF_CORE_READ(cg, level) < level)
		return false;
	slot = (unsigned long)cg + bpf_core_field_offset(struct cgroup, ancestors) +
	       (unsigned long)level * sizeof(anc);
	if (bpf_probe_read_kernel(&anc, sizeof(anc), (void *)slot) || !anc)
		return false;
	return BPF_CORE_READ(anc, kn, id) == scope_cgroup_id;
}

static __always_inline bool sock_in_scope(const struct sock *sk)
{
	return cgroup_in_scope(sk->sk_cgrp_data.cgroup);
}

/* Connected UDP: connect()ed sockets never reach the sendmsg hooks without
 * an address, and cgroup/connect4|6 runs before the source port exists.
 * sock_send_length fires once per send call of any socket of the host,
 * in the sender's context, after the protocol's sendmsg: a TCP or unix
 * send leaves on the first two loads, and no packet of anything ever runs
 * a program here (a cgroup_skb/egress program ran on every TCP packet). */
SEC("tp_btf/sock_send_length")
int BPF_PROG(connpid_udp_send, struct sock *sk, int ret, int msg_flags)
{
	struct flow f = {};

	if (sk->sk_protocol != IPPROTO_UDP || sk->__sk_common.skc_state != UDP_CONNECTED_STATE)
		return 0;
	if (ret < 0) /* a send that failed made no datagram */
		return 0;
	if (!sock_in_scope(sk))
		return 0;
	f.family = sk->__sk_common.skc_family;
	f.protocol = CONNPID_PROTO_UDP;
	f.source = CONNPID_SRC_SKB_EGRESS;
	f.src_port = sk->__sk_common.skc_num;
	f.dst_port = bpf_ntohs(sk->__sk_common.skc_dport);
	if (f.family == AF_INET) {
		f.src_ip[0] = sk->__sk_common.skc_rcv_saddr;
		f.dst_ip[0] = sk->__sk_common.skc_daddr;
	} else if (f.family == AF_INET6) {
		__builtin_memcpy(f.src_ip, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32, sizeof(f.src_ip));
		__builtin_memcpy(f.dst_ip, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr32, sizeof(f.dst_ip));
	} else {
		return 0;
	}
	if (known_repeat(&f))
		return 0;
	f.cookie = bpf_get_socket_cookie(sk);
	track(&f, true);
	return 0;
}

SEC("cgroup/sock_create")
int connpid_sock_create(struct bpf_sock *sk)
{
	struct task_struct *task;
	struct sock_creator *c, fresh = {};
	__u64 cookie;
	__u32 tag, slot;

	if (sk->type != 1 /* SOCK_STREAM */ && sk->type != 2 /* SOCK_DGRAM */)
		return 1;
	if (sk->family != AF_INET && sk->family != AF_INET6)
		return 1;
	task = bpf_get_current_task_btf();
	cookie = bpf_get_socket_cookie(sk);
	slot = cookie & (CREATOR_SLOTS - 1);
	tag = (__u32)cookie ?: 1;
	c = bpf_map_lookup_elem(&sock_creators, &slot);
	if (!c) {
		/* first use of the slot: the only insert it will ever see */
		fresh.pid = bpf_get_current_pid_tgid() >> 32;
		fresh.cookie_tag = tag;
		fresh.start_boottime_ns = task->group_leader->start_boottime;
		copy_comm(fresh.comm, task);
		bpf_map_update_elem(&sock_creators, &slot, &fresh, BPF_ANY);
		return 1;
	}
	/* In place: invalidate, write, tag (x86 keeps stores in order). */
	c->cookie_tag = 0;
	compiler_barrier();
	c->pid = bpf_get_current_pid_tgid() >> 32;
	c->start_boottime_ns = task->group_leader->start_boottime;
	copy_comm(c->comm, task);
	compiler_barrier();
	c->cookie_tag = tag;
	return 1;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(connpid_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct connpid_exec_info *info;
	__u32 tgid;
	static const struct connpid_exec_info zero;

	if (!bpf_current_task_under_cgroup(&scope_cgroup, 0))
		return 0;
	tgid = BPF_CORE_READ(p, tgid);
	if (bpf_map_update_elem(&exec_info, &tgid, &zero, BPF_ANY))
		return 0;
	info = bpf_map_lookup_elem(&exec_info, &tgid);
	if (!info)
		return 0;
	info->start_boottime_ns = BPF_CORE_READ(p, group_leader, start_boottime);
	bpf_probe_read_kernel_str(info->filename, sizeof(info->filename), BPF_CORE_READ(bprm, filename));
	return 0;
}

/* A child forked without exec runs its parent's executable: copy the
 * parent's record so a short-lived worker still has an exe. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(connpid_fork, struct task_struct *parent, struct task_struct *child)
{
	struct connpid_exec_info *pinfo, *cinfo;
	__u32 ptgid, ctgid;

	if (BPF_CORE_READ(child, tgid) != BPF_CORE_READ(child, pid))
		return 0; /* a thread, not a process */
	if (!bpf_current_task_under_cgroup(&scope_cgroup, 0))
		return 0;
	ptgid = BPF_CORE_READ(parent, tgid);
	ctgid = BPF_CORE_READ(child, tgid);
	pinfo = bpf_map_lookup_elem(&exec_info, &ptgid);
	if (!pinfo)
		return 0;
	if (bpf_map_update_elem(&exec_info, &ctgid, pinfo, BPF_ANY))
		return 0;
	cinfo = bpf_map_lookup_elem(&exec_info, &ctgid);
	if (cinfo)
		cinfo->start_boottime_ns = BPF_CORE_READ(child, start_boottime);
	return 0;
}

/* The socket behind the fd accept() just returned, read from the
 * acceptor's fd table. Between the fd_install() and this exit another
 * thread may have closed the fd and reused it: the file must point back
 * at a socket that points back at it, or nothing is reported. Every read
 * is a checked probe read: a stale pointer reads as nothing. */
static __always_inline struct sock *accepted_sock(long fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *file = NULL;
	struct socket *sock;
	struct sock *sk;

	if (!fdt || (unsigned long)fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (!fds || bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk || BPF_CORE_READ(sk, sk_socket) != sock)
		return NULL;
	return sk;
}

#define SOCK_STREAM_TYPE 1

/* The local end as src, the peer as dst: the FLOW naming (this host's
 * end first) whatever the direction. */
static __always_inline bool accepted_flow(struct sock *sk, struct flow *f)
{
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SOCK_STREAM_TYPE)
		return false;
	f->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	f->protocol = CONNPID_PROTO_TCP;
	f->source = CONNPID_SRC_ACCEPT;
	f->src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	/* Reset by the peer while in the accept queue: closing gave the port
	 * back, so the flow can no longer be named; nothing to attribute. */
	if (!f->src_port)
		return false;
	f->dst_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* Only set when someone asked for it already; never made here. */
	f->cookie = BPF_CORE_READ(sk, __sk_common.skc_cookie.counter);
	if (f->family == AF_INET) {
		f->src_ip[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		f->dst_ip[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (f->family == AF_INET6) {
		BPF_CORE_READ_INTO(&f->src_ip, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&f->dst_ip, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		return false;
	}
	return true;
}

/* accept()/accept4() returned fd `ret` to a process in scope: one inbound
 * event, in the acceptor's context. The key of the listener map is the
 * child's own namespace, port and (unfolded) family: the listener's. */
static __always_inline void accept_exit(long ret)
{
	struct listener_owner owner, *o;
	struct listener_key k = {};
	struct flow f = {};
	struct sock *sk;

	if (ret < 0)
		return;
	if (!bpf_current_task_under_cgroup(&scope_cgroup, 0))
		return;
	sk = accepted_sock(ret);
	if (!sk || !accepted_flow(sk, &f))
		return;
	k.netns_cookie = BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie);
	k.port = f.src_port;
	k.family = f.family;
	/* the listener bound to this very address, else a wildcard one */
	__builtin_memcpy(k.addr, f.src_ip, sizeof(k.addr));
	o = bpf_map_lookup_elem(&listen_owners, &k);
	if (!o) {
		__builtin_memset(k.addr, 0, sizeof(k.addr));
		o = bpf_map_lookup_elem(&listen_owners, &k);
	}
	if (o)
		__builtin_memcpy(&owner, o, sizeof(owner));
	fold_v4mapped(&f);
	/* events = flows_v4 + flows_v6 + accepts - ringbuf_drops */
	stat_inc(CONNPID_STAT_ACCEPTS);
	emit_event(&f, bpf_get_current_pid_tgid() >> 32, 0, true, o ? &owner : NULL);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int connpid_accept4(struct trace_event_raw_sys_exit *ctx)
{
	accept_exit(ctx->ret);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept")
int connpid_accept(struct trace_event_raw_sys_exit *ctx)
{
	accept_exit(ctx->ret);
	return 0;
}

/* Is the task inside the cgroup the loader attached to? */
static __always_inline bool task_in_scope(struct task_struct *task)
{
	return cgroup_in_scope(BPF_CORE_READ(task, cgroups, dfl_cgrp));
}

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_LISTEN 10

/* --inbound: a listener older than the load gets its owner from the
 * seeding walk. Tasks come in pid order, so of the processes sharing a
 * listening socket (pre-forked workers) the first one, usually the one
 * that called listen(), is kept; a live listen() replaces it. */
static __always_inline void seed_listener(struct task_struct *task, struct sock *sk)
{
	struct listener_key k = {
		.netns_cookie = BPF_CORE_READ(sk, __sk_common.skc_net.net, net_cookie),
		.port = BPF_CORE_READ(sk, __sk_common.skc_num),
		.family = BPF_CORE_READ(sk, __sk_common.skc_family),
	};
	struct listener_owner o = {
		.pid = task->tgid,
		.start_boottime_ns = task->group_leader->start_boottime,
	};

	if (k.family == AF_INET)
		k.addr[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
	else
		BPF_CORE_READ_INTO(&k.addr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
	copy_comm(o.comm, task);
	bpf_map_update_elem(&listen_owners, &k, &o, BPF_NOEXIST);
}

/* Run once by the loader: every connected TCP/UDP socket of every process
 * in scope becomes a flow, unless a live hook already recorded its key. */
SEC("iter/task_file")
int connpid_seed(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct socket *sock;
	struct sock *sk;
	struct flow f = {};
	__u16 proto;
	__u8 state;

	if (!task || !file || !task_in_scope(task))
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk; /* a BTF pointer, as bpf_get_socket_cookie() wants */
	if (!sk)
		return 0;
	proto = BPF_CORE_READ(sk, sk_protocol);
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (proto == IPPROTO_TCP) {
		if (track_inbound && state == TCP_LISTEN) {
			seed_listener(task, sk);
			return 0;
		}
		if (state != TCP_ESTABLISHED && state != TCP_SYN_SENT)
			return 0;
	} else if (proto == IPPROTO_UDP) {
		if (state != UDP_CONNECTED_STATE)
			return 0;
	} else {
		return 0;
	}
	f.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	f.protocol = (__u8)proto;
	f.source = CONNPID_SRC_SEEDED;
	f.src_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	f.dst_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	f.task = task;
	if (f.family == AF_INET) {
		f.src_ip[0] = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		f.dst_ip[0] = BPF_CORE_READ(sk, __sk_common.skc_daddr);
	} else if (f.family == AF_INET6) {
		BPF_CORE_READ_INTO(&f.src_ip, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr32);
		BPF_CORE_READ_INTO(&f.dst_ip, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr32);
	} else {
		return 0;
	}
	f.cookie = bpf_get_socket_cookie(sk);
	track(&f, false);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

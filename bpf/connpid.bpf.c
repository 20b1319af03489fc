// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The tracker: writes `flow -> pid` into the LRU maps on the path of the
 * syscall that creates the flow, so the map is already right when the
 * first packet reaches a proxy, and emits one ring-buffer event per new
 * flow (or new owner of a known key) for queryd to enrich.
 *
 *   TCP            sockops BPF_SOCK_OPS_TCP_CONNECT_CB (source port known)
 *   UDP unconnected  cgroup/sendmsg4|6 (source port autobound by then)
 *   UDP connected    cgroup_skb/egress: connect()ed sockets never reach
 *                    the sendmsg hooks, and cgroup/connect4|6 runs before
 *                    the source port exists. Egress runs synchronously in
 *                    the sender's send() for UDP, so current is the owner.
 */
/* vmlinux.h has a type named `config`; the map of that name is contract. */
#define config vmlinux_config
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#include "maps.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define UDP_CONNECTED_STATE 1 /* TCP_ESTABLISHED, what connect() sets */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNPID_MAP_V4_ENTRIES);
	__type(key, struct conn_key_v4);
	__type(value, __u32);
} conn_to_pid_v4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, CONNPID_MAP_V6_ENTRIES);
	__type(key, struct conn_key_v6);
	__type(value, __u32);
} conn_to_pid_v6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, CONNPID_RINGBUF_BYTES);
} events SEC(".maps");

/* Wake the consumer only once this much is waiting; queryd also polls on
 * a short timer. A wakeup per event costs ~10 us here (DESIGN.md). */
const volatile __u64 wakeup_bytes = CONNPID_RINGBUF_BYTES / 16;

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
};

static __always_inline void fill_identity(struct connpid_event *e)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	e->netns_ino = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

static __always_inline void emit(const struct flow *f, __u32 pid, __u32 prev_pid)
{
	struct connpid_event *e;
	__u64 flags = BPF_RB_NO_WAKEUP;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CONNPID_STAT_RINGBUF_DROPS);
		return;
	}
	fill_identity(e);
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
	e->prev_pid = prev_pid;
	e->pid = pid;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	bpf_ringbuf_submit(e, flags);
	stat_inc(CONNPID_STAT_EVENTS);
}

/* Insert or refresh one key. `dedup` is for packet hooks: a key already
 * owned by this pid is a repeat and costs one lookup, no event. */
static __always_inline void record(void *map, const void *key, struct flow *f,
				   bool dedup, __u32 flow_stat)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	__u32 prev = 0, *cur;

	cur = bpf_map_lookup_elem(map, key);
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

/* Key the flow: v4 and v4-mapped v6 go to the v4 map with the v4 address. */
static __always_inline void track(struct flow *f, bool dedup)
{
	if (f->family == AF_INET6 && ip6_is_v4mapped(f->dst_ip)) {
		f->family = AF_INET;
		f->dst_ip[0] = f->dst_ip[3];
		f->src_ip[0] = ip6_is_v4mapped(f->src_ip) ? f->src_ip[3] : 0;
		f->dst_ip[1] = f->dst_ip[2] = f->dst_ip[3] = 0;
		f->src_ip[1] = f->src_ip[2] = f->src_ip[3] = 0;
	}

	if (f->family == AF_INET) {
		struct conn_key_v4 k = {
			.dst_ip = f->dst_ip[0],
			.src_port = f->src_port,
			.dst_port = f->dst_port,
			.protocol = f->protocol,
		};

		record(&conn_to_pid_v4, &k, f, dedup, CONNPID_STAT_FLOWS_V4);
	} else if (f->family == AF_INET6) {
		struct conn_key_v6 k = {
			.src_port = f->src_port,
			.dst_port = f->dst_port,
			.protocol = f->protocol,
		};

		__builtin_memcpy(k.dst_ip, f->dst_ip, sizeof(k.dst_ip));
		record(&conn_to_pid_v6, &k, f, dedup, CONNPID_STAT_FLOWS_V6);
	}
}

SEC("sockops")
int connpid_sockops(struct bpf_sock_ops *skops)
{
	struct flow f = {};

	/* Called for every op of every TCP socket in the cgroup: leave at once
	 * for all but the one that sees a new outgoing connection. */
	if (skops->op != BPF_SOCK_OPS_TCP_CONNECT_CB)
		return 1;

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

SEC("cgroup_skb/egress")
int connpid_udp_egress(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	struct flow f = {};

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	/* Unconnected sends were keyed by sendmsg already; TCP by sockops. */
	if (!sk || sk->protocol != IPPROTO_UDP || sk->state != UDP_CONNECTED_STATE)
		return 1;

	f.family = sk->family;
	f.protocol = CONNPID_PROTO_UDP;
	f.source = CONNPID_SRC_SKB_EGRESS;
	f.src_port = (__u16)sk->src_port;
	f.dst_port = bpf_ntohs(sk->dst_port);
	f.cookie = bpf_get_socket_cookie(skb);
	if (f.family == AF_INET) {
		f.src_ip[0] = sk->src_ip4;
		f.dst_ip[0] = sk->dst_ip4;
	} else if (f.family == AF_INET6) {
		f.src_ip[0] = sk->src_ip6[0];
		f.src_ip[1] = sk->src_ip6[1];
		f.src_ip[2] = sk->src_ip6[2];
		f.src_ip[3] = sk->src_ip6[3];
		f.dst_ip[0] = sk->dst_ip6[0];
		f.dst_ip[1] = sk->dst_ip6[1];
		f.dst_ip[2] = sk->dst_ip6[2];
		f.dst_ip[3] = sk->dst_ip6[3];
	} else {
		return 1;
	}
	track(&f, true);
	return 1;
}

char LICENSE[] SEC("license") = "GPL";

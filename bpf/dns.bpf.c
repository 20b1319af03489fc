// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * DNS attribution, kernel side. Two sources:
 *
 *  - cgroup_skb/ingress: every UDP datagram from port 53 to a socket in
 *    scope that looks like a DNS response is copied (up to 1 KiB) into the
 *    dns_events ring with the asking process, found by the flow the query
 *    made (conn_to_pid_*: server, client port, 53). Parsing happens in
 *    queryd, where a malformed packet can only be counted, never trusted.
 *    This sees every resolver: glibc, musl, Go's own, static binaries.
 *  - uprobe/uretprobe on glibc's getaddrinfo(): the name asked and the
 *    addresses returned, also where no packet exists (/etc/hosts, nscd,
 *    DoT/DoH behind a local stub).
 */
#define config vmlinux_config
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_tracing.h>

#include "maps.bpf.h"
#include "flowmaps.bpf.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define DNS_PORT 53
#define DNS_HEADER_LEN 12

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} dns_events SEC(".maps");

/* getaddrinfo() arguments by thread, from entry to return. */
struct gai_call {
	__u64 node;
	__u64 res;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct gai_call);
} gai_calls SEC(".maps");

static __always_inline __u32 owner_v4(__u32 server, __u16 client_port)
{
	struct conn_key_v4 k = {
		.dst_ip = server,
		.src_port = client_port,
		.dst_port = DNS_PORT,
		.protocol = CONNPID_PROTO_UDP,
	};
	__u32 *pid = bpf_map_lookup_elem(&conn_to_pid_v4, &k);

	return pid ? *pid : 0;
}

static __always_inline __u32 owner_v6(const __u32 server[4], __u16 client_port)
{
	struct conn_key_v6 k = {
		.src_port = client_port,
		.dst_port = DNS_PORT,
		.protocol = CONNPID_PROTO_UDP,
	};
	__u32 *pid;

	__builtin_memcpy(k.dst_ip, server, sizeof(k.dst_ip));
	pid = bpf_map_lookup_elem(&conn_to_pid_v6, &k);
	return pid ? *pid : 0;
}

SEC("cgroup_skb/ingress")
int connpid_dns_ingress(struct __sk_buff *skb)
{
	struct connpid_dns_event *e;
	struct udphdr udp;
	__u32 l4_off, msg_off, msg_len;
	__u64 n;
	__u32 server[4] = {};
	__u8 family, flags;

	/* Every TCP packet passes here too: leave before anything else. */
	if (skb_surely_not_udp(skb))
		return 1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) < 0 || ip.protocol != IPPROTO_UDP)
			return 1;
		if (ip.frag_off & bpf_htons(0x3fff))
			return 1; /* fragments: the header we need may be elsewhere */
		l4_off = ip.ihl * 4;
		server[0] = ip.saddr;
		family = 2;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) < 0 || ip6.nexthdr != IPPROTO_UDP)
			return 1;
		l4_off = sizeof(ip6);
		__builtin_memcpy(server, &ip6.saddr, sizeof(server));
		family = 10;
	} else {
		return 1;
	}
	if (l4_off < 20 || l4_off > 60 ||
	    bpf_skb_load_bytes(skb, l4_off, &udp, sizeof(udp)) < 0 || udp.source != bpf_htons(DNS_PORT))
		return 1;
	msg_off = l4_off + sizeof(udp);
	if (skb->len <= msg_off + DNS_HEADER_LEN)
		return 1;
	msg_len = skb->len - msg_off;
	/* QR set: a response. Anything else from port 53 is not ours. */
	if (bpf_skb_load_bytes(skb, msg_off + 2, &flags, 1) < 0 || !(flags & 0x80))
		return 1;

	e = bpf_ringbuf_reserve(&dns_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CONNPID_STAT_DNS_DROPS);
		return 1;
	}
	n = msg_len;
	if (n > CONNPID_DNS_PAYLOAD)
		n = CONNPID_DNS_PAYLOAD;
	/* the verifier must see the bound on the very register passed */
	n &= CONNPID_DNS_PAYLOAD * 2 - 1;
	if (n < 1 || n > CONNPID_DNS_PAYLOAD || bpf_skb_load_bytes(skb, msg_off, e->payload, n) < 0) {
		bpf_ringbuf_discard(e, 0);
		return 1;
	}
	e->ts_ns = bpf_ktime_get_ns();
	e->socket_cookie = bpf_get_socket_cookie(skb);
	e->payload_len = n;
	e->msg_len = msg_len;
	__builtin_memcpy(e->server_ip, server, sizeof(server));
	e->server_port = DNS_PORT;
	e->client_port = bpf_ntohs(udp.dest);
	e->family = family;
	e->source = CONNPID_DNS_SRC_PACKET;
	e->pid = family == 2 ? owner_v4(server[0], e->client_port) : owner_v6(server, e->client_port);
	e->start_boottime_ns = 0;
	e->comm[0] = '\0';
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	stat_inc(CONNPID_STAT_DNS_PACKETS);
	return 1;
}

SEC("uprobe")
int BPF_KPROBE(connpid_gai_enter, const char *node, const char *service, const void *hints, void **res)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct gai_call call = { .node = (__u64)node, .res = (__u64)res };

	if (!node || !bpf_current_task_under_cgroup(&scope_cgroup, 0))
		return 0;
	bpf_map_update_elem(&gai_calls, &tid, &call, BPF_ANY);
	return 0;
}

/* glibc's struct addrinfo and sockaddrs on 64-bit: read by offset so the
 * program does not depend on userspace headers. */
#define AI_FAMILY_OFF 4
#define AI_ADDR_OFF 24
#define AI_NEXT_OFF 40
#define SIN_ADDR_OFF 4
#define SIN6_ADDR_OFF 8

SEC("uretprobe")
int BPF_KRETPROBE(connpid_gai_exit, int ret)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct task_struct *task;
	struct connpid_dns_event *e;
	struct gai_call *call;
	__u64 ai = 0;

	call = bpf_map_lookup_elem(&gai_calls, &tid);
	if (!call)
		return 0;
	if (ret != 0 || bpf_probe_read_user(&ai, sizeof(ai), (void *)call->res) < 0 || !ai)
		goto out;
	e = bpf_ringbuf_reserve(&dns_events, sizeof(*e), 0);
	if (!e) {
		stat_inc(CONNPID_STAT_DNS_DROPS);
		goto out;
	}
	__builtin_memset(e, 0, sizeof(*e) - sizeof(e->payload));
	e->gai.n_addrs = 0;
	if (bpf_probe_read_user_str(e->gai.name, sizeof(e->gai.name), (void *)call->node) <= 0) {
		bpf_ringbuf_discard(e, 0);
		goto out;
	}
	for (int i = 0; i < CONNPID_GAI_ADDRS && ai; i++) {
		struct connpid_gai_addr *a = &e->gai.addrs[i];
		__u64 sa = 0;
		int family = 0;

		bpf_probe_read_user(&family, sizeof(family), (void *)(ai + AI_FAMILY_OFF));
		bpf_probe_read_user(&sa, sizeof(sa), (void *)(ai + AI_ADDR_OFF));
		a->family = family;
		__builtin_memset(a->addr, 0, sizeof(a->addr));
		if (sa && family == 2)
			bpf_probe_read_user(&a->addr[0], 4, (void *)(sa + SIN_ADDR_OFF));
		else if (sa && family == 10)
			bpf_probe_read_user(a->addr, 16, (void *)(sa + SIN6_ADDR_OFF));
		e->gai.n_addrs = i + 1;
		if (bpf_probe_read_user(&ai, sizeof(ai), (void *)(ai + AI_NEXT_OFF)) < 0)
			break;
	}
	task = (struct task_struct *)bpf_get_current_task();
	e->ts_ns = bpf_ktime_get_ns();
	e->pid = pid_tgid >> 32;
	e->start_boottime_ns = BPF_CORE_READ(task, group_leader, start_boottime);
	e->source = CONNPID_DNS_SRC_GETADDRINFO;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
	stat_inc(CONNPID_STAT_GAI_CALLS);
out:
	bpf_map_delete_elem(&gai_calls, &tid);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

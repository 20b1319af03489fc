/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Maps shared by both BPF objects. The loader points each at the same pin
 * path, so when the tracker and the IPv6 blocker are both loaded they use
 * one `config` and one `stats` map; the blocker alone creates its own.
 */
#pragma once

#include "connpid.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CONNPID_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Written by the loader as its last step: a committed ABI version means
 * everything else is in place; readers check it before trusting pins. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct connpid_meta);
} meta SEC(".maps");

/* Set by the loader before load: also refuse ::1 when blocking IPv6. */
const volatile bool block_loopback6 = false;
/* Set by the loader: the blocker is loaded, so config[0] really blocks and
 * the tracker must not record what it refuses. */
const volatile bool honor_ipv6_block = true;

/* Count one in a per-CPU stats slot; the new count, 0 if no slot. */
static __always_inline __u64 stat_inc_ret(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (!v)
		return 0;
	*v += 1;
	return *v;
}

static __always_inline void stat_inc(__u32 slot)
{
	(void)stat_inc_ret(slot);
}

static __always_inline bool ip6_is_v4mapped(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == bpf_htonl(0x0000ffff);
}

static __always_inline bool ip6_is_loopback(const __u32 a[4])
{
	return a[0] == 0 && a[1] == 0 && a[2] == 0 && a[3] == bpf_htonl(1);
}

/* The one place that decides whether a native IPv6 destination is refused;
 * the tracker asks it too so refused attempts are never recorded. */
static __always_inline bool ip6_dst_blocked(const __u32 a[4])
{
	__u32 zero = 0, *cfg;

	if (ip6_is_v4mapped(a))
		return false; /* dual-stack sockets reaching IPv4 */
	if (ip6_is_loopback(a) && !block_loopback6)
		return false;
	if (!honor_ipv6_block)
		return false;
	cfg = bpf_map_lookup_elem(&config, &zero);
	return cfg && (*cfg & CONNPID_CONFIG_BLOCK_IPV6);
}

#define CONNPID_ETH_P_IP 0x0800
#define CONNPID_ETH_P_IPV6 0x86DD

/* The first test of the DNS ingress program, which runs on every packet
 * of the cgroup, TCP's included: is this surely not UDP? Direct packet
 * loads, no helper call. A header we cannot see linearly, or an IPv6
 * extension header chain, answers "maybe" and the caller looks closer. */
static __always_inline bool skb_surely_not_udp(const struct __sk_buff *skb)
{
	const __u8 *data = (const __u8 *)(long)skb->data;
	const __u8 *end = (const __u8 *)(long)skb->data_end;

	if (skb->protocol == bpf_htons(CONNPID_ETH_P_IP)) {
		if (data + 20 > end)
			return false;
		return data[9] != IPPROTO_UDP;       /* iphdr.protocol */
	}
	if (skb->protocol == bpf_htons(CONNPID_ETH_P_IPV6)) {
		if (data + 40 > end)
			return false;
		return data[6] == IPPROTO_TCP || data[6] == 58 /* ICMPv6 */;
	}
	return false; /* protocol not set: let the caller look at the socket */
}

// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The IPv6 blocker: refuses native IPv6 connect() and sendto() when
 * config[0] says so. IPv4-mapped destinations always pass (Java and other
 * dual-stack sockets reach IPv4 that way); ::1 passes unless the loader
 * was asked to block it. A separate object so it can be loaded alone.
 */
/* vmlinux.h has a type named `config`; the map of that name is contract. */
#define config vmlinux_config
#include "vmlinux.h"
#undef config
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "maps.bpf.h"

static __always_inline int check_dst(struct bpf_sock_addr *ctx)
{
	__u32 dst[4];

	dst[0] = ctx->user_ip6[0];
	dst[1] = ctx->user_ip6[1];
	dst[2] = ctx->user_ip6[2];
	dst[3] = ctx->user_ip6[3];
	if (!ip6_dst_blocked(dst))
		return 1;
	stat_inc(CONNPID_STAT_BLOCKED_V6);
	return 0; /* the caller gets EPERM */
}

SEC("cgroup/connect6")
int connpid_block_connect6(struct bpf_sock_addr *ctx)
{
	return check_dst(ctx);
}

SEC("cgroup/sendmsg6")
int connpid_block_sendmsg6(struct bpf_sock_addr *ctx)
{
	return check_dst(ctx);
}

char LICENSE[] SEC("license") = "GPL";

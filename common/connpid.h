/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The one definition of everything the kernel programs and userspace both
 * see: map keys, values, ring-buffer events, stats slots, pin names.
 *
 * Plain __u8/__u16/__u32/__u64 types and no includes, so that both
 * vmlinux.h (BPF side) and <linux/types.h> (userspace) can come first.
 */
#pragma once

/* Bumped whenever a layout below changes incompatibly. queryd and
 * connpidctl refuse pins whose meta map carries another version. */
#define CONNPID_ABI_VERSION 4

#define CONNPID_PROTO_TCP 6
#define CONNPID_PROTO_UDP 17

/* Default sizes; the loader may change them before load. */
#define CONNPID_MAP_V4_ENTRIES   65536
#define CONNPID_MAP_V6_ENTRIES   16384
/* 4 MiB holds ~17k events while queryd is down; a drained ring lost
 * nothing at 200k new flows/s with 256 KiB (tests/bench/RESULTS.md). */
#define CONNPID_RINGBUF_BYTES    (4u << 20)
#define CONNPID_COMM_LEN         16

/*
 * Keys are byte-exact with the original Python/ctypes tracker:
 * u32 dst_ip (network order), u16 src_port, u16 dst_port (host order),
 * u8 protocol, u8 pad[3] = 0. Packed, 12 and 24 bytes.
 */
struct conn_key_v4 {
	__u32 dst_ip;
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;
	__u8 pad[3];
} __attribute__((packed));

struct conn_key_v6 {
	__u32 dst_ip[4];
	__u16 src_port;
	__u16 dst_port;
	__u8 protocol;
	__u8 pad[3];
} __attribute__((packed));

/* Which hook saw the flow first; travels in events. */
enum connpid_source {
	CONNPID_SRC_SOCKOPS_CONNECT = 1, /* TCP, BPF_SOCK_OPS_TCP_CONNECT_CB */
	CONNPID_SRC_SENDMSG = 2,         /* unconnected UDP, cgroup/sendmsg4|6 */
	CONNPID_SRC_SKB_EGRESS = 3,      /* connected UDP, tp_btf/sock_send_length (name kept) */
	CONNPID_SRC_SEEDED = 4,          /* existed before loading: iter/task_file */
	CONNPID_SRC_ACCEPT = 5,          /* inbound TCP, accept()/accept4() exit */
};

#define CONNPID_ANCESTORS 4
#define CONNPID_EXE_LEN 256

#define CONNPID_EVENT_FLAG_OWNER_CHANGED 0x1 /* key existed with another pid */
/* An accepted connection (loader --inbound): src_* is the local end (the
 * listening address and port), dst_* the remote peer, pid the process
 * that accept()ed it, and creator_* the process that called listen() on
 * the listener (zero when unknown). Outbound events leave it clear. */
#define CONNPID_EVENT_FLAG_INBOUND 0x2

/*
 * One ring-buffer event per new flow (or new owner of a known key).
 * Addresses are network order; v4 addresses sit in addr[0] with family 2.
 */
struct connpid_event {
	__u64 ts_ns;            /* bpf_ktime_get_ns() */
	__u64 cgroup_id;
	__u64 socket_cookie;
	__u64 start_boottime_ns; /* thread group leader's start_boottime */
	__u64 netns_ino;
	__u32 pid;              /* tgid */
	__u32 tid;
	__u32 uid;
	__u32 gid;
	__u32 src_ip[4];
	__u32 dst_ip[4];
	__u16 src_port;         /* host order */
	__u16 dst_port;         /* host order */
	__u8 family;            /* AF_INET (2) or AF_INET6 (10), as keyed */
	__u8 protocol;
	__u8 source;            /* enum connpid_source */
	__u8 flags;             /* CONNPID_EVENT_FLAG_* */
	__u32 prev_pid;         /* owner before, when OWNER_CHANGED */
	char comm[CONNPID_COMM_LEN];
	/* Who created the socket (cgroup/sock_create); differs from pid after
	 * fork() or SCM_RIGHTS. 0 when created before loading. */
	__u32 creator_pid;
	__u32 pad0;
	__u64 creator_start_boottime_ns;
	char creator_comm[CONNPID_COMM_LEN];
	/* parent, grandparent, ...; 0-terminated. Read in the hook so a
	 * process that is gone a millisecond later keeps its ancestry. */
	__u32 ancestor_pid[CONNPID_ANCESTORS];
	char ancestor_comm[CONNPID_ANCESTORS][CONNPID_COMM_LEN];
};

/* Value of the `exec_info` map (key: tgid), written at exec so the exe of
 * a process that exits before queryd reads /proc is still known. */
struct connpid_exec_info {
	__u64 start_boottime_ns;
	char filename[CONNPID_EXE_LEN];
};

/* Per-CPU counters in the `stats` map, one slot each. */
enum connpid_stat {
	CONNPID_STAT_EVENTS = 0,       /* events submitted */
	CONNPID_STAT_RINGBUF_DROPS,    /* reserve failed: ring full */
	CONNPID_STAT_MAP_UPDATE_ERRORS,
	CONNPID_STAT_FLOWS_V4,         /* new or re-owned keys written */
	CONNPID_STAT_FLOWS_V6,
	CONNPID_STAT_REPEATS,          /* packets of a flow already known */
	CONNPID_STAT_BLOCKED_V6,       /* native IPv6 attempts refused */
	CONNPID_STAT_DNS_PACKETS,      /* DNS responses passed to queryd */
	CONNPID_STAT_DNS_DROPS,        /* dns ring full */
	CONNPID_STAT_GAI_CALLS,        /* getaddrinfo() results passed on */
	CONNPID_STAT_ACCEPTS,          /* accepted connections reported (--inbound) */
	CONNPID_STAT_MAX,
};

/* config[0] bits. 1 = block native IPv6 (contract value). */
#define CONNPID_CONFIG_BLOCK_IPV6 1u

/* The meta map (ARRAY, 1 entry) tells readers what they are looking at. */
struct connpid_meta {
	__u32 abi_version;
	__u32 flags;             /* CONNPID_META_F_* */
	__u64 loaded_at_realtime_ns;
	char version[32];        /* loader's package version */
};

#define CONNPID_META_F_IPV6_BLOCKER 0x1
#define CONNPID_META_F_BLOCK_LOOPBACK6 0x2
#define CONNPID_META_F_INBOUND 0x4      /* accept() tracking loaded (--inbound) */

/*
 * DNS: one event per DNS response a tracked socket receives (raw message,
 * parsed in queryd, where a bad packet can only be counted) and one per
 * successful getaddrinfo() in glibc (name and addresses, no packet needed:
 * /etc/hosts, DoT/DoH through nscd or systemd-resolved...).
 */
#define CONNPID_DNS_PAYLOAD 1024
#define CONNPID_DNS_NAME_LEN 256
#define CONNPID_GAI_ADDRS 16

enum connpid_dns_source {
	CONNPID_DNS_SRC_PACKET = 1,
	CONNPID_DNS_SRC_GETADDRINFO = 2,
};

struct connpid_gai_addr {
	__u32 family;
	__u32 addr[4]; /* network order; v4 in [0] */
};

struct connpid_gai_result {
	char name[CONNPID_DNS_NAME_LEN];
	__u32 n_addrs;
	__u32 pad;
	struct connpid_gai_addr addrs[CONNPID_GAI_ADDRS];
};

struct connpid_dns_event {
	__u64 ts_ns;
	__u64 socket_cookie;
	__u64 start_boottime_ns;  /* getaddrinfo: the caller's */
	__u32 pid;                /* who asked: 0 when unknown */
	__u32 payload_len;        /* packet: bytes copied; getaddrinfo: 0 */
	__u32 msg_len;            /* packet: the DNS message's full length */
	__u32 server_ip[4];       /* packet: the responding server */
	__u16 server_port;
	__u16 client_port;
	__u8 family;
	__u8 source;              /* enum connpid_dns_source */
	__u8 pad[2];
	char comm[CONNPID_COMM_LEN];
	union {
		__u8 payload[CONNPID_DNS_PAYLOAD];
		struct connpid_gai_result gai;
	};
};

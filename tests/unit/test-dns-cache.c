// SPDX-License-Identifier: GPL-2.0-or-later
/* dns-cache (issue 12, item 13): a process is pid + start time; global
 * answers remember who asked and prefer the same uid, then cgroup; no
 * single uid can push the others out; entries and bytes stay bounded. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "dns-cache.h"

#include "check.h"

static const unsigned char IP[4] = { 127, 0, 0, 3 };
/* each answer a second after the last: the newest is known */
static double now = 900;

static struct dns_asker asker(__u32 pid, __u64 start, __u32 uid, __u64 cg)
{
	return (struct dns_asker) { .pid = pid, .start_ticks = start, .uid = uid, .cgroup_id = cg };
}

static void expect(struct dns_cache *c, struct dns_asker who, const char *name, enum dns_asked_by by)
{
	struct dns_hit hit;

	if (!dns_cache_find(c, &who, AF_INET, IP, now, &hit)) {
		CHECK(!name, "pid %u uid %u cg %llu: no hit, want %s", who.pid, who.uid,
		      (unsigned long long)who.cgroup_id, name);
		return;
	}
	CHECK(name && strcmp(hit.name, name) == 0 && hit.asked_by == by,
	      "pid %u uid %u cg %llu: %s asked_by %d, want %s asked_by %d", who.pid, who.uid,
	      (unsigned long long)who.cgroup_id, hit.name, hit.asked_by, name ? name : "(none)", by);
	CHECK(hit.same_process == (by == DNS_ASKED_SAME_PROCESS), "same_process flag");
}

static void add(struct dns_cache *c, struct dns_asker who, const char *name)
{
	now += 1;
	CHECK(dns_cache_add(c, &who, AF_INET, IP, name, NULL, 300, DNS_ORIGIN_PACKET, now) == 0, "add %s", name);
}

int main(void)
{
	struct dns_cache *c;
	char name[300];

	if (dns_cache_new(100, &c) < 0)
		return 1;
	add(c, asker(7, 100, 1000, 11), "one.example");
	add(c, asker(8, 100, 2000, 22), "two.example");
	expect(c, asker(7, 100, 1000, 11), "one.example", DNS_ASKED_SAME_PROCESS);
	/* pid 7 again, another start time: another process */
	expect(c, asker(7, 200, 1000, 11), "one.example", DNS_ASKED_SAME_UID);
	expect(c, asker(7, 200, 3000, 33), "two.example", DNS_ASKED_OTHER);
	expect(c, asker(9, 300, 2000, 99), "two.example", DNS_ASKED_SAME_UID);
	expect(c, asker(9, 300, 3000, 11), "one.example", DNS_ASKED_SAME_CGROUP);
	expect(c, asker(0, 0, DNS_UID_UNKNOWN, 0), "two.example", DNS_ASKED_OTHER);

	/* uid 4000 from many cgroups holds at most DNS_SLOTS_PER_UID answers */
	for (int i = 0; i < 50; i++) {
		snprintf(name, sizeof(name), "flood%d.example", i);
		add(c, asker(0, 0, 4000, 1000 + (__u64)i), name);
	}
	expect(c, asker(9, 300, 1000, 0), "one.example", DNS_ASKED_SAME_UID);
	expect(c, asker(9, 300, 2000, 0), "two.example", DNS_ASKED_SAME_UID);

	/* bounded by entries and by bytes, long names included */
	memset(name, 'a', 250);
	name[250] = '\0';
	for (int i = 0; i < 5000; i++) {
		unsigned char ip[4] = { 10, (unsigned char)(i >> 16), (unsigned char)(i >> 8), (unsigned char)i };
		struct dns_asker who = asker((__u32)i + 1, 1, (__u32)i, 5);

		CHECK(dns_cache_add(c, &who, AF_INET, ip, name, name, 300, DNS_ORIGIN_PACKET, 1000) == 0, "add");
	}
	CHECK(dns_cache_size(c) <= 100, "size %zu > 100", dns_cache_size(c));
	CHECK(dns_cache_bytes(c) <= 100 * 1024, "bytes %zu > %d", dns_cache_bytes(c), 100 * 1024);
	dns_cache_free(c);
	printf("%d failures\n", check_failures);
	return check_failures ? 1 : 0;
}

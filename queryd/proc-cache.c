// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <linux/types.h>
#include <bpf/bpf.h>

#include "connpid.h"
#include "jsonutil.h"
#include "macro.h"
#include "proc-cache.h"
#include "procinfo.h"
#include "user-name.h"

#define PROC_BUCKETS 4096

struct proc_cache {
	struct htable table;
	__u64 reads;
	int exec_map_fd;
	sd_event *event;
};

int proc_cache_new(sd_event *event, struct proc_cache **ret)
{
	struct proc_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	if (htable_init(&c->table, PROC_BUCKETS) < 0) {
		free(c);
		return -ENOMEM;
	}
	c->exec_map_fd = -EBADF;
	c->event = event ? sd_event_ref(event) : NULL;
	*ret = c;
	return 0;
}

static void entry_stop_watching(struct proc_entry *e)
{
	e->exit_source = sd_event_source_disable_unref(e->exit_source);
	e->pidfd = safe_close(e->pidfd);
}

static void entry_free(struct proc_entry *e)
{
	entry_stop_watching(e);
	free(e->exe);
	free(e->cmdline);
	free(e->user);
	free(e->cmdline_json);
	free(e);
}

static int on_process_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct proc_entry *e = userdata;

	e->exited = true;
	entry_stop_watching(e);
	return 0;
}

/* Opened before /proc is read: if the start time then matches, the pidfd
 * is this process's, whatever happens to the pid later. */
static void watch_exit(struct proc_cache *c, struct proc_entry *e)
{
	int fd;

	if (!c->event)
		return;
	fd = (int)syscall(SYS_pidfd_open, e->pid, 0);
	if (fd < 0)
		return; /* gone already, or out of fds: /proc will answer */
	e->pidfd = fd;
	if (sd_event_add_io(c->event, &e->exit_source, fd, EPOLLIN, on_process_exit, e) < 0)
		e->pidfd = safe_close(e->pidfd);
}

int proc_entry_alive(const struct proc_entry *e, bool *ret_reused)
{
	__u64 ticks = 0;
	int r;

	*ret_reused = false;
	if (e->exited)
		goto gone;
	if (e->pidfd >= 0)
		return 1;
	r = procinfo_start_ticks(e->pid, &ticks);
	if (r == 0 && ticks == e->start_ticks)
		return 1;
gone:
	/* Gone for good; tell the asker if the pid now names another process. */
	*ret_reused = procinfo_start_ticks(e->pid, &ticks) == 0 && ticks != e->start_ticks;
	return 0;
}

struct proc_cache *proc_cache_free(struct proc_cache *c)
{
	if (!c)
		return NULL;
	for (struct hnode *n = htable_steal_all(&c->table), *next; n; n = next) {
		next = n->next;
		entry_free(hnode_entry(n, struct proc_entry, node));
	}
	htable_done(&c->table);
	sd_event_unref(c->event);
	free(c);
	return NULL;
}

static uint64_t hash_of(const struct proc_cache *c, pid_t pid, __u64 start)
{
	struct {
		__u64 start;
		__s32 pid;
		__u32 zero;
	} k = { start, pid, 0 };

	return htable_hash(&c->table, &k, sizeof(k));
}

void proc_cache_set_exec_map(struct proc_cache *c, int fd)
{
	c->exec_map_fd = fd;
}

/* The process exited before we looked: what the exec hook saw is all the
 * exe we can have. Only if it is the same process (start time). */
static void enrich_from_exec(struct proc_cache *c, struct proc_entry *e)
{
	struct connpid_exec_info info;
	__u32 key = (__u32)e->pid;

	if (c->exec_map_fd < 0 || bpf_map_lookup_elem(c->exec_map_fd, &key, &info) < 0)
		return;
	if (boottime_ns_to_ticks(info.start_boottime_ns) != e->start_ticks || !info.filename[0])
		return;
	/* the hook cut long paths at the byte: cut at the character */
	info.filename[utf8_cut(info.filename, strnlen(info.filename, sizeof(info.filename) - 1))] = '\0';
	e->exe = strdup(info.filename);
	e->exe_from_exec = e->exe != NULL;
}

static char *user_name_dup(uid_t uid)
{
	char buf[1024];
	const char *name = user_name(uid, buf, sizeof(buf));

	return name ? strdup(name) : NULL;
}

static void enrich(struct proc_cache *c, struct proc_entry *e)
{
	struct procinfo p;

	c->reads++;
	watch_exit(c, e);
	if (procinfo_read(e->pid, &p) < 0 || p.start_ticks != e->start_ticks) {
		/* exited, or the pid is already another process's */
		entry_stop_watching(e);
		e->exited = true;
		enrich_from_exec(c, e);
		return;
	}
	e->user = user_name_dup(p.uid);
	e->ppid = p.ppid;
	if (p.exe[0])
		e->exe = strdup(p.exe);
	else
		enrich_from_exec(c, e); /* a zombie: /proc has no exe any more */
	if (p.cmdline_len) {
		e->cmdline = malloc(p.cmdline_len + 1);
		if (e->cmdline) {
			memcpy(e->cmdline, p.cmdline, p.cmdline_len);
			e->cmdline[p.cmdline_len] = '\0';
			e->cmdline_len = p.cmdline_len;
		}
	}
	e->enriched = true;
}

struct proc_entry *proc_cache_get(struct proc_cache *c, pid_t pid, __u64 start_ticks)
{
	uint64_t h = hash_of(c, pid, start_ticks);
	struct proc_entry *e;

	HTABLE_FOREACH_HASH(n, &c->table, h) {
		e = hnode_entry(n, struct proc_entry, node);
		if (e->pid == pid && e->start_ticks == start_ticks) {
			e->refs++;
			return e;
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->pid = pid;
	e->start_ticks = start_ticks;
	e->refs = 1;
	e->pidfd = -EBADF;
	enrich(c, e);
	htable_add(&c->table, &e->node, h);
	return e;
}

void proc_entry_unref(struct proc_cache *c, struct proc_entry *e)
{
	if (!e || --e->refs > 0)
		return;
	(void)htable_remove(&c->table, &e->node, hash_of(c, e->pid, e->start_ticks));
	entry_free(e);
}

size_t proc_cache_size(const struct proc_cache *c)
{
	return c->table.n;
}

__u64 proc_cache_reads(const struct proc_cache *c)
{
	return c->reads;
}

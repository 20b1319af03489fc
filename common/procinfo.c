// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonutil.h"
#include "macro.h"
#include "procinfo.h"

static int read_file(const char *path, char *buf, size_t size, size_t *ret_len)
{
	_cleanup_close_ int fd = -EBADF;
	size_t len = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : negative_errno();
	while (len + 1 < size) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ESRCH ? -ESRCH : negative_errno();
		}
		if (n == 0)
			break;
		len += n;
	}
	buf[len] = '\0';
	*ret_len = len;
	return 0;
}

/* Fields after "(comm)": comm may hold spaces and parentheses, so split at
 * the last ')'. */
static int parse_stat(const char *buf, struct procinfo *p)
{
	const char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	unsigned long long start = 0;
	int ppid = 0;
	size_t n;

	if (!open || !close || close < open)
		return -EBADMSG;
	n = (size_t)(close - open - 1);
	if (n >= sizeof(p->comm))
		n = utf8_cut(open + 1, sizeof(p->comm) - 1);
	memcpy(p->comm, open + 1, n);
	p->comm[n] = '\0';
	/* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice threads itrealvalue starttime */
	if (sscanf(close + 2, "%*c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
		   "%*d %*d %*d %*d %llu", &ppid, &start) != 2)
		return -EBADMSG;
	p->ppid = ppid;
	p->start_ticks = start;
	return 0;
}

int procinfo_start_ticks(pid_t pid, __u64 *ret)
{
	struct procinfo p = {};
	char path[64], buf[1024];
	size_t len;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_file(path, buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	r = parse_stat(buf, &p);
	if (r < 0)
		return r;
	*ret = p.start_ticks;
	return 0;
}

static void read_ids(pid_t pid, struct procinfo *p)
{
	char path[64], buf[4096], *line;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, buf, sizeof(buf), &len) < 0)
		return;
	line = strstr(buf, "\nUid:");
	if (line)
		p->uid = (uid_t)strtoul(line + 5, NULL, 10);
	line = strstr(buf, "\nGid:");
	if (line)
		p->gid = (gid_t)strtoul(line + 5, NULL, 10);
}

int procinfo_read(pid_t pid, struct procinfo *ret)
{
	char path[64], buf[1024];
	size_t len;
	ssize_t n;
	int r;

	memset(ret, 0, sizeof(*ret));
	ret->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	r = read_file(path, buf, sizeof(buf), &len);
	if (r < 0)
		return r;
	r = parse_stat(buf, ret);
	if (r < 0)
		return r;
	read_ids(pid, ret);

	/* exe and cmdline may be unreadable (kernel threads, permissions):
	 * what we have is still an answer. */
	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, ret->exe, sizeof(ret->exe) - 1);
	if (n == (ssize_t)sizeof(ret->exe) - 1) /* maybe cut short: never mid-character */
		n = (ssize_t)utf8_cut(ret->exe, (size_t)n);
	ret->exe[n > 0 ? n : 0] = '\0';

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if (read_file(path, ret->cmdline, sizeof(ret->cmdline), &len) == 0) {
		/* the last argument cut short loses a whole character */
		if (len == sizeof(ret->cmdline) - 1)
			len = utf8_cut(ret->cmdline, len);
		/* drop the trailing NUL the kernel writes after the last arg */
		while (len > 0 && ret->cmdline[len - 1] == '\0')
			len--;
		ret->cmdline_len = len;
	}
	return 0;
}

__u64 boottime_ns_to_ticks(__u64 ns)
{
	long hz = sysconf(_SC_CLK_TCK);

	if (hz <= 0)
		hz = 100;
	return ns / (1000000000ULL / (unsigned long long)hz);
}

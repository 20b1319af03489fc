// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Regression test for queryd/dns-parse.c, built with the project's
 * compiler and its sanitizers (-Db_sanitize=address,undefined in CI; when
 * the build has none, meson adds them here if the compiler can).
 *
 * Arguments: directories of message files, the expected result taken from
 * the name: ok-* -> 0, bad-* -> -EBADMSG, nodata-* -> -ENODATA. For each
 * file also: the invariants of dns-parse-check.h; every strict prefix of
 * an ok-* file (none has authority or additional records) is -EBADMSG;
 * every single-byte change of any file keeps the invariants. And exact
 * contents for the known ok-* files.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dns-parse.h"
#include "dns-parse-check.h"

static int failures;

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); failures++; } while (0)

static struct dns_message msg;

/* parse an exact-size heap copy, so ASan sees reads past the end */
static int parse(const uint8_t *data, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	if (!copy)
		abort();
	memcpy(copy, data, len);
	r = dns_parse_response(copy, len, &msg);
	free(copy);
	return r;
}

static int read_file(const char *path, uint8_t **ret, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = malloc(65536);
	size_t n;

	if (!f || !buf) {
		if (f)
			fclose(f);
		free(buf);
		return -1;
	}
	n = fread(buf, 1, 65536, f);
	fclose(f);
	*ret = buf;
	*len = n;
	return 0;
}

static void check_invariants(const char *what, int r)
{
	const char *bad = dns_result_violation(r, &msg);

	if (bad)
		FAIL("%s: %s (returned %d)", what, bad, r);
}

static void expect_record(const char *file, size_t i, const char *name, uint16_t type, uint32_t ttl,
			  const char *target, const uint8_t *addr, size_t alen)
{
	const struct dns_record *rec;

	if (i >= msg.n_records) {
		FAIL("%s: record %zu missing (%zu records)", file, i, msg.n_records);
		return;
	}
	rec = &msg.records[i];
	if (strcmp(rec->name, name) != 0 || rec->type != type || rec->ttl != ttl)
		FAIL("%s: record %zu is %s type %u ttl %u, want %s type %u ttl %u", file, i, rec->name,
		     rec->type, rec->ttl, name, type, ttl);
	if (target && strcmp(rec->target, target) != 0)
		FAIL("%s: record %zu target %s, want %s", file, i, rec->target, target);
	if (addr && memcmp(rec->addr, addr, alen) != 0)
		FAIL("%s: record %zu address differs", file, i);
}

static void check_known(const char *file)
{
	static const uint8_t a2[] = { 127, 0, 0, 2 }, a4[] = { 127, 0, 0, 4 }, a5[] = { 127, 0, 0, 5 },
		a6[] = { 127, 0, 0, 6 }, a24[] = { 127, 0, 0, 24 };
	static const uint8_t v6[16] = { [15] = 1 };

	if (strcmp(file, "ok-a.bin") == 0) {
		if (strcmp(msg.qname, "real.example.test") != 0 || msg.n_records != 1 || msg.qtype != 1 ||
		    msg.rcode != 0)
			FAIL("%s: qname %s qtype %u rcode %u records %zu", file, msg.qname, msg.qtype, msg.rcode,
			     msg.n_records);
		expect_record(file, 0, "real.example.test", DNS_TYPE_A, 1234, NULL, a2, 4);
	} else if (strcmp(file, "ok-aaaa.bin") == 0) {
		if (strcmp(msg.qname, "v6.example.test") != 0 || msg.n_records != 1 || msg.qtype != 28)
			FAIL("%s: qname %s qtype %u records %zu", file, msg.qname, msg.qtype, msg.n_records);
		expect_record(file, 0, "v6.example.test", DNS_TYPE_AAAA, 300, NULL, v6, 16);
	} else if (strcmp(file, "ok-cname-chain.bin") == 0) {
		if (strcmp(msg.qname, "www.example.test") != 0 || msg.n_records != 4)
			FAIL("%s: qname %s records %zu", file, msg.qname, msg.n_records);
		expect_record(file, 0, "www.example.test", DNS_TYPE_CNAME, 300, "mid.example.test", NULL, 0);
		expect_record(file, 1, "mid.example.test", DNS_TYPE_CNAME, 300, "deep.example.test", NULL, 0);
		expect_record(file, 2, "deep.example.test", DNS_TYPE_A, 60, NULL, a4, 4);
		expect_record(file, 3, "deep.example.test", DNS_TYPE_A, 30, NULL, a5, 4);
	} else if (strcmp(file, "ok-nxdomain.bin") == 0) {
		if (strcmp(msg.qname, "nope.example.test") != 0 || msg.n_records != 0 || msg.rcode != 3)
			FAIL("%s: qname %s rcode %u records %zu", file, msg.qname, msg.rcode, msg.n_records);
	} else if (strcmp(file, "ok-txt-and-a.bin") == 0) {
		if (msg.n_records != 1)
			FAIL("%s: %zu records, want the A only", file, msg.n_records);
		expect_record(file, 0, "mixed.example.test", DNS_TYPE_A, 300, NULL, a6, 4);
	} else if (strcmp(file, "ok-uppercase.bin") == 0) {
		if (strcmp(msg.qname, "mixed.example.test") != 0)
			FAIL("%s: qname %s, want it lowercased", file, msg.qname);
	} else if (strcmp(file, "ok-root.bin") == 0) {
		if (strcmp(msg.qname, ".") != 0 || msg.n_records != 0)
			FAIL("%s: qname %s records %zu", file, msg.qname, msg.n_records);
	} else if (strcmp(file, "ok-253.bin") == 0) {
		if (strlen(msg.qname) != 253 || msg.n_records != 1)
			FAIL("%s: qname of %zu characters, %zu records", file, strlen(msg.qname), msg.n_records);
	} else if (strcmp(file, "ok-big.bin") == 0) {
		if (msg.n_records != DNS_MAX_RECORDS)
			FAIL("%s: %zu records, want the first %d", file, msg.n_records, DNS_MAX_RECORDS);
		expect_record(file, DNS_MAX_RECORDS - 1, "big.example.test", DNS_TYPE_A, 300, NULL, a24, 4);
	}
}

static void check_file(const char *dir, const char *file)
{
	char path[4096], what[4200];
	uint8_t *data;
	size_t len;
	int want, r;

	if (strncmp(file, "ok-", 3) == 0)
		want = 0;
	else if (strncmp(file, "bad-", 4) == 0)
		want = -EBADMSG;
	else if (strncmp(file, "nodata-", 7) == 0)
		want = -ENODATA;
	else
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (read_file(path, &data, &len) < 0) {
		FAIL("cannot read %s", path);
		return;
	}
	r = parse(data, len);
	check_invariants(file, r);
	if (r != want)
		FAIL("%s: dns_parse_response() returned %d, want %d", file, r, want);
	else if (want == 0)
		check_known(file);

	if (want == 0)
		for (size_t l = 0; l < len; l++) {
			r = parse(data, l);
			snprintf(what, sizeof(what), "%s cut to %zu bytes", file, l);
			check_invariants(what, r);
			if (r != -EBADMSG)
				FAIL("%s: returned %d, want %d", what, r, -EBADMSG);
		}
	for (size_t i = 0; i < len; i++) {
		uint8_t keep = data[i];
		static const uint8_t vals[] = { 0x00, 0x01, 0x3f, 0x40, 0x80, 0xc0, 0xc0 | 0x0c, 0xff };

		for (size_t v = 0; v < sizeof(vals) + 1; v++) {
			data[i] = v < sizeof(vals) ? vals[v] : (uint8_t)(keep ^ 0x20);
			r = parse(data, len);
			snprintf(what, sizeof(what), "%s with byte %zu = 0x%02x", file, i, data[i]);
			check_invariants(what, r);
		}
		data[i] = keep;
	}
	free(data);
	printf("ok %s (%zu bytes)\n", file, len);
}

int main(int argc, char **argv)
{
	int files = 0;

	for (int a = 1; a < argc; a++) {
		DIR *d = opendir(argv[a]);
		struct dirent *de;

		if (!d) {
			FAIL("cannot open %s", argv[a]);
			continue;
		}
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			check_file(argv[a], de->d_name);
			files++;
		}
		closedir(d);
	}
	if (files < 10)
		FAIL("only %d message files found", files);
	if (failures) {
		fprintf(stderr, "%d failure(s)\n", failures);
		return 1;
	}
	printf("PASS: %d files\n", files);
	return 0;
}

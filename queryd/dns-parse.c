// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <string.h>

#include "dns-parse.h"

#define DNS_HEADER 12
#define MAX_POINTER_JUMPS 16
#define MAX_LABELS 128

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Read the (possibly compressed) name at *off into out, lowercased and
 * dotted; *off moves past the name as it stands in the record. */
static int read_name(const uint8_t *msg, size_t len, size_t *off, char *out)
{
	size_t pos = *off, o = 0, end = 0;
	int jumps = 0, labels = 0;

	for (;;) {
		uint8_t l;

		if (pos >= len)
			return -EBADMSG;
		l = msg[pos];
		if ((l & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 1 >= len || ++jumps > MAX_POINTER_JUMPS)
				return -EBADMSG;
			target = (size_t)(l & 0x3f) << 8 | msg[pos + 1];
			if (!end)
				end = pos + 2;
			/* only backwards: a forward pointer could loop or read ahead */
			if (target >= pos)
				return -EBADMSG;
			pos = target;
			continue;
		}
		if (l & 0xc0)
			return -EBADMSG; /* 0x40/0x80 label types are obsolete */
		if (l == 0) {
			if (!end)
				end = pos + 1;
			break;
		}
		if (++labels > MAX_LABELS || pos + 1 + l > len)
			return -EBADMSG;
		if (o + l + (o ? 1 : 0) >= DNS_NAME_MAX)
			return -EBADMSG;
		if (o)
			out[o++] = '.';
		for (size_t i = 0; i < l; i++) {
			char c = (char)msg[pos + 1 + i];

			if (c == '\0' || c == '.')
				return -EBADMSG; /* would change what the name says */
			out[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		pos += 1 + l;
	}
	out[o] = '\0';
	if (o == 0) {
		out[0] = '.';
		out[1] = '\0';
	}
	*off = end;
	return 0;
}

/* The data of one answer record at msg + rdata: A, AAAA and CNAME kept
 * (1), other types skipped (0), a bad length (-EBADMSG). */
static int read_rdata(const uint8_t *msg, size_t len, size_t rdata, uint16_t rdlen, struct dns_record *rec)
{
	size_t p = rdata;

	switch (rec->type) {
	case DNS_TYPE_A:
	case DNS_TYPE_AAAA:
		if (rdlen != (rec->type == DNS_TYPE_A ? 4 : 16))
			return -EBADMSG;
		memcpy(rec->addr, msg + rdata, rdlen);
		return 1;
	case DNS_TYPE_CNAME:
		if (read_name(msg, len, &p, rec->target) < 0 || p != rdata + rdlen)
			return -EBADMSG;
		return 1;
	}
	return 0;
}

/* One answer record at *off: 1 kept in rec, 0 skipped, < 0 malformed. */
static int read_record(const uint8_t *msg, size_t len, size_t *off, struct dns_record *rec)
{
	uint16_t rdlen;
	size_t rdata;
	int r;

	memset(rec, 0, sizeof(*rec));
	r = read_name(msg, len, off, rec->name);
	if (r < 0)
		return r;
	if (*off + 10 > len)
		return -EBADMSG;
	rec->type = get16(msg + *off);
	rec->ttl = get32(msg + *off + 4);
	rdlen = get16(msg + *off + 8);
	rdata = *off + 10;
	if (rdata + rdlen > len)
		return -EBADMSG;
	*off = rdata + rdlen;
	return read_rdata(msg, len, rdata, rdlen, rec);
}

int dns_parse_response(const uint8_t *msg, size_t len, struct dns_message *ret)
{
	size_t off = DNS_HEADER;
	uint16_t qd, an;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (len < DNS_HEADER)
		return -EBADMSG;
	if (!(msg[2] & 0x80))
		return -ENODATA; /* a query, not a response */
	ret->rcode = msg[3] & 0x0f;
	qd = get16(msg + 4);
	an = get16(msg + 6);
	if (qd != 1)
		return -ENODATA;
	r = read_name(msg, len, &off, ret->qname);
	if (r < 0)
		return r;
	if (off + 4 > len)
		return -EBADMSG;
	ret->qtype = get16(msg + off);
	off += 4;
	/* an is at most 65535 and every record moves off forward */
	for (uint16_t i = 0; i < an; i++) {
		struct dns_record rec;

		r = read_record(msg, len, &off, &rec);
		if (r < 0)
			return r;
		if (r > 0 && ret->n_records < DNS_MAX_RECORDS)
			ret->records[ret->n_records++] = rec;
	}
	return 0;
}

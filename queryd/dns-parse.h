/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A DNS response message -> question name and A/AAAA/CNAME answers.
 * Input is whatever arrived on a socket: every length and every
 * compression pointer is checked, loops are bounded, and anything odd
 * makes the whole message "malformed" rather than half-trusted.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define DNS_NAME_MAX 254      /* 253 characters + NUL */
#define DNS_MAX_RECORDS 32

enum dns_rr_type { DNS_TYPE_A = 1, DNS_TYPE_CNAME = 5, DNS_TYPE_AAAA = 28 };

struct dns_record {
	char name[DNS_NAME_MAX];
	uint16_t type;
	uint32_t ttl;
	union {
		uint8_t addr[16];          /* A: 4 bytes, AAAA: 16 */
		char target[DNS_NAME_MAX]; /* CNAME */
	};
};

struct dns_message {
	char qname[DNS_NAME_MAX];
	uint16_t qtype;
	uint8_t rcode;
	size_t n_records;                 /* A, AAAA and CNAME only */
	struct dns_record records[DNS_MAX_RECORDS];
};

/* 0 parsed; -EBADMSG malformed; -ENODATA a valid message that is not a
 * response to one question. */
int dns_parse_response(const uint8_t *msg, size_t len, struct dns_message *ret);

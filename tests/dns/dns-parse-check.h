/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What must hold for any dns_parse_response() result, whatever the input:
 * shared by the fuzz target and the regression test. Returns NULL when it
 * holds, else what was violated.
 */
#pragma once

#include <errno.h>
#include <string.h>

#include "dns-parse.h"

static inline int dns_name_ok(const char *n)
{
	size_t l = strnlen(n, DNS_NAME_MAX);

	if (l == 0 || l >= DNS_NAME_MAX)
		return 0; /* empty or not terminated */
	for (size_t i = 0; i < l; i++)
		if (n[i] >= 'A' && n[i] <= 'Z')
			return 0; /* names come back lowercased */
	return 1;
}

static inline const char *dns_result_violation(int r, const struct dns_message *m)
{
	if (r != 0 && r != -EBADMSG && r != -ENODATA)
		return "return value other than 0, -EBADMSG, -ENODATA";
	if (r != 0)
		return NULL;
	if (!dns_name_ok(m->qname))
		return "qname empty, unterminated, over 253 characters or not lowercased";
	if (m->n_records > DNS_MAX_RECORDS)
		return "more records than DNS_MAX_RECORDS";
	if (m->rcode > 15)
		return "rcode over 4 bits";
	for (size_t i = 0; i < m->n_records; i++) {
		const struct dns_record *rec = &m->records[i];

		if (!dns_name_ok(rec->name))
			return "record owner name invalid";
		if (rec->type != DNS_TYPE_A && rec->type != DNS_TYPE_AAAA && rec->type != DNS_TYPE_CNAME)
			return "record of a type that should have been skipped";
		if (rec->type == DNS_TYPE_CNAME && !dns_name_ok(rec->target))
			return "CNAME target invalid";
	}
	return NULL;
}

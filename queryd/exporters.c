// SPDX-License-Identifier: GPL-2.0-or-later
#include <errno.h>
#include <stdlib.h>

#include "ecs.h"
#include "export-journal.h"
#include "export-ndjson.h"
#include "exporters.h"
#include "flow-json.h"
#include "jsonutil.h"
#include "log.h"
#include "manager.h"

struct exporters {
	struct ecs_host host;
	struct export_journal *journal;
	struct export_ndjson *ndjson;
};

/* Tuning without a command line option, e.g. from a unit's Environment=;
 * 0 (the default) when unset or not a number. */
static unsigned long long env_num(const char *name)
{
	const char *s = getenv(name);
	char *end;
	unsigned long long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end) {
		log_warning("Ignoring %s=%s: not a number", name, s);
		return 0;
	}
	return v;
}

int exporters_new(sd_event *e, const struct manager_config *cfg, struct exporters **ret)
{
	struct exporters *x;
	char err[512] = "";
	int r;

	*ret = NULL;
	if (!cfg->export_journal && !cfg->export_ndjson_path)
		return 0;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	ecs_host_read(&x->host);
	if (cfg->export_journal) {
		r = export_journal_new((unsigned)env_num("CONNPID_JOURNAL_RATE"),
				       (unsigned)env_num("CONNPID_JOURNAL_BURST"), &x->journal);
		if (r < 0)
			goto fail;
	}
	if (cfg->export_ndjson_path) {
		r = export_ndjson_new(e, cfg->export_ndjson_path, env_num("CONNPID_NDJSON_MAX_SIZE"),
				      (unsigned)env_num("CONNPID_NDJSON_KEEP"), &x->ndjson, err, sizeof(err));
		if (r < 0) {
			log_error_errno(r, "--export ndjson:%s: %s", cfg->export_ndjson_path, err);
			goto fail;
		}
	}
	*ret = x;
	return 0;
fail:
	exporters_free(x);
	return r;
}

struct exporters *exporters_free(struct exporters *x)
{
	if (!x)
		return NULL;
	export_journal_free(x->journal);
	export_ndjson_free(x->ndjson);
	free(x);
	return NULL;
}

void exporters_flow(struct exporters *x, json_object *flow)
{
	_cleanup_json_ json_object *rec = ecs_from_flow(flow, &x->host);

	if (!rec)
		return;
	if (x->journal)
		export_journal_flow(x->journal, rec, flow);
	if (x->ndjson)
		export_ndjson_record(x->ndjson, rec);
}

void manager_export_flow(struct manager *m, const struct flow *f)
{
	_cleanup_json_ json_object *text = NULL, *flow = NULL;

	if (!m->exporters)
		return;
	/* flow_to_json() gives rendered text (jsonw.h), not a tree: the ECS
	 * mapping reads members, so parse it once. */
	text = flow_to_json(m, f, -1);
	if (text)
		flow = json_tokener_parse(json_object_to_json_string_ext(text, JSON_LINE_FLAGS));
	if (flow)
		exporters_flow(m->exporters, flow);
}

static void add_u64(json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

json_object *exporters_stats_json(const struct exporters *x)
{
	json_object *o = json_object_new_object();

	if (x && x->journal) {
		struct export_journal_stats s;
		json_object *j = json_object_new_object();

		export_journal_get_stats(x->journal, &s);
		add_u64(j, "sent", s.sent);
		add_u64(j, "dropped", s.dropped);
		add_u64(j, "errors", s.errors);
		json_object_object_add(o, "journal", j);
	}
	if (x && x->ndjson) {
		struct export_ndjson_stats s;
		json_object *j = json_object_new_object();

		export_ndjson_get_stats(x->ndjson, &s);
		add_u64(j, "lines", s.lines);
		add_u64(j, "bytes", s.bytes);
		add_u64(j, "rotations", s.rotations);
		add_u64(j, "errors", s.errors);
		add_u64(j, "dropped", s.dropped);
		json_object_object_add(o, "ndjson", j);
	}
	return o;
}

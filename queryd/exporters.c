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
		r = export_journal_new(cfg->journal_rate, cfg->journal_burst, &x->journal);
		if (r < 0)
			goto fail;
	}
	if (cfg->export_ndjson_path) {
		r = export_ndjson_new(e, cfg->export_ndjson_path, cfg->ndjson_max_size, cfg->ndjson_keep,
				      &x->ndjson, err, sizeof(err));
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

void exporters_flow(struct exporters *x, json_object *flow, bool journal)
{
	_cleanup_json_ json_object *rec = ecs_from_flow(flow, &x->host);

	if (!rec)
		return;
	if (journal)
		export_journal_flow(x->journal, rec, flow);
	if (x->ndjson)
		export_ndjson_record(x->ndjson, rec);
}

void manager_export_flow(struct manager *m, const struct flow *f)
{
	_cleanup_json_ json_object *text = NULL, *flow = NULL;
	bool journal;

	if (!m->exporters)
		return;
	/* In a flood most flows are over the journal's rate: decide before
	 * paying for the record (the bench measured it at 26 us a flow). */
	journal = m->exporters->journal && export_journal_admit(m->exporters->journal);
	if (!journal && !m->exporters->ndjson)
		return;
	/* flow_to_json() gives rendered text (jsonw.h), not a tree: the ECS
	 * mapping reads members, so parse it once. */
	text = flow_to_json(m, f, -1);
	if (text)
		flow = json_tokener_parse(json_object_to_json_string_ext(text, JSON_LINE_FLAGS));
	if (flow)
		exporters_flow(m->exporters, flow, journal);
}

json_object *exporters_stats_json(const struct exporters *x)
{
	json_object *o = json_object_new_object();

	if (x && x->journal)
		json_object_object_add(o, "journal", export_journal_stats_to_json(x->journal));
	if (x && x->ndjson)
		json_object_object_add(o, "ndjson", export_ndjson_stats_to_json(x->ndjson));
	return o;
}

// SPDX-License-Identifier: GPL-2.0-or-later
/* connpidctl stats --prometheus: counters end in _total, gauges do not;
 * labels only where a few values exist. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "prometheus.h"

struct prom_metric {
	const char *path;  /* in the stats object: "a" or "a.b" */
	const char *name;
	const char *type;
	const char *help;
};

static const struct prom_metric prom_metrics[] = {
	{ "events_received", "connpid_events_total", "counter", "Flow events drained from the kernel's ring buffer." },
	{ "lookups", "connpid_lookups_total", "counter", "Lookup requests that reached the maps or the history." },
	{ "lookups_found", "connpid_lookups_found_total", "counter", "Lookup requests that found an owner." },
	{ "requests", "connpid_requests_total", "counter", "Requests answered." },
	{ "request_errors", "connpid_request_errors_total", "counter", "Requests answered with an error." },
	{ "clients_total", "connpid_clients_accepted_total", "counter", "Client connections accepted." },
	{ "clients_dropped_slow", "connpid_clients_dropped_slow_total", "counter", "Clients dropped for reading too slowly." },
	{ "clients_dropped_output_cap", "connpid_clients_dropped_output_cap_total", "counter", "Clients dropped past the output cap." },
	{ "ring_budget_stops", "connpid_ring_budget_stops_total", "counter", "Ring drains cut at their budget." },
	{ "accept_starved", "connpid_accept_starved_total", "counter", "Connections not taken for want of a file descriptor." },
	{ "index_evictions", "connpid_index_evictions_total", "counter", "Flows evicted from the in-memory index." },
	{ "proc_reads", "connpid_proc_reads_total", "counter", "Process details read from /proc." },
	{ "dns_responses", "connpid_dns_responses_total", "counter", "DNS responses parsed." },
	{ "dns_malformed", "connpid_dns_malformed_total", "counter", "DNS responses that did not parse." },
	{ "dns_truncated", "connpid_dns_truncated_total", "counter", "DNS responses cut at 1 KiB." },
	{ "dns_getaddrinfo", "connpid_dns_getaddrinfo_total", "counter", "getaddrinfo results taken." },
	{ "clients", "connpid_clients", "gauge", "Clients connected now." },
	{ "watchers", "connpid_watchers", "gauge", "Connections watching now." },
	{ "output_queued_bytes", "connpid_output_queued_bytes", "gauge", "Answer bytes not yet read by clients." },
	{ "index_flows", "connpid_index_flows", "gauge", "Flows in the in-memory index." },
	{ "index_capacity", "connpid_index_capacity", "gauge", "Capacity of the in-memory index." },
	{ "processes", "connpid_processes", "gauge", "Processes in the process cache." },
	{ "uptime_seconds", "connpid_uptime_seconds", "gauge", "Seconds since connpid-queryd started." },
	{ "loaded", "connpid_loaded", "gauge", "1 when the pinned programs and maps are in use." },
	{ "store.rows_queued", "connpid_store_rows_queued_total", "counter", "History rows queued." },
	{ "store.rows_written", "connpid_store_rows_written_total", "counter", "History rows written." },
	{ "store.rows_dropped", "connpid_store_rows_dropped_total", "counter", "History rows lost while the disk refused writes." },
	{ "store.rows_pruned", "connpid_store_rows_pruned_total", "counter", "History rows removed by retention." },
	{ "store.write_errors", "connpid_store_write_errors_total", "counter", "Failed history writes." },
	{ "store.transactions", "connpid_store_transactions_total", "counter", "History transactions committed." },
	{ "store.queue", "connpid_store_queue_rows", "gauge", "History rows waiting to be written." },
	{ "store.writable", "connpid_store_writable", "gauge", "1 when the last history write succeeded." },
	{ "export.journal.sent", "connpid_export_journal_entries_total", "counter", "Flow entries sent to journald." },
	{ "export.journal.dropped", "connpid_export_journal_dropped_total", "counter", "Flow entries dropped by the export rate limit." },
	{ "export.journal.errors", "connpid_export_journal_errors_total", "counter", "Entries journald refused." },
	{ "export.ndjson.lines", "connpid_export_ndjson_lines_total", "counter", "ECS records queued for the NDJSON file." },
	{ "export.ndjson.bytes", "connpid_export_ndjson_bytes_total", "counter", "Bytes written to the NDJSON file." },
	{ "export.ndjson.rotations", "connpid_export_ndjson_rotations_total", "counter", "Rotations of the NDJSON file." },
	{ "export.ndjson.errors", "connpid_export_ndjson_errors_total", "counter", "Failed NDJSON writes, opens or renames." },
	{ "export.ndjson.dropped", "connpid_export_ndjson_dropped_total", "counter", "ECS records lost to such failures." },
};

/* a.b.c in o; NULL when absent or null */
static json_object *jpath(json_object *o, const char *path)
{
	char key[64];

	for (const char *dot; o && (dot = strchr(path, '.')); path = dot + 1) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		if (!json_object_object_get_ex(o, key, &o))
			return NULL;
	}
	return o && json_object_object_get_ex(o, path, &o) ? o : NULL;
}

static void prom_header(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(const char *name, const char *labels, json_object *v)
{
	if (json_object_is_type(v, json_type_boolean))
		printf("%s%s %d\n", name, labels, json_object_get_boolean(v) ? 1 : 0);
	else if (json_object_is_type(v, json_type_int))
		printf("%s%s %" PRId64 "\n", name, labels, json_object_get_int64(v));
	else
		printf("%s%s %.17g\n", name, labels, json_object_get_double(v));
}

/* The map fill, by family: two values of one metric. */
static void prom_maps(json_object *s)
{
	static const char *const fam[] = { "v4", "v6" };
	char key[64];

	if (!jpath(s, "map_v4_entries") && !jpath(s, "map_v6_entries"))
		return;
	prom_header("connpid_map_entries", "gauge", "Entries in the pinned flow map.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "map_%s_entries", fam[i]);
		if (jpath(s, key))
			printf("connpid_map_entries{family=\"%s\"} %" PRId64 "\n", fam[i],
			       json_object_get_int64(jpath(s, key)));
	}
	prom_header("connpid_map_fill_ratio", "gauge", "Fill of the pinned flow map, 0 to 1.");
	for (size_t i = 0; i < 2; i++) {
		snprintf(key, sizeof(key), "map_%s_fill_percent", fam[i]);
		if (jpath(s, key))
			printf("connpid_map_fill_ratio{family=\"%s\"} %.17g\n", fam[i],
			       json_object_get_double(jpath(s, key)) / 100.0);
	}
}

/* The kernel's slots are all counts since the load. */
static void prom_kernel(json_object *s)
{
	json_object *k = jpath(s, "kernel");

	if (!k || !json_object_is_type(k, json_type_object))
		return;
	json_object_object_foreach(k, name, v) {
		char metric[128];
		bool ok = name[0] != '\0';

		for (const char *p = name; *p; p++)
			ok = ok && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_');
		if (!ok || !v)
			continue;
		snprintf(metric, sizeof(metric), "connpid_kernel_%s_total", name);
		prom_header(metric, "counter", "Kernel-side count (the stats map, summed over CPUs).");
		prom_value(metric, "", v);
	}
}

void print_prometheus(json_object *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(prom_metrics); i++) {
		const struct prom_metric *pm = &prom_metrics[i];
		json_object *v = jpath(s, pm->path);

		if (!v || json_object_is_type(v, json_type_object) || json_object_is_type(v, json_type_array) ||
		    json_object_is_type(v, json_type_string))
			continue;
		prom_header(pm->name, pm->type, pm->help);
		prom_value(pm->name, "", v);
	}
	prom_maps(s);
	prom_kernel(s);
}

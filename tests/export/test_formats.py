#!/usr/bin/python3
"""Issue 16 items 2, 4, 5: connpidctl's output formats, against a stand-in
daemon socket (no kernel needed):

  ecs_live      a FLOW (as `watch`/`recent` give it) -> every documented
                ECS field, with its value
  ecs_history   a history row (the FLOW shape, what the history knows) ->
                the same names as a live FLOW
  ecs_utf8      invalid UTF-8 in a row comes out as U+FFFD, valid JSON
  ecs_inbound   issue 14: an accepted flow (live and history FLOW) is
                network.direction "ingress", event.action "accept", the
                peer is source.*, this host's end destination.*, the
                listener is connpid.listener; outbound is "egress"/"connect";
                a flow without "direction" (older daemon) is outbound
  prometheus    `stats --prometheus` parsed by prometheus_client's
                text_string_to_metric_families; types right (counters end
                in _total and are typed counter), labels low-cardinality
Exit 0 pass, 1 fail, 77 skip."""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fakeqd  # noqa: E402

CTL = os.environ.get("CONNPIDCTL", "")
FAILED = []

BOOT = open("/proc/sys/kernel/random/boot_id").read().strip()
LIVE = {
    "proto": "tcp", "direction": "outbound", "family": "ipv4", "src": "10.1.2.3", "sport": 40000,
    "dst": "93.184.216.34",
    "dport": 443, "pid": 4242, "tid": 4243, "uid": 1000, "gid": 1000, "user": "alice",
    "comm": "curl", "exe": "/usr/bin/curl", "cmdline": ["curl", "-s", "https://example.com/"],
    "ppid": 4200, "cgroup_id": 77, "cgroup": "/system.slice/docker-abc.scope",
    "unit": "docker-abc.scope", "slice": "system.slice", "user_unit": None, "pod_uid": "pod-1",
    "container": {"id": "a" * 64, "runtime": "docker", "docker": "ok", "name": "web",
                  "image": "nginx:1.25", "compose_project": "shop"},
    "netns": 4026531840, "socket_cookie": 99, "start_time": 123456, "boot_id": BOOT,
    "first_seen": 1700000000.25, "last_seen": 1700000001.0, "alive": True, "pid_reused": False,
    "ancestors": [{"pid": 4200, "comm": "bash"}],
    "creator": {"pid": 4242, "comm": "curl", "start_time": 123456, "same_process": True},
    "domain": {"name": "example.com", "source": "same-process", "via": "packet",
               "cname_chain": [], "asked_by": "same-process", "ttl": 60, "age_seconds": 0.1},
    "seen": "event", "community_id": "1:LQU9qZlK+B5F3KDmev6m5PMibrg=",
}
# A history row: the FLOW shape (schema 2) with what the history stores,
# plus row_id and "seen":"history".
HIST = {
    "proto": "udp", "direction": "outbound", "family": "ipv6", "src": "::", "sport": 5353,
    "dst": "2001:db8::1", "dport": 53, "community_id": "1:abc=", "pid": 17,
    "tid": 17, "uid": 0, "gid": 0, "comm": "resolved", "exe": "/usr/lib/systemd/systemd-resolved",
    "cmdline": ["/usr/lib/systemd/systemd-resolved"], "cgroup_id": 5,
    "cgroup": "/system.slice/systemd-resolved.service", "unit": "systemd-resolved.service",
    "container": {"id": "b" * 64, "name": "dns", "image": "resolver:2"},
    "netns": 2, "socket_cookie": 1, "start_time": 55,
    "first_seen": 1700000000.25, "last_seen": 1700000000.25,
    "domain": {"name": "db8.example"}, "seen": "history", "row_id": 7,
}


def fail(case, msg):
    print("FAIL [%s]: %s" % (case, msg), flush=True)
    FAILED.append(case)


def get(rec, dotted):
    for k in dotted.split("."):
        if not isinstance(rec, dict) or k not in rec:
            return KeyError
        rec = rec[k]
    return rec


def ctl(sock, *args):
    r = subprocess.run([CTL, "--socket", sock] + list(args), capture_output=True, timeout=20)
    if r.returncode != 0:
        raise AssertionError("connpidctl %s: rc %d %s" % (args, r.returncode, r.stderr))
    return r.stdout


def ecs_records(tmp, flows, op="history"):
    sock = os.path.join(tmp, "q%d.sock" % len(os.listdir(tmp)))
    d = fakeqd.FakeDaemon(sock, {op: {"ok": True, "flows": flows}})
    try:
        out = ctl(sock, op, "--format", "ecs")
    finally:
        d.close()
    out.decode("utf-8")   # strict: must be valid UTF-8
    return [json.loads(line) for line in out.splitlines()]


def expect(case, rec, want):
    for k, v in want.items():
        got = get(rec, k)
        if got != v:
            fail(case, "%s = %r, want %r" % (k, got, v))


def machine_id():
    try:
        return open("/etc/machine-id").read().strip()
    except OSError:
        return KeyError


def case_ecs_live(tmp):
    [rec] = ecs_records(tmp, [LIVE], "recent")
    ticks = os.sysconf("SC_CLK_TCK")
    expect("ecs_live", rec, {
        "@timestamp": "2023-11-14T22:13:20.250Z", "ecs.version": "8.11.0",
        "event.kind": "event", "event.category": ["network"], "event.type": ["connection", "start"],
        "event.action": "connect", "event.dataset": "connpid.flow", "event.module": "connpid",
        "network.transport": "tcp", "network.type": "ipv4", "network.iana_number": "6",
        "network.community_id": LIVE["community_id"], "network.direction": "egress",
        "connpid.direction": KeyError, "connpid.listener": KeyError,
        "source.ip": "10.1.2.3", "source.port": 40000,
        "destination.ip": "93.184.216.34", "destination.port": 443, "destination.domain": "example.com",
        "process.pid": 4242, "process.name": "curl", "process.executable": "/usr/bin/curl",
        "process.command_line": "curl -s https://example.com/", "process.args_count": 3,
        "process.args": LIVE["cmdline"], "process.parent.pid": 4200, "process.thread.id": 4243,
        "process.entity_id": "%s-4242-123456" % BOOT,
        "user.id": "1000", "user.name": "alice", "group.id": "1000",
        "container.id": "a" * 64, "container.name": "web", "container.image.name": "nginx:1.25",
        "container.runtime": "docker",
        "host.id": machine_id(), "host.name": os.uname().nodename, "host.boot.id": BOOT,
        "connpid.unit": "docker-abc.scope", "connpid.slice": "system.slice", "connpid.pod_uid": "pod-1",
        "connpid.cgroup": "/system.slice/docker-abc.scope", "connpid.creator": LIVE["creator"],
        "connpid.ancestors": LIVE["ancestors"], "connpid.socket_cookie": 99, "connpid.netns": 4026531840,
        "connpid.start_time": 123456, "connpid.seen": "event", "connpid.domain.source": "same-process",
        "connpid.container.compose_project": "shop",
    })
    # process.start: boot time + start_time ticks, to the millisecond
    st = get(rec, "process.start")
    if not isinstance(st, str) or not st.endswith("Z") or len(st) != 24:
        fail("ecs_live", "process.start %r" % st)
    else:
        import datetime
        t = datetime.datetime.strptime(st, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
        up = float(open("/proc/uptime").read().split()[0])
        import time
        boot = time.time() - up
        if abs(t - (boot + 123456 / ticks)) > 2:
            fail("ecs_live", "process.start %s is not boot + 123456 ticks" % st)


def case_ecs_history(tmp):
    [rec] = ecs_records(tmp, [HIST])
    expect("ecs_history", rec, {
        "@timestamp": "2023-11-14T22:13:20.250Z", "network.transport": "udp", "network.type": "ipv6",
        "network.direction": "egress", "event.action": "connect",
        "network.iana_number": "17", "network.community_id": "1:abc=",
        "source.ip": KeyError,  # "::" = unknown source: no address
        "source.port": 5353, "destination.ip": "2001:db8::1", "destination.port": 53,
        "destination.domain": "db8.example", "process.pid": 17, "process.name": "resolved",
        "process.executable": "/usr/lib/systemd/systemd-resolved", "user.id": "0",
        "container.id": "b" * 64, "container.name": "dns", "container.image.name": "resolver:2",
        "connpid.cgroup": "/system.slice/systemd-resolved.service", "connpid.cgroup_path": KeyError,
        "connpid.container": HIST["container"], "connpid.domain": {"name": "db8.example"},
        "connpid.unit": "systemd-resolved.service", "connpid.row_id": 7, "connpid.seen": "history",
        # a row of 2023 predates this boot: its start_time counts from another
        "process.entity_id": KeyError, "process.start": KeyError,
    })


# An accepted connection: src/sport this host's listening end, dst/dport
# the remote client (connpid(7) FLOW), the listener instead of a creator.
LIVE_IN = dict({k: v for k, v in LIVE.items() if k not in ("creator", "domain")},
               direction="inbound", src="10.1.2.3", sport=8443, dst="198.51.100.7", dport=51234,
               listener={"pid": 4000, "comm": "nginx", "start_time": 1200})
HIST_IN = dict({k: v for k, v in HIST.items() if k != "domain"}, proto="tcp", direction="inbound",
               src="2001:db8::10", sport=22, dst="2001:db8::99", dport=60000,
               listener={"pid": 1, "comm": "systemd", "start_time": 3})
INBOUND_WANT = {
    "network.direction": "ingress", "event.action": "accept",
    "event.type": ["connection", "start"], "connpid.direction": KeyError,
}


def case_ecs_inbound(tmp):
    [rec] = ecs_records(tmp, [LIVE_IN], "recent")
    expect("ecs_inbound", rec, dict(INBOUND_WANT, **{
        "source.ip": "198.51.100.7", "source.port": 51234,
        "destination.ip": "10.1.2.3", "destination.port": 8443,
        "connpid.listener": LIVE_IN["listener"], "connpid.creator": KeyError,
        "process.pid": 4242, "process.name": "curl",
    }))
    [rec] = ecs_records(tmp, [HIST_IN])
    expect("ecs_inbound", rec, dict(INBOUND_WANT, **{
        "source.ip": "2001:db8::99", "source.port": 60000,
        "destination.ip": "2001:db8::10", "destination.port": 22,
        "connpid.listener": HIST_IN["listener"], "connpid.seen": "history",
    }))
    # a remote peer's domain names the source
    [rec] = ecs_records(tmp, [dict(HIST_IN, domain={"name": "client.example"})])
    expect("ecs_inbound", rec, {"source.domain": "client.example", "destination.domain": KeyError})
    # older daemons knew outbound flows only; an unknown word is "unknown"
    old = {k: v for k, v in HIST.items() if k != "direction"}
    [rec] = ecs_records(tmp, [old])
    expect("ecs_inbound", rec, {"network.direction": "egress", "event.action": "connect"})
    [rec] = ecs_records(tmp, [dict(HIST, direction="sideways")])
    expect("ecs_inbound", rec, {"network.direction": "unknown", "event.action": "connect"})


def case_ecs_utf8(tmp):
    # json.dumps escapes lone surrogates; the C side sees invalid UTF-8
    row = dict(HIST, comm="bad\udcff", exe="/x/\udc80y")
    [rec] = ecs_records(tmp, [row])
    for k in ("process.name", "process.executable"):
        v = get(rec, k)
        if not isinstance(v, str) or "\ufffd" not in v or "\udc80" in v or "\udcff" in v:
            fail("ecs_utf8", "%s = %r: invalid UTF-8 not replaced by U+FFFD" % (k, v))


STATS = {
    "events_received": 10, "lookups": 3, "lookups_found": 2, "requests": 9, "request_errors": 1,
    "clients": 1, "clients_total": 5, "watchers": 0, "clients_dropped_slow": 0,
    "clients_dropped_output_cap": 0, "output_queued_bytes": 0, "ring_budget_stops": 0,
    "accept_starved": 0, "index_flows": 8, "index_capacity": 65536, "index_evictions": 0,
    "processes": 4, "proc_reads": 4, "dns_responses": 0, "dns_malformed": 0, "dns_truncated": 0,
    "dns_getaddrinfo": 0, "uptime_seconds": 12.5, "loaded": True, "map_v4_entries": 8,
    "map_v4_fill_percent": 0.006, "map_v6_entries": 0, "map_v6_fill_percent": 0.0,
    "kernel": {"events": 10, "ringbuf_drops": 0, "map_update_errors": 0, "flows_v4": 8},
    "store": {"enabled": True, "rows_queued": 8, "rows_written": 8, "rows_dropped": 0,
              "rows_pruned": 0, "write_errors": 0, "transactions": 2, "queue": 0,
              "writable": True, "open": True},
    "export": {"journal": {"sent": 5, "dropped": 3, "errors": 0},
               "ndjson": {"lines": 8, "bytes": 4000, "rotations": 1, "errors": 0, "dropped": 0}},
}


def case_prometheus(tmp):
    from prometheus_client.parser import text_string_to_metric_families
    sock = os.path.join(tmp, "p.sock")
    d = fakeqd.FakeDaemon(sock, {"stats": {"ok": True, "stats": STATS}})
    try:
        text = ctl(sock, "stats", "--prometheus").decode()
    finally:
        d.close()
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    # the parser strips _total from a counter family's name
    want = {"connpid_events": ("counter", 10), "connpid_index_flows": ("gauge", 8),
            "connpid_uptime_seconds": ("gauge", 12.5), "connpid_loaded": ("gauge", 1),
            "connpid_store_rows_written": ("counter", 8), "connpid_kernel_ringbuf_drops": ("counter", 0),
            "connpid_export_journal_dropped": ("counter", 3), "connpid_store_queue_rows": ("gauge", 0)}
    for name, (typ, val) in want.items():
        f = fams.get(name)
        if not f:
            fail("prometheus", "no metric family %s" % name)
            continue
        if f.type != typ:
            fail("prometheus", "%s is %s, want %s" % (name, f.type, typ))
        if f.samples[0].value != val:
            fail("prometheus", "%s = %r, want %r" % (name, f.samples[0].value, val))
    fill = {s.labels.get("family"): s.value for s in fams["connpid_map_fill_ratio"].samples}
    if fill != {"v4": 0.00006, "v6": 0.0}:
        fail("prometheus", "map fill ratio %r" % fill)
    for f in fams.values():
        if f.type == "counter" and not all(s.name.endswith("_total") or s.name.endswith("_created")
                                           for s in f.samples):
            fail("prometheus", "counter %s without _total" % f.name)
        if f.type == "gauge" and f.name.endswith("_total"):
            fail("prometheus", "gauge %s named like a counter" % f.name)
        for s in f.samples:
            if set(s.labels) - {"family"}:
                fail("prometheus", "%s has labels %r (only family is allowed)" % (s.name, s.labels))
    print("prometheus: %d families parsed" % len(fams))


def main():
    if not CTL or not os.access(CTL, os.X_OK):
        print("SKIP: CONNPIDCTL not built")
        sys.exit(77)
    try:
        import prometheus_client  # noqa: F401
    except ImportError:
        print("SKIP: python3-prometheus-client is not installed (tests/install-deps.sh)")
        sys.exit(77)
    with tempfile.TemporaryDirectory(prefix="cpt-fmt-") as tmp:
        for case in (case_ecs_live, case_ecs_history, case_ecs_inbound, case_ecs_utf8, case_prometheus):
            n = len(FAILED)
            try:
                case(tmp)
            except Exception as e:
                fail(case.__name__, repr(e))
            print("%s: %s" % (case.__name__, "ok" if len(FAILED) == n else "FAILED"), flush=True)
    sys.exit(1 if FAILED else 0)


if __name__ == "__main__":
    main()

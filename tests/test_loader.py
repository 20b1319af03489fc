#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""connpid-loader: idempotent loads, --status, --unload, concurrent loaders,
rollback on injected failures, a pin dir off bpffs, non-root, --inbound
(accept tracepoints: pins, status, one inbound event per accept in scope)."""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import connpidtest as T  # noqa: E402
from connpidtest import case, check, check_eq  # noqa: E402

EXPECTED_PINS = sorted(list(T.MAP_PINS) + ["links", "progs"] +
                       ["links/" + p for p in T.ALL_PROGS] +
                       ["progs/" + p for p in T.ALL_PROGS])
EXPECTED_PINS_INBOUND = sorted(list(T.MAP_PINS) + ["links", "progs"] +
                               ["links/" + p for p in T.ALL_PROGS_INBOUND] +
                               ["progs/" + p for p in T.ALL_PROGS_INBOUND])
FAIL_STEPS = ("load", "pin-maps", "attach:0", "attach:3", "pin-progs", "meta")


def error_lines(p):
    return [l for l in p.stderr.splitlines() if l.strip()]


def check_one_error_line(p, what):
    lines = error_lines(p)
    check(len(lines) == 1, "%s: want exactly one line on stderr, got %d"
          % (what, len(lines)), *lines)
    return lines[0]


def check_clean(env, what):
    atts = env.attachments()
    check(atts == [], "%s: attachments left at %s" % (what, env.cgroup), atts)
    check(not os.path.lexists(env.pin_dir), "%s: pin dir %s left behind"
          % (what, env.pin_dir), "its entries: %s"
          % (env.pins() if os.path.isdir(env.pin_dir) else "-"))


def check_loaded(env, what):
    check_eq(env.pins(), EXPECTED_PINS, "%s: pins under %s" % (what, env.pin_dir))
    T.check_attached_once(env.cgroup)


@case
def load_twice_is_idempotent():
    with T.TestEnv("twice") as env:
        env.load()
        check_loaded(env, "first load")
        ids1 = sorted(a["id"] for a in env.attachments())
        st1 = env.status_json()
        env.load()
        check_loaded(env, "second load")
        ids2 = sorted(a["id"] for a in env.attachments())
        check_eq(ids2, ids1, "attached program ids after a second load")
        st2 = env.status_json()
        check_eq(sorted((m["name"], m["id"]) for m in st2["maps"]),
                 sorted((m["name"], m["id"]) for m in st1["maps"]),
                 "map ids after a second load (maps reused, not recreated)")
        check_eq(sorted((l["name"], l["id"]) for l in st2["links"]),
                 sorted((l["name"], l["id"]) for l in st1["links"]),
                 "link ids after a second load")
        # A third run with --ipv6-block on top must still not attach twice.
        env.load("--ipv6-block")
        check_loaded(env, "third load")
        with env.maps() as m:
            check_eq(m.config(), 1, "config[0] after --ipv6-block")


@case
def rerun_reattaches_detached_link():
    """A link pin whose link was detached (bpftool link detach, or the
    cgroup went away) must not count as attached: a re-run repairs it."""
    with T.TestEnv("detached") as env:
        env.load()
        link = json.loads(T.run(["bpftool", "link", "show", "pinned",
                                 os.path.join(env.pin_dir, "links",
                                              "connpid_sockops"), "-j"]).stdout)
        p = T.run(["bpftool", "link", "detach", "id", str(link["id"])])
        check_eq(p.returncode, 0, "bpftool link detach")
        check_eq(T.attachment_counts(env.cgroup).get("connpid_sockops"), None,
                 "sockops attachments after the detach")
        env.load()
        T.check_attached_once(env.cgroup)


@case
def status_shows_pins():
    with T.TestEnv("status") as env:
        env.load()
        p = T.run([env.loader, "--status", "--pin-dir", env.pin_dir])
        check_eq(p.returncode, 0, "--status exit")
        check(env.pin_dir in p.stdout, "--status does not name the pin dir")
        for name in T.MAP_PINS + T.ALL_PROGS:
            check(name in p.stdout, "--status does not show %s" % name, p.stdout)

        st = env.status_json()
        check_eq(st.get("pin_dir"), env.pin_dir, "status pin_dir")
        check_eq(st.get("loaded"), True, "status loaded")
        check_eq(st.get("abi_version"), T.ABI_VERSION, "status abi_version")
        check_eq(sorted(m["name"] for m in st["maps"]), sorted(T.MAP_PINS),
                 "status maps")
        check_eq(sorted(l["name"] for l in st["links"]), sorted(T.ALL_PROGS),
                 "status links")
        check_eq(sorted(q["name"] for q in st["programs"]), sorted(T.ALL_PROGS),
                 "status programs")
        attached_ids = {a["id"] for a in env.attachments()}
        for link in st["links"]:
            check_eq(link.get("attached"), True, "link %s attached" % link["name"])
            if link["name"] in T.TRACKER_GLOBAL_PROGS:
                # a tracing link: no cgroup; the program scopes itself
                check(link.get("link_type") in ("raw_tracepoint", "perf_event"),
                      "link %s type %s" % (link["name"], link.get("link_type")))
                continue
            check_eq(link.get("cgroup_id"), env.cgroup_id,
                     "link %s cgroup_id" % link["name"])
            check_eq(link.get("attach_type"), T.PROG_ATTACH_TYPE[link["name"]],
                     "link %s attach_type" % link["name"])
            check(link.get("prog_id") in attached_ids, "link %s: program %s "
                  "not among those bpftool sees attached" % (link["name"],
                                                             link.get("prog_id")))


@case
def unload_removes_everything():
    with T.TestEnv("unload") as env:
        env.load()
        check_loaded(env, "load")
        env.unload()
        check_clean(env, "after --unload")
        p = env.unload()  # nothing left: still success
        check_eq(p.returncode, 0, "second --unload exit")
        check_clean(env, "after a second --unload")
        # and it can be loaded again after that
        env.load()
        check_loaded(env, "reload after unload")


@case
def no_creator_leaves_sock_create_out():
    """--no-creator: cgroup/sock_create is neither attached nor pinned (no
    update per socket()); flows are still tracked; a plain reload adds it."""
    with T.TestEnv("nocreator") as env:
        env.load("--no-creator")
        want = [p for p in EXPECTED_PINS if not p.endswith("/connpid_sock_create")]
        check_eq(env.pins(), want, "--no-creator: pins under %s" % env.pin_dir)
        T.check_attached_once(env.cgroup, progs=[p for p in T.CGROUP_PROGS
                                                 if p != "connpid_sock_create"])
        env.ringdump(timeout_ms=100)
        with T.listener("tcp", "127.0.0.1") as dport:
            w = env.spawn("tcp4", "127.0.0.1", dport, comm="cpt-nocreator")
            with env.maps() as m:
                key = T.key_v4("127.0.0.1", w.info["sport"], dport, T.PROTO_TCP)
                check_eq(m.lookup_pid(key), w.pid, "--no-creator: pid of a TCP flow")
            events = [e for e in env.ringdump(timeout_ms=400) if e["pid"] == w.pid]
            check_eq(len(events), 1, "--no-creator: events of the TCP flow %s" % events)
            w.close()
        env.load()
        check_loaded(env, "reload without --no-creator")


@case
def concurrent_loaders():
    with T.TestEnv("concurrent") as env:
        for rnd in range(3):
            procs = [subprocess.Popen(env.loader_cmd(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
            results = [(p.wait(60), p.stderr.read()) for p in procs]
            for p in procs:
                p.stdout.close()
                p.stderr.close()
            T.log("round %d: %s" % (rnd, results))
            for rc, err in results:
                check_eq(rc, 0, "round %d: concurrent loader exit (%s)"
                         % (rnd, err.strip()))
            check_loaded(env, "round %d: two loaders at once" % rnd)
            env.unload()
            check_clean(env, "round %d: unload" % rnd)


@case
def failure_injection_rolls_back():
    with T.TestEnv("failinject") as env:
        for step in FAIL_STEPS:
            p = env.load(check_ok=False, env={"CONNPID_TEST_FAIL_AT": step})
            check(p.returncode != 0, "CONNPID_TEST_FAIL_AT=%s: loader succeeded"
                  % step)
            check_one_error_line(p, "CONNPID_TEST_FAIL_AT=%s" % step)
            check_clean(env, "CONNPID_TEST_FAIL_AT=%s" % step)
        env.load()
        check_loaded(env, "load after the injected failures")


@case
def failure_on_reload_keeps_working_load():
    """A failing re-run removes only what it added: the load before stays."""
    with T.TestEnv("failreload") as env:
        env.load()
        before = sorted(a["id"] for a in env.attachments())
        for step in ("pin-progs", "meta"):
            p = env.load(check_ok=False, env={"CONNPID_TEST_FAIL_AT": step})
            check(p.returncode != 0, "re-run with CONNPID_TEST_FAIL_AT=%s "
                  "succeeded" % step)
            check_one_error_line(p, "re-run CONNPID_TEST_FAIL_AT=%s" % step)
            check_loaded(env, "after a failed re-run at %s" % step)
            check_eq(sorted(a["id"] for a in env.attachments()), before,
                     "attachment ids after a failed re-run at %s" % step)
        st = env.status_json()
        check_eq(st.get("loaded"), True, "still loaded after failed re-runs")


@case
def killed_loader_heals_on_rerun():
    """A loader SIGKILLed midway leaves pins without meta; the next run
    starts over and ends with one attachment per program."""
    with T.TestEnv("killed") as env:
        for step in ("attach:3", "meta"):
            kill_loader_at(env, step)
            attached = [a["name"] for a in env.attachments()]
            T.log("killed at %s; pins: %s; attached: %s"
                  % (step, env.pins(), attached))
            # The scenario is real only if the dead loader left links behind.
            check_eq(len(attached), {"attach:3": 3, "meta": len(T.CGROUP_PROGS)}[step],
                     "programs left attached by a loader killed at %s" % step)
            env.load()
            check_loaded(env, "re-run after a loader killed at %s" % step)
            env.unload()
            check_clean(env, "unload after the kill at %s" % step)


def kill_loader_at(env, step):
    """Run the loader with CONNPID_TEST_HANG_AT=step and SIGKILL it there."""
    proc = subprocess.Popen(env.loader_cmd(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, CONNPID_TEST_HANG_AT=step))
    try:
        deadline = time.monotonic() + 30
        line = ""
        while "test hang" not in line:
            check(time.monotonic() < deadline, "loader never reached %s" % step)
            line = proc.stderr.readline()
            check(line or proc.poll() is None,
                  "loader exited before hanging at %s" % step)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stderr.close()


@case
def failure_after_healing_rolls_back():
    """A run that cleans up a dead loader's pins and then fails leaves
    nothing behind either (it re-created the pin dir, so it removes it)."""
    with T.TestEnv("healfail") as env:
        kill_loader_at(env, "meta")
        check_eq(len(env.attachments()), len(T.CGROUP_PROGS), "links left by the killed loader")
        p = env.load(check_ok=False, env={"CONNPID_TEST_FAIL_AT": "meta"})
        check(p.returncode != 0, "injected failure after healing: loader succeeded")
        check_clean(env, "failure after healing a half-loaded pin dir")


@case
def pin_dir_not_on_bpffs():
    with T.TestEnv("notbpffs") as env:
        tmp = tempfile.mkdtemp(prefix="connpid-test-notbpffs-")
        try:
            p = T.run([env.loader, "--pin-dir", tmp, "--cgroup", env.cgroup])
            check(p.returncode != 0, "loader accepted a pin dir on %s" % tmp)
            line = check_one_error_line(p, "pin dir off bpffs")
            check("bpffs" in line, "error does not mention bpffs", line)
            check_eq(os.listdir(tmp), [], "pins written into %s" % tmp)
            check_eq(env.attachments(), [], "attachments after the refusal")

            missing = os.path.join(tmp, "sub")
            p = T.run([env.loader, "--pin-dir", missing, "--cgroup", env.cgroup])
            check(p.returncode != 0, "loader accepted a pin dir on %s" % missing)
            line = check_one_error_line(p, "new pin dir off bpffs")
            check("bpffs" in line, "error does not mention bpffs", line)
            check(not os.path.exists(missing), "loader left %s behind" % missing)
            check_eq(env.attachments(), [], "attachments after the refusal")
        finally:
            T.remove_pin_tree(tmp)


@case
def non_root_is_refused():
    setpriv = "/usr/bin/setpriv"
    if not os.access(setpriv, os.X_OK):
        T.log("no setpriv: skipping the non-root case")
        return
    with T.TestEnv("nonroot") as env:
        drop = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        probe = T.run(drop + ["test", "-x", env.loader])
        if probe.returncode != 0:
            T.log("nobody cannot execute %s: skipping the non-root case" % env.loader)
            return
        for args in ([], ["--unload"]):
            p = T.run(drop + env.loader_cmd(*args, cgroup=not args))
            check(p.returncode != 0, "loader %s ran as nobody" % args)
            line = check_one_error_line(p, "non-root %s" % args)
            check("root" in line, "non-root error does not say root", line)
            check_clean(env, "after the non-root attempt %s" % args)


# Runs in the test cgroup: listen (dual-stack or v4), fork a child that
# accept()s `n` connections (accept4 or accept), each reported as a line.
ACCEPTOR = r"""
import json, os, socket, sys
host, n, call = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
s.bind((host, 0))
s.listen(8)
s.settimeout(20)
print(json.dumps({"pid": os.getpid(), "port": s.getsockname()[1]}), flush=True)
child = os.fork()
if child == 0:
    for _ in range(n):
        if call == "accept":
            # the accept syscall itself, not libc's (which may use accept4)
            import ctypes, select
            nr = {"x86_64": 43, "aarch64": 202, "riscv64": 202}[os.uname().machine]
            select.select([s], [], [], 20)
            fd = ctypes.CDLL(None, use_errno=True).syscall(nr, s.fileno(), None, None)
            if fd < 0:
                sys.exit("accept: %s" % os.strerror(ctypes.get_errno()))
            c = socket.socket(fileno=fd)
        else:
            c, _ = s.accept()
        print(json.dumps({"pid": os.getpid(), "peer_port": c.getpeername()[1]}), flush=True)
        c.close()
    os._exit(0)
os.waitpid(child, 0)
"""


def start_acceptor(env, host, n, call="accept4"):
    """The acceptor in env's cgroup; (proc, listener pid, port)."""
    procs = os.path.join(env.cgroup, "cgroup.procs")

    def enter():
        with open(procs, "w") as f:
            f.write(str(os.getpid()))

    p = subprocess.Popen([sys.executable, "-c", ACCEPTOR, host, str(n), call],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=enter, close_fds=True)
    first = json.loads(p.stdout.readline() or "null")
    check(first, "acceptor did not start", p.stderr.read() if p.poll() is not None else "")
    return p, first["pid"], first["port"]


def connect_and_accept(proc, host, port):
    """Connect from the test process (outside the cgroup); the acceptor's
    line for it (its pid, our source port seen from there)."""
    with socket.create_connection((host, port), timeout=10) as c:
        sport = c.getsockname()[1]
        line = json.loads(proc.stdout.readline() or "null")
    check(line, "acceptor said nothing for the connection from port %d" % sport,
          proc.stderr.read() if proc.poll() is not None else "")
    check_eq(line["peer_port"], sport, "peer port the acceptor saw")
    return line


def finish(proc):
    try:
        check_eq(proc.wait(20), 0, "acceptor exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def inbound_events(env):
    return [e for e in T.read_ring(env.pin_dir) if e["source"] == T.SRC_ACCEPT]


@case
def inbound_loads_attaches_and_reports_accepts():
    """--inbound: the accept tracepoints are attached and pinned, --status
    says so, each accept() in the cgroup is one inbound event (local end as
    src, listener as creator) and nothing enters the seed maps; accepts
    outside the cgroup are not reported; --unload removes all of it."""
    with T.TestEnv("inbound") as env:
        env.load("--inbound")
        check_eq(env.pins(), EXPECTED_PINS_INBOUND, "--inbound: pins")
        T.check_attached_once(env.cgroup)  # no new cgroup program
        st = env.status_json()
        check_eq(st.get("inbound"), True, "status inbound")
        links = {l["name"]: l for l in st["links"]}
        for name in T.INBOUND_PROGS:
            check(name in links, "--status lists no link %s" % name, sorted(links))
            check_eq(links[name].get("link_type"), "perf_event", "%s link type" % name)
            check_eq(links[name].get("attached"), True, "%s attached" % name)
        p = T.run([env.loader, "--status", "--pin-dir", env.pin_dir])
        check("inbound:  on" in p.stdout, "--status text does not say inbound is on", p.stdout)
        T.read_ring(env.pin_dir)  # what the load seeded
        check_accepts(env, "127.0.0.1", "accept4")
        check_accepts(env, "::", "accept")
        check_outside_accept_unseen(env)
        # a plain re-run keeps inbound on
        env.load()
        check_eq(env.pins(), EXPECTED_PINS_INBOUND, "pins after a re-run without --inbound")
        check_eq(env.status_json().get("inbound"), True, "inbound after a plain re-run")
        env.unload()
        check_clean(env, "--inbound, after --unload")


def check_accepts(env, host, call):
    """Two connections to an acceptor listening on host; host '::' is a
    dual-stack listener reached over IPv4 (folded to AF_INET) and IPv6."""
    targets = ["127.0.0.1", "::1"] if host == "::" else ["127.0.0.1", "127.0.0.1"]
    with env.maps() as m:
        before = m.stat(T.STAT_EVENTS)
        proc, lpid, port = start_acceptor(env, host, len(targets), call)
        try:
            lines = [connect_and_accept(proc, t, port) for t in targets]
        finally:
            finish(proc)
        after = m.stat(T.STAT_EVENTS)
        check_eq(after - before, len(targets), "%s on %s: events counted" % (call, host))
        events = inbound_events(env)
        T.log("%s on %s: %s" % (call, host, events))
        check_eq(len(events), len(targets), "%s on %s: inbound events" % (call, host))
        for e, line, t in zip(events, lines, targets):
            what = "%s on %s from %s" % (call, host, t)
            check_eq(e["flags"], T.EVENT_FLAG_INBOUND, what + ": flags")
            check_eq(e["protocol"], T.PROTO_TCP, what + ": protocol")
            check_eq(e["family"], T.AF_INET6 if ":" in t else T.AF_INET, what + ": family")
            check_eq((e["src_ip"], e["src_port"]), (t, port), what + ": src (local end)")
            check_eq((e["dst_ip"], e["dst_port"]), (t, line["peer_port"]), what + ": dst (peer)")
            check_eq(e["pid"], line["pid"], what + ": pid (the acceptor)")
            check_eq(e["creator_pid"], lpid, what + ": creator_pid (the listener)")
            check_eq(e["creator_comm"], e["comm"], what + ": creator_comm")
            check_eq(e["netns_ino"], T.netns_ino(), what + ": netns")
            check_eq(e["cgroup_id"], env.cgroup_id, what + ": cgroup")
            key = (T.key_v4 if e["family"] == T.AF_INET else T.key_v6)(
                t, port, line["peer_port"], T.PROTO_TCP)
            check_eq(m.lookup_pid(key), None, what + ": seed map entry for the inbound flow")


def check_outside_accept_unseen(env):
    """The tracepoints are global; the scope check keeps other cgroups out."""
    with env.maps() as m, socket.socket() as s:
        before = m.stat(T.STAT_EVENTS)
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        with socket.create_connection(s.getsockname(), timeout=10):
            c, _ = s.accept()
            c.close()
        check_eq(m.stat(T.STAT_EVENTS) - before, 0, "events of an accept outside the cgroup")
    check_eq(inbound_events(env), [], "inbound events of an accept outside the cgroup")


@case
def inbound_listener_older_than_load():
    """A listener that existed before the load gets its owner from the
    seeding walk: its accepts name it as the listener."""
    with T.TestEnv("inboundseed") as env:
        proc, lpid, port = start_acceptor(env, "127.0.0.1", 1)
        try:
            env.load("--inbound")
            T.read_ring(env.pin_dir)
            line = connect_and_accept(proc, "127.0.0.1", port)
        finally:
            finish(proc)
        events = inbound_events(env)
        check_eq(len(events), 1, "inbound events %s" % events)
        check_eq(events[0]["pid"], line["pid"], "pid (the acceptor)")
        check_eq(events[0]["creator_pid"], lpid, "creator_pid (the listener, seeded)")


@case
def inbound_mounts_tracefs():
    """libbpf finds tracepoint ids in tracefs: with none mounted (in a
    private mount namespace, so the host keeps its own) --inbound mounts it
    at /sys/kernel/tracing and loads."""
    unshare = "/usr/bin/unshare"
    if not os.access(unshare, os.X_OK) or os.path.exists("/sys/kernel/debug/tracing"):
        T.log("no unshare, or debugfs tracing present: skipping the tracefs case")
        return
    with T.TestEnv("tracefs") as env:
        script = ("umount /sys/kernel/tracing 2>/dev/null; "
                  "if grep -q ' /sys/kernel/tracing ' /proc/self/mountinfo; then exit 90; fi; "
                  "\"$@\" || exit $?; grep -q ' /sys/kernel/tracing .* - tracefs ' /proc/self/mountinfo")
        p = T.run([unshare, "--mount", "--propagation", "private", "sh", "-c", script, "sh"] +
                  env.loader_cmd("--inbound"))
        check(p.returncode != 90, "tracefs could not be unmounted in a private namespace")
        check_eq(p.returncode, 0, "--inbound without tracefs: load, then tracefs mounted")
        check("Mounted tracefs" in p.stderr, "the loader did not say it mounted tracefs", p.stderr)
        check_eq(env.status_json().get("inbound"), True, "status inbound")


@case
def without_inbound_no_accept_program():
    """The default: no accept program loaded, status says inbound off, an
    accept in the cgroup makes no event; --inbound on top is refused
    (listen() owners would be missing) with one line saying what to do."""
    with T.TestEnv("noinbound") as env:
        env.load()
        check_loaded(env, "load without --inbound")
        check_eq(env.status_json().get("inbound"), False, "status inbound")
        p = T.run([env.loader, "--status", "--pin-dir", env.pin_dir])
        check("inbound:  off" in p.stdout, "--status text does not say inbound is off", p.stdout)
        st = env.status_json()
        for kind in ("links", "programs"):
            names = [x["name"] for x in st[kind]]
            check(not set(T.INBOUND_PROGS) & set(names), "%s without --inbound" % kind, names)
        T.read_ring(env.pin_dir)
        with env.maps() as m:
            before = m.stat(T.STAT_EVENTS)
            proc, _, port = start_acceptor(env, "127.0.0.1", 1)
            try:
                connect_and_accept(proc, "127.0.0.1", port)
            finally:
                finish(proc)
            check_eq(m.stat(T.STAT_EVENTS) - before, 0, "events of an accept without --inbound")
        check_eq(inbound_events(env), [], "inbound events without --inbound")
        p = env.load("--inbound", check_ok=False)
        check(p.returncode != 0, "--inbound over a load without it succeeded")
        line = check_one_error_line(p, "--inbound over a load without it")
        check("--unload" in line, "the refusal does not say to unload first", line)
        check_loaded(env, "after the refused --inbound")


@case
def inbound_failure_rolls_back():
    """An injected failure late in an --inbound load leaves nothing."""
    with T.TestEnv("inboundfail") as env:
        for step in ("attach:13", "pin-progs", "meta"):
            p = env.load("--inbound", check_ok=False, env={"CONNPID_TEST_FAIL_AT": step})
            check(p.returncode != 0, "--inbound with CONNPID_TEST_FAIL_AT=%s succeeded" % step)
            check_one_error_line(p, "--inbound CONNPID_TEST_FAIL_AT=%s" % step)
            check_clean(env, "--inbound CONNPID_TEST_FAIL_AT=%s" % step)
        env.load("--inbound")
        check_eq(env.pins(), EXPECTED_PINS_INBOUND, "pins after the injected failures")


if __name__ == "__main__":
    T.run_cases()

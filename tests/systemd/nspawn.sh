#!/bin/bash
# Issue 7, item 2: connpid under a real systemd as PID 1 (systemd-nspawn).
#
#  - meson install into a cached bookworm rootfs; systemd-sysusers,
#    systemd-tmpfiles --create, daemon-reload;
#  - systemctl start connpid-loader, connpid-queryd.socket/.service;
#  - the pins are root's (issue 12 item 10): links and programs 0600
#    root:root, maps 0640 root:connpid, the rings 0660 root:connpid;
#  - a flow made inside (a transient unit) is found by `connpidctl lookup`
#    run as alice (member of the query group connpid-query, not of the
#    daemon's group connpid); bob (in neither) is refused: first by the
#    socket's 0660 root:connpid-query, then, with the socket opened to
#    everyone by a drop-in, by the daemon's own SO_PEERCRED policy;
#  - systemctl restart connpid-queryd while another unit keeps connecting:
#    the attached links are the same before and after, and every flow made
#    meanwhile is found afterwards, with its pid, from its ring-buffer event;
#  - systemctl stop connpid-loader: the pin dir is gone and nothing connpid
#    attached is left on the container's cgroup;
#  - systemctl enable, reboot: loader then queryd come up by themselves
#    (queryd drains from boot on), and answer.
# Prints `systemd-analyze security connpid-queryd.service` under the real PID 1.
#
# Env: CONNPID_BUILD_DIR, CONNPID_SOURCE_DIR.  Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

ct_setup sd
ct_prepare
ct_boot

# ---------------------------------------------------------------- install
log "systemd-sysusers, systemd-tmpfiles --create, users alice (in connpid-query) and bob"
in_ct systemd-sysusers || ct_fail "systemd-sysusers failed"
in_ct getent group connpid >/dev/null || die "sysusers did not create group connpid"
in_ct getent passwd connpid >/dev/null || die "sysusers did not create user connpid"
in_ct getent group connpid-query >/dev/null || die "sysusers did not create group connpid-query"
qmembers=$(in_ct getent group connpid-query | cut -d: -f4)
[ -z "$qmembers" ] || ct_fail "group connpid-query has members out of the box: $qmembers"
in_ct systemd-tmpfiles --create || ct_fail "systemd-tmpfiles --create failed"
perm=$(in_ct stat -c '%a %U:%G' /var/lib/connpid 2>&1)
[ "$perm" = "750 connpid:connpid" ] || ct_fail "/var/lib/connpid is '$perm', expected '750 connpid:connpid'"
in_ct useradd -m -G connpid-query alice || die "useradd alice"
in_ct useradd -m bob || die "useradd bob"
in_ct systemctl daemon-reload || die "daemon-reload"
# The shipped units under the real PID 1, with the installed paths.
out=$(in_ct systemd-analyze verify --man=no connpid-loader.service connpid-queryd.service \
        connpid-queryd.socket 2>&1)
[ -z "$out" ] || { echo "$out" | sed 's/^/  /'; ct_fail "systemd-analyze verify inside the container warns"; }

base_attached=$(host_attach_count)
log "programs attached to the container's cgroup2 root before the loader: $base_attached"

# ---------------------------------------------------------------- start
log "systemctl start connpid-loader"
in_ct systemctl start connpid-loader.service || die "systemctl start connpid-loader failed"
[ "$(in_ct systemctl is-active connpid-loader.service)" = active ] || die "connpid-loader is not active"
[ -d "$PIN" ] || die "no pin dir $PIN after the loader ran"
links0=$(loader_links)
attached0=$(host_attach_count)
log "loader: links attached $links0; bpftool on host: $attached0 programs on the cgroup"
[ "${links0%%:*}" != "n/a" ] && [ "${links0%%:*}" -gt 0 ] || die "loader --status reports no attached links ($links0)"
# Least privilege on the pins: only root writes a map or touches a link.
pin_mode() { in_ct stat -c '%a %U:%G' "$1" 2>&1; }
for want in "$PIN:750 root:connpid" "$PIN/links:700 root:root" "$PIN/progs:700 root:root" \
            "$PIN/conn_to_pid_v4:640 root:connpid" "$PIN/meta:640 root:connpid" \
            "$PIN/config:640 root:connpid" "$PIN/events:660 root:connpid" \
            "$PIN/links/connpid_sockops:600 root:root" "$PIN/progs/connpid_sockops:600 root:root"; do
    got=$(pin_mode "${want%%:*}")
    [ "$got" = "${want#*:}" ] || ct_fail "${want%%:*} is '$got', expected '${want#*:}'"
done

log "systemctl start connpid-queryd.socket connpid-queryd.service"
in_ct systemctl start connpid-queryd.socket connpid-queryd.service || die "systemctl start connpid-queryd failed"
[ "$(in_ct systemctl is-active connpid-queryd.service)" = active ] || die "connpid-queryd is not active"
sock=$(in_ct stat -c '%a %U:%G' /run/connpid.sock 2>&1)
[ "$sock" = "660 root:connpid-query" ] || ct_fail "/run/connpid.sock is '$sock', expected '660 root:connpid-query'"
user=$(in_ct systemctl show -p User --value connpid-queryd.service)
qpid=$(in_ct systemctl show -p MainPID --value connpid-queryd.service)
log "queryd MainPID $qpid (container pid), User=$user"
in_ct grep -E '^(Uid|Gid|CapEff|Seccomp):' "/proc/$qpid/status" | sed 's/^/  queryd /'

# ---------------------------------------------------------------- lookup as alice
# A flow made by a transient unit inside the container; it stays alive so we
# can map its container pid to the host pid that BPF reports.
in_ct mkdir -p /run/connpid-test
in_ct systemd-run --quiet --collect --unit=connpid-test-flow -p Description="connpid test flow" \
    python3 /usr/local/lib/connpid-test/flows.py once 1 /run/connpid-test/once.txt 120 </dev/null ||
    die "cannot start the flow unit"
flow=
for _ in $(seq 1 100); do
    flow=$(in_ct cat /run/connpid-test/once.txt 2>/dev/null) && [ -n "$flow" ] && break
    sleep 0.1
done
read -r cpid fsport fdport _ <<<"$flow"
[ -n "${fdport:-}" ] || die "the flow maker wrote nothing ('$flow')"
fpid=$(host_pid_of "$cpid") || die "cannot find the host pid of container pid $cpid"
log "flow: pid $fpid (container pid $cpid) 127.0.0.1 sport $fsport -> dport $fdport"

lookup_json() { # USER SPORT DPORT -> prints "rc json"
    local out rc
    out=$(ct_run -p User="$1" "$CTL_EXE" --json lookup 127.0.0.1 "$2" "$3" --protocol tcp 2>&1)
    rc=$?
    echo "$rc $out"
}
res=$(lookup_json alice "$fsport" "$fdport")
rc=${res%% *}; js=${res#* }
echo "  alice: exit $rc: $js"
if [ "$rc" != 0 ]; then
    ct_fail "connpidctl lookup as alice (group connpid-query) exited $rc, expected 0 (found)"
else
    got=$(echo "$js" | "$PY" -c 'import json,sys; f=json.loads(sys.stdin.readline())["flow"]; print(f.get("pid"), f.get("comm"), f.get("unit"), f.get("alive"))' 2>&1)
    read -r gpid gcomm gunit galive <<<"$got"
    [ "$gpid" = "$fpid" ] || ct_fail "lookup as alice found pid '$gpid', expected $fpid"
    [ "$gcomm" = python3 ] || ct_fail "lookup as alice: comm '$gcomm', expected python3"
    # The cgroup -> unit enrichment (open_by_handle_at) must survive the unit's hardening.
    [ "$gunit" = connpid-test-flow.service ] || ct_fail "lookup reports unit '$gunit', expected connpid-test-flow.service (cgroup not resolved under the hardened unit?)"
    [ "$galive" = True ] || log "note: lookup says alive=$galive for a live process (queryd runs in the container's pid namespace, BPF pids are the host's)"
fi
# Human output too (the default table), for the log.
ct_run -p User=alice "$CTL_EXE" lookup 127.0.0.1 "$fsport" "$fdport" 2>&1 | sed 's/^/  alice (table): /'

# ---------------------------------------------------------------- bob is refused (socket mode)
res=$(lookup_json bob "$fsport" "$fdport")
rc=${res%% *}; msg=${res#* }
echo "  bob: exit $rc: $msg"
[ "$rc" = 2 ] || ct_fail "connpidctl lookup as bob (not in group connpid-query) exited $rc, expected 2"
echo "$msg" | grep -qi 'permission' || ct_fail "bob's refusal does not mention permission: '$msg'"
echo "$msg" | grep -q "\"pid\": *$fpid\b" && ct_fail "bob got the flow"

# ---------------------------------------------------------------- restart under load
log "restart under load: a unit connecting every 20 ms for 6 s"
in_ct rm -f /run/connpid-test/churn.txt
in_ct systemd-run --quiet --collect --unit=connpid-test-churn \
    python3 /usr/local/lib/connpid-test/flows.py churn /run/connpid-test/churn.txt 6 </dev/null ||
    die "cannot start the churn unit"
churn_cpid=
for _ in $(seq 1 50); do
    churn_cpid=$(in_ct head -1 /run/connpid-test/churn.txt 2>/dev/null | cut -d' ' -f1)
    [ -n "$churn_cpid" ] && break
    sleep 0.1
done
churn_pid=$(host_pid_of "${churn_cpid:-none}") || die "cannot find the churn unit's host pid"
log "churn: pid $churn_pid (container pid $churn_cpid)"
sleep 1.5
before_links=$(loader_links); before_att=$(host_attach_count)
oldpid=$(in_ct systemctl show -p MainPID --value connpid-queryd.service)
t0=$(in_ct date +%s.%N)
in_ct systemctl restart connpid-queryd.service || ct_fail "systemctl restart connpid-queryd failed"
t1=$(in_ct date +%s.%N)
newpid=$(in_ct systemctl show -p MainPID --value connpid-queryd.service)
after_links=$(loader_links); after_att=$(host_attach_count)
log "restart took $(echo "$t1 - $t0" | bc 2>/dev/null || echo "?") s; MainPID $oldpid -> $newpid"
log "links: before $before_links, after $after_links; bpftool: before $before_att, after $after_att"
[ "$oldpid" != "$newpid" ] && [ "$newpid" != 0 ] || ct_fail "queryd was not restarted (MainPID $oldpid -> $newpid)"
[ "$before_links" = "$after_links" ] || ct_fail "attached links changed across the restart: $before_links -> $after_links"
[ "$before_att" = "$after_att" ] || ct_fail "programs on the cgroup changed across the restart: $before_att -> $after_att"
[ "$links0" = "$after_links" ] || ct_fail "attached links changed since the loader ran: $links0 -> $after_links"
# Wait for the churn unit to finish, then look every flow up (as alice, in one unit).
for _ in $(seq 1 100); do
    in_ct systemctl is-active --quiet connpid-test-churn.service || break
    sleep 0.1
done
sleep 0.5
n=$(in_ct cat /run/connpid-test/churn.txt | wc -l)
[ "$n" -gt 50 ] || ct_fail "the churn unit made only $n flows"
# shellcheck disable=SC2016
ct_run -p User=alice sh -c 'while read -r pid sport dport t; do
        out=$('"$CTL_EXE"' --json lookup 127.0.0.1 "$sport" "$dport" 2>&1); rc=$?
        printf "L %s %s %s %s %s\n" "$pid" "$sport" "$t" "$rc" "$out"
        out=$('"$CTL_EXE"' --json lookup --at "$t" 127.0.0.1 "$sport" "$dport" 2>&1); rc=$?
        printf "H %s %s %s %s %s\n" "$pid" "$sport" "$t" "$rc" "$out"
    done </run/connpid-test/churn.txt' >"$T/churn-lookups.txt" 2>&1
summary=$("$PY" - "$T/churn-lookups.txt" "$t0" "$t1" "$churn_pid" <<'EOF'
# Every flow: the live lookup finds it with the churn unit's pid.  A flow the
# live lookup knows only from the map (its event was drained by the old
# instance) must be in the history store (lookup --at) with the right pid; a
# flow made after the restart returned must have its event (seen=event): the
# events of flows made while queryd was down waited in the ring.
import json, sys
path, t0, t1, hostpid = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
live, hist = {}, {}
bad = []
for line in open(path):
    parts = line.rstrip("\n").split(" ", 5)
    if len(parts) < 6 or parts[0] not in "LH":
        bad.append("unparsable: " + line.strip()); continue
    kind, _, sport, t, rc, out = parts
    try:
        a = json.loads(out)
    except ValueError:
        a = {"raw": out}
    (live if kind == "L" else hist)[sport] = (float(t), rc, a)
during = before = maponly = 0
for sport, (t, rc, a) in sorted(live.items(), key=lambda x: x[1][0]):
    when = "before" if t < t0 else "during" if t <= t1 else "after"
    before += when == "before"
    during += when == "during"
    f = a.get("flow") or {}
    if rc != "0" or not a.get("found"):
        bad.append("sport %s (made %s the restart) not found (rc %s): %s" % (sport, when, rc, a)); continue
    if str(f.get("pid")) != hostpid:
        bad.append("sport %s: pid %s, expected %s" % (sport, f.get("pid"), hostpid)); continue
    if f.get("seen") == "event":
        continue
    # Map-only now: its event was drained by the old instance, which must
    # have stored it; a flow made after the restart must have its own event.
    if when == "after":
        bad.append("sport %s (made after the restart): its event was lost (seen=%s)" % (sport, f.get("seen")))
        continue
    maponly += 1
    ht, hrc, ha = hist.get(sport, (0, "?", {}))
    hf = ha.get("flow") or {}
    if hrc != "0" or str(hf.get("pid")) != hostpid:
        bad.append("sport %s (made %s the restart) map-only after the restart and not in the history with pid %s (rc %s): %s"
                   % (sport, when, hostpid, hrc, ha))
print("flows %d (before the restart %d, during %d), problems %d" % (len(live), before, during, len(bad)))
if maponly:
    print("  NOTE: %d flows drained by the old queryd are map-only in a live lookup after the restart "
          "(no comm/exe/cgroup: the new queryd does not reload its index from the store); lookup --at finds them"
          % maponly)
for b in bad[:20]:
    print("  " + b)
EOF
)
echo "  $summary"
case "$summary" in
"flows "*", problems 0"*) ;;
*) ct_fail "flows made around the restart were lost or wrong" ;;
esac
echo "$summary" | grep -q 'during 0)' &&
    log "note: no flow fell inside the restart window this time (restart was fast)"

# ---------------------------------------------------------------- daemon policy (SO_PEERCRED)
# Open the socket to everyone so bob reaches the daemon: its own per-caller
# policy must refuse him, while alice still gets answers.
log "socket opened to all (drop-in SocketMode=0666): the daemon itself must refuse bob"
in_ct mkdir -p /etc/systemd/system/connpid-queryd.socket.d
in_ct sh -c 'printf "[Socket]\nSocketMode=0666\n" >/etc/systemd/system/connpid-queryd.socket.d/20-test-open.conf'
in_ct systemctl daemon-reload
in_ct systemctl stop connpid-queryd.service connpid-queryd.socket
in_ct systemctl start connpid-queryd.socket connpid-queryd.service || ct_fail "restart with the open socket failed"
res=$(lookup_json bob "$fsport" "$fdport")
rc=${res%% *}; msg=${res#* }
echo "  bob (socket 0666): exit $rc: $msg"
[ "$rc" = 2 ] || ct_fail "daemon policy: bob's lookup exited $rc, expected 2"
echo "$msg" | grep -q 'permission_denied' || ct_fail "daemon policy: bob's answer has no permission_denied error: '$msg'"
res=$(lookup_json alice "$fsport" "$fdport")
[ "${res%% *}" = 0 ] || ct_fail "daemon policy: alice refused or not found with the open socket: $res"
res=$(ct_run -p User=bob "$CTL_EXE" lookup 127.0.0.1 "$fsport" "$fdport" 2>&1)
echo "  bob (table, socket 0666): $res"
echo "$res" | grep -qi 'permission' || ct_fail "connpidctl's message to bob does not mention permission: '$res'"
in_ct rm -f /etc/systemd/system/connpid-queryd.socket.d/20-test-open.conf
in_ct systemctl daemon-reload
in_ct systemctl stop connpid-test-flow.service

# ---------------------------------------------------------------- security, for the record
sec=$(in_ct systemd-analyze security --no-pager connpid-queryd.service 2>&1 | grep 'Overall exposure level')
echo "SECURITY SCORE (real PID 1): ${sec:-n/a}"

# ---------------------------------------------------------------- stop the loader
log "systemctl stop connpid-loader"
in_ct systemctl stop connpid-loader.service || ct_fail "systemctl stop connpid-loader failed"
st=$(in_ct systemctl is-active connpid-queryd.service)
log "connpid-queryd after stopping the loader: $st (Requires= stops it)"
if [ -e "$PIN" ]; then
    ct_fail "pin dir $PIN is still there after stopping the loader: $(ls -A "$PIN" | tr '\n' ' ')"
fi
links=$(loader_links)
att=$(host_attach_count)
log "after stop: loader --status links '$links'; bpftool: $att programs on the cgroup (before loading: $base_attached)"
[ "$att" = "$base_attached" ] || ct_fail "programs left on the container's cgroup: $att, before loading $base_attached"
if [ -n "$HOST_CG" ] && [ -n "$BPFTOOL" ]; then
    "$BPFTOOL" cgroup show "$HOST_CG" 2>/dev/null | sed 's/^/  bpftool: /'
fi
# Flows made now are not tracked any more: nothing is pinned to read.
flow=$(ct_run python3 /usr/local/lib/connpid-test/flows.py once 1)
read -r _ s2 d2 _ <<<"$flow"
res=$(in_ct "$CTL_EXE" --direct --pin-dir "$PIN" --json lookup 127.0.0.1 "$s2" "$d2" 2>&1)
rc=$?
[ "$rc" = 2 ] || ct_fail "connpidctl --direct after unload exited $rc (expected 2: nothing pinned): $res"

# ---------------------------------------------------------------- started at boot
# Enabled units must come up by themselves on the next boot: the loader, then
# queryd (WantedBy=multi-user.target: it drains the ring from boot on, not
# only once a client connects).
log "systemctl enable; reboot"
if out=$(in_ct systemctl enable connpid-loader.service connpid-queryd.service 2>&1); then
    for u in connpid-loader.service connpid-queryd.service connpid-queryd.socket; do
        st=$(in_ct systemctl is-enabled "$u" 2>&1)
        [ "$st" = enabled ] || ct_fail "$u is '$st' after systemctl enable (check [Install]/Also=)"
    done
else
    echo "$out"; ct_fail "systemctl enable failed"
fi
ct_poweroff
ct_boot
for u in connpid-loader.service connpid-queryd.socket connpid-queryd.service; do
    st=$(in_ct systemctl is-active "$u")
    [ "$st" = active ] || ct_fail "$u is '$st' after a boot with the units enabled"
done
tl=$(in_ct systemctl show -p ExecMainExitTimestampMonotonic --value connpid-loader.service)
tq=$(in_ct systemctl show -p ExecMainStartTimestampMonotonic --value connpid-queryd.service)
log "at boot: loader finished at ${tl}us, queryd started at ${tq}us (monotonic)"
[ -n "$tl" ] && [ -n "$tq" ] && [ "$tl" -le "$tq" ] || ct_fail "queryd started before the loader finished (After= ordering)"

flow=$(ct_run python3 /usr/local/lib/connpid-test/flows.py once 1)
read -r _ s3 d3 _ <<<"$flow"
res=$(lookup_json alice "$s3" "$d3")
[ "${res%% *}" = 0 ] || ct_fail "after the reboot, lookup as alice of a new flow: $res"
in_ct systemctl stop connpid-loader.service

exit 0

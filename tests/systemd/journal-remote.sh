#!/bin/bash
# Issue 16, item 6: README's "journald -> systemd-journal-upload ->
# systemd-journal-remote" recipe, run for real, and its query.
#
#  - the fleet host: systemd as PID 1 in systemd-nspawn (lib.sh) with the
#    shipped connpid units, queryd with --export journal (as
#    journal-export.sh), and Debian's systemd-journal-remote package
#    installed in it with dpkg (the .deb of the container's systemd version);
#    its shipped systemd-journal-upload.service runs with README's
#    /etc/systemd/journal-upload.conf ([Upload] URL=http://127.0.0.1:PORT);
#  - the collector: this machine's /lib/systemd/systemd-journal-remote, as
#    its unprivileged user, with README's ExecStart= (--listen-http=-3
#    --output=DIR/ --split-mode=host) and its socket on 127.0.0.1:PORT passed
#    by systemd-socket-activate (this machine has no systemd as PID 1 for the
#    .socket unit); loopback only: the container shares this machine's
#    network namespace;
#  - 5 TCP flows made by a transient unit in the container; then README's
#    query (journalctl --directory on the collector's output, CONNPID_ field
#    matches, --since/--until window, -o verbose --output-fields=...) finds
#    each flow once, with the right host pid, executable, unit and _HOSTNAME
#    (the container's, not the collector's), and the query by community id
#    finds the same entry.
#
# Env: CONNPID_BUILD_DIR, CONNPID_SOURCE_DIR.  Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

FLOW_ID=6fbf37b088f84c9a9face276c073f54e
REMOTE_BIN=/lib/systemd/systemd-journal-remote
REMOTE_PID=

ct_setup jr
# The collector runs outside the container: stop it first, then lib.sh's
# cleanup (the exit status is passed on to it).
jr_cleanup() {
    local rc=$?
    if [ -n "$REMOTE_PID" ] && kill -0 "$REMOTE_PID" 2>/dev/null; then
        kill -TERM "$REMOTE_PID" 2>/dev/null
        for _ in $(seq 1 50); do kill -0 "$REMOTE_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$REMOTE_PID" 2>/dev/null
        wait "$REMOTE_PID" 2>/dev/null
    fi
    [ $rc -ne 0 ] && [ $rc -ne 77 ] && [ -f "${T:-/nonexistent}/remote.log" ] &&
        { echo "---- systemd-journal-remote ----"; sed 's/^/  /' "$T/remote.log"; }
    (exit $rc)
    ct_cleanup
}
trap jr_cleanup EXIT
[ -x "$REMOTE_BIN" ] || ct_skip "$REMOTE_BIN missing (Debian package systemd-journal-remote, tests/install-deps.sh)"

ct_prepare

# The package for the container: same version as its systemd (the .deb
# depends on libsystemd-shared of exactly that version), from apt's cache or
# downloaded by apt.
ct_ver=$(awk '/^Package: systemd$/{f=1} f && /^Version:/{print $2; exit}' "$MERGED/var/lib/dpkg/status")
[ -n "$ct_ver" ] || die "no systemd version in the rootfs's dpkg status"
mkdir -p "$T/debs"
for pkg in "systemd-journal-remote=$ct_ver" libmicrohttpd12; do
    name=${pkg%%=*}
    ver=${pkg#*=}
    [ "$ver" = "$pkg" ] && ver=$(apt-cache policy "$name" 2>/dev/null | awk '/Candidate:/{print $2}')
    deb=/var/cache/apt/archives/${name}_${ver/:/%3a}_amd64.deb
    if [ -f "$deb" ]; then
        cp "$deb" "$T/debs/"
    else
        (cd "$T/debs" && apt-get download -q "$name=$ver" >/dev/null 2>&1) ||
            ct_skip "cannot get the .deb of $name $ver (not in apt's cache, apt-get download failed)"
    fi
done
mkdir -p "$MERGED/var/tmp/jr-debs"
cp "$T"/debs/*.deb "$MERGED/var/tmp/jr-debs/"

cat >"$MERGED/etc/systemd/system/connpid-queryd.service.d/20-test-export.conf" <<EOF
[Service]
ExecStart=
ExecStart=$QUERYD_EXE --pin-dir $PIN --export journal
EOF
ct_boot

in_ct systemd-sysusers || die "systemd-sysusers failed"
in_ct systemd-tmpfiles --create || ct_fail "systemd-tmpfiles --create failed"
in_ct sh -c 'dpkg -i /var/tmp/jr-debs/*.deb' >"$T/dpkg.log" 2>&1 ||
    { cat "$T/dpkg.log"; die "dpkg -i systemd-journal-remote in the container failed"; }
log "installed in the container: $(in_ct dpkg-query -W -f='${Package} ${Version}, ' systemd-journal-remote libmicrohttpd12)"
in_ct systemctl daemon-reload || die "daemon-reload"
in_ct systemctl start connpid-loader.service || die "systemctl start connpid-loader failed"
in_ct systemctl start connpid-queryd.socket connpid-queryd.service || die "systemctl start connpid-queryd failed"

# ---------------------------------------------------------------- collector
PORT=$("$PY" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
OUT=$T/remote
mkdir -p "$OUT"
chmod 0711 "$T"
ruid=$(id -u systemd-journal-remote 2>/dev/null) && rgid=$(id -g systemd-journal-remote) &&
    chown "$ruid:$rgid" "$OUT" || { ruid=0 rgid=0; log "no user systemd-journal-remote here: the collector runs as root"; }
# As README's drop-in runs it: the socket (README: the shipped
# systemd-journal-remote.socket) passed as fd 3, served as plain HTTP.
setpriv --reuid="$ruid" --regid="$rgid" --clear-groups \
    systemd-socket-activate --listen=127.0.0.1:$PORT \
    "$REMOTE_BIN" --listen-http=-3 --output="$OUT/" --split-mode=host \
    </dev/null >"$T/remote.log" 2>&1 &
REMOTE_PID=$!
for _ in $(seq 1 50); do
    ss -Hltn "sport = :$PORT" | grep -q . && break
    kill -0 "$REMOTE_PID" 2>/dev/null || die "systemd-journal-remote exited: $(cat "$T/remote.log")"
    sleep 0.1
done
listen=$(ss -Hltn "sport = :$PORT" | awk '{print $4}' | sort -u | tr '\n' ' ')
[ "$listen" = "127.0.0.1:$PORT " ] || die "the collector listens on '$listen', not only 127.0.0.1:$PORT"
log "collector: systemd-socket-activate --listen=127.0.0.1:$PORT $REMOTE_BIN --listen-http=-3 --output=$OUT/ --split-mode=host (uid $ruid, pid $REMOTE_PID)"

# ---------------------------------------------------------------- uploader
# README's file, verbatim but for the collector's address.
cat >"$MERGED/etc/systemd/journal-upload.conf" <<EOF
[Upload]
URL=http://127.0.0.1:$PORT
EOF
in_ct systemctl start systemd-journal-upload.service || die "systemctl start systemd-journal-upload failed"
log "uploader: shipped systemd-journal-upload.service, $(in_ct systemctl show -p ExecStart --value systemd-journal-upload.service | grep -o 'path=[^ ;]*') as $(in_ct systemctl show -p User,DynamicUser systemd-journal-upload.service | tr '\n' ' ')"

# ---------------------------------------------------------------- flows
sleep 1.1
t0=$(date +%s)
ct_run --unit=jr-flows -p RuntimeMaxSec=60 /usr/bin/python3 /usr/local/lib/connpid-test/flows.py \
    once 5 /run/jr-flows 30 >/dev/null 2>&1 &
runner=$!
for _ in $(seq 1 100); do in_ct test -e /run/jr-flows && break; sleep 0.1; done
in_ct cat /run/jr-flows >"$T/flows" || die "flows.py wrote no /run/jr-flows"
cpid=$(awk 'NR==1{print $1}' "$T/flows")
hpid=$(host_pid_of "$cpid") || die "cannot map container pid $cpid to a host pid"
t1=$(( $(date +%s) + 1 ))
log "flows by container pid $cpid = host pid $hpid: $(awk '{printf "%s->%s ", $2, $3}' "$T/flows")"
in_ct systemctl stop jr-flows.service 2>/dev/null
wait "$runner" 2>/dev/null

# Shipped within seconds: journal-upload follows the journal.
since=$(date -d "@$t0" '+%Y-%m-%d %H:%M:%S')
until=$(date -d "@$t1" '+%Y-%m-%d %H:%M:%S')
n=0
for _ in $(seq 1 150); do
    n=$(journalctl --directory="$OUT" --no-pager -q -o cat MESSAGE_ID=$FLOW_ID _HOSTNAME="$NAME" \
        --since "$since" --until "$until" 2>/dev/null | grep -c .)
    [ "$n" -ge 5 ] && break
    sleep 0.2
done
log "collector output: $(cd "$OUT" && ls | tr '\n' ' ')($n flow entries from $NAME)"
[ "$n" -ge 5 ] || ct_fail "only $n of 5 flow entries reached the collector"
[ -n "$(cd "$OUT" && ls remote-*.journal 2>/dev/null)" ] || ct_fail "no remote-HOST.journal (split mode host) in $OUT"

# ---------------------------------------------------------------- README's query
# Exactly README's command, one per flow (the flow's 5-tuple, its time window).
while read -r _ sport dport _; do
    echo "\$ journalctl --directory=$OUT MESSAGE_ID=$FLOW_ID CONNPID_SOURCE_IP=127.0.0.1 CONNPID_SOURCE_PORT=$sport CONNPID_DESTINATION_IP=127.0.0.1 CONNPID_DESTINATION_PORT=$dport --since \"$since\" --until \"$until\" -o verbose --output-fields=_HOSTNAME,CONNPID_PROCESS_PID,CONNPID_PROCESS_EXECUTABLE,CONNPID_UNIT,CONNPID_NETWORK_COMMUNITY_ID" >>"$T/queries"
    journalctl --directory="$OUT" --no-pager MESSAGE_ID=$FLOW_ID \
        CONNPID_SOURCE_IP=127.0.0.1 CONNPID_SOURCE_PORT="$sport" \
        CONNPID_DESTINATION_IP=127.0.0.1 CONNPID_DESTINATION_PORT="$dport" \
        --since "$since" --until "$until" \
        -o verbose --output-fields=_HOSTNAME,CONNPID_PROCESS_PID,CONNPID_PROCESS_EXECUTABLE,CONNPID_UNIT,CONNPID_NETWORK_COMMUNITY_ID \
        >>"$T/queries" 2>&1
    echo "@@ $sport $dport" >>"$T/queries"
done <"$T/flows"
sed -n '1,9p' "$T/queries" | sed 's/^/  /'

"$PY" - "$T/queries" "$hpid" "$NAME" "$(hostname)" >"$T/cids" <<'EOF' || ct_fail "README's query does not find the flows as they were made"
import sys
hpid, ct_name, here = sys.argv[2], sys.argv[3], sys.argv[4]
bad = []
entries = []   # (sport, dport, [ {field: value} ])
cur = []
for line in open(sys.argv[1], encoding="utf-8"):
    line = line.rstrip("\n")
    if line.startswith("@@ "):
        _, sport, dport = line.split()
        entries.append((sport, dport, cur))
        cur = []
    elif line.startswith("$ "):
        continue
    elif line.startswith("    ") and "=" in line:
        k, v = line.strip().split("=", 1)
        cur[-1][k] = v
    elif "[s=" in line and line.endswith("]"):
        cur.append({})        # an entry's header line: its time and cursor
for sport, dport, es in entries:
    if len(es) != 1:
        bad.append("flow %s->%s: %d entries found" % (sport, dport, len(es)))
        continue
    e = es[0]
    want = {"_HOSTNAME": ct_name, "CONNPID_PROCESS_PID": hpid, "CONNPID_UNIT": "jr-flows.service"}
    for k, v in want.items():
        if e.get(k) != v:
            bad.append("flow %s->%s: %s=%r, expected %r" % (sport, dport, k, e.get(k), v))
    if not e.get("CONNPID_PROCESS_EXECUTABLE", "").startswith("/usr/bin/python3"):
        bad.append("flow %s->%s: CONNPID_PROCESS_EXECUTABLE=%r" % (sport, dport, e.get("CONNPID_PROCESS_EXECUTABLE")))
    if not e.get("CONNPID_NETWORK_COMMUNITY_ID", "").startswith("1:"):
        bad.append("flow %s->%s: no community id" % (sport, dport))
    print(sport, dport, e.get("CONNPID_NETWORK_COMMUNITY_ID", "-"))
if ct_name == here:
    bad.append("the container's host name is this machine's: _HOSTNAME proves nothing")
if len(entries) != 5:
    bad.append("%d flows queried, not 5" % len(entries))
for b in bad:
    print("  " + b, file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
[ "$FAILED" = 0 ] && log "README's query found each of the 5 flows once: _HOSTNAME=$NAME (collector: $(hostname)), pid $hpid, /usr/bin/python3*, unit jr-flows.service"

# The same flow by its Community ID (the join key with Zeek/Suricata).
read -r sport dport cid <"$T/cids"
if [ -n "${cid:-}" ]; then
    got=$(journalctl --directory="$OUT" --no-pager MESSAGE_ID=$FLOW_ID CONNPID_NETWORK_COMMUNITY_ID="$cid" \
        --since "$since" --until "$until" -o verbose --output-fields=_HOSTNAME,CONNPID_PROCESS_PID,CONNPID_SOURCE_PORT 2>&1)
    echo "$got" | sed 's/^/  /'
    [ "$(echo "$got" | grep -c '^    CONNPID_SOURCE_PORT=')" = 1 ] &&
        echo "$got" | grep -qx "    CONNPID_SOURCE_PORT=$sport" &&
        echo "$got" | grep -qx "    CONNPID_PROCESS_PID=$hpid" &&
        echo "$got" | grep -qx "    _HOSTNAME=$NAME" ||
        ct_fail "the query by CONNPID_NETWORK_COMMUNITY_ID=$cid does not find flow $sport->$dport alone"
fi

in_ct systemctl is-active -q systemd-journal-upload.service ||
    ct_fail "systemd-journal-upload.service is not active: $(in_ct systemctl status --no-pager systemd-journal-upload.service 2>&1 | tail -5)"
in_ct systemctl stop systemd-journal-upload.service connpid-queryd.service connpid-queryd.socket connpid-loader.service
[ -e "$PIN" ] && ct_fail "pin dir $PIN left after stopping the loader"
exit 0

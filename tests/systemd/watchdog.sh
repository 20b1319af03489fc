#!/bin/bash
# Issue 7, item 3: a connpid-queryd that stops pinging the watchdog is
# restarted by systemd (real PID 1 in systemd-nspawn).
#
#  1. control: WatchdogSec=3s and no test hook; for 8 s queryd keeps pinging,
#     so NRestarts stays 0 (proves the pings work, not only the timeout);
#  2. drop-in Environment=CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC=2 (queryd's
#     test-only hook): after 2 s it stops pinging, systemd logs a watchdog
#     timeout, kills it and (Restart=on-failure) starts it again: NRestarts
#     goes up, a new MainPID serves the socket.
#
# Env: CONNPID_BUILD_DIR, CONNPID_SOURCE_DIR.  Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

ct_setup wd
ct_prepare
# No core files from the SIGABRT systemd sends on a watchdog timeout.
cat >"$MERGED/etc/systemd/system/connpid-queryd.service.d/20-test-watchdog.conf" <<EOF
[Service]
WatchdogSec=3s
LimitCORE=0
EOF
ct_boot

in_ct systemd-sysusers || die "systemd-sysusers failed"
in_ct systemd-tmpfiles --create || ct_fail "systemd-tmpfiles --create failed"
in_ct systemctl daemon-reload || die "daemon-reload"
in_ct systemctl start connpid-loader.service || die "systemctl start connpid-loader failed"
in_ct systemctl start connpid-queryd.socket connpid-queryd.service || die "systemctl start connpid-queryd failed"

show() { in_ct systemctl show -p "$1" --value connpid-queryd.service; }
wd=$(show WatchdogUSec)
log "connpid-queryd active, WatchdogUSec=$wd, NRestarts=$(show NRestarts), MainPID=$(show MainPID)"
[ "$wd" = 3s ] || ct_fail "WatchdogUSec is '$wd', the drop-in asked for 3s"

# ---------------------------------------------------------------- 1. control
log "control: 8 s with pings (no test hook)"
pid0=$(show MainPID)
sleep 8
n=$(show NRestarts)
[ "$n" = 0 ] || ct_fail "NRestarts is $n after 8 s of normal operation with WatchdogSec=3s: queryd does not ping"
[ "$(show MainPID)" = "$pid0" ] || ct_fail "queryd's MainPID changed during the control period"
[ "$(show ActiveState)" = active ] || ct_fail "queryd is not active after the control period"

# ---------------------------------------------------------------- 2. stop pinging
log "drop-in Environment=CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC=2, restart"
in_ct sh -c 'printf "[Service]\nEnvironment=CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC=2\n" \
    >/etc/systemd/system/connpid-queryd.service.d/30-test-stop-pings.conf'
in_ct systemctl daemon-reload
in_ct systemctl restart connpid-queryd.service || die "systemctl restart connpid-queryd failed"
pid1=$(show MainPID)
n1=$(show NRestarts)
t0=$(date +%s)
log "MainPID $pid1, NRestarts $n1; waiting for the watchdog"
n=$n1
for _ in $(seq 1 300); do
    n=$(show NRestarts)
    [ "$n" -gt "$n1" ] && break
    sleep 0.1
done
t1=$(date +%s)
if [ "$n" -gt "$n1" ]; then
    log "NRestarts $n1 -> $n after $((t1 - t0)) s"
else
    ct_fail "NRestarts stayed $n for 30 s: systemd did not restart the silent queryd"
fi
journal=$(in_ct journalctl -b --no-pager -o cat -u connpid-queryd.service 2>&1)
echo "$journal" | grep -i 'watchdog' | sed 's/^/  journal: /'
echo "$journal" | grep -qi 'watchdog timeout' || ct_fail "no 'Watchdog timeout' from systemd in the journal"
echo "$journal" | grep -q 'Test hook: no more watchdog pings' ||
    ct_fail "queryd did not log its test hook (CONNPID_TEST_STOP_WATCHDOG_AFTER_SEC not honoured?)"

# The restarted daemon comes up and serves the (kept) socket.
for _ in $(seq 1 50); do
    [ "$(show ActiveState)" = active ] && break
    sleep 0.1
done
pid2=$(show MainPID)
log "after the watchdog restart: ActiveState $(show ActiveState), MainPID $pid2"
[ "$pid2" != "$pid1" ] && [ "$pid2" != 0 ] || ct_fail "no new MainPID after the watchdog restart ($pid1 -> $pid2)"
out=$(in_ct "$CTL_EXE" ping 2>&1) || ct_fail "connpidctl ping after the watchdog restart failed: $out"

in_ct systemctl stop connpid-queryd.service connpid-queryd.socket connpid-loader.service
[ -e "$PIN" ] && ct_fail "pin dir $PIN left after stopping the loader"
exit 0

#!/bin/bash
# Issue 16 item 5: connpid-prometheus.service/.timer as installed pass
# `systemd-analyze verify` with no output (Exec paths rewritten into the
# DESTDIR, as tests/systemd/verify.sh does). Exit 0 pass, 1 fail, 77 skip.
set -uo pipefail
BUILD=${CONNPID_BUILD_DIR:?}
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
[ -f "$BUILD/systemd/connpid-prometheus.service" ] || { echo "SKIP: no units built"; exit 77; }
T=$(mktemp -d /tmp/connpid-prom-verify.XXXXXX)
trap 'rm -rf "$T"' EXIT
meson install -C "$BUILD" --no-rebuild --quiet --destdir "$T/d" >"$T/log" 2>&1 || { cat "$T/log"; echo FAIL; exit 1; }
unitdir=$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null); unitdir=${unitdir:-/lib/systemd/system}
mkdir "$T/u"
for u in connpid-prometheus.service connpid-prometheus.timer; do
    [ -f "$T/d$unitdir/$u" ] || { echo "FAIL: $u not installed in $unitdir"; exit 1; }
    cp "$T/d$unitdir/$u" "$T/u/$u"
done
ctl=$(sed -n 's|.*-c .\(/[^ ]*connpidctl\) .*|\1|p' "$T/u/connpid-prometheus.service")
[ -x "$T/d$ctl" ] || { echo "FAIL: the service runs $ctl, not installed"; exit 1; }
sed -i "s|$ctl|$T/d$ctl|" "$T/u/connpid-prometheus.service"
out=$(cd "$T/u" && SYSTEMD_LOG_COLOR=0 systemd-analyze verify --man=no --recursive-errors=no \
      "$T/u/connpid-prometheus.timer" "$T/u/connpid-prometheus.service" 2>&1)
rc=$?
[ -n "$out" ] && echo "$out" | sed 's/^/  /'
if [ $rc -ne 0 ] || [ -n "$out" ]; then echo "FAIL: systemd-analyze verify (exit $rc)"; exit 1; fi
echo "verify clean; PASS"

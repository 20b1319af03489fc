#!/bin/bash
# Fresh machine to test verdict: install, build (plain and ASan/UBSan),
# run every meson test against the sanitized binaries, and print one line
# "N passed, N failed" from meson's testlog. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "run-all.sh: must run as root (tests load BPF programs)" >&2; exit 2; }

tests/install-deps.sh

# The plain build proves -Werror with optimisation; the sanitized one runs.
meson setup --reconfigure build-ci >/dev/null 2>&1 || meson setup build-ci >/dev/null
meson compile -C build-ci
meson setup --reconfigure build-asan -Db_sanitize=address,undefined -Db_lundef=false \
  >/dev/null 2>&1 || meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false >/dev/null
meson compile -C build-asan

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
rc=0
# Logs of an earlier run must not stand in for a run that does not happen.
rm -f build-asan/meson-logs/testlog-*.json build-ci/meson-logs/testlog-*.json
# Feature suites run in parallel, each in its own child cgroup and pin dir;
# the host suite attaches at the cgroup2 root and runs alone, after them.
meson test -C build-asan --print-errorlogs --num-processes 2 --no-suite host --no-suite hostile \
  --logbase testlog-features "$@" || rc=$?
# The hostile suite bounds the daemon's RSS and latency under attack: those
# are production figures, so it runs against the optimised build (ASan's
# shadow memory and quarantine would measure the sanitizer instead), one
# test at a time (two attacks at once on 2 CPUs measure each other).
meson test -C build-ci --print-errorlogs --num-processes 1 --suite hostile \
  --logbase testlog-hostile "$@" || rc=$?
meson test -C build-asan --print-errorlogs --num-processes 1 --suite host \
  --logbase testlog-host "$@" || rc=$?

python3 - build-asan/meson-logs/testlog-features.json build-ci/meson-logs/testlog-hostile.json \
  build-asan/meson-logs/testlog-host.json <<'PY' || rc=1
import json, os, sys
passed = failed = skipped = 0
lines = []
missing = 0
for path in sys.argv[1:]:
    if os.path.exists(path):
        lines += open(path).readlines()
    else:  # that meson test run never started (a build failure): a failure
        print(f"run-all.sh: no {path}", file=sys.stderr)
        missing += 1
for line in lines:
    r = json.loads(line).get("result")
    if r == "OK":
        passed += 1
    elif r == "SKIP":
        skipped += 1
    elif r == "EXPECTEDFAIL":
        passed += 1
    else:
        failed += 1
failed += missing
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
PY
exit $rc

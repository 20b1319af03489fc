#!/bin/bash
# The main job on a fresh machine: install, build, load the programs into
# the cgroup2 root, start connpid-queryd on /run/connpid.sock, look up a
# live connection, then show new flows live (Ctrl-C to stop watching;
# loader pins and the daemon stay, `connpid-loader --unload` removes them).
set -euo pipefail
cd "$(dirname "$0")/.."
[[ $(id -u) -eq 0 ]] || { echo "demo.sh: must run as root" >&2; exit 2; }
tests/install-deps.sh
meson setup build >/dev/null 2>&1 || true
meson compile -C build >/dev/null

B=build
mkdir -p /var/lib/connpid
$B/loader/connpid-loader
if ! $B/queryd/ctl/connpidctl ping >/dev/null 2>&1; then
  nohup $B/queryd/connpid-queryd >/var/log/connpid-queryd.log 2>&1 &
  for _ in $(seq 50); do $B/queryd/ctl/connpidctl ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "== connpid-queryd is up (log: /var/log/connpid-queryd.log)"

# A live connection, then the question a proxy would ask about it.
python3 - "$B/queryd/ctl/connpidctl" <<'PY'
import socket, subprocess, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.create_connection(l.getsockname())
sport, (dst, dport) = c.getsockname()[1], l.getsockname()
cmd = [sys.argv[1], "lookup", dst, str(sport), str(dport), "--protocol", "tcp"]
print("== $ " + " ".join(cmd[1:]))
subprocess.run(cmd)
PY

echo "== new flows as they happen (a demo client connects every second; Ctrl-C stops)"
python3 -c '
import socket, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
while True:
    socket.create_connection(l.getsockname()).close()
    socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))
    time.sleep(1)
' &
gen=$!
trap 'kill $gen 2>/dev/null' EXIT
$B/queryd/ctl/connpidctl watch

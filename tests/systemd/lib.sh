# Shared by the nspawn tests (source it).  A real systemd as PID 1 in
# systemd-nspawn, following ../shared/PEERS.md "systemd as PID 1 (real)":
#
#   ct_setup TAG      names, temp dir, cleanup trap, checks (exit 77 if impossible)
#   ct_prepare        cached rootfs + overlay, `meson install --destdir`, drop-ins
#                     that point both units at a private pin dir
#   ct_boot           boot it; $P is the container's PID 1
#   in_ct CMD...      run CMD inside (nsenter: no seccomp filter, not in the
#                     container's cgroups; use ct_run for anything that matters)
#   ct_run ARGS...    systemd-run --wait --pipe inside (a real transient unit)
#   ct_fail MSG       print MSG, mark the test failed
#
# Everything made here is removed by the EXIT trap, also on failure: the
# container is powered off (then killed by pid), the cgroup dirs nspawn leaves
# in every hierarchy are removed, the private pin dir is unloaded and removed,
# the overlay unmounted.  Nothing shared with the host or parallel tests is
# touched: pins live in /sys/fs/bpf/connpid-nspawn-<id>, the loader attaches to
# the container's own cgroup2 root.

BUILD=${CONNPID_BUILD_DIR:?CONNPID_BUILD_DIR must point at the meson build dir}
SRC=${CONNPID_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
HERE=$SRC/tests/systemd
# JSON is parsed on the host (the rootfs has python3-minimal, without json).
PY=$(command -v python3 || echo /usr/bin/python3)
CT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

FAILED=0
P=
NSPAWN_PID=
MERGED=
OVERLAY_MOUNTED=
CG_HIERS=()

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*"; }
ct_fail() { echo "FAIL: $*"; FAILED=1; }
ct_skip() { echo "SKIP: $*"; exit 77; }
die() { echo "FAIL: $*"; FAILED=1; exit 1; }

ct_setup() {
    local tag=$1
    [ "$(id -u)" = 0 ] || ct_skip "needs root (systemd-nspawn, bpf)"
    [ "${CONNPID_UNITS_INSTALLED:-yes}" = yes ] || ct_skip "this build installs no units (-Dsystemd=disabled or no systemd.pc)"
    [ "${CONNPID_QUERYD_BUILT:-yes}" = yes ] || ct_skip "connpid-queryd is not built (-Dqueryd=disabled)"
    ID=$tag-$$-$RANDOM
    NAME=connpid-nspawn-$ID
    PIN=/sys/fs/bpf/connpid-nspawn-$ID
    T=$(mktemp -d "/tmp/connpid-nspawn-$ID.XXXXXX")
    trap ct_cleanup EXIT
    trap 'exit 1' INT TERM HUP

    [ -e /sys/kernel/btf/vmlinux ] || ct_skip "no kernel BTF at /sys/kernel/btf/vmlinux"
    if ! mountpoint -q /sys/fs/bpf; then
        mount -t bpf bpf /sys/fs/bpf || ct_skip "cannot mount bpffs on /sys/fs/bpf"
    fi
    [ "$(stat -fc %T /sys/fs/bpf)" = bpf_fs ] || ct_skip "/sys/fs/bpf is not a bpffs"
    # Hierarchies nspawn makes cgroup dirs in: hybrid (unified + name=systemd,
    # as on our machines) or a pure cgroup2 host.
    if [ "$(stat -fc %T /sys/fs/cgroup)" = cgroup2fs ]; then
        CG_HIERS=(/sys/fs/cgroup)
        CG2=/sys/fs/cgroup
    else
        [ "$(stat -fc %T /sys/fs/cgroup/unified 2>/dev/null)" = cgroup2fs ] ||
            ct_skip "no cgroup2 at /sys/fs/cgroup or /sys/fs/cgroup/unified"
        CG2=/sys/fs/cgroup/unified
        CG_HIERS=(/sys/fs/cgroup/unified)
        [ -d /sys/fs/cgroup/systemd ] && CG_HIERS+=(/sys/fs/cgroup/systemd)
    fi
    if [ -d /run/systemd/system ]; then
        ct_skip "the host runs systemd: this recipe (mkdir'd cgroups, --keep-unit) is for hosts without it"
    fi
    BPFTOOL=$(command -v bpftool || true)
    HOST_LOADER=$BUILD/loader/connpid-loader
    ct_reap_stale
}

# A run killed with SIGKILL (e.g. a meson timeout) cannot clean up after
# itself; the next run does, by name: connpid-nspawn-TAG-PID-RAND whose PID
# (the test script) is gone.  Its container, cgroups, pins, overlay and temp
# dir are all named after that id.
ct_reap_stale() {
    local d id owner h pids m
    for d in "${CG_HIERS[0]}"/connpid-nspawn-*; do
        [ -d "$d" ] || continue
        id=${d##*/connpid-nspawn-}
        owner=$(echo "$id" | cut -d- -f2)
        [[ "$owner" =~ ^[0-9]+$ ]] || continue
        kill -0 "$owner" 2>/dev/null && continue
        log "reaping a stale run: connpid-nspawn-$id (script pid $owner is gone)"
        for h in "${CG_HIERS[@]}"; do
            [ -d "$h/connpid-nspawn-$id" ] || continue
            pids=$(find "$h/connpid-nspawn-$id" -name cgroup.procs -exec cat {} + 2>/dev/null)
            # shellcheck disable=SC2086
            [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        done
        sleep 0.5
        if [ -e "/sys/fs/bpf/connpid-nspawn-$id" ]; then
            [ -x "$HOST_LOADER" ] && "$HOST_LOADER" --unload --pin-dir "/sys/fs/bpf/connpid-nspawn-$id" >/dev/null 2>&1
            rm -rf "/sys/fs/bpf/connpid-nspawn-$id"
        fi
        for h in "${CG_HIERS[@]}"; do
            [ -d "$h/connpid-nspawn-$id" ] && find "$h/connpid-nspawn-$id" -depth -type d -exec rmdir {} + 2>/dev/null
        done
        for m in /tmp/connpid-nspawn-"$id".*; do
            [ -d "$m" ] || continue
            mountpoint -q "$m/merged" && { umount "$m/merged" 2>/dev/null || umount -l "$m/merged"; }
            rm -rf --one-file-system "$m"
        done
    done
}

ct_prepare() {
    local root unitdir u exe
    # connpidctl needs nothing from Debian that these two do not (its
    # libconnpid comes from this build, installed below).
    root=$("$HERE/rootfs.sh" "$BUILD/loader/connpid-loader" "$BUILD/queryd/connpid-queryd") ||
        { local rc=$?; [ $rc = 77 ] && exit 77; die "rootfs.sh failed ($rc)"; }
    command -v systemd-nspawn >/dev/null || ct_skip "systemd-nspawn missing"
    log "rootfs $root"

    # The cache stays pristine: the container runs on an overlay over it.
    MERGED=$T/merged
    mkdir -p "$T/upper" "$T/work" "$MERGED"
    if mount -t overlay overlay -o "lowerdir=$root,upperdir=$T/upper,workdir=$T/work" "$MERGED" 2>"$T/overlay.err"; then
        OVERLAY_MOUNTED=1
    else
        log "overlayfs unavailable ($(cat "$T/overlay.err")), copying the rootfs"
        cp -a "$root/." "$MERGED/" || die "cannot copy the rootfs"
    fi

    # meson install, exactly as a user would (prefix of this build).
    if ! meson install -C "$BUILD" --no-rebuild --quiet --destdir "$MERGED" >"$T/install.log" 2>&1; then
        cat "$T/install.log"
        die "meson install --destdir into the rootfs failed"
    fi
    # As after any library install (meson runs it itself without --destdir):
    # connpidctl links libconnpid from /usr/local/lib.
    ldconfig -r "$MERGED" || die "ldconfig in the rootfs failed"
    unitdir=
    for u in /usr/lib/systemd/system /lib/systemd/system /etc/systemd/system; do
        [ -f "$MERGED$u/connpid-loader.service" ] && unitdir=$u && break
    done
    [ -n "$unitdir" ] || die "meson install put no connpid-loader.service where systemd looks (units built? -Dsystemd=disabled?)"
    LOADER_EXE=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$MERGED$unitdir/connpid-loader.service" | head -1)
    QUERYD_EXE=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$MERGED$unitdir/connpid-queryd.service" | head -1)
    CTL_EXE=$(cd "$MERGED" && find usr/local/bin usr/bin bin -maxdepth 1 -name connpidctl 2>/dev/null | head -1)
    CTL_EXE=/${CTL_EXE:?meson install installed no connpidctl}
    for exe in "$LOADER_EXE" "$QUERYD_EXE" "$CTL_EXE"; do
        [ -x "$MERGED$exe" ] || die "$exe (from the units) is not installed in the rootfs"
    done
    log "installed: $LOADER_EXE $QUERYD_EXE $CTL_EXE (units in $unitdir)"

    # Private pin dir: override ExecStart/ExecStop only; everything else is
    # the shipped unit.  (Test-specific drop-ins go in 20-*.conf.)
    mkdir -p "$MERGED/etc/systemd/system/connpid-loader.service.d" \
             "$MERGED/etc/systemd/system/connpid-queryd.service.d"
    cat >"$MERGED/etc/systemd/system/connpid-loader.service.d/10-test-pin-dir.conf" <<EOF
[Service]
ExecStart=
ExecStart=$LOADER_EXE --pin-dir $PIN
ExecStop=
ExecStop=$LOADER_EXE --unload --pin-dir $PIN
EOF
    cat >"$MERGED/etc/systemd/system/connpid-queryd.service.d/10-test-pin-dir.conf" <<EOF
[Service]
ExecStart=
ExecStart=$QUERYD_EXE --pin-dir $PIN
EOF
    mkdir -p "$MERGED/usr/local/lib/connpid-test"
    install -m 0755 "$HERE/flows.py" "$MERGED/usr/local/lib/connpid-test/flows.py"
    echo "$NAME" >"$MERGED/etc/hostname"
}

ct_boot() {
    local h i state
    for h in "${CG_HIERS[@]}"; do
        mkdir -p "$h/$NAME" || die "cannot create cgroup $h/$NAME"
    done
    # The subshell moves itself into our cgroups, then becomes nspawn.
    # shellcheck disable=SC2016
    setsid bash -c 'for h in "${@:2}"; do echo $$ >"$h/$1/cgroup.procs"; done
        exec systemd-nspawn -D "$0" --machine="$1" --boot --register=no --keep-unit \
            --console=passive --capability=all \
            --system-call-filter="bpf perf_event_open open_by_handle_at" --bind=/sys/fs/bpf' \
        "$MERGED" "$NAME" "${CG_HIERS[@]}" </dev/null >"$T/nspawn.log" 2>&1 &
    NSPAWN_PID=$!
    for i in $(seq 1 200); do
        P=$(pgrep -P "$NSPAWN_PID" | head -1)
        [ -n "$P" ] && [ "$(readlink "/proc/$P/exe" 2>/dev/null)" != "$(readlink "/proc/$NSPAWN_PID/exe")" ] && break
        P=
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [ -z "$P" ]; then
        cat "$T/nspawn.log"
        die "systemd-nspawn did not start a container init"
    fi
    # PID 1 needs a moment before its bus socket exists.
    for i in $(seq 1 300); do
        nsenter -t "$P" -a test -S /run/systemd/private 2>/dev/null && break
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.1
    done
    state=$(timeout 90 nsenter -t "$P" -a env -i PATH=$CT_PATH systemctl is-system-running --wait 2>&1)
    log "container $NAME booted, PID 1 = host pid $P, state: $state"
    case "$state" in
    running) ;;
    degraded) in_ct systemctl --failed --no-legend --no-pager | sed 's/^/  failed unit: /' ;;
    *) cat "$T/nspawn.log"; die "container did not boot (state '$state')" ;;
    esac
    # The container's cgroup2 root, as a host path (for bpftool on the host).
    local cg ino_in
    cg=$(sed -n 's/^0:://p' "/proc/$P/cgroup")
    cg=${cg%/init.scope}
    HOST_CG=$CG2$cg
    ino_in=$(in_ct sh -c 'p=$(awk "\$9==\"cgroup2\"{print \$5; exit}" /proc/self/mountinfo); stat -c %i "$p"')
    if [ "$(stat -c %i "$HOST_CG" 2>/dev/null)" != "$ino_in" ]; then
        log "note: cannot map the container's cgroup2 root to a host path ($HOST_CG); using the loader's --status only"
        HOST_CG=
    else
        log "container cgroup2 root = host $HOST_CG"
    fi
}

# Power the container off and wait for nspawn to exit (for a second boot).
ct_poweroff() {
    local i
    in_ct systemctl --no-block poweroff >/dev/null 2>&1
    for i in $(seq 1 200); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$NSPAWN_PID" 2>/dev/null && die "the container did not power off in 20 s"
    wait "$NSPAWN_PID" 2>/dev/null
    NSPAWN_PID= P=
}

in_ct() {
    nsenter -t "$P" -a env -i PATH=$CT_PATH "$@"
}

# systemd-run inside: a real transient service in the container's cgroup,
# under its seccomp filter; exit status is the command's.
ct_run() {
    timeout 120 nsenter -t "$P" -a env -i PATH=$CT_PATH \
        systemd-run --quiet --wait --pipe --collect "$@" </dev/null
}

# Number of programs attached directly to the container's cgroup2 root.
host_attach_count() {
    [ -n "$HOST_CG" ] && [ -n "$BPFTOOL" ] || { echo "n/a"; return; }
    "$BPFTOOL" cgroup show "$HOST_CG" 2>/dev/null | awk 'NR>1 && $1 ~ /^[0-9]+$/' | wc -l
}

# The host pid of a live container process (BPF reports pids of the initial
# pid namespace, the container's own are different).
host_pid_of() {
    local want=$1 ns d nspid
    ns=$(readlink "/proc/$P/ns/pid")
    for d in /proc/[0-9]*; do
        [ "$(readlink "$d/ns/pid" 2>/dev/null)" = "$ns" ] || continue
        nspid=$(sed -n 's/^NSpid:[[:space:]]*//p' "$d/status" 2>/dev/null)
        if [ "${nspid##*[[:space:]]}" = "$want" ]; then
            echo "${d#/proc/}"
            return 0
        fi
    done
    return 1
}

# Links the loader's --status --json reports as attached: "N:id,id,...".
loader_links() {
    in_ct "$LOADER_EXE" --status --json --pin-dir "$PIN" 2>/dev/null |
        "$PY" -c 'import json,sys
try:
    d = json.load(sys.stdin)
except Exception:
    print("n/a"); sys.exit()
ids = sorted(l["id"] for l in d.get("links") or [] if l.get("attached"))
print("%d:%s" % (len(ids), ",".join(map(str, ids))))'
}

ct_journal() {
    [ -n "$P" ] || return 0
    echo "---- journal (connpid units) ----"
    timeout 20 nsenter -t "$P" -a env -i PATH=$CT_PATH journalctl -b --no-pager -o short-precise \
        -u connpid-loader -u connpid-queryd -u connpid-queryd.socket -n 150 2>&1 | sed 's/^/  /'
}

ct_cleanup() {
    local rc=$? h i pids
    trap - EXIT INT TERM HUP
    [ $rc -ne 0 ] && [ $rc -ne 77 ] && FAILED=1
    [ "$FAILED" = 1 ] && ct_journal
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        [ -n "$P" ] && timeout 10 nsenter -t "$P" -a env -i PATH=$CT_PATH systemctl --no-block poweroff >/dev/null 2>&1
        for i in $(seq 1 150); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
            log "container did not power off: killing nspawn pid $NSPAWN_PID"
            kill -TERM "$NSPAWN_PID" 2>/dev/null; sleep 2
            kill -KILL "$NSPAWN_PID" 2>/dev/null
        fi
        wait "$NSPAWN_PID" 2>/dev/null
    fi
    # Whatever is left in our cgroups is ours: kill it by pid.
    for h in "${CG_HIERS[@]}"; do
        [ -d "$h/$NAME" ] || continue
        pids=$(find "$h/$NAME" -name cgroup.procs -exec cat {} + 2>/dev/null)
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    done
    [ -n "$pids" ] && sleep 0.5
    # Pins (and with them the links) of this test only.
    if [ -n "${PIN:-}" ] && [ -e "$PIN" ]; then
        log "cleanup: pin dir $PIN still there, unloading"
        [ -x "$HOST_LOADER" ] && "$HOST_LOADER" --unload --pin-dir "$PIN" >/dev/null 2>&1
        rm -rf "$PIN"
    fi
    for h in "${CG_HIERS[@]}"; do
        [ -d "$h/$NAME" ] || continue
        find "$h/$NAME" -depth -type d -exec rmdir {} + 2>/dev/null
        [ -d "$h/$NAME" ] && log "cleanup: could not remove $h/$NAME"
    done
    if [ -n "$OVERLAY_MOUNTED" ]; then
        umount "$MERGED" 2>/dev/null || umount -l "$MERGED"
    fi
    [ -n "${T:-}" ] && rm -rf --one-file-system "$T"
    if [ $rc -eq 77 ]; then exit 77; fi
    if [ "$FAILED" = 1 ]; then echo "FAILED"; exit 1; fi
    echo "PASS"
    exit 0
}

#!/bin/bash
# Build (once) and print the path of a cached Debian bookworm rootfs with a
# real systemd, for the nspawn tests.
#
#   rootfs.sh [BINARY...]
#
# The rootfs holds systemd, dbus, python3-minimal (a socket client that
# reports its own port), passwd, plus the Debian packages that provide the
# shared libraries the given binaries need (NEEDED entries resolved with ldd
# and dpkg -S on this host, so a new dependency such as libcurl is picked up
# by itself).  The cache is ${CONNPID_TEST_CACHE:-/var/cache/connpid-test}/
# rootfs-bookworm-<hash of the package list>, reused while it exists.  It is
# built in a temporary directory and renamed into place, so a killed build
# never leaves a half cache; a lock serialises parallel runs.
#
# Exit 0 and print the path; exit 77 when it cannot be built here.
set -euo pipefail

CACHE=${CONNPID_TEST_CACHE:-/var/cache/connpid-test}
BASE_PKGS="systemd systemd-sysv dbus python3-minimal passwd"

skip() { echo "SKIP: $*" >&2; exit 77; }

[ "$(id -u)" = 0 ] || skip "needs root"

ensure_tools() {
    local missing=()
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v systemd-nspawn >/dev/null || missing+=(systemd-container)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing ${missing[*]}" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 \
            || skip "cannot install ${missing[*]}"
    fi
    # systemd-container adds mymachines to nsswitch.conf: take it out again.
    if grep -q mymachines /etc/nsswitch.conf; then
        sed -i 's/ mymachines//' /etc/nsswitch.conf
    fi
}

mirror() {
    local m
    m=$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1)
    [ -n "$m" ] || m=$(sed -n 's/^deb  *\(http[^ ]*debian\)\/*  *bookworm .*/\1/p' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | head -1)
    echo "${m:-http://deb.debian.org/debian}"
}

# Debian packages providing the libraries BINARY... link against directly.
runtime_pkgs() {
    local bin soname path pkg
    for bin in "$@"; do
        [ -f "$bin" ] || continue
        for soname in $(objdump -p "$bin" 2>/dev/null | awk '$1 == "NEEDED" {print $2}'); do
            path=$(ldd "$bin" | awk -v s="$soname" '$1 == s && $3 ~ /^\// {print $3; exit}')
            [ -n "$path" ] || { echo "cannot resolve $soname of $bin" >&2; return 1; }
            pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1) ||
                pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1) || true
            [ -n "$pkg" ] || { echo "$path ($soname of $bin) belongs to no Debian package" >&2; return 1; }
            echo "$pkg"
        done
    done
}

ensure_tools
command -v objdump >/dev/null || skip "objdump (binutils) is needed to find the binaries' libraries"
PKGS=$( { echo $BASE_PKGS | tr ' ' '\n'; runtime_pkgs "$@"; } | sort -u) ||
    skip "cannot map the binaries' libraries to Debian packages"
INCLUDE=$(echo $PKGS | tr ' ' ,)
STAMP="v2 bookworm minbase $INCLUDE"
ROOT=$CACHE/rootfs-bookworm-$(echo "$STAMP" | sha256sum | cut -c1-12)
mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9

if [ -f "$ROOT/.connpid-stamp" ] && [ "$(cat "$ROOT/.connpid-stamp")" = "$STAMP" ]; then
    touch "$ROOT/.connpid-stamp"
    echo "$ROOT"
    exit 0
fi

M=$(mirror)
TMP=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf --one-file-system "$TMP"' EXIT
echo "debootstrap bookworm ($INCLUDE) into $TMP from $M (takes about a minute)" >&2
if ! debootstrap --variant=minbase --include="$INCLUDE" bookworm "$TMP/root" "$M" \
        >"$TMP/debootstrap.log" 2>&1; then
    tail -20 "$TMP/debootstrap.log" >&2
    skip "debootstrap failed (no network or mirror?)"
fi
# Small settings for a quick, quiet boot.
rm -f "$TMP/root/etc/machine-id"; : > "$TMP/root/etc/machine-id"
echo connpid-nspawn > "$TMP/root/etc/hostname"
# No getty on the passive console, nothing that waits on networking.
for u in getty@tty1.service console-getty.service systemd-networkd-wait-online.service \
         apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$TMP/root/etc/systemd/system/$u"
done
rm -f "$TMP/root/var/cache/apt/archives/"*.deb
rm -rf "$TMP/root/var/lib/apt/lists/"* "$TMP/root/var/cache/apt/"*.bin
echo "$STAMP" > "$TMP/root/.connpid-stamp"
if [ -e "$ROOT" ]; then
    mv "$ROOT" "$TMP/old"
fi
mv "$TMP/root" "$ROOT"
# Other package sets nobody used for a week go.
find "$CACHE" -maxdepth 2 -path "$CACHE/rootfs-bookworm-*/.connpid-stamp" -mtime +7 2>/dev/null |
    while read -r stamp; do
        [ "${stamp%/.connpid-stamp}" = "$ROOT" ] || rm -rf --one-file-system "${stamp%/.connpid-stamp}"
    done
echo "$ROOT"

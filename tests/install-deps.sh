#!/bin/bash
# Installs what connpid needs to build, run and test (Debian 12).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(
  build-essential clang llvm meson ninja-build pkg-config
  libbpf-dev bpftool libelf-dev zlib1g-dev
  libsystemd-dev libjson-c-dev libsqlite3-dev
  systemd iproute2 python3 procps util-linux man-db groff-base
  mitmproxy curl nftables iptables sqlite3 libcurl4-openssl-dev
  docker.io busybox-static systemd-container debootstrap dnsmasq-base dnsutils
  musl-tools golang-go libclang-rt-dev squid nettle-dev tshark
  python3-prometheus-client systemd-journal-remote
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

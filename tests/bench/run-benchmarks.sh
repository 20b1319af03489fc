#!/bin/sh
# Run connpid's benchmarks: prints a table, writes BUILD_DIR/bench-results.json.
#   tests/bench/run-benchmarks.sh [BUILD_DIR] [--quick] [--connect-only] [--rounds N]
#                                 [--loader-arg ARG]...   (e.g. --loader-arg --no-dns)
#                                 [--baseline-loader PATH]
#   --loader-arg --inbound adds section 1c: the TCP cycle with the accept
#   tracepoint off and on (and its cost to every syscall), against the floor.
#   --baseline-loader PATH (e.g. a connpid-loader built from an older tree)
#   loads that one too, with the same flags, in a third cgroup: section 1
#   then times off / this build / the baseline in the same rotated rounds.
# Needs root, a cgroup2 mount and bpffs. Everything runs in a private child
# cgroup and pin dir that are removed afterwards. Takes a few minutes.
set -eu

src_dir=$(cd "$(dirname "$0")/../.." && pwd)
build_dir=${1:-"$src_dir/build"}
[ $# -gt 0 ] && shift
build_dir=$(cd "$build_dir" && pwd)

loader="$build_dir/loader/connpid-loader"
queryd="$build_dir/queryd/connpid-queryd"
ctl="$build_dir/queryd/ctl/connpidctl"
bench="$build_dir/tests/bench/connpid-bench"

for f in "$loader" "$queryd" "$ctl"; do
	[ -x "$f" ] || { echo "run-benchmarks: $f missing; build first (meson compile -C $build_dir)" >&2; exit 2; }
done
if [ -f "$build_dir/build.ninja" ] && grep -q 'connpid-bench' "$build_dir/build.ninja"; then
	meson compile -C "$build_dir" connpid-bench >/dev/null
else
	# tests/bench not part of this build: compile it on the side
	mkdir -p "$build_dir/tests/bench"
	${CC:-cc} -O2 -g -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE \
		-I"$src_dir/common" "$src_dir/tests/bench/connpid-bench.c" \
		-o "$bench" $(pkg-config --cflags --libs libbpf json-c) -lpthread
fi
if [ "$(id -u)" != 0 ]; then
	echo "run-benchmarks: needs root (BPF programs, cgroups)" >&2
	exit 77
fi

exec "$bench" --loader "$loader" --queryd "$queryd" --connpidctl "$ctl" \
	--json "$build_dir/bench-results.json" --log "$build_dir/bench.log" "$@"

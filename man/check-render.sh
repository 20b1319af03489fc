#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Render each man page given as an argument and fail on any warning.
# Usage: check-render.sh PAGE...   (exit 77 = skipped: no groff/man-db)
set -u

if ! command -v groff >/dev/null 2>&1; then
	echo "groff not installed: skipping" >&2
	exit 77
fi
have_man=0
if command -v man >/dev/null 2>&1 && man --help 2>&1 | grep -q -- '--warnings'; then
	have_man=1
fi

fail=0
for page in "$@"; do
	out=$(groff -man -Tutf8 -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		printf '%s: groff warnings:\n%s\n' "$page" "$out" >&2
		fail=1
	fi
	if [ "$have_man" = 1 ]; then
		out=$(MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null)
		if [ -n "$out" ]; then
			printf '%s: man warnings:\n%s\n' "$page" "$out" >&2
			fail=1
		fi
	fi
	[ "$fail" = 0 ] && echo "ok: $page"
done
exit $fail

#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/bench-smoke.sh: run bench/run.sh for one short round at one and
# four connections and check what it prints: the configuration, the
# mailer-alone step, every row there, no error and no non-2xx answer, the
# share of answers that said "Invite sent", a median line per connection
# count, the listing-while-inviting rows, the peak RSS of each kind of
# process, the invites-to-mailer ratio, and every stored invite sent by
# the mailer.  Its numbers are never compared with anything: speed is not
# tested here.
# Prints "ok ..." or "not ok ..." per check and ends with
# "N passed, N failed".
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILDDIR=${BUILDDIR:-$SRCDIR}
passed=0
failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

check() { # description, then a command
	local what=$1
	shift
	if "$@" >/dev/null 2>&1; then
		echo "ok   $what"
		passed=$((passed + 1))
	else
		echo "not ok $what"
		failed=$((failed + 1))
	fi
}

if ! command -v wrk >/dev/null; then
	echo "not ok wrk is missing (apt-get install wrk)"
	echo "0 passed, 1 failed"
	exit 1
fi
# The bench runs the binaries of the source tree (the ASan run builds in
# its clone's tree too).
if [ "$BUILDDIR" != "$SRCDIR" ]; then
	echo "# skipped: bench/run.sh runs the source tree's build, not $BUILDDIR"
	echo "0 passed, 0 failed"
	exit 0
fi
BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_CONNECTIONS="1 4" BENCH_WORKERS=4 \
    BENCH_USERS=50 "$SRCDIR/bench/run.sh" >"$out" 2>&1
rc=$?
sed 's/^/    /' "$out"

check "bench/run.sh exits 0" test "$rc" -eq 0
check "the configuration line" \
    grep -Eq "^delivery_wait=default smtp_sessions=(default|unsupported) smtp_delay_ms=0 sink_nice=0 limits: [0-9]+/h [0-9]+/day per inviter, [0-9]+/min per app$" "$out"
check "the mailer alone sent all it was given" \
    grep -Eq "^mailer alone: ([1-9][0-9]*) of \1 sent in [0-9.]+s = [0-9.]+ messages/s \(0 canceled unsent\)$" "$out"
for c in 1 4; do
	for t in nginx fcgi-hop; do
		check "a $t row at $c connections, without errors" \
		    grep -Eq "^$c +1 +$t +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +0\+0 +-$" "$out"
	done
	check "an invite row at $c connections, without errors, with its sent share" \
	    grep -Eq "^$c +1 +invite +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +0\+0 +[0-9]+\.[0-9]$" "$out"
	check "the median invite ratio at $c connections" \
	    grep -Eq "^$c +median +invite +ratio 0\.[0-9]{3} \(rounds: 0\.[0-9]{3}\) req/s [1-9][0-9]*$" "$out"
done
check "inviting at 32 connections while listing, without errors" \
    grep -Eq "^32 +busy +invite +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +- +0\+0 +[0-9]+\.[0-9]$" "$out"
check "listing at 1 connection while inviting, without errors" \
    grep -Eq "^1 +busy +list +[0-9]+ +[0-9.]+ +[0-9.]+ +- +0\+0 +-$" "$out"
for p in ri-worker ri-writer ri-mailer; do
	check "$p peak RSS" grep -Eq "^$p +pid [0-9]+ +peak RSS +[1-9][0-9]* kB" "$out"
done
check "the WAL peak" grep -Eq "^WAL peak: [0-9]+ MiB$" "$out"
stored=$(sed -n 's/^invites stored: \([0-9]*\)$/\1/p' "$out")
check "invites stored" test "${stored:-0}" -gt 0
check "invites/s over the mailer's own rate" \
    grep -Eq "^invites/s at 4 connections / mailer alone: [0-9]+\.[0-9]{3} \([0-9]+ / [0-9]+\.[0-9]\)$" "$out"
# A request wrk gave up on at the end of a step may be stored after the
# count: all sent, at least as many as counted, none left.
all=$(sed -En 's/^mailer: [0-9]+ sent in [0-9.]+s after the HTTP steps = [0-9]+ messages\/s \(([0-9]+) sent in all, 0 left unsent\)$/\1/p' "$out")
check "every stored invite sent, none left" test "${all:-0}" -ge "${stored:-1}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/bench-smoke.sh: run bench/run.sh for one short round at one and
# four connections and check what it prints: the configuration, the
# mailer-alone step, every row there, no error and no non-2xx answer, the
# share of answers that said "Invite sent", a median line per connection
# count, the listing-while-inviting rows, the peak RSS of each kind of
# process, the invites-to-mailer ratio, and every stored invite sent by
# the mailer.  Then the same round on PostgreSQL with two nodes
# (BENCH_DB=postgresql BENCH_NODES=2: a private PostgreSQL 15, two
# daemons behind the one nginx), checked the same way, with each node's
# peak RSS and its share of the invites, and that BENCH_NODES=2 on SQLite
# is refused.  Its numbers are never compared with anything: speed is not
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
# One tiny round of bench/run.sh with the settings given (VAR=value ...),
# its output in $out, its status in $rc.
bench() {
	env BENCH_SECONDS=1 BENCH_ROUNDS=1 BENCH_CONNECTIONS="1 4" BENCH_WORKERS=4 \
	    BENCH_USERS=50 "$@" "$SRCDIR/bench/run.sh" >"$out" 2>&1
	rc=$?
	sed 's/^/    /' "$out"
}

# The shape of the output: db, nodes, then a tag for the descriptions.
shape() {
	local db=$1 nodes=$2 tag=$3 c t p n stored all
	check "bench/run.sh exits 0$tag" test "$rc" -eq 0
	check "the header line$tag" \
	    grep -Eq "^referral-invites bench: [0-9]+ cores, db=$db, nodes=$nodes, workers=4, synchronous=full, 1s per step, 1 rounds, 50 inviters$" "$out"
	check "the configuration line$tag" \
	    grep -Eq "^delivery_wait=default smtp_sessions=(default|unsupported) smtp_delay_ms=0 sink_nice=0 limits: [0-9]+/h [0-9]+/day per inviter, [0-9]+/min per app$" "$out"
	[ "$db" = postgresql ] && check "the PostgreSQL server's durability$tag" \
	    grep -Eq "^postgresql 15\.[0-9]+ .*fsync=on synchronous_commit=on full_page_writes=on shared_buffers=128MB max_connections=[0-9]+, unix socket only$" "$out"
	check "the mailer alone sent all it was given$tag" \
	    grep -Eq "^mailer alone: ([1-9][0-9]*) of \1 sent in [0-9.]+s = [0-9.]+ messages/s \(0 canceled unsent\)$" "$out"
	for c in 1 4; do
		for t in nginx fcgi-hop; do
			check "a $t row at $c connections, without errors$tag" \
			    grep -Eq "^$c +1 +$t +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +0\+0 +-$" "$out"
		done
		check "an invite row at $c connections, without errors, with its sent share$tag" \
		    grep -Eq "^$c +1 +invite +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +0\+0 +[0-9]+\.[0-9]$" "$out"
		check "the median invite ratio at $c connections$tag" \
		    grep -Eq "^$c +median +invite +ratio 0\.[0-9]{3} \(rounds: 0\.[0-9]{3}\) req/s [1-9][0-9]*$" "$out"
	done
	check "inviting at 32 connections while listing, without errors$tag" \
	    grep -Eq "^32 +busy +invite +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +- +0\+0 +[0-9]+\.[0-9]$" "$out"
	check "listing at 1 connection while inviting, without errors$tag" \
	    grep -Eq "^1 +busy +list +[0-9]+ +[0-9.]+ +[0-9.]+ +- +0\+0 +-$" "$out"
	for p in ri-worker ri-writer ri-mailer; do
		if [ "$nodes" = 1 ]; then
			check "$p peak RSS$tag" grep -Eq "^$p +pid [0-9]+ +peak RSS +[1-9][0-9]* kB" "$out"
		else
			for n in $(seq "$nodes"); do
				check "$p peak RSS of node $n$tag" \
				    grep -Eq "^$p +pid [0-9]+ +peak RSS +[1-9][0-9]* kB.* \[node $n\]$" "$out"
			done
		fi
	done
	if [ "$db" = sqlite ]; then
		check "the WAL peak$tag" grep -Eq "^WAL peak: [0-9]+ MiB$" "$out"
	else
		check "the WAL peak, n/a$tag" grep -Eq "^WAL peak: n/a$" "$out"
	fi
	stored=$(sed -n 's/^invites stored: \([0-9]*\)$/\1/p' "$out")
	check "invites stored$tag" test "${stored:-0}" -gt 0
	check "invites/s over the mailer's own rate$tag" \
	    grep -Eq "^invites/s at 4 connections / mailer alone: [0-9]+\.[0-9]{3} \([0-9]+ / [0-9]+\.[0-9]\)$" "$out"
	# A request wrk gave up on at the end of a step may be stored after
	# the count: all sent, at least as many as counted, none left.
	all=$(sed -En 's/^mailer: [0-9]+ sent in [0-9.]+s after the HTTP steps = [0-9]+ messages\/s \(([0-9]+) sent in all, 0 left unsent\)$/\1/p' "$out")
	check "every stored invite sent, none left$tag" test "${all:-0}" -ge "${stored:-1}"
	# Each node stored invites and its mailer sent some.
	[ "$nodes" = 1 ] || for n in $(seq "$nodes"); do
		check "node $n stored invites and sent mail$tag" \
		    grep -Eq "^node $n: [1-9][0-9]* invites stored through it, [1-9][0-9]* sent by its mailer$" "$out"
	done
}

bench BENCH_DB=sqlite BENCH_NODES=1
shape sqlite 1 ""

if [ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
	bench BENCH_DB=postgresql BENCH_NODES=2 BENCH_MAILER_RUNS=1
	shape postgresql 2 " [postgresql, 2 nodes]"
else
	echo "not ok PostgreSQL 15 is missing (apt-get install postgresql-15, or set PG_BIN)"
	failed=$((failed + 1))
fi
# Two nodes cannot share a SQLite file: one line and an exit status.
r=$(BENCH_NODES=2 "$SRCDIR/bench/run.sh" 2>&1)
rc=$?
check "BENCH_NODES=2 refused on SQLite, in one line" \
    test "$rc" -ne 0 -a "$(printf '%s\n' "$r" | wc -l)" = 1 -a "${r#bench: BENCH_NODES=2 needs BENCH_DB=postgresql}" != "$r"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/bash
# tests/bench-smoke.sh: run bench/run.sh for one short round at one and
# four connections and check what it prints: every row there, no error and
# no non-2xx answer, a median line per connection count, the peak RSS of
# each kind of process, and every stored invite sent by the mailer.  Its
# numbers are never compared with anything: speed is not tested here.
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
for c in 1 4; do
	for t in nginx fcgi-hop invite; do
		check "a $t row at $c connections, without errors" \
		    grep -Eq "^$c +1 +$t +[1-9][0-9]* +[0-9.]+ +[0-9.]+ +[0-9.]+ +0\+0$" "$out"
	done
	check "the median invite ratio at $c connections" \
	    grep -Eq "^$c +median +invite +ratio 0\.[0-9]{3} \(rounds: 0\.[0-9]{3}\)$" "$out"
done
for p in ri-worker ri-writer ri-mailer; do
	check "$p peak RSS" grep -Eq "^$p +pid [0-9]+ +peak RSS +[1-9][0-9]* kB" "$out"
done
check "the WAL peak" grep -Eq "^WAL peak: [0-9]+ MiB$" "$out"
stored=$(sed -n 's/^invites stored: \([0-9]*\)$/\1/p' "$out")
check "invites stored" test "${stored:-0}" -gt 0
check "every stored invite sent, none left" \
    grep -Eq "^mailer: [0-9]+ sent in [0-9.]+s after the HTTP steps = [0-9]+ messages/s \\(${stored:-x} sent in all, 0 left unsent\\)$" "$out"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

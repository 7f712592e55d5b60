#!/bin/sh
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# Build every libFuzzer harness tests/fuzz/fuzz_*.c with clang, ASan and
# UBSan, and run each for FUZZ_SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus/NAME for fuzz_NAME, and the unit tests' corpus
# tests/unit/NAME where there is one).  Everything it builds or finds,
# crash files included, goes under FUZZ_OUT; nothing is written into the
# tree.  One line per target, then "N passed, N failed"; exits 1 when a
# target fails to build or finds a crash, leak or failed assertion.
#
#   tests/fuzz/run.sh [fuzz_NAME ...]
#
# FUZZ_OUT (default /tmp/ri-fuzz), FUZZ_SECONDS (default 20; 0 only
# replays the seeds), CLANG (default clang).  Without clang it skips, and
# passes.
set -u

SRCDIR=$(cd "$(dirname "$0")/../.." && pwd)
FUZZDIR=$SRCDIR/tests/fuzz
OUT=${FUZZ_OUT:-/tmp/ri-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-20}
CLANG=${CLANG:-clang}
PKGS="libcjson sqlite3 libcrypto libssl fcgi gmime-3.0"
# The project's warnings.  Unlike gcc, clang's -Wformat-nonliteral also
# flags a va_list format (log.c's vsnprintf), hence the one exception.
WARN="-Wall -Wextra -Wformat=2 -Wshadow -Wpointer-arith -Wmissing-prototypes
    -Wstrict-prototypes -Wwrite-strings -Wno-unused-parameter
    -Wno-format-nonliteral"
passed=0
failed=0

# The src/ files each harness links (files it #includes are not listed).
sources() {
	case $1 in
	fuzz_valid)	echo "valid.c" ;;
	fuzz_template)	echo "template.c mail.c valid.c util.c log.c" ;;
	fuzz_json)	echo "json.c valid.c util.c log.c" ;;
	fuzz_jwt)	echo "jwt.c json.c valid.c util.c log.c" ;;
	fuzz_request)	echo "util.c valid.c json.c jwt.c log.c" ;;
	fuzz_dsn)	echo "dsn.c dsn_field.c valid.c util.c log.c" ;;
	*)		return 1 ;;
	esac
}

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "# SKIP $CLANG not found: no fuzzing"
	echo "0 passed, 0 failed"
	exit 0
fi
# shellcheck disable=SC2086
if ! LIBS=$(pkg-config --cflags --libs $PKGS 2>&1); then
	echo "not ok fuzz (pkg-config: $LIBS)"
	echo "0 passed, 1 failed"
	exit 1
fi

case $SECONDS_EACH in
''|*[!0-9]*)	echo "not ok fuzz (FUZZ_SECONDS=$SECONDS_EACH)"
		echo "0 passed, 1 failed"
		exit 1 ;;
0)		budget=-runs=0 ;;	# libFuzzer reads 0 s as "forever"
*)		budget=-max_total_time=$SECONDS_EACH ;;
esac
mkdir -p "$OUT/corpus" "$OUT/artifacts" || exit 1
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ $# -gt 0 ]; then
	targets=$*
else
	targets=
	for f in "$FUZZDIR"/fuzz_*.c; do
		[ -f "$f" ] || continue
		f=${f##*/}
		targets="$targets ${f%.c}"
	done
fi

fail() {
	echo "not ok $1${2:+ ($2)}"
	if [ -n "${3:-}" ] && [ -f "$3" ]; then
		sed -n '1,60s/^/#   /p' "$3"
	fi
	failed=$((failed + 1))
}

for t in $targets; do
	name=${t#fuzz_}
	log=$OUT/$t.log
	if ! srcs=$(sources "$t"); then
		fail "$t" "no source list in run.sh"
		continue
	fi
	files=
	for s in $srcs; do
		files="$files $SRCDIR/src/$s"
	done
	# shellcheck disable=SC2086
	if ! "$CLANG" -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -g -O1 -D_GNU_SOURCE $WARN \
	    -I"$SRCDIR/src" -o "$OUT/$t" "$FUZZDIR/$t.c" $files $LIBS \
	    >"$OUT/$t.build" 2>&1; then
		fail "$t" "build" "$OUT/$t.build"
		continue
	fi
	if [ -s "$OUT/$t.build" ]; then
		echo "# $t: compiler output:"
		sed 's/^/#   /' "$OUT/$t.build"
	fi
	rm -rf "$OUT/corpus/$name"
	mkdir -p "$OUT/corpus/$name"
	if [ -d "$FUZZDIR/corpus/$name" ]; then
		cp -R "$FUZZDIR/corpus/$name/." "$OUT/corpus/$name/"
	fi
	if [ -d "$SRCDIR/tests/unit/$name" ]; then
		cp -R "$SRCDIR/tests/unit/$name/." "$OUT/corpus/$name/"
	fi
	if (cd "$OUT" && "./$t" "$budget" \
	    -timeout=25 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$OUT/artifacts/$t-" "$OUT/corpus/$name") \
	    >"$log" 2>&1; then
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" |
		    tail -n 1)
		echo "ok $t (${n:-?} execs)"
		passed=$((passed + 1))
	else
		echo "not ok $t"
		grep -E 'ERROR: |ASSERT|runtime error|SUMMARY|^    #[0-9]+ ' \
		    "$log" | sed -n '1,40s/^/#   /p'
		grep 'Test unit written' "$log" | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

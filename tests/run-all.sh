#!/bin/bash
# The test command: build when needed, the unit tests (make check), then the
# end-to-end suite (real daemon, real nginx, real SMTP server).  Ends with one
# line "N passed, N failed" for everything; exits non-zero on any failure.
#
#   tests/run-all.sh [-k SUBSTRING]     (-k and -x go to tests/e2e/run.py)
#
# BUILDDIR (default: the source tree) may name a separate build directory.
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BUILDDIR=${BUILDDIR:-$SRCDIR}
export SRCDIR BUILDDIR
passed=0
failed=0

summary() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] && [ "${1:-0}" -eq 0 ]
	exit $?
}

# Fold the last "N passed, N failed" line of a file into the totals.
count() {
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$1" 2>/dev/null | tail -n 1)
	[ -n "$line" ] || return 1
	set -- $line
	passed=$((passed + $1))
	failed=$((failed + $3))
}

echo "== build"
if [ ! -f "$BUILDDIR/Makefile" ]; then
	mkdir -p "$BUILDDIR"
	if ! (cd "$SRCDIR" && autoreconf -fi) ||
	    ! (cd "$BUILDDIR" && "$SRCDIR/configure"); then
		echo "FAIL build: autoreconf/configure"
		failed=$((failed + 1))
		summary 1
	fi
fi
if ! make -C "$BUILDDIR" -j2; then
	echo "FAIL build: make"
	failed=$((failed + 1))
	summary 1
fi

echo "== unit tests (make check)"
rm -f "$BUILDDIR/tests/unit/unit.log"
make -C "$BUILDDIR" -j2 check
check_rc=$?
if ! count "$BUILDDIR/tests/unit/unit.log"; then
	echo "FAIL make check: no unit test summary (see above)"
	failed=$((failed + 1))
fi
[ -f "$BUILDDIR/tests/unit/unit.log" ] && grep '^FAIL' "$BUILDDIR/tests/unit/unit.log"
# Other TESTS entries (tests/manlint.sh): one result each.
for trs in $(find "$BUILDDIR/tests" -name '*.trs' ! -path '*/unit/unit.trs'); do
	case $(sed -n 's/^:test-result: //p' "$trs" | head -n 1) in
	PASS|XFAIL) passed=$((passed + 1)) ;;
	SKIP) ;;
	*) echo "FAIL ${trs%.trs}"; failed=$((failed + 1)) ;;
	esac
done

echo "== make install into a DESTDIR"
inst_out=$(mktemp)
"$SRCDIR/tests/install.sh" 2>&1 | tee "$inst_out"
inst_rc=${PIPESTATUS[0]}
if ! count "$inst_out"; then
	echo "FAIL install: no summary (exit $inst_rc)"
	failed=$((failed + 1))
fi
rm -f "$inst_out"

echo "== end-to-end tests"
e2e_out=$(mktemp)
trap 'rm -f "$e2e_out"' EXIT
/usr/bin/python3 "$SRCDIR/tests/e2e/run.py" "$@" | tee "$e2e_out"
e2e_rc=${PIPESTATUS[0]}
if ! count "$e2e_out"; then
	echo "FAIL e2e: no summary (exit $e2e_rc)"
	failed=$((failed + 1))
fi

echo "== bench smoke (bench/run.sh runs; its numbers are not checked)"
bench_out=$(mktemp)
"$SRCDIR/tests/bench-smoke.sh" 2>&1 | tee "$bench_out"
bench_rc=${PIPESTATUS[0]}
if ! count "$bench_out"; then
	echo "FAIL bench smoke: no summary (exit $bench_rc)"
	failed=$((failed + 1))
fi
rm -f "$bench_out"

echo "== all"
[ "$check_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ] && [ "$inst_rc" -eq 0 ] &&
    [ "$bench_rc" -eq 0 ]
summary $?

#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# The test command: install the Debian packages of tests/packages.txt that
# are missing (as root; otherwise it names them and fails), build when
# needed, the unit tests (make check), then the end-to-end suite (real
# daemon, real nginx, real SMTP server).  Ends with one line "N passed, N
# failed" for everything; exits non-zero on any failure.
#
#   tests/run-all.sh [-k SUBSTRING] [-x] [--skip MODULE,...] [-j JOBS]
#                    [--engines E,...]  (all go to tests/e2e/run.py)
#
# The e2e suite runs on both engines, SQLite and PostgreSQL (a private
# PostgreSQL 15 per stack; E2E_ENGINES sets the default), its modules
# four at a time (-j 4; E2E_JOBS): each has its own stack, and much of
# their time is spent waiting.
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

# Run one stage whose output ends with "N passed, N failed", fold that
# line into the totals, and return the stage's exit status.
stage() { # name, then the command
	local name=$1 out rc
	shift
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	if ! count "$out"; then
		echo "FAIL $name: no summary (exit $rc)"
		failed=$((failed + 1))
	fi
	rm -f "$out"
	return "$rc"
}

# Start the next section, saying how long the last one took.
section() {
	[ -n "${section_t0:-}" ] && echo "# took $((SECONDS - section_t0)) s"
	section_t0=$SECONDS
	[ $# -eq 0 ] || echo "== $1"
}

# packages all|demo: the names in tests/packages.txt.
# shellcheck source=tests/packages.sh
. "$SRCDIR/tests/packages.sh"

section "packages (tests/packages.txt)"
if ! command -v dpkg-query >/dev/null 2>&1; then
	echo "# no dpkg-query, not Debian: packages not checked"
else
	missing=
	for p in $(packages all); do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing="$missing $p"
	done
	if [ -z "$missing" ]; then
		echo "# all installed"
	elif [ "$(id -u)" -ne 0 ]; then
		echo "FAIL packages: missing:$missing"
		echo "# run tests/run-all.sh as root to install them, or:" \
		    "apt-get install$missing"
		failed=$((failed + 1))
		summary 1
	else
		echo "# installing:$missing"
		# postfix: configured by no one, so that it starts no mail
		# server on port 25 (the tests run their own instance).
		if command -v debconf-set-selections >/dev/null 2>&1; then
			echo "postfix postfix/main_mailer_type select" \
			    "No configuration" | debconf-set-selections
		fi
		# shellcheck disable=SC2086
		if ! apt-get update || ! DEBIAN_FRONTEND=noninteractive \
		    apt-get install -y --no-install-recommends $missing; then
			echo "FAIL packages: apt-get install$missing"
			failed=$((failed + 1))
			summary 1
		fi
	fi
fi

section "build"
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

section "unit tests (make check)"
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

section "make install into a DESTDIR"
stage install "$SRCDIR/tests/install.sh"
inst_rc=$?

section "npm packages of the browser test (tests/browser)"
# playwright-core, pinned by tests/browser/package-lock.json; it drives
# Debian's chromium and never downloads a browser.  Without it the browser
# test fails and says why.
lock=$SRCDIR/tests/browser/package-lock.json
installed=$SRCDIR/tests/browser/node_modules/.package-lock.json
if [ -f "$installed" ] && ! [ "$lock" -nt "$installed" ]; then
	echo "# installed"
elif ! command -v npm >/dev/null 2>&1; then
	echo "# npm is missing: tests/e2e/test_browser.py will fail"
elif ! npm ci --prefix "$SRCDIR/tests/browser" --no-audit --no-fund; then
	echo "# npm ci failed: tests/e2e/test_browser.py will fail"
fi

section "end-to-end tests"
stage e2e /usr/bin/python3 "$SRCDIR/tests/e2e/run.py" -j "${E2E_JOBS:-4}" \
    --engines "${E2E_ENGINES:-sqlite,postgresql}" "$@"
e2e_rc=$?

section "bench smoke (bench/run.sh runs; its numbers are not checked)"
stage "bench smoke" "$SRCDIR/tests/bench-smoke.sh"
bench_rc=$?

section
echo "== all"
[ "$check_rc" -eq 0 ] && [ "$e2e_rc" -eq 0 ] && [ "$inst_rc" -eq 0 ] &&
    [ "$bench_rc" -eq 0 ]
summary $?

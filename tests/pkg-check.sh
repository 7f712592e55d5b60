#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/pkg-check.sh: the packaging checks.  .ci/run runs it once, on the
# normal build; a developer can run it alone (a few minutes).  Nothing is
# written into this tree: everything happens in a scratch directory.
#
#   tests/pkg-check.sh [--no-boot] [--no-smoke] [--keep]
#
#   --no-boot	tests/deb-smoke.sh without its stage 3 (systemd-nspawn)
#   --no-smoke	skip tests/deb-smoke.sh altogether (the log says so)
#   --keep	keep the scratch directory (its path is printed)
#
# 1. make distcheck in a copy of the files git tracks (so a file missing
#    from the distribution fails here, not in a user's build): the
#    tarball, a VPATH build of it from a read-only source tree, "make
#    check" in that build (unit tests, man page lint, the fuzz targets
#    replaying their seed corpus only: FUZZ_SECONDS=0), install and
#    uninstall into a DESTDIR, and "make distclean" leaving no file.  The
#    end-to-end suite is not part of "make check" and does not run here:
#    tests/run-all.sh runs it on the normal and the ASan build.  As root
#    the copy and the build belong to "nobody", since root writes through
#    distcheck's read-only source tree and would hide a build or test
#    that writes there.
# 2. The tarball holds every file git tracks but .gitignore.
# 3. One version: configure.ac's AC_INIT, debian/changelog's newest entry
#    and the ChangeLog's newest release, and the same date for the last two.
# 4. dpkg-buildpackage -us -uc -b in the unpacked tarball, so that the
#    package builds from the release tarball alone (as "nobody" too: the
#    package says Rules-Requires-Root: no).
# 5. lintian on the .changes (the .deb, its -dbgsym and the .buildinfo),
#    pedantic and info tags shown: every tag is listed in the log; an
#    error (E:) fails.  An override needs a comment saying why.
# 6. tests/deb-smoke.sh --deb on that package (needs root, debootstrap and
#    the Debian archive): installed in a scratch Debian 12 root, started
#    as its units start it, then booted with systemd-nspawn when the
#    machine has it (that stage is skipped otherwise, and says so).
#    Skipped, with a line that says so, when not root.
# 7. This tree unchanged (git status, ignored files included).
#
# Needs git, autoconf, automake, dpkg-dev, debhelper, lintian and
# debootstrap (the "test" lines of tests/packages.txt).  Prints one
# "ok ..." / "not ok ..." line per check, the time each stage took, and
# ends with "N passed, N failed"; exits 1 when a check failed.
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
BOOT=
SMOKE=1
KEEP=
while [ $# -gt 0 ]; do
	case $1 in
	--no-boot) BOOT=--no-boot; shift ;;
	--no-smoke) SMOKE=; shift ;;
	--keep) KEEP=1; shift ;;
	*) sed -n '2,/^set -u/s/^# \{0,1\}//p' "$0" | sed '$d' >&2; exit 2 ;;
	esac
done

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok $*"; }
notok() { failed=$((failed + 1)); echo "not ok $*"; }
check() {	# check DESCRIPTION COMMAND...
	local d=$1; shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
times=
finish() {
	[ -n "$times" ] && echo "# stage times:$times"
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}
fatal() {
	notok "$*"
	finish
}
t0=$SECONDS
took() {	# took NAME: the time since the last call
	echo "# $1 took $((SECONDS - t0)) s"
	times="$times $1 $((SECONDS - t0)) s;"
	t0=$SECONDS
}
show() {	# show FILE N: its last N lines, as comments
	tail -n "$2" "$1" | sed 's/^/#   /'
}

for c in git autoreconf make dpkg-buildpackage dpkg-parsechangelog dh \
    lintian; do
	command -v "$c" >/dev/null 2>&1 ||
	    fatal "$c not found (install the test lines of tests/packages.txt)"
done
git -C "$SRCDIR" rev-parse --git-dir >/dev/null 2>&1 ||
    fatal "$SRCDIR is not a git checkout (the copy is what git tracks)"

W=$(mktemp -d /tmp/ri-pkg-check.XXXXXX) || exit 1
chmod 0755 "$W"
cleanup() {
	chmod -R u+w "$W" 2>/dev/null
	if [ -n "$KEEP" ]; then
		echo "# kept $W"
	else
		rm -rf --one-file-system "$W"
	fi
}
trap cleanup EXIT
echo "# scratch directory $W"

# As root, build as "nobody" (see 1. above).
if [ "$(id -u)" -eq 0 ]; then
	BUILDER="nobody:$(id -gn nobody)"
	as_builder() {
		setpriv --reuid=nobody --regid="$(id -g nobody)" \
		    --clear-groups env HOME="$W/home" "$@"
	}
else
	BUILDER=$(id -un)
	as_builder() { env HOME="$W/home" "$@"; }
fi
mkdir -p "$W/home" "$W/src" "$W/deb"

status_before=$(git -C "$SRCDIR" status --porcelain --ignored)

# ================================================================ 1. dist
# The tracked files as they are in the work tree (a tracked file deleted
# there is left out: the check then fails as it would after the commit).
(cd "$SRCDIR" && git ls-files -z | xargs -0 sh -c \
    'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh) >"$W/tracked"
(cd "$SRCDIR" && tar --null -T "$W/tracked" -cf -) | tar -C "$W/src" -xf - ||
    fatal "copy of the tracked files"
[ "$(id -u)" -eq 0 ] && chown -R "$BUILDER" "$W/home" "$W/src" "$W/deb"

echo "# make distcheck as $BUILDER"
if (cd "$W/src" && as_builder sh -c 'autoreconf -fi && ./configure -q &&
    FUZZ_SECONDS=0 make -j2 distcheck') >"$W/distcheck.log" 2>&1; then
	ok "make distcheck (VPATH build, make check, install, distclean)"
else
	show "$W/distcheck.log" 40
	fatal "make distcheck (log above)"
fi
grep -E '^(PASS|FAIL|SKIP|XFAIL|XPASS|ERROR): ' "$W/distcheck.log" |
    sed 's/^/#   make check in distcheck: /'
tarball=$(ls "$W"/src/referral-invites-*.tar.gz 2>/dev/null | head -n 1)
[ -f "$tarball" ] || fatal "make distcheck left no tarball"
took distcheck

# ============================================================ 2. tarball
# Every tracked file is in the tarball: .gitignore alone stays out.
top=$(basename "$tarball" .tar.gz)
missing=$(tar -tzf "$tarball" | sed -n "s|^$top/||p" | sort |
    comm -13 - <(tr '\0' '\n' <"$W/tracked" | grep -vx '.gitignore' | sort))
[ -n "$missing" ] && echo "$missing" | sed 's/^/#   not in the tarball: /'
check "the tarball holds every tracked file (EXTRA_DIST)" test -z "$missing"

# ============================================================= 3. versions
v_ac=$(sed -n 's/^AC_INIT(\[[^]]*\], *\[\([^]]*\)\].*/\1/p' \
    "$SRCDIR/configure.ac")
v_deb=$(dpkg-parsechangelog -l "$SRCDIR/debian/changelog" -S Version)
d_deb=$(date -u -d "$(dpkg-parsechangelog -l "$SRCDIR/debian/changelog" \
    -S Date)" +%F)
rel=$(grep -m 1 -E '^[0-9]+\.[0-9]+\.[0-9]+ \([0-9-]+\)$' \
    "$SRCDIR/ChangeLog")
v_cl=${rel%% *}
d_cl=$(echo "$rel" | sed 's/.*(\(.*\))/\1/')
d="configure.ac $v_ac, debian/changelog $v_deb ($d_deb)"
check "one version: $d, ChangeLog $v_cl ($d_cl)" test -n "$v_ac" -a "$v_ac" = "$v_deb" -a "$v_ac" = "$v_cl" \
    -a "$d_deb" = "$d_cl"
check "the tarball is named for it: $top" test "$top" = \
    "referral-invites-$v_ac"

# ================================================================ 4. .deb
tar -C "$W/deb" -xzf "$tarball" || fatal "unpack $tarball"
[ "$(id -u)" -eq 0 ] && chown -R "$BUILDER" "$W/deb"
echo "# dpkg-buildpackage -us -uc -b in $top from the tarball, as $BUILDER"
if (cd "$W/deb/$top" && as_builder dpkg-buildpackage -us -uc -b) \
    >"$W/deb.log" 2>&1; then
	ok "dpkg-buildpackage -us -uc -b from the tarball"
else
	show "$W/deb.log" 40
	fatal "dpkg-buildpackage -us -uc -b (log above)"
fi
grep -E '^(dpkg-[a-z]+|dh_[a-z_]+|dh): warning' "$W/deb.log" |
    sed 's/^/#   /'
DEB=$(ls "$W"/deb/referral-invites_"$v_deb"_*.deb 2>/dev/null | head -n 1)
CHANGES=$(ls "$W"/deb/referral-invites_"$v_deb"_*.changes 2>/dev/null |
    head -n 1)
check "the package: ${DEB##*/}" test -f "$DEB" -a -f "$CHANGES"
took "deb build"

# ============================================================== 5. lintian
# From $W: nobody cannot enter a checkout under /root (mode 0700).
(cd "$W" && as_builder lintian --fail-on error --tag-display-limit 0 --display-info \
    --pedantic --show-overrides "$CHANGES") >"$W/lintian.log" 2>&1
rc=$?
ne=$(grep -c '^E: ' "$W/lintian.log")
nw=$(grep -c '^W: ' "$W/lintian.log")
echo "# lintian ${CHANGES##*/}: $ne errors, $nw warnings, every tag:"
sed 's/^/#   /' "$W/lintian.log"
check "lintian: no error ($ne errors, $nw warnings; exit $rc)" \
    test "$rc" -eq 0 -a "$ne" -eq 0
took lintian

# ============================================================ 6. deb-smoke
if [ -z "$SMOKE" ]; then
	echo "# tests/deb-smoke.sh skipped (--no-smoke)"
elif [ "$(id -u)" -ne 0 ]; then
	echo "# tests/deb-smoke.sh skipped: it needs root (debootstrap, chroot)"
else
	echo "# tests/deb-smoke.sh --deb ${DEB##*/}${BOOT:+ $BOOT}"
	"$SRCDIR/tests/deb-smoke.sh" --deb "$DEB" $BOOT 2>&1 |
	    tee "$W/smoke.log" | sed 's/^/  /'
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$W/smoke.log" |
	    tail -n 1)
	if [ -n "$line" ]; then
		set -- $line
		passed=$((passed + $1))
		failed=$((failed + $3))
	else
		notok "tests/deb-smoke.sh: no summary line"
	fi
	took deb-smoke
fi

# ======================================================= 7. the tree clean
check "this tree unchanged (git status --ignored)" test \
    "$(git -C "$SRCDIR" status --porcelain --ignored)" = "$status_before"
finish

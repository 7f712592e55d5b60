#!/bin/sh
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/install.sh: "make install" into a DESTDIR and check that every file
# lands where the man pages say (their FILES sections) and nothing lands
# anywhere else.
#
#   tests/install.sh
#	Copies this source tree to a scratch directory, runs autoreconf,
#	./configure --prefix=/usr --sysconfdir=/etc --localstatedir=/var,
#	make, make install DESTDIR=..., checks the tree, then checks that a
#	second install keeps a changed configuration and that make uninstall
#	removes everything else.  About a minute on two cores.
#   tests/install.sh --root DIR [--unitdir DIR]
#	Checks an already installed tree instead, such as
#	debian/referral-invites after a package build, or a system where the
#	.deb is installed (/, a chroot).  Man pages may be gzipped there.
#
# The systemd units go to $(prefix)/lib/systemd/system, so /usr/lib/...
# here; the Debian package puts them in /lib/systemd/system (--unitdir).
# Prints one "ok ..." or "not ok ..." line per check and ends with
# "N passed, N failed"; exits 1 when a check failed.
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
ROOT=
UNITDIR=/usr/lib/systemd/system
KEEP=${KEEP:-}
while [ $# -gt 0 ]; do
	case $1 in
	--root) ROOT=$2; shift 2 ;;
	--unitdir) UNITDIR=$2; shift 2 ;;
	*) echo "usage: $0 [--root DIR [--unitdir DIR]]" >&2; exit 2 ;;
	esac
done

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok $*"; }
notok() { failed=$((failed + 1)); echo "not ok $*"; }
check() {	# check DESCRIPTION COMMAND...
	d=$1; shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ] || exit 1
	exit 0
}

WORK=$(mktemp -d /tmp/ri-install.XXXXXX)
if [ -z "$KEEP" ]; then
	trap 'rm -rf "$WORK"' EXIT
else
	echo "# keeping $WORK"
fi

# ------------------------------------------------------------ the build
if [ -z "$ROOT" ]; then
	ROOT=$WORK/root
	B=$WORK/src
	mkdir -p "$B"
	# A copy, so that a configured source tree is never disturbed.
	(cd "$SRCDIR" && tar --exclude=./.git --exclude='./deb-build.tmp' \
	    --exclude='./*.deb' -cf - .) | (cd "$B" && tar -xf -)
	if [ -f "$B/Makefile" ]; then
		make -C "$B" distclean >/dev/null 2>&1 ||
		    rm -f "$B/Makefile" "$B/config.status" "$B/config.h"
	fi
	find "$B" \( -name '*.o' -o -name '*.a' \) -exec rm -f {} +
	log=$WORK/build.log
	if (cd "$B" && autoreconf -fi && ./configure --prefix=/usr \
	    --sysconfdir=/etc --localstatedir=/var && make -j2) >"$log" 2>&1
	then
		ok "build (autoreconf, configure --prefix=/usr, make)"
	else
		tail -n 30 "$log" | sed 's/^/# /'
		notok "build (autoreconf, configure --prefix=/usr, make)"
		finish
	fi
	if make -C "$B" install DESTDIR="$ROOT" >"$log" 2>&1; then
		ok "make install DESTDIR=..."
	else
		tail -n 30 "$log" | sed 's/^/# /'
		notok "make install DESTDIR=..."
		finish
	fi
else
	B=
	ROOT=$(cd "$ROOT" && pwd)
fi

# ------------------------------------------------------- what must be there
has_exe() { [ -f "$ROOT$1" ] && [ -x "$ROOT$1" ]; }
has_man() { [ -f "$ROOT$1" ] || [ -f "$ROOT$1.gz" ]; }
has_file() { [ -f "$ROOT$1" ] && [ -s "$ROOT$1" ]; }

for p in referral-invitesd referral-invitesctl; do
	check "/usr/sbin/$p" has_exe "/usr/sbin/$p"
done
for m in man8/referral-invitesd.8 man8/referral-invitesctl.8 \
    man5/referral-invites.conf.5 man7/referral-invites.7; do
	check "/usr/share/man/$m" has_man "/usr/share/man/$m"
done

# Every shipped template, under the name the daemon looks for.
n=0
for t in "$SRCDIR"/templates/*; do
	t=${t##*/}
	n=$((n + 1))
	check "/usr/share/referral-invites/templates/$t" \
	    cmp -s "$SRCDIR/templates/$t" \
	    "$ROOT/usr/share/referral-invites/templates/$t"
done
check "templates: the five of en among $n" \
    sh -c 'for p in subject txt html optout.html optout-done.html; do
	test -f "$0/usr/share/referral-invites/templates/en.$p" || exit 1
    done' "$ROOT"

for f in location.conf http.conf site.conf; do
	check "/usr/share/referral-invites/nginx/$f" \
	    cmp -s "$SRCDIR/nginx/$f" "$ROOT/usr/share/referral-invites/nginx/$f"
done

conf=/etc/referral-invites/referral-invites.conf
check "$conf" cmp -s "$SRCDIR/contrib/referral-invites.conf" "$ROOT$conf"
check "$conf is mode 0644" \
    test "$(stat -c %a "$ROOT$conf" 2>/dev/null)" = 644

sock=$UNITDIR/referral-invitesd.socket
svc=$UNITDIR/referral-invitesd.service
check "$sock" cmp -s "$SRCDIR/contrib/referral-invitesd.socket" "$ROOT$sock"
check "$svc" has_file "$svc"
check "$svc: ExecStart=/usr/sbin/referral-invitesd -d" \
    grep -qx 'ExecStart=/usr/sbin/referral-invitesd -d' "$ROOT$svc"
check "$svc: no @variable@ left" sh -c '! grep -q "@[a-z_]*@" "$0"' "$ROOT$svc"
check "$sock: ListenStream=/run/referral-invites/fcgi.sock" \
    grep -qx 'ListenStream=/run/referral-invites/fcgi.sock' "$ROOT$sock"
check "nginx http.conf points at the socket unit's path" \
    grep -q 'unix:/run/referral-invites/fcgi.sock' \
    "$ROOT/usr/share/referral-invites/nginx/http.conf"

# Every installed path named in a man page's FILES section exists.
# /var/lib and /run are made at run time (postinst, systemd).
for p in $(sed -n '/^\.Sh FILES/,/^\.Sh /s/^\.It Pa \(\/[^ ]*\).*/\1/p' \
    "$SRCDIR"/man/*.[0-9] | sort -u); do
	case $p in
	/var/*|/run/*) continue ;;
	*/lib/systemd/system/*) p=$UNITDIR/${p##*/} ;;
	esac
	check "man FILES: $p" test -e "$ROOT$p"
done

# The units as systemd reads them (when systemd-analyze is there).
if command -v systemd-analyze >/dev/null 2>&1 && [ -n "$B" ]; then
	v=$WORK/verify
	mkdir -p "$v"
	sed "s|=/usr/sbin/|=$ROOT/usr/sbin/|" "$ROOT$svc" \
	    >"$v/referral-invitesd.service"
	cp "$ROOT$sock" "$v/"
	# Clean means exit 0 and not a word (unknown keys are only warnings).
	check "systemd-analyze verify: units clean" sh -c \
	    'cd "$0" && out=$(systemd-analyze verify --man=no \
	    ./referral-invitesd.socket ./referral-invitesd.service 2>&1);
	    rc=$?; [ -z "$out" ] && exit $rc; echo "$out" | sed "s/^/# /"
	    exit 1' "$v"
fi

# Nothing anywhere else (not checked on a whole system).
stray=
[ -f "$ROOT/var/lib/dpkg/status" ] || stray=$(cd "$ROOT" && find . -type f -o -type l | sed 's|^\.||' | grep -v \
    -e '^/usr/sbin/referral-invites\(d\|ctl\)$' \
    -e '^/usr/share/man/man[578]/referral-invites' \
    -e '^/usr/share/referral-invites/\(templates\|nginx\)/' \
    -e '^/etc/referral-invites/referral-invites\.conf$' \
    -e "^$UNITDIR/referral-invitesd\.\(socket\|service\)\$" \
    -e '^/usr/share/doc/referral-invites/' \
    -e '^/usr/share/lintian/overrides/referral-invites$' \
    -e '^/DEBIAN/' -e '^/var/lib/dpkg/' | head -n 5)
check "no file installed anywhere else${stray:+: $stray}" test -z "$stray"

# ------------------------------------ reinstall and uninstall (build only)
if [ -n "$B" ]; then
	echo "# changed by the admin" >>"$ROOT$conf"
	make -C "$B" install DESTDIR="$ROOT" >/dev/null 2>&1
	check "a second make install keeps a changed $conf" \
	    grep -q '^# changed by the admin$' "$ROOT$conf"
	make -C "$B" uninstall DESTDIR="$ROOT" >/dev/null 2>&1
	left=$(cd "$ROOT" && find . -type f | sed 's|^\.||')
	check "make uninstall leaves only the changed configuration" \
	    test "$left" = "$conf"
	rm -f "$ROOT$conf"
	make -C "$B" install DESTDIR="$ROOT" >/dev/null 2>&1
	make -C "$B" uninstall DESTDIR="$ROOT" >/dev/null 2>&1
	left=$(cd "$ROOT" && find . -type f | sed 's|^\.||')
	check "make uninstall removes an unchanged configuration" \
	    test -z "$left"
fi

finish

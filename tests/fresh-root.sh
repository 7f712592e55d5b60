#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/fresh-root.sh: README's two commands on a brand-new Debian 12 root,
# as root, with the checkout in root's home (mode 0700).  Slow (about 20
# minutes on 2 cores: debootstrap, the packages, the whole suite) and not
# part of tests/run-all.sh.
#
#   tests/fresh-root.sh [--keep]
#
# 1. debootstrap --variant=minbase bookworm into a scratch directory; a
#    clone of this tree's HEAD in its /root/referral-invites.
# 2. ./demo.sh in a chroot (it installs what it needs with apt-get): the
#    curl it prints gets 201 "Invite sent", the mail is in its maildir with
#    the envelope the curl asked for; ./demo.sh stop stops everything.
# 3. tests/run-all.sh in the chroot ends "N passed, 0 failed".
#
# The chroot shares this host's network: the demo gets free loopback ports
# (DEMO_PORT, DEMO_SMTP_PORT) and the suite picks its own.  Needs root,
# debootstrap and the Debian archive (MIRROR, default
# http://deb.debian.org/debian).
set -u
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
KEEP=
[ "${1:-}" = --keep ] && KEEP=1
passed=0 failed=0

fatal() { echo "not ok $*"; echo "$passed passed, $((failed + 1)) failed"; exit 1; }
check() {
	local what=$1; shift
	if "$@"; then echo "ok $what"; passed=$((passed + 1))
	else echo "not ok $what"; failed=$((failed + 1)); fi
}
[ "$(id -u)" -eq 0 ] || fatal "run me as root"
command -v debootstrap >/dev/null || fatal "debootstrap is missing"

W=$(mktemp -d /var/tmp/ri-fresh-root.XXXXXX)
R=$W/root
cleanup() {
	local p
	# Whatever still runs in the root (a demo left behind by a failure).
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] &&
		    kill -9 "${p#/proc/}" 2>/dev/null
	done
	for m in dev/pts dev proc sys; do
		umount -l "$R/$m" 2>/dev/null
	done
	if [ -n "$KEEP" ]; then
		echo "# kept $W"
	elif grep -q " $R/" /proc/mounts; then
		echo "# $R still has mounts; not removed"
	else
		rm -rf --one-file-system "$W"
	fi
}
trap cleanup EXIT

echo "# debootstrap --variant=minbase bookworm into $R"
debootstrap --variant=minbase bookworm "$R" "$MIRROR" >"$W/debootstrap.log" 2>&1 ||
    { tail -n 20 "$W/debootstrap.log" | sed 's/^/# /'; fatal debootstrap; }
# Nothing installed in the root may start a service on this host.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$R/etc/resolv.conf"
# What the installer writes and debootstrap does not.
[ -e "$R/etc/hosts" ] || printf '%s\n' '127.0.0.1	localhost' \
    '::1		localhost ip6-localhost ip6-loopback' >"$R/etc/hosts"
mount -t proc proc "$R/proc" && mount -t sysfs sys "$R/sys" &&
    mount --bind /dev "$R/dev" && mount --bind /dev/pts "$R/dev/pts" ||
    fatal "mounts in the root"
# The CA certificates this host's admin added (those of a TLS-inspecting
# egress proxy, say): the root reaches the network as this host does, so
# it trusts what this host trusts.  The ca-certificates package takes
# them in when demo.sh installs it; npm reads them through
# NODE_EXTRA_CA_CERTS when this host sets it.
if [ -d /usr/local/share/ca-certificates ]; then
	mkdir -p "$R/usr/local/share/ca-certificates"
	cp -R /usr/local/share/ca-certificates/. \
	    "$R/usr/local/share/ca-certificates/"
fi
chmod 0700 "$R/root"
git clone -q "$SRCDIR" "$R/root/referral-invites" || fatal "git clone"
check "root's home is 0700" test "$(stat -c %a "$R/root")" = 700
nodeca=
[ -n "${NODE_EXTRA_CA_CERTS:-}" ] &&
    nodeca=NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
# shellcheck disable=SC2086
in_root() { chroot "$R" /usr/bin/env -i HOME=/root TERM=dumb \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    $nodeca "$@"; }

port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket();
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
	    echo $((20000 + RANDOM % 20000))
}
P=$(port) S=$(port)
echo "# ./demo.sh (DEMO_PORT=$P DEMO_SMTP_PORT=$S)"
in_root sh -c "cd /root/referral-invites && DEMO_PORT=$P DEMO_SMTP_PORT=$S \
    ./demo.sh" >"$W/demo.log" 2>&1
rc=$?
check "./demo.sh exits 0" test "$rc" -eq 0
[ "$rc" -eq 0 ] || tail -n 20 "$W/demo.log" | sed 's/^/# /'
# The printed curl, as a user pastes it.
sed -n '/^curl -sk -i/,/-d /p' "$W/demo.log" >"$W/curl.sh"
check "the demo printed a curl" grep -q "^curl -sk -i https://127.0.0.1:$P/" \
    "$W/curl.sh"
in_root sh <"$W/curl.sh" >"$W/curl.out" 2>&1
sed 's/^/# /' "$W/curl.out"
check "the curl gets 201" grep -q '^HTTP/1.1 201' "$W/curl.out"
check "with \"Invite sent\"" grep -qx \
    '{"success":true,"message":"Invite sent","error":null,"data":null}' \
    <(tail -n 1 "$W/curl.out")
M=$R/tmp/referral-invites-demo/mail
check "the mail was caught (1.eml, one mail)" test -f "$M/1.eml" -a ! -e "$M/2.eml"
check "its envelope is the curl's friend@example.org" \
    test "$(tr -d ' \n' <"$M/1.json" | grep -o '"rcpt_tos":\[[^]]*\]')" = \
    '"rcpt_tos":["friend@example.org"]'
in_root sh -c 'cd /root/referral-invites && ./demo.sh stop' >>"$W/demo.log" 2>&1
# Processes whose root is the chroot's.
in_root_running() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/root" 2>/dev/null)" = "$R" ] &&
		    grep -qa -- "$1" "$p/cmdline" 2>/dev/null && return 0
	done
	return 1
}
sleep 1
left=
for w in referral-invitesd nginx smtpd.py; do
	in_root_running "$w" && left="$left $w"
done
check "./demo.sh stop leaves no daemon, nginx or smtpd${left:+ (left:$left)}" \
    test -z "$left"

echo "# tests/run-all.sh (the whole suite; minutes)"
in_root sh -c 'cd /root/referral-invites && tests/run-all.sh' >"$W/suite.log" 2>&1
last=$(tail -n 1 "$W/suite.log")
echo "# suite: $last"
grep '^FAIL\|^not ok' "$W/suite.log" | head -n 20 | sed 's/^/# /'
# The first failure whole, with its traceback, and the npm step's lines.
sed -n '/^FAIL /,/^\(PASS\|# test_\)/p' "$W/suite.log" | head -n 60 |
    sed 's/^/#   /'
sed -n '/^== npm/,/^== end-to-end/p' "$W/suite.log" | head -n 20 |
    sed 's/^/#   /'
check "tests/run-all.sh ends \"N passed, 0 failed\"" \
    sh -c 'echo "$0" | grep -Eqx "[1-9][0-9]* passed, 0 failed"' "$last"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

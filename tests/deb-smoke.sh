#!/bin/bash
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/deb-smoke.sh: the Debian package installed in a scratch Debian 12
# root and run for real behind the installed nginx snippets.  Slow (a few
# minutes) and not part of tests/run-all.sh.
#
#   tests/deb-smoke.sh [--deb FILE] [--base DIR] [--no-boot] [--keep]
#
#   --deb FILE	test this .deb instead of building one from this tree
#   --base DIR	copy this debootstrap'ed root instead of running
#		debootstrap (to save a minute when run again)
#   --no-boot	skip stage 3 (booting the root with systemd-nspawn)
#   --keep	keep the scratch directory (its path is printed)
#
# Needs root, debootstrap and the Debian archive (MIRROR, default
# http://deb.debian.org/debian); to build the package dpkg-dev, debhelper
# and debian/control's Build-Depends; for stage 3 systemd-nspawn
# (systemd-container) and nsenter, else that stage is skipped.
#
# 1. Install: builds the .deb (dpkg-buildpackage -us -uc -b in a scratch
#    copy), debootstraps bookworm (minbase), installs the .deb with apt
#    and its dependencies, nginx-light, curl, sqlite3 and python3-aiosmtpd
#    (policy-rc.d keeps every service from starting on this host), and
#    checks what postinst did: the user, /var/lib/referral-invites, the
#    database and secret.key, the enabled units, every file
#    (tests/install.sh --root), systemd-analyze verify and security.
# 2. Socket activation, in a chroot: the daemon started the way the units
#    start it.  systemd-socket-activate holds /run/referral-invites/
#    fcgi.sock (root:www-data 0660, as referral-invitesd.socket makes it)
#    and on the first connection executes referral-invitesd -d as
#    referral-invites from the start (User=, UMask=0077, no_new_privs),
#    with the socket as LISTEN_FDS=1 on fd 3.  nginx runs with the
#    installed http.conf and location.conf, tests/smtpd.py takes the mail.
#    The README's curl must get 201 "Invite sent" and the mail must arrive;
#    SIGHUP during a burst of requests drops none; SIGTERM stops cleanly.
# 3. Boot: systemd-nspawn boots the root (private network, so nothing
#    reaches this host's ports) and the real systemd starts the enabled
#    referral-invitesd.socket and .service with their whole sandbox.  The
#    same curl gets 201, "systemctl reload" works, a stopped service is
#    started again by the socket on the next request.  Then an upgrade
#    (the package reinstalled) keeps the configuration and the database,
#    and a purge removes data, configuration and enabled units.
#
# Prints one "ok ..." / "not ok ..." line per check and ends with
# "N passed, N failed"; exits 1 when a check failed.
set -u

SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
DEB=
BASE=
BOOT=1
KEEP=
while [ $# -gt 0 ]; do
	case $1 in
	--deb) DEB=$(readlink -f "$2"); shift 2 ;;
	--base) BASE=$(readlink -f "$2"); shift 2 ;;
	--no-boot) BOOT=; shift ;;
	--keep) KEEP=1; shift ;;
	*) sed -n '2,/^set -u/s/^# \{0,1\}//p' "$0" | sed '$d' >&2; exit 2 ;;
	esac
done
[ "$(id -u)" -eq 0 ] || { echo "$0: must run as root" >&2; exit 2; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok $*"; }
notok() { failed=$((failed + 1)); echo "not ok $*"; }
check() {	# check DESCRIPTION COMMAND...
	local d=$1; shift
	if "$@"; then ok "$d"; else notok "$d"; fi
}
finish() {
	echo "$passed passed, $failed failed"
	[ "$failed" -eq 0 ]
	exit $?
}
fatal() {
	notok "$*"
	finish
}

W=$(mktemp -d /tmp/ri-deb-smoke.XXXXXX)
chmod 0755 "$W"
R=$W/root
DPID=
NSPID=
cleanup() {
	[ -n "$NSPID" ] && kill "$NSPID" 2>/dev/null && sleep 2
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	if [ -d "$R" ]; then
		[ -s "$R/run/nginx.pid" ] &&
		    kill "$(cat "$R/run/nginx.pid")" 2>/dev/null
		[ -s "$R/tmp/smtpd.pid" ] &&
		    kill "$(cat "$R/tmp/smtpd.pid")" 2>/dev/null
		sleep 1
		mountpoint -q "$R/proc" && umount -l "$R/proc"
	fi
	if [ -n "$KEEP" ]; then
		echo "# kept $W"
	elif grep -q " $W/" /proc/mounts; then
		echo "# $W still has mounts; not removed"
	else
		rm -rf --one-file-system "$W"
	fi
}
trap cleanup EXIT

# Free loopback ports (stage 2 shares this host's network).
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket();
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Wait up to $1 seconds for a command to succeed.
wait_for() {
	local n=$(($1 * 10)); shift
	while [ "$n" -gt 0 ]; do
		"$@" 2>/dev/null && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

# ============================================================ 1. install
echo "# scratch directory $W"
if [ -z "$DEB" ]; then
	echo "# building the package"
	mkdir -p "$W/src"
	(cd "$SRCDIR" && tar --exclude=./.git --exclude=./deb-build.tmp \
	    --exclude='./*.deb' -cf - .) | (cd "$W/src" && tar -xf -)
	if (cd "$W/src" && dpkg-buildpackage -us -uc -b) >"$W/build.log" 2>&1
	then
		DEB=$(ls "$W"/referral-invites_*.deb)
		ok "dpkg-buildpackage -us -uc -b: ${DEB##*/}"
	else
		tail -n 30 "$W/build.log" | sed 's/^/# /'
		fatal "dpkg-buildpackage -us -uc -b"
	fi
fi
[ -f "$DEB" ] || fatal "no package at $DEB"
if command -v lintian >/dev/null 2>&1; then
	out=$(lintian "$DEB" 2>&1 | grep -v 'running with root privileges')
	[ -n "$out" ] && echo "$out" | sed 's/^/# /'
	check "lintian: no error" sh -c '! echo "$0" | grep -q "^E:"' "$out"
fi

if [ -n "$BASE" ]; then
	cp -a "$BASE" "$R" || fatal "copy of $BASE"
	ok "root copied from $BASE"
else
	echo "# debootstrap --variant=minbase bookworm (a minute or two)"
	if debootstrap --variant=minbase bookworm "$R" "$MIRROR" \
	    >"$W/debootstrap.log" 2>&1; then
		ok "debootstrap --variant=minbase bookworm"
	else
		tail -n 20 "$W/debootstrap.log" | sed 's/^/# /'
		fatal "debootstrap --variant=minbase bookworm"
	fi
fi
# Nothing installed in the root may start a service on this host.
printf '#!/bin/sh\nexit 101\n' >"$R/usr/sbin/policy-rc.d"
chmod 0755 "$R/usr/sbin/policy-rc.d"
mount -t proc proc "$R/proc" || fatal "mount proc"
# Not /tmp: systemd-nspawn mounts a tmpfs there in stage 3.
cp "$DEB" "$R/srv/"
install -m 0755 "$SRCDIR/tests/smtpd.py" "$R/usr/local/bin/ri-smtpd"
in_root() { chroot "$R" "$@"; }
as_user() { chroot --userspec=referral-invites:referral-invites "$R" "$@"; }

if in_root sh -c 'export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends \
    /srv/'"${DEB##*/}"' nginx-light curl sqlite3 python3-aiosmtpd systemd' \
    >"$W/apt.log" 2>&1; then
	ok "apt-get install ./${DEB##*/} with its dependencies"
else
	tail -n 30 "$W/apt.log" | sed 's/^/# /'
	fatal "apt-get install ./${DEB##*/}"
fi

# What postinst did.
pw=$(in_root getent passwd referral-invites)
check "system user referral-invites (home /var/lib/referral-invites, nologin)" \
    test "$(echo "$pw" | cut -d: -f6,7)" = \
    /var/lib/referral-invites:/usr/sbin/nologin
check "its uid is a system uid" \
    test "$(echo "$pw" | cut -d: -f3)" -lt 1000
# Names as the installed system knows them, not as this host does.
st() { chroot "$R" stat -c '%U:%G %a' "$1" 2>/dev/null; }
check "/var/lib/referral-invites referral-invites:referral-invites 0750" \
    test "$(st /var/lib/referral-invites)" = \
    "referral-invites:referral-invites 750"
check "invites.db created by referral-invitesctl init, owned by the user" \
    test "$(st /var/lib/referral-invites/invites.db | cut -d: -f1)" = \
    referral-invites
check "secret.key referral-invites 0600" \
    test "$(st /var/lib/referral-invites/secret.key)" = \
    "referral-invites:referral-invites 600"
check "the schema is current (referral-invitesctl app list works)" \
    sh -c 'chroot --userspec=referral-invites:referral-invites "$0" \
    /usr/sbin/referral-invitesctl app list >/dev/null' "$R"
check "the configuration is a conffile" sh -c \
    'chroot "$0" dpkg-query -W -f="\${Conffiles}" referral-invites |
    grep -q " /etc/referral-invites/referral-invites.conf "' "$R"
check "referral-invitesd.socket enabled (sockets.target)" test -L \
    "$R/etc/systemd/system/sockets.target.wants/referral-invitesd.socket"
check "referral-invitesd.service enabled (multi-user.target)" test -L \
    "$R/etc/systemd/system/multi-user.target.wants/referral-invitesd.service"

# Every file where the documentation says, and nothing else.
"$SRCDIR/tests/install.sh" --root "$R" --unitdir /lib/systemd/system \
    >"$W/install-check.log" 2>&1
grep '^not ok' "$W/install-check.log"
line=$(tail -n 1 "$W/install-check.log")
check "tests/install.sh --root on the installed system: $line" \
    sh -c 'echo "$0" | grep -q "^[1-9][0-9]* passed, 0 failed$"' "$line"

out=$(in_root systemd-analyze verify --man=no \
    /lib/systemd/system/referral-invitesd.socket \
    /lib/systemd/system/referral-invitesd.service 2>&1)
[ -n "$out" ] && echo "$out" | sed 's/^/# /'
check "systemd-analyze verify: installed units clean" test -z "$out"
exposure=$(in_root systemd-analyze security --offline=yes --no-pager \
    /lib/systemd/system/referral-invitesd.service 2>&1 |
    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check "systemd-analyze security: exposure ${exposure:-?} (at most 1.5)" \
    awk -v e="${exposure:-99}" 'BEGIN { exit !(e <= 1.5) }'

# ======================================= configuration for stages 2 and 3
HTTP_PORT=$(free_port)
SMTP_PORT=$(free_port)
conf=$R/etc/referral-invites/referral-invites.conf
sed -i -e 's|^mail_from = .*|mail_from = Smoke test <invites@example.org>|' \
    -e "s|^public_url = .*|public_url = http://127.0.0.1:$HTTP_PORT|" "$conf"
cat >>"$conf" <<EOF
smtp_host = 127.0.0.1
smtp_port = $SMTP_PORT
smtp_starttls = off
EOF
check "referral-invitesd -t as the user accepts the configuration" \
    sh -c 'chroot --userspec=referral-invites:referral-invites "$0" \
    /usr/sbin/referral-invitesd -t 2>/dev/null' "$R"

# The snippets as an admin adds them to an nginx host.
rm -f "$R/etc/nginx/sites-enabled/default"
cat >"$R/etc/nginx/conf.d/referral-invites.conf" <<EOF
include /usr/share/referral-invites/nginx/http.conf;
server {
	listen 127.0.0.1:$HTTP_PORT;
	server_name localhost;
	include /usr/share/referral-invites/nginx/location.conf;
}
EOF
check "nginx -t with the installed snippets" in_root nginx -t -q

# An app, a write key and a user, made as the README says.
CID=$(as_user /usr/sbin/referral-invitesctl app add --name Smoke \
    --invite-url https://app.example.org/join)
KEY=$(as_user /usr/sbin/referral-invitesctl key add "$CID" --type write)
ALICE=$(as_user /usr/sbin/referral-invitesctl user add "$CID" \
    --email alice@example.org --name Alice)
BOB=$(as_user /usr/sbin/referral-invitesctl user add "$CID" \
    --email bob@example.org --name Bob)
check "referral-invitesctl: app, write key and users" \
    test -n "$CID" -a -n "$KEY" -a -n "$ALICE" -a -n "$BOB"

# The README's request.  $1 runner, $2 user id, $3 invitee; prints the
# status code, then the body.
invite() {
	$1 curl -s -o "/tmp/body-$3" -w '%{http_code}\n' \
	    "http://127.0.0.1:$HTTP_PORT/api/v1/users/$2/referral-invites" \
	    -H "X-API-KEY: $KEY" -H 'X-API-KEY-TYPE: write' \
	    -H "X-CLIENT-ID: $CID" -H 'Content-Type: application/json' \
	    -H "Idempotency-Key: smoke-$3" \
	    -d "{\"email\":\"$3\",\"language\":\"de\"}" &&
	    $1 cat "/tmp/body-$3"
}
SENT='{"success":true,"message":"Invite sent","error":null,"data":null}'
QUEUED='{"success":true,"message":"Invite queued","error":null,"data":null}'
# is_sent ANSWER: 201 "Invite sent"; is_201: "Invite sent" or "queued" (the
# mailer is restarted on reload and may miss delivery_wait).
is_sent() {
	test "$1" = "201
$SENT" && return 0
	echo "$1" | sed 's/^/# got: /'
	return 1
}
is_201() {
	test "$1" = "201
$SENT" || test "$1" = "201
$QUEUED" && return 0
	echo "$1" | sed 's/^/# got: /'
	return 1
}

# ==================================================== 2. socket activation
echo "# stage 2: systemd-socket-activate in the chroot"
mkdir -p "$R/tmp/mail"
in_root /usr/bin/python3 /usr/local/bin/ri-smtpd --port "$SMTP_PORT" \
    --maildir /tmp/mail --pidfile /tmp/smtpd.pid >"$W/smtpd.log" 2>&1 &
check "test SMTP server up" wait_for 10 test -s "$R/tmp/smtpd.pid"
check "nginx started" in_root nginx
# referral-invitesd.socket: the directory 0755 root, the socket
# root:www-data 0660.  referral-invitesd.service: User=, UMask=0077.
install -d -m 0755 "$R/run/referral-invites"
(umask 077; exec chroot "$R" /usr/bin/systemd-socket-activate \
    -l /run/referral-invites/fcgi.sock -- \
    /usr/bin/setpriv --reuid=referral-invites --regid=referral-invites \
    --init-groups --no-new-privs /usr/sbin/referral-invitesd -d) \
    >"$W/daemon.log" 2>&1 &
DPID=$!
wait_for 10 test -S "$R/run/referral-invites/fcgi.sock" ||
    fatal "systemd-socket-activate made no socket"
chgrp www-data "$R/run/referral-invites/fcgi.sock"
chmod 0660 "$R/run/referral-invites/fcgi.sock"
check "socket root:www-data 0660" \
    test "$(st /run/referral-invites/fcgi.sock)" = "root:www-data 660"

res=$(invite in_root "$ALICE" friend@example.org)
echo "$res" | sed 's/^/# /'
check "README curl through nginx: 201 Invite sent (daemon socket-activated)" \
    is_sent "$res"
check "the mail reached the SMTP server" \
    wait_for 10 grep -qi '^To:.*friend@example.org' "$R/tmp/mail/1.eml"
check "the invite is in the database (sqlite3 invites_overview)" sh -c \
    'chroot "$0" sqlite3 /var/lib/referral-invites/invites.db \
    "SELECT count(*) FROM invites_overview" | grep -qx 1' "$R"
uid=$(in_root id -u referral-invites)
check "LISTEN_PID honoured: the daemon kept socket-activate's pid" \
    grep -q referral-invitesd "/proc/$DPID/cmdline"
procs_ok() {	# every process of the pool runs as the user, no_new_privs
	local p c all=$DPID
	for c in $(cat /proc/"$DPID"/task/*/children 2>/dev/null); do
		all="$all $c"
	done
	[ "$(echo "$all" | wc -w)" -ge 6 ] || return 1	# 4 workers, mailer
	for p in $all; do
		awk -v u="$uid" '/^Uid:/ && ($2 != u || $3 != u) { bad = 1 }
		    /^NoNewPrivs:/ && $2 != 1 { bad = 1 }
		    END { exit bad }' "/proc/$p/status" || return 1
	done
}
check "supervisor, 4 workers and the mailer run as referral-invites" procs_ok
# referral-invitesd and referral-invitesctl set umask 027 themselves
# (src/main.c, src/ctl.c), over the unit's UMask=0077 and postinst's
# umask 077: the database and its -wal and -shm are 0640, group
# referral-invites (the user's own), in the 0750 directory; the lock is
# 0600 by its open(2).  Nothing is group-writable or for others.
check "the database files are the user's, 0640 or 0600 (umask 027)" sh -c \
    'for f in "$0"/var/lib/referral-invites/invites.db*; do
	m=$(chroot "$0" stat -c "%U:%G %a" "${f#"$0"}")
	case $m in
	"referral-invites:referral-invites "6[04]0) ;;
	*) echo "# ${f#"$0"}: $m"; exit 1 ;;
	esac; done' "$R"

# SIGHUP (ExecReload) in the middle of a burst: every request answered.
for i in 1 2 3 4 5 6 7 8; do
	invite in_root "$ALICE" "burst$i@example.org" >"$W/burst$i" 2>&1 &
done
sleep 0.2
kill -HUP "$DPID"
wait_for 10 grep -q 'configuration and templates reloaded' "$W/daemon.log"
check "SIGHUP: configuration and templates reloaded" \
    grep -q 'configuration and templates reloaded' "$W/daemon.log"
sleep 5
n=0
for i in 1 2 3 4 5 6 7 8; do
	is_201 "$(cat "$W/burst$i")" && n=$((n + 1))
done
check "8 requests around the reload: $n of 8 answered 201" test "$n" -eq 8
res=$(invite in_root "$ALICE" after-reload@example.org)
check "after the reload: 201" is_201 "$res"
check "every invite reached the SMTP server (10 mails)" \
    wait_for 15 test -f "$R/tmp/mail/10.json"

t0=$(date +%s)
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
check "SIGTERM: graceful stop, exit 0 (took $(($(date +%s) - t0)) s)" \
    test "$rc" -eq 0
grep -q 'stopped' "$W/daemon.log" || sed 's/^/# /' "$W/daemon.log"
in_root nginx -s quit 2>/dev/null
kill "$(cat "$R/tmp/smtpd.pid")" 2>/dev/null
rm -f "$R/tmp/smtpd.pid" "$R/run/referral-invites/fcgi.sock"
sleep 1
umount "$R/proc"

# ================================================================ 3. boot
if [ -z "$BOOT" ]; then
	echo "# stage 3 skipped (--no-boot)"
	finish
fi
if ! command -v systemd-nspawn >/dev/null 2>&1 ||
    ! command -v nsenter >/dev/null 2>&1; then
	echo "# stage 3 skipped: no systemd-nspawn (systemd-container) or nsenter"
	finish
fi
echo "# stage 3: systemd-nspawn --boot"
# The test SMTP server as a unit of the booted system.
cat >"$R/etc/systemd/system/ri-smtpd.service" <<EOF
[Unit]
Description=test SMTP server
Before=referral-invitesd.service
[Service]
ExecStart=/usr/bin/python3 /usr/local/bin/ri-smtpd --port $SMTP_PORT --maildir /tmp/mail
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/ri-smtpd.service \
    "$R/etc/systemd/system/multi-user.target.wants/ri-smtpd.service"
rm -rf "$R/tmp/mail"
mkdir -p "$R/tmp/mail"
rm -f "$R/usr/sbin/policy-rc.d"

systemd-nspawn -q -D "$R" --boot --private-network --register=no \
    --keep-unit >"$W/boot.log" 2>&1 &
NSPID=$!
leader() {
	cat /proc/"$NSPID"/task/*/children 2>/dev/null | tr -s ' ' '\n' |
	    grep -m 1 .
}
# The container's PID 1 once it is systemd (not nspawn's child before exec).
booted() {
	L=$(leader) && [ -n "$L" ] &&
	    [ "$(cat "/proc/$L/comm" 2>/dev/null)" = systemd ] &&
	    nsenter -t "$L" -a test -d /run/systemd/system
}
wait_for 60 booted || fatal "systemd-nspawn did not boot systemd"
in_ct() { nsenter -t "$L" -a "$@"; }
state=
sysstate() {
	state=$(nsenter -t "$L" -a systemctl is-system-running --wait \
	    2>/dev/null)
	[ "$state" = running ] || [ "$state" = degraded ]
}
wait_for 90 sysstate
check "the root booted (systemctl is-system-running: $state)" \
    test "$state" = running -o "$state" = degraded
[ "$state" = running ] ||
    in_ct systemctl --no-pager --failed | sed 's/^/# /'
check "referral-invitesd.socket active at boot" \
    in_ct systemctl -q is-active referral-invitesd.socket
check "referral-invitesd.service active at boot" \
    in_ct systemctl -q is-active referral-invitesd.service
check "socket root:www-data 0660 (made by the socket unit)" \
    test "$(in_ct stat -c '%U:%G %a' /run/referral-invites/fcgi.sock)" = \
    "root:www-data 660"
mp=$(in_ct systemctl show -p MainPID --value referral-invitesd.service)
check "the service's main process runs as referral-invites" \
    test "$(in_ct stat -c %U "/proc/$mp")" = referral-invites
check "nginx.service active with the snippets" \
    in_ct systemctl -q is-active nginx.service

res=$(invite in_ct "$BOB" booted@example.org)
echo "$res" | sed 's/^/# /'
check "README curl under systemd: 201 Invite sent" is_sent "$res"
check "the mail reached the SMTP server" \
    wait_for 10 in_ct grep -qi '^To:.*booted@example.org' /tmp/mail/1.eml
check "systemctl reload referral-invitesd" \
    in_ct systemctl reload referral-invitesd.service
wait_for 10 sh -c 'nsenter -t "$0" -a journalctl -u referral-invitesd \
    --no-pager | grep -q "configuration and templates reloaded"' "$L"
check "journal: configuration and templates reloaded" sh -c \
    'nsenter -t "$0" -a journalctl -u referral-invitesd --no-pager |
    grep -q "configuration and templates reloaded"' "$L"
res=$(invite in_ct "$BOB" reloaded@example.org)
check "after systemctl reload: 201" is_201 "$res"
live=$(in_ct systemd-analyze security --no-pager referral-invitesd.service \
    2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
check "systemd-analyze security on the running unit: ${live:-?}" \
    test -n "$live"
check "systemctl stop referral-invitesd.service" \
    in_ct systemctl stop referral-invitesd.service 2>/dev/null
check "stopped cleanly (journal: stopped)" sh -c \
    'nsenter -t "$0" -a journalctl -u referral-invitesd --no-pager |
    grep -q "referral-invitesd.*: stopped"' "$L"
res=$(invite in_ct "$BOB" reactivated@example.org)
check "next request starts it again through the socket: 201" \
    is_sent "$res"
check "referral-invitesd.service active again" \
    in_ct systemctl -q is-active referral-invitesd.service

# Upgrade: the same package again (postinst "configure OLDVERSION":
# init migrates, the units restart), the admin's configuration kept.
if in_ct env DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall \
    "/srv/${DEB##*/}" >"$W/reinstall.log" 2>&1; then
	ok "apt-get install --reinstall (upgrade path)"
else
	tail -n 20 "$W/reinstall.log" | sed 's/^/# /'
	notok "apt-get install --reinstall (upgrade path)"
fi
check "the changed configuration survived the upgrade" \
    in_ct grep -q '^mail_from = Smoke test' \
    /etc/referral-invites/referral-invites.conf
check "referral-invitesd.service active after the upgrade" \
    in_ct systemctl -q is-active referral-invitesd.service
res=$(invite in_ct "$BOB" upgraded@example.org)
check "after the upgrade: 201, the database kept" is_201 "$res"

# Purge: data, configuration and units gone; the system user stays.
if in_ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y \
    referral-invites >"$W/purge.log" 2>&1; then
	ok "apt-get purge referral-invites"
else
	tail -n 20 "$W/purge.log" | sed 's/^/# /'
	notok "apt-get purge referral-invites"
fi
check "purge: /var/lib/referral-invites and /etc/referral-invites gone" \
    in_ct sh -c '! test -e /var/lib/referral-invites &&
    ! test -e /etc/referral-invites'
check "purge: socket and service stopped, socket file gone" \
    in_ct sh -c '! systemctl -q is-active referral-invitesd.socket &&
    ! systemctl -q is-active referral-invitesd.service &&
    ! test -e /run/referral-invites/fcgi.sock'
check "purge: no unit left enabled" \
    in_ct sh -c '! ls /etc/systemd/system/*.wants/referral-invitesd.* \
    2>/dev/null | grep -q .'

if [ "$failed" -gt 0 ]; then
	in_ct journalctl -u referral-invitesd.service -u \
	    referral-invitesd.socket --no-pager | tail -n 40 | sed 's/^/# /'
fi
in_ct systemctl poweroff >/dev/null 2>&1
wait_for 30 sh -c '! kill -0 "$0"' "$NSPID" || kill "$NSPID"
NSPID=
finish

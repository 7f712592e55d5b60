#!/bin/sh
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
#
# Lint the manual pages with mandoc, and check that they document every
# config key src/conf.c accepts and every command src/ctl.c knows.
# Run by "make check" (automake exports srcdir) or by hand from anywhere.
#
# Exit 0 when everything is clean, 1 on any failure.

: "${srcdir:=$(dirname "$0")/..}"
: "${MANDOC:=mandoc}"

mandir=$srcdir/man
ctl_c=$srcdir/src/ctl.c
conf_page=$mandir/referral-invites.conf.5
ctl_page=$mandir/referral-invitesctl.8
pages="referral-invitesd.8 referral-invitesctl.8 referral-invites.conf.5
	referral-invites.7"
fail=0
tmp=${TMPDIR:-/tmp}/manlint.$$
trap 'rm -f "$tmp"' EXIT
trap 'exit 1' INT TERM

if ! command -v "$MANDOC" >/dev/null 2>&1; then
	echo "SKIP: $MANDOC not found"
	exit 77
fi

# 1. mandoc -Tlint: any message at all is a failure.
for p in $pages; do
	if [ ! -f "$mandir/$p" ]; then
		echo "FAIL $p: missing"
		fail=1
		continue
	fi
	"$MANDOC" -Tlint -Wwarning "$mandir/$p" >"$tmp" 2>&1
	rc=$?
	if [ $rc -ne 0 ] || [ -s "$tmp" ]; then
		echo "FAIL $p: mandoc -Tlint (exit $rc)"
		sed 's/^/	/' "$tmp"
		fail=1
	else
		echo "ok   $p"
	fi
done

# The commands of ctl.c's commands[] table, one a line: the row's noun
# and, when it is a string, its verb ({ "app", "add", ... } is "app add").
commands_of() {
	awk '
	!f && /commands\[\][ \t]*=/ { f = 1; next }
	f && /}[ \t]*;/ { exit }
	f && match($0, /{ "[^"]*"(, "[^"]*")?/) {
		row = substr($0, RSTART + 2, RLENGTH - 2)
		gsub(/"/, "", row)
		sub(/, /, " ", row)
		print row
	}' "$1"
}

# 2. The config keys: tests/unit/test_conf.c (conf_man_page) reads
#    conf.c's table itself and checks each key's entry, range and default.

# 3. Every command word of ctl.c's commands[] table is in the ctl page,
#    as rendered text (so ".Cm app add" and "app add" both count).
if [ ! -f "$ctl_c" ]; then
	echo "skip ctl commands: $ctl_c does not exist yet"
else
	cmds=$(commands_of "$ctl_c" |
	    grep -E '^[a-z][a-z-]*( [a-z][a-z-]*)*$')
	if [ -z "$cmds" ]; then
		echo "FAIL ctl commands: no commands[] table in $ctl_c"
		fail=1
	fi
	# Rendered text without overstrike (no col(1) needed).
	bs=$(printf '\b')
	text=$("$MANDOC" -Tascii "$ctl_page" 2>/dev/null | sed "s/.$bs//g" |
	    tr -s ' \t\n' '   ')
	n=0
	missing=
	# Commands contain spaces: split on newlines only.
	old_ifs=$IFS
	IFS='
'
	for c in $cmds; do
		n=$((n + 1))
		case " $text " in
		*" $c "*) ;;
		*) missing="$missing \"$c\"" ;;
		esac
	done
	IFS=$old_ifs
	if [ -n "$missing" ]; then
		echo "FAIL ctl commands not in referral-invitesctl.8:$missing"
		fail=1
	elif [ $n -gt 0 ]; then
		echo "ok   ctl commands ($n in referral-invitesctl.8)"
	fi
fi

exit $fail

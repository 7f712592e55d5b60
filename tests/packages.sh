# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# tests/packages.sh: sourced by demo.sh, tests/run-all.sh and .ci/run, the
# one reader of tests/packages.txt.
#
# packages all|demo: the names of tests/packages.txt, all of them or
# (demo) those without "test"; one with unless=CMD only when CMD is not
# installed.
PACKAGES_TXT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/packages.txt

packages() {	# all|demo
	local p w t skip
	while read -r p w; do
		case $p in ''|'#'*) continue ;; esac
		skip=
		for t in ${w%%#*}; do
			case $t in
			test) [ "$1" = all ] || skip=1 ;;
			unless=*) PATH=$PATH:/usr/sbin:/sbin command -v \
			    "${t#unless=}" >/dev/null 2>&1 && skip=1 ;;
			esac
		done
		[ -n "$skip" ] || echo "$p"
	done <"$PACKAGES_TXT"
}

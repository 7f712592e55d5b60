#!/bin/sh
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
# make check: a short bounded run of every fuzz target (tests/fuzz/run.sh)
# when clang can build them; skipped (exit 77) otherwise.  Long runs:
#   FUZZ_SECONDS=600 tests/fuzz/run.sh
here=$(cd "$(dirname "$0")" && pwd)
command -v clang >/dev/null 2>&1 || { echo "SKIP: no clang"; exit 77; }
out=$(mktemp -d /tmp/ri-fuzz-check.XXXXXX) || exit 1
FUZZ_OUT=$out FUZZ_SECONDS=${FUZZ_SECONDS:-5} "$here/run.sh"
rc=$?
rm -rf "$out"
exit $rc

#!/usr/bin/env bash
# Build mm kselftests statically (busybox userspace has no libc) against
# the guest kernel's exported headers.
#   selftests.sh OUTDIR NAME...
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

out=$1; shift
guest=$KBUILD_DIR/guest
mkdir -p "$out"
make -C "$LINUX_TREE" O="$guest" LOCALVERSION= -s headers ||
	die "selftests: make headers failed"
# The mm selftest Makefile builds any single target; run_vmtests.sh and the
# helpers are copied so a test can be run the upstream way too.
targets=()
for t in "$@"; do targets+=("$out/$t"); done
make -C "$LINUX_TREE/tools/testing/selftests/mm" -s OUTPUT="$out" \
	ARCH=x86_64 CC="gcc -static" \
	KHDR_INCLUDES="-isystem $guest/usr/include" "${targets[@]}" ||
	die "selftests: building $* failed"
printf '%s\n' "$@" > "$out/list"

#!/usr/bin/env bash
# Run KUnit suites with the kernel's own kunit.py on an SMP x86_64 QEMU
# guest (TCG).  Arguments are .kunitconfig files or directories holding
# one; configs/kunit.config is added to them.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

[ $# -gt 0 ] || die "kunit: no .kunitconfig given"
args=()
for k in "$@" "$FPB_REPO/configs/kunit.config"; do
	[ -e "$k" ] || die "kunit: $k does not exist"
	args+=(--kunitconfig="$(readlink -f "$k")")
done

export CCACHE_DIR=$FPB_CACHE/ccache CCACHE_BASEDIR=$LINUX_TREE
cd "$LINUX_TREE"
# The python3 on PATH may be a separate install; kunit.py needs only the
# standard library, Debian's is fine.
/usr/bin/python3 tools/testing/kunit/kunit.py run "${args[@]}" \
	--build_dir="$KBUILD_DIR/kunit" --arch=x86_64 --jobs="$(nproc)" \
	--make_options="CC=ccache gcc" --make_options=LOCALVERSION= \
	--qemu_args="-smp 2 -accel tcg" --timeout=900

#!/usr/bin/env bash
# Apply one mutation to the assembled QEMU tree, rebuild, run e2e
# scenarios against it (TAP: the scenarios that should catch it must
# fail), then restore the tree and rebuild.  Not part of make check.
#   tests/qemu/mutations/run.sh state-all.patch ours kvm-ours-shift6
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../../scripts/lib.sh"

patch=$FPB_REPO/tests/qemu/mutations/$1; shift
tree=$FPB_CACHE/qemu
[ -f "$patch" ] || die "no mutation $patch"
[ -z "$(git -C "$tree" status --porcelain)" ] || die "$tree has edits: make qemu first"
export CCACHE_DIR=$FPB_CACHE/ccache CCACHE_BASEDIR=$FPB_CACHE
rebuild() { flock /var/lock/fpb-cpu.lock ninja -C "$FPB_CACHE/build/qemu" -j2 qemu-system-x86_64 >/dev/null; }
restore() { git -C "$tree" checkout -q -- . && rebuild; }
trap restore EXIT
git -C "$tree" apply "$patch"
rebuild
"$FPB_REPO/tests/e2e/run.sh" test "$@" || true

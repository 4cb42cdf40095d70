#!/usr/bin/env bash
# Build the guest's initramfs: static busybox, tests/guest/ (the /init and
# the guest test scripts) and any extra directories given, e.g. selftests.
#   initramfs.sh OUTPUT [DEST=SRCDIR]...
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

out=$1; shift
busybox=/bin/busybox
kind=$(file -b "$busybox" 2>/dev/null || true)
[[ $kind == *"statically linked"* ]] ||
	[ -x "$busybox" ] || die "static busybox missing: run make setup"

root=$(mktemp -d "$FPB_CACHE/initramfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,tests}
cp "$busybox" "$root/bin/busybox"
cp "$FPB_REPO/tests/guest/init" "$root/init"
cp "$FPB_REPO"/tests/guest/*.sh "$root/tests/"
for spec in "$@"; do
	dest=${spec%%=*} src=${spec#*=}
	[ -d "$src" ] || die "initramfs: $src is not a directory"
	mkdir -p "$root/$dest" && cp -a "$src/." "$root/$dest/"
done
(cd "$root" && find . -print0 | cpio --null -o -H newc --quiet) | gzip -1 > "$out.tmp"
mv "$out.tmp" "$out"

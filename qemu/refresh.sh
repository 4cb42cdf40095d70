#!/usr/bin/env bash
# Turn the commits on top of the local build commit in $FPB_CACHE/qemu
# back into qemu/patches/*.patch and qemu/patches/series.  Workflow:
#   make qemu; cd $FPB_CACHE/qemu; git checkout -b work; edit; git commit
#   (or git rebase -i to change an earlier patch); qemu/refresh.sh
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"

tree=$FPB_CACHE/qemu
out=$FPB_REPO/qemu/patches
local_commit=$(git -C "$tree" log --format=%H --grep='^local: build adjustments' -1)
[ -n "$local_commit" ] || die "$tree has no local build commit: run make qemu first"
[ -z "$(git -C "$tree" status --porcelain)" ] || die "$tree has uncommitted edits: commit them first"

authors=$(git -C "$tree" log --format=%an "$local_commit..HEAD")
grep -qx assemble <<< "$authors" &&
	die "$tree is at the commits scripts/qemu.sh assembled: check out your work branch first"

rm -f "$out"/*.patch
git -C "$tree" format-patch -q --zero-commit --no-signature --subject-prefix="RFC PATCH" \
	-o "$out" "$local_commit..HEAD"
{
	echo "# Our QEMU series, applied in this order on Debian's qemu 10.0.2 source"
	echo "# (orig tarball) by scripts/qemu.sh.  Regenerate with qemu/refresh.sh."
	(cd "$out" && ls -1 *.patch)
} > "$out/series"
cat "$out/series"

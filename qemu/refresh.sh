#!/usr/bin/env bash
# Turn the commits on top of the local build commit in $FPB_CACHE/qemu
# back into the repository: the files they add go to qemu/ at their QEMU
# paths (as of the last commit), their edits of QEMU's own files to
# qemu/patches/*.patch, and qemu/patches/manifest says which commit adds
# which file (make series rebuilds the series from it).  Workflow: start
# from the exported series, whose commits carry their patch and files
# (the assembled commits carry subjects only, and are refused here):
#   make series; cd $FPB_CACHE/qemu
#   git checkout -b work $(git -C $FPB_CACHE/qemu-series-tree rev-parse HEAD)
#   edit; git commit (or git rebase -i to change an earlier patch)
#   qemu/refresh.sh
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

ours=$(git -C "$tree" diff --name-only --diff-filter=A "$local_commit" HEAD)
under_qemu_paths() {
	local p
	for p in $QEMU_PATHS; do [[ $1 == "$p"/* ]] && return 0; done
	return 1
}
while read -r f; do
	under_qemu_paths "$f" || die "$f is new but not under QEMU_PATHS ($QEMU_PATHS, scripts/lib.sh)"
done <<< "$ours"

rm -f "$out"/*.patch
exclude=()
while read -r f; do exclude+=(":(exclude)$f"); done <<< "$ours"
git -C "$tree" format-patch -q --zero-commit --no-signature --subject-prefix="RFC PATCH" \
	-o "$out" "$local_commit..HEAD" -- . "${exclude[@]}"
[ "$(ls "$out"/*.patch | wc -l)" = "$(git -C "$tree" rev-list --count "$local_commit..HEAD")" ] ||
	die "a commit only adds files: give it an edit of a QEMU file (meson.build) or fold it"
{
	echo "# Our QEMU series, applied in this order on Debian's qemu 10.0.2 source"
	echo "# (orig tarball) by scripts/qemu.sh, before our files under qemu/."
	echo "# Regenerate with qemu/refresh.sh."
	(cd "$out" && ls -1 *.patch)
} > "$out/series"

# Which commit adds which file, for make series.
{
	echo "# The exported QEMU series (make series), written by qemu/refresh.sh:"
	echo "# each commit is its patch plus the files it adds, as of the last commit."
	i=0
	for c in $(git -C "$tree" rev-list --reverse "$local_commit..HEAD"); do
		i=$((i + 1))
		echo
		echo "patch: $(cd "$out" && ls -1 "$(printf '%04d' $i)"-*.patch)"
		git -C "$tree" diff-tree --no-commit-id --name-only --diff-filter=A -r "$c" |
			sed 's/^/file: /'
	done
} > "$out/manifest"

# Our files, as of the last commit; files of ours no commit adds any more go.
# shellcheck disable=SC2086
(cd "$FPB_REPO/qemu" && git ls-files -- $QEMU_PATHS) | while read -r f; do
	grep -qxF "$f" <<< "$ours" || git -C "$FPB_REPO" rm -q "qemu/$f"
done
while read -r f; do
	mkdir -p "$FPB_REPO/qemu/$(dirname "$f")"
	git -C "$tree" show "HEAD:$f" > "$FPB_REPO/qemu/$f"
done <<< "$ours"
cat "$out/series"

#!/usr/bin/env bash
# Export the QEMU work as an upstream patch series, as
# qemu/patches/manifest says: each commit is one patch of qemu/patches
# (its message and its edits of QEMU's files) plus the files of ours under
# qemu/ that it adds.  Built commit by commit in a worktree of the
# assembled tree at $FPB_CACHE/qemu-series-tree, on top of the local build
# commit (which no patch touches, so the patches apply to the base too);
# it must use every patch and file once and end at the assembled tree.
# Output: `git format-patch --cover-letter` in $FPB_CACHE/series/qemu/.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

tree=$FPB_CACHE/qemu
work=$FPB_CACHE/qemu-series-tree
out=$FPB_CACHE/series/qemu
patches=$FPB_REPO/qemu/patches

local_commit=$(qemu_worktree "$work")
cd "$work"
git am --abort 2>/dev/null || true
git checkout -q -f --detach "$local_commit"
git clean -q -fdx
# The same date for every export of the same repository state.
export GIT_COMMITTER_NAME=series GIT_COMMITTER_EMAIL=series@localhost
GIT_COMMITTER_DATE=$(git -C "$FPB_REPO" log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
export GIT_COMMITTER_DATE

declare -A used
commit_stanza() { # commit_stanza PATCH FILE...
	local patch=$1 f; shift
	git am -q --committer-date-is-author-date --whitespace=nowarn "$patches/$patch" ||
		die "qemu series: $patch does not apply (manifest order)"
	for f in "$@"; do
		[ -f "$FPB_REPO/qemu/$f" ] || die "qemu series: manifest names $f, which is not in qemu/"
		mkdir -p "$(dirname "$f")" && cp -p "$FPB_REPO/qemu/$f" "$f" && git add -f "$f"
		used[$f]=1
	done
	used[$patch]=1
	[ $# = 0 ] || git commit -q --amend --no-edit
}

for_each_stanza "$patches/manifest" commit_stanza

# shellcheck disable=SC2086
missing=$( { grep -v '^\s*\(#\|$\)' "$patches/series"
	     (cd "$FPB_REPO/qemu" && git ls-files --cached --others --exclude-standard -- $QEMU_PATHS); } |
	   while read -r x; do [ -n "${used[$x]:-}" ] || echo "$x"; done)
[ -z "$missing" ] || die "qemu series: the manifest leaves out: $missing (run qemu/refresh.sh)"
if ! git diff --quiet HEAD "$(git -C "$tree" rev-parse HEAD)"; then
	git diff --stat HEAD "$(git -C "$tree" rev-parse HEAD)" >&2
	die "qemu series: the series does not end at the assembled tree (above: what differs)"
fi

rm -rf "$out"
git format-patch -q --cover-letter --zero-commit --subject-prefix="RFC PATCH" \
	-o "$out" "$local_commit..HEAD"
fill_cover_letter "$out/0000-cover-letter.patch" "$patches/cover-letter"
echo "qemu series: $(ls "$out" | grep -vc cover-letter) patches and a cover letter in $out"

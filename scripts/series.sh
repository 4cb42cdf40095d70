#!/usr/bin/env bash
# Export the kernel work as an upstream patch series, as
# patches/linux/manifest says: `git format-patch --cover-letter --base`
# output in $FPB_CACHE/series/.  The series is built commit by commit in a
# worktree at $FPB_CACHE/series-tree, must use every patch and every file
# of ours exactly once, and must end at the assembled tree.  The virtio
# spec proposal for the feature goes to $FPB_CACHE/series/virtio-spec/.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

manifest=$FPB_REPO/patches/linux/manifest
work=$FPB_CACHE/series-tree
out=$FPB_CACHE/series

"$FPB_REPO/scripts/assemble.sh" >/dev/null
ensure_worktree "$work"
cd "$work"
git am --abort 2>/dev/null || true
git checkout -q -f --detach base
git clean -q -fdx

# Reproducible: authored and committed when the repository last changed.
who=$(author)
export GIT_AUTHOR_NAME=${who% <*} GIT_AUTHOR_EMAIL=${who##*<}
GIT_AUTHOR_EMAIL=${GIT_AUTHOR_EMAIL%>}
export GIT_COMMITTER_NAME=$GIT_AUTHOR_NAME GIT_COMMITTER_EMAIL=$GIT_AUTHOR_EMAIL
GIT_AUTHOR_DATE=$(git -C "$FPB_REPO" log -1 --format=%cI 2>/dev/null || date -u +%FT%TZ)
export GIT_AUTHOR_DATE GIT_COMMITTER_DATE=$GIT_AUTHOR_DATE

# Our MAINTAINERS entry, with the F: lines that match a file in the tree so
# far: each commit that adds files names them there, so checkpatch and
# get_maintainer.pl are right at every commit.
file_maintainers() {
	local entry line pattern f
	entry=$(while IFS= read -r line; do
		case $line in
		F:*) pattern=${line#F:}; pattern=${pattern#"${pattern%%[! 	]*}"}
		     for f in "${!used[@]}"; do
			     # shellcheck disable=SC2053
			     if [[ $f == $pattern || $f == "$pattern"* ]]; then echo "$line"; break; fi
		     done ;;
		*) echo "$line" ;;
		esac
	done < "$FPB_REPO/MAINTAINERS")
	# The file as the patches so far left it (one renames a file another
	# entry names), without our entry as an earlier commit filed it.
	git cat-file blob HEAD:MAINTAINERS |
		awk -v title="$(head -n 1 "$FPB_REPO/MAINTAINERS")" \
			'$0 == title { skip = 1 } !skip { print } skip && $0 == "" { skip = 0 }' |
		awk -v SNIPPET=<(echo "$entry") -f "$FPB_REPO/scripts/maintainers-insert.awk" > MAINTAINERS
	git add MAINTAINERS
}

declare -A used
commit_stanza() { # commit_stanza PATCH FILE...: one commit of the series
	local patch=$1 f; shift
	git am -q --whitespace=nowarn "$FPB_REPO/patches/linux/$patch" ||
		die "series: $patch does not apply (manifest order)"
	for f in "$@"; do
		[ -f "$FPB_REPO/$f" ] || die "series: manifest names $f, which is not in the repository"
		mkdir -p "$(dirname "$f")" && cp -p "$FPB_REPO/$f" "$f" && git add -f "$f"
		used[$f]=1
	done
	used[$patch]=1
	if [ $# -gt 0 ]; then
		file_maintainers
		git commit -q --amend --no-edit
	fi
}

for_each_stanza "$manifest" commit_stanza

# Everything is in the series once, and the series is the assembled tree.
missing=$( { grep -v '^\s*\(#\|$\)' "$FPB_REPO/patches/linux/series" | awk '{print $1}'
	     # shellcheck disable=SC2086
	     (cd "$FPB_REPO" && git ls-files --cached --others --exclude-standard -- $KERNEL_PATHS); } |
	   while read -r x; do [ -n "${used[$x]:-}" ] || echo "$x"; done)
[ -z "$missing" ] || die "series: the manifest leaves out: $missing"
if ! git diff --quiet HEAD "$(git -C "$LINUX_TREE" rev-parse HEAD)"; then
	git diff --stat HEAD "$(git -C "$LINUX_TREE" rev-parse HEAD)" >&2
	die "series: the series does not end at the assembled tree (above: what differs)"
fi

rm -rf "$out"
git format-patch -q --cover-letter --base=base -o "$out" base..HEAD
fill_cover_letter "$out/0000-cover-letter.patch" "$FPB_REPO/patches/linux/cover-letter"
echo "series: $(ls "$out" | grep -vc cover-letter) patches and a cover letter in $out"

# The virtio spec proposal (virtio-spec/README.md), beside the series.
mkdir -p "$out/virtio-spec"
cp -p "$FPB_REPO"/virtio-spec/*.patch "$out/virtio-spec/"
echo "series: the virtio spec proposal in $out/virtio-spec"

# The QEMU series, beside it (it needs the assembled QEMU tree).
"$FPB_REPO/scripts/qemu-series.sh"

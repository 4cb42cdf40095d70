#!/usr/bin/env bash
# The way back from the assembled tree to the repository.
#   - our own files (paths under KERNEL_PATHS that do not exist upstream)
#     are copied back, new ones added and deleted ones removed;
#   - an edited upstream file goes back into the last patch of the series
#     that touches it (its hunks for that file are regenerated; its
#     message is kept).  An upstream file no patch touches is refused
#     unless PATCH=name.patch says where it belongs (a new patch at the
#     end of the series if that file does not exist yet).
# Afterwards the tree is re-assembled from the repository and is clean.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

cd "$LINUX_TREE"
changes=$(git status --porcelain --untracked-files=all | cut -c4-)
[ -n "$changes" ] || { echo "refresh: no edits in $LINUX_TREE"; exit 0; }

# Start a new patch at the end of the series, with a message to edit.
new_patch() {
	local who
	who=$(author)
	mkdir -p "$FPB_REPO/patches/linux"
	printf 'From: %s\nSubject: [PATCH] subsystem: say what it does\n\nSay why first, then what.\n\nSigned-off-by: %s\n---\n' \
		"$who" "$who" > "$FPB_REPO/patches/linux/$1"
	echo "$1" >> "$FPB_REPO/patches/linux/series"
	echo "refresh: started patches/linux/$1 at the end of series; edit its message"
}

declare -A regen	# patch file -> space-separated upstream files edited
under_ours() { local d; for d in $KERNEL_PATHS; do case $1 in "$d"/*) return 0 ;; esac; done; return 1; }

while read -r f; do
	if ! git cat-file -e "base:$f" 2>/dev/null; then
		under_ours "$f" || die "$f is new but outside our paths ($KERNEL_PATHS)"
		if [ -e "$f" ]; then
			mkdir -p "$FPB_REPO/$(dirname "$f")"
			cp -p "$f" "$FPB_REPO/$f"; echo "refresh: copied back $f"
		else
			rm -f "$FPB_REPO/$f"; echo "refresh: removed $f"
		fi
		continue
	fi
	[ "$f" != MAINTAINERS ] ||
		die "MAINTAINERS: edit our entry in the repository's MAINTAINERS snippet instead"
	# Upstream file: the last patch commit that touched it owns the edit.
	owner=$(git log -1 --format=%b base..HEAD -- "$f" | sed -n 's/^patch: //p')
	if [ -z "$owner" ]; then
		[ -n "${PATCH:-}" ] ||
			die "$f is an upstream file no patch touches: run make refresh PATCH=name.patch (it must be in series)"
		if [ ! -f "$FPB_REPO/patches/linux/$PATCH" ]; then
			new_patch "$PATCH"
		elif ! grep -qE "^$PATCH(\s|$)" "$FPB_REPO/patches/linux/series"; then
			die "PATCH=$PATCH exists but is not in patches/linux/series"
		fi
		owner=$PATCH
	fi
	regen[$owner]+="$f "
done <<< "$changes"

# The series' commits, read whole (no early exit in a pipeline: SIGPIPE).
log=$(git log --format='%H %b' base..HEAD)
for p in "${!regen[@]}"; do
	pf=$FPB_REPO/patches/linux/$p
	commit=$(awk -v p="patch: $p" '$0 ~ p { print $1; exit }' <<< "$log")
	# If the patch has no commit yet (PATCH= naming a patch file that is
	# empty so far), it starts from the tree before it.
	parent=$(git rev-parse "${commit:-HEAD}^")
	[ -n "$commit" ] || parent=HEAD
	idx=$(mktemp)
	GIT_INDEX_FILE=$idx git read-tree "${commit:-HEAD}"
	for f in ${regen[$p]}; do
		if [ -e "$f" ]; then
			[ -x "$f" ] && mode=100755 || mode=100644
			GIT_INDEX_FILE=$idx git update-index --add --cacheinfo \
				"$mode,$(git hash-object -w "$f"),$f"
		else
			GIT_INDEX_FILE=$idx git update-index --force-remove "$f"
		fi
	done
	tree=$(GIT_INDEX_FILE=$idx git write-tree); rm -f "$idx"
	files=$( { [ -z "$commit" ] || git diff --name-only "$parent" "$commit"; echo "${regen[$p]}" | tr ' ' '\n'; } | sort -u | grep .)
	header=$(sed '/^diff --git /,$d' "$pf" 2>/dev/null || true)
	# shellcheck disable=SC2086
	{ printf '%s\n' "$header"; git diff --no-color "$parent" "$tree" -- $files; } > "$pf.tmp"
	mv "$pf.tmp" "$pf"
	echo "refresh: regenerated patches/linux/$p (${regen[$p]% })"
done

FORCE=1 "$FPB_REPO/scripts/assemble.sh" >/dev/null
[ -z "$(git status --porcelain)" ] ||
	die "refresh: the re-assembled tree differs from your edits; see git -C $LINUX_TREE status"
echo "refresh: $LINUX_TREE is clean and matches the repository"

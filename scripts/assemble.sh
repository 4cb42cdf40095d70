#!/usr/bin/env bash
# Assemble the kernel work tree: base + patches/linux/series applied in
# order (one commit each) + our MAINTAINERS entry filed in (one commit) +
# our own files copied in at their paths (one last commit).  Only files whose content changes are rewritten, so an
# unchanged file keeps its mtime and Kbuild rebuilds only what changed.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

"$FPB_REPO/scripts/base.sh"
cd "$LINUX_TREE"

edits=$(git status --short)
if [ "${FORCE:-0}" != 1 ] && [ -n "$edits" ]; then
	head -20 <<< "$edits" >&2
	die "$LINUX_TREE has edits that are not in the repository:
  make refresh      turns them into patches and files of the repo
  make assemble FORCE=1   throws them away"
fi

export GIT_AUTHOR_NAME=assemble GIT_AUTHOR_EMAIL=assemble@localhost
export GIT_COMMITTER_NAME=assemble GIT_COMMITTER_EMAIL=assemble@localhost
export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"
idx=$LINUX_TREE/.git/assemble-index
export GIT_INDEX_FILE=$idx
trap 'rm -f "$idx"' EXIT

git read-tree base
head=$(git rev-parse base)
series=$FPB_REPO/patches/linux/series
if [ -f "$series" ]; then
	head=$(commit_series "$series" "$head")
fi

# The MAINTAINERS entry is a snippet, filed in alphabetical order.
if [ -f "$FPB_REPO/MAINTAINERS" ]; then
	blob=$(git cat-file blob :MAINTAINERS |
	       awk -v SNIPPET="$FPB_REPO/MAINTAINERS" -f "$FPB_REPO/scripts/maintainers-insert.awk" |
	       git hash-object -w --stdin) || die "cannot file the MAINTAINERS entry"
	git update-index --cacheinfo "100644,$blob,MAINTAINERS"
	head=$(git commit-tree "$(git write-tree)" -p "$head" -m "MAINTAINERS: add our entry")
fi

# Our own files, at their paths.
# shellcheck disable=SC2086
head=$(commit_files . "$head" $KERNEL_PATHS)

unset GIT_INDEX_FILE
if [ "$(git rev-parse HEAD)" != "$head" ]; then
	git checkout -q -f --detach "$head"
	git clean -q -fd
fi
echo "assembled $LINUX_TREE at $(git rev-parse --short HEAD)"

#!/usr/bin/env bash
# Review gates on our kernel changes, one TAP line per check:
#   checkpatch.pl --strict on each patch of patches/linux/series and on
#   the whole change; kernel-doc on our C files; sparse (C=2) and W=1
#   on every C file we add (no warning allowed) or patch (no warning that
#   the base does not have).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"


cd "$LINUX_TREE"
series=$FPB_REPO/patches/linux/series
patches=$(grep -v '^\s*\(#\|$\)' "$series" 2>/dev/null | awk '{print $1}' || true)
# shellcheck disable=SC2086
ours=$(cd "$FPB_REPO" && git ls-files --cached --others --exclude-standard -- $KERNEL_PATHS)
touched=$(git diff --name-only base HEAD -- '*.c' | grep -vxF -f <(printf '%s\n' "$ours") || true)

checkpatch_cmd

echo "TAP version 13"
for p in $patches; do
	run_check "checkpatch --strict patches/linux/$p" \
		"${checkpatch[@]}" "$FPB_REPO/patches/linux/$p"
done
# All of it as one diff, as a reviewer applying the series sees it: a
# boot parameter is documented by a patch, new files are named in
# MAINTAINERS (checkpatch sees that in the diffstat).
run_check "checkpatch --strict on the whole change (base..assembled tree)" \
	bash -c '{ printf "From: %s\nSubject: [PATCH] all of it\n\nThe whole change, for review.\n\n" "$0"
		  printf "Signed-off-by: %s\n---\n" "$0"
		  git diff --stat --patch base HEAD; } | "$@" -' \
	"$(author)" "${checkpatch[@]}"
for f in $ours; do
	case $f in *.c|*.h) run_check "kernel-doc $f" scripts/kernel-doc -none -Wall "$f" ;; esac
done

# sparse and W=1: compile each kernel C file of ours and each patched C
# file that the guest configuration builds (selftests are userspace).
guest=$KBUILD_DIR/guest
for f in $ours $touched; do
	case $f in tools/*) continue ;; *.c) ;; *) continue ;; esac
	obj=${f%.c}.o
	[ -f "$guest/$obj" ] ||
		{ tap 0 "sparse and W=1 $f # SKIP not built by configs/guest.config"; continue; }
	new=$(warnings "$LINUX_TREE" "$guest" "$obj")
	if grep -qxF "$f" <<< "$touched" && [ -n "$new" ]; then
		# Compare with the same file in the base tree, built alike.
		"$FPB_REPO/scripts/kernel.sh" --base base "$FPB_REPO/configs/guest.config" -- prepare >/dev/null
		old=$(warnings "$LINUX_BASE_TREE" "$KBUILD_DIR/base" "$obj")
		new=$(comm -23 <(printf '%s\n' "$new") <(printf '%s\n' "$old"))
	fi
	[ -z "$new" ] && tap 0 "sparse and W=1 $f" || tap 1 "sparse and W=1 $f" "$new"
done
echo "1..$n"
[ "$failed" = 0 ]

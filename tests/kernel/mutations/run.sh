#!/usr/bin/env bash
# Apply each mutation of the allocator hooks to the assembled kernel tree,
# run the KUnit cases that must catch it and report, as TAP, whether they
# failed (ok: caught).  The tree is restored after each one.  Not part of
# make check: one kunit.py build and boot per mutation.  The list is
# tests/kernel/mutations/list: PATCH GLOB per line, GLOB the kunit.py
# filter of the cases that must fail.
#   tests/kernel/mutations/run.sh [PATCH...]
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../../scripts/lib.sh"

dir=$FPB_REPO/tests/kernel/mutations
tree=$LINUX_TREE
[ -z "$(git -C "$tree" status --porcelain)" ] || die "$tree has edits: make assemble first"
restore() { git -C "$tree" checkout -q -- .; }
trap restore EXIT
mkdir -p "$FPB_CACHE/logs/mutations"
# The configs of make kunit, so that its build stays warm after a run.
configs=("$FPB_REPO"/configs/kunit/*.kunitconfig)

# The list on fd 3: kunit.py's QEMU must not eat it from stdin.
while read -r patch glob <&3; do
	if [ $# -gt 0 ] && [[ " $* " != *" $patch "* ]]; then continue; fi
	log=$FPB_CACHE/logs/mutations/${patch%.patch}.log
	git -C "$tree" apply "$dir/$patch" || die "$patch does not apply"
	rc=0
	"$FPB_REPO/scripts/kunit.sh" "${configs[@]}" --filter "$glob" > "$log" 2>&1 || rc=$?
	restore
	# Caught: the mutant built and booted, and a case failed or the
	# guest crashed (every boot has panic_on_warn=1, as make kunit).
	if ! grep -q 'Starting KUnit Kernel' "$log"; then
		echo "not ok - $patch: the mutant did not build (see $log)"
	elif [ $rc -ne 0 ]; then
		echo "ok - $patch caught by $glob"
	else
		echo "not ok - $patch survives $glob"
	fi
done 3< <(grep -v '^\s*\(#\|$\)' "$dir/list")

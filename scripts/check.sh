#!/usr/bin/env bash
# Run every test runner, show its output, and end with one summary line
#   N passed, N failed, N skipped
# counted from the runners' own results (TAP lines; kunit.py's totals).
# A runner that fails without reporting a failing test counts as one
# failure, so a broken build is never silent.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

logs=$FPB_CACHE/logs
mkdir -p "$logs"
pass=0 fail=0 skip=0

count_tap() { # count_tap LOG -> "pass fail skip"
	awk '/^(not )?ok [0-9]+/ {
		if ($0 ~ /# *(SKIP|skip)/) s++; else if ($1 == "ok") p++; else f++
	     } END { printf "%d %d %d\n", p, f, s }' "$1"
}
count_kunit() { # kunit.py, per boot: "Ran N tests: passed: A, failed: B, crashed: C, skipped: D"
	grep -E 'Testing complete\. Ran [0-9]+ tests' "$1" | awk '
		{ for (i = 1; i <= NF; i++) {
			k = $i; v = $(i + 1); sub(/,$/, "", v)
			if (k == "passed:") p += v
			else if (k == "failed:" || k == "crashed:" || k == "errors:") f += v
			else if (k == "skipped:") s += v
		} } END { printf "%d %d %d\n", p, f, s }'
}

for target in "$@"; do
	log=$logs/$target.log
	step "make $target"
	make -C "$FPB_REPO" --no-print-directory "$target" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	case $target in kunit) counts=$(count_kunit "$log") ;; *) counts=$(count_tap "$log") ;; esac
	read -r p f s <<< "$counts"
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - make $target failed (exit $rc) without a failing test: see $log"
		f=1
	fi
	echo "# make $target: $p passed, $f failed, $s skipped"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]

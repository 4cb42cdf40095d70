#!/usr/bin/env bash
# Run every test runner, show its output and its seconds, and end with
# where the time went and one summary line
#   N passed, N failed, N skipped
# counted from the runners' own results (TAP lines; kunit.py's totals).
# A runner that fails without reporting a failing test counts as one
# failure, so a broken build is never silent.  A test that skipped as a
# whole (kselftest's "1..0 # SKIP") counts as one skip; KUnit suites
# whose every case skipped are named.
#
# With CI=true a skip is a failure unless allowed_skips() below lets it
# through: make check builds and provides everything the feature's tests
# need, so a skip there means a prerequisite went missing.  The README's
# "Tests" section lists the allowed skips and why.
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

logs=$FPB_CACHE/logs
mkdir -p "$logs"
pass=0 fail=0 skip=0

count_tap() { # count_tap LOG -> "pass fail skip"
	awk '/^(not )?ok [0-9]+/ {
		if ($0 ~ /# *(SKIP|skip)/) s++; else if ($1 == "ok") p++; else f++
	     }
	     /^1\.\.0 *# *(SKIP|skip)/ { s++ }
	     END { printf "%d %d %d\n", p, f, s }' "$1"
}
skips_tap() { # skips_tap LOG: the skipped tests' lines
	grep -E '^(ok [0-9]+.*|1\.\.0 *)# *(SKIP|skip)' "$1" || true
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
skips_kunit() { # kunit.py's lines for skipped cases and all-skipped suites
	sed -n 's/^\[[0-9:]*\] *\(=* *\[SKIPPED\] .*\)$/\1/p' "$1"
}

# allowed_skips TARGET: an extended regular expression for the skips CI
# accepts from `make TARGET` (empty: none).  Keep the README's "Tests"
# section in step.
allowed_skips() {
	case $1 in
	# C files that configs/guest.config does not build (the KUnit
	# tests): make kunit compiles them with W=1 warnings shown.
	lint|series-check) echo '^ok [0-9]+ sparse and W=1 .* # SKIP not built by (configs/guest\.config|the guest config)$' ;;
	esac
}
ci=${CI:-false}
start=$SECONDS times=()

for target in "$@"; do
	log=$logs/$target.log
	step "make $target"
	t0=$SECONDS
	make -C "$FPB_REPO" --no-print-directory "$target" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	case $target in kunit) counts=$(count_kunit "$log") ;; *) counts=$(count_tap "$log") ;; esac
	read -r p f s <<< "$counts"
	case $target in kunit) skipped=$(skips_kunit "$log") ;; *) skipped=$(skips_tap "$log") ;; esac
	suites=$(sed -n 's/^=* *\[SKIPPED\] \([^ ]*\) =*$/\1/p' <<< "$skipped" | paste -sd' ')
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - make $target failed (exit $rc) without a failing test: see $log"
		f=1
	fi
	if [ "$ci" = true ] && [ -n "$skipped" ]; then
		allowed=$(allowed_skips "$target")
		while IFS= read -r line; do
			[ -n "$allowed" ] && grep -qE -- "$allowed" <<< "$line" && continue
			case $line in "="*) continue ;; esac # a suite's footer: its cases count
			echo "not ok - CI: make $target skipped a test whose prerequisites make check provides: $line"
			f=$((f + 1)) s=$((s - 1))
		done <<< "$skipped"
	fi
	secs=$((SECONDS - t0))
	times+=("$target $secs s")
	echo "# make $target: $p passed, $f failed, $s skipped${suites:+ (every subtest skipped in KUnit: $suites)} ($secs s)"
	pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + s))
done
# Where the time goes, runner by runner (README, "Tests": the budget)
printf -v spent '%s, ' "${times[@]}"
echo "# time: ${spent%, }; total $((SECONDS - start)) s"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ] && [ "$pass" -gt 0 ]

#!/usr/bin/env bash
# make peer-qemu (part of make peer-tests): QEMU's
# tests/qtest/migration-test --full (10.0.2, built from our tree) against
# our QEMU and, as the baseline, against the same source without our
# patches (Debian's qemu-system-x86_64 has no qtest accelerator, so the
# baseline is Debian's source as we build it: the local build commit of
# $FPB_CACHE/qemu, in a worktree and build of its own, built once).  A
# case fails when it fails on ours; if it fails on the baseline too, it
# is reported as a skip that says so.  Every case, both results and the
# seconds on ours go to the "QEMU migration-test" section of
# bench/results/peer-tests.md (make check runs the quick set on ours,
# in qemu-check).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"
. "$(dirname "$(readlink -f "$0")")/record.sh"

build=$FPB_CACHE/build/qemu
stock_tree=$FPB_CACHE/qemu-stock
stock_build=$FPB_CACHE/build/qemu-stock
out=$FPB_CACHE/peer
mkdir -p "$out"
[ -x "$build/tests/qtest/migration-test" ] || die "no migration-test in $build: run make qemu"

# The baseline: the commit before our patches, with the same build options.
local_commit=$(qemu_worktree "$stock_tree")
[ "$(git -C "$stock_tree" rev-parse HEAD)" = "$local_commit" ] ||
	git -C "$stock_tree" checkout -q -f --detach "$local_commit"
NINJA_TARGETS=qemu-system-x86_64 \
	"$FPB_REPO/scripts/qemu.sh" --build-at "$stock_tree" "$stock_build" > "$out/stock-build.log" 2>&1 ||
	die "the baseline QEMU did not build: $(tail -5 "$out/stock-build.log")"

# suite NAME QEMU: migration-test --full against QEMU, one line per event
# in $out/NAME.log, stamped with the seconds since the start (a case's
# duration is the time from its "# Running" to its result).
suite() {
	local rc=0
	(cd "$build" && QTEST_QEMU_BINARY=$2 PYTHON=/usr/bin/python3 \
		without_kvm flock "$FPB_CPU_LOCK" timeout "$(scaled 3600)" \
		./tests/qtest/migration-test --tap -k --full 2>&1) |
		while IFS= read -r line; do printf '%d %s\n' "$SECONDS" "$line"; done \
		> "$out/$1.log" || rc=$?
	echo "$rc" > "$out/$1.rc"
}
# results NAME: "case|result|seconds|messages" per case of run NAME
results() {
	local t line began=0 said='' name res
	while read -r t line; do
		case $line in
		"# Running "*) began=$t said= ;;
		"**"*|ERROR*|"# "*[Ff]ail*) said+="${line//|/ } " ;;
		"ok "[0-9]*|"not ok "[0-9]*)
			name=${line#*ok [0-9]* }
			if [[ $line == "not ok"* ]]; then
				res=fail
			elif [[ $name == *"# SKIP"* ]]; then
				res="skip: ${name#*# SKIP }" res=${res//|/ }
			else
				res=pass
			fi
			echo "${name%% # SKIP*}|$res|$((t - began))|$said" ;;
		esac
	done < "$out/$1.log"
}

suite ours ./qemu-system-x86_64
suite stock "$stock_build/qemu-system-x86_64"
declare -A stock
while IFS='|' read -r name res _; do stock[$name]=$res; done < <(results stock)

echo "TAP version 13"
rows=() passed=0 fails=0 skips=0 not_ok=0
declare -A seen
while IFS='|' read -r name res secs said; do
	seen[$name]=1
	base=${stock[$name]:-not run}
	case $res in
	pass) tap 0 "migration-test --full: $name"; passed=$((passed + 1)) ;;
	skip*) tap 0 "migration-test --full: $name # SKIP ${res#skip: }"; skips=$((skips + 1)) ;;
	*) not_ok=$((not_ok + 1))
	   if [ "$base" = fail ]; then
		tap 0 "migration-test --full: $name # SKIP fails on the unpatched baseline too"
		skips=$((skips + 1))
	   else
		tap 1 "migration-test --full: $name (baseline: $base)" "$said"
		fails=$((fails + 1))
	   fi ;;
	esac
	rows+=("| \`$name\` | $res | $base | $secs |")
done < <(results ours)
# With -k the suite exits 1 when a case failed: any other status (a
# timeout, a signal), or 1 with no failed case, means it did not finish.
rc=$(cat "$out/ours.rc")
if [ "$rc" != 0 ] && { [ "$rc" != 1 ] || [ "$not_ok" = 0 ]; }; then
	tap 1 "migration-test --full on ours exited with $rc" "$(tail -5 "$out/ours.log" | cut -d' ' -f2-)"
fi
# Every case the baseline ran, ours ran too.
while IFS='|' read -r name _; do
	[ -n "${seen[$name]:-}" ] || tap 1 "migration-test --full: $name ran on ours (it ran on the baseline)"
done < <(results stock)
stock_cases=$(results stock | wc -l)
stock_passed=$(results stock | grep -c '|pass|' || true)
echo "1..$n"

{
	echo "## QEMU tests/qtest/migration-test --full"
	echo
	echo "\`make peer-qemu\` ($(date -u +%F)).  Debian's QEMU source $QEMU_DEB_VERSION,"
	echo "TCG, the test's own guest (no balloon on its command line: this guards"
	echo "the migration code our patches change, not the filter), the test built"
	echo "from our tree.  Against our QEMU: $passed passed, $fails failed, $skips skipped,"
	echo "exit $(cat "$out/ours.rc").  Against the baseline, the same source without"
	echo "qemu/patches and built alike (Debian's binary has no qtest accelerator):"
	echo "$stock_passed of $stock_cases passed, exit $(cat "$out/stock.rc").  $SECONDS s in all."
	missing=$(sed -n 's/^#undef CONFIG_\(GNUTLS\|ZSTD\|QPL\|UADK\|QATZIP\)$/\1/p' \
		  "$build/config-host.h" | paste -sd, | sed 's/,/, /g')
	[ -z "$missing" ] || echo "Not registered in this build (not configured): the cases of $missing."
	echo
	echo "| case | ours | baseline | s (ours) |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} | record_section qemu-migration-test
[ "$failed" = 0 ]

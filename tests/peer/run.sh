#!/usr/bin/env bash
# make peer-tests: test suites that no one here wrote, in full, against
# our code (make check runs their quick subsets), as TAP, with a record
# in bench/results/peer-tests.md:
#   - QEMU's tests/qtest/migration-test --full (10.0.2, from our tree)
#     against our QEMU: every case, its result and its seconds.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

build=$FPB_CACHE/build/qemu
out=$FPB_CACHE/peer
record=$FPB_REPO/bench/results/peer-tests.md
mkdir -p "$out"
[ -x "$build/tests/qtest/migration-test" ] || die "no migration-test in $build: run make qemu"

echo "TAP version 13"
# One line per event, stamped with the seconds since the start: the
# cases' own durations come from the stamps of "# Running" and the result.
log=$out/migration-test.log rc=0
(cd "$build" && QTEST_QEMU_BINARY=./qemu-system-x86_64 PYTHON=/usr/bin/python3 \
	flock "$FPB_CPU_LOCK" timeout "$(scaled 3600)" \
	./tests/qtest/migration-test --tap -k --full 2>&1) |
	while IFS= read -r line; do printf '%d %s\n' "$SECONDS" "$line"; done > "$log" || rc=$?

rows=() passed=0 fails=0 skips=0 began=0 said=
while read -r t line; do
	case $line in
	"# Running "*) began=$t said= ;;
	"**"*|ERROR*|"# "*[Ff]ail*) said+="$line"$'\n' ;;
	"ok "[0-9]*|"not ok "[0-9]*)
		name=${line#*ok [0-9]* }
		if [[ $line == "not ok"* ]]; then
			tap 1 "migration-test --full: $name" "$said"
			res="fail" fails=$((fails + 1))
		elif [[ $name == *"# SKIP"* ]]; then
			tap 0 "migration-test --full: $name"
			res="skip: ${name#*# SKIP }" skips=$((skips + 1))
		else
			tap 0 "migration-test --full: $name"
			res="pass" passed=$((passed + 1))
		fi
		rows+=("| \`${name%% # SKIP*}\` | $res | $((t - began)) |") ;;
	esac
done < "$log"
[ "$rc" = 0 ] || [ "$fails" != 0 ] ||
	tap 1 "migration-test --full exited with $rc" "$(tail -5 "$log" | cut -d' ' -f2-)"
echo "1..$n"

{
	echo "# Peer test suites"
	echo
	echo "Made by \`make peer-tests\` ($(date -u +%F)); tests no one here wrote, run against"
	echo "our code. Not part of \`make check\`, which runs the quick subsets"
	echo "(\`qemu-check\`: migration-test's quick set)."
	echo
	echo "## QEMU tests/qtest/migration-test --full"
	echo
	echo "Debian's QEMU source $QEMU_DEB_VERSION with qemu/patches, TCG, the"
	echo "test's own guest (no balloon on its command line: this guards the"
	echo "migration code our patches change, not the filter).  $passed passed,"
	echo "$fails failed, $skips skipped, exit $rc, $SECONDS s in all."
	missing=$(sed -n 's/^#undef CONFIG_\(GNUTLS\|ZSTD\|QPL\|UADK\|QATZIP\)$/\1/p' \
		  "$build/config-host.h" | paste -sd, | sed 's/,/, /g')
	[ -z "$missing" ] || echo "Not registered in this build (not configured): the cases of $missing."
	echo
	echo "| case | result | s |"
	echo "|---|---|---|"
	printf '%s\n' "${rows[@]}"
} > "$record"
[ "$failed" = 0 ]

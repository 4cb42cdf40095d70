#!/usr/bin/env bash
# make peer-mm (part of make peer-tests): tests no one here wrote, as
# tests/peer/mm-selftests.list says: the kernel's own mm selftests
# (tools/testing/selftests/mm of the pinned tree, built static),
# memory-hotplug's mem-on-off-test.sh, and Debian's stress-ng with the
# stressors the e2e stress-ng migration cannot run (numa, memory hotplug,
# huge pages).  The guest has 4 vCPUs (a socket of 2 per node), two NUMA
# nodes with memory, a DIMM onlined movable, and 1 GiB and 2 MiB huge
# pages reserved at boot; its kernel is the guest's with
# configs/peer.config (DEBUG_VM), booted with panic_on_warn=1 and
# tracking always on: once at granule 0, once at pageblock_order.  A test
# passes when it passes or skips itself, and debugfs verify reads 0 and
# tracking is still active after it.  A test that fails with tracking on
# runs again with tracking off (free_page_bitmap=never): failing there
# too, it is reported as not the feature's (a skip that says so).  One
# that passes there runs once more with tracking on: failing again, it
# is a failure; passing, it is reported as flaky (a skip that says so).
# Output: TAP, and the "Linux mm selftests" section of
# bench/results/peer-tests.md.
#
#   tests/peer/mm.sh [--quick] [--mutant PATCH] [PROGRAM...]
# With PROGRAMs, only those (no record); with --quick, at granule 0 only
# (make check's subset, peer-mm-quick).  With --mutant, the kernel is
# built with tests/kernel/mutations/PATCH applied (in a build of its own)
# and the run must fail: it shows which of the tests catch the mutation.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"
. "$(dirname "$(readlink -f "$0")")/record.sh"

mutant='' quick=''
while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1 ;;
	--mutant) [ $# -ge 2 ] || die "--mutant needs a patch of tests/kernel/mutations"
		  mutant=$2; shift ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
	shift
done
only=$(IFS=,; echo "$*")
bins=$KBUILD_DIR/peer-mm
out=$FPB_CACHE/peer/mm
list=$FPB_REPO/tests/peer/mm-selftests.list
initrd=$FPB_CACHE/initramfs-peer-mm.cpio.gz
configs=("$FPB_REPO"/configs/{guest,feature,peer}.config)
rm -rf "$out" && mkdir -p "$out"

kernel=peer
if [ -n "$mutant" ]; then
	kernel=peer-mutant
	tree=$LINUX_TREE
	[ -z "$(git -C "$tree" status --porcelain)" ] || die "$tree has edits: make assemble first"
	git -C "$tree" apply "$FPB_REPO/tests/kernel/mutations/$mutant" || die "$mutant does not apply"
	rc=0
	"$FPB_REPO/scripts/kernel.sh" "$kernel" "${configs[@]}" || rc=$?
	git -C "$tree" checkout -q -- .
	[ $rc = 0 ] || die "the mutant kernel did not build"
fi
bzimage=$KBUILD_DIR/$kernel/arch/x86/boot/bzImage
[ -f "$bzimage" ] || die "no $bzimage: run make kernel-peer"

# The programs, statically linked.  khugepaged.c of 6.12 uses KSFT_SKIP
# without including kselftest.h, which defines it: built with it forced.
mapfile -t progs < <(awk '!/^#/ && NF && $2 != "khugepaged" && $2 !~ /\.sh$/ { print $2 }' \
	"$list" | sort -u)
"$FPB_REPO/scripts/selftests.sh" "$bins" "${progs[@]}" > "$out/build.log" 2>&1 ||
	die "building the mm selftests failed: $(tail -5 "$out/build.log")"
make -C "$LINUX_TREE/tools/testing/selftests/mm" -s OUTPUT="$bins" ARCH=x86_64 \
	CC="gcc -static -include ../kselftest.h" \
	KHDR_INCLUDES="-isystem $KBUILD_DIR/guest/usr/include" "$bins/khugepaged" \
	>> "$out/build.log" 2>&1 || die "building khugepaged failed: $(tail -5 "$out/build.log")"
cp "$LINUX_TREE/tools/testing/selftests/memory-hotplug/mem-on-off-test.sh" "$bins/"
# Debian's stress-ng, with its libraries and their loader (as the e2e
# stress-ng scenario has it)
[ -x /usr/bin/stress-ng ] || die "no /usr/bin/stress-ng: run make setup"
cp /usr/bin/stress-ng "$FPB_REPO/tests/e2e/guest/stress-ng.sh" "$bins/"
for lib in $(ldd /usr/bin/stress-ng | grep -o '/[^ ]*'); do cp -L "$lib" "$bins/"; done
cp "$list" "$bins/list"
"$FPB_REPO/scripts/initramfs.sh" "$initrd" "peer=$bins"

huge="hugepagesz=1G hugepages=1 hugepagesz=2M hugepages=128"
# boot NAME CMDLINE...: one guest run of the list, its console in
# $out/NAME.log; the results are its "peer-mm:" lines.
boot() {
	local name=$1; shift
	QEMU=$FPB_CACHE/build/qemu/qemu-system-x86_64 \
	"$FPB_REPO/scripts/boot.sh" --kernel "$bzimage" --initrd "$initrd" \
		--run peer-mm --smp 4,sockets=2,cores=2 --mem 4G,slots=2,maxmem=5G --timeout 7200 \
		--log "$out/$name.log" \
		--append "$* fpb.limit=$(scaled 900) loglevel=5 memhp_default_state=online_movable $huge" -- \
		-L /usr/share/seabios -L /usr/share/qemu \
		-object memory-backend-ram,id=m0,size=2G -object memory-backend-ram,id=m1,size=2G \
		-numa node,nodeid=0,cpus=0-1,memdev=m0 -numa node,nodeid=1,cpus=2-3,memdev=m1 \
		-object memory-backend-ram,id=dimm0,size=512M \
		-device pc-dimm,id=dimm0,memdev=dimm0,node=1 > /dev/null 2>&1 || true
}
# results NAME: "TEST|rc|secs|verify|active|captured" per test run
results() {
	sed -n 's/^peer-mm: \(.*\) | rc=\([0-9]*\) secs=\([0-9]*\) verify=\([0-9]*\) active=\([0-9]*\) captured=\([0-9]*\)$/\1|\2|\3|\4|\5|\6/p' \
		"$out/$1.log"
}
# printed NAME TEST REGEX: the lines matching REGEX that the guest
# showed between TEST's start and its result in run NAME
printed() {
	awk -v t="$2" -v re="$3" '$0 == "# peer-mm: running " t { buf = ""; on = 1; next }
		on && $0 ~ re { buf = buf $0 "\n" }
		on && index($0, "peer-mm: " t " |") == 1 { printf "%s", buf; exit }' "$out/$1.log"
}
# said NAME TEST: the last lines TEST printed in run NAME, if it did
# not pass (the guest shows them only then)
said() {
	printed "$1" "$2" '^# \\| ' | sed -e 's/^# | //' -e 's/\x1b\[[0-9;]*m//g'
}
# expected: the tests of the list a run must report, "fpb.only" applied
expected() {
	awk -v only=",$only," '!/^#/ && NF { $1 = ""; sub(/^ /, "")
		split($0, w, " "); if (only == ",," || index(only, "," w[1] ",")) print }' "$list"
}
# crash NAME: what ended a run early, if something did
crash() {
	local log=$out/$1.log
	grep -q '^peer-mm: done' "$log" && return 0
	echo "the guest stopped while running $(grep -o '# peer-mm: running .*' "$log" |
		tail -1 | cut -d' ' -f4-): $(grep -m1 -E 'WARNING:|BUG:|Kernel panic' "$log" ||
		tail -1 "$log")"
}

pageblock=9
modes=("granule 0|free_page_bitmap=always fpb.granule=0")
[ -n "$quick" ] || modes+=("granule $pageblock|free_page_bitmap=always fpb.granule=$pageblock")
echo "TAP version 13"
for m in "${modes[@]}"; do
	label=${m%%|*}
	boot "${label// /-}" "${m#*|}" ${only:+fpb.only=$only}
done
# Every test that failed with tracking on, again with tracking off.
failing=$(for m in "${modes[@]}"; do l=${m%%|*}; results "${l// /-}"; done |
	  awk -F'|' '$2 != 0 && $2 != 4 { split($1, w, " "); print w[1] }' | sort -u | paste -sd,)
[ -z "$failing" ] || boot off "free_page_bitmap=never fpb.only=$failing"
declare -A off again
if [ -n "$failing" ]; then
	while IFS='|' read -r t rc _; do off[$t]=$rc; done < <(results off)
	# Those that passed with tracking off: once more with it on.
	rerun=$(results off | awk -F'|' '$2 == 0 || $2 == 4 { split($1, w, " "); print w[1] }' |
		sort -u | paste -sd,)
	[ -z "$rerun" ] || boot again "free_page_bitmap=always fpb.granule=0 fpb.only=$rerun"
	[ -z "$rerun" ] || while IFS='|' read -r t rc _; do again[$t]=$rc; done < <(results again)
fi

rows=()
for m in "${modes[@]}"; do
	label=${m%%|*} name=${label// /-}
	reported=$(results "$name")
	while IFS='|' read -r t rc secs verify active captured; do
		[ -n "$t" ] || continue		# no result at all: see below
		what="mm selftest $t ($label)"
		why="exit $rc, ${secs} s, verify $verify, active $active"
		if [ "$verify" != 0 ] || [ "$active" != 1 ]; then
			tap 1 "$what: bitmap wrong or tracking stopped ($why)" "$(said "$name" "$t")"
		elif [ "$rc" = 0 ] && totals=$(printed "$name" "$t" '^# (Totals|SUMMARY)') &&
		     grep -q 'pass:0 fail:0 .*skip:[1-9]' <<< "$totals" &&
		     ! grep -qv 'pass:0 fail:0' <<< "$totals"; then
			tap 0 "$what # SKIP every case skipped itself ($why)"
		elif [ "$rc" = 0 ]; then
			tap 0 "$what: $why"
		elif [ "$rc" = 4 ]; then
			tap 0 "$what # SKIP the test skipped itself: $(said "$name" "$t" | tail -1) ($why)"
		elif [ -n "${off[$t]:-}" ] && [ "${off[$t]}" != 0 ] && [ "${off[$t]}" != 4 ]; then
			tap 0 "$what # SKIP fails with tracking off too (exit ${off[$t]} there): not the feature's ($why)"
		elif [ -n "${again[$t]:-}" ] && { [ "${again[$t]}" = 0 ] || [ "${again[$t]}" = 4 ]; }; then
			tap 0 "$what # SKIP flaky: passed when run again, with tracking off and on ($why)"
		else
			tap 1 "$what: fails only with tracking on ($why; off: exit ${off[$t]:-not run}," \
				"on again: exit ${again[$t]:-not run})" "$(said "$name" "$t")"
		fi
		rows+=("$t|$label|$rc|$secs|$verify|$active|$captured")
	done <<< "$reported"
	problem=$(crash "$name")
	[ -z "$problem" ] || tap 1 "mm selftests ($label) ran to the end" "$problem (console: $out/$name.log)"
	# A line the console garbled, or a test the guest never ran
	tests=$(cut -d'|' -f1 <<< "$reported")
	want=$(expected)
	while IFS= read -r t; do
		grep -qxF -- "$t" <<< "$tests" ||
			tap 1 "mm selftest $t ($label) reported a result" "see $out/$name.log"
	done <<< "$want"
	[ -n "$want" ] || tap 1 "mm selftests ($label): the list has $only"
done
echo "1..$n"
[ -z "$only$mutant$quick" ] || exit $(( failed > 0 ))

# cell TEST LABEL: "exit N, S s" of that run, with what was wrong
cell() {
	printf '%s\n' "${rows[@]}" | awk -F'|' -v t="$1" -v l="$2" '
		$1 == t && $2 == l {
			r = $3 == 0 ? "pass" : $3 == 4 ? "skip" : $3 == 137 ? "killed" : "exit " $3
			if ($5 != 0) r = r ", verify " $5
			if ($6 != 1) r = r ", inactive"
			print r ", " $4 " s"; exit
		}'
}
{
	echo "## Linux mm selftests"
	echo
	echo "\`make peer-mm\` ($(date -u +%F)): tools/testing/selftests/mm of Debian's"
	echo "linux-source-6.12 $LINUX_DEB_VERSION with our series, built static, as"
	echo "tests/peer/mm-selftests.list says (the programs and arguments of"
	echo "run_vmtests.sh), memory-hotplug/mem-on-off-test.sh and Debian's stress-ng.  Guest: configs/"
	echo "guest.config + feature.config + peer.config (DEBUG_VM), 4 vCPUs, two NUMA"
	echo "nodes of 2 GiB, a 512 MiB DIMM on node 1 onlined movable, $huge,"
	echo "panic_on_warn=1, tracking always on.  After every test debugfs verify must"
	echo "read 0 and tracking must still be active.  A test failing with tracking on"
	echo "ran again with tracking off (column \"off\"), and if it passed there, once"
	echo "more with tracking on (column \"on again\")."
	echo
	echo "$n TAP lines, $failed of them failed; $SECONDS s in all."
	echo "Blocks direct compaction captured while tracked, by the end of the run"
	echo "(debugfs \`captured\`; free_page_bitmap's own capture test is one source):"
	echo "$(results granule-0 | tail -1 | cut -d'|' -f6) at granule 0,"\
		"$(results "granule-$pageblock" | tail -1 | cut -d'|' -f6) at granule $pageblock."
	for m in "${modes[@]}"; do
		l=${m%%|*}; p=$(crash "${l// /-}")
		[ -z "$p" ] || echo "At $l, $p."
	done
	echo
	echo "| test | granule 0 | granule $pageblock | off | on again |"
	echo "|---|---|---|---|---|"
	while read -r _ prog args; do
		t="$prog${args:+ $args}"
		echo "| \`$t\` | $(cell "$t" "granule 0") | $(cell "$t" "granule $pageblock") |" \
			"${off[$t]:+exit ${off[$t]}} | ${again[$t]:+exit ${again[$t]}} |"
	done < <(grep -v -e '^#' -e '^$' "$list")
	echo
	echo "Not in the list: on-fault-limit (runs as an unprivileged user through"
	echo "sudo), gup_test (needs CONFIG_GUP_TEST), hmm-tests and test_vmalloc.sh"
	echo "(test modules), protection_keys (pkeys), hugetlb-soft-offline and"
	echo "hugetlb-read-hwpoison (memory failure injection), the hugetlb cgroup"
	echo "scripts (cgroups), va_high_addr_switch and virtual_address_range (address"
	echo "space layout, no allocator path)."
} | record_section linux-mm-selftests
[ "$failed" = 0 ]

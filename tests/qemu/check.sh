#!/usr/bin/env bash
# make qemu-check: the QEMU side's tests, as one TAP stream.
#  1. the filter core's unit tests (tests/unit/test-free-page-bitmap.c,
#     through QEMU's meson test), and the same built with ASan/UBSan
#  2. the order mutation: the core with "clear log" and "read bits"
#     swapped must fail the deferred-write-protect test
#  3. the exported QEMU series: it builds at every commit, and
#     checkpatch.pl on each of its patches
#  4. QEMU's qtests for our device set, and its migration-test (quick
#     set), through meson test
#  5. a smoke test with the project's guest kernel and its driver
#
# No fuzzer: QEMU's fuzz target for the filter (patch 0009) needs a
# second, clang and sanitizer build of QEMU (make qemu-fuzz), too long
# for make check; the core runs under ASan/UBSan here in 1., on 300
# random layouts and the bad ones.
#
# The sanitizer and mutation builds compile the core and the
# unit test out of the assembled tree $FPB_CACHE/qemu (base +
# qemu/patches + qemu/, made by `make qemu`) with a small osdep.h shim
# (tests/qemu/shim): exactly the code we ship, without QEMU's build.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

tree=$FPB_CACHE/qemu
build=$FPB_CACHE/build/qemu
here=$FPB_REPO/tests/qemu
out=$FPB_CACHE/build/qemu-tests
LOCK=/var/lock/fpb-cpu.lock
mkdir -p "$out" "$FPB_CACHE/logs"
[ -f "$tree/migration/free-page-bitmap-core.c" ] ||
	die "$tree has no filter core: run make qemu first"

# tap_from CMD...: run CMD, renumber its TAP lines into ours, keep its
# comments; a CMD that fails without a failing line counts as a failure.
tap_from() {
	local res line rc=0 before=$failed
	res=$("$@" 2>&1) || rc=$?
	while IFS= read -r line; do
		case $line in
		"ok "[0-9]*) tap 0 "${line#ok [0-9]* - }" ;;
		"not ok "[0-9]*) tap 1 "${line#not ok [0-9]* - }" ;;
		"#"*) echo "$line" ;;
		esac
	done <<< "$res"
	if [ $rc != 0 ] && [ "$failed" = "$before" ]; then
		tap 1 "$(basename "$1") exited with $rc" "$res"
	fi
}

# meson_test NAME LABEL: run QEMU's test NAME through meson test; with a
# LABEL, each of its cases is a TAP line "LABEL: case" (the messages of a
# failed case in its details), else the test is one line.
meson_test() {
	local t=$1 label=${2:-} rc=0 before=$failed log subs line
	if [ ! -x "$build/qemu-system-x86_64" ]; then
		tap 1 "meson test $t" "no $build/qemu-system-x86_64: run make qemu"
		return
	fi
	(cd "$build" && without_kvm flock "$LOCK" meson test --no-rebuild -q -t "$(scaled 4)" "$t") \
		> "$out/meson-${t##*/}.log" 2>&1 || rc=$?
	log=$build/meson-logs/testlog.txt
	subs=$(grep -E '^(not )?ok [0-9]+ ' "$log" || true)
	if [ -n "$label" ]; then
		while IFS= read -r line; do
			case $line in
			"ok "*) tap 0 "$label: ${line#ok [0-9]* }" ;;
			"not ok "*) tap 1 "$label: ${line#not ok [0-9]* }" \
				"$(grep -E '^# (FAILED|ERROR|Bail)' "$log" || true)" ;;
			esac
		done <<< "$subs"
		[ $rc = 0 ] || [ "$failed" != "$before" ] ||
			tap 1 "$label (meson test exit $rc)" "$(tail -20 "$out/meson-${t##*/}.log")"
	else
		tap $rc "qtest ${t##*/} (meson test, $(grep -c '^ok ' <<< "$subs") cases)" \
			"$(grep -E '^not ok' <<< "$subs"; tail -5 "$out/meson-${t##*/}.log")"
	fi
}

qemu_core_flags
cflags=(-O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare "${QEMU_CORE_INCLUDES[@]}")
core=$tree/migration/free-page-bitmap-core.c
unit=$tree/tests/unit/test-free-page-bitmap.c

# 1. unit tests, as QEMU runs them, then with the sanitizers
meson_test test-free-page-bitmap "unit test-free-page-bitmap"
if gcc "${cflags[@]}" -fsanitize=address,undefined -fno-sanitize-recover=all \
	-o "$out/test-free-page-bitmap-asan" "$unit" "$core" "${GLIB_FLAGS[@]}" 2> "$out/build.log"; then
	rc=0
	res=$("$out/test-free-page-bitmap-asan" --tap -k 2>&1) || rc=$?
	tap $rc "unit test-free-page-bitmap with ASan/UBSan" \
		"$(grep -E '^(not ok|# FAILED)|runtime error|Sanitizer' <<< "$res" || true)"
else
	tap 1 "unit test-free-page-bitmap builds with ASan/UBSan" "$(cat "$out/build.log")"
fi

# 2. the order mutation
rc=0
"$here/swap-order.py" "$core" "$out/core-swapped.c" &&
	gcc "${cflags[@]}" -o "$out/test-free-page-bitmap-swapped" "$unit" \
		"$out/core-swapped.c" "${GLIB_FLAGS[@]}" 2>> "$out/build.log" || rc=$?
if [ $rc = 0 ]; then
	if res=$("$out/test-free-page-bitmap-swapped" -p /free-page-bitmap/order 2>&1); then
		tap 1 "order test catches a filter that reads the bits before clearing the dirty log" "$res"
	else
		res=$(grep -m1 -E '^# FAILED' <<< "$res" || true)
		tap 0 "order test catches a filter that reads the bits before clearing the dirty log (${res#\# })"
	fi
else
	tap 1 "order mutation builds" "$(tail -20 "$out/build.log")"
fi

# 3. the exported series (scripts/qemu-series.sh: each patch with the
# files it adds), and checkpatch on each of its patches (the header sync
# is imported from Linux by nature; the emulation's new files are under
# migration/ and 0002's test matches tests/qtest/migration-*, both of
# which MAINTAINERS covers)
rc=0
"$FPB_REPO/scripts/qemu-series.sh" > "$out/series.log" 2>&1 || rc=$?
tap $rc "QEMU series exports: each patch and file once, in manifest order, ends at the assembled tree" \
	"$(cat "$out/series.log")"
# Every commit of the series builds (QEMU, its unit tests and qtests), in
# order, in a build directory of its own: a full build the first time,
# then what each commit changes (ccache keeps later runs short).
if [ $rc = 0 ]; then
	series_tree=$FPB_CACHE/qemu-series-tree
	series_head=$(git -C "$series_tree" rev-parse HEAD)
	series_base=$(git -C "$series_tree" log --format=%H -1 \
		      --grep='^local: build adjustments' HEAD)
	for c in $(git -C "$series_tree" rev-list --reverse "$series_base..$series_head"); do
		git -C "$series_tree" checkout -q -f --detach "$c"
		rc=0
		"$FPB_REPO/scripts/qemu.sh" --build-at "$series_tree" \
			"$FPB_CACHE/build/qemu-series" > "$out/series-build.log" 2>&1 || rc=$?
		tap $rc "QEMU series builds at: $(git -C "$series_tree" log -1 --format=%s)" \
			"$(tail -20 "$out/series-build.log")"
	done
	git -C "$series_tree" checkout -q -f --detach "$series_head"
fi
for p in "$FPB_CACHE"/series/qemu/0*.patch; do
	case $p in *cover-letter*) continue ;; esac
	res=$("$tree/scripts/checkpatch.pl" -q "$p" 2>&1 |
	      grep -v -e 'imported from Linux, are you using scripts/update-linux-headers.sh' \
		      -e '^#[0-9]*: FILE: include/standard-headers/' \
		      -e '^ #define VIRTIO_BALLOON_F_FREE_PAGE_HINT' || true)
	case $p in
	*-migration-Emulate-KVM-s-manual-dirty-log-clear-* | \
	*-exec-ram_addr-Re-arm-TCG-dirty-tracking-whenever-*)
		res=$(grep -v 'does MAINTAINERS need updating' <<< "$res" || true) ;;
	esac
	if grep -qE '^(ERROR|WARNING)' <<< "$res"; then
		tap 1 "checkpatch $(basename "$p")" "$res"
	else
		tap 0 "checkpatch $(basename "$p")"
	fi
done

# 4. qtests: the device's own (each of its cases a TAP line here), patch
# 0002's regression test, and the generic ones that make sense for our
# device set (the others need devices we leave out), one line each.
meson_test qtest-x86_64/virtio-balloon-test "qtest virtio-balloon-test"
# QEMU's own migration tests, which we did not write, against the
# migration code our patches change (meson adds --full to a build with
# KVM: 49 cases, a few minutes; make peer-qemu compares them with a
# baseline build).
meson_test qtest-x86_64/migration-test "qtest migration-test"
for t in migration-tcg-dirty-test qos-test qom-test device-introspect-test \
	 machine-none-test qmp-cmd-test test-hmp; do
	meson_test "qtest-x86_64/$t"
done

# 5. with the real guest driver (skips unless the guest kernel is built)
tap_from flock "$LOCK" timeout "$(scaled 300)" "$here/guest-smoke.py"

echo "1..$n"
[ "$failed" = 0 ]

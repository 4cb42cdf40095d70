#!/usr/bin/env bash
# make qemu-check: the QEMU side's tests, as one TAP stream.
#  1. the filter core's unit tests (plain gcc + ASan/UBSan, no QEMU build)
#  2. the order mutation: the core with "clear log" and "read bits"
#     swapped must fail the deferred-write-protect test
#  3. the exported QEMU series, checkpatch.pl on each of its patches
#  4. the validator fuzzer (libFuzzer), FUZZ_SECONDS (default 30)
#  5. QEMU's qtests for our device set, through meson test
#  6. a smoke test with the project's guest kernel and its driver
#
# The core is compiled out of the assembled tree $FPB_CACHE/qemu (base +
# qemu/patches, made by `make qemu`): that is exactly the code we ship,
# and it needs the tree's standard-headers (patched by 0001) anyway.
# Nothing of the QEMU build is needed for 1-4.
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

cflags=(-O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare
	-I"$here/shim" -I"$tree/include" -I"$tree/migration")
core=$tree/migration/free-page-bitmap-core.c

# 1. unit tests
if gcc "${cflags[@]}" -fsanitize=address,undefined -fno-sanitize-recover=all \
	-o "$out/filter-test" "$here/filter-test.c" "$core" 2> "$out/build.log"; then
	tap_from "$out/filter-test"
else
	tap 1 "filter core unit tests build" "$(cat "$out/build.log")"
fi

# 2. the order mutation
rc=0
"$here/swap-order.py" "$core" "$out/core-swapped.c" &&
	gcc "${cflags[@]}" -o "$out/filter-test-swapped" "$here/filter-test.c" \
		"$out/core-swapped.c" 2>> "$out/build.log" || rc=$?
if [ $rc = 0 ]; then
	if res=$("$out/filter-test-swapped" order 2>&1); then
		tap 1 "order test catches a filter that reads the bits before clearing the dirty log" "$res"
	else
		tap 0 "order test catches a filter that reads the bits before clearing the dirty log (${res%%$'\n'*})"
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

# 4. fuzzer
rc=0
"$here/fuzz.sh" "${FUZZ_SECONDS:-30}" > "$out/fuzz.log" 2>&1 || rc=$?
tap $rc "validator fuzzer, ${FUZZ_SECONDS:-30} s (libFuzzer + ASan/UBSan, seed corpus tests/qemu/corpus)" \
	"$(tail -15 "$out/fuzz.log")"
grep -E '^Done [0-9]+ runs' "$out/fuzz.log" | sed 's/^/# fuzz: /' || true

# 5. qtests: the device's own (each of its cases a TAP line here), patch
# 0002's regression test, and the generic ones that make sense for our
# device set (the others need devices we leave out), one line each.
qtests=(virtio-balloon-test migration-tcg-dirty-test qos-test qom-test
	device-introspect-test machine-none-test qmp-cmd-test test-hmp)
if [ ! -x "$build/qemu-system-x86_64" ]; then
	tap 1 "qtests" "no $build/qemu-system-x86_64: run make qemu"
else
	for t in "${qtests[@]}"; do
		rc=0 before=$failed
		(cd "$build" && flock "$LOCK" meson test --no-rebuild -q -t "$(scaled 4)" \
			"qtest-x86_64/$t") > "$out/qtest-$t.log" 2>&1 || rc=$?
		log=$build/meson-logs/testlog.txt
		subs=$(grep -E '^(not )?ok [0-9]+ ' "$log" || true)
		if [ "$t" = virtio-balloon-test ]; then
			while IFS= read -r line; do
				case $line in
				"ok "*) tap 0 "qtest $t: ${line#ok [0-9]* }" ;;
				"not ok "*) tap 1 "qtest $t: ${line#not ok [0-9]* }" ;;
				esac
			done <<< "$subs"
			[ $rc = 0 ] || [ "$failed" != "$before" ] ||
				tap 1 "qtest $t (meson test exit $rc)" "$(tail -20 "$out/qtest-$t.log")"
		else
			tap $rc "qtest $t (meson test, $(grep -c '^ok ' <<< "$subs") cases)" \
				"$(grep -E '^not ok' <<< "$subs"; tail -5 "$out/qtest-$t.log")"
		fi
	done
fi

# 6. with the real guest driver (skips unless the guest kernel is built)
tap_from flock "$LOCK" timeout "$(scaled 300)" "$here/guest-smoke.py"

echo "1..$n"
[ "$failed" = 0 ]

#!/usr/bin/env bash
# What memory hotplug costs the bitmaps, against guest size: the
# selftest's two onlined memory blocks (a zone added, then grown
# downwards) next to the full build when tracking starts, as
# tools/testing/selftests/mm/free_page_bitmap.c prints them, in guests of
# each size.  Writes bench/results/hotplug-grow.md.
#   bench/hotplug-grow.sh [SIZES]   (default "1G 2G 4G")
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"

sizes=${1:-1G 2G 4G}
out=$FPB_REPO/bench/results/hotplug-grow.md
raw=$FPB_CACHE/logs/bench-hotplug
initrd=$FPB_CACHE/initramfs-selftest.cpio.gz
kernel=$KBUILD_DIR/guest/arch/x86/boot/bzImage
mkdir -p "$raw"
[ -f "$initrd" ] && [ -f "$kernel" ] || die "bench: run make selftest first (kernel and its initramfs)"

rows= notes=
for size in $sizes; do
	step "boot $size with a 256 MiB DIMM"
	QEMU=$KBUILD_DIR/qemu/qemu-system-x86_64 "$FPB_REPO/scripts/boot.sh" --kernel "$kernel" \
		--initrd "$initrd" --run selftests --timeout 900 --log "$raw/$size.log" \
		--balloon ,x-free-page-bitmap=on --mem "$size,slots=2,maxmem=64G" \
		--append memhp_default_state=offline -- -L /usr/share/seabios -L /usr/share/qemu \
		-object memory-backend-ram,id=dimm0,size=256M -device pc-dimm,id=dimm0,memdev=dimm0 \
		>/dev/null || true
	# Not a test: a failure elsewhere in the selftest is recorded, not fatal.
	failed=$(sed -n 's/^not ok [0-9]* \(.*\)/\1/p' "$raw/$size.log" | paste -sd ';' -)
	[ -z "$failed" ] || notes+="- $size: the selftest also failed: $failed"$'\n'
	steps=$(sed -n 's/^# memory hotplug: step \([0-9]\) took \([0-9]*\) us, a full build \([0-9]*\) us$/\1 \2 \3/p' "$raw/$size.log")
	[ "$(echo "$steps" | wc -l)" = 2 ] || die "bench: $size: no step timings in $raw/$size.log"
	# shellcheck disable=SC2086 # the three numbers of each step
	set -- $steps
	rows+="| $size | $3 | $2 | $5 |"$'\n'
done

{
	echo "# Memory hotplug: growing the bitmaps against a full build"
	echo
	echo "Command: \`bench/hotplug-grow.sh \"$sizes\"\` ($(date -u +%Y-%m-%d), our QEMU TCG, -smp 2, a cold-plugged 256 MiB DIMM, tracking always on, granule order 0)."
	echo "From the selftest's hotplug case: the full build when tracking starts, and the two 128 MiB blocks of the DIMM onlined into ZONE_MOVABLE from the top down (the first adds the zone, which is walked: its span is the new block; the second grows it downwards, its bits copied and moved); each includes the allocations, the walk or copy and publishing the layout to the balloon driver. One boot per size, single readings: TCG timing is noisy."
	echo
	echo "| guest RAM | full build, us | first block (new zone), us | second block (grown zone), us |"
	echo "|---|---|---|---|"
	printf '%s' "$rows"
	[ -z "$notes" ] || printf '\n%s' "$notes"
} > "$out"
cat "$out"

#!/usr/bin/env bash
# make bench-qemu: cost of the free page bitmap filter per sync per GiB
# of guest RAM, with the filter core from the assembled QEMU tree, for
# simulated guests of 1 GiB to 1 TiB.  Writes bench/results/qemu-filter.md.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

tree=$FPB_CACHE/qemu
here=$FPB_REPO/tests/qemu
out=$FPB_CACHE/build/qemu-tests
result=$FPB_REPO/bench/results/qemu-filter.md
core=$tree/migration/free-page-bitmap-core.c
[ -f "$core" ] || die "$tree has no filter core: run make qemu first"
mkdir -p "$out" "$(dirname "$result")"

qemu_core_flags
gcc -O2 -g -Wall "${QEMU_CORE_INCLUDES[@]}" \
	-o "$out/bench" "$here/bench.c" "$core" "${GLIB_FLAGS[@]}" || die "cannot build the benchmark"
step "bench (under the CPU lock)"
table=$(flock /var/lock/fpb-cpu.lock "$out/bench")
echo "$table"
{
	echo "# Free page bitmap: host filter cost per sync"
	echo
	echo "Command: \`make bench-qemu\` (tests/qemu/bench.sh: tests/qemu/bench.c built"
	echo "with gcc -O2 against migration/free-page-bitmap-core.c of the assembled"
	echo "QEMU tree), $(date -u +%Y-%m-%d), $(nproc) CPUs: $(sed -n '/^model name/{s/^model name\s*: //p;q}' /proc/cpuinfo)."
	echo
	echo "Simulated guest: one RAMBlock split around the PCI hole (2 GiB below"
	echo "4 GiB, the rest above), two zones (DMA32 over [0, 4 GiB), Normal above),"
	echo "4 KiB pages, granule of one page, half the pages free, every page dirty"
	echo "(the worst case), filtered in 1 GiB chunks as QEMU's clear_bmap does."
	echo "Only the guest's layout and bitmap exist in memory; the filter never"
	echo "touches data pages.  Target: at most 0.1 ms per GiB per sync."
	echo
	echo "$table"
	echo
	echo "Not included: in QEMU each chunk also takes a mutex, walks the flat"
	echo "view once to map the chunk to guest-physical addresses, and"
	echo "translates each 4 KiB bitmap page it reads (8 per GiB)."
} > "$result"
echo "wrote $result"

#!/usr/bin/env bash
# Allocator cost of the free page bitmap: buddy alloc+free of orders 0, 3
# and 9 on one and two CPUs, in an unpatched kernel and in ours with
# tracking off and on, as ratios to the unpatched kernel; plus the build
# (rebuild) time and bitmap memory per GiB.  Boots both kernels under
# QEMU/TCG (-smp 2, 2 GiB); writes bench/results/alloc-free.md.
#   bench/alloc.sh [REPEATS]
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"

repeats=${1:-5}
out=$FPB_REPO/bench/results/alloc-free.md
raw=$FPB_CACHE/logs/bench-alloc
mkdir -p "$raw"

. "$FPB_REPO/bench/alloc-kernels.sh"
[ "${FPB_BENCH_KERNEL:-tiny}" = tiny ] ||
	die "bench/alloc.sh times against the unpatched kernel: the tiny one only (alloc-insn.sh counts on both)"
build_bench_kernels

for name in base guest; do
	step "boot $name: $repeats repeats"
	"$FPB_REPO/scripts/boot.sh" --kernel "$KBUILD_DIR/$name/arch/x86/boot/bzImage" \
		--initrd "$KBUILD_DIR/bench-$name.cpio.gz" --run bench-alloc --mem 2G \
		--timeout 3000 --append "fpb.repeats=$repeats" --log "$raw/$name.log" >/dev/null ||
		die "bench: the $name guest did not finish (log: $raw/$name.log)"
	grep '^BENCH' "$raw/$name.log"
done

cat "$raw"/*.log | grep -h '^BENCH' | python3 -c '
import sys, statistics, re, datetime
runs, builds = {}, []
for line in sys.stdin:
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    if line.startswith("BENCH-BUILD"):
        builds.append(kv); continue
    if kv.get("ns"):
        runs.setdefault((kv["order"], kv["threads"], kv["mode"]), []).append(int(kv["ns"]))
def med(k):
    v = runs.get(k)
    return statistics.median(v) if v else None
def rng(k):
    v = runs[k]; return "%d-%d" % (min(v), max(v))
print("| order | CPUs | unpatched ns/op | off ns/op | on ns/op | off / unpatched | on / unpatched | on / off |")
print("|---|---|---|---|---|---|---|---|")
for order in ("0", "3", "9"):
    for thr in ("1", "2"):
        u, f, o = (med((order, thr, m)) for m in ("unpatched", "off", "on"))
        if None in (u, f, o):
            continue
        print("| %s | %s | %d [%s] | %d [%s] | %d [%s] | %.3f | %.3f | %.3f |" % (
            order, thr, u, rng((order, thr, "unpatched")), f, rng((order, thr, "off")),
            o, rng((order, thr, "on")), f / u, o / u, o / f))
if builds:
    us = statistics.median(int(b["us"]) for b in builds)
    gib = int(builds[0]["memtotal_kb"]) / 1048576
    kib = int(builds[0]["bytes"]) / 1024
    print()
    chunks = gib * 1024 / 4  # MAX_ORDER_NR_PAGES chunks of 4 MiB on x86-64
    print("Build from the free lists (granule 0): median %d us for %.2f GiB of RAM, %.0f us per GiB, %.1f us on average per 4 MiB chunk, each walked under one zone->lock hold (lock and resched included); bitmap memory %.0f KiB, %.1f KiB per GiB." % (us, gib, us / gib, us / chunks, kib, kib / gib))
' > "$raw/table.md"

{
	echo "# Allocator cost of the free page bitmap"
	echo
	echo "Command: \`bench/alloc.sh $repeats\` ($(date -u +%Y-%m-%d), QEMU $(qemu-system-x86_64 --version | head -1 | awk '{print $4}') TCG, -smp 2, 2 GiB, host: $(nproc) CPUs)."
	echo "Each cell: median [min-max] of $repeats runs of alloc+free of 32 MiB per CPU in blocks of the order, modes interleaved in one boot; unpatched is Debian's 6.12.117 with the same config. TCG times are emulated and noisy: compare ratios, and trust on / off (one boot) more than either / unpatched (another kernel, another boot)."
	echo
	cat "$raw/table.md"
} > "$out"
cat "$out"

#!/usr/bin/env bash
# Instructions per buddy alloc+free, exact: orders 0, 3 and 9 in the
# unpatched kernel and in ours with tracking off and on (granule orders 0
# 3 and 9).  QEMU's own instruction-count plugin (tests/tcg/plugins/insn.c
# of our QEMU tree, built for Debian's QEMU of the same version) reports
# the instructions a vCPU executed between the benchmark module's
# markers; the module runs R and then 2R rounds with interrupts off, so
# the difference is R rounds' instructions alone, whatever boot and timer
# noise surrounds them.  Every hook runs under zone->lock, so what
# tracking adds is added under zone->lock.  Writes
# bench/results/alloc-insn.md, or with FPB_BENCH_KERNEL=distro (Debian's
# configuration: bench/kernels.sh, ours only) alloc-insn-distro.md.
#   bench/alloc-insn.sh [REPEATS [ROUNDS]]
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"

repeats=${1:-5} rounds=${2:-4}
. "$FPB_REPO/bench/alloc-kernels.sh"
out=$FPB_REPO/bench/results/alloc-insn$bench_suffix.md
raw=$FPB_CACHE/logs/bench-insn$bench_suffix
mkdir -p "$raw"
rm -f "$raw"/*.log
. "$FPB_REPO/bench/insn-plugin.sh"
build_insn_plugin
build_bench_kernels

names=()
for kind in "${bench_compared[@]}"; do names+=("${bench_names[$kind]}"); done
for name in "${names[@]}"; do
	step "boot $name with the insn plugin"
	rm -f "$raw/$name.plugin.log"
	"$FPB_REPO/scripts/boot.sh" --kernel "$KBUILD_DIR/$name/arch/x86/boot/bzImage" \
		--initrd "$KBUILD_DIR/bench-$name.cpio.gz" --run bench-alloc-insn --mem 2G \
		--timeout 1800 --append "fpb.repeats=$repeats fpb.rounds=$rounds" --log "$raw/$name.log" \
		-- -plugin "$plugin,inline=on,match=wbinvd,trace=on" -d plugin \
		-D "$raw/$name.plugin.log" >/dev/null ||
		die "bench: the $name guest did not finish (log: $raw/$name.log)"
	grep '^INSN' "$raw/$name.log"
done

/usr/bin/python3 - "$raw" "${names[@]}" > "$raw/table.md" <<'PY'
import re, statistics, sys
raw, names = sys.argv[1], sys.argv[2:]
hit = re.compile(r"^0x([0-9a-f]+), 'wbinvd *', \d+ hits , cpu (\d+), \d+ match hits, \u0394\+(\d+) since last match")
cost = {}
for name in names:
    runs = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in open(f"{raw}/{name}.log") if l.startswith("INSN")]
    # The module's markers run on vCPU 0, whose lines the log keeps in
    # order; they are its last three per run: nothing runs wbinvd after boot.
    hits = [(int(m[1], 16), int(m[2]), int(m[3])) for m in map(hit.match, open(f"{raw}/{name}.plugin.log"))
            if m and m[2] == "0"]
    hits = hits[max(0, len(hits) - 3 * len(runs)):]
    if not runs or len(hits) != 3 * len(runs):
        sys.exit(f"bench: {name}: {len(runs)} runs but {len(hits)} marker hits")
    for i, run in enumerate(runs):
        (a1, c1, _), (a2, c2, d1), (a3, c3, d2) = hits[3 * i:3 * i + 3]
        ops, ops2 = int(run["ops"]), int(run["ops2"])
        if not (a1 < a2 < a3 and c1 == c2 == c3 and ops2 == 2 * ops and ops):
            sys.exit(f"bench: {name}: run {run} has markers {hits[3 * i:3 * i + 3]}")
        mode = run["mode"] + ("" if run["granule"] == "-" else " g" + run["granule"])
        cost.setdefault((run["order"], run["blocks"], run.get("pcp", "auto"), mode), []).append((d2 - d1) / ops)
# no unpatched kernel in the run (FPB_BENCH_KERNEL=distro): its columns are "-"
on = ("on g0", "on g3", "on g9")
modes = (("unpatched", "off") if "unpatched" in {k[3] for k in cost} else ("off",)) + on
print("| order | MiB per round | unpatched | off | on, granule 0 | on, granule 3 | on, granule 9 "
      "| off - unpatched | on g0 - off | on g3 - off | on g9 - off |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for order, blocks, pcp in sorted({k[:3] for k in cost}, key=lambda k: (int(k[0]), int(k[1]), k[2])):
    if any((order, blocks, pcp, m) not in cost for m in modes):
        sys.exit(f"bench: order {order}, {blocks} blocks, pcp {pcp}: a mode is missing")
    v = {m: cost[(order, blocks, pcp, m)] for m in modes}
    med = {m: statistics.median(v[m]) for m in v}
    cell = lambda m: "%.1f [%.1f-%.1f]" % (statistics.median(v[m]), min(v[m]), max(v[m])) if m in v else "-"
    off_minus_unpatched = f"{med['off'] - med['unpatched']:+.1f}" if "unpatched" in med else "-"
    mib = (int(blocks) << int(order)) * 4096 >> 20
    mib = f"{mib}, per-cpu lists at their floor" if pcp == "floor" else mib
    print(f"| {order} | {mib} | {cell('unpatched')} | {cell('off')} | "
          + " | ".join(cell(m) for m in on) + f" | {off_minus_unpatched} | "
          + " | ".join(f"{med[m] - med['off']:+.1f}" for m in on) + " |")
PY

qemu_version=$(qemu-system-x86_64 --version)
cmd="bench/alloc-insn.sh $repeats $rounds"
[ -z "$bench_suffix" ] || cmd="FPB_BENCH_KERNEL=${FPB_BENCH_KERNEL} $cmd"
if [ "${bench_compared[0]}" = base ]; then
	unpatched="Unpatched is Debian's 6.12.$LINUX_SUBLEVEL with the same config"
else
	unpatched="No unpatched kernel in this run (bench/kernels.sh; bench/results/hook-disasm$bench_suffix.md compares mm/page_alloc.o with ours with the feature off)"
fi
{
	echo "# Instructions per buddy alloc+free"
	echo
	echo "Command: \`$cmd\` ($(date -u +%Y-%m-%d), ${qemu_version%%$'\n'*} TCG with QEMU's insn plugin, -smp 2, 2 GiB; kernel: $bench_what)."
	echo "Each cell: median [min-max] of $repeats runs, modes interleaved in one boot per kernel, of the guest instructions per alloc_pages() + __free_pages() pair of the order, on one vCPU with interrupts off, 32 MiB of blocks per round, and 256 MiB at order 0 (more than the per-cpu lists hold by default; they still absorb part of it, as their high mark grows up to an eighth of the zone), again with the lists' high mark at its floor of 4 batches (vm.percpu_pagelist_high_fraction=1000000), where nearly every page passes the buddy lists both ways: the instructions of 2 x $rounds rounds minus those of $rounds rounds, divided by the blocks of $rounds rounds. Deterministic: no timing is involved. $unpatched; every hook runs under zone->lock, so the on - off column is all under zone->lock."
	echo
	cat "$raw/table.md"
} > "$out"
cat "$out"

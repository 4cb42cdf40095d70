#!/usr/bin/env bash
# The allocator benchmark reviewers of page allocator changes run:
# will-it-scale's page_fault1 (anonymous) and page_fault2 (private file
# mapping), one task and one per vCPU, in a 4-vCPU guest of our kernel on
# our QEMU, with tracking off, tracking on, and free page reporting, all
# interleaved in one boot (tests/guest/bench-page-fault.sh).  Also the
# pages per-cpu lists hold at the end of each window, which tracking
# cannot see; and, in a second boot, the guest instructions per fault,
# counted by QEMU's insn plugin, which timing under TCG cannot resolve.
# Writes bench/results/page-fault.md, or with FPB_BENCH_KERNEL=distro
# (Debian's configuration: bench/kernels.sh) page-fault-distro.md.
#   bench/page-fault.sh [REPEATS [SECONDS [CYCLES]]]
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"
. "$FPB_REPO/bench/kernels.sh"

repeats=${1:-5} seconds=${2:-4} cycles=${3:-2}
out=$FPB_REPO/bench/results/page-fault$bench_suffix.md
raw=$FPB_CACHE/logs/bench-page-fault$bench_suffix
bin=$KBUILD_DIR/bench-pf
kernel=$KBUILD_DIR/${bench_names[on]}/arch/x86/boot/bzImage
qemu=$KBUILD_DIR/qemu/qemu-system-x86_64
mkdir -p "$raw" "$bin"
bench_kernel on bzImage
[ -x "$qemu" ] || die "bench: no QEMU at $qemu (make qemu)"

step "build page_fault (static)"
gcc -O2 -static -Wall -Wextra -Werror -o "$bin/page_fault" "$FPB_REPO/bench/page_fault/page_fault.c" ||
	die "bench: building page_fault failed"
"$FPB_REPO/scripts/initramfs.sh" "$KBUILD_DIR/bench-pf.cpio.gz" "bench=$bin"

. "$FPB_REPO/bench/insn-plugin.sh"
build_insn_plugin

boot_pf() { # QEMU LOG APPEND [QEMU ARGS]: the 4-vCPU guest with the balloon
	local qemu=$1 log=$2 append=$3; shift 3
	QEMU=$qemu "$FPB_REPO/scripts/boot.sh" --kernel "$kernel" --initrd "$KBUILD_DIR/bench-pf.cpio.gz" \
		--run bench-page-fault --smp 4 --mem 2G --balloon ",free-page-reporting=on" \
		--timeout 3600 --append "fpb.repeats=$repeats $append" \
		-- -L /usr/share/seabios -L /usr/share/qemu "$@" > "$log" ||
		die "bench: the guest did not finish (log: $log)"
	if grep -q '^PF-ERROR' "$log"; then
		die "bench: $(grep -m1 '^PF-ERROR' "$log")"
	fi
}

step "boot: 4 vCPUs, 2 GiB, $repeats repeats of ${seconds}s windows"
boot_pf "$qemu" "$raw/guest.log" "fpb.seconds=$seconds"
grep '^PF ' "$raw/guest.log"
step "boot with the insn plugin: $repeats repeats of 3 x $cycles cycles"
rm -f "$raw/count.plugin.log"
# Debian's QEMU, the same version: ours is built without plugin support,
# and the balloon's free page reporting is upstream's.
boot_pf qemu-system-x86_64 "$raw/count.log" "fpb.pf=count fpb.cycles=$cycles" \
	-plugin "$plugin,inline=on,match=cpuid,trace=on" -d plugin -D "$raw/count.plugin.log"
grep '^PFI ' "$raw/count.log"

grep -h '^PF ' "$raw/guest.log" | python3 -c '
import re, statistics, sys
runs = {}
for line in sys.stdin:
    kv = dict(re.findall(r"(\w+)=(\S+)", line))
    runs[(kv["test"], kv["tasks"], kv["mode"], kv["rep"])] = kv
keys = sorted({(t, n) for t, n, _, _ in runs}, key=lambda k: (k[0], int(k[1])))
reps = sorted({r for _, _, _, r in runs}, key=int)
def rate(t, n, m, r): return float(runs[(t, n, m, r)]["per_sec"])
def ratio(t, n, m):
    v = [rate(t, n, m, r) / rate(t, n, "off", r) for r in reps]
    return "%.3f [%.3f-%.3f]" % (statistics.median(v), min(v), max(v))
def med(t, n, m, f=rate): return statistics.median(f(t, n, m, r) for r in reps)
print("| test | tasks | off faults/s | on faults/s | reporting faults/s | on / off | reporting / off |")
print("|---|---|---|---|---|---|---|")
for t, n in keys:
    print("| %s | %s | %.0f | %.0f | %.0f | %s | %s |" % (t, n, med(t, n, "off"), med(t, n, "on"),
          med(t, n, "reporting"), ratio(t, n, "on"), ratio(t, n, "reporting")))
print()
print("Free memory on per-cpu lists at the end of each window (invisible to the bitmap), median MiB, all CPUs / the fullest CPU:")
print()
print("| test | tasks | off | on | reporting |")
print("|---|---|---|---|---|")
def pcp(key):
    return lambda t, n, m, r: int(runs[(t, n, m, r)][key]) * 4 / 1024
for t, n in keys:
    print("| %s | %s | %s |" % (t, n, " | ".join("%.1f / %.1f" % (med(t, n, m, pcp("pcp_pages")),
          med(t, n, m, pcp("pcp_max_cpu"))) for m in ("off", "on", "reporting"))))
' > "$raw/table.md"

# The markers: the CPUIDs of page_fault's main() (count_mode() is inlined
# there); glibc and busybox run CPUID too, as every process starts.
markers=$(objdump -d --no-show-raw-insn "$bin/page_fault" |
	awk '/<(main|count_mode|marker)>:/,/^$/' | awk '/cpuid/ { sub(":", "", $1); print $1 }')
/usr/bin/python3 - "$raw" $markers > "$raw/count.md" <<'PY'
import re, statistics, sys
raw, markers = sys.argv[1], {int(a, 16) for a in sys.argv[2:]}
hit = re.compile(r"^0x([0-9a-f]+), 'cpuid *', \d+ hits , cpu (\d+), \d+ match hits, \u0394\+(\d+) since last match")
runs = [dict(re.findall(r"(\w+)=(\S+)", l)) for l in open(f"{raw}/count.log") if l.startswith("PFI ")]
# The task is pinned to vCPU 1, whose lines the log keeps in order.  A
# run is its three markers in a row, in program order; a count since the
# last match is only right if no other vCPU ran CPUID in between, so the
# second interval must be about twice the first.
seq = [(int(m[1], 16), int(m[3])) for m in map(hit.match, open(f"{raw}/count.plugin.log")) if m and m[2] == "1"]
order = sorted(markers)
if len(order) != 3:
    sys.exit(f"bench: page_fault has {len(order)} CPUID markers, not 3")
triples = [seq[i:i + 3] for i in range(len(seq) - 2) if [h[0] for h in seq[i:i + 3]] == order]
if not runs or len(triples) != len(runs):
    sys.exit(f"bench: {len(runs)} counted runs but {len(triples)} marker triples on vCPU 1")
per = {}
for run, (_, (_, d1), (_, d2)) in zip(runs, triples):
    if not 1.8 < d2 / d1 < 2.2:
        sys.exit(f"bench: run {run}: intervals {d1} and {d2} are not 1:2 (another CPUID between?)")
    # The faults of CYCLES cycles, of the 1 + 3 x CYCLES run:
    faults = int(run["faults"]) // (1 + 3 * int(run["cycles"])) * int(run["cycles"])
    per[(run["test"], run["mode"], run["rep"])] = (d2 - d1) / faults
tests = sorted({t for t, _, _ in per})
reps = sorted({r for _, _, r in per}, key=int)
def cell(t, m):
    v = [per[(t, m, r)] for r in reps]
    return "%.1f [%.1f-%.1f]" % (statistics.median(v), min(v), max(v))
def ratio(t, m):
    v = [per[(t, "off", r)] / per[(t, m, r)] for r in reps]
    return "%.4f [%.4f-%.4f]" % (statistics.median(v), min(v), max(v))
print("| test | off insns/fault | on insns/fault | reporting insns/fault | on, as throughput / off | reporting, as throughput / off |")
print("|---|---|---|---|---|---|")
for t in tests:
    print(f"| {t} | {cell(t, 'off')} | {cell(t, 'on')} | {cell(t, 'reporting')} | {ratio(t, 'on')} | {ratio(t, 'reporting')} |")
PY

{
	echo "# page_fault1 and page_fault2: tracking on and free page reporting against off"
	echo
	echo "Command: \`${bench_suffix:+FPB_BENCH_KERNEL=$FPB_BENCH_KERNEL }bench/page-fault.sh $repeats $seconds\` ($(date -u +%Y-%m-%d), $("$qemu" --version | head -1) TCG, -smp 4, 2 GiB, host: $(nproc) CPUs; kernel: $bench_what)."
	echo "Each run: N tasks each mmap, write one byte per page of, and munmap 128 MiB in a loop (will-it-scale's page_fault1: anonymous; page_fault2: a private mapping of a tmpfs file); faults per second of all tasks over a ${seconds} s window after 1 s of warm-up; THP off, so that every fault allocates one page. The three modes run interleaved in one boot, their order rotated each repeat; ratios are per repeat (against off of the same repeat), median [min-max] of $repeats. Reporting: the guest's virtio_balloon driver bound to a device with free-page-reporting=on, tracking off; in off and on the driver is unbound. TCG timing is emulated and noisy on a 2-CPU host running 4 vCPUs: a ratio is only resolved to its spread."
	echo
	cat "$raw/table.md"
	echo
	echo "## Guest instructions per fault"
	echo
	echo "The same loop, one task pinned to vCPU 1, in a second boot under QEMU's insn plugin: the instructions vCPU 1 executed over $cycles cycles ($((cycles * 32768)) faults), taken as those of 2 x $cycles cycles minus those of $cycles cycles between CPUID markers, so start-up cancels; median [min-max] of $repeats, modes interleaved as above. Everything vCPU 1 runs counts (the task, its faults and unmaps, interrupts, and reporting's worker if it runs there); the host's work, such as refaulting pages that reporting discarded, does not. The ratios are off / mode: what the instructions alone would make of throughput."
	echo
	cat "$raw/count.md"
} > "$out"
cat "$out"

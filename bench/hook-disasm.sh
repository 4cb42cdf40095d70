#!/usr/bin/env bash
# Show that the page_alloc hooks cost nothing when off: compare the machine
# code of mm/page_alloc.o in the unpatched kernel, in ours with
# CONFIG_FREE_PAGE_BITMAP=n (must be identical) and in ours with it =y
# (identical but for a jump-label nop per hook site and fence, and the
# out-of-line code they jump to: the inlined bit stores).  Writes
# bench/results/hook-disasm.md, or with FPB_BENCH_KERNEL=distro (Debian's
# configuration: bench/kernels.sh) hook-disasm-distro.md.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"
. "$FPB_REPO/bench/kernels.sh"

out=$FPB_REPO/bench/results/hook-disasm$bench_suffix.md
base=${bench_names[base]} off=${bench_names[off]} on=${bench_names[on]}
for kind in base off on; do bench_kernel $kind mm/page_alloc.o >/dev/null; done

# .text only, without addresses, so that code moved by a few bytes still
# compares equal; one line per instruction, prefixed by its function.
text() {
	objdump -d --no-show-raw-insn -j .text "$KBUILD_DIR/$1/mm/page_alloc.o" |
		awk '/^[0-9a-f]+ <.*>:$/ { fn = $2; next }
		     /^ *[0-9a-f]+:/ { sub(/^ *[0-9a-f]+:\t/, ""); gsub(/[0-9a-f]+ <[^>]*>/, "<addr>"); print fn " " $0 }'
}
base_text=$(text "$base") off_text=$(text "$off")
# The same with registers and stack slots masked: tells a different
# register allocation (gcc's choices can shift with the IR of the empty
# stubs) from added or removed code.
regs() { sed -E 's/-?0x[0-9a-f]+\(%rsp\)/slot/g; s/%[a-z][a-z0-9]*/%reg/g'; }
differ=$({ diff <(echo "$base_text") <(echo "$off_text") || true; } | grep '^[<>]' || true)
if [ -z "$differ" ]; then
	off_result="identical: $(wc -l <<< "$base_text") instructions"
elif [ "$(regs <<< "$base_text")" = "$(regs <<< "$off_text")" ]; then
	off_result="the same $(wc -l <<< "$base_text") instructions but for register allocation: with registers and stack slots masked identical; unmasked, $(wc -l <<< "$differ") lines differ, in $(awk '{ print $2 }' <<< "$differ" | sort -u | tr -d '<>:' | paste -sd, -) (which register or spill slot holds a value; no instruction added or removed)"
else
	off_result="DIFFERENT: $(wc -l <<< "$differ") lines differ, registers masked or not"
fi
# jump_sites KEY: the jump-label sites on KEY in page_alloc.o
jump_sites() {
	objdump -r "$KBUILD_DIR/$on/mm/page_alloc.o" |
		awk -v key="$1" '/^RELOCATION RECORDS FOR/ { sec = $4 }
			sec == "[__jump_table]:" && index($0, key) { n++ } END { print n + 0 }'
}
sites=$(jump_sites free_page_bitmap_enabled)
fences=$(jump_sites free_page_bitmap_fences)
fn_sizes() {
	nm -S -t d "$KBUILD_DIR/$1/mm/page_alloc.o" | awk '$3 ~ /^[tT]$/ { print $4, $2 + 0 }' | sort
}
sizes=$(join <(fn_sizes "$base") <(fn_sizes "$on") | awk '$2 != $3 { printf "| %s | %d | %d | %+d |\n", $1, $2, $3, $3 - $2 }')
# A hook site as it runs: in vmlinux, objtool has turned the jump-label
# jmp into a 2-byte nop (66 90) while the key is off.
bench_kernel on vmlinux >/dev/null
site=$(objdump -d --disassemble=__free_one_page "$KBUILD_DIR/$on/vmlinux" |
	grep -B8 -A3 -m1 $'\tbts ' || true)

{
	echo "# Hook cost when off: mm/page_alloc.o machine code"
	echo
	echo "Command: \`${bench_suffix:+FPB_BENCH_KERNEL=$FPB_BENCH_KERNEL }bench/hook-disasm.sh\` ($(date -u +%Y-%m-%d), gcc $(gcc -dumpfullversion), $bench_what)."
	echo
	echo "- unpatched vs ours with CONFIG_FREE_PAGE_BITMAP=n (.text, addresses masked): **$off_result**."
	echo "- ours with CONFIG_FREE_PAGE_BITMAP=y: $sites jump-label sites on free_page_bitmap_enabled, one per hook call once inlined, and $fences on free_page_bitmap_fences, one per zone->lock section that may clear bits; with tracking off each is a nop that falls through to the unchanged code, and the inlined hook (the granule key, the bit store) sits in the out-of-line branch target. gcc's inlining choices move a few bytes between functions:"
	echo
	echo "| function | unpatched | =y | delta |"
	echo "|---|---|---|---|"
	echo "${sizes:-| (none) | | | |}"
	echo
	echo "The free hook's bit store in __free_one_page() in vmlinux (=y), in the code that the jump-label site, a nop while tracking is off, jumps to:"
	echo
	echo '```'
	echo "$site"
	echo '```'
} > "$out"
cat "$out"

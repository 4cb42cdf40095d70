#!/bin/sh
# Run the allocator microbenchmark (/bench/fpb_alloc_bench.ko) in every
# mode this kernel has, interleaved, and print one BENCH line per run for
# bench/alloc.sh to collect.  Not a test: it only measures.
fpb=/sys/kernel/mm/free_page_bitmap
repeats=$(sed -n 's/.*fpb\.repeats=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -d $fpb ]; then modes="off on"; else modes=unpatched; fi
echo 1 > /proc/sys/kernel/printk 2>/dev/null

set_mode() {
	case $1 in
	off) echo never > $fpb/enabled ;;
	on) echo always > $fpb/enabled &&
	    echo "BENCH-BUILD us=$(cat $fpb/last_rebuild_us) bytes=$(cat $fpb/bitmap_bytes)" \
		 "memtotal_kb=$(sed -n 's/^MemTotal: *\([0-9]*\).*/\1/p' /proc/meminfo)" ;;
	esac
}

for rep in $(seq "${repeats:-3}"); do
	for order in 0 3 9; do
		blocks=$((8192 >> order)); [ $blocks -ge 16 ] || blocks=16
		for threads in 1 2; do
			for mode in $modes; do
				set_mode $mode
				dmesg -c >/dev/null
				insmod /bench/fpb_alloc_bench.ko order=$order \
					threads=$threads blocks=$blocks 2>/dev/null
				ns=$(dmesg | sed -n 's/.*alloc_bench: .* ns_per_op=\([0-9]*\).*/\1/p' | tail -1)
				echo "BENCH mode=$mode order=$order threads=$threads ns=$ns"
			done
		done
	done
done

#!/bin/sh
# Count the instructions of buddy alloc+free (/bench/fpb_alloc_bench.ko
# count=1) in every mode this kernel has, for bench/alloc-insn.sh: one
# INSN line per run, in the order of the runs, which is the order of the
# plugin's marker triples.  Not a test: it only measures.
fpb=/sys/kernel/mm/free_page_bitmap
rounds=$(sed -n 's/.*fpb\.rounds=\([0-9]*\).*/\1/p' /proc/cmdline)
repeats=$(sed -n 's/.*fpb\.repeats=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -d $fpb ]; then modes="off on:0 on:3 on:9"; else modes=unpatched; fi
echo 1 > /proc/sys/kernel/printk 2>/dev/null

for _ in $(seq "${repeats:-3}"); do
	# ORDER:BLOCKS[:floor], 32 MiB per round; and order 0 with 256 MiB,
	# more than the per-cpu lists hold by default.  They still absorb
	# part of it (their high mark grows up to an eighth of the zone), so
	# "floor" runs it again with the lists' high mark at its floor (4
	# batches), where nearly every page goes through the buddy lists.
	for run in 0:8192 0:65536 0:65536:floor 3:1024 9:16; do
		order=${run%%:*} blocks=${run#*:} pcp=auto
		case $blocks in *:floor) blocks=${blocks%:*} pcp=floor ;; esac
		if [ $pcp = floor ]; then
			echo 1000000 > /proc/sys/vm/percpu_pagelist_high_fraction
		else
			echo 0 > /proc/sys/vm/percpu_pagelist_high_fraction
		fi
		for mode in $modes; do
			case $mode in on:*) granule=${mode#on:} ;; *) granule=- ;; esac
			case $mode in
			off) echo never > $fpb/enabled ;;
			on:*) echo never > $fpb/enabled && echo "$granule" > $fpb/granule_order &&
			      echo always > $fpb/enabled ;;
			esac
			dmesg -c >/dev/null
			insmod /bench/fpb_alloc_bench.ko count=1 order="$order" blocks="$blocks" \
				rounds="${rounds:-2}" && rmmod fpb_alloc_bench
			ops=$(dmesg | sed -n 's/.*alloc_bench: count .* ops=\([0-9]*\) ops2=\([0-9]*\).*/\1 \2/p' | tail -1)
			echo "INSN mode=${mode%%:*} granule=$granule order=$order blocks=$blocks pcp=$pcp ops=${ops% *} ops2=${ops#* }"
		done
	done
done

#!/bin/sh
# page_fault1 and page_fault2 (/bench/page_fault) with 1 and all vCPUs'
# worth of tasks, in three modes interleaved in this one boot: tracking
# off, tracking on, and free page reporting (the balloon driver bound to a
# device that offers it, tracking off).  The driver is unbound in the
# other two modes, so that reporting costs them nothing.  One PF line per
# run for bench/page-fault.sh; with fpb.pf=count, one PFI line per run of
# the instruction-counting mode instead (one task on CPU 1, for QEMU's
# insn plugin).  Not a test: it only measures.
fpb=/sys/kernel/mm/free_page_bitmap
drv=/sys/bus/virtio/drivers/virtio_balloon
repeats=$(sed -n 's/.*fpb\.repeats=\([0-9]*\).*/\1/p' /proc/cmdline)
seconds=$(sed -n 's/.*fpb\.seconds=\([0-9.]*\).*/\1/p' /proc/cmdline)
kind=$(sed -n 's/.*fpb\.pf=\([a-z]*\).*/\1/p' /proc/cmdline)
cycles=$(sed -n 's/.*fpb\.cycles=\([0-9]*\).*/\1/p' /proc/cmdline)
cpus=$(grep -c ^processor /proc/cpuinfo)
echo 1 > /proc/sys/kernel/printk 2>/dev/null
# Every fault an order-0 allocation, as in the runs reviewers of page
# allocator changes publish: with THP, page_fault1 would fault 2 MiB at a
# time.
echo never > /sys/kernel/mm/transparent_hugepage/enabled ||
	{ echo "PF-ERROR cannot turn THP off"; exit 1; }

dev=
for d in "$drv"/virtio*; do [ -e "$d" ] && dev=${d##*/}; done
[ -n "$dev" ] || { echo "PF-ERROR no device bound to virtio_balloon"; exit 1; }
# VIRTIO_BALLOON_F_REPORTING is feature bit 5: the 6th character.
case $(cut -c6 "/sys/bus/virtio/devices/$dev/features") in
1) ;; *) echo "PF-ERROR $dev does not negotiate free page reporting"; exit 1 ;;
esac

set_mode() {
	case $1 in
	off|on) [ -e "$drv/$dev" ] && echo "$dev" > "$drv/unbind" ;;
	reporting) [ -e "$drv/$dev" ] || echo "$dev" > "$drv/bind" ;;
	esac
	case $1 in
	on) echo always > $fpb/enabled ;;
	*) echo never > $fpb/enabled ;;
	esac
}

# The mode after free page reporting finds its pages discarded by the
# host; rotating the order spreads that over the modes.
orders="off on reporting
on reporting off
reporting off on"
for rep in $(seq "${repeats:-5}"); do
	modes=$(echo "$orders" | sed -n "$(( (rep - 1) % 3 + 1 ))p")
	for test in 1 2; do
		flag=; [ $test = 2 ] && flag=-f
		if [ "$kind" = count ]; then
			for mode in $modes; do
				set_mode "$mode"
				r=$(/bench/page_fault $flag -c "${cycles:-2}" -p 1) ||
					{ echo "PF-ERROR page_fault -c failed"; exit 1; }
				echo "PFI rep=$rep test=page_fault$test mode=$mode $r"
			done
			continue
		fi
		for tasks in 1 "$cpus"; do
			for mode in $modes; do
				set_mode "$mode"
				r=$(/bench/page_fault $flag -n "$tasks" -s "${seconds:-4}") ||
					{ echo "PF-ERROR page_fault failed"; exit 1; }
				echo "PF rep=$rep test=page_fault$test tasks=$tasks mode=$mode" \
					"active=$(cat $fpb/active) $r"
			done
		done
	done
done

#!/bin/sh
# The kernel's own mm selftests with the free page bitmap tracking, one
# after the other as /peer/list says ("CATEGORY PROGRAM ARGS...", in the
# order and with the arguments of tools/testing/selftests/mm/
# run_vmtests.sh, which also shows the preparations done here).  After
# each: debugfs verify (every bitmap checked against the free lists),
# whether tracking is still active, and how many blocks compaction has
# captured so far.  For the host, one line per test:
#   peer-mm: PROGRAM ARGS | rc=N secs=N verify=N active=N captured=N
# (PROGRAM ARGS as the list has them), after the test's kselftest totals
# if it passed, its last lines as "# | " comments if not; tests/peer/mm.sh
# decides.  Kernel command line: fpb.peer=DIR for another directory than
# /peer, fpb.enable=MODE and fpb.granule=ORDER to set the mode and the
# granule first, fpb.only=a,b to run only those programs,
# fpb.limit=SECONDS per test.
fpb=/sys/kernel/mm/free_page_bitmap
dbg=/sys/kernel/debug/free_page_bitmap
arg() { sed -n "s/.*fpb\.$1=\([^ ]*\).*/\1/p" /proc/cmdline; }
dir=$(arg peer) enable=$(arg enable) granule=$(arg granule) only=$(arg only) limit=$(arg limit)

cd "${dir:-/peer}" || { echo "not ok 1 no ${dir:-/peer} directory in the initramfs"; exit 1; }
[ -z "$enable" ] || echo "$enable" > $fpb/enabled ||
	{ echo "not ok 1 cannot write $enable to enabled"; exit 1; }
[ -z "$granule" ] || echo "$granule" > $fpb/granule_order ||
	{ echo "not ok 1 cannot set granule_order $granule"; exit 1; }
echo "# peer-mm: enabled $(cat $fpb/enabled), active $(cat $fpb/active)," \
	"granule $(cat $fpb/granule_order), $(nproc) CPUs," \
	"$(ls -d /sys/devices/system/node/node* | wc -l) nodes," \
	"$(sed -n 's/^MemTotal: *//p' /proc/meminfo)"
mkdir -p /mnt/huge && mount -t hugetlbfs none /mnt/huge
hugepages=$(cat /proc/sys/vm/nr_hugepages)
shmmax=$(cat /proc/sys/kernel/shmmax 2>/dev/null) shmall=$(cat /proc/sys/kernel/shmall 2>/dev/null)
randomize=$(cat /proc/sys/kernel/randomize_va_space)
free_huge=$(sed -n 's/^HugePages_Free: *//p' /proc/meminfo)
huge_kb=$(sed -n 's/^Hugepagesize: *\([0-9]*\).*/\1/p' /proc/meminfo)

wanted() {
	[ -z "$only" ] && return 0
	case ",$only," in *",$1,"*) return 0 ;; esac
	return 1
}

# What run_vmtests.sh does before a test, and undoes after it.
prepare() {
	case $1 in hugetlb|thp)
		echo 3 > /proc/sys/vm/drop_caches
		echo 1 > /proc/sys/vm/compact_memory ;;
	esac
	case $2 in
	hugepage-shm)
		echo 268435456 > /proc/sys/kernel/shmmax
		echo 4194304 > /proc/sys/kernel/shmall ;;
	hugetlb_fault_after_madv|hugetlb_madv_vs_map)
		# these need one huge page, and only one
		echo 1 > /proc/sys/vm/nr_hugepages ;;
	mremap_test)
		# It checks that its destination is free, but not the 40 MiB
		# below it it maps too: built static, the program's heap
		# lies low, where a randomized brk may be in the way.
		echo 0 > /proc/sys/kernel/randomize_va_space ;;
	esac
}
restore() {
	echo "$hugepages" > /proc/sys/vm/nr_hugepages
	echo "$randomize" > /proc/sys/kernel/randomize_va_space
	[ -z "$shmmax" ] || echo "$shmmax" > /proc/sys/kernel/shmmax
	[ -z "$shmall" ] || echo "$shmall" > /proc/sys/kernel/shmall
}

while read -r category prog args; do
	case $category in ''|'#'*) continue ;; esac
	wanted "$prog" || continue
	# uffd-stress on hugetlb takes half the free huge pages for each side
	name="$prog${args:+ $args}"
	args=$(printf '%s\n' "$args" | sed "s/HALF_HUGE_MB/$((free_huge * huge_kb / 1024 / 2))/")
	prepare "$category" "$prog"
	echo "# peer-mm: running $name"
	start=$(date +%s)
	case $prog in *.sh) run="sh ./$prog" ;; *) run=./$prog ;; esac
	# shellcheck disable=SC2086
	UID=0 timeout -s KILL "${limit:-600}" $run $args < /dev/null > /tmp/peer.out 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	restore
	# kselftest's "skipped" is exit 4, but a test that counts its
	# failures in its exit status (khugepaged) can exit 4 too
	if [ $rc = 4 ] && grep -qiE 'fail|not ok' /tmp/peer.out; then
		grep -iE 'fail|not ok' /tmp/peer.out | tail -20 | sed 's/^/# | /'
		echo "# | exit 4 with failures reported: not a skip"
		rc=1
	fi
	case $rc in
	0) grep -E '^# (Totals|SUMMARY)' /tmp/peer.out ;;
	*) tail -25 /tmp/peer.out | sed 's/^/# | /' ;;
	esac
	echo "peer-mm: $name | rc=$rc secs=$secs verify=$(cat $dbg/verify)" \
		"active=$(cat $fpb/active) captured=$(cat $dbg/captured)"
done < list
echo "peer-mm: done"

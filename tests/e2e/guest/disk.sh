#!/bin/sh
# Files on a disk, written and read back while a migration runs (the e2e
# shared-ram scenario's vhost-user-blk disk, mounted at DIR).
#   disk.sh write DIR   until killed: write DIR/fN (256 KiB of random
#                       data), sync, record its md5 in /tmp/disk.sums, drop
#                       the page cache and read the previous file back
#                       from the disk; "fpb-disk: FAIL" on a mismatch
#   disk.sh check       drop the page cache and check every recorded file
SUMS=/tmp/disk.sums

drop_caches() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

case $1 in
write)
	n=0
	: > "$SUMS"
	while :; do
		n=$((n + 1))
		dd if=/dev/urandom of="$2/f$n" bs=64k count=4 2>/dev/null || exit 1
		sync
		md5sum "$2/f$n" >> "$SUMS"
		drop_caches
		if [ $n -gt 1 ] &&
		   ! grep "/f$((n - 1))\$" "$SUMS" | md5sum -c -s; then
			echo "fpb-disk: FAIL f$((n - 1)) read back wrong"
		fi
		echo "fpb-disk: wrote $n"
	done
	;;
check)
	drop_caches
	if md5sum -c -s "$SUMS"; then
		echo "fpb-disk: check PASS files=$(wc -l < "$SUMS")"
	else
		md5sum -c "$SUMS" 2>&1 | grep -v ': OK$' | head -5
		echo "fpb-disk: check FAIL"
	fi
	;;
esac

#!/bin/sh
# Smoke test of the guest itself: the kernel we built runs, on the CPUs
# we asked for, and sees the virtio devices QEMU offers it.
n=0 fail=0
result() { # result OK|FAIL description
	n=$((n + 1))
	if [ "$1" = OK ]; then echo "ok $n $2"; else echo "not ok $n $2"; fail=1; fi
}
want_release=$(sed -n 's/.*fpb\.release=\([^ ]*\).*/\1/p' /proc/cmdline)
want_cpus=$(sed -n 's/.*fpb\.cpus=\([^ ]*\).*/\1/p' /proc/cmdline)

echo "TAP version 13"
echo "1..3"
release=$(uname -r)
echo "# kernel $(uname -a)"
[ "$release" = "$want_release" ] && r=OK || r=FAIL
result $r "kernel release is $want_release (got $release)"

online=$(grep -c '^processor' /proc/cpuinfo)
[ "$online" = "$want_cpus" ] && r=OK || r=FAIL
result $r "$want_cpus CPUs online (got $online)"

# virtio device id 5 is the balloon; it must be bound to its driver.
balloon=FAIL
for d in /sys/bus/virtio/devices/*; do
	[ -e "$d/device" ] || continue
	drv=$(basename "$(readlink "$d/driver" 2>/dev/null)" 2>/dev/null)
	echo "# virtio $(basename "$d"): device $(cat "$d/device") driver ${drv:-none}"
	[ "$(cat "$d/device")" = 0x0005 ] && [ "$drv" = virtio_balloon ] && balloon=OK
done
result $balloon "virtio-balloon device bound to virtio_balloon"
exit $fail

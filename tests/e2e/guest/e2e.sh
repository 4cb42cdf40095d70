#!/bin/sh
# Guest side of the end-to-end migration tests (run by /init as
# fpb.run=e2e).  The host drives the guest through the second serial port
# (ttyS1): each line is "ID COMMAND", run by sh -c; its output comes back
# on the console as "fpb-e2e: ID: LINE" and its status as
# "fpb-e2e: ID rc=N".  Workloads started in the background write their
# own "fpb-wl:" lines to the console.  Never returns.
export PATH=/bin:/sbin:/e2e
# Open the command port before saying ready: bytes that arrive before
# the port is open are lost.
exec 3</dev/ttyS1
stty -F /dev/ttyS1 raw -echo 2>/dev/null || echo "fpb-e2e: no ttyS1"
echo "fpb-e2e: ready boot_id=$(cat /proc/sys/kernel/random/boot_id) uptime=$(cut -d' ' -f1 /proc/uptime)"
while :; do
	if ! read -r id cmd <&3; then
		sleep 1
		continue
	fi
	[ -n "$id" ] || continue
	out=$(sh -c "$cmd" 2>&1 </dev/null)
	rc=$?
	[ -z "$out" ] || printf '%s\n' "$out" | sed "s/^/fpb-e2e: $id: /"
	echo "fpb-e2e: $id rc=$rc"
done

#!/usr/bin/env bash
# Boot the guest kernel with the test initramfs under QEMU/TCG, run the
# guest tests named by --run and exit with their status.  The console goes
# to stdout and to LOG; a guest that never reports is a failure that says
# what it was doing.
#   boot.sh --kernel K --initrd I --run a,b [--smp N] [--mem M] [--timeout S]
#           [--log FILE] [--append "..."] [--balloon ",opts"]
#           [-- extra qemu args]
# QEMU=path picks the QEMU binary (default: Debian's).  The timeout
# (default 300 s) is multiplied by FPB_TIMEOUT_SCALE.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

kernel= initrd= run= smp=2 mem=512M timeout=300 log= append= balloon=
qemu=${QEMU:-qemu-system-x86_64}
while [ $# -gt 0 ]; do
	case $1 in
	--kernel) kernel=$2 ;; --initrd) initrd=$2 ;; --run) run=$2 ;;
	--smp) smp=$2 ;; --mem) mem=$2 ;; --timeout) timeout=$2 ;;
	--log) log=$2 ;; --append) append=$2 ;; --balloon) balloon=$2 ;;
	--) shift; break ;;
	*) die "boot: unknown argument $1" ;;
	esac
	shift 2
done
[ -f "$kernel" ] || die "boot: no kernel at '$kernel' (make kernel)"
[ -f "$initrd" ] || die "boot: no initramfs at '$initrd'"
[ -n "$run" ] || die "boot: --run names no guest test"
timeout=$(scaled "$timeout")
mkdir -p "$FPB_CACHE/logs"
log=${log:-$(mktemp "$FPB_CACHE/logs/boot.XXXXXX.log")}

release=$(file -b "$kernel" | sed -n 's/.*version \([^ ]*\) .*/\1/p')
# The guest runs under the CPU lock; waiting for it does not count
# against the timeout.
set +e
flock "$FPB_CPU_LOCK" timeout --foreground -k 5 "$timeout" "$qemu" -accel tcg -M q35 -cpu max \
	-smp "$smp" -m "$mem" -nographic -no-reboot \
	-kernel "$kernel" -initrd "$initrd" \
	-device "virtio-balloon-pci,id=balloon0$balloon" \
	-append "console=ttyS0 panic=-1 oops=panic panic_on_warn=1 fpb.run=$run fpb.cpus=$smp fpb.release=$release $append" \
	"$@" < /dev/null 2>&1 | tr -d '\r' | tee "$log"
status=${PIPESTATUS[0]}
set -e

result=$(sed -n 's/^fpb-guest: done rc=\([0-9]*\)$/\1/p' "$log" | tail -1)
if [ -n "$result" ]; then
	exit "$result"
fi
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
	what=$(grep -o '# fpb-guest: running .*' "$log" | tail -1 || true)
	echo "boot: guest hung: no result after ${timeout}s (${what:-before /init ran any test})" >&2
elif grep -q 'panic_on_warn set' "$log"; then
	echo "boot: guest kernel WARNed (panic_on_warn=1): $(grep -m1 'WARNING:' "$log")" >&2
elif grep -q 'Kernel panic' "$log"; then
	echo "boot: guest kernel panicked: $(grep -m1 'Kernel panic' "$log")" >&2
else
	echo "boot: guest stopped (QEMU exit $status) without reporting a result" >&2
fi
echo "boot: last console lines (full log: $log):" >&2
tail -15 "$log" | sed 's/^/  | /' >&2
exit 1

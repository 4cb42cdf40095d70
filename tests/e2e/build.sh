#!/usr/bin/env bash
# Build the guest workloads (static) and the end-to-end initramfs:
# scripts/initramfs.sh's busybox guest plus guest/e2e.sh and /e2e/*.
# Outputs live in $FPB_CACHE/e2e; cheap enough to redo on every run.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

here=$FPB_REPO/tests/e2e
out=$FPB_CACHE/e2e
stage=$out/stage
rm -rf "$stage"
mkdir -p "$stage/tests" "$stage/e2e" "$out/bin" "$out/kernel"
# A kernel and its System.map (the oracle reads struct pages), copied
# together so that a rebuild during a run cannot mix them up.
copy_kernel() { # BUILD_DIR DEST_DIR
	mkdir -p "$2"
	cp "$1/arch/x86/boot/bzImage" "$2/bzImage.tmp"
	cp "$1/System.map" "$2/System.map.tmp"
	mv "$2/bzImage.tmp" "$2/bzImage"
	mv "$2/System.map.tmp" "$2/System.map"
}
guest=$FPB_CACHE/build/guest
[ -f "$guest/arch/x86/boot/bzImage" ] || die "e2e: no guest kernel (make kernel)"
copy_kernel "$guest" "$out/kernel"
# The same for Debian's configuration, once make kernel-distro built it.
distro=$FPB_CACHE/build/distro
if [ -f "$distro/arch/x86/boot/bzImage" ] && [ -f "$distro/System.map" ]; then
	copy_kernel "$distro" "$out/kernel-distro"
fi
# The peer kernel (configs/peer.config) boots the Debian guest (postgres
# scenario, make guest-image).
peer=$FPB_CACHE/build/peer
if [ -f "$peer/arch/x86/boot/bzImage" ] && [ -f "$peer/System.map" ]; then
	copy_kernel "$peer" "$out/kernel-peer"
fi
for w in freed churn verify memhold kexec-boot; do
	src=$here/workloads/$w.c bin=$out/bin/$w
	if [ ! -x "$bin" ] || [ "$src" -nt "$bin" ] || [ "$here/workloads/wl.h" -nt "$bin" ]; then
		gcc -static -O2 -Wall -Wextra -Werror -o "$bin.tmp" "$src" ||
			die "e2e: cannot build workload $w"
		mv "$bin.tmp" "$bin"
	fi
	cp "$bin" "$stage/e2e/"
done
cp "$here/guest/e2e.sh" "$stage/tests/"
cp "$here/guest/disk.sh" "$stage/e2e/"
"$FPB_REPO/scripts/initramfs.sh" "$out/initramfs.cpio.gz" \
	tests="$stage/tests" e2e="$stage/e2e"
# The stress-ng scenario's initramfs: the same plus Debian's stress-ng,
# its libraries and their loader in /stressng (guest/stress-ng.sh runs it).
if [ -x /usr/bin/stress-ng ]; then
	mkdir -p "$stage/stressng"
	cp /usr/bin/stress-ng "$here/guest/stress-ng.sh" "$stage/stressng/"
	for lib in $(ldd /usr/bin/stress-ng | grep -o '/[^ ]*'); do
		cp -L "$lib" "$stage/stressng/"
	done
	"$FPB_REPO/scripts/initramfs.sh" "$out/initramfs-stressng.cpio.gz" \
		tests="$stage/tests" e2e="$stage/e2e" stressng="$stage/stressng"
fi
# The hostile-guest scenario's initramfs: the same plus its module
# (hostile/), built against the guest kernel.
# (A guest kernel built without its modules has no Module.symvers: the
# scenario then says so and skips.)
hostile=$out/hostile
rm -f "$out/initramfs-hostile.cpio.gz"
if [ -f "$guest/Module.symvers" ]; then
	if [ ! -f "$hostile/fpb_hostile.ko" ] || [ "$here/hostile/fpb_hostile.c" -nt "$hostile/fpb_hostile.ko" ] ||
	   [ "$guest/vmlinux" -nt "$hostile/fpb_hostile.ko" ]; then
		rm -rf "$hostile" && cp -r "$here/hostile" "$hostile"
		make -s -C "$LINUX_TREE" O="$guest" LOCALVERSION= M="$hostile" modules ||
			die "e2e: building the hostile guest's module failed"
	fi
	mkdir -p "$stage/hostile"
	cp "$hostile/fpb_hostile.ko" "$stage/hostile/"
	"$FPB_REPO/scripts/initramfs.sh" "$out/initramfs-hostile.cpio.gz" \
		tests="$stage/tests" e2e="$stage/e2e" hostile="$stage/hostile"
fi
# The kexec scenario's initramfs: the same plus the kernel to kexec and
# the plain initramfs for it.
mkdir -p "$stage/kexec"
cp "$out/kernel/bzImage" "$stage/kexec/bzImage"
cp "$out/initramfs.cpio.gz" "$stage/kexec/initrd.cpio.gz"
"$FPB_REPO/scripts/initramfs.sh" "$out/initramfs-kexec.cpio.gz" \
	tests="$stage/tests" e2e="$stage/e2e" kexec="$stage/kexec"
rm -rf "$stage"

#!/usr/bin/env bash
# make guest-image: a Debian 12 guest with PostgreSQL 15, for the e2e
# scenarios that migrate a real userspace (tests/e2e/README.md, "The
# Debian guest").  Three steps, each redone only when its inputs change:
#  1. rootfs.tar: mmdebstrap from Debian's mirror, the packages below at
#     pinned versions;
#  2. an ext2 file system of it plus our guest files (tests/e2e/guest/
#     debian: /sbin/fpb-init as pid 1, the load and the checks; the e2e
#     command loop);
#  3. the database, provisioned once by booting the image (the peer
#     guest kernel, Debian's QEMU): initdb with data checksums, pgbench
#     -i.  The result, base.raw, is what each scenario's qcow2 overlay
#     starts from.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

out=$FPB_CACHE/guest-image
guest=$FPB_REPO/tests/e2e/guest
kernel=$KBUILD_DIR/peer/arch/x86/boot/bzImage
# pgbench's scale: 16 MiB of accounts per unit, 150 MiB on disk at 10,
# which the 1 GiB guest's page cache holds.
scale=10
size=2G
mirrors=(
	"deb http://deb.debian.org/debian bookworm main"
	"deb http://deb.debian.org/debian bookworm-updates main"
	"deb http://deb.debian.org/debian-security bookworm-security main"
)
# To re-pin: apt-cache policy postgresql-15 (bookworm-security).
packages=(
	"postgresql-15=$PG_DEB_VERSION" "postgresql-client-15=$PG_DEB_VERSION"
	# poweroff for fpb-init; the rest of userspace is Debian's minbase
	busybox
)
mkdir -p "$out"

stamp_of() { printf '%s\n' "$@" | sha256sum | cut -d' ' -f1; }

# 1. The root file system.
rootfs_stamp=$(stamp_of "${packages[@]}" "${mirrors[@]}" minbase nodoc)
if [ "$(cat "$out/rootfs.stamp" 2>/dev/null)" != "$rootfs_stamp" ] || [ ! -f "$out/rootfs.tar" ]; then
	step "mmdebstrap bookworm: ${packages[*]}"
	log=$out/mmdebstrap.log
	rm -f "$out/rootfs.tar" "$out/rootfs.stamp" "$out/rootfs.tmp.tar"
	if ! mmdebstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		bookworm "$out/rootfs.tmp.tar" "${mirrors[@]}" > "$log" 2>&1; then
		tail -15 "$log" >&2
		# the step: mmdebstrap's last "I:" line before its first error
		failed_at=$(awk '/^E: / { exit } /^I: / { s = substr($0, 4) } END { print s }' "$log")
		die "guest-image: mmdebstrap failed at step '$failed_at'
  (full log: $log).  It needs Debian's mirror, deb.debian.org, and
  postgresql-15 $PG_DEB_VERSION on it: if the mirror answers but has
  moved on, re-pin PG_DEB_VERSION in scripts/lib.sh (apt-cache policy postgresql-15)"
	fi
	mv "$out/rootfs.tmp.tar" "$out/rootfs.tar"
	echo "$rootfs_stamp" > "$out/rootfs.stamp"
fi

# 2 and 3. The provisioned image.
files=("$guest/debian/fpb-init" "$guest/debian/pg.sh" "$guest/debian/pgload" "$guest/e2e.sh")
image_stamp=$(stamp_of "$rootfs_stamp" "$scale" "$size" "$(cat "$0" "${files[@]}")")
if [ "$(cat "$out/base.stamp" 2>/dev/null)" = "$image_stamp" ] && [ -f "$out/base.raw" ]; then
	echo "guest image $out/base.raw (up to date)"
	exit 0
fi
[ -f "$kernel" ] || die "guest-image: no peer kernel $kernel (make kernel-peer)"
step "ext2 file system of rootfs.tar and tests/e2e/guest/debian"
stage=$out/stage
rm -rf "$stage" "$out/base.raw" "$out/base.stamp"
mkdir -p "$stage"
tar -xf "$out/rootfs.tar" -C "$stage"
# Debian's default cluster: unused (ours has data checksums)
rm -rf "$stage/var/lib/postgresql/15/main" "$stage/etc/postgresql/15/main"
install -m 755 "$guest/debian/fpb-init" "$stage/sbin/fpb-init"
install -d "$stage/e2e"
install -m 644 "$guest/debian/pg.sh" "$stage/e2e/pg.sh"
install -m 755 "$guest/debian/pgload" "$guest/e2e.sh" "$stage/e2e/"
rm -f "$out/image.tmp"
mke2fs -q -t ext2 -d "$stage" -F "$out/image.tmp" "$size" || die "guest-image: mke2fs failed"
rm -rf "$stage"

step "provision PostgreSQL in the guest (initdb --data-checksums, pgbench -i -s $scale)"
console=$out/provision-console.log
flock "$FPB_CPU_LOCK" timeout --foreground -k 5 "$(scaled 1200)" \
	/usr/bin/qemu-system-x86_64 -accel tcg -M q35 -cpu max -smp 2 -m 1G \
	-nodefaults -display none -no-reboot -L /usr/share/seabios -L /usr/share/qemu \
	-kernel "$kernel" \
	-append "console=ttyS0 root=/dev/vda rootwait rw init=/sbin/fpb-init fpb.provision=$scale panic=-1" \
	-drive "file=$out/image.tmp,format=raw,if=virtio" \
	-serial "file:$console" || true
grep -q "fpb-pg: provisioned scale=$scale" "$console" || {
	tail -20 "$console" >&2
	die "guest-image: provisioning the database failed (console: $console)"
}
mv "$out/image.tmp" "$out/base.raw"
echo "$image_stamp" > "$out/base.stamp"
echo "guest image $out/base.raw"

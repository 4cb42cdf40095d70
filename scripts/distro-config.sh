#!/usr/bin/env bash
# The configuration a distribution ships: Debian's linux-image cloud-amd64
# of the pinned version, its /boot/config as shipped, with every module
# left out (=m becomes "is not set"); configs/distro.config then builds in
# what the guest needs, configs/distro-feature.config the feature.  Prints
# the path of the result, $FPB_CACHE/distro/cloud-amd64.config; downloads
# only when it is absent.
#   distro-config.sh
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

dir=$FPB_CACHE/distro
flavour=${LINUX_DEB_VERSION%%-*}+deb12-cloud-amd64
out=$dir/cloud-amd64.config
mkdir -p "$dir"
if [ ! -f "$out" ]; then
	deb=$(ls "$dir"/linux-image-"$flavour"-unsigned_*.deb 2>/dev/null || true)
	if [ -z "$deb" ]; then
		step "download linux-image-$flavour-unsigned $LINUX_DEB_VERSION (Debian's mirror)" >&2
		(cd "$dir" && apt-get download -q "linux-image-$flavour-unsigned=$LINUX_DEB_VERSION" >/dev/null) ||
			die "distro: apt-get download linux-image-$flavour-unsigned=$LINUX_DEB_VERSION failed (mirror unreachable, or the pin left bookworm-security?)"
		deb=$(ls "$dir"/linux-image-"$flavour"-unsigned_*.deb)
	fi
	dpkg-deb --fsys-tarfile "$deb" | tar -xO "./boot/config-$flavour" |
		sed -E 's/^(CONFIG_[A-Z0-9_]+)=m$/# \1 is not set/' > "$out.tmp" ||
		die "distro: no /boot/config-$flavour in $deb"
	mv "$out.tmp" "$out"
fi
echo "$out"

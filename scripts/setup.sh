#!/usr/bin/env bash
# Install everything the build, the guests and the tests need, from
# Debian's mirror only, at pinned versions.  Idempotent; runs as root.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "setup must run as root (it installs Debian packages)"

sources=/etc/apt/sources.list.d/free-page-bitmap-backports.sources
want="Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
stamp=$FPB_CACHE/apt-updated
if [ ! -f "$sources" ] || [ "$(cat "$sources")" != "$want" ]; then
	step "enable bookworm-backports (deb and deb-src)"
	printf '%s\n' "$want" > "$sources"
	rm -f "$stamp"
fi

# Pinned versions.  To re-pin, pick a version from `apt-cache policy PKG`,
# edit it here and, for the kernel, LINUX_SUBLEVEL in scripts/lib.sh.
pinned=(
	"linux-source-6.12=$LINUX_DEB_VERSION"
	"qemu-system-x86=$QEMU_DEB_VERSION"
)
# Unpinned build and test tools from bookworm itself.
tools=(
	build-essential flex bison bc libelf-dev libssl-dev cpio ccache sparse
	dwarves kmod rsync python3 perl busybox-static xz-utils git file
	libnuma-dev libcap-dev python3-ply python3-git gcc-aarch64-linux-gnu
	# the migration benchmark's plot (make bench, tests/e2e)
	gnuplot-nox
	# the stress-ng migration (tests/e2e): Debian's own memory stressors
	stress-ng
	# the shared-ram migration's disk image (mkfs.ext2) and hugetlbfs
	# mount check (mountpoint), tests/e2e
	e2fsprogs util-linux
	# the Debian guest's root file system (make guest-image, tests/e2e)
	mmdebstrap
	# QEMU (scripts/qemu.sh) and its filter tests and fuzzer (tests/qemu)
	libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev ninja-build pkgconf
	python3-venv clang libclang-rt-14-dev
)
# Unpinned tools that bookworm has too old, from backports, with the
# minimum version needed: QEMU 10 needs meson >= 1.5.
backports=(
	"meson>=1.5" "python3-pycotap>=0"
)

missing=()
for p in "${pinned[@]}"; do
	name=${p%%=*} ver=${p#*=}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
	[ "$have" = "install ok installed $ver" ] || missing+=("$p")
done
for p in "${tools[@]}"; do
	have=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	[[ $have == *"ok installed"* ]] || missing+=("$p")
done
bpo_missing=()
for p in "${backports[@]}"; do
	name=${p%%>=*} min=${p#*>=}
	have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
	case $have in
	"install ok installed "*) dpkg --compare-versions "${have##* }" ge "$min" && continue ;;
	esac
	bpo_missing+=("$name")
done
[ ${#missing[@]} -eq 0 ] && [ ${#bpo_missing[@]} -eq 0 ] &&
	{ echo "setup: all packages present"; exit 0; }

mkdir -p "$FPB_CACHE"
if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +360)" ]; then
	step "apt-get update"
	apt-get update -q -o DPkg::Lock::Timeout="$(scaled 600)" >/dev/null || die "apt-get update failed"
	touch "$stamp"
fi
for p in "${pinned[@]}"; do
	name=${p%%=*} ver=${p#*=}
	# Read whole, then searched: grep -q's early exit in a pipeline
	# kills its writer with SIGPIPE (exit 141 under pipefail).
	madison=$(apt-cache madison "$name" 2>&1) || die "apt-cache madison $name failed: $madison"
	awk -F'|' '{ gsub(/ /, "", $2); print $2 }' <<< "$madison" | grep -xF "$ver" >/dev/null ||
		die "pinned $name $ver is not on the mirror; pick one of:
$(head -5 <<< "$madison")
and edit the pin in scripts/lib.sh"
done
tools_missing=() pinned_missing=()
for p in "${missing[@]}"; do
	case $p in *=*) pinned_missing+=("$p") ;; *) tools_missing+=("$p") ;; esac
done
export DEBIAN_FRONTEND=noninteractive
if [ ${#tools_missing[@]} -gt 0 ]; then
	step "apt-get install ${tools_missing[*]}"
	apt-get install -y -q -o DPkg::Lock::Timeout="$(scaled 600)" --no-install-recommends "${tools_missing[@]}" >/dev/null ||
		die "apt-get install failed (see above)"
fi
if [ ${#pinned_missing[@]} -gt 0 ]; then
	# QEMU 10 and its dependencies come from backports.
	step "apt-get install ${pinned_missing[*]}"
	apt-get install -y -q -o DPkg::Lock::Timeout="$(scaled 600)" --no-install-recommends -t bookworm-backports \
		"${pinned_missing[@]}" >/dev/null ||
		die "apt-get install failed (see above)"
fi
if [ ${#bpo_missing[@]} -gt 0 ]; then
	step "apt-get install -t bookworm-backports ${bpo_missing[*]}"
	apt-get install -y -q -o DPkg::Lock::Timeout="$(scaled 600)" --no-install-recommends -t bookworm-backports \
		"${bpo_missing[@]}" >/dev/null ||
		die "apt-get install failed (see above)"
fi
echo "setup: installed $((${#missing[@]} + ${#bpo_missing[@]})) package(s)"

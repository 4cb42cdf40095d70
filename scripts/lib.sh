# Shared settings and helpers, sourced by the scripts in this directory.
# shellcheck shell=bash

# Everything built or downloaded lives here, outside the clone.
FPB_CACHE=${FPB_CACHE:-/var/cache/free-page-bitmap}
FPB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The pinned base kernel: Debian's linux-source-6.12 package.
LINUX_DEB_VERSION=6.12.117-1~deb12u1
LINUX_SUBLEVEL=117
LINUX_TARBALL=/usr/src/linux-source-6.12.tar.xz

# The stock QEMU used for baselines and by kunit.py.
QEMU_DEB_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1

# The assembled kernel tree and its build directories.
LINUX_TREE=$FPB_CACHE/linux
KBUILD_DIR=$FPB_CACHE/build

# Paths in this repository that are copied into the kernel tree.
KERNEL_PATHS="mm include drivers Documentation tools/testing/selftests"

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# "Name <email>" for sign-offs, from git's configuration.
author() {
	local name email
	name=$(git -C "$FPB_REPO" config user.name || true)
	email=$(git -C "$FPB_REPO" config user.email || true)
	echo "${name:-Free page bitmap developers} <${email:-fpb@localhost}>"
}

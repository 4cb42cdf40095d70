#!/usr/bin/env bash
# Build our qemu-system-x86_64: Debian's pinned QEMU source (the orig
# tarball of QEMU_DEB_VERSION, sha256-checked against apt's source index)
# + qemu/patches/series applied in order, one commit each, + our new files
# under qemu/ (one last commit), in the git work tree $FPB_CACHE/qemu,
# built with a minimal device set into $FPB_CACHE/build/qemu.  Every step is skipped when its input did not
# change, and files whose content does not change keep their mtime, so a
# rerun with nothing changed only asks ninja, which has nothing to do.
# With --tree-only, only the work tree; with --build-at TREE DIR
# [OPTION...], only the build of TREE in DIR (qemu-check's build of each
# commit of the series), the OPTIONs to configure, if any, in place of
# BUILD_OPTS (make qemu-fuzz's clang and sanitizer build).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

QEMU_DL=$FPB_CACHE/qemu-dl
QEMU_SRC=$FPB_CACHE/qemu-src
QEMU_TREE=$FPB_CACHE/qemu
QEMU_BUILD=$FPB_CACHE/build/qemu
QEMU_ORIG=qemu_${QEMU_DEB_VERSION#*:}
QEMU_ORIG=${QEMU_ORIG%%-*}.orig.tar.xz
LOCK=/var/lock/fpb-cpu.lock
patches=$FPB_REPO/qemu/patches
# The accelerators of our QEMU, and vhost-user with qemu-storage-daemon's
# vhost-user-blk export (tests/e2e's shared-ram scenario serves the guest
# a disk from a separate process, as production vhost-user hosts do)
BUILD_OPTS=(--enable-tcg --enable-kvm --enable-vhost-user --enable-tools
	    --enable-vhost-user-blk-server)

# 1. The pristine source, once per pin.
source_tree() {
	[ "$(cat "$QEMU_SRC/.fpb-version" 2>/dev/null)" = "$QEMU_DEB_VERSION" ] && return 0
	# apt-cache showsrc lists every version; take the pinned one's hash.
	# Its output is read whole first: awk's early exit in a pipeline
	# would kill apt-cache with SIGPIPE (exit 141 under pipefail).
	local want have showsrc
	showsrc=$(apt-cache showsrc qemu) ||
		die "apt-cache showsrc qemu failed (see above): run make setup (it enables bookworm-backports deb-src)"
	want=$(awk -v v="$QEMU_DEB_VERSION" -v f="$QEMU_ORIG" '
		/^Package: / { ver = "" }
		/^Version: / { ver = $2 }
		/^Checksums-Sha256:/ { sha = 1; next }
		/^[^ ]/ { sha = 0 }
		sha && ver == v && $3 == f { print $1; exit }' <<< "$showsrc")
	[ -n "$want" ] || die "apt-cache showsrc qemu has no $QEMU_ORIG for $QEMU_DEB_VERSION:
run make setup (it enables bookworm-backports deb-src) or re-pin QEMU_DEB_VERSION in scripts/lib.sh"
	mkdir -p "$QEMU_DL"
	if [ ! -f "$QEMU_DL/$QEMU_ORIG" ] ||
	   [ "$(sha256sum < "$QEMU_DL/$QEMU_ORIG" | cut -d' ' -f1)" != "$want" ]; then
		step "apt-get source --download-only qemu=$QEMU_DEB_VERSION"
		rm -f "$QEMU_DL/$QEMU_ORIG"
		# The .dsc and the debian tarball are 404 on the mirror (see
		# BUILD-FACTS): apt fails, but the orig tarball arrives.
		(cd "$QEMU_DL" && apt-get source --download-only -q -t bookworm-backports \
			"qemu=$QEMU_DEB_VERSION" >/dev/null 2>&1) || true
		[ -f "$QEMU_DL/$QEMU_ORIG" ] || die "apt-get source did not fetch $QEMU_ORIG"
	fi
	have=$(sha256sum < "$QEMU_DL/$QEMU_ORIG" | cut -d' ' -f1)
	[ "$have" = "$want" ] || die "$QEMU_ORIG: sha256 $have, apt-cache showsrc says $want"

	step "extract $QEMU_ORIG"
	rm -rf "$QEMU_SRC.tmp" && mkdir -p "$QEMU_SRC.tmp"
	tar -xf "$QEMU_DL/$QEMU_ORIG" -C "$QEMU_SRC.tmp" --no-same-owner --strip-components=1 ||
		die "cannot extract $QEMU_ORIG"
	echo "$QEMU_DEB_VERSION" > "$QEMU_SRC.tmp/.fpb-version"
	rm -rf "$QEMU_SRC" "$QEMU_TREE"
	mv "$QEMU_SRC.tmp" "$QEMU_SRC"
}

# 2. The work tree: tag base = pristine source, a local commit with the
# build adjustments below, then one commit per patch.
work_tree() {
	if [ "$(cat "$QEMU_TREE/.git/fpb-base" 2>/dev/null)" != "$QEMU_DEB_VERSION" ]; then
		step "commit the base tree $QEMU_TREE"
		local tmp=$QEMU_TREE.tmp
		rm -rf "$tmp" "$QEMU_TREE"
		# the contents: a cache may hold qemu-src as a symlink to a shared copy
		mkdir -p "$tmp" && cp -a "$QEMU_SRC/." "$tmp"
		rm -f "$tmp/.fpb-version"
		commit_base "$tmp" "base: Debian qemu $QEMU_DEB_VERSION (orig tarball)" \
			"$QEMU_DEB_VERSION"
		rm -rf "$QEMU_BUILD"
		mv "$tmp" "$QEMU_TREE"
	fi

	cd "$QEMU_TREE"
	local edits
	edits=$(git status --short)
	if [ "${FORCE:-0}" != 1 ] && [ -n "$edits" ]; then
		head -20 <<< "$edits" >&2
		die "$QEMU_TREE has edits that are not in the repository:
  commit them on a work branch there and run qemu/refresh.sh, or
  make qemu FORCE=1   throws them away"
	fi
	export GIT_AUTHOR_NAME=assemble GIT_AUTHOR_EMAIL=assemble@localhost
	export GIT_COMMITTER_NAME=assemble GIT_COMMITTER_EMAIL=assemble@localhost
	export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"
	local idx=$QEMU_TREE/.git/assemble-index head
	export GIT_INDEX_FILE=$idx
	trap 'rm -f "$idx"' EXIT
	git read-tree base
	# A local commit on top of base, not part of the series we send
	# upstream (so no patch in qemu/patches that checkpatch and the cover
	# letter would have to explain):
	# - Debian's +ds repack drops the prebuilt firmware, and
	#   pc-bios/meson.build unpacks the edk2 images whenever bzip2
	#   exists; skip them when they are missing.  At run time the
	#   firmware comes from Debian's seabios and qemu-system-data (-L).
	# - configure takes the device set only from configs/devices/.
	local blob
	blob=$(git cat-file blob base:pc-bios/meson.build |
	       sed "s/^if unpack_edk2_blobs$/if unpack_edk2_blobs and fs.exists('edk2-x86_64-code.fd.bz2')/" |
	       git hash-object -w --stdin)
	grep -q "fs.exists('edk2-x86_64-code.fd.bz2')" <<< "$(git cat-file blob "$blob")" ||
		die "cannot adjust pc-bios/meson.build for the missing edk2 blobs"
	git update-index --cacheinfo "100644,$blob,pc-bios/meson.build"
	git update-index --add --cacheinfo "100644,$(git hash-object -w "$FPB_REPO/qemu/x86_64-softmmu.mak"),configs/devices/x86_64-softmmu/fpb-minimal.mak"
	head=$(git commit-tree "$(git write-tree)" -p base \
		-m "local: build adjustments (no edk2 blobs, minimal device set)")
	head=$(commit_series "$patches/series" "$head")
	# shellcheck disable=SC2086
	head=$(commit_files qemu "$head" $QEMU_PATHS)
	unset GIT_INDEX_FILE GIT_AUTHOR_DATE GIT_COMMITTER_DATE
	rm -f "$idx"
	trap - EXIT
	# A work branch with exactly this content (qemu/refresh.sh made the
	# patches from it) stays checked out.
	if [ "$(git rev-parse HEAD^{tree})" != "$(git rev-parse "$head^{tree}")" ]; then
		# Only files whose content differs are rewritten.
		git checkout -q -f --detach "$head"
		git clean -q -fd
	fi
	echo "qemu tree $QEMU_TREE at $(git rev-parse --short HEAD)"
}

# 3. Configure (again only when the options change; ninja reruns meson by
# itself when a meson.build changes) and build.
build() {
	local opts=(
		--python=/usr/bin/python3
		--target-list=x86_64-softmmu
		--without-default-features --without-default-devices
		--with-devices-x86_64=fpb-minimal
		"${BUILD_OPTS[@]}"
		--disable-docs --disable-werror --disable-install-blobs
		# The +ds source has no firmware: use Debian's, where Debian's
		# own qemu-system-x86 looks (seabios, ipxe, qemu-system-data).
		--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
	)
	# Same cache as the kernel builds; meson picks up ccache by itself.
	export CCACHE_DIR=$FPB_CACHE/ccache CCACHE_BASEDIR=$FPB_CACHE
	local stamp=$QEMU_BUILD/.fpb-configure
	local log=$FPB_CACHE/logs/${QEMU_BUILD##*/}-configure.log
	local want
	want="${opts[*]} $(sha256sum < "$FPB_REPO/qemu/x86_64-softmmu.mak")"
	if [ ! -f "$QEMU_BUILD/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
		step "configure $QEMU_BUILD"
		rm -rf "$QEMU_BUILD" && mkdir -p "$QEMU_BUILD"
		(cd "$QEMU_BUILD" && flock "$LOCK" "$QEMU_TREE/configure" "${opts[@]}") \
			> "$log" 2>&1 || die "configure failed, see $log"
		echo "$want" > "$stamp"
	fi
	# The same sources and options as the last complete build: nothing to
	# do, not even waiting for the CPU lock.
	local built
	built="$(git -C "$QEMU_TREE" rev-parse HEAD^{tree}) $want"
	if [ "$(cat "$QEMU_BUILD/.fpb-built" 2>/dev/null)" = "$built" ] &&
	   [ -x "$QEMU_BUILD/qemu-system-x86_64" ] && [ -z "${NINJA_TARGETS:-}" ]; then
		echo "$QEMU_BUILD is up to date"
	else
		rm -f "$QEMU_BUILD/.fpb-built"
		step "ninja -C $QEMU_BUILD"
		flock "$LOCK" ninja -C "$QEMU_BUILD" -j2 ${NINJA_TARGETS:-} ||
			die "QEMU build failed"
		[ -n "${NINJA_TARGETS:-}" ] || echo "$built" > "$QEMU_BUILD/.fpb-built"
	fi
	# Run from the build directory (qtests, tests/e2e), QEMU looks for
	# its firmware path under qemu-bundle/: point it at Debian's files.
	local d
	for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
		[ -e "$QEMU_BUILD/qemu-bundle$d" ] && continue
		mkdir -p "$(dirname "$QEMU_BUILD/qemu-bundle$d")"
		ln -s "$d" "$QEMU_BUILD/qemu-bundle$d"
	done
}

mkdir -p "$FPB_CACHE/logs"
if [ "${1:-}" = --build-at ]; then
	QEMU_TREE=$2 QEMU_BUILD=$3
	shift 3
	[ $# = 0 ] || BUILD_OPTS=("$@")
	build
	exit 0
fi
source_tree
work_tree
[ "${1:-}" = --tree-only ] && exit 0
build
echo "built $QEMU_BUILD/qemu-system-x86_64"

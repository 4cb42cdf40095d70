#!/usr/bin/env bash
# make qemu-fuzz: build QEMU's libFuzzer binary qemu-fuzz-x86_64 (clang,
# --enable-fuzzing, ASan and UBSan) from the assembled tree $FPB_CACHE/qemu
# in a build directory of its own, $FPB_CACHE/build/qemu-fuzz, and run our
# fuzz target virtio-balloon-fpb (tests/qtest/fuzz/virtio_balloon_fpb_fuzz.c,
# patch 0009) for SECONDS (default 60) from the seed corpus
# tests/qemu/corpus (copied: new inputs stay in the build directory).
# Crashes go to $FPB_CACHE/build/qemu-fuzz/fuzz-artifacts/; replay one
# with: qemu-fuzz-x86_64 --fuzz-target=virtio-balloon-fpb FILE.
# Regenerate the seeds with: tests/qemu/fuzz.sh --seeds
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

tree=$FPB_CACHE/qemu
build=$FPB_CACHE/build/qemu-fuzz
corpus=$FPB_REPO/tests/qemu/corpus
target=virtio-balloon-fpb
[ -f "$tree/tests/qtest/fuzz/virtio_balloon_fpb_fuzz.c" ] ||
	die "$tree has no fuzz target $target: run make qemu first"
mkdir -p "$build" "$FPB_CACHE/logs"

if [ "${1:-}" = --seeds ]; then
	qemu_core_flags
	gcc -O1 -g "${QEMU_CORE_INCLUDES[@]}" -o "$build/fuzz-seeds" \
		"$FPB_REPO/tests/qemu/fuzz-seeds.c" "${GLIB_FLAGS[@]}" ||
		die "cannot build the seed generator"
	rm -rf "$corpus" && mkdir -p "$corpus"
	"$build/fuzz-seeds" "$corpus"
	ls -l "$corpus"
	exit 0
fi
seconds=${1:-60}

# Configure again only when the options change (ninja reruns meson by
# itself when a meson.build changes).  Only x86_64, our device set and
# no TCG (the qtest accelerator runs the target): the binary, not QEMU,
# is what this build is for.
opts=(
	--cc="ccache clang" --cxx="ccache clang++"
	--enable-fuzzing --enable-asan --enable-ubsan
	--python=/usr/bin/python3
	--target-list=x86_64-softmmu
	--without-default-features --without-default-devices
	--with-devices-x86_64=fpb-minimal
	--disable-tcg --enable-kvm
	--disable-docs --disable-werror --disable-install-blobs
	--firmwarepath=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
)
export CCACHE_DIR=$FPB_CACHE/ccache CCACHE_BASEDIR=$FPB_CACHE
stamp=$build/.fpb-configure
want="${opts[*]} $(sha256sum < "$FPB_REPO/qemu/x86_64-softmmu.mak")"
if [ ! -f "$build/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
	step "configure $build"
	find "$build" -mindepth 1 -maxdepth 1 ! -name 'fuzz-*' -exec rm -rf {} +
	(cd "$build" && flock "$FPB_CPU_LOCK" "$tree/configure" "${opts[@]}") \
		> "$FPB_CACHE/logs/qemu-fuzz-configure.log" 2>&1 ||
		die "configure failed, see $FPB_CACHE/logs/qemu-fuzz-configure.log"
	echo "$want" > "$stamp"
fi
step "ninja -C $build qemu-fuzz-x86_64"
flock "$FPB_CPU_LOCK" ninja -C "$build" -j2 qemu-fuzz-x86_64 || die "qemu-fuzz-x86_64 build failed"
# Debian's firmware where QEMU looks when run from the build directory.
for d in /usr/share/qemu /usr/share/seabios /usr/lib/ipxe/qemu; do
	[ -e "$build/qemu-bundle$d" ] && continue
	mkdir -p "$(dirname "$build/qemu-bundle$d")"
	ln -s "$d" "$build/qemu-bundle$d"
done

rm -rf "$build/fuzz-corpus" && mkdir -p "$build/fuzz-corpus" "$build/fuzz-artifacts"
cp "$corpus"/* "$build/fuzz-corpus/"
step "fuzz $target for $seconds s"
flock "$FPB_CPU_LOCK" "$build/qemu-fuzz-x86_64" --fuzz-target="$target" \
	-max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$build/fuzz-artifacts/" "$build/fuzz-corpus"

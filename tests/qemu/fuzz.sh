#!/usr/bin/env bash
# make qemu-fuzz: build QEMU's libFuzzer binary qemu-fuzz-x86_64 (clang,
# --enable-fuzzing, ASan and UBSan) from the assembled tree $FPB_CACHE/qemu
# in a build directory of its own, $FPB_CACHE/build/qemu-fuzz (by
# scripts/qemu.sh's build, with these options), and run our fuzz target
# virtio-balloon-fpb (tests/qtest/fuzz/virtio_balloon_fpb_fuzz.c, patch
# 0009) for SECONDS (default 60) from a copy of the seed corpus
# tests/qemu/corpus in $FPB_CACHE/build/qemu-fuzz-run, where new inputs
# stay and crashes go to artifacts/; replay one with:
# qemu-fuzz-x86_64 --fuzz-target=virtio-balloon-fpb FILE.
# Regenerate the seeds with: tests/qemu/fuzz.sh --seeds
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

tree=$FPB_CACHE/qemu
build=$FPB_CACHE/build/qemu-fuzz
# corpus, crashes and the seed generator: outside $build, which a new
# configure empties
run=$FPB_CACHE/build/qemu-fuzz-run
corpus=$FPB_REPO/tests/qemu/corpus
target=virtio-balloon-fpb
[ -f "$tree/tests/qtest/fuzz/virtio_balloon_fpb_fuzz.c" ] ||
	die "$tree has no fuzz target $target: run make qemu first"
mkdir -p "$run" "$FPB_CACHE/logs"

if [ "${1:-}" = --seeds ]; then
	qemu_core_flags
	gcc -O1 -g "${QEMU_CORE_INCLUDES[@]}" -o "$run/fuzz-seeds" \
		"$FPB_REPO/tests/qemu/fuzz-seeds.c" "${GLIB_FLAGS[@]}" ||
		die "cannot build the seed generator"
	rm -rf "$corpus" && mkdir -p "$corpus"
	"$run/fuzz-seeds" "$corpus"
	ls -l "$corpus"
	exit 0
fi
seconds=${1:-60}

# Only x86_64, our device set and no TCG (the qtest accelerator runs the
# target): the binary, not QEMU, is what this build is for.
NINJA_TARGETS=qemu-fuzz-x86_64 "$FPB_REPO/scripts/qemu.sh" --build-at "$tree" "$build" \
	--cc="ccache clang" --cxx="ccache clang++" \
	--enable-fuzzing --enable-asan --enable-ubsan --disable-tcg --enable-kvm ||
	die "qemu-fuzz-x86_64 build failed"

rm -rf "$run/corpus" && mkdir -p "$run/corpus" "$run/artifacts"
cp "$corpus"/* "$run/corpus/"
step "fuzz $target for $seconds s"
flock "$FPB_CPU_LOCK" "$build/qemu-fuzz-x86_64" --fuzz-target="$target" \
	-max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$run/artifacts/" "$run/corpus"

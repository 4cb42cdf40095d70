#!/usr/bin/env bash
# Fuzz the free page bitmap layout validator and filter for SECONDS
# (default 60) with libFuzzer + ASan/UBSan, starting from the seed corpus
# tests/qemu/corpus (copied: new inputs stay in the build directory).
# Regenerate the seeds with: tests/qemu/fuzz.sh --seeds
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

tree=$FPB_CACHE/qemu
here=$FPB_REPO/tests/qemu
out=$FPB_CACHE/build/qemu-tests
corpus=$FPB_REPO/tests/qemu/corpus
core=$tree/migration/free-page-bitmap-core.c
[ -f "$core" ] || die "$tree has no filter core: run make qemu first"
mkdir -p "$out"
qemu_core_flags
cflags=(-O1 -g "${QEMU_CORE_INCLUDES[@]}")

if [ "${1:-}" = --seeds ]; then
	gcc "${cflags[@]}" -DFPB_FUZZ_SEEDS -o "$out/fuzz-seeds" "$here/fuzz.c" "$core" "${GLIB_FLAGS[@]}"
	mkdir -p "$corpus"
	"$out/fuzz-seeds" "$corpus"
	ls -l "$corpus"
	exit 0
fi

seconds=${1:-60}
clang "${cflags[@]}" -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-o "$out/fuzz" "$here/fuzz.c" "$core" "${GLIB_FLAGS[@]}" || die "cannot build the fuzzer"
rm -rf "$out/fuzz-corpus" && mkdir -p "$out/fuzz-corpus" "$out/fuzz-artifacts"
cp "$corpus"/* "$out/fuzz-corpus/"
step "fuzz for $seconds s"
flock /var/lock/fpb-cpu.lock "$out/fuzz" -max_total_time="$seconds" -rss_limit_mb=1024 \
	-print_final_stats=1 -artifact_prefix="$out/fuzz-artifacts/" "$out/fuzz-corpus"

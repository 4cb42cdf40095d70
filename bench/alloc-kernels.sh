# shellcheck shell=bash
# Sourced by bench/alloc.sh and bench/alloc-insn.sh: build the unpatched
# kernel ("base") and ours ("guest") with the allocator benchmark module
# (bench/alloc/) and an initramfs holding it, in $KBUILD_DIR.

build_bench_kernel() { # NAME TREE [--base] -- CONFIGS...: bzImage, module, initramfs
	local name=$1 tree=$2; shift 2
	local base=()
	if [ "$1" = --base ]; then base=(--base); shift; fi
	[ "$1" = -- ] && shift
	"$FPB_REPO/scripts/kernel.sh" "${base[@]}" "$name" "$@" -- bzImage modules
	rm -rf "$KBUILD_DIR/bench-$name" && mkdir -p "$KBUILD_DIR/bench-$name"
	cp "$FPB_REPO"/bench/alloc/* "$KBUILD_DIR/bench-$name/"
	make -s -C "$tree" O="$KBUILD_DIR/$name" LOCALVERSION= M="$KBUILD_DIR/bench-$name" modules ||
		die "bench: building the module for $name failed"
	"$FPB_REPO/scripts/initramfs.sh" "$KBUILD_DIR/bench-$name.cpio.gz" \
		"bench=$KBUILD_DIR/bench-$name"
}

build_bench_kernels() {
	build_bench_kernel base "$LINUX_BASE_TREE" --base -- "$FPB_REPO/configs/guest.config"
	build_bench_kernel guest "$LINUX_TREE" -- "$FPB_REPO/configs/guest.config" \
		"$FPB_REPO/configs/feature.config"
}

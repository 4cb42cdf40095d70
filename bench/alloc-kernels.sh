# shellcheck shell=bash
# Sourced by bench/alloc.sh and bench/alloc-insn.sh: build the kernels of
# $bench_compared (bench/kernels.sh) with the allocator benchmark module
# (bench/alloc/) and an initramfs holding it, in $KBUILD_DIR.
. "$FPB_REPO/bench/kernels.sh"

build_bench_kernel() { # KIND: bzImage, module, initramfs
	local kind=$1 name=${bench_names[$1]} tree=$LINUX_TREE
	[ "$kind" = base ] && tree=$LINUX_BASE_TREE
	bench_kernel "$kind" bzImage modules
	rm -rf "$KBUILD_DIR/bench-$name" && mkdir -p "$KBUILD_DIR/bench-$name"
	cp "$FPB_REPO"/bench/alloc/* "$KBUILD_DIR/bench-$name/"
	make -s -C "$tree" O="$KBUILD_DIR/$name" LOCALVERSION= M="$KBUILD_DIR/bench-$name" modules ||
		die "bench: building the module for $name failed"
	"$FPB_REPO/scripts/initramfs.sh" "$KBUILD_DIR/bench-$name.cpio.gz" \
		"bench=$KBUILD_DIR/bench-$name"
}

build_bench_kernels() {
	local kind
	for kind in "${bench_compared[@]}"; do build_bench_kernel "$kind"; done
}

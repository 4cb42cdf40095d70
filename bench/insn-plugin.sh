# shellcheck shell=bash
# Sourced by the instruction-counting benches: build QEMU's own insn
# plugin (tests/tcg/plugins/insn.c of our QEMU tree, for Debian's QEMU of
# the same version) into $plugin.
plugin=$KBUILD_DIR/libinsn.so

build_insn_plugin() {
	local tree=$FPB_CACHE/qemu
	[ -f "$tree/tests/tcg/plugins/insn.c" ] || die "bench: no QEMU tree at $tree (make qemu)"
	step "build QEMU's insn plugin"
	# shellcheck disable=SC2046
	gcc -O2 -shared -fPIC -I"$tree/include/qemu" $(pkg-config --cflags glib-2.0) \
		"$tree/tests/tcg/plugins/insn.c" -o "$plugin" $(pkg-config --libs glib-2.0) ||
		die "bench: building the insn plugin failed"
}

#!/usr/bin/env bash
# Configure and build a kernel from the assembled tree, or from another
# tree (--base: the unpatched base; --tree DIR), for x86_64, for 32-bit
# x86 with --arch i386, or, with --arch arm64, cross-compiled with
# Debian's aarch64-linux-gnu-gcc.
#   kernel.sh [--base | --tree DIR] [--arch ARCH] [--config FILE] BUILD_NAME FRAGMENT... [-- MAKE_TARGET...]
# The .config is tinyconfig (or FILE, a whole configuration such as a
# distribution's: scripts/distro-config.sh) + the fragments; it is
# regenerated only when one of them or a Kconfig file changes, and every
# option a fragment asks for
# must survive olddefconfig (with KCONFIG_LENIENT=1, options this tree's
# Kconfig does not know yet are let go: a series commit before they exist).
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

tree=$LINUX_TREE arch=() cross='' start=''
while :; do
	case $1 in
	--base) ensure_base_tree; tree=$LINUX_BASE_TREE ;;
	--tree) tree=$2; shift ;;
	--arch) case $2 in
		arm64) cross=aarch64-linux-gnu-
		       arch=(ARCH=arm64 CROSS_COMPILE=$cross) ;;
		i386)  arch=(ARCH=i386) ;;
		*)     die "kernel: only arm64 (cross) and i386 are known targets" ;;
		esac
		shift ;;
	--config) start=$(readlink -f "$2"); shift ;;
	*) break ;;
	esac
	shift
done
name=$1; shift
frags=() targets=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do frags+=("$(readlink -f "$1")"); shift; done
[ $# -gt 0 ] && shift && targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(bzImage)

out=$KBUILD_DIR/$name
mkdir -p "$out"
kmake=(make -C "$tree" O="$out" LOCALVERSION= -j"$(nproc)" -s ${arch[@]+"${arch[@]}"})

# Print each option of the fragments that the final .config does not honour.
config_mismatches() {
	local config=$1 line sym got; shift
	grep -hE '^(CONFIG_[A-Z0-9_]+=|# CONFIG_[A-Z0-9_]+ is not set)' "$@" |
	while read -r line; do
		sym=${line#\# }; sym=${sym%% *}; sym=${sym%%=*}
		got=$(grep -E "^$sym=" "$config" || true)
		case $line in
		*=n|'# '*) [ -z "$got" ] || echo "  $sym: wanted n, got $got" ;;
		*)	   [ "$got" = "$line" ] ||
			   { [ "${KCONFIG_LENIENT:-0}" = 1 ] && [ -z "$got" ] &&
			     ! grep -rqs "^config ${sym#CONFIG_}\$" --include='Kconfig*' "$tree"; } ||
			   echo "  $line: got ${got:-unset}" ;;
		esac
	done
}

key=$( { echo "${arch[*]}"; cat ${start:+"$start"} "${frags[@]}"; git -C "$tree" ls-tree -r HEAD |
	 grep -E '/Kconfig[^/]*$|	Kconfig$'; } | sha256sum | cut -c1-16)
if [ "$(cat "$out/.config-key" 2>/dev/null)" != "$key" ] || [ ! -f "$out/.config" ]; then
	step "configure $name: ${start:-tinyconfig} + ${frags[*]##*/}"
	if [ -n "$start" ]; then
		cp "$start" "$out/.config"
	else
		"${kmake[@]}" tinyconfig >/dev/null
	fi
	"$tree/scripts/kconfig/merge_config.sh" -m -O "$out" \
		"$out/.config" "${frags[@]}" >/dev/null
	"${kmake[@]}" olddefconfig >/dev/null
	bad=$(config_mismatches "$out/.config" "${frags[@]}")
	[ -z "$bad" ] || { rm -f "$out/.config-key"; die "config $name does not honour the fragments (a dependency is missing?):
$bad"; }
	echo "$key" > "$out/.config-key"
fi

step "build $name: ${targets[*]} (under the CPU lock)"
export CCACHE_DIR=$FPB_CACHE/ccache CCACHE_BASEDIR=$tree
export KBUILD_BUILD_TIMESTAMP="2000-01-01" KBUILD_BUILD_USER=fpb KBUILD_BUILD_HOST=fpb
flock "$FPB_CPU_LOCK" "${kmake[@]}" CC="ccache ${cross}gcc" "${targets[@]}" ||
	die "kernel build $name failed: make ${targets[*]} in $out (errors above)"

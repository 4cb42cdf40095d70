#!/usr/bin/env bash
# shellcheck disable=SC2034  # the bench_* variables are for the sourcing script
# Sourced by the benchmarks: the guest kernels they build and compare; run
# as a script, it builds one (make kernel-distro: FPB_BENCH_KERNEL=distro
# bench/kernels.sh on bzImage modules).
# FPB_BENCH_KERNEL=tiny (the default): tinyconfig + configs/guest.config,
# the kernel every test boots; =distro: Debian's cloud-amd64 configuration
# as shipped, its modules left out (scripts/distro-config.sh), +
# configs/distro.config.  Three builds of each: base (unpatched), off
# (ours, CONFIG_FREE_PAGE_BITMAP=n) and on (ours, the feature built in),
# named in $bench_names; the benchmarks that boot them run the kinds in
# $bench_compared; results files end in $bench_suffix.
#   bench_kernel base|off|on [MAKE_TARGET...]
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -euo pipefail
	. "$(dirname "$(readlink -f "$0")")/../scripts/lib.sh"
fi

case ${FPB_BENCH_KERNEL:-tiny} in
tiny)	bench_suffix='' bench_what="tinyconfig + configs/guest.config"
	bench_start=() bench_frags=("$FPB_REPO/configs/guest.config")
	bench_feature=("$FPB_REPO/configs/feature.config")
	declare -gA bench_names=([base]=base [off]=guest-off [on]=guest)
	bench_compared=(base on) ;;
distro)	bench_suffix=-distro
	bench_what="Debian's linux-image-${LINUX_DEB_VERSION%%-*}+deb12-cloud-amd64 config, modules left out, + configs/distro.config"
	bench_start=(--config "$("$FPB_REPO/scripts/distro-config.sh")")
	bench_frags=("$FPB_REPO/configs/distro.config")
	bench_feature=("$FPB_REPO/configs/distro-feature.config")
	declare -gA bench_names=([base]=distro-base [off]=distro-off [on]=distro)
	# no unpatched build to run: hook-disasm compares off with unpatched
	# in mm/page_alloc.o, and a second full build costs ~45 min here
	bench_compared=(on) ;;
*)	die "bench: FPB_BENCH_KERNEL is tiny or distro, not '$FPB_BENCH_KERNEL'" ;;
esac

bench_kernel() {
	local kind=$1 args=(); shift
	case $kind in
	base) args=(--base "${bench_start[@]}" "${bench_names[base]}" "${bench_frags[@]}") ;;
	off)  args=("${bench_start[@]}" "${bench_names[off]}" "${bench_frags[@]}") ;;
	on)   args=("${bench_start[@]}" "${bench_names[on]}" "${bench_frags[@]}" "${bench_feature[@]}") ;;
	esac
	"$FPB_REPO/scripts/kernel.sh" "${args[@]}" -- "$@"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	bench_kernel "$@"
fi

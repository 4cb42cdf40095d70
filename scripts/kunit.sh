#!/usr/bin/env bash
# Run KUnit suites with the kernel's own kunit.py on an SMP x86_64 QEMU
# guest (TCG).  Arguments are .kunitconfig files or directories holding
# one; configs/kunit.config is added to them.  Each --boot 'ARGS:GLOB'
# boots the same kernel once more with kernel arguments ARGS and runs the
# suites matching GLOB (for cases that need a boot-time setting).
# Every boot has panic_on_warn=1: a WARN (in the allocator's hot path,
# say) crashes the run instead of scrolling by in a passing log.  Builds
# and boots run under the CPU lock.
#   kunit.sh KUNITCONFIG... [--boot 'ARGS:GLOB']...
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

args=() boots=() filter=()
while [ $# -gt 0 ]; do
	case $1 in
	--boot) boots+=("$2"); shift ;;
	--filter) filter=("$2"); shift ;;
	*) [ -e "$1" ] || die "kunit: $1 does not exist"
	   args+=(--kunitconfig="$(readlink -f "$1")") ;;
	esac
	shift
done
[ ${#args[@]} -gt 0 ] || die "kunit: no .kunitconfig given"
args+=(--kunitconfig="$FPB_REPO/configs/kunit.config")
# Two NUMA nodes, the second with memory and no CPU (kunit.py gives the
# guest 1024 MiB): the free page bitmap's offline-node case needs one.
numa="-object memory-backend-ram,id=mem0,size=768M -numa node,nodeid=0,cpus=0-1,memdev=mem0
	-object memory-backend-ram,id=mem1,size=256M -numa node,nodeid=1,memdev=mem1"
common=(--build_dir="$KBUILD_DIR/kunit" --arch=x86_64
	--kernel_args=panic_on_warn=1 --kernel_args=panic=-1
	--qemu_args="-smp 2 -accel tcg $numa" --timeout="$(scaled 900)")

export CCACHE_DIR=$FPB_CACHE/ccache CCACHE_BASEDIR=$LINUX_TREE
cd "$LINUX_TREE"
# The python3 on PATH may be a separate install; kunit.py needs only the
# standard library, Debian's is fine.
flock "$FPB_CPU_LOCK" /usr/bin/python3 tools/testing/kunit/kunit.py run "${args[@]}" "${common[@]}" \
	--jobs="$(nproc)" --make_options="CC=ccache gcc" --make_options=LOCALVERSION= \
	${filter[@]+"${filter[@]}"}
[ ${#filter[@]} -eq 0 ] || exit 0
for b in ${boots[@]+"${boots[@]}"}; do
	step "kunit: boot again with '${b%%:*}', suites ${b#*:}"
	flock "$FPB_CPU_LOCK" /usr/bin/python3 tools/testing/kunit/kunit.py exec "${common[@]}" \
		--kernel_args="${b%%:*}" "${b#*:}"
done

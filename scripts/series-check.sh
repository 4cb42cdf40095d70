#!/usr/bin/env bash
# Review gates on the exported series, one TAP line per check:
#   - it exports (applies in order, uses everything once, ends at the tree);
#   - checkpatch.pl --strict on every patch (patches/linux/checkpatch-exceptions);
#   - the kernel builds at every commit, with no sparse or W=1 warning in
#     the C files the commit adds or touches that the base does not have;
#   - get_maintainer.pl names our entry for each of our files;
#   - at the tip, CONFIG_FREE_PAGE_BITMAP=n builds and leaves no trace in
#     vmlinux, the feature builds for arm64 with Debian's cross gcc, and
#     our files build for i386 (32-bit unsigned long) with CONFIG_WERROR.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

work=$FPB_CACHE/series-tree
out=$FPB_CACHE/series
guest=$FPB_REPO/configs/guest.config feature=$FPB_REPO/configs/feature.config

echo "TAP version 13"
run_check "series exports: applies in order, uses every patch and file once, ends at the assembled tree" \
	bash -c '"$0" >/dev/null' "$FPB_REPO/scripts/series.sh"
[ "$failed" = 0 ] || { echo "1..$n"; exit 1; }

checkpatch_cmd
for p in "$out"/0*.patch; do
	case $p in *cover-letter*) continue ;; esac
	run_check "checkpatch --strict $(basename "$p")" "${checkpatch[@]}" "$p"
done

# Every commit, oldest first, in the series worktree (each checkout rewrites
# only what the commit changes, so every build after the first is small).
# A file the series renames is compared with its warnings in the base
# under its old name.
declare -A was
while read -r _ from to; do
	was[$to]=$from
done < <(git -C "$work" diff -M --name-status --diff-filter=R base HEAD)
# A commit's results depend on its tree and on everything below; with all
# of it unchanged, the checks that passed are replayed instead of rebuilt
# (a failure is never recorded: it always runs again, with its output).
stamps=$FPB_CACHE/series-stamps
mkdir -p "$stamps"
recipe=$({ cat "$guest" "$feature" "$FPB_REPO/scripts/kernel.sh" "$FPB_REPO/scripts/lib.sh" "$0"
	   git -C "$work" rev-parse 'base^{tree}'
	   git -C "$work" diff -M --name-status --diff-filter=R base HEAD
	   gcc --version; sparse --version 2>&1; } | sha256sum | cut -c1-16)

# check_commit COMMIT SUBJECT: build it, then sparse and W=1 on its C files.
check_commit() {
	local c=$1 subject=$2 f new old orig
	# the base's build, for its warnings: only once a commit is checked
	[ -n "$base_ready" ] || "$FPB_REPO/scripts/kernel.sh" --base base "$guest" -- prepare >/dev/null
	base_ready=1
	git -C "$work" checkout -q --detach "$c"
	run_check "builds at: $subject" bash -c 'KCONFIG_LENIENT=1 "$@" >/dev/null' - \
		"$FPB_REPO/scripts/kernel.sh" --tree "$work" series "$guest" "$feature" -- bzImage
	for f in $(git -C "$work" diff-tree --no-commit-id --name-only -r "$c" -- '*.c'); do
		case $f in tools/*) continue ;; esac
		[ -f "$work/$f" ] || continue	# the commit deletes it
		[ -f "$KBUILD_DIR/series/${f%.c}.o" ] ||
			{ tap 0 "sparse and W=1 at $subject: $f # SKIP not built by the guest config"; continue; }
		new=$(warnings "$work" "$KBUILD_DIR/series" "${f%.c}.o")
		orig=${was[$f]:-$f}
		if [ -n "$new" ] && git -C "$work" cat-file -e "base:$orig" 2>/dev/null; then
			old=$(warnings "$LINUX_BASE_TREE" "$KBUILD_DIR/base" "${orig%.c}.o" |
			      sed "s|$orig|$f|g")
			new=$(comm -23 <(printf '%s\n' "$new") <(printf '%s\n' "$old"))
		fi
		[ -z "$new" ] && tap 0 "sparse and W=1 at $subject: $f" ||
			tap 1 "sparse and W=1 at $subject: $f" "$new"
	done
}

replayed=0 base_ready=
for c in $(git -C "$work" rev-list --reverse base..HEAD); do
	subject=$(git -C "$work" log -1 --format=%s "$c")
	stamp=$stamps/$(git -C "$work" rev-parse "$c^{tree}")-$recipe
	if [ -f "$stamp" ]; then
		while IFS= read -r name; do tap 0 "$name"; done < "$stamp"
		replayed=$((replayed + 1))
		continue
	fi
	before=$failed
	check_commit "$c" "$subject" > "$stamp.tmp"
	cat "$stamp.tmp"
	if [ "$failed" = "$before" ]; then
		sed -En 's/^ok [0-9]+ //p' "$stamp.tmp" > "$stamp"
	fi
	rm -f "$stamp.tmp"
done
[ "$replayed" = 0 ] || echo "# $replayed commits unchanged since their last build: results replayed ($stamps)"

email=$(sed -n '/^M:.*<.*>/{s/^M:.*<\(.*\)>.*/\1/p;q}' "$FPB_REPO/MAINTAINERS")
# shellcheck disable=SC2086
for f in $(cd "$FPB_REPO" && git ls-files --cached --others --exclude-standard -- $KERNEL_PATHS); do
	got=$(cd "$LINUX_TREE" && scripts/get_maintainer.pl --no-git --no-git-fallback -f "$f" 2>&1)
	grep -qF "$email" <<< "$got" && tap 0 "get_maintainer.pl names our entry for $f" ||
		tap 1 "get_maintainer.pl names our entry for $f" "$got"
done

before=$failed
run_check "tip builds with CONFIG_FREE_PAGE_BITMAP=n" \
	bash -c '"$0" guest-off "$1" -- bzImage >/dev/null' "$FPB_REPO/scripts/kernel.sh" "$guest"
if [ "$failed" = "$before" ]; then
	trace=$(nm "$KBUILD_DIR/guest-off/vmlinux" | grep -i free_page_bitmap || true)
else
	trace="no vmlinux: the build above failed"
fi
[ -z "$trace" ] && tap 0 "CONFIG_FREE_PAGE_BITMAP=n leaves no free_page_bitmap symbol in vmlinux" ||
	tap 1 "CONFIG_FREE_PAGE_BITMAP=n leaves no free_page_bitmap symbol in vmlinux" "$trace"

# The balloon must not trip over a feature it cannot offer: boot the =n
# kernel on our QEMU with a balloon that offers the bitmap.
initrd=$FPB_CACHE/initramfs-boot.cpio.gz
[ -f "$initrd" ] || "$FPB_REPO/scripts/initramfs.sh" "$initrd" >/dev/null
run_check "CONFIG_FREE_PAGE_BITMAP=n boots and binds a balloon that offers the bitmap" \
	bash -c 'QEMU=$0 "$1" --kernel "$2" --initrd "$3" --run boot --balloon ,x-free-page-bitmap=on \
		--timeout 120 --log "$4" -- -L /usr/share/seabios -L /usr/share/qemu >/dev/null' \
	"$FPB_CACHE/build/qemu/qemu-system-x86_64" "$FPB_REPO/scripts/boot.sh" \
	"$KBUILD_DIR/guest-off/arch/x86/boot/bzImage" "$initrd" "$FPB_CACHE/logs/series-off-boot.log"

run_check "tip builds for arm64 (aarch64-linux-gnu-gcc) with the feature and W=1 clean on our files" \
	bash -c '"$0" --arch arm64 arm64 "$1" "$2" -- Image >/dev/null &&
		 cd "$3" && for f in mm/free_page_bitmap.o mm/free_page_bitmap_sysfs.o \
				 drivers/virtio/virtio_balloon_fpb.o drivers/virtio/virtio_balloon_fpb_kunit.o; do
			make -s -C "$4" O="$5" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- LOCALVERSION= W=1 "$f" 2>&1 |
				grep -E "warning:|error:" || true; done' \
	"$FPB_REPO/scripts/kernel.sh" "$FPB_REPO/configs/arm64.config" "$feature" "$LINUX_TREE" \
	"$LINUX_TREE" "$KBUILD_DIR/arm64"
# 32-bit: unsigned long is 32 bits wide and CONFIG_WERROR makes every
# truncated constant an error; only our objects, not a whole kernel.
# The balloon is a module there (configs/i386.config).
fpb_objs="mm/free_page_bitmap.o mm/free_page_bitmap_sysfs.o drivers/virtio/virtio_balloon_fpb.o drivers/virtio/virtio_balloon_fpb_kunit.o"
run_check "our files build for i386 with CONFIG_WERROR, W=1 clean" \
	bash -c '"$0" --arch i386 i386 "$1" -- $2 >/dev/null &&
		 cd "$3" && for f in $2; do
			make -s -C "$3" O="$4" ARCH=i386 LOCALVERSION= W=1 "$f" 2>&1 |
				grep -E "warning:|error:" || true; done' \
	"$FPB_REPO/scripts/kernel.sh" "$FPB_REPO/configs/i386.config" "$fpb_objs" \
	"$LINUX_TREE" "$KBUILD_DIR/i386"
# The driver is part of virtio_balloon.ko: linked into it, exporting
# exactly what EXPORT_SYMBOL_IF_KUNIT() gives its KUnit module (6.12
# marks an export with an __export_symbol_NAME symbol; "exactly", so
# that a change in how exports look fails here instead of passing).
balloon=$KBUILD_DIR/i386/drivers/virtio/virtio_balloon.o
run_check "the free page bitmap is linked into virtio_balloon.ko and exports only to KUnit" \
	bash -c '"$0" --arch i386 i386 "$1" -- drivers/virtio/virtio_balloon.o >/dev/null || exit
		 syms=$(nm "$2") || exit
		 grep -q " T virtio_balloon_fpb_start$" <<< "$syms" ||
			 echo "virtio_balloon.o does not define virtio_balloon_fpb_start"
		 kunit=$(sed -n "s/^EXPORT_SYMBOL_IF_KUNIT(\\(.*\\));$/\\1/p" "$3" | sort)
		 exported=$(sed -n "s/.* __export_symbol_//p" <<< "$syms" | sort)
		 diff <(echo "$kunit") <(echo "$exported") | sed -n "s/^[<>] /export differs: /p"' \
	"$FPB_REPO/scripts/kernel.sh" "$FPB_REPO/configs/i386.config" "$balloon" \
	"$FPB_REPO/drivers/virtio/virtio_balloon_fpb.c"
echo "1..$n"
[ "$failed" = 0 ]

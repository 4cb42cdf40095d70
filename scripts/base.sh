#!/usr/bin/env bash
# Turn Debian's pinned linux-source tarball into a git repository whose
# first commit, tagged "base", is the pristine tree.  Runs once per pin.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"

want="$LINUX_DEB_VERSION"
if [ -f "$LINUX_TREE/.git/fpb-base" ] &&
   [ "$(cat "$LINUX_TREE/.git/fpb-base")" = "$want" ]; then
	exit 0
fi

[ -f "$LINUX_TARBALL" ] ||
	die "$LINUX_TARBALL missing: run scripts/setup.sh (make setup)"
have=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || true)
[ "$have" = "$want" ] ||
	die "linux-source-6.12 is $have, pinned $want: run make setup"

step "extract $LINUX_TARBALL"
tmp=$FPB_CACHE/linux.tmp
rm -rf "$tmp" && mkdir -p "$tmp"
tar -xf "$LINUX_TARBALL" -C "$tmp" --no-same-owner --strip-components=1 ||
	die "cannot extract $LINUX_TARBALL"
sub=$(sed -n 's/^SUBLEVEL = //p' "$tmp/Makefile")
[ "$sub" = "$LINUX_SUBLEVEL" ] ||
	die "tarball has SUBLEVEL $sub, pinned $LINUX_SUBLEVEL (scripts/lib.sh)"

# Debian's top-level .gitignore ignores everything at the top level (its
# packaging repository holds only debian/); without that block git sees
# new files like upstream does.
sed -i '/^# Debian packaging: ignore everything/,$d' "$tmp/.gitignore"
sed -i '${/^#$/d}' "$tmp/.gitignore"

step "commit the base tree"
commit_base "$tmp" "base: Debian linux-source-6.12 $want" "$want"

rm -rf "$LINUX_TREE" "$LINUX_BASE_TREE" "$FPB_CACHE/series-tree" "$KBUILD_DIR"
mv "$tmp" "$LINUX_TREE"

# Shared settings and helpers, sourced by the scripts in this directory.
# shellcheck shell=bash

# Debian's tools first: the kernel's python helpers (checkpatch's
# spdxcheck.py, kunit.py) need Debian's python3 modules, and a python3
# installed elsewhere may come first on PATH.
export PATH=/usr/bin:/bin:$PATH

# Everything built or downloaded lives here, outside the clone.
FPB_CACHE=${FPB_CACHE:-/var/cache/free-page-bitmap}
FPB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# The pinned base kernel: Debian's linux-source-6.12 package.
LINUX_DEB_VERSION=6.12.117-1~deb12u1
LINUX_SUBLEVEL=117
LINUX_TARBALL=/usr/src/linux-source-6.12.tar.xz

# The stock QEMU used for baselines and by kunit.py.
QEMU_DEB_VERSION=1:10.0.2+ds-2+deb13u1~bpo12+1

# PostgreSQL of the Debian guest (scripts/guest-image.sh), bookworm-security.
PG_DEB_VERSION=15.20-0+deb12u1

# The assembled kernel tree, the pristine base checked out beside it (for
# comparisons with an unpatched kernel) and the build directories.
LINUX_TREE=$FPB_CACHE/linux
LINUX_BASE_TREE=$FPB_CACHE/linux-base
KBUILD_DIR=$FPB_CACHE/build

# Heavy steps (kernel and QEMU builds, guests under TCG) hold this lock,
# so that two of them never share the machine's cores.
FPB_CPU_LOCK=/var/lock/fpb-cpu.lock

# Every fixed wall-clock timeout is multiplied by FPB_TIMEOUT_SCALE
# (default 1; e.g. 3 on a slow or busy machine).
FPB_TIMEOUT_SCALE=${FPB_TIMEOUT_SCALE:-1}
case $FPB_TIMEOUT_SCALE in
''|*[!0-9.]*|*.*.*|.) printf 'error: FPB_TIMEOUT_SCALE=%s is not a number\n' "$FPB_TIMEOUT_SCALE" >&2
		      exit 1 ;;
esac
export FPB_TIMEOUT_SCALE
# scaled SECONDS: SECONDS * FPB_TIMEOUT_SCALE, rounded up to whole seconds.
scaled() {
	awk -v s="$1" -v f="$FPB_TIMEOUT_SCALE" \
		'BEGIN { t = s * f; printf "%d\n", (t == int(t)) ? t : int(t) + 1 }'
}

# without_kvm COMMAND...: run COMMAND with /dev/kvm hidden (/dev/null
# bound over it in a mount namespace of its own).  On machines whose
# /dev/kvm has no hardware virtualisation behind it (kvm-pvm here,
# BUILD-FACTS.md), QEMU's qtests that try KVM first pick it and hang
# (migration-test's dirty-ring case); with it hidden they run on TCG.
without_kvm() {
	if [ -e /dev/kvm ]; then
		unshare -m sh -c 'mount --bind /dev/null /dev/kvm && exec "$@"' sh "$@"
	else
		"$@"
	fi
}

# Paths in this repository that are copied into the kernel tree, and
# the paths under qemu/ that are copied into the QEMU tree.
KERNEL_PATHS="mm include drivers Documentation tools/testing/selftests"
QEMU_PATHS="migration include hw tests/qtest tests/unit docs"

# QEMU's free page bitmap core and its unit test built outside QEMU's
# build (tests/qemu: sanitizers, the order mutation, the fuzz seeds, benchmark):
# the include flags (our osdep.h shim first; migration/ for the order
# mutation's copy of the core, which includes its header by bare name) in
# QEMU_CORE_INCLUDES, glib's compile and link flags in GLIB_FLAGS.
qemu_core_flags() {
	local tree=$FPB_CACHE/qemu
	QEMU_CORE_INCLUDES=(-I"$FPB_REPO/tests/qemu/shim" -I"$tree/include" -I"$tree"
			    -I"$tree/migration" -I"$tree/tests/unit")
	read -ra GLIB_FLAGS <<< "$(pkg-config --cflags --libs glib-2.0)"
}

# qemu_worktree DIR: make DIR a worktree of the assembled QEMU tree,
# checked out (when new) at its local build commit, the last one before
# our patches; prints that commit.
qemu_worktree() {
	local tree=$FPB_CACHE/qemu dir=$1 base
	[ -d "$tree/.git" ] || die "$tree is not assembled: run make qemu first"
	base=$(git -C "$tree" log --format=%H --grep='^local: build adjustments' -1 HEAD)
	[ -n "$base" ] || die "$tree has no local build commit: run make qemu"
	if [ "$(git -C "$dir" rev-parse --git-common-dir 2>/dev/null)" != "$tree/.git" ]; then
		rm -rf "$dir"
		git -C "$tree" worktree prune
		git -C "$tree" worktree add -q --detach "$dir" "$base" || die "cannot check out $dir"
	fi
	echo "$base"
}

# A worktree of LINUX_TREE at DIR, checked out at base; one left half-made
# or from an older LINUX_TREE is made again.
ensure_worktree() {
	local dir=$1
	if [ "$(git -C "$dir" rev-parse --git-common-dir 2>/dev/null)" != "$LINUX_TREE/.git" ] ||
	   ! git -C "$dir" diff --quiet HEAD 2>/dev/null; then
		rm -rf "$dir"
		git -C "$LINUX_TREE" worktree prune
		git -C "$LINUX_TREE" worktree add -q --detach "$dir" base ||
			die "cannot check out $dir"
	fi
}

# Check out the unpatched base tree at LINUX_BASE_TREE.
ensure_base_tree() {
	ensure_worktree "$LINUX_BASE_TREE"
}

# TAP output for the gate scripts: tap STATUS NAME [DETAILS]; the counts
# are in $n and $failed.
n=0 failed=0
tap() {
	n=$((n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $n $2"
	else
		echo "not ok $n $2"; failed=$((failed + 1))
		[ -z "${3:-}" ] || printf '%s\n' "$3" | sed -n '1,40s/^/# /p'
	fi
}
# run_check NAME CMD...: ok iff CMD succeeds and prints nothing.
run_check() {
	local name=$1 out rc=0; shift
	out=$("$@" 2>&1) || rc=$?
	[ -z "$out" ] || [ $rc -ne 0 ] || rc=1
	tap $rc "$name" "$out"
}

# warnings TREE BUILD_DIR OBJ: rebuild OBJ with sparse (C=2) and W=1 and
# print its warnings, without the tree prefix and line numbers, sorted.
warnings() {
	local out rc=0
	touch "$1/${3%.o}.c"
	out=$(make -C "$1" O="$2" LOCALVERSION= -s C=2 W=1 "$3" 2>&1) || rc=$?
	[ "$rc" = 0 ] || echo "error: make $3 failed (exit $rc)"
	grep -E 'warning:|error:' <<< "$out" | sed -E "s|$1/||; s/:[0-9]+(:[0-9]+)?:/:/" | sort || true
}

# checkpatch.pl --strict as every gate runs it, minus the justified
# exceptions listed in patches/linux/checkpatch-exceptions.
checkpatch_cmd() {
	local ignore
	ignore=$(grep -v '^\s*\(#\|$\)' "$FPB_REPO/patches/linux/checkpatch-exceptions" 2>/dev/null |
		 paste -sd, || true)
	checkpatch=("$LINUX_TREE/scripts/checkpatch.pl" --strict --quiet --no-summary
		    ${ignore:+--ignore "$ignore"})
}

step() { printf '==> %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A script that stops on an error (set -e) says where and on what, never
# just "Error 141" from make: the script, the line, the command and its
# exit status (141 is SIGPIPE, 124 a timeout).
if [[ $- == *e* ]]; then
	set -o errtrace
	# shellcheck disable=SC2154 # _fpb_rc is set by the trap itself
	trap '_fpb_rc=$?; [[ $- != *e* ]] ||
	      echo "error: ${BASH_SOURCE[0]##*/}:$LINENO: \"$BASH_COMMAND\" failed (exit $_fpb_rc)" >&2' ERR
fi

# "Name <email>" for sign-offs, from git's configuration.
author() {
	local name email
	name=$(git -C "$FPB_REPO" config user.name || true)
	email=$(git -C "$FPB_REPO" config user.email || true)
	echo "${name:-Free page bitmap developers} <${email:-fpb@localhost}>"
}

# commit_base DIR MESSAGE VERSION: all of DIR becomes a new repository's
# first commit, tagged base; VERSION is recorded in .git/fpb-base.
commit_base() {
	git -C "$1" init -q -b main
	# No background gc competing with the first build.
	git -C "$1" config gc.auto 0
	git -C "$1" add -f -A
	git -C "$1" -c user.name=base -c user.email=base@localhost commit -q -m "$2"
	git -C "$1" tag base
	echo "$3" > "$1/.git/fpb-base"
}

# commit_series SERIES HEAD: in the current repository and index, apply
# each patch SERIES names (files beside it) as one commit on HEAD, titled
# by its subject and "patch: NAME" in the body; print the last commit.
commit_series() {
	local series=$1 head=$2 p f subject
	while read -r p _; do
		case $p in ''|'#'*) continue ;; esac
		f=$(dirname "$series")/$p
		[ -f "$f" ] || die "$series names $p, which does not exist"
		git apply --cached --whitespace=nowarn "$f" ||
			die "patch $p does not apply (after the patches above it in $series)"
		subject=$(sed -n '/^Subject: /{s/^Subject: \(\[[^]]*\] \)\?//p;q}' "$f")
		head=$(git commit-tree "$(git write-tree)" -p "$head" \
			-m "${subject:-$p}" -m "patch: $p")
	done < "$series"
	echo "$head"
}

# commit_files SRC HEAD [PATH...]: in the current repository and index,
# add every file of this repository's SRC directory under the PATHs
# (untracked ones too, so that a new file is tried before it is
# committed) at its own path, as one commit "our files" on HEAD; print
# that commit, or HEAD when there is no file.  A file the base already has
# must be changed with a patch instead.
commit_files() {
	local src=$1 head=$2 files f mode; shift 2
	# (this repository's own index, not the one being committed)
	files=$(cd "$FPB_REPO/$src" &&
		env -u GIT_INDEX_FILE git ls-files --cached --others --exclude-standard -- "$@")
	[ -n "$files" ] || { echo "$head"; return; }
	while read -r f; do
		git cat-file -e "base:$f" 2>/dev/null &&
			die "$f exists upstream: change it with a patch, not a file of $src"
		[ -x "$FPB_REPO/$src/$f" ] && mode=100755 || mode=100644
		printf '%s %s\t%s\n' "$mode" "$(git hash-object -w "$FPB_REPO/$src/$f")" "$f"
	done <<< "$files" | git update-index --add --index-info || exit 1
	git commit-tree "$(git write-tree)" -p "$head" -m "our files"
}

# fill_cover_letter LETTER TEMPLATE: put TEMPLATE's first paragraph in
# format-patch's cover LETTER as its subject and the rest as its blurb,
# with each @include NAME@ replaced by bench/results/NAME.
fill_cover_letter() {
	python3 - "$1" "$2" "$FPB_REPO/bench/results" <<'PY'
import sys, os, re
cover, template, results = sys.argv[1:]
text = open(template).read()
for name in re.findall(r"@include ([\w.-]+)@", text):
    path = os.path.join(results, name)
    body = open(path).read().strip() if os.path.exists(path) else "(not measured yet: %s)" % name
    text = text.replace("@include %s@" % name, body)
subject, _, body = text.partition("\n\n")
letter = open(cover).read()
letter = letter.replace("*** SUBJECT HERE ***", subject.strip())
letter = letter.replace("*** BLURB HERE ***", body.strip())
open(cover, "w").write(letter)
PY
}

# for_each_stanza MANIFEST FN: call FN PATCH FILE... for each stanza of a
# series manifest ("patch: NAME" and the "file: PATH" lines after it).
for_each_stanza() {
	local manifest=$1 fn=$2 key value patch='' files=()
	while read -r key value; do
		case $key in
		''|'#'*) continue ;;
		patch:)
			[ -z "$patch" ] || "$fn" "$patch" ${files[@]+"${files[@]}"}
			patch=$value files=() ;;
		file:) files+=("$value") ;;
		*) die "$manifest: '$key $value' is neither patch: nor file:" ;;
		esac
	done < "$manifest"
	[ -z "$patch" ] || "$fn" "$patch" ${files[@]+"${files[@]}"}
}

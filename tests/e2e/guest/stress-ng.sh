#!/bin/sh
# Run Debian's stress-ng (copied with its libraries into /stressng by
# tests/e2e/build.sh, started through their own loader) with the given
# arguments.  Its own lines ("stress-ng: info: ...") go where ours go;
# its exit status follows as "fpb-sng: exit N".
dir=/stressng
"$dir/ld-linux-x86-64.so.2" --library-path "$dir" "$dir/stress-ng" "$@"
echo "fpb-sng: exit $?"

#!/bin/sh
# Run Debian's stress-ng (copied with its libraries beside this script,
# into /stressng by tests/e2e/build.sh or /peer by tests/peer/mm.sh,
# started through their own loader) with the given arguments.  Its own
# lines ("stress-ng: info: ...") go where ours go; its exit status follows
# as "fpb-sng: exit N", and is this script's.
dir=$(cd "$(dirname "$0")" && pwd)
"$dir/ld-linux-x86-64.so.2" --library-path "$dir" "$dir/stress-ng" "$@"
rc=$?
echo "fpb-sng: exit $rc"
exit $rc

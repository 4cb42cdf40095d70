#!/usr/bin/env bash
# Entry point of the end-to-end migrations: build the workloads and the
# initramfs, then run tests/e2e/e2e.py (test | list | run NAME) or
# tests/e2e/bench.py with the remaining arguments.
#   run.sh test [NAME...] | run.sh run NAME [--mode M] | run.sh bench [...] | run.sh report | run.sh classify | run.sh granule | run.sh demo
#   run.sh bench-postcopy [...] | run.sh bench-real [...]
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/../../scripts/lib.sh"

"$FPB_REPO/tests/e2e/build.sh"
export PYTHONDONTWRITEBYTECODE=1
case ${1:-} in
bench|demo|report|classify|granule) exec /usr/bin/python3 "$FPB_REPO/tests/e2e/bench.py" "$@" ;;
bench-postcopy) shift; exec /usr/bin/python3 "$FPB_REPO/tests/e2e/postcopy_bench.py" "$@" ;;
bench-real) shift; exec /usr/bin/python3 "$FPB_REPO/tests/e2e/real_bench.py" "$@" ;;
*) exec /usr/bin/python3 "$FPB_REPO/tests/e2e/e2e.py" "$@" ;;
esac

# Test suites no one here wrote, in full; included by the Makefile.
#   make peer-tests  QEMU's migration-test --full against our QEMU, TAP,
#                    -> bench/results/peer-tests.md (not in make check,
#                    which runs the quick subsets)

.PHONY: peer-tests

peer-tests: qemu
	@tests/peer/run.sh

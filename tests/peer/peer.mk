# Test suites no one here wrote, in full; included by the Makefile.
#   make peer-tests  both below, with a summary line, -> bench/results/peer-tests.md
#   make peer-qemu   QEMU's migration-test --full against our QEMU
#   make peer-mm     the kernel's mm selftests in an SMP, two-node guest
#                    with tracking on (tests/peer/mm.sh)
#   make kernel-peer the guest kernel with configs/peer.config (DEBUG_VM)
# Not in make check, which runs quick subsets of them.

PEER_CONFIGS := $(GUEST_CONFIGS) configs/peer.config

.PHONY: peer-tests peer-qemu peer-mm kernel-peer

peer-tests: setup
	@scripts/check.sh peer-qemu peer-mm

peer-qemu: qemu
	@tests/peer/migration-test.sh

peer-mm: kernel kernel-peer qemu
	@tests/peer/mm.sh

kernel-peer: assemble
	@scripts/kernel.sh peer $(PEER_CONFIGS)

# make check's subset, about 3 min: the programs most likely to reach
# hooks the other tests do not (compaction, migration between nodes,
# memory hotplug), at granule 0 only.
PEER_MM_QUICK := compaction_test migration mem-on-off-test.sh

.PHONY: peer-mm-quick
peer-mm-quick: kernel kernel-peer qemu
	@tests/peer/mm.sh --quick $(PEER_MM_QUICK)

CHECKS += peer-mm-quick

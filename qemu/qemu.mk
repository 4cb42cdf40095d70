# QEMU side of the free page bitmap (issue 5); included by the Makefile.
#   make qemu        fetch Debian's QEMU source, apply qemu/patches, build
#   make qemu-check  filter core tests, fuzzer, checkpatch, qtests (TAP)
#   make qemu-fuzz   the validator fuzzer alone (FUZZ_SECONDS, default 60)
#   make bench-qemu  filter cost per sync per GiB, up to 1 TiB simulated

.PHONY: qemu qemu-check qemu-fuzz bench-qemu

qemu: setup
	@scripts/qemu.sh

qemu-check: qemu
	@qemu/tests/check.sh

qemu-fuzz: setup
	@qemu/tests/fuzz.sh $(or $(FUZZ_SECONDS),60)

bench-qemu: setup
	@qemu/tests/bench.sh

CHECKS += qemu-check

# QEMU side of the free page bitmap (issue 5); included by the Makefile.
#   make qemu        fetch Debian's QEMU source, apply qemu/patches, build
#   make qemu-check  filter core tests, checkpatch, qtests (TAP)
#   make qemu-fuzz   QEMU's fuzz target virtio-balloon-fpb in a clang
#                    sanitizer build of its own (FUZZ_SECONDS, default 60);
#                    not part of make check
#   make bench-qemu  filter cost per sync per GiB, up to 1 TiB simulated

.PHONY: qemu qemu-check qemu-fuzz bench-qemu

qemu: setup
	@scripts/qemu.sh

qemu-check: qemu
	@tests/qemu/check.sh

qemu-fuzz: setup
	@scripts/qemu.sh --tree-only
	@tests/qemu/fuzz.sh $(or $(FUZZ_SECONDS),60)

bench-qemu: setup
	@tests/qemu/bench.sh

CHECKS += qemu-check

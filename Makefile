# SPDX-License-Identifier: GPL-2.0
#
# Free page bitmap: build, boot and test the patchset on Debian's pinned
# linux-source-6.12.  Everything built lives in $(FPB_CACHE), outside the
# clone.  `make help` lists the targets.

FPB_CACHE ?= /var/cache/free-page-bitmap
export FPB_CACHE

LINUX := $(FPB_CACHE)/linux
GUEST := $(FPB_CACHE)/build/guest
BZIMAGE := $(GUEST)/arch/x86/boot/bzImage
SELFTESTS_OUT := $(FPB_CACHE)/build/selftests
# Our QEMU (make qemu) and the firmware it takes from Debian's packages.
OUR_QEMU := $(FPB_CACHE)/build/qemu/qemu-system-x86_64
OUR_QEMU_FIRMWARE := -L /usr/share/seabios -L /usr/share/qemu

# Guest kernel configuration: tinyconfig plus these fragments.
GUEST_CONFIGS := configs/guest.config configs/feature.config
# KUnit suites run by `make kunit` (.kunitconfig files or their dirs),
# and extra boots of the same kernel as 'KERNEL_ARGS:SUITE_GLOB'.
KUNIT_CONFIGS := configs/kunit/free_page_bitmap.kunitconfig \
	configs/kunit/virtio_balloon_fpb.kunitconfig
KUNIT_BOOTS := init_on_free=1:free_page_bitmap_refusal \
	page_poison=1:free_page_bitmap_refusal
# mm selftests built statically and run in the guest by `make selftest`.
SELFTESTS := free_page_bitmap madv_populate

# What `make check` runs, in order.
CHECKS := lint kunit boot selftest series-check

.PHONY: help setup assemble refresh kernel kernel-distro boot kunit selftest lint \
	series series-check bench-mm bench-mm-distro bench-pf check demo clean distclean

help:
	@echo "make demo       the main job (build, migrate with and without the bitmap)"
	@echo "make check      every test; ends with 'N passed, N failed, N skipped'"
	@echo "make setup      install the pinned Debian packages (root, idempotent)"
	@echo "make assemble   base kernel + patches/linux + our files -> $(LINUX)"
	@echo "make refresh    edits made in $(LINUX) -> patches/linux and our files"
	@echo "make kernel     build the guest bzImage in $(GUEST)"
	@echo "make kernel-distro  the same on Debian's cloud-amd64 config (long; not in check)"
	@echo "make boot       boot the guest under QEMU/TCG and run its smoke test"
	@echo "make kunit      run the KUnit suites with kunit.py (x86_64, -smp 2)"
	@echo "make selftest   run the kselftests in the guest"
	@echo "make lint       checkpatch, kernel-doc, sparse and W=1 on our changes"
	@echo "make series     export the upstream series to $(FPB_CACHE)/series"
	@echo "make series-check  the series' gates: applies, checkpatch, builds at every patch"
	@echo "make qemu       build our QEMU (Debian's 10.0.2 + qemu/patches + qemu/)"
	@echo "make qemu-check the QEMU side's tests: filter core, series, qtests, guest smoke"
	@echo "make qemu-fuzz  QEMU's fuzz target for the bitmap, FUZZ_SECONDS (default 60);"
	@echo "                its own clang + ASan/UBSan build, not part of make check"
	@echo "make peer-tests suites no one here wrote, in full: QEMU's migration-test,"
	@echo "                the kernel's mm selftests (tests/peer/peer.mk; not in check)"
	@echo "make bench-mm   allocator cost (off/on/unpatched) and the hook disassembly,"
	@echo "                then bench-mm-distro: the same on Debian's config"
	@echo "make bench-pf   page_fault1/2: tracking on and free page reporting vs off"
	@echo "make bench-granule  free memory found and bytes sent at granule 0, 3 and 9"
	@echo "make clean      remove the build directories (keeps sources, ccache)"
	@echo "make distclean  remove $(FPB_CACHE) entirely"

setup:
	@scripts/setup.sh

assemble: setup
	@scripts/assemble.sh

refresh:
	@scripts/refresh.sh

# modules too: Module.symvers, for the test modules built against it
kernel: assemble
	@scripts/kernel.sh guest $(GUEST_CONFIGS) -- bzImage modules

$(FPB_CACHE)/initramfs-%.cpio.gz: FORCE
	@scripts/initramfs.sh $@ $(if $(filter selftest,$*),selftests=$(SELFTESTS_OUT))

boot: kernel $(FPB_CACHE)/initramfs-boot.cpio.gz
	@scripts/boot.sh --kernel $(BZIMAGE) --initrd $(FPB_CACHE)/initramfs-boot.cpio.gz \
		--run boot --log $(FPB_CACHE)/logs/boot-console.log

kunit: assemble
	@scripts/kunit.sh $(KUNIT_CONFIGS) $(addprefix --boot ,$(KUNIT_BOOTS))

# The selftests run on our QEMU, whose balloon offers the bitmap, with a
# cold-plugged DIMM left offline for the hotplug cases.  3 GiB puts 1 GiB
# above 4 GiB, so two zones (DMA32, Normal) are published as two ranges.
selftest: kernel qemu
	@scripts/selftests.sh $(SELFTESTS_OUT) $(SELFTESTS)
	@$(MAKE) --no-print-directory $(FPB_CACHE)/initramfs-selftest.cpio.gz
	@QEMU=$(OUR_QEMU) scripts/boot.sh --kernel $(BZIMAGE) \
		--initrd $(FPB_CACHE)/initramfs-selftest.cpio.gz \
		--run selftests --timeout 600 --log $(FPB_CACHE)/logs/selftest-console.log \
		--balloon ,x-free-page-bitmap=on \
		--mem 3G,slots=2,maxmem=4G --append memhp_default_state=offline \
		-- $(OUR_QEMU_FIRMWARE) \
		-object memory-backend-ram,id=dimm0,size=256M -device pc-dimm,id=dimm0,memdev=dimm0

lint: kernel
	@scripts/lint.sh

series: setup qemu
	@scripts/series.sh

series-check: setup qemu
	@scripts/series-check.sh

bench-mm: assemble qemu
	@bench/alloc.sh
	@bench/alloc-insn.sh
	@bench/hook-disasm.sh
	@$(MAKE) --no-print-directory bench-pf
	@$(MAKE) --no-print-directory bench-mm-distro

# The same figures on the kernel a distribution ships (bench/kernels.sh)
bench-mm-distro: assemble qemu
	@FPB_BENCH_KERNEL=distro bench/hook-disasm.sh
	@FPB_BENCH_KERNEL=distro bench/alloc-insn.sh
	@FPB_BENCH_KERNEL=distro bench/page-fault.sh

# Debian's cloud-amd64 configuration with the feature: a full -O2 build
# (about 45 min here the first time), so not part of make check
kernel-distro: assemble
	@FPB_BENCH_KERNEL=distro bench/kernels.sh on bzImage modules

bench-pf: kernel qemu
	@bench/page-fault.sh

check: setup
	@scripts/check.sh $(CHECKS)

clean:
	rm -rf $(FPB_CACHE)/build $(FPB_CACHE)/logs $(FPB_CACHE)/initramfs-*

distclean:
	rm -rf $(FPB_CACHE)

FORCE:

# The host side (QEMU) and the end-to-end migrations each keep their
# targets in a fragment of their own; they may append to CHECKS.
include $(wildcard qemu/qemu.mk tests/e2e/e2e.mk tests/peer/peer.mk)

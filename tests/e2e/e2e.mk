# End-to-end live migrations (tests/e2e); included by the Makefile.
#   make test-e2e  the migration scenarios, TAP (part of make check)
#   make soak      20 ping-pong hops, granules and multifd in turn, oracle on each
#   make test-distro  one migration of Debian's cloud-amd64 configuration (make kernel-distro)
#   make bench     none / hinting / reporting / ours, 3 repeats -> bench/results/migration.*,
#                  then make bench-postcopy: postcopy with and without the bitmap -> postcopy.md
#   make bench-granule  the default mode at granule orders 0, 3 and 9, five workloads
#                  -> bench/results/granule.md
#   make demo      a churn migration without and with the bitmap, and what it saved
#   make guest-image  the Debian guest with PostgreSQL (scripts/guest-image.sh)
#   make bench-real  that guest under pgbench: none / hinting / reporting / ours,
#                  2 and 4 GiB, 3 repeats -> bench/results/real-guest.{md,png}
# Every run needs the guest kernel and, for the bitmap, the patched QEMU.

E2E_QEMU := $(if $(wildcard qemu/qemu.mk),qemu)

.PHONY: test-e2e soak test-distro bench bench-postcopy bench-granule bench-real demo guest-image

# the postgres scenario boots it with the peer kernel (configs/peer.config
# has what PostgreSQL needs)
guest-image: setup kernel-peer
	@scripts/guest-image.sh

test-e2e: kernel $(E2E_QEMU) guest-image
	@tests/e2e/run.sh test

# not in make check: 20 oracle-checked hops (FPB_SOAK_HOPS), ~10 min, and
# six of the Debian guest running PostgreSQL
soak: kernel $(E2E_QEMU) guest-image
	@tests/e2e/run.sh test soak postgres-soak

# not in make check: a migration of Debian's configuration (kernel-distro)
test-distro: kernel kernel-distro $(E2E_QEMU)
	@tests/e2e/run.sh test distro

bench: kernel $(E2E_QEMU)
	@tests/e2e/run.sh bench
	@tests/e2e/run.sh bench-postcopy

bench-postcopy: kernel $(E2E_QEMU)
	@tests/e2e/run.sh bench-postcopy

bench-granule: kernel $(E2E_QEMU)
	@tests/e2e/run.sh granule

bench-real: kernel $(E2E_QEMU) guest-image
	@tests/e2e/run.sh bench-real

demo: kernel $(E2E_QEMU)
	@tests/e2e/run.sh demo

CHECKS += test-e2e

# The minimal device set of our qemu-system-x86_64 (configure
# --without-default-devices --with-devices-x86_64=this file): the pc and
# q35 machines (they select their chipset, the ISA serial port and DIMM
# support), virtio-pci with the balloon, virtio-mem for hotplug
# migration tests, vhost-user-blk for the shared-RAM one, virtio-blk for
# the Debian guest's disk (e2e postgres, bench-real), and VGA, NVDIMM
# and virtio-pmem: memory that is not guest RAM, which the qtests claim
# free and check that nothing of it is dropped.  Everything else stays
# out to keep the build short.
CONFIG_I440FX=y
CONFIG_Q35=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BALLOON=y
CONFIG_VIRTIO_MEM=y
CONFIG_VHOST_USER_BLK=y
CONFIG_VIRTIO_BLK=y
CONFIG_VGA_PCI=y
CONFIG_NVDIMM=y
CONFIG_VIRTIO_PMEM=y

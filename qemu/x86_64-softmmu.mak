# The minimal device set of our qemu-system-x86_64 (configure
# --without-default-devices --with-devices-x86_64=this file): the pc and
# q35 machines (they select their chipset, the ISA serial port and DIMM
# support), virtio-pci with the balloon, and virtio-mem for hotplug
# migration tests.  Everything else stays out to keep the build short.
CONFIG_I440FX=y
CONFIG_Q35=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_BALLOON=y
CONFIG_VIRTIO_MEM=y

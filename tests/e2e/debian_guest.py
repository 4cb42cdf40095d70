"""The Debian guest of make guest-image: Debian 12 with PostgreSQL 15 on a
virtio-blk disk, booted with the peer kernel (tests/e2e/README.md, "The
Debian guest").  Shared by the postgres scenario (e2e.py) and make
bench-real (real_bench.py)."""

import os
import subprocess

from harness import CACHE, PEER_BZIMAGE, PEER_SYSMAP

IMAGE = os.path.join(CACHE, "guest-image/base.raw")
QEMU_IMG = os.path.join(CACHE, "build/qemu/qemu-img")
KERNEL, SYSMAP = PEER_BZIMAGE, PEER_SYSMAP
# pid 1 is the image's /sbin/fpb-init: it starts PostgreSQL, then the e2e
# command loop
APPEND = "root=/dev/vda rootwait rw init=/sbin/fpb-init"
# the load: pgbench's TPC-B-like script, two clients (guest/debian/pgload)
PGLOAD = ("pgload", "-c 2")
# PostgreSQL's checks on a destination: amcheck, a restart, pg_checksums
CHECK_TIMEOUT = 300


def missing():
    """Why the Debian guest cannot boot here, or None."""
    for path, how in ((KERNEL, "make kernel-peer"), (IMAGE, "make guest-image"),
                      (QEMU_IMG, "make qemu")):
        if not os.path.exists(path):
            return f"no {path}: {how} builds it"
    return None


def disk_args(workdir):
    """A qcow2 overlay of the provisioned image in WORKDIR, as QEMU options:
    both QEMUs of a hop open it, as same-host migration with shared
    storage does; the base image stays as provisioned."""
    disk = os.path.join(workdir, "disk.qcow2")
    subprocess.run([QEMU_IMG, "create", "-q", "-f", "qcow2", "-b", IMAGE, "-F", "raw", disk],
                   check=True)
    return ("-drive", f"file={disk},format=qcow2,if=virtio")


def warm_cache(g):
    """The database's files read into the page cache of guest G, as on a
    server that has run a while."""
    g.sh("cat /var/lib/fpb-pg/base/*/* > /dev/null", timeout=120)

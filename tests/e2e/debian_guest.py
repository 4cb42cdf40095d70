"""The Debian guest of make guest-image: Debian 12 with PostgreSQL 15 on a
virtio-blk disk, booted with the peer kernel (tests/e2e/README.md, "The
Debian guest").  Shared by the postgres scenario (e2e.py) and make
bench-real (real_bench.py)."""

import os
import subprocess

from harness import CACHE, MIB, PEER_BZIMAGE, PEER_SYSMAP

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


def age(g, fraction):
    """Write FRACTION of guest G's free memory to a file in tmpfs and delete
    it: the memory a server that has run a while used and gave back (a
    backup, a big sort) holds old data, not the zeroes of a fresh boot,
    which every mode skips alike.  /tmp holds at most half the RAM."""
    mib = int(g.meminfo()["MemFree"] * fraction) // MIB
    g.sh(f"yes 0123456789abcdef | head -c {mib}M > /tmp/aged && rm /tmp/aged", timeout=300)
    return mib

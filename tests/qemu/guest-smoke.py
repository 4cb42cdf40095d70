#!/usr/bin/python3
"""Smoke test of our QEMU with the real guest driver, as TAP.

Boots the project's guest kernel (make kernel: $FPB_CACHE/build/guest)
with an initramfs whose init just sleeps, on our qemu-system-x86_64 with
x-free-page-bitmap=on, and checks that the driver announces its header,
that a migration to a file skips free pages without rejecting the
layout, and that a system reset forgets the header until the rebooted
driver announces again.  Whether the destination then has the right
content is the end-to-end harness's job (tests/e2e).  Skips when the
guest kernel or our QEMU is not built.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

CACHE = os.environ.get("FPB_CACHE", "/var/cache/free-page-bitmap")
QEMU = os.path.join(CACHE, "build/qemu/qemu-system-x86_64")
KERNEL = os.path.join(CACHE, "build/guest/arch/x86/boot/bzImage")
INITRD = os.path.join(CACHE, "initramfs-boot.cpio.gz")
# Wall-clock limits are multiplied by this (slow or busy machines).
SCALE = float(os.environ.get("FPB_TIMEOUT_SCALE", "1"))
n = 0


def tap(ok, name, skip=None):
    global n
    n += 1
    if skip:
        print(f"ok {n} - {name} # SKIP {skip}")
    else:
        print(f"{'ok' if ok else 'not ok'} {n} - {name}")
    sys.stdout.flush()


class Qmp:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        for _ in range(int(100 * SCALE)):
            try:
                self.s.connect(path)
                break
            except OSError:
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, args=None):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise RuntimeError(f"{name}: {r['error']}")

    def header(self):
        """The header the balloon has (test-only x-free-page-bitmap-header-gpa), 0 if none."""
        return self.cmd("qom-get", {"path": "/machine/peripheral/balloon0/virtio-backend",
                                    "property": "x-free-page-bitmap-header-gpa"})


def wait_header(qmp, seconds):
    end = time.time() + seconds * SCALE
    while time.time() < end:
        h = qmp.header()
        if h:
            return h
        time.sleep(0.2)
    return 0


# The balloon proposes 2^15-byte granules: order 3 of the guest's 4 KiB pages.
GRANULE_SHIFT = 15
GRANULE_ORDER = GRANULE_SHIFT - 12


def guest_byte(qmp, gpa):
    """One byte of guest-physical memory, through HMP's xp."""
    out = qmp.cmd("human-monitor-command", {"command-line": f"xp /1bx {gpa:#x}"})
    return int(out.split(":")[1].split()[0], 16)


def main():
    names = ["guest driver announces its header",
             "migration skips guest-free pages",
             "the guest's layout is accepted (no rejection)",
             f"the guest uses the granule the device proposes (order {GRANULE_ORDER})",
             "system reset forgets the header",
             "the rebooted driver announces again"]
    missing = [p for p in (QEMU, KERNEL, INITRD) if not os.path.exists(p)]
    config = os.path.join(os.path.dirname(KERNEL), "../../../.config")
    try:
        with open(config) as f:
            driver = "CONFIG_VIRTIO_BALLOON_FREE_PAGE_BITMAP=y\n" in f.read()
    except OSError:
        driver = False
    if missing or not driver:
        why = (f"not built: {missing[0]}" if missing else
               "guest kernel without the balloon's bitmap (make kernel)")
        for name in names:
            tap(True, name, skip=why)
        return
    with tempfile.TemporaryDirectory() as tmp:
        sock = os.path.join(tmp, "qmp.sock")
        vm = subprocess.Popen(
            [QEMU, "-M", "q35", "-accel", "tcg", "-smp", "2", "-m", "512M",
             "-nographic", "-nodefaults", "-serial", f"file:{tmp}/console.log",
             "-kernel", KERNEL, "-initrd", INITRD,
             "-append", "console=ttyS0 panic=-1 rdinit=/bin/busybox -- sleep "
             f"{int(600 * SCALE)}",
             "-device", "virtio-balloon-pci,id=balloon0,x-free-page-bitmap=on,"
             f"x-free-page-bitmap-granule-shift={GRANULE_SHIFT}",
             # why a layout was rejected, if one was
             "-trace", "free_page_bitmap_reject", "-D", f"{tmp}/trace.log",
             "-qmp", f"unix:{sock},server=on,wait=off"])
        try:
            qmp = Qmp(sock)
            header = wait_header(qmp, 60)
            tap(header != 0, names[0])
            qmp.cmd("migrate", {"uri": f"file:{tmp}/mig"})
            end = time.time() + 120 * SCALE
            while time.time() < end:
                info = qmp.cmd("query-migrate")
                st = info.get("status")
                if st in ("completed", "failed"):
                    break
                time.sleep(0.2)
            # the migration's own statistics, none on a QEMU without them
            fpb = info.get("free-page-bitmap", {})
            skipped = fpb.get("skipped-pages")
            print(f"# migration {st}, skipped-pages {skipped}, "
                  f"filtered-syncs {fpb.get('filtered-syncs')}, "
                  f"filter-time-max {fpb.get('filter-time-max')} us, "
                  f"waited {fpb.get('guest-wait-time')} ms for the guest"
                  f"{' (timed out)' if fpb.get('guest-wait-timed-out') else ''}")
            tap(st == "completed" and (skipped or 0) > 0, names[1])
            try:
                with open(f"{tmp}/trace.log", errors="replace") as f:
                    reasons = re.findall(r"free_page_bitmap_reject header \S+ (.*)", f.read())
            except OSError:
                reasons = []
            tap(fpb.get("rejected-layouts") == 0 and not reasons,
                names[2] + f" {reasons!r}")
            # struct virtio_balloon_fpb_header: granule_order at offset 7
            order = guest_byte(qmp, header + 7)
            tap(order == GRANULE_ORDER, names[3] + f" (header says {order})")
            qmp.cmd("cont")
            qmp.cmd("system_reset")
            tap(qmp.header() == 0, names[4])
            tap(wait_header(qmp, 60) != 0, names[5])
        finally:
            vm.kill()
            vm.wait()


if __name__ == "__main__":
    main()
    print(f"1..{n}")

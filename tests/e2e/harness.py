# SPDX-License-Identifier: GPL-2.0
"""Host side of the end-to-end migrations: guests, migration, the oracle.

A Guest is one QEMU process (TCG, q35) in a process group of its own,
killed by pid when the Guest is closed, also on failure or timeout.  Its
console (ttyS0) goes to a file; commands go to the guest over ttyS1 (see
guest/e2e.sh).  migrate() drives one source -> destination hop over QMP
and returns query-migrate's statistics, the free page bitmap's among them;
the oracle compares the RAM of the paused source with the destination's.
"""

import fcntl
import mmap
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import time

from qmp import QMP, QMPError

CACHE = os.environ.get("FPB_CACHE", "/var/cache/free-page-bitmap")
STOCK_QEMU = "/usr/bin/qemu-system-x86_64"
# build.sh copies the guest kernel and its System.map here, so that a
# rebuild in the middle of a run cannot mix them up.
BZIMAGE = os.path.join(CACHE, "e2e/kernel/bzImage")
SYSMAP = os.path.join(CACHE, "e2e/kernel/System.map")
# and, once make kernel-distro has built it, the kernel of Debian's config
DISTRO_BZIMAGE = os.path.join(CACHE, "e2e/kernel-distro/bzImage")
DISTRO_SYSMAP = os.path.join(CACHE, "e2e/kernel-distro/System.map")
INITRD = os.path.join(CACHE, "e2e/initramfs.cpio.gz")
PEER_BZIMAGE = os.path.join(CACHE, "e2e/kernel-peer/bzImage")
PEER_SYSMAP = os.path.join(CACHE, "e2e/kernel-peer/System.map")
CPU_LOCK = "/var/lock/fpb-cpu.lock"


def scaled(seconds):
    """A wall-clock timeout, times FPB_TIMEOUT_SCALE (slow machines)."""
    return seconds * float(os.environ.get("FPB_TIMEOUT_SCALE") or 1)
PAGE = 4096
MIB = 1 << 20

# The balloon (its virtio device) of our QEMU, with its test-only read-only
# property x-free-page-bitmap-header-gpa.
BALLOON_VDEV = "/machine/peripheral/balloon0/virtio-backend"
# Why QEMU rejected a layout: its trace event, in the QEMU log of each guest.
REJECT_TRACE = re.compile(r"free_page_bitmap_reject header 0x[0-9a-f]+: (.*)")


class Failure(Exception):
    """A check failed; the message says which and why."""


def _terminate(signum, _frame):
    # SIGTERM/SIGHUP (timeout, make interrupted): unwind, so that every
    # Guest is closed by the finally blocks and no QEMU is left behind.
    raise SystemExit(128 + signum)


signal.signal(signal.SIGTERM, _terminate)
signal.signal(signal.SIGHUP, _terminate)


PATCHED_QEMU = os.path.join(CACHE, "build/qemu/qemu-system-x86_64")
GUEST_CONFIG = os.path.join(CACHE, "build/guest/.config")


def patched_qemu():
    """Our QEMU as make qemu builds it, if it is there."""
    return PATCHED_QEMU if os.access(PATCHED_QEMU, os.X_OK) else None


def driver_ready():
    """The guest kernel was built with the balloon's free page bitmap."""
    try:
        with open(GUEST_CONFIG) as f:
            return "CONFIG_VIRTIO_BALLOON_FREE_PAGE_BITMAP=y\n" in f.read()
    except OSError:
        return False


def feature_missing():
    """Why the feature cannot run here, or None."""
    if not patched_qemu():
        return f"patched QEMU not built: no {PATCHED_QEMU} (make qemu)"
    if not driver_ready():
        return f"guest driver not built: {GUEST_CONFIG} lacks the balloon's bitmap (make kernel)"
    return None


class cpu_lock:
    """Hold /var/lock/fpb-cpu.lock (flock) while VMs run: builds interleave."""

    def __enter__(self):
        self.f = open(CPU_LOCK, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


# Balloon device options per mode.
def balloon_args(mode):
    dev = "virtio-balloon-pci,id=balloon0"
    # why a layout was rejected is a trace event (Guest.reject_reasons())
    trace = ["-trace", "free_page_bitmap_reject"]
    if mode == "ours":
        return ["-device", dev + ",x-free-page-bitmap=on"] + trace
    if mode == "ours-nocount":
        # bench only: free dirty pages counted as dirty, as before the count of QEMU patch 0005
        return ["-device", dev + ",x-free-page-bitmap=on,x-free-page-bitmap-count-free=off"] + trace
    if mode == "hinting":
        return ["-object", "iothread,id=io1",
                "-device", dev + ",free-page-hint=on,iothread=io1"]
    if mode == "reporting":
        return ["-device", dev + ",free-page-reporting=on"]
    return ["-device", dev]


class Guest:
    """One QEMU process; the source of a hop or its -incoming destination."""

    cmd_id = 0  # command ids are unique over the whole run

    def __init__(self, workdir, name, *, qemu, mode, mem="512M", smp=2, append="",
                 extra=(), incoming=False, paused=False, kernel=BZIMAGE, initrd=INITRD):
        self.workdir, self.name = workdir, name
        self.console = os.path.join(workdir, f"{name}-console.log")
        self.qmp_path = os.path.join(workdir, f"{name}.qmp")
        self.cmd_path = os.path.join(workdir, f"{name}.cmd")
        self.stderr_path = os.path.join(workdir, f"{name}-qemu.log")
        for p in (self.console, self.qmp_path, self.cmd_path):
            if os.path.exists(p):
                os.unlink(p)
        # debug-threads: cpu_seconds() tells the vCPU threads from the others
        self.argv = [qemu, "-name", f"{name},debug-threads=on",
                     "-accel", "tcg", "-M", "q35", "-cpu", "max", "-smp", str(smp),
                     "-m", mem, "-nodefaults", "-display", "none", "-vga", "none",
                     "-L", "/usr/share/seabios", "-L", "/usr/share/qemu",
                     "-kernel", kernel,
                     "-append", f"console=ttyS0 panic=0 oops=panic panic_on_warn=1 fpb.run=e2e {append}".strip(),
                     "-chardev", f"file,id=con0,path={self.console}", "-serial", "chardev:con0",
                     "-chardev", f"socket,id=cmd0,path={self.cmd_path},server=on,wait=off",
                     "-serial", "chardev:cmd0",
                     "-chardev", f"socket,id=qmp0,path={self.qmp_path},server=on,wait=off",
                     "-mon", "chardev=qmp0,mode=control"]
        if initrd:
            self.argv += ["-initrd", initrd]
        self.argv += balloon_args(mode) + list(extra)
        if incoming:
            self.argv += ["-incoming", "defer"]
        if paused:
            self.argv += ["-S"]
        self.proc = self.qmp = self.cmd_sock = None

    def start(self):
        with open(self.stderr_path, "w") as err:
            err.write(" ".join(self.argv) + "\n")
            err.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=err, start_new_session=True)
        try:
            deadline = time.monotonic() + scaled(30)
            while not os.path.exists(self.qmp_path):
                if self.proc.poll() is not None:
                    raise Failure(f"{self.name}: QEMU exited ({self.proc.returncode}): "
                                  + self.qemu_log_tail())
                if time.monotonic() > deadline:
                    raise Failure(f"{self.name}: no QMP socket after 30 s")
                time.sleep(0.05)
            try:
                self.qmp = QMP(self.qmp_path, timeout=scaled(60), alive=self.alive)
            except OSError:
                raise Failure(f"{self.name}: no QMP connection; QEMU: " + self.qemu_log_tail())
        except Exception:
            self.close()
            raise
        return self

    def qemu_log_tail(self, n=5):
        try:
            with open(self.stderr_path, errors="replace") as f:
                return " | ".join(f.read().splitlines()[-n:])
        except OSError:
            return ""

    def close(self):
        """Kill QEMU by its pid (its own process group) and reap it."""
        if self.qmp:
            self.qmp.close()
        if self.cmd_sock:
            self.cmd_sock.close()
        if self.proc and self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    pass
        self.qmp = self.cmd_sock = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self):
        """CPU time QEMU spent outside its vCPU threads (migration, main loop,
        iothreads), exited threads included."""
        tick = os.sysconf("SC_CLK_TCK")

        def ticks(path):
            with open(path) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])  # utime, stime

        total = ticks(f"/proc/{self.proc.pid}/stat")
        for tid in os.listdir(f"/proc/{self.proc.pid}/task"):
            try:
                with open(f"/proc/{self.proc.pid}/task/{tid}/comm") as f:
                    if f.read().startswith("CPU "):
                        total -= ticks(f"/proc/{self.proc.pid}/task/{tid}/stat")
            except OSError:
                pass  # the thread has just exited: its time is in the total
        return total / tick

    # --- console -----------------------------------------------------------

    def text(self, start=0):
        try:
            with open(self.console, "rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace").replace("\r", "")
        except OSError:
            return ""

    def offset(self):
        try:
            return os.path.getsize(self.console)
        except OSError:
            return 0

    def check_alive(self):
        if not self.alive():
            raise Failure(f"{self.name}: QEMU exited ({self.proc.returncode}): "
                          + self.qemu_log_tail())
        tail = self.text(max(0, self.offset() - 65536))
        for bad in ("Kernel panic", "BUG:", "Oops:", "fpb-wl: [a-z]+ FAIL"):
            m = re.search(bad + ".*", tail)
            if m:
                raise Failure(f"{self.name}: guest console: {m.group(0)}")

    def wait_for(self, pattern, timeout, start=0, what=None):
        """Wait until PATTERN (a regex) appears on the console after START."""
        deadline = time.monotonic() + scaled(timeout)
        rx = re.compile(pattern)
        while True:
            m = rx.search(self.text(start))
            if m:
                return m
            self.check_alive()
            if time.monotonic() > deadline:
                raise Failure(f"{self.name}: no '{what or pattern}' on the console "
                              f"after {timeout} s")
            time.sleep(0.1)

    # --- commands to the guest (ttyS1) -----------------------------------

    def sh(self, cmd, timeout=60, check=True):
        """Run CMD in the guest; return (rc, output)."""
        if self.cmd_sock is None:
            self.cmd_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.cmd_sock.connect(self.cmd_path)
        Guest.cmd_id += 1
        cid = Guest.cmd_id
        start = self.offset()
        self.cmd_sock.sendall(f"{cid} {cmd}\n".encode())
        m = self.wait_for(rf"fpb-e2e: {cid} rc=(\d+)", timeout, start, what=f"end of '{cmd}'")
        out = "\n".join(re.findall(rf"fpb-e2e: {cid}: (.*)", self.text(start)))
        rc = int(m.group(1))
        if check and rc != 0:
            raise Failure(f"{self.name}: guest command '{cmd}' failed (rc {rc}): {out}")
        return rc, out

    def send_raw(self, cmd):
        """Send CMD without waiting for its end (reboot, kexec)."""
        if self.cmd_sock is None:
            self.cmd_sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.cmd_sock.connect(self.cmd_path)
        Guest.cmd_id += 1
        self.cmd_sock.sendall(f"{Guest.cmd_id} {cmd}\n".encode())

    def wait_ready(self, timeout=120, start=0):
        return self.wait_for(r"fpb-e2e: ready boot_id=(\S+)", timeout, start,
                             what="guest ready").group(1)

    def start_workload(self, name, args=""):
        start = self.offset()
        self.sh(f"/e2e/{name} {args} </dev/null >/dev/console 2>&1 &")
        return start

    def check_workloads(self, names, timeout=120):
        """Ask the workloads for a full check; every process of each must
        say PASS (a scenario may run two of one workload)."""
        if not names:
            return
        start = self.offset()
        # a script (the Debian guest's pgload) says which process it is:
        # its pipelines' subshells carry its name too
        pids = {n: self.sh(f"cat /run/{n}.pid 2>/dev/null || pidof {n}", check=False)[1].split()
                for n in names}
        procs = {n: len(p) or 1 for n, p in pids.items()}
        self.sh("kill -USR1 " + " ".join(" ".join(p) or n for n, p in pids.items()))
        deadline = time.monotonic() + scaled(timeout)
        for n, count in procs.items():
            while len(re.findall(rf"fpb-wl: {n} check PASS", self.text(start))) < count:
                self.check_alive()
                if time.monotonic() > deadline:
                    raise Failure(f"{self.name}: {n}: not {count} 'check PASS' on the console "
                                  f"after {timeout} s")
                time.sleep(0.1)

    def sysfs(self, name):
        return self.sh(f"cat /sys/kernel/mm/free_page_bitmap/{name}")[1].strip()

    def meminfo(self):
        out = self.sh("cat /proc/meminfo")[1]
        return {k: int(v) * 1024 for k, v in re.findall(r"(\w+):\s+(\d+) kB", out)}

    def progress(self, start=0, end=None):
        """{workload: [(guest ms, units)]} from the console."""
        text = self.text(start)
        if end is not None:
            text = text[:max(0, end - start)]
        res = {}
        for n, ms, u in re.findall(r"fpb-wl: (\w+) progress ms=(\d+) units=(\d+)", text):
            res.setdefault(n, []).append((int(ms), int(u)))
        return res

    # --- QMP helpers ---------------------------------------------------------

    def counters(self):
        """The free page bitmap's statistics of the current or last migration
        (query-migrate's free-page-bitmap: skipped-pages, filtered-syncs,
        rejected-layouts, ...; none before a migration starts, in or out) and
        then, read after them, the header the balloon has ("header-gpa", its
        x-free-page-bitmap-header-gpa).  {} on a stock device."""
        res = dict(self.qmp.cmd("query-migrate").get("free-page-bitmap") or {})
        try:
            res["header-gpa"] = self.qmp.cmd("qom-get", {
                "path": BALLOON_VDEV, "property": "x-free-page-bitmap-header-gpa"})
        except QMPError:
            pass
        return res

    def reject_reasons(self):
        """Why this QEMU rejected layouts, oldest first (the trace event
        free_page_bitmap_reject in its log)."""
        try:
            with open(self.stderr_path, errors="replace") as f:
                return REJECT_TRACE.findall(f.read())
        except OSError:
            return []

    def status(self):
        return self.qmp.cmd("query-status")["status"]


def rate(points):
    """Units per second over a list of (ms, units), or None."""
    if len(points) < 2 or points[-1][0] == points[0][0]:
        return None
    return (points[-1][1] - points[0][1]) * 1000.0 / (points[-1][0] - points[0][0])


# --- migration ---------------------------------------------------------------

class Migration:
    """One hop: SRC (running) -> DST (started with -incoming defer)."""

    def __init__(self, src, dst, sock, *, bandwidth, downtime_ms=300, caps=(),
                 params=None, timeout=300, hold=False):
        """HOLD: a 1 ms downtime limit until finish(), so that the hop cannot
        end before the scenario has acted."""
        self.src, self.dst, self.sock = src, dst, sock
        self.hold = hold
        self.bandwidth, self.timeout = bandwidth, scaled(timeout)
        # CAPS: names to turn on, or a dict name -> state
        caps = caps if isinstance(caps, dict) else {c: True for c in caps}
        self.caps = [{"capability": c, "state": v} for c, v in caps.items()]
        self.params = dict(params or {})
        self.downtime_ms = downtime_ms
        self.polls = []

    def start(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        for g in (self.src, self.dst):
            if self.caps:
                g.qmp.cmd("migrate-set-capabilities", {"capabilities": self.caps})
            if self.params:
                g.qmp.cmd("migrate-set-parameters", self.params)
        self.dst.qmp.cmd("migrate-incoming", {"uri": "unix:" + self.sock})
        self.set_bandwidth(self.bandwidth)
        self.src.qmp.cmd("migrate-set-parameters",
                         {"downtime-limit": 1 if self.hold else self.downtime_ms})
        self.t0 = time.monotonic()
        self.console_start = self.src.offset()
        self.cpu_start = self.src.cpu_seconds()
        self.src.qmp.cmd("migrate", {"uri": "unix:" + self.sock})

    def set_bandwidth(self, bps):
        self.src.qmp.cmd("migrate-set-parameters", {"max-bandwidth": int(bps)})

    def info(self):
        i = self.src.qmp.cmd("query-migrate")
        self.polls.append((time.monotonic() - self.t0, i))
        return i

    def syncs(self):
        return self.info().get("ram", {}).get("dirty-sync-count", 0)

    def wait_syncs(self, n, timeout=120):
        """Wait until the source has done N dirty syncs; the hop must not end first."""
        deadline = time.monotonic() + scaled(timeout)
        while True:
            i = self.info()
            if i.get("status") in ("completed", "failed", "cancelled"):
                raise Failure(f"migration {i.get('status')} before {n} syncs; "
                              "lower the bandwidth")
            if i.get("ram", {}).get("dirty-sync-count", 0) >= n:
                return i
            self.src.check_alive()
            if time.monotonic() > deadline:
                raise Failure(f"fewer than {n} dirty syncs after {timeout} s")
            time.sleep(0.1)

    def finish(self, bandwidth=None):
        """Let the hop end (at BANDWIDTH if given); return the final stats."""
        if self.hold:
            st = self.info().get("status")
            if st not in ("active", "postcopy-active"):
                raise Failure(f"the hop ended ({st}) before the scenario had acted")
            self.src.qmp.cmd("migrate-set-parameters", {"downtime-limit": self.downtime_ms})
        if bandwidth:
            self.set_bandwidth(bandwidth)
        deadline = self.t0 + self.timeout
        while True:
            i = self.info()
            st = i.get("status")
            if st == "completed":
                break
            if st in ("failed", "cancelled"):
                raise Failure(f"migration {st}: {i.get('error-desc', '')}")
            self.src.check_alive()
            self.dst.check_alive()
            if time.monotonic() > deadline:
                try:
                    self.src.qmp.cmd("migrate_cancel")
                except QMPError:
                    pass
                raise Failure(f"migration not done after {self.timeout} s "
                              f"(status {st}, syncs {i.get('ram', {}).get('dirty-sync-count')})")
            time.sleep(0.2)
        self.console_end = self.src.offset()
        self.cpu = self.src.cpu_seconds() - self.cpu_start
        # the destination has loaded everything once its own status says so
        deadline = time.monotonic() + scaled(60)
        while self.dst.qmp.cmd("query-migrate").get("status") != "completed":
            self.dst.check_alive()
            if time.monotonic() > deadline:
                raise Failure("destination never reported completion")
            time.sleep(0.1)
        self.final = i
        # the statistics of this hop, as the source and the destination tell them
        self.counters = self.src.counters()
        self.dst_counters = self.dst.counters()
        return i

    def stats(self):
        """A flat dict of what the reports show."""
        i, ram = self.final, self.final.get("ram", {})
        return {
            "transferred": ram.get("transferred", 0),
            "normal": ram.get("normal", 0),
            "duplicate": ram.get("duplicate", 0),
            "syncs": ram.get("dirty-sync-count", 0),
            "total_ms": i.get("total-time", 0),
            "downtime_ms": i.get("downtime", 0),
            "setup_ms": i.get("setup-time", 0),
            # what QEMU reported while the hop ran (inputs of its decisions)
            "dirty_rate_max": max((p.get("ram", {}).get("dirty-pages-rate", 0)
                                   for _t, p in self.polls), default=0),
            "expected_downtime_max": max((p.get("expected-downtime", 0)
                                          for _t, p in self.polls
                                          if p.get("status") == "active"), default=0),
            "src_cpu_s": self.cpu,
            # the free page bitmap's statistics of this hop (None on a stock device)
            "wait_ms": self.counters.get("guest-wait-time"),
            "wait_timed_out": self.counters.get("guest-wait-timed-out"),
            "skipped": self.counters.get("skipped-pages"),
            "skipped_last": self.counters.get("skipped-pages-last"),
            "filtered_syncs": self.counters.get("filtered-syncs"),
            "filter_us_max": self.counters.get("filter-time-max"),
            "filter_us_last": self.counters.get("filter-time-last"),
            "rejected": self.counters.get("rejected-layouts"),
            "reject_reason": "; ".join(self.src.reject_reasons()),
            # the destination's check of the header that arrived
            "dst_rejected": self.dst_counters.get("rejected-layouts"),
            "dst_reject_reason": "; ".join(self.dst.reject_reasons()),
            "header_gpa": self.counters.get("header-gpa"),
            # postcopy: bytes after the switchover, requests the source served,
            # the free set and what the destination did with it
            "precopy_bytes": ram.get("precopy-bytes", 0),
            "postcopy_bytes": ram.get("postcopy-bytes", 0),
            "pc_requests": ram.get("postcopy-requests", 0),
            "pc_free": self.counters.get("postcopy-free-pages"),
            "pc_redirtied": self.counters.get("postcopy-redirtied-pages"),
            "pc_free_faults": self.dst_counters.get("postcopy-free-faults"),
        }


# --- the oracle --------------------------------------------------------------

class Dump:
    """An ELF core from dump-guest-memory (paging off): GPA -> file offset."""

    def __init__(self, path):
        self.path = path
        self.f = open(path, "rb")
        self.m = mmap.mmap(self.f.fileno(), 0, access=mmap.ACCESS_READ)
        if self.m[:4] != b"\x7fELF" or self.m[4] != 2:
            raise Failure(f"{path}: not a 64-bit ELF dump")
        phoff, = struct.unpack_from("<Q", self.m, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", self.m, 0x36)
        self.loads = []
        for k in range(phnum):
            (ptype, _flags, off, _vaddr, paddr, filesz, _memsz,
             _align) = struct.unpack_from("<IIQQQQQQ", self.m, phoff + k * phentsize)
            if ptype == 1 and filesz:
                self.loads.append((paddr, off, filesz))
        self.loads.sort()

    def read(self, gpa, n):
        for paddr, off, size in self.loads:
            if paddr <= gpa and gpa + n <= paddr + size:
                return self.m[off + gpa - paddr: off + gpa - paddr + n]
        raise KeyError(f"GPA {gpa:#x}+{n} is not guest RAM in {self.path}")

    def close(self):
        self.m.close()
        self.f.close()


class Bitmap:
    """The guest's free page bitmap as the shared layout describes it."""

    def __init__(self, dump, header_gpa):
        self.ok, self.why, self.ranges = False, "", []
        self.granule_order = None
        if not header_gpa:
            self.why = "no header announced (x-free-page-bitmap-header-gpa 0)"
            return
        try:
            (magic, version, page_shift, granule_order, seq, flags, nr_ranges, _res,
             ranges_gpa) = struct.unpack("<IHBBIIIIQ", dump.read(header_gpa, 32))
        except KeyError as e:
            self.why = f"header not in RAM: {e}"
            return
        self.granule_order, self.seq, self.flags = granule_order, seq, flags
        if magic != 0x42504656 or version != 1:
            self.why = f"bad magic {magic:#x} or version {version}"
            return
        if seq & 1 or not flags & 1:
            self.why = f"header inactive (seq {seq}, flags {flags:#x})"
            return
        # QEMU allows eight ranges per NUMA node, and a machine 128 nodes
        if page_shift != 12 or nr_ranges > 8 * 128:
            self.why = f"unexpected page_shift {page_shift} or nr_ranges {nr_ranges}"
            return
        psz = 1 << page_shift
        for r in range(nr_ranges):
            start, nbits, table_gpa, nent = struct.unpack(
                "<QQQQ", dump.read(ranges_gpa + 32 * r, 32))
            if nent != -(-nbits // (8 * psz)):
                self.why = f"range {r}: {nent} table entries for {nbits} bits"
                return
            pfns = struct.unpack(f"<{nent}Q", dump.read(table_gpa, 8 * nent))
            bits = b"".join(dump.read(p << page_shift, psz) for p in pfns)
            self.ranges.append((start, nbits, bits))
        self.ok = True

    def free_pfns(self):
        """The set of free 4 KiB page frames (ranges OR'ed)."""
        free = set()
        g = self.granule_order
        for start, nbits, bits in self.ranges:
            for i, byte in enumerate(bits[: -(-nbits // 8)]):
                if not byte:
                    continue
                for j in range(8):
                    k = 8 * i + j
                    if byte >> j & 1 and k < nbits:
                        base = start + (k << g)
                        free.update(range(base, base + (1 << g)))
        return free


class KernelView:
    """The guest kernel's own struct pages, read from a dump with System.map.

    A page is free to the kernel if it lies in a block on a buddy free
    list (the block's head has the buddy page type and an order that
    covers it) or sits on a per-cpu free list (refcount 0 and linked:
    its list neighbours point back at it), alone or as a later page of a
    block there (its head linked, every other page of the block blank).  The bitmap counts per-cpu
    pages as allocated by design, so such a page may differ legitimately.
    The layout below (6.12, x86-64, 64-byte aligned struct page) is checked
    on pages whose state is known before any verdict (check_layout()).
    """

    START_KERNEL_MAP = 0xffffffff80000000
    PAGE_STRUCT = 64          # sizeof(struct page) on x86-64 (aligned)
    LRU = 8                   # lru / buddy_list / pcp_list (next, prev)
    PRIVATE = 40              # the order of a buddy head
    PAGE_TYPE = 48            # top byte PGTY_buddy on a buddy head
    REFCOUNT = 52             # offsetof(struct page, _refcount)
    PGTY_BUDDY = 0xf0
    PG_RESERVED = 13
    PG_HEAD = 6
    MAX_PAGE_ORDER = 10
    PCP_ORDERS = (1, 2, 3, 9)  # per-cpu lists above order 0: to COSTLY, THP

    def __init__(self, dump, sysmap):
        self.dump = dump
        syms = {}
        with open(sysmap) as f:
            for line in f:
                addr, _t, name = line.split()[:3]
                syms[name] = int(addr, 16)
        self.phys_base = self._u64(syms["phys_base"] - self.START_KERNEL_MAP)
        self.vmemmap = self._ksym_u64(syms["vmemmap_base"])
        self.l5 = struct.unpack("<I", self.dump.read(self._kphys(syms["__pgtable_l5_enabled"]),
                                                      4))[0]
        self.pgd = self._kphys(syms["init_top_pgt"])

    def _u64(self, gpa):
        return struct.unpack("<Q", self.dump.read(gpa, 8))[0]

    def _kphys(self, kva):
        return kva - self.START_KERNEL_MAP + self.phys_base

    def _ksym_u64(self, kva):
        return self._u64(self._kphys(kva))

    def virt_to_phys(self, va):
        table = self.pgd
        shifts = (48, 39, 30, 21, 12) if self.l5 else (39, 30, 21, 12)
        for level, sh in enumerate(shifts):
            e = self._u64(table + ((va >> sh) & 511) * 8)
            if not e & 1:
                raise KeyError(f"{va:#x} not mapped")
            addr = e & 0x000ffffffffff000
            if sh == 12 or (sh in (21, 30) and e & 0x80):
                return (addr & ~((1 << sh) - 1)) + (va & ((1 << sh) - 1))
            table = addr
        raise KeyError(va)

    def _page_va(self, pfn):
        return self.vmemmap + pfn * self.PAGE_STRUCT

    def page(self, pfn):
        """(flags, lru.next, lru.prev, private, page_type, refcount) of PFN."""
        raw = self.dump.read(self.virt_to_phys(self._page_va(pfn)), self.PAGE_STRUCT)
        flags, nxt, prv = struct.unpack_from("<QQQ", raw, 0)
        private, = struct.unpack_from("<Q", raw, self.PRIVATE)
        ptype, ref = struct.unpack_from("<Ii", raw, self.PAGE_TYPE)
        return flags, nxt, prv, private, ptype, ref

    def refcount(self, pfn):
        """_refcount of the page's compound head, None if its struct page
        is not mapped."""
        try:
            va = self._page_va(pfn)
            head = self._u64(self.virt_to_phys(va + 8))
            if head & 1:
                va = head - 1
            return struct.unpack("<i", self.dump.read(self.virt_to_phys(va + self.REFCOUNT),
                                                      4))[0]
        except KeyError:
            return None

    PGTY_NAMES = {0xf0: "buddy", 0xf1: "offline", 0xf2: "page table", 0xf3: "guard",
                  0xf4: "hugetlb", 0xf5: "slab", 0xf6: "zsmalloc", 0xf7: "unaccepted"}
    MAPPING = 24              # page->mapping, bit 0 set for anonymous memory

    def describe(self, pfn):
        """What a page in use is, for a failure message: its allocation's
        head and order, its type, anonymous or not."""
        try:
            va = self._page_va(pfn)
            head = self._u64(self.virt_to_phys(va + 8))
            hpfn = (head - 1 - self.vmemmap) // self.PAGE_STRUCT if head & 1 else pfn
            flags, _n, _p, _pr, ptype, _r = self.page(hpfn)
            order = 0
            if flags >> self.PG_HEAD & 1:
                order = self.page(hpfn + 1)[0] & 0xff
            what = self.PGTY_NAMES.get(ptype >> 24)
            if what is None:
                mapping = self._u64(self.virt_to_phys(self._page_va(hpfn) + self.MAPPING))
                what = "anonymous" if mapping & 1 else ("file" if mapping else "no mapping")
            return f"head {hpfn:#x} order {order}, {what}, flags {flags:#x}"
        except KeyError as e:
            return f"struct page unreadable: {e}"

    def in_buddy(self, pfn):
        """PFN lies in a block on a buddy free list."""
        for order in range(self.MAX_PAGE_ORDER + 1):
            head = pfn & ~((1 << order) - 1)
            _f, _n, _p, private, ptype, _r = self.page(head)
            if ptype >> 24 == self.PGTY_BUDDY and order <= private <= self.MAX_PAGE_ORDER:
                return True
        return False

    def _linked(self, pfn, nxt, prv):
        """PFN's list neighbours NXT and PRV point back at it (a list_del()ed
        page's links are poison, not mapped: False)."""
        me = self._page_va(pfn) + self.LRU
        try:
            return (self._u64(self.virt_to_phys(nxt + 8)) == me and
                    self._u64(self.virt_to_phys(prv)) == me)
        except KeyError:
            return False

    def on_pcp_list(self, pfn):
        """PFN has refcount 0 and is linked in a list (a per-cpu free list)."""
        _f, nxt, prv, _p, ptype, ref = self.page(pfn)
        if ref != 0 or ptype >> 24 == self.PGTY_BUDDY:
            return False
        return self._linked(pfn, nxt, prv)

    def in_pcp_block(self, pfn):
        """PFN is a later page of a block on a per-cpu free list.  Only the
        head is linked and the list, not the struct page, knows the order,
        so every order the lists hold is tried: the head must be linked and
        every other page of the block blank (refcount 0, no buddy type).  A
        page in use in that range would not be blank: the head of its own
        allocation holds a reference."""
        for order in self.PCP_ORDERS:
            head = pfn & ~((1 << order) - 1)
            if head == pfn or not self.on_pcp_list(head):
                continue
            if all(self._blank(p) for p in range(head + 1, head + (1 << order))):
                return True
        return False

    def _blank(self, pfn):
        """No reference and no buddy type, as a free block's later pages."""
        _f, _n, _p, _pr, ptype, ref = self.page(pfn)
        return ref == 0 and ptype >> 24 != self.PGTY_BUDDY

    def in_isolated_block(self, pfn):
        """PFN lies in a free block compaction's free scanner took off the
        buddy lists for migration targets: the block's head is linked in
        cc->freepages[order] with its order in page->private, no type, no
        flags and no reference (isolate_freepages_block()).  Its content is
        dead: compaction_alloc() initialises a target and migration then
        overwrites it, or the block goes back to the buddy lists."""
        for order in range(self.MAX_PAGE_ORDER + 1):
            head = pfn & ~((1 << order) - 1)
            flags, nxt, prv, private, ptype, ref = self.page(head)
            if ref or flags or ptype != 0xffffffff or private != order:
                continue
            # not list_del_init()ed (linked to itself: in no list)
            if nxt != self._page_va(head) + self.LRU and self._linked(head, nxt, prv):
                return True
        return False

    def free_kind(self, pfn):
        """'buddy', 'pcp', 'isolated' or None (in use, or a state we
        cannot vouch for)."""
        try:
            if self.in_buddy(pfn):
                return "buddy"
            if self.on_pcp_list(pfn) or self.in_pcp_block(pfn):
                return "pcp"
            if self.in_isolated_block(pfn):
                return "isolated"
        except KeyError:
            pass
        return None

    def check_layout(self, known_in_use):
        """Raise Failure unless the layout reads pages of known state right:
        the kernel image's page (reserved, refcount 1) and KNOWN_IN_USE
        (allocated by the driver: refcount >= 1, not buddy)."""
        image = self.pgd >> 12
        flags, _n, _p, _pr, ptype, ref = self.page(image)
        if not flags >> self.PG_RESERVED & 1 or ref != 1 or ptype >> 24 == self.PGTY_BUDDY:
            raise Failure(f"oracle: struct page layout not as assumed: kernel image pfn "
                          f"{image:#x} has flags {flags:#x}, refcount {ref}, type {ptype:#x}")
        for pfn in known_in_use:
            if (self.refcount(pfn) or 0) < 1 or self.in_buddy(pfn):
                raise Failure(f"oracle: struct page layout not as assumed: pfn {pfn:#x} "
                              f"(the bitmap header) reads as free")


def dump_guest(guest, path):
    if os.path.exists(path):
        os.unlink(path)
    guest.qmp.cmd("dump-guest-memory", {"paging": False, "protocol": "file:" + path})
    deadline = time.monotonic() + scaled(300)
    while guest.qmp.cmd("query-dump").get("status") == "active":
        if time.monotonic() > deadline:
            raise Failure(f"{guest.name}: dump-guest-memory did not finish")
        time.sleep(0.1)
    if guest.qmp.cmd("query-dump").get("status") != "completed":
        raise Failure(f"{guest.name}: dump-guest-memory failed")


def oracle(src, dst, header_gpa, dumpdir, keep=False, sysmap=None, keep_bad=True):
    """Compare the RAM of the paused source and the paused destination.

    Every page that differs must be free in the bitmap the guest left in
    the source's RAM, or (with SYSMAP) free to the guest kernel itself:
    refcount 0, as on a per-cpu list.  A page the bitmap calls free but
    the kernel has in use is wrong.  With no active bitmap every page
    that differs must be free to the kernel (no SYSMAP: none may differ).
    Returns a dict: pages compared, pages differing, free pages, verdict.
    The dumps are kept if KEEP, or (KEEP_BAD) if a page is wrong.
    """
    os.makedirs(dumpdir, exist_ok=True)
    if dst.status() == "running":
        dst.qmp.cmd("stop")
    sp, dp = os.path.join(dumpdir, "src.elf"), os.path.join(dumpdir, "dst.elf")
    res = {}
    sd = dd = None
    try:
        dump_guest(src, sp)
        dump_guest(dst, dp)
        sd, dd = Dump(sp), Dump(dp)
        diff = []
        pages = 0
        if [(a, s) for a, _, s in sd.loads] != [(a, s) for a, _, s in dd.loads]:
            raise Failure("source and destination RAM layouts differ: "
                          f"{[(hex(a), s) for a, _, s in sd.loads]} vs "
                          f"{[(hex(a), s) for a, _, s in dd.loads]}")
        step = 256 * PAGE
        for (paddr, so, size), (_, do, _) in zip(sd.loads, dd.loads):
            pages += size // PAGE
            for off in range(0, size, step):
                n = min(step, size - off)
                if sd.m[so + off: so + off + n] == dd.m[do + off: do + off + n]:
                    continue
                for p in range(off, off + n, PAGE):
                    if sd.m[so + p: so + p + PAGE] != dd.m[do + p: do + p + PAGE]:
                        diff.append((paddr + p) // PAGE)
        bm = Bitmap(sd, header_gpa)
        free = bm.free_pfns() if bm.ok else set()
        kv = None
        if sysmap:
            try:
                kv = KernelView(sd, sysmap)
                kv.check_layout([header_gpa >> 12] if bm.ok else [])
            except (KeyError, OSError) as e:
                raise Failure(f"oracle: cannot read the guest's struct pages: {e}")
        bad, in_bitmap, kernel_free, skipped_free = [], 0, 0, []
        for p in diff:
            rc = kv.refcount(p) if kv else None
            if p in free and rc in (None, 0):
                in_bitmap += 1
                skipped_free.append(p)
            elif kv and p not in free and kv.free_kind(p):
                kernel_free += 1
            else:
                bad.append((p, rc, p in free))
        # Every page the bitmap calls free must be free (a sample): catches
        # a wrong table entry or range, whether or not its pages differ.
        # A page between lists (a merge or split in flight when the vCPU
        # stopped) has refcount 0 but no buddy head: allowed, if rare.
        wrong_free, in_flight, sample = [], 0, []
        if kv and free:
            sample = sorted(random.Random(header_gpa).sample(sorted(free), min(len(free), 4096)))
            for p in sample:
                kind = kv.free_kind(p)
                if kind == "buddy":
                    continue
                rc = kv.refcount(p)
                if rc == 0 and kind is None:
                    in_flight += 1
                else:   # in use, or on a per-cpu list: its bit should be clear
                    wrong_free.append((p, rc))
        # at most one block of 2^MAX_PAGE_ORDER pages in flight per vCPU
        in_flight_max = max(8, 2 * 1024 * len(sample) // max(len(free), 1))
        res = {"pages": pages, "differ": len(diff), "free": len(free), "bad": bad,
               "in_flight_max": in_flight_max,
               "in_bitmap": in_bitmap, "kernel_free": kernel_free,
               "differ_free_pfns": skipped_free,
               "sampled": len(sample), "wrong_free": wrong_free, "in_flight": in_flight,
               "bitmap": "active" if bm.ok else bm.why,
               "granule_order": bm.granule_order, "ranges": [(r[0], r[1]) for r in bm.ranges]}
        if bad:
            lines = []
            for p, rc, inbm in bad[:20]:
                s = sd.read(p * PAGE, PAGE)
                d = dd.read(p * PAGE, PAGE)
                k = next(i for i in range(PAGE) if s[i] != d[i])
                what = f", {kv.describe(p)}" if kv else ""
                lines.append(f"pfn {p:#x} (GPA {p * PAGE:#x}, refcount {rc}{what}, "
                             f"{'free' if inbm else 'not free'} in the bitmap): first difference "
                             f"at byte {k}: source {s[k]:#04x} destination {d[k]:#04x}"
                             f"{' (destination page all zero)' if d == bytes(PAGE) else ''}")
            res["detail"] = lines
        return res
    finally:
        for d in (sd, dd):
            if d:
                d.close()
        if keep_bad and (res.get("bad") or res.get("wrong_free")):
            # evidence for whoever looks into it: kept, and said where
            res["dumps_kept"] = f"dumps kept: {sp} {dp}"
        elif not keep:
            for p in (sp, dp):
                if os.path.exists(p):
                    os.unlink(p)


def oracle_verdict(res):
    """Raise Failure unless the oracle's result holds; return a summary."""
    summary = (f"oracle: {res['differ']} of {res['pages']} pages differ: {res['in_bitmap']} free "
               f"in the bitmap, {res['kernel_free']} free to the kernel only (buddy, per-cpu "
               f"list or isolated by compaction); bitmap {res['bitmap']} ({res['free']} free "
               f"pages, {res['sampled']} "
               f"sampled: {len(res['wrong_free'])} in use, {res['in_flight']} between lists)")
    kept = f"; {res['dumps_kept']}" if res.get("dumps_kept") else ""
    if res["wrong_free"] or res["in_flight"] > res["in_flight_max"]:
        raise Failure(f"{summary}; pages the bitmap calls free are not free in the guest: "
                      + ", ".join(f"pfn {p:#x} refcount {rc}" for p, rc in res["wrong_free"][:20])
                      + kept)
    if res["bad"]:
        raise Failure(f"{summary}; {len(res['bad'])} differing pages are IN USE: "
                      + "; ".join(res.get("detail", [])) + kept)
    return summary


def rm_rf(path):
    shutil.rmtree(path, ignore_errors=True)

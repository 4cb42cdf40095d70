#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""End-to-end live migrations with the free page bitmap, as TAP.

    e2e.py test [NAME...]       the scenarios (all, or those named), TAP
    e2e.py list                 the scenario names
    e2e.py run NAME [--mode M]  one scenario with details, for debugging
                                (--mode none runs a feature scenario on the
                                stock path to exercise the harness itself)

Each scenario boots a source guest, starts workloads, migrates it to a
destination QEMU (-incoming defer, -S) over a Unix socket, runs the
oracle on the paused pair, resumes the destination and has the workloads
check their patterns there.  Scenarios that need the patched QEMU and the
guest driver SKIP with the reason until make qemu and make kernel have
built them.
"""

import os
import re
import subprocess
import sys
import time
import traceback

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from qmp import QMP  # noqa: E402
import debian_guest  # noqa: E402
from harness import (BZIMAGE, CACHE, DISTRO_BZIMAGE, DISTRO_SYSMAP, INITRD,  # noqa: E402
                     MIB, SYSMAP, STOCK_QEMU, Failure, Guest, Migration, cpu_lock,
                     feature_missing, oracle, oracle_verdict, patched_qemu, rate, rm_rf,
                     scaled)

RUN = os.path.join(CACHE, "e2e/run")
SYSFS = "/sys/kernel/mm/free_page_bitmap"
FPB_DEBUGFS = "/sys/kernel/debug/free_page_bitmap"

# Workloads of the 512 MiB test guests, ~150 MiB in use: churn writes
# ~64 MiB/s, 4 MiB chunks freed 8 at a time, and rewrites 1/8 of that in a
# 32 MiB working set; verify checks 64 MiB and rewrites 1/64 of it per pass.
CHURN = ("churn", "-w 32 -c 4 -n 8 -r 64")
VERIFY = ("verify", "-w 64 -d 64 -p 100")
# Bandwidth while the scenario acts (several rounds under TCG) and for the end.
SLOW_BW = 40 * MIB
FAST_BW = 400 * MIB


def log(msg):
    print(f"# {msg}", flush=True)


class Scenario:
    """Defaults; each scenario below overrides what it changes."""
    name = desc = ""
    mode = "ours"
    mem = "512M"
    ram = 512 * MIB
    append = ""
    extra = ()
    src_extra = ()
    caps = ()
    params = None
    hops = 1
    workloads = (CHURN, VERIFY)
    bandwidth = SLOW_BW
    final_bandwidth = FAST_BW
    downtime_ms = 300
    min_syncs = 3          # syncs before the bandwidth is raised
    hop_timeout = 300      # s from migrate to completed
    check_timeout = 120    # s for the workloads' check on the destination
    dst_paused = True      # needed by the oracle
    run_oracle = True
    # Every page the kernel allocates is written (zeroed) at once, so that a
    # page in use that differs means a lost write.  Without it a page taken
    # from the free set and never written keeps its dead content on the
    # source while the destination has a zero page, legitimately (README,
    # "The oracle").
    init_on_alloc = True
    target_ratio = None    # printed, not asserted: sent vs this x in use
    initrd = INITRD
    kernel, sysmap = BZIMAGE, SYSMAP
    # guest commands run before the workloads start
    setup = ()
    # printed under a failure: a known cause outside this project
    known_issue = None
    # a positive control: the run must fail with this in its message
    must_fail_with = None
    # A failure saying this is not a verdict: run the scenario again, up to
    # `retries` times (only for must_fail_with scenarios).
    retry_on = None
    retries = 0

    def __init__(self, mode=None):
        if mode:
            self.mode = mode
        self.ours = self.mode == "ours"
        self.notes = []
        self.marks = []

    def qemu(self):
        # FPB_E2E_QEMU: another binary for the non-feature paths (debugging)
        return os.environ.get("FPB_E2E_QEMU") or patched_qemu() or STOCK_QEMU

    def hop_caps(self, hop):
        return self.caps

    def hop_params(self, hop):
        return self.params

    def before(self, src):
        """After boot, before the workloads start."""

    def during(self, m, src):
        """While the hop runs at the low bandwidth."""
        m.wait_syncs(self.min_syncs)

    def mark(self, src, what):
        """A phase change: pages must be skipped after it, in this hop (the
        statistics are the running hop's, so the hop's total must grow)."""
        if self.ours:
            self.marks.append((what, src.counters().get("skipped-pages") or 0))

    def after_hop(self, hop, st, res):
        """Checks of one hop's statistics and oracle result."""
        marks, self.marks = self.marks, []
        if not self.ours:
            return
        if not st["skipped"]:
            raise Failure(f"hop {hop}: no page skipped (statistics {st})")
        if st["rejected"]:
            raise Failure(f"hop {hop}: {st['rejected']} layouts rejected: {st['reject_reason']}")
        # the header that arrived is checked by the destination (which
        # counted it in its own statistics, not in the source's of the hop)
        if st["dst_rejected"] is None or st["dst_rejected"]:
            raise Failure(f"hop {hop}: the destination rejected the migrated header "
                          f"({st['dst_rejected']}): {st['dst_reject_reason']}")
        if res and res["bitmap"] != "active":
            raise Failure(f"hop {hop}: no active bitmap at the end: {res['bitmap']}")
        for what, before in marks:
            if st["skipped"] <= before:
                raise Failure(f"hop {hop}: no page skipped after {what} "
                              f"({st['skipped']} in all, {before} before)")
            self.notes.append(f"hop {hop}: {st['skipped'] - before} pages skipped after {what}")

    def after(self, hops):
        """Checks over all hops."""

    def missing(self):
        """Why this scenario cannot run here (a SKIP), or None."""
        return None

    def start_helpers(self, workdir):
        """Before the first QEMU starts: host processes and resources."""

    def stop_helpers(self):
        """After the last QEMU is gone, also on failure."""

    def after_destination(self, src, dst):
        """Once the destination runs and its workloads checked PASS."""


def guest_sysfs_wait(src, name, want, timeout=30):
    deadline = time.monotonic() + scaled(timeout)
    while True:
        got = src.sysfs(name)
        if got == want:
            return
        if time.monotonic() > deadline:
            raise Failure(f"guest {SYSFS}/{name} is '{got}', not '{want}', after {timeout} s")
        time.sleep(0.5)


def guest_verify(g, when):
    """The guest's debugfs verify must read 0 wrong bits; returns it."""
    wrong = g.sh(f"cat {FPB_DEBUGFS}/verify")[1].strip()
    if wrong != "0":
        raise Failure(f"verify {wrong} {when}")
    return wrong


def counter_wait(src, prop, pred, what, timeout=30):
    """Wait until PRED(PROP of src.counters()); return that snapshot."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        snap = src.counters()
        v = snap.get(prop)
        if pred(v):
            return snap
        if time.monotonic() > deadline:
            raise Failure(f"device {prop} is {v}: {what} not seen after {timeout} s")
        time.sleep(0.2)


def no_skipping_while(m, src, what):
    """After one more sync, two syncs must pass with no page skipped."""
    m.wait_syncs(m.syncs() + 1)
    before = src.counters().get("skipped-pages")
    n = m.syncs()
    m.wait_syncs(n + 2)
    after = src.counters().get("skipped-pages")
    if after != before:
        raise Failure(f"host skipped {after - before} pages while {what}")
    return f"no page skipped in syncs {n}-{n + 2} while {what}"


class Ours(Scenario):
    name = "ours"
    desc = "churn+verify with the bitmap: completes, oracle, destination runs on, skipped > 0"
    bandwidth = 64 * MIB
    # the issue's data target, sent <= 1.25 x in use: reported, not asserted
    # (performance is measured by make bench against the other modes)
    target_ratio = 1.25


FOUR_GIB_PFN = (4 << 30) // 4096


class TwoZones(Ours):
    name = "two-zones"
    desc = ("256 MiB below 4 GiB, 256 MiB above: two zones, two ranges, each read "
            "through its own table; oracle, skipped > 0")
    extra = ("-machine", "max-ram-below-4g=256M")

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        high = [start for start, _ in res["ranges"] if start >= FOUR_GIB_PFN]
        if len(res["ranges"]) < 2 or not high:
            raise Failure(f"hop {hop}: ranges {res['ranges']}: none above 4 GiB")
        skipped_high = sum(p >= FOUR_GIB_PFN for p in res["differ_free_pfns"])
        if not skipped_high:
            raise Failure(f"hop {hop}: no page above 4 GiB was left out")
        self.notes.append(f"{len(res['ranges'])} ranges; {skipped_high} pages above 4 GiB "
                          "left out with stale content")


class Baseline(Scenario):
    name = "baseline"
    desc = "churn+verify without the feature: completes, oracle identical"
    mode = "none"

    def after_hop(self, hop, st, res):
        if res and res["differ"]:
            raise Failure(f"{res['differ']} pages differ without the feature")


class PingPong(Scenario):
    name = "pingpong"
    desc = "five ping-pong migrations with the bitmap: skipped > 0 and oracle on every hop"
    hops = 5
    min_syncs = 2


class Never(Scenario):
    name = "never"
    desc = "guest turns tracking off mid-migration (never), host stops skipping; on again before the end"

    def during(self, m, src):
        m.wait_syncs(2)
        src.sh(f"echo never > {SYSFS}/enabled")
        guest_sysfs_wait(src, "active", "0")
        self.notes.append(no_skipping_while(m, src, "tracking was off"))
        src.sh(f"echo always > {SYSFS}/enabled")
        if self.ours:
            guest_sysfs_wait(src, "active", "1")
        self.mark(src, "tracking was turned on again")
        m.wait_syncs(m.syncs() + 2)


class Granule(Scenario):
    name = "granule"
    desc = "granule_order 0 -> 3 mid-migration: host follows the new layout, oracle"

    def during(self, m, src):
        m.wait_syncs(2)
        src.sh(f"echo 3 > {SYSFS}/granule_order")
        m.wait_syncs(m.syncs() + 1)
        self.mark(src, "the granule change")
        m.wait_syncs(m.syncs() + 2)

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if self.ours and res["granule_order"] != 3:
            raise Failure(f"final bitmap has granule_order {res['granule_order']}, not 3")


class Unbind(Scenario):
    name = "unbind"
    desc = "balloon driver unbound mid-migration (host forgets the header), bound again"
    DRV = "/sys/bus/virtio/drivers/virtio_balloon"

    def during(self, m, src):
        m.wait_syncs(2)
        dev = src.sh(f"basename {self.DRV}/virtio*")[1].strip()
        src.sh(f"echo {dev} > {self.DRV}/unbind")
        if self.ours:
            counter_wait(src, "header-gpa", lambda v: v == 0, "header forgotten on unbind")
        self.notes.append(no_skipping_while(m, src, "the driver was unbound"))
        src.sh(f"echo {dev} > {self.DRV}/bind")
        if self.ours:
            counter_wait(src, "header-gpa", lambda v: v, "new header after bind")
            guest_sysfs_wait(src, "active", "1")
        self.mark(src, "the re-bind")
        m.wait_syncs(m.syncs() + 2)


class Reboot(Scenario):
    name = "reboot"
    desc = "guest reboot -f mid-migration: new kernel's pattern writes checked on the destination"
    how = "reboot -f"

    def during(self, m, src):
        m.wait_syncs(2)
        old = src.wait_ready()
        # A rebooting guest dirties little: at the usual bandwidth the hop
        # would end before the new kernel is up.  Hold it back meanwhile.
        m.set_bandwidth(MIB)
        start = src.offset()
        src.send_raw(self.how)
        if self.ours:
            # the old kernel's header must go with the old kernel
            # (a snapshot reads skipped-pages before header-gpa)
            at_reset = counter_wait(src, "header-gpa", lambda v: v == 0,
                                    "the old header forgotten at the reset",
                                    60)["skipped-pages"]
        new = src.wait_ready(start=start, timeout=120)
        if new == old:
            raise Failure("same boot id after the reboot")
        self.notes.append("guest rebooted during migration")
        start_workloads(src, self.workloads, seed_base=100)
        if self.ours:
            skipped = counter_wait(src, "header-gpa", lambda v: v,
                                   "header of the new kernel", 60)["skipped-pages"]
            if skipped != at_reset:
                raise Failure(f"{skipped - at_reset} pages skipped with no header, between "
                              "the reset and the new kernel's announcement")
            guest_sysfs_wait(src, "active", "1")
        self.mark(src, f"'{self.how.split()[0]}' and the new kernel's announcement")
        m.set_bandwidth(self.bandwidth)
        m.wait_syncs(m.syncs() + 2)


class Kexec(Reboot):
    name = "kexec"
    desc = "guest kexec mid-migration: new kernel's pattern writes checked on the destination"
    how = "/e2e/kexec-boot /kexec/bzImage /kexec/initrd.cpio.gz"
    initrd = os.path.join(CACHE, "e2e/initramfs-kexec.cpio.gz")


def skipped_per_ramblock(qemu_log):
    """Pages the filter left out of each RAMBlock, from the source QEMU's
    free_page_bitmap_filter trace events."""
    counts = {}
    with open(qemu_log, errors="replace") as f:
        for m in re.finditer(r"free_page_bitmap_filter rb (\S+) .* cleared (\d+)", f.read()):
            counts[m.group(1)] = counts.get(m.group(1), 0) + int(m.group(2))
    return counts


def numa_nodes(sizes_mib):
    """QEMU arguments for one NUMA node per size, node N backed by RAMBlock
    ramN, and the filter's trace events that count skipped pages per block.
    Both vCPUs on node 0: they share a cache, which the kernel wants on one
    node."""
    return tuple(arg for n, size in enumerate(sizes_mib) for arg in (
        "-object", f"memory-backend-ram,id=ram{n},size={size}M",
        "-numa", f"node,nodeid={n},memdev=ram{n}" + (",cpus=0-1" if n == 0 else ""))) + (
        "-trace", "free_page_bitmap_filter")


class EightNodes(Ours):
    name = "eight-nodes"
    desc = ("8 NUMA nodes of 64 MiB, 7 without a CPU: a range per node, pages left out of "
            "every node's RAM, oracle")
    extra = numa_nodes([64] * 8)

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if len(res["ranges"]) < 8:
            raise Failure(f"hop {hop}: {len(res['ranges'])} ranges for 8 nodes: {res['ranges']}")
        per_node = skipped_per_ramblock(self.src_log)
        missing = [f"ram{n}" for n in range(8) if not per_node.get(f"ram{n}")]
        if missing:
            raise Failure(f"hop {hop}: nothing left out of {missing}: {per_node}")
        self.notes.append(f"hop {hop}: {len(res['ranges'])} ranges; pages left out per node: "
                          + ", ".join(f"{n} {per_node[f'ram{n}']}" for n in range(8)))


class SixtyFourNodes(Ours):
    name = "sixty-four-nodes"
    desc = ("64 NUMA nodes, ZONE_MOVABLE on each (movablecore=50%): 128 ranges, more than "
            "fit beside the header in its page; pages left out of the last node's RAM, oracle")
    # Node 0 spans ZONE_DMA and the start of DMA32, every other node DMA32
    # and Movable: 2 + 63 * 2 = 128 zones.  The guest's NODES_SHIFT is 6.
    nodes = 64
    mem = "1040M"
    ram = 1040 * MIB
    append = "movablecore=50%"
    extra = numa_nodes([32] + [16] * 63)

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if len(res["ranges"]) <= 127:
            raise Failure(f"hop {hop}: {len(res['ranges'])} ranges, want more than 127")
        per_node = skipped_per_ramblock(self.src_log)
        filtered = [n for n in range(self.nodes) if per_node.get(f"ram{n}")]
        # The last node's zones are the last ranges, past the old cap of 127.
        if self.nodes - 1 not in filtered or len(filtered) < self.nodes * 7 // 8:
            raise Failure(f"hop {hop}: pages left out of {len(filtered)} nodes only "
                          f"({filtered}): {per_node}")
        self.notes.append(f"hop {hop}: {len(res['ranges'])} ranges; pages left out of "
                          f"{len(filtered)} of {self.nodes} nodes, "
                          f"{per_node[f'ram{self.nodes - 1}']} from the last")


def hot_add_dimm(src, new_backend=True, node=None, online="online",
                 blocks="/sys/devices/system/memory/memory*/state"):
    """device_add the 256 MiB DIMM dimm1 (its backend mem1 made first if
    NEW_BACKEND), wait for its blocks to show up offline among BLOCKS (a
    glob of state files) and write ONLINE to each."""
    if new_backend:
        src.qmp.cmd("object-add", {"qom-type": "memory-backend-ram", "id": "mem1",
                                   "size": 256 * MIB})
    dimm = {"driver": "pc-dimm", "id": "dimm1", "memdev": "mem1"}
    if node is not None:
        dimm["node"] = node
    src.qmp.cmd("device_add", dimm)
    offline = f"grep -l offline {blocks} 2>/dev/null"
    deadline = time.monotonic() + scaled(30)
    while src.sh(f"{offline} | wc -l")[1].strip() in ("", "0"):
        if time.monotonic() > deadline:
            raise Failure(f"the hot-added DIMM never showed up as offline blocks in {blocks}")
        time.sleep(0.5)
    src.sh(f"for f in $({offline}); do echo {online} > $f; done")


class Dimm(Scenario):
    name = "dimm"
    desc = "DIMM hot-added before migration: bitmap covers it, oracle over all RAM"
    known_issue = (
        "stock QEMU 10.0.2 under TCG loses writes to any RAM block not at ram_addr 0 (also "
        "without the feature, `run dimm --mode none`): cpu_physical_memory_sync_dirty_bitmap()"
        " re-arms TCG's dirty tracking with tlb_reset_dirty_range_all(start, length), start "
        "being the offset in the block, not start + rb->offset (a cold-plugged DIMM trips "
        "its assertion); qemu/patches carries the fix, so check that the QEMU is built from it")
    mem = "512M,slots=2,maxmem=1G"
    ram = 768 * MIB
    extra = ("-object", "memory-backend-ram,id=mem1,size=256M",
             "-device", "pc-dimm,id=dimm1,memdev=mem1")
    src_trace = ("-trace", "free_page_bitmap_filter")
    workloads = (CHURN, ("verify", "-w 448 -d 64 -p 100"))

    def __init__(self, mode=None):
        super().__init__(mode)
        self.dst_extra = self.extra
        self.extra = self.src_trace

    def before(self, src):
        boot_total = src.meminfo()["MemTotal"]
        hot_add_dimm(src)
        # all of the DIMM's 256 MiB, give or take a few pages
        total = src.meminfo()["MemTotal"]
        if total - boot_total < 248 * MIB:
            raise Failure(f"MemTotal {boot_total >> 20} -> {total >> 20} MiB after "
                          "onlining the DIMM")
        self.notes.append(f"MemTotal {boot_total >> 20} -> {total >> 20} MiB after the hot-add")

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        above = (4 << 30) // 4096
        if self.ours and not any(s + (n << (res["granule_order"] or 0)) > above
                                 for s, n in res["ranges"]):
            raise Failure(f"no bitmap range covers the DIMM above 4 GiB: {res['ranges']}")
        if self.ours:
            on_dimm = skipped_per_ramblock(self.src_log).get("mem1")
            if not on_dimm:
                raise Failure("no page of the DIMM's RAMBlock (mem1) was skipped")
            self.notes.append(f"hop {hop}: {on_dimm} pages of the DIMM skipped")


NODE1_DIMM = ("-object", "memory-backend-ram,id=mem1,size=256M",
              "-device", "pc-dimm,id=dimm1,memdev=mem1,node=1")


class NumaNode(Dimm):
    name = "numa-node"
    desc = ("memory-only NUMA node: its DIMM added, removed (node offline, bitmaps rebuilt) "
            "and added again while tracking is on; verify 0 each step, oracle")
    known_issue = None
    # Node 1 has no boot memory and no CPU: SRAT gives it the hotplug
    # area, so it comes online with its DIMM and goes offline without it.
    # slab_debug=P poisons the freed bitmap set, so a zone left pointing
    # into it faults at the next hotplug instead of writing freed memory.
    numa = ("-object", "memory-backend-ram,id=ram0,size=512M",
            "-numa", "node,nodeid=0,cpus=0-1,memdev=ram0", "-numa", "node,nodeid=1")
    append = "slab_debug=P"
    # Dimm's fill needs the DIMM in node 0's ZONE_NORMAL; this one is movable.
    workloads = Scenario.workloads

    def __init__(self, mode=None):
        super().__init__(mode)
        self.extra = self.numa + self.src_trace
        self.dst_extra = NODE1_DIMM

    def node_online(self, src):
        return "1" in src.sh("cat /sys/devices/system/node/online")[1].replace("0-1", "0,1")

    def verify(self, src, when):
        guest_verify(src, when)
        if src.sysfs("active") != "1":
            raise Failure(f"tracking stopped {when}: {src.sysfs('inactive_reason')}")
        return src.sh(f"cat {SYSFS}/bitmap_bytes")[1].strip()

    def plug(self, src, first):
        # movable, so that the eject can offline them again
        hot_add_dimm(src, new_backend=first, node=1, online="online_movable",
                     blocks="/sys/devices/system/node/node1/memory*/state")
        if not self.node_online(src):
            raise Failure("node 1 is not online with its DIMM")

    def unplug(self, src):
        src.qmp.cmd("device_del", {"id": "dimm1"})
        deadline = time.monotonic() + scaled(60)
        while self.node_online(src) or src.qmp.cmd("query-memory-devices"):
            if time.monotonic() > deadline:
                raise Failure("node 1 still online, or the DIMM still there, 60 s after "
                              "device_del")
            time.sleep(0.5)

    def before(self, src):
        if self.node_online(src):
            raise Failure("node 1 is online before its DIMM is added")
        src.sh(f"echo always > {SYSFS}/enabled")
        self.plug(src, True)
        steps = [f"added: {self.verify(src, 'after the add')}"]
        self.unplug(src)
        steps.append(f"removed, node 1 offline: {self.verify(src, 'after the removal')}")
        # Rebuilds while the node is offline: its zones are in the old set only.
        src.sh(f"echo 3 > {SYSFS}/granule_order && echo 0 > {SYSFS}/granule_order")
        steps.append(f"rebuilt twice: {self.verify(src, 'after the rebuilds')}")
        self.plug(src, False)
        steps.append(f"added again: {self.verify(src, 'after the second add')}")
        # A node that came online after boot has its debugfs zone files too.
        zone = src.sh(f"head -1 {FPB_DEBUGFS}/zones/node1-Movable", check=False)[1]
        if not zone.startswith("start_pfn"):
            raise Failure(f"no bitmap in debugfs for node 1's ZONE_MOVABLE: {zone!r}")
        steps.append(f"zones/node1-Movable: {zone}")
        self.notes.append("node 1's DIMM (bitmap bytes, verify 0 each time) " + "; ".join(steps))


class Postcopy(Scenario):
    """Postcopy with the bitmap: pre-copy drops free pages as usual; at the
    switchover the pages free then go to the destination as the free set
    and those dropped earlier and in use now are sent after all.  The
    destination stays paused through postcopy (-S), so the oracle compares
    the stopped pair at the end, and then the workloads check their pages."""
    name = "postcopy"
    desc = "postcopy (churn+verify): filtered before the switchover, free set at it, oracle"
    caps = ("postcopy-ram",)
    # bytes/s of the background transfer after the switchover, until the
    # scenario is done with it (faulted pages go out at once regardless)
    postcopy_bw = None

    def hop_params(self, hop):
        if self.postcopy_bw:
            return {"max-postcopy-bandwidth": self.postcopy_bw}
        return self.params

    def before_switch(self, m, src):
        """After the pre-copy syncs, before migrate-start-postcopy."""

    def after_switch(self, m, src, dst):
        """While the source is in postcopy."""

    def during(self, m, src):
        m.wait_syncs(self.min_syncs)
        self.before_switch(m, src)
        m.src.qmp.cmd("migrate-start-postcopy")
        # with the background transfer unlimited, postcopy may be over at once
        self.wait_status(m, "postcopy-active", "completed")
        m.hold = False      # the switch was the act; postcopy may end now
        self.dst = m.dst
        self.after_switch(m, src, m.dst)
        if self.postcopy_bw:
            m.src.qmp.cmd("migrate-set-parameters", {"max-postcopy-bandwidth": FAST_BW})

    def wait_status(self, m, *want, timeout=60):
        """Wait until the source's migration status is one of WANT."""
        deadline = time.monotonic() + scaled(timeout)
        while (st := m.info().get("status")) not in want:
            if time.monotonic() > deadline:
                raise Failure(f"source: migration '{st}', not {' or '.join(want)}, "
                              f"after {timeout} s")
            time.sleep(0.1)

    def still_postcopy(self, m, what):
        """WHAT happened on the destination: the source must still be in postcopy,
        or a fault may have waited for the end (when the destination drops its
        userfaultfd and a page the source never sent reads as zero)."""
        st = m.info().get("status")
        if st != "postcopy-active":
            raise Failure(f"{what} only when the source was '{st}', not in postcopy: "
                          "a fault waited for a page the source never sends")

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if not self.ours:
            return
        if not st["postcopy_bytes"]:
            raise Failure(f"hop {hop}: nothing sent in postcopy (statistics {st})")
        if not st["pc_free"]:
            raise Failure(f"hop {hop}: no free set at the switchover (statistics {st})")
        # the device state said STOP, as after a precopy migration
        guest_sysfs_wait(self.dst, "active", "0")
        self.notes.append(f"hop {hop}: switchover: {st['pc_free']} free pages not sent, "
                          f"{st['pc_redirtied']} dropped earlier sent after all; "
                          f"{st['postcopy_bytes'] / MIB:.1f} MiB after it, "
                          f"{st['pc_requests']} page requests, destination: "
                          f"{st['pc_free_faults']} faults on free pages served locally")


class PostcopyFreed(Postcopy):
    name = "postcopy-freed"
    desc = "postcopy, 256 MiB freed before the migration: most of it in the free set, oracle"
    # churn keeps pre-copy from converging before the switch
    workloads = (("freed", "-m 256 -k 8"), CHURN)

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if self.ours and st["pc_free"] * 4096 < 64 * MIB:
            raise Failure(f"hop {hop}: only {st['pc_free']} pages in the free set "
                          "after 256 MiB were freed")


class PostcopyLive(Postcopy):
    """The destination runs during postcopy, which lasts while the scenario
    acts: 64 MiB are written right before the switch and not touched again
    until the final check, and the background transfer is held at 128 KiB/s
    until then, so that page requests that wait for CPU time (churn keeps
    both cores busy) are served in postcopy all the same.  Were the 64 MiB
    read meanwhile, the destination's faults would fetch them and postcopy
    could end before the scenario acts."""
    workloads = (("freed", "-m 256 -k 8"), CHURN)
    dst_paused = False
    run_oracle = False
    postcopy_bw = 128 * 1024
    # s for what the scenario does in postcopy: each page request waits for
    # CPU time, and the 64 MiB alone keep postcopy going for 512 s
    act_timeout = 300
    hop_timeout = 600

    def before_switch(self, m, src):
        # 64 MiB written just now, with pre-copy slowed to 1 MiB/s: still
        # dirty at the switch, for postcopy to send at 128 KiB/s while the
        # scenario acts; checked only when asked (-c 0), so no fault on the
        # destination fetches them sooner
        m.set_bandwidth(MIB)
        start = src.offset()
        src.start_workload("freed", "-m 1 -k 64 -c 0 -s 11")
        src.wait_for(r"fpb-wl: freed started", 120, start, what="64 MiB more written")

    def wait_in_postcopy(self, m, what, wait):
        """WAIT() for WHAT on the destination; it must happen in postcopy."""
        try:
            wait()
        except Failure as e:
            raise Failure(f"{e}; the source is '{m.info().get('status')}': a fault waits "
                          "for a page the source never sends") from e
        self.still_postcopy(m, what)


class PostcopyAlloc(PostcopyLive):
    """The destination runs during postcopy and allocates 96 MiB at once:
    the guest's allocator hands out pages that were free at the switchover,
    which the destination never had, and each first touch must be served
    there with a zero page, not asked of the source (which would never
    send it)."""
    name = "postcopy-alloc"
    desc = "postcopy, destination allocates 96 MiB during it: served locally, workloads pass"

    def after_switch(self, m, src, dst):
        start = dst.offset()
        dst.sh("/e2e/verify -w 96 -d 96 -p 100 -s 7 </dev/null >/dev/console 2>&1 &")
        self.wait_in_postcopy(m, "the destination's 96 MiB were written", lambda: dst.wait_for(
            r"fpb-wl: verify started ws=96", self.act_timeout, start, what="the second verify started"))
        self.notes.append("the destination allocated and wrote 96 MiB in postcopy")

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if self.ours and not st["pc_free_faults"]:
            raise Failure(f"hop {hop}: the destination served no fault on a free page")


class PostcopyUnwritten(PostcopyLive):
    """The hang case: pages free in pre-copy (dropped, never sent) that the
    guest then takes without writing them (fallocated shmem), before the
    switchover.  On the destination each first read makes the kernel zero
    such a page, a fault on a page it never received: the source must send
    it, so the switchover marks it dirty again."""
    name = "postcopy-unwritten"
    desc = "postcopy, 2 MiB taken unwritten after being dropped: sent again, no hang"
    init_on_alloc = False   # it would write the pages that must stay unwritten

    def before_switch(self, m, src):
        start = src.offset()
        src.start_workload("memhold", "-m 2")
        src.wait_for(r"fpb-wl: memhold started", 60, start, what="memhold started")
        super().before_switch(m, src)

    def after_switch(self, m, src, dst):
        self.wait_in_postcopy(m, "memhold's pages were all read",
                              lambda: dst.check_workloads(["memhold"], self.act_timeout))
        self.notes.append("memhold read its 2 MiB on the destination during postcopy")

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if self.ours and not st["pc_redirtied"]:
            raise Failure(f"hop {hop}: no dropped page was sent again at the switchover")


class PostcopyRecover(PostcopyLive):
    """Postcopy paused (the channel is lost) and recovered: the source then
    rebuilds its dirty bitmap from the pages the destination has not
    received, which must leave the free set out (the destination goes on
    serving it; its pages are never sent)."""
    name = "postcopy-recover"
    desc = "postcopy paused and recovered: the free set stays unsent, workloads pass"

    def __init__(self, mode=None):
        super().__init__(mode)
        # The destination's main loop may wait on a page while the channel
        # is down: migrate-recover goes out of band, on a monitor of its own.
        self.oob_path = os.path.join(RUN, self.name, "oob.qmp")
        self.dst_extra = ("-chardev", f"socket,id=oob0,path={self.oob_path},server=on,wait=off",
                          "-mon", "chardev=oob0,mode=control")

    def after_switch(self, m, src, dst):
        oob = QMP(self.oob_path, oob=True)
        try:
            m.src.qmp.cmd("migrate-pause")
            self.wait_status(m, "postcopy-paused")
            sock = os.path.join(os.path.dirname(m.sock), "recover.sock")
            oob.cmd_oob("migrate-recover", {"uri": "unix:" + sock})
            src.qmp.cmd("migrate", {"uri": "unix:" + sock, "resume": True})
            self.wait_status(m, "postcopy-active")
        finally:
            oob.close()
        info = m.info()
        left = info.get("ram", {}).get("remaining", 0)
        free = (info.get("free-page-bitmap") or {}).get("postcopy-free-pages", 0) * 4096
        if self.ours and left >= free // 2:
            raise Failure(f"after the recovery {left / MIB:.0f} MiB are left to send, with "
                          f"{free / MIB:.0f} MiB in the free set: the free set is sent")
        self.notes.append(f"recovered: {left / MIB:.1f} MiB left to send, free set "
                          f"{free / MIB:.0f} MiB not among them")


class PostcopyOldDestination(Scenario):
    """A destination that does not know the free set (Debian's QEMU) must
    refuse the migration at its start, while the guest runs on the source."""
    name = "postcopy-old-destination"
    desc = "postcopy to a QEMU without the free set: refused at the start, guest runs on"
    caps = ("postcopy-ram",)

    def run(self, workdir):
        src = Guest(workdir, "g0", qemu=self.qemu(), mode=self.mode)
        dst = Guest(workdir, "g1", qemu=STOCK_QEMU, mode="stock", incoming=True, paused=True)
        try:
            src.start()
            src.wait_ready()
            dst.start()
            m = Migration(src, dst, os.path.join(workdir, "mig.sock"), bandwidth=SLOW_BW,
                          caps=self.caps)
            m.start()
            deadline = time.monotonic() + scaled(60)
            while (st := m.info().get("status")) not in ("failed", "completed"):
                if time.monotonic() > deadline:
                    raise Failure(f"the migration is still '{st}' after 60 s")
                time.sleep(0.2)
            if st != "failed":
                raise Failure("the migration to a destination without the free set completed")
            syncs = m.info().get("ram", {}).get("dirty-sync-count", 0)
            with open(dst.stderr_path, errors="replace") as f:
                why = re.search(r"MIG_CMD 0x[0-9a-f]+ unknown.*", f.read())
            if not why:
                raise Failure("the destination did not say it does not know the command: "
                              + dst.qemu_log_tail())
            if src.status() != "running":
                raise Failure(f"the source guest is '{src.status()}' after the refusal")
            src.sh("true")
            return [f"destination: '{why.group(0)}' after {syncs} syncs; source guest running"]
        finally:
            dst.close()
            src.close()


class Multifd(Scenario):
    name = "multifd"
    desc = "multifd with 2 channels: skipped > 0, oracle"
    caps = ("multifd",)
    params = {"multifd-channels": 2}


class StressNg(Scenario):
    """Debian's stress-ng, a test suite no one here wrote, as an oracle of
    its own: its memory stressors verify what they wrote while the hooks
    run under them, tracking always on, and a migration goes by."""
    name = "stress-ng"
    desc = ("Debian's stress-ng (vm, every method; mmap, malloc, bigheap, mremap, madvise; "
            "--verify) across a migration, tracking always on: no failure, verify 0, oracle")
    initrd = os.path.join(CACHE, "e2e/initramfs-stressng.cpio.gz")
    workloads = (VERIFY,)
    setup = (f"echo always > {SYSFS}/enabled",)
    # ~170 MiB at most, beside verify's 64 MiB in 512 MiB: no OOM kill
    STRESSORS = ("--vm 1 --vm-bytes 48M --vm-method all --mmap 1 --mmap-bytes 32M "
                 "--malloc 1 --malloc-bytes 1M --bigheap 1 --bigheap-growth 16K "
                 "--bigheap-ops 2000 --mremap 1 --mremap-bytes 16M --madvise 1")
    TIMEOUT = 40    # s: long enough to straddle the hop, which starts ~8 s in

    def before(self, src):
        if not os.path.exists(self.initrd):
            raise Skip("no stress-ng on the host to copy into the guest (make setup installs it)")
        start = src.offset()
        src.sh(f"sh /stressng/stress-ng.sh --timeout {self.TIMEOUT} --verify --page-in "
               f"--metrics-brief {self.STRESSORS} </dev/null >/dev/console 2>&1 &")
        src.wait_for(r"stress-ng: info: .*dispatching hogs", 60, start, what="stress-ng started")
        time.sleep(2)
        version = subprocess.run(["/usr/bin/stress-ng", "--version"], capture_output=True,
                                 text=True).stdout.split(",")[0]
        self.notes.append(f"{version}: {guest_verify(src, 'with stress-ng running')} wrong "
                          "bits with it running, before the migration")

    def after_destination(self, src, dst):
        if "fpb-sng: exit" in src.text(0):
            raise Failure(f"stress-ng ended before the migration did: its {self.TIMEOUT} s "
                          "must straddle the hop")
        m = dst.wait_for(r"fpb-sng: exit (\d+)", 3 * self.TIMEOUT, 0, what="stress-ng's end")
        failed = re.findall(r"stress-ng: (?:fail|error): (.*)", src.text(0) + dst.text(0))
        if m.group(1) != "0" or failed:
            raise Failure(f"stress-ng exit {m.group(1)} on the destination: "
                          + "; ".join(failed[:10]))
        if dst.sysfs("active") != "1":
            raise Failure("tracking is not active on the destination after stress-ng")
        done = re.search(r"stress-ng: info: .*(successful run completed in \S+)", dst.text(0))
        self.notes.append(f"stress-ng exit 0 on the destination"
                          f"{' (' + done.group(1) + ')' if done else ''}, verify "
                          f"{guest_verify(dst, 'after stress-ng')}")


class HostileGuest(Scenario):
    """A guest that attacks the host through its bitmap: hostile/fpb_hostile.c,
    loaded with tracking always on before the migration starts, publishes
    a layout that calls every page free up to the end of guest RAM, the
    PCI hole, its BARs and the BIOS included.  Three hops, each of a
    freshly booted guest: a well-behaved one as busy, the yardstick (the
    module's dry run: the same churn on a copy of the header the host
    never reads); the attacker bumping seq as fast as it can and flipping
    ACTIVE, while QMP round trips are timed (query-migrate, p99): they
    must stay within 1.5 x the yardstick's; and the attacker holding its layout still from the first
    pass on, so that the host believes it: the first MiB, the firmware's
    (option ROMs shadowed in RAM: kvmvapic fails the load without its
    own), must arrive intact.  With an attacker the downtime stays within
    twice the limit, and QEMU lives throughout.  The attacker's own memory
    is lost on the destination, as it asked: that guest is never resumed."""
    name = "hostile-guest"
    desc = ("a guest module bumps seq, flips ACTIVE and calls every page free, PCI hole and "
            "BIOS included: QMP p99 <= 1.5 x a well-behaved guest's, downtime <= 2 x the "
            "limit, QEMU lives, the first MiB arrives intact")
    # guest RAM at [0, 256M) and [4G, 4G + 256M): one range over all of it
    # covers the PCI hole, the 32-bit BARs and the BIOS
    extra = ("-M", "max-ram-below-4g=256M")
    END_PFN = (4096 + 256) * MIB >> 12
    initrd = os.path.join(CACHE, "e2e/initramfs-hostile.cpio.gz")
    WINDOW_S = 12           # QMP sampled from the start of the hop
    WINDOW_BW = 2 * MIB     # so that the hop goes on meanwhile
    # on top of 1.5 x: two hops one after the other, each p99 the 6th worst
    # of ~550, on 2 host cores that also run 4 vCPUs
    SLACK_MS = 10
    # (start, size): the first MiB but the VGA hole, which must arrive intact
    FIRMWARE = ((0, 0xa0000), (0xc0000, 0x40000))

    def missing(self):
        if not os.path.exists(self.initrd):
            return f"no {self.initrd}: the guest kernel has no Module.symvers (make kernel)"
        return None

    def run(self, workdir):
        good = self.hop(os.path.join(workdir, "well-behaved"), "hold_ms=0 dry=1")
        bad = self.hop(os.path.join(workdir, "churn"), "hold_ms=0")
        held = self.hop(os.path.join(workdir, "hold"), "churn_ms=0")
        notes = []
        for what, h in (("well-behaved", good), ("churn", bad), ("hold", held)):
            notes.append(f"{what}: {h['attack'] or 'no attacker'}: QMP query-migrate p50 "
                         f"{h['p50']:.1f} ms, p99 {h['p99']:.1f} ms ({h['samples']} samples), "
                         f"downtime {h['downtime']} ms, sent {h['sent'] / MIB:.1f} MiB, skipped "
                         f"{h['skipped']}, rejected layouts {h['rejected']}, free dirty pages at "
                         f"most {h['free_dirty']} counted / {h['discounted']} discounted; "
                         "first MiB intact")
        for what, h in (("well-behaved", good), ("churn", bad)):
            if h["samples"] < 100:
                raise Failure(f"{what}: only {h['samples']} QMP samples before the hop ended; "
                              + "; ".join(notes))
        limit = 1.5 * good["p99"] + self.SLACK_MS
        if bad["p99"] > limit:
            raise Failure(f"QMP p99 {bad['p99']:.1f} ms with the hostile guest, over 1.5 x "
                          f"{good['p99']:.1f} ms + {self.SLACK_MS} ms; " + "; ".join(notes))
        for what, h in (("churn", bad), ("hold", held)):
            if h["downtime"] > 2 * self.downtime_ms:
                raise Failure(f"{what}: downtime {h['downtime']} ms, over 2 x the "
                              f"{self.downtime_ms} ms limit; " + "; ".join(notes))
        return notes

    def hop(self, workdir, attack):
        """One hop, with the module loaded with ATTACK's parameters (or
        none); the QMP round trips of the window, the hop's statistics."""
        os.makedirs(workdir)
        src = Guest(workdir, "g0", qemu=self.qemu(), mode=self.mode, mem=self.mem,
                    extra=self.extra, initrd=self.initrd)
        dst = Guest(workdir, "g1", qemu=self.qemu(), mode=self.mode, mem=self.mem,
                    extra=self.extra, initrd=self.initrd, incoming=True, paused=True)
        try:
            src.start()
            src.wait_ready()
            src.sh(f"echo always > {SYSFS}/enabled")
            guest_sysfs_wait(src, "active", "1")
            start_workloads(src, self.workloads)
            if attack:
                gpa = src.counters()["header-gpa"]
                start = src.offset()
                src.sh(f"insmod /hostile/fpb_hostile.ko header_gpa={gpa:#x} "
                       f"end_pfn={self.END_PFN:#x} {attack}")
                attack = src.wait_for(r"fpb_hostile: (attacking|dry run).*", 10, start).group(0)
            dst.start()
            m = Migration(src, dst, os.path.join(workdir, "mig.sock"),
                          bandwidth=self.WINDOW_BW, downtime_ms=self.downtime_ms, hold=True)
            m.start()
            rtts = []
            end = time.monotonic() + self.WINDOW_S
            while time.monotonic() < end:
                t = time.monotonic()
                status = m.info().get("status")
                rtts.append((time.monotonic() - t) * 1000)
                if status not in ("setup", "active"):
                    # a guest that calls everything free may let the hop
                    # converge at once: that is its own loss, not a hang
                    m.hold = False
                    break
                time.sleep(0.02)
            try:
                m.finish(FAST_BW)
            except Failure as e:
                raise Failure(f"{attack or 'no attacker'}: {e}; destination: "
                              + dst.qemu_log_tail(2))
            st = m.stats()
            for g in (src, dst):
                g.check_alive()
                g.status()      # QMP still answers
            for start, size in self.FIRMWARE:
                a, b = (self.read_phys(g, start, size, workdir) for g in (src, dst))
                if a != b:
                    raise Failure(f"guest-physical [{start:#x}, {start + size:#x}) differs on "
                                  f"the destination ({attack or 'no attacker'}): the "
                                  "firmware's memory was dropped")
            rtts.sort()
            seen = [p.get("free-page-bitmap") or {} for _t, p in m.polls]
            return {"p50": rtts[len(rtts) // 2], "p99": rtts[int(len(rtts) * 0.99)],
                    "samples": len(rtts), "downtime": st["downtime_ms"],
                    "sent": st["transferred"], "skipped": st["skipped"], "rejected": st["rejected"],
                    "free_dirty": max(s.get("free-dirty-pages", 0) for s in seen),
                    "discounted": max(s.get("free-dirty-pages-discounted", 0) for s in seen),
                    "attack": attack}
        finally:
            dst.close()
            src.close()

    @staticmethod
    def read_phys(g, start, size, workdir):
        path = os.path.join(workdir, f"{g.name}-{start:x}.bin")
        g.qmp.cmd("pmemsave", {"val": start, "size": size, "filename": path})
        with open(path, "rb") as f:
            return f.read()


class InitOnFree(Scenario):
    name = "init-on-free"
    desc = "init_on_free=1: guest refuses the feature, nothing skipped, RAM identical"
    append = "init_on_free=1"

    def before(self, src):
        if self.ours:
            why = src.sysfs("inactive_reason")
            msg = src.sh("dmesg | grep 'free page bitmap' || true")[1].strip()
            if "init_on_free" not in why + msg:
                raise Failure(f"no init_on_free refusal: inactive_reason '{why}', dmesg '{msg}'")
            gpa = src.counters().get("header-gpa")
            if gpa:
                raise Failure(f"a header was announced ({gpa:#x}) with init_on_free=1")
            self.notes.append(f"guest says: {msg or why}")

    def after_hop(self, hop, st, res):
        if self.ours and st["skipped"] is None:
            raise Failure("query-migrate has no free-page-bitmap statistics")
        if st["skipped"]:
            raise Failure(f"{st['skipped']} pages skipped with init_on_free=1")
        if res and res["differ"]:
            raise Failure(f"{res['differ']} pages differ with init_on_free=1")


class Soak(Scenario):
    """make soak, not make check: many oracle-checked hops of one guest."""
    name = "soak"
    hops = int(os.environ.get("FPB_SOAK_HOPS") or 20)
    desc = (f"{hops} ping-pong hops of a churning guest, granule 0 and 3 and multifd on "
            "and off in turn: oracle and workload checks on every hop")
    min_syncs = 2

    def hop_caps(self, hop):
        return {"multifd": hop % 2 == 0}

    def hop_params(self, hop):
        return {"multifd-channels": 2} if hop % 2 == 0 else None

    def during(self, m, src):
        granule = 3 if m.hop % 4 >= 2 else 0
        if self.ours and src.sysfs("granule_order") != str(granule):
            src.sh(f"echo {granule} > {SYSFS}/granule_order")
            self.mark(src, f"the change to granule_order {granule}")
        m.wait_syncs(m.syncs() + self.min_syncs)

    def after(self, hops):
        super().after(hops)
        self.notes.append(
            f"soak: {len(hops)} hops, {sum(h['oracle_pages'] for h in hops)} pages compared, "
            f"{sum(h['differ'] for h in hops)} differing, "
            f"{sum(h['bad_pages'] for h in hops)} bad (in use, or called free wrongly), "
            f"{sum(h['skipped'] or 0 for h in hops)} pages skipped, "
            f"{sum(h['transferred'] for h in hops) / MIB:.0f} MiB sent")


class Postgres(Scenario):
    """A Debian 12 userspace with PostgreSQL 15 (debian_guest.py), judged
    by PostgreSQL's own checks: pgbench's balances, pg_amcheck and
    pg_checksums (guest/debian/pg.sh) on each destination, while pgbench
    runs through every hop."""
    name = "postgres"
    desc = ("Debian 12, PostgreSQL 15 under pgbench, two hops (there and back): pgbench's "
            "balances, pg_amcheck --heapallindexed, pg_checksums, server log, oracle each hop")
    mem = "1G"
    ram = 1024 * MIB
    kernel, sysmap = debian_guest.KERNEL, debian_guest.SYSMAP
    initrd = None
    append = debian_guest.APPEND
    hops = 2
    min_syncs = 2
    workloads = (debian_guest.PGLOAD,)
    check_timeout = debian_guest.CHECK_TIMEOUT

    def missing(self):
        return debian_guest.missing()

    def start_helpers(self, workdir):
        self.extra = debian_guest.disk_args(workdir)

    def before(self, src):
        failed = re.search(r"fpb-pg: FAIL.*", src.text())
        if failed:
            raise Failure(f"{src.name}: {failed.group(0)}")
        debian_guest.warm_cache(src)

    def after_destination(self, src, dst):
        self.notes.append(f"{dst.name}: " + "; ".join(
            re.findall(r"fpb-pg: check (.*)", dst.text())[-4:]))
        guest_verify(dst, f"on {dst.name} after PostgreSQL's checks")


class PostgresSoak(Postgres):
    name = "postgres-soak"
    desc = ("Debian 12, PostgreSQL 15 under pgbench, 2 GiB, six hops: PostgreSQL's checks "
            "and the oracle on each")
    mem = "2G"
    ram = 2048 * MIB
    hops = 6


class PostgresCatches(Postgres):
    name = "postgres-catches"
    desc = ("positive control: QEMU also drops every 64th dirty page in use (a test switch); "
            "the oracle, and something on the destination, must notice")
    hops = 1
    must_fail_with = "; and on the destination: "

    def start_helpers(self, workdir):
        super().start_helpers(workdir)
        self.extra += ("-global", "virtio-balloon-device.x-free-page-bitmap-test-drop-in-use=64")


class PostgresChecksFail(Scenario):
    """The postgres scenario's checks (pg_check in guest/debian/pg.sh) pass
    on the provisioned database and fail on each kind of damage a lost
    page could do to it; no migration."""
    name = "postgres-checks-fail"
    desc = ("positive controls of the postgres scenario's checks: a transaction lost, a "
            "history row without its balances, a corrupt heap page on disk, each caught")
    # (what, commands after ". /e2e/pg.sh", what pg_check must say; None: pass)
    cases = (
        ("the provisioned database", "COMMITTED=0 pg_check", None),
        ("a committed transaction missing", "COMMITTED=1 pg_check",
         r"history rows 0 for 1 committed"),
        ("a history row without its balances",
         "psql_q 'INSERT INTO pgbench_history VALUES (1, 1, 1, 5, now())' && "
         "COMMITTED=1 pg_check", r"history deltas 0 0 0 5;"),
        ("a heap page of pgbench_accounts overwritten on disk",
         "psql_q 'DELETE FROM pgbench_history' && "
         "f=$PG_DATA/$(psql_q \"SELECT pg_relation_filepath('pgbench_accounts')\") && "
         "pg_stop && dd if=/dev/urandom of=$f bs=8192 seek=100 count=1 conv=notrunc 2>/dev/null && "
         "echo 3 > /proc/sys/vm/drop_caches && pg_start && COMMITTED=0 pg_check",
         r"invalid page in block 100 of relation"),
    )

    def missing(self):
        return debian_guest.missing()

    def run(self, workdir):
        g = Guest(workdir, "g0", qemu=self.qemu(), mode=self.mode, mem="1G",
                  kernel=debian_guest.KERNEL, initrd=None, append=debian_guest.APPEND,
                  extra=debian_guest.disk_args(workdir))
        notes = []
        try:
            g.start()
            g.wait_ready()
            for what, cmd, want in self.cases:
                rc, out = g.sh(". /e2e/pg.sh; " + cmd, timeout=300, check=False)
                if want is None and rc:
                    raise Failure(f"{what}: pg_check failed: {out}")
                if want and (not rc or not re.search(want, out)):
                    raise Failure(f"{what}: pg_check did not say '{want}' (rc {rc}): {out}")
                notes.append(f"{what}: " + (next(line for line in out.splitlines()
                                                 if re.search(want, line)) if want else "passes"))
            return notes
        finally:
            g.close()


class OracleCatches(Scenario):
    name = "oracle-catches"
    desc = ("positive control: QEMU also drops every 16th dirty page in use (a test switch); "
            "the oracle must catch it")
    extra = ("-global", "virtio-balloon-device.x-free-page-bitmap-test-drop-in-use=16")
    must_fail_with = "differing pages are IN USE"
    # A dropped page may be one that a device's state load checks (seen:
    # kvm-tpr-opt reading the guest's copy of the VAPIC option ROM): the
    # destination then refuses the stream before the oracle can look.
    retry_on = "migration failed"
    retries = 2


# KVM's manual dirty-log clear, emulated under TCG by our QEMU (test only):
# a page a sync reported stays writable without logging until migration
# clears its chunk's log, so dropping a page before that clear loses the
# guest's writes as it would on KVM.  clear_bmap chunks of 2^shift pages.
KVM_ORDER_WARNING = "x-tcg-manual-dirty-clear is on"


def kvm_order_args(shift):
    return ("-global", "migration.x-tcg-manual-dirty-clear=on",
            "-global", f"migration.x-clear-bitmap-shift={shift}")


QSD = os.path.join(CACHE, "build/qemu/storage-daemon/qemu-storage-daemon")


class SharedRam(Scenario):
    name = "shared-ram"
    desc = ("guest RAM on memfd share=on, a vhost-user-blk disk served by qemu-storage-daemon "
            "(a file system written during the migration, read back on the destination): "
            "free pages skipped, oracle")
    # What vhost-user hosts run: guest RAM another process maps (here
    # qemu-storage-daemon, as OVS-DPDK or virtiofsd would), and a device
    # that writes guest RAM from there, its writes in the vhost log.
    ram_backend = ("-object", "memory-backend-memfd,id=ram0,size=512M,share=on",
                   "-machine", "memory-backend=ram0")
    trace = ("-trace", "free_page_bitmap_filter")

    def __init__(self, mode=None):
        super().__init__(mode)
        self.extra = self.ram_backend + self.trace
        self.qsd = None

    def start_helpers(self, workdir):
        """qemu-storage-daemon: one disk image, one export per QEMU (two
        hosts' backends on shared storage)."""
        if not os.access(QSD, os.X_OK):
            raise Failure(f"no {QSD}: make qemu builds it (--enable-tools)")
        img = os.path.join(workdir, "disk.img")
        with open(img, "wb") as f:
            f.truncate(64 * MIB)
        subprocess.run(["/sbin/mkfs.ext2", "-q", "-F", img], check=True)
        socks = [os.path.join(workdir, f"vu{i}.sock") for i in range(2)]
        argv = [QSD, "--blockdev", f"driver=file,filename={img},node-name=file0",
                "--blockdev", "driver=raw,file=file0,node-name=disk0"]
        for i, sock in enumerate(socks):
            argv += ["--export", f"type=vhost-user-blk,id=exp{i},node-name=disk0,"
                     f"addr.type=unix,addr.path={sock},writable=on"]
        log_path = os.path.join(workdir, "qsd.log")
        with open(log_path, "w") as log_f:
            self.qsd = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log_f,
                                        stderr=log_f, start_new_session=True)
        deadline = time.monotonic() + scaled(30)
        while not all(os.path.exists(p) for p in socks):
            if self.qsd.poll() is not None or time.monotonic() > deadline:
                with open(log_path) as f:
                    raise Failure(f"qemu-storage-daemon did not start: {f.read()[-500:]}")
            time.sleep(0.05)
        disk = "vhost-user-blk-pci,id=disk0,chardev=vu0,num-queues=1"
        self.src_extra = ("-chardev", f"socket,id=vu0,path={socks[0]}", "-device", disk)
        self.dst_extra = ("-chardev", f"socket,id=vu0,path={socks[1]}", "-device", disk)

    def stop_helpers(self):
        if self.qsd:
            self.qsd.kill()
            self.qsd.wait()
            self.qsd = None

    def before(self, src):
        src.sh("mkdir -p /mnt && mount -t ext2 /dev/vda /mnt")

    def during(self, m, src):
        start = src.offset()
        src.sh("/e2e/disk.sh write /mnt </dev/null >/dev/console 2>&1 & echo $! > /tmp/disk.pid")
        src.wait_for(r"fpb-disk: wrote 2\b", 120, start, what="two files written")
        super().during(m, src)
        self.disk_start = start

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if self.ours:
            on_ram = skipped_per_ramblock(self.src_log).get("ram0")
            if not on_ram:
                raise Failure("no page of the shared RAM block (ram0) was skipped")
            self.notes.append(f"hop {hop}: {on_ram} pages of the shared RAM block skipped")

    def after_destination(self, src, dst):
        """The destination runs: stop the writer, check every file from disk."""
        failed = re.findall(r"fpb-disk: FAIL.*", src.text(self.disk_start))
        dst.sh("kill $(cat /tmp/disk.pid); while kill -0 $(cat /tmp/disk.pid) 2>/dev/null; "
               "do sleep 0.2; done")
        failed += re.findall(r"fpb-disk: FAIL.*", dst.text())
        out = dst.sh("/e2e/disk.sh check", timeout=120)[1]
        if failed or "check PASS" not in out:
            raise Failure(f"files on the vhost-user-blk disk: {failed} {out}")
        self.notes.append("vhost-user-blk disk: " + out.strip().splitlines()[-1])


HUGEPAGE_KB = 2048


class HugeRam(Scenario):
    name = "hugetlb-ram"
    desc = ("guest RAM on 2 MiB hugetlbfs pages share=on, the device proposes a 2 MiB "
            "granule: free pages skipped, oracle")
    granule_order = 9

    def __init__(self, mode=None):
        super().__init__(mode)
        self.mnt = os.path.join(CACHE, "e2e/hugepages")
        self.extra = ("-object", f"memory-backend-file,id=ram0,size={self.ram},"
                      f"mem-path={self.mnt},share=on",
                      "-machine", "memory-backend=ram0",
                      "-global", "virtio-balloon-device.x-free-page-bitmap-granule-shift=21",
                      "-trace", "free_page_bitmap_filter")
        self.reserved = None

    def start_helpers(self, workdir):
        """Reserve the host's huge pages for both guests (and a few to
        spare) and mount hugetlbfs; Skip, saying why, if they cannot be."""
        path = "/proc/sys/vm/nr_hugepages"
        with open("/proc/meminfo") as f:
            info = dict(re.findall(r"(\w+):\s+(\d+)", f.read()))
        if int(info.get("Hugepagesize", 0)) != HUGEPAGE_KB:
            raise Skip(f"the host's default huge page is {info.get('Hugepagesize')} kB, not 2 MiB")
        need = 2 * self.ram // (HUGEPAGE_KB * 1024) + 8
        with open(path) as f:
            self.reserved = int(f.read())
        free = int(info["HugePages_Free"])
        if free < need:
            with open(path, "w") as f:
                f.write(str(self.reserved + need - free))
            with open("/proc/meminfo") as f:
                free = int(re.search(r"HugePages_Free:\s+(\d+)", f.read()).group(1))
            if free < need:
                raise Skip(f"cannot reserve {need} huge pages of 2 MiB on the host "
                           f"(got {free} free: memory too fragmented?)")
        os.makedirs(self.mnt, exist_ok=True)
        if subprocess.run(["mountpoint", "-q", self.mnt]).returncode:
            subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", self.mnt],
                           check=True)
        self.notes.append(f"{need} huge pages of 2 MiB reserved on the host")

    def stop_helpers(self):
        if subprocess.run(["mountpoint", "-q", self.mnt]).returncode == 0:
            subprocess.run(["umount", self.mnt])
        if self.reserved is not None:
            with open("/proc/sys/vm/nr_hugepages", "w") as f:
                f.write(str(self.reserved))
            self.reserved = None

    def after_hop(self, hop, st, res):
        super().after_hop(hop, st, res)
        if not self.ours:
            return
        if res["granule_order"] != self.granule_order:
            raise Failure(f"the guest's granule_order is {res['granule_order']}, not "
                          f"{self.granule_order} as the device proposed")
        on_ram = skipped_per_ramblock(self.src_log).get("ram0")
        if not on_ram:
            raise Failure("no page of the hugetlbfs RAM block (ram0) was skipped")
        self.notes.append(f"hop {hop}: {on_ram} pages of the hugetlbfs RAM block skipped, "
                          f"granule 2 MiB")


class KvmOrder:
    """Mixin: the scenario under the emulated KVM order, checked to be on."""
    shift = 18

    def __init__(self, mode=None):
        super().__init__(mode)
        self.extra = tuple(self.extra) + kvm_order_args(self.shift)

    def after(self, hops):
        super().after(hops)
        with open(self.src_log, errors="replace") as f:
            if KVM_ORDER_WARNING not in f.read():
                raise Failure(f"the source QEMU did not say '{KVM_ORDER_WARNING}': "
                              "the emulation was not on")
        self.notes.append(f"emulated KVM manual dirty-log clear, clear_bmap chunks of "
                          f"2^{self.shift} pages")


class KvmBaseline(KvmOrder, Baseline):
    name = "kvm-baseline"
    desc = "emulated KVM dirty-log clear, without the feature: RAM identical"


class KvmOurs(KvmOrder, Ours):
    name = "kvm-ours"
    desc = "emulated KVM dirty-log clear (1 GiB chunks): churn+verify, oracle, skipped > 0"


class KvmOursShift6(KvmOurs):
    name = "kvm-ours-shift6"
    desc = "emulated KVM dirty-log clear, 256 KiB chunks: churn+verify, oracle, skipped > 0"
    shift = 6


class KvmRetry(KvmOurs):
    name = "kvm-retry"
    desc = ("emulated KVM dirty-log clear, 256 KiB chunks: a migration cancelled after its "
            "first sync, then one from the same QEMU: churn+verify, oracle, skipped > 0")
    shift = 6

    def before(self, src):
        """The first try, to a file at 1 MiB/s, cancelled once it synced: its
        sync leaves every page clean, which KVM's logging, initially set,
        does not rely on for the second one."""
        super().before(src)
        path = os.path.join(src.workdir, "cancelled.mig")
        src.qmp.cmd("migrate-set-parameters", {"max-bandwidth": MIB})
        src.qmp.cmd("migrate", {"uri": "file:" + path})
        self.wait_first_try(src, lambda i: i.get("ram", {}).get("dirty-sync-count", 0) >= 1,
                            "sync")
        src.qmp.cmd("migrate_cancel")
        self.wait_first_try(src, lambda i: i.get("status") == "cancelled", "be cancelled")
        os.unlink(path)
        self.notes.append("a first try cancelled after its first sync")

    @staticmethod
    def wait_first_try(src, done, what, timeout=60):
        deadline = time.monotonic() + scaled(timeout)
        while True:
            info = src.qmp.cmd("query-migrate")
            if done(info):
                return
            if info.get("status") == "failed":
                raise Failure(f"the first try failed: {info.get('error-desc')}")
            if time.monotonic() > deadline:
                raise Failure(f"the first try did not {what} within {timeout} s")
            time.sleep(0.1)


class KvmPingPong(KvmOrder, PingPong):
    name = "kvm-pingpong"
    desc = "emulated KVM dirty-log clear, 256 KiB chunks: five ping-pong hops, oracle each"
    shift = 6


class KvmGranule(KvmOrder, Granule):
    name = "kvm-granule"
    desc = "emulated KVM dirty-log clear: granule_order 0 -> 3 mid-migration, oracle"


class KvmMultifd(KvmOrder, Multifd):
    name = "kvm-multifd"
    desc = "emulated KVM dirty-log clear, 256 KiB chunks: multifd, oracle"
    shift = 6


SCENARIOS = [Ours, TwoZones, Baseline, PingPong, Never, Granule, Unbind, Reboot, Kexec, Dimm,
             NumaNode, EightNodes, SixtyFourNodes, Postcopy, PostcopyFreed, PostcopyAlloc,
             PostcopyUnwritten, PostcopyRecover, PostcopyOldDestination, Multifd, StressNg,
             InitOnFree, HostileGuest,
             SharedRam, Postgres, PostgresChecksFail, HugeRam, OracleCatches, KvmBaseline,
             KvmOurs, KvmOursShift6, KvmRetry, KvmPingPong, KvmGranule, KvmMultifd]


class Skip(Exception):
    """The scenario cannot run here; the message says why."""


def start_workloads(g, workloads, seed_base=0):
    start = g.offset()
    for k, (name, args) in enumerate(workloads):
        g.start_workload(name, f"{args} -s {seed_base + k + 1}")
    for name, _ in workloads:
        g.wait_for(rf"fpb-wl: {name} started", 120, start, what=f"{name} started")


def run_scenario(sc, workdir, verbose=False):
    """Run one scenario; return its notes.  Raises Failure or Skip."""
    qemu = sc.qemu()
    rm_rf(workdir)
    os.makedirs(workdir)
    if hasattr(sc, "run"):
        notes = sc.run(workdir)
        for n in notes:
            log(n)
        return None
    guests = []
    keep_dumps = verbose    # and whenever the oracle finds a wrong page

    def guest(name, **kw):
        extra = list(sc.extra) + list(getattr(sc, "dst_extra", ()) if kw.get("incoming")
                                      else sc.src_extra)
        # explicit either way: Debian's kernel zeroes by default
        append = f"init_on_alloc={int(sc.init_on_alloc)} {sc.append}"
        g = Guest(workdir, name, qemu=qemu, mode=sc.mode, mem=sc.mem, append=append,
                  extra=extra, kernel=sc.kernel, initrd=sc.initrd, **kw)
        guests.append(g)
        return g.start()

    def boot_source():
        """The source, booted; once more if its QEMU died by a signal before
        the guest was up, with no migration begun (upstream TCG races at
        boot, e.g. memory_region_get_ram_ptr()'s assertion during PCI
        enumeration, seen once in CI): said in the notes, logs kept."""
        src = guest("g0")
        try:
            src.wait_ready()
            return src
        except Failure as e:
            if src.alive() or src.proc.returncode >= 0:
                raise
            src.close()
            guests.remove(src)
            for path in (src.stderr_path, src.console):
                os.replace(path, path + ".crashed")
            sc.notes.append(f"g0 crashed while booting, before any migration, and was "
                            f"booted again (logs: *.crashed): {str(e)[-160:]}")
        src = guest("g0")
        src.wait_ready()
        return src

    try:
        sc.start_helpers(workdir)
        src = boot_source()
        sc.src_log = src.stderr_path
        for cmd in sc.setup:
            src.sh(cmd)
        sc.before(src)
        start_workloads(src, sc.workloads)
        names = sorted({n for n, _ in sc.workloads})
        time.sleep(2)
        off = src.offset()
        time.sleep(4)
        base = {n: rate(p) for n, p in src.progress(off).items()}
        hops = []
        for hop in range(1, sc.hops + 1):
            free = src.meminfo()["MemFree"]
            in_use = sc.ram - free
            dst = guest(f"g{hop}", incoming=True, paused=sc.dst_paused)
            m = Migration(src, dst, os.path.join(workdir, "mig.sock"), bandwidth=sc.bandwidth,
                          downtime_ms=sc.downtime_ms, caps=sc.hop_caps(hop),
                          params=sc.hop_params(hop), hold=True, timeout=sc.hop_timeout)
            m.hop = hop
            m.start()
            sc.during(m, src)
            m.finish(sc.final_bandwidth)
            st = m.stats()
            st["in_use"] = in_use
            during = {n: rate(p) for n, p in
                      src.progress(m.console_start, m.console_end).items()}
            st["progress"] = {n: (during.get(n) / base[n] if base.get(n) and during.get(n)
                                  else None) for n in names}
            res, bad = None, None
            if sc.run_oracle:
                res = oracle(src, dst, st["header_gpa"], os.path.join(workdir, "dumps"),
                             keep=verbose, sysmap=sc.sysmap,
                             keep_bad=not sc.must_fail_with)
                st["oracle_pages"], st["differ"] = res["pages"], res["differ"]
                st["bad_pages"] = len(res["bad"]) + len(res["wrong_free"])
                keep_dumps = keep_dumps or bool(res.get("dumps_kept"))
                try:
                    st["oracle"] = oracle_verdict(res)
                except Failure as e:
                    bad = e
            if sc.dst_paused:
                dst.qmp.cmd("cont")
            try:
                dst.check_workloads(names, sc.check_timeout)
                sc.after_destination(src, dst)
            except Failure as e:
                if bad:
                    raise Failure(f"{bad}; and on the destination: {e}")
                raise
            if bad:
                raise Failure(f"{bad}; the destination's workloads did not notice")
            st["ratio"] = st["transferred"] / in_use
            hops.append(st)
            log(f"hop {hop}: sent {st['transferred'] / MIB:.1f} MiB = {st['ratio']:.2f} x in use "
                f"({in_use / MIB:.0f} MiB), normal {st['normal']}, zero {st['duplicate']}, "
                f"syncs {st['syncs']}, total {st['total_ms']} ms, downtime "
                f"{st['downtime_ms']} ms, skipped {st['skipped']} (last {st['skipped_last']}, "
                f"filtered syncs {st['filtered_syncs']}, rejected {st['rejected']} "
                f"{st['reject_reason'] or ''}), progress "
                + ", ".join(f"{n} {v:.2f}" if v else f"{n} ?" for n, v in st["progress"].items()))
            if "oracle" in st:
                log(f"hop {hop}: {st['oracle']}")
            log(f"hop {hop}: destination workloads: check PASS")
            sc.after_hop(hop, st, res)
            src.close()
            src = dst
        sc.after(hops)
        for n in sc.notes:
            log(n)
        return hops
    finally:
        for g in guests:
            g.close()
        sc.stop_helpers()
        if not keep_dumps:
            rm_rf(os.path.join(workdir, "dumps"))


class Distro(Scenario):
    """The kernel a distribution ships (Debian's cloud-amd64 configuration,
    make kernel-distro) instead of the tinyconfig guest: nothing in the
    feature may depend on the test kernel."""
    name = "distro"
    desc = "Debian's cloud-amd64 configuration (-O2, NR_CPUS=8192): skipped > 0, oracle"
    kernel, sysmap = DISTRO_BZIMAGE, DISTRO_SYSMAP
    append = "nokaslr"     # the oracle reads the kernel at System.map's addresses

    def missing(self):
        if not os.path.exists(self.kernel):
            return f"no {self.kernel}: make kernel-distro builds it (a long build, not in make check)"
        return None


# Not in make check: make soak runs Soak and PostgresSoak, make test-distro
# Distro; PostgresCatches is run by hand (what PostgreSQL notices)
ON_DEMAND = [Soak, PostgresSoak, PostgresCatches, Distro]


def cmd_test(names):
    chosen = [s for s in SCENARIOS + ON_DEMAND if s.name in names] if names else SCENARIOS
    print("TAP version 13")
    print(f"1..{len(chosen)}")
    failed = k = 0
    missing = feature_missing()
    for cls in chosen:
        sc = cls()
        k += 1
        label = f"e2e {sc.name}: {sc.desc}"
        if sc.mode == "ours" and missing:
            print(f"ok {k} - {label} # SKIP {missing}", flush=True)
            continue
        if sc.missing():
            print(f"ok {k} - {label} # SKIP {sc.missing()}", flush=True)
            continue
        t0 = time.monotonic()
        hops = None
        try:
            with cpu_lock():
                for attempt in range(1 + sc.retries):
                    try:
                        hops = run_scenario(sc, os.path.join(RUN, sc.name))
                    except Failure as e:
                        if (sc.must_fail_with and sc.retry_on and sc.retry_on in str(e)
                                and attempt < sc.retries):
                            log(f"no verdict, run again: {str(e)[:300]}")
                            continue
                        if not sc.must_fail_with or sc.must_fail_with not in str(e):
                            raise
                        log(f"caught as it must be: {str(e)[:300]}")
                    else:
                        if sc.must_fail_with:
                            raise Failure(f"the run passed: nothing said '{sc.must_fail_with}'")
                    break
            print(f"ok {k} - {label} ({time.monotonic() - t0:.0f} s)", flush=True)
        except Skip as e:
            print(f"ok {k} - {label} # SKIP {e}", flush=True)
        except Exception as e:  # a harness error fails the test too
            failed += 1
            print(f"not ok {k} - {label}", flush=True)
            msg = str(e) if isinstance(e, Failure) else traceback.format_exc()
            for line in msg.splitlines()[:40]:
                log(line)
            if sc.known_issue:
                log("known cause: " + sc.known_issue)
            log(f"logs: {os.path.join(RUN, sc.name)}")
        if sc.target_ratio and hops:
            worst = max(h["ratio"] for h in hops)
            log(f"data: sent {worst:.2f} x memory in use at the start (issue target"
                f" <= {sc.target_ratio} x; a measurement, not a test: see make bench)")
            if worst > sc.target_ratio:
                log(f"sent {hops[0]['transferred'] / MIB:.0f} MiB for {hops[0]['in_use'] / MIB:.0f}"
                    " MiB in use; the rest is mostly memory in use that the workloads"
                    " rewrote during the migration (sent again) and freed memory on per-cpu"
                    " lists (allocated to the bitmap)")
    return 1 if failed else 0


def main(argv):
    if len(argv) < 2 or argv[1] not in ("test", "list", "run"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[1] == "list":
        for s in SCENARIOS:
            print(f"{s.name:14} {s.desc}")
        return 0
    if argv[1] == "test":
        return cmd_test(argv[2:])
    mode = None
    if "--mode" in argv:
        mode = argv[argv.index("--mode") + 1]
    cls = next(s for s in SCENARIOS + ON_DEMAND if s.name == argv[2])
    if (mode or cls.mode) == "ours" and feature_missing():
        print(f"cannot run {cls.name} with the bitmap: {feature_missing()}", file=sys.stderr)
        return 1
    with cpu_lock():
        run_scenario(cls(mode), os.path.join(RUN, cls.name), verbose=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

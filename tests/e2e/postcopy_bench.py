#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Postcopy benchmark, with and without the free page bitmap (make bench).

    postcopy_bench.py [--repeats N] [--workloads a,b] [--modes a,b]

A 2 GiB guest runs a workload (churn, or freed: 1.5 GiB written and
freed); it migrates at 128 MiB/s, and switches to postcopy once the
first pass is over (churn: two dirty syncs) or at once (freed, which is
idle then and would converge in pre-copy).  The destination runs during
postcopy, with the postcopy-blocktime capability.  Per run: bytes sent
before the switchover (pre-copy), while the guest was stopped and after
it (postcopy), the page requests the source served, the destination's
vCPU blocked time (summed over vCPUs) and that time per request (the
mean wait of a fault for its page), the free set, and the faults the
destination served itself.  Median [min-max] of N repeats into
bench/results/postcopy.md.
"""

import os
import statistics
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import OUT, col, fmt, md_table, run_matrix  # noqa: E402
from harness import (MIB, STOCK_QEMU, Guest, Migration,  # noqa: E402
                     feature_missing, patched_qemu, rm_rf)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Workloads: program, arguments, how to know it is ready, and the dirty
# syncs before the switch: churn after the first pass, as management
# tools do it; freed (idle then: its pre-copy would converge) at once.
WORKLOADS = {
    "churn": ("churn", "-w 256 -c 8 -n 4 -r 96", r"fpb-wl: churn started", 2),
    "freed": ("freed", "-m 1536 -k 256", r"fpb-wl: freed started", 1),
}
MODES = {"none": "plain virtio-balloon", "ours": "free page bitmap"}
BANDWIDTH = 128 * MIB
CAPS = ("postcopy-ram", "postcopy-blocktime")


def log(msg):
    print(msg, flush=True)


def one_run(mode, workload, workdir):
    prog, args, ready, switch_syncs = WORKLOADS[workload]
    qemu = patched_qemu() or STOCK_QEMU
    rm_rf(workdir)
    os.makedirs(workdir)
    guests = []
    try:
        src = Guest(workdir, "src", qemu=qemu, mode=mode, mem="2G")
        guests.append(src)
        src.start()
        src.wait_ready()
        start = src.offset()
        src.start_workload(prog, args)
        src.wait_for(ready, 300, start, what=ready)
        in_use = 2048 * MIB - src.meminfo()["MemFree"]
        dst = Guest(workdir, "dst", qemu=qemu, mode=mode, mem="2G", incoming=True)
        guests.append(dst)
        dst.start()
        m = Migration(src, dst, os.path.join(workdir, "mig.sock"), bandwidth=BANDWIDTH,
                      caps=CAPS, timeout=600, hold=True)
        m.start()
        m.wait_syncs(switch_syncs, timeout=600)
        m.src.qmp.cmd("migrate-start-postcopy")
        m.hold = False
        m.finish()
        st = m.stats()
        dinfo = dst.qmp.cmd("query-migrate")
        vcpu_ms = sum(dinfo.get("postcopy-vcpu-blocktime") or [0])
        ram = m.final.get("ram", {})
        st.update(mode=mode, workload=workload, in_use=in_use,
                  downtime_bytes=ram.get("downtime-bytes", 0),
                  blocktime_ms=dinfo.get("postcopy-blocktime"), vcpu_blocktime_ms=vcpu_ms)
        dst.check_workloads([prog])
        return st
    finally:
        for g in guests:
            g.close()


def per_request(r):
    return r["vcpu_blocktime_ms"] / r["pc_requests"] if r["pc_requests"] else None


def table(results, modes, workloads):
    return md_table(results, modes, workloads, MODES, [
        ("pre-copy MiB", col("precopy_bytes", scale=MIB)),
        ("stopped MiB", col("downtime_bytes", "{:.1f}", MIB)),
        ("postcopy MiB", col("postcopy_bytes", scale=MIB)),
        ("total MiB", col("transferred", scale=MIB)),
        ("page requests", col("pc_requests")),
        ("vCPU blocked ms", col("vcpu_blocktime_ms")),
        ("blocked ms / request", lambda rs, w, mo: fmt([per_request(r) for r in rs], "{:.2f}")),
        ("free set MiB", col("pc_free", scale=MIB / 4096)),
        ("dropped then sent pages", col("pc_redirtied")),
        ("faults served locally", col("pc_free_faults")),
        ("total s", col("total_ms", "{:.1f}", 1000)),
    ])


def ratios(results, workloads):
    lines = []
    for w in workloads:
        def med(mode, key):
            vals = [r[key] for r in results if r["mode"] == mode and r["workload"] == w]
            return statistics.median(vals) if vals else None
        for key, what in (("transferred", "bytes sent in all"),
                          ("postcopy_bytes", "bytes sent after the switchover"),
                          ("pc_requests", "page requests")):
            base, ours = med("none", key), med("ours", key)
            if base and ours is not None:
                lines.append(f"- {w}: {what}, bitmap / none = {ours / base:.2f}")
    return "\n".join(lines)


def main(argv):
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    workloads = (argv[argv.index("--workloads") + 1].split(",") if "--workloads" in argv
                 else list(WORKLOADS))
    modes = argv[argv.index("--modes") + 1].split(",") if "--modes" in argv else list(MODES)
    missing = feature_missing()
    if missing and "ours" in modes:
        log(f"postcopy bench: the bitmap left out: {missing}")
        modes.remove("ours")
    os.makedirs(OUT, exist_ok=True)
    raw = os.path.join(OUT, "postcopy.jsonl")

    def summary(st):
        return (f"pre-copy {st['precopy_bytes'] / MIB:.0f} MiB, postcopy "
                f"{st['postcopy_bytes'] / MIB:.0f} MiB, requests {st['pc_requests']}, "
                f"vCPU blocked {st['vcpu_blocktime_ms']} ms, free set {st['pc_free']}, "
                f"local faults {st['pc_free_faults']}")
    results = run_matrix(one_run, modes, workloads, repeats, raw, summary)
    if results is None:
        return 1
    cmdline = "make bench-postcopy  # = tests/e2e/run.sh bench-postcopy " + " ".join(argv)
    md = os.path.join(REPO, "bench/results/postcopy.md")
    with open(md, "w") as f:
        f.write(f"""# Postcopy: free page bitmap vs none

Produced by `{cmdline.strip()}` (finished {time.strftime('%Y-%m-%d %H:%M UTC')}),
{os.cpu_count()} host cores, no KVM (TCG), QEMU `{patched_qemu() or STOCK_QEMU}`.
Guests: q35, 2 vCPUs, 2 GiB; migration over a Unix socket at {BANDWIDTH // MIB} MiB/s,
capabilities {', '.join(CAPS)}; `migrate-start-postcopy` once the first
pass is over (churn: two dirty syncs) or at once (freed: after the setup
sync; idle, it would converge in pre-copy); the destination runs during
postcopy.
Each cell: median [min-max] of {repeats} repeats.

- churn: `churn {WORKLOADS['churn'][1]}` (~96 MiB/s written, 256 MiB working set).
- freed: `freed {WORKLOADS['freed'][1]}`: 1.5 GiB written, checked and freed,
  256 MiB kept in use; migration starts the moment it is freed.
- pre-copy / stopped / postcopy MiB: query-migrate ram.precopy-bytes,
  downtime-bytes and postcopy-bytes; page requests: ram.postcopy-requests
  (faults the source served); vCPU blocked ms: the destination's
  postcopy-vcpu-blocktime summed over vCPUs, and per request (the mean
  time a fault waited for its page); free set: pages the guest had free
  at the switchover that the destination had no up-to-date copy of,
  never sent; dropped then sent: pages left out before the switchover
  and in use at it; faults served locally: the destination's faults on
  free-set pages (a zero page, no request).

{table(results, modes, workloads)}

{ratios(results, workloads)}

Raw results (one JSON object per run) were in `{raw}`.
""")
    log(f"postcopy bench: wrote {md}")
    print(table(results, modes, workloads))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

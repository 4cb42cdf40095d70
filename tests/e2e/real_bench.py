#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""A real guest under migration: the Debian guest's PostgreSQL under
pgbench, none / free page hinting / free page reporting / the bitmap
(make bench-real).

    real_bench.py [--repeats N] [--sizes 2G,4G] [--modes a,b]

Per run: the Debian guest (debian_guest.py) of SIZE and 2 vCPUs boots,
its database files are read into the page cache, half its free memory
is written and freed (as on a server that has run a while), pgbench runs
(guest/debian/pgload: two clients) for BASE_S seconds (the TPS before),
then it migrates at 128 MiB/s with a 300 ms downtime limit while
pgbench goes on; on the destination PostgreSQL's checks must pass
(pgbench's balances, pg_amcheck, pg_checksums, the server log).  What a
user sees: MiB sent, total time, downtime, and pgbench's TPS during the
migration over the TPS before.  Median [min-max] of N repeats into
bench/results/real-guest.md, with a plot of the MiB sent.
"""

import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import debian_guest  # noqa: E402
from bench import (DOWNTIME_MS, DOWNTIME_TRACE, MODE_NAMES, OUT, col,  # noqa: E402
                   md_table, plot, run_matrix, stop_window)
from harness import (MIB, STOCK_QEMU, Guest, Migration, feature_missing,  # noqa: E402
                     patched_qemu, rate, rm_rf)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODES = ("none", "hinting", "reporting", "ours")
SIZES = ("2G", "4G")
BANDWIDTH = 128 * MIB
# seconds of pgbench before the migration: its TPS then is the reference
BASE_S = int(os.environ.get("FPB_REAL_BASE_S") or 60)
# the share of free memory written and freed before (debian_guest.age())
AGED = 0.5


def log(msg):
    print(msg, flush=True)


def one_run(mode, size, workdir):
    prog, args = debian_guest.PGLOAD
    qemu = patched_qemu() or STOCK_QEMU
    rm_rf(workdir)
    os.makedirs(workdir)
    ram = int(size[:-1]) * 1024 * MIB
    disk = debian_guest.disk_args(workdir)
    common = dict(qemu=qemu, mode=mode, mem=size, kernel=debian_guest.KERNEL, initrd=None,
                  append=debian_guest.APPEND)
    guests = []
    try:
        src = Guest(workdir, "src", extra=disk + DOWNTIME_TRACE, **common)
        guests.append(src)
        src.start()
        src.wait_ready()
        debian_guest.warm_cache(src)
        aged = debian_guest.age(src, AGED)
        start = src.offset()
        src.start_workload(prog, args)
        src.wait_for(rf"fpb-wl: {prog} started", 120, start, what=f"{prog} started")
        off = src.offset()
        time.sleep(BASE_S)
        base = rate(src.progress(off).get(prog, []))
        in_use = ram - src.meminfo()["MemFree"]
        dst = Guest(workdir, "dst", extra=disk, incoming=True, paused=True, **common)
        guests.append(dst)
        dst.start()
        m = Migration(src, dst, os.path.join(workdir, "mig.sock"), bandwidth=BANDWIDTH,
                      downtime_ms=DOWNTIME_MS, timeout=900)
        m.start()
        m.finish()
        st = m.stats()
        st.update(mode=mode, workload=size, in_use=in_use, ram=ram, tps_before=base,
                  aged_mib=aged)
        st.update(stop_window(src.stderr_path))
        during = rate(src.progress(m.console_start, m.console_end).get(prog, []))
        st["tps_during"] = during
        st["progress"] = during / base if base and during else None
        dst.qmp.cmd("cont")
        dst.check_workloads([prog], debian_guest.CHECK_TIMEOUT)
        return st
    finally:
        for g in guests:
            g.close()


def table(results, modes, sizes):
    return md_table(results, modes, sizes, MODE_NAMES, [
        ("sent MiB", col("transferred", scale=MIB)),
        ("in use MiB", col("in_use", scale=MIB)),
        ("freed before MiB", col("aged_mib")),
        ("total s", col("total_ms", "{:.1f}", 1000)),
        ("downtime ms", col("downtime_ms")),
        ("TPS before", col("tps_before")),
        ("TPS during / before", col("progress", "{:.2f}")),
        ("pages skipped", lambda rs, w, mo: col("skipped")(rs, w, mo) if mo == "ours" else "-"),
    ])


def main(argv):
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    sizes = argv[argv.index("--sizes") + 1].split(",") if "--sizes" in argv else list(SIZES)
    modes = argv[argv.index("--modes") + 1].split(",") if "--modes" in argv else list(MODES)
    for why in (debian_guest.missing(), "ours" in modes and feature_missing()):
        if why:
            log(f"bench-real: cannot run: {why}")
            return 1
    os.makedirs(OUT, exist_ok=True)
    raw = os.path.join(OUT, "real-guest.jsonl")

    def summary(st):
        return (f"sent {st['transferred'] / MIB:.0f} MiB, total {st['total_ms'] / 1000:.1f} s, "
                f"downtime {st['downtime_ms']} ms, TPS before {st['tps_before'] or 0:.0f}, "
                f"during/before {st['progress'] or 0:.2f}")
    results = run_matrix(one_run, modes, sizes, repeats, raw, summary)
    if results is None:
        return 1
    cmdline = "make bench-real  # = tests/e2e/run.sh bench-real " + " ".join(argv)
    png = os.path.join(REPO, "bench/results/real-guest.png")
    plot(results, modes, sizes, png)
    md = os.path.join(REPO, "bench/results/real-guest.md")
    with open(md, "w") as f:
        f.write(f"""# A real guest: PostgreSQL under pgbench, migrated

Produced by `{cmdline.strip()}` (finished {time.strftime('%Y-%m-%d %H:%M UTC')}),
{os.cpu_count()} host cores, no KVM (TCG), QEMU `{patched_qemu() or STOCK_QEMU}`.
Guest: Debian 12 with PostgreSQL 15 (make guest-image: pgbench scale 10,
data checksums) on a virtio-blk qcow2 overlay, q35, 2 vCPUs, the peer
kernel.  Before the load, the database files are read into the page
cache and {AGED:.0%} of the free memory is written (a file in tmpfs) and
freed: a server that has run a while gives back memory that holds old
data, where a fresh boot's free memory is zero pages, which every mode
skips alike.  pgbench's TPC-B-like script with 2 clients then runs
{BASE_S} s before the migration and through it.  Migration over a Unix socket at
{BANDWIDTH // MIB} MiB/s, downtime limit {DOWNTIME_MS} ms.  Every run
ends with PostgreSQL's checks on the destination (pgbench's balances,
pg_amcheck --heapallindexed, pg_checksums, the server log): all passed.
Each cell: median [min-max] of {repeats} repeats.

- sent MiB: query-migrate ram.transferred; in use: guest RAM minus
  MemFree before the migration (page cache included: the database's
  files);
- TPS before: pgbench's transactions per second over the {BASE_S} s
  before; TPS during / before: over the migration, relative to that;
  hinting takes free memory from the guest while it runs, the bitmap
  does not.

{table(results, modes, sizes)}

![MiB sent](real-guest.png)

Raw results (one JSON object per run) were in `{raw}`.
""")
    log(f"bench-real: wrote {md}")
    print(table(results, modes, sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""Migration benchmark and demo (not part of make check).

    bench.py bench [--repeats N] [--modes a,b] [--workloads a,b] [--report NAME]
                   [--no-classify]
        none / free page hinting / free page reporting / ours (the default
        mode), ours-always (the guest tracking all the time) and
        ours-nocount (free dirty pages counted as dirty), on a 2 GiB guest
        running churn or freed (1.5 GiB written and freed right before the
        migration, no settle wait) and a 4 GiB one running freed4g (3 GiB);
        median [min-max] of N repeats into bench/results/migration.md and
        migration.png (NAME.md and NAME.png with --report), then one
        classified run per workload (where the bytes go) unless
        --no-classify.
    bench.py report
        write the report again from the last run's raw results
    bench.py classify [--workloads a,b]
        only the runs that classify the pages sent (part of bench), then
        the report again
    bench.py granule [--repeats N]
        (3 repeats by default) the default mode with the device proposing granule order 0, 3 and
        9 on churn, freed, freed4g, pagecache (churn's chunks in tmpfs
        files) and fragment (freed, one page in 4 kept), transparent huge
        pages off for the last two -> bench/results/granule.md
    bench.py demo
        churn (and freed) migrations of a 1 GiB guest without and with the
        bitmap, and a short table of what the bitmap saved.

Guest progress is the workload's rate during the migration divided by
its rate in a window just before it (the same guest, unmigrated): a mode
that wins by stalling the guest shows up there.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (CACHE, MIB, PAGE, STOCK_QEMU, SYSMAP, Bitmap, Dump,  # noqa: E402
                     Failure, Guest, KernelView, Migration, cpu_lock, dump_guest,
                     feature_missing, patched_qemu, rate, rm_rf)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(CACHE, "e2e/bench")
MODES = ("none", "hinting", "reporting", "ours", "ours-always", "ours-nocount")
MODE_NAMES = {"none": "none", "hinting": "free page hinting",
              "reporting": "free page reporting", "ours": "free page bitmap",
              "ours-always": "bitmap, tracking always",
              "ours-nocount": "bitmap, free counted as dirty",
              "ours-g3": "bitmap, granule 3", "ours-g9": "bitmap, granule 9"}
# The granule order each mode's device proposes (bench.py granule)
GRANULES = {"ours": 0, "ours-g3": 3, "ours-g9": 9}
# Workloads: guest RAM, workload and its arguments, how to know it is ready.
WORKLOADS = {
    # 256 MiB working set, 8 MiB chunks (4 live), 96 MiB/s written
    "churn": ("2G", 2048 * MIB, "churn", "-w 256 -c 8 -n 4 -r 96", r"fpb-wl: churn started"),
    # 1.5 GiB written and freed, 256 MiB kept in use; migrate right away
    "freed": ("2G", 2048 * MIB, "freed", "-m 1536 -k 256", r"fpb-wl: freed freed mib="),
    # the same with 4 GiB (2 GiB of it above 4 GiB on q35), 3 GiB freed
    "freed4g": ("4G", 4096 * MIB, "freed", "-m 3072 -k 256", r"fpb-wl: freed freed mib="),
    # churn with its chunks in page cache (tmpfs files), THP off
    "pagecache": ("2G", 2048 * MIB, "churn", "-w 256 -c 8 -n 4 -r 96 -p 1",
                  r"fpb-wl: churn started"),
    # freed, but one page in 4 of the 1.5 GiB kept: free memory in pieces, THP off
    "fragment": ("2G", 2048 * MIB, "freed", "-m 1536 -k 256 -f 4", r"fpb-wl: freed freed mib="),
}
# What `bench` runs by default; the others are for `granule`
MIGRATION_WORKLOADS = ("churn", "freed", "freed4g")
THP_OFF = ("pagecache", "fragment")
# FPB_BENCH_MIBPS: another max-bandwidth (MiB/s), e.g. to make churn hard to converge
BANDWIDTH = int(os.environ.get("FPB_BENCH_MIBPS") or 128) * MIB
DOWNTIME_MS = 300
# Where the stop window goes: QEMU's own downtime checkpoints and the
# dirty sync's start and end, as trace events (log backend; -msg
# timestamp=on prefixes each with the host's clock).  FPB_BENCH_TRACE adds
# QEMU options to the source for a closer look, e.g.
# "-trace free_page_bitmap_*" (its log: $FPB_CACHE/e2e/run/bench/src-qemu.log)
DOWNTIME_TRACE = ("-msg", "timestamp=on", "-trace", "vmstate_downtime_checkpoint",
                  "-trace", "migration_bitmap_sync_start", "-trace", "migration_bitmap_sync_end"
                  ) + tuple(os.environ.get("FPB_BENCH_TRACE", "").split())
TRACE_EVENT = re.compile(r"^\d+@(\d+\.\d+):(\w+) ?(.*)$", re.M)
# The stop window's parts, in order, each ending at a source event
STOP_PARTS = (("stop_ms", "vm stopped", "src-vm-stopped"),
              ("sync_ms", "final sync", "migration_bitmap_sync_end"),
              ("ram_ms", "RAM sent", "src-iterable-saved"),
              ("devices_ms", "device state", "src-non-iterable-saved"),
              ("close_ms", "flush, end", "src-downtime-end"))


def log(msg):
    print(msg, flush=True)


def tracked_free_pages(guest):
    """What the guest's bitmap finds free at its granule right now: tracking
    turned on for a moment (enabled=always), read, and handed back to the
    host (enabled=host) before the migration asks for it again."""
    sysfs = "/sys/kernel/mm/free_page_bitmap"
    guest.sh(f"echo always > {sysfs}/enabled")
    deadline = time.monotonic() + 30
    while guest.sysfs("active") != "1":
        if time.monotonic() > deadline:
            raise Failure("tracking did not start within 30 s: "
                          + guest.sysfs("inactive_reason"))
        time.sleep(0.2)
    pages = int(guest.sysfs("tracked_free_pages"))
    guest.sh(f"echo host > {sysfs}/enabled")
    return pages


def stop_window(src_log):
    """The source's stop window in parts (STOP_PARTS, ms) from its trace
    events; {} if incomplete."""
    with open(src_log, errors="replace") as f:
        # (ms, checkpoint or event name, arguments)
        events = [(float(t) * 1000, args.strip() if name == "vmstate_downtime_checkpoint"
                   else name, args) for t, name, args in TRACE_EVENT.findall(f.read())]
    starts = [i for i, e in enumerate(events) if e[1] == "src-downtime-start"]
    if not starts:
        return {}
    i = starts[-1]
    res, t = {}, events[i][0]
    for key, _, end in STOP_PARTS:
        i = next((j for j in range(i, len(events)) if events[j][1] == end), None)
        if i is None:
            return {}
        res[key], t = events[i][0] - t, events[i][0]
    return res


def one_run(mode, workload, workdir, mem=None, ram=None, args=None, classify=False,
            probe=False):
    """Boot, load, migrate once; return a dict of the measurements.  CLASSIFY:
    trace every page the destination loads and say where the bytes went
    (slower: such a run is not one of the timed repeats).  PROBE: read what
    the bitmap tracks as free just before the migration."""
    wmem, wram, prog, wargs, ready = WORKLOADS[workload]
    mem, ram, args = mem or wmem, ram or wram, args or wargs
    qemu = patched_qemu() or STOCK_QEMU
    rm_rf(workdir)
    os.makedirs(workdir)
    guests = []
    # ours-always: the same device, the guest keeps its bitmap all the time
    # instead of building it when the migration starts; ours-gN: the device
    # proposes granule order N
    dev = "ours" if mode == "ours-always" or mode in GRANULES else mode
    shift = PAGE.bit_length() - 1 + GRANULES.get(mode, 0)
    dev_args = ("-global", f"virtio-balloon-device.x-free-page-bitmap-granule-shift={shift}"
                ) if GRANULES.get(mode) else ()
    try:
        src = Guest(workdir, "src", qemu=qemu, mode=dev, mem=mem,
                    extra=dev_args + DOWNTIME_TRACE)
        guests.append(src)
        src.start()
        src.wait_ready()
        if mode == "ours-always":
            src.sh("echo always > /sys/kernel/mm/free_page_bitmap/enabled")
        if workload in THP_OFF:
            src.sh("echo never > /sys/kernel/mm/transparent_hugepage/enabled && "
                   "echo never > /sys/kernel/mm/transparent_hugepage/shmem_enabled")
        start = src.offset()
        src.start_workload(prog, args)
        src.wait_for(ready, 300, start, what=ready)
        base = None
        if prog == "churn":
            time.sleep(3)
            off = src.offset()
            time.sleep(5)
            base = rate(src.progress(off).get(prog, []))
        in_use = ram - src.meminfo()["MemFree"]
        tracked = tracked_free_pages(src) if probe else None
        trace = os.path.join(workdir, "dst-pages.log")
        extra = ("-trace", "enable=ram_load_loop", "-D", trace) if classify else ()
        dst = Guest(workdir, "dst", qemu=qemu, mode=dev, mem=mem, incoming=True, paused=True,
                    extra=dev_args + extra)
        guests.append(dst)
        dst.start()
        m = Migration(src, dst, os.path.join(workdir, "mig.sock"), bandwidth=BANDWIDTH,
                      downtime_ms=DOWNTIME_MS, timeout=600)
        m.start()
        m.finish()
        st = m.stats()
        st.update(mode=mode, workload=workload, in_use=in_use, ram=ram,
                  granule_order=GRANULES.get(mode), tracked=tracked)
        st.update(stop_window(src.stderr_path))
        during = rate(src.progress(m.console_start, m.console_end).get(prog, []))
        st["progress"] = during / base if base and during else None
        if classify:
            st["classes"] = classify_sent(src, trace, st["header_gpa"], workdir)
        dst.qmp.cmd("cont")
        dst.check_workloads([prog])
        return st
    finally:
        for g in guests:
            g.close()


# ram_load_loop: one line per page record the destination loads
LOADED = re.compile(r"ram_load_loop (\S+): addr: 0x([0-9a-f]+) flags: 0x([0-9a-f]+)")
RAM_SAVE_FLAG_PAGE = 0x08


def classify_sent(src, trace, header_gpa, workdir):
    """Where the pages sent whole went, from the destination's trace and the
    source's RAM at the switchover: sent again (rewritten during the
    migration), or sent once (or first) and at the end in use, free in the
    guest's bitmap, on a per-cpu free list, free to the buddy allocator
    only, or in another RAM block than guest RAM."""
    sent = {}
    with open(trace, errors="replace") as f:
        for line in f:
            m = LOADED.search(line)
            if m and int(m.group(3), 16) & RAM_SAVE_FLAG_PAGE:
                key = (m.group(1), int(m.group(2), 16))
                sent[key] = sent.get(key, 0) + 1
    path = os.path.join(workdir, "src.elf")
    dump_guest(src, path)
    d = Dump(path)
    try:
        bm = Bitmap(d, header_gpa)
        free = bm.free_pfns() if bm.ok else set()
        kv = KernelView(d, SYSMAP)
        kv.check_layout([header_gpa >> 12] if bm.ok else [])
        classes = dict.fromkeys(("sent again", "in use", "free in the bitmap",
                                 "on a per-cpu list", "free to the buddy only",
                                 "other blocks"), 0)
        kinds = {"pcp": "on a per-cpu list", "buddy": "free to the buddy only",
                 None: "in use"}
        low = ram_below_4g(d)
        for (block, offset), times in sent.items():
            classes["sent again"] += times - 1
            if block != "pc.ram":
                classes["other blocks"] += 1
                continue
            pfn = (offset if offset < low else (1 << 32) + offset - low) // PAGE
            classes["free in the bitmap" if pfn in free else kinds[kv.free_kind(pfn)]] += 1
        classes["bitmap"] = "active" if bm.ok else bm.why
        return classes
    finally:
        d.close()
        os.unlink(path)


def ram_below_4g(dump):
    """How much of pc.ram q35 maps below 4 GiB (the end of the dump's last
    segment under the PCI hole); the rest of pc.ram starts at 4 GiB."""
    return max(p + n for p, _o, n in dump.loads if p + n <= 0xb0000000)


def fmt(values, f="{:.0f}"):
    vals = [v for v in values if v is not None]
    if not vals:
        return "n/a"
    med = statistics.median(vals)
    if len(vals) == 1:
        return f.format(med)
    return f"{f.format(med)} [{f.format(min(vals))}-{f.format(max(vals))}]"


def col(key, f="{:.0f}", scale=1):
    """A column of md_table(): fmt() of KEY / SCALE over the row's results."""
    return lambda rs, w, mo: fmt([r[key] / scale if r.get(key) is not None else None
                                  for r in rs], f)


def md_table(results, modes, workloads, mode_names, columns):
    """A markdown table with a row per workload and mode that has results;
    COLUMNS: (title, cell(results of the row, workload, mode)) after those two."""
    rows = ["| workload | mode | " + " | ".join(t for t, _ in columns) + " |",
            "|---|---|" + "---|" * len(columns)]
    for w in workloads:
        for mo in modes:
            rs = [r for r in results if r["mode"] == mo and r["workload"] == w]
            if rs:
                rows.append("| " + " | ".join([w, mode_names[mo]] +
                                               [cell(rs, w, mo) for _, cell in columns]) + " |")
    return "\n".join(rows)


def table(results, modes, workloads):
    return md_table(results, modes, workloads, MODE_NAMES, [
        ("sent MiB", col("transferred", scale=MIB)),
        ("sent / in use", lambda rs, w, mo: fmt([r["transferred"] / r["in_use"] for r in rs],
                                                "{:.2f}") + "x"),
        ("normal pages", col("normal")),
        ("zero pages", col("duplicate")),
        ("total s", col("total_ms", "{:.1f}", 1000)),
        ("downtime ms", col("downtime_ms")),
        ("syncs", col("syncs")),
        ("pages skipped", lambda rs, w, mo: col("skipped")(rs, w, mo)
         if mo.startswith("ours") else "-"),
        ("ideal MiB (in use)", col("in_use", scale=MIB)),
        ("source CPU s", col("src_cpu_s", "{:.2f}")),
        ("guest progress", lambda rs, w, mo: col("progress", "{:.2f}")(rs, w, mo)
         if WORKLOADS[w][2] == "churn" else "idle"),
    ])


def stop_table(results, modes, workloads):
    """Where the stop window goes (STOP_PARTS), medians per workload and mode."""
    return md_table(results, modes, workloads, MODE_NAMES, [
        ("downtime ms", col("downtime_ms"))] + [
        (f"{title} ms", col(key, "{:.1f}")) for key, title, _ in STOP_PARTS] + [
        ("filter us (final round)", lambda rs, w, mo: col("filter_us_last")(rs, w, mo)
         if mo.startswith("ours") else "-")])


def targets(results, modes, workloads):
    """The issues' targets against the medians measured here."""
    def med(mo, w, key):
        v = [r["transferred"] / r["in_use"] if key == "ratio" else r.get(key) for r in results
             if r["mode"] == mo and r["workload"] == w]
        v = [x for x in v if x is not None]
        return statistics.median(v) if v else None

    def verdict(ok):
        return "met" if ok else "missed"

    lines = ["Targets (issue 11: the default mode, `enabled=host`, against tracking "
             "always and free page hinting; the free dirty pages' accounting), "
             "medians measured here:", ""]
    others = [m for m in modes if not m.startswith("ours")]
    for w in workloads:
        if "ours" not in modes:
            continue
        ratio, sent = med("ours", w, "ratio"), med("ours", w, "transferred")
        parts = [f"sent {ratio:.2f} x in use"
                 + (f" (target <= 1.05: {verdict(ratio <= 1.05)})" if w.startswith("freed")
                    else "")]
        if "ours-always" in modes:
            a = med("ours-always", w, "transferred")
            parts.append(f"{sent / a:.3f} x the bytes of tracking always "
                         f"(target <= 1.02: {verdict(sent <= 1.02 * a)})")
        if "hinting" in modes:
            h = med("hinting", w, "transferred")
            parts.append(f"{sent / h:.2f} x free page hinting's "
                         f"(target <= 1: {verdict(sent <= h)})")
        if others:
            best_t = min(med(m, w, "total_ms") for m in others)
            parts.append(f"total time {med('ours', w, 'total_ms') / 1000:.1f} s vs best other "
                         f"{best_t / 1000:.1f} s")
            cpu = {m: med(m, w, "src_cpu_s") for m in others + ["ours"]}
            if all(v is not None for v in cpu.values()):
                parts.append("source QEMU CPU outside the vCPUs " + ", ".join(
                    f"{MODE_NAMES[m]} {cpu[m]:.2f} s" for m in others + ["ours"]))
        lines.append(f"- {w}: " + "; ".join(parts))
        if "ours-nocount" in modes:
            lines.append(
                f"  - free dirty pages left out of remaining, dirty rate, expected downtime: "
                f"syncs {med('ours', w, 'syncs'):.0f} vs {med('ours-nocount', w, 'syncs'):.0f} "
                f"counted as dirty, total {med('ours', w, 'total_ms') / 1000:.1f} s vs "
                f"{med('ours-nocount', w, 'total_ms') / 1000:.1f} s, sent "
                f"{sent / MIB:.0f} vs {med('ours-nocount', w, 'transferred') / MIB:.0f} MiB"
                + (f", highest dirty-pages-rate reported {med('ours', w, 'dirty_rate_max'):.0f}"
                   f" vs {med('ours-nocount', w, 'dirty_rate_max'):.0f} pages/s, highest "
                   f"expected-downtime {med('ours', w, 'expected_downtime_max'):.0f} vs "
                   f"{med('ours-nocount', w, 'expected_downtime_max'):.0f} ms"
                   if med("ours", w, "dirty_rate_max") is not None else ""))
        d, n = med("ours", w, "downtime_ms"), med("none", w, "downtime_ms")
        if d is not None and n:
            lines.append(f"  - downtime {d:.0f} ms vs {n:.0f} ms without filtering: "
                         f"{d / n:.2f} x (issue 25 target <= 1.1: {verdict(d <= 1.1 * n)})")
        if med("ours", w, "wait_ms") is not None:
            lines.append(f"  - the first pass waited {med('ours', w, 'wait_ms'):.0f} ms for "
                         "the guest's bitmap")
    return "\n".join(lines) + "\n"


def plot(results, modes, workloads, png):
    """Grouped bars: median sent MiB per workload and mode, min-max error bars."""
    dat = png[:-4] + ".dat"
    with open(dat, "w") as f:
        for k, w in enumerate(workloads):
            for j, mo in enumerate(modes):
                v = [r["transferred"] / MIB for r in results
                     if r["mode"] == mo and r["workload"] == w]
                ideal = [r["in_use"] / MIB for r in results if r["workload"] == w]
                if v:
                    f.write(f"{k * (len(modes) + 1) + j} {statistics.median(v):.1f} "
                            f"{min(v):.1f} {max(v):.1f} \"{MODE_NAMES[mo]}\" "
                            f"{statistics.median(ideal):.1f} \"{w}\"\n")
    script = f"""
set terminal pngcairo size 900,500 noenhanced
set output '{png}'
set title 'Live migration under TCG: MiB sent (bars: median, min-max of repeats; squares: in use at start)'
set yrange [0:*]
set ylabel 'MiB sent'
set style fill solid 0.6 border -1
set boxwidth 0.8
set xtics rotate by -30 nomirror
set key off
set grid ytics
plot '{dat}' using 1:2:xtic(stringcolumn(7).': '.stringcolumn(5)) with boxes lc rgb '#4a7ab5', \\
     '' using 1:2:3:4 with yerrorbars lc rgb 'black' pt 0, \\
     '' using 1:6 with points pt 5 ps 1.2 lc rgb '#d04030'
"""
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        log(f"bench: gnuplot failed ({e}); no PNG (make setup installs gnuplot-nox)")
    finally:
        os.unlink(dat)


def run_matrix(run, modes, workloads, repeats, raw, summary):
    """RUN(mode, workload, workdir) for every repeat, workload and mode, each
    under the CPU lock; the results, also written to RAW one JSON object per
    line, or None once a run fails."""
    results = []
    with open(raw, "w") as f:
        for rep in range(1, repeats + 1):
            for w in workloads:
                for mo in modes:
                    t0 = time.monotonic()
                    try:
                        with cpu_lock():
                            st = run(mo, w, os.path.join(CACHE, "e2e/run/bench"))
                    except Failure as e:
                        log(f"bench: {w} {mo} repeat {rep} FAILED: {e}")
                        return None
                    st["repeat"] = rep
                    results.append(st)
                    f.write(json.dumps(st) + "\n")
                    f.flush()
                    log(f"bench: {w:6} {mo:9} #{rep}: {summary(st)} "
                        f"({time.monotonic() - t0:.0f} s)")
    return results


def cmd_bench(argv):
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    modes = argv[argv.index("--modes") + 1].split(",") if "--modes" in argv else list(MODES)
    workloads = (argv[argv.index("--workloads") + 1].split(",") if "--workloads" in argv
                 else list(MIGRATION_WORKLOADS))
    missing = feature_missing()
    if missing:
        for mo in [m for m in modes if m.startswith("ours")]:
            log(f"bench: mode '{mo}' left out: {missing}")
            modes.remove(mo)
    os.makedirs(OUT, exist_ok=True)
    raw = os.path.join(OUT, "results.jsonl")

    def summary(st):
        return (f"sent {st['transferred'] / MIB:7.1f} MiB ({st['transferred'] / st['in_use']:.2f}x "
                f"of {st['in_use'] / MIB:.0f} MiB in use), {st['total_ms'] / 1000:.1f} s, downtime "
                f"{st['downtime_ms']} ms, syncs {st['syncs']}, skipped {st['skipped']}, "
                f"progress {st['progress']}")
    results = run_matrix(one_run, modes, workloads, repeats, raw, summary)
    if results is None:
        return 1
    classify = "ours" in modes and "--no-classify" not in argv
    classes = run_classified(workloads) if classify else []
    if classes is None:
        return 1
    write_report(results, modes, workloads, repeats, argv, raw, missing, classes)
    return 0


def run_classified(workloads):
    """One classified run (see one_run) per workload, default mode; None if
    one failed."""
    classes = []
    with open(os.path.join(OUT, "classes.jsonl"), "w") as f:
        for w in workloads:
            try:
                with cpu_lock():
                    st = one_run("ours", w, os.path.join(CACHE, "e2e/run/bench"),
                                 classify=True)
            except Failure as e:
                log(f"bench: {w} ours classified run FAILED: {e}")
                return None
            classes.append(st)
            f.write(json.dumps(st) + "\n")
            log(f"bench: {w:6} ours, where the pages sent whole went: {st['classes']}")
    return classes


def cmd_classify(argv):
    """Only the classified runs, then the report again."""
    workloads = (argv[argv.index("--workloads") + 1].split(",") if "--workloads" in argv
                 else list(MIGRATION_WORKLOADS))
    os.makedirs(OUT, exist_ok=True)
    if run_classified(workloads) is None:
        return 1
    return cmd_report(argv)


def where_bytes_go(classes):
    """The classified runs as a table: what the pages sent whole were."""
    if not classes:
        return ""
    keys = ("in use", "free in the bitmap", "on a per-cpu list", "free to the buddy only",
            "other blocks", "sent again")
    rows = ["Where the bytes go, default mode (`ours`), one more run per workload with "
            "the destination tracing every page it loads (`-trace ram_load_loop`), the "
            "pages sent whole classified by the source's RAM at the switchover: sent "
            "again (rewritten during the migration: every send after a page's first), "
            "or at the end in use, free in the guest's final bitmap, on a per-cpu free "
            "list (the bitmap counts those as allocated), free to the buddy allocator "
            "but not in the bitmap, or in another RAM block (firmware).",
            "",
            "| workload | in use at the start MiB | sent whole | " + " | ".join(keys) + " |",
            "|---|---|---|" + "---|" * len(keys)]
    for st in classes:
        c = st["classes"]
        rows.append(f"| {st['workload']} | {st['in_use'] / MIB:.0f} | {st['normal']} | "
                    + " | ".join(str(c[k]) for k in keys) + " |")
    return "\n".join(rows) + "\n"


def write_report(results, modes, workloads, repeats, argv, raw, missing, classes=()):
    env = f"FPB_BENCH_MIBPS={os.environ['FPB_BENCH_MIBPS']} " if os.environ.get(
        "FPB_BENCH_MIBPS") else ""
    cmdline = f"{env}make bench  # = {env}tests/e2e/run.sh bench " + " ".join(argv)
    name = argv[argv.index("--report") + 1] if "--report" in argv else "migration"
    qemu = patched_qemu() or STOCK_QEMU
    md = os.path.join(REPO, f"bench/results/{name}.md")
    png = os.path.join(REPO, f"bench/results/{name}.png")
    with open(md, "w") as f:
        f.write(f"""# Live migration: free page bitmap vs hinting vs reporting

Produced by `{cmdline.strip()}` (finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(os.path.getmtime(raw)))}),
{os.cpu_count()} host cores, no KVM (TCG), QEMU `{qemu}`, guest kernel
`{os.path.join(CACHE, 'build/guest/arch/x86/boot/bzImage')}` with the
busybox initramfs of tests/e2e.  Guests: q35, 2 vCPUs, 2 GiB (freed4g: 4 GiB); migration over a
Unix socket, max-bandwidth {BANDWIDTH // MIB} MiB/s, downtime-limit {DOWNTIME_MS} ms;
the destination waits paused (-S) so that it does not compete for the CPUs.
Each cell: median [min-max] of {repeats} repeats.

- churn: `churn {WORKLOADS['churn'][3]}`: 8 MiB chunks allocated, filled, checked
  and freed continuously (4 live), and 1 MiB of a 256 MiB working set rewritten
  per chunk, ~96 MiB/s written in all; migration starts after it ran 8 s.
- freed: `freed {WORKLOADS['freed'][3]}`: 1.5 GiB written, checked and freed, 256 MiB
  kept in use; migration starts the moment it is freed (no settle wait).
- freed4g: `freed {WORKLOADS['freed4g'][3]}` in a 4 GiB guest (2 GiB of its RAM above
  4 GiB): 3 GiB written, checked and freed, 256 MiB kept in use.
- sent: query-migrate ram.transferred; normal / zero: pages sent whole / as zero;
  ideal: guest RAM minus MemFree when the migration starts; guest progress:
  churn's rate during the migration / its rate in the 5 s before it (1.00 = not
  slowed; "idle" for freed, which does nothing after freeing); source CPU: CPU
  seconds of the source QEMU outside its vCPU threads (migration thread, main
  loop, iothread) from `migrate` to completion.
- Modes: none (plain virtio-balloon), free page hinting (`free-page-hint=on` with an
  iothread), free page reporting (`free-page-reporting=on`), free page bitmap
  (`x-free-page-bitmap=on`; the guest builds its bitmap when the host starts the
  migration, the default `enabled=host`, and the first pass waits for it), the
  same with the guest tracking all the time (`enabled=always`), and the default
  mode with `x-free-page-bitmap-count-free=off` (free dirty pages counted as dirty in
  remaining, the dirty rate and expected downtime, as before).

{table(results, modes, workloads)}

Where the stop window goes, from the source's trace events
(`vmstate_downtime_checkpoint`, `migration_bitmap_sync_*`): from stopping
the guest to its vCPUs stopped, the final dirty sync (the switchover's
notifiers included), the rest of RAM sent (what was still to send at
the switchover plus what the final sync found, less the filter's drops,
which happen chunk by chunk after each chunk's log clear), the device
state, and the flush of the stream until the downtime ends (no return
path here); and the filter's time in the final round.

{stop_table(results, modes, workloads)}

{targets(results, modes, workloads)}
{where_bytes_go(classes)}
Raw results (one JSON object per run) were in `{raw}`.
""")
        if missing:
            f.write(f"\nThe free page bitmap is not in this table: {missing}.\n")
    plot(results, modes, workloads, png)
    log(f"bench: wrote {md} and {png}")
    print(table(results, modes, workloads))


def cmd_granule(argv):
    """Free memory found and bytes sent at granule orders 0, 3 and 9."""
    repeats = int(argv[argv.index("--repeats") + 1]) if "--repeats" in argv else 3
    missing = feature_missing()
    if missing:
        log(f"bench: granule: nothing to measure without the feature: {missing}")
        return 1
    modes, workloads = list(GRANULES), list(WORKLOADS)
    os.makedirs(OUT, exist_ok=True)
    raw = os.path.join(OUT, "granule.jsonl")

    def summary(st):
        return (f"free {(st['ram'] - st['in_use']) / MIB:.0f} MiB, tracked "
                f"{st['tracked'] * PAGE / MIB:.0f} MiB, sent {st['transferred'] / MIB:.0f} MiB")

    def run(mode, workload, workdir):
        return one_run(mode, workload, workdir, probe=True)
    results = run_matrix(run, modes, workloads, repeats, raw, summary)
    if results is None:
        return 1
    rows = md_table(results, modes, workloads, MODE_NAMES, [
        ("free at the start MiB", lambda rs, w, mo: fmt([(r["ram"] - r["in_use"]) / MIB
                                                         for r in rs])),
        ("tracked free MiB", lambda rs, w, mo: fmt([r["tracked"] * PAGE / MIB for r in rs])),
        ("skipped MiB", lambda rs, w, mo: fmt([(r["skipped"] or 0) * PAGE / MIB for r in rs])),
        ("sent MiB", col("transferred", scale=MIB)),
        ("sent / in use", lambda rs, w, mo: fmt([r["transferred"] / r["in_use"] for r in rs],
                                                "{:.2f}") + "x"),
        ("total s", col("total_ms", "{:.1f}", 1000)),
        ("downtime ms", col("downtime_ms")),
        ("filter max us", col("filter_us_max")),
        ("source CPU s", col("src_cpu_s", "{:.2f}")),
    ])
    md = os.path.join(REPO, "bench/results/granule.md")
    with open(md, "w") as f:
        f.write(f"""# The granule: free memory found, bytes sent

Produced by `make bench-granule  # = tests/e2e/run.sh granule {' '.join(argv)}`
(finished {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(os.path.getmtime(raw)))}), the
guests, QEMU and migration settings of migration.md; the default mode
(`enabled=host`), the device proposing granule order 0, 3 or 9
(`x-free-page-bitmap-granule-shift`). Each cell: median [min-max] of
{repeats} repeat(s).

- churn, freed, freed4g: as in migration.md.
- pagecache: `churn {WORKLOADS['pagecache'][3]}`: churn's chunks are tmpfs
  files (page cache), transparent huge pages off (anonymous and shmem).
- fragment: `freed {WORKLOADS['fragment'][3]}`: 1.5 GiB written, then one page
  in 4 of it kept and the others freed one by one out of order, THP off:
  1152 MiB free in pieces of at most 3 pages.
- free at the start: MemFree when the workload was ready (pages on the
  per-cpu lists are not in it); tracked free: what the bitmap held at the
  granule just before the migration (tracking turned on for a moment,
  `tracked_free_pages` read, handed back to the host; the build drains
  the per-cpu lists once, so it can exceed MemFree); skipped: pages the
  filter left out, over all syncs (a page can be skipped in more than
  one); filter max: the longest filter run of one sync.

{rows}

The cost of each granule on the allocator's hot path is in
alloc-insn.md and alloc-insn-distro.md; the default chosen from both is
explained in Documentation/mm/free_page_bitmap.rst ("Cost").
""")
    log(f"bench: wrote {md}")
    print(rows)
    return 0


# The demo: 1 GiB guests; churn as in the benchmark, and 640 MiB freed.
DEMO = (("churn", WORKLOADS["churn"][3]), ("freed", "-m 640 -k 128"))


def cmd_demo(argv):
    missing = feature_missing()
    # what a user has today (free page hinting, free page reporting), and ours
    modes = ["none", "hinting", "reporting"] + ([] if missing else ["ours"])
    rows = []
    n, total = 0, len(DEMO) * len(modes)
    for w, args in DEMO:
        for mo in modes:
            n += 1
            log(f"demo [{n}/{total}]: live-migrating a 1 GiB guest running '{w} {args}', "
                f"{MODE_NAMES[mo]} ...")
            with cpu_lock():
                st = one_run(mo, w, os.path.join(CACHE, "e2e/run/demo"), mem="1G",
                             ram=1024 * MIB, args=args)
            rows.append(st)
            log(f"demo: sent {st['transferred'] / MIB:.0f} MiB in {st['total_ms'] / 1000:.1f} s;"
                " the destination checked every page the workload wrote: PASS")
    print()
    print(f"{'workload':10}{'mode':20}{'sent MiB':>10}{'x in use':>10}{'total s':>9}"
          f"{'downtime ms':>13}{'pages skipped':>15}")
    for st in rows:
        sk = st["skipped"] if st["skipped"] is not None else "-"
        print(f"{st['workload']:10}{MODE_NAMES[st['mode']]:20}{st['transferred'] / MIB:10.0f}"
              f"{st['transferred'] / st['in_use']:10.2f}{st['total_ms'] / 1000:9.1f}"
              f"{st['downtime_ms']:13d}{sk:>15}")
    if missing:
        print(f"\ndemo: the free page bitmap could not run: {missing}")
        return 1
    print()
    for w, _ in DEMO:
        runs = {r["mode"]: r for r in rows if r["workload"] == w}
        b = runs["ours"]
        for mo in ("none", "hinting", "reporting"):
            a = runs[mo]
            mib = (a["transferred"] - b["transferred"]) / MIB
            sec = (a["total_ms"] - b["total_ms"]) / 1000
            print(f"{w}: against {MODE_NAMES[mo]}, the bitmap sent {abs(mib):.0f} MiB "
                  f"{'less' if mib >= 0 else 'more'} "
                  f"({abs(100 * (1 - b['transferred'] / a['transferred'])):.0f} % of the data) "
                  f"and took {abs(sec):.1f} s {'less' if sec >= 0 else 'more'}")
    return 0


def cmd_report(argv):
    """Write the report again from the last run's raw results."""
    raw = os.path.join(OUT, "results.jsonl")
    with open(raw) as f:
        results = [json.loads(line) for line in f]
    modes = [m for m in MODES if any(r["mode"] == m for r in results)]
    workloads = [w for w in WORKLOADS if any(r["workload"] == w for r in results)]
    repeats = max(r["repeat"] for r in results)
    classes = []
    if os.path.exists(os.path.join(OUT, "classes.jsonl")):
        with open(os.path.join(OUT, "classes.jsonl")) as f:
            classes = [json.loads(line) for line in f]
    write_report(results, modes, workloads, repeats, argv, raw, feature_missing(), classes)
    return 0


def main(argv):
    cmds = {"bench": cmd_bench, "demo": cmd_demo, "report": cmd_report,
            "classify": cmd_classify, "granule": cmd_granule}
    if len(argv) < 2 or argv[1] not in cmds:
        print(__doc__, file=sys.stderr)
        return 2
    return cmds[argv[1]](argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

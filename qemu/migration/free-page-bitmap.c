/*
 * Free page bitmap: drop guest-free pages from the migration bitmap.
 *
 * The guest keeps a bitmap of its free pages in its own memory (see
 * standard-headers/linux/virtio_balloon.h) and virtio-balloon tells us
 * where.  Whenever migration is about to send from a chunk of guest RAM
 * whose dirty log it has not cleared yet since the last sync, it clears
 * that log first and then (migration_clear_memory_region_dirty_bitmap())
 * drops the pages the guest has free from the chunk: a page allocated and
 * written after we read its bit is caught by the dirty log.  Reading the
 * bits before clearing the log would lose such writes with KVM's manual
 * dirty log clear, where a page stays writable without being logged until
 * its chunk's log is cleared; this is why the order of
 * qemu_guest_free_page_hint() must not be copied here.
 *
 * So a page is dropped only if its chunk's bit in rb->clear_bmap is clear
 * (the log was cleared since the last sync, or the sync cleared it
 * itself): free_page_bitmap_filter() checks that state, whoever calls it.
 *
 * The layout is read and validated by free-page-bitmap-core.c.  The state
 * below is protected by fpb.lock: the migration thread (which does not
 * hold the BQL) filters under it, and the device changes the header under
 * it, so that no filter reads a header the device has forgotten.  The
 * statistics have a lock of their own, never held across guest-controlled
 * work, so that query-migrate (under the BQL) never waits for a filter.
 * Lock order: bitmap_mutex, then fpb.lock, then fpb.stats_lock.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/error-report.h"
#include "qemu/lockable.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "exec/ramblock.h"
#include "exec/target_page.h"
#include "hw/boards.h"
#include "hw/mem/pc-dimm.h"
#include "hw/virtio/virtio-mem.h"
#include "system/hostmem.h"
#include "system/numa.h"
#include "system/runstate.h"
#include "migration/free-page-bitmap.h"
#include "free-page-bitmap-core.h"
#include "qapi/qapi-types-migration.h"
#include "migration-stats.h"
#include "options.h"
#include "migration.h"
#include "ram.h"
#include "trace.h"

/* Guest-physical runs of one chunk; more (rare aliases) stay unfiltered. */
#define FPB_MAX_WINDOWS 16
/*
 * Bits are read again every this many pages sent (128 MiB of 4 KiB pages),
 * where the log is cleared: pages freed since the chunk's log was cleared,
 * or before the guest turned the bitmap on, are dropped too.
 */
#define FPB_REFRESH_PAGES (1UL << 15)
/* How often free_page_bitmap_wait_guest() looks at the guest's header. */
#define FPB_WAIT_POLL_US (5 * 1000)

/* A guest RAM block (see fpb_collect_guest_ram()) and where it is mapped */
typedef struct FpbGuestRam {
    RAMBlock *rb;
    /* the windows of the whole block; nr > FPB_MAX_WINDOWS: too many */
    unsigned nr;
    FpbWindow w[FPB_MAX_WINDOWS];
} FpbGuestRam;

static struct {
    QemuMutex lock;
    /* filtering wanted (migration running); read without the lock */
    bool enabled;
    /* the announced header, 0 if none */
    uint64_t header_gpa;
    /* the header's layout was rejected: no filtering until a new one */
    bool rejected;
    /* layout snapshot and scratch space */
    FpbFilter filter;
    /* protects @stats */
    QemuMutex stats_lock;
    /* a device offers the bitmap: query-migrate reports the statistics */
    bool offered;
    /* of the current or last migration, zeroed when one starts */
    FreePageBitmapStats stats;
    /* how long the first pass waits for the guest to turn its bitmap on */
    unsigned wait_ms;
    /* free_page_bitmap_count() counts (off: only for comparisons) */
    bool count_free;
    /* test only: drop every Nth dirty page the guest did not call free */
    unsigned test_drop_in_use;
    uint64_t test_count;
    /* dirty sync count of the round the counters below are for */
    uint64_t round;
    /* whether the filter ran in that round */
    bool round_filtered;
    /* time spent filtering in that round */
    uint64_t round_ns;
    /* guest RAM and where it is mapped, as of the round (FpbGuestRam) */
    GArray *guest_ram;
} fpb;

/*
 * Destination: faults on pages the guest had free at the postcopy
 * switchover, served with a zero page (counted by the fault thread).
 */
static uint64_t fpb_free_faults;

/* Before any device or migration can use the state */
static void free_page_bitmap_init(void)
{
    FpbLimits limits = { 0 };

    qemu_mutex_init(&fpb.lock);
    qemu_mutex_init(&fpb.stats_lock);
    fpb.guest_ram = g_array_new(false, true, sizeof(FpbGuestRam));
    fpb_filter_init(&fpb.filter, &limits);
    fpb.count_free = true;
}
migration_init(free_page_bitmap_init);

/*
 * Guest RAM is the only memory whose pages may be dropped: the memory the
 * machine gave the guest (machine->ram, or the NUMA nodes' memdevs), and
 * the backends of pc-dimm (not NVDIMM) and virtio-mem devices, whatever
 * backs them: private or shared (vhost-user, virtiofs), anonymous, memfd
 * or a file, normal or huge pages.  Nothing else with a RAMBlock: VGA
 * VRAM, pflash and other ROM devices, option ROMs, NVDIMM, virtio-pmem,
 * ivshmem, ram_device BARs belong to a device or the firmware, whose
 * content the guest's page allocator knows nothing about.
 *
 * An allow-list, collected under the BQL when a migration starts (and
 * when a migrated header is checked): memory devices cannot be plugged
 * or unplugged while a migration runs (qdev_device_add(), qdev_unplug()).
 * Each entry also holds where the block is mapped, read-write, in guest-
 * physical space, refreshed once per sync round (fpb_map_guest_ram()).
 */
static void fpb_add_guest_ram(HostMemoryBackend *backend)
{
    MemoryRegion *mr = backend ? host_memory_backend_get_memory(backend)
                               : NULL;

    if (mr && mr->ram_block) {
        FpbGuestRam g = { .rb = mr->ram_block };

        g_array_append_val(fpb.guest_ram, g);
    }
}

static int fpb_add_memory_device(Object *obj, void *opaque)
{
    if (object_dynamic_cast(obj, TYPE_PC_DIMM) &&
        !object_dynamic_cast(obj, "nvdimm")) {
        fpb_add_guest_ram(PC_DIMM(obj)->hostmem);
    } else if (object_dynamic_cast(obj, TYPE_VIRTIO_MEM)) {
        fpb_add_guest_ram(VIRTIO_MEM(obj)->memdev);
    }
    return 0;
}

/* Collect the guest RAM blocks; BQL and fpb.lock held. */
static void fpb_collect_guest_ram(void)
{
    MachineState *ms = current_machine;
    NumaState *numa = ms->numa_state;

    g_array_set_size(fpb.guest_ram, 0);
    if (ms->ram && ms->ram->ram_block) {
        FpbGuestRam g = { .rb = ms->ram->ram_block };

        g_array_append_val(fpb.guest_ram, g);
    }
    for (int i = 0; numa && i < numa->num_nodes; i++) {
        fpb_add_guest_ram(numa->nodes[i].node_memdev);
    }
    object_child_foreach_recursive(object_get_root(), fpb_add_memory_device,
                                   NULL);
}

static FpbGuestRam *fpb_guest_ram(RAMBlock *rb)
{
    for (guint i = 0; rb && i < fpb.guest_ram->len; i++) {
        FpbGuestRam *g = &g_array_index(fpb.guest_ram, FpbGuestRam, i);

        if (g->rb == rb) {
            return g;
        }
    }
    return NULL;
}

/* Guest RAM that may hold the guest's bitmap: no discarded memory. */
static bool fpb_plain_ram(MemoryRegion *mr, hwaddr xlat, hwaddr len)
{
    if (!memory_region_is_ram(mr) || !fpb_guest_ram(mr->ram_block)) {
        return false;
    }
    if (memory_region_has_ram_discard_manager(mr)) {
        RamDiscardManager *rdm = memory_region_get_ram_discard_manager(mr);
        MemoryRegionSection s = {
            .mr = mr,
            .offset_within_region = xlat,
            .size = int128_make64(len),
        };

        return ram_discard_manager_is_populated(rdm, &s);
    }
    return true;
}

/* Check (and with @buf, copy) [@gpa, @gpa + @len) of guest RAM. */
static bool fpb_access(uint64_t gpa, void *buf, uint64_t len)
{
    uint8_t *p = buf;
    FlatView *fv;

    if (len > UINT64_MAX - gpa) {
        return false;
    }
    RCU_READ_LOCK_GUARD();
    fv = address_space_to_flatview(&address_space_memory);
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr = flatview_translate(fv, gpa, &xlat, &l, false,
                                              MEMTXATTRS_UNSPECIFIED);

        if (!l || !fpb_plain_ram(mr, xlat, l)) {
            return false;
        }
        if (p) {
            uint8_t *host = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat;

            if (l == sizeof(uint32_t) && !((uintptr_t)host & 3)) {
                /* seq: one atomic load (see FpbOps.read) */
                *(uint32_t *)p = qatomic_read((uint32_t *)host);
            } else {
                memcpy(p, host, l);
            }
            p += l;
        }
        gpa += l;
        len -= l;
    }
    return true;
}

static bool fpb_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    return fpb_access(gpa, buf, len);
}

static bool fpb_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
    return fpb_access(gpa, NULL, len);
}

typedef struct FpbChunk {
    RAMBlock *rb;
    /* the pages to filter, as offsets in @rb */
    ram_addr_t start, end;
    unsigned tp_bits;
    unsigned nr;
    FpbWindow w[FPB_MAX_WINDOWS];
} FpbChunk;

/* The caller clears the dirty log (see free_page_bitmap_filter()). */
static const FpbOps fpb_ops = {
    .read = fpb_read,
    .is_ram = fpb_is_ram,
};

/* Whether the flat range at @gpa is read-write (not PAM, not a ROM alias) */
static bool fpb_writable(uint64_t gpa)
{
    MemoryRegionSection s = memory_region_find(get_system_memory(), gpa, 1);
    bool rw = s.mr && !s.readonly;

    if (s.mr) {
        memory_region_unref(s.mr);
    }
    return rw;
}

/*
 * The first MiB of guest-physical memory is the firmware's on a PC (the
 * real-mode vectors and BIOS data, the EBDA, option ROMs shadowed in RAM),
 * and device models read it when their state is loaded: kvmvapic looks
 * for its option ROM there and fails the migration if it is gone.  Never
 * drop from it, whatever the guest's bits say; Linux keeps all of it
 * reserved (since 5.13), so no free page is lost.  Applied on every
 * target, where it costs at most that MiB (Arm's virt has no RAM there).
 */
#define FPB_FIRMWARE_END (1 * MiB)

/* flatview_cb: where a guest RAM block is mapped read-write. */
static bool fpb_add_window(Int128 start, Int128 len, const MemoryRegion *mr,
                           hwaddr off, void *opaque)
{
    FpbGuestRam *g = opaque;
    uint64_t page = qemu_target_page_size(), a, b;
    uint64_t gpa = int128_get64(start), skip = 0;

    if (mr->ram_block != g->rb || !memory_region_is_ram((MemoryRegion *)mr) ||
        !fpb_writable(gpa)) {
        return false;
    }
    if (gpa < FPB_FIRMWARE_END) {
        skip = MIN(FPB_FIRMWARE_END - gpa, int128_get64(len));
    }
    a = ROUND_UP(off + skip, page);
    b = QEMU_ALIGN_DOWN(MIN(off + int128_get64(len), g->rb->used_length),
                        page);
    if (a >= b) {
        return false;
    }
    if (g->nr < FPB_MAX_WINDOWS) {
        g->w[g->nr] = (FpbWindow) {
            .gpa = gpa + (a - off),
            .first_page = a >> qemu_target_page_bits(),
            .npages = (b - a) >> qemu_target_page_bits(),
        };
    }
    g->nr++;
    return false;
}

/*
 * A page mapped at two guest-physical addresses would have two bits; drop
 * the windows that overlap rather than decide which one to believe.
 */
static void fpb_drop_aliases(FpbGuestRam *g)
{
    bool bad[FPB_MAX_WINDOWS] = { false };
    unsigned i, j, n = 0;

    for (i = 0; i < g->nr; i++) {
        for (j = i + 1; j < g->nr; j++) {
            if (g->w[i].first_page < g->w[j].first_page + g->w[j].npages &&
                g->w[j].first_page < g->w[i].first_page + g->w[i].npages) {
                bad[i] = bad[j] = true;
            }
        }
    }
    for (i = 0; i < g->nr; i++) {
        if (!bad[i]) {
            g->w[n++] = g->w[i];
        }
    }
    g->nr = n;
}

/*
 * Where each guest RAM block is mapped now, and the end of guest RAM in
 * guest-physical space (what a layout may cover): once per sync round.
 * A block mapped in more windows than we keep is not filtered at all.
 */
static uint64_t fpb_map_guest_ram(void)
{
    uint64_t max_gpa = 0;

    RCU_READ_LOCK_GUARD();
    for (guint i = 0; i < fpb.guest_ram->len; i++) {
        FpbGuestRam *g = &g_array_index(fpb.guest_ram, FpbGuestRam, i);
        FlatView *fv = address_space_to_flatview(&address_space_memory);

        g->nr = 0;
        flatview_for_each_range(fv, fpb_add_window, g);
        if (g->nr > FPB_MAX_WINDOWS) {
            warn_report_once("free page bitmap: RAM block %s is mapped in "
                             "%u places, its free pages are migrated",
                             g->rb->idstr, g->nr);
            g->nr = 0;
        }
        fpb_drop_aliases(g);
        for (unsigned j = 0; j < g->nr; j++) {
            max_gpa = MAX(max_gpa, g->w[j].gpa +
                          (g->w[j].npages << qemu_target_page_bits()));
        }
    }
    return max_gpa;
}

/*
 * Ranges per NUMA node a layout may have: Linux publishes one per zone,
 * and a node has at most six (DMA, DMA32, Normal, HighMem, Movable,
 * Device).
 */
#define FPB_RANGES_PER_NODE 8

/* Bounds for the layout: the guest's RAM and NUMA nodes as they are now. */
static void fpb_update_limits(void)
{
    NumaState *numa = current_machine->numa_state;
    FpbLimits limits = {
        .target_page_bits = qemu_target_page_bits(),
        .max_ranges = MAX(numa ? numa->num_nodes : 0, 1) * FPB_RANGES_PER_NODE,
        .max_loads = 1,
    };

    limits.max_gpa = fpb_map_guest_ram();
    fpb.filter.limits = limits;
    fpb_filter_new_round(&fpb.filter);
}

static void fpb_reject(const char *reason)
{
    fpb.rejected = true;
    WITH_QEMU_LOCK_GUARD(&fpb.stats_lock) {
        fpb.stats.rejected_layouts++;
    }
    fpb_layout_reset(&fpb.filter.layout);
    trace_free_page_bitmap_reject(fpb.header_gpa, reason);
    warn_report_once("free page bitmap: guest layout rejected (%s), "
                     "migrating its free pages too", reason);
}

bool free_page_bitmap_migration_allowed(void)
{
    /*
     * COLO and background snapshots need every page.  Postcopy is fine:
     * free_page_bitmap_switchover() makes every page the destination can
     * fault on sendable or free.
     */
    return !migrate_colo() && !migrate_background_snapshot();
}

bool free_page_bitmap_postcopy(void)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    return qatomic_read(&fpb.offered) && migrate_postcopy_ram() &&
           free_page_bitmap_migration_allowed();
}

bool free_page_bitmap_active(void)
{
    return qatomic_read(&fpb.enabled) && free_page_bitmap_migration_allowed()
           && !migration_in_postcopy();
}

/* Only guest RAM (see FpbGuestRam) */
static bool fpb_block_droppable(RAMBlock *rb)
{
    return fpb_guest_ram(rb) != NULL;
}

/* Whether the dirty log of the chunk holding @offset was cleared. */
static bool fpb_log_cleared(RAMBlock *rb, ram_addr_t offset)
{
    unsigned tp_bits = qemu_target_page_bits();

    return !rb->clear_bmap ||
           !test_bit((offset >> tp_bits) >> rb->clear_bmap_shift,
                     rb->clear_bmap);
}

/* The end of the run of chunks from @offset whose log is (@cleared) clear. */
static ram_addr_t fpb_run_end(RAMBlock *rb, ram_addr_t offset,
                              ram_addr_t end, bool cleared)
{
    ram_addr_t chunk;

    if (!rb->clear_bmap) {
        return end;
    }
    chunk = (ram_addr_t)1 << (rb->clear_bmap_shift + qemu_target_page_bits());
    while (offset < end && fpb_log_cleared(rb, offset) == cleared) {
        offset = MIN(QEMU_ALIGN_DOWN(offset, chunk) + chunk, end);
    }
    return offset;
}

/*
 * Test only (x-free-page-bitmap-test-drop-in-use=N on the device): also
 * drop every Nth page of @c that is still dirty, which the guest did not
 * call free, so that an end-to-end test can show that its oracle catches
 * a filter that drops pages in use.
 */
static uint64_t fpb_test_drop_in_use(RAMBlock *rb, const FpbChunk *c)
{
    uint64_t dropped = 0;

    for (unsigned i = 0; i < c->nr; i++) {
        const FpbWindow *w = &c->w[i];

        for (uint64_t p = w->first_page; p < w->first_page + w->npages; p++) {
            if (test_bit(p, rb->bmap) &&
                !(++fpb.test_count % fpb.test_drop_in_use)) {
                clear_bit(p, rb->bmap);
                if (rb->fpb_unsent_bmap) {
                    set_bit(p, rb->fpb_unsent_bmap);
                }
                dropped++;
            }
        }
    }
    return dropped;
}

/* Per-round state, reset by the first filter or count of a round. */
static void fpb_start_round(void)
{
    uint64_t round = stat64_get(&mig_stats.dirty_sync_count);

    if (round != fpb.round) {
        fpb.round = round;
        fpb.round_filtered = false;
        fpb.round_ns = 0;
        fpb_update_limits();
    }
}

/* Where @c's pages are in guest-physical space, as of this round. */
static void fpb_find_windows(FpbChunk *c)
{
    FpbGuestRam *g = fpb_guest_ram(c->rb);
    uint64_t first = ROUND_UP(c->start, 1ULL << c->tp_bits) >> c->tp_bits;
    uint64_t end = c->end >> c->tp_bits;

    for (unsigned i = 0; g && i < g->nr; i++) {
        uint64_t a = MAX(first, g->w[i].first_page);
        uint64_t b = MIN(end, g->w[i].first_page + g->w[i].npages);

        if (a < b) {
            c->w[c->nr++] = (FpbWindow) {
                .gpa = g->w[i].gpa +
                       ((a - g->w[i].first_page) << c->tp_bits),
                .first_page = a,
                .npages = b - a,
            };
        }
    }
}

/* Drop the free pages of [@start, @end) of @rb; fpb.lock held. */
static uint64_t fpb_filter_run(RAMBlock *rb, ram_addr_t start, ram_addr_t end)
{
    FpbChunk c = {
        .rb = rb,
        .start = start,
        .end = end,
        .tp_bits = qemu_target_page_bits(),
    };
    const char *reason = "";
    uint64_t cleared = 0, t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    FpbStatus ret;

    WITH_RCU_READ_LOCK_GUARD() {
        fpb_find_windows(&c);
        ret = fpb_filter(&fpb.filter, &fpb_ops, &c, fpb.header_gpa, c.w,
                         c.nr, rb->bmap, rb->fpb_unsent_bmap, &cleared,
                         &reason);
    }

    if (ret == FPB_OK && fpb.test_drop_in_use) {
        cleared += fpb_test_drop_in_use(rb, &c);
    }
    if (ret == FPB_REJECTED) {
        fpb_reject(reason);
    } else if (ret == FPB_OK) {
        QEMU_LOCK_GUARD(&fpb.stats_lock);

        if (!fpb.round_filtered) {
            fpb.round_filtered = true;
            fpb.stats.filtered_syncs++;
            fpb.stats.skipped_pages_last = 0;
        }
        fpb.stats.skipped_pages += cleared;
        fpb.stats.skipped_pages_last += cleared;
        fpb.round_ns += qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0;
        fpb.stats.filter_time_last = fpb.round_ns / 1000;
        fpb.stats.filter_time_max = MAX(fpb.stats.filter_time_max,
                                        fpb.stats.filter_time_last);
    }
    trace_free_page_bitmap_filter(rb->idstr, start, end - start, ret, cleared,
                                  qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0);
    return cleared;
}

uint64_t free_page_bitmap_filter(RAMBlock *rb, ram_addr_t start,
                                 ram_addr_t size)
{
    ram_addr_t end = MIN(start + size, rb->used_length);
    uint64_t cleared = 0;

    QEMU_LOCK_GUARD(&fpb.lock);
    if (!fpb.header_gpa || fpb.rejected || !free_page_bitmap_active() ||
        !fpb_block_droppable(rb)) {
        return 0;
    }

    fpb_start_round();

    /*
     * Every drop is bound to a cleared dirty log: skip the chunks whose
     * log the last sync left for migration to clear and it has not yet.
     */
    while (start < end && !fpb.rejected) {
        ram_addr_t run = fpb_run_end(rb, start, end, true);

        if (run > start) {
            cleared += fpb_filter_run(rb, start, run);
        }
        start = fpb_run_end(rb, run, end, false);
    }
    return cleared;
}

/* Count the free pages of [@start, @end) of @rb that are dirty. */
static uint64_t fpb_count_run(RAMBlock *rb, ram_addr_t start, ram_addr_t end)
{
    FpbChunk c = {
        .rb = rb,
        .start = start,
        .end = end,
        .tp_bits = qemu_target_page_bits(),
    };
    const char *reason = "";
    uint64_t count = 0;
    FpbStatus ret;

    WITH_RCU_READ_LOCK_GUARD() {
        fpb_find_windows(&c);
        ret = fpb_count(&fpb.filter, &fpb_ops, &c, fpb.header_gpa, c.w, c.nr,
                        rb->bmap, &count, &reason);
    }
    if (ret == FPB_REJECTED) {
        fpb_reject(reason);
    }
    trace_free_page_bitmap_count(rb->idstr, start, end - start, ret, count);
    return ret == FPB_OK ? count : 0;
}

uint64_t free_page_bitmap_count(RAMBlock *rb)
{
    ram_addr_t start = 0, end = rb->used_length;
    uint64_t count = 0;

    /*
     * The count steers decisions made while the guest runs (remaining,
     * the dirty rate, convergence).  With the guest stopped (the final
     * sync, the postcopy switchover) nothing is decided by it any more:
     * keep it out of the downtime.
     */
    if (!runstate_is_running()) {
        return 0;
    }
    QEMU_LOCK_GUARD(&fpb.lock);
    if (!fpb.header_gpa || fpb.rejected || !fpb.count_free ||
        !free_page_bitmap_active() || !fpb_block_droppable(rb)) {
        return 0;
    }
    fpb_start_round();
    /* Only where the log is still to clear: the rest was filtered. */
    while (start < end && !fpb.rejected) {
        ram_addr_t run;

        start = fpb_run_end(rb, start, end, true);
        run = fpb_run_end(rb, start, end, false);
        if (run > start) {
            count += fpb_count_run(rb, start, run);
        }
        start = run;
    }
    return count;
}

void free_page_bitmap_note_free_dirty(uint64_t counted, uint64_t discounted)
{
    QEMU_LOCK_GUARD(&fpb.stats_lock);
    fpb.stats.free_dirty_pages = counted;
    fpb.stats.free_dirty_pages_discounted = discounted;
}

void free_page_bitmap_set_count_free(bool on)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    fpb.count_free = on;
}

/*
 * Where free_page_bitmap_refresh() last read bits.  Only the migration
 * thread uses it, with bitmap_mutex held.
 */
static struct {
    RAMBlock *rb;
    unsigned long part;
    uint64_t round;
} fpb_last;

uint64_t free_page_bitmap_refresh(RAMBlock *rb, unsigned long page)
{
    uint64_t round = stat64_get(&mig_stats.dirty_sync_count);
    unsigned long part = page / FPB_REFRESH_PAGES;
    unsigned tp_bits = qemu_target_page_bits();

    if (fpb_last.rb == rb && fpb_last.part == part &&
        fpb_last.round == round) {
        return 0;
    }
    fpb_last.rb = rb;
    fpb_last.part = part;
    fpb_last.round = round;
    /* Only the chunks of the part whose log is clear are filtered. */
    return free_page_bitmap_filter(rb,
                                   (ram_addr_t)part * FPB_REFRESH_PAGES
                                   << tp_bits,
                                   (ram_addr_t)FPB_REFRESH_PAGES << tp_bits);
}

int64_t free_page_bitmap_switchover(RAMBlock *rb)
{
    FpbChunk c = {
        .rb = rb,
        .start = 0,
        .end = rb->used_length,
        .tp_bits = qemu_target_page_bits(),
    };
    uint64_t npages = rb->used_length >> c.tp_bits;
    const char *reason = "";
    FpbSwitchover out;
    FpbStatus ret;

    if (!rb->fpb_unsent_bmap) {
        return 0;
    }
    g_free(rb->fpb_free_bmap);
    rb->fpb_free_bmap = bitmap_new(npages);

    QEMU_LOCK_GUARD(&fpb.lock);
    WITH_RCU_READ_LOCK_GUARD() {
        /*
         * Huge pages are placed whole: leave them out, rather than track
         * which host pages are free as a whole.
         */
        if (fpb.header_gpa && !fpb.rejected && qatomic_read(&fpb.enabled) &&
            fpb_block_droppable(rb) &&
            qemu_ram_pagesize(rb) == qemu_target_page_size()) {
            fpb_update_limits();
            fpb_find_windows(&c);
        }
        ret = fpb_switchover(&fpb.filter, &fpb_ops, &c, fpb.header_gpa, c.w,
                             c.nr, npages, rb->bmap, rb->fpb_unsent_bmap,
                             rb->fpb_free_bmap, &out, &reason);
    }
    if (ret == FPB_REJECTED) {
        fpb_reject(reason);
    }
    WITH_QEMU_LOCK_GUARD(&fpb.stats_lock) {
        fpb.stats.postcopy_free_pages += out.free_pages;
        fpb.stats.postcopy_redirtied_pages += out.redirtied;
    }
    trace_free_page_bitmap_switchover(rb->idstr, ret, out.free_pages,
                                      out.undirtied, out.redirtied);
    return (int64_t)out.redirtied - (int64_t)out.undirtied;
}

bool free_page_bitmap_postcopy_fault(RAMBlock *rb, ram_addr_t offset)
{
    if (!rb->fpb_free_bmap ||
        !test_bit(offset >> qemu_target_page_bits(), rb->fpb_free_bmap)) {
        return false;
    }
    qatomic_inc(&fpb_free_faults);
    return true;
}

void free_page_bitmap_set_header(uint64_t gpa)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    if (fpb.header_gpa || gpa) {
        trace_free_page_bitmap_set_header(fpb.header_gpa, gpa);
    }
    fpb.rejected = false;
    /*
     * The guest announces its header again after every new layout.  The
     * same header keeps the layout loaded from it, which its seq still
     * guards: forgetting it would cost a load, and a sync round allows
     * one, so the blocks after the announcement would go unfiltered in
     * that round (the first round, with every page dirty, after START).
     */
    if (gpa != fpb.header_gpa) {
        fpb.header_gpa = gpa;
        fpb_layout_reset(&fpb.filter.layout);
    }
}

void free_page_bitmap_set_enabled(bool enabled)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    trace_free_page_bitmap_set_enabled(enabled);
    qatomic_set(&fpb.enabled, enabled);
    /*
     * Every migration reads the header afresh, so that its statistics say
     * whether the header was usable for it.
     */
    if (enabled) {
        fpb.rejected = false;
        fpb_collect_guest_ram();
    }
    fpb.round = 0;
    fpb_last.rb = NULL;
    fpb_layout_reset(&fpb.filter.layout);
}

bool free_page_bitmap_check_header(uint64_t gpa)
{
    struct virtio_balloon_fpb_header h;

    QEMU_LOCK_GUARD(&fpb.lock);
    fpb_collect_guest_ram();
    if (!(gpa & 7) && fpb_access(gpa, &h, sizeof(h)) &&
        le32_to_cpu(h.magic) == VIRTIO_BALLOON_FPB_MAGIC) {
        return true;
    }
    WITH_QEMU_LOCK_GUARD(&fpb.stats_lock) {
        fpb.stats.rejected_layouts++;
    }
    trace_free_page_bitmap_reject(gpa, "migrated header not valid");
    return false;
}

void free_page_bitmap_set_wait_ms(unsigned ms)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    fpb.wait_ms = ms;
}

/* Whether the guest's bitmap is on, FPB_BUSY while it is not yet. */
static FpbStatus fpb_guest_status(void)
{
    const char *reason;

    QEMU_LOCK_GUARD(&fpb.lock);
    if (!fpb.header_gpa || fpb.rejected) {
        return FPB_REJECTED;
    }
    /* A bad header is rejected (and counted) by the first filter. */
    return fpb_header_status(&fpb_ops, NULL, fpb.header_gpa, &reason);
}

void free_page_bitmap_wait_guest(MigrationState *s)
{
    int64_t t0 = qemu_clock_get_ms(QEMU_CLOCK_REALTIME), waited;
    const char *result;

    if (!free_page_bitmap_active()) {
        return;
    }
    for (;;) {
        FpbStatus status = fpb_guest_status();

        waited = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) - t0;
        if (status != FPB_BUSY) {
            result = status == FPB_OK ? "guest ready" : "no usable header";
            break;
        }
        if (qatomic_read(&s->state) != MIGRATION_STATUS_ACTIVE) {
            result = "migration no longer active";
            break;
        }
        if (!runstate_is_running()) {
            result = "guest not running";
            break;
        }
        if (waited >= qatomic_read(&fpb.wait_ms)) {
            result = "timed out";
            break;
        }
        g_usleep(FPB_WAIT_POLL_US);
    }

    WITH_QEMU_LOCK_GUARD(&fpb.stats_lock) {
        fpb.stats.guest_wait_time = waited;
        fpb.stats.guest_wait_timed_out = !strcmp(result, "timed out");
    }
    trace_free_page_bitmap_wait_guest(result, waited);
}

void free_page_bitmap_set_test_drop_in_use(unsigned n)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    if (n) {
        warn_report("free page bitmap: x-free-page-bitmap-test-drop-in-use=%u "
                    "drops pages in use: the destination will be corrupt "
                    "(a test mode)", n);
    }
    fpb.test_drop_in_use = n;
}

void free_page_bitmap_set_offered(bool offered)
{
    qatomic_set(&fpb.offered, offered);
}

void free_page_bitmap_reset_stats(void)
{
    QEMU_LOCK_GUARD(&fpb.stats_lock);
    fpb.stats = (FreePageBitmapStats) { 0 };
    qatomic_set(&fpb_free_faults, 0);
}

void free_page_bitmap_populate_info(MigrationInfo *info)
{
    QEMU_LOCK_GUARD(&fpb.stats_lock);
    if (qatomic_read(&fpb.offered)) {
        info->free_page_bitmap = g_memdup2(&fpb.stats, sizeof(fpb.stats));
        info->free_page_bitmap->postcopy_free_faults =
            qatomic_read(&fpb_free_faults);
    }
}

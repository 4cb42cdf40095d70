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
 * The layout is read and validated by free-page-bitmap-core.c; which
 * memory is guest RAM, the only memory whose pages may be dropped, is
 * free-page-bitmap-ram.c's to say.  The state below is protected by
 * fpb.lock: the migration thread (which does not hold the BQL) filters
 * under it, and the device changes the header under it, so that no
 * filter reads a header the device has forgotten.  The
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
#include "exec/ramblock.h"
#include "exec/target_page.h"
#include "hw/boards.h"
#include "system/numa.h"
#include "system/runstate.h"
#include "migration/free-page-bitmap.h"
#include "free-page-bitmap-core.h"
#include "free-page-bitmap-ram.h"
#include "qapi/qapi-types-migration.h"
#include "migration-stats.h"
#include "options.h"
#include "migration.h"
#include "ram.h"
#include "trace.h"

/*
 * Bits are read again every this many pages sent (128 MiB of 4 KiB pages),
 * where the log is cleared: pages freed since the chunk's log was cleared,
 * or before the guest turned the bitmap on, are dropped too.
 */
#define FPB_REFRESH_PAGES (1UL << 15)
/* How often free_page_bitmap_wait_guest() looks at the guest's header. */
#define FPB_WAIT_POLL_US (5 * 1000)

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
    fpb_filter_init(&fpb.filter, &limits);
    fpb.count_free = true;
}
migration_init(free_page_bitmap_init);

static bool fpb_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    return fpb_guest_ram_access(gpa, buf, len);
}

static bool fpb_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
    return fpb_guest_ram_access(gpa, NULL, len);
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

    limits.max_gpa = fpb_guest_ram_map();
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
    return fpb_guest_ram_find(rb) != NULL;
}

/* Whether the dirty log of the chunk holding @offset was cleared. */
static bool fpb_log_cleared(RAMBlock *rb, ram_addr_t offset)
{
    unsigned tp_bits = qemu_target_page_bits();

    return !rb->clear_bmap ||
           !test_bit((offset >> tp_bits) >> rb->clear_bmap_shift,
                     rb->clear_bmap);
}

/*
 * The end of the run of chunks from @offset whose log is (@cleared) clear;
 * without clear_bmap every chunk's log is clear (fpb_log_cleared()).
 */
static ram_addr_t fpb_run_end(RAMBlock *rb, ram_addr_t offset,
                              ram_addr_t end, bool cleared)
{
    ram_addr_t chunk;

    if (!rb->clear_bmap) {
        return cleared ? end : offset;
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
    FpbGuestRam *g = fpb_guest_ram_find(c->rb);
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

/*
 * Drop (@drop) or only count the free pages of [@start, @end) of @rb that
 * are dirty; fpb.lock held.  Returns the pages dropped or counted.
 */
static uint64_t fpb_run(RAMBlock *rb, ram_addr_t start, ram_addr_t end,
                        bool drop)
{
    FpbChunk c = {
        .rb = rb,
        .start = start,
        .end = end,
        .tp_bits = qemu_target_page_bits(),
    };
    const char *reason = "";
    uint64_t pages = 0, t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);
    FpbStatus ret;

    WITH_RCU_READ_LOCK_GUARD() {
        fpb_find_windows(&c);
        if (drop) {
            ret = fpb_filter(&fpb.filter, &fpb_ops, &c, fpb.header_gpa, c.w,
                             c.nr, rb->bmap, rb->fpb_unsent_bmap, &pages,
                             &reason);
        } else {
            ret = fpb_count(&fpb.filter, &fpb_ops, &c, fpb.header_gpa, c.w,
                            c.nr, rb->bmap, &pages, &reason);
        }
    }
    if (ret == FPB_REJECTED) {
        fpb_reject(reason);
    }
    if (ret != FPB_OK) {
        pages = 0;
    } else if (drop) {
        if (fpb.test_drop_in_use) {
            pages += fpb_test_drop_in_use(rb, &c);
        }
        QEMU_LOCK_GUARD(&fpb.stats_lock);
        if (!fpb.round_filtered) {
            fpb.round_filtered = true;
            fpb.stats.filtered_syncs++;
            fpb.stats.skipped_pages_last = 0;
        }
        fpb.stats.skipped_pages += pages;
        fpb.stats.skipped_pages_last += pages;
        fpb.round_ns += qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0;
        fpb.stats.filter_time_last = fpb.round_ns / 1000;
        fpb.stats.filter_time_max = MAX(fpb.stats.filter_time_max,
                                        fpb.stats.filter_time_last);
    }
    if (drop) {
        trace_free_page_bitmap_filter(rb->idstr, start, end - start, ret,
                                      pages,
                                      qemu_clock_get_ns(QEMU_CLOCK_REALTIME) -
                                      t0);
    } else {
        trace_free_page_bitmap_count(rb->idstr, start, end - start, ret,
                                     pages);
    }
    return pages;
}

/*
 * fpb_run() over the chunks of [@start, @end) of @rb whose dirty log is
 * clear (@drop: every drop is bound to a cleared log) or, counting, still
 * to clear (the others were filtered already); fpb.lock held.
 */
static uint64_t fpb_run_chunks(RAMBlock *rb, ram_addr_t start,
                               ram_addr_t end, bool drop)
{
    uint64_t pages = 0;

    fpb_start_round();
    while (start < end && !fpb.rejected) {
        ram_addr_t first = fpb_run_end(rb, start, end, !drop);
        ram_addr_t last = fpb_run_end(rb, first, end, drop);

        if (last > first) {
            pages += fpb_run(rb, first, last, drop);
        }
        start = last;
    }
    return pages;
}

uint64_t free_page_bitmap_filter(RAMBlock *rb, ram_addr_t start,
                                 ram_addr_t size)
{
    QEMU_LOCK_GUARD(&fpb.lock);
    if (!fpb.header_gpa || fpb.rejected || !free_page_bitmap_active() ||
        !fpb_block_droppable(rb)) {
        return 0;
    }
    return fpb_run_chunks(rb, start, MIN(start + size, rb->used_length),
                          true);
}

uint64_t free_page_bitmap_count(RAMBlock *rb)
{
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
    return fpb_run_chunks(rb, 0, rb->used_length, false);
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
        fpb_guest_ram_collect();
    }
    fpb.round = 0;
    fpb_last.rb = NULL;
    fpb_layout_reset(&fpb.filter.layout);
}

bool free_page_bitmap_check_header(uint64_t gpa)
{
    struct virtio_balloon_fpb_header h;

    QEMU_LOCK_GUARD(&fpb.lock);
    fpb_guest_ram_collect();
    if (!(gpa & 7) && fpb_guest_ram_access(gpa, &h, sizeof(h)) &&
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

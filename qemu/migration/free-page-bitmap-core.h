/*
 * Free page bitmap: validation of the guest's layout and the filter that
 * drops guest-free pages from a migration dirty bitmap.
 *
 * This part knows nothing about RAMBlocks, the memory API or locking: it
 * works on guest-physical addresses through a few callbacks, so that it
 * can be unit-tested and fuzzed outside QEMU.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_FREE_PAGE_BITMAP_CORE_H
#define MIGRATION_FREE_PAGE_BITMAP_CORE_H

#include "standard-headers/linux/virtio_balloon.h"

/* Largest guest page (page_shift) and granule (page_shift + order). */
#define FPB_MAX_PAGE_SHIFT      24
#define FPB_MAX_GRANULE_SHIFT   40

typedef struct FpbOps {
    /*
     * Copy @len bytes of guest-physical memory at @gpa to @buf.  Returns
     * false, and copies nothing, unless all of it is plain guest RAM (no
     * MMIO, ROM, ram_device or discarded memory).  An aligned 32-bit
     * value (seq) is read with one atomic load.
     */
    bool (*read)(void *opaque, uint64_t gpa, void *buf, uint64_t len);
    /* Whether [@gpa, @gpa + @len) is plain guest RAM, as for read(). */
    bool (*is_ram)(void *opaque, uint64_t gpa, uint64_t len);
    /*
     * Clear the dirty log of the pages fpb_filter() is about to filter:
     * from here on, writes to them show up at the next dirty-bitmap
     * sync.  NULL if the caller has cleared it already (QEMU's migration
     * does, in migration_clear_memory_region_dirty_bitmap()).
     */
    void (*clear_log)(void *opaque);
} FpbOps;

/* What the host allows a layout to be. */
typedef struct FpbLimits {
    /* log2 of the page size of the migration bitmap */
    unsigned target_page_bits;
    /* end of the guest-physical address space that holds RAM */
    uint64_t max_gpa;
    /* most ranges (guest zones, a few per NUMA node) a layout may have */
    uint32_t max_ranges;
    /*
     * Most layout loads between two fpb_filter_new_round() calls, 0 for no
     * limit: a guest that changes its layout faster is not filtered until
     * the next round, rather than have the host validate every layout.
     */
    uint32_t max_loads;
} FpbLimits;

/* One validated range: a guest zone's span and its bitmap pages. */
typedef struct FpbRange {
    /* first guest page, aligned to the granule */
    uint64_t start_pfn;
    /* granules covered, one bit each */
    uint64_t nr_bits;
    /* number of bitmap pages */
    uint64_t nr_pages;
    /* guest-physical address of each bitmap page, in order */
    uint64_t *page_gpa;
} FpbRange;

/* A snapshot of the guest's layout, valid while the header's seq is. */
typedef struct FpbLayout {
    /* true once validated; everything below is meaningless otherwise */
    bool valid;
    /* the header this snapshot was read from */
    uint64_t header_gpa;
    /* the (even) seq the snapshot was read at */
    uint32_t seq;
    /* log2 of the guest page size */
    uint8_t page_shift;
    /* log2 of the guest pages per bit */
    uint8_t granule_order;
    /* number of entries in @ranges */
    uint32_t nr_ranges;
    /* the ranges, possibly overlapping */
    FpbRange *ranges;
    /* sum of nr_bits over the ranges */
    uint64_t total_bits;
} FpbLayout;

/* A run of pages of one dirty bitmap, contiguous in guest-physical space. */
typedef struct FpbWindow {
    /* guest-physical address of the first page, page aligned */
    uint64_t gpa;
    /* index of the first page in the dirty bitmap */
    uint64_t first_page;
    /* number of pages (of 1 << target_page_bits bytes) */
    uint64_t npages;
} FpbWindow;

/* The filter's state: the layout snapshot and scratch buffers. */
typedef struct FpbFilter {
    /* bounds for the layout */
    FpbLimits limits;
    /* the last snapshot that was validated */
    FpbLayout layout;
    /* free pages of the windows being filtered, one word-aligned run each */
    unsigned long *free;
    /* size of @free in longs */
    size_t free_longs;
    /* bitmap bytes read from the guest */
    uint8_t *buf;
    /* size of @buf in bytes */
    size_t buf_len;
    /* layouts loaded since fpb_filter_new_round() */
    uint32_t loads;
} FpbFilter;

typedef enum FpbStatus {
    /* the bits were read and applied */
    FPB_OK,
    /* nothing filtered this time: guest not active or changing its layout */
    FPB_BUSY,
    /* the layout is bad: the guest must not be trusted until re-announced */
    FPB_REJECTED,
} FpbStatus;

void fpb_filter_init(FpbFilter *f, const FpbLimits *limits);
void fpb_filter_destroy(FpbFilter *f);
/* A new round (a dirty-bitmap sync): limits.max_loads more loads. */
void fpb_filter_new_round(FpbFilter *f);
/* Forget the layout snapshot (new header, device reset). */
void fpb_layout_reset(FpbLayout *l);

/*
 * Whether the guest's bitmap at @header_gpa is on: FPB_OK if it is,
 * FPB_BUSY if not (yet), FPB_REJECTED (and *@reason) if the header is bad.
 */
FpbStatus fpb_header_status(const FpbOps *ops, void *opaque,
                            uint64_t header_gpa, const char **reason);

/*
 * Read and validate the layout announced at @header_gpa into @l.
 * FPB_REJECTED sets *@reason to a static string.
 */
FpbStatus fpb_layout_load(FpbLayout *l, const FpbLimits *limits,
                          const FpbOps *ops, void *opaque,
                          uint64_t header_gpa, const char **reason);

/*
 * Drop the pages of @windows that the guest says are free from @bmap.
 *
 * First clear the dirty log (@ops->clear_log, unless the caller did, which
 * has to be just as first), then read seq, the bits and
 * seq again, then clear the bits of free pages in @bmap.  A page left
 * unsent this way was free after write tracking was re-armed, so a later
 * allocation and write shows up in the next sync.  Reading the bits before
 * clearing the log would lose such writes.
 *
 * The windows must not overlap in @bmap.  *@cleared is the number of bits
 * that were set in @bmap and are now clear; if @unsent is not NULL, they
 * are set there too (see fpb_switchover()).
 */
FpbStatus fpb_filter(FpbFilter *f, const FpbOps *ops, void *opaque,
                     uint64_t header_gpa, const FpbWindow *windows,
                     unsigned nr_windows, unsigned long *bmap,
                     unsigned long *unsent, uint64_t *cleared,
                     const char **reason);

/*
 * Count the dirty pages of @windows in @bmap that the guest says are free,
 * dropping nothing: the bits are read without clearing any dirty log,
 * which is safe only because nothing is dropped on their word.
 */
FpbStatus fpb_count(FpbFilter *f, const FpbOps *ops, void *opaque,
                    uint64_t header_gpa, const FpbWindow *windows,
                    unsigned nr_windows, const unsigned long *bmap,
                    uint64_t *count, const char **reason);

/* How many bits of @free (@n bits from 0) are set in @bmap from @start. */
uint64_t fpb_bitmap_count_free(const unsigned long *bmap, uint64_t start,
                               const unsigned long *free, uint64_t n);

/*
 * Clear the bits of @free (@n bits from 0) in @bmap from bit @start, and
 * set those that were set in @unsent (if not NULL).  Returns how many of
 * them were set.
 */
uint64_t fpb_bitmap_clear_free(unsigned long *bmap, uint64_t start,
                               const unsigned long *free, uint64_t n,
                               unsigned long *unsent);

/*
 * Postcopy.  A page the filter dropped was not sent, and the destination
 * may not have it at all: once the destination runs, it would ask the
 * source for the page when it faults on it, and the source, whose bit is
 * clear, would never send it.  So with postcopy the caller has the filter
 * record its drops in an "unsent" bitmap, clears a page's bit there when
 * it sends the page, and at the switchover, with the guest stopped and its
 * bits exact, fpb_switchover() decides, page by page of the block:
 *
 *  - free now, and dirty or unsent: its content is dead; it goes into
 *    @free_set and its dirty bit is cleared.  The destination places a
 *    zero page for it if it faults on it, and never asks for it.
 *  - unsent and in use now (allocated since it was dropped): dirty again,
 *    so it is sent, in the background or on request.
 *
 * so that every page the destination can fault on either is in the free
 * set or can be sent.  @unsent is left empty.
 */
typedef struct FpbSwitchover {
    /* pages in the free set */
    uint64_t free_pages;
    /* of those, pages that were dirty: migration_dirty_pages goes down */
    uint64_t undirtied;
    /* unsent pages in use now, marked dirty again */
    uint64_t redirtied;
} FpbSwitchover;

/*
 * At the postcopy switchover, with the guest stopped: fill @free_set
 * (@npages bits, the whole block, like @bmap and @unsent) and update
 * @bmap as above.  With no windows, or unless the bits can be read
 * (FPB_BUSY, FPB_REJECTED), nothing is free: every unsent page is marked
 * dirty again.
 */
FpbStatus fpb_switchover(FpbFilter *f, const FpbOps *ops, void *opaque,
                         uint64_t header_gpa, const FpbWindow *windows,
                         unsigned nr_windows, uint64_t npages,
                         unsigned long *bmap, unsigned long *unsent,
                         unsigned long *free_set, FpbSwitchover *out,
                         const char **reason);

/*
 * Migration's accounting of the dirty pages the guest calls free.  Pages
 * are dropped only at their chunk's log clear, so right after a sync
 * nearly all freed pages still count as dirty, and remaining, the dirty
 * rate and the throttling would see a churning guest's freed memory as
 * memory to send.  The count (fpb_count(), after each sync, over the
 * chunks still to filter) fixes that, but it is the guest's word: a guest
 * that calls pages free when they are counted and in use when they are
 * filtered would bring the switchover forward with nothing dropped.  So
 * the accounting believes the count only as far as the filter has proven
 * it: no more than the pages dropped since the sync before the latest.  A
 * guest honest in some chunks and lying in others can still have that
 * many of its lies believed until the next sync: the estimate runs ahead
 * by at most what it really gave up in two periods, never by its word.
 */
typedef struct FpbAccount {
    /* counted at the latest sync, less the drops from those chunks since */
    uint64_t free_dirty;
    /* pages the filter dropped since the latest sync began */
    uint64_t dropped;
    /* ... and in the period before that */
    uint64_t dropped_prev;
} FpbAccount;

/* A sync begins: a new period of drops, and a count to come. */
void fpb_account_sync(FpbAccount *a);

/*
 * The filter dropped @pages dirty pages, in chunks the count covered
 * (@counted) or in chunks whose log was clear already.
 */
void fpb_account_dropped(FpbAccount *a, uint64_t pages, bool counted);

/* The free dirty pages the accounting may leave out of what remains. */
uint64_t fpb_account_believed(const FpbAccount *a);

#endif

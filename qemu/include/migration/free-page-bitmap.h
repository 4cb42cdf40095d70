/*
 * Free page bitmap: the guest keeps a bitmap of its free pages in its own
 * memory, and migration leaves the pages it says are free unsent.
 *
 * The device (virtio-balloon) tells migration where the guest's header is
 * and whether filtering is wanted; migration reads the bitmap whenever it
 * is about to send from a chunk of guest RAM.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef QEMU_MIGRATION_FREE_PAGE_BITMAP_H
#define QEMU_MIGRATION_FREE_PAGE_BITMAP_H

#include "exec/cpu-common.h"
#include "qapi/qapi-types-migration.h"

/*
 * Use the layout whose header is at guest-physical address @gpa, 0 for
 * none.  A new header, even at the same address, is trusted afresh.
 */
void free_page_bitmap_set_header(uint64_t gpa);
/*
 * Allow or stop filtering (migration started or ended for this guest).  A
 * start reads the header afresh, even one an earlier migration rejected.
 */
void free_page_bitmap_set_enabled(bool enabled);
/*
 * Check that a header at @gpa can be read as guest RAM (after incoming
 * migration); false counts as a rejected layout.
 */
bool free_page_bitmap_check_header(uint64_t gpa);
/* Whether filtering is allowed for the migration that is starting. */
bool free_page_bitmap_migration_allowed(void);
/*
 * Whether a postcopy migration may leave free pages out: the source then
 * tracks the pages it dropped (RAMBlock.fpb_unsent_bmap), and announces
 * the free set to the destination (MIG_CMD_POSTCOPY_RAM_FREE).
 */
bool free_page_bitmap_postcopy(void);
/*
 * A device offers the free page bitmap (or no longer does): query-migrate
 * reports its statistics only while one does.
 */
void free_page_bitmap_set_offered(bool offered);
/*
 * Test only: also drop every @n-th dirty page the guest did not call free
 * (0: never), so that a test can show that its checks catch lost pages.
 */
void free_page_bitmap_set_test_drop_in_use(unsigned n);

/*
 * How long, at most, the first pass of a migration waits for the guest to
 * turn its bitmap on after START, so that it is filtered too.
 */
void free_page_bitmap_set_wait_ms(unsigned ms);

/* For migration/ram.c and migration/migration.c */

/* Zero the statistics: a migration is starting (see migrate_init()). */
void free_page_bitmap_reset_stats(void);

/*
 * Set @info->free_page_bitmap to the statistics of the current or last
 * migration, if a device offers the free page bitmap.
 */
void free_page_bitmap_populate_info(MigrationInfo *info);

/*
 * Wait, at most the time set by free_page_bitmap_set_wait_ms(), for the
 * guest that announced a header to turn its bitmap on.  Called by the
 * migration thread, without the BQL, after setup (which sends START) and
 * before the first pass; a cancel ends the wait.
 */
void free_page_bitmap_wait_guest(MigrationState *s);

/* Whether the guest's free pages may be dropped now.  Lock free. */
bool free_page_bitmap_active(void);

/*
 * Clear the bits of guest-free pages of [@start, @start + @size) of @rb in
 * @rb->bmap, in the chunks whose dirty log was cleared since the last
 * sync (their clear_bmap bit is clear): others are left alone, whatever
 * the caller asks.  Call with bitmap_mutex held, right after clearing a
 * chunk's log.  Returns the number of bits cleared, for
 * migration_dirty_pages.
 */
uint64_t free_page_bitmap_filter(RAMBlock *rb, ram_addr_t start,
                                 ram_addr_t size);

/*
 * Count the dirty pages of @rb in @rb->bmap that the guest has free, in
 * the chunks whose dirty log is still to clear (those that the filter
 * will see): they are dirty but will not be sent.  Drops nothing.  Call
 * with bitmap_mutex held.
 */
uint64_t free_page_bitmap_count(RAMBlock *rb);

/*
 * Publish the latest sync's count of free dirty pages (@counted, the sum
 * of free_page_bitmap_count()) and how many of them the accounting
 * leaves out of what remains to send (@discounted).
 */
void free_page_bitmap_note_free_dirty(uint64_t counted, uint64_t discounted);

/*
 * Whether free_page_bitmap_count() counts (on by default; off only to
 * compare with migration accounting that counts free pages as dirty).
 */
void free_page_bitmap_set_count_free(bool on);

/*
 * Read fresh bits for the part of @rb around @page, once per part and
 * round; the caller is about to send @page.  Same rules and return value
 * as free_page_bitmap_filter().
 */
uint64_t free_page_bitmap_refresh(RAMBlock *rb, unsigned long page);

/*
 * At the postcopy switchover, with the guest stopped, after the last sync:
 * build @rb->fpb_free_bmap, the pages the guest has free that the
 * destination has no up-to-date copy of (they are never sent), and mark
 * dirty again the pages dropped earlier that the guest uses now (see
 * fpb_switchover()).  Returns the change to migration_dirty_pages.
 */
int64_t free_page_bitmap_switchover(RAMBlock *rb);

/*
 * Destination, postcopy: whether the page at @offset of @rb was free in
 * the guest at the switchover.  The source never sends it: the caller
 * places a zero page rather than ask for it.  Counted in the statistics.
 */
bool free_page_bitmap_postcopy_fault(RAMBlock *rb, ram_addr_t offset);

#endif

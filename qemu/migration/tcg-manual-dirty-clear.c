/*
 * Test only: KVM's manual dirty-log clear, emulated for TCG
 *
 * With KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 (QEMU's clear_bmap, the default
 * on modern KVM) a sync reports the pages written since the last one but
 * leaves them writable; their writes are logged again only once
 * migration clears the log of their chunk, just before it sends from
 * it.  A write to a reported page in between is not logged: whatever
 * drops pages from migration must do so after the chunk's clear.  TCG
 * re-arms write tracking inside the sync, so no TCG migration can show a
 * mistake in that order.  With -global migration.x-tcg-manual-dirty-clear=on
 * TCG behaves like KVM here:
 *
 * - the sync moves the migration dirty bits to the migration bitmap as
 *   usual, but marks the pages it reported as pending and re-arms
 *   nothing: TCG keeps, and on a TLB refill makes, pending pages
 *   writable without logging (cpu_physical_memory_is_clean());
 * - clearing the dirty log of a chunk (memory_region_clear_dirty_bitmap(),
 *   through a memory listener's log_clear like KVM's) ends pending for
 *   the pages of that chunk and re-arms them.
 *
 * A write to a reported page between the sync and its chunk's clear is
 * then lost exactly as on KVM, while a page first written after the
 * sync is logged and reported by the next one.  QEMU's own writes to
 * guest RAM (DMA) are logged as usual, as with KVM.
 *
 * QEMU asks KVM for KVM_DIRTY_LOG_INITIALLY_SET too: when logging starts
 * every page counts as dirty and none is write-protected, so every page
 * stays writable without logging until its chunk's first clear.  TCG's
 * dirty bits say the same only for memory no migration has synced yet;
 * a second migration from the same QEMU (one cancelled and tried again)
 * would find the pages written since the first one clean, and log their
 * writes.  So every page is pending from the start.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "exec/address-spaces.h"
#include "exec/ram_addr.h"
#include "exec/memory.h"
#include "exec/cputlb.h"
#include "hw/core/cpu.h"
#include "system/tcg.h"
#include "migration.h"
#include "tcg-manual-dirty-clear.h"

TcgManualDirtyClear *tcg_manual_dirty_clear;
/* Only the migration thread, with the BQL or bitmap_mutex, uses it. */
static bool active;

bool tcg_manual_dirty_clear_active(void)
{
    return active;
}

/* End pending for the pages of [@start, @start + @length) and re-arm them. */
static void tcg_manual_dirty_clear_range(ram_addr_t start, ram_addr_t length)
{
    TcgManualDirtyClear *tmc = qatomic_rcu_read(&tcg_manual_dirty_clear);
    unsigned long page = start >> TARGET_PAGE_BITS;
    unsigned long end = (start + length) >> TARGET_PAGE_BITS;
    bool rearm = false;

    if (!tmc) {
        return;
    }
    end = MIN(end, tmc->pages);
    for (; page < end; page++) {
        if (test_bit(page, tmc->pending)) {
            clear_bit_atomic(page, tmc->pending);
            rearm = true;
        }
    }
    /* Only after the clear: a TLB refill now logs the next write. */
    if (rearm) {
        tlb_reset_dirty_range_all(start, length);
    }
}

static void tcg_manual_dirty_clear_log_clear(MemoryListener *listener,
                                             MemoryRegionSection *section)
{
    RAMBlock *rb = section->mr->ram_block;

    if (rb) {
        tcg_manual_dirty_clear_range(rb->offset +
                                     section->offset_within_region,
                                     int128_get64(section->size));
    }
}

static MemoryListener tcg_manual_dirty_clear_listener = {
    .name = "tcg-manual-dirty-clear",
    .log_clear = tcg_manual_dirty_clear_log_clear,
};

/* On @cpu's own thread: a TLB may only be flushed by its vCPU. */
static void tcg_manual_dirty_clear_flush(CPUState *cpu, run_on_cpu_data data)
{
    tlb_flush(cpu);
}

void tcg_manual_dirty_clear_start(void)
{
    static bool registered;
    TcgManualDirtyClear *tmc = tcg_manual_dirty_clear;
    CPUState *cpu;
    RAMBlock *rb;
    /* Every page that has dirty bits (ram_list.mutex is held) */
    unsigned long pages = ram_list.num_dirty_blocks * DIRTY_MEMORY_BLOCK_SIZE;

    if (!migrate_get_current()->tcg_manual_dirty_clear) {
        return;
    }
    if (!tcg_enabled()) {
        warn_report_once("migration: x-tcg-manual-dirty-clear emulates KVM "
                         "under TCG only: ignored");
        return;
    }
    assert(bql_locked());
    if (!tmc || tmc->pages < pages) {
        /*
         * TLB refills read the old one without a lock: it is leaked, not
         * freed (this is a test mode, and RAM rarely grows between
         * migrations).
         */
        tmc = g_malloc0(sizeof(*tmc) +
                        BITS_TO_LONGS(pages) * sizeof(unsigned long));
        tmc->pages = pages;
        qatomic_rcu_set(&tcg_manual_dirty_clear, tmc);
    }
    if (!registered) {
        memory_listener_register(&tcg_manual_dirty_clear_listener,
                                 &address_space_memory);
        registered = true;
    }
    /*
     * KVM_DIRTY_LOG_INITIALLY_SET: nothing is logged until a chunk's first
     * clear.  A TLB entry that still logs its writes is dropped, so that
     * its refill makes the page writable without logging (as soon as each
     * vCPU runs the work: until then it logs, which is only laxer).
     */
    RAMBLOCK_FOREACH(rb) {
        bitmap_set(tmc->pending, rb->offset >> TARGET_PAGE_BITS,
                   rb->used_length >> TARGET_PAGE_BITS);
    }
    CPU_FOREACH(cpu) {
        async_run_on_cpu(cpu, tcg_manual_dirty_clear_flush, RUN_ON_CPU_NULL);
    }
    active = true;
    warn_report_once("migration: x-tcg-manual-dirty-clear is on: TCG loses "
                     "writes as KVM with manual dirty-log clear does "
                     "(a test mode)");
}

void tcg_manual_dirty_clear_stop(void)
{
    RAMBlock *rb;

    if (!active) {
        return;
    }
    active = false;
    RCU_READ_LOCK_GUARD();
    RAMBLOCK_FOREACH(rb) {
        tcg_manual_dirty_clear_range(rb->offset, rb->used_length);
    }
}

/* Called with RCU critical section and bitmap_mutex held */
uint64_t tcg_manual_dirty_clear_sync(RAMBlock *rb)
{
    TcgManualDirtyClear *tmc = qatomic_rcu_read(&tcg_manual_dirty_clear);
    DirtyMemoryBlocks *blocks =
        qatomic_rcu_read(&ram_list.dirty_memory[DIRTY_MEMORY_MIGRATION]);
    unsigned long first = rb->offset >> TARGET_PAGE_BITS;
    unsigned long pages = rb->used_length >> TARGET_PAGE_BITS;
    unsigned long i;
    uint64_t num_dirty = 0;

    assert(tmc && first + pages <= tmc->pages);
    for (i = 0; i < pages; i++) {
        unsigned long page = first + i;
        unsigned long *word = blocks->blocks[page / DIRTY_MEMORY_BLOCK_SIZE];
        unsigned long bit = page % DIRTY_MEMORY_BLOCK_SIZE;

        if (!test_bit(bit, word) ||
            !bitmap_test_and_clear_atomic(word, bit, 1)) {
            continue;
        }
        /* Reported: writable and unlogged until its chunk's log clear. */
        set_bit_atomic(page, tmc->pending);
        if (!test_and_set_bit(i, rb->bmap)) {
            num_dirty++;
        }
    }
    if (rb->clear_bmap) {
        clear_bmap_set(rb, 0, pages);
    } else {
        memory_region_clear_dirty_bitmap(rb->mr, 0, rb->used_length);
    }
    return num_dirty;
}

/*
 * virtio-balloon free page bitmap fuzzing target
 *
 * The free page bitmap's header, ranges, tables and bits are guest memory
 * that migration reads on every round (migration/free-page-bitmap.c):
 * nothing in them may crash QEMU, make it read anything but plain guest
 * RAM, or drop a page it must send.  This target writes the input into the
 * RAM of a q35 machine and runs what a migration round runs on it: the
 * header as the balloon announces it, a dirty-bitmap sync, the count of
 * free dirty pages and the filter over pc.ram's dirty bitmap.  So the
 * layout's validation through the memory API (no ROM, MMIO or unassigned
 * space), the windows of pc.ram in guest-physical space and the chunks
 * whose dirty log is still to clear are fuzzed along with the filter core.
 *
 * Input, little-endian:
 *   8 bytes  guest-physical address of the header
 *   8 bytes  selector: which pages to filter, the dirty bitmap and the
 *            state of each chunk's dirty log (see fpb_round())
 *   then     guest RAM from 0 (40 KiB), then from 1 MiB (16 KiB); what
 *            the input leaves out is zero
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitmap.h"
#include "qemu/bitops.h"
#include "qemu/bswap.h"
#include "qemu/units.h"
#include "exec/ramblock.h"
#include "migration/free-page-bitmap.h"
#include "migration/migration-stats.h"
#include "tests/qtest/libqtest.h"
#include "fuzz.h"

#define FPB_LO_GPA      0
#define FPB_LO_SIZE     (40 * KiB)
#define FPB_HI_GPA      (1 * MiB)
#define FPB_HI_SIZE     (16 * KiB)
/* the input starts with the header's address and the selector */
#define FPB_INPUT_HDR   16
/* pc.ram hidden behind pc.rom and the BIOS on q35 at reset: never dropped */
#define FPB_ROM_START   0xc0000
#define FPB_ROM_END     0x100000
/*
 * x86's TARGET_PAGE_BITS, the page of the migration bitmap (the fuzz
 * targets are built without the target's cpu-param.h)
 */
#define FPB_PAGE_BITS   12
/* x-clear-bitmap-shift's minimum: 64 pages per chunk */
#define FPB_CLEAR_SHIFT_MIN 6

static RAMBlock *fpb_ram;
static unsigned long fpb_pages;

static uint64_t fpb_xorshift(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Whether @page of pc.ram is a page the guest may see at its offset. */
static bool fpb_page_mapped(unsigned long page)
{
    uint64_t off = (uint64_t)page << FPB_PAGE_BITS;

    return off < FPB_ROM_START || off >= FPB_ROM_END;
}

/*
 * What the filter may do to the dirty bitmap, @before it ran, when asked
 * for the pages [@first, @end) and returning @cleared: clear bits, only
 * in the range, only in chunks whose log was cleared (their clear_bmap
 * bit is clear) and only of pages mapped where pc.ram says they are.
 */
static void fpb_check_drops(const unsigned long *before, unsigned long first,
                            unsigned long end, uint64_t cleared)
{
    RAMBlock *rb = fpb_ram;
    uint64_t n = 0;
    unsigned long p;

    for (p = 0; p < fpb_pages; p++) {
        bool was = test_bit(p, before), is = test_bit(p, rb->bmap);

        g_assert(was || !is);
        if (was && !is) {
            g_assert(p >= first && p < end);
            g_assert(!test_bit(p >> rb->clear_bmap_shift, rb->clear_bmap));
            g_assert(fpb_page_mapped(p));
            n++;
        }
    }
    g_assert_cmpuint(n, ==, cleared);
}

/*
 * One round of a migration, as migration/ram.c runs it: a sync leaves
 * dirty bits, and some chunks with their dirty log still to clear; the
 * free dirty pages are counted in those, then the filter runs.  @sel:
 *   bits 0-8    first page to filter
 *   bits 9-18   number of pages to filter, minus one
 *   bit  19     filter the whole block instead
 *   bits 20-22  x-clear-bitmap-shift, minus 6
 *   bit  23     random dirty bits (else all set, as in the first round)
 *   bits 24-63  seed of the dirty bits and of the chunks still to clear
 * With @refresh, the filter is the one migration runs as it sends.
 */
static void fpb_round(uint64_t sel, bool refresh)
{
    RAMBlock *rb = fpb_ram;
    unsigned long first = sel & 0x1ff, end = first + ((sel >> 9) & 0x3ff) + 1;
    unsigned long longs = BITS_TO_LONGS(fpb_pages), chunks, i;
    uint64_t seed = (sel >> 24) | 1, pending = 0, count, cleared;
    g_autofree unsigned long *before = NULL;

    rb->clear_bmap_shift = FPB_CLEAR_SHIFT_MIN + ((sel >> 20) & 7);
    chunks = DIV_ROUND_UP(fpb_pages, 1UL << rb->clear_bmap_shift);
    if (sel & BIT_ULL(23)) {
        for (i = 0; i < longs; i++) {
            rb->bmap[i] = fpb_xorshift(&seed);
        }
        bitmap_clear(rb->bmap, fpb_pages, longs * BITS_PER_LONG - fpb_pages);
    } else {
        bitmap_set(rb->bmap, 0, fpb_pages);
    }
    bitmap_zero(rb->clear_bmap, chunks);
    for (i = 0; i < chunks; i++) {
        if (fpb_xorshift(&seed) & 1) {
            set_bit(i, rb->clear_bmap);
        }
    }
    stat64_add(&mig_stats.dirty_sync_count, 1);

    /* The count drops nothing and sees only chunks still to clear. */
    before = bitmap_new(fpb_pages);
    bitmap_copy(before, rb->bmap, fpb_pages);
    count = free_page_bitmap_count(rb);
    g_assert(bitmap_equal(before, rb->bmap, fpb_pages));
    for (i = 0; i < fpb_pages; i++) {
        if (test_bit(i, rb->bmap) &&
            test_bit(i >> rb->clear_bmap_shift, rb->clear_bmap)) {
            pending++;
        }
    }
    g_assert_cmpuint(count, <=, pending);

    if (sel & BIT_ULL(19)) {
        first = 0;
        end = fpb_pages;
    }
    if (refresh) {
        /* one read per 128 MiB part: pc.ram is smaller */
        cleared = free_page_bitmap_refresh(rb, first);
        first = 0;
        end = fpb_pages;
    } else {
        cleared = free_page_bitmap_filter(rb,
                                          (ram_addr_t)first << FPB_PAGE_BITS,
                                          (ram_addr_t)(end - first)
                                          << FPB_PAGE_BITS);
    }
    fpb_check_drops(before, first, MIN(end, fpb_pages), cleared);
}

static void fpb_fuzz(QTestState *s, const unsigned char *data, size_t size)
{
    static uint8_t mem[FPB_LO_SIZE + FPB_HI_SIZE];
    uint64_t header_gpa, sel;

    if (size < FPB_INPUT_HDR) {
        return;
    }
    header_gpa = ldq_le_p(data);
    sel = ldq_le_p(data + 8);
    size = MIN(size - FPB_INPUT_HDR, sizeof(mem));
    memcpy(mem, data + FPB_INPUT_HDR, size);
    memset(mem + size, 0, sizeof(mem) - size);
    qtest_memwrite(s, FPB_LO_GPA, mem, FPB_LO_SIZE);
    qtest_memwrite(s, FPB_HI_GPA, mem + FPB_LO_SIZE, FPB_HI_SIZE);

    /* The guest announces its header, a migration starts. */
    free_page_bitmap_set_header(header_gpa);
    free_page_bitmap_set_enabled(true);
    fpb_round(sel, false);
    /* Another round: the layout is cached while seq stays the same. */
    fpb_round(ror64(sel, 32), true);
    free_page_bitmap_set_enabled(false);
    /* The header arrives with the device's state on a destination. */
    free_page_bitmap_check_header(header_gpa);
    free_page_bitmap_set_header(0);
}

static void fpb_pre_fuzz(QTestState *s)
{
    fpb_ram = qemu_ram_block_by_name("pc.ram");
    g_assert(fpb_ram);
    fpb_pages = fpb_ram->used_length >> FPB_PAGE_BITS;
    /* What ram_init_bitmaps() allocates; no migration runs here. */
    fpb_ram->bmap = bitmap_new(fpb_pages);
    fpb_ram->clear_bmap = bitmap_new(DIV_ROUND_UP(fpb_pages,
                                                  1UL << FPB_CLEAR_SHIFT_MIN));
}

static GString *fpb_cmdline(FuzzTarget *t)
{
    return g_string_new(TARGET_NAME " -machine q35,accel=qtest -m 16M "
                        "-nodefaults -display none "
                        "-device virtio-balloon-pci,x-free-page-bitmap=on");
}

static void register_virtio_balloon_fpb_fuzz_targets(void)
{
    fuzz_add_target(&(FuzzTarget){
        .name = "virtio-balloon-fpb",
        .description = "Fuzz the free page bitmap layout in guest RAM, as "
                       "migration validates and filters with it",
        .get_init_cmdline = fpb_cmdline,
        .pre_fuzz = fpb_pre_fuzz,
        .fuzz = fpb_fuzz,
    });
}

fuzz_target_init(register_virtio_balloon_fpb_fuzz_targets);

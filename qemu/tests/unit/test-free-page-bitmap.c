/*
 * Unit tests of the free page bitmap filter core
 * (migration/free-page-bitmap-core.c) against a fake guest.
 *
 * The order test models KVM's manual dirty log clear: a page a sync
 * reported dirty stays writable, and writes to it are not logged, until
 * its chunk's log is cleared.  An adversarial guest allocates and writes
 * a page right after the filter read its "free" bit.  With the core's
 * order (clear the log, then read) the write is logged and the page is
 * sent in the next round; with the order swapped, as
 * qemu_guest_free_page_hint() does it, the page's new content never
 * reaches the destination and the test fails.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include "qemu/osdep.h"
#include "free-page-bitmap-fake-guest.h"

#define TP_BITS 12
#define TP_SIZE (1ULL << TP_BITS)
#define MIB (1ULL << 20)
#define GIB (1ULL << 30)

/*
 * One named property of a test case: a failure fails the case and is
 * reported with its details, and the case goes on checking the rest.
 */
static bool G_GNUC_PRINTF(2, 3) check(bool cond, const char *fmt, ...)
{
    g_autofree char *what = NULL;
    va_list ap;

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (cond) {
        g_test_message("ok: %s", what);
    } else {
        g_test_message("FAILED: %s", what);
        g_test_fail();
    }
    return cond;
}

static uint64_t rng = 88172645463325252ULL;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/*
 * One RAMBlock of 16 MiB split like pc.ram around a PCI hole: block
 * offsets [0, 10 MiB) at guest-physical 0, [10, 16 MiB) at 4 GiB.  The
 * layout lives in the first MiB.
 */
#define BLOCK_SIZE (16 * MIB)
#define LOW_SIZE (10 * MIB)
#define HIGH_GPA (4 * GIB)
#define LAYOUT_SIZE MIB
#define BLOCK_PAGES (BLOCK_SIZE / TP_SIZE)

static uint8_t *block;

static uint64_t block_gpa(uint64_t off)
{
    return off < LOW_SIZE ? off : HIGH_GPA + (off - LOW_SIZE);
}

static void guest_init(FakeGuest *g)
{
    memset(g, 0, sizeof(*g));
    if (!block) {
        block = g_malloc0(BLOCK_SIZE);
    }
    memset(block, 0, BLOCK_SIZE);
    fg_add_map(g, 0, LOW_SIZE, block);
    fg_add_map(g, HIGH_GPA, BLOCK_SIZE - LOW_SIZE, block + LOW_SIZE);
}

#define MAX_RANGES 64

static const FpbLimits limits = {
    .target_page_bits = TP_BITS,
    .max_gpa = HIGH_GPA + BLOCK_SIZE - LOW_SIZE,
    .max_ranges = MAX_RANGES,
};

static const FpbOps ops = { .read = fg_read, .is_ram = fg_is_ram };

/* Two zones: the low part and the high part, guest pages of 4 KiB. */
static void guest_standard(FakeGuest *g, unsigned page_shift,
                           unsigned order)
{
    uint64_t start[2] = { 0, HIGH_GPA >> page_shift };
    uint64_t bits[2] = {
        (LOW_SIZE >> page_shift) >> order,
        ((BLOCK_SIZE - LOW_SIZE) >> page_shift) >> order,
    };

    guest_init(g);
    fg_build(g, page_shift, order, 0, LAYOUT_SIZE, 2, start, bits);
}

/*
 * The layout Linux publishes for that RAM: a zone's span runs from its
 * first to its last page, so ZONE_DMA32 takes the PCI hole in, and the
 * bits outnumber the guest's pages many times over.
 */
static void guest_linux_spans(FakeGuest *g)
{
    uint64_t start[2] = { 0, HIGH_GPA >> 12 };
    uint64_t bits[2] = { HIGH_GPA >> 12, (BLOCK_SIZE - LOW_SIZE) >> 12 };

    guest_init(g);
    fg_build(g, 12, 0, 0, LAYOUT_SIZE, 2, start, bits);
}

/*
 * A NUMA guest with @nr zones of 8 pages each in low RAM: more ranges
 * than fit in the header's page, so the driver places them apart.
 */
static void guest_many_zones(FakeGuest *g, unsigned nr)
{
    g_autofree uint64_t *start = g_new(uint64_t, nr);
    g_autofree uint64_t *bits = g_new(uint64_t, nr);

    for (unsigned i = 0; i < nr; i++) {
        start[i] = i * 8;
        bits[i] = 8;
    }
    guest_init(g);
    fg_build(g, 12, 0, 0, 4 * MIB, nr, start, bits);
}

/* The windows of the block chunk [first, first + n) pages. */
static unsigned chunk_windows(uint64_t first, uint64_t n, FpbWindow *w)
{
    uint64_t low = LOW_SIZE / TP_SIZE, end = first + n;
    unsigned nr = 0;

    if (first < low) {
        uint64_t e = MIN(end, low);

        w[nr++] = (FpbWindow) { first * TP_SIZE, first, e - first };
    }
    if (end > low) {
        uint64_t s = MAX(first, low);

        w[nr++] = (FpbWindow) { block_gpa(s * TP_SIZE), s, end - s };
    }
    return nr;
}

/* Reference: is the target page at @gpa free according to the guest? */
static bool ref_free(FakeGuest *g, uint64_t gpa)
{
    struct virtio_balloon_fpb_header *h = fg_header(g);
    uint64_t gpfn = gpa >> g->page_shift;

    for (unsigned i = 0; i < h->nr_ranges; i++) {
        struct virtio_balloon_fpb_range *r = fg_range(g, i);
        uint64_t bit;

        if (gpfn < r->start_pfn ||
            (gpfn - r->start_pfn) >> g->granule_order >= r->nr_bits) {
            continue;
        }
        bit = (gpfn - r->start_pfn) >> g->granule_order;
        if (*fg_bit_byte(g, i, bit) & (1 << (bit % 8))) {
            return true;
        }
    }
    return false;
}

static bool page_bit(const unsigned long *b, uint64_t i)
{
    return b[i / BITS_PER_LONG] >> (i % BITS_PER_LONG) & 1;
}

static void set_page_bit(unsigned long *b, uint64_t i, bool v)
{
    if (v) {
        b[i / BITS_PER_LONG] |= 1UL << (i % BITS_PER_LONG);
    } else {
        b[i / BITS_PER_LONG] &= ~(1UL << (i % BITS_PER_LONG));
    }
}

static void test_validator(void)
{
    FakeGuest g;
    FpbLayout l = { 0 };
    const char *reason = "";
    FpbStatus st;

    guest_standard(&g, 12, 0);
    st = fpb_layout_load(&l, &limits, &ops, &g, g.header_gpa, &reason);
    check(st == FPB_OK && l.nr_ranges == 2 && l.total_bits == BLOCK_PAGES,
          "validator accepts a two-zone layout split around the PCI hole");
    check(l.ranges[0].nr_pages == 1 && l.ranges[1].nr_pages == 1 &&
          l.ranges[1].start_pfn == HIGH_GPA >> 12,
          "validator keeps the ranges and their bitmap pages");
    fpb_layout_reset(&l);

    guest_standard(&g, 14, 2);
    st = fpb_layout_load(&l, &limits, &ops, &g, g.header_gpa, &reason);
    check(st == FPB_OK,
          "validator accepts 16 KiB guest pages, order-2 granules");
    fpb_layout_reset(&l);

    guest_linux_spans(&g);
    st = fpb_layout_load(&l, &limits, &ops, &g, g.header_gpa, &reason);
    check(st == FPB_OK && l.total_bits > 2 * BLOCK_PAGES,
          "validator accepts a low zone spanning the PCI hole, as Linux's "
          "ZONE_DMA32 does with RAM above 4 GiB (%s)",
          st == FPB_OK ? "ok" : reason);
    fpb_layout_reset(&l);

    {
        FpbLimits numa = limits;

        guest_many_zones(&g, 300);
        numa.max_ranges = 300;
        st = fpb_layout_load(&l, &numa, &ops, &g, g.header_gpa, &reason);
        check(st == FPB_OK && l.nr_ranges == 300 &&
              l.ranges[299].start_pfn == 299 * 8,
              "validator accepts 300 zones when the host allows them (%s)",
              st == FPB_OK ? "ok" : reason);
        fpb_layout_reset(&l);
        numa.max_ranges = 299;
        st = fpb_layout_load(&l, &numa, &ops, &g, g.header_gpa, &reason);
        check(st == FPB_REJECTED && strstr(reason, "number of ranges"),
              "validator rejects 300 zones when the host allows 299");
        fpb_layout_reset(&l);
    }
}

typedef void (*Mutation)(FakeGuest *g);

#define HDR(g) fg_header(g)
#define RNG(g, i) fg_range(g, i)
static void m_magic(FakeGuest *g)
{
    HDR(g)->magic ^= 1;
}

static void m_version(FakeGuest *g)
{
    HDR(g)->version = 2;
}

static void m_small_page(FakeGuest *g)
{
    HDR(g)->page_shift = 11;
}

static void m_big_page(FakeGuest *g)
{
    HDR(g)->page_shift = 25;
}

static void m_granule(FakeGuest *g)
{
    HDR(g)->granule_order = 40;
}

static void m_reserved(FakeGuest *g)
{
    HDR(g)->reserved = 1;
}

static void m_no_ranges(FakeGuest *g)
{
    HDR(g)->nr_ranges = 0;
}

static void m_many_ranges(FakeGuest *g)
{
    HDR(g)->nr_ranges = MAX_RANGES + 1;
}

static void m_ranges_hole(FakeGuest *g)
{
    HDR(g)->ranges_gpa = 2 * GIB;
}

static void m_ranges_unaligned(FakeGuest *g)
{
    HDR(g)->ranges_gpa += 4;
}

static void m_start_unaligned(FakeGuest *g)
{
    HDR(g)->granule_order = 1;
    RNG(g, 0)->start_pfn = 1;
    RNG(g, 0)->nr_bits /= 2;
    RNG(g, 1)->nr_bits /= 2;
}
static void m_no_bits(FakeGuest *g)
{
    RNG(g, 0)->nr_bits = 0;
}

static void m_huge_bits(FakeGuest *g)
{
    RNG(g, 0)->nr_bits = UINT64_MAX;
    RNG(g, 0)->nr_table_entries = UINT64_MAX / (8 * 4096) + 1;
}
static void m_beyond(FakeGuest *g)
{
    RNG(g, 1)->start_pfn = (HIGH_GPA + GIB) >> 12;
}

static void m_pfn_overflow(FakeGuest *g)
{
    RNG(g, 1)->start_pfn = UINT64_MAX - 3;
}

static void m_table_size(FakeGuest *g)
{
    RNG(g, 0)->nr_table_entries = 2;
}

static void m_table_hole(FakeGuest *g)
{
    RNG(g, 0)->pfn_table_gpa = 3 * GIB;
}

static void m_bitmap_hole(FakeGuest *g)
{
    uint64_t *t = (uint64_t *)fg_host(g, RNG(g, 0)->pfn_table_gpa, 8);

    *t = (2 * GIB) >> 12;
}
static void m_bitmap_straddle(FakeGuest *g)
{
    uint64_t *t = (uint64_t *)fg_host(g, RNG(g, 0)->pfn_table_gpa, 8);

    *t = (LOW_SIZE >> 12);  /* first page past the low RAM */
}
static void m_too_many_bits(FakeGuest *g)
{
    /* three ranges, each over all of guest-physical space */
    uint64_t pfns = (limits.max_gpa >> 12) + 1;
    uint64_t start[3] = { 0, 0, 0 }, bits[3] = { pfns, pfns, pfns };

    guest_init(g);
    fg_build(g, 12, 0, 0, LAYOUT_SIZE, 3, start, bits);
}

static void test_rejects(void)
{
    static const struct {
        const char *what;
        Mutation m;
        const char *reason;
    } cases[] = {
        { "bad magic", m_magic, "bad magic" },
        { "unknown version", m_version, "unsupported version" },
        { "guest page smaller than the host's", m_small_page, "page_shift" },
        { "guest page of 32 MiB", m_big_page, "page_shift" },
        { "granule of 2^52 bytes", m_granule, "granule" },
        { "reserved field set", m_reserved, "reserved" },
        { "no ranges", m_no_ranges, "number of ranges" },
        { "more ranges than the host allows", m_many_ranges,
          "number of ranges" },
        { "ranges array in the PCI hole", m_ranges_hole, "ranges not in" },
        { "ranges array unaligned", m_ranges_unaligned, "ranges not in" },
        { "range start not aligned to the granule", m_start_unaligned,
          "not aligned" },
        { "empty range", m_no_bits, "outside" },
        { "range of 2^64 bits", m_huge_bits, "outside" },
        { "range beyond guest memory", m_beyond, "outside" },
        { "range start near 2^64", m_pfn_overflow, "outside" },
        { "table size not matching the range", m_table_size, "table size" },
        { "table in the PCI hole", m_table_hole, "table not in" },
        { "bitmap page in the PCI hole", m_bitmap_hole, "bitmap page" },
        { "bitmap page just past the end of low RAM", m_bitmap_straddle,
          "bitmap page" },
        { "more bits than twice guest-physical space", m_too_many_bits,
          "more bits" },
    };
    FakeGuest g;
    FpbLayout l = { 0 };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *reason = "";
        FpbStatus st;

        guest_standard(&g, 12, 0);
        cases[i].m(&g);
        st = fpb_layout_load(&l, &limits, &ops, &g, g.header_gpa, &reason);
        check(st == FPB_REJECTED && strstr(reason, cases[i].reason) &&
              !l.valid, "validator rejects: %s (%s)", cases[i].what, reason);
        fpb_layout_reset(&l);
    }

    {
        const char *reason = "";

        guest_standard(&g, 12, 0);
        check(fpb_layout_load(&l, &limits, &ops, &g, 2 * GIB, &reason) ==
              FPB_REJECTED, "validator rejects: header in the PCI hole");
        check(fpb_layout_load(&l, &limits, &ops, &g, g.header_gpa + 4,
                              &reason) == FPB_REJECTED,
              "validator rejects: unaligned header");
    }
}

/* The filter leaves the bitmap alone unless the guest is active and still. */
static void bump_seq_odd(FakeGuest *g, uint64_t gpa, uint64_t len)
{
    if (gpa != g->header_gpa && gpa != g->header_gpa + 4 &&
        !(HDR(g)->seq & 1)) {
        HDR(g)->seq++;
    }
}

static void bump_seq_twice(FakeGuest *g, uint64_t gpa, uint64_t len)
{
    if (gpa != g->header_gpa && gpa != g->header_gpa + 4) {
        /* rewritten in between two reads: seq is even again, but new */
        HDR(g)->seq += 2;
        g->after_read = NULL;
    }
}

static uint64_t filter_all(FakeGuest *g, FpbFilter *f, unsigned long *bmap,
                           FpbStatus *st, const char **reason)
{
    FpbWindow w[2];
    unsigned nr = chunk_windows(0, BLOCK_PAGES, w);
    uint64_t cleared = 0;

    *st = fpb_filter(f, &ops, g, g->header_gpa, w, nr, bmap, NULL, &cleared,
                     reason);
    return cleared;
}

static void test_seq(void)
{
    unsigned long bmap[BLOCK_PAGES / 64];
    const char *reason = "";
    FpbFilter f;
    FakeGuest g;
    FpbStatus st;
    uint64_t cleared;

    fpb_filter_init(&f, &limits);
    guest_standard(&g, 12, 0);
    for (uint64_t p = 512; p < 1024; p++) {
        fg_set_free(&g, p, true);
    }

    memset(bmap, 0xff, sizeof(bmap));
    HDR(&g)->flags = 0;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_BUSY && !cleared, "nothing filtered while not ACTIVE");

    HDR(&g)->flags = VIRTIO_BALLOON_FPB_F_ACTIVE;
    HDR(&g)->seq = 3;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_BUSY && !cleared, "nothing filtered while seq is odd");

    HDR(&g)->seq = 4;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_OK && cleared == 512 && bmap[8] == 0 && bmap[7] == ~0UL,
          "free pages dropped once the guest is active and seq even");

    memset(bmap, 0xff, sizeof(bmap));
    g.after_read = bump_seq_odd;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    g.after_read = NULL;
    check(st == FPB_BUSY && !cleared && bmap[8] == ~0UL,
          "bits read while the guest changed its layout are discarded");

    HDR(&g)->seq++;
    g.after_read = bump_seq_twice;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    g.after_read = NULL;
    check(st == FPB_BUSY && !cleared,
          "bits read across a whole layout change (seq +2) are discarded");

    /* a new layout: the low zone now ends at 2 MiB */
    HDR(&g)->seq++;
    fg_range(&g, 0)->nr_bits = 2 * MIB >> 12;
    HDR(&g)->seq++;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_OK && cleared == 0,
          "a new layout under a new seq is reloaded (pages outside it kept)");

    fpb_filter_destroy(&f);
}

/*
 * A guest that changes its layout all the time costs the host one layout
 * load per round (limits.max_loads), not one per filter call.
 */
static void test_load_limit(void)
{
    unsigned long bmap[BLOCK_PAGES / 64];
    FpbLimits one = limits;
    const char *reason = "";
    FpbFilter f;
    FakeGuest g;
    FpbStatus st;
    uint64_t cleared;

    one.max_loads = 1;
    fpb_filter_init(&f, &one);
    guest_standard(&g, 12, 0);
    for (uint64_t p = 512; p < 1024; p++) {
        fg_set_free(&g, p, true);
    }
    memset(bmap, 0xff, sizeof(bmap));
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_OK && cleared == 512 && f.loads == 1,
          "the round's one load is used");

    memset(bmap, 0xff, sizeof(bmap));
    HDR(&g)->seq += 2;
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_BUSY && !cleared && f.loads == 1,
          "a new seq in the same round is not loaded: nothing filtered");

    fpb_filter_new_round(&f);
    cleared = filter_all(&g, &f, bmap, &st, &reason);
    check(st == FPB_OK && cleared == 512 && f.loads == 1,
          "the next round loads the new layout");
    fpb_filter_destroy(&f);
}

/*
 * Random layouts (guest page sizes, granules, overlapping and unaligned
 * ranges, bits) and random windows against a page-by-page reference.
 */
static void test_random(void)
{
    static const unsigned shifts[] = { 12, 13, 14, 16 };
    unsigned long *bmap = g_new0(unsigned long, BLOCK_PAGES / 64);
    unsigned long *want = g_new0(unsigned long, BLOCK_PAGES / 64);
    int bad = 0, iters = 300, overlapped = 0, unaligned = 0;

    for (int it = 0; it < iters; it++) {
        unsigned shift = shifts[rnd() % 4], order = rnd() % 3;
        unsigned gshift = shift + order, nr = 1 + rnd() % 4;
        uint64_t start[4], bits[4];
        uint64_t span_lo = LOW_SIZE >> gshift;
        uint64_t span_hi = (BLOCK_SIZE - LOW_SIZE) >> gshift;
        FakeGuest g;
        FpbFilter f;
        FpbWindow w[2];
        FpbStatus st;
        const char *reason = "";
        uint64_t cleared = 0, counted = 0, expect = 0, first, n;
        unsigned nw;

        for (unsigned i = 0; i < nr; i++) {
            bool hi = rnd() & 1;
            uint64_t span = hi ? span_hi : span_lo;
            uint64_t s = rnd() % span, len = 1 + rnd() % (span - s);

            start[i] = ((hi ? HIGH_GPA >> gshift : 0) + s) << order;
            bits[i] = len;
            unaligned += (s % 64) != 0;
        }
        guest_init(&g);
        fg_build(&g, shift, order, 0, LAYOUT_SIZE, nr, start, bits);
        overlapped += nr > 1;
        for (unsigned i = 0; i < nr; i++) {
            for (uint64_t b = 0; b < bits[i]; b++) {
                if (rnd() % 3 == 0) {
                    *fg_bit_byte(&g, i, b) |= 1 << (b % 8);
                }
            }
        }
        for (uint64_t i = 0; i < BLOCK_PAGES / 64; i++) {
            bmap[i] = rnd() | rnd() << 32;
        }
        first = rnd() % BLOCK_PAGES;
        n = 1 + rnd() % (BLOCK_PAGES - first);
        nw = chunk_windows(first, n, w);
        memcpy(want, bmap, BLOCK_PAGES / 8);
        for (uint64_t p = first; p < first + n; p++) {
            if (page_bit(want, p) && ref_free(&g, block_gpa(p * TP_SIZE))) {
                set_page_bit(want, p, false);
                expect++;
            }
        }
        fpb_filter_init(&f, &limits);
        /* the read-only count first: it must see what the filter drops */
        st = fpb_count(&f, &ops, &g, g.header_gpa, w, nw, bmap, &counted,
                       &reason);
        if (st == FPB_OK) {
            st = fpb_filter(&f, &ops, &g, g.header_gpa, w, nw, bmap, NULL,
                            &cleared, &reason);
        }
        fpb_filter_destroy(&f);
        if (st != FPB_OK || cleared != expect || counted != expect ||
            memcmp(want, bmap, BLOCK_PAGES / 8)) {
            if (!bad++) {
                g_test_message("iteration %d: status %d (%s) cleared %llu, "
                       "counted %llu, want %llu, "
                       "page_shift %u order %u ranges %u window %llu+%llu",
                       it, st, reason, (unsigned long long)cleared,
                       (unsigned long long)counted,
                       (unsigned long long)expect, shift, order, nr,
                       (unsigned long long)first, (unsigned long long)n);
            }
        }
    }
    check(!bad, "filter (and the read-only count before it) matches a "
          "page-by-page reference on %d random layouts "
          "(guest pages 4-64 KiB, granules 1-4 pages, %d with overlapping "
          "ranges, %d unaligned ranges, windows across the 4 GiB split)",
          iters, overlapped, unaligned);
    g_free(bmap);
    g_free(want);
}

/* Accounting and untouched bits: clear_free on unaligned runs. */
static void test_clear_free(void)
{
    unsigned long bmap[8], free_[4], want[8], unsent[8], want_unsent[8];
    int bad = 0;

    for (int it = 0; it < 2000; it++) {
        uint64_t start = rnd() % 200, n = 1 + rnd() % (8 * 64 - start - 1);
        uint64_t cleared, counted, expect = 0;

        n = MIN(n, 4 * 64);
        for (int i = 0; i < 8; i++) {
            bmap[i] = rnd();
        }
        for (int i = 0; i < 4; i++) {
            free_[i] = rnd();
        }
        for (int i = 0; i < 8; i++) {
            unsent[i] = rnd() & rnd();
        }
        memcpy(want, bmap, sizeof(bmap));
        memcpy(want_unsent, unsent, sizeof(unsent));
        for (uint64_t i = 0; i < n; i++) {
            if (page_bit(free_, i) && page_bit(want, start + i)) {
                set_page_bit(want, start + i, false);
                set_page_bit(want_unsent, start + i, true);
                expect++;
            }
        }
        counted = fpb_bitmap_count_free(bmap, start, free_, n);
        cleared = fpb_bitmap_clear_free(bmap, start, free_, n,
                                        it % 2 ? unsent : NULL);
        bad += cleared != expect || memcmp(bmap, want, sizeof(bmap));
        bad += counted != expect;
        if (it % 2) {
            bad += !!memcmp(unsent, want_unsent, sizeof(unsent));
        }
    }
    check(!bad, "dirty accounting: cleared bits counted exactly (and by the "
          "read-only count before) and recorded as unsent, others "
          "untouched");
}

/*
 * The order test.  Per block page: the guest's content version (src),
 * what the destination has (dst), KVM's dirty log bit and whether the
 * page is write protected.
 */
#define CHUNK_PAGES 256
static uint32_t src[BLOCK_PAGES], dst[BLOCK_PAGES];
static bool logged[BLOCK_PAGES], protected_[BLOCK_PAGES];
static bool allocated[BLOCK_PAGES];
static unsigned long mbmap[BLOCK_PAGES / 64];
static uint64_t cur_chunk, lost_writes;

static uint64_t gpfn_of(uint64_t p)
{
    return block_gpa(p * TP_SIZE) >> 12;
}

static void guest_write(uint64_t p)
{
    src[p]++;
    if (protected_[p]) {
        logged[p] = true;
        protected_[p] = false;
    }
}

static void guest_alloc(FakeGuest *g, uint64_t p)
{
    allocated[p] = true;
    fg_set_free(g, gpfn_of(p), false);   /* bit first, then use */
    guest_write(p);
}

static void guest_free(FakeGuest *g, uint64_t p)
{
    allocated[p] = false;
    fg_set_free(g, gpfn_of(p), true);
}

static void clear_log(void *opaque)
{
    for (uint64_t p = cur_chunk; p < cur_chunk + CHUNK_PAGES; p++) {
        logged[p] = false;
        protected_[p] = true;
    }
}

/* Right after the filter read bits of the current chunk: strike. */
static void adversary(FakeGuest *g, uint64_t gpa, uint64_t len)
{
    if (gpa == g->header_gpa || len < 4) {
        return;
    }
    for (uint64_t p = cur_chunk; p < cur_chunk + CHUNK_PAGES; p++) {
        if (!allocated[p] && p >= LAYOUT_SIZE / TP_SIZE && rnd() % 4 == 0) {
            guest_alloc(g, p);
        }
    }
}

static void sync_log(void)
{
    for (uint64_t p = 0; p < BLOCK_PAGES; p++) {
        if (logged[p]) {
            set_page_bit(mbmap, p, true);
        }
    }
}

static void round_trip(FakeGuest *g, FpbFilter *f, bool running)
{
    static const FpbOps order_ops = {
        .read = fg_read, .is_ram = fg_is_ram, .clear_log = clear_log,
    };

    sync_log();
    for (cur_chunk = 0; cur_chunk < BLOCK_PAGES; cur_chunk += CHUNK_PAGES) {
        FpbWindow w[2];
        unsigned nw = chunk_windows(cur_chunk, CHUNK_PAGES, w);
        const char *reason = "";
        uint64_t cleared;

        g->after_read = running ? adversary : NULL;
        fpb_filter(f, &order_ops, g, g->header_gpa, w, nw, mbmap, NULL,
                   &cleared, &reason);
        g->after_read = NULL;
        for (uint64_t p = cur_chunk; p < cur_chunk + CHUNK_PAGES; p++) {
            if (page_bit(mbmap, p)) {
                dst[p] = src[p];
                set_page_bit(mbmap, p, false);
            }
            /* the guest keeps running while we send */
            if (running && rnd() % 64 == 0 && p >= LAYOUT_SIZE / TP_SIZE) {
                if (allocated[p]) {
                    guest_write(p);
                    if (rnd() % 2) {
                        guest_free(g, p);
                    }
                } else {
                    guest_alloc(g, p);
                }
            }
        }
    }
}

static void test_order(void)
{
    FpbFilter f;
    FakeGuest g;
    uint64_t wrong = 0, live = 0;

    guest_standard(&g, 12, 0);
    fpb_filter_init(&f, &limits);
    /* migration starts: everything dirty, nothing write protected yet */
    for (uint64_t p = 0; p < BLOCK_PAGES; p++) {
        logged[p] = true;
        protected_[p] = false;
        allocated[p] = p < LAYOUT_SIZE / TP_SIZE || rnd() % 2;
        src[p] = 1;
        dst[p] = 0;
        if (!allocated[p]) {
            fg_set_free(&g, gpfn_of(p), true);
        }
    }
    for (int r = 0; r < 5; r++) {
        round_trip(&g, &f, true);
    }
    round_trip(&g, &f, false);  /* stopped: the last round */
    for (uint64_t p = 0; p < BLOCK_PAGES; p++) {
        if (allocated[p]) {
            live++;
            wrong += dst[p] != src[p];
        }
    }
    lost_writes = wrong;
    check(!wrong, "deferred write protection + adversarial guest: destination "
          "has the guest's content of all %llu allocated pages (%llu wrong)",
          (unsigned long long)live, (unsigned long long)wrong);
    fpb_filter_destroy(&f);
}

/*
 * The postcopy model.  Two pages of the block (one in each part) go
 * through every sequence of up to PC_STEPS events while pre-copy runs:
 * the guest frees, allocates (without writing: a fallocated shmem page)
 * or writes one, a sync takes the dirty log, the filter drops what is
 * free, migration sends one.  Then the switchover (last sync, guest
 * stopped, fpb_switchover(), discards of the dirty pages) and postcopy:
 * the destination faults on both pages, and the source must be able to
 * send any page that is neither on the destination nor in the free set,
 * or the vCPU would hang.  Every page in use at the switchover must end
 * with the guest's content.
 */
#define PC_STEPS 6
#define PC_EVENTS 10
static const uint64_t pc_page[2] = { 300, LOW_SIZE / TP_SIZE + 7 };

typedef struct PcModel {
    bool free[2], logged[2], has[2];
    uint32_t src[2], dst[2];
} PcModel;

static unsigned long pc_bmap[BLOCK_PAGES / 64], pc_unsent[BLOCK_PAGES / 64];
static unsigned long pc_free_set[BLOCK_PAGES / 64];

static void pc_send(PcModel *m, int i)
{
    /* as migration_bitmap_clear_dirty() does */
    if (page_bit(pc_bmap, pc_page[i])) {
        set_page_bit(pc_bmap, pc_page[i], false);
        set_page_bit(pc_unsent, pc_page[i], false);
        m->has[i] = true;
        m->dst[i] = m->src[i];
    }
}

static void pc_sync(PcModel *m)
{
    for (int i = 0; i < 2; i++) {
        if (m->logged[i]) {
            set_page_bit(pc_bmap, pc_page[i], true);
            m->logged[i] = false;
        }
    }
}

static void pc_event(FakeGuest *g, FpbFilter *f, PcModel *m, unsigned ev)
{
    int i = ev % 2;
    uint64_t gpfn = gpfn_of(pc_page[i]);

    switch (ev / 2) {
    case 0:                     /* free */
        m->free[i] = true;
        fg_set_free(g, gpfn, true);
        break;
    case 1:                     /* allocate, not written */
        m->free[i] = false;
        fg_set_free(g, gpfn, false);
        break;
    case 2:                     /* write, if in use */
        if (!m->free[i]) {
            m->src[i]++;
            m->logged[i] = true;
        }
        break;
    case 3:
        pc_send(m, i);
        break;
    default: {
        FpbWindow w[2];
        unsigned nw = chunk_windows(0, BLOCK_PAGES, w);
        const char *reason = "";
        uint64_t cleared;

        if (ev % 2) {
            pc_sync(m);
        } else {
            fpb_filter(f, &ops, g, g->header_gpa, w, nw, pc_bmap, pc_unsent,
                       &cleared, &reason);
        }
    }
    }
}

/* Returns a description of what went wrong, or NULL. */
static const char *pc_run(FakeGuest *g, FpbFilter *f, unsigned start,
                          const unsigned *evs, unsigned n)
{
    PcModel m = { 0 };
    FpbWindow w[2];
    unsigned nw = chunk_windows(0, BLOCK_PAGES, w);
    const char *reason = "";
    FpbSwitchover out;

    memset(pc_bmap, 0, sizeof(pc_bmap));
    memset(pc_unsent, 0, sizeof(pc_unsent));
    /* migration starts: both pages dirty, the destination has neither */
    for (int i = 0; i < 2; i++) {
        m.free[i] = start >> i & 1;
        m.src[i] = 1;
        fg_set_free(g, gpfn_of(pc_page[i]), m.free[i]);
        set_page_bit(pc_bmap, pc_page[i], true);
    }
    for (unsigned k = 0; k < n; k++) {
        pc_event(g, f, &m, evs[k]);
    }

    /* switchover: the guest stops, the last sync, then the free set */
    pc_sync(&m);
    fpb_switchover(f, &ops, g, g->header_gpa, w, nw, BLOCK_PAGES, pc_bmap,
                   pc_unsent, pc_free_set, &out, &reason);
    for (int i = 0; i < 2; i++) {
        if (page_bit(pc_free_set, pc_page[i]) && !m.free[i]) {
            return "a page in use is in the free set";
        }
        if (page_bit(pc_bmap, pc_page[i])) {
            m.has[i] = false;   /* discarded on the destination */
        }
    }
    /* postcopy: the destination faults on both pages */
    for (int i = 0; i < 2; i++) {
        if (m.has[i]) {
            continue;
        }
        if (page_bit(pc_free_set, pc_page[i])) {
            m.has[i] = true;    /* a zero page, placed locally */
            m.dst[i] = 0;
            continue;
        }
        pc_send(&m, i);
        if (!m.has[i]) {
            return "a fault asks for a page the source will not send";
        }
    }
    for (int i = 0; i < 2; i++) {
        if (!m.free[i] && m.dst[i] != m.src[i]) {
            return "a page in use has stale content on the destination";
        }
    }
    return NULL;
}

static void test_postcopy_model(void)
{
    unsigned evs[PC_STEPS];
    uint64_t runs = 0, bad = 0;
    const char *first = NULL;
    FpbFilter f;
    FakeGuest g;

    guest_standard(&g, 12, 0);
    fpb_filter_init(&f, &limits);
    for (unsigned n = 0; n <= PC_STEPS; n++) {
        uint64_t total = 1;

        for (unsigned k = 0; k < n; k++) {
            total *= PC_EVENTS;
        }
        for (uint64_t code = 0; code < total; code++) {
            uint64_t c = code;

            for (unsigned k = 0; k < n; k++, c /= PC_EVENTS) {
                evs[k] = c % PC_EVENTS;
            }
            for (unsigned start = 0; start < 4; start++) {
                const char *why = pc_run(&g, &f, start, evs, n);

                runs++;
                if (why && !bad++) {
                    first = why;
                    g_test_message("first failure: start %u, %u events "
                                   "(code %llu): %s", start, n,
                                   (unsigned long long)code, why);
                }
            }
        }
    }
    check(!bad, "postcopy: in %llu runs of every order of free, "
          "allocate, write, sync, filter and send, then switchover and "
          "faults, every fault is served and every page in use arrives "
          "(%llu failed%s%s)", (unsigned long long)runs,
          (unsigned long long)bad, first ? ": " : "", first ? first : "");
    fpb_filter_destroy(&f);
}

/*
 * The accounting believes the guest's count of free dirty pages only as
 * far as the filter's drops since the sync before the latest prove it.
 */
static void test_account(void)
{
    FpbAccount a = { 0 };

    /* An honest guest: what it counts is dropped, and believed after. */
    fpb_account_sync(&a);
    a.free_dirty += 1000;
    check(fpb_account_believed(&a) == 0,
          "honest: nothing believed before a drop proves it");
    fpb_account_dropped(&a, 600, true);
    check(a.free_dirty == 400 && fpb_account_believed(&a) == 400,
          "honest: drops from counted chunks leave 400 counted, believed");
    fpb_account_dropped(&a, 400, true);
    fpb_account_sync(&a);
    a.free_dirty += 900;
    check(fpb_account_believed(&a) == 900,
          "honest: the next count is believed up to the last period's drops");
    fpb_account_dropped(&a, 900, true);

    /* A liar: it counts free what the filter then finds in use. */
    fpb_account_sync(&a);
    a.free_dirty += 5000;
    check(fpb_account_believed(&a) == 900,
          "liar: believed no further than the 900 dropped before");
    fpb_account_sync(&a);
    a.free_dirty += 5000;
    check(fpb_account_believed(&a) == 0,
          "liar: two syncs without drops, nothing believed");

    /* Drops where the log was clear prove the word but count nothing off. */
    fpb_account_dropped(&a, 70, false);
    check(a.free_dirty == 5000 && fpb_account_believed(&a) == 70,
          "refresh drops: count kept, 70 believed");
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/free-page-bitmap/validator", test_validator);
    g_test_add_func("/free-page-bitmap/rejects", test_rejects);
    g_test_add_func("/free-page-bitmap/seq", test_seq);
    g_test_add_func("/free-page-bitmap/load-limit", test_load_limit);
    g_test_add_func("/free-page-bitmap/clear-free", test_clear_free);
    g_test_add_func("/free-page-bitmap/random", test_random);
    g_test_add_func("/free-page-bitmap/order", test_order);
    g_test_add_func("/free-page-bitmap/postcopy-model", test_postcopy_model);
    g_test_add_func("/free-page-bitmap/account", test_account);
    return g_test_run();
}

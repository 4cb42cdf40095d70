/*
 * Free page bitmap: validation of the guest's layout and the filter that
 * drops guest-free pages from a migration dirty bitmap.
 *
 * Everything read from the guest is untrusted: a bad layout makes the
 * filter return FPB_REJECTED, never crash or read outside guest RAM.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/bitops.h"
#include "qemu/host-utils.h"
#include "qemu/bswap.h"
#include "free-page-bitmap-core.h"

#define FPB_HDR_SIZE    sizeof(struct virtio_balloon_fpb_header)
#define FPB_RANGE_SIZE  sizeof(struct virtio_balloon_fpb_range)
/* Table entries read at a time while validating. */
#define FPB_TABLE_BATCH 512

void fpb_filter_init(FpbFilter *f, const FpbLimits *limits)
{
    memset(f, 0, sizeof(*f));
    f->limits = *limits;
}

void fpb_filter_new_round(FpbFilter *f)
{
    f->loads = 0;
}

void fpb_layout_reset(FpbLayout *l)
{
    uint32_t i;

    for (i = 0; i < l->nr_ranges && l->ranges; i++) {
        g_free(l->ranges[i].page_gpa);
    }
    g_free(l->ranges);
    memset(l, 0, sizeof(*l));
}

void fpb_filter_destroy(FpbFilter *f)
{
    fpb_layout_reset(&f->layout);
    g_free(f->free);
    g_free(f->buf);
    memset(f, 0, sizeof(*f));
}

#define FPB_SEQ_OFFSET  offsetof(struct virtio_balloon_fpb_header, seq)

/*
 * Read the header; FPB_BUSY unless seq is even and the bitmap active.
 * seq is read first, on its own (read() of an aligned 32-bit value is
 * one atomic load), and with acquire semantics: whatever is read after
 * it (the header, the ranges, the bits) is at least as new as seq.
 */
static FpbStatus fpb_read_header(const FpbOps *ops, void *opaque,
                                 uint64_t gpa,
                                 struct virtio_balloon_fpb_header *h,
                                 const char **reason)
{
    uint32_t seq;

    if (gpa & 7 || !ops->read(opaque, gpa + FPB_SEQ_OFFSET, &seq,
                              sizeof(seq))) {
        *reason = "header not in guest RAM";
        return FPB_REJECTED;
    }
    smp_mb_acquire();
    if (!ops->read(opaque, gpa, h, FPB_HDR_SIZE)) {
        *reason = "header not in guest RAM";
        return FPB_REJECTED;
    }
    if (h->seq != seq) {
        return FPB_BUSY;
    }
    if (le32_to_cpu(h->magic) != VIRTIO_BALLOON_FPB_MAGIC) {
        *reason = "bad magic";
        return FPB_REJECTED;
    }
    if (le16_to_cpu(h->version) != VIRTIO_BALLOON_FPB_VERSION) {
        *reason = "unsupported version";
        return FPB_REJECTED;
    }
    if ((le32_to_cpu(h->seq) & 1) ||
        !(le32_to_cpu(h->flags) & VIRTIO_BALLOON_FPB_F_ACTIVE)) {
        return FPB_BUSY;
    }
    return FPB_OK;
}

FpbStatus fpb_header_status(const FpbOps *ops, void *opaque,
                            uint64_t header_gpa, const char **reason)
{
    struct virtio_balloon_fpb_header h;

    return fpb_read_header(ops, opaque, header_gpa, &h, reason);
}

static bool fpb_read_seq(const FpbOps *ops, void *opaque, uint64_t gpa,
                         uint32_t *seq)
{
    uint32_t v;

    /* Order the reads before this one (the bits) before reading seq. */
    smp_rmb();
    if (!ops->read(opaque, gpa + FPB_SEQ_OFFSET, &v, sizeof(v))) {
        return false;
    }
    *seq = le32_to_cpu(v);
    return true;
}

static FpbStatus fpb_load_range(FpbLayout *l, const FpbLimits *limits,
                                const FpbOps *ops, void *opaque,
                                const struct virtio_balloon_fpb_range *raw,
                                FpbRange *r, const char **reason)
{
    unsigned shift = l->page_shift + l->granule_order;
    uint64_t start_pfn = le64_to_cpu(raw->start_pfn);
    uint64_t nr_bits = le64_to_cpu(raw->nr_bits);
    uint64_t table = le64_to_cpu(raw->pfn_table_gpa);
    uint64_t entries = le64_to_cpu(raw->nr_table_entries);
    uint64_t page_bits = 8ULL << l->page_shift;
    uint64_t max_pfn = limits->max_gpa >> l->page_shift;
    uint64_t i, n, batch[FPB_TABLE_BATCH];

    if (start_pfn & ((1ULL << l->granule_order) - 1)) {
        *reason = "range start not aligned to the granule";
        return FPB_REJECTED;
    }
    /* start and end inside guest-physical space, without overflow */
    if (!nr_bits || start_pfn > max_pfn ||
        nr_bits > ((max_pfn - start_pfn) >> l->granule_order) + 1 ||
        nr_bits > (limits->max_gpa >> shift) + 1) {
        *reason = "range outside guest memory";
        return FPB_REJECTED;
    }
    if (entries != DIV_ROUND_UP(nr_bits, page_bits)) {
        *reason = "table size does not match the range";
        return FPB_REJECTED;
    }
    /*
     * A zone spans the holes between its pages (Linux's ZONE_DMA32 runs
     * up to 4 GiB, the PCI hole included), so bound the bits by the
     * guest-physical space, not by the RAM size.  Twice that leaves room
     * for NUMA nodes whose spans overlap.
     */
    l->total_bits += nr_bits;
    if (l->total_bits > 2 * ((max_pfn + 1) >> l->granule_order) +
                        8ULL * limits->max_ranges) {
        *reason = "more bits than guest-physical memory needs";
        return FPB_REJECTED;
    }
    if (table & 7 || !ops->is_ram(opaque, table, entries * 8)) {
        *reason = "table not in guest RAM";
        return FPB_REJECTED;
    }

    r->start_pfn = start_pfn;
    r->nr_bits = nr_bits;
    r->nr_pages = entries;
    r->page_gpa = g_new(uint64_t, entries);
    for (i = 0; i < entries; i += n) {
        uint64_t j;

        n = MIN(entries - i, FPB_TABLE_BATCH);
        if (!ops->read(opaque, table + i * 8, batch, n * 8)) {
            *reason = "table not in guest RAM";
            return FPB_REJECTED;
        }
        for (j = 0; j < n; j++) {
            uint64_t pfn = le64_to_cpu(batch[j]);

            if (pfn >= max_pfn ||
                !ops->is_ram(opaque, pfn << l->page_shift,
                             1ULL << l->page_shift)) {
                *reason = "bitmap page not in guest RAM";
                return FPB_REJECTED;
            }
            r->page_gpa[i + j] = pfn << l->page_shift;
        }
    }
    return FPB_OK;
}

FpbStatus fpb_layout_load(FpbLayout *l, const FpbLimits *limits,
                          const FpbOps *ops, void *opaque,
                          uint64_t header_gpa, const char **reason)
{
    struct virtio_balloon_fpb_header h;
    g_autofree struct virtio_balloon_fpb_range *raw = NULL;
    uint64_t ranges_gpa;
    uint32_t i, nr, seq;
    FpbStatus ret;

    fpb_layout_reset(l);
    ret = fpb_read_header(ops, opaque, header_gpa, &h, reason);
    if (ret != FPB_OK) {
        return ret;
    }
    l->header_gpa = header_gpa;
    l->seq = le32_to_cpu(h.seq);
    l->page_shift = h.page_shift;
    l->granule_order = h.granule_order;
    nr = le32_to_cpu(h.nr_ranges);
    ranges_gpa = le64_to_cpu(h.ranges_gpa);

    if (l->page_shift < limits->target_page_bits ||
        l->page_shift > FPB_MAX_PAGE_SHIFT) {
        *reason = "unsupported page_shift";
        goto reject;
    }
    if (l->page_shift + l->granule_order > FPB_MAX_GRANULE_SHIFT) {
        *reason = "granule too large";
        goto reject;
    }
    if (h.reserved) {
        *reason = "reserved field not zero";
        goto reject;
    }
    if (!nr || nr > limits->max_ranges) {
        *reason = "bad number of ranges";
        goto reject;
    }
    raw = g_new(struct virtio_balloon_fpb_range, nr);
    if (ranges_gpa & 7 ||
        !ops->read(opaque, ranges_gpa, raw, nr * FPB_RANGE_SIZE)) {
        *reason = "ranges not in guest RAM";
        goto reject;
    }

    l->ranges = g_new0(FpbRange, nr);
    l->nr_ranges = nr;
    for (i = 0; i < nr; i++) {
        ret = fpb_load_range(l, limits, ops, opaque, &raw[i], &l->ranges[i],
                             reason);
        if (ret != FPB_OK) {
            goto reject;
        }
    }

    /* A layout read while the guest rewrote it is no layout at all. */
    if (!fpb_read_seq(ops, opaque, header_gpa, &seq)) {
        *reason = "header not in guest RAM";
        goto reject;
    }
    if (seq != l->seq) {
        fpb_layout_reset(l);
        return FPB_BUSY;
    }
    l->valid = true;
    return FPB_OK;

reject:
    /*
     * What we read may be garbage only because the guest was changing it:
     * that is no reason to give up on the guest.
     */
    if (fpb_read_seq(ops, opaque, header_gpa, &seq) && seq != l->seq) {
        fpb_layout_reset(l);
        return FPB_BUSY;
    }
    fpb_layout_reset(l);
    return FPB_REJECTED;
}

/*
 * Copy the bits [g0, g1) of range @r to f->buf, bit g0 at bit (g0 & 7) of
 * byte 0, followed by 8 zero bytes.
 */
static bool fpb_read_bits(FpbFilter *f, const FpbRange *r, unsigned page_shift,
                          const FpbOps *ops, void *opaque,
                          uint64_t g0, uint64_t g1)
{
    uint64_t b = g0 >> 3, end = DIV_ROUND_UP(g1, 8);
    uint64_t page_mask = (1ULL << page_shift) - 1;
    size_t need = end - b + 8;
    uint8_t *p;

    if (f->buf_len < need) {
        g_free(f->buf);
        f->buf = g_malloc(need);
        f->buf_len = need;
    }
    p = f->buf;
    while (b < end) {
        uint64_t pg = b >> page_shift, off = b & page_mask;
        uint64_t n = MIN(end - b, page_mask + 1 - off);

        if (!ops->read(opaque, r->page_gpa[pg] + off, p, n)) {
            return false;
        }
        p += n;
        b += n;
    }
    memset(p, 0, 8);
    return true;
}

/* The BITS_PER_LONG bits of @src from bit @pos (LSB first byte order). */
static inline unsigned long fpb_bits_at(const uint8_t *src, uint64_t pos)
{
    const uint8_t *p = src + (pos >> 3);
    unsigned s = pos & 7;
    uint64_t w = ldq_le_p(p);

    if (s) {
        w = (w >> s) | ((uint64_t)p[8] << (64 - s));
    }
    return (unsigned long)w;
}

/* Set @n bits of @dst from bit @d to the bits of @src from bit @s. */
static void fpb_or_bits(unsigned long *dst, uint64_t d, const uint8_t *src,
                        uint64_t s, uint64_t n)
{
    uint64_t i;

    for (i = 0; i < n; i += BITS_PER_LONG) {
        unsigned long w = fpb_bits_at(src, s + i);
        uint64_t bit = d + i;
        unsigned lo = bit % BITS_PER_LONG;

        if (n - i < BITS_PER_LONG) {
            w &= BIT_MASK(n - i) - 1;
        }
        dst[bit / BITS_PER_LONG] |= w << lo;
        if (lo) {
            dst[bit / BITS_PER_LONG + 1] |= w >> (BITS_PER_LONG - lo);
        }
    }
}

/* Set @n bits of @dst from bit @start. */
static void fpb_set_bits(unsigned long *dst, uint64_t start, uint64_t n)
{
    while (n) {
        unsigned lo = start % BITS_PER_LONG;
        uint64_t k = MIN(n, (uint64_t)BITS_PER_LONG - lo);
        unsigned long m = k == BITS_PER_LONG ? ~0UL :
                          (BIT_MASK(k) - 1) << lo;

        dst[start / BITS_PER_LONG] |= m;
        start += k;
        n -= k;
    }
}

/*
 * OR the free pages of range @r inside window @w into @free (bit 0 = the
 * window's first page).  A page is free if the granule holding it is:
 * granules are at least one page and aligned, so each page lies in one.
 */
static bool fpb_window_range(FpbFilter *f, const FpbRange *r,
                             const FpbOps *ops, void *opaque,
                             const FpbWindow *w, unsigned long *free)
{
    const FpbLayout *l = &f->layout;
    unsigned tp = f->limits.target_page_bits;
    unsigned k = l->page_shift + l->granule_order - tp;
    uint64_t t0 = w->gpa >> tp, t1 = t0 + w->npages;
    uint64_t r0 = (r->start_pfn << l->page_shift) >> tp;
    uint64_t r1 = r0 + (r->nr_bits << k);
    uint64_t a = MAX(t0, r0), b = MIN(t1, r1);
    uint64_t g0, g1, g;

    if (a >= b) {
        return true;
    }
    g0 = (a - r0) >> k;
    g1 = ((b - 1 - r0) >> k) + 1;
    if (!fpb_read_bits(f, r, l->page_shift, ops, opaque, g0, g1)) {
        return false;
    }
    if (!k) {
        fpb_or_bits(free, a - t0, f->buf, g0 & 7, b - a);
        return true;
    }
    /* Guest granule larger than a page: each set bit sets 2^k pages. */
    for (g = g0; g < g1; g++) {
        uint64_t i = g - (g0 & ~7ULL);
        uint64_t p0, p1;

        if (!(i & 7) && !f->buf[i >> 3] && g + 8 <= g1) {
            g += 7;
            continue;
        }
        if (!(f->buf[i >> 3] & (1 << (i & 7)))) {
            continue;
        }
        p0 = MAX(r0 + (g << k), a);
        p1 = MIN(r0 + ((g + 1) << k), b);
        fpb_set_bits(free, p0 - t0, p1 - p0);
    }
    return true;
}

/* Clear @m in *@d, record what was set in *@u (if any); count those. */
static inline unsigned fpb_clear_word(unsigned long *d, unsigned long *u,
                                      unsigned long m)
{
    unsigned long was = *d & m;

    *d &= ~m;
    if (u) {
        *u |= was;
    }
    return ctpopl(was);
}

uint64_t fpb_bitmap_clear_free(unsigned long *bmap, uint64_t start,
                               const unsigned long *free, uint64_t n,
                               unsigned long *unsent)
{
    uint64_t i, cleared = 0;
    unsigned lo = start % BITS_PER_LONG;
    unsigned long *d = bmap + start / BITS_PER_LONG;
    unsigned long *u = unsent ? unsent + start / BITS_PER_LONG : NULL;

    for (i = 0; i < n; i += BITS_PER_LONG, d++, u = u ? u + 1 : NULL) {
        unsigned long w = free[i / BITS_PER_LONG];

        if (n - i < BITS_PER_LONG) {
            w &= BIT_MASK(n - i) - 1;
        }
        if (!w) {
            continue;
        }
        cleared += fpb_clear_word(&d[0], u, w << lo);
        /* d[1] only if bits spill into it: it may be past @bmap's end */
        if (lo && (w >> (BITS_PER_LONG - lo))) {
            cleared += fpb_clear_word(&d[1], u ? &u[1] : NULL,
                                      w >> (BITS_PER_LONG - lo));
        }
    }
    return cleared;
}

/* Set the bits of @free (@n bits from 0) in @bmap from bit @start. */
static void fpb_bitmap_set_free(unsigned long *bmap, uint64_t start,
                                const unsigned long *free, uint64_t n)
{
    unsigned lo = start % BITS_PER_LONG;
    unsigned long *d = bmap + start / BITS_PER_LONG;
    uint64_t i;

    for (i = 0; i < n; i += BITS_PER_LONG, d++) {
        unsigned long w = free[i / BITS_PER_LONG];

        if (n - i < BITS_PER_LONG) {
            w &= BIT_MASK(n - i) - 1;
        }
        d[0] |= w << lo;
        if (lo && (w >> (BITS_PER_LONG - lo))) {
            d[1] |= w >> (BITS_PER_LONG - lo);
        }
    }
}

uint64_t fpb_bitmap_count_free(const unsigned long *bmap, uint64_t start,
                               const unsigned long *free, uint64_t n)
{
    uint64_t i, count = 0;
    unsigned lo = start % BITS_PER_LONG;
    const unsigned long *d = bmap + start / BITS_PER_LONG;

    for (i = 0; i < n; i += BITS_PER_LONG, d++) {
        unsigned long w = free[i / BITS_PER_LONG];

        if (n - i < BITS_PER_LONG) {
            w &= BIT_MASK(n - i) - 1;
        }
        if (!w) {
            continue;
        }
        count += ctpopl(d[0] & (w << lo));
        /* d[1] only if bits spill into it: it may be past @bmap's end */
        if (lo && (w >> (BITS_PER_LONG - lo))) {
            count += ctpopl(d[1] & (w >> (BITS_PER_LONG - lo)));
        }
    }
    return count;
}

/*
 * Read the guest's bits for @windows into f->free: seq, the layout if it
 * changed, the bits, then seq again.
 */
static FpbStatus fpb_read_free(FpbFilter *f, const FpbOps *ops, void *opaque,
                               uint64_t header_gpa, const FpbWindow *windows,
                               unsigned nr_windows, const char **reason)
{
    FpbLayout *l = &f->layout;
    struct virtio_balloon_fpb_header h;
    size_t longs = 0, pos;
    uint32_t seq;
    unsigned i, j;
    FpbStatus ret;

    ret = fpb_read_header(ops, opaque, header_gpa, &h, reason);
    if (ret != FPB_OK) {
        return ret;
    }
    if (!l->valid || l->header_gpa != header_gpa ||
        l->seq != le32_to_cpu(h.seq)) {
        if (f->limits.max_loads && f->loads >= f->limits.max_loads) {
            return FPB_BUSY;
        }
        f->loads++;
        ret = fpb_layout_load(l, &f->limits, ops, opaque, header_gpa, reason);
        if (ret != FPB_OK) {
            return ret;
        }
        if (l->seq != le32_to_cpu(h.seq)) {
            return FPB_BUSY;
        }
    }

    if (!nr_windows) {
        return FPB_OK;
    }
    for (i = 0; i < nr_windows; i++) {
        longs += BITS_TO_LONGS(windows[i].npages) + 1;
    }
    if (f->free_longs < longs) {
        g_free(f->free);
        f->free = g_new(unsigned long, longs);
        f->free_longs = longs;
    }
    memset(f->free, 0, longs * sizeof(unsigned long));

    for (i = 0, pos = 0; i < nr_windows; i++) {
        const FpbWindow *w = &windows[i];

        if (w->gpa & ((1ULL << f->limits.target_page_bits) - 1)) {
            return FPB_BUSY;
        }
        for (j = 0; j < l->nr_ranges; j++) {
            if (!fpb_window_range(f, &l->ranges[j], ops, opaque, w,
                                  f->free + pos)) {
                *reason = "bitmap page not in guest RAM";
                fpb_layout_reset(l);
                return FPB_REJECTED;
            }
        }
        pos += BITS_TO_LONGS(w->npages) + 1;
    }

    /* Use the bits only if the layout did not change meanwhile. */
    if (!fpb_read_seq(ops, opaque, header_gpa, &seq) || seq != l->seq) {
        return FPB_BUSY;
    }
    return FPB_OK;
}

FpbStatus fpb_filter(FpbFilter *f, const FpbOps *ops, void *opaque,
                     uint64_t header_gpa, const FpbWindow *windows,
                     unsigned nr_windows, unsigned long *bmap,
                     unsigned long *unsent, uint64_t *cleared,
                     const char **reason)
{
    size_t pos;
    unsigned i;
    FpbStatus ret;

    *cleared = 0;

    /* 1. Re-arm write tracking: later writes show up in the next sync. */
    if (ops->clear_log) {
        ops->clear_log(opaque);
    }

    /* 2. Only then read the bits. */
    ret = fpb_read_free(f, ops, opaque, header_gpa, windows, nr_windows,
                        reason);
    if (ret != FPB_OK) {
        return ret;
    }

    /* 3. Drop the free pages. */
    for (i = 0, pos = 0; i < nr_windows; i++) {
        *cleared += fpb_bitmap_clear_free(bmap, windows[i].first_page,
                                          f->free + pos, windows[i].npages,
                                          unsent);
        pos += BITS_TO_LONGS(windows[i].npages) + 1;
    }
    return FPB_OK;
}

FpbStatus fpb_count(FpbFilter *f, const FpbOps *ops, void *opaque,
                    uint64_t header_gpa, const FpbWindow *windows,
                    unsigned nr_windows, const unsigned long *bmap,
                    uint64_t *count, const char **reason)
{
    size_t pos;
    unsigned i;
    FpbStatus ret;

    *count = 0;
    ret = fpb_read_free(f, ops, opaque, header_gpa, windows, nr_windows,
                        reason);
    if (ret != FPB_OK) {
        return ret;
    }
    for (i = 0, pos = 0; i < nr_windows; i++) {
        *count += fpb_bitmap_count_free(bmap, windows[i].first_page,
                                        f->free + pos, windows[i].npages);
        pos += BITS_TO_LONGS(windows[i].npages) + 1;
    }
    return FPB_OK;
}

FpbStatus fpb_switchover(FpbFilter *f, const FpbOps *ops, void *opaque,
                         uint64_t header_gpa, const FpbWindow *windows,
                         unsigned nr_windows, uint64_t npages,
                         unsigned long *bmap, unsigned long *unsent,
                         unsigned long *free_set, FpbSwitchover *out,
                         const char **reason)
{
    FpbStatus ret = FPB_BUSY;
    uint64_t i;
    size_t pos;

    memset(out, 0, sizeof(*out));
    memset(free_set, 0, BITS_TO_LONGS(npages) * sizeof(unsigned long));

    /* The guest is stopped: bits read now stay true, no log to clear. */
    if (nr_windows) {
        ret = fpb_read_free(f, ops, opaque, header_gpa, windows, nr_windows,
                            reason);
    }
    if (ret == FPB_OK) {
        for (i = 0, pos = 0; i < nr_windows; i++) {
            fpb_bitmap_set_free(free_set, windows[i].first_page,
                                f->free + pos, windows[i].npages);
            pos += BITS_TO_LONGS(windows[i].npages) + 1;
        }
    }

    for (i = 0; i < BITS_TO_LONGS(npages); i++) {
        unsigned long all = ~0UL, freed, back;

        if (i == npages / BITS_PER_LONG) {
            all = BIT_MASK(npages % BITS_PER_LONG) - 1;
        }
        /* free now, and the destination has no up-to-date copy */
        freed = free_set[i] & (bmap[i] | unsent[i]) & all;
        /* dropped earlier, in use now: send it after all */
        back = unsent[i] & ~free_set[i] & ~bmap[i] & all;

        out->free_pages += ctpopl(freed);
        out->undirtied += ctpopl(bmap[i] & freed);
        out->redirtied += ctpopl(back);
        free_set[i] = freed;
        bmap[i] = (bmap[i] | back) & ~freed;
        unsent[i] &= ~all;
    }
    return ret;
}

void fpb_account_sync(FpbAccount *a)
{
    a->dropped_prev = a->dropped;
    a->dropped = 0;
    a->free_dirty = 0;
}

void fpb_account_dropped(FpbAccount *a, uint64_t pages, bool counted)
{
    a->dropped += pages;
    if (counted) {
        a->free_dirty -= MIN(pages, a->free_dirty);
    }
}

uint64_t fpb_account_believed(const FpbAccount *a)
{
    return MIN(a->free_dirty, a->dropped + a->dropped_prev);
}

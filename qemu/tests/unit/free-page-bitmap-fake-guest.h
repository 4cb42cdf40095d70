/*
 * A fake guest for the free page bitmap filter core: guest-physical memory
 * made of a few RAM mappings (with holes, e.g. the PCI hole below 4 GiB)
 * and a layout builder that writes the header, ranges, tables and bitmap
 * pages into it like the Linux driver does.  Used by test-free-page-bitmap
 * (and by the project's fuzzer and benchmark); header-only.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef FPB_FAKE_GUEST_H
#define FPB_FAKE_GUEST_H

#include "qemu/bitops.h"
#include "migration/free-page-bitmap-core.h"

#define FG_MAX_MAPS 8

typedef struct FakeMap {
    uint64_t gpa, size;
    uint8_t *host;
} FakeMap;

typedef struct FakeGuest {
    FakeMap map[FG_MAX_MAPS];
    unsigned nr_maps;
    /* bump allocator for layout pages, in guest-physical space */
    uint64_t alloc_next, alloc_end;
    unsigned page_shift, granule_order;
    uint64_t header_gpa;
    /* called by fg_read after copying: the adversary's hook */
    void (*after_read)(struct FakeGuest *g, uint64_t gpa, uint64_t len);
    /* counts reads, for the adversary's schedule */
    uint64_t reads;
} FakeGuest;

static inline uint8_t *fg_host(FakeGuest *g, uint64_t gpa, uint64_t len)
{
    for (unsigned i = 0; i < g->nr_maps; i++) {
        FakeMap *m = &g->map[i];

        if (gpa >= m->gpa && gpa - m->gpa < m->size &&
            len <= m->size - (gpa - m->gpa)) {
            return m->host + (gpa - m->gpa);
        }
    }
    return NULL;
}

static inline bool fg_access(FakeGuest *g, uint64_t gpa, void *buf,
                             uint64_t len)
{
    uint8_t *p = buf;

    if (len > UINT64_MAX - gpa) {
        return false;
    }
    /* may span mappings that are contiguous in guest-physical space */
    while (len) {
        uint64_t n = 0;
        uint8_t *h = NULL;

        for (unsigned i = 0; i < g->nr_maps; i++) {
            FakeMap *m = &g->map[i];

            if (gpa >= m->gpa && gpa - m->gpa < m->size) {
                n = MIN(len, m->size - (gpa - m->gpa));
                h = m->host + (gpa - m->gpa);
            }
        }
        if (!h) {
            return false;
        }
        if (p) {
            memcpy(p, h, n);
            p += n;
        }
        gpa += n;
        len -= n;
    }
    return true;
}

static inline bool fg_read(void *opaque, uint64_t gpa, void *buf, uint64_t len)
{
    FakeGuest *g = opaque;
    bool ok = fg_access(g, gpa, buf, len);

    g->reads++;
    if (ok && g->after_read) {
        g->after_read(g, gpa, len);
    }
    return ok;
}

static inline bool fg_is_ram(void *opaque, uint64_t gpa, uint64_t len)
{
    return fg_access(opaque, gpa, NULL, len);
}

static inline void fg_add_map(FakeGuest *g, uint64_t gpa, uint64_t size,
                              uint8_t *host)
{
    g->map[g->nr_maps++] = (FakeMap) { gpa, size, host };
}

static inline uint64_t fg_alloc(FakeGuest *g, uint64_t bytes)
{
    uint64_t page = 1ULL << g->page_shift;
    uint64_t gpa = g->alloc_next;

    g->alloc_next += DIV_ROUND_UP(bytes, page) * page;
    if (g->alloc_next > g->alloc_end) {
        fprintf(stderr, "fake guest: layout area too small\n");
        abort();
    }
    memset(fg_host(g, gpa, bytes), 0, bytes);
    return gpa;
}

static inline struct virtio_balloon_fpb_header *fg_header(FakeGuest *g)
{
    return (void *)fg_host(g, g->header_gpa,
                           sizeof(struct virtio_balloon_fpb_header));
}

static inline struct virtio_balloon_fpb_range *fg_range(FakeGuest *g,
                                                        unsigned i)
{
    struct virtio_balloon_fpb_header *h = fg_header(g);
    uint64_t size = sizeof(struct virtio_balloon_fpb_range);

    return (void *)fg_host(g, h->ranges_gpa + i * size, size);
}

/*
 * Build a layout with @nr ranges (start_pfn, nr_bits) in the area
 * [@area, @area + @area_size) of guest RAM.  Bitmap pages are allocated
 * in reverse order, so that the tables matter.
 */
static inline void fg_build(FakeGuest *g, unsigned page_shift,
                            unsigned granule_order, uint64_t area,
                            uint64_t area_size, unsigned nr,
                            const uint64_t *start_pfn, const uint64_t *nr_bits)
{
    uint64_t page = 1ULL << page_shift;
    struct virtio_balloon_fpb_header *h;

    g->page_shift = page_shift;
    g->granule_order = granule_order;
    g->alloc_next = area;
    g->alloc_end = area + area_size;
    g->header_gpa = fg_alloc(g, page);
    h = fg_header(g);
    h->magic = VIRTIO_BALLOON_FPB_MAGIC;
    h->version = VIRTIO_BALLOON_FPB_VERSION;
    h->page_shift = page_shift;
    h->granule_order = granule_order;
    h->seq = 2;
    h->flags = VIRTIO_BALLOON_FPB_F_ACTIVE;
    h->nr_ranges = nr;
    h->ranges_gpa = fg_alloc(g, nr * sizeof(struct virtio_balloon_fpb_range));
    for (unsigned i = 0; i < nr; i++) {
        uint64_t entries = DIV_ROUND_UP(nr_bits[i], 8 * page);
        uint64_t table = fg_alloc(g, entries * 8);
        uint64_t *t = (uint64_t *)fg_host(g, table, entries * 8);
        struct virtio_balloon_fpb_range *r = fg_range(g, i);
        uint64_t bitmap = fg_alloc(g, entries * page);

        for (uint64_t j = 0; j < entries; j++) {
            t[j] = (bitmap + (entries - 1 - j) * page) >> page_shift;
        }
        r->start_pfn = start_pfn[i];
        r->nr_bits = nr_bits[i];
        r->pfn_table_gpa = table;
        r->nr_table_entries = entries;
    }
}

/* The byte holding bit @bit of range @i's bitmap. */
static inline uint8_t *fg_bit_byte(FakeGuest *g, unsigned i, uint64_t bit)
{
    struct virtio_balloon_fpb_range *r = fg_range(g, i);
    uint64_t page = 1ULL << g->page_shift;
    uint64_t byte = bit / 8;
    uint64_t *t = (uint64_t *)fg_host(g, r->pfn_table_gpa,
                                      r->nr_table_entries * 8);

    return fg_host(g, (t[byte / page] << g->page_shift) + byte % page, 1);
}

/* Mark guest page @gpfn free or not in every range that covers it. */
static inline void fg_set_free(FakeGuest *g, uint64_t gpfn, bool free)
{
    struct virtio_balloon_fpb_header *h = fg_header(g);

    for (unsigned i = 0; i < h->nr_ranges; i++) {
        struct virtio_balloon_fpb_range *r = fg_range(g, i);
        uint64_t bit;
        uint8_t *b;

        if (gpfn < r->start_pfn ||
            (gpfn - r->start_pfn) >> g->granule_order >= r->nr_bits) {
            continue;
        }
        bit = (gpfn - r->start_pfn) >> g->granule_order;
        b = fg_bit_byte(g, i, bit);
        if (free) {
            *b |= 1 << (bit % 8);
        } else {
            *b &= ~(1 << (bit % 8));
        }
    }
}

#endif

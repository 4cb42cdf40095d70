/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _MM_FREE_PAGE_BITMAP_H
#define _MM_FREE_PAGE_BITMAP_H

#include <linux/free_page_bitmap.h>
#include <linux/init.h>
#include <linux/jump_label.h>
#include <linux/mmzone.h>

#ifdef CONFIG_FREE_PAGE_BITMAP
DECLARE_STATIC_KEY_FALSE(free_page_bitmap_enabled);
void __free_page_bitmap_alloc(struct zone *zone, unsigned long pfn,
			      unsigned int order, unsigned int high);
void __free_page_bitmap_free(struct zone *zone, unsigned long pfn,
			     unsigned int order, unsigned int merged);
void __free_page_bitmap_remove(struct zone *zone, unsigned long pfn,
			       unsigned int order);

/*
 * The hooks run where a page's freeness changes, not where free lists
 * change: splitting a free block or merging free buddies leaves every bit
 * as it is, so only the granules of the pages handed out or freed are
 * written.  All of them run under zone->lock.  Always inlined, so that
 * with tracking off each call site is a nop, not a call (-Os would make
 * them functions).
 */

/**
 * free_page_bitmap_alloc - note pages handed out of a free block
 * @zone: the block's zone, whose lock is held
 * @page: first page handed out
 * @order: order of the pages handed out
 * @high: order of the free block that contains them; the rest of it stays
 *	  free, in buddies that keep their bits
 *
 * Must run before the pages can be written: the host reads the bits
 * without the lock.
 */
static __always_inline void free_page_bitmap_alloc(struct zone *zone,
						   struct page *page,
						   unsigned int order,
						   unsigned int high)
{
	/* Hot path: every buddy allocation, under zone->lock */
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		__free_page_bitmap_alloc(zone, page_to_pfn(page), order, high);
}

/**
 * free_page_bitmap_free - note a block freed to the buddy allocator
 * @zone: the block's zone, whose lock is held
 * @pfn: first page frame of the freed block
 * @order: order of the freed block
 * @merged: order of the free block it ended in, merged with its buddies
 */
static __always_inline void free_page_bitmap_free(struct zone *zone,
						  unsigned long pfn,
						  unsigned int order,
						  unsigned int merged)
{
	/* Hot path: every buddy free, under zone->lock */
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		__free_page_bitmap_free(zone, pfn, order, merged);
}

/**
 * free_page_bitmap_remove - note a free block taken whole off the free lists
 * @zone: the block's zone, whose lock is held
 * @page: first page of the block
 * @order: order of the block
 *
 * For blocks that are isolated, offlined, captured or split into
 * pageblocks, rather than allocated.  Must run before the block can be
 * written.
 */
static __always_inline void free_page_bitmap_remove(struct zone *zone,
						    struct page *page,
						    unsigned int order)
{
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		__free_page_bitmap_remove(zone, page_to_pfn(page), order);
}

/* The rest is shared by the core, its sysfs/debugfs side and KUnit. */

/**
 * struct free_page_bitmap_zone - one zone's bitmap, zone->free_page_bitmap
 * @zone: the zone
 * @start_pfn: first page frame covered, the zone start rounded down to
 *	       the granule
 * @nr_bits: number of granules covered, up to the zone end
 * @granule_order: log2 of the pages per bit
 * @exact_end: the build has made the bits below this page frame exact;
 *	       the DEBUG_VM check of a split trusts only those, zone->lock
 * @bits: the bitmap, virtually contiguous and zeroed when allocated
 */
struct free_page_bitmap_zone {
	struct zone *zone;
	unsigned long start_pfn;
	unsigned long nr_bits;
	unsigned int granule_order;
	unsigned long exact_end;
	unsigned long *bits;
};

/* When tracking should run */
enum free_page_bitmap_mode {
	FREE_PAGE_BITMAP_ALWAYS,
	FREE_PAGE_BITMAP_HOST,
	FREE_PAGE_BITMAP_NEVER,
};

/* What sysfs shows; written under the core's mutex */
struct free_page_bitmap_stats {
	/* NULL while active, else why not */
	const char *inactive_reason;
	/* bytes of bitmap memory, all zones */
	unsigned long bitmap_bytes;
	/* completed builds and rebuilds */
	unsigned long rebuild_count;
	/* duration of the last and the longest build, in microseconds */
	u64 last_rebuild_us;
	u64 max_rebuild_us;
};

/* A consistent copy of the core's state, free_page_bitmap_read_state() */
struct free_page_bitmap_state {
	enum free_page_bitmap_mode mode;
	unsigned int granule_order;
	/* whether granule_order is the client's proposal, not the admin's */
	bool granule_auto;
	struct free_page_bitmap_stats stats;
};

/* For free_page_bitmap_set_granule(): the granule the client proposes */
#define FREE_PAGE_BITMAP_GRANULE_AUTO	(-1)

struct seq_file;

struct free_page_bitmap_state free_page_bitmap_read_state(void);
void __init free_page_bitmap_set_boot_mode(enum free_page_bitmap_mode mode);
void free_page_bitmap_show_zone(struct seq_file *m, struct zone *zone);
bool free_page_bitmap_active(void);
int free_page_bitmap_set_mode(enum free_page_bitmap_mode mode);
int free_page_bitmap_set_granule(int granule_order);
unsigned long free_page_bitmap_tracked_pages(void);
unsigned long free_page_bitmap_verify(void);
bool free_page_bitmap_tracks_zone(struct zone *zone);
bool free_page_bitmap_has_client(void);
void free_page_bitmap_flush_client(void);
void free_page_bitmap_hold_client(bool hold);
void free_page_bitmap_span(const struct zone *zone, unsigned int granule_order,
			   unsigned long *start_pfn, unsigned long *nr_bits);

#else /* CONFIG_FREE_PAGE_BITMAP */
static inline void free_page_bitmap_alloc(struct zone *zone, struct page *page,
					  unsigned int order, unsigned int high)
{
}

static inline void free_page_bitmap_free(struct zone *zone, unsigned long pfn,
					 unsigned int order, unsigned int merged)
{
}

static inline void free_page_bitmap_remove(struct zone *zone, struct page *page,
					   unsigned int order)
{
}
#endif /* CONFIG_FREE_PAGE_BITMAP */
#endif /* _MM_FREE_PAGE_BITMAP_H */

/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _MM_FREE_PAGE_BITMAP_H
#define _MM_FREE_PAGE_BITMAP_H

#include <linux/free_page_bitmap.h>
#include <linux/jump_label.h>
#include <linux/mmzone.h>
#include <linux/mutex.h>

#ifdef CONFIG_FREE_PAGE_BITMAP
DECLARE_STATIC_KEY_FALSE(free_page_bitmap_enabled);
void __free_page_bitmap_set(struct zone *zone, unsigned long pfn,
			    unsigned int order);
void __free_page_bitmap_clear(struct zone *zone, unsigned long pfn,
			      unsigned int order);

/**
 * free_page_bitmap_add - note a block that enters a buddy free list
 * @zone: the block's zone, whose lock is held
 * @page: first page of the block
 * @order: order of the block
 */
static inline void free_page_bitmap_add(struct zone *zone, struct page *page,
					unsigned int order)
{
	/* Hot path: every buddy free and split, under zone->lock */
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		__free_page_bitmap_set(zone, page_to_pfn(page), order);
}

/**
 * free_page_bitmap_del - note a block that leaves a buddy free list
 * @zone: the block's zone, whose lock is held
 * @page: first page of the block
 * @order: order of the block
 *
 * Must run before the block can be handed out: the host reads the bits
 * without the lock.
 */
static inline void free_page_bitmap_del(struct zone *zone, struct page *page,
					unsigned int order)
{
	/* Hot path: every buddy allocation and merge, under zone->lock */
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		__free_page_bitmap_clear(zone, page_to_pfn(page), order);
}

/* The rest is shared by the core, its sysfs/debugfs side and KUnit. */

/**
 * struct free_page_bitmap_zone - one zone's bitmap, zone->free_page_bitmap
 * @zone: the zone
 * @start_pfn: first page frame covered, the zone start rounded down to
 *	       the granule
 * @nr_bits: number of granules covered, up to the zone end
 * @granule_order: log2 of the pages per bit
 * @bits: the bitmap, virtually contiguous and zeroed when allocated
 */
struct free_page_bitmap_zone {
	struct zone *zone;
	unsigned long start_pfn;
	unsigned long nr_bits;
	unsigned int granule_order;
	unsigned long *bits;
};

/* When tracking should run */
enum free_page_bitmap_mode {
	FREE_PAGE_BITMAP_ALWAYS,
	FREE_PAGE_BITMAP_HOST,
	FREE_PAGE_BITMAP_NEVER,
};

/* What sysfs shows; written under free_page_bitmap_mutex */
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

extern struct mutex free_page_bitmap_mutex;
extern enum free_page_bitmap_mode free_page_bitmap_mode;
extern unsigned int free_page_bitmap_granule_order;
extern struct free_page_bitmap_stats free_page_bitmap_stats;

bool free_page_bitmap_active(void);
int free_page_bitmap_set_mode(enum free_page_bitmap_mode mode);
int free_page_bitmap_set_granule(unsigned int granule_order);
unsigned long free_page_bitmap_tracked_pages(void);
unsigned long free_page_bitmap_verify(void);
bool free_page_bitmap_tracks_zone(struct zone *zone);
bool free_page_bitmap_has_client(void);
void free_page_bitmap_span(const struct zone *zone, unsigned int granule_order,
			   unsigned long *start_pfn, unsigned long *nr_bits);

#else /* CONFIG_FREE_PAGE_BITMAP */
static inline void free_page_bitmap_add(struct zone *zone, struct page *page,
					unsigned int order)
{
}

static inline void free_page_bitmap_del(struct zone *zone, struct page *page,
					unsigned int order)
{
}
#endif /* CONFIG_FREE_PAGE_BITMAP */
#endif /* _MM_FREE_PAGE_BITMAP_H */

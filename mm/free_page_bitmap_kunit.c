// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for the free page bitmap: the bitmaps must match the buddy
 * free lists at every release of zone->lock, also while every CPU
 * allocates and frees, and a client must see every change of layout.
 *
 * The cases drive the real allocator and the real bitmaps of this kernel,
 * so they run serially at boot and restore the mode and granule they
 * found.  They skip when a driver consumes the bitmaps: its host may be
 * reading them, and one case plants a wrong bit on purpose.  The
 * concurrency cases need an SMP guest (kunit.py --arch=x86_64
 * --qemu_args='-smp 2'), not UML.
 */

#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/kthread.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/page-isolation.h>
#include <linux/random.h>

#include "internal.h"
#include "free_page_bitmap.h"

static enum free_page_bitmap_mode saved_mode;
static int saved_granule;

static int fpb_test_init(struct kunit *test)
{
	if (free_page_bitmap_has_client())
		kunit_skip(test, "a driver consumes the bitmaps; its host may be reading them");
	saved_mode = free_page_bitmap_read_state().mode;
	saved_granule = free_page_bitmap_read_state().granule_auto ?
			FREE_PAGE_BITMAP_GRANULE_AUTO :
			free_page_bitmap_read_state().granule_order;
	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_granule(0), 0);
	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_ALWAYS), 0);
	if (!free_page_bitmap_active())
		kunit_skip(test, "tracking cannot start: %s",
			   free_page_bitmap_read_state().stats.inactive_reason);
	return 0;
}

static void fpb_test_exit(struct kunit *test)
{
	free_page_bitmap_set_granule(saved_granule);
	free_page_bitmap_set_mode(saved_mode);
}

/* Is the bit covering @pfn set?  Read without any lock, as a host does. */
static bool fpb_bit(unsigned long pfn)
{
	struct free_page_bitmap_zone *fpz = page_zone(pfn_to_page(pfn))->free_page_bitmap;
	unsigned long idx;

	if (!fpz)
		return false;
	idx = (pfn - fpz->start_pfn) >> fpz->granule_order;
	return READ_ONCE(fpz->bits[BIT_WORD(idx)]) & BIT_MASK(idx);
}

/* Every granule of @page's block of 2^@order pages must read clear. */
static void expect_block_clear(struct kunit *test, struct page *page,
			       unsigned int order)
{
	unsigned long pfn = page_to_pfn(page), i;

	for (i = 0; i < (1UL << order); i++)
		KUNIT_EXPECT_FALSE_MSG(test, fpb_bit(pfn + i),
				       "allocated pfn %#lx reads free", pfn + i);
}

/*
 * Under zone->lock, a granule's bit must equal "its first page is in a
 * free buddy block of order >= granule_order".
 */
static void expect_bits_match_page(struct kunit *test, struct page *page)
{
	struct zone *zone = page_zone(page);
	unsigned long pfn = page_to_pfn(page);
	bool free;

	spin_lock_irq(&zone->lock);
	free = is_free_buddy_page(page);
	KUNIT_EXPECT_EQ_MSG(test, fpb_bit(pfn), free, "pfn %#lx", pfn);
	spin_unlock_irq(&zone->lock);
}

/* Granule math: the span of a zone at its edges and every granule. */
struct fpb_span_case {
	const char *desc;
	unsigned long zone_start, zone_pages;
	unsigned int granule_order;
	unsigned long start_pfn, nr_bits;
};

static const struct fpb_span_case fpb_span_cases[] = {
	{ "aligned zone, order 0", 0x1000, 4096, 0, 0x1000, 4096 },
	{ "unaligned start rounds down", 0x1001, 0xfff, 3, 0x1000, 512 },
	{ "start rounds down to a word of granules", 0x1010, 0xff0, 0, 0x1000, 4096 },
	{ "partial last granule counts", 0, 4097, 9, 0, 9 },
	{ "one page zone", 0x107ff, 1, 10, 0x10000, 2 },
	{ "order 10, both ends partial", 0x12345, 0x40000, 10, 0x10000, 265 },
};

KUNIT_ARRAY_PARAM_DESC(fpb_span, fpb_span_cases, desc);

static void fpb_span_test(struct kunit *test)
{
	const struct fpb_span_case *c = test->param_value;
	struct zone *zone = kunit_kzalloc(test, sizeof(*zone), GFP_KERNEL);
	unsigned long start, nr_bits;

	KUNIT_ASSERT_NOT_NULL(test, zone);
	zone->zone_start_pfn = c->zone_start;
	zone->spanned_pages = c->zone_pages;
	free_page_bitmap_span(zone, c->granule_order, &start, &nr_bits);
	KUNIT_EXPECT_EQ(test, start, c->start_pfn);
	KUNIT_EXPECT_EQ(test, nr_bits, c->nr_bits);
}

static void fpb_span_every_order_test(struct kunit *test)
{
	struct zone *zone = kunit_kzalloc(test, sizeof(*zone), GFP_KERNEL);
	unsigned long start, nr_bits;
	unsigned int g;

	KUNIT_ASSERT_NOT_NULL(test, zone);
	/*
	 * One page past a 2^20 page span that starts at pfn 1: the start
	 * rounds down to a word of granules, pfn 0.
	 */
	zone->zone_start_pfn = 1;
	zone->spanned_pages = 1UL << 20;
	for (g = 0; g <= MAX_PAGE_ORDER; g++) {
		free_page_bitmap_span(zone, g, &start, &nr_bits);
		KUNIT_EXPECT_EQ_MSG(test, start, 0UL, "order %u", g);
		KUNIT_EXPECT_EQ_MSG(test, start % (BITS_PER_LONG << g), 0UL, "order %u", g);
		KUNIT_EXPECT_EQ_MSG(test, nr_bits, (1UL << (20 - g)) + 1,
				    "order %u", g);
	}
}

/* Allocate and free a block of every order; the bits follow. */
static unsigned int fpb_orders[NR_PAGE_ORDERS];

static const void *fpb_order_gen_params(const void *prev, char *desc)
{
	unsigned int order = prev ? *(const unsigned int *)prev + 1 : 0;

	if (order >= NR_PAGE_ORDERS)
		return NULL;
	fpb_orders[order] = order;
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "order %u", order);
	return &fpb_orders[order];
}

static void fpb_alloc_free_order_test(struct kunit *test)
{
	unsigned int order = *(const unsigned int *)test->param_value;
	struct page *page;

	page = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
	if (!page)
		kunit_skip(test, "no free block of order %u", order);
	expect_block_clear(test, page, order);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);

	__free_pages(page, order);
	drain_all_pages(page_zone(page));
	expect_bits_match_page(test, page);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

/* Split a block, free its pages one by one, watch them merge back. */
static void fpb_split_merge_test(struct kunit *test)
{
	const unsigned int order = 3, n = 1U << order;
	static const unsigned int free_order[] = { 5, 0, 7, 2, 1, 6, 3, 4 };
	struct page *page;
	unsigned int i;

	page = alloc_pages(GFP_KERNEL, order);
	KUNIT_ASSERT_NOT_NULL(test, page);
	split_page(page, order);
	for (i = 0; i < n; i++) {
		__free_page(page + free_order[i]);
		/* Straight to the buddy lists, so that halves can merge. */
		drain_all_pages(page_zone(page));
		KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	}
	/* Merged back: free again, so every bit of the block is set. */
	for (i = 0; i < n; i++) {
		expect_bits_match_page(test, page + i);
		KUNIT_EXPECT_TRUE_MSG(test, fpb_bit(page_to_pfn(page + i)),
				      "page %u of the merged block reads allocated", i);
	}
}

/* Per-cpu list pages count as allocated until drained. */
static void fpb_pcp_drain_test(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, page);
	__free_page(page);
	/* It goes to the head of this CPU's pcp list, not to the buddy. */
	KUNIT_EXPECT_FALSE_MSG(test, is_free_buddy_page(page),
			       "a freed order-0 page skipped the per-cpu list");
	KUNIT_EXPECT_FALSE(test, fpb_bit(page_to_pfn(page)));
	drain_all_pages(page_zone(page));
	expect_bits_match_page(test, page);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

/*
 * Tracking starts with the per-cpu lists drained: pages freed before count.
 * An order-3 block, which the per-cpu lists take too: once drained, only
 * an allocation that finds no smaller free block could take it again.
 */
static void fpb_start_drains_pcp_test(struct kunit *test)
{
	const unsigned int order = PAGE_ALLOC_COSTLY_ORDER;
	unsigned long pfn, i;
	struct page *page;

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
	page = alloc_pages(GFP_KERNEL, order);
	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	__free_pages(page, order);
	KUNIT_ASSERT_FALSE_MSG(test, is_free_buddy_page(page),
			       "a freed order-%u block skipped the per-cpu list", order);

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_ALWAYS), 0);
	expect_bits_match_page(test, page);
	for (i = 0; i < (1UL << order); i++)
		KUNIT_EXPECT_TRUE_MSG(test, fpb_bit(pfn + i),
				      "page %lu of a block freed before tracking started reads allocated",
				      i);
}

/* Whether @page heads a free block of the largest order; zone->lock held */
static bool fpb_is_free_max_block(struct page *page)
{
	lockdep_assert_held(&page_zone(page)->lock);
	return PageBuddy(page) && buddy_order(page) == MAX_PAGE_ORDER;
}

/*
 * A free block of the largest order at a known place: allocated and freed,
 * it goes straight back to the buddy lists (no per-cpu list holds that
 * order) and has no buddy to merge with.
 */
static struct page *fpb_free_max_block(struct kunit *test)
{
	/* Movable: an unmovable block would take a pageblock of the type. */
	struct page *page = alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, MAX_PAGE_ORDER);
	struct zone *zone;
	bool free;

	KUNIT_ASSERT_NOT_NULL_MSG(test, page, "no free block of order %u", MAX_PAGE_ORDER);
	zone = page_zone(page);
	__free_pages(page, MAX_PAGE_ORDER);
	spin_lock_irq(&zone->lock);
	free = fpb_is_free_max_block(page);
	spin_unlock_irq(&zone->lock);
	KUNIT_ASSERT_TRUE_MSG(test, free, "the freed block was taken at once");
	return page;
}

/*
 * __isolate_free_page() on the block of fpb_free_max_block(), zone->lock
 * held: only if it is still that free block, which an allocation on
 * another CPU may have taken since.
 */
static int fpb_isolate_max_block(struct page *page)
{
	if (!fpb_is_free_max_block(page))
		return 0;
	return __isolate_free_page(page, MAX_PAGE_ORDER);
}

/*
 * Compaction and free page reporting take whole free blocks off the lists
 * (__isolate_free_page()) and put them back: taken, their bits are clear.
 */
static void fpb_isolate_free_page_test(struct kunit *test)
{
	struct page *page = fpb_free_max_block(test);
	unsigned long pfn = page_to_pfn(page), isolated, reads_free = 0, i;
	struct zone *zone = page_zone(page);

	spin_lock_irq(&zone->lock);
	isolated = fpb_isolate_max_block(page);
	if (isolated) {
		for (i = 0; i < MAX_ORDER_NR_PAGES; i++)
			reads_free += fpb_bit(pfn + i);
		__putback_isolated_page(page, MAX_PAGE_ORDER,
					get_pageblock_migratetype(page));
	}
	spin_unlock_irq(&zone->lock);
	KUNIT_EXPECT_EQ_MSG(test, isolated, MAX_ORDER_NR_PAGES,
			    "the block is below the watermark");
	KUNIT_EXPECT_EQ_MSG(test, reads_free, 0UL, "pages of the isolated block read free");
	expect_bits_match_page(test, page);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

#ifdef CONFIG_MEMORY_ISOLATION
/*
 * Isolating one pageblock of a larger free block splits the block into
 * pageblocks (move_freepages_block_isolate(), which finds the block from
 * its first or from a later pageblock).  With a granule larger than a
 * pageblock, no free block of a granule is left: its bit must clear, and
 * come back when the isolation is undone and the halves merge.
 */
static const char * const fpb_isolated_blocks[] = { "first", "second" };

static void fpb_isolated_block_desc(const char * const *which, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s pageblock isolated", *which);
}

KUNIT_ARRAY_PARAM(fpb_isolate_split, fpb_isolated_blocks, fpb_isolated_block_desc);

static void fpb_isolate_split_test(struct kunit *test)
{
	bool second = !strcmp(*(const char * const *)test->param_value, "second");
	unsigned long pfn, start;
	struct page *page;
	int mt;

	if (pageblock_order >= MAX_PAGE_ORDER)
		kunit_skip(test, "pageblocks are blocks of the largest order here");
	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_granule(MAX_PAGE_ORDER), 0);
	page = fpb_free_max_block(test);
	pfn = page_to_pfn(page);
	start = pfn + (second ? pageblock_nr_pages : 0);
	KUNIT_EXPECT_TRUE(test, fpb_bit(pfn));
	mt = get_pageblock_migratetype(pfn_to_page(start));
	KUNIT_ASSERT_EQ(test, start_isolate_page_range(start, start + pageblock_nr_pages,
						       mt, 0, GFP_KERNEL), 0);
	/* No assertion may end the case while the pageblock is isolated. */
	KUNIT_EXPECT_FALSE_MSG(test, fpb_bit(pfn),
			       "a block split into pageblocks reads free at granule order %u",
			       MAX_PAGE_ORDER);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	undo_isolate_page_range(start, start + pageblock_nr_pages, mt);

	expect_bits_match_page(test, page);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}
#endif

#ifdef CONFIG_MEMORY_FAILURE
/*
 * Memory failure takes one page off the middle of a free block
 * (take_page_off_buddy()): the rest stays free in smaller buddies.
 */
static void fpb_take_page_off_buddy_test(struct kunit *test)
{
	struct page *block = fpb_free_max_block(test), *page = block + 5;
	unsigned long pfn = page_to_pfn(block), i;

	KUNIT_ASSERT_TRUE(test, take_page_off_buddy(page));
	for (i = 0; i < 8; i++)
		KUNIT_EXPECT_EQ_MSG(test, fpb_bit(pfn + i), i != 5, "page %lu", i);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);

	/* Back as unpoison_memory() puts it: with a reference to drop. */
	set_page_refcounted(page);
	put_page_back_buddy(page);
	expect_bits_match_page(test, page);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}
#endif

#ifdef CONFIG_DEBUG_VM
/*
 * A zone->lock section that clears bits ends with one
 * free_page_bitmap_fence(), not one barrier per clear.  DEBUG_VM notes a
 * clear in a per-cpu flag that the fence resets: right after each path
 * that clears, on the CPU that ran it, nothing may be left unfenced.
 */
enum fpb_fence_path {
	FPB_FENCE_REFILL,
	FPB_FENCE_BUDDY,
	FPB_FENCE_ISOLATE,
	FPB_FENCE_ISOLATE_FIRST,
	FPB_FENCE_ISOLATE_SECOND,
	FPB_FENCE_TAKE_OFF,
};

static const char * const fpb_fence_paths[] = {
	[FPB_FENCE_REFILL] = "order-0 refill of the per-cpu list (rmqueue_bulk)",
	[FPB_FENCE_BUDDY] = "order-4 allocation (rmqueue_buddy)",
	[FPB_FENCE_ISOLATE] = "isolate a free block (__isolate_free_page)",
	[FPB_FENCE_ISOLATE_FIRST] = "isolate the first pageblock of a free block",
	[FPB_FENCE_ISOLATE_SECOND] = "isolate a later pageblock of a free block",
	[FPB_FENCE_TAKE_OFF] = "take a page off the buddy (take_page_off_buddy)",
};

static void fpb_fence_desc(const char * const *path, char *desc)
{
	strscpy(desc, *path, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(fpb_fence, fpb_fence_paths, fpb_fence_desc);

static void fpb_fence_test(struct kunit *test)
{
	enum fpb_fence_path path = (const char * const *)test->param_value - fpb_fence_paths;
	unsigned long start = 0;
	struct page *page = NULL;
	bool isolating = path == FPB_FENCE_ISOLATE_FIRST ||
			 path == FPB_FENCE_ISOLATE_SECOND;
	bool ran = false, unfenced;
	int mt = 0;

	if (isolating && (!IS_ENABLED(CONFIG_MEMORY_ISOLATION) ||
			  pageblock_order >= MAX_PAGE_ORDER))
		kunit_skip(test, "needs CONFIG_MEMORY_ISOLATION and blocks above a pageblock");
	if (path == FPB_FENCE_TAKE_OFF && !IS_ENABLED(CONFIG_MEMORY_FAILURE))
		kunit_skip(test, "needs CONFIG_MEMORY_FAILURE");
	if (path >= FPB_FENCE_ISOLATE) {
		page = fpb_free_max_block(test);
		start = page_to_pfn(page) +
			(path == FPB_FENCE_ISOLATE_SECOND ? pageblock_nr_pages : 0);
		mt = get_pageblock_migratetype(pfn_to_page(start));
	}
	/* The flag is per CPU: run the path and read it on one CPU. */
	migrate_disable();
	this_cpu_write(free_page_bitmap_unfenced, false);
	switch (path) {
	case FPB_FENCE_REFILL:
		drain_local_pages(NULL);
		page = alloc_page(GFP_KERNEL);
		ran = !!page;
		break;
	case FPB_FENCE_BUDDY:
		page = alloc_pages(GFP_KERNEL | __GFP_NOWARN, 4);
		ran = !!page;
		break;
	case FPB_FENCE_ISOLATE:
		spin_lock_irq(&page_zone(page)->lock);
		ran = fpb_isolate_max_block(page);
		if (ran)
			__putback_isolated_page(page, MAX_PAGE_ORDER, mt);
		spin_unlock_irq(&page_zone(page)->lock);
		break;
	case FPB_FENCE_ISOLATE_FIRST:
	case FPB_FENCE_ISOLATE_SECOND:
		ran = IS_ENABLED(CONFIG_MEMORY_ISOLATION) &&
		      !start_isolate_page_range(start, start + pageblock_nr_pages,
						mt, 0, GFP_KERNEL);
		break;
	case FPB_FENCE_TAKE_OFF:
#ifdef CONFIG_MEMORY_FAILURE
		ran = take_page_off_buddy(page + 5);
#endif
		break;
	}
	unfenced = this_cpu_read(free_page_bitmap_unfenced);
	migrate_enable();

	/* Undo what the path did */
	if (ran && path == FPB_FENCE_REFILL)
		__free_page(page);
	if (ran && path == FPB_FENCE_BUDDY)
		__free_pages(page, 4);
	if (IS_ENABLED(CONFIG_MEMORY_ISOLATION) && ran && isolating)
		undo_isolate_page_range(start, start + pageblock_nr_pages, mt);
#ifdef CONFIG_MEMORY_FAILURE
	if (ran && path == FPB_FENCE_TAKE_OFF) {
		set_page_refcounted(page + 5);
		put_page_back_buddy(page + 5);
	}
#endif

	KUNIT_ASSERT_TRUE_MSG(test, ran, "%s did not happen", fpb_fence_paths[path]);
	KUNIT_EXPECT_FALSE_MSG(test, unfenced, "%s left cleared bits unfenced",
			       fpb_fence_paths[path]);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}
#endif

/* Pageblocks of type @mt in populated zones */
static unsigned long fpb_pageblocks_of_type(int mt)
{
	unsigned long pfn, nr = 0;
	struct zone *zone;

	for_each_populated_zone(zone) {
		for (pfn = ALIGN(zone->zone_start_pfn, pageblock_nr_pages);
		     pfn < zone_end_pfn(zone); pfn += pageblock_nr_pages) {
			struct page *page = pfn_to_online_page(pfn);

			if (page && page_zone(page) == zone &&
			    get_pageblock_migratetype(page) == mt)
				nr++;
		}
	}
	return nr;
}

/*
 * An unmovable allocation that finds no unmovable free page takes a free
 * block of another type, the largest there is, and splits it
 * (try_to_steal_block()).  Allocate unmovable pages until that happens:
 * every page must read allocated as it is handed out.
 */
static void fpb_steal_block_test(struct kunit *test)
{
	unsigned long before = fpb_pageblocks_of_type(MIGRATE_UNMOVABLE);
	unsigned long nr = 0, after_steal = 0, reads_free = 0;
	/* Up to 256 MiB; after the steal, a few per-cpu batches more. */
	const unsigned long max = SZ_256M >> PAGE_SHIFT, more = 1024;
	struct page *page, *next;
	LIST_HEAD(pages);

	while (nr < max && after_steal < more) {
		page = alloc_page(GFP_KERNEL | __GFP_NOWARN | __GFP_NORETRY);
		if (!page)
			break;
		reads_free += fpb_bit(page_to_pfn(page));
		list_add(&page->lru, &pages);
		nr++;
		if (after_steal || (nr % 64 == 0 &&
				    fpb_pageblocks_of_type(MIGRATE_UNMOVABLE) > before))
			after_steal++;
	}
	list_for_each_entry_safe(page, next, &pages, lru)
		__free_page(page);

	kunit_info(test, "%lu unmovable pages allocated, %lu after the steal", nr, after_steal);
	KUNIT_EXPECT_GT_MSG(test, after_steal, 0UL,
			    "no pageblock was taken for unmovable pages");
	KUNIT_EXPECT_EQ(test, reads_free, 0UL);
	drain_all_pages(NULL);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

/*
 * The strongest global check: under zone->lock, the pages the set bits
 * stand for are exactly the pages on free lists of order >= granule.
 */
static void expect_weight_matches_free_lists(struct kunit *test)
{
	struct zone *zone;

	for_each_populated_zone(zone) {
		struct free_page_bitmap_zone *fpz;
		unsigned long listed = 0, tracked;
		unsigned int order;

		spin_lock_irq(&zone->lock);
		fpz = zone->free_page_bitmap;
		if (!fpz) {
			spin_unlock_irq(&zone->lock);
			KUNIT_FAIL(test, "zone %s has no bitmap", zone->name);
			continue;
		}
		for (order = fpz->granule_order; order < NR_PAGE_ORDERS; order++)
			listed += zone->free_area[order].nr_free << order;
		tracked = bitmap_weight(fpz->bits, fpz->nr_bits) << fpz->granule_order;
		spin_unlock_irq(&zone->lock);
		KUNIT_EXPECT_EQ_MSG(test, tracked, listed, "zone %s", zone->name);
	}
}

static const unsigned int fpb_granules[] = { 0, 3, 9, MAX_PAGE_ORDER };

static void fpb_granule_desc(const unsigned int *g, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "granule order %u", *g);
}

KUNIT_ARRAY_PARAM(fpb_granule, fpb_granules, fpb_granule_desc);
/* Granules of more than a page */
static const unsigned int fpb_coarse_granules[] = { 3, 9, MAX_PAGE_ORDER };

KUNIT_ARRAY_PARAM(fpb_coarse_granule, fpb_coarse_granules, fpb_granule_desc);

static void fpb_weight_matches_free_lists_test(struct kunit *test)
{
	unsigned int g = *(const unsigned int *)test->param_value;

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_granule(g), 0);
	expect_weight_matches_free_lists(test);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

/*
 * At granule order g > 0, a granule half of which is free, in a free block
 * of order g - 1, is not free: its bit stays clear when that half is freed
 * and merged, and is set once the other half joins it.
 */
static void fpb_granule_half_free_test(struct kunit *test)
{
	unsigned int g = *(const unsigned int *)test->param_value;
	unsigned long half = 1UL << (g - 1), i;
	struct page *page;

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_granule(g), 0);
	page = alloc_pages(GFP_KERNEL | __GFP_NOWARN, g);
	if (!page)
		kunit_skip(test, "no free block of order %u", g);
	split_page(page, g);
	for (i = half; i < 2 * half; i++)
		__free_page(page + i);
	drain_all_pages(page_zone(page));
	KUNIT_EXPECT_FALSE_MSG(test, fpb_bit(page_to_pfn(page)),
			       "a granule of order %u reads free with half of it allocated", g);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);

	for (i = 0; i < half; i++)
		__free_page(page + i);
	drain_all_pages(page_zone(page));
	expect_bits_match_page(test, page);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

/* verify must be able to fail: a bit set for an allocated page. */
static void fpb_verify_detects_wrong_bit_test(struct kunit *test)
{
	struct page *page = alloc_page(GFP_KERNEL);
	struct zone *zone;
	struct free_page_bitmap_zone *fpz;
	unsigned long idx;

	KUNIT_ASSERT_NOT_NULL(test, page);
	zone = page_zone(page);
	spin_lock_irq(&zone->lock);
	fpz = zone->free_page_bitmap;
	idx = page_to_pfn(page) - fpz->start_pfn;
	__set_bit(idx, fpz->bits);
	spin_unlock_irq(&zone->lock);

	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 1);

	spin_lock_irq(&zone->lock);
	__clear_bit(idx, fpz->bits);
	spin_unlock_irq(&zone->lock);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	__free_page(page);
}

/* Kthreads that allocate and free blocks of random orders as fast as they can. */
struct fpb_churn {
	struct task_struct *task;
	unsigned long rounds;
};

/* The running churners, allocated per case */
static struct fpb_churn *fpb_churners;
/* Check each new block's bits (only while no rebuild frees the bitmap) */
static bool fpb_check_allocations;
/* Pages that read free right after they were allocated */
static atomic_long_t fpb_reads_free;

static int fpb_churn_fn(void *arg)
{
	struct fpb_churn *churn = arg;
	struct page *held[16] = { };
	unsigned int held_order[16] = { };
	unsigned long p;
	unsigned int i;

	while (!kthread_should_stop()) {
		i = get_random_u32_below(ARRAY_SIZE(held));
		if (held[i]) {
			__free_pages(held[i], held_order[i]);
			held[i] = NULL;
		} else {
			/* Mostly small blocks, now and then a pageblock. */
			held_order[i] = get_random_u32_below(16) ?
					get_random_u32_below(5) : pageblock_order;
			held[i] = alloc_pages(GFP_KERNEL | __GFP_NOWARN,
					      held_order[i]);
			for (p = 0; held[i] && READ_ONCE(fpb_check_allocations) &&
			     p < (1UL << held_order[i]); p++)
				if (fpb_bit(page_to_pfn(held[i]) + p))
					atomic_long_inc(&fpb_reads_free);
		}
		churn->rounds++;
		cond_resched();
	}
	for (i = 0; i < ARRAY_SIZE(held); i++)
		if (held[i])
			__free_pages(held[i], held_order[i]);
	return 0;
}

static unsigned long fpb_stop_churn(struct kunit *test, unsigned int nr)
{
	unsigned long rounds = 0;
	unsigned int i;

	for (i = 0; i < nr; i++) {
		if (!IS_ERR_OR_NULL(fpb_churners[i].task))
			kthread_stop(fpb_churners[i].task);
		fpb_churners[i].task = NULL;
		rounds += fpb_churners[i].rounds;
	}
	return rounds;
}

static void fpb_start_churn(struct kunit *test, unsigned int nr)
{
	unsigned int i;

	fpb_churners = kunit_kcalloc(test, nr, sizeof(*fpb_churners), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, fpb_churners);
	for (i = 0; i < nr; i++) {
		fpb_churners[i].task = kthread_run(fpb_churn_fn, &fpb_churners[i],
						   "fpb_churn/%u", i);
		if (IS_ERR(fpb_churners[i].task)) {
			fpb_stop_churn(test, i);
			KUNIT_FAIL_AND_ABORT(test, "cannot start kthread %u", i);
		}
	}
}

static void fpb_concurrent_churn_test(struct kunit *test)
{
	unsigned int nr = 2 * num_online_cpus(), round;
	unsigned long rounds;

	if (num_online_cpus() < 2)
		kunit_skip(test, "needs an SMP guest, this one has one CPU");
	fpb_start_churn(test, nr);

	/* Rebuild, re-enable and verify while the churn goes on. */
	for (round = 0; round < 4; round++) {
		KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
		KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(round % 2 ? 2 : 0), 0);
		KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
		KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
		msleep(20);
		KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_ALWAYS), 0);
		KUNIT_EXPECT_TRUE(test, free_page_bitmap_active());
		KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	}

	rounds = fpb_stop_churn(test, nr);
	kunit_info(test, "%u kthreads, %lu allocations and frees", nr, rounds);
	KUNIT_EXPECT_GT(test, rounds, 0UL);
	drain_all_pages(NULL);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	expect_weight_matches_free_lists(test);
}

/*
 * What a host relies on: a block's bits read clear, without any lock, as
 * soon as the allocator hands it out, while other CPUs allocate and free.
 */
static void fpb_alloc_reads_clear_under_churn_test(struct kunit *test)
{
	unsigned int nr = 2 * num_online_cpus();
	unsigned long rounds;

	if (num_online_cpus() < 2)
		kunit_skip(test, "needs an SMP guest, this one has one CPU");
	atomic_long_set(&fpb_reads_free, 0);
	WRITE_ONCE(fpb_check_allocations, true);
	fpb_start_churn(test, nr);
	msleep(1000);
	rounds = fpb_stop_churn(test, nr);
	WRITE_ONCE(fpb_check_allocations, false);
	kunit_info(test, "%u kthreads, %lu allocations and frees", nr, rounds);
	KUNIT_EXPECT_GT(test, rounds, 0UL);
	KUNIT_EXPECT_EQ(test, atomic_long_read(&fpb_reads_free), 0);
}

/* Granule changes rebuild; a bad granule changes nothing. */
static void fpb_granule_change_test(struct kunit *test)
{
	unsigned long bytes = free_page_bitmap_read_state().stats.bitmap_bytes;
	unsigned long rebuilds = free_page_bitmap_read_state().stats.rebuild_count;

	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(MAX_PAGE_ORDER + 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().granule_order, 0);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().stats.rebuild_count, rebuilds);

	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(4), 0);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().granule_order, 4);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().stats.rebuild_count, rebuilds + 1);
	KUNIT_EXPECT_LT(test, free_page_bitmap_read_state().stats.bitmap_bytes, bytes);
	KUNIT_EXPECT_LE(test, free_page_bitmap_read_state().stats.last_rebuild_us,
			free_page_bitmap_read_state().stats.max_rebuild_us);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	expect_weight_matches_free_lists(test);

	/* The same granule again is not a rebuild. */
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(4), 0);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().stats.rebuild_count, rebuilds + 1);
}

/* Disabling detaches every zone and turns the hooks off. */
static void fpb_disable_test(struct kunit *test)
{
	struct zone *zone;

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
	KUNIT_EXPECT_FALSE(test, free_page_bitmap_active());
	KUNIT_EXPECT_FALSE(test, static_key_enabled(&free_page_bitmap_enabled));
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().stats.bitmap_bytes, 0);
	KUNIT_EXPECT_STREQ(test, free_page_bitmap_read_state().stats.inactive_reason, "disabled");
	KUNIT_EXPECT_EQ(test, free_page_bitmap_tracked_pages(), 0);
	for_each_zone(zone)
		KUNIT_EXPECT_NULL(test, zone->free_page_bitmap);
}

/*
 * A node whose last memory is removed goes offline, and for_each_zone()
 * skips its zones from then on, although they still point at the bitmaps
 * of the set built while it was online.  A rebuild and a teardown must
 * detach them all the same: re-adding memory to the node would otherwise
 * write through freed bits.  Memory cannot be hot-removed from here, so
 * the case takes a memory-only node offline as try_offline_node() does
 * (under mem_hotplug_begin()), just for the rebuild or teardown: its zones
 * keep their free pages, and no CPU allocates from a CPU-less node unless
 * its own node runs short.  make kunit boots a guest with such a node.
 */
static const char * const fpb_offline_node_ops[] = { "rebuild", "teardown" };

static void fpb_offline_node_desc(const char * const *op, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s while a node is offline", *op);
}

KUNIT_ARRAY_PARAM(fpb_offline_node, fpb_offline_node_ops, fpb_offline_node_desc);

/* A node with memory and no CPU, or NUMA_NO_NODE */
static int fpb_memory_only_node(void)
{
	int nid;

	for_each_node_state(nid, N_MEMORY)
		if (!node_state(nid, N_CPU) && nid != first_online_node)
			return nid;
	return NUMA_NO_NODE;
}

static void fpb_set_node_online(int nid, bool online)
{
	mem_hotplug_begin();
	if (online)
		node_set_online(nid);
	else
		node_set_offline(nid);
	mem_hotplug_done();
}

/* What @zone points at, read under its lock as the hooks read it */
static struct free_page_bitmap_zone *fpb_zone_bitmap(struct zone *zone)
{
	struct free_page_bitmap_zone *fpz;

	spin_lock_irq(&zone->lock);
	fpz = zone->free_page_bitmap;
	spin_unlock_irq(&zone->lock);
	return fpz;
}

/* Each zone of @nid has a bitmap if and only if it is tracked. */
static unsigned int expect_node_attached(struct kunit *test, int nid)
{
	unsigned int z, attached = 0;

	for (z = 0; z < MAX_NR_ZONES; z++) {
		struct zone *zone = &NODE_DATA(nid)->node_zones[z];
		bool has = fpb_zone_bitmap(zone);

		attached += has;
		KUNIT_EXPECT_EQ_MSG(test, has, free_page_bitmap_tracks_zone(zone),
				    "node %d zone %s", nid, zone->name);
	}
	return attached;
}

/* While offline: a rebuild at another granule, or tracking off; then back. */
static int fpb_offline_node_op(bool teardown, bool offline)
{
	if (teardown)
		return free_page_bitmap_set_mode(offline ? FREE_PAGE_BITMAP_NEVER :
						 FREE_PAGE_BITMAP_ALWAYS);
	return free_page_bitmap_set_granule(offline ? 2 : 0);
}

static void fpb_offline_node_test(struct kunit *test)
{
	bool teardown = !strcmp(*(const char * const *)test->param_value, "teardown");
	struct free_page_bitmap_zone *old[MAX_NR_ZONES], *fpz;
	int nid = fpb_memory_only_node();
	struct zone *zone;
	unsigned int z;

	if (nid == NUMA_NO_NODE)
		kunit_skip(test, "needs a NUMA node with memory and no CPU");
	KUNIT_ASSERT_GT_MSG(test, expect_node_attached(test, nid), 0,
			    "node %d has no bitmap", nid);
	for (z = 0; z < MAX_NR_ZONES; z++)
		old[z] = fpb_zone_bitmap(&NODE_DATA(nid)->node_zones[z]);

	/* No assertion may end the case while the node is offline. */
	fpb_set_node_online(nid, false);
	KUNIT_EXPECT_EQ(test, fpb_offline_node_op(teardown, true), 0);
	for (z = 0; z < MAX_NR_ZONES; z++) {
		zone = &NODE_DATA(nid)->node_zones[z];
		fpz = fpb_zone_bitmap(zone);
		/* Skipped by the new set: no bitmap, certainly not the old one. */
		KUNIT_EXPECT_NULL_MSG(test, fpz, "offline node %d zone %s points at %s bitmap",
				      nid, zone->name, fpz == old[z] ? "its freed" : "a");
	}
	for_each_zone(zone)
		for (z = 0; z < MAX_NR_ZONES; z++)
			KUNIT_EXPECT_TRUE_MSG(test, !old[z] || fpb_zone_bitmap(zone) != old[z],
					      "zone %s points at a freed bitmap", zone->name);
	fpb_set_node_online(nid, true);

	/* Back online, as when memory is added again: a build covers it. */
	KUNIT_ASSERT_EQ(test, fpb_offline_node_op(teardown, false), 0);
	expect_node_attached(test, nid);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	expect_weight_matches_free_lists(test);
}

/* A client that records what it is told, and where. */
struct fpb_test_client {
	struct free_page_bitmap_client client;
	unsigned int publishes, invalidates;
	/* publishes that did not run from a work item */
	unsigned int publishes_inline;
	unsigned long seq;
	const struct free_page_bitmap_layout *layout;
};

static void fpb_test_invalidate(struct free_page_bitmap_client *client)
{
	struct fpb_test_client *c = container_of(client, struct fpb_test_client, client);

	c->invalidates++;
	c->layout = NULL;
}

static void fpb_test_publish(struct free_page_bitmap_client *client,
			     const struct free_page_bitmap_layout *layout)
{
	struct fpb_test_client *c = container_of(client, struct fpb_test_client, client);

	c->publishes++;
	/* Not under the callers' CPU and memory hotplug locks: a worker */
	c->publishes_inline += !current_work();
	c->layout = layout;
	c->seq = layout->seq;
}

static void fpb_test_unregister(void *client)
{
	free_page_bitmap_unregister(client);
}

/*
 * Registered, proposing @granule_order, until the case ends, also when an
 * assertion ends it early; returns once a published layout has reached it.
 */
static struct fpb_test_client *
fpb_test_register_granule(struct kunit *test, unsigned int granule_order)
{
	struct fpb_test_client *c = kunit_kzalloc(test, sizeof(*c), GFP_KERNEL);
	int err;

	KUNIT_ASSERT_NOT_NULL(test, c);
	c->client.granule_order = granule_order;
	c->client.invalidate = fpb_test_invalidate;
	c->client.publish = fpb_test_publish;
	err = free_page_bitmap_register(&c->client);
	if (err == -EBUSY)
		kunit_skip(test, "another client (a balloon device?) is registered");
	KUNIT_ASSERT_EQ(test, err, 0);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, fpb_test_unregister,
							&c->client), 0);
	free_page_bitmap_flush_client();
	return c;
}

static struct fpb_test_client *fpb_test_register(struct kunit *test)
{
	return fpb_test_register_granule(test, free_page_bitmap_read_state().granule_order);
}

/*
 * A host START drains the per-cpu lists also when tracking is on already
 * (the suite's "always"), where no build does: a block freed meanwhile
 * reads free.
 */
static void fpb_host_start_drains_pcp_test(struct kunit *test)
{
	const unsigned int order = PAGE_ALLOC_COSTLY_ORDER;
	struct fpb_test_client *c = fpb_test_register(test);
	unsigned long pfn, i;
	struct page *page;

	/* Movable: fewer allocations of this order would take it back. */
	page = alloc_pages(GFP_HIGHUSER_MOVABLE, order);
	KUNIT_ASSERT_NOT_NULL(test, page);
	pfn = page_to_pfn(page);
	__free_pages(page, order);
	if (is_free_buddy_page(page))
		kunit_skip(test, "the freed order-%u block skipped the per-cpu list", order);
	KUNIT_EXPECT_FALSE(test, fpb_bit(pfn));

	free_page_bitmap_host_request(&c->client, true);
	if (page_count(page))
		kunit_skip(test, "the block was allocated again before the START");
	for (i = 0; i < (1UL << order); i++) {
		expect_bits_match_page(test, page + i);
		KUNIT_EXPECT_TRUE_MSG(test, fpb_bit(pfn + i),
				      "page %lu of a block on a per-cpu list at the host's START reads allocated",
				      i);
	}
	free_page_bitmap_host_request(&c->client, false);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
}

/*
 * The client's proposed granule is used when it registers, unless the
 * admin chose one, which also outlasts the client; "auto" hands it back.
 */
static void fpb_client_granule_test(struct kunit *test)
{
	struct fpb_test_client *c;

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_granule(FREE_PAGE_BITMAP_GRANULE_AUTO), 0);
	c = fpb_test_register_granule(test, 3);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_read_state().granule_order, 3);
	KUNIT_EXPECT_TRUE(test, free_page_bitmap_read_state().granule_auto);
	KUNIT_ASSERT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, c->layout->granule_order, 3);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);

	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(1), 0);
	KUNIT_EXPECT_FALSE(test, free_page_bitmap_read_state().granule_auto);
	kunit_release_action(test, fpb_test_unregister, &c->client);
	c = fpb_test_register_granule(test, 5);
	KUNIT_ASSERT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, c->layout->granule_order, 1);

	/* Bad input changes nothing */
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(-2), -EINVAL);
	KUNIT_EXPECT_FALSE(test, free_page_bitmap_read_state().granule_auto);

	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(FREE_PAGE_BITMAP_GRANULE_AUTO), 0);
	free_page_bitmap_flush_client();
	KUNIT_ASSERT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, c->layout->granule_order, 5);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);
	expect_weight_matches_free_lists(test);

	/* Larger than the largest buddy block: the largest there is */
	kunit_release_action(test, fpb_test_unregister, &c->client);
	c = fpb_test_register_granule(test, MAX_PAGE_ORDER + 5);
	KUNIT_ASSERT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, c->layout->granule_order, MAX_PAGE_ORDER);
}

static void fpb_client_sees_changes_test(struct kunit *test)
{
	struct fpb_test_client *c = fpb_test_register(test);
	struct free_page_bitmap_client other = {
		.invalidate = fpb_test_invalidate, .publish = fpb_test_publish,
	};
	unsigned long seq;

	/* Active already: the layout comes from the work item, with an even seq. */
	KUNIT_EXPECT_EQ(test, c->publishes, 1);
	KUNIT_ASSERT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, c->seq % 2, 0);
	seq = c->seq;

	KUNIT_EXPECT_EQ(test, free_page_bitmap_register(&other), -EBUSY);

	/* A rebuild: "stop trusting" before it returns, then the new layout. */
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(1), 0);
	KUNIT_EXPECT_EQ(test, c->invalidates, 1);
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_EQ(test, c->publishes, 2);
	KUNIT_ASSERT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, c->layout->granule_order, 1);
	KUNIT_EXPECT_EQ(test, c->seq, seq + 2);

	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
	KUNIT_EXPECT_EQ(test, c->invalidates, 2);
	KUNIT_EXPECT_NULL(test, c->layout);
	/* Already off: nothing more to say. */
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_EQ(test, c->invalidates, 2);
	KUNIT_EXPECT_EQ(test, c->publishes, 2);

	kunit_release_action(test, fpb_test_unregister, &c->client);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_ALWAYS), 0);
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_EQ(test, c->invalidates + c->publishes, 4);
	KUNIT_EXPECT_EQ(test, c->publishes_inline, 0);
}

/*
 * A layout invalidated before the work item runs never reaches the
 * client: with the work held back, change the granule and turn tracking
 * off, then let it run.
 */
static void fpb_client_skips_stale_layout_test(struct kunit *test)
{
	struct fpb_test_client *c = fpb_test_register(test);
	unsigned int before = c->publishes;

	free_page_bitmap_hold_client(true);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_granule(2), 0);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
	free_page_bitmap_hold_client(false);
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_EQ(test, c->publishes, before);
	KUNIT_EXPECT_EQ(test, c->invalidates, 2);
	KUNIT_EXPECT_NULL(test, c->layout);
}

/*
 * A new client gets the current layout even though the last one had it,
 * and a client that leaves before the work runs is never called.
 */
static void fpb_client_replaced_test(struct kunit *test)
{
	struct fpb_test_client *a = fpb_test_register(test), *b;

	KUNIT_EXPECT_EQ(test, a->publishes, 1);
	kunit_release_action(test, fpb_test_unregister, &a->client);
	b = fpb_test_register(test);
	KUNIT_EXPECT_EQ(test, b->publishes, 1);
	KUNIT_EXPECT_NOT_NULL(test, b->layout);
	kunit_release_action(test, fpb_test_unregister, &b->client);

	free_page_bitmap_hold_client(true);
	KUNIT_ASSERT_EQ(test, free_page_bitmap_register(&a->client), 0);
	free_page_bitmap_unregister(&a->client);
	free_page_bitmap_hold_client(false);
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_EQ(test, a->publishes, 1);
	KUNIT_EXPECT_EQ(test, a->publishes_inline + b->publishes_inline, 0);
}

/* In "host" mode tracking follows the client's host. */
static void fpb_host_request_test(struct kunit *test)
{
	struct fpb_test_client *c;

	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_HOST), 0);
	KUNIT_EXPECT_FALSE(test, free_page_bitmap_active());
	c = fpb_test_register(test);
	KUNIT_EXPECT_EQ(test, c->publishes + c->invalidates, 0);

	free_page_bitmap_host_request(&c->client, true);
	KUNIT_EXPECT_TRUE(test, free_page_bitmap_active());
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_EQ(test, c->publishes, 1);
	KUNIT_EXPECT_NOT_NULL(test, c->layout);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_verify(), 0);

	free_page_bitmap_host_request(&c->client, false);
	KUNIT_EXPECT_FALSE(test, free_page_bitmap_active());
	KUNIT_EXPECT_EQ(test, c->invalidates, 1);
	KUNIT_EXPECT_NULL(test, c->layout);
	KUNIT_EXPECT_STREQ(test, free_page_bitmap_read_state().stats.inactive_reason,
			   "waiting for the host");

	/* "never" overrides the host. */
	KUNIT_ASSERT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_NEVER), 0);
	free_page_bitmap_host_request(&c->client, true);
	free_page_bitmap_flush_client();
	KUNIT_EXPECT_FALSE(test, free_page_bitmap_active());
	KUNIT_EXPECT_EQ(test, c->publishes + c->invalidates, 2);
}

/* What a client is given is the bitmaps the hooks write. */
static void fpb_layout_test(struct kunit *test)
{
	struct fpb_test_client *c = fpb_test_register(test);
	const struct free_page_bitmap_layout *layout = c->layout;
	unsigned int i, nr = 0;
	struct zone *zone;

	KUNIT_ASSERT_NOT_NULL(test, layout);
	for_each_zone(zone)
		nr += free_page_bitmap_tracks_zone(zone);
	KUNIT_EXPECT_EQ(test, layout->nr_ranges, nr);

	/* Ranges come in zone order, one per tracked zone. */
	i = 0;
	for_each_zone(zone) {
		const struct free_page_bitmap_range *r = &layout->ranges[i];
		struct free_page_bitmap_zone *fpz = zone->free_page_bitmap;
		unsigned long start, nr_bits;

		if (!free_page_bitmap_tracks_zone(zone) || i >= layout->nr_ranges)
			continue;
		i++;
		KUNIT_ASSERT_NOT_NULL(test, fpz);
		free_page_bitmap_span(zone, layout->granule_order, &start, &nr_bits);
		KUNIT_EXPECT_EQ(test, r->start_pfn, start);
		KUNIT_EXPECT_EQ(test, r->nr_bits, nr_bits);
		/* The bits the hooks write, page aligned for the device */
		KUNIT_EXPECT_PTR_EQ_MSG(test, r->bits, fpz->bits, "zone %s", zone->name);
		KUNIT_EXPECT_TRUE(test, PAGE_ALIGNED(r->bits));
	}
}

static struct kunit_case free_page_bitmap_cases[] = {
	KUNIT_CASE_PARAM(fpb_span_test, fpb_span_gen_params),
	KUNIT_CASE(fpb_span_every_order_test),
	KUNIT_CASE_PARAM(fpb_alloc_free_order_test, fpb_order_gen_params),
	KUNIT_CASE(fpb_split_merge_test),
	KUNIT_CASE(fpb_pcp_drain_test),
	KUNIT_CASE(fpb_start_drains_pcp_test),
	KUNIT_CASE(fpb_host_start_drains_pcp_test),
	KUNIT_CASE(fpb_isolate_free_page_test),
#ifdef CONFIG_MEMORY_ISOLATION
	KUNIT_CASE_PARAM(fpb_isolate_split_test, fpb_isolate_split_gen_params),
#endif
#ifdef CONFIG_MEMORY_FAILURE
	KUNIT_CASE(fpb_take_page_off_buddy_test),
#endif
	KUNIT_CASE(fpb_steal_block_test),
#ifdef CONFIG_DEBUG_VM
	KUNIT_CASE_PARAM(fpb_fence_test, fpb_fence_gen_params),
#endif
	KUNIT_CASE_PARAM(fpb_weight_matches_free_lists_test, fpb_granule_gen_params),
	KUNIT_CASE_PARAM(fpb_granule_half_free_test, fpb_coarse_granule_gen_params),
	KUNIT_CASE(fpb_verify_detects_wrong_bit_test),
	KUNIT_CASE_SLOW(fpb_concurrent_churn_test),
	KUNIT_CASE_SLOW(fpb_alloc_reads_clear_under_churn_test),
	KUNIT_CASE(fpb_granule_change_test),
	KUNIT_CASE(fpb_disable_test),
	KUNIT_CASE_PARAM(fpb_offline_node_test, fpb_offline_node_gen_params),
	KUNIT_CASE(fpb_client_sees_changes_test),
	KUNIT_CASE(fpb_client_skips_stale_layout_test),
	KUNIT_CASE(fpb_client_replaced_test),
	KUNIT_CASE(fpb_client_granule_test),
	KUNIT_CASE(fpb_host_request_test),
	KUNIT_CASE(fpb_layout_test),
	{}
};

static struct kunit_suite free_page_bitmap_suite = {
	.name = "free_page_bitmap",
	.init = fpb_test_init,
	.exit = fpb_test_exit,
	.test_cases = free_page_bitmap_cases,
};

/*
 * Skipped pages reach the destination with stale content, so features
 * that rely on free page content must keep tracking off: booted with
 * init_on_free=1 or page_poison=1 (make kunit boots this suite once with
 * each), a request to track is refused and says why.  In any other boot
 * the same request must be granted: the refusal is not overbroad.
 */
static void fpb_refused_test(struct kunit *test)
{
	bool refuse = want_init_on_free() || page_poisoning_enabled_static();
	const char *reason;

	KUNIT_EXPECT_EQ(test, free_page_bitmap_set_mode(FREE_PAGE_BITMAP_ALWAYS), 0);
	KUNIT_EXPECT_EQ(test, free_page_bitmap_active(), !refuse);
	KUNIT_EXPECT_EQ(test, static_key_enabled(&free_page_bitmap_enabled), !refuse);
	reason = free_page_bitmap_read_state().stats.inactive_reason;
	if (!refuse) {
		KUNIT_EXPECT_NULL_MSG(test, reason, "tracking refused without a reason to: %s",
				      reason);
		return;
	}
	KUNIT_ASSERT_NOT_NULL(test, reason);
	KUNIT_EXPECT_NOT_NULL(test, strstr(reason, want_init_on_free() ?
					   "init_on_free" : "page poisoning"));
}

static int fpb_refusal_init(struct kunit *test)
{
	saved_mode = free_page_bitmap_read_state().mode;
	return 0;
}

static void fpb_refusal_exit(struct kunit *test)
{
	free_page_bitmap_set_mode(saved_mode);
}

static struct kunit_case free_page_bitmap_refusal_cases[] = {
	KUNIT_CASE(fpb_refused_test),
	{}
};

static struct kunit_suite free_page_bitmap_refusal_suite = {
	.name = "free_page_bitmap_refusal",
	.init = fpb_refusal_init,
	.exit = fpb_refusal_exit,
	.test_cases = free_page_bitmap_refusal_cases,
};

kunit_test_suites(&free_page_bitmap_suite, &free_page_bitmap_refusal_suite);

MODULE_DESCRIPTION("KUnit tests for the free page bitmap");
MODULE_LICENSE("GPL");

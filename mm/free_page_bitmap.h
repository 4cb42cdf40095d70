/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _MM_FREE_PAGE_BITMAP_H
#define _MM_FREE_PAGE_BITMAP_H

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/free_page_bitmap.h>
#include <linux/init.h>
#include <linux/jump_label.h>
#include <linux/mmzone.h>
#include <linux/percpu.h>
#include <asm/barrier.h>

#ifdef CONFIG_FREE_PAGE_BITMAP
DECLARE_STATIC_KEY_FALSE(free_page_bitmap_enabled);
DECLARE_STATIC_KEY_FALSE(free_page_bitmap_fences);
DECLARE_STATIC_KEY_FALSE(free_page_bitmap_granule_any);
/* What a hook does, for the DEBUG_VM checks */
enum fpb_op {
	FPB_ALLOC,
	FPB_REMOVE,
	FPB_FREE,
};

bool __free_page_bitmap_check(struct zone *zone, unsigned long pfn,
			      unsigned int order, unsigned int free_order,
			      enum fpb_op op);
#ifdef CONFIG_DEBUG_VM
DECLARE_PER_CPU(bool, free_page_bitmap_unfenced);
#endif
extern atomic_t free_page_bitmap_captured;

/*
 * The hooks run where a page's freeness changes, not where free lists
 * change: splitting a free block or merging free buddies leaves every bit
 * as it is, so only the granules of the pages handed out or freed are
 * written.  All of them run under zone->lock, on every buddy allocation
 * and free: they are inline, behind free_page_bitmap_enabled, so that
 * with tracking off each call site is one patched-out jump, and with
 * tracking on the common case is a bit store with no call.  What they
 * need sits in struct zone beside zone->lock: the bitmap's base, biased
 * so that bit (pfn >> granule) is the pfn's, and the granule, which the
 * free_page_bitmap_granule_any key spares for granule 0.
 *
 * The hooks never issue a barrier: a zone->lock section that may clear
 * bits ends with free_page_bitmap_fence() before the lock is dropped,
 * one virt_wmb() however many blocks it took.
 */

/*
 * Set or clear the bits of 2^@nr_order granules from @idx in @bits.  A
 * block's granules are aligned to their number and every bitmap starts
 * at a word (free_page_bitmap_span()), so up to a word of them share one
 * word, and more fill whole words.
 */
static __always_inline void fpb_write(unsigned long *bits, unsigned long idx,
				      unsigned int nr_order, bool set)
{
	unsigned long mask;

	if (likely(!nr_order)) {
		if (set)
			__set_bit(idx, bits);
		else
			__clear_bit(idx, bits);
		return;
	}
	if (nr_order >= ilog2(BITS_PER_LONG)) {
		if (set)
			bitmap_set(bits, idx, 1U << nr_order);
		else
			bitmap_clear(bits, idx, 1U << nr_order);
		return;
	}
	mask = ((1UL << (1U << nr_order)) - 1) << (idx % BITS_PER_LONG);
	if (set)
		bits[BIT_WORD(idx)] |= mask;
	else
		bits[BIT_WORD(idx)] &= ~mask;
}

/*
 * The first page frame a hook is about: a free passes its frame number, the
 * others the page.  @op is a constant in every caller, so the choice costs
 * nothing, where testing @page for NULL would cost a test and a branch.
 */
static __always_inline unsigned long fpb_pfn(struct page *page,
					     unsigned long pfn, enum fpb_op op)
{
	return op == FPB_FREE ? pfn : page_to_pfn(page);
}

/*
 * The 2^@order pages at @page (for FPB_FREE, at @pfn), in a free
 * block of order @free_order (the block they leave or the one they
 * merged into), become free (@op is FPB_FREE) or stop being free.  A free
 * block smaller than a granule leaves the granule's bit clear: the
 * granule is not wholly free.  Hot path, zone->lock held, tracking on:
 * every zone that can hold free pages has a bitmap then (the core
 * attaches them before it enables the key, and gives a zone that grows
 * in memory hotplug one before its pages go online).  At granule 0 this
 * is the key's nop, the base's load, page_to_pfn() and a bit store; at
 * other granules the free block's order is compared first, so that the
 * common case, a block smaller than a granule, costs a jump, a load and
 * a compare.
 */
static __always_inline void fpb_update(struct zone *zone, struct page *page,
				       unsigned long pfn, unsigned int order,
				       unsigned int free_order, enum fpb_op op)
{
	bool set = op == FPB_FREE;
	unsigned int g;

	lockdep_assert_held(&zone->lock);
	if (IS_ENABLED(CONFIG_DEBUG_VM) &&
	    !__free_page_bitmap_check(zone, fpb_pfn(page, pfn, op), order,
				      free_order, op))
		return;
	if (!static_branch_unlikely(&free_page_bitmap_granule_any)) {
		fpb_write(zone->free_page_bits, fpb_pfn(page, pfn, op), order, set);
		return;
	}
	g = zone->free_page_granule;
	if (free_order < g)
		return;
	fpb_write(zone->free_page_bits, fpb_pfn(page, pfn, op) >> g,
		  order > g ? order - g : 0, set);
}

/**
 * free_page_bitmap_alloc - note pages handed out of a free block
 * @zone: the block's zone, whose lock is held
 * @page: first page handed out
 * @order: order of the pages handed out
 * @high: order of the free block that contains them; the rest of it stays
 *	  free, in buddies that keep their bits
 *
 * The zone->lock section must end with free_page_bitmap_fence(): the
 * host reads the bits without the lock.
 */
static __always_inline void free_page_bitmap_alloc(struct zone *zone,
						   struct page *page,
						   unsigned int order,
						   unsigned int high)
{
	/* Hot path: every buddy allocation, under zone->lock */
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		fpb_update(zone, page, 0, order, high, FPB_ALLOC);
}

/**
 * free_page_bitmap_free - note a block freed to the buddy allocator
 * @zone: the block's zone, whose lock is held
 * @pfn: first page frame of the freed block
 * @order: order of the freed block
 * @merged: order of the free block it ended in, merged with its buddies
 *
 * No fence: setting a bit of pages whose content is dead is always safe.
 */
static __always_inline void free_page_bitmap_free(struct zone *zone,
						  unsigned long pfn,
						  unsigned int order,
						  unsigned int merged)
{
	/* Hot path: every buddy free, under zone->lock */
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		fpb_update(zone, NULL, pfn, order, merged, FPB_FREE);
}

/**
 * free_page_bitmap_remove - note a free block taken whole off the free lists
 * @zone: the block's zone, whose lock is held
 * @page: first page of the block
 * @order: order of the block
 *
 * For blocks that are isolated, offlined or split into
 * pageblocks, rather than allocated.  The zone->lock section must end
 * with free_page_bitmap_fence().
 */
static __always_inline void free_page_bitmap_remove(struct zone *zone,
						    struct page *page,
						    unsigned int order)
{
	if (static_branch_unlikely(&free_page_bitmap_enabled))
		fpb_update(zone, page, 0, order, order, FPB_REMOVE);
}

/**
 * free_page_bitmap_capture - note a free block that compaction captured
 * @zone: the block's zone, whose lock is held
 * @page: first page of the block
 * @order: order of the block, the buddies merged so far
 *
 * As free_page_bitmap_remove(), and counted for debugfs: no test in
 * process context can tell a captured page from one taken off the free
 * lists, and a capture is rare, at most one per direct compaction.  The
 * zone->lock section must end with free_page_bitmap_fence().
 */
static __always_inline void free_page_bitmap_capture(struct zone *zone,
						     struct page *page,
						     unsigned int order)
{
	if (static_branch_unlikely(&free_page_bitmap_enabled)) {
		fpb_update(zone, page, 0, order, order, FPB_REMOVE);
		atomic_inc(&free_page_bitmap_captured);
	}
}

/**
 * free_page_bitmap_fence - order a section's clears before later stores
 *
 * Call once at the end of every zone->lock section that may have called
 * free_page_bitmap_alloc(), free_page_bitmap_remove() or
 * free_page_bitmap_capture(), before the lock is dropped: the host must
 * see the bits clear before any store of the pages' new owners.
 * virt_wmb() is a real barrier even on UP guests.
 * Behind its own key, which is on whenever free_page_bitmap_enabled is
 * and a little longer (see fpb_keys_prepare()), so that a section that
 * cleared bits fences them even if tracking stops in the middle of it.
 */
static __always_inline void free_page_bitmap_fence(void)
{
	/* Hot path: once per zone->lock section that allocates */
	if (static_branch_unlikely(&free_page_bitmap_fences)) {
		/* The section's clears before its pages' new owners' stores */
		virt_wmb();
#ifdef CONFIG_DEBUG_VM
		this_cpu_write(free_page_bitmap_unfenced, false);
#endif
	}
}

/* The rest is shared by the core, its sysfs/debugfs side and KUnit. */

/**
 * struct free_page_bitmap_zone - one zone's bitmap, zone->free_page_bitmap
 * @zone: the zone
 * @start_pfn: first page frame covered, the zone start rounded down to
 *	       a word of granules (BITS_PER_LONG of them)
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

static inline void free_page_bitmap_capture(struct zone *zone, struct page *page,
					    unsigned int order)
{
}

static inline void free_page_bitmap_fence(void)
{
}
#endif /* CONFIG_FREE_PAGE_BITMAP */
#endif /* _MM_FREE_PAGE_BITMAP_H */

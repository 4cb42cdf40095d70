// SPDX-License-Identifier: GPL-2.0
/*
 * Free page bitmap: a bitmap per zone of the pages that sit in buddy free
 * lists, kept exact on every allocation and free, in guest memory that a
 * hypervisor reads to leave free pages out of a live migration.
 *
 * Invariant while tracking is active: a bit is set only if its whole
 * granule (2^granule_order pages) lies in a free buddy block of order >=
 * granule_order (a guard page of debug_pagealloc counts as one), and at
 * every release of zone->lock every such granule's bit is set.  The hooks
 * below run, under zone->lock, only where pages become free or stop being
 * free: splitting a free block and merging free buddies change no bit, so
 * an allocation or a free writes only the bits of its own pages.  Pages
 * on per-cpu lists and unaccepted memory count as allocated: that only
 * leaves bits clear, which is safe.  The per-cpu lists are drained when
 * tracking starts and at every START of the host, so that memory freed
 * before is seen.
 *
 * The host reads the bits with no lock at all, so the set bits must be a
 * subset of the free pages at every store, not just at unlock: a block's
 * bits are cleared before it leaves the free lists, and one virt_wmb() at
 * the end of the zone->lock section, free_page_bitmap_fence(), orders the
 * section's clears before the new owners' first stores (a real barrier
 * even on UP guests, where smp_wmb() is only a compiler barrier).
 *
 * Locking: free_page_bitmap_mutex serialises every change of state (mode,
 * client, layout) and is taken inside cpus_read_lock() and
 * get_online_mems(), because a build flips a static key and walks struct
 * pages that memory hot-remove would free; the memory hotplug notifier
 * runs with both already held.  zone->lock protects zone->free_page_bitmap
 * and its bits.  Under those locks the client is only told to stop
 * trusting the layout (->invalidate, which writes memory); a new layout
 * reaches it from a work item that holds the mutex alone (->publish).
 */

#define pr_fmt(fmt) "free_page_bitmap: " fmt

#include <linux/cpu.h>
#include <linux/memory.h>
#include <linux/memory_hotplug.h>
#include <linux/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/workqueue.h>
#include <asm/barrier.h>

#include "internal.h"
#include "free_page_bitmap.h"

DEFINE_STATIC_KEY_FALSE(free_page_bitmap_enabled);
/* On whenever free_page_bitmap_enabled is, see fpb_keys_prepare() */
DEFINE_STATIC_KEY_FALSE(free_page_bitmap_fences);
/* Granule order above 0, for the hooks; changes only while they are off */
DEFINE_STATIC_KEY_FALSE(free_page_bitmap_granule_any);
/* Serialises changes of mode, client and layout, see above */
static DEFINE_MUTEX(free_page_bitmap_mutex);

static enum free_page_bitmap_mode free_page_bitmap_mode = FREE_PAGE_BITMAP_HOST;
static unsigned int free_page_bitmap_granule_order;
/* The client's proposed granule, and whether the admin's overrides it */
static unsigned int fpb_proposed_granule;
static bool fpb_admin_granule;
static struct free_page_bitmap_stats free_page_bitmap_stats = {
	.inactive_reason = "waiting for the host",
};

/* The bitmaps of all zones with a span, as one published layout */
struct free_page_bitmap_set {
	/* what the client sees */
	struct free_page_bitmap_layout layout;
	/* layout.nr_ranges entries each, in the same order */
	struct free_page_bitmap_range *ranges;
	struct free_page_bitmap_zone *zones;
	/* bitmap memory of all zones */
	unsigned long bytes;
};

/* The bitmaps in use, NULL while inactive; free_page_bitmap_mutex */
static struct free_page_bitmap_set *fpb_set;
/* The one consumer, and whether its host asked for tracking */
static struct free_page_bitmap_client *fpb_client;
static bool fpb_host_wants;
/* Layout sequence count: even while a layout is published */
static unsigned long fpb_seq = 1;
/* The seq of the layout last passed to the client, 0 for none */
static unsigned long fpb_client_seq;
static void fpb_publish_func(struct work_struct *work);
static DECLARE_WORK(fpb_publish_work, fpb_publish_func);
/* Set once the memory hotplug notifier is registered; the mutex */
static bool fpb_ready;

/* Blocks that compaction captured while tracked, for debugfs */
atomic_t free_page_bitmap_captured;

#ifdef CONFIG_DEBUG_VM
/* Bits cleared in this CPU's zone->lock section and not fenced yet */
DEFINE_PER_CPU(bool, free_page_bitmap_unfenced);
#endif

/*
 * DEBUG_VM checks of a hook, fpb_update(): whether the zone has a bitmap
 * that covers the pages (with tracking on, it must), and that a free block
 * that gives pages out had all its granules set where the build made the
 * bits exact.  Notes the clears that the section must fence.
 */
bool __free_page_bitmap_check(struct zone *zone, unsigned long pfn,
			      unsigned int order, unsigned int free_order,
			      enum fpb_op op)
{
	struct free_page_bitmap_zone *fpz = zone->free_page_bitmap;
	unsigned long idx, nr, start, first, last;
	unsigned int g;

	if (WARN_ON_ONCE(!fpz || !zone->free_page_bits))
		return false;
	g = fpz->granule_order;
	if (WARN_ON_ONCE(g != zone->free_page_granule ||
			 !!g != static_branch_unlikely(&free_page_bitmap_granule_any)))
		return false;
	if (free_order < g)
		return true;
	/* Spans only grow in memory hotplug, which grows the bitmap first. */
	idx = (pfn - fpz->start_pfn) >> g;
	nr = order > g ? 1UL << (order - g) : 1;
	if (WARN_ON_ONCE(pfn < fpz->start_pfn || idx + nr > fpz->nr_bits))
		return false;
	if (op == FPB_FREE)
		return true;
#ifdef CONFIG_DEBUG_VM
	this_cpu_write(free_page_bitmap_unfenced, true);
#endif
	if (op != FPB_ALLOC)
		return true;
	start = ALIGN_DOWN(pfn, 1UL << free_order);
	first = (start - fpz->start_pfn) >> g;
	last = first + (1UL << (free_order - g));
	VM_WARN_ONCE(start < fpz->exact_end &&
		     find_next_zero_bit(fpz->bits, last, first) < last,
		     "free block of order %u at pfn %#lx has a clear bit\n",
		     free_order, start);
	return true;
}

/**
 * free_page_bitmap_span() - the pages a zone's bitmap covers
 * @zone: the zone
 * @granule_order: log2 of the pages per bit
 * @start_pfn: returns the zone start rounded down to BITS_PER_LONG granules
 * @nr_bits: returns the number of granules up to the zone end
 *
 * A granule that the zone covers only partly, or not at all, never has its
 * bit set: no buddy block of the zone can contain it.  The bitmap starts at
 * a word boundary of granule numbers (pfn >> granule_order), so that the
 * hooks can index a biased base with them directly, zone->free_page_bits.
 */
void free_page_bitmap_span(const struct zone *zone, unsigned int granule_order,
			   unsigned long *start_pfn, unsigned long *nr_bits)
{
	unsigned long start = ALIGN_DOWN(zone->zone_start_pfn,
					 BITS_PER_LONG << granule_order);

	*start_pfn = start;
	*nr_bits = DIV_ROUND_UP(zone_end_pfn(zone) - start, 1UL << granule_order);
}

/**
 * free_page_bitmap_tracks_zone() - whether a zone gets a bitmap
 * @zone: the zone
 *
 * Return: true for every zone that spans pages, except ZONE_DEVICE, whose
 * pages never reach the buddy allocator.
 */
bool free_page_bitmap_tracks_zone(struct zone *zone)
{
	return zone->spanned_pages && !zone_is_zone_device(zone);
}

static void fpb_set_free(struct free_page_bitmap_set *set)
{
	unsigned int i;

	if (!set)
		return;
	for (i = 0; i < set->layout.nr_ranges; i++)
		vfree(set->zones[i].bits);
	kfree(set->zones);
	kfree(set->ranges);
	kfree(set);
}

/* Bytes of a bitmap of @nr_bits, in whole words as the bitops write them */
static unsigned long fpb_bytes(unsigned long nr_bits)
{
	return BITS_TO_LONGS(nr_bits) * sizeof(long);
}

/* The first page frame after the pages @fpz covers */
static unsigned long fpb_end_pfn(const struct free_page_bitmap_zone *fpz)
{
	return fpz->start_pfn + (fpz->nr_bits << fpz->granule_order);
}

static int fpb_zone_alloc(struct zone *zone, unsigned int granule_order,
			  unsigned long start_pfn, unsigned long nr_bits,
			  struct free_page_bitmap_zone *fpz,
			  struct free_page_bitmap_range *range)
{
	fpz->zone = zone;
	fpz->granule_order = granule_order;
	fpz->start_pfn = start_pfn;
	fpz->nr_bits = nr_bits;
	fpz->bits = vzalloc(fpb_bytes(nr_bits));
	if (!fpz->bits)
		return -ENOMEM;

	range->start_pfn = start_pfn;
	range->nr_bits = nr_bits;
	range->bits = fpz->bits;
	return 0;
}

/* An empty set with room for every zone that spans pages. */
static struct free_page_bitmap_set *fpb_set_new(unsigned int granule_order)
{
	struct free_page_bitmap_set *set;
	unsigned int nr = 0;
	struct zone *zone;

	for_each_zone(zone)
		nr += free_page_bitmap_tracks_zone(zone);

	set = kzalloc(sizeof(*set), GFP_KERNEL);
	if (!set)
		return NULL;
	set->zones = kcalloc(nr, sizeof(*set->zones), GFP_KERNEL);
	set->ranges = kcalloc(nr, sizeof(*set->ranges), GFP_KERNEL);
	if (!set->zones || !set->ranges) {
		fpb_set_free(set);
		return NULL;
	}
	set->layout.granule_order = granule_order;
	set->layout.ranges = set->ranges;
	return set;
}

static void fpb_set_add_bytes(struct free_page_bitmap_set *set,
			      const struct free_page_bitmap_zone *fpz)
{
	set->bytes += fpb_bytes(fpz->nr_bits);
}

/* Allocate zeroed bitmaps for every zone that spans pages. */
static struct free_page_bitmap_set *fpb_set_alloc(unsigned int granule_order)
{
	struct free_page_bitmap_set *set = fpb_set_new(granule_order);
	unsigned long start, nr_bits;
	struct zone *zone;
	unsigned int i;

	if (!set)
		return NULL;
	for_each_zone(zone) {
		if (!free_page_bitmap_tracks_zone(zone))
			continue;
		i = set->layout.nr_ranges++;
		free_page_bitmap_span(zone, granule_order, &start, &nr_bits);
		if (fpb_zone_alloc(zone, granule_order, start, nr_bits,
				   &set->zones[i], &set->ranges[i])) {
			fpb_set_free(set);
			return NULL;
		}
		fpb_set_add_bytes(set, &set->zones[i]);
	}
	return set;
}

/*
 * Point @zone's hooks at @fpz, or at nothing.  free_page_bits is biased:
 * fpz->start_pfn's granule number is a multiple of BITS_PER_LONG
 * (free_page_bitmap_span()), so bit (pfn >> granule_order) of it is the
 * pfn's, with no subtraction on the hot path.  The hooks only index it
 * within the zone's span, that is within the bitmap.
 */
static void fpb_zone_set(struct zone *zone, struct free_page_bitmap_zone *fpz)
{
	lockdep_assert_held(&zone->lock);
	zone->free_page_bitmap = fpz;
	zone->free_page_granule = fpz ? fpz->granule_order : 0;
	zone->free_page_bits = fpz ? fpz->bits - BIT_WORD(fpz->start_pfn >>
							   fpz->granule_order) : NULL;
}

/*
 * Point the zones of @set at their bitmaps, then detach every zone of @old
 * that still points into @old, so that @old can be freed.  Both sets are
 * walked through their own zone pointers, not with for_each_zone(): that
 * skips the zones of offline nodes, and a node goes offline when its last
 * memory is removed, with its zones still pointing at the bitmaps of the
 * set built while it was online.  The zones stay valid: an offline node
 * keeps its pgdat, which memory hotplug reuses when the node comes back.
 */
static void fpb_attach(struct free_page_bitmap_set *set,
		       struct free_page_bitmap_set *old)
{
	unsigned int i;

	for (i = 0; set && i < set->layout.nr_ranges; i++) {
		struct zone *zone = set->zones[i].zone;

		spin_lock_irq(&zone->lock);
		fpb_zone_set(zone, &set->zones[i]);
		spin_unlock_irq(&zone->lock);
	}
	for (i = 0; old && i < old->layout.nr_ranges; i++) {
		struct zone *zone = old->zones[i].zone;

		spin_lock_irq(&zone->lock);
		if (zone->free_page_bitmap == &old->zones[i])
			fpb_zone_set(zone, NULL);
		spin_unlock_irq(&zone->lock);
	}
}

/*
 * Compute into @expect which granules of the MAX_ORDER_NR_PAGES chunk at
 * @chunk lie in free buddy blocks of @zone.  zone->lock is held, so the
 * buddy state of the chunk cannot change; a buddy block never crosses a
 * chunk, so the chunk alone decides.
 */
static void fpb_scan_chunk(struct zone *zone, unsigned long chunk,
			   unsigned int granule_order, unsigned long *expect)
{
	unsigned long pfn = chunk, end = chunk + MAX_ORDER_NR_PAGES;

	lockdep_assert_held(&zone->lock);
	bitmap_zero(expect, MAX_ORDER_NR_PAGES >> granule_order);
	while (pfn < end) {
		struct page *page;
		unsigned int order;

		/*
		 * Offline memory has no usable struct pages; it comes in
		 * whole sections.  Smaller holes have reserved struct pages.
		 */
		if (pageblock_aligned(pfn) && !pfn_to_online_page(pfn)) {
			pfn += pageblock_nr_pages;
			continue;
		}
		page = pfn_to_page(pfn);
		/* A guard page keeps its order and its bits, as a free block. */
		if (page_zone(page) != zone ||
		    !(PageBuddy(page) || page_is_guard(page))) {
			pfn++;
			continue;
		}
		order = buddy_order(page);
		if (order >= granule_order)
			bitmap_set(expect, (pfn - chunk) >> granule_order,
				   1U << (order - granule_order));
		pfn += 1UL << order;
	}
}

/* The expected bits of one chunk; free_page_bitmap_mutex */
static DECLARE_BITMAP(fpb_expect, MAX_ORDER_NR_PAGES);

/*
 * Compare a zone's bits with its free lists, chunk by chunk under
 * zone->lock, so the lock is held for one chunk at a time: a walk over
 * MAX_ORDER_NR_PAGES struct pages.  With @fix the bits are made exact (a
 * build), otherwise mismatches are reported (verify).  Either way the
 * result is exact while allocations go on, as every chunk is looked at
 * atomically.  Returns the number of wrong bits found.
 */
static unsigned long fpb_sync_zone(struct free_page_bitmap_zone *fpz, bool fix)
{
	unsigned int g = fpz->granule_order;
	unsigned long end = fpb_end_pfn(fpz);
	struct zone *zone = fpz->zone;
	unsigned long chunk, pfn, wrong = 0;

	lockdep_assert_held(&free_page_bitmap_mutex);
	for (chunk = ALIGN_DOWN(fpz->start_pfn, MAX_ORDER_NR_PAGES); chunk < end;
	     chunk += MAX_ORDER_NR_PAGES) {
		unsigned long last = min(chunk + MAX_ORDER_NR_PAGES, end);
		unsigned long first_wrong = 0, nr_wrong = 0;

		spin_lock_irq(&zone->lock);
		fpb_scan_chunk(zone, chunk, g, fpb_expect);
		for (pfn = max(chunk, fpz->start_pfn); pfn < last; pfn += 1UL << g) {
			unsigned long idx = (pfn - fpz->start_pfn) >> g;
			bool want = test_bit((pfn - chunk) >> g, fpb_expect);

			if (test_bit(idx, fpz->bits) == want)
				continue;
			if (!nr_wrong++)
				first_wrong = pfn;
			if (fix)
				__assign_bit(idx, fpz->bits, want);
		}
		/* As free_page_bitmap_fence(): clears before stores. */
		virt_wmb();
		if (fix)
			fpz->exact_end = last;
		spin_unlock_irq(&zone->lock);

		/* Not under zone->lock: a console may allocate. */
		if (nr_wrong && !fix)
			pr_err_ratelimited("zone %s: %lu wrong bits in the %d pages at pfn %#lx, first at pfn %#lx\n",
					   zone->name, nr_wrong, MAX_ORDER_NR_PAGES,
					   chunk, first_wrong);
		wrong += nr_wrong;
		cond_resched();
	}
	return wrong;
}

/* Tell the client to stop trusting the published layout, before it goes stale. */
static void fpb_invalidate(void)
{
	if (fpb_seq & 1)
		return;
	WRITE_ONCE(fpb_seq, fpb_seq + 1);
	if (fpb_client)
		fpb_client->invalidate(fpb_client);
}

/* The new layout reaches the client from fpb_publish_func(). */
static void fpb_publish(void)
{
	WRITE_ONCE(fpb_seq, fpb_seq + 1);
	fpb_set->layout.seq = fpb_seq;
	if (fpb_client)
		schedule_work(&fpb_publish_work);
}

/*
 * Pass the layout on outside cpus_read_lock() and the memory hotplug lock,
 * as page_reporting does, so that the client may sleep and allocate.  The
 * mutex keeps the layout from being replaced or freed during the call; one
 * invalidated before the work runs is never passed on.
 */
static void fpb_publish_func(struct work_struct *work)
{
	mutex_lock(&free_page_bitmap_mutex);
	if (fpb_client && !(fpb_seq & 1) && fpb_client_seq != fpb_seq) {
		fpb_client_seq = fpb_seq;
		fpb_client->publish(fpb_client, &fpb_set->layout);
	}
	mutex_unlock(&free_page_bitmap_mutex);
}

/* Wait until the client has been given the current layout, if any. */
void free_page_bitmap_flush_client(void)
{
	flush_work(&fpb_publish_work);
}

/* For KUnit: keep the work item from running (@hold), or let it run again. */
void free_page_bitmap_hold_client(bool hold)
{
	if (hold) {
		disable_work_sync(&fpb_publish_work);
		return;
	}
	enable_work(&fpb_publish_work);
	schedule_work(&fpb_publish_work);
}

/* Account a completed build or grow begun at @start, and publish its layout. */
static void fpb_built(ktime_t start)
{
	u64 us = ktime_us_delta(ktime_get(), start);

	free_page_bitmap_stats.rebuild_count++;
	free_page_bitmap_stats.last_rebuild_us = us;
	free_page_bitmap_stats.max_rebuild_us =
		max(free_page_bitmap_stats.max_rebuild_us, us);
	free_page_bitmap_stats.inactive_reason = NULL;
	free_page_bitmap_stats.bitmap_bytes = fpb_set->bytes;
	fpb_publish();
}

/*
 * Set the keys that the hooks read for bitmaps of @granule_order, with the
 * hooks off: the fences (a zone->lock section that sees the hooks on must
 * see its free_page_bitmap_fence() on too) and the granule's.  The caller
 * then takes every zone->lock (fpb_attach()) before it turns the hooks
 * on, so that a section that sees them on sees these keys too, even where
 * keys are plain atomics (no CONFIG_JUMP_LABEL) on a weakly ordered CPU.
 */
static void fpb_keys_prepare(unsigned int granule_order)
{
	static_branch_enable_cpuslocked(&free_page_bitmap_fences);
	if (granule_order)
		static_branch_enable_cpuslocked(&free_page_bitmap_granule_any);
	else
		static_branch_disable_cpuslocked(&free_page_bitmap_granule_any);
}

/*
 * Hand what the per-cpu lists hold to the buddy allocator, through the
 * hooks.  Zone by zone: drain_all_pages(NULL) gives up while another
 * drain runs, a zone's waits for it.
 */
static void fpb_drain_pcp(void)
{
	struct zone *zone;

	for_each_populated_zone(zone)
		drain_all_pages(zone);
}

/*
 * Replace the bitmaps (if any) by new ones of @granule_order, built from
 * the buddy free lists while allocations go on: the hooks keep the new
 * bits a subset of the free pages from the moment a zone points at them,
 * and the walk then makes each chunk exact.  Nothing changes if the
 * memory cannot be allocated.
 */
static int fpb_build(unsigned int granule_order)
{
	struct free_page_bitmap_set *set, *old = fpb_set;
	ktime_t start = ktime_get();
	unsigned int i;

	lockdep_assert_held(&free_page_bitmap_mutex);
	lockdep_assert_cpus_held();

	set = fpb_set_alloc(granule_order);
	if (!set)
		return -ENOMEM;
	fpb_invalidate();
	/*
	 * The hooks take the granule from a key and the zone's bitmap from
	 * the zone: stop them while both change.  The new bits are all
	 * clear until the walk below sets them, so allocations in the
	 * meantime need not clear any.  Hooks still running hold
	 * zone->lock, which fpb_attach() takes: the keys change only after
	 * they are done, and are set before the new bitmaps are attached.
	 */
	if (old) {
		static_branch_disable_cpuslocked(&free_page_bitmap_enabled);
		fpb_attach(NULL, old);
	}
	fpb_keys_prepare(granule_order);
	fpb_attach(set, NULL);
	fpb_set = set;
	static_branch_enable_cpuslocked(&free_page_bitmap_enabled);
	fpb_set_free(old);
	/*
	 * Pages freed to the per-cpu lists before tracking starts may sit
	 * there, invisible, for as long as their CPU does not allocate: a
	 * guest that freed gigabytes just before a migration would have them
	 * sent.  Hand them to the buddy allocator, through the hooks, once.
	 */
	if (!old)
		fpb_drain_pcp();

	for (i = 0; i < set->layout.nr_ranges; i++)
		fpb_sync_zone(&set->zones[i], true);
	fpb_built(start);
	return 0;
}

/* Whether @zone's span lies within the bitmap @fpz, if there is one. */
static bool fpb_covers(const struct free_page_bitmap_zone *fpz,
		       struct zone *zone)
{
	unsigned long start, nr_bits;
	unsigned int g;

	if (!fpz)
		return false;
	g = fpz->granule_order;
	free_page_bitmap_span(zone, g, &start, &nr_bits);
	return start >= fpz->start_pfn &&
	       start + (nr_bits << g) <= fpb_end_pfn(fpz);
}

/*
 * Under zone->lock: @fpz takes over the bits of @was, whose span it
 * contains.  The pages it adds hold no free block yet (see fpb_grow()),
 * so their zero bits are exact.
 */
static void fpb_copy_bits(struct free_page_bitmap_zone *fpz,
			  const struct free_page_bitmap_zone *was)
{
	unsigned int g = fpz->granule_order;
	unsigned long shift = (was->start_pfn - fpz->start_pfn) >> g;

	lockdep_assert_held(&fpz->zone->lock);
	memcpy(fpz->bits, was->bits, fpb_bytes(was->nr_bits));
	if (shift)
		bitmap_shift_left(fpz->bits, fpz->bits, shift, fpz->nr_bits);
	if (was->exact_end == fpb_end_pfn(was))
		fpz->exact_end = fpb_end_pfn(fpz);
	else
		fpz->exact_end = was->exact_end;
}

/* Forget the bitmaps that @set shares with @other: freeing @set keeps them. */
static void fpb_set_disown(struct free_page_bitmap_set *set,
			   const struct free_page_bitmap_set *other)
{
	unsigned int i, j;

	for (i = 0; i < set->layout.nr_ranges; i++)
		for (j = 0; j < other->layout.nr_ranges; j++)
			if (set->zones[i].bits == other->zones[j].bits)
				set->zones[i].bits = NULL;
}

/*
 * Memory about to go online is in its zone's span but not yet on the free
 * lists, so every bit is still exact: give each zone that outgrew its
 * bitmap a larger one holding the same bits, and let the other zones keep
 * theirs.  That costs a copy of the grown zones' bits, where a build walks
 * every struct page of the guest.  A zone new to tracking is walked: its
 * span is the new memory.  Nothing changes if the memory cannot be
 * allocated.
 */
static int fpb_grow(void)
{
	struct free_page_bitmap_set *set, *old = fpb_set;
	unsigned int g = old->layout.granule_order, i;
	ktime_t start = ktime_get();
	unsigned long pfn, nr_bits, end;
	struct zone *zone;

	lockdep_assert_held(&free_page_bitmap_mutex);
	set = fpb_set_new(g);
	if (!set)
		return -ENOMEM;
	/* zone->free_page_bitmap changes only under the mutex, held here. */
	for_each_zone(zone) {
		struct free_page_bitmap_zone *was = zone->free_page_bitmap;

		if (!free_page_bitmap_tracks_zone(zone))
			continue;
		i = set->layout.nr_ranges++;
		if (fpb_covers(was, zone)) {
			set->zones[i] = *was;
			set->ranges[i] = old->ranges[was - old->zones];
			fpb_set_add_bytes(set, was);
			continue;
		}
		free_page_bitmap_span(zone, g, &pfn, &nr_bits);
		if (was) {
			end = max(pfn + (nr_bits << g), fpb_end_pfn(was));
			pfn = min(pfn, was->start_pfn);
			nr_bits = (end - pfn) >> g;
		}
		if (fpb_zone_alloc(zone, g, pfn, nr_bits, &set->zones[i],
				   &set->ranges[i])) {
			fpb_set_disown(set, old);
			fpb_set_free(set);
			return -ENOMEM;
		}
		fpb_set_add_bytes(set, &set->zones[i]);
	}

	fpb_invalidate();
	for (i = 0; i < set->layout.nr_ranges; i++) {
		struct free_page_bitmap_zone *fpz = &set->zones[i];
		struct free_page_bitmap_zone *was;

		zone = fpz->zone;
		was = zone->free_page_bitmap;
		spin_lock_irq(&zone->lock);
		if (was && was->bits != fpz->bits)
			fpb_copy_bits(fpz, was);
		fpb_zone_set(zone, fpz);
		spin_unlock_irq(&zone->lock);
		if (!was)
			fpb_sync_zone(fpz, true);
	}
	/* Zones of offline nodes are in @old only. */
	fpb_attach(NULL, old);
	fpb_set = set;
	fpb_set_disown(old, set);
	fpb_set_free(old);
	fpb_built(start);
	return 0;
}

static void fpb_teardown(const char *reason)
{
	lockdep_assert_held(&free_page_bitmap_mutex);
	lockdep_assert_cpus_held();

	free_page_bitmap_stats.inactive_reason = reason;
	if (!fpb_set)
		return;
	fpb_invalidate();
	static_branch_disable_cpuslocked(&free_page_bitmap_enabled);
	/*
	 * Hooks still running hold zone->lock, which fpb_attach() takes, and
	 * keep it until their section's fence: only then may the fences go.
	 */
	fpb_attach(NULL, fpb_set);
	static_branch_disable_cpuslocked(&free_page_bitmap_fences);
	fpb_set_free(fpb_set);
	fpb_set = NULL;
	free_page_bitmap_stats.bitmap_bytes = 0;
}

static const char *fpb_inactive_reason(void)
{
	if (free_page_bitmap_mode == FREE_PAGE_BITMAP_NEVER)
		return "disabled";
	/* Skipped pages keep stale content: nothing may rely on it. */
	if (page_poisoning_enabled_static())
		return "refused: page poisoning relies on free page content";
	if (want_init_on_free())
		return "refused: init_on_free relies on free page content";
	if (free_page_bitmap_mode == FREE_PAGE_BITMAP_HOST &&
	    !(fpb_client && fpb_host_wants))
		return "waiting for the host";
	return NULL;
}

/* Start or stop tracking as mode, host and environment say. */
static int fpb_apply(void)
{
	const char *reason = fpb_inactive_reason();
	int err;

	if (reason) {
		fpb_teardown(reason);
		return 0;
	}
	if (fpb_set)
		return 0;
	err = fpb_build(free_page_bitmap_granule_order);
	if (err) {
		pr_warn("cannot allocate the bitmaps, tracking stays off\n");
		free_page_bitmap_stats.inactive_reason = "failed: out of memory";
	}
	return err;
}

/*
 * Take the locks that every change of state needs: cpus_read_lock() and
 * get_online_mems() first (a build flips a static key and walks struct
 * pages), then free_page_bitmap_mutex.
 */
static void free_page_bitmap_lock(void)
{
	cpus_read_lock();
	get_online_mems();
	mutex_lock(&free_page_bitmap_mutex);
}

/* Drop what free_page_bitmap_lock() took. */
static void free_page_bitmap_unlock(void)
{
	mutex_unlock(&free_page_bitmap_mutex);
	put_online_mems();
	cpus_read_unlock();
}

/**
 * free_page_bitmap_active() - whether the bitmaps are maintained and exact
 *
 * Return: true while a layout is built and maintained; the client may
 * still be waiting for it.
 */
bool free_page_bitmap_active(void)
{
	return !(READ_ONCE(fpb_seq) & 1);
}

/**
 * free_page_bitmap_has_client() - whether a client is registered
 *
 * Return: true if a driver consumes the bitmaps (its host may read them).
 */
bool free_page_bitmap_has_client(void)
{
	return READ_ONCE(fpb_client);
}

/**
 * free_page_bitmap_read_state() - the mode, granule and counters
 *
 * Return: a copy, taken under the bitmap's mutex so that it is consistent.
 */
struct free_page_bitmap_state free_page_bitmap_read_state(void)
{
	struct free_page_bitmap_state state;

	mutex_lock(&free_page_bitmap_mutex);
	state.mode = free_page_bitmap_mode;
	state.granule_order = free_page_bitmap_granule_order;
	state.granule_auto = !fpb_admin_granule;
	state.stats = free_page_bitmap_stats;
	mutex_unlock(&free_page_bitmap_mutex);
	return state;
}

/**
 * free_page_bitmap_set_boot_mode() - the mode from the kernel command line
 * @mode: always, on host request, or never
 *
 * Context: early boot, before free_page_bitmap_init() can start tracking.
 */
void __init free_page_bitmap_set_boot_mode(enum free_page_bitmap_mode mode)
{
	free_page_bitmap_mode = mode;
}

/**
 * free_page_bitmap_show_zone() - a zone's bitmap, for debugfs
 * @m: where to write a header line ("start_pfn %#lx nr_bits %lu
 *     granule_order %u") and the raw bits; nothing while the zone has none
 * @zone: the zone
 */
void free_page_bitmap_show_zone(struct seq_file *m, struct zone *zone)
{
	struct free_page_bitmap_zone *fpz;

	mutex_lock(&free_page_bitmap_mutex);
	fpz = zone->free_page_bitmap;
	if (fpz) {
		seq_printf(m, "start_pfn %#lx nr_bits %lu granule_order %u\n",
			   fpz->start_pfn, fpz->nr_bits, fpz->granule_order);
		seq_write(m, fpz->bits, BITS_TO_BYTES(fpz->nr_bits));
	}
	mutex_unlock(&free_page_bitmap_mutex);
}

/**
 * free_page_bitmap_set_mode() - choose when tracking runs
 * @mode: always, on host request, or never
 *
 * Return: 0, or -ENOMEM if tracking should start but cannot; the mode
 * then stays as it was.
 */
int free_page_bitmap_set_mode(enum free_page_bitmap_mode mode)
{
	enum free_page_bitmap_mode old;
	int err;

	free_page_bitmap_lock();
	old = free_page_bitmap_mode;
	free_page_bitmap_mode = mode;
	err = fpb_apply();
	if (err)
		free_page_bitmap_mode = old;
	free_page_bitmap_unlock();
	return err;
}

/*
 * Rebuild active bitmaps at @granule_order, which the client is then
 * given; under free_page_bitmap_lock().  On failure nothing changes.
 */
static int fpb_change_granule(unsigned int granule_order)
{
	int err = 0;

	if (fpb_set && granule_order != free_page_bitmap_granule_order)
		err = fpb_build(granule_order);
	if (!err)
		free_page_bitmap_granule_order = granule_order;
	return err;
}

/**
 * free_page_bitmap_set_granule() - the administrator's pages per bit
 * @granule_order: log2 of the pages per bit, at most MAX_PAGE_ORDER; or
 *	%FREE_PAGE_BITMAP_GRANULE_AUTO for the one the client proposes
 *
 * An order chosen here overrides the client's proposal, also a later
 * client's, until %FREE_PAGE_BITMAP_GRANULE_AUTO hands the choice back.
 *
 * Return: 0, -EINVAL for a bad order, -ENOMEM if the rebuild cannot
 * allocate (then nothing changes).
 */
int free_page_bitmap_set_granule(int granule_order)
{
	bool admin = granule_order != FREE_PAGE_BITMAP_GRANULE_AUTO;
	int err;

	if (admin && (granule_order < 0 || granule_order > MAX_PAGE_ORDER))
		return -EINVAL;
	free_page_bitmap_lock();
	err = fpb_change_granule(admin ? granule_order : fpb_proposed_granule);
	if (!err)
		fpb_admin_granule = admin;
	free_page_bitmap_unlock();
	return err;
}

/**
 * free_page_bitmap_tracked_pages() - pages whose bits are set
 *
 * Return: the number of pages the bitmaps report free, 0 when inactive.
 */
unsigned long free_page_bitmap_tracked_pages(void)
{
	unsigned long pages = 0;
	unsigned int i;

	mutex_lock(&free_page_bitmap_mutex);
	for (i = 0; fpb_set && i < fpb_set->layout.nr_ranges; i++) {
		struct free_page_bitmap_zone *fpz = &fpb_set->zones[i];

		pages += bitmap_weight(fpz->bits, fpz->nr_bits) << fpz->granule_order;
	}
	mutex_unlock(&free_page_bitmap_mutex);
	return pages;
}

/**
 * free_page_bitmap_verify() - cross-check every bitmap with the free lists
 *
 * Each mismatch is reported with pr_err (ratelimited).  A zone whose hooks
 * would write other bits than the published ones counts all its bits.
 *
 * Return: the number of wrong bits, 0 when inactive.
 */
unsigned long free_page_bitmap_verify(void)
{
	unsigned long wrong = 0;
	unsigned int i;

	free_page_bitmap_lock();
	for (i = 0; fpb_set && i < fpb_set->layout.nr_ranges; i++) {
		struct free_page_bitmap_zone *fpz = &fpb_set->zones[i];

		/* The hooks must write the bits that are published. */
		if (fpz->zone->free_page_bitmap != fpz) {
			pr_err("zone %s is not attached to its published bitmap\n",
			       fpz->zone->name);
			wrong += fpz->nr_bits;
			continue;
		}
		wrong += fpb_sync_zone(fpz, false);
	}
	free_page_bitmap_unlock();
	return wrong;
}

/**
 * free_page_bitmap_register() - become the consumer of the bitmaps
 * @client: the consumer; @client->publish is called soon if a layout is
 *	    published, and with every new one from then on
 *
 * Context: Process context; takes cpus_read_lock(), get_online_mems() and
 * the bitmap's mutex.
 * Return: 0, -EBUSY if another client is registered, or -EAGAIN before
 * the core's subsys_initcall.
 */
int free_page_bitmap_register(struct free_page_bitmap_client *client)
{
	int err = 0;

	might_sleep();
	free_page_bitmap_lock();
	/* The client may start tracking, so hotplug must be followed. */
	if (WARN_ON_ONCE(!fpb_ready)) {
		err = -EAGAIN;
	} else if (fpb_client) {
		err = -EBUSY;
	} else {
		/* Before the client is set: it hears only of the new layout. */
		fpb_proposed_granule = min(client->granule_order, MAX_PAGE_ORDER);
		if (!fpb_admin_granule && fpb_change_granule(fpb_proposed_granule))
			pr_warn("no memory to rebuild at the client's granule, order %u kept\n",
				free_page_bitmap_granule_order);
		WRITE_ONCE(fpb_client, client);
		fpb_client_seq = 0;
		fpb_host_wants = false;
		if (free_page_bitmap_active())
			schedule_work(&fpb_publish_work);
	}
	free_page_bitmap_unlock();
	return err;
}
EXPORT_SYMBOL_GPL(free_page_bitmap_register);

/**
 * free_page_bitmap_unregister() - stop being the consumer
 * @client: the registered consumer
 *
 * Its host request ends with it.  Neither callback runs again once this
 * returns, so the client must stop using the layout (and make its host
 * stop) first.
 *
 * Context: Process context, as free_page_bitmap_register().
 */
void free_page_bitmap_unregister(struct free_page_bitmap_client *client)
{
	might_sleep();
	free_page_bitmap_lock();
	if (!WARN_ON(fpb_client != client)) {
		WRITE_ONCE(fpb_client, NULL);
		fpb_host_wants = false;
		fpb_apply();
	}
	free_page_bitmap_unlock();
}
EXPORT_SYMBOL_GPL(free_page_bitmap_unregister);

/**
 * free_page_bitmap_host_request() - pass on the host's start or stop
 * @client: the registered consumer
 * @track: whether the host wants the bitmaps
 *
 * Tracking starts only if the mode is "host" or "always"; the client learns
 * the outcome through its callbacks.
 *
 * Context: Process context, as free_page_bitmap_register(); not from a
 * virtio config-change callback, which may run in interrupt context.
 */
void free_page_bitmap_host_request(struct free_page_bitmap_client *client,
				   bool track)
{
	might_sleep();
	free_page_bitmap_lock();
	if (!WARN_ON(fpb_client != client)) {
		struct free_page_bitmap_set *was = fpb_set;
		bool start = track && !fpb_host_wants;

		fpb_host_wants = track;
		fpb_apply();
		/*
		 * Tracking was on before this START ("always"): pages freed to
		 * the per-cpu lists since are as invisible as before a first
		 * build; drain them as fpb_build() does.
		 */
		if (start && was && fpb_set == was)
			fpb_drain_pcp();
	}
	free_page_bitmap_unlock();
}
EXPORT_SYMBOL_GPL(free_page_bitmap_host_request);

static bool fpb_covers_all_zones(void)
{
	struct zone *zone;

	for_each_zone(zone)
		if (free_page_bitmap_tracks_zone(zone) &&
		    !fpb_covers(zone->free_page_bitmap, zone))
			return false;
	return true;
}

/*
 * Memory about to go online has been added to its zone's span but has not
 * reached the free lists yet: grow the bitmaps whose zone outgrew them.  A
 * failure stops tracking but never vetoes the hotplug.  Offlined memory
 * leaves the free lists through the hooks, and a bitmap larger than its
 * zone does no harm.
 */
static int fpb_memory_notifier(struct notifier_block *nb, unsigned long action,
			       void *arg)
{
	if (action != MEM_GOING_ONLINE)
		return NOTIFY_OK;
	/* Called inside cpus_read_lock() and mem_hotplug_begin(). */
	mutex_lock(&free_page_bitmap_mutex);
	if (fpb_set && !fpb_covers_all_zones() && fpb_grow()) {
		pr_warn("no memory for the hotplugged range, tracking stops\n");
		fpb_teardown("failed: out of memory in memory hotplug");
	}
	mutex_unlock(&free_page_bitmap_mutex);
	return NOTIFY_OK;
}

/*
 * Registers the memory hotplug notifier before any client can exist: a
 * built-in driver registers at device_initcall and may start tracking at
 * once, so this runs at subsys_initcall.  A build walks the struct pages
 * of every zone, which deferred struct page init must have initialised:
 * page_alloc_init_late() waits for that before do_basic_setup() runs the
 * initcalls of every level from pure_initcall on (only early_initcall
 * comes before it).
 */
static int __init free_page_bitmap_init(void)
{
	hotplug_memory_notifier(fpb_memory_notifier, DEFAULT_CALLBACK_PRI);
	free_page_bitmap_lock();
	fpb_ready = true;
	fpb_apply();
	free_page_bitmap_unlock();
	return 0;
}
subsys_initcall(free_page_bitmap_init);

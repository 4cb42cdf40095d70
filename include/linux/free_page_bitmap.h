/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _LINUX_FREE_PAGE_BITMAP_H
#define _LINUX_FREE_PAGE_BITMAP_H

#include <linux/types.h>

/**
 * struct free_page_bitmap_range - the free page bitmap of one zone
 * @start_pfn: first page frame covered, aligned to the granule
 * @nr_bits: number of granules covered
 * @bits: the bitmap: BITS_TO_LONGS(@nr_bits) longs, page aligned, in
 *	  vmalloc() memory whose pages need not be contiguous
 *
 * Bit i of the bitmap (byte i / 8, bit i % 8, least significant first) is
 * set only while the 2^granule_order pages at @start_pfn + (i <<
 * granule_order) lie in a block on a buddy free list.
 */
struct free_page_bitmap_range {
	unsigned long start_pfn;
	unsigned long nr_bits;
	const unsigned long *bits;
};

/**
 * struct free_page_bitmap_layout - all bitmaps, as published to a client
 * @granule_order: log2 of the number of pages one bit stands for
 * @seq: layout sequence count, even; advances with every new layout
 * @nr_ranges: number of entries in @ranges, one per zone
 * @ranges: the zones' bitmaps; their spans may overlap, a page's bit is
 *	    set only in its own zone's bitmap
 */
struct free_page_bitmap_layout {
	unsigned int granule_order;
	unsigned long seq;
	unsigned int nr_ranges;
	const struct free_page_bitmap_range *ranges;
};

/**
 * struct free_page_bitmap_client - the one consumer of the bitmaps
 * @granule_order: the granule its device prefers (log2 of the pages per
 *	    bit, at most MAX_PAGE_ORDER), set before registering; the core
 *	    uses it unless the administrator chose one in sysfs
 * @invalidate: the published layout is about to go stale (the bits stop
 *	    being maintained, or their memory is replaced or freed): make
 *	    every reader stop trusting it before returning.  Called under
 *	    the core's locks, cpus_read_lock() and the memory hotplug lock
 *	    (for write, when memory goes online) among them: it must not
 *	    sleep, and should only write memory.
 * @publish: tracking is active with a new layout.  Called in process
 *	    context from a work item that holds only the bitmap's mutex (no
 *	    CPU or memory hotplug lock), so it may sleep and allocate; the
 *	    layout stays valid until the next @invalidate.  It must not call
 *	    back into this API, nor take a lock that the client holds while
 *	    it calls this API.
 */
struct free_page_bitmap_client {
	unsigned int granule_order;
	void (*invalidate)(struct free_page_bitmap_client *client);
	void (*publish)(struct free_page_bitmap_client *client,
			const struct free_page_bitmap_layout *layout);
};

int free_page_bitmap_register(struct free_page_bitmap_client *client);
void free_page_bitmap_unregister(struct free_page_bitmap_client *client);
void free_page_bitmap_host_request(struct free_page_bitmap_client *client,
				   bool track);

#endif /* _LINUX_FREE_PAGE_BITMAP_H */

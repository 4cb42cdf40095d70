// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of the free page bitmap's shared-memory encoding: what a
 * device on any host reads must not depend on the guest's byte order, every
 * table entry must name the page it stands for, and seq must be odd exactly
 * while the layout changes.
 */

#include <kunit/test.h>
#include <linux/free_page_bitmap.h>
#include <linux/mm.h>
#include <linux/sort.h>
#include <linux/virtio_balloon.h>
#include <linux/vmalloc.h>

#include "virtio_balloon_fpb.h"

static void fpb_test_struct_sizes(struct kunit *test)
{
	/* The device reads these sizes and offsets from the uapi header. */
	KUNIT_EXPECT_EQ(test, sizeof(struct virtio_balloon_fpb_header), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct virtio_balloon_fpb_range), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct virtio_balloon_fpb_announce), 8);
	KUNIT_EXPECT_EQ(test, offsetof(struct virtio_balloon_config,
				       free_page_bitmap_cmd), 16);
	KUNIT_EXPECT_EQ(test, offsetof(struct virtio_balloon_config,
				       free_page_bitmap_granule_shift), 20);
}

/*
 * A start frame wider than 32 bits where unsigned long has the room, so
 * that the byte order shows beyond the low word; a 32-bit kernel keeps
 * the low half, and the device must then read the upper bytes as zero.
 */
#define FPB_TEST_START_PFN	(0x0102030405060000ULL & ULONG_MAX)

/*
 * Two ranges over real bitmap memory, as the core hands them over: three
 * pages mapped virtually contiguous but with descending frames, as
 * vmalloc() memory may be, and one page of the direct map.
 */
#define FPB_TEST_VPAGES	3

struct fpb_test_layout {
	struct free_page_bitmap_range ranges[2];
	struct free_page_bitmap_layout layout;
	struct page *pages[FPB_TEST_VPAGES];
	void *vaddr;
};

static void fpb_test_unmap(void *data)
{
	struct fpb_test_layout *t = data;
	unsigned int i;

	if (t->vaddr)
		vunmap(t->vaddr);
	for (i = 0; i < FPB_TEST_VPAGES; i++)
		if (t->pages[i])
			__free_page(t->pages[i]);
}

static int fpb_test_pfn_desc(const void *a, const void *b)
{
	unsigned long pa = page_to_pfn(*(struct page * const *)a);
	unsigned long pb = page_to_pfn(*(struct page * const *)b);

	return pa < pb ? 1 : pa > pb ? -1 : 0;
}

static struct fpb_test_layout *fpb_test_new_layout(struct kunit *test)
{
	struct fpb_test_layout *t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	unsigned long *b = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, t);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test, fpb_test_unmap, t), 0);
	for (i = 0; i < FPB_TEST_VPAGES; i++) {
		t->pages[i] = alloc_page(GFP_KERNEL | __GFP_ZERO);
		KUNIT_ASSERT_NOT_NULL(test, t->pages[i]);
	}
	sort(t->pages, FPB_TEST_VPAGES, sizeof(t->pages[0]), fpb_test_pfn_desc, NULL);
	t->vaddr = vmap(t->pages, FPB_TEST_VPAGES, VM_MAP, PAGE_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->vaddr);
	KUNIT_ASSERT_NOT_NULL(test, b);
	/* kmalloc'd PAGE_SIZE objects are page aligned */
	KUNIT_ASSERT_TRUE(test, PAGE_ALIGNED(b));
	t->ranges[0] = (struct free_page_bitmap_range) {
		.start_pfn = 0x200, .nr_bits = FPB_TEST_VPAGES * 8 * PAGE_SIZE - 5,
		.bits = t->vaddr,
	};
	t->ranges[1] = (struct free_page_bitmap_range) {
		.start_pfn = FPB_TEST_START_PFN, .nr_bits = 9, .bits = b,
	};
	t->layout = (struct free_page_bitmap_layout) {
		.granule_order = 3, .seq = 6, .nr_ranges = 2, .ranges = t->ranges,
	};
	return t;
}

/* The header, and the ranges with the table right after them */
struct fpb_test_buf {
	struct virtio_balloon_fpb_header hdr;
	struct virtio_balloon_fpb_range ranges[2];
	__le64 table[4];
};

/* Where the test pretends the ranges are in guest-physical memory */
#define FPB_TEST_DESC_GPA	0x5000

static const struct fpb_test_layout *fpb_test_encode(struct kunit *test,
						     struct fpb_test_buf *b)
{
	const struct fpb_test_layout *t = fpb_test_new_layout(test);

	BUILD_BUG_ON(offsetof(struct fpb_test_buf, table) !=
		     offsetof(struct fpb_test_buf, ranges) + sizeof(b->ranges));
	memset(b, 0xa5, sizeof(*b));
	b->hdr.seq = 0;
	KUNIT_ASSERT_EQ(test, virtio_balloon_fpb_desc_bytes(&t->layout),
			sizeof(b->ranges) + sizeof(b->table));
	virtio_balloon_fpb_encode(&b->hdr, b->ranges, FPB_TEST_DESC_GPA, &t->layout);
	return t;
}

/* The page of bitmap memory a table entry names, as the device reads it */
static const void *fpb_test_entry_page(const struct fpb_test_buf *b, unsigned int i)
{
	return page_address(pfn_to_page(le64_to_cpu(b->table[i])));
}

/* Read the bytes as a little-endian device would, whatever the CPU does. */
static u64 le_bytes(const void *p, unsigned int n)
{
	const u8 *b = p;
	u64 v = 0;

	while (n--)
		v = v << 8 | b[n];
	return v;
}

static void fpb_test_little_endian(struct kunit *test)
{
	struct fpb_test_buf *b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	const struct fpb_test_layout *t;
	const u8 *magic;

	KUNIT_ASSERT_NOT_NULL(test, b);
	t = fpb_test_encode(test, b);
	magic = (const u8 *)&b->hdr.magic;
	KUNIT_EXPECT_EQ(test, magic[0], 'V');
	KUNIT_EXPECT_EQ(test, magic[1], 'F');
	KUNIT_EXPECT_EQ(test, magic[2], 'P');
	KUNIT_EXPECT_EQ(test, magic[3], 'B');
	KUNIT_EXPECT_EQ(test, le_bytes(&b->hdr.version, 2), VIRTIO_BALLOON_FPB_VERSION);
	KUNIT_EXPECT_EQ(test, b->hdr.page_shift, PAGE_SHIFT);
	KUNIT_EXPECT_EQ(test, b->hdr.granule_order, 3);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->hdr.nr_ranges, 4), 2);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->hdr.reserved, 4), 0);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->hdr.ranges_gpa, 8), FPB_TEST_DESC_GPA);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->ranges[1].start_pfn, 8),
			FPB_TEST_START_PFN);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->ranges[0].nr_bits, 8),
			3 * 8 * PAGE_SIZE - 5);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->table[3], 8),
			page_to_pfn(virt_to_page(t->ranges[1].bits)));
}

static void fpb_test_table_entries(struct kunit *test)
{
	struct fpb_test_buf *b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	const struct fpb_test_layout *t;
	unsigned int r, i, next = 0;

	KUNIT_ASSERT_NOT_NULL(test, b);
	t = fpb_test_encode(test, b);
	for (r = 0; r < ARRAY_SIZE(t->ranges); r++) {
		const struct virtio_balloon_fpb_range *er = &b->ranges[r];
		u64 entries = le64_to_cpu(er->nr_table_entries);

		/* Enough pages for the bits, and they are the range's own. */
		KUNIT_EXPECT_EQ(test, entries, DIV_ROUND_UP(le64_to_cpu(er->nr_bits),
							    8 * PAGE_SIZE));
		KUNIT_EXPECT_EQ(test, le64_to_cpu(er->pfn_table_gpa),
				FPB_TEST_DESC_GPA + sizeof(b->ranges) + next * sizeof(__le64));
		for (i = 0; i < entries; i++, next++)
			KUNIT_EXPECT_EQ_MSG(test, le64_to_cpu(b->table[next]),
					    r ? page_to_pfn(virt_to_page(t->ranges[r].bits)) :
					    page_to_pfn(t->pages[i]),
					    "range %u page %u", r, i);
	}
	KUNIT_EXPECT_EQ(test, next, ARRAY_SIZE(b->table));
}

/* Every entry names the page that holds the bits: set some and read them back. */
static void fpb_test_real_pages(struct kunit *test)
{
	struct fpb_test_buf *b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	const struct fpb_test_layout *t;
	unsigned long *a;
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, b);
	t = fpb_test_encode(test, b);
	a = (unsigned long *)t->ranges[0].bits;
	for (i = 0; i < FPB_TEST_VPAGES; i++)
		set_bit(i * 8 * PAGE_SIZE + 5 + i, a);
	set_bit(3, (unsigned long *)t->ranges[1].bits);

	for (i = 0; i < FPB_TEST_VPAGES; i++) {
		const u8 *page = fpb_test_entry_page(b, i);

		/* bit j of byte i: LSB first, as the uapi header says */
		KUNIT_EXPECT_EQ_MSG(test, page[0], 0x20 << i, "page %u", i);
	}
	KUNIT_EXPECT_EQ(test, *(const u8 *)fpb_test_entry_page(b, 3), 0x08);
}

/*
 * A guest with many NUMA nodes has more zones than ranges fit in a page:
 * every one is described, and its table entry follows all the ranges.
 */
#define FPB_TEST_MANY	300

static void fpb_test_many_ranges(struct kunit *test)
{
	struct free_page_bitmap_range *r = kunit_kcalloc(test, FPB_TEST_MANY, sizeof(*r),
							 GFP_KERNEL);
	unsigned long *bits = kunit_kzalloc(test, PAGE_SIZE, GFP_KERNEL);
	struct free_page_bitmap_layout layout = {
		.nr_ranges = FPB_TEST_MANY, .ranges = r,
	};
	struct virtio_balloon_fpb_header hdr = {};
	const struct virtio_balloon_fpb_range *er;
	const __le64 *table;
	size_t bytes;
	void *desc;
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, r);
	KUNIT_ASSERT_NOT_NULL(test, bits);
	for (i = 0; i < FPB_TEST_MANY; i++)
		r[i] = (struct free_page_bitmap_range) {
			.start_pfn = i * 64, .nr_bits = 64, .bits = bits,
		};
	bytes = virtio_balloon_fpb_desc_bytes(&layout);
	KUNIT_ASSERT_EQ(test, bytes, FPB_TEST_MANY * (sizeof(*er) + sizeof(__le64)));
	KUNIT_ASSERT_GT(test, bytes, PAGE_SIZE);
	desc = kunit_kzalloc(test, bytes, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, desc);

	virtio_balloon_fpb_encode(&hdr, desc, FPB_TEST_DESC_GPA, &layout);
	KUNIT_EXPECT_EQ(test, le32_to_cpu(hdr.nr_ranges), FPB_TEST_MANY);
	KUNIT_EXPECT_EQ(test, le64_to_cpu(hdr.ranges_gpa), FPB_TEST_DESC_GPA);
	er = desc;
	table = desc + FPB_TEST_MANY * sizeof(*er);
	for (i = 0; i < FPB_TEST_MANY; i++) {
		KUNIT_EXPECT_EQ_MSG(test, le64_to_cpu(er[i].start_pfn), i * 64, "range %u", i);
		KUNIT_EXPECT_EQ_MSG(test, le64_to_cpu(er[i].pfn_table_gpa),
				    FPB_TEST_DESC_GPA + FPB_TEST_MANY * sizeof(*er) +
				    i * sizeof(__le64), "range %u", i);
		KUNIT_EXPECT_EQ_MSG(test, le64_to_cpu(table[i]),
				    page_to_pfn(virt_to_page(bits)), "range %u", i);
	}
}

static void fpb_test_seq_parity(struct kunit *test)
{
	struct virtio_balloon_fpb_header *hdr = kunit_kzalloc(test, sizeof(*hdr), GFP_KERNEL);
	unsigned int round;
	u32 seq = 0;

	KUNIT_ASSERT_NOT_NULL(test, hdr);
	for (round = 0; round < 4; round++) {
		bool active = round & 1;

		virtio_balloon_fpb_write_begin(hdr);
		KUNIT_EXPECT_EQ(test, le32_to_cpu(hdr->seq), seq + 1);
		KUNIT_EXPECT_TRUE(test, le32_to_cpu(hdr->seq) & 1);
		virtio_balloon_fpb_write_end(hdr, active);
		seq += 2;
		KUNIT_EXPECT_EQ(test, le32_to_cpu(hdr->seq), seq);
		KUNIT_EXPECT_EQ(test, le32_to_cpu(hdr->flags),
				active ? VIRTIO_BALLOON_FPB_F_ACTIVE : 0);
	}
}

static struct kunit_case fpb_encoding_cases[] = {
	KUNIT_CASE(fpb_test_struct_sizes),
	KUNIT_CASE(fpb_test_little_endian),
	KUNIT_CASE(fpb_test_table_entries),
	KUNIT_CASE(fpb_test_real_pages),
	KUNIT_CASE(fpb_test_many_ranges),
	KUNIT_CASE(fpb_test_seq_parity),
	{}
};

static struct kunit_suite fpb_encoding_suite = {
	.name = "virtio_balloon_fpb",
	.test_cases = fpb_encoding_cases,
};

kunit_test_suite(fpb_encoding_suite);

MODULE_DESCRIPTION("KUnit tests for virtio-balloon's free page bitmap encoding");
MODULE_LICENSE("GPL");
MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

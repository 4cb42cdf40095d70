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
#include <linux/virtio_balloon.h>

#include "virtio_balloon_fpb.h"

static void fpb_test_struct_sizes(struct kunit *test)
{
	/* The device reads these sizes and offsets from the uapi header. */
	KUNIT_EXPECT_EQ(test, sizeof(struct virtio_balloon_fpb_header), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct virtio_balloon_fpb_range), 32);
	KUNIT_EXPECT_EQ(test, sizeof(struct virtio_balloon_fpb_announce), 8);
	KUNIT_EXPECT_EQ(test, offsetof(struct virtio_balloon_config,
				       free_page_bitmap_cmd), 16);
}

/*
 * Frame numbers wider than 32 bits where unsigned long has the room, so
 * that the byte order shows beyond the low word; a 32-bit kernel keeps
 * the low half, and the device must then read the upper bytes as zero.
 */
#define FPB_TEST_PFN		(0x123456789aULL & ULONG_MAX)
#define FPB_TEST_START_PFN	(0x0102030405060000ULL & ULONG_MAX)

static const unsigned long pfns_a[] = { FPB_TEST_PFN, 7, 0x1000 };
static const unsigned long pfns_b[] = { 42 };
static const struct free_page_bitmap_range test_ranges[] = {
	{ .start_pfn = 0x200, .nr_bits = 3 * 8 * PAGE_SIZE - 5,
	  .nr_pages = ARRAY_SIZE(pfns_a), .pfns = pfns_a },
	{ .start_pfn = FPB_TEST_START_PFN, .nr_bits = 9,
	  .nr_pages = ARRAY_SIZE(pfns_b), .pfns = pfns_b },
};

static const struct free_page_bitmap_layout test_layout = {
	.granule_order = 3,
	.seq = 6,
	.nr_ranges = ARRAY_SIZE(test_ranges),
	.ranges = test_ranges,
};

struct fpb_test_buf {
	struct virtio_balloon_fpb_header hdr;
	struct virtio_balloon_fpb_range ranges[2];
	__le64 table[4];
};

static void fpb_test_encode(struct kunit *test, struct fpb_test_buf *b)
{
	memset(b, 0xa5, sizeof(*b));
	b->hdr.seq = 0;
	KUNIT_ASSERT_EQ(test, virtio_balloon_fpb_table_entries(&test_layout),
			ARRAY_SIZE(b->table));
	virtio_balloon_fpb_encode(&b->hdr, b->ranges, b->table, 0x5000, &test_layout);
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
	const u8 *magic;

	KUNIT_ASSERT_NOT_NULL(test, b);
	fpb_test_encode(test, b);
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
	KUNIT_EXPECT_EQ(test, le_bytes(&b->ranges[1].start_pfn, 8),
			FPB_TEST_START_PFN);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->ranges[0].nr_bits, 8),
			3 * 8 * PAGE_SIZE - 5);
	KUNIT_EXPECT_EQ(test, le_bytes(&b->table[0], 8), FPB_TEST_PFN);
}

static void fpb_test_table_entries(struct kunit *test)
{
	struct fpb_test_buf *b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	unsigned int r, i, next = 0;

	KUNIT_ASSERT_NOT_NULL(test, b);
	fpb_test_encode(test, b);
	for (r = 0; r < ARRAY_SIZE(test_ranges); r++) {
		const struct virtio_balloon_fpb_range *er = &b->ranges[r];
		u64 entries = le64_to_cpu(er->nr_table_entries);

		/* Enough pages for the bits, and they are the range's own. */
		KUNIT_EXPECT_EQ(test, entries, DIV_ROUND_UP(le64_to_cpu(er->nr_bits),
							    8 * PAGE_SIZE));
		KUNIT_EXPECT_EQ(test, le64_to_cpu(er->pfn_table_gpa),
				0x5000 + next * sizeof(__le64));
		for (i = 0; i < entries; i++, next++)
			KUNIT_EXPECT_EQ(test, le64_to_cpu(b->table[next]),
					test_ranges[r].pfns[i]);
	}
	KUNIT_EXPECT_EQ(test, next, ARRAY_SIZE(b->table));
}

/* A real layout: every entry must be the frame of the bitmap page. */
static void fpb_test_real_pages(struct kunit *test)
{
	unsigned long *bits = kunit_kzalloc(test, 2 * PAGE_SIZE, GFP_KERNEL);
	struct fpb_test_buf *b = kunit_kzalloc(test, sizeof(*b), GFP_KERNEL);
	unsigned long pfns[2];
	struct free_page_bitmap_range range = {
		.start_pfn = 0, .nr_bits = 2 * 8 * PAGE_SIZE, .nr_pages = 2,
		.pfns = pfns,
	};
	struct free_page_bitmap_layout layout = {
		.granule_order = 0, .nr_ranges = 1, .ranges = &range,
	};
	unsigned int i;

	KUNIT_ASSERT_NOT_NULL(test, bits);
	KUNIT_ASSERT_NOT_NULL(test, b);
	/* kmalloc'd pages of 2 * PAGE_SIZE are page aligned and contiguous */
	KUNIT_ASSERT_TRUE(test, PAGE_ALIGNED(bits));
	for (i = 0; i < 2; i++)
		pfns[i] = page_to_pfn(virt_to_page((char *)bits + i * PAGE_SIZE));
	set_bit(5, bits);
	set_bit(8 * PAGE_SIZE + 3, bits);

	virtio_balloon_fpb_encode(&b->hdr, b->ranges, b->table, 0, &layout);
	for (i = 0; i < 2; i++) {
		const u8 *page = page_address(pfn_to_page(le64_to_cpu(b->table[i])));

		/* bit j of byte i: LSB first, as the uapi header says */
		KUNIT_EXPECT_EQ(test, page[0], i ? 0x08 : 0x20);
		KUNIT_EXPECT_PTR_EQ(test, (const void *)page,
				    (const void *)((char *)bits + i * PAGE_SIZE));
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

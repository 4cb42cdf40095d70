// SPDX-License-Identifier: GPL-2.0
/*
 * virtio-balloon: export the free page bitmap to the device.
 *
 * The mm core (mm/free_page_bitmap.c) keeps a bitmap of free pages per
 * zone.  This file is its client: it describes the bitmaps in a header
 * page the device reads during migration, announces that page on the free
 * page bitmap virtqueue, and passes on the device's start and stop
 * commands.  The layout is in include/uapi/linux/virtio_balloon.h and
 * Documentation/mm/free_page_bitmap.rst.
 *
 * A header is trusted by the device for one driver session only, so the
 * driver clears VIRTIO_BALLOON_FPB_F_ACTIVE before the bits stop being
 * maintained, and on remove, freeze, reboot and kexec; the header and the
 * bitmaps are freed only after the device has been reset (on reboot and
 * kexec the virtio bus resets every device in device_shutdown(), after the
 * reboot notifiers).
 */

#include <linux/cc_platform.h>
#include <linux/debugfs.h>
#include <linux/export.h>
#include <linux/free_page_bitmap.h>
#include <linux/gfp.h>
#include <linux/highmem.h>
#include <linux/mm.h>
#include <linux/reboot.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/virtio.h>
#include <linux/virtio_balloon.h>
#include <linux/virtio_config.h>
#include <linux/vmalloc.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <kunit/visibility.h>

#include "virtio_balloon_fpb.h"

/* How long a new announcement waits for the device to return the last. */
#define FPB_ANNOUNCE_TIMEOUT	HZ

/* No command read yet: the first one always counts. */
#define FPB_CMD_NONE	U32_MAX

/* What the device reads; see include/uapi/linux/virtio_balloon.h */
static_assert(sizeof(struct virtio_balloon_fpb_header) == 32);
static_assert(sizeof(struct virtio_balloon_fpb_range) == 32);
static_assert(sizeof(struct virtio_balloon_fpb_announce) == 8);
static_assert(offsetof(struct virtio_balloon_config, free_page_bitmap_cmd) == 16);
static_assert(offsetof(struct virtio_balloon_config, free_page_bitmap_granule_shift) == 20);

struct virtio_balloon_fpb {
	struct virtio_device *vdev;
	struct virtqueue *vq;
	struct free_page_bitmap_client client;
	struct notifier_block reboot_nb;
	struct work_struct cmd_work;
	struct work_struct announce_work;
	/* The last command passed on, only touched by cmd_work */
	u32 cmd;

	/* Keeps config-change interrupts from queueing work after stop */
	spinlock_t stop_lock;
	bool stopping;

	/* Serialises publishing, retiring and debugfs: the table's lifetime */
	struct mutex lock;
	/*
	 * Serialises the writers of the header; debugfs holds it while it
	 * copies a bitmap page, which the core frees only after invalidate().
	 */
	spinlock_t hdr_lock;
	/* Set once the header must never be active again in this session */
	bool retired;
	struct virtio_balloon_fpb_header *hdr;
	/* The ranges and their tables, as virtio_balloon_fpb_encode() lays them out */
	void *desc;
	size_t desc_bytes;

	/* The buffer on the queue; one in flight at a time */
	spinlock_t vq_lock;
	struct virtio_balloon_fpb_announce *announce;
	bool in_flight;
	wait_queue_head_t acked;

	struct dentry *debugfs;
};

/* Pages that hold the bitmap of @r: whole longs, as the bitops write them */
static unsigned long fpb_range_pages(const struct free_page_bitmap_range *r)
{
	return DIV_ROUND_UP(BITS_TO_LONGS(r->nr_bits) * sizeof(long), PAGE_SIZE);
}

/* The frame of page @p of a bitmap (vmalloc() memory, or direct-mapped) */
static unsigned long fpb_bitmap_pfn(const unsigned long *bits, unsigned long p)
{
	const void *addr = (const char *)bits + p * PAGE_SIZE;

	if (is_vmalloc_addr(addr))
		return vmalloc_to_pfn(addr);
	return page_to_pfn(virt_to_page(addr));
}

/* Bytes of the ranges array and of the table after it, for @layout */
VISIBLE_IF_KUNIT size_t
virtio_balloon_fpb_desc_bytes(const struct free_page_bitmap_layout *layout)
{
	size_t n = layout->nr_ranges * sizeof(struct virtio_balloon_fpb_range);
	unsigned int i;

	for (i = 0; i < layout->nr_ranges; i++)
		n += fpb_range_pages(&layout->ranges[i]) * sizeof(__le64);
	return n;
}
EXPORT_SYMBOL_IF_KUNIT(virtio_balloon_fpb_desc_bytes);

/*
 * Describe @layout in the little-endian shared format: @hdr, and in @desc
 * (at guest-physical @desc_gpa, virtio_balloon_fpb_desc_bytes() long) the
 * array of ranges followed by one table holding the frame numbers of
 * every range's bitmap pages, range after range.  The array is apart from
 * the header, so a guest with many NUMA nodes and zones fits.  Only the
 * device needs frame numbers, so they are looked up here, not kept by
 * the core.  Call it between virtio_balloon_fpb_write_begin() and _end().
 */
VISIBLE_IF_KUNIT void
virtio_balloon_fpb_encode(struct virtio_balloon_fpb_header *hdr, void *desc,
			  phys_addr_t desc_gpa,
			  const struct free_page_bitmap_layout *layout)
{
	struct virtio_balloon_fpb_range *ranges = desc;
	__le64 *table = (__le64 *)(ranges + layout->nr_ranges);
	phys_addr_t table_gpa = desc_gpa + layout->nr_ranges * sizeof(*ranges);
	size_t next = 0;
	unsigned int i;

	hdr->magic = cpu_to_le32(VIRTIO_BALLOON_FPB_MAGIC);
	hdr->version = cpu_to_le16(VIRTIO_BALLOON_FPB_VERSION);
	hdr->page_shift = PAGE_SHIFT;
	hdr->granule_order = layout->granule_order;
	hdr->nr_ranges = cpu_to_le32(layout->nr_ranges);
	hdr->reserved = 0;
	hdr->ranges_gpa = cpu_to_le64(desc_gpa);
	for (i = 0; i < layout->nr_ranges; i++) {
		const struct free_page_bitmap_range *r = &layout->ranges[i];
		unsigned long p, pages = fpb_range_pages(r);

		ranges[i].start_pfn = cpu_to_le64(r->start_pfn);
		ranges[i].nr_bits = cpu_to_le64(r->nr_bits);
		ranges[i].pfn_table_gpa = cpu_to_le64(table_gpa + next * sizeof(*table));
		ranges[i].nr_table_entries = cpu_to_le64(pages);
		for (p = 0; p < pages; p++)
			table[next++] = cpu_to_le64(fpb_bitmap_pfn(r->bits, p));
	}
}
EXPORT_SYMBOL_IF_KUNIT(virtio_balloon_fpb_encode);

/* seq odd: the device ignores the layout and the flags until _end() */
VISIBLE_IF_KUNIT void
virtio_balloon_fpb_write_begin(struct virtio_balloon_fpb_header *hdr)
{
	WRITE_ONCE(hdr->seq, cpu_to_le32(le32_to_cpu(hdr->seq) + 1));
	/* Odd seq before any change; pairs with the device's read barrier */
	virt_wmb();
}
EXPORT_SYMBOL_IF_KUNIT(virtio_balloon_fpb_write_begin);

VISIBLE_IF_KUNIT void
virtio_balloon_fpb_write_end(struct virtio_balloon_fpb_header *hdr, bool active)
{
	WRITE_ONCE(hdr->flags, cpu_to_le32(active ? VIRTIO_BALLOON_FPB_F_ACTIVE : 0));
	/* The whole layout before the even seq that publishes it */
	virt_wmb();
	WRITE_ONCE(hdr->seq, cpu_to_le32(le32_to_cpu(hdr->seq) + 1));
	/* Inactive before the caller lets the bits go stale or frees them */
	virt_wmb();
}
EXPORT_SYMBOL_IF_KUNIT(virtio_balloon_fpb_write_end);

static void fpb_deactivate(struct virtio_balloon_fpb *fpb)
{
	lockdep_assert_held(&fpb->hdr_lock);
	if (!(le32_to_cpu(READ_ONCE(fpb->hdr->flags)) & VIRTIO_BALLOON_FPB_F_ACTIVE))
		return;
	virtio_balloon_fpb_write_begin(fpb->hdr);
	virtio_balloon_fpb_write_end(fpb->hdr, false);
}

/* The header no longer describes anything: keep it inactive for good. */
static void fpb_retire(struct virtio_balloon_fpb *fpb)
{
	mutex_lock(&fpb->lock);
	spin_lock(&fpb->hdr_lock);
	fpb_deactivate(fpb);
	spin_unlock(&fpb->hdr_lock);
	fpb->retired = true;
	mutex_unlock(&fpb->lock);
}

/* Describe @layout in the header and make it active; under fpb->lock */
static void fpb_publish(struct virtio_balloon_fpb *fpb,
			const struct free_page_bitmap_layout *layout)
{
	size_t bytes = max_t(size_t, virtio_balloon_fpb_desc_bytes(layout), 1);
	void *desc, *old = fpb->desc;
	size_t old_bytes = fpb->desc_bytes;

	lockdep_assert_held(&fpb->lock);
	/* Inactive since the core's invalidate(), or since it was made. */
	WARN_ON_ONCE(le32_to_cpu(READ_ONCE(fpb->hdr->flags)) & VIRTIO_BALLOON_FPB_F_ACTIVE);
	/* The ranges and the table must be contiguous in guest-physical memory. */
	desc = alloc_pages_exact(bytes, GFP_KERNEL | __GFP_NOWARN);
	if (!desc) {
		dev_warn_ratelimited(&fpb->vdev->dev,
				     "free page bitmap: no memory for a %zu byte table\n",
				     bytes);
		return;
	}

	spin_lock(&fpb->hdr_lock);
	virtio_balloon_fpb_write_begin(fpb->hdr);
	virtio_balloon_fpb_encode(fpb->hdr, desc, virt_to_phys(desc), layout);
	virtio_balloon_fpb_write_end(fpb->hdr, true);
	spin_unlock(&fpb->hdr_lock);

	/* A device still reading the old table sees seq change and retries. */
	fpb->desc = desc;
	fpb->desc_bytes = bytes;
	if (old)
		free_pages_exact(old, old_bytes);
	queue_work(system_unbound_wq, &fpb->announce_work);
}

/*
 * Called by the mm core under its locks, memory hotplug's among them,
 * before the bits go stale: only write memory.
 */
static void fpb_invalidate(struct free_page_bitmap_client *client)
{
	struct virtio_balloon_fpb *fpb = container_of(client, struct virtio_balloon_fpb,
						       client);

	spin_lock(&fpb->hdr_lock);
	fpb_deactivate(fpb);
	spin_unlock(&fpb->hdr_lock);
}

/* From the core's work item, which keeps @layout valid until we return */
static void fpb_publish_layout(struct free_page_bitmap_client *client,
			       const struct free_page_bitmap_layout *layout)
{
	struct virtio_balloon_fpb *fpb = container_of(client, struct virtio_balloon_fpb,
						       client);

	mutex_lock(&fpb->lock);
	if (!fpb->retired)
		fpb_publish(fpb, layout);
	mutex_unlock(&fpb->lock);
}

/* Reclaim the buffer the device has returned; under vq_lock */
static void fpb_reclaim(struct virtio_balloon_fpb *fpb)
{
	unsigned int len;

	while (virtqueue_get_buf(fpb->vq, &len))
		fpb->in_flight = false;
}

/**
 * virtio_balloon_fpb_vq_done() - the device returned the announcement
 * @fpb: the state from virtio_balloon_fpb_start(), or %NULL
 *
 * Context: Any context; the free page bitmap virtqueue's callback.
 */
void virtio_balloon_fpb_vq_done(struct virtio_balloon_fpb *fpb)
{
	unsigned long flags;

	if (!fpb)
		return;
	spin_lock_irqsave(&fpb->vq_lock, flags);
	fpb_reclaim(fpb);
	spin_unlock_irqrestore(&fpb->vq_lock, flags);
	wake_up(&fpb->acked);
}

/*
 * The granule order the device proposes: a bit for 2^shift bytes, not
 * less than a page, at most the largest buddy block.
 */
static unsigned int fpb_device_granule(struct virtio_device *vdev)
{
	u32 shift;

	virtio_cread_le(vdev, struct virtio_balloon_config,
			free_page_bitmap_granule_shift, &shift);
	if (shift <= PAGE_SHIFT)
		return 0;
	return min_t(u32, shift - PAGE_SHIFT, MAX_PAGE_ORDER);
}

static bool fpb_idle(struct virtio_balloon_fpb *fpb)
{
	bool idle;

	spin_lock_irq(&fpb->vq_lock);
	fpb_reclaim(fpb);
	idle = !fpb->in_flight;
	spin_unlock_irq(&fpb->vq_lock);
	return idle;
}

/*
 * Tell the device where the header is.  The address never changes in a
 * session and the device re-reads the header under seq whenever it uses
 * it, so an announcement is only a hint and a device that keeps the last
 * buffer loses nothing: wait for it a while, then warn and carry on
 * without filling the ring.
 */
static void fpb_announce_func(struct work_struct *work)
{
	struct virtio_balloon_fpb *fpb = container_of(work, struct virtio_balloon_fpb,
						       announce_work);
	struct scatterlist sg;
	int err;

	if (!wait_event_timeout(fpb->acked, fpb_idle(fpb), FPB_ANNOUNCE_TIMEOUT)) {
		dev_warn_ratelimited(&fpb->vdev->dev,
				     "free page bitmap: device keeps the last announcement\n");
		return;
	}
	sg_init_one(&sg, fpb->announce, sizeof(*fpb->announce));
	spin_lock_irq(&fpb->vq_lock);
	err = virtqueue_add_outbuf(fpb->vq, &sg, 1, fpb, GFP_ATOMIC);
	if (!err) {
		fpb->in_flight = true;
		virtqueue_kick(fpb->vq);
	}
	spin_unlock_irq(&fpb->vq_lock);
	if (err)
		dev_warn_ratelimited(&fpb->vdev->dev,
				     "free page bitmap: cannot announce: %d\n", err);
}

static void fpb_cmd_func(struct work_struct *work)
{
	struct virtio_balloon_fpb *fpb = container_of(work, struct virtio_balloon_fpb,
						       cmd_work);
	u32 cmd;

	/* Legacy balloon config space is LE, unlike all other devices. */
	virtio_cread_le(fpb->vdev, struct virtio_balloon_config,
			free_page_bitmap_cmd, &cmd);
	/* Balloon size changes notify too: skip the core's locks then. */
	if (cmd == fpb->cmd)
		return;
	fpb->cmd = cmd;
	switch (cmd) {
	case VIRTIO_BALLOON_FPB_CMD_START:
	case VIRTIO_BALLOON_FPB_CMD_STOP:
		/* Only the latest command counts; repeats change nothing. */
		free_page_bitmap_host_request(&fpb->client,
					      cmd == VIRTIO_BALLOON_FPB_CMD_START);
		break;
	default:
		dev_warn_ratelimited(&fpb->vdev->dev,
				     "free page bitmap: ignoring unknown command %u\n", cmd);
	}
}

/**
 * virtio_balloon_fpb_config_changed() - the device may have a new command
 * @fpb: the state from virtio_balloon_fpb_start(), or %NULL
 *
 * Context: Any context; from the driver's config_changed callback.
 */
void virtio_balloon_fpb_config_changed(struct virtio_balloon_fpb *fpb)
{
	unsigned long flags;

	if (!fpb)
		return;
	/* May run in interrupt context; the mm core needs process context. */
	spin_lock_irqsave(&fpb->stop_lock, flags);
	if (!fpb->stopping)
		queue_work(system_freezable_wq, &fpb->cmd_work);
	spin_unlock_irqrestore(&fpb->stop_lock, flags);
}

/*
 * Guest RAM survives reboot and kexec: leave no active header behind.  The
 * virtio bus then resets the device in device_shutdown(), which makes it
 * forget the header, before the next kernel reuses the pages; they are
 * never freed on this path.  kdump's kernel runs from memory that was
 * never on the free lists, so no bit ever covered it.
 */
static int fpb_reboot(struct notifier_block *nb, unsigned long action, void *data)
{
	struct virtio_balloon_fpb *fpb = container_of(nb, struct virtio_balloon_fpb,
						       reboot_nb);

	fpb_retire(fpb);
	return NOTIFY_DONE;
}

#ifdef CONFIG_DEBUG_FS
/*
 * The layout as the device reads it, decoded from the shared header:
 * "layout" in text, "bitmaps" as one line per range (in the format of
 * the mm core's debugfs zones/ files) followed by the range's bitmap,
 * read through its table of frame numbers.
 */
static int fpb_layout_show(struct seq_file *m, void *v)
{
	struct virtio_balloon_fpb *fpb = m->private;
	const struct virtio_balloon_fpb_header *hdr = fpb->hdr;
	const struct virtio_balloon_fpb_range *ranges = fpb->desc;
	unsigned int i, nr;

	mutex_lock(&fpb->lock);
	nr = le32_to_cpu(hdr->nr_ranges);
	seq_printf(m, "header_gpa %#llx\nmagic %#x\nversion %u\npage_shift %u\n",
		   (unsigned long long)le64_to_cpu(fpb->announce->header_gpa),
		   le32_to_cpu(hdr->magic), le16_to_cpu(hdr->version),
		   hdr->page_shift);
	seq_printf(m, "granule_order %u\nseq %u\nflags %#x\nnr_ranges %u\n",
		   hdr->granule_order, le32_to_cpu(hdr->seq),
		   le32_to_cpu(hdr->flags), nr);
	/* fpb->lock: the ranges are the ones the header describes */
	for (i = 0; i < nr; i++)
		seq_printf(m, "range %u start_pfn %#llx nr_bits %llu table_entries %llu\n",
			   i, le64_to_cpu(ranges[i].start_pfn),
			   le64_to_cpu(ranges[i].nr_bits),
			   le64_to_cpu(ranges[i].nr_table_entries));
	mutex_unlock(&fpb->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(fpb_layout);

/*
 * One range, a page at a time under hdr_lock: the core frees the bitmaps
 * only after invalidate() has taken it, so a page is copied only while
 * the header still publishes the layout that was read (@seq).  Returns
 * false if the layout went away meanwhile.
 */
static bool fpb_show_range(struct seq_file *m, struct virtio_balloon_fpb *fpb,
			   const struct virtio_balloon_fpb_range *r, u32 seq)
{
	const struct virtio_balloon_fpb_header *hdr = fpb->hdr;
	const __le64 *table = phys_to_virt(le64_to_cpu(r->pfn_table_gpa));
	u64 bytes = DIV_ROUND_UP(le64_to_cpu(r->nr_bits), BITS_PER_BYTE);
	bool still = true;
	u64 i;

	seq_printf(m, "start_pfn %#llx nr_bits %llu granule_order %u\n",
		   le64_to_cpu(r->start_pfn), le64_to_cpu(r->nr_bits),
		   hdr->granule_order);
	for (i = 0; i < le64_to_cpu(r->nr_table_entries) && bytes && still; i++) {
		unsigned long pfn = le64_to_cpu(table[i]);
		size_t len = min_t(u64, bytes, PAGE_SIZE);
		void *p;

		if (!pfn_valid(pfn))
			break;
		spin_lock(&fpb->hdr_lock);
		still = le32_to_cpu(hdr->seq) == seq;
		if (still) {
			p = kmap_local_page(pfn_to_page(pfn));
			seq_write(m, p, len);
			kunmap_local(p);
		}
		spin_unlock(&fpb->hdr_lock);
		bytes -= len;
	}
	return still;
}

static int fpb_bitmaps_show(struct seq_file *m, void *v)
{
	struct virtio_balloon_fpb *fpb = m->private;
	const struct virtio_balloon_fpb_header *hdr = fpb->hdr;
	const struct virtio_balloon_fpb_range *ranges = fpb->desc;
	unsigned int i;
	u32 seq;

	/* fpb->lock keeps the table; the seq it was active at keeps the bits. */
	mutex_lock(&fpb->lock);
	spin_lock(&fpb->hdr_lock);
	seq = le32_to_cpu(hdr->seq);
	if (!(le32_to_cpu(hdr->flags) & VIRTIO_BALLOON_FPB_F_ACTIVE))
		seq = 1;
	spin_unlock(&fpb->hdr_lock);
	for (i = 0; !(seq & 1) && i < le32_to_cpu(hdr->nr_ranges); i++)
		if (!fpb_show_range(m, fpb, &ranges[i], seq))
			break;
	mutex_unlock(&fpb->lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(fpb_bitmaps);

static void fpb_debugfs_init(struct virtio_balloon_fpb *fpb)
{
	fpb->debugfs = debugfs_create_dir("virtio_balloon_fpb", NULL);
	debugfs_create_file("layout", 0400, fpb->debugfs, fpb, &fpb_layout_fops);
	debugfs_create_file("bitmaps", 0400, fpb->debugfs, fpb, &fpb_bitmaps_fops);
}
#else
static void fpb_debugfs_init(struct virtio_balloon_fpb *fpb)
{
}
#endif

/*
 * Queue indexes count negotiated features (only their queues exist in
 * Linux) while a device numbers its queues by the features it offers:
 * the two agree only if no earlier queue's feature was dropped.
 */
static bool fpb_queue_index_agrees(struct virtio_device *vdev)
{
	static const unsigned int queue_features[] = {
		VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_F_FREE_PAGE_HINT,
		VIRTIO_BALLOON_F_REPORTING,
	};
	u64 offered = vdev->config->get_features(vdev);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(queue_features); i++)
		if ((offered & BIT_ULL(queue_features[i])) &&
		    !virtio_has_feature(vdev, queue_features[i]))
			return false;
	return true;
}

static const char *fpb_unusable_reason(struct virtio_device *vdev)
{
	/* Skipped pages keep stale content: nothing may rely on it. */
	if (want_init_on_free())
		return "init_on_free is on";
	if (page_poisoning_enabled_static())
		return "page poisoning is on";
	/* The device must read the bitmap as plain guest memory. */
	if (virtio_has_feature(vdev, VIRTIO_F_ACCESS_PLATFORM))
		return "the device uses VIRTIO_F_ACCESS_PLATFORM";
	/* Defensive: such guests also need VIRTIO_F_ACCESS_PLATFORM. */
	if (cc_platform_has(CC_ATTR_MEM_ENCRYPT))
		return "memory is encrypted";
	if (!fpb_queue_index_agrees(vdev))
		return "an earlier queue was offered but not negotiated";
	return NULL;
}

/**
 * virtio_balloon_fpb_validate() - refuse the feature if it cannot be honoured
 * @vdev: the balloon device, in its .validate
 *
 * Call it last but before VIRTIO_F_ACCESS_PLATFORM is cleared.
 *
 * Context: Process context; the driver's .validate.
 */
void virtio_balloon_fpb_validate(struct virtio_device *vdev)
{
	const char *why;

	if (!virtio_has_feature(vdev, VIRTIO_BALLOON_F_FREE_PAGE_BITMAP))
		return;
	why = fpb_unusable_reason(vdev);
	if (why) {
		dev_info(&vdev->dev, "free page bitmap disabled: %s\n", why);
		__virtio_clear_bit(vdev, VIRTIO_BALLOON_F_FREE_PAGE_BITMAP);
	}
}

/**
 * virtio_balloon_fpb_start() - become the free page bitmap's client
 * @vdev: the balloon device, after DRIVER_OK
 * @vq: its free page bitmap virtqueue
 *
 * Context: Process context; takes the mm core's locks.
 * Return: the state to pass to the other calls, or %NULL if the feature
 * was not negotiated or cannot start (the balloon works on without it).
 */
struct virtio_balloon_fpb *virtio_balloon_fpb_start(struct virtio_device *vdev,
						    struct virtqueue *vq)
{
	struct virtio_balloon_fpb *fpb;
	int err = -ENOMEM;

	if (!virtio_has_feature(vdev, VIRTIO_BALLOON_F_FREE_PAGE_BITMAP))
		return NULL;
	fpb = kzalloc(sizeof(*fpb), GFP_KERNEL);
	if (!fpb)
		goto fail;
	fpb->announce = kzalloc(sizeof(*fpb->announce), GFP_KERNEL);
	fpb->hdr = (void *)get_zeroed_page(GFP_KERNEL);
	if (!fpb->announce || !fpb->hdr)
		goto free;

	fpb->vdev = vdev;
	fpb->vq = vq;
	fpb->announce->header_gpa = cpu_to_le64(virt_to_phys(fpb->hdr));
	fpb->client.granule_order = fpb_device_granule(vdev);
	fpb->client.invalidate = fpb_invalidate;
	fpb->client.publish = fpb_publish_layout;
	fpb->reboot_nb.notifier_call = fpb_reboot;
	fpb->cmd = FPB_CMD_NONE;
	INIT_WORK(&fpb->cmd_work, fpb_cmd_func);
	INIT_WORK(&fpb->announce_work, fpb_announce_func);
	spin_lock_init(&fpb->stop_lock);
	spin_lock_init(&fpb->vq_lock);
	spin_lock_init(&fpb->hdr_lock);
	mutex_init(&fpb->lock);
	init_waitqueue_head(&fpb->acked);

	/* An inactive header, so that the device knows where to look. */
	virtio_balloon_fpb_encode(fpb->hdr, NULL, 0, &(struct free_page_bitmap_layout){});
	err = register_reboot_notifier(&fpb->reboot_nb);
	if (err)
		goto free;
	err = free_page_bitmap_register(&fpb->client);
	if (err)
		goto unregister_reboot;

	queue_work(system_unbound_wq, &fpb->announce_work);
	/* A migration may already be running. */
	virtio_balloon_fpb_config_changed(fpb);
	fpb_debugfs_init(fpb);
	return fpb;

unregister_reboot:
	unregister_reboot_notifier(&fpb->reboot_nb);
free:
	free_page((unsigned long)fpb->hdr);
	kfree(fpb->announce);
	kfree(fpb);
fail:
	dev_warn(&vdev->dev, "free page bitmap unavailable: %d\n", err);
	return NULL;
}

/**
 * virtio_balloon_fpb_stop() - stop publishing, before the device is reset
 * @fpb: the state from virtio_balloon_fpb_start(), or %NULL
 *
 * The header goes inactive for good; the bits stay maintained and every
 * page stays allocated until virtio_balloon_fpb_free().
 *
 * Context: Process context.
 */
void virtio_balloon_fpb_stop(struct virtio_balloon_fpb *fpb)
{
	if (!fpb)
		return;
	spin_lock_irq(&fpb->stop_lock);
	fpb->stopping = true;
	spin_unlock_irq(&fpb->stop_lock);
	cancel_work_sync(&fpb->cmd_work);

	/* A layout the core publishes from now on finds the header retired. */
	fpb_retire(fpb);
	cancel_work_sync(&fpb->announce_work);
	unregister_reboot_notifier(&fpb->reboot_nb);
	debugfs_remove_recursive(fpb->debugfs);
}

/**
 * virtio_balloon_fpb_free() - let the bitmaps go, once the device is reset
 * @fpb: the state from virtio_balloon_fpb_start(), or %NULL
 *
 * Leaving the mm core lets it stop tracking and free the bitmaps (unless
 * tracking is always on); the header and the table are freed here.
 *
 * Context: Process context; takes the mm core's locks.
 */
void virtio_balloon_fpb_free(struct virtio_balloon_fpb *fpb)
{
	if (!fpb)
		return;
	free_page_bitmap_unregister(&fpb->client);
	if (fpb->desc)
		free_pages_exact(fpb->desc, fpb->desc_bytes);
	free_page((unsigned long)fpb->hdr);
	kfree(fpb->announce);
	kfree(fpb);
}


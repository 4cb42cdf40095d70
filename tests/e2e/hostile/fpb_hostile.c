// SPDX-License-Identifier: GPL-2.0
/*
 * A hostile guest, for the end-to-end tests only: it takes over the free
 * page bitmap header that the virtio-balloon driver announced
 * (@header_gpa) and, until it is unloaded, attacks the host through it.
 * Its layout is one range over [0, @end_pfn) with every bit set: each page
 * free, the PCI hole, the BARs and the BIOS included.  It publishes that
 * layout active at once, then cycles: for @churn_ms it bumps seq as fast
 * as it can, flipping VIRTIO_BALLOON_FPB_F_ACTIVE and republishing every
 * time, and for @hold_ms it holds the layout still and active, so that the
 * host loads it.  @churn_ms=0: hold for good; @hold_ms=0: churn for good.
 * @dry: the same work on a private copy of the header, which the host
 * never reads: a guest as busy, for a yardstick.
 * The host must stay responsive and drop nothing but guest RAM; this
 * guest's own memory is lost, as it asked.  It writes the header without
 * the driver's lock, so the driver must not republish meanwhile (no
 * granule change, hotplug or mode change: the test keeps tracking on) nor
 * free the header (no unbind); unloading leaves the header active on a
 * layout it leaks on purpose.
 */
#include <linux/delay.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/slab.h>
#include <uapi/linux/virtio_balloon.h>

static unsigned long header_gpa;
module_param(header_gpa, ulong, 0444);
static unsigned long end_pfn;
module_param(end_pfn, ulong, 0444);
static unsigned int churn_ms = 200;
module_param(churn_ms, uint, 0444);
static unsigned int hold_ms = 200;
module_param(hold_ms, uint, 0444);
static bool dry;
module_param(dry, bool, 0444);

static struct virtio_balloon_fpb_header *hdr;
static struct virtio_balloon_fpb_range *range;
static __le64 *table;
static void *ones;
static struct task_struct *task;
static unsigned long bumps;

/* An odd seq: the host ignores the header until publish_end(). */
static void publish_begin(void)
{
	WRITE_ONCE(hdr->seq, cpu_to_le32(le32_to_cpu(READ_ONCE(hdr->seq)) | 1));
	/* odd seq before the layout changes, as the driver does it */
	virt_wmb();
}

static void publish_end(bool active)
{
	u32 seq = le32_to_cpu(READ_ONCE(hdr->seq));

	WRITE_ONCE(hdr->nr_ranges, cpu_to_le32(1));
	WRITE_ONCE(hdr->ranges_gpa, cpu_to_le64(virt_to_phys(range)));
	WRITE_ONCE(hdr->flags, cpu_to_le32(active ? VIRTIO_BALLOON_FPB_F_ACTIVE : 0));
	/* the layout before the even seq that publishes it */
	virt_wmb();
	WRITE_ONCE(hdr->seq, cpu_to_le32(seq + 1));
	bumps++;
}

static void publish(bool active)
{
	publish_begin();
	publish_end(active);
}

static int attack(void *unused)
{
	bool active = false;

	publish(true);
	while (!kthread_should_stop()) {
		unsigned long until = jiffies + msecs_to_jiffies(churn_ms);

		while ((!hold_ms || time_before(jiffies, until)) && !kthread_should_stop()) {
			/*
			 * Rescheduled with seq odd: a host that reads while
			 * this vCPU is off has nothing to believe, so the
			 * churn lasts rather than a layout read in a pause.
			 */
			publish_begin();
			cond_resched();
			publish_end(active);
			active = !active;
		}
		if (churn_ms)
			publish(true);
		msleep(hold_ms);
	}
	return 0;
}

static int __init fpb_hostile_init(void)
{
	u64 nr_bits, entries, i;

	if (!header_gpa || !end_pfn)
		return -EINVAL;
	hdr = phys_to_virt(header_gpa);
	if (le32_to_cpu(hdr->magic) != VIRTIO_BALLOON_FPB_MAGIC)
		return -ENODEV;
	if (dry) {
		hdr = kmemdup(hdr, sizeof(*hdr), GFP_KERNEL);
		if (!hdr)
			return -ENOMEM;
	}
	nr_bits = end_pfn >> hdr->granule_order;
	entries = DIV_ROUND_UP(nr_bits, 8ULL << hdr->page_shift);
	range = kzalloc(sizeof(*range), GFP_KERNEL);
	table = kcalloc(entries, sizeof(*table), GFP_KERNEL);
	ones = (void *)__get_free_page(GFP_KERNEL);
	if (!range || !table || !ones)
		goto nomem;
	memset(ones, 0xff, PAGE_SIZE);
	for (i = 0; i < entries; i++)
		table[i] = cpu_to_le64(virt_to_phys(ones) >> PAGE_SHIFT);
	range->start_pfn = 0;
	range->nr_bits = cpu_to_le64(nr_bits);
	range->pfn_table_gpa = cpu_to_le64(virt_to_phys(table));
	range->nr_table_entries = cpu_to_le64(entries);
	task = kthread_run(attack, NULL, "fpb_hostile");
	if (IS_ERR(task)) {
		free_page((unsigned long)ones);
		kfree(table);
		kfree(range);
		if (dry)
			kfree(hdr);
		return PTR_ERR(task);
	}
	pr_info("fpb_hostile: %s header %#lx: pfns 0-%#lx free, churn %u ms, hold %u ms\n",
		dry ? "dry run on a copy of" : "attacking", header_gpa, end_pfn,
		churn_ms, hold_ms);
	return 0;
nomem:
	free_page((unsigned long)ones);
	kfree(table);
	kfree(range);
	if (dry)
		kfree(hdr);
	return -ENOMEM;
}

static void __exit fpb_hostile_exit(void)
{
	kthread_stop(task);
	pr_info("fpb_hostile: %lu layouts published\n", bumps);
}

module_init(fpb_hostile_init);
module_exit(fpb_hostile_exit);
MODULE_DESCRIPTION("A guest that attacks the host through the free page bitmap (tests only)");
MODULE_LICENSE("GPL");

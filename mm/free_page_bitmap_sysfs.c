// SPDX-License-Identifier: GPL-2.0
/*
 * The free page bitmap's user interface: the boot parameter, the knobs and
 * counters in /sys/kernel/mm/free_page_bitmap/ (see
 * Documentation/ABI/testing/sysfs-kernel-mm-free_page_bitmap) and the
 * debugfs files that check the bitmaps against the free lists.
 */

#define pr_fmt(fmt) "free_page_bitmap: " fmt

#include <linux/debugfs.h>
#include <linux/init.h>
#include <linux/kobject.h>
#include <linux/mm.h>
#include <linux/mmzone.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/sysfs.h>

#include "free_page_bitmap.h"

static const char * const fpb_mode_names[] = {
	[FREE_PAGE_BITMAP_ALWAYS] = "always",
	[FREE_PAGE_BITMAP_HOST] = "host",
	[FREE_PAGE_BITMAP_NEVER] = "never",
};

static int fpb_parse_mode(const char *buf)
{
	int mode;

	for (mode = 0; mode < ARRAY_SIZE(fpb_mode_names); mode++)
		if (sysfs_streq(buf, fpb_mode_names[mode]))
			return mode;
	return -EINVAL;
}

/* free_page_bitmap=always|host|never on the kernel command line */
static int __init fpb_setup(char *str)
{
	int mode = str ? fpb_parse_mode(str) : -EINVAL;

	if (mode < 0) {
		pr_warn("unknown mode '%s', ignored\n", str);
		return 1;
	}
	free_page_bitmap_set_boot_mode(mode);
	return 1;
}
__setup("free_page_bitmap=", fpb_setup);

#ifdef CONFIG_SYSFS
/*
 * /sys/kernel/mm/free_page_bitmap/
 *   enabled             always, host (on the host's request) or never
 *   granule_order       log2 of the pages per bit; "auto" takes the device's
 *   active              1 while the bitmaps are maintained and published
 *   inactive_reason     why not, or "none"
 *   tracked_free_pages  pages the bitmaps report free
 *   bitmap_bytes        memory the bitmaps use
 *   rebuild_count, last_rebuild_us, max_rebuild_us
 */
static ssize_t enabled_show(struct kobject *kobj, struct kobj_attribute *attr,
			    char *buf)
{
	enum free_page_bitmap_mode cur = free_page_bitmap_read_state().mode;
	int mode, len = 0;

	for (mode = 0; mode < ARRAY_SIZE(fpb_mode_names); mode++)
		len += sysfs_emit_at(buf, len, mode == cur ? "%s[%s]" : "%s%s",
				     mode ? " " : "", fpb_mode_names[mode]);
	return len + sysfs_emit_at(buf, len, "\n");
}

static ssize_t enabled_store(struct kobject *kobj, struct kobj_attribute *attr,
			     const char *buf, size_t count)
{
	int mode = fpb_parse_mode(buf);
	int err;

	if (mode < 0)
		return mode;
	err = free_page_bitmap_set_mode(mode);
	return err ? err : count;
}

static struct kobj_attribute enabled_attr = __ATTR_RW(enabled);

static ssize_t granule_order_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%u\n", free_page_bitmap_read_state().granule_order);
}

static ssize_t granule_order_store(struct kobject *kobj,
				   struct kobj_attribute *attr,
				   const char *buf, size_t count)
{
	unsigned int order;
	int err;

	/* "auto": the granule the balloon device proposes */
	if (sysfs_streq(buf, "auto")) {
		err = free_page_bitmap_set_granule(FREE_PAGE_BITMAP_GRANULE_AUTO);
		return err ? err : count;
	}
	err = kstrtouint(buf, 10, &order);
	if (err)
		return err;
	/* Checked here too: above INT_MAX it would read as "auto" */
	if (order > MAX_PAGE_ORDER)
		return -EINVAL;
	err = free_page_bitmap_set_granule(order);
	return err ? err : count;
}

static struct kobj_attribute granule_order_attr = __ATTR_RW(granule_order);

static ssize_t active_show(struct kobject *kobj, struct kobj_attribute *attr,
			   char *buf)
{
	return sysfs_emit(buf, "%d\n", free_page_bitmap_active());
}

static struct kobj_attribute active_attr = __ATTR_RO(active);

static ssize_t inactive_reason_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	const char *reason = free_page_bitmap_read_state().stats.inactive_reason;

	return sysfs_emit(buf, "%s\n", reason ?: "none");
}

static struct kobj_attribute inactive_reason_attr = __ATTR_RO(inactive_reason);

static ssize_t tracked_free_pages_show(struct kobject *kobj,
				       struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", free_page_bitmap_tracked_pages());
}

static struct kobj_attribute tracked_free_pages_attr =
	__ATTR_RO(tracked_free_pages);

static ssize_t bitmap_bytes_show(struct kobject *kobj,
				 struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", free_page_bitmap_read_state().stats.bitmap_bytes);
}

static struct kobj_attribute bitmap_bytes_attr = __ATTR_RO(bitmap_bytes);

static ssize_t rebuild_count_show(struct kobject *kobj,
				  struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%lu\n", free_page_bitmap_read_state().stats.rebuild_count);
}

static struct kobj_attribute rebuild_count_attr = __ATTR_RO(rebuild_count);

static ssize_t last_rebuild_us_show(struct kobject *kobj,
				    struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", free_page_bitmap_read_state().stats.last_rebuild_us);
}

static struct kobj_attribute last_rebuild_us_attr = __ATTR_RO(last_rebuild_us);

static ssize_t max_rebuild_us_show(struct kobject *kobj,
				   struct kobj_attribute *attr, char *buf)
{
	return sysfs_emit(buf, "%llu\n", free_page_bitmap_read_state().stats.max_rebuild_us);
}

static struct kobj_attribute max_rebuild_us_attr = __ATTR_RO(max_rebuild_us);

static struct attribute *fpb_attrs[] = {
	&enabled_attr.attr,
	&granule_order_attr.attr,
	&active_attr.attr,
	&inactive_reason_attr.attr,
	&tracked_free_pages_attr.attr,
	&bitmap_bytes_attr.attr,
	&rebuild_count_attr.attr,
	&last_rebuild_us_attr.attr,
	&max_rebuild_us_attr.attr,
	NULL,
};

static const struct attribute_group fpb_attr_group = {
	.attrs = fpb_attrs,
	.name = "free_page_bitmap",
};

static int __init fpb_sysfs_init(void)
{
	int err = sysfs_create_group(mm_kobj, &fpb_attr_group);

	if (err)
		pr_err("cannot create sysfs files: %d\n", err);
	return err;
}
subsys_initcall(fpb_sysfs_init);
#endif /* CONFIG_SYSFS */

#ifdef CONFIG_DEBUG_FS
/*
 * /sys/kernel/debug/free_page_bitmap/
 *   verify          reading it checks every bitmap against the free lists
 *                   and returns the number of wrong bits (details in dmesg)
 *   captured        free blocks direct compaction captured while tracked
 *   zones/NODE-ZONE the raw bitmap of one zone of a possible node: a header
 *                   line, then bytes; empty while the zone has no bitmap
 */
static int fpb_verify_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%lu\n", free_page_bitmap_verify());
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(fpb_verify);

static int fpb_zone_show(struct seq_file *m, void *v)
{
	free_page_bitmap_show_zone(m, m->private);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(fpb_zone);

static int __init fpb_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("free_page_bitmap", NULL);
	struct dentry *zones = debugfs_create_dir("zones", dir);
	struct zone *zone;
	char name[32];
	int nid;

	debugfs_create_file("verify", 0400, dir, NULL, &fpb_verify_fops);
	debugfs_create_atomic_t("captured", 0400, dir, &free_page_bitmap_captured);
	/*
	 * Every possible node, not only the online ones (for_each_zone()):
	 * a node without memory at boot has its pgdat from free_area_init()
	 * on, and keeps it when memory hotplug brings it online later.
	 */
	for_each_node(nid) {
		struct pglist_data *pgdat = NODE_DATA(nid);

		for (zone = pgdat->node_zones;
		     zone < pgdat->node_zones + MAX_NR_ZONES; zone++) {
			snprintf(name, sizeof(name), "node%d-%s", nid, zone->name);
			debugfs_create_file(name, 0400, zones, zone, &fpb_zone_fops);
		}
	}
	return 0;
}
late_initcall(fpb_debugfs_init);
#endif /* CONFIG_DEBUG_FS */

// SPDX-License-Identifier: GPL-2.0
/*
 * The free page bitmap's user interface: /sys/kernel/mm/free_page_bitmap/
 * and /sys/kernel/debug/free_page_bitmap/verify.
 *
 * Every knob takes its valid values and rejects bad ones with EINVAL
 * without changing; the state files follow; the bitmaps stay exact (verify
 * reads 0) while tracking is toggled and rebuilt under processes that
 * mmap, fault in, THP-collapse and munmap memory; the pages the bitmaps
 * call free are exactly the pages on the buddy free lists; and onlining and
 * offlining a memory block (if the machine has an offline one, e.g. a
 * DIMM with memhp_default_state=offline) keeps them exact, and so does
 * direct compaction when it captures the blocks it frees.
 *
 * With a virtio-balloon device that negotiated the free page bitmap, the
 * layout the driver publishes (/sys/kernel/debug/virtio_balloon_fpb/) is
 * decoded as a host would and checked byte for byte against the mm core's
 * own view.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../kselftest.h"

#define FPB_DIR		"/sys/kernel/mm/free_page_bitmap/"
#define FPB_VERIFY	"/sys/kernel/debug/free_page_bitmap/verify"
#define FPB_ZONES	"/sys/kernel/debug/free_page_bitmap/zones/"
#define FPB_CAPTURED	"/sys/kernel/debug/free_page_bitmap/captured"
#define NR_HUGEPAGES	"/proc/sys/vm/nr_hugepages"
#define PROACTIVENESS	"/proc/sys/vm/compaction_proactiveness"
#define VB_FPB_DIR	"/sys/kernel/debug/virtio_balloon_fpb/"
#define NR_CHURNERS	4
#define CHURN_SIZE	(8UL << 20)
#define MAX_ZONES	64
/* Samples of the free page counts until the allocator is quiet (100 ms apart) */
#define QUIET_TRIES	50
/* Reads of the published and core bitmaps that may see bits change */
#define COMPARE_TRIES	3

static int read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t len;

	if (fd < 0)
		return -errno;
	len = read(fd, buf, size - 1);
	close(fd);
	if (len < 0)
		return -errno;
	buf[len] = '\0';
	if (len && buf[len - 1] == '\n')
		buf[len - 1] = '\0';
	return 0;
}

static char *knob(const char *name)
{
	static char buf[256];
	char path[128];

	snprintf(path, sizeof(path), FPB_DIR "%s", name);
	if (read_file(path, buf, sizeof(buf)))
		ksft_exit_fail_msg("cannot read %s: %s\n", path, strerror(errno));
	return buf;
}

static unsigned long knob_ul(const char *name)
{
	return strtoul(knob(name), NULL, 10);
}

/* Write @val to a file; returns 0 or the errno of the write. */
static int write_path(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY), err = 0;

	if (fd < 0)
		return errno;
	if (write(fd, val, strlen(val)) < 0)
		err = errno;
	close(fd);
	return err;
}

/* Write @val to a knob; returns 0 or the errno of the write. */
static int write_knob(const char *name, const char *val)
{
	char path[128];

	snprintf(path, sizeof(path), FPB_DIR "%s", name);
	return write_path(path, val);
}

static void must_write(const char *name, const char *val)
{
	int err = write_knob(name, val);

	if (err)
		ksft_exit_fail_msg("writing '%s' to %s: %s\n", val, name, strerror(err));
}

/*
 * Wrong bits found by the debugfs cross-check, or -1 if it cannot be read
 * or does not read as a number.
 */
static long verify(void)
{
	char buf[32], *end;
	long wrong;

	if (read_file(FPB_VERIFY, buf, sizeof(buf)))
		return -1;
	errno = 0;
	wrong = strtol(buf, &end, 10);
	if (errno || end == buf || *end || wrong < 0)
		return -1;
	return wrong;
}

/* Results of several verify() reads: a failed read is never a count. */
struct verify_sum {
	long wrong;
	unsigned int errors;
};

static void verify_add(struct verify_sum *sum)
{
	long wrong = verify();

	if (wrong < 0)
		sum->errors++;
	else
		sum->wrong += wrong;
}

/*
 * Pages on the buddy free lists, per /proc/buddyinfo, or -1 if it cannot
 * be read.  Read into a buffer of the caller's (no allocation of ours
 * between the samples that compare it with tracked_free_pages).
 */
static long buddyinfo_pages(char *buf, size_t size)
{
	unsigned long total = 0, n;
	char *line, *save, *p, *end;
	int order;

	if (read_file("/proc/buddyinfo", buf, size))
		return -1;
	/* "Node 0, zone   Normal   12   3 ...": counts of order 0, 1, ... */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		p = strstr(line, "zone");
		if (!p)
			continue;
		p += strlen("zone");
		p += strspn(p, " ");
		p += strcspn(p, " ");
		for (order = 0; ; order++, p = end) {
			n = strtoul(p, &end, 10);
			if (end == p)
				break;
			total += n << order;
		}
	}
	return total;
}

/* tracked_free_pages, or -1 if it cannot be read */
static long tracked_pages(void)
{
	char buf[32], *end;
	long pages;

	if (read_file(FPB_DIR "tracked_free_pages", buf, sizeof(buf)))
		return -1;
	pages = strtol(buf, &end, 10);
	return end == buf || *end ? -1 : pages;
}

/*
 * The bitmaps and /proc/buddyinfo must count the same pages, exactly.
 * Anything that allocates or frees between the two reads moves pages
 * between the free lists and the per-cpu lists (the pages a big free put
 * on the per-cpu lists drain back for many seconds), and there is no
 * knob that drains the per-cpu lists from user space.  So sample
 * tracked_free_pages, /proc/buddyinfo and tracked_free_pages again, with
 * no allocation of ours in between, until both tracked reads agree: the
 * allocator was quiet for that sample, and it must match exactly.  Only
 * a guest that is never quiet in QUIET_TRIES samples fails for noise.
 */
static void test_buddyinfo(void)
{
	static char buf[16384];
	long before = -1, listed = -1, after = -1;
	unsigned int errors = 0, stable = 0;
	int tries;

	for (tries = 1; tries <= QUIET_TRIES; tries++) {
		before = tracked_pages();
		listed = buddyinfo_pages(buf, sizeof(buf));
		after = tracked_pages();
		if (before < 0 || listed < 0 || after < 0) {
			errors++;
			break;
		}
		if (before == after) {
			stable++;
			if (listed == before)
				break;
		}
		usleep(100000);
	}
	if (tries > QUIET_TRIES)
		tries = QUIET_TRIES;
	ksft_print_msg("tracked_free_pages %ld, %ld around buddyinfo %ld: sample %d, %u quiet\n",
		       before, after, listed, tries, stable);
	ksft_test_result(!errors && before == after && listed == before,
			 "tracked_free_pages equals /proc/buddyinfo exactly in a quiet sample (%u read errors)\n",
			 errors);
}

static unsigned long meminfo_kb(const char *field)
{
	FILE *f = fopen("/proc/meminfo", "r");
	unsigned long kb = 0;
	char line[128];

	if (!f)
		ksft_exit_fail_msg("/proc/meminfo: %s\n", strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, field, strlen(field)) && line[strlen(field)] == ':')
			kb = strtoul(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return kb;
}

struct write_case {
	const char *knob, *value;
	int error;		/* 0 or the errno the write must fail with */
	/* what the knob reads afterwards, if it changed; NULL: any number */
	const char *shows;
};

static const struct write_case write_cases[] = {
	{ "enabled", "always", 0, "[always] host never" },
	{ "enabled", "never", 0, "always host [never]" },
	{ "enabled", "host", 0, "always [host] never" },
	{ "enabled", "sometimes", EINVAL },
	{ "enabled", "\n", EINVAL },
	{ "enabled", "always never", EINVAL },
	{ "enabled", "[always]", EINVAL },
	{ "granule_order", "3", 0, "3" },
	{ "granule_order", "auto", 0, NULL },
	{ "granule_order", "0", 0, "0" },
	{ "granule_order", "autos", EINVAL },
	{ "granule_order", "11", EINVAL },
	{ "granule_order", "-1", EINVAL },
	{ "granule_order", "one", EINVAL },
	{ "granule_order", "4294967296", ERANGE },
	{ "active", "1", EACCES },
	{ "inactive_reason", "none", EACCES },
	{ "tracked_free_pages", "0", EACCES },
	{ "bitmap_bytes", "0", EACCES },
	{ "rebuild_count", "0", EACCES },
	{ "last_rebuild_us", "0", EACCES },
	{ "max_rebuild_us", "0", EACCES },
};

/* A value as the test names show it: the newline of `echo >` spelt out. */
static const char *shown(const char *value)
{
	return strcmp(value, "\n") ? value : "\\n";
}

static void test_writes(void)
{
	char before[256];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(write_cases); i++) {
		const struct write_case *c = &write_cases[i];
		const char *name = c->knob, *value = shown(c->value);
		int err;

		snprintf(before, sizeof(before), "%s", knob(name));
		err = write_knob(name, c->value);
		if (c->error)
			ksft_test_result(err == c->error && !strcmp(before, knob(name)),
					 "%s: '%s' fails with %s and changes nothing (got %s)\n",
					 name, value, strerror(c->error), strerror(err));
		else
			ksft_test_result(!err && (c->shows ? !strcmp(knob(name), c->shows) :
						  isdigit(*knob(name))),
					 "%s: '%s' is taken and reads '%s' (got %s, '%s')\n",
					 name, value, c->shows ?: "a number", strerror(err),
					 knob(name));
	}
}

static void test_state(void)
{
	unsigned long rebuilds = knob_ul("rebuild_count"), bytes;
	unsigned long tracked, memfree;

	must_write("enabled", "always");
	ksft_test_result(knob_ul("active") == 1 && !strcmp(knob("inactive_reason"), "none"),
			 "enabled=always: active, inactive_reason none\n");
	ksft_test_result(knob_ul("rebuild_count") == rebuilds + 1,
			 "enabling builds the bitmaps once\n");
	bytes = knob_ul("bitmap_bytes");
	ksft_test_result(bytes > 0, "bitmap_bytes %lu > 0 while active\n", bytes);
	ksft_test_result(verify() == 0, "verify: 0 wrong bits after enabling\n");

	test_buddyinfo();
	tracked = knob_ul("tracked_free_pages");
	memfree = meminfo_kb("MemFree") / (getpagesize() / 1024);
	ksft_print_msg("tracked_free_pages %lu, MemFree %lu pages\n", tracked, memfree);
	/*
	 * MemFree leaves out isolated free pages and lags behind by the
	 * per-cpu vmstat deltas; allow 5%.
	 */
	ksft_test_result(labs((long)(tracked - memfree)) <= (long)memfree / 20 + 256,
			 "tracked_free_pages matches MemFree within 5%%\n");

	must_write("granule_order", "9");
	ksft_test_result(knob_ul("bitmap_bytes") < bytes && verify() == 0,
			 "granule_order 9: smaller bitmaps, verify 0\n");
	must_write("granule_order", "0");

	must_write("enabled", "never");
	ksft_test_result(knob_ul("active") == 0 && !strcmp(knob("inactive_reason"), "disabled") &&
			 knob_ul("bitmap_bytes") == 0 && knob_ul("tracked_free_pages") == 0,
			 "enabled=never: inactive, disabled, no bitmap memory\n");
}

/* Map, fault in, THP-advise, write and unmap memory until killed. */
static void churn(unsigned int seed)
{
	for (;;) {
		size_t len = CHURN_SIZE >> (rand_r(&seed) % 3);
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			continue;
		if (rand_r(&seed) % 2)
			madvise(p, len, MADV_HUGEPAGE);
		memset(p, seed, len);
		munmap(p, len);
	}
}

static void test_churn(void)
{
	pid_t pids[NR_CHURNERS];
	struct verify_sum sum = { 0 };
	unsigned int i;
	int round;

	for (i = 0; i < NR_CHURNERS; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			ksft_exit_fail_msg("fork: %s\n", strerror(errno));
		if (!pids[i])
			churn(i + 1);
	}
	for (round = 0; round < 8; round++) {
		must_write("enabled", "always");
		verify_add(&sum);
		must_write("granule_order", round % 2 ? "2" : "0");
		verify_add(&sum);
		must_write("enabled", "never");
		usleep(10000);
	}
	must_write("enabled", "always");
	verify_add(&sum);
	for (i = 0; i < NR_CHURNERS; i++) {
		kill(pids[i], SIGKILL);
		waitpid(pids[i], NULL, 0);
	}
	verify_add(&sum);
	ksft_test_result(!sum.wrong && !sum.errors,
			 "verify: 0 wrong bits while %d processes churn memory (got %ld, %u read errors)\n",
			 NR_CHURNERS, sum.wrong, sum.errors);
}

static unsigned long read_ul(const char *path)
{
	char buf[32];

	if (read_file(path, buf, sizeof(buf)))
		ksft_exit_fail_msg("cannot read %s: %s\n", path, strerror(errno));
	return strtoul(buf, NULL, 10);
}

/* Free blocks of at least 2^@order pages in /proc/buddyinfo, in those units */
static unsigned long buddyinfo_blocks(unsigned int order)
{
	FILE *f = fopen("/proc/buddyinfo", "r");
	unsigned long blocks = 0, nr;
	char line[512], *p;
	unsigned int o;
	int len;

	if (!f)
		ksft_exit_fail_msg("/proc/buddyinfo: %s\n", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, "zone");
		len = 0;
		if (!p || sscanf(p, "zone %*s%n", &len) < 0 || !len)
			continue;
		for (p += len, o = 0; sscanf(p, "%lu%n", &nr, &len) == 1; p += len, o++)
			if (o >= order)
				blocks += nr << (o - order);
	}
	fclose(f);
	return blocks;
}

/*
 * Direct compaction hands the block it frees straight to the allocation
 * it runs for ("capture", in __free_one_page()), so that block leaves
 * the buddy allocator without passing the hooks of an allocation: its
 * bits must be cleared there.  Fragment memory: fault in most free
 * memory in base pages, then free all but one page of every 64, so that
 * every pageblock there keeps a few.  Growing the hugetlb pool by more
 * huge pages than there are free blocks left then compacts in this task,
 * which migrates a block's pages and captures the block.  The bitmaps
 * are checked while the captured blocks are still huge pages.
 */
/* Left free: watermarks, their boost and the per-cpu lists, with room */
#define CAPTURE_MARGIN(free)	((free) / 8 + (64UL << 20))
#define CAPTURE_BLOCK	(2UL << 20)
/* Pages are physically in order only in runs: keep one of every 64 */
#define CAPTURE_STRIDE	(256UL << 10)
#define CAPTURE_HUGEPAGES 96
static void test_compaction_capture(void)
{
	unsigned long len = meminfo_kb("MemFree") * 1024, pool, captured, wanted;
	unsigned long huge = meminfo_kb("Hugepagesize") * 1024;
	long page = sysconf(_SC_PAGESIZE), wrong;
	char hugepages[32], want[32], proactive[16] = "";
	int err;
	size_t off;
	char *map, *p;

	if (access(FPB_CAPTURED, R_OK) || access(NR_HUGEPAGES, W_OK) ||
	    huge < (unsigned long)page || access("/proc/sys/vm/compact_memory", F_OK)) {
		ksft_test_result_skip("compaction capture: %s\n",
				      "needs CONFIG_COMPACTION, hugetlb and " FPB_CAPTURED);
		ksft_test_result_skip("compaction capture: verify\n");
		return;
	}
	if (len < 2 * CAPTURE_MARGIN(len)) {
		ksft_test_result_skip("compaction capture: %lu MiB free is too little\n",
				      len >> 20);
		ksft_test_result_skip("compaction capture: verify\n");
		return;
	}
	len = (len - CAPTURE_MARGIN(len)) & ~(CAPTURE_BLOCK - 1);
	map = mmap(NULL, len + CAPTURE_BLOCK, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (map == MAP_FAILED)
		ksft_exit_fail_msg("compaction capture: mmap %lu bytes: %s\n",
				   len, strerror(errno));
	must_write("enabled", "always");
	/*
	 * Proactive compaction would free the blocks first, in kcompactd,
	 * which never captures (kswapd may still wake it: fewer captures)
	 */
	if (!read_file(PROACTIVENESS, proactive, sizeof(proactive)))
		write_path(PROACTIVENESS, "0");
	p = (char *)(((unsigned long)map + CAPTURE_BLOCK - 1) & ~(CAPTURE_BLOCK - 1));
	madvise(p, len, MADV_NOHUGEPAGE);
	for (off = 0; off < len; off += page)
		p[off] = 1;
	for (off = 0; off < len; off += CAPTURE_STRIDE)
		madvise(p + off + page, CAPTURE_STRIDE - page, MADV_DONTNEED);

	if (read_file(NR_HUGEPAGES, hugepages, sizeof(hugepages)))
		ksft_exit_fail_msg("cannot read %s\n", NR_HUGEPAGES);
	captured = read_ul(FPB_CAPTURED);
	wanted = buddyinfo_blocks(__builtin_ctzl(huge / page)) + CAPTURE_HUGEPAGES;
	snprintf(want, sizeof(want), "%lu", strtoul(hugepages, NULL, 10) + wanted);
	err = write_path(NR_HUGEPAGES, want);
	pool = read_ul(NR_HUGEPAGES) - strtoul(hugepages, NULL, 10);
	captured = read_ul(FPB_CAPTURED) - captured;
	wrong = verify();
	write_path(NR_HUGEPAGES, hugepages);
	munmap(map, len + CAPTURE_BLOCK);
	if (*proactive)
		write_path(PROACTIVENESS, proactive);

	ksft_test_result(captured > 0,
			 "compaction capture: %lu blocks captured while tracked (%lu of %lu huge pages: %s)\n",
			 captured, pool, wanted, strerror(err));
	ksft_test_result(!wrong,
			 "compaction capture: verify 0 with the captured blocks in use (got %ld)\n",
			 wrong);
}

/*
 * The highest offline memory block, in @path; false if there is none.
 * Onlining from the top down makes the second block grow its zone
 * downwards, the harder case: the bits carried over move.
 */
static bool find_offline_block(char *path, size_t size)
{
	DIR *dir = opendir("/sys/devices/system/memory");
	char state[32], try[300];
	struct dirent *d;
	long best = -1, n;

	while (dir && (d = readdir(dir))) {
		if (sscanf(d->d_name, "memory%ld", &n) != 1 || n <= best)
			continue;
		snprintf(try, sizeof(try), "/sys/devices/system/memory/%s/state", d->d_name);
		if (!read_file(try, state, sizeof(state)) && !strcmp(state, "offline")) {
			best = n;
			snprintf(path, size, "%s", try);
		}
	}
	if (dir)
		closedir(dir);
	return best >= 0;
}

#define HOTPLUG_BLOCKS 2
#define HOTPLUG_HOW "boot with a 2-block DIMM and memhp_default_state=offline"

/*
 * Online two memory blocks into ZONE_MOVABLE, then offline them again.
 * The first populates the zone, whose new bitmap is built; the second,
 * below it, grows it, and the bits it had are carried over.  Either way the bitmaps
 * must cover the new pages before they reach the free lists, the other
 * zones keep theirs, and all stay exact.  Prints what each step cost next
 * to a full build.
 */
static void test_hotplug(void)
{
	unsigned long rebuilds, tracked, build_us;
	char path[HOTPLUG_BLOCKS][300];
	int i, err, onlined = 0;

	must_write("enabled", "always");
	build_us = knob_ul("last_rebuild_us");
	for (i = 0; i < HOTPLUG_BLOCKS; i++) {
		if (!find_offline_block(path[i], sizeof(path[i]))) {
			ksft_test_result_skip("memory hotplug: no offline block for step %d (%s)\n",
					      i + 1, HOTPLUG_HOW);
			continue;
		}
		rebuilds = knob_ul("rebuild_count");
		tracked = knob_ul("tracked_free_pages");
		err = write_path(path[i], "online_movable");
		onlined += !err;
		ksft_test_result(!err && knob_ul("rebuild_count") > rebuilds &&
				 knob_ul("active") == 1 &&
				 knob_ul("tracked_free_pages") > tracked && verify() == 0,
				 "memory hotplug: online_movable %s %s the bitmaps, tracks its pages, verify 0 (%s)\n",
				 path[i], i ? "grows (downwards)" : "adds a zone to",
				 strerror(err));
		ksft_print_msg("memory hotplug: step %d took %lu us, a full build %lu us\n",
			       i + 1, knob_ul("last_rebuild_us"), build_us);
	}
	for (i = onlined - 1, err = 0; i >= 0; i--)
		err = err ?: write_path(path[i], "offline");
	if (!onlined)
		ksft_test_result_skip("memory hotplug: offline (nothing onlined)\n");
	else
		ksft_test_result(!err && knob_ul("active") == 1 && verify() == 0,
				 "memory hotplug: offline again, verify 0 (%s)\n", strerror(err));
	must_write("enabled", "never");
}

/* A whole debugfs file; the caller frees it */
static char *slurp(const char *path, size_t *len)
{
	size_t size = 1 << 16, n = 0;
	char *buf = malloc(size);
	ssize_t r;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0 || !buf)
		ksft_exit_fail_msg("cannot read %s: %s\n", path, strerror(errno));
	while ((r = read(fd, buf + n, size - n - 1)) > 0) {
		n += r;
		if (n + 1 == size) {
			size *= 2;
			buf = realloc(buf, size);
			if (!buf)
				ksft_exit_fail_msg("out of memory\n");
		}
	}
	close(fd);
	buf[n] = '\0';
	*len = n;
	return buf;
}

/* The value of "name N" in the driver's layout file (not its first line), or -1 */
static long layout_field(const char *layout, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\n%s ", name);
	p = strstr(layout, key);
	return p ? strtol(p + strlen(key), NULL, 0) : -1;
}

/*
 * The driver describes a new layout from a work item: wait (up to 5 s) for
 * the header to be active again.
 */
static char *active_layout(void)
{
	char *layout = NULL;
	size_t len;
	int tries;

	for (tries = 0; tries < 50; tries++) {
		free(layout);
		layout = slurp(VB_FPB_DIR "layout", &len);
		if (layout_field(layout, "flags") == 1)
			break;
		usleep(100000);
	}
	return layout;
}

/* A file's whole content, in a buffer kept from one read to the next */
struct snapshot {
	char *data;
	size_t len, size;
};

/*
 * Read all of the open file @fd from its start into @snap (NUL-terminated),
 * growing the buffer: 0 or -errno.  The file stays open, so the kernel
 * keeps its seq_file buffer: a read of a debugfs file allocates and frees
 * that buffer, and with it changes the very bits being compared.
 */
static int snapshot_read(int fd, struct snapshot *snap)
{
	ssize_t r;

	snap->len = 0;
	if (lseek(fd, 0, SEEK_SET))
		return -errno;
	for (;;) {
		if (snap->len + 1 >= snap->size) {
			size_t size = snap->size ? 2 * snap->size : 1 << 16;
			char *data = realloc(snap->data, size);

			if (!data)
				return -ENOMEM;
			snap->data = data;
			snap->size = size;
		}
		r = read(fd, snap->data + snap->len, snap->size - snap->len - 1);
		if (r < 0)
			return -errno;
		if (!r)
			break;
		snap->len += r;
	}
	snap->data[snap->len] = '\0';
	return 0;
}

/* The core's bitmap of one zone, read before and after the published one */
struct zone_snapshots {
	char path[300];
	int fd;
	struct snapshot before, after;
};

static struct zone_snapshots zone_snaps[MAX_ZONES];
static struct snapshot published;
static int published_fd;

/* One comparison of the published bitmaps with the core's */
struct compare_result {
	/* ranges the published file holds */
	unsigned int ranges;
	/* ranges whose header no zone shows, both before and after */
	unsigned int unmatched;
	/* published bytes that equal neither core read */
	unsigned long wrong;
	/* failed reads, a published file that does not parse */
	unsigned int errors;
	/* the first wrong byte: its range, offset and the three values */
	unsigned int wrong_range;
	unsigned long wrong_offset;
	unsigned char wrong_pub, wrong_before, wrong_after;
};

/*
 * Open the zone files of the core's debugfs directory into zone_snaps[]
 * (a failed open reads as an error): how many there are
 */
static unsigned int open_zones(void)
{
	DIR *dir = opendir(FPB_ZONES);
	unsigned int nr = 0;
	struct dirent *de;

	while (dir && (de = readdir(dir)) && nr < MAX_ZONES) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(zone_snaps[nr].path, sizeof(zone_snaps[nr].path), FPB_ZONES "%s",
			 de->d_name);
		zone_snaps[nr].fd = open(zone_snaps[nr].path, O_RDONLY);
		nr++;
	}
	if (dir)
		closedir(dir);
	return nr;
}

/* Does @snap hold the range whose header line is @hdr, of @bytes bytes? */
static bool holds_range(const struct snapshot *snap, const char *hdr, size_t hdr_len,
			size_t bytes)
{
	return snap->len == hdr_len + bytes && !memcmp(snap->data, hdr, hdr_len);
}

/*
 * Read every zone's bitmap, the published bitmaps (through the device's
 * tables), and every zone's bitmap again.  Each published byte must equal
 * the same byte of one of the two core reads: between them a byte can
 * only have taken values that one of them saw, unless it changed twice.
 */
static void compare_once(unsigned int nr_zones, struct compare_result *res)
{
	size_t off = 0, hdr_len, bytes, i;
	unsigned long start, bits;
	unsigned int z, order;
	char *hdr, *nl;

	memset(res, 0, sizeof(*res));
	for (z = 0; z < nr_zones; z++)
		res->errors += !!snapshot_read(zone_snaps[z].fd, &zone_snaps[z].before);
	res->errors += !!snapshot_read(published_fd, &published);
	for (z = 0; z < nr_zones; z++)
		res->errors += !!snapshot_read(zone_snaps[z].fd, &zone_snaps[z].after);
	if (res->errors)
		return;

	while (off < published.len) {
		hdr = published.data + off;
		nl = memchr(hdr, '\n', published.len - off);
		if (!nl || sscanf(hdr, "start_pfn %lx nr_bits %lu granule_order %u",
				  &start, &bits, &order) != 3) {
			res->errors++;
			return;
		}
		hdr_len = nl + 1 - hdr;
		bytes = (bits + 7) / 8;
		if (off + hdr_len + bytes > published.len) {
			res->errors++;
			return;
		}
		for (z = 0; z < nr_zones; z++)
			if (holds_range(&zone_snaps[z].before, hdr, hdr_len, bytes) &&
			    holds_range(&zone_snaps[z].after, hdr, hdr_len, bytes))
				break;
		if (z == nr_zones) {
			res->unmatched++;
		} else {
			const struct zone_snapshots *zs = &zone_snaps[z];
			const unsigned char *pub = (unsigned char *)nl + 1;
			const unsigned char *a = (unsigned char *)zs->before.data + hdr_len;
			const unsigned char *b = (unsigned char *)zs->after.data + hdr_len;

			for (i = 0; i < bytes; i++) {
				if (pub[i] == a[i] || pub[i] == b[i])
					continue;
				if (!res->wrong++) {
					res->wrong_range = res->ranges;
					res->wrong_offset = i;
					res->wrong_pub = pub[i];
					res->wrong_before = a[i];
					res->wrong_after = b[i];
				}
			}
		}
		res->ranges++;
		off += hdr_len + bytes;
	}
}

/*
 * Compare every range the device would read with the core's bitmap of the
 * zone of the same span, exactly (compare_once()).  The bits are live, so
 * a byte that changed twice during one comparison is compared again, up to
 * COMPARE_TRIES times; a wrong table entry, a lost or a flipped bit is
 * wrong every time.  Read errors are never retried.
 */
static bool published_matches_core(unsigned int *nr_ranges)
{
	unsigned int nr_zones = open_zones(), z;
	struct compare_result res;
	int tries;

	published_fd = open(VB_FPB_DIR "bitmaps", O_RDONLY);
	/* Sizes every buffer, the kernel's too: the compared reads allocate nothing */
	compare_once(nr_zones, &res);
	for (tries = 1; tries <= COMPARE_TRIES; tries++) {
		compare_once(nr_zones, &res);
		ksft_print_msg("compare %d: %u ranges, %u unmatched, %lu bytes wrong, %u errors\n",
			       tries, res.ranges, res.unmatched, res.wrong, res.errors);
		if (res.wrong)
			ksft_print_msg("range %u byte %lu: published %#x, core %#x then %#x\n",
				       res.wrong_range, res.wrong_offset, res.wrong_pub,
				       res.wrong_before, res.wrong_after);
		if (res.errors || (!res.unmatched && !res.wrong))
			break;
	}
	for (z = 0; z < nr_zones; z++)
		close(zone_snaps[z].fd);
	close(published_fd);
	*nr_ranges = res.ranges;
	return !res.errors && !res.unmatched && !res.wrong && res.ranges > 0;
}

/*
 * Unbinding the driver resets the device and frees the header: its debugfs
 * view goes; binding it again publishes a fresh, active layout.
 */
static bool rebind_balloon(void)
{
	const char *drv = "/sys/bus/virtio/drivers/virtio_balloon/";
	char dev[sizeof(((struct dirent *)0)->d_name)] = "", *layout;
	struct dirent *de;
	bool ok, gone;
	DIR *dir;

	dir = opendir(drv);
	while (dir && (de = readdir(dir)))
		if (!strncmp(de->d_name, "virtio", 6))
			snprintf(dev, sizeof(dev), "%s", de->d_name);
	if (dir)
		closedir(dir);
	if (!dev[0]) {
		ksft_print_msg("no device bound to %s\n", drv);
		return false;
	}
	if (write_path("/sys/bus/virtio/drivers/virtio_balloon/unbind", dev))
		return false;
	gone = access(VB_FPB_DIR "layout", F_OK) && knob_ul("active") == 1;
	if (write_path("/sys/bus/virtio/drivers/virtio_balloon/bind", dev))
		return false;
	layout = active_layout();
	ok = gone && layout_field(layout, "flags") == 1 &&
	     !(layout_field(layout, "seq") & 1) && published_matches_core(&(unsigned int){0});
	free(layout);
	return ok;
}

static void test_virtio_balloon(void)
{
	char *layout;
	long seq, nr;
	unsigned int checked;
	size_t len;

	if (access(VB_FPB_DIR "layout", R_OK)) {
		/* e.g. QEMU's virtio-balloon-pci without x-free-page-bitmap=on */
		ksft_test_result_skip("virtio-balloon: no %s: no device offers the bitmap\n",
				      VB_FPB_DIR);
		ksft_test_result_skip("virtio-balloon: granule change\n");
		ksft_test_result_skip("virtio-balloon: unbind and bind\n");
		ksft_test_result_skip("virtio-balloon: deactivation\n");
		return;
	}
	must_write("granule_order", "0");
	must_write("enabled", "always");
	layout = active_layout();
	seq = layout_field(layout, "seq");
	nr = layout_field(layout, "nr_ranges");
	ksft_print_msg("published layout:\n%s", layout);
	ksft_test_result(layout_field(layout, "magic") == 0x42504656 &&
			 layout_field(layout, "version") == 1 &&
			 layout_field(layout, "page_shift") == __builtin_ctzl(getpagesize()) &&
			 layout_field(layout, "granule_order") == 0 &&
			 layout_field(layout, "flags") == 1 && seq > 0 && !(seq & 1) &&
			 published_matches_core(&checked) && checked == nr && nr > 0,
			 "virtio-balloon: active header, %ld ranges read through their tables match the core's bitmaps\n",
			 nr);
	free(layout);

	must_write("granule_order", "3");
	layout = active_layout();
	ksft_test_result(layout_field(layout, "granule_order") == 3 &&
			 layout_field(layout, "seq") >= seq + 2 &&
			 !(layout_field(layout, "seq") & 1) &&
			 layout_field(layout, "flags") == 1 && published_matches_core(&checked),
			 "virtio-balloon: granule change republished (seq %ld -> %ld)\n",
			 seq, layout_field(layout, "seq"));
	seq = layout_field(layout, "seq");
	free(layout);

	ksft_test_result(rebind_balloon(),
			 "virtio-balloon: unbind retires the header, bind publishes again\n");
	/* A new header, with a new seq */
	layout = active_layout();
	seq = layout_field(layout, "seq");
	free(layout);

	must_write("enabled", "never");
	layout = slurp(VB_FPB_DIR "layout", &len);
	ksft_test_result(layout_field(layout, "flags") == 0 &&
			 layout_field(layout, "seq") >= seq + 2 &&
			 !(layout_field(layout, "seq") & 1),
			 "virtio-balloon: tracking off clears ACTIVE in a seq section\n");
	free(layout);
	must_write("granule_order", "0");
}

int main(void)
{
	char mode[64], granule[16];

	ksft_print_header();
	if (access(FPB_DIR "enabled", F_OK))
		ksft_exit_skip("no %s: kernel built without CONFIG_FREE_PAGE_BITMAP\n", FPB_DIR);
	if (geteuid())
		ksft_exit_skip("must run as root to write %s\n", FPB_DIR);
	if (verify() < 0)
		ksft_exit_skip("no %s: mount debugfs (CONFIG_DEBUG_FS)\n", FPB_VERIFY);

	/* Put the mode back as found: the value in brackets. */
	snprintf(mode, sizeof(mode), "%s", strchr(knob("enabled"), '[') + 1);
	mode[strcspn(mode, "]")] = '\0';
	snprintf(granule, sizeof(granule), "%s", knob("granule_order"));

	ksft_set_plan(ARRAY_SIZE(write_cases) + 16 + HOTPLUG_BLOCKS);
	test_writes();
	test_state();
	test_churn();
	test_compaction_capture();
	test_hotplug();
	test_virtio_balloon();

	must_write("granule_order", granule);
	must_write("enabled", mode);
	ksft_finished();
}

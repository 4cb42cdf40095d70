// SPDX-License-Identifier: GPL-2.0
/*
 * Buddy allocator microbenchmark, built against every kernel it compares
 * (unpatched, tracking off, tracking on): each of @threads kthreads, one
 * per CPU, allocates @blocks blocks of @order pages and then frees them,
 * @rounds times.  Batches larger than the per-cpu lists make the pages go
 * through the buddy free lists, where the free page bitmap hooks sit.
 * Loading the module runs it and prints one line; it then refuses to stay
 * loaded, so it can be loaded again at once (busybox's insmod then tries
 * init_module() after finit_module(), so it runs twice).
 *
 * With count=1 it measures instructions, not time: on CPU 0 with
 * interrupts off, after @rounds rounds of warm-up, it runs @rounds rounds
 * and then 2 * @rounds rounds between three wbinvd instructions, which
 * QEMU's insn plugin reports with the instructions executed since the
 * last one (bench/alloc-insn.sh).  The second count minus the first is
 * exactly the instructions of @rounds rounds: the constant work around
 * the loops cancels out.  It stays loaded then, to run once per insmod;
 * rmmod it before the next.
 */
#include <linux/completion.h>
#include <linux/gfp.h>
#include <linux/kthread.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/slab.h>

static int order;
module_param(order, int, 0444);
static int threads = 1;
module_param(threads, int, 0444);
static int blocks = 2048;
module_param(blocks, int, 0444);
static int rounds = 8;
module_param(rounds, int, 0444);
static bool count;
module_param(count, bool, 0444);

struct bench_thread {
	struct completion done;
	u64 ns;
	unsigned long ops;
};

/* @nr rounds of @blocks allocations, then @blocks frees; blocks handed out */
static unsigned long run_rounds(struct page **pages, int nr, gfp_t gfp)
{
	unsigned long ops = 0;
	int r, i, n;

	for (r = 0; r < nr; r++) {
		for (n = 0; n < blocks; n++) {
			pages[n] = alloc_pages(gfp | __GFP_NOWARN, order);
			if (!pages[n])
				break;
		}
		for (i = 0; i < n; i++)
			__free_pages(pages[i], order);
		ops += n;
	}
	return ops;
}

static int bench_fn(void *arg)
{
	struct bench_thread *t = arg;
	struct page **pages = kvcalloc(blocks, sizeof(*pages), GFP_KERNEL);
	ktime_t start;

	if (pages) {
		start = ktime_get();
		t->ops = run_rounds(pages, rounds, GFP_KERNEL);
		t->ns = ktime_to_ns(ktime_sub(ktime_get(), start));
		kvfree(pages);
	}
	complete(&t->done);
	return 0;
}

/* The plugin's marker: TCG makes wbinvd a no-op, and nothing runs it after boot */
static __always_inline void insn_mark(void)
{
	asm volatile("wbinvd" ::: "memory");
}

static int count_fn(void *arg)
{
	struct completion *done = arg;
	struct page **pages = kvcalloc(blocks, sizeof(*pages), GFP_KERNEL);
	unsigned long flags, once = 0, twice = 0;

	if (!pages)
		goto out;
	/* Interrupts off, so no reclaim and no sleep: GFP_NOWAIT. */
	local_irq_save(flags);
	/* Per-cpu list sizes adapt: start from the steady state, not from history. */
	run_rounds(pages, rounds, GFP_NOWAIT);
	insn_mark();
	once = run_rounds(pages, rounds, GFP_NOWAIT);
	insn_mark();
	twice = run_rounds(pages, 2 * rounds, GFP_NOWAIT);
	insn_mark();
	local_irq_restore(flags);
	kvfree(pages);
out:
	pr_info("alloc_bench: count order=%d ops=%lu ops2=%lu\n", order, once, twice);
	complete(done);
	return 0;
}

/*
 * On CPU 0 every time: the plugin's log keeps each vCPU's lines in order,
 * not the lines of different vCPUs.
 */
static int count_insns(void)
{
	DECLARE_COMPLETION_ONSTACK(done);
	struct task_struct *task;

	task = kthread_create(count_fn, &done, "alloc_bench/count");
	if (IS_ERR(task))
		return PTR_ERR(task);
	kthread_bind(task, 0);
	wake_up_process(task);
	wait_for_completion(&done);
	return 0;
}

static int __init bench_init(void)
{
	struct bench_thread *t;
	unsigned long ops = 0;
	u64 ns = 0;
	int i;

	if (count)
		return count_insns();
	t = kcalloc(threads, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	for (i = 0; i < threads; i++) {
		struct task_struct *task;

		init_completion(&t[i].done);
		task = kthread_create(bench_fn, &t[i], "alloc_bench/%d", i);
		if (IS_ERR(task)) {
			complete(&t[i].done);
			continue;
		}
		kthread_bind(task, i % num_online_cpus());
		wake_up_process(task);
	}
	for (i = 0; i < threads; i++) {
		wait_for_completion(&t[i].done);
		ns += t[i].ns;
		ops += t[i].ops;
	}
	pr_info("alloc_bench: order=%d threads=%d ops=%lu ns_per_op=%llu\n",
		order, threads, ops, ops ? div64_u64(ns, ops) : 0);
	kfree(t);
	return -EAGAIN;
}
module_init(bench_init);

static void __exit bench_exit(void)
{
}
module_exit(bench_exit);

MODULE_DESCRIPTION("Buddy allocator alloc/free microbenchmark");
MODULE_LICENSE("GPL");

// SPDX-License-Identifier: GPL-2.0
/*
 * Buddy allocator microbenchmark, built against every kernel it compares
 * (unpatched, tracking off, tracking on): each of @threads kthreads, one
 * per CPU, allocates @blocks blocks of @order pages and then frees them,
 * @rounds times.  Batches larger than the per-cpu lists make the pages go
 * through the buddy free lists, where the free page bitmap hooks sit.
 * Loading the module runs it and prints one line; it then refuses to stay
 * loaded, so it can be loaded again at once.
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

struct bench_thread {
	struct completion done;
	u64 ns;
	unsigned long ops;
};

static int bench_fn(void *arg)
{
	struct bench_thread *t = arg;
	struct page **pages = kvcalloc(blocks, sizeof(*pages), GFP_KERNEL);
	ktime_t start;
	int r, i, n;

	if (pages) {
		start = ktime_get();
		for (r = 0; r < rounds; r++) {
			for (n = 0; n < blocks; n++) {
				pages[n] = alloc_pages(GFP_KERNEL | __GFP_NOWARN, order);
				if (!pages[n])
					break;
			}
			for (i = 0; i < n; i++)
				__free_pages(pages[i], order);
			t->ops += n;
		}
		t->ns = ktime_to_ns(ktime_sub(ktime_get(), start));
		kvfree(pages);
	}
	complete(&t->done);
	return 0;
}

static int __init bench_init(void)
{
	struct bench_thread *t = kcalloc(threads, sizeof(*t), GFP_KERNEL);
	unsigned long ops = 0;
	u64 ns = 0;
	int i;

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

MODULE_DESCRIPTION("Buddy allocator alloc/free microbenchmark");
MODULE_LICENSE("GPL");

// SPDX-License-Identifier: GPL-2.0
/*
 * churn: allocate, fill and free chunks continuously while rewriting a
 * working set.  Chunks are allocated and filled one per iteration until
 * -n are live, then all are checked and freed at once, so freed memory
 * stays free for a while before the next chunks reuse it (a chunk freed
 * and at once allocated again would just be memory in use).  Every
 * working-set page is checked before it is rewritten with the next
 * generation, and everything on SIGUSR1.
 *   churn [-w WS_MIB] [-c CHUNK_MIB] [-n LIVE_CHUNKS] [-r RATE_MIB_S] [-s SEED]
 *         [-p 1]
 * -r limits the pages written per second (0: as fast as the vCPU goes);
 * a late iteration is not made up for, so a stalled guest shows as lower
 * progress.  With -p 1 the chunks are page cache (tmpfs files) instead
 * of anonymous memory.
 */
#include "wl.h"

struct chunk {
	char *addr;
	uint64_t gen;
};

int main(int argc, char **argv)
{
	size_t ws = wl_arg(argc, argv, "-w", 32), csz = wl_arg(argc, argv, "-c", 4);
	size_t live = wl_arg(argc, argv, "-n", 4), rate = wl_arg(argc, argv, "-r", 0);
	bool page_cache = wl_arg(argc, argv, "-p", 0);
	size_t wpages = ws * MIB / WL_PAGE, cpages = csz * MIB / WL_PAGE;
	/* per iteration: one chunk and an eighth of a chunk of the working set */
	size_t slice = cpages / 8 ? cpages / 8 : 1, cursor = 0, p, i;
	struct chunk *ring = calloc(live ? live : 1, sizeof(*ring));
	uint64_t *wgen = calloc(wpages, sizeof(*wgen));
	uint64_t iter = 0, t0, spent;
	unsigned int period_ms;
	char *w;

	wl_init("churn");
	wl_seed = wl_arg(argc, argv, "-s", 2);
	if (!ring || !wgen || !wpages || !cpages || !live) {
		wl_say("FAIL bad arguments or out of memory");
		return 2;
	}
	period_ms = rate ? (unsigned int)((cpages + slice) * WL_PAGE * 1000 / (rate * MIB)) : 0;
	w = wl_map(wpages * WL_PAGE);
	for (p = 0; p < wpages; p++)
		wl_fill(w + p * WL_PAGE, p, 0);
	wl_say("started ws=%zu chunk=%zu live=%zu rate=%zu%s", ws, csz, live, rate,
	       page_cache ? " page-cache" : "");
	for (;;) {
		struct chunk *c;

		t0 = wl_now_ms();
		/* -n chunks live: check them and free them all */
		if (ring[live - 1].addr) {
			for (i = 0; i < live; i++) {
				for (p = 0; p < cpages; p++)
					wl_check("chunk", ring[i].addr + p * WL_PAGE, p, ring[i].gen);
				munmap(ring[i].addr, cpages * WL_PAGE);
				ring[i].addr = NULL;
			}
		}
		c = &ring[iter % live];
		c->addr = page_cache ? wl_map_file(cpages * WL_PAGE) : wl_map(cpages * WL_PAGE);
		c->gen = ++iter;
		for (p = 0; p < cpages; p++)
			wl_fill(c->addr + p * WL_PAGE, p, c->gen);
		for (i = 0; i < slice; i++, cursor = (cursor + 1) % wpages) {
			wl_check("working set", w + cursor * WL_PAGE, cursor, wgen[cursor]);
			wl_fill(w + cursor * WL_PAGE, cursor, ++wgen[cursor]);
		}
		if (wl_check_requested) {
			wl_check_requested = 0;
			for (p = 0; p < wpages; p++)
				wl_check("working set", w + p * WL_PAGE, p, wgen[p]);
			for (i = 0; i < live; i++)
				for (p = 0; ring[i].addr && p < cpages; p++)
					wl_check("chunk", ring[i].addr + p * WL_PAGE, p, ring[i].gen);
			wl_say("check PASS pages=%zu iterations=%llu", wpages + live * cpages,
			       (unsigned long long)iter);
		}
		wl_tick();
		/* One reading: a second one, later, could make the rest negative. */
		spent = wl_now_ms() - t0;
		if (period_ms && spent < period_ms)
			wl_sleep_ms(period_ms - spent);
	}
}

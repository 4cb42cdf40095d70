// SPDX-License-Identifier: GPL-2.0
/*
 * freed: write a pattern over -m MiB, check it, free it and go idle,
 * keeping -k MiB in use (checked on SIGUSR1 and every -c ms: 2000 by
 * default, 0 for only on SIGUSR1).  The memory
 * a migration could leave out is then the freed part.  With -f STRIDE it
 * keeps one page in STRIDE of the -m MiB too (checked with the -k MiB),
 * and frees the others one by one, out of order: free memory in pieces
 * smaller than any large block, as a long-running guest fragments it.
 *   freed -m MIB [-k MIB] [-f STRIDE] [-c MS] [-s SEED]
 */
#include "wl.h"

int main(int argc, char **argv)
{
	size_t mib = wl_arg(argc, argv, "-m", 64), keep = wl_arg(argc, argv, "-k", 8);
	size_t pages = mib * MIB / WL_PAGE, kpages = keep * MIB / WL_PAGE, p, n;
	size_t stride = wl_arg(argc, argv, "-f", 0);
	uint64_t period = wl_arg(argc, argv, "-c", 2000);
	uint64_t last = 0;
	char *a, *k;

	wl_init("freed");
	wl_seed = wl_arg(argc, argv, "-s", 1);
	k = wl_map(keep * MIB);
	for (p = 0; p < kpages; p++)
		wl_fill(k + p * WL_PAGE, p, 0);
	a = wl_map(mib * MIB);
	for (p = 0; p < pages; p++) {
		wl_fill(a + p * WL_PAGE, kpages + p, 0);
		wl_tick();
	}
	for (p = 0; p < pages; p++)
		wl_check("freed region", a + p * WL_PAGE, kpages + p, 0);
	if (stride) {
		/* every page once, in the order of a stride prime to the count */
		if (!(pages % 7919)) {
			wl_say("FAIL -m %zu: a multiple of 7919 pages", mib);
			return 2;
		}
		for (p = 0, n = 0; n < pages; n++, p = (p + 7919) % pages)
			if (p % stride && madvise(a + p * WL_PAGE, WL_PAGE, MADV_DONTNEED)) {
				wl_say("FAIL madvise: %s", strerror(errno));
				return 2;
			}
	} else {
		munmap(a, mib * MIB);
	}
	wl_say("freed mib=%zu kept=%zu stride=%zu", mib, keep, stride);
	/* what the end-to-end scenarios wait for: the memory is free now */
	wl_say("started");
	for (;;) {
		if (wl_check_requested || (period && wl_now_ms() - last >= period)) {
			for (p = 0; p < kpages; p++)
				wl_check("kept region", k + p * WL_PAGE, p, 0);
			for (p = 0; stride && p < pages; p += stride)
				wl_check("kept pieces", a + p * WL_PAGE, kpages + p, 0);
			last = wl_now_ms();
			if (wl_check_requested) {
				wl_check_requested = 0;
				wl_say("check PASS pages=%zu", kpages + (stride ? (pages + stride - 1) / stride : 0));
			}
		}
		wl_tick();
		wl_sleep_ms(100);
	}
}

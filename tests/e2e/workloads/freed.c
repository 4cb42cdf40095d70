// SPDX-License-Identifier: GPL-2.0
/*
 * freed: write a pattern over -m MiB, check it, free it and go idle,
 * keeping -k MiB in use (checked every 2 s and on SIGUSR1).  The memory
 * a migration could leave out is then the freed part.
 *   freed -m MIB [-k MIB] [-s SEED]
 */
#include "wl.h"

int main(int argc, char **argv)
{
	size_t mib = wl_arg(argc, argv, "-m", 64), keep = wl_arg(argc, argv, "-k", 8);
	size_t pages = mib * MIB / WL_PAGE, kpages = keep * MIB / WL_PAGE, p;
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
	munmap(a, mib * MIB);
	wl_say("freed mib=%zu kept=%zu", mib, keep);
	/* what the end-to-end scenarios wait for: the memory is free now */
	wl_say("started");
	for (;;) {
		if (wl_check_requested || wl_now_ms() - last >= 2000) {
			for (p = 0; p < kpages; p++)
				wl_check("kept region", k + p * WL_PAGE, p, 0);
			last = wl_now_ms();
			if (wl_check_requested) {
				wl_check_requested = 0;
				wl_say("check PASS pages=%zu", kpages);
			}
		}
		wl_tick();
		wl_sleep_ms(100);
	}
}

// SPDX-License-Identifier: GPL-2.0
/*
 * verify: a working set of deterministic patterns, checked continuously:
 * each pass checks every page and rewrites every -d'th page with the next
 * generation (0: never), so the set keeps being dirtied as well as read.
 * SIGUSR1 asks for a full check right away ("check PASS").
 *   verify [-w WS_MIB] [-d EVERY] [-p PAUSE_MS] [-s SEED]
 */
#include "wl.h"

int main(int argc, char **argv)
{
	size_t ws = wl_arg(argc, argv, "-w", 64), every = wl_arg(argc, argv, "-d", 16);
	unsigned int pause = wl_arg(argc, argv, "-p", 100);
	size_t pages = ws * MIB / WL_PAGE, p;
	uint64_t *gen = calloc(pages, sizeof(*gen)), pass = 0;
	char *w;

	wl_init("verify");
	wl_seed = wl_arg(argc, argv, "-s", 3);
	if (!gen || !pages) {
		wl_say("FAIL bad arguments or out of memory");
		return 2;
	}
	w = wl_map(pages * WL_PAGE);
	for (p = 0; p < pages; p++)
		wl_fill(w + p * WL_PAGE, p, 0);
	wl_say("started ws=%zu every=%zu", ws, every);
	for (;;) {
		int full = wl_check_requested;

		wl_check_requested = 0;
		for (p = 0; p < pages; p++) {
			wl_check("working set", w + p * WL_PAGE, p, gen[p]);
			if (!full && every && (p + pass) % every == 0)
				wl_fill(w + p * WL_PAGE, p, ++gen[p]);
			if ((p & 255) == 0)
				wl_tick();
		}
		pass++;
		if (full)
			wl_say("check PASS pages=%zu passes=%llu", pages,
			       (unsigned long long)pass);
		wl_tick();
		if (pause)
			wl_sleep_ms(pause);
	}
}

// SPDX-License-Identifier: GPL-2.0
/*
 * memhold: take -m MiB of shmem (a memfd) with fallocate(), which gets
 * pages from the page allocator without writing them, and hold them.  On
 * SIGUSR1, map the file and read every page: each first fault has the
 * kernel zero the page (a fallocated page is not uptodate yet), so every
 * byte must read zero.  The postcopy scenario uses it for pages that were
 * free, so migration left them out, and that the guest then took without
 * writing: on the destination every read writes such a page first.
 *   memhold -m MIB
 */
#include "wl.h"
#include <fcntl.h>

int main(int argc, char **argv)
{
	size_t mib = wl_arg(argc, argv, "-m", 32), pages = mib * MIB / WL_PAGE, p, i;
	const uint64_t *w;
	char *a;
	int fd;

	wl_init("memhold");
	fd = memfd_create("memhold", 0);
	if (fd < 0 || fallocate(fd, 0, 0, mib * MIB)) {
		wl_say("FAIL memfd_create/fallocate %zu MiB: %s", mib, strerror(errno));
		return 2;
	}
	wl_say("started allocated mib=%zu", mib);
	a = mmap(NULL, mib * MIB, PROT_READ, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		wl_say("FAIL mmap: %s", strerror(errno));
		return 2;
	}
	for (;;) {
		while (!wl_check_requested) {
			wl_tick();
			wl_sleep_ms(100);
		}
		wl_check_requested = 0;
		for (p = 0; p < pages; p++) {
			w = (const uint64_t *)(a + p * WL_PAGE);
			for (i = 0; i < WL_WORDS; i++) {
				if (w[i]) {
					wl_say("FAIL page %zu word %zu is %#llx, want 0", p, i,
					       (unsigned long long)w[i]);
					return 1;
				}
			}
			wl_units++;
			wl_tick();
		}
		wl_say("check PASS pages=%zu", pages);
	}
}

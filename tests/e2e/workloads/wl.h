/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Shared helpers of the guest workloads (freed, churn, verify).
 *
 * Every page a workload writes gets a deterministic, never-zero pattern
 * derived from (seed, page number, generation): word i of the page is
 * base + 2 * i with base odd, so every word is odd and a page that comes
 * back zeroed, stale (older generation) or from another page fails.  A
 * mismatch prints where it is and the workload exits with status 1.
 *
 * Output lines start with "fpb-wl: NAME" so the host harness can find
 * them on the console:
 *   fpb-wl: NAME progress ms=T units=N   every 500 ms (T guest monotonic)
 *   fpb-wl: NAME check PASS pages=N      after SIGUSR1: full check done
 *   fpb-wl: NAME FAIL ...                a wrong word: where and what
 */
#ifndef FPB_WL_H
#define FPB_WL_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define WL_PAGE 4096UL
#define WL_WORDS (WL_PAGE / sizeof(uint64_t))
#define MIB (1024UL * 1024UL)

static const char *wl_name = "wl";
static uint64_t wl_seed = 0x5eed;
static volatile sig_atomic_t wl_check_requested;
static uint64_t wl_units;	/* progress: pages written or checked */

static void wl_say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	n = snprintf(buf, sizeof(buf), "fpb-wl: %s ", wl_name);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	/* one write per line so that lines of concurrent workloads stay whole */
	if (write(1, buf, n) < 0)
		_exit(3);
}

static uint64_t wl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wl_on_usr1(int sig)
{
	(void)sig;
	wl_check_requested = 1;
}

static void wl_init(const char *name)
{
	struct sigaction sa = { .sa_handler = wl_on_usr1 };

	wl_name = name;
	sigaction(SIGUSR1, &sa, NULL);
	setvbuf(stdout, NULL, _IONBF, 0);
}

/* An odd base per (seed, page, generation): a splitmix64 step. */
static inline uint64_t wl_base(uint64_t page, uint64_t gen)
{
	uint64_t z = wl_seed + page * 0x9e3779b97f4a7c15ULL + gen * 0xd1b54a32d192ed03ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31)) | 1;
}

static inline void wl_fill(void *addr, uint64_t page, uint64_t gen)
{
	uint64_t *w = addr, b = wl_base(page, gen);
	unsigned int i;

	for (i = 0; i < WL_WORDS; i++)
		w[i] = b + 2 * i;
	wl_units++;
}

/* Check a page; on a mismatch say where and exit. */
static inline void wl_check(const char *what, void *addr, uint64_t page, uint64_t gen)
{
	const uint64_t *w = addr;
	uint64_t b = wl_base(page, gen);
	unsigned int i, j, zero;

	for (i = 0; i < WL_WORDS; i++) {
		if (w[i] == b + 2 * i)
			continue;
		for (zero = 1, j = 0; j < WL_WORDS; j++)
			zero &= w[j] == 0;
		wl_say("FAIL %s page %llu (va %p) gen %llu: word %u (byte %u) is %#llx, want %#llx%s",
		       what, (unsigned long long)page, addr, (unsigned long long)gen,
		       i, i * 8, (unsigned long long)w[i],
		       (unsigned long long)(b + 2 * i),
		       zero ? "; the whole page is zero" : "");
		/* the byte-level view of the first bad word */
		for (j = 0; j < 8; j++)
			if (((const uint8_t *)&w[i])[j] != ((b + 2 * i) >> (8 * j) & 0xff))
				break;
		wl_say("FAIL first wrong byte at va %p", (const uint8_t *)&w[i] + j);
		exit(1);
	}
	wl_units++;
}

static inline void *wl_map(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		wl_say("FAIL mmap %zu MiB: %s", bytes / MIB, strerror(errno));
		exit(2);
	}
	return p;
}

/*
 * The same from page cache: a file in the guest's tmpfs, unlinked at once,
 * so that munmap() frees its pages as it frees anonymous memory.
 */
static inline void *wl_map_file(size_t bytes)
{
	char path[64];
	void *p;
	int fd;

	snprintf(path, sizeof(path), "/tmp/%s-%d", wl_name, (int)getpid());
	fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || unlink(path) || ftruncate(fd, bytes)) {
		wl_say("FAIL file of %zu MiB in /tmp: %s", bytes / MIB, strerror(errno));
		exit(2);
	}
	p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		wl_say("FAIL mmap of a %zu MiB file: %s", bytes / MIB, strerror(errno));
		exit(2);
	}
	close(fd);
	return p;
}

/* Print progress every 500 ms; call it often. */
static void wl_tick(void)
{
	static uint64_t next;
	uint64_t now = wl_now_ms();

	if (now < next)
		return;
	next = now + 500;
	wl_say("progress ms=%llu units=%llu", (unsigned long long)now,
	       (unsigned long long)wl_units);
}

static void wl_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static unsigned long wl_arg(int argc, char **argv, const char *flag, unsigned long def)
{
	int i;

	for (i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], flag))
			return strtoul(argv[i + 1], NULL, 0);
	return def;
}

#endif

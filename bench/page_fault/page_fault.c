// SPDX-License-Identifier: GPL-2.0
/*
 * will-it-scale's page_fault1 and page_fault2, in one static binary for
 * the guest: each of N tasks maps 128 MiB, writes one byte to every page
 * and unmaps it, over and over; the figure is page faults per second of
 * all tasks together.  page_fault1 maps anonymous memory, page_fault2 a
 * private mapping of a tmpfs file of its own (every write is a copy on
 * write fault).  Every page of the mapping is allocated at its fault and
 * freed at the unmap, so the loop is the allocator's hot path as
 * reviewers of allocator changes measure it.
 *
 * Also reads, at the end of the window, the pages that sit on per-cpu
 * lists (/proc/zoneinfo), which free page tracking cannot see.
 *
 *   page_fault [-f] [-n TASKS] [-w WARMUP_S] [-s SECONDS]
 * prints "faults=N seconds=S per_sec=R pcp_pages=P pcp_max_cpu=M".
 *
 *   page_fault [-f] -c CYCLES [-p CPU]
 * counts instead of timing: one task, pinned to CPU, runs CYCLES and then
 * 2 x CYCLES map-touch-unmap cycles between three CPUID instructions, the
 * markers QEMU's insn plugin counts guest instructions between (the
 * second interval minus the first is CYCLES cycles' instructions alone);
 * prints "cycles=CYCLES faults=F".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MEMSIZE (128UL << 20)
#define MAX_TASKS 64
/* One counter per cache line, so that tasks do not share lines. */
#define STRIDE (64 / sizeof(unsigned long))

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int open_file(void)
{
	char path[] = "/tmp/page_fault2.XXXXXX";
	int fd = mkstemp(path);

	if (fd < 0)
		die("mkstemp");
	unlink(path);
	if (ftruncate(fd, MEMSIZE))
		die("ftruncate");
	return fd;
}

/* Map, write a byte of every page of, and unmap MEMSIZE: one cycle. */
static void cycle(int fd, volatile unsigned long *count)
{
	long pgsize = sysconf(_SC_PAGESIZE);
	char *c = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE,
		       fd >= 0 ? MAP_PRIVATE : MAP_PRIVATE | MAP_ANONYMOUS, fd, 0);
	unsigned long i;

	if (c == MAP_FAILED)
		die("mmap");
	for (i = 0; i < MEMSIZE; i += pgsize) {
		c[i] = 0;
		(*count)++;
	}
	munmap(c, MEMSIZE);
}

static void task(int file, volatile unsigned long *count)
{
	int fd = file ? open_file() : -1;

	for (;;)
		cycle(fd, count);
}

/* The plugin's marker: CPUID, which nothing else runs after boot. */
static void marker(void)
{
	unsigned int a = 0, b, c = 0, d;

	asm volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d) :: "memory");
}

static int count_mode(int file, unsigned long cycles, int cpu)
{
	int fd = file ? open_file() : -1;
	unsigned long n = 0, i;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set))
		die("sched_setaffinity");
	cycle(fd, &n);	/* warm: the file's pages, the page tables */
	marker();
	for (i = 0; i < cycles; i++)
		cycle(fd, &n);
	marker();
	for (i = 0; i < 2 * cycles; i++)
		cycle(fd, &n);
	marker();
	printf("cycles=%lu faults=%lu\n", cycles, n);
	return 0;
}

static unsigned long total(volatile unsigned long *counts, int n)
{
	unsigned long sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += counts[i * STRIDE];
	return sum;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Pages on per-cpu lists, all zones: their sum and the largest CPU's. */
static void pcp_pages(unsigned long *sum, unsigned long *max_cpu)
{
	unsigned long per_cpu[MAX_TASKS * 4] = { 0 }, count;
	FILE *f = fopen("/proc/zoneinfo", "r");
	char line[256];
	int cpu = -1, i;

	*sum = *max_cpu = 0;
	if (!f)
		die("/proc/zoneinfo");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " cpu: %d", &cpu) == 1)
			continue;
		if (cpu >= 0 && cpu < MAX_TASKS * 4 &&
		    sscanf(line, " count: %lu", &count) == 1) {
			per_cpu[cpu] += count;
			*sum += count;
		}
	}
	fclose(f);
	for (i = 0; i < MAX_TASKS * 4; i++)
		if (per_cpu[i] > *max_cpu)
			*max_cpu = per_cpu[i];
}

int main(int argc, char **argv)
{
	int opt, file = 0, n = 1, i, cpu = 1;
	unsigned long cycles = 0;
	double warmup = 1, seconds = 4, t0, t1;
	volatile unsigned long *counts;
	unsigned long start, end, pcp, pcp_max;
	pid_t pids[MAX_TASKS];

	while ((opt = getopt(argc, argv, "fn:w:s:c:p:")) != -1) {
		switch (opt) {
		case 'f': file = 1; break;
		case 'c': cycles = strtoul(optarg, NULL, 0); break;
		case 'p': cpu = atoi(optarg); break;
		case 'n': n = atoi(optarg); break;
		case 'w': warmup = atof(optarg); break;
		case 's': seconds = atof(optarg); break;
		default:
			fprintf(stderr, "usage: %s [-f] [-n TASKS] [-w S] [-s S] | [-f] -c CYCLES [-p CPU]\n",
				argv[0]);
			return 2;
		}
	}
	if (cycles)
		return count_mode(file, cycles, cpu);
	if (n < 1 || n > MAX_TASKS || seconds <= 0) {
		fprintf(stderr, "page_fault: 1 to %d tasks, a window over 0 s\n", MAX_TASKS);
		return 2;
	}
	counts = mmap(NULL, MAX_TASKS * 64, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (counts == MAP_FAILED)
		die("mmap counters");
	for (i = 0; i < n; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die("fork");
		if (!pids[i])
			task(file, &counts[i * STRIDE]);
	}
	usleep(warmup * 1e6);
	start = total(counts, n);
	t0 = now();
	usleep(seconds * 1e6);
	end = total(counts, n);
	t1 = now();
	pcp_pages(&pcp, &pcp_max);
	for (i = 0; i < n; i++)
		kill(pids[i], SIGKILL);
	while (wait(NULL) > 0 || errno == EINTR)
		;
	printf("faults=%lu seconds=%.3f per_sec=%.0f pcp_pages=%lu pcp_max_cpu=%lu\n",
	       end - start, t1 - t0, (end - start) / (t1 - t0), pcp, pcp_max);
	return 0;
}

/*
 * Just enough of QEMU's osdep.h for migration/free-page-bitmap-core.c and
 * its unit test (tests/unit/test-free-page-bitmap.c) to build outside
 * QEMU, with glib: the order mutation, the fuzzer and the benchmark
 * (tests/qemu) compile them with sanitizers or libFuzzer this way.
 */
#ifndef FPB_SHIM_OSDEP_H
#define FPB_SHIM_OSDEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <glib.h>

#define QEMU_PACKED __attribute__((packed))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define smp_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define smp_mb_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)

#endif

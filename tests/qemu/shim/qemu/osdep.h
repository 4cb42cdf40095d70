/*
 * Just enough of QEMU's osdep.h for migration/free-page-bitmap-core.c to
 * build outside QEMU (tests/qemu: unit tests, fuzzer, benchmark).
 */
#ifndef FPB_SHIM_OSDEP_H
#define FPB_SHIM_OSDEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QEMU_PACKED __attribute__((packed))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define DIV_ROUND_UP(n, d) (((n) + (d) - 1) / (d))
#define smp_rmb() __atomic_thread_fence(__ATOMIC_ACQUIRE)
#define smp_mb_acquire() __atomic_thread_fence(__ATOMIC_ACQUIRE)

static inline void *shim_alloc(size_t n, size_t size, bool zero)
{
    void *p;

    if (size && n > SIZE_MAX / size) {
        abort();
    }
    p = zero ? calloc(n ? n : 1, size ? size : 1) : malloc(n * size + 1);
    if (!p) {
        abort();
    }
    return p;
}
#define g_malloc(n) shim_alloc(1, (n), false)
#define g_new(T, n) ((T *)shim_alloc((n), sizeof(T), false))
#define g_new0(T, n) ((T *)shim_alloc((n), sizeof(T), true))
#define g_free free

#endif

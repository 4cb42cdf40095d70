/*
 * Free page bitmap: which memory is guest RAM, and where it is mapped
 * (free-page-bitmap-ram.c).  The callers serialise: free-page-bitmap.c
 * holds fpb.lock.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_FREE_PAGE_BITMAP_RAM_H
#define MIGRATION_FREE_PAGE_BITMAP_RAM_H

#include "exec/cpu-common.h"
#include "free-page-bitmap-core.h"

/* Guest-physical runs of one block; more (rare aliases): not filtered. */
#define FPB_MAX_WINDOWS 16

/* A guest RAM block and where it is mapped read-write */
typedef struct FpbGuestRam {
    RAMBlock *rb;
    /* the windows of the whole block; nr > FPB_MAX_WINDOWS: too many */
    unsigned nr;
    FpbWindow w[FPB_MAX_WINDOWS];
} FpbGuestRam;

/* Collect the blocks of guest RAM, forgetting any earlier list; BQL held. */
void fpb_guest_ram_collect(void);

/* @rb's entry, NULL if @rb is not guest RAM. */
FpbGuestRam *fpb_guest_ram_find(RAMBlock *rb);

/*
 * Where each guest RAM block is mapped now; returns the end of guest RAM
 * in guest-physical space.  Once per sync round.
 */
uint64_t fpb_guest_ram_map(void);

/*
 * Whether [@gpa, @gpa + @len) is all guest RAM, populated, and with @buf,
 * copy it there (an aligned 32-bit value with one atomic load).
 */
bool fpb_guest_ram_access(uint64_t gpa, void *buf, uint64_t len);

#endif

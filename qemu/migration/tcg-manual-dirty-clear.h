/*
 * Test only: KVM's manual dirty-log clear, emulated for TCG
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef MIGRATION_TCG_MANUAL_DIRTY_CLEAR_H
#define MIGRATION_TCG_MANUAL_DIRTY_CLEAR_H

#include "exec/ramblock.h"

/*
 * Start the emulation for a migration if migration.x-tcg-manual-dirty-clear
 * is on and TCG runs the guest (BQL held, before dirty logging starts),
 * and end it (every page is re-armed).
 */
void tcg_manual_dirty_clear_start(void);
void tcg_manual_dirty_clear_stop(void);
/* Whether this migration's syncs use tcg_manual_dirty_clear_sync(). */
bool tcg_manual_dirty_clear_active(void);

/*
 * The sync of @rb under the emulation, in place of
 * cpu_physical_memory_sync_dirty_bitmap(): same result, but the pages
 * it reports stay writable without logging until their chunk's log is
 * cleared.
 */
uint64_t tcg_manual_dirty_clear_sync(RAMBlock *rb);

#endif

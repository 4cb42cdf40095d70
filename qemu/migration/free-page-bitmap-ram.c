/*
 * Free page bitmap: which memory is guest RAM, and where it is mapped.
 *
 * Guest RAM is the only memory whose pages may be dropped: the memory the
 * machine gave the guest (machine->ram, or the NUMA nodes' memdevs), and
 * the backends of pc-dimm (not NVDIMM) and virtio-mem devices, whatever
 * backs them: private or shared (vhost-user, virtiofs), anonymous, memfd
 * or a file, normal or huge pages.  Nothing else with a RAMBlock: VGA
 * VRAM, pflash and other ROM devices, option ROMs, NVDIMM, virtio-pmem,
 * ivshmem, ram_device BARs belong to a device or the firmware, whose
 * content the guest's page allocator knows nothing about.
 *
 * An allow-list, collected under the BQL when a migration starts (and
 * when a migrated header is checked): memory devices cannot be plugged
 * or unplugged while a migration runs (qdev_device_add(), qdev_unplug()).
 * Each entry also holds where the block is mapped, read-write, in guest-
 * physical space, refreshed once per sync round (fpb_guest_ram_map()).
 *
 * The list has no lock of its own: free-page-bitmap.c calls in here with
 * fpb.lock held.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/atomic.h"
#include "qemu/error-report.h"
#include "qemu/module.h"
#include "qemu/rcu.h"
#include "qemu/units.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "exec/ramblock.h"
#include "exec/target_page.h"
#include "hw/boards.h"
#include "hw/mem/pc-dimm.h"
#include "hw/virtio/virtio-mem.h"
#include "system/hostmem.h"
#include "system/numa.h"
#include "free-page-bitmap-ram.h"

/* The guest RAM blocks (FpbGuestRam) */
static GArray *guest_ram;

static void fpb_guest_ram_init(void)
{
    guest_ram = g_array_new(false, true, sizeof(FpbGuestRam));
}
migration_init(fpb_guest_ram_init);

static void fpb_add_guest_ram(HostMemoryBackend *backend)
{
    MemoryRegion *mr = backend ? host_memory_backend_get_memory(backend)
                               : NULL;

    if (mr && mr->ram_block) {
        FpbGuestRam g = { .rb = mr->ram_block };

        g_array_append_val(guest_ram, g);
    }
}

static int fpb_add_memory_device(Object *obj, void *opaque)
{
    if (object_dynamic_cast(obj, TYPE_PC_DIMM) &&
        !object_dynamic_cast(obj, "nvdimm")) {
        fpb_add_guest_ram(PC_DIMM(obj)->hostmem);
    } else if (object_dynamic_cast(obj, TYPE_VIRTIO_MEM)) {
        fpb_add_guest_ram(VIRTIO_MEM(obj)->memdev);
    }
    return 0;
}

/* Collect the guest RAM blocks; BQL held. */
void fpb_guest_ram_collect(void)
{
    MachineState *ms = current_machine;
    NumaState *numa = ms->numa_state;

    g_array_set_size(guest_ram, 0);
    if (ms->ram && ms->ram->ram_block) {
        FpbGuestRam g = { .rb = ms->ram->ram_block };

        g_array_append_val(guest_ram, g);
    }
    for (int i = 0; numa && i < numa->num_nodes; i++) {
        fpb_add_guest_ram(numa->nodes[i].node_memdev);
    }
    object_child_foreach_recursive(object_get_root(), fpb_add_memory_device,
                                   NULL);
}

FpbGuestRam *fpb_guest_ram_find(RAMBlock *rb)
{
    for (guint i = 0; rb && i < guest_ram->len; i++) {
        FpbGuestRam *g = &g_array_index(guest_ram, FpbGuestRam, i);

        if (g->rb == rb) {
            return g;
        }
    }
    return NULL;
}

/* Guest RAM that may hold the guest's bitmap: no discarded memory. */
static bool fpb_plain_ram(MemoryRegion *mr, hwaddr xlat, hwaddr len)
{
    if (!memory_region_is_ram(mr) || !fpb_guest_ram_find(mr->ram_block)) {
        return false;
    }
    if (memory_region_has_ram_discard_manager(mr)) {
        RamDiscardManager *rdm = memory_region_get_ram_discard_manager(mr);
        MemoryRegionSection s = {
            .mr = mr,
            .offset_within_region = xlat,
            .size = int128_make64(len),
        };

        return ram_discard_manager_is_populated(rdm, &s);
    }
    return true;
}

/* Check (and with @buf, copy) [@gpa, @gpa + @len) of guest RAM. */
bool fpb_guest_ram_access(uint64_t gpa, void *buf, uint64_t len)
{
    uint8_t *p = buf;
    FlatView *fv;

    if (len > UINT64_MAX - gpa) {
        return false;
    }
    RCU_READ_LOCK_GUARD();
    fv = address_space_to_flatview(&address_space_memory);
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr = flatview_translate(fv, gpa, &xlat, &l, false,
                                              MEMTXATTRS_UNSPECIFIED);

        if (!l || !fpb_plain_ram(mr, xlat, l)) {
            return false;
        }
        if (p) {
            uint8_t *host = (uint8_t *)memory_region_get_ram_ptr(mr) + xlat;

            if (l == sizeof(uint32_t) && !((uintptr_t)host & 3)) {
                /* seq: one atomic load (see FpbOps.read) */
                *(uint32_t *)p = qatomic_read((uint32_t *)host);
            } else {
                memcpy(p, host, l);
            }
            p += l;
        }
        gpa += l;
        len -= l;
    }
    return true;
}

/* Whether the flat range at @gpa is read-write (not PAM, not a ROM alias) */
static bool fpb_writable(uint64_t gpa)
{
    MemoryRegionSection s = memory_region_find(get_system_memory(), gpa, 1);
    bool rw = s.mr && !s.readonly;

    if (s.mr) {
        memory_region_unref(s.mr);
    }
    return rw;
}

/*
 * The first MiB of guest-physical memory is the firmware's on a PC (the
 * real-mode vectors and BIOS data, the EBDA, option ROMs shadowed in RAM),
 * and device models read it when their state is loaded: kvmvapic looks
 * for its option ROM there and fails the migration if it is gone.  Never
 * drop from it, whatever the guest's bits say; Linux keeps all of it
 * reserved (since 5.13), so no free page is lost.  Applied on every
 * target, where it costs at most that MiB (Arm's virt has no RAM there).
 */
#define FPB_FIRMWARE_END (1 * MiB)

/* flatview_cb: where a guest RAM block is mapped read-write. */
static bool fpb_add_window(Int128 start, Int128 len, const MemoryRegion *mr,
                           hwaddr off, void *opaque)
{
    FpbGuestRam *g = opaque;
    uint64_t page = qemu_target_page_size(), a, b;
    uint64_t gpa = int128_get64(start), skip = 0;

    if (mr->ram_block != g->rb || !memory_region_is_ram((MemoryRegion *)mr) ||
        !fpb_writable(gpa)) {
        return false;
    }
    if (gpa < FPB_FIRMWARE_END) {
        skip = MIN(FPB_FIRMWARE_END - gpa, int128_get64(len));
    }
    a = ROUND_UP(off + skip, page);
    b = QEMU_ALIGN_DOWN(MIN(off + int128_get64(len), g->rb->used_length),
                        page);
    if (a >= b) {
        return false;
    }
    if (g->nr < FPB_MAX_WINDOWS) {
        g->w[g->nr] = (FpbWindow) {
            .gpa = gpa + (a - off),
            .first_page = a >> qemu_target_page_bits(),
            .npages = (b - a) >> qemu_target_page_bits(),
        };
    }
    g->nr++;
    return false;
}

/*
 * A page mapped at two guest-physical addresses would have two bits; drop
 * the windows that overlap rather than decide which one to believe.
 */
static void fpb_drop_aliases(FpbGuestRam *g)
{
    bool bad[FPB_MAX_WINDOWS] = { false };
    unsigned i, j, n = 0;

    for (i = 0; i < g->nr; i++) {
        for (j = i + 1; j < g->nr; j++) {
            if (g->w[i].first_page < g->w[j].first_page + g->w[j].npages &&
                g->w[j].first_page < g->w[i].first_page + g->w[i].npages) {
                bad[i] = bad[j] = true;
            }
        }
    }
    for (i = 0; i < g->nr; i++) {
        if (!bad[i]) {
            g->w[n++] = g->w[i];
        }
    }
    g->nr = n;
}

/*
 * Where each guest RAM block is mapped now, and the end of guest RAM in
 * guest-physical space (what a layout may cover): once per sync round.
 * A block mapped in more windows than we keep is not filtered at all.
 */
uint64_t fpb_guest_ram_map(void)
{
    uint64_t max_gpa = 0;

    RCU_READ_LOCK_GUARD();
    for (guint i = 0; i < guest_ram->len; i++) {
        FpbGuestRam *g = &g_array_index(guest_ram, FpbGuestRam, i);
        FlatView *fv = address_space_to_flatview(&address_space_memory);

        g->nr = 0;
        flatview_for_each_range(fv, fpb_add_window, g);
        if (g->nr > FPB_MAX_WINDOWS) {
            warn_report_once("free page bitmap: RAM block %s is mapped in "
                             "%u places, its free pages are migrated",
                             g->rb->idstr, g->nr);
            g->nr = 0;
        }
        fpb_drop_aliases(g);
        for (unsigned j = 0; j < g->nr; j++) {
            max_gpa = MAX(max_gpa, g->w[j].gpa +
                          (g->w[j].npages << qemu_target_page_bits()));
        }
    }
    return max_gpa;
}

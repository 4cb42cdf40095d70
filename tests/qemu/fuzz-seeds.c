/*
 * The seed corpus (tests/qemu/corpus) of QEMU's fuzz target
 * virtio-balloon-fpb (tests/qtest/fuzz/virtio_balloon_fpb_fuzz.c, patch
 * 0009): layouts written by the unit test's fake guest the way the Linux
 * driver writes them, some of them pointing at ROM, MMIO or unassigned
 * space of the target's q35 machine.  Run by tests/qemu/fuzz.sh --seeds.
 *
 * Input format (see the target): header_gpa (8 bytes, LE), selector
 * (8 bytes), then guest RAM: 40 KiB at guest-physical 0 and 16 KiB at
 * 1 MiB.
 */
#include "qemu/osdep.h"
#include "free-page-bitmap-fake-guest.h"

#define LO_SIZE (40 * 1024)
#define HI_GPA (1024 * 1024)
#define HI_SIZE (16 * 1024)
/* where the layout goes: not at 0, which announces no header */
#define AREA 0x2000
#define AREA_SIZE (LO_SIZE - AREA)

/*
 * q35 with 16 MiB at reset: option ROM space (pc.rom), the BIOS, the
 * local APIC, past the end of RAM
 */
#define PC_ROM_GPA 0xc0000ULL
#define ISA_BIOS_GPA 0xe0000ULL
#define APIC_GPA 0xfee00000ULL
#define UNASSIGNED_GPA 0x2000000ULL

static uint8_t lo[LO_SIZE], hi[HI_SIZE];

static void setup(FakeGuest *g)
{
    memset(g, 0, sizeof(*g));
    memset(lo, 0, sizeof(lo));
    memset(hi, 0, sizeof(hi));
    fg_add_map(g, 0, LO_SIZE, lo);
    fg_add_map(g, HI_GPA, HI_SIZE, hi);
}

/* The target's selector (fpb_round()). */
static uint64_t sel(unsigned first, unsigned n, bool whole, unsigned shift,
                    bool random, uint64_t seed)
{
    return first | (uint64_t)(n - 1) << 9 | (uint64_t)whole << 19 |
           (uint64_t)(shift - 6) << 20 | (uint64_t)random << 23 | seed << 24;
}

static void write_seed(const char *dir, const char *name, uint64_t header_gpa,
                       uint64_t s)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fwrite(&header_gpa, 8, 1, fp);
    fwrite(&s, 8, 1, fp);
    fwrite(lo, LO_SIZE, 1, fp);
    fwrite(hi, HI_SIZE, 1, fp);
    fclose(fp);
}

/* One zone over [0, 1 MiB + 16 KiB), the ISA hole included. */
static void one_zone(FakeGuest *g)
{
    uint64_t start = 0, bits = (HI_GPA + HI_SIZE) >> 12;

    setup(g);
    fg_build(g, 12, 0, AREA, AREA_SIZE, 1, &start, &bits);
    for (uint64_t p = 6; p < 8; p++) {
        fg_set_free(g, p, true);
    }
    fg_set_free(g, (HI_GPA >> 12) + 1, true);
}

static uint64_t *table(FakeGuest *g)
{
    struct virtio_balloon_fpb_range *r = fg_range(g, 0);

    return (uint64_t *)fg_host(g, r->pfn_table_gpa, r->nr_table_entries * 8);
}

int main(int argc, char **argv)
{
    FakeGuest g;
    uint64_t start[2], bits[2];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 1;
    }
    one_zone(&g);
    write_seed(argv[1], "one-zone", g.header_gpa, sel(0, 1, true, 6, false, 1));

    /* every page free: pc.ram behind pc.rom and the BIOS must stay */
    one_zone(&g);
    for (uint64_t p = 0; p < (HI_GPA + HI_SIZE) >> 12; p++) {
        fg_set_free(&g, p, true);
    }
    write_seed(argv[1], "all-free", g.header_gpa,
               sel(0, 1024, false, 8, true, 0x5eed));

    /* two overlapping zones, order-1 granules */
    setup(&g);
    start[0] = 0;
    bits[0] = 4;
    start[1] = 4;
    bits[1] = (HI_GPA + HI_SIZE - 4 * 4096) >> 13;
    fg_build(&g, 12, 1, AREA, AREA_SIZE, 2, start, bits);
    fg_set_free(&g, 6, true);
    fg_set_free(&g, (HI_GPA >> 12) + 2, true);
    write_seed(argv[1], "two-zones-order1", g.header_gpa,
               sel(2, 300, false, 6, true, 3));

    /* 8 KiB guest pages, the high part only */
    setup(&g);
    start[0] = HI_GPA >> 13;
    bits[0] = HI_SIZE >> 13;
    fg_build(&g, 13, 0, AREA, AREA_SIZE, 1, start, bits);
    fg_set_free(&g, start[0] + 1, true);
    write_seed(argv[1], "page-8k-high", g.header_gpa,
               sel(256, 4, false, 7, false, 2));

    /* a layout in the middle of a rewrite (odd seq) */
    one_zone(&g);
    fg_header(&g)->seq = 7;
    write_seed(argv[1], "odd-seq", g.header_gpa, sel(0, 1, true, 6, false, 1));

    /* the memory API's checks: ROM, MMIO, unassigned space */
    one_zone(&g);
    write_seed(argv[1], "header-in-rom", ISA_BIOS_GPA,
               sel(0, 1, true, 6, false, 1));
    one_zone(&g);
    fg_header(&g)->ranges_gpa = PC_ROM_GPA;
    write_seed(argv[1], "ranges-in-option-rom", g.header_gpa,
               sel(0, 1, true, 6, false, 1));
    one_zone(&g);
    fg_range(&g, 0)->pfn_table_gpa = ISA_BIOS_GPA;
    write_seed(argv[1], "table-in-rom", g.header_gpa,
               sel(0, 1, true, 6, false, 1));
    one_zone(&g);
    table(&g)[0] = APIC_GPA >> 12;
    write_seed(argv[1], "bitmap-in-mmio", g.header_gpa,
               sel(0, 1, true, 6, false, 1));
    one_zone(&g);
    table(&g)[0] = UNASSIGNED_GPA >> 12;
    write_seed(argv[1], "bitmap-unassigned", g.header_gpa,
               sel(0, 1, true, 6, false, 1));
    return 0;
}

/*
 * libFuzzer target for the free page bitmap layout validator and filter
 * (migration/free-page-bitmap-core.c): the input is guest memory, so
 * every field the guest controls is fuzzed.
 *
 * Input: header_gpa (8 bytes, LE), window selector (8 bytes), then the
 * contents of guest RAM: 32 KiB at guest-physical 0 and 16 KiB at 1 MiB
 * (a hole in between).  Built with -DFPB_FUZZ_SEEDS it writes the seed
 * corpus (tests/qemu/corpus) instead.
 */
#include "qemu/osdep.h"
#include "free-page-bitmap-fake-guest.h"

#define LO_SIZE (32 * 1024)
#define HI_GPA (1024 * 1024)
#define HI_SIZE (16 * 1024)
#define PAGES ((LO_SIZE + HI_SIZE) / 4096)
#define INPUT_SIZE (16 + LO_SIZE + HI_SIZE)

static uint8_t lo[LO_SIZE], hi[HI_SIZE];

static const FpbLimits limits = {
    .target_page_bits = 12,
    .max_gpa = HI_GPA + HI_SIZE,
    .max_ranges = 64,
};

static void setup(FakeGuest *g)
{
    memset(g, 0, sizeof(*g));
    fg_add_map(g, 0, LO_SIZE, lo);
    fg_add_map(g, HI_GPA, HI_SIZE, hi);
}

#ifndef FPB_FUZZ_SEEDS
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const FpbOps ops = { .read = fg_read, .is_ram = fg_is_ram };
    unsigned long bmap[1], before;
    uint64_t header_gpa, sel, cleared = 0;
    const char *reason = "";
    FpbLayout l = { 0 };
    FpbWindow w[2];
    FpbFilter f;
    FakeGuest g;
    unsigned nr = 0;

    if (size < 16) {
        return 0;
    }
    memcpy(&header_gpa, data, 8);
    memcpy(&sel, data + 8, 8);
    memset(lo, 0, sizeof(lo));
    memset(hi, 0, sizeof(hi));
    size -= 16;
    memcpy(lo, data + 16, MIN(size, LO_SIZE));
    if (size > LO_SIZE) {
        memcpy(hi, data + 16 + LO_SIZE, MIN(size - LO_SIZE, HI_SIZE));
    }
    setup(&g);

    if (fpb_layout_load(&l, &limits, &ops, &g, header_gpa, &reason) ==
        FPB_REJECTED && !*reason) {
        abort();    /* a rejection always says why */
    }
    fpb_layout_reset(&l);

    /* windows: some of the low pages, some of the high ones */
    if (sel & 1) {
        uint64_t first = (sel >> 8) % 8, n = 1 + (sel >> 16) % (8 - first);

        w[nr++] = (FpbWindow) { first * 4096, first, n };
    }
    if (sel & 2) {
        uint64_t first = (sel >> 24) % 4, n = 1 + (sel >> 32) % (4 - first);

        w[nr++] = (FpbWindow) { HI_GPA + first * 4096, 8 + first, n };
    }
    bmap[0] = before = (unsigned long)(sel ^ (sel >> 40) * 0x9e3779b97f4a7c15ULL);
    fpb_filter_init(&f, &limits);
    fpb_filter(&f, &ops, &g, header_gpa, w, nr, bmap, &cleared, &reason);
    /* the filter only ever clears bits, and counts them */
    if ((bmap[0] & ~before) ||
        (uint64_t)__builtin_popcountl(before & ~bmap[0]) != cleared ||
        (bmap[0] ^ before) >> PAGES) {
        abort();
    }
    /* and again, with the layout cached */
    fpb_filter(&f, &ops, &g, header_gpa, w, nr, bmap, &cleared, &reason);
    fpb_filter_destroy(&f);
    return 0;
}
#else
static void write_seed(const char *dir, const char *name, FakeGuest *g,
                       uint64_t sel)
{
    char path[512];
    FILE *fp;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    fp = fopen(path, "wb");
    if (!fp) {
        perror(path);
        exit(1);
    }
    fwrite(&g->header_gpa, 8, 1, fp);
    fwrite(&sel, 8, 1, fp);
    fwrite(lo, LO_SIZE, 1, fp);
    fwrite(hi, HI_SIZE, 1, fp);
    fclose(fp);
}

int main(int argc, char **argv)
{
    FakeGuest g;
    uint64_t start[2], bits[2];

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 1;
    }
    /* one zone over all of it (including the hole), granule of a page */
    setup(&g);
    start[0] = 0;
    bits[0] = (HI_GPA + HI_SIZE) >> 12;
    fg_build(&g, 12, 0, 0, LO_SIZE, 1, start, bits);
    for (uint64_t p = 6; p < 8; p++) {
        fg_set_free(&g, p, true);
    }
    fg_set_free(&g, (HI_GPA >> 12) + 1, true);
    write_seed(argv[1], "one-zone", &g, 0x0102030405060703ULL);

    /* two overlapping zones, order-1 granules */
    setup(&g);
    start[0] = 0;
    bits[0] = 4;
    start[1] = 4;
    bits[1] = (HI_GPA + HI_SIZE - 4 * 4096) >> 13;
    fg_build(&g, 12, 1, 0, LO_SIZE, 2, start, bits);
    fg_set_free(&g, 6, true);
    fg_set_free(&g, (HI_GPA >> 12) + 2, true);
    write_seed(argv[1], "two-zones-order1", &g, 0x0002000100000003ULL);

    /* 8 KiB guest pages, the high part only */
    setup(&g);
    start[0] = HI_GPA >> 13;
    bits[0] = HI_SIZE >> 13;
    fg_build(&g, 13, 0, 0, LO_SIZE, 1, start, bits);
    fg_set_free(&g, start[0] + 1, true);
    write_seed(argv[1], "page-8k-high", &g, 0x0000000300010002ULL);

    /* a layout in the middle of a rewrite (odd seq) */
    setup(&g);
    start[0] = 0;
    bits[0] = LO_SIZE >> 12;
    fg_build(&g, 12, 0, 0, LO_SIZE, 1, start, bits);
    fg_header(&g)->seq = 7;
    write_seed(argv[1], "odd-seq", &g, 1);
    return 0;
}
#endif

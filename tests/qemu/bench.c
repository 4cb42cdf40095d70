/*
 * Cost of the free page bitmap filter per dirty-bitmap sync, for guests
 * of 1 GiB to 1 TiB (simulated: only the guest's layout and bitmap exist,
 * the guest's data pages are never touched by the filter).
 *
 * Like QEMU: one RAMBlock split around the PCI hole (2 GiB below 4 GiB,
 * the rest above), filtered chunk by chunk (1 GiB, clear_bmap_shift 18),
 * two zones (DMA32 over [0, 4 GiB), Normal above), half the pages free,
 * every page dirty (the worst case: every bit is applied).
 * Output: a markdown table row per size.
 */
#include "qemu/osdep.h"
#include "free-page-bitmap-fake-guest.h"
#include <time.h>

#define GIB (1ULL << 30)
#define CHUNK_PAGES (1ULL << 18)
#define LOW (2 * GIB)
#define LAYOUT_GPA (GIB / 2)

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static uint64_t block_gpa(uint64_t off)
{
    return off < LOW ? off : 4 * GIB + (off - LOW);
}

static const FpbOps ops = { .read = fg_read, .is_ram = fg_is_ram };

/* One sync: filter every chunk of the block; returns pages dropped. */
static uint64_t one_sync(FakeGuest *g, FpbFilter *f, unsigned long *bmap,
                         uint64_t pages)
{
    uint64_t total = 0;

    for (uint64_t c = 0; c < pages; c += CHUNK_PAGES) {
        uint64_t end = MIN(c + CHUNK_PAGES, pages), low = LOW >> 12;
        FpbWindow w[2];
        unsigned nr = 0;
        uint64_t cleared = 0;
        const char *reason = "";

        if (c < low) {
            w[nr++] = (FpbWindow) { c << 12, c, MIN(end, low) - c };
        }
        if (end > low) {
            uint64_t s = MAX(c, low);

            w[nr++] = (FpbWindow) { block_gpa(s << 12), s, end - s };
        }
        if (fpb_filter(f, &ops, g, g->header_gpa, w, nr, bmap, NULL, &cleared,
                       &reason) != FPB_OK) {
            fprintf(stderr, "filter failed: %s\n", reason);
            exit(1);
        }
        total += cleared;
    }
    return total;
}

int main(int argc, char **argv)
{
    static const unsigned sizes[] = { 1, 4, 16, 64, 256, 1024 };
    uint64_t rng = 0x9e3779b97f4a7c15ULL;

    printf("| guest RAM | bitmap read per sync | first sync (validates layout) | "
           "sync, layout cached (median of 5) | per GiB per sync |\n");
    printf("|---|---|---|---|---|\n");
    for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint64_t ram = sizes[i] * GIB, pages = ram >> 12;
        uint64_t high = ram > LOW ? ram - LOW : 0;
        uint64_t start[2] = { 0, (4 * GIB) >> 12 };
        uint64_t bits[2] = { (4 * GIB) >> 12, high >> 12 };
        uint64_t area = 2 * (pages / 8) + 64 * 4096 + 2 * (pages / 8 / 4096 + 1) * 8;
        unsigned nr = high ? 2 : 1;
        uint8_t *layout = malloc(area);
        unsigned long *bmap = malloc(pages / 8);
        FpbLimits limits = {
            .target_page_bits = 12,
            .max_gpa = high ? 4 * GIB + high : ram,
            .max_ranges = 2,
        };
        double t[5], first, t0;
        FakeGuest g;
        FpbFilter f;
        uint64_t dropped = 0;

        if (!high) {
            bits[0] = pages;
        }
        memset(&g, 0, sizeof(g));
        fg_add_map(&g, LAYOUT_GPA, area, layout);
        fg_build(&g, 12, 0, LAYOUT_GPA, area, nr, start, bits);
        /* half the pages free, in random runs of 64 */
        for (unsigned r = 0; r < nr; r++) {
            for (uint64_t b = 0; b < bits[r]; b += 64) {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                if (rng & 1) {
                    memset(fg_bit_byte(&g, r, b), 0xff, 8);
                }
            }
        }
        fpb_filter_init(&f, &limits);
        memset(bmap, 0xff, pages / 8);
        t0 = now_us();
        dropped = one_sync(&g, &f, bmap, pages);
        first = now_us() - t0;
        for (int k = 0; k < 5; k++) {
            memset(bmap, 0xff, pages / 8);
            t0 = now_us();
            one_sync(&g, &f, bmap, pages);
            t[k] = now_us() - t0;
        }
        for (int a = 0; a < 5; a++) {
            for (int b = a + 1; b < 5; b++) {
                if (t[b] < t[a]) {
                    double x = t[a];

                    t[a] = t[b];
                    t[b] = x;
                }
            }
        }
        printf("| %u GiB | %llu KiB | %.3f ms | %.3f ms | %.1f us |\n",
               sizes[i], (unsigned long long)(pages / 8 / 1024), first / 1e3,
               t[2] / 1e3, t[2] / sizes[i]);
        fprintf(stderr, "%u GiB: dropped %llu of %llu pages\n", sizes[i],
                (unsigned long long)dropped, (unsigned long long)pages);
        fpb_filter_destroy(&f);
        free(layout);
        free(bmap);
    }
    return 0;
}

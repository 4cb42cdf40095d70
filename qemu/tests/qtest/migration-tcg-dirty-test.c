/*
 * A page that a dirty sync takes again while migration still has it
 * pending must keep logging the guest's writes after it is sent.
 *
 * The guest is 13 bytes of "BIOS" that count, for ever, in a dword at
 * 56 MiB (page P; real mode, a 32-bit address: TCG does not check the
 * segment limit).  The test makes migration's second pass slow by
 * dirtying the 40 MiB below P itself and capping the bandwidth, so that
 * auto-converge's periodic sync (every 5 s) runs while P is still
 * pending, well before the pass could get to it.  That sync takes only
 * P's bit, newly set nowhere: TCG must re-arm write tracking anyway, or
 * the writes after P is sent are lost and the destination's counter is
 * behind the source's.
 *
 * Copyright (c) 2026 The free page bitmap developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qobject/qdict.h"

#define P_GPA 0x3800000
#define Q_GPA 0x1000000
#define Q_SIZE (P_GPA - Q_GPA)
#define CRAWL 1024
#define SLOW (32 * 1024)
#define FAST (64 * 1024 * 1024)
#define TIMEOUT_US (120 * G_USEC_PER_SEC)

/* At the reset vector: cli; mov edi, P_GPA; 1: inc dword [edi]; jmp 1b */
static const uint8_t counter_code[] = {
    0xfa, 0x66, 0xbf, 0x00, 0x00, 0x80, 0x03, 0x67, 0x66, 0xff, 0x07,
    0xeb, 0xfa,
};

static char *make_bios(void)
{
    g_autofree uint8_t *rom = g_malloc0(64 * 1024);
    char *path = g_strdup_printf("%s/tcg-dirty-bios-%d", g_get_tmp_dir(),
                                 getpid());

    memcpy(rom + 64 * 1024 - 16, counter_code, sizeof(counter_code));
    g_assert(g_file_set_contents(path, (char *)rom, 64 * 1024, NULL));
    return path;
}

static QDict *query_migrate(QTestState *qts)
{
    QDict *rsp = qtest_qmp(qts, "{ 'execute': 'query-migrate' }");
    QDict *ret = qdict_get_qdict(rsp, "return");

    qobject_ref(ret);
    qobject_unref(rsp);
    return ret;
}

/* query-migrate's ram.remaining when wait_syncs() last returned */
static int64_t remaining;

/* Wait until the source has done @n dirty syncs or completed. */
static const char *wait_syncs(QTestState *qts, int64_t n)
{
    gint64 end = g_get_monotonic_time() + TIMEOUT_US;

    for (;;) {
        QDict *info = query_migrate(qts);
        const char *status = qdict_get_try_str(info, "status");
        QDict *ram = qdict_get_qdict(info, "ram");
        bool done = status && (!strcmp(status, "completed") ||
                               !strcmp(status, "failed"));
        bool reached = ram && qdict_get_int(ram, "dirty-sync-count") >= n;

        remaining = ram ? qdict_get_int(ram, "remaining") : 0;
        if (done || reached) {
            g_test_message("%s, syncs %" PRId64 ", remaining %" PRId64,
                           status, ram ? qdict_get_int(ram, "dirty-sync-count")
                           : 0, remaining);
        }
        qobject_unref(info);
        if (done) {
            return "done";
        }
        if (reached) {
            return "reached";
        }
        g_assert(g_get_monotonic_time() < end);
        g_usleep(5 * 1000);
    }
}

/* A 1 ms downtime limit never lets P's 4 KiB go before the test says. */
static void set_limits(QTestState *qts, uint64_t bps, uint64_t downtime_ms)
{
    qtest_qmp_assert_success(qts, "{ 'execute': 'migrate-set-parameters',"
                             " 'arguments': { 'max-bandwidth': %" PRIu64
                             ", 'downtime-limit': %" PRIu64 " } }", bps,
                             downtime_ms);
}

static void test_pending_page_rearmed(void)
{
    g_autofree char *bios = make_bios();
    g_autofree char *mig = g_strdup_printf("%s/tcg-dirty-%d.mig",
                                           g_get_tmp_dir(), getpid());
    g_autofree char *uri = g_strdup_printf("file:%s", mig);
    QTestState *src, *dst;
    uint32_t at_src, at_dst, before;
    gint64 end;

    src = qtest_initf("-accel tcg -M pc -m 64M -nodefaults -bios %s", bios);
    /* the counter runs */
    end = g_get_monotonic_time() + TIMEOUT_US;
    before = qtest_readl(src, P_GPA);
    while (qtest_readl(src, P_GPA) == before) {
        g_assert(g_get_monotonic_time() < end);
        g_usleep(1000);
    }

    qtest_qmp_assert_success(src, "{ 'execute': 'migrate-set-capabilities',"
                             " 'arguments': { 'capabilities': [ { "
                             "'capability': 'auto-converge', "
                             "'state': true } ] } }");
    set_limits(src, CRAWL, 1);
    qtest_qmp_assert_success(src, "{ 'execute': 'migrate', "
                             "'arguments': { 'uri': %s } }", uri);
    /*
     * Dirty Q during the first pass (after the setup's sync 1), and let it
     * crawl long enough for migration to have measured its bandwidth: the
     * end of a pass is then followed by a sync, not by the switchover.
     */
    g_assert_cmpstr(wait_syncs(src, 1), ==, "reached");
    qtest_memset(src, Q_GPA, 0x5a, Q_SIZE);
    g_usleep(300 * 1000);
    set_limits(src, FAST, 1);
    g_assert_cmpstr(wait_syncs(src, 2), ==, "reached");
    /* Q, then P: at 32 KiB/s the second pass spans a periodic sync */
    set_limits(src, SLOW, 1);
    g_assert_cmpstr(wait_syncs(src, 3), ==, "reached");
    /* the test's premise: P was still pending at that sync */
    g_assert_cmpint(remaining, >=, 4096);
    set_limits(src, 1ULL << 30, 2000);
    g_assert_cmpstr(wait_syncs(src, INT64_MAX), ==, "done");
    {
        QDict *info = query_migrate(src);

        g_assert_cmpstr(qdict_get_str(info, "status"), ==, "completed");
        qobject_unref(info);
    }
    at_src = qtest_readl(src, P_GPA);
    qtest_quit(src);

    dst = qtest_initf("-accel tcg -M pc -m 64M -nodefaults -bios %s "
                      "-incoming %s -S", bios, uri);
    g_assert_cmpstr(wait_syncs(dst, INT64_MAX), ==, "done");
    at_dst = qtest_readl(dst, P_GPA);
    qtest_quit(dst);
    unlink(mig);
    unlink(bios);

    /* the guest was stopped for the last pass: both must agree */
    g_assert_cmphex(at_dst, ==, at_src);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    if (!qtest_has_accel("tcg")) {
        g_test_skip("TCG not built in");
        return g_test_run();
    }
    qtest_add_func("tcg-dirty/pending-page-rearmed",
                   test_pending_page_rearmed);
    return g_test_run();
}

/* test_js_fetch.c — server/ingest/js_fetch.c against a real nats-server:
 * a pull that finds late deliveries already waiting in the subscription
 * (a pull request answered after its fetch gave up; made here on purpose
 * by asking the server directly with the subscription's reply subject).
 *
 * libnats 3.4.1's fetch, asked for 1,000 with 700 waiting, takes the 700,
 * asks the server for 300 and then loops until its count equals 300 —
 * never: it waits out its whole timeout (and, had more late deliveries
 * come, would have written them past its 1,000-message array; see
 * js_fetch.c). vjs_fetch sizes the pull so the loop ends at its bound:
 * checked here as "returns at once, with every waiting message and the
 * stream's next ones in order, no gap, no repeat". */
#include <CUnit/Basic.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "harness.h"
#include "server/ingest/ingest_int.h"

#define TOTAL 6000

static char *dir;

static uint64_t seq_of(natsMsg *m) {
    jsMsgMetaData *meta = NULL;
    uint64_t s = 0;
    if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
        s = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
    }
    return s;
}

static void test_late_deliveries_waiting(void) {
    int port = 0;
    vt_proc *nats = vt_start_nats(&port, dir);
    CU_ASSERT_FATAL(nats != NULL);
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    CU_ASSERT_FATAL(natsConnection_ConnectTo(&nc, url) == NATS_OK);
    CU_ASSERT_FATAL(natsConnection_JetStream(&js, nc, NULL) == NATS_OK);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[] = {"jf.>"};
    sc.Name = "JF";
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    jsErrCode je = 0;
    CU_ASSERT_FATAL(js_AddStream(NULL, js, &sc, NULL, &je) == NATS_OK);
    for (int i = 0; i < TOTAL; i++) CU_ASSERT_FATAL(js_PublishAsync(js, "jf.a", "{\"x\":1}", 7, NULL) == NATS_OK);
    CU_ASSERT_FATAL(js_PublishAsyncComplete(js, NULL) == NATS_OK);

    natsSubscription *sub = NULL;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Config.AckPolicy = js_AckNone;
    CU_ASSERT_FATAL(js_PullSubscribe(&sub, js, "jf.>", "jf", NULL, &so, &je) == NATS_OK);

    /* 700 deliveries that no fetch is waiting for: they wait in the subscription */
    CU_ASSERT_FATAL(natsConnection_PublishRequestString(nc, "$JS.API.CONSUMER.MSG.NEXT.JF.jf",
                                                        natsSubscription_GetSubject(sub), "{\"batch\":700}") == NATS_OK);
    int waiting = 0;
    for (int i = 0; i < 200 && waiting < 700; i++) {
        vt_sleep_ms(10);
        natsSubscription_GetPending(sub, &waiting, NULL);
    }
    CU_ASSERT_FATAL(waiting == 700);

    uint64_t next = 1;
    int got = 0, rounds = 0, in_order = 1;
    long long first_ms = -1;
    while (got < TOTAL && rounds < 100) {
        natsMsgList list = {0};
        long long t0 = vt_now_ms();
        natsStatus ns = vjs_fetch(&list, sub, 1000, 2000, 0);
        if (rounds++ == 0) {
            first_ms = vt_now_ms() - t0;
            CU_ASSERT(ns == NATS_OK && list.Count >= 700);   /* every waiting one, and more from the stream */
        }
        if (ns != NATS_OK) continue;   /* the stream's end: a pull finds nothing */
        for (int i = 0; i < list.Count; i++) {
            if (seq_of(list.Msgs[i]) != next) in_order = 0;
            next++;
        }
        got += list.Count;
        natsMsgList_Destroy(&list);
    }
    printf("\n  %d messages in %d pulls; the first (700 waiting) took %lld ms of its 2 s\n", got, rounds, first_ms);
    CU_ASSERT_EQUAL(got, TOTAL);
    CU_ASSERT(in_order);
    /* the unguarded fetch waited out its 2 s there (its count passed its
     * bound); a pull that finds its messages returns in milliseconds (1 s:
     * room for a loaded machine) */
    CU_ASSERT(first_ms >= 0 && first_ms < 1000);

    natsSubscription_Destroy(sub);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    vt_kill(nats, SIGTERM);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    dir = vt_tmpdir();
    if (!dir) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("JetStream pulls (libnats 3.4.1 fetch guard)", NULL, NULL);
    if (!su || !CU_add_test(su, "late deliveries waiting: one prompt pull, in order", test_late_deliveries_waiting)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

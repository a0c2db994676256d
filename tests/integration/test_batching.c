/* test_batching.c — how `vigil serve` groups events into worker batches
 * (issue 16), against the real binary, nats-server and redis-server:
 *   - core NATS: a backlog of one-event messages is routed in batches, not
 *     one event at a time (vigil is SIGSTOPped while 5,000 messages are
 *     published, so they wait in its socket; after SIGCONT every event is
 *     processed in a few batches — it was one enqueue and ~4 items a batch);
 *   - Redis store: a worker commits at most once per 2 ms however the events
 *     trickle in (2,000 events, one every 0.5 ms: it was one commit each);
 *     the bound holds by construction (a batch waits 2 ms after its first
 *     item), so a slow machine only makes fewer commits.
 * Both also check that nothing is lost: every event is processed. */
#include <CUnit/Basic.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"

static char *dir;
static char rules[600];

/* processed events reach want within timeout_ms: the time it took (ms), or -1 */
static long long wait_processed(const char *base, double want, int timeout_ms) {
    long long t0 = vt_now_ms();
    while (vt_now_ms() - t0 < timeout_ms) {
        if (vt_metric(base, "vigil_events_processed_total") >= want) return vt_now_ms() - t0;
        vt_sleep_ms(10);
    }
    return -1;
}

/* vigil serve with one worker on NATS nurl (and Redis rurl, or the memory
 * store without snapshots), a client connection to the same NATS, and the
 * commit count before anything is sent */
static vt_proc *serve(const char *tag, const char *nurl, const char *rurl, char *base, size_t blen,
                      natsConnection **nc, double *c0) {
    char log[600];
    snprintf(log, sizeof log, "%s/vigil-%s.log", dir, tag);
    const char *argv[] = {VIGIL_BIN, "serve", "--rules", rules, "--listen", "127.0.0.1:0", "--workers", "1",
                          "--nats", nurl, "--idle-timeout", "0", rurl ? "--redis" : "--data-dir", rurl ? rurl : "",
                          NULL};
    vt_proc *v = vt_start_vigil(argv, log, base, blen, 20000);
    if (!v || natsConnection_ConnectTo(nc, nurl) != NATS_OK || (*c0 = vt_metric(base, "vigil_state_commits_total")) < 0)
        return NULL;
    return v;
}

static void publish(natsConnection *nc, const char *tag, int i) {
    char ev[160];
    int n = snprintf(ev, sizeof ev, "{\"id\":\"%s%d\",\"ts\":%d,\"card\":\"c%d\",\"amount\":5}", tag, i, 1000 + i, i % 97);
    CU_ASSERT_FATAL(natsConnection_Publish(nc, "vigil.events.tx", ev, n) == NATS_OK);
}

static void test_core_backlog_batches(void) {
    int nport = 0;
    vt_proc *nats = vt_start_nats(&nport, dir);
    CU_ASSERT_FATAL(nats != NULL);
    char nurl[64], base[64];
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nport);
    natsConnection *nc = NULL;
    double c0 = -1;
    vt_proc *v = serve("core", nurl, NULL, base, sizeof base, &nc, &c0);
    CU_ASSERT_FATAL(v != NULL);
    enum { N = 5000 };
    kill(v->pid, SIGSTOP);   /* the messages wait in its socket and subscription */
    for (int i = 0; i < N; i++) publish(nc, "b", i);
    natsConnection_FlushTimeout(nc, 5000);
    vt_sleep_ms(200);   /* in the kernel's buffers and the client library's */
    kill(v->pid, SIGCONT);
    long long took = wait_processed(base, N, 30000);
    CU_ASSERT(took >= 0);
    double commits = vt_metric(base, "vigil_state_commits_total") - c0;
    double rcv = vt_metric(base, "vigil_events_received_total{source=\"nats\"}");
    printf("\n  %d events in %.0f batches (%.0f received)\n", N, commits, rcv);
    CU_ASSERT_EQUAL(rcv, N);
    CU_ASSERT(commits >= 1 && commits <= N / 50);   /* batches of ≥ 50 events on average */
    natsConnection_Destroy(nc);
    vt_kill(v, SIGTERM);
    vt_kill(nats, SIGTERM);
}

static void test_redis_linger(void) {
    int rport = 0, nport = 0;
    vt_proc *redis = vt_start_redis(&rport, dir);
    vt_proc *nats = vt_start_nats(&nport, dir);
    CU_ASSERT_FATAL(redis && nats);
    char rurl[64], nurl[64], base[64];
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d/0", rport);
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nport);
    natsConnection *nc = NULL;
    double c0 = -1;
    vt_proc *v = serve("linger", nurl, rurl, base, sizeof base, &nc, &c0);
    CU_ASSERT_FATAL(v != NULL);
    enum { N = 2000 };
    long long t0 = vt_now_ms();
    for (int i = 0; i < N; i++) {   /* one event every 0.5 ms, each flushed: a trickle */
        publish(nc, "l", i);
        natsConnection_Flush(nc);
        usleep(500);
    }
    long long took = wait_processed(base, N, 30000);
    CU_ASSERT_FATAL(took >= 0);
    long long elapsed = vt_now_ms() - t0;
    double commits = vt_metric(base, "vigil_state_commits_total") - c0;
    printf("\n  %d events over %lld ms: %.0f commits (bound %lld)\n", N, elapsed, commits, elapsed / 2 + 2);
    CU_ASSERT(commits >= 1 && commits <= (double)(elapsed / 2 + 2));
    natsConnection_Destroy(nc);
    vt_kill(v, SIGTERM);
    vt_kill(nats, SIGTERM);
    vt_kill(redis, SIGTERM);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    dir = vt_serve_test_setup("rule { name = \"many\", key = \"card\", window = sliding(\"1h\"), when = ge(count(), 1000) }\n",
                              rules, sizeof rules);
    if (!dir) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("batching (issue 16)", NULL, NULL);
    if (!su || !CU_add_test(su, "core NATS: a backlog is routed in batches", test_core_backlog_batches) ||
        !CU_add_test(su, "Redis: at most one commit per 2 ms per worker", test_redis_linger)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    return failed ? 1 : 0;
}

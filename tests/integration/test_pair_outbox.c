/* test_pair_outbox.c — cluster mode's webhooks from per-pair outboxes
 * (server/alerts/outbox_pairs.c, issue 14), against a real redis-server and
 * the real webhook receiver (tests/tools/webhook_receiver), both on loopback
 * ports below the ephemeral range.
 *
 * The alerts are appended the way a worker does it: the fenced pair commit
 * (vigil_redis_store_commit_pairs) with the entry fields of
 * vigil_outbox_fields. What must hold: a read gives every owned pair's
 * entries, each pair in stream order, positions naming their stream; a
 * reader that did not take a whole read gets the rest again (the rewind);
 * after remove(pair) nothing more of it is read, and what it left is there
 * for the next owner; a second outbox object that adds a pair redelivers
 * the entries the first one read and never acked; through the dispatcher,
 * entries of two pairs reach the receiver once each, with webhook-id = the
 * alert id, and a removed pair's new entries do not. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dispatch.h"
#include "harness.h"
#include "webhooks.h"
#include "outbox.h"
#include "redis_store.h"
#include "vigil/ruleset.h"

#define P 4
#define G "card"
#define PREFIX "po"
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define RECEIVER VIGIL_BINARY_DIR "/webhook_receiver"

static char *dir;
static vt_proc *redis, *receiver;
static char url[128], rx_url[128], rx_out[512], rx_status[512];
static vigil_store *st;
static uint64_t seqs[P], epochs[P];
static int alert_no;

static int low_port(void) {
    for (int i = 0; i < 200; i++) {
        int p = 20000 + (int)((unsigned)(getpid() * 7919 + i * 104729 + (int)vt_now_ms()) % 12000u);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
        if (fd >= 0) close(fd);
        if (ok) return p;
    }
    return -1;
}

static void key_in(int p, int nth, char *buf, size_t n) {
    for (int i = 0, found = 0;; i++) {
        snprintf(buf, n, "k%d", i);
        if (vigil_hash(buf, strlen(buf)) % P == (uint64_t)p && found++ == nth) return;
    }
}

/* Commit n alerts to pair p (key nth 0 and 1 alternate), the way a worker
 * does; their ids into ids[] (33 bytes each). */
static void commit_alerts(int p, int n, char ids[][40]) {
    vigil_alert_record a[8];
    char json[8][200], key[8][16];
    const char *av[8][VIGIL_OUTBOX_FIELDS_ARGC];
    size_t al[8][VIGIL_OUTBOX_FIELDS_ARGC];
    vigil_redis_cmd cmds[8];
    for (int i = 0; i < n && i < 8; i++) {
        alert_no++;
        snprintf(ids[i], 40, "%08x%024x", (unsigned)p, (unsigned)alert_no);
        key_in(p, i % 2, key[i], sizeof key[i]);
        int l = snprintf(json[i], sizeof json[i], "{\"id\":\"%s\",\"key\":\"%s\",\"n\":%d}", ids[i], key[i], alert_no);
        memset(&a[i], 0, sizeof a[i]);
        vigil_alert_record_set(&a[i], ids[i], "r1", "high", key[i], VIGIL_MODE_ACTIVE, json[i], (size_t)l);
        cmds[i] = (vigil_redis_cmd){vigil_outbox_fields(&a[i], av[i], al[i]), av[i], al[i]};
    }
    vigil_error err;
    vigil_error_clear(&err);
    if (!epochs[p]) CU_ASSERT_EQUAL(vigil_redis_store_epoch_incr(st, G, p, &epochs[p], &err), VIGIL_OK);
    vigil_redis_pair_commit pc = {.group_name = G, .partition = p, .epoch = epochs[p], .seq = ++seqs[p], .wm = 0,
                                  .outbox = cmds, .noutbox = n};
    vigil_pair_result res;
    vigil_status s = vigil_redis_store_commit_pairs(st, &pc, 1, &res, &err);
    if (s != VIGIL_OK) fprintf(stderr, "commit: %s\n", err.msg);
    CU_ASSERT_EQUAL(s, VIGIL_OK);
}

static vigil_outbox *open_ob(const char *ep) {
    const char *eps[1] = {ep};
    vigil_outbox *ob = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_outbox_pairs_open(url, PREFIX, NULL, eps, 1, &ob, &err) != VIGIL_OK) fprintf(stderr, "open: %s\n", err.msg);
    return ob;
}

static int rd(vigil_outbox *ob, const char *ep, const char *after, vigil_alert_record *out, int max, int wait) {
    int n = -1;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = ob->read(ob, ep, after, out, max, &n, wait, &err);
    if (s != VIGIL_OK) fprintf(stderr, "read: %s\n", err.msg);
    CU_ASSERT_EQUAL(s, VIGIL_OK);
    return n;
}

static void free_recs(vigil_alert_record *r, int n) {
    for (int i = 0; i < n; i++) vigil_alert_record_free(&r[i]);
}

/* ---- the outbox API ------------------------------------------------------ */

static void test_read_rewind_remove(void) {
    char a0[3][40], a1[2][40], b0[1][40], b1[1][40];
    commit_alerts(0, 3, a0);
    commit_alerts(1, 2, a1);
    vigil_outbox *ob = open_ob("api");
    CU_ASSERT_FATAL(ob != NULL);
    CU_ASSERT(vigil_outbox_is_pairs(ob));
    vigil_alert_record out[16];
    CU_ASSERT_EQUAL(rd(ob, "api", "", out, 16, 50), 0);   /* no pair yet */
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 1, &err), VIGIL_OK);   /* twice: once */
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, "bad{g}", 1, &err), VIGIL_EINVAL);
    int n = rd(ob, "api", "", out, 16, 100);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    /* pair 0 then pair 1, each in stream order; refs name their stream */
    const char *want[5] = {a0[0], a0[1], a0[2], a1[0], a1[1]};
    for (int i = 0; i < 5; i++) {
        CU_ASSERT_STRING_EQUAL(out[i].id, want[i]);
        CU_ASSERT(strchr(out[i].ref, '/') != NULL);
        CU_ASSERT(out[i].appended_ms > 0);
    }
    CU_ASSERT(strncmp(out[0].ref, out[3].ref, (size_t)(strchr(out[0].ref, '/') - out[0].ref) + 1) != 0);
    /* the reader took only two: the rest comes again, in order */
    char took[48], refs[8][48];
    snprintf(took, sizeof took, "%s", out[1].ref);
    for (int i = 0; i < 5; i++) snprintf(refs[i], sizeof refs[i], "%s", out[i].ref);
    free_recs(out, n);
    n = rd(ob, "api", took, out, 16, 50);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(out[0].id, a0[2]);
    CU_ASSERT_STRING_EQUAL(out[1].id, a1[0]);
    CU_ASSERT_STRING_EQUAL(out[2].id, a1[1]);
    CU_ASSERT_STRING_EQUAL(out[0].ref, refs[2]);
    char last[48];
    snprintf(last, sizeof last, "%s", out[2].ref);
    free_recs(out, n);
    CU_ASSERT_EQUAL(rd(ob, "api", last, out, 16, 50), 0);
    uint64_t depth = 99;
    CU_ASSERT_EQUAL(ob->depth(ob, "api", &depth, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(depth, 5);   /* read, not acked */
    const char *acks[5] = {refs[0], refs[1], refs[2], refs[3], refs[4]};
    CU_ASSERT_EQUAL(ob->ack(ob, "api", acks, 5, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(ob->depth(ob, "api", &depth, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(depth, 0);
    CU_ASSERT_EQUAL(ob->ack(ob, "nobody", acks, 1, &err), VIGIL_ENOTFOUND);

    /* remove pair 0: nothing more of it */
    CU_ASSERT_EQUAL(vigil_outbox_pairs_remove(ob, G, 0, &err), VIGIL_OK);
    commit_alerts(0, 1, b0);
    commit_alerts(1, 1, b1);
    n = rd(ob, "api", last, out, 16, 200);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(out[0].id, b1[0]);
    snprintf(last, sizeof last, "%s", out[0].ref);
    free_recs(out, n);
    CU_ASSERT_EQUAL(rd(ob, "api", last, out, 16, 50), 0);
    /* starting over ("") gives what is unacked of the owned pairs only */
    n = rd(ob, "api", "", out, 16, 50);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1) CU_ASSERT_STRING_EQUAL(out[0].id, b1[0]);
    free_recs(out, n);
    CU_ASSERT_EQUAL(ob->depth(ob, "api", &depth, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(depth, 1);
    ob->destroy(ob);

    /* the next owner of pair 0 finds what the removed one left */
    vigil_outbox *ob2 = open_ob("api");
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob2, G, 0, &err), VIGIL_OK);
    n = rd(ob2, "api", "", out, 16, 100);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1) CU_ASSERT_STRING_EQUAL(out[0].id, b0[0]);
    free_recs(out, n);
    ob2->destroy(ob2);
}

/* ---- through the dispatcher to a real receiver ----------------------------- */

/* How many requests carried webhook-id id with a 2xx answer. */
static int delivered(const char *id) {
    char *all = vt_slurp(rx_out), pat[80];
    int n = 0;
    snprintf(pat, sizeof pat, "\"webhook_id\":\"%s\"", id);
    for (const char *p = all; p && (p = strstr(p, pat)); p += strlen(pat)) {
        const char *eol = strchr(p, '\n'), *ok = strstr(p, "\"status\":200");
        if (ok && (!eol || ok < eol)) n++;
    }
    free(all);
    return n;
}

static int wait_delivered(char ids[][40], int n, int timeout_ms) {
    long long deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        int all = 1;
        for (int i = 0; i < n && all; i++) all = delivered(ids[i]) >= 1;
        if (all) return 1;
        if (vt_now_ms() > deadline) return 0;
        vt_sleep_ms(20);
    }
}

static void test_redeliver_and_deliver(void) {
    char c[3][40], d[2][40], c2[1][40], d2[2][40];
    vigil_alert_record out[16];
    vigil_error err;
    commit_alerts(2, 3, c);
    /* the first owner reads pair 2 and dies before acking */
    vigil_outbox *ob1 = open_ob("hook");
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob1, G, 2, &err), VIGIL_OK);
    int n = rd(ob1, "hook", "", out, 16, 100);
    CU_ASSERT_EQUAL(n, 3);
    free_recs(out, n);
    ob1->destroy(ob1);

    /* the next owner: a read gives them again, same ids */
    vigil_outbox *ob = open_ob("hook");
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 2, &err), VIGIL_OK);
    n = rd(ob, "hook", "", out, 16, 100);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    for (int i = 0; i < 3; i++) CU_ASSERT_STRING_EQUAL(out[i].id, c[i]);
    free_recs(out, n);
    /* its dispatcher starts over ("") and delivers them, with pair 3's */
    commit_alerts(3, 2, d);
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 3, &err), VIGIL_OK);
    vigil_endpoint_config ep = {.name = "hook", .url = rx_url, .secret = SECRET, .backoff_ms = 100, .timeout_ms = 2000};
    vigil_dispatch *disp = NULL;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_dispatch_create(&ep, 1, NULL, ob, 1000, &disp, &err), VIGIL_OK);
    CU_ASSERT(wait_delivered(c, 3, 10000));
    CU_ASSERT(wait_delivered(d, 2, 10000));
    /* once each (webhook-id = alert id) */
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(delivered(c[i]), 1);
    for (int i = 0; i < 2; i++) CU_ASSERT_EQUAL(delivered(d[i]), 1);
    /* acked: the backlog drains */
    uint64_t depth = 99;
    long long deadline = vt_now_ms() + 5000;
    while (vt_now_ms() < deadline && (ob->depth(ob, "hook", &depth, &err) != VIGIL_OK || depth)) vt_sleep_ms(50);
    CU_ASSERT_EQUAL(depth, 0);

    /* pair 3 is lost: its new alerts stay for the next owner */
    CU_ASSERT_EQUAL(vigil_outbox_pairs_remove(ob, G, 3, &err), VIGIL_OK);
    commit_alerts(3, 2, d2);
    commit_alerts(2, 1, c2);
    CU_ASSERT(wait_delivered(c2, 1, 10000));
    vt_sleep_ms(500);
    CU_ASSERT_EQUAL(delivered(d2[0]), 0);
    CU_ASSERT_EQUAL(delivered(d2[1]), 0);
    vigil_dispatch_destroy(disp);
    ob->destroy(ob);
    vigil_outbox *next = open_ob("hook");
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(next, G, 3, &err), VIGIL_OK);
    n = rd(next, "hook", "", out, 16, 100);
    CU_ASSERT_EQUAL(n, 2);
    for (int i = 0; i < n && i < 2; i++) CU_ASSERT_STRING_EQUAL(out[i].id, d2[i]);
    free_recs(out, n);
    next->destroy(next);
}

/* What the receiver answers from now on (atomically: tmp + rename). */
static void rx_set_status(int status) {
    char t[600];
    snprintf(t, sizeof t, "%s.tmp", rx_status);
    FILE *f = fopen(t, "w");
    if (!f) return;
    fprintf(f, "%d\n", status);
    fclose(f);
    rename(t, rx_status);
}

/* Alerts of a pair already in the dispatcher's window (retrying against a
 * receiver answering 503) are not sent once the pair is removed. */
static void test_removed_pair_not_retried(void) {
    char e[2][40];
    vigil_error err;
    vigil_alert_record out[16];
    rx_set_status(503);
    vigil_outbox *ob = open_ob("late");
    CU_ASSERT_FATAL(ob != NULL);
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 1, &err), VIGIL_OK);
    vigil_endpoint_config ep = {.name = "late", .url = rx_url, .secret = SECRET, .backoff_ms = 100,
                                .max_backoff_ms = 200, .timeout_ms = 2000};
    vigil_dispatch *disp = NULL;
    CU_ASSERT_EQUAL_FATAL(vigil_dispatch_create(&ep, 1, NULL, ob, 1000, &disp, &err), VIGIL_OK);
    commit_alerts(1, 2, e);
    vigil_dispatch_stats ds;
    long long deadline = vt_now_ms() + 5000;
    do {
        vt_sleep_ms(20);
        vigil_dispatch_stats_get(disp, 0, &ds);
    } while (ds.retries < 2 && vt_now_ms() < deadline);
    CU_ASSERT(ds.retries >= 2);   /* read, tried, waiting for a retry */
    CU_ASSERT_EQUAL(vigil_outbox_pairs_remove(ob, G, 1, &err), VIGIL_OK);
    rx_set_status(200);
    vt_sleep_ms(800);
    CU_ASSERT_EQUAL(delivered(e[0]), 0);
    CU_ASSERT_EQUAL(delivered(e[1]), 0);
    vigil_dispatch_stats_get(disp, 0, &ds);
    CU_ASSERT_EQUAL(ds.window, 0);
    vigil_dispatch_destroy(disp);
    ob->destroy(ob);
    /* the next owner has them (after pair 1's older entries: the group "late" is new, made at 0) */
    vigil_outbox *next = open_ob("late");
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(next, G, 1, &err), VIGIL_OK);
    int n = rd(next, "late", "", out, 16, 100), found = 0;
    CU_ASSERT(n >= 2);
    for (int i = 0; i < n; i++) found += !strcmp(out[i].id, e[0]) || !strcmp(out[i].id, e[1]);
    CU_ASSERT_EQUAL(found, 2);
    if (n >= 2) CU_ASSERT(!strcmp(out[n - 2].id, e[0]) && !strcmp(out[n - 1].id, e[1]));
    free_recs(out, n);
    next->destroy(next);
}

/* The lifecycle's entry point: vigil_webhooks_start_pairs, then pairs come. */
static void test_webhooks_start_pairs(void) {
    char f[2][40];
    vigil_outbox *ob = NULL;
    vigil_dispatch *disp = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    const char *urls[1] = {rx_url};
    rx_set_status(200);
    CU_ASSERT_EQUAL(vigil_webhooks_start_pairs(NULL, 0, urls, 1, SECRET, NULL, PREFIX, &ob, &disp, &err), VIGIL_EINVAL);
    CU_ASSERT_EQUAL_FATAL(vigil_webhooks_start_pairs(NULL, 0, urls, 1, SECRET, url, PREFIX, &ob, &disp, &err), VIGIL_OK);
    CU_ASSERT(vigil_outbox_is_pairs(ob));
    CU_ASSERT_EQUAL(vigil_outbox_pairs_add(ob, G, 0, &err), VIGIL_OK);
    commit_alerts(0, 2, f);
    CU_ASSERT(wait_delivered(f, 2, 10000));
    vigil_webhooks_stop(disp, ob);
}

static int start_receiver(void) {
    char log[512], portbuf[16];
    snprintf(rx_out, sizeof rx_out, "%s/rx.jsonl", dir);
    snprintf(rx_status, sizeof rx_status, "%s/rx.status", dir);
    rx_set_status(200);
    snprintf(log, sizeof log, "%s/rx.log", dir);
    for (int attempt = 0; attempt < 5; attempt++) {
        int port = low_port();
        snprintf(portbuf, sizeof portbuf, "%d", port);
        const char *argv[] = {RECEIVER, "--port", portbuf, "--out", rx_out, "--secret", SECRET, "--status-file", rx_status, NULL};
        receiver = vt_spawn(argv, log);
        if (receiver && vt_wait_port(port, 5000) == 0 && vt_alive(receiver)) {
            snprintf(rx_url, sizeof rx_url, "http://127.0.0.1:%d/hook", port);
            return 0;
        }
        vt_kill(receiver, SIGKILL);
        receiver = NULL;
    }
    return -1;
}

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    dir = vt_tmpdir();
    if (!dir) return 1;
    if (access(RECEIVER, X_OK) != 0) {
        fprintf(stderr, "test_pair_outbox: %s not built (build the webhook_receiver target)\n", RECEIVER);
        return 1;
    }
    int port = 0;
    for (int i = 0; i < 5 && !redis; i++) {
        port = low_port();
        if (port > 0) redis = vt_start_redis(&port, dir);
    }
    if (!redis || start_receiver() != 0) return 1;
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_redis_store_create(url, PREFIX, &st, &err) != VIGIL_OK || vigil_redis_store_set_partitions(st, P) != VIGIL_OK) {
        fprintf(stderr, "store: %s\n", err.msg);
        return 1;
    }
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("pair outbox", NULL, NULL);
    if (!s || !CU_add_test(s, "read, rewind, ack, depth, remove, next owner", test_read_rewind_remove) ||
        !CU_add_test(s, "redelivery to a new owner; two pairs delivered once each; a removed pair stops",
                     test_redeliver_and_deliver) ||
        !CU_add_test(s, "a removed pair's alerts waiting for a retry are not sent", test_removed_pair_not_retried) ||
        !CU_add_test(s, "vigil_webhooks_start_pairs", test_webhooks_start_pairs)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    st->destroy(st);
    vt_kill(receiver, SIGTERM);
    vt_kill(redis, SIGTERM);
    free(dir);
    return fails != 0;
}

/* test_server.c — behaviours of `vigil serve` that issue 10 (the server
 * restructure) fixed, each against the real binary and real servers on
 * loopback, with a small rule written here (no shared data needed):
 *   - SIGHUP is logged and ignored (it used to kill the server);
 *   - an alert lost to a failed allocation is counted and logged, never
 *     silent (VIGIL_FAULT=alert_nomem:1 makes the buffer growth fail);
 *   - late events are published to NATS only after their batch's commit
 *     (VIGIL_FAULT=commit:2 kills the server inside the commit of a batch
 *     that holds a late event: nothing may have reached vigil.late.>);
 *   - a browser leaving the SSE stream is counted, not logged as an error;
 *   - with JetStream, an HTTP body is published to the stream byte for byte
 *     as it came (it used to be decoded and re-encoded);
 *   - when most events are late, /readyz carries a warning and the log says so;
 *   - invalid UTF-8 in an event is a bad line: 400 naming line and offset. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define START_TIMEOUT_MS 20000

static char *dir;
static char rules[600];

typedef struct server {
    vt_proc *p;
    char log[600];
    char base[64];
    int port;
} server;

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0;
    char *b = malloc(cap);
    size_t got;
    while (b && (got = fread(b + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (cap - len < 2) {
            char *nb = realloc(b, cap * 2);
            if (!nb) break;
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[len] = '\0';
    return b;
}

static int log_has(const server *s, const char *needle) {
    char *t = slurp(s->log);
    int r = t && strstr(t, needle);
    free(t);
    return r;
}

/* Start vigil serve with extra args and env; waits for its "listening" line. */
static int start(server *s, const char *tag, const char *const extra[], const char *const env[]) {
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "%s/vigil-%s.log", dir, tag);
    const char *argv[40];
    int i = 0;
    argv[i++] = VIGIL_BIN;
    argv[i++] = "serve";
    argv[i++] = "--rules";
    argv[i++] = rules;
    argv[i++] = "--listen";
    argv[i++] = "127.0.0.1:0";
    argv[i++] = "--workers";
    argv[i++] = "1";
    argv[i++] = "--idle-timeout";
    argv[i++] = "0";
    for (int k = 0; extra && extra[k]; k++) argv[i++] = extra[k];
    argv[i] = NULL;
    if (!(s->p = vt_spawn_env(argv, env, s->log))) return -1;
    long long t0 = vt_now_ms();
    while (vt_now_ms() - t0 < START_TIMEOUT_MS) {
        char *t = slurp(s->log);
        const char *m = t ? strstr(t, "listening on http://127.0.0.1:") : NULL;
        if (m) s->port = atoi(m + strlen("listening on http://127.0.0.1:"));
        free(t);
        if (s->port > 0) break;
        if (!vt_alive(s->p)) break;
        vt_sleep_ms(20);
    }
    if (s->port <= 0) {
        fprintf(stderr, "vigil serve (%s) did not start:\n", tag);
        vt_dump_log(s->log, 4000);
        vt_kill(s->p, SIGKILL);
        s->p = NULL;
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

static void stop(server *s) {
    if (!s->p) return;
    vt_kill(s->p, SIGTERM);
    s->p = NULL;
}

static char *post(const server *s, const char *path, const char *body, const char *ct, long *status) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    return vt_http("POST", url, body, strlen(body), ct, status);
}

static double metric(const server *s, const char *name) { return vt_metric(s->base, name); }

static int alerts_in(const char *body) {
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "alerts");
    int n = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    cJSON_Delete(o);
    return n;
}

/* ---- SIGHUP ------------------------------------------------------------------------ */

static void test_sighup(void) {
    server s;
    const char *extra[] = {"--data-dir", "", NULL};
    CU_ASSERT_FATAL(start(&s, "hup", extra, NULL) == 0);
    CU_ASSERT(kill(s.p->pid, SIGHUP) == 0);
    vt_sleep_ms(300);
    CU_ASSERT(vt_alive(s.p));
    long st = 0;
    char url[256];
    snprintf(url, sizeof url, "%s/healthz", s.base);
    free(vt_http("GET", url, NULL, 0, NULL, &st));
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(log_has(&s, "SIGHUP"));
    /* and it still stops cleanly on SIGTERM */
    kill(s.p->pid, SIGTERM);
    CU_ASSERT(vt_wait_exit(s.p, 10000));
    CU_ASSERT(s.p->exited && WIFEXITED(s.p->status) && WEXITSTATUS(s.p->status) == 0);
    vt_kill(s.p, SIGKILL);
}

/* ---- an alert lost to a failed allocation is counted and logged ------------------------ */

static void test_alert_nomem(void) {
    server s;
    const char *extra[] = {"--data-dir", "", NULL};
    const char *env[] = {"VIGIL_FAULT=alert_nomem:1", NULL};
    CU_ASSERT_FATAL(start(&s, "nomem", extra, env) == 0);
    long st;
    char *b = post(&s, "/v1/events?wait=5000", "{\"id\":\"n1\",\"ts\":1000,\"card\":\"c1\",\"amount\":500}",
                   "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(alerts_in(b), 0);   /* the one alert was lost ... */
    free(b);
    CU_ASSERT_EQUAL(metric(&s, "vigil_alerts_lost_total"), 1);   /* ... and counted */
    CU_ASSERT(log_has(&s, "was lost"));
    /* the next alert goes through */
    b = post(&s, "/v1/events?wait=5000", "{\"id\":\"n2\",\"ts\":1001,\"card\":\"c2\",\"amount\":500}",
             "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(alerts_in(b), 1);
    free(b);
    stop(&s);
}

/* ---- late events leave only after the commit --------------------------------------------- */

static double wait_metric(const server *s, const char *name, double atleast, int ms) {
    double v = metric(s, name);
    for (long long t0 = vt_now_ms(); v < atleast && vt_now_ms() - t0 < ms;) {
        vt_sleep_ms(50);
        v = metric(s, name);
    }
    return v;
}

/* JetStream + Redis: commits carry the pairs' offsets, which is what
 * VIGIL_FAULT=commit:N counts. */
static void test_late_after_commit(void) {
    int rport = 0, nport = 0;
    vt_proc *redis = vt_start_redis(&rport, dir);
    vt_proc *nats = vt_start_nats(&nport, dir);
    CU_ASSERT_FATAL(redis && nats);
    char rurl[64], nurl[64];
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d/0", rport);
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nport);
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    CU_ASSERT_FATAL(natsConnection_ConnectTo(&nc, nurl) == NATS_OK);
    CU_ASSERT_FATAL(natsConnection_SubscribeSync(&sub, nc, "vigil.late.>") == NATS_OK);
    natsConnection_Flush(nc);
    server s;
    const char *extra[] = {"--redis", rurl, "--nats", nurl, "--jetstream", NULL};
    const char *env[] = {"VIGIL_FAULT=commit:2", NULL};
    CU_ASSERT_FATAL(start(&s, "late", extra, env) == 0);
    long st;
    /* message 1 (commit 1): moves the watermark to t = 1000 s */
    char *b = post(&s, "/v1/events", "{\"id\":\"l1\",\"ts\":1000,\"card\":\"c1\",\"amount\":5}",
                   "application/json", &st);
    CU_ASSERT_EQUAL(st, 202);
    free(b);
    CU_ASSERT(wait_metric(&s, "vigil_state_commits_total", 1, 10000) >= 1);
    /* message 2: a late event, then 3000 events of new keys, one batch and
     * one commit (commit 2: the fault kills inside it). The many keys give
     * a publish made before the commit time to leave the client's buffer. */
    size_t cap = 3001 * 80, len = 0;
    char *batch = malloc(cap);
    CU_ASSERT_FATAL(batch != NULL);
    len += (size_t)snprintf(batch + len, cap - len, "{\"id\":\"l2\",\"ts\":1,\"card\":\"c2\",\"amount\":5}\n");
    for (int i = 0; i < 3000; i++)
        len += (size_t)snprintf(batch + len, cap - len, "{\"id\":\"k%d\",\"ts\":1001,\"card\":\"k%d\",\"amount\":5}\n", i, i);
    b = post(&s, "/v1/events", batch, "application/x-ndjson", &st);
    free(batch);
    free(b);   /* 202, or no answer when the kill came first */
    int died = vt_wait_exit(s.p, 10000);   /* killed inside the commit */
    CU_ASSERT(died && WIFSIGNALED(s.p->status) && WTERMSIG(s.p->status) == SIGKILL);
    natsMsg *m = NULL;
    natsStatus ns = natsSubscription_NextMsg(&m, sub, 1000);
    CU_ASSERT_EQUAL(ns, NATS_TIMEOUT);   /* nothing was published before the commit */
    if (ns == NATS_OK) {
        printf("  late event published before its commit: %.*s\n", natsMsg_GetDataLength(m), natsMsg_GetData(m));
        natsMsg_Destroy(m);
        m = NULL;
    }
    vt_kill(s.p, SIGKILL);
    /* restarted without the fault: message 2 is redelivered; whether its
     * commit reached Redis or not, l2 is published at most once, after a
     * commit; a new late event is published too */
    CU_ASSERT_FATAL(start(&s, "late2", extra, NULL) == 0);
    b = post(&s, "/v1/events", "{\"id\":\"l4\",\"ts\":2,\"card\":\"c4\",\"amount\":5}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 202);
    free(b);
    int seen_l2 = 0, seen_l4 = 0;
    while (natsSubscription_NextMsg(&m, sub, seen_l4 ? 500 : 10000) == NATS_OK) {
        CU_ASSERT_STRING_EQUAL(natsMsg_GetSubject(m), "vigil.late.card");
        seen_l2 += strstr(natsMsg_GetData(m), "\"l2\"") != NULL;
        seen_l4 += strstr(natsMsg_GetData(m), "\"l4\"") != NULL;
        natsMsg_Destroy(m);
        m = NULL;
    }
    CU_ASSERT_EQUAL(seen_l4, 1);
    CU_ASSERT(seen_l2 <= 1);
    stop(&s);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    vt_kill(nats, SIGTERM);
    vt_kill(redis, SIGTERM);
}

/* ---- a client leaving the SSE stream is not an error ------------------------------------ */

static void test_sse_client_gone(void) {
    server s;
    const char *extra[] = {"--data-dir", "", NULL};
    CU_ASSERT_FATAL(start(&s, "sse", extra, NULL) == 0);
    double gone0 = metric(&s, "vigil_http_clients_gone_total");
    CU_ASSERT(gone0 >= 0);
    for (int round = 0; round < 3; round++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port)};
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CU_ASSERT_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
        const char *req = "GET /v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n";
        CU_ASSERT(write(fd, req, strlen(req)) == (ssize_t)strlen(req));
        char buf[512];
        CU_ASSERT(read(fd, buf, sizeof buf) > 0);   /* the headers: the stream is open */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};   /* leave abruptly, as a closed tab does */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        close(fd);
        /* alerts the hub now writes to the stream that is gone */
        for (int k = 0; k < 3; k++) {
            char ev[160];
            snprintf(ev, sizeof ev, "{\"id\":\"s%d-%d\",\"ts\":%d,\"card\":\"c%d\",\"amount\":500}", round, k,
                     2000 + round * 10 + k, k);
            long st;
            free(post(&s, "/v1/events?wait=5000", ev, "application/json", &st));
            vt_sleep_ms(100);
        }
    }
    vt_sleep_ms(300);
    double gone = metric(&s, "vigil_http_clients_gone_total");
    printf("  clients gone: %.0f\n", gone);
    CU_ASSERT(gone >= gone0 + 1);
    CU_ASSERT(!log_has(&s, "Failed to send"));
    stop(&s);
}

/* ---- JetStream: the HTTP body goes to the stream as it came ------------------------------ */

static void test_jetstream_body_as_is(void) {
    int nport = 0;
    vt_proc *nats = vt_start_nats(&nport, dir);
    CU_ASSERT_FATAL(nats != NULL);
    char nurl[64];
    snprintf(nurl, sizeof nurl, "nats://127.0.0.1:%d", nport);
    server s;
    const char *extra[] = {"--nats", nurl, "--jetstream", "--data-dir", "", NULL};
    CU_ASSERT_FATAL(start(&s, "js", extra, NULL) == 0);
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL;
    CU_ASSERT_FATAL(natsConnection_ConnectTo(&nc, nurl) == NATS_OK);
    CU_ASSERT_FATAL(natsConnection_SubscribeSync(&sub, nc, "vigil.events.>") == NATS_OK);
    natsConnection_Flush(nc);
    /* CRLF, a blank line, spaces: what a client sends, kept byte for byte */
    const char *body = "{ \"id\" : \"j1\", \"ts\":3000, \"card\":\"c1\", \"amount\":500 }\r\n\r\n"
                       "{\"id\":\"j2\",\"ts\":3001,\"card\":\"c2\",\"amount\":1}  \r\n";
    long st;
    char *b = post(&s, "/v1/events", body, "application/x-ndjson", &st);
    CU_ASSERT_EQUAL(st, 202);
    CU_ASSERT(b && strstr(b, "\"accepted\":2"));
    free(b);
    natsMsg *m = NULL;
    CU_ASSERT_EQUAL_FATAL(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    CU_ASSERT_EQUAL((size_t)natsMsg_GetDataLength(m), strlen(body));
    CU_ASSERT(memcmp(natsMsg_GetData(m), body, strlen(body)) == 0);
    natsMsg_Destroy(m);
    /* and the fetcher decoded it once: its alert arrives */
    CU_ASSERT(wait_metric(&s, "vigil_nats_published_total", 1, 5000) >= 1);
    /* a pretty-printed single event (application/json) stays one event */
    const char *pretty = "{\n  \"id\": \"j3\",\n  \"ts\": 3002,\n  \"card\": \"c3\",\n  \"amount\": 700\n}\n";
    b = post(&s, "/v1/events", pretty, "application/json", &st);
    CU_ASSERT_EQUAL(st, 202);
    free(b);
    CU_ASSERT_EQUAL_FATAL(natsSubscription_NextMsg(&m, sub, 5000), NATS_OK);
    CU_ASSERT(memcmp(natsMsg_GetData(m), pretty, strlen(pretty)) == 0);
    natsMsg_Destroy(m);
    CU_ASSERT(wait_metric(&s, "vigil_nats_published_total", 2, 5000) >= 2);
    CU_ASSERT_EQUAL(metric(&s, "vigil_events_rejected_total{reason=\"malformed\"}"), 0);
    stop(&s);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    vt_kill(nats, SIGTERM);
}

/* ---- most events late: said on /readyz and in the log ---------------------------------- */

static void test_late_warning(void) {
    server s;
    const char *extra[] = {"--data-dir", "", NULL};
    CU_ASSERT_FATAL(start(&s, "latewarn", extra, NULL) == 0);
    long st;
    char url[256];
    snprintf(url, sizeof url, "%s/readyz", s.base);
    char *b = vt_http("GET", url, NULL, 0, NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(b && !strstr(b, "warnings"));   /* nothing late yet */
    free(b);
    free(post(&s, "/v1/events?wait=5000", "{\"id\":\"w0\",\"ts\":1000000,\"card\":\"c0\",\"amount\":5}",
              "application/json", &st));
    /* a generator restarted from its first day: 300 events far behind the watermark */
    size_t cap = 300 * 80, len = 0;
    char *batch = malloc(cap);
    CU_ASSERT_FATAL(batch != NULL);
    for (int i = 0; i < 300; i++)
        len += (size_t)snprintf(batch + len, cap - len, "{\"id\":\"w%d\",\"ts\":%d,\"card\":\"c%d\",\"amount\":5}\n",
                                i + 1, 10 + i, i % 7);
    b = post(&s, "/v1/events", batch, "application/x-ndjson", &st);
    free(batch);
    CU_ASSERT_EQUAL(st, 202);
    free(b);
    int warned = 0;
    for (long long t0 = vt_now_ms(); !warned && vt_now_ms() - t0 < 5000;) {
        vt_sleep_ms(200);
        b = vt_http("GET", url, NULL, 0, NULL, &st);
        warned = b && strstr(b, "most events are late") != NULL;
        if (warned) printf("  /readyz: %s\n", b);
        free(b);
    }
    CU_ASSERT(warned);
    CU_ASSERT(log_has(&s, "most events are late"));
    stop(&s);
}

/* ---- invalid UTF-8 is a bad line ------------------------------------------------------- */

static void test_invalid_utf8(void) {
    server s;
    const char *extra[] = {"--data-dir", "", NULL};
    CU_ASSERT_FATAL(start(&s, "utf8", extra, NULL) == 0);
    /* line 2 holds a lone continuation byte at body offset 82 */
    char body[256];
    const char *l1 = "{\"id\":\"u1\",\"ts\":4000,\"card\":\"c1\",\"amount\":500}\n";
    const char *l2a = "{\"id\":\"u2\",\"ts\":4001,\"card\":\"c";
    snprintf(body, sizeof body, "%s%s\x80\",\"amount\":500}\n", l1, l2a);
    size_t off = strlen(l1) + strlen(l2a);
    long st;
    char *b = post(&s, "/v1/events", body, "application/x-ndjson", &st);
    printf("  invalid UTF-8: %ld %s\n", st, b ? b : "");
    CU_ASSERT_EQUAL(st, 400);
    cJSON *o = b ? cJSON_Parse(b) : NULL;
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(o, "line");
    const cJSON *offset = cJSON_GetObjectItemCaseSensitive(o, "offset");
    CU_ASSERT(cJSON_IsNumber(line) && line->valueint == 2);
    CU_ASSERT(cJSON_IsNumber(offset) && (size_t)offset->valuedouble == off);
    cJSON_Delete(o);
    free(b);
    CU_ASSERT_EQUAL(metric(&s, "vigil_events_processed_total"), 0);   /* nothing of the batch applied */
    /* valid multi-byte UTF-8 is fine */
    b = post(&s, "/v1/events", "{\"id\":\"u3\",\"ts\":4002,\"card\":\"caf\xc3\xa9 \xe2\x82\xac\",\"amount\":1}",
             "application/json", &st);
    CU_ASSERT_EQUAL(st, 202);
    free(b);
    stop(&s);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    dir = vt_serve_test_setup("rule { name = \"big\", key = \"card\", window = sliding(\"1h\"), where = { amount = gt(100) },\n"
                              "       when = ge(count(), 1) }\n",
                              rules, sizeof rules);
    if (!dir) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("server (issue 10)", NULL, NULL);
    if (!su || !CU_add_test(su, "SIGHUP is logged and ignored", test_sighup) ||
        !CU_add_test(su, "an alert lost to a failed allocation is counted and logged", test_alert_nomem) ||
        !CU_add_test(su, "late events are published after the commit", test_late_after_commit) ||
        !CU_add_test(su, "a client leaving the SSE stream is counted, not logged", test_sse_client_gone) ||
        !CU_add_test(su, "JetStream: the HTTP body is published as it came", test_jetstream_body_as_is) ||
        !CU_add_test(su, "most events late: a warning on /readyz and in the log", test_late_warning) ||
        !CU_add_test(su, "invalid UTF-8: 400 naming line and byte offset", test_invalid_utf8)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    CU_cleanup_registry();
    free(dir);
    return failures != 0;
}

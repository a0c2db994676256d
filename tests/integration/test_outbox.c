/* test_outbox.c — the durable alert outbox (api/outbox_file.c, api/outbox_redis.c)
 * and its webhook dispatcher (api/dispatch.c), end to end.
 *
 * Issue 4, "nothing lost, nothing twice": every test runs against a real
 * redis-server (started by the harness on a free port) and/or the file log,
 * and delivers to the real webhook receiver (tests/tools/webhook_receiver,
 * which verifies every Standard Webhooks signature and logs every request
 * with the status it answered). Covered, for both backends where it applies:
 * the outbox API (read/ack/dead/depth/list_dead, restart re-reads unacked,
 * trimming and compaction), the file log's torn tail and deduplication
 * (mark_snapshot included), delivery with per-key order and valid signatures,
 * a restart that re-sends only unacked alerts, a receiver answering 503 then
 * 200, a 410 disabling only its endpoint (its alerts become dead letters), the
 * retry horizon, a URL that never answers next to a healthy one, the filters
 * (rules, min_severity, shadow), Redis going down and coming back, metrics,
 * and a SIGKILL between a 2xx and its ack (VIGIL_FAULT=deliver:N in a child
 * that is this binary run again with --dispatch-child): afterwards every alert arrived, duplicates carry the same
 * webhook-id and body. Backoffs, horizons and timeouts are test-sized. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dispatch.h"
#include "harness.h"
#include "outbox.h"
#include "sign.h"

#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define RECEIVER VIGIL_BINARY_DIR "/webhook_receiver"

static char *tmp;
static vt_proc *redis;
static int redis_port;
static char redis_url[64];
static int test_no;              /* makes ids unique per test */

/* ---- receiver ------------------------------------------------------------ */

typedef struct rx {
    vt_proc *proc;
    int port;
    char out[512];
    char url[64];
    char status_file[512];
} rx;

/* Write the status the receiver answers (atomically: tmp + rename). */
static void rx_set_status(rx *r, int status) {
    char t[600];
    snprintf(t, sizeof t, "%s.tmp", r->status_file);
    FILE *f = fopen(t, "w");
    if (!f) return;
    fprintf(f, "%d\n", status);
    fclose(f);
    rename(t, r->status_file);
}

/* Start the receiver with --status-file (initial status) and extra args. */
static int rx_start(rx *r, const char *name, int status, const char *const *extra) {
    char log[512];
    const char *argv[20];
    int k = 0;
    memset(r, 0, sizeof *r);
    snprintf(r->out, sizeof r->out, "%s/%s.jsonl", tmp, name);
    snprintf(r->status_file, sizeof r->status_file, "%s/%s.status", tmp, name);
    snprintf(log, sizeof log, "%s/%s.log", tmp, name);
    rx_set_status(r, status);
    argv[k++] = RECEIVER;
    argv[k++] = "--port";
    argv[k++] = "0";
    argv[k++] = "--out";
    argv[k++] = r->out;
    argv[k++] = "--secret";
    argv[k++] = SECRET;
    argv[k++] = "--status-file";
    argv[k++] = r->status_file;
    for (int i = 0; extra && extra[i] && k < 19; i++) argv[k++] = extra[i];
    argv[k] = NULL;
    r->proc = vt_spawn(argv, log);
    if (!r->proc) return -1;
    long long deadline = vt_now_ms() + 5000;
    while (vt_now_ms() < deadline && !r->port) {
        FILE *f = fopen(log, "r");
        char line[128];
        while (f && fgets(line, sizeof line, f)) {
            unsigned p;
            if (sscanf(line, "PORT %u", &p) == 1 && p > 0 && p < 65536) r->port = (int)p;
        }
        if (f) fclose(f);
        if (!r->port && !vt_alive(r->proc)) break;
        if (!r->port) vt_sleep_ms(10);
    }
    if (!r->port) {
        vt_dump_log(log, 2000);
        vt_kill(r->proc, SIGKILL);
        r->proc = NULL;
        return -1;
    }
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/hook?token=secret", r->port);
    return 0;
}

static void rx_stop(rx *r) {
    if (r->proc) vt_kill(r->proc, SIGTERM);
    r->proc = NULL;
}

typedef struct line {
    char id[40];
    char key[64];
    int n;
    int status;
    int valid;
    char *body;              /* the body as received (re-printed JSON), malloc'd */
} line;

/* Parse the receiver's lines; *n set. Free with free_lines. */
static line *read_lines(const rx *r, int *n) {
    FILE *f = fopen(r->out, "r");
    line *v = NULL;
    int cap = 0;
    char *buf = NULL;
    size_t bcap = 0;
    *n = 0;
    if (!f) return NULL;
    while (getline(&buf, &bcap, f) > 0) {
        cJSON *j = cJSON_Parse(buf);
        if (!j) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
        }
        line *l = &v[(*n)++];
        memset(l, 0, sizeof *l);
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "webhook_id");
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "status");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(j, "body");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
        const cJSON *key = cJSON_GetObjectItemCaseSensitive(data, "key");
        const cJSON *num = cJSON_GetObjectItemCaseSensitive(data, "n");
        const cJSON *did = cJSON_GetObjectItemCaseSensitive(data, "id");
        if (cJSON_IsString(id)) snprintf(l->id, sizeof l->id, "%s", id->valuestring);
        if (cJSON_IsString(key)) snprintf(l->key, sizeof l->key, "%s", key->valuestring);
        l->n = cJSON_IsNumber(num) ? num->valueint : -1;
        l->status = cJSON_IsNumber(st) ? st->valueint : 0;
        l->valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "valid")) && cJSON_IsString(did) &&
                   !strcmp(did->valuestring, l->id);
        l->body = cJSON_PrintUnformatted(body);
        cJSON_Delete(j);
    }
    free(buf);
    fclose(f);
    return v;
}

static void free_lines(line *v, int n) {
    for (int i = 0; i < n; i++) cJSON_free(v[i].body);
    free(v);
}

/* ---- alerts and backends -------------------------------------------------- */

typedef struct talert {
    char id[40], rule[32], sev[16], key[32];
    char json[256];
    vigil_alert_record a;   /* json points into json[] above (not owned) */
} talert;

static void mk(talert *t, int i, const char *rule, const char *sev, const char *key, int shadow) {
    snprintf(t->id, sizeof t->id, "%08x%024x", (unsigned)test_no, (unsigned)i);
    snprintf(t->rule, sizeof t->rule, "%s", rule);
    snprintf(t->sev, sizeof t->sev, "%s", sev);
    snprintf(t->key, sizeof t->key, "%s", key);
    int n = snprintf(t->json, sizeof t->json,
                     "{\"id\":\"%s\",\"rule\":\"%s\",\"severity\":\"%s\",\"mode\":\"%s\",\"key\":\"%s\",\"n\":%d}",
                     t->id, rule, sev, shadow ? "shadow" : "active", key, i);
    memset(&t->a, 0, sizeof t->a);
    vigil_alert_record_set(&t->a, t->id, t->rule, t->sev, t->key, shadow ? VIGIL_MODE_SHADOW : VIGIL_MODE_ACTIVE,
                           t->json, (size_t)n);
}

typedef struct bk {
    int redis;
    char dir[512];
    char prefix[64];
} bk;

static void bk_init(bk *b, int is_redis, const char *name) {
    memset(b, 0, sizeof *b);
    b->redis = is_redis;
    snprintf(b->dir, sizeof b->dir, "%s/%s", tmp, name);
    snprintf(b->prefix, sizeof b->prefix, "t%d", test_no);
}

static vigil_outbox *bk_open(bk *b, const char *const *names, int n) {
    vigil_outbox *ob = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = b->redis ? vigil_outbox_redis_open(redis_url, b->prefix, names, n, &ob, &err)
                              : vigil_outbox_file_open(b->dir, names, n, 0, &ob, &err);
    if (s != VIGIL_OK) fprintf(stderr, "outbox open: %s\n", err.msg);
    return ob;
}

static vigil_status bk_append(bk *b, vigil_outbox *ob, talert *t, int n) {
    vigil_alert_record *a = calloc((size_t)n, sizeof *a);
    for (int i = 0; i < n; i++) a[i] = t[i].a;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status s = b->redis ? vigil_outbox_redis_append(ob, a, n, &err)
                              : vigil_outbox_file_append(ob, a, n, &err);
    if (s != VIGIL_OK) fprintf(stderr, "append: %s\n", err.msg);
    free(a);
    return s;
}

static redisContext *rconn(void) {
    struct timeval tv = {2, 0};
    redisContext *c = redisConnectWithTimeout("127.0.0.1", redis_port, tv);
    if (c && c->err) {
        redisFree(c);
        return NULL;
    }
    return c;
}

static long long xlen(const char *key) {
    redisContext *c = rconn();
    if (!c) return -1;
    redisReply *r = redisCommand(c, "XLEN %s", key);
    long long n = r && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
    if (r) freeReplyObject(r);
    redisFree(c);
    return n;
}

static uint64_t depth(vigil_outbox *ob, const char *ep) {
    uint64_t n = 999999;
    vigil_error err;
    if (ob->depth(ob, ep, &n, &err) != VIGIL_OK) fprintf(stderr, "depth: %s\n", err.msg);
    return n;
}

static vigil_endpoint_config ep_cfg(const char *name, const char *url) {
    vigil_endpoint_config c;
    memset(&c, 0, sizeof c);
    c.name = name;
    c.url = url;
    c.concurrency = 8;
    c.timeout_ms = 2000;
    c.backoff_ms = 40;
    c.max_backoff_ms = 200;
    c.horizon_ms = 30000;
    return c;
}

static vigil_dispatch *dstart(const vigil_endpoint_config *eps, int n, vigil_outbox *ob, long shutdown_ms) {
    vigil_dispatch *d = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_dispatch_create(eps, n, SECRET, ob, shutdown_ms, &d, &err) != VIGIL_OK)
        fprintf(stderr, "dispatch: %s\n", err.msg);
    return d;
}

static vigil_dispatch_stats stats(vigil_dispatch *d, int i) {
    vigil_dispatch_stats st;
    memset(&st, 0, sizeof st);
    vigil_dispatch_stats_get(d, i, &st);
    return st;
}

/* Wait until endpoint i finished at least want alerts (delivered + dead +
 * filtered); 1 when it did within ms. */
static int wait_done(vigil_dispatch *d, int i, unsigned long long want, int ms) {
    long long deadline = vt_now_ms() + ms;
    for (;;) {
        vigil_dispatch_stats st = stats(d, i);
        if (st.delivered + st.dead + st.filtered >= want) return 1;
        if (vt_now_ms() >= deadline) {
            fprintf(stderr, "wait_done(%s): delivered %llu dead %llu filtered %llu, want %llu\n", st.name,
                    st.delivered, st.dead, st.filtered, want);
            return 0;
        }
        vt_sleep_ms(10);
    }
}

/* Every id 0..n-1 answered 200 exactly `once` (or at least once), every
 * line valid, and per key the 200s in outbox order. Returns failures. */
static int check_delivery(const rx *r, int n, int exactly_once) {
    int nl = 0, bad = 0;
    line *v = read_lines(r, &nl);
    int *got = calloc((size_t)n, sizeof *got);
    for (int i = 0; i < nl; i++) {
        if (!v[i].valid) bad++;
        if (v[i].status != 200) continue;
        unsigned k = (unsigned)strtoul(v[i].id + 8, NULL, 16);
        if (k < (unsigned)n) got[k]++;
        else bad++;
        /* per key order: the last 200 of the same key before this one is older */
        for (int j = i - 1; j >= 0; j--) {
            if (v[j].status != 200 || strcmp(v[j].key, v[i].key)) continue;
            if (v[j].n >= v[i].n && !(v[j].n == v[i].n && !exactly_once)) {
                fprintf(stderr, "order: key %s: n %d after %d\n", v[i].key, v[i].n, v[j].n);
                bad++;
            }
            break;
        }
    }
    for (int k = 0; k < n; k++)
        if (got[k] == 0 || (exactly_once && got[k] != 1)) {
            fprintf(stderr, "alert %d delivered %d times\n", k, got[k]);
            bad++;
        }
    free(got);
    free_lines(v, nl);
    return bad;
}

static int count_status(const rx *r, int status) {
    int nl = 0, c = 0;
    line *v = read_lines(r, &nl);
    for (int i = 0; i < nl; i++) c += v[i].status == status;
    free_lines(v, nl);
    return c;
}

/* ---- outbox API ----------------------------------------------------------- */

typedef struct appender {
    bk *b;
    vigil_outbox *ob;
    talert *t;
} appender;

static void *late_append(void *arg) {
    appender *a = arg;
    vt_sleep_ms(150);
    bk_append(a->b, a->ob, a->t, 1);
    return NULL;
}

static void outbox_api(int is_redis) {
    bk b;
    talert t[8];
    vigil_alert_record e[16];
    int n = 0;
    vigil_error err;
    const char *names[] = {"a", "b"};
    test_no++;
    bk_init(&b, is_redis, "api");
    vigil_outbox *ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 8; i++) mk(&t[i], i, i % 2 ? "r1" : "r2", "high", i < 4 ? "k1" : "k2", i == 7);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 5), VIGIL_OK);
    CU_ASSERT_EQUAL(ob->read(ob, "a", "", e, 16, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 5);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(e[i].id, t[i].id);
        CU_ASSERT_STRING_EQUAL(e[i].key, t[i].key);
        CU_ASSERT_STRING_EQUAL(e[i].rule, t[i].rule);
        CU_ASSERT_STRING_EQUAL(e[i].severity, "high");
        CU_ASSERT_EQUAL(e[i].len, t[i].a.len);
        CU_ASSERT(e[i].json && !memcmp(e[i].json, t[i].json, e[i].len));
        CU_ASSERT(e[i].appended_ms > 1600000000000LL);
    }
    char last[VIGIL_ALERT_REF_MAX], third[VIGIL_ALERT_REF_MAX];
    snprintf(last, sizeof last, "%s", e[4].ref);
    snprintf(third, sizeof third, "%s", e[2].ref);
    const char *acks[] = {e[0].ref, e[1].ref, e[2].ref};
    CU_ASSERT_EQUAL(ob->ack(ob, "a", acks, 3, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(ob->ack(ob, "a", acks, 3, &err), VIGIL_OK);   /* idempotent */
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);

    /* after: strictly after the position; nothing new: waits, then 0 */
    CU_ASSERT_EQUAL(ob->read(ob, "a", third, e, 16, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(n, 2);
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
    long long t0 = vt_now_ms();
    CU_ASSERT_EQUAL(ob->read(ob, "a", last, e, 16, &n, 120, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT(vt_now_ms() - t0 >= 100);
    /* a blocked read wakes up for an append */
    appender ap = {&b, ob, &t[5]};
    pthread_t th;
    pthread_create(&th, NULL, late_append, &ap);
    t0 = vt_now_ms();
    CU_ASSERT_EQUAL(ob->read(ob, "a", last, e, 16, &n, 3000, &err), VIGIL_OK);
    CU_ASSERT(vt_now_ms() - t0 < 2000);
    pthread_join(th, NULL);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_STRING_EQUAL(e[0].id, t[5].id);
    vigil_alert_record_free(&e[0]);
    CU_ASSERT_EQUAL(depth(ob, "a"), 3);
    CU_ASSERT_EQUAL(depth(ob, "b"), 6);

    /* restart: a re-reads its 3 unacked (read before, never acked), b all 6 */
    ob->destroy(ob);
    ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(ob->read(ob, "a", "", e, 16, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 3);
    CU_ASSERT_STRING_EQUAL(e[0].id, t[3].id);
    CU_ASSERT_STRING_EQUAL(e[2].id, t[5].id);
    /* dead letter: listed, acked */
    CU_ASSERT_EQUAL(ob->dead(ob, "a", &e[0], "HTTP 400 (not retryable)", 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(depth(ob, "a"), 2);
    char *json = NULL;
    CU_ASSERT_EQUAL(ob->list_dead(ob, "a", 10, &json, &err), VIGIL_OK);
    cJSON *dl = json ? cJSON_Parse(json) : NULL;
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dl), 1);
    cJSON *d0 = cJSON_GetArrayItem(dl, 0);
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(d0, "reason");
    const cJSON *aid = cJSON_GetObjectItemCaseSensitive(d0, "alert_id");
    const cJSON *alert = cJSON_GetObjectItemCaseSensitive(d0, "alert");
    CU_ASSERT(cJSON_IsString(reason) && !strcmp(reason->valuestring, "HTTP 400 (not retryable)"));
    CU_ASSERT(cJSON_IsString(aid) && !strcmp(aid->valuestring, t[3].id));
    CU_ASSERT(cJSON_IsObject(alert) && cJSON_GetObjectItemCaseSensitive(alert, "n"));
    CU_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(d0, "dead_at")));
    cJSON_Delete(dl);
    free(json);
    CU_ASSERT_EQUAL(ob->list_dead(ob, "b", 10, &json, &err), VIGIL_OK);
    CU_ASSERT(json && !strcmp(json, "[]"));
    free(json);
    const char *acks2[] = {e[1].ref, e[2].ref};
    CU_ASSERT_EQUAL(ob->ack(ob, "a", acks2, 2, &err), VIGIL_OK);
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
    CU_ASSERT_EQUAL(depth(ob, "a"), 0);
    /* b acks everything: the outbox can drop it */
    CU_ASSERT_EQUAL(ob->read(ob, "b", "", e, 16, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 6);
    const char *acks3[6];
    for (int i = 0; i < n; i++) acks3[i] = e[i].ref;
    CU_ASSERT_EQUAL(ob->ack(ob, "b", acks3, 6, &err), VIGIL_OK);
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
    CU_ASSERT_EQUAL(depth(ob, "b"), 0);
    if (is_redis) {
        char key[96];
        snprintf(key, sizeof key, "%s:outbox", b.prefix);
        CU_ASSERT_EQUAL(vigil_outbox_redis_trim(ob, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(xlen(key), 0);
        /* the next entry is still read by both */
        CU_ASSERT_EQUAL(bk_append(&b, ob, &t[6], 1), VIGIL_OK);
        CU_ASSERT_EQUAL(xlen(key), 1);
        CU_ASSERT_EQUAL(depth(ob, "a"), 1);
        CU_ASSERT_EQUAL(vigil_outbox_redis_trim(ob, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(xlen(key), 1);
    } else {
        char path[600];
        struct stat st0, st1;
        snprintf(path, sizeof path, "%s/outbox.log", b.dir);
        CU_ASSERT_EQUAL(stat(path, &st0), 0);
        CU_ASSERT_EQUAL(vigil_outbox_file_compact(ob, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(stat(path, &st1), 0);
        CU_ASSERT(st1.st_size < st0.st_size / 2);   /* alerts gone, ids kept */
        CU_ASSERT_EQUAL(bk_append(&b, ob, &t[6], 1), VIGIL_OK);
        CU_ASSERT_EQUAL(depth(ob, "a"), 1);
    }
    /* after a restart, nothing acked comes back; the new one does */
    ob->destroy(ob);
    ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(ob->read(ob, "b", "", e, 16, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(n, 1);
    if (n == 1) CU_ASSERT_STRING_EQUAL(e[0].id, t[6].id);
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
    /* bad input */
    CU_ASSERT_EQUAL(ob->read(ob, "a", "junk", e, 16, &n, 0, &err), VIGIL_EINVAL);
    const char *badref[] = {"x-y"};
    CU_ASSERT_EQUAL(ob->ack(ob, "a", badref, 1, &err), VIGIL_EINVAL);
    ob->destroy(ob);
}

static void test_api_file(void) { outbox_api(0); }
static void test_api_redis(void) { outbox_api(1); }

/* ---- file log: torn tail, deduplication ---------------------------------- */

static int read_all(vigil_outbox *ob, const char *ep, talert *want, int nwant) {
    vigil_alert_record e[64];
    int n = 0, ok = 1;
    vigil_error err;
    if (ob->read(ob, ep, "", e, 64, &n, 0, &err) != VIGIL_OK) return 0;
    if (n != nwant) {
        fprintf(stderr, "read_all: %d entries, want %d\n", n, nwant);
        ok = 0;
    }
    for (int i = 0; i < n; i++) {
        if (ok && strcmp(e[i].id, want[i].id)) ok = 0;
        vigil_alert_record_free(&e[i]);
    }
    return ok;
}

static void test_file_torn_tail(void) {
    bk b;
    talert t[6];
    const char *names[] = {"a"};
    char path[600];
    test_no++;
    bk_init(&b, 0, "torn");
    snprintf(path, sizeof path, "%s/outbox.log", b.dir);
    for (int i = 0; i < 6; i++) mk(&t[i], i, "r", "low", "k", 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 3), VIGIL_OK);
    ob->destroy(ob);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    off_t good = st.st_size;

    /* a crash in the middle of an append: half a record at the end */
    ob = bk_open(&b, names, 1);
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[3], 1), VIGIL_OK);
    ob->destroy(ob);
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    CU_ASSERT_EQUAL(truncate(path, good + (st.st_size - good) / 2), 0);
    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT(read_all(ob, "a", t, 3));
    /* the torn bytes are gone: a new append is readable after a restart */
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[3], 1), VIGIL_OK);   /* its id was torn away too */
    ob->destroy(ob);
    ob = bk_open(&b, names, 1);
    CU_ASSERT(read_all(ob, "a", t, 4));
    ob->destroy(ob);

    /* a flipped byte in the last record: its checksum fails, it is dropped */
    CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    CU_ASSERT_FATAL(fd >= 0);
    char c;
    CU_ASSERT_EQUAL(pread(fd, &c, 1, st.st_size - 3), 1);
    c ^= 0x55;
    CU_ASSERT_EQUAL(pwrite(fd, &c, 1, st.st_size - 3), 1);
    close(fd);
    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT(read_all(ob, "a", t, 3));
    ob->destroy(ob);

    /* garbage appended after a good tail */
    FILE *f = fopen(path, "a");
    fputs("\x07garbage", f);
    fclose(f);
    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT(read_all(ob, "a", t, 3));
    ob->destroy(ob);
}

static void test_file_dedup(void) {
    bk b;
    talert t[6];
    vigil_alert_record e[16];
    int n = 0;
    vigil_error err;
    const char *names[] = {"a"};
    test_no++;
    bk_init(&b, 0, "dedup");
    for (int i = 0; i < 6; i++) mk(&t[i], i, "r", "low", "k", 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 3), VIGIL_OK);            /* 0 1 2 */
    talert again[4] = {t[1], t[2], t[3], t[3]};                     /* 1 2 3 3 */
    for (int i = 0; i < 4; i++)                                     /* re-point the copies (the record */
        again[i].a.json = again[i].json;                            /* holds its strings, json borrowed) */
    CU_ASSERT_EQUAL(bk_append(&b, ob, again, 4), VIGIL_OK);
    CU_ASSERT(read_all(ob, "a", t, 4));                             /* 0 1 2 3 */
    /* acked and compacted: the ids are still remembered, across a restart */
    CU_ASSERT_EQUAL(ob->read(ob, "a", "", e, 16, &n, 0, &err), VIGIL_OK);
    const char *refs[16];
    for (int i = 0; i < n; i++) refs[i] = e[i].ref;
    CU_ASSERT_EQUAL(ob->ack(ob, "a", refs, n, &err), VIGIL_OK);
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
    CU_ASSERT_EQUAL(vigil_outbox_file_compact(ob, &err), VIGIL_OK);
    ob->destroy(ob);
    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 2), VIGIL_OK);            /* 0 1: replayed, skipped */
    CU_ASSERT_EQUAL(depth(ob, "a"), 0);
    /* two snapshot marks: what was appended before the first may be forgotten */
    vigil_outbox_file_mark_snapshot(ob);
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[4], 1), VIGIL_OK);        /* 4, after the first mark */
    vigil_outbox_file_mark_snapshot(ob);
    CU_ASSERT_EQUAL(ob->read(ob, "a", "", e, 16, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(n, 1);
    CU_ASSERT_EQUAL(ob->ack(ob, "a", (const char *const[]){e[0].ref}, 1, &err), VIGIL_OK);
    vigil_alert_record_free(&e[0]);
    CU_ASSERT_EQUAL(vigil_outbox_file_compact(ob, &err), VIGIL_OK);
    ob->destroy(ob);
    ob = bk_open(&b, names, 1);                                     /* the mark survives */
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[4], 1), VIGIL_OK);        /* 4: still remembered */
    CU_ASSERT_EQUAL(depth(ob, "a"), 0);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 1), VIGIL_OK);            /* 0: forgotten, new again */
    CU_ASSERT_EQUAL(depth(ob, "a"), 1);
    ob->destroy(ob);
}

/* Many acked alerts: compaction runs by itself once the log is mostly acked. */
static void test_file_auto_compaction(void) {
    bk b;
    const char *names[] = {"a"};
    char path[600];
    vigil_error err;
    test_no++;
    bk_init(&b, 0, "autocompact");
    snprintf(path, sizeof path, "%s/outbox.log", b.dir);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    talert *t = calloc(100, sizeof *t);
    vigil_alert_record *e = calloc(100, sizeof *e);
    off_t biggest = 0;
    for (int round = 0; round < 80; round++) {
        for (int i = 0; i < 100; i++) mk(&t[i], round * 100 + i, "rule", "low", "key", 0);
        CU_ASSERT_EQUAL(bk_append(&b, ob, t, 100), VIGIL_OK);
        int n = 0;
        CU_ASSERT_EQUAL(ob->read(ob, "a", "", e, 100, &n, 0, &err), VIGIL_OK);
        const char *refs[100];
        for (int i = 0; i < n; i++) refs[i] = e[i].ref;
        CU_ASSERT_EQUAL(ob->ack(ob, "a", refs, n, &err), VIGIL_OK);
        for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
        if (round % 10 == 9) {
            vigil_outbox_file_mark_snapshot(ob);
        }
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > biggest) biggest = st.st_size;
    }
    struct stat st;
    CU_ASSERT_EQUAL(stat(path, &st), 0);
    /* 8000 alerts of ~190 bytes = 1.5 MB appended; the log never held them all */
    CU_ASSERT(biggest <= (2 << 20));
    CU_ASSERT(st.st_size < (1 << 20));
    CU_ASSERT_EQUAL(depth(ob, "a"), 0);
    ob->destroy(ob);
    free(t);
    free(e);
}

/* ---- delivery ------------------------------------------------------------- */

typedef struct mbuf {
    char *p;
    size_t n;
} mbuf;

static void collect(void *ud, const char *text, size_t len) {
    mbuf *m = ud;
    m->p = realloc(m->p, m->n + len + 1);
    memcpy(m->p + m->n, text, len);
    m->n += len;
    m->p[m->n] = '\0';
}

static void deliver(int is_redis) {
    bk b;
    rx r;
    talert t[60];
    vigil_error err;
    const char *names[] = {"main"};
    test_no++;
    bk_init(&b, is_redis, is_redis ? "deliver-r" : "deliver-f");
    CU_ASSERT_EQUAL_FATAL(rx_start(&r, is_redis ? "deliver-r" : "deliver-f", 200, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    char keys[5][8];
    for (int k = 0; k < 5; k++) snprintf(keys[k], sizeof keys[k], "key%d", k);
    for (int i = 0; i < 60; i++) mk(&t[i], i, "card_testing", "high", keys[i % 5], 0);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 30), VIGIL_OK);
    vigil_endpoint_config c = ep_cfg("main", r.url);
    vigil_dispatch *d = dstart(&c, 1, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    for (int i = 30; i < 60; i += 10) CU_ASSERT_EQUAL(bk_append(&b, ob, &t[i], 10), VIGIL_OK);
    CU_ASSERT(wait_done(d, 0, 60, 10000));
    vigil_dispatch_stats st = stats(d, 0);
    CU_ASSERT_EQUAL(st.delivered, 60);
    CU_ASSERT_EQUAL(st.dead, 0);
    CU_ASSERT_EQUAL(st.retries, 0);
    char label[64];
    snprintf(label, sizeof label, "http://127.0.0.1:%d", r.port);
    CU_ASSERT_STRING_EQUAL(st.label, label);     /* no path, no token */
    /* metrics */
    mbuf m = {0};
    long long t0 = vt_now_ms();
    while (vt_now_ms() - t0 < 3000) {      /* the last ack may trail the 2xx */
        if (depth(ob, "main") == 0) break;
        vt_sleep_ms(10);
    }
    vigil_dispatch_metrics(d, collect, &m);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.p);
    CU_ASSERT(strstr(m.p, "vigil_webhook_deliveries_total{endpoint=\"main\",outcome=\"delivered\"} 60\n") != NULL);
    CU_ASSERT(strstr(m.p, "vigil_webhook_retries_total{endpoint=\"main\"} 0\n") != NULL);
    CU_ASSERT(strstr(m.p, "vigil_outbox_pending{endpoint=\"main\"} 0\n") != NULL);
    CU_ASSERT(strstr(m.p, "vigil_webhook_endpoint_disabled{endpoint=\"main\"} 0\n") != NULL);
    CU_ASSERT(strstr(m.p, "vigil_webhook_delivery_seconds_count{endpoint=\"main\"} 60\n") != NULL);
    CU_ASSERT(strstr(m.p, "# TYPE vigil_webhook_delivery_seconds histogram\n") != NULL);
    free(m.p);
    vigil_dispatch_destroy(d);
    CU_ASSERT_EQUAL(check_delivery(&r, 60, 1), 0);
    /* the body: envelope around the alert verbatim, timestamp = append time */
    int nl = 0;
    line *v = read_lines(&r, &nl);
    int good = 0;
    for (int i = 0; i < nl; i++) {
        cJSON *body = cJSON_Parse(v[i].body);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(body, "type");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(body, "timestamp");
        good += cJSON_IsString(type) && !strcmp(type->valuestring, "alert.created") && cJSON_IsString(ts) &&
                strlen(ts->valuestring) == 24 && ts->valuestring[23] == 'Z';
        cJSON_Delete(body);
    }
    CU_ASSERT_EQUAL(good, 60);
    free_lines(v, nl);
    /* acked, so dropped */
    CU_ASSERT_EQUAL(depth(ob, "main"), 0);
    if (is_redis) {
        char key[96];
        snprintf(key, sizeof key, "%s:outbox", b.prefix);
        CU_ASSERT_EQUAL(vigil_outbox_redis_trim(ob, &err), VIGIL_OK);
        CU_ASSERT_EQUAL(xlen(key), 0);
    } else {
        CU_ASSERT_EQUAL(vigil_outbox_file_compact(ob, &err), VIGIL_OK);
    }
    ob->destroy(ob);
    rx_stop(&r);
}

static void test_deliver_file(void) { deliver(0); }
static void test_deliver_redis(void) { deliver(1); }

/* A dispatcher that read alerts and stopped without acking (a crash), then a
 * restart: the unacked ones are sent, the acked ones are not sent again. */
static void restart(int is_redis) {
    bk b;
    rx r;
    talert t[30];
    vigil_alert_record e[16];
    int n = 0;
    vigil_error err;
    const char *names[] = {"main"};
    test_no++;
    const char *nm = is_redis ? "restart-r" : "restart-f";
    bk_init(&b, is_redis, nm);
    CU_ASSERT_EQUAL_FATAL(rx_start(&r, nm, 200, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 30; i++) mk(&t[i], i, "r", "high", i % 2 ? "odd" : "even", 0);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 10), VIGIL_OK);
    vigil_endpoint_config c = ep_cfg("main", r.url);
    vigil_dispatch *d = dstart(&c, 1, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT(wait_done(d, 0, 10, 10000));
    vigil_dispatch_destroy(d);
    ob->destroy(ob);

    /* 10 more; a reader takes 6 of them and dies without acking */
    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[10], 10), VIGIL_OK);
    CU_ASSERT_EQUAL(ob->read(ob, "main", "", e, 6, &n, 0, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(n, 6);
    for (int i = 0; i < n; i++) vigil_alert_record_free(&e[i]);
    ob->destroy(ob);

    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(depth(ob, "main"), 10);
    d = dstart(&c, 1, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[20], 10), VIGIL_OK);
    CU_ASSERT(wait_done(d, 0, 20, 10000));
    vigil_dispatch_destroy(d);
    CU_ASSERT_EQUAL(depth(ob, "main"), 0);
    ob->destroy(ob);
    rx_stop(&r);
    CU_ASSERT_EQUAL(check_delivery(&r, 30, 1), 0);   /* each exactly once, in key order */
}

static void test_restart_file(void) { restart(0); }
static void test_restart_redis(void) { restart(1); }

/* The receiver answers 503 for a while, then 200: everything arrives, in
 * order per key, every attempt validly signed. */
static void unavailable_then_up(int is_redis) {
    bk b;
    rx r;
    talert t[30];
    const char *names[] = {"main"};
    test_no++;
    const char *nm = is_redis ? "503-r" : "503-f";
    bk_init(&b, is_redis, nm);
    CU_ASSERT_EQUAL_FATAL(rx_start(&r, nm, 503, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 30; i++) mk(&t[i], i, "r", "high", i % 3 == 0 ? "a" : i % 3 == 1 ? "b" : "c", 0);
    vigil_endpoint_config c = ep_cfg("main", r.url);
    vigil_dispatch *d = dstart(&c, 1, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 30), VIGIL_OK);
    long long t0 = vt_now_ms();
    while (count_status(&r, 503) < 9 && vt_now_ms() - t0 < 5000) vt_sleep_ms(20);
    vigil_dispatch_stats st = stats(d, 0);
    CU_ASSERT(st.retries >= 6);
    CU_ASSERT_EQUAL(st.delivered, 0);
    CU_ASSERT(st.inflight <= 3);          /* one per key: the others wait their turn */
    rx_set_status(&r, 200);
    CU_ASSERT(wait_done(d, 0, 30, 10000));
    st = stats(d, 0);
    CU_ASSERT_EQUAL(st.delivered, 30);
    CU_ASSERT_EQUAL(st.dead, 0);
    vigil_dispatch_destroy(d);
    ob->destroy(ob);
    rx_stop(&r);
    CU_ASSERT_EQUAL(check_delivery(&r, 30, 1), 0);
    /* only the head of each key was tried while the receiver was down */
    int nl = 0, stray = 0;
    line *v = read_lines(&r, &nl);
    for (int i = 0; i < nl; i++)
        if (v[i].status == 503 && v[i].n > 2) stray++;
    CU_ASSERT_EQUAL(stray, 0);
    free_lines(v, nl);
}

static void test_503_file(void) { unavailable_then_up(0); }
static void test_503_redis(void) { unavailable_then_up(1); }

/* 410 disables that endpoint only; its alerts become dead letters. */
static void gone(int is_redis) {
    bk b;
    rx rg, ro;
    talert t[20];
    const char *names[] = {"gone", "ok"};
    vigil_error err;
    test_no++;
    bk_init(&b, is_redis, is_redis ? "410-r" : "410-f");
    CU_ASSERT_EQUAL_FATAL(rx_start(&rg, is_redis ? "gone-r" : "gone-f", 410, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rx_start(&ro, is_redis ? "ok-r" : "ok-f", 200, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 20; i++) mk(&t[i], i, "r", "high", i % 4 == 0 ? "a" : "b", 0);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 10), VIGIL_OK);
    vigil_endpoint_config c[2] = {ep_cfg("gone", rg.url), ep_cfg("ok", ro.url)};
    vigil_dispatch *d = dstart(c, 2, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT(wait_done(d, 0, 10, 10000));
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[10], 10), VIGIL_OK);   /* after the 410 */
    CU_ASSERT(wait_done(d, 0, 20, 10000));
    CU_ASSERT(wait_done(d, 1, 20, 10000));
    vigil_dispatch_stats sg = stats(d, 0), so = stats(d, 1);
    CU_ASSERT_EQUAL(sg.disabled, 1);
    CU_ASSERT_EQUAL(sg.dead, 20);
    CU_ASSERT_EQUAL(sg.delivered, 0);
    CU_ASSERT_EQUAL(sg.retries, 0);
    CU_ASSERT(sg.attempts >= 1 && sg.attempts <= 2);   /* at most one per key in flight */
    CU_ASSERT_EQUAL(so.disabled, 0);
    CU_ASSERT_EQUAL(so.delivered, 20);
    char *json = NULL;
    CU_ASSERT_EQUAL(vigil_dispatch_dead_letters(d, "gone", 100, &json, &err), VIGIL_OK);
    cJSON *dl = json ? cJSON_Parse(json) : NULL;
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dl), 20);
    int reasons = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, dl) {
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(it, "reason");
        const cJSON *ep = cJSON_GetObjectItemCaseSensitive(it, "endpoint");
        reasons += cJSON_IsString(rs) && !strcmp(rs->valuestring, "endpoint disabled: 410 Gone") &&
                   cJSON_IsString(ep) && !strcmp(ep->valuestring, "gone");
    }
    CU_ASSERT_EQUAL(reasons, 20);
    cJSON_Delete(dl);
    free(json);
    CU_ASSERT_EQUAL(vigil_dispatch_dead_letters(d, "ok", 100, &json, &err), VIGIL_OK);
    CU_ASSERT(json && !strcmp(json, "[]"));
    free(json);
    CU_ASSERT_EQUAL(vigil_dispatch_dead_letters(d, NULL, 5, &json, &err), VIGIL_OK);
    dl = json ? cJSON_Parse(json) : NULL;
    CU_ASSERT_EQUAL(cJSON_GetArraySize(dl), 5);       /* limit */
    cJSON_Delete(dl);
    free(json);
    mbuf m = {0};
    vigil_dispatch_metrics(d, collect, &m);
    CU_ASSERT(m.p && strstr(m.p, "vigil_webhook_endpoint_disabled{endpoint=\"gone\"} 1\n"));
    CU_ASSERT(m.p && strstr(m.p, "vigil_webhook_dead_letters_total{endpoint=\"gone\"} 20\n"));
    free(m.p);
    vigil_dispatch_destroy(d);
    CU_ASSERT_EQUAL(depth(ob, "gone"), 0);
    CU_ASSERT_EQUAL(depth(ob, "ok"), 0);
    ob->destroy(ob);
    rx_stop(&rg);
    rx_stop(&ro);
    CU_ASSERT_EQUAL(check_delivery(&ro, 20, 1), 0);
    CU_ASSERT(count_status(&rg, 410) <= 2);
}

static void test_410_file(void) { gone(0); }
static void test_410_redis(void) { gone(1); }

/* Past the horizon: dead letter, acked. 4xx: dead letter at once. */
static void test_horizon_and_4xx(void) {
    bk b;
    rx r503, r400;
    talert t[4];
    const char *names[] = {"down", "bad"};
    vigil_error err;
    test_no++;
    bk_init(&b, 0, "horizon");
    CU_ASSERT_EQUAL_FATAL(rx_start(&r503, "horizon503", 503, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rx_start(&r400, "horizon400", 400, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 4; i++) mk(&t[i], i, "r", "high", i < 2 ? "a" : "b", 0);
    vigil_endpoint_config c[2] = {ep_cfg("down", r503.url), ep_cfg("bad", r400.url)};
    c[0].horizon_ms = 400;
    long long t0 = vt_now_ms();
    vigil_dispatch *d = dstart(c, 2, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 4), VIGIL_OK);
    CU_ASSERT(wait_done(d, 0, 4, 10000));
    CU_ASSERT(wait_done(d, 1, 4, 10000));
    long long took = vt_now_ms() - t0;
    vigil_dispatch_stats sd = stats(d, 0), sb = stats(d, 1);
    CU_ASSERT_EQUAL(sd.dead, 4);
    CU_ASSERT(sd.retries >= 4);                 /* each tried more than once */
    CU_ASSERT(took >= 400 && took < 5000);      /* per key, one alert after the other */
    CU_ASSERT_EQUAL(sb.dead, 4);
    CU_ASSERT_EQUAL(sb.retries, 0);
    CU_ASSERT_EQUAL(sb.attempts, 4);
    char *json = NULL;
    CU_ASSERT_EQUAL(vigil_dispatch_dead_letters(d, "down", 10, &json, &err), VIGIL_OK);
    CU_ASSERT(json && strstr(json, "\"reason\":\"gave up after "));
    CU_ASSERT(json && strstr(json, "HTTP 503"));
    free(json);
    CU_ASSERT_EQUAL(vigil_dispatch_dead_letters(d, "bad", 10, &json, &err), VIGIL_OK);
    CU_ASSERT(json && strstr(json, "\"reason\":\"HTTP 400 (not retryable)\""));
    free(json);
    vigil_dispatch_destroy(d);
    CU_ASSERT_EQUAL(depth(ob, "down"), 0);
    CU_ASSERT_EQUAL(depth(ob, "bad"), 0);
    ob->destroy(ob);
    rx_stop(&r503);
    rx_stop(&r400);
}

/* A URL that never answers does not delay another endpoint; destroy is
 * bounded by shutdown_ms and leaves its alerts in the outbox. */
static void test_never_answers(void) {
    bk b;
    rx slow, fast;
    talert t[20];
    const char *names[] = {"slow", "fast"};
    const char *delay[] = {"--delay-ms", "600000", NULL};
    test_no++;
    bk_init(&b, 0, "never");
    CU_ASSERT_EQUAL_FATAL(rx_start(&slow, "slow", 200, delay), 0);
    CU_ASSERT_EQUAL_FATAL(rx_start(&fast, "fast", 200, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 20; i++) mk(&t[i], i, "r", "high", i % 2 ? "x" : "y", 0);
    vigil_endpoint_config c[2] = {ep_cfg("slow", slow.url), ep_cfg("fast", fast.url)};
    c[0].timeout_ms = 30000;
    vigil_dispatch *d = dstart(c, 2, ob, 300);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    long long t0 = vt_now_ms();
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 20), VIGIL_OK);
    CU_ASSERT(wait_done(d, 1, 20, 5000));
    CU_ASSERT(vt_now_ms() - t0 < 1500);
    vigil_dispatch_stats ss = stats(d, 0);
    CU_ASSERT_EQUAL(ss.delivered, 0);
    CU_ASSERT_EQUAL(ss.inflight, 2);          /* one per key */
    t0 = vt_now_ms();
    vigil_dispatch_destroy(d);
    long long took = vt_now_ms() - t0;
    CU_ASSERT(took >= 250 && took < 1500);
    CU_ASSERT_EQUAL(depth(ob, "slow"), 20);    /* nothing acked that was not delivered */
    CU_ASSERT_EQUAL(depth(ob, "fast"), 0);
    ob->destroy(ob);
    t0 = vt_now_ms();
    rx_stop(&slow);
    CU_ASSERT(vt_now_ms() - t0 < 2000);
    rx_stop(&fast);
    CU_ASSERT_EQUAL(check_delivery(&fast, 20, 1), 0);
}

/* Timeouts are retried (then dead-lettered past the horizon); a longer
 * Retry-After replaces the backoff. */
static void test_timeout_and_retry_after(void) {
    bk b;
    rx slow, busy;
    talert t[2];
    const char *names[] = {"slow", "busy"};
    const char *delay[] = {"--delay-ms", "600000", NULL};
    const char *ra[] = {"--retry-after", "1", NULL};
    vigil_error err;
    test_no++;
    bk_init(&b, 0, "timeout");
    CU_ASSERT_EQUAL_FATAL(rx_start(&slow, "t-slow", 200, delay), 0);
    CU_ASSERT_EQUAL_FATAL(rx_start(&busy, "t-busy", 429, ra), 0);
    vigil_outbox *ob = bk_open(&b, names, 2);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    mk(&t[0], 0, "r", "high", "k", 0);
    vigil_endpoint_config c[2] = {ep_cfg("slow", slow.url), ep_cfg("busy", busy.url)};
    c[0].timeout_ms = 150;
    c[0].horizon_ms = 500;
    c[1].max_backoff_ms = 5000;
    vigil_dispatch *d = dstart(c, 2, ob, 300);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 1), VIGIL_OK);
    long long t0 = vt_now_ms();
    while (count_status(&busy, 429) < 1 && vt_now_ms() - t0 < 3000) vt_sleep_ms(5);
    long long first = vt_now_ms();
    rx_set_status(&busy, 200);
    CU_ASSERT(wait_done(d, 1, 1, 5000));
    long long gap = vt_now_ms() - first;
    CU_ASSERT(gap >= 800);                       /* Retry-After: 1, not the 40 ms backoff */
    CU_ASSERT(wait_done(d, 0, 1, 5000));
    vigil_dispatch_stats ss = stats(d, 0);
    CU_ASSERT_EQUAL(ss.dead, 1);
    CU_ASSERT(ss.attempts >= 2);
    char *json = NULL;
    CU_ASSERT_EQUAL(vigil_dispatch_dead_letters(d, "slow", 10, &json, &err), VIGIL_OK);
    CU_ASSERT(json && strstr(json, "gave up after") && strstr(json, "timed out"));
    free(json);
    vigil_dispatch_destroy(d);
    ob->destroy(ob);
    rx_stop(&slow);
    rx_stop(&busy);
    CU_ASSERT_EQUAL(check_delivery(&busy, 1, 1), 0);
}

/* rules, min_severity, shadow */
static void test_filters(void) {
    bk b;
    rx ra, rb, rc;
    talert t[16];
    const char *names[] = {"only_r1", "high_up", "all"};
    static const char *const sevs[] = {"low", "medium", "high", "critical"};
    test_no++;
    bk_init(&b, 1, "filters");
    CU_ASSERT_EQUAL_FATAL(rx_start(&ra, "f-r1", 200, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rx_start(&rb, "f-high", 200, NULL), 0);
    CU_ASSERT_EQUAL_FATAL(rx_start(&rc, "f-all", 200, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 3);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    /* i: rule r1 when even, severity sevs[i % 4], shadow when i >= 12 */
    for (int i = 0; i < 16; i++) mk(&t[i], i, i % 2 ? "r2" : "r1", sevs[i % 4], "k", i >= 12);
    vigil_endpoint_config c[3] = {ep_cfg("only_r1", ra.url), ep_cfg("high_up", rb.url), ep_cfg("all", rc.url)};
    c[0].rules[0] = "r1";
    c[0].nrules = 1;
    c[1].min_severity = "high";
    vigil_dispatch *d = dstart(c, 3, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 16), VIGIL_OK);
    for (int i = 0; i < 3; i++) CU_ASSERT(wait_done(d, i, 16, 10000));
    vigil_dispatch_stats s0 = stats(d, 0), s1 = stats(d, 1), s2 = stats(d, 2);
    CU_ASSERT_EQUAL(s0.delivered, 6);    /* even i < 12 */
    CU_ASSERT_EQUAL(s0.filtered, 10);
    CU_ASSERT_EQUAL(s1.delivered, 6);    /* i % 4 >= 2, i < 12 */
    CU_ASSERT_EQUAL(s1.filtered, 10);
    CU_ASSERT_EQUAL(s2.delivered, 12);   /* shadow never */
    CU_ASSERT_EQUAL(s2.filtered, 4);
    vigil_dispatch_destroy(d);
    for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(depth(ob, names[i]), 0);
    ob->destroy(ob);
    rx_stop(&ra);
    rx_stop(&rb);
    rx_stop(&rc);
    int n = 0, bad = 0;
    line *v = read_lines(&ra, &n);
    for (int i = 0; i < n; i++) bad += v[i].n % 2 != 0 || v[i].n >= 12 || !v[i].valid;
    CU_ASSERT_EQUAL(n, 6);
    free_lines(v, n);
    v = read_lines(&rb, &n);
    for (int i = 0; i < n; i++) bad += v[i].n % 4 < 2 || v[i].n >= 12 || !v[i].valid;
    CU_ASSERT_EQUAL(n, 6);
    free_lines(v, n);
    v = read_lines(&rc, &n);
    for (int i = 0; i < n; i++) bad += v[i].n >= 12 || !v[i].valid;
    CU_ASSERT_EQUAL(n, 12);
    free_lines(v, n);
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_create_rejects(void) {
    bk b;
    const char *names[] = {"x"};
    vigil_dispatch *d = NULL;
    vigil_error err;
    test_no++;
    bk_init(&b, 0, "reject");
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    vigil_endpoint_config c = ep_cfg("x", "ftp://example.com/");
    CU_ASSERT_EQUAL(vigil_dispatch_create(&c, 1, NULL, ob, 0, &d, &err), VIGIL_EINVAL);
    c = ep_cfg("bad name", "http://127.0.0.1:1/");
    CU_ASSERT_EQUAL(vigil_dispatch_create(&c, 1, NULL, ob, 0, &d, &err), VIGIL_EINVAL);
    c = ep_cfg("x", "http://127.0.0.1:1/");
    c.min_severity = "urgent";
    CU_ASSERT_EQUAL(vigil_dispatch_create(&c, 1, NULL, ob, 0, &d, &err), VIGIL_EINVAL);
    c = ep_cfg("x", "http://127.0.0.1:1/");
    c.secret = "nope";
    CU_ASSERT_EQUAL(vigil_dispatch_create(&c, 1, NULL, ob, 0, &d, &err), VIGIL_EINVAL);
    vigil_endpoint_config two[2] = {ep_cfg("x", "http://127.0.0.1:1/"), ep_cfg("x", "http://127.0.0.1:2/")};
    CU_ASSERT_EQUAL(vigil_dispatch_create(two, 2, NULL, ob, 0, &d, &err), VIGIL_EINVAL);
    CU_ASSERT(strstr(err.msg, "twice") != NULL);
    CU_ASSERT_PTR_NULL(d);
    char name[65];
    vigil_endpoint_config anon = ep_cfg(NULL, "http://127.0.0.1:1/");
    vigil_dispatch_endpoint_name(&anon, 2, name, sizeof name);
    CU_ASSERT_STRING_EQUAL(name, "webhook3");
    ob->destroy(ob);
}

/* Redis goes away and comes back (empty: no persistence in the test). */
static void test_redis_down(void) {
    bk b;
    rx r;
    talert t[10];
    vigil_alert_record e[4];
    int n = 0;
    vigil_error err;
    const char *names[] = {"main"};
    test_no++;
    bk_init(&b, 1, "down");
    CU_ASSERT_EQUAL_FATAL(rx_start(&r, "redis-down", 200, NULL), 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    for (int i = 0; i < 10; i++) mk(&t[i], i, "r", "high", "k", 0);
    vigil_endpoint_config c = ep_cfg("main", r.url);
    vigil_dispatch *d = dstart(&c, 1, ob, 500);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 5), VIGIL_OK);
    CU_ASSERT(wait_done(d, 0, 5, 10000));
    vt_kill(redis, SIGKILL);
    redis = NULL;
    CU_ASSERT_EQUAL(ob->read(ob, "main", "", e, 4, &n, 0, &err), VIGIL_EUNAVAILABLE);
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[5], 1), VIGIL_EUNAVAILABLE);
    uint64_t dn;
    CU_ASSERT_EQUAL(ob->depth(ob, "main", &dn, &err), VIGIL_EUNAVAILABLE);
    vt_sleep_ms(1200);                               /* the dispatcher keeps trying */
    CU_ASSERT(stats(d, 0).outbox_errors >= 1);
    int port = redis_port;
    redis = vt_start_redis(&port, tmp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    CU_ASSERT_EQUAL(bk_append(&b, ob, &t[5], 5), VIGIL_OK);
    CU_ASSERT(wait_done(d, 0, 10, 10000));
    vigil_dispatch_destroy(d);
    ob->destroy(ob);
    rx_stop(&r);
    CU_ASSERT_EQUAL(check_delivery(&r, 10, 1), 0);
}

/* "delivered" counts an alert once its ack is in the outbox (dispatch.h),
 * so whoever reads the counter also sees the outbox without it: with Redis
 * stopped (SIGSTOP) between the request and its 2xx, the receiver has the
 * alert, the request is finished, and the counter still says 0; after
 * SIGCONT the ack goes through and both agree. And the endpoint's thread,
 * held by the stopped Redis longer than the attempt's timeout, still takes
 * the 2xx that came meanwhile: one attempt, one request. */
static void test_delivered_means_acked(void) {
    bk b;
    rx r;
    talert t[1];
    const char *names[] = {"main"};
    test_no++;
    bk_init(&b, 1, "acked");
    const char *extra[] = {"--delay-ms", "300", NULL};
    CU_ASSERT_EQUAL_FATAL(rx_start(&r, "acked", 200, extra), 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    mk(&t[0], 0, "r", "high", "k", 0);
    vigil_endpoint_config c = ep_cfg("main", r.url);
    /* shorter than the 5 s for which a read on the stopped Redis holds the
     * endpoint's thread: the 2xx that arrived meanwhile must still count
     * (the attempt's deadline is checked after the finished transfers are
     * collected), not be taken for a timeout and sent again */
    c.timeout_ms = 2000;
    vigil_dispatch *d = dstart(&c, 1, ob, 500);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 1), VIGIL_OK);
    long long deadline = vt_now_ms() + 5000;
    while (stats(d, 0).inflight != 1 && vt_now_ms() < deadline) vt_sleep_ms(2);
    CU_ASSERT_EQUAL_FATAL(stats(d, 0).inflight, 1);
    kill(redis->pid, SIGSTOP);
    int nl = 0;
    deadline = vt_now_ms() + 5000;
    for (;;) {   /* the receiver wrote its line: the 2xx is on its way */
        line *v = read_lines(&r, &nl);
        free_lines(v, nl);
        if (nl >= 1 || vt_now_ms() >= deadline) break;
        vt_sleep_ms(10);
    }
    CU_ASSERT_EQUAL(nl, 1);
    deadline = vt_now_ms() + 15000;   /* a poll read may hold the thread for the 5 s I/O timeout */
    while (stats(d, 0).inflight != 0 && vt_now_ms() < deadline) vt_sleep_ms(10);
    vt_sleep_ms(200);
    vigil_dispatch_stats st = stats(d, 0);
    CU_ASSERT_EQUAL(st.inflight, 0);
    CU_ASSERT_EQUAL(st.delivered, 0);   /* answered 2xx, not acked: not counted yet */
    kill(redis->pid, SIGCONT);
    CU_ASSERT(wait_done(d, 0, 1, 20000));
    st = stats(d, 0);
    CU_ASSERT_EQUAL(st.delivered, 1);
    CU_ASSERT_EQUAL(st.attempts, 1);   /* not sent again */
    CU_ASSERT_EQUAL(st.retries, 0);
    uint64_t dn = 1;
    CU_ASSERT_EQUAL(ob->depth(ob, "main", &dn, NULL), VIGIL_OK);
    CU_ASSERT_EQUAL(dn, 0);
    vigil_dispatch_destroy(d);
    ob->destroy(ob);
    rx_stop(&r);
    line *v = read_lines(&r, &nl);
    free_lines(v, nl);
    CU_ASSERT_EQUAL(nl, 1);
}

/* The crash child (this binary again, fresh, so VIGIL_FAULT is read anew):
 * argv: --dispatch-child file|redis <dir or prefix> <redis url> <webhook url>.
 * Runs one dispatcher; VIGIL_FAULT=deliver:N kills it. */
static int dispatch_child(char **argv) {
    bk b;
    memset(&b, 0, sizeof b);
    b.redis = !strcmp(argv[2], "redis");
    snprintf(b.redis ? b.prefix : b.dir, b.redis ? sizeof b.prefix : sizeof b.dir, "%s", argv[3]);
    snprintf(redis_url, sizeof redis_url, "%s", argv[4]);
    const char *names[] = {"main"};
    vigil_outbox *ob = bk_open(&b, names, 1);
    if (!ob) return 3;
    vigil_endpoint_config c = ep_cfg("main", argv[5]);
    vigil_dispatch *d = dstart(&c, 1, ob, 1000);
    if (!d) return 4;
    vt_sleep_ms(10000);
    return 5;   /* the fault should have killed us long before */
}

/* SIGKILL right after a 2xx, before the ack (VIGIL_FAULT=deliver:N): after a
 * restart every alert arrives; a duplicate has the same webhook-id and body. */
static void crash(int is_redis) {
    bk b;
    rx r;
    talert t[40];
    const char *names[] = {"main"};
    char self[1024], log[600];
    test_no++;
    const char *nm = is_redis ? "crash-r" : "crash-f";
    bk_init(&b, is_redis, nm);
    CU_ASSERT_EQUAL_FATAL(rx_start(&r, nm, 200, NULL), 0);
    for (int i = 0; i < 40; i++) mk(&t[i], i, "r", "high", i % 4 == 0 ? "a" : "b", 0);
    vigil_outbox *ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT_EQUAL(bk_append(&b, ob, t, 40), VIGIL_OK);
    ob->destroy(ob);

    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    CU_ASSERT_FATAL(sl > 0);
    self[sl] = '\0';
    snprintf(log, sizeof log, "%s/%s-child.log", tmp, nm);
    const char *argv[] = {self, "--dispatch-child", is_redis ? "redis" : "file",
                          is_redis ? b.prefix : b.dir, redis_url, r.url, NULL};
    setenv("VIGIL_FAULT", "deliver:13", 1);
    vt_proc *child = vt_spawn(argv, log);
    unsetenv("VIGIL_FAULT");
    CU_ASSERT_PTR_NOT_NULL_FATAL(child);
    long long t0 = vt_now_ms();
    while (vt_alive(child) && vt_now_ms() - t0 < 15000) vt_sleep_ms(10);
    CU_ASSERT(child->exited && WIFSIGNALED(child->status) && WTERMSIG(child->status) == SIGKILL);
    if (!(child->exited && WIFSIGNALED(child->status))) vt_dump_log(log, 2000);
    vt_kill(child, SIGKILL);
    CU_ASSERT(count_status(&r, 200) >= 13);

    ob = bk_open(&b, names, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ob);
    CU_ASSERT(depth(ob, "main") > 0);
    vigil_endpoint_config c = ep_cfg("main", r.url);
    vigil_dispatch *d = dstart(&c, 1, ob, 1000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    t0 = vt_now_ms();
    while (depth(ob, "main") > 0 && vt_now_ms() - t0 < 10000) vt_sleep_ms(20);
    CU_ASSERT_EQUAL(depth(ob, "main"), 0);
    vigil_dispatch_destroy(d);
    ob->destroy(ob);
    rx_stop(&r);
    CU_ASSERT_EQUAL(check_delivery(&r, 40, 0), 0);   /* all, per key order, dups allowed */
    int nl = 0, dups = 0, same = 0;
    line *v = read_lines(&r, &nl);
    for (int i = 0; i < nl; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(v[i].id, v[j].id)) {
                dups++;
                same += v[i].body && v[j].body && !strcmp(v[i].body, v[j].body);
                break;
            }
    CU_ASSERT(dups >= 1);              /* the 13th at least was not acked */
    CU_ASSERT(dups <= 8);              /* only the at-least-once window */
    CU_ASSERT_EQUAL(same, dups);       /* byte-identical envelope, same webhook-id */
    free_lines(v, nl);
}

static void test_crash_file(void) { crash(0); }
static void test_crash_redis(void) { crash(1); }

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc == 6 && !strcmp(argv[1], "--dispatch-child")) return dispatch_child(argv);
    tmp = vt_tmpdir();
    if (!tmp) return 1;
    if (access(RECEIVER, X_OK) != 0) {
        fprintf(stderr, "test_outbox: %s not built (build the webhook_receiver target)\n", RECEIVER);
        return 1;
    }
    redis_port = 0;
    redis = vt_start_redis(&redis_port, tmp);
    if (!redis) return 1;
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", redis_port);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("outbox", NULL, NULL);
    if (!s || !CU_add_test(s, "file: read/ack/dead/depth, restart, compaction", test_api_file) ||
        !CU_add_test(s, "redis: read/ack/dead/depth, restart, trimming", test_api_redis) ||
        !CU_add_test(s, "file: torn tail ignored", test_file_torn_tail) ||
        !CU_add_test(s, "file: duplicate ids skipped, mark_snapshot", test_file_dedup) ||
        !CU_add_test(s, "file: automatic compaction", test_file_auto_compaction) ||
        !CU_add_test(s, "dispatch: create rejects bad endpoints", test_create_rejects) ||
        !CU_add_test(s, "file: delivered, signed, per key order, metrics", test_deliver_file) ||
        !CU_add_test(s, "redis: delivered, signed, per key order, metrics", test_deliver_redis) ||
        !CU_add_test(s, "file: restart re-sends unacked only", test_restart_file) ||
        !CU_add_test(s, "redis: restart re-sends unacked only", test_restart_redis) ||
        !CU_add_test(s, "file: 503 then 200, every alert in key order", test_503_file) ||
        !CU_add_test(s, "redis: 503 then 200, every alert in key order", test_503_redis) ||
        !CU_add_test(s, "file: 410 disables only its endpoint", test_410_file) ||
        !CU_add_test(s, "redis: 410 disables only its endpoint", test_410_redis) ||
        !CU_add_test(s, "horizon passed, 4xx: dead letters", test_horizon_and_4xx) ||
        !CU_add_test(s, "a URL that never answers delays nobody", test_never_answers) ||
        !CU_add_test(s, "timeouts retried, Retry-After honoured", test_timeout_and_retry_after) ||
        !CU_add_test(s, "filters: rules, min_severity, shadow", test_filters) ||
        !CU_add_test(s, "redis: down and back", test_redis_down) ||
        !CU_add_test(s, "redis stalled: delivered counts acked alerts only; no resend",
                     test_delivered_means_acked) ||
        !CU_add_test(s, "file: SIGKILL between 2xx and ack", test_crash_file) ||
        !CU_add_test(s, "redis: SIGKILL between 2xx and ack", test_crash_redis)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures();
    CU_cleanup_registry();
    vt_kill(redis, SIGTERM);
    free(tmp);
    return fails != 0;
}

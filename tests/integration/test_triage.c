/* test_triage.c — triage against the real binary (DESIGN.md §6): PUT
 * /v1/alerts/{id}/disposition answers what it stored, refuses bad input
 * with a problem naming it (400, 404, 422), shows in GET /v1/alerts (each
 * alert's disposition, ?disposition=), feeds per-rule precision in GET
 * /v1/rules, goes to the audit log, and survives a restart — with the
 * data_dir (file) store and with Redis (when redis-server is installed).
 * Also GET /v1/alerts's filters, server-side total and cursor pages, GET
 * /v1/alerts/timeline and GET /v1/alerts/evidence. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"

static char *dir, rules[600], datadir[600], logpath[700], base[64], redis_url[64];
static vt_proc *proc, *redis;
static char ids[3][33];

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 20);
    if (b) fread(b, 1, (1 << 20) - 1, f);
    fclose(f);
    return b;
}

static int start(void) {
    snprintf(logpath, sizeof logpath, "%s/vigil-%lld.log", dir, vt_now_ms());
    const char *argv[] = {VIGIL_BIN, "serve", "--listen", "127.0.0.1:0", "--rules", rules, "--data-dir", datadir,
                          redis_url[0] ? "--redis" : NULL, redis_url, NULL};
    if (!(proc = vt_spawn(argv, logpath))) return -1;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 20000; vt_sleep_ms(20)) {
        char *t = slurp(logpath);
        const char *m = t ? strstr(t, "listening on http://127.0.0.1:") : NULL;
        int port = m ? atoi(m + strlen("listening on http://127.0.0.1:")) : 0;
        free(t);
        if (port > 0) {
            snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
            return 0;
        }
        if (!vt_alive(proc)) break;
    }
    vt_dump_log(logpath, 4000);
    return -1;
}

static void stop(void) {
    if (proc) vt_kill(proc, SIGTERM);
    proc = NULL;
}

static int setup_common(void) {
    dir = vt_tmpdir();
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(datadir, sizeof datadir, "%s/data", dir);
    if (mkdir(rules, 0700) != 0 || mkdir(datadir, 0700) != 0) return -1;
    char rf[700];
    snprintf(rf, sizeof rf, "%s/big.lua", rules);
    FILE *f = fopen(rf, "w");
    if (!f) return -1;
    fputs("rule { name = \"big\", key = \"card_id\", severity = \"high\", where = { amount = gt(100) },\n"
          "       window = sliding(\"1h\"), when = ge(count(), 1) }\n"
          "rule { name = \"quiet\", key = \"card_id\", where = { amount = gt(1000000) },\n"
          "       window = sliding(\"1h\"), when = ge(count(), 1) }\n", f);
    fclose(f);
    return start();
}

static int setup_file(void) {
    redis_url[0] = '\0';
    return setup_common();
}

static int setup_redis(void) {
    int port = 0;
    char *rdir = vt_tmpdir();
    redis = rdir ? vt_start_redis(&port, rdir) : NULL;
    free(rdir);
    if (!redis) {
        printf("\n  redis-server not available\n");
        return -1;
    }
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", port);
    return setup_common();
}

static int teardown(void) {
    stop();
    if (redis) vt_kill(redis, SIGTERM);
    redis = NULL;
    free(dir);
    dir = NULL;
    return 0;
}

static cJSON *call(const char *method, const char *path, const char *body, long *st) {
    char url[800];
    snprintf(url, sizeof url, "%s%s", base, path);
    char *t = vt_http(method, url, body, body ? strlen(body) : 0, body ? "application/json" : NULL, st);
    cJSON *o = t ? cJSON_Parse(t) : NULL;
    free(t);
    return o;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

static const cJSON *rule_of(const cJSON *rules_doc, const char *name) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(rules_doc, "rules")) {
        const char *n = str(r, "name");
        if (n && strcmp(n, name) == 0) return r;
    }
    return NULL;
}

static long put_disp(const char *id, const char *body, cJSON **out) {
    char path[200];
    snprintf(path, sizeof path, "/v1/alerts/%s/disposition", id);
    long st = 0;
    cJSON *o = call("PUT", path, body, &st);
    if (out) *out = o;
    else cJSON_Delete(o);
    return st;
}

/* three alerts of "big" (one per card), their ids from ?wait */
static void test_feed(void) {
    for (int i = 0; i < 3; i++) {
        char ev[200];
        snprintf(ev, sizeof ev, "{\"id\":\"t%d\",\"card_id\":\"c%d\",\"amount\":500,\"ts\":%lld}", i, i,
                 1700000000000LL + i * 1000);
        long st = 0;
        cJSON *o = call("POST", "/v1/events?wait=5000", ev, &st);
        CU_ASSERT_EQUAL(st, 200);
        const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "alerts"), 0);
        const char *id = str(a, "id");
        CU_ASSERT_PTR_NOT_NULL_FATAL(id);
        snprintf(ids[i], sizeof ids[i], "%s", id);
        cJSON_Delete(o);
    }
}

static void test_bad_input(void) {
    cJSON *o = NULL;
    CU_ASSERT_EQUAL(put_disp("xyz", "{\"disposition\":\"benign\"}", &o), 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(o, "detail") ? str(o, "detail") : "", "32"));
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(put_disp("0123456789abcdef0123456789abcdef", "{\"disposition\":\"benign\"}", &o), 404);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(o, "detail") ? str(o, "detail") : "", "no alert"));
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(put_disp(ids[0], "{not json", NULL), 400);
    CU_ASSERT_EQUAL(put_disp(ids[0], "{\"note\":\"x\"}", &o), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(o, "detail") ? str(o, "detail") : "", "disposition"));
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(put_disp(ids[0], "{\"disposition\":\"fraud\"}", &o), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(o, "detail") ? str(o, "detail") : "", "false_positive"));
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(put_disp(ids[0], "{\"disposition\":\"benign\",\"note\":5}", &o), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(o, "detail") ? str(o, "detail") : "", "note"));
    cJSON_Delete(o);
    static char big[2100 + 64];   /* a note of 2001 bytes: 422; of 2000 quotes (12 KiB escaped): accepted later */
    char *p = big + snprintf(big, sizeof big, "{\"disposition\":\"benign\",\"note\":\"");
    memset(p, 'a', 2001);
    snprintf(p + 2001, 8, "\"}");
    CU_ASSERT_EQUAL(put_disp(ids[0], big, &o), 422);
    CU_ASSERT_PTR_NOT_NULL(strstr(str(o, "detail") ? str(o, "detail") : "", "2000"));
    cJSON_Delete(o);
    long st = 0;
    char path[200];
    snprintf(path, sizeof path, "/v1/alerts/%s/other", ids[0]);
    cJSON_Delete(call("PUT", path, "{\"disposition\":\"benign\"}", &st));
    CU_ASSERT_EQUAL(st, 404);
    /* nothing was stored by any of those */
    o = call("GET", "/v1/alerts?disposition=none", NULL, &st);
    CU_ASSERT_EQUAL(num(o, "total"), 3);
    cJSON_Delete(o);
}

static void test_set_and_list(void) {
    cJSON *o = NULL;
    CU_ASSERT_EQUAL(put_disp(ids[0], "{\"disposition\":\"confirmed\",\"note\":\"card reported stolen\"}", &o), 200);
    CU_ASSERT_STRING_EQUAL(str(o, "id") ? str(o, "id") : "", ids[0]);
    CU_ASSERT_STRING_EQUAL(str(o, "disposition") ? str(o, "disposition") : "", "confirmed");
    CU_ASSERT_STRING_EQUAL(str(o, "note") ? str(o, "note") : "", "card reported stolen");
    CU_ASSERT_STRING_EQUAL(str(o, "by") ? str(o, "by") : "", "local");
    CU_ASSERT_PTR_NOT_NULL(str(o, "at"));
    cJSON_Delete(o);
    static char quotes[2000 * 6 + 128];   /* 2000 bytes of '"', each escaped as \u0022: 12 KiB of body */
    char *q = quotes + snprintf(quotes, sizeof quotes, "{\"disposition\":\"false_positive\",\"note\":\"");
    for (int i = 0; i < 2000; i++) q += snprintf(q, 7, "\\u0022");
    snprintf(q, 8, "\"}");
    CU_ASSERT_EQUAL(put_disp(ids[1], quotes, NULL), 200);
    long st = 0;
    o = call("GET", "/v1/alerts?disposition=confirmed", NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(num(o, "total"), 1);
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "alerts"), 0);
    CU_ASSERT_STRING_EQUAL(str(a, "id") ? str(a, "id") : "", ids[0]);
    CU_ASSERT_STRING_EQUAL(str(a, "disposition") ? str(a, "disposition") : "", "confirmed");
    const cJSON *tri = cJSON_GetObjectItemCaseSensitive(a, "triage");
    CU_ASSERT_STRING_EQUAL(str(tri, "note") ? str(tri, "note") : "", "card reported stolen");
    cJSON_Delete(o);
    o = call("GET", "/v1/alerts", NULL, &st);   /* every alert carries its disposition, null when none */
    int nulls = 0;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(o, "alerts")) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(a, "disposition");
        CU_ASSERT_PTR_NOT_NULL(d);
        nulls += cJSON_IsNull(d);
    }
    CU_ASSERT_EQUAL(nulls, 1);
    cJSON_Delete(o);
    o = call("GET", "/v1/alerts?disposition=maybe", NULL, &st);
    CU_ASSERT_EQUAL(st, 400);
    cJSON_Delete(o);
    o = call("GET", "/v1/rules", NULL, &st);
    const cJSON *big = rule_of(o, "big"), *quiet = rule_of(o, "quiet");
    CU_ASSERT_DOUBLE_EQUAL(num(big, "precision"), 0.5, 1e-9);
    const cJSON *dd = cJSON_GetObjectItemCaseSensitive(big, "dispositions");
    CU_ASSERT_EQUAL(num(dd, "confirmed"), 1);
    CU_ASSERT_EQUAL(num(dd, "false_positive"), 1);
    CU_ASSERT_EQUAL(num(dd, "benign"), 0);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(quiet, "precision")));
    CU_ASSERT_EQUAL(num(big, "alerts_last_hour"), 3);
    CU_ASSERT_PTR_NOT_NULL(str(big, "last_alert_at"));
    cJSON_Delete(o);
    char *t = NULL;
    char url[200];
    snprintf(url, sizeof url, "%s/v1/audit", base);
    t = vt_http("GET", url, NULL, 0, NULL, &st);
    CU_ASSERT_PTR_NOT_NULL(t && strstr(t, "\"action\":\"disposition\""));
    CU_ASSERT_PTR_NOT_NULL(t && strstr(t, ids[0]));
    free(t);
}

static void test_filters_pages(void) {
    long st = 0;
    cJSON *o = call("GET", "/v1/alerts?limit=2", NULL, &st);
    CU_ASSERT_EQUAL(num(o, "total"), 3);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "alerts")), 2);
    double next = num(o, "next");
    CU_ASSERT(next > 0);
    cJSON_Delete(o);
    char path[200];
    snprintf(path, sizeof path, "/v1/alerts?limit=2&before=%.0f", next);
    o = call("GET", path, NULL, &st);
    CU_ASSERT_EQUAL(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "alerts")), 1);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "next")));
    const cJSON *a = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o, "alerts"), 0);
    CU_ASSERT_STRING_EQUAL(str(a, "id") ? str(a, "id") : "", ids[0]);   /* the oldest */
    cJSON_Delete(o);
    struct { const char *q; int total; long st; } cases[] = {
        {"rule=big", 3, 200}, {"rule=quiet", 0, 200}, {"severity=high", 3, 200}, {"severity=low", 0, 200},
        {"key=c1", 1, 200}, {"mode=active", 3, 200}, {"mode=shadow", 0, 200},
        {"since=1700000001000", 2, 200}, {"until=1700000001000", 1, 200},
        {"since=2023-11-14T22:13:21Z&until=2023-11-14T22:13:22Z", 1, 200},
        {"mode=sideways", -1, 400}, {"severity=huge", -1, 400}, {"until=yesterday", -1, 400}, {"before=x", -1, 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "/v1/alerts?%s", cases[i].q);
        o = call("GET", path, NULL, &st);
        if (st != cases[i].st || (cases[i].total >= 0 && num(o, "total") != cases[i].total))
            printf("\n  %s: status %ld total %.0f\n", cases[i].q, st, num(o, "total"));
        CU_ASSERT_EQUAL(st, cases[i].st);
        if (cases[i].total >= 0) CU_ASSERT_EQUAL(num(o, "total"), cases[i].total);
        cJSON_Delete(o);
    }
    o = call("GET", "/v1/alerts/timeline?bucket=60&buckets=10", NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    const cJSON *big = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "rules"), "big");
    double sum = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, big) sum += x->valuedouble;
    CU_ASSERT_EQUAL(cJSON_GetArraySize(big), 10);
    CU_ASSERT_EQUAL(sum, 3);
    cJSON_Delete(o);
    o = call("GET", "/v1/alerts/timeline?bucket=0", NULL, &st);
    CU_ASSERT_EQUAL(st, 400);
    cJSON_Delete(o);
    /* an event's evidence as an alert of the ring carried it (window_events' lookup) */
    o = call("GET", "/v1/alerts/evidence?ids=t1,nope,t1", NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(o, "evidence");
    const cJSON *t1 = cJSON_GetObjectItemCaseSensitive(ev, "t1");
    CU_ASSERT_STRING_EQUAL(str(t1, "card_id") ? str(t1, "card_id") : "", "c1");
    CU_ASSERT_EQUAL(num(t1, "amount"), 500);
    CU_ASSERT(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(ev, "nope")));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(ev), 2);
    cJSON_Delete(o);
    o = call("GET", "/v1/alerts/evidence", NULL, &st);
    CU_ASSERT_EQUAL(st, 400);
    cJSON_Delete(o);
    char many[2000] = "/v1/alerts/evidence?ids=x0";
    for (int i = 1; i <= 100; i++) snprintf(many + strlen(many), sizeof many - strlen(many), ",x%d", i);
    o = call("GET", many, NULL, &st);
    CU_ASSERT_EQUAL(st, 400);
    cJSON_Delete(o);
}

static void test_restart(void) {
    stop();
    CU_ASSERT_EQUAL_FATAL(start(), 0);
    long st = 0;
    cJSON *o = call("GET", "/v1/rules", NULL, &st);
    CU_ASSERT_DOUBLE_EQUAL(num(rule_of(o, "big"), "precision"), 0.5, 1e-9);
    cJSON_Delete(o);
    /* the alert left with the old process's ring; its disposition is still known */
    CU_ASSERT_EQUAL(put_disp(ids[0], "{\"disposition\":\"benign\",\"note\":\"customer confirmed\"}", NULL), 200);
    o = call("GET", "/v1/rules", NULL, &st);
    const cJSON *big = rule_of(o, "big");
    CU_ASSERT_DOUBLE_EQUAL(num(big, "precision"), 0.0, 1e-9);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItemCaseSensitive(big, "dispositions"), "benign"), 1);
    CU_ASSERT_EQUAL(num(cJSON_GetObjectItemCaseSensitive(big, "dispositions"), "confirmed"), 0);
    cJSON_Delete(o);
    /* an alert never triaged and no longer held: 404 */
    CU_ASSERT_EQUAL(put_disp(ids[2], "{\"disposition\":\"benign\"}", NULL), 404);
}

static void add_suite(const char *name, int (*setup)(void)) {
    CU_pSuite s = CU_add_suite(name, setup, teardown);
    CU_add_test(s, "three alerts", test_feed);
    CU_add_test(s, "bad input: 400, 404, 422 naming what is wrong; nothing stored", test_bad_input);
    CU_add_test(s, "set, list, filter by disposition, precision in /v1/rules, audit", test_set_and_list);
    CU_add_test(s, "GET /v1/alerts filters, total, cursor pages; the timeline", test_filters_pages);
    CU_add_test(s, "a restart keeps the dispositions", test_restart);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    add_suite("triage, data_dir store", setup_file);
    add_suite("triage, Redis store", setup_redis);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

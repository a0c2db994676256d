/* test_stats.c — what ops read, against the real binary: GET /v1/stats is
 * computed by the server (alert totals, recent rates, event→alert latency
 * quantiles from the histogram, state, status) and agrees with /metrics;
 * /metrics passes `promtool check metrics` (Debian's prometheus package;
 * skipped with a message when promtool is absent, a failure under CI=true)
 * and carries the histograms, vigil_build_info and the process_* metrics;
 * `vigil --version` names the same version and commit as vigil_build_info. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define NEVENTS 30

static char *dir;
static vt_proc *proc;
static char base[64], logpath[600];

static char *get(const char *path, long *st) {
    char url[600];
    snprintf(url, sizeof url, "%s%s", base, path);
    return vt_http("GET", url, NULL, 0, NULL, st);
}

static int setup(void) {
    dir = vt_tmpdir();
    char rules[600], rf[700];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(logpath, sizeof logpath, "%s/vigil.log", dir);
    if (mkdir(rules, 0700) != 0) return -1;
    snprintf(rf, sizeof rf, "%s/big.lua", rules);
    FILE *f = fopen(rf, "w");
    if (!f) return -1;
    fputs("rule { name = \"big\", key = \"card_id\", where = { amount = gt(100) }, window = sliding(\"1h\"),\n"
          "       when = ge(count(), 1) }\n", f);
    fclose(f);
    int dead = vt_free_port();   /* a webhook nobody answers: its metrics exist, retrying */
    char hook[64];
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", dead);
    const char *argv[] = {VIGIL_BIN, "serve", "--listen", "127.0.0.1:0", "--rules", rules, "--data-dir", "",
                          "--webhook", hook, NULL};
    return (proc = vt_start_vigil(argv, logpath, base, sizeof base, 20000)) ? 0 : -1;
}

static int teardown(void) {
    if (proc) vt_kill(proc, SIGTERM);
    return 0;
}

static double num(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b) x = cJSON_GetObjectItemCaseSensitive(x, b);
    return cJSON_IsNumber(x) ? x->valuedouble : -1;
}

static const char *str(const cJSON *o, const char *a, const char *b) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, a), b);
    return cJSON_IsString(x) ? x->valuestring : "";
}

/* The value of a metric line that starts with `series ` (exact), or -1. */
static double metric(const char *text, const char *series) {
    char want[256];
    snprintf(want, sizeof want, "\n%s ", series);
    const char *p = strstr(text, want);
    return p ? atof(p + strlen(want)) : -1;
}

static void test_stats(void) {
    char url[600];
    snprintf(url, sizeof url, "%s/v1/events", base);
    for (int i = 0; i < NEVENTS; i++) {
        char ev[200];
        snprintf(ev, sizeof ev, "{\"id\":\"e%d\",\"ts\":%lld,\"card_id\":\"c%d\",\"amount\":%d}", i,
                 1700000000000LL + i * 1000, i % 7, i % 3 ? 500 : 50);   /* a third under the threshold */
        long st = 0;
        free(vt_http("POST", url, ev, strlen(ev), "application/json", &st));
        CU_ASSERT_EQUAL(st, 202);
    }
    int want_alerts = 0;
    for (int i = 0; i < NEVENTS; i++) want_alerts += (i % 3) != 0;
    cJSON *o = NULL;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 10000; vt_sleep_ms(200)) {   /* two samples at least */
        long st = 0;
        char *b = get("/v1/stats", &st);
        cJSON_Delete(o);
        o = b ? cJSON_Parse(b) : NULL;
        free(b);
        if (o && num(o, "alerts", "total") == want_alerts && num(o, "alert_latency_seconds", "alerts") == want_alerts &&
            num(o, "rates", "window_seconds") >= 1)
            break;
    }
    CU_ASSERT_FATAL(o != NULL);
    CU_ASSERT_EQUAL(num(o, "alerts", "total"), want_alerts);
    CU_ASSERT_EQUAL(num(o, "alert_latency_seconds", "alerts"), want_alerts);
    double p50 = num(o, "alert_latency_seconds", "p50"), p99 = num(o, "alert_latency_seconds", "p99");
    CU_ASSERT(p50 > 0 && p50 <= p99 && p99 < 10);
    CU_ASSERT(num(o, "rates", "events_per_second") > 0);
    CU_ASSERT_EQUAL(num(o, "state", "rules"), 1);
    CU_ASSERT_EQUAL(num(o, "lag", "queued"), 0);
    CU_ASSERT_STRING_EQUAL(str(o, "status", "store"), "memory");
    CU_ASSERT_STRING_EQUAL(str(o, "status", "nats"), "off");
    CU_ASSERT_STRING_EQUAL(str(o, "status", "intake"), "open");
    CU_ASSERT_EQUAL(num(o, "webhooks", "endpoints"), 1);
    CU_ASSERT(str(o, "watermark", "at")[0] != '\0');
    /* the same totals in /metrics */
    long st = 0;
    char *m = get("/metrics", &st);
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT_EQUAL(metric(m, "vigil_alert_latency_seconds_count"), want_alerts);
    CU_ASSERT_EQUAL(metric(m, "vigil_alert_latency_seconds_bucket{le=\"+Inf\"}"), want_alerts);
    CU_ASSERT(metric(m, "vigil_commit_seconds_count") >= 1);
    CU_ASSERT(metric(m, "vigil_batch_items_count") >= 1);
    CU_ASSERT(metric(m, "process_resident_memory_bytes") > 0);
    CU_ASSERT(metric(m, "process_open_fds") > 0);
    CU_ASSERT(metric(m, "process_start_time_seconds") > 1.7e9);
    CU_ASSERT(strstr(m, "\nvigil_build_info{version=\"") != NULL);
    free(m);
    cJSON_Delete(o);
}

static void test_promtool(void) {
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        const char *ci = getenv("CI");
        if (ci && strcmp(ci, "true") == 0) {
            CU_FAIL("promtool is not installed (apt-get install prometheus)");
        } else {
            printf("\n  SKIP: promtool not installed (Debian's prometheus package); CI installs it\n");
        }
        return;
    }
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "curl -sf '%s/metrics' > '%s/metrics.txt' && promtool check metrics < '%s/metrics.txt' "
             "> '%s/promtool.txt' 2>&1", base, dir, dir, dir);
    int rc = system(cmd);
    CU_ASSERT_EQUAL(rc, 0);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "%s/promtool.txt", dir);
        vt_dump_log(cmd, 4000);
    }
}

static void test_version(void) {
    char cmd[700], out[256] = "";
    snprintf(cmd, sizeof cmd, "%s --version", VIGIL_BIN);
    FILE *p = popen(cmd, "r");
    CU_ASSERT_FATAL(p != NULL);
    if (!fgets(out, sizeof out, p)) out[0] = '\0';
    CU_ASSERT_EQUAL(pclose(p), 0);
    char ver[64] = "", commit[64] = "";
    CU_ASSERT_EQUAL(sscanf(out, "vigil %63s (commit %63[^)])", ver, commit), 2);
    long st = 0;
    char *m = get("/metrics", &st);
    char want[256];
    snprintf(want, sizeof want, "vigil_build_info{version=\"%s\",commit=\"%s\"} 1", ver, commit);
    CU_ASSERT(m && strstr(m, want));
    CU_ASSERT(strcmp(ver, "unknown") != 0 && strcmp(commit, "unknown") != 0);
    free(m);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("stats", setup, teardown);
    CU_add_test(s, "GET /v1/stats: computed by the server, agrees with /metrics", test_stats);
    CU_add_test(s, "promtool check metrics", test_promtool);
    CU_add_test(s, "vigil --version and vigil_build_info", test_version);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

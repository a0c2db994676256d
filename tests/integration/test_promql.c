/* test_promql.c — the Grafana dashboard (dashboards/grafana/vigil.json) and
 * the Prometheus alert rules (deploy/prometheus/alerts.yml) name only
 * metrics that /metrics exports. A vigil with every feature that adds
 * metrics (Redis store, JetStream ingest, a webhook endpoint, a token with a
 * rate) runs against real redis-server and nats-server, takes a few events,
 * and its /metrics is compared with every PromQL expression of both files
 * (tests/tools/promql_names.mjs). `promtool check rules` checks the rules
 * file and `promtool check metrics` that /metrics; without promtool (Debian's
 * prometheus package) they are skipped with a message, except under CI=true. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define SRC_DIR VIGIL_SOURCE_DIR

static char *dir;
static vt_proc *proc, *redis, *nats;
static char base[64], logpath[600], metrics_path[700];

static int setup(void) {
    dir = vt_tmpdir();
    char rules[600], rf[700], conf[600];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(logpath, sizeof logpath, "%s/vigil.log", dir);
    snprintf(conf, sizeof conf, "%s/vigil.conf.lua", dir);
    if (mkdir(rules, 0700) != 0) return -1;
    snprintf(rf, sizeof rf, "%s/big.lua", rules);
    FILE *f = fopen(rf, "w");
    if (!f) return -1;
    fputs("rule { name = \"big\", key = \"card_id\", where = { amount = gt(100) }, window = sliding(\"1h\"),\n"
          "       when = ge(count(), 1) }\n", f);
    fclose(f);
    int rport = 0, nport = 0;
    if (!(redis = vt_start_redis(&rport, dir)) || !(nats = vt_start_nats(&nport, dir))) return -1;
    if (!(f = fopen(conf, "w"))) return -1;
    fprintf(f, "return { rules = \"%s\", listen = \"127.0.0.1:0\", workers = 1,\n"
               "  redis = \"redis://127.0.0.1:%d/0\", nats = { url = \"nats://127.0.0.1:%d\", jetstream = true },\n"
               "  webhooks = { { name = \"ops\", url = \"http://127.0.0.1:%d/hook\", timeout = \"1s\" } },\n"
               "  tokens = { { name = \"shop\", token = \"promql-ingest-token\", role = \"ingest\", rate = 1000 },\n"
               "             { name = \"root\", token = \"promql-admin-token\", role = \"admin\" } } }\n",
            rules, rport, nport, vt_free_port());
    fclose(f);
    const char *argv[] = {VIGIL_BIN, "serve", "--config", conf, NULL};
    return (proc = vt_start_vigil(argv, logpath, base, sizeof base, 30000)) ? 0 : -1;
}

static int teardown(void) {
    if (proc) vt_kill(proc, SIGTERM);
    if (nats) vt_kill(nats, SIGTERM);
    if (redis) vt_kill(redis, SIGTERM);
    return 0;
}

static int have_promtool(void) {
    if (system("command -v promtool >/dev/null 2>&1") == 0) return 1;
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        CU_FAIL("promtool is not installed (apt-get install prometheus)");
    } else {
        printf("\n  SKIP: promtool not installed (Debian's prometheus package); CI installs it\n");
    }
    return 0;
}

static void test_fetch_metrics(void) {
    char url[600];
    snprintf(url, sizeof url, "%s/v1/events", base);
    const char *hdr[] = {"Authorization: Bearer promql-ingest-token", NULL};
    for (int i = 0; i < 5; i++) {
        char ev[160];
        snprintf(ev, sizeof ev, "{\"id\":\"p%d\",\"ts\":%lld,\"card_id\":\"c%d\",\"amount\":500}", i,
                 1700000000000LL + i, i);
        long st = 0;
        free(vt_http_ex("POST", url, ev, strlen(ev), "application/json", hdr, 10000, &st, NULL));
        CU_ASSERT_EQUAL(st, 202);
    }
    snprintf(url, sizeof url, "%s/metrics", base);
    const char *admin[] = {"Authorization: Bearer promql-admin-token", NULL};
    char *m = NULL;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 15000; vt_sleep_ms(200)) {   /* the alerts are out */
        long st = 0;
        free(m);
        m = vt_http_ex("GET", url, NULL, 0, NULL, admin, 10000, &st, NULL);
        if (m && strstr(m, "\nvigil_alert_latency_seconds_count 5\n")) break;
    }
    CU_ASSERT_FATAL(m != NULL);
    CU_ASSERT(strstr(m, "\nvigil_alert_latency_seconds_count 5\n") != NULL);
    CU_ASSERT(strstr(m, "vigil_jetstream_lag") && strstr(m, "vigil_redis_round_trips_total") &&
              strstr(m, "vigil_webhook_deliveries_total"));
    snprintf(metrics_path, sizeof metrics_path, "%s/metrics.txt", dir);
    FILE *f = fopen(metrics_path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(m, f);
    fclose(f);
    free(m);
}

static void test_names(void) {
    char cmd[2400];
    snprintf(cmd, sizeof cmd, "node '%s/tests/tools/promql_names.mjs' '%s' '%s/dashboards/grafana/vigil.json' "
             "'%s/deploy/prometheus/alerts.yml'", SRC_DIR, metrics_path, SRC_DIR, SRC_DIR);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

static void test_promtool(void) {
    if (!have_promtool()) return;
    char cmd[1600];
    snprintf(cmd, sizeof cmd, "promtool check rules '%s/deploy/prometheus/alerts.yml'", SRC_DIR);
    CU_ASSERT_EQUAL(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", metrics_path);
    CU_ASSERT_EQUAL(system(cmd), 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("promql", setup, teardown);
    CU_add_test(s, "/metrics with Redis, JetStream, a webhook and rates", test_fetch_metrics);
    CU_add_test(s, "every metric the dashboard and the alert rules name is exported", test_names);
    CU_add_test(s, "promtool check rules and metrics", test_promtool);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

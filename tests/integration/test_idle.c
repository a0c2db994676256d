/* test_idle.c — event time in live operation: a `vigil serve` whose sources
 * go quiet advances its watermark with processing time after --idle-timeout,
 * so an absence ("two failed logins not followed by a success within 2 s")
 * fires with no further traffic — and not before its time — while a key
 * whose success did arrive stays silent. Real server, real HTTP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include "harness.h"

static int count_alerts(const char *base, const char *rule, char *first_key, size_t n) {
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/alerts?rule=%s", base, rule);
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "alerts");
    int c = cJSON_IsArray(a) ? cJSON_GetArraySize(a) : -1;
    if (c > 0 && first_key) {
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, 0), "key");
        snprintf(first_key, n, "%s", cJSON_IsString(k) ? k->valuestring : "");
    }
    cJSON_Delete(o);
    free(body);
    return c;
}

static void test_absence_fires_when_idle(void) {
    char *dir = vt_tmpdir();
    CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
    char rules[512], rule[600], log[600];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(rule, sizeof rule, "%s/locked.lua", rules);
    snprintf(log, sizeof log, "%s/vigil.log", dir);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", rules);
    CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
    FILE *f = fopen(rule, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("rule { name = 'locked_out', key = 'user', within = '2s',\n"
          "       pattern = begin('fail'):where{ type = 'fail' }:times(2)\n"
          "                 :not_followed_by('ok'):where{ type = 'ok' } }\n", f);
    fclose(f);
    int port = vt_free_port();
    char listen[64], base[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    const char *argv[] = {VIGIL_BINARY_DIR "/vigil", "serve", "--rules", rules, "--listen", listen,
                          "--idle-timeout", "300ms", NULL};
    vt_proc *p = vt_spawn(argv, log);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT_EQUAL_FATAL(vt_wait_port(port, 10000), 0);
    /* user a: two failures, no success; user b: two failures then success */
    const char *batch =
        "{\"id\":\"a1\",\"user\":\"a\",\"type\":\"fail\",\"ts\":1700000000000}\n"
        "{\"id\":\"b1\",\"user\":\"b\",\"type\":\"fail\",\"ts\":1700000000100}\n"
        "{\"id\":\"a2\",\"user\":\"a\",\"type\":\"fail\",\"ts\":1700000000200}\n"
        "{\"id\":\"b2\",\"user\":\"b\",\"type\":\"fail\",\"ts\":1700000000300}\n"
        "{\"id\":\"b3\",\"user\":\"b\",\"type\":\"ok\",\"ts\":1700000000400}\n";
    char url[256];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/events", base);
    long long t0 = vt_now_ms();
    char *body = vt_http("POST", url, batch, strlen(batch), "application/x-ndjson", &st);
    free(body);
    CU_ASSERT_EQUAL(st, 202);
    vt_sleep_ms(800);
    CU_ASSERT_EQUAL(count_alerts(base, "locked_out", NULL, 0), 0);   /* 2 s have not passed in event time */
    char key[64] = "";
    int n = 0;
    while (vt_now_ms() - t0 < 8000 && (n = count_alerts(base, "locked_out", key, sizeof key)) == 0) vt_sleep_ms(100);
    long long took = vt_now_ms() - t0;
    printf("  absence fired after %lld ms of silence (deadline: 1.6 s after the last event)\n", took);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(key, "a");
    CU_ASSERT(took >= 1500);
    vt_sleep_ms(700);
    CU_ASSERT_EQUAL(count_alerts(base, "locked_out", NULL, 0), 1);   /* b never fires */
    if (CU_get_number_of_failures()) vt_dump_log(log, 4000);
    vt_kill(p, SIGTERM);
    free(dir);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("idle watermark", NULL, NULL);
    CU_add_test(s, "absence fires on an idle server, on time", test_absence_fires_when_idle);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}

/* test_rule_versions.c — many versions of one rule through PUT
 * /v1/rules/{name}, against a server started in this process (memory
 * store, nothing durable, no tokens: loopback only), and the audit log's
 * account of them.
 *
 * put_source kept a pointer to the live version across
 * vcat_add_version, whose realloc of the version array moves it: from the
 * fifth version on, the audit entry's from_version (and a shadow's "shadow
 * beside version N") were read from freed memory (an ASan
 * heap-use-after-free, found by fuzz_http). Here: eight versions (six
 * active, two shadows beside the sixth), and every audit entry names the
 * version it replaced. Under the ASan build the old code fails at the
 * fifth PUT. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "harness.h"
#include "server/server.h"

static vigil_server *srv;
static char base[64], rules[600];

static int setup(void) {
    char *dir = vt_tmpdir();
    if (!dir) return -1;
    snprintf(rules, sizeof rules, "%s/rules", dir);
    free(dir);   /* removed at exit by the harness */
    if (mkdir(rules, 0700) != 0) return -1;
    char f[700];
    snprintf(f, sizeof f, "%s/other.lua", rules);
    FILE *fp = fopen(f, "w");
    if (!fp) return -1;
    fputs("rule{ name='other', key='k', window=sliding('1h'), when=ge(count(), 3) }\n", fp);
    fclose(fp);
    static vigil_server_config cfg;
    cfg.rules = rules;
    cfg.listen = "127.0.0.1:0";
    cfg.workers = 1;
    cfg.data_dir = "";
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_server_start(&cfg, &srv, &err) != VIGIL_OK) {
        fprintf(stderr, "server: %s\n", err.msg);
        return -1;
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%d", vigil_server_port(srv));
    return 0;
}

static int teardown(void) {
    vigil_server_stop(srv);
    return 0;
}

static long put(int threshold, const char *query) {
    char url[200], src[200];
    snprintf(url, sizeof url, "%s/v1/rules/x%s", base, query);
    snprintf(src, sizeof src, "rule{ name='x', key='k', window=sliding('1h'), when=ge(count(), %d) }\n", threshold);
    long st = 0;
    free(vt_http("PUT", url, src, strlen(src), "text/x-lua", &st));
    return st;
}

static void test_eight_versions_audited(void) {
    CU_ASSERT_EQUAL(put(2, ""), 201);
    for (int t = 3; t <= 7; t++) CU_ASSERT_EQUAL(put(t, ""), 200);   /* versions 2..6: the array moves at 5 */
    CU_ASSERT_EQUAL(put(8, "?mode=shadow"), 200);                    /* 7 beside 6 */
    CU_ASSERT_EQUAL(put(9, "?mode=shadow"), 200);                    /* 8 beside 6; 7 retires */
    char url[200];
    snprintf(url, sizeof url, "%s/v1/audit?limit=100", base);
    long st = 0;
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    CU_ASSERT_EQUAL_FATAL(st, 200);
    cJSON *o = cJSON_Parse(body);
    free(body);
    int seen[9] = {0};
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(o, "entries")) {
        const cJSON *rule = cJSON_GetObjectItem(e, "rule"), *act = cJSON_GetObjectItem(e, "action");
        if (!cJSON_IsString(rule) || strcmp(rule->valuestring, "x") != 0 || strcmp(act->valuestring, "put") != 0)
            continue;
        const cJSON *from = cJSON_GetObjectItem(e, "from_version"), *to = cJSON_GetObjectItem(e, "to_version");
        CU_ASSERT_FATAL(cJSON_IsNumber(to) && to->valueint >= 1 && to->valueint <= 8);
        int v = to->valueint;
        seen[v]++;
        if (v == 1) {
            CU_ASSERT(cJSON_IsNull(from));
        } else if (v <= 6) {
            CU_ASSERT(cJSON_IsNumber(from) && from->valueint == v - 1);
        } else {   /* the shadows, beside version 6 */
            CU_ASSERT(cJSON_IsNumber(from) && from->valueint == 6);
            const cJSON *d = cJSON_GetObjectItem(e, "detail");
            CU_ASSERT(cJSON_IsString(d) && strcmp(d->valuestring, "shadow beside version 6") == 0);
        }
    }
    for (int v = 1; v <= 8; v++) CU_ASSERT_EQUAL(seen[v], 1);
    cJSON_Delete(o);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("rule versions", setup, teardown);
    CU_add_test(s, "eight versions of one rule, each audited with the version it replaced",
                test_eight_versions_audited);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

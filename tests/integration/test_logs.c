/* test_logs.c — log_format = "json" against the real binary: every line the
 * server writes is one JSON object with ts, level, component and msg; every
 * HTTP answer carries X-Request-Id (the client's own when well-formed, else
 * one the server made); the lines written for a request carry the same id;
 * changes and refusals get a request line (method, path, status, who) and
 * plain reads do not; no token and no ?access_token= value reaches the log. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cjson/cJSON.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define ANALYST "logs-analyst-token-51c0"
#define INGEST "logs-ingest-token-9e2b"

static char *dir;
static vt_proc *proc;
static char base[64], logpath[600];

static int setup(void) {
    dir = vt_tmpdir();
    char rules[600], rf[700], conf[600];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(logpath, sizeof logpath, "%s/vigil.log", dir);
    snprintf(conf, sizeof conf, "%s/vigil.conf.lua", dir);
    if (mkdir(rules, 0700) != 0) return -1;
    snprintf(rf, sizeof rf, "%s/one.lua", rules);
    FILE *f = fopen(rf, "w");
    if (!f) return -1;
    fputs("rule { name = \"one\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n", f);
    fclose(f);
    if (!(f = fopen(conf, "w"))) return -1;
    fprintf(f, "return { rules = \"%s\", listen = \"127.0.0.1:0\", workers = 1, log_format = \"json\",\n"
               "  tokens = { { name = \"alice\", token = \"" ANALYST "\", role = \"analyst\" },\n"
               "             { name = \"shop\", token = \"" INGEST "\", role = \"ingest\" } } }\n", rules);
    fclose(f);
    const char *argv[] = {VIGIL_BIN, "serve", "--config", conf, "--data-dir", "", NULL};
    return (proc = vt_start_vigil(argv, logpath, base, sizeof base, 20000)) ? 0 : -1;
}

static int teardown(void) {
    if (proc) vt_kill(proc, SIGTERM);
    return 0;
}

/* curl the request; returns the X-Request-Id answered ("" if none) in id, the status. */
static int call(const char *method, const char *path, const char *token, const char *body, const char *reqid,
                char id[80]) {
    char cmd[2048], hdr[700];
    snprintf(hdr, sizeof hdr, "%s/headers.txt", dir);
    snprintf(cmd, sizeof cmd, "curl -s -o /dev/null -D '%s' -w '%%{http_code}' -X %s %s%s%s %s%s%s %s%s%s '%s%s'",
             hdr, method, token ? "-H 'Authorization: Bearer " : "", token ? token : "", token ? "'" : "",
             reqid ? "-H 'X-Request-Id: " : "", reqid ? reqid : "", reqid ? "'" : "",
             body ? "--data-binary '" : "", body ? body : "", body ? "'" : "", base, path);
    FILE *p = popen(cmd, "r");
    char out[16] = "";
    if (!p || !fgets(out, sizeof out, p)) out[0] = '\0';
    if (p) pclose(p);
    id[0] = '\0';
    char *h = vt_slurp(hdr);
    const char *x = h ? strcasestr(h, "\nX-Request-Id: ") : NULL;
    if (x) sscanf(x + strlen("\nX-Request-Id: "), "%79[^\r\n]", id);
    free(h);
    return atoi(out);
}

static void test_json_lines(void) {
    char id_put[80], id_404[80], id_401[80], id_get[80], id_bad[80];
    CU_ASSERT_EQUAL(call("PUT", "/v1/rules/one", ANALYST,
                         "rule { name = \"one\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 2) }", NULL,
                         id_put), 200);
    CU_ASSERT_EQUAL(call("GET", "/v1/nothing-here", ANALYST, NULL, "trace-42.a_b", id_404), 404);
    CU_ASSERT_STRING_EQUAL(id_404, "trace-42.a_b");
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", "wrong-token-xyz", NULL, "bad id with spaces", id_401), 401);
    CU_ASSERT(strlen(id_401) == 16 && strcmp(id_401, "bad id with spaces") != 0);   /* a malformed id is replaced */
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", ANALYST, NULL, NULL, id_get), 200);
    CU_ASSERT(strlen(id_put) == 16 && strcmp(id_put, id_get) != 0);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", INGEST, "{\"k\":\"a\"}", NULL, id_bad), 400);   /* no time */
    char stream_path[256];
    snprintf(stream_path, sizeof stream_path, "/v1/alerts?access_token=%s", ANALYST);
    char id_q[80];
    call("GET", stream_path, NULL, NULL, NULL, id_q);   /* a token in the query is not logged */
    kill(proc->pid, SIGHUP);   /* a reload line, outside any request */
    vt_sleep_ms(700);
    char *log = vt_slurp(logpath);
    CU_ASSERT_FATAL(log != NULL);
    int lines = 0, bad = 0, put_line = 0, not_found_line = 0, unauth_line = 0, get_line = 0, bad_event_line = 0,
        reload_line = 0;
    for (char *l = strtok(log, "\n"); l; l = strtok(NULL, "\n")) {
        lines++;
        cJSON *o = cJSON_Parse(l);
        const cJSON *ts = cJSON_GetObjectItem(o, "ts"), *lv = cJSON_GetObjectItem(o, "level"),
                    *msg = cJSON_GetObjectItem(o, "msg"), *rid = cJSON_GetObjectItem(o, "request_id");
        if (!cJSON_IsObject(o) || !cJSON_IsString(ts) || !cJSON_IsString(lv) || !cJSON_IsString(msg) ||
            !cJSON_IsString(cJSON_GetObjectItem(o, "component"))) {
            printf("\n  not a JSON log line: %s\n", l);
            bad++;
        } else {
            const char *m = msg->valuestring, *r = cJSON_IsString(rid) ? rid->valuestring : "";
            if (strstr(m, "PUT /v1/rules/one -> 200 (alice") && strcmp(r, id_put) == 0 && !strcmp(lv->valuestring, "info")) put_line++;
            if (strstr(m, "GET /v1/nothing-here -> 404") && strcmp(r, "trace-42.a_b") == 0 && !strcmp(lv->valuestring, "warn")) not_found_line++;
            if (strstr(m, "GET /v1/rules -> 401") && strcmp(r, id_401) == 0) unauth_line++;
            if (strstr(m, "GET /v1/rules -> 200")) get_line++;
            if (strstr(m, "POST /v1/events -> 400 (shop") && strcmp(r, id_bad) == 0) bad_event_line++;
            if (strstr(m, "reload (SIGHUP)") && !r[0]) reload_line++;
        }
        cJSON_Delete(o);
    }
    CU_ASSERT(lines >= 6);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(put_line, 1);
    CU_ASSERT_EQUAL(not_found_line, 1);
    CU_ASSERT_EQUAL(unauth_line, 1);
    CU_ASSERT_EQUAL(get_line, 0);   /* a plain read is not logged */
    CU_ASSERT_EQUAL(bad_event_line, 1);
    CU_ASSERT_EQUAL(reload_line, 1);
    free(log);
    log = vt_slurp(logpath);
    CU_ASSERT(!strstr(log, ANALYST) && !strstr(log, INGEST) && !strstr(log, "wrong-token-xyz"));
    free(log);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("logs", setup, teardown);
    CU_add_test(s, "JSON lines, request ids, request lines, no secrets", test_json_lines);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

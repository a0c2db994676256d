/* test_auth.c — configured tokens are enforced (issue 13, the security
 * defect: tokens were parsed and never checked), against the real binary
 * with four tokens in a config file:
 *   - no token or an unknown one: 401 problem+json (WWW-Authenticate: Bearer), also
 *     on a path that does not exist (401 is decided before 404);
 *   - a known token without the role: 403 (a viewer cannot post events or
 *     change rules; an analyst cannot read the audit log);
 *   - the roles nest: admin ⊃ analyst ⊃ viewer, ingest apart;
 *   - /healthz, /readyz, /metrics, the dashboard's assets and /v1/openapi.yaml need none;
 *   - the alert stream takes ?access_token= (a browser's EventSource);
 *   - the audit log names the token's name;
 *   - no token appears in the log. */
#include <CUnit/Basic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"

static char *dir;
static vt_proc *proc;
static char base[64], logpath[600];

static long call(const char *method, const char *path, const char *token, const char *body, char **out) {
    char url[600], auth[200];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *hdr[] = {auth, NULL};
    long st = 0;
    char *r = vt_http_ex(method, url, body, body ? strlen(body) : 0, body ? "application/json" : NULL,
                         token ? hdr : NULL, 5000, &st, NULL);
    if (out) *out = r;
    else free(r);
    return st;
}

#define INGEST "ingest-token-4f2a9c"
#define VIEWER "viewer-token-7d1e3b"
#define ANALYST "analyst-token-9a8c2d"
#define ADMIN "admin-token-1b5e7f"
#define LIMITED "limited-token-3c9d0a"
#define RATE 50

static int setup(void) {
    dir = vt_tmpdir();
    char rules[600], conf[600];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(conf, sizeof conf, "%s/vigil.conf.lua", dir);
    snprintf(logpath, sizeof logpath, "%s/vigil.log", dir);
    if (mkdir(rules, 0700) != 0) return -1;
    char rf[700];
    snprintf(rf, sizeof rf, "%s/one.lua", rules);
    FILE *f = fopen(rf, "w");
    if (!f) return -1;
    fputs("rule { name = \"one\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n", f);
    fclose(f);
    if (!(f = fopen(conf, "w"))) return -1;
    fprintf(f, "return { rules = \"%s\", listen = \"127.0.0.1:0\", workers = 1,\n"
               "  tokens = { { name = \"shop\", token = \"" INGEST "\", role = \"ingest\" },\n"
               "             { name = \"ops\", token = \"" VIEWER "\", role = \"viewer\" },\n"
               "             { name = \"alice\", token = \"" ANALYST "\", role = \"analyst\" },\n"
               "             { name = \"root\", token = \"" ADMIN "\", role = \"admin\" },\n"
               "             { name = \"slow\", token = \"" LIMITED "\", role = \"ingest\", rate = %d } } }\n",
            rules, RATE);
    fclose(f);
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *argv[] = {VIGIL_BIN, "serve", "--config", conf, "--data-dir", data, "--idle-timeout", "0", NULL};
    return (proc = vt_start_vigil(argv, logpath, base, sizeof base, 20000)) ? 0 : -1;
}

static int teardown(void) {
    if (proc) vt_kill(proc, SIGTERM);
    return 0;
}

static const char *EV = "{\"id\":\"e1\",\"k\":\"a\",\"ts\":1700000000000}";
static const char *SRC = "rule { name = \"one\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 2) }";

static void test_missing_and_unknown(void) {
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", "not-a-token", NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", NULL, EV, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/v1/no-such-thing", NULL, NULL, NULL), 401);   /* before 404 */
    char url[600];
    snprintf(url, sizeof url, "%s/v1/alerts", base);
    long st = 0;
    char *body = vt_http("GET", url, NULL, 0, NULL, &st);
    CU_ASSERT_EQUAL(st, 401);
    CU_ASSERT(body && strstr(body, "\"status\":401"));
    free(body);
}

static void test_roles(void) {
    CU_ASSERT_EQUAL(call("POST", "/v1/events", VIEWER, EV, NULL), 403);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", ANALYST, EV, NULL), 403);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", INGEST, EV, NULL), 202);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", ADMIN, EV, NULL), 202);
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", INGEST, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", VIEWER, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/v1/alerts", VIEWER, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("PUT", "/v1/rules/one", VIEWER, SRC, NULL), 403);
    CU_ASSERT_EQUAL(call("GET", "/v1/keys/k/a", VIEWER, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("PUT", "/v1/rules/one", ANALYST, SRC, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/v1/audit", ANALYST, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("GET", "/v1/deadletters", ANALYST, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", ADMIN, NULL, NULL), 200);
    char *body = NULL;
    CU_ASSERT_EQUAL(call("GET", "/v1/audit", ADMIN, NULL, &body), 200);
    CU_ASSERT(body && strstr(body, "\"by\":\"alice\"") && strstr(body, "\"action\":\"put\""));   /* the token's name */
    free(body);
}

static void test_public_and_stream(void) {
    CU_ASSERT_EQUAL(call("GET", "/healthz", NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/metrics", NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/", NULL, NULL, NULL), 200);
    char url[700];
    long st = 0;
    snprintf(url, sizeof url, "%s/v1/alerts/stream?access_token=%s", base, VIEWER);
    free(vt_http_ex("GET", url, NULL, 0, NULL, NULL, 700, &st, NULL));   /* a stream: it times out open */
    CU_ASSERT(st == 200 || st == 0);
    snprintf(url, sizeof url, "%s/v1/alerts/stream?access_token=%s", base, INGEST);
    free(vt_http_ex("GET", url, NULL, 0, NULL, NULL, 2000, &st, NULL));
    CU_ASSERT_EQUAL(st, 403);
    snprintf(url, sizeof url, "%s/v1/alerts/stream", base);
    free(vt_http_ex("GET", url, NULL, 0, NULL, NULL, 2000, &st, NULL));
    CU_ASSERT_EQUAL(st, 401);
    char *log = vt_slurp(logpath);
    CU_ASSERT(log && !strstr(log, INGEST) && !strstr(log, VIEWER) && !strstr(log, ANALYST) && !strstr(log, ADMIN));
    free(log);
}

/* A token with rate = 50: a burst of 50 passes, the next event is 429 with
 * Retry-After, a batch over the burst is 413; over ~2 s of single events as
 * fast as they go, what is accepted never exceeds rate x time + the burst. */
static void test_rate_limit(void) {
    char *nd = malloc(64 * (RATE + 2));
    size_t l = 0;
    for (int i = 0; i < RATE; i++) l += (size_t)sprintf(nd + l, "{\"id\":\"b%d\",\"k\":\"r\",\"ts\":1700000000000}\n", i);
    char url[600], auth[200];
    snprintf(url, sizeof url, "%s/v1/events", base);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", LIMITED);
    const char *hdr[] = {auth, NULL};
    long st = 0;
    long long t0 = vt_now_ms();
    free(vt_http_ex("POST", url, nd, l, "application/x-ndjson", hdr, 5000, &st, NULL));
    CU_ASSERT_EQUAL(st, 202);   /* the burst */
    CU_ASSERT_EQUAL(call("POST", "/v1/events", LIMITED, EV, NULL), 429);
    l += (size_t)sprintf(nd + l, "{\"id\":\"x\",\"k\":\"r\",\"ts\":1700000000000}\n");
    free(vt_http_ex("POST", url, nd, l, "application/x-ndjson", hdr, 5000, &st, NULL));
    CU_ASSERT_EQUAL(st, 413);   /* 51 events can never fit a bucket of 50 */
    free(nd);
    long accepted = RATE, refused = 0;
    while (vt_now_ms() - t0 < 2000) {
        long s2 = call("POST", "/v1/events", LIMITED, EV, NULL);
        if (s2 == 202) accepted++;
        else if (s2 == 429) refused++;
    }
    double secs = (double)(vt_now_ms() - t0) / 1000.0;
    CU_ASSERT(accepted <= RATE + (long)(RATE * secs) + 1);
    CU_ASSERT(accepted >= RATE + (long)(RATE * (secs - 0.5)));   /* and the rate is given, not less */
    CU_ASSERT(refused > 0);
    char *m = NULL;
    CU_ASSERT_EQUAL(call("GET", "/metrics", NULL, NULL, &m), 200);
    CU_ASSERT(m && strstr(m, "vigil_http_rate_limited_total{token=\"slow\"}"));
    free(m);
    printf("  %ld accepted in %.2f s at rate %d (burst %d), %ld refused 429\n", accepted, secs, RATE, RATE, refused);
}

/* Every (role, endpoint) pair: 2xx where the role allows it (or, for a
 * resource that is legitimately absent, an answer that is not 401/403),
 * DELETE included (the rule is PUT again before each call),
 * 401 without a token, 403 with a token whose role does not allow it. */
typedef struct ep {
    const char *method, *path, *body;
    int need;
    int ok_not_2xx;
    const char *pre_put;   /* a rule PUT (as admin) before each call: what the call deletes */
} ep;
enum { R_PUBLIC, R_INGEST, R_VIEWER, R_ANALYST, R_ADMIN };

static const char *DOOMED = "rule { name = \"doomed\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 5) }";

static int allowed(int have, int need) {
    if (need == R_PUBLIC || have == R_ADMIN) return 1;
    if (need == R_INGEST) return have == R_INGEST;
    if (have == R_INGEST || have == R_PUBLIC) return 0;
    return have >= need;
}

static void test_matrix(void) {
    char until[64], snooze[160];
    time_t t = time(NULL) + 3600;
    strftime(until, sizeof until, "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    snprintf(snooze, sizeof snooze, "{\"key\":\"a\",\"until\":\"%s\",\"reason\":\"matrix\"}", until);
    const ep eps[] = {
        {"POST", "/v1/events", "{\"id\":\"m1\",\"k\":\"a\",\"ts\":1700000000000}", R_INGEST, 0, NULL},
        {"GET", "/v1/alerts", NULL, R_VIEWER, 0, NULL},
        {"GET", "/v1/alerts/timeline", NULL, R_VIEWER, 0, NULL},
        {"GET", "/v1/alerts/evidence?ids=m1", NULL, R_VIEWER, 0, NULL},
        /* 404: no such alert (test_triage sets real ones); the role is decided before */
        {"PUT", "/v1/alerts/0123456789abcdef0123456789abcdef/disposition", "{\"disposition\":\"benign\"}",
         R_ANALYST, 1, NULL},
        {"GET", "/v1/rules", NULL, R_VIEWER, 0, NULL},
        {"GET", "/v1/rules/one", NULL, R_VIEWER, 0, NULL},
        {"PUT", "/v1/rules/one", SRC, R_ANALYST, 0, NULL},
        {"POST", "/v1/rules/one/mode", "{\"mode\":\"active\"}", R_ANALYST, 0, NULL},
        {"POST", "/v1/rules/one/rollback", "{\"version\":1}", R_ANALYST, 0, NULL},
        {"GET", "/v1/rules/one/compare", NULL, R_ANALYST, 1, NULL},   /* 404: no shadow runs */
        {"POST", "/v1/rules/one/promote", NULL, R_ANALYST, 1, NULL},  /* 409: no shadow runs */
        {"POST", "/v1/rules/one/snooze", snooze, R_ANALYST, 0, NULL},
        {"POST", "/v1/rules:test", "{\"source\":\"rule{name='t',key='k',window=sliding('1h'),when=ge(count(),1)}\","
                                   "\"events\":[{\"k\":\"a\",\"ts\":1700000000000}]}", R_ANALYST, 0, NULL},
        {"GET", "/v1/keys/k/a", NULL, R_ANALYST, 0, NULL},
        {"PUT", "/v1/lists/matrix", "a\nb\n", R_ANALYST, 0, NULL},
        {"GET", "/v1/lists", NULL, R_ANALYST, 0, NULL},
        {"GET", "/v1/stats", NULL, R_VIEWER, 0, NULL},
        {"GET", "/v1/lists/matrix", NULL, R_ANALYST, 0, NULL},
        {"DELETE", "/v1/rules/doomed", NULL, R_ANALYST, 0, "/v1/rules/doomed"},
        {"GET", "/v1/audit", NULL, R_ADMIN, 0, NULL},
        {"GET", "/v1/deadletters", NULL, R_ADMIN, 0, NULL},
        {"GET", "/healthz", NULL, R_PUBLIC, 0, NULL},
        {"GET", "/readyz", NULL, R_PUBLIC, 1, NULL},
        {"GET", "/metrics", NULL, R_PUBLIC, 0, NULL},
        {"GET", "/", NULL, R_PUBLIC, 0, NULL},
        {"GET", "/v1/openapi.yaml", NULL, R_PUBLIC, 0, NULL},
    };
    const char *tokens[] = {NULL, INGEST, VIEWER, ANALYST, ADMIN};
    const char *names[] = {"no token", "ingest", "viewer", "analyst", "admin"};
    int bad = 0;
    /* the key must have state for /v1/keys (an event from an ingest token) */
    CU_ASSERT_EQUAL(call("POST", "/v1/events", INGEST, "{\"id\":\"m0\",\"k\":\"a\",\"ts\":1700000000000}", NULL), 202);
    vt_sleep_ms(200);
    for (size_t e = 0; e < sizeof eps / sizeof eps[0]; e++)
        for (int r = 0; r < 5; r++) {
            if (eps[e].pre_put) {
                long pst = call("PUT", eps[e].pre_put, ADMIN, DOOMED, NULL);
                CU_ASSERT(pst == 200 || pst == 201);
            }
            long st = call(eps[e].method, eps[e].path, tokens[r], eps[e].body, NULL);
            int ok;
            if (allowed(r, eps[e].need)) ok = eps[e].ok_not_2xx ? (st != 401 && st != 403 && st > 0) : (st >= 200 && st < 300);
            else ok = r == R_PUBLIC ? st == 401 : st == 403;
            if (!ok) {
                printf("  %s %s as %s: %ld\n", eps[e].method, eps[e].path, names[r], st);
                bad++;
            }
        }
    CU_ASSERT_EQUAL(bad, 0);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("tokens enforced", setup, teardown);
    CU_add_test(s, "no token, an unknown token: 401 (problem+json), also before a 404", test_missing_and_unknown);
    CU_add_test(s, "roles: 403 without the role; admin > analyst > viewer, ingest apart; audit names the token",
                test_roles);
    CU_add_test(s, "health, metrics and assets need none; the stream takes ?access_token=; no token logged",
                test_public_and_stream);
    CU_add_test(s, "every (role, endpoint) pair: 2xx where allowed, 401 or 403 otherwise", test_matrix);
    CU_add_test(s, "a rate-limited token: burst, then 429, 413 over the burst, never over rate x time + burst",
                test_rate_limit);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

/* test_limits.c — the edge's limits and the token sources of issue 13,
 * against the real binary listening on 0.0.0.0 (allowed: it has tokens),
 * with small limits set in its config file:
 *   - tokens from tokens_file (mode 600) work beside the config's; a tokens
 *     file other users may read, or with a bad line, stops the start with a
 *     message naming the file and line and never the token;
 *   - metrics_token guards /metrics (admin tokens open it too);
 *   - event limits (fields, depth, key bytes) answer 400 naming the limit,
 *     and nothing of the batch is applied; too many NDJSON lines 413;
 *   - rules over max_rules 422; SSE clients over max_sse_clients 503 with
 *     Retry-After; connections over max_conns_per_ip are closed at accept;
 *     an idle half-sent request is closed after request_timeout; headers
 *     over max_header_bytes get libmicrohttpd's 431;
 *   - each refusal is counted in vigil_limits_refused_total{limit};
 *   - without tokens a non-loopback listen is refused at start;
 *   - no token appears in the server's log. */
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"

#define CONF_ADMIN "conf-admin-token-5e1d77"
#define FILE_VIEWER "file-viewer-token-81c3aa"
#define FILE_INGEST "file-ingest-token-2b9f04"
#define FILE_ANALYST "file-analyst-token-6d0e19"
#define METRICS "metrics-token-a4c8e2"

static char *dir;
static vt_proc *proc;
static int port;
static char base[64], logpath[600];

static int write_file(const char *path, const char *text, mode_t mode) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fputs(text, f);
    fclose(f);
    return chmod(path, mode);
}

static long call(const char *method, const char *path, const char *token, const char *body, const char *ct,
                 char **out) {
    char url[700], auth[200];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token ? token : "");
    const char *hdr[] = {auth, NULL};
    long st = 0;
    char *r = vt_http_ex(method, url, body, body ? strlen(body) : 0, body ? (ct ? ct : "application/json") : NULL,
                         token ? hdr : NULL, 10000, &st, NULL);
    if (out) *out = r;
    else free(r);
    return st;
}

static int setup(void) {
    dir = vt_tmpdir();
    char rules[600], conf[600], toks[600], rf[700], text[4096];
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(conf, sizeof conf, "%s/vigil.conf.lua", dir);
    snprintf(toks, sizeof toks, "%s/tokens", dir);
    snprintf(logpath, sizeof logpath, "%s/vigil.log", dir);
    if (mkdir(rules, 0700) != 0) return -1;
    snprintf(rf, sizeof rf, "%s/one.lua", rules);
    if (write_file(rf, "rule { name = \"one\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 1) }\n",
                   0600))
        return -1;
    if (write_file(toks,
                   "# name role token [rate]\n"
                   "\n"
                   "ops    viewer  " FILE_VIEWER "\n"
                   "shop\tingest\t" FILE_INGEST "\t1000\n"
                   "alice  analyst " FILE_ANALYST "\n",
                   0600))
        return -1;
    snprintf(text, sizeof text,
             "return { rules = \"%s\", listen = \"0.0.0.0:0\", workers = 1,\n"
             "  tokens = { { name = \"root\", token = \"" CONF_ADMIN "\", role = \"admin\" } },\n"
             "  tokens_file = \"%s\", metrics_token = \"" METRICS "\",\n"
             "  limits = { max_fields = 20, max_depth = 4, max_key_bytes = 16, max_lines = 5, max_rules = 3,\n"
             "             max_sse_clients = 2, max_conns_per_ip = 6, request_timeout = \"3s\",\n"
             "             max_header_bytes = \"8KiB\" } }\n",
             rules, toks);
    if (write_file(conf, text, 0600)) return -1;
    char data[600];
    snprintf(data, sizeof data, "%s/data", dir);
    const char *argv[] = {VIGIL_BIN, "serve", "--config", conf, "--data-dir", data, "--idle-timeout", "0", NULL};
    if (!(proc = vt_start_vigil(argv, logpath, base, sizeof base, 20000))) return -1;
    port = atoi(strrchr(base, ':') + 1);
    return 0;
}

static int teardown(void) {
    if (proc) vt_kill(proc, SIGTERM);
    return 0;
}

/* ---- raw connections (several open at once) ----------------------------------------- */

static int sock_open(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

/* Read what arrives within ms into buf (NUL-terminated); returns bytes read,
 * or -1 when the peer closed (EOF or reset) before anything arrived. */
static int sock_read(int fd, char *buf, size_t cap, int ms) {
    size_t n = 0;
    long long end = vt_now_ms() + ms;
    while (n + 1 < cap) {
        long long left = end - vt_now_ms();
        if (left <= 0) break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0) break;
        ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
        if (r <= 0) {
            buf[n] = '\0';
            return n ? (int)n : -1;
        }
        n += (size_t)r;
        if (strstr(buf, "\r\n\r\n")) break;
        buf[n] = '\0';
    }
    buf[n] = '\0';
    return (int)n;
}

static int sock_send(int fd, const char *s) { return send(fd, s, strlen(s), MSG_NOSIGNAL) == (ssize_t)strlen(s) ? 0 : -1; }

/* The value of vigil_limits_refused_total{limit="name"}, or -1. */
static long long refused(const char *name) {
    char *m = NULL;
    if (call("GET", "/metrics", METRICS, NULL, NULL, &m) != 200 || !m) {
        free(m);
        return -1;
    }
    char want[128];
    snprintf(want, sizeof want, "vigil_limits_refused_total{limit=\"%s\"} ", name);
    const char *p = strstr(m, want);
    long long v = p ? atoll(p + strlen(want)) : -1;
    free(m);
    return v;
}

/* ---- the tests ------------------------------------------------------------------------ */

static void test_tokens_file(void) {
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", FILE_VIEWER, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", FILE_VIEWER, "{\"k\":\"t\",\"ts\":1}", NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", FILE_INGEST, "{\"k\":\"t\",\"ts\":1}", NULL, NULL), 202);
    CU_ASSERT_EQUAL(call("GET", "/v1/audit", CONF_ADMIN, NULL, NULL, NULL), 200);   /* the config's token too */
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", "# name role token [rate]", NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", "viewer", NULL, NULL, NULL), 401);
}

static void test_metrics_token(void) {
    CU_ASSERT_EQUAL(call("GET", "/metrics", NULL, NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/metrics", "nope", NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/metrics", FILE_VIEWER, NULL, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call("GET", "/metrics", METRICS, NULL, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call("GET", "/metrics", CONF_ADMIN, NULL, NULL, NULL), 200);
    /* the metrics token opens /metrics and nothing else */
    CU_ASSERT_EQUAL(call("GET", "/v1/rules", METRICS, NULL, NULL, NULL), 401);
    CU_ASSERT_EQUAL(call("GET", "/healthz", NULL, NULL, NULL, NULL), 200);
}

/* An NDJSON body: n lines, the bad one (1-based, 0: none) replaced by bad. */
static void ndjson(char *out, size_t cap, int n, int bad_at, const char *bad) {
    size_t o = 0;
    for (int i = 1; i <= n; i++) {
        if (i == bad_at) o += (size_t)snprintf(out + o, cap - o, "%s\n", bad);
        else o += (size_t)snprintf(out + o, cap - o, "{\"id\":\"l%d\",\"k\":\"batch\",\"ts\":%d}\n", i, 1000 + i);
    }
}

static void expect_limit(const char *body, const char *ct, const char *limit, long want) {
    char *r = NULL;
    long st = call("POST", "/v1/events", FILE_INGEST, body, ct, &r);
    CU_ASSERT_EQUAL(st, want);
    char q[64];
    snprintf(q, sizeof q, "\"limit\":\"%s\"", limit);
    if (want == 400) {
        CU_ASSERT(r && strstr(r, q) && strstr(r, "nothing of this batch was applied"));
    } else {
        CU_ASSERT(r && strstr(r, limit));
    }
    if (st != want || !r || !strstr(r, limit)) fprintf(stderr, "  answer %ld: %s\n", st, r ? r : "(none)");
    free(r);
}

static void test_event_limits(void) {
    long long f0 = refused("max_fields"), d0 = refused("max_depth"), k0 = refused("max_key_bytes"),
              l0 = refused("max_lines");
    CU_ASSERT(f0 >= 0 && d0 >= 0 && k0 >= 0 && l0 >= 0);
    /* exactly at the limits: accepted (20 members; depth 4; a 16-byte key) */
    CU_ASSERT_EQUAL(call("POST", "/v1/events", FILE_INGEST,
                         "{\"k\":\"0123456789abcdef\",\"ts\":5,\"a\":{\"b\":[{\"c\":1}]},"
                         "\"f1\":1,\"f2\":2,\"f3\":3,\"f4\":4,\"f5\":5,\"f6\":6,\"f7\":7,\"f8\":8,\"f9\":9,"
                         "\"f10\":1,\"f11\":1,\"f12\":1,\"f13\":1,\"f14\":1,\"f15\":1}",
                         NULL, NULL),
                    202);
    /* over: one line of a batch; nothing of the batch applied */
    char body[8192], bad[2048];
    size_t o = (size_t)snprintf(bad, sizeof bad, "{\"k\":\"batch\",\"ts\":7");
    for (int i = 0; i < 20; i++) o += (size_t)snprintf(bad + o, sizeof bad - o, ",\"x%d\":%d", i, i);
    snprintf(bad + o, sizeof bad - o, "}");
    ndjson(body, sizeof body, 3, 2, bad);
    expect_limit(body, "application/x-ndjson", "max_fields", 400);
    ndjson(body, sizeof body, 3, 3, "{\"k\":\"batch\",\"ts\":7,\"a\":[[[[[1]]]]]}");
    expect_limit(body, "application/x-ndjson", "max_depth", 400);
    ndjson(body, sizeof body, 3, 1, "{\"k\":\"0123456789abcdefX\",\"ts\":7}");
    expect_limit(body, "application/x-ndjson", "max_key_bytes", 400);
    /* a bracket inside a string is not nesting; a colon inside one is not a field */
    CU_ASSERT_EQUAL(call("POST", "/v1/events", FILE_INGEST,
                         "{\"k\":\"s\",\"ts\":9,\"t\":\"[[[[[[[[{{{{{:::::::::::::::::::::::\\\"[[[[[\"}", NULL, NULL),
                    202);
    /* the refused batches left nothing: key "batch" has no state */
    CU_ASSERT_EQUAL(call("GET", "/v1/keys/k/batch", FILE_ANALYST, NULL, NULL, NULL), 404);
    /* lines: 5 accepted, 6 refused (413) */
    ndjson(body, sizeof body, 6, 0, NULL);
    expect_limit(body, "application/x-ndjson", "max_lines", 413);
    ndjson(body, sizeof body, 5, 0, NULL);
    CU_ASSERT_EQUAL(call("POST", "/v1/events", FILE_INGEST, body, "application/x-ndjson", NULL), 202);
    CU_ASSERT_EQUAL(refused("max_fields"), f0 + 1);
    CU_ASSERT_EQUAL(refused("max_depth"), d0 + 1);
    CU_ASSERT_EQUAL(refused("max_key_bytes"), k0 + 1);
    CU_ASSERT_EQUAL(refused("max_lines"), l0 + 1);
}

static void test_max_rules(void) {
    long long r0 = refused("max_rules");
    char path[64], src[256], *r = NULL;
    for (int i = 2; i <= 3; i++) {   /* one rule from the directory + 2 = the limit of 3 */
        snprintf(path, sizeof path, "/v1/rules/r%d", i);
        snprintf(src, sizeof src, "rule { name = \"r%d\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 9) }", i);
        CU_ASSERT_EQUAL(call("PUT", path, FILE_ANALYST, src, "text/x-lua", NULL), 201);
    }
    snprintf(src, sizeof src, "rule { name = \"r4\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 9) }");
    CU_ASSERT_EQUAL(call("PUT", "/v1/rules/r4", FILE_ANALYST, src, "text/x-lua", &r), 422);
    CU_ASSERT(r && strstr(r, "limits.max_rules"));
    free(r);
    /* a new version of a served rule is not a new rule */
    snprintf(src, sizeof src, "rule { name = \"r3\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 8) }");
    CU_ASSERT_EQUAL(call("PUT", "/v1/rules/r3", FILE_ANALYST, src, "text/x-lua", NULL), 200);
    /* deleting one makes room */
    CU_ASSERT_EQUAL(call("DELETE", "/v1/rules/r3", FILE_ANALYST, NULL, NULL, NULL), 204);
    snprintf(src, sizeof src, "rule { name = \"r4\", key = \"k\", window = sliding(\"1h\"), when = ge(count(), 9) }");
    CU_ASSERT_EQUAL(call("PUT", "/v1/rules/r4", FILE_ANALYST, src, "text/x-lua", NULL), 201);
    CU_ASSERT_EQUAL(refused("max_rules"), r0 + 1);
}

static void test_sse_clients(void) {
    long long s0 = refused("max_sse_clients");
    int fd[3];
    char buf[2048];
    const char *req = "GET /v1/alerts/stream?access_token=" FILE_VIEWER " HTTP/1.1\r\nHost: x\r\n\r\n";
    for (int i = 0; i < 2; i++) {
        fd[i] = sock_open();
        CU_ASSERT_FATAL(fd[i] >= 0);
        sock_send(fd[i], req);
        CU_ASSERT(sock_read(fd[i], buf, sizeof buf, 5000) > 0 && strstr(buf, " 200 "));
    }
    fd[2] = sock_open();
    CU_ASSERT_FATAL(fd[2] >= 0);
    sock_send(fd[2], req);
    int n = sock_read(fd[2], buf, sizeof buf, 5000);
    CU_ASSERT(n > 0 && strstr(buf, " 503 ") && strstr(buf, "Retry-After"));
    for (int i = 0; i < 3; i++) close(fd[i]);
    CU_ASSERT_EQUAL(refused("max_sse_clients"), s0 + 1);
    /* room again once the streams closed (the hub notices within its keepalive) */
    int ok = 0;
    for (long long t0 = vt_now_ms(); !ok && vt_now_ms() - t0 < 20000; vt_sleep_ms(200)) {
        int f = sock_open();
        if (f < 0) continue;
        sock_send(f, req);
        ok = sock_read(f, buf, sizeof buf, 3000) > 0 && strstr(buf, " 200 ");
        close(f);
    }
    CU_ASSERT(ok);
}

static void test_conns_per_ip(void) {
    /* the streams of the earlier test are gone (they held connections) */
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 10000; vt_sleep_ms(100)) {
        char *m = NULL;
        call("GET", "/metrics", METRICS, NULL, NULL, &m);
        int idle = m && strstr(m, "\nvigil_sse_subscribers 0\n");
        free(m);
        if (idle) break;
    }
    vt_sleep_ms(200);
    long long c0 = refused("max_conns_per_ip");
    /* open connections until the server closes one at accept: at most 6 stay open
     * (fewer if the test's HTTP client still holds one) */
    int fd[12], n = 0, refused_at = -1;
    char buf[256];
    for (; n < 12 && refused_at < 0; n++) {
        fd[n] = sock_open();
        if (fd[n] < 0 || sock_read(fd[n], buf, sizeof buf, 150) == -1) refused_at = n;
    }
    CU_ASSERT(refused_at >= 4 && refused_at <= 6);
    if (refused_at < 4 || refused_at > 6) fprintf(stderr, "  refused at connection %d\n", refused_at + 1);
    /* one that was let in still works */
    CU_ASSERT(sock_send(fd[0], "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    int r = sock_read(fd[0], buf, sizeof buf, 3000);
    CU_ASSERT(r > 0 && strstr(buf, " 200 "));
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0) close(fd[i]);
    vt_sleep_ms(300);
    CU_ASSERT(refused("max_conns_per_ip") >= c0 + 1);
    /* closed ones free their place */
    int f = sock_open();
    CU_ASSERT(f >= 0 && sock_send(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 0 &&
              sock_read(f, buf, sizeof buf, 3000) > 0 && strstr(buf, " 200 "));
    if (f >= 0) close(f);
}

static void test_timeout_and_headers(void) {
    /* a request whose headers never end is closed after request_timeout (3 s) */
    int fd = sock_open();
    CU_ASSERT_FATAL(fd >= 0);
    sock_send(fd, "GET /healthz HTTP/1.1\r\nHost: x\r\n");
    long long t0 = vt_now_ms();
    char buf[4096];
    int n = sock_read(fd, buf, sizeof buf, 8000);
    long long took = vt_now_ms() - t0;
    CU_ASSERT(n <= 0 || !strstr(buf, " 200 "));
    CU_ASSERT(took >= 2500 && took < 8000);
    close(fd);
    /* headers over max_header_bytes (8 KiB): 431 */
    size_t big = 12000;
    char *req = malloc(big + 200);
    int o = snprintf(req, big + 200, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(req + o, 'a', big);
    strcpy(req + o + big, "\r\n\r\n");
    fd = sock_open();
    CU_ASSERT_FATAL(fd >= 0);
    send(fd, req, strlen(req), MSG_NOSIGNAL);
    n = sock_read(fd, buf, sizeof buf, 5000);
    CU_ASSERT(n > 0 && strstr(buf, " 431 "));
    if (n <= 0 || !strstr(buf, " 431 ")) fprintf(stderr, "  big headers answered: %.200s\n", n > 0 ? buf : "(closed)");
    close(fd);
    free(req);
    CU_ASSERT(refused("max_header_bytes") >= 1);
}

/* A server that must not start: its log names why. */
static char *start_fails(const char *listen, const char *toks_text, mode_t toks_mode) {
    char conf[700], toks[700], log[700], rules[600];
    static int n;
    n++;
    snprintf(rules, sizeof rules, "%s/rules", dir);
    snprintf(conf, sizeof conf, "%s/bad%d.conf.lua", dir, n);
    snprintf(toks, sizeof toks, "%s/bad%d.tokens", dir, n);
    snprintf(log, sizeof log, "%s/bad%d.log", dir, n);
    char text[2048];
    if (toks_text)
        snprintf(text, sizeof text, "return { rules = \"%s\", listen = \"%s\", tokens_file = \"%s\" }\n", rules,
                 listen, toks);
    else
        snprintf(text, sizeof text, "return { rules = \"%s\", listen = \"%s\" }\n", rules, listen);
    write_file(conf, text, 0600);
    if (toks_text) write_file(toks, toks_text, toks_mode);
    char data[700];
    snprintf(data, sizeof data, "%s/bad%d-data", dir, n);
    const char *argv[] = {VIGIL_BIN, "serve", "--config", conf, "--data-dir", data, NULL};
    vt_proc *p = vt_spawn(argv, log);
    if (!p) return NULL;
    int exited = vt_wait_exit(p, 15000);
    CU_ASSERT(exited);
    if (exited) CU_ASSERT(WIFEXITED(p->status) && WEXITSTATUS(p->status) != 0);
    if (!exited) vt_kill(p, SIGKILL);
    return vt_slurp(log);
}

static void test_refused_starts(void) {
    /* no tokens: loopback only */
    char *l = start_fails("0.0.0.0:0", NULL, 0);
    CU_ASSERT(l && strstr(l, "loopback only"));
    free(l);
    /* a tokens file others may read */
    l = start_fails("127.0.0.1:0", "ops viewer secret-in-a-world-readable-file\n", 0644);
    CU_ASSERT(l && strstr(l, "chmod 600") && !strstr(l, "secret-in-a-world-readable-file"));
    free(l);
    /* a bad line: named by number, the token never shown */
    l = start_fails("127.0.0.1:0", "ops viewer fine-token-1\nbob superuser secret-of-bob-77\n", 0600);
    CU_ASSERT(l && strstr(l, "line 2") && strstr(l, "role") && !strstr(l, "secret-of-bob-77"));
    free(l);
    /* the same token twice */
    l = start_fails("127.0.0.1:0", "ops viewer twice-token-99\nbob admin twice-token-99\n", 0600);
    CU_ASSERT(l && strstr(l, "same token") && !strstr(l, "twice-token-99"));
    free(l);
}

static void test_no_secret_in_log(void) {
    char *t = vt_slurp(logpath);
    CU_ASSERT_FATAL(t != NULL);
    const char *secrets[] = {CONF_ADMIN, FILE_VIEWER, FILE_INGEST, FILE_ANALYST, METRICS};
    for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++) {
        CU_ASSERT(strstr(t, secrets[i]) == NULL);
        if (strstr(t, secrets[i])) fprintf(stderr, "  secret %zu is in the log\n", i);
    }
    free(t);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("limits", setup, teardown);
    CU_add_test(s, "tokens_file tokens beside the config's", test_tokens_file);
    CU_add_test(s, "metrics_token guards /metrics", test_metrics_token);
    CU_add_test(s, "event limits 400, lines 413, nothing applied", test_event_limits);
    CU_add_test(s, "max_rules 422", test_max_rules);
    CU_add_test(s, "max_sse_clients 503", test_sse_clients);
    CU_add_test(s, "max_conns_per_ip", test_conns_per_ip);
    CU_add_test(s, "request_timeout and 431", test_timeout_and_headers);
    CU_add_test(s, "starts refused: open listen, tokens file", test_refused_starts);
    CU_add_test(s, "no token in the log", test_no_secret_in_log);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

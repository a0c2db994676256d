/* test_sandbox.c — the sandbox escape suite (issue 13, docs/operations.md
 * "What the sandbox guarantees and what it doesn't").
 *
 * tests/sandbox/ holds one rule file per escape attempt, each mirroring a
 * known escape of an embedded Lua (Redis's CVEs and their Lua 5.4 forms) and
 * saying in its header what must happen (tests/sandbox/README.md): refused
 * with a clear error, or compiled and contained. Every attempt goes through
 * the three ways a rule file enters vigil:
 *
 *   1. `vigil check FILE`, in an empty working directory;
 *   2. `POST /v1/rules:test` with the fixed events of a round;
 *   3. `PUT /v1/rules/escape` on a real `vigil serve` (no tokens, loopback),
 *      whose rules directory holds the well-behaved rule `good`; an accepted
 *      attempt then runs at match time on the round's events and is deleted.
 *
 * After each entry point nothing may have escaped: the answer came within
 * BOUND_MS (no hang), the CLI exited 0 or 1 (no crash; a sanitizer report
 * exits otherwise) and the server is alive and answers /healthz, no file was
 * written (CANARY, and the CLI's working directory stays empty), no output
 * or log line was injected (no raw CR, no line starting with INJECTED), and
 * `good` still alerts exactly twice on the round's four events (fed with
 * ?wait, so the attempt's own rule sees them too). At the end the SSE stream
 * replayed from the start must be well-formed frames whose data: lines are
 * JSON, and GET /v1/alerts must be JSON.
 *
 * `test_sandbox --cli` runs only the CLI part (no server): ctest runs it
 * with the unit label too, so the compile path runs under ASan's leak check. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef VIGIL_BINARY_DIR
#define VIGIL_BINARY_DIR "build"
#endif
#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define ATTEMPTS_DIR VIGIL_SOURCE_DIR "/tests/sandbox"
#define CANARY "/tmp/vigil-escape-canary"
#define BOUND_MS 20000           /* one entry point, one attempt (the file's own wall clock is 2 s) */
#define START_TIMEOUT_MS 20000
#define WAIT_MS 5000             /* ?wait of the good rule's events */
#define GOOD_ALERTS 2            /* of the four events of a round */
#define MAX_ATTEMPTS 200
#define MAX_ANSWER (1 << 20)     /* a dry run's answer for 4 events: anything bigger escaped a memory cap */
#define LOG_TAIL 4000

#define GOOD_RULE \
    "-- the well-behaved rule beside every attempt: one alert per tx over 100\n" \
    "rule { name = \"good\", key = \"card\", pattern = begin(\"big\"):where{ type = \"tx\", amount = gt(100) } }\n"

enum { X_REFUSED = 1, X_COMPILES = 2 };

typedef struct attempt {
    char file[256];
    char path[700];
    char *src;
    size_t len;
    char mirrors[400];
    int expect, expect_test, expect_put;
    int events;                  /* events of the dry run (default 4) */
    char error[400];
    int alerts;                  /* -1: not checked */
} attempt;

static attempt atts[MAX_ATTEMPTS];
static int natts;
static char *scratch;
static char cwd_dir[700], out_path[700];
static long long slowest_ms;
static char slowest[300];

/* ---- files ------------------------------------------------------------------------------- */

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0, r;
    char *p = malloc(cap);
    while (p && (r = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            char *np = realloc(p, cap * 2);
            if (!np) {
                free(p);
                p = NULL;
                break;
            }
            p = np;
            cap *= 2;
        }
    }
    fclose(f);
    if (p) p[n] = '\0';
    if (len) *len = n;
    return p;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const attempt *)a)->file, ((const attempt *)b)->file);
}

/* The header lines: "-- key: value" anywhere in the file (the precompiled
 * chunk has binary bytes before them). */
static void parse_header(attempt *a) {
    a->alerts = -1;
    for (const char *p = a->src; p && p < a->src + a->len;) {
        const char *nl = memchr(p, '\n', (size_t)(a->src + a->len - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(a->src + a->len - p);
        char line[400];
        snprintf(line, sizeof line, "%.*s", (int)(n < sizeof line - 1 ? n : sizeof line - 1), p);
        char *v;
        if (strncmp(line, "-- mirrors: ", 12) == 0 && !a->mirrors[0]) {
            snprintf(a->mirrors, sizeof a->mirrors, "%s", line + 12);
        } else if (strncmp(line, "-- expect: ", 11) == 0) {
            v = line + 11;
            a->expect = strcmp(v, "refused") == 0 ? X_REFUSED : strcmp(v, "compiles") == 0 ? X_COMPILES : -1;
        } else if (strncmp(line, "-- expect-test: ", 16) == 0) {
            v = line + 16;
            a->expect_test = strcmp(v, "refused") == 0 ? X_REFUSED : strcmp(v, "compiles") == 0 ? X_COMPILES : -1;
        } else if (strncmp(line, "-- events: ", 11) == 0) {
            a->events = atoi(line + 11);
        } else if (strncmp(line, "-- expect-put: ", 15) == 0) {
            v = line + 15;
            a->expect_put = strcmp(v, "refused") == 0 ? X_REFUSED : strcmp(v, "compiles") == 0 ? X_COMPILES : -1;
        } else if (strncmp(line, "-- error: ", 10) == 0) {
            snprintf(a->error, sizeof a->error, "%s", line + 10);
        } else if (strncmp(line, "-- alerts: ", 11) == 0) {
            a->alerts = atoi(line + 11);
        }
        p = nl ? nl + 1 : NULL;
    }
    if (!a->expect_put) a->expect_put = a->expect;
    if (!a->expect_test) a->expect_test = a->expect;
    if (a->events <= 0) a->events = 4;
}

static int load_attempts(void) {
    DIR *d = opendir(ATTEMPTS_DIR);
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d)) && natts < MAX_ATTEMPTS) {
        size_t n = strlen(de->d_name);
        if (n < 5 || strcmp(de->d_name + n - 4, ".lua") != 0) continue;
        attempt *a = &atts[natts++];
        snprintf(a->file, sizeof a->file, "%s", de->d_name);
        snprintf(a->path, sizeof a->path, "%s/%s", ATTEMPTS_DIR, de->d_name);
    }
    closedir(d);
    qsort(atts, (size_t)natts, sizeof atts[0], by_name);
    for (int i = 0; i < natts; i++) {
        atts[i].src = slurp(atts[i].path, &atts[i].len);
        if (atts[i].src) parse_header(&atts[i]);
    }
    return 0;
}

/* ---- what must not happen ----------------------------------------------------------------- */

/* 1 when text says the attempt's error: one of its " | "-separated
 * alternatives (a memory bomb under ASan on a busy machine may meet the
 * 2 s wall clock before the 64 MiB cap; either limit contains it). */
static int says_error(const attempt *a, const char *text) {
    if (!text) return 0;
    char alts[sizeof a->error];
    snprintf(alts, sizeof alts, "%s", a->error);
    for (char *p = alts, *bar; p; p = bar ? bar + 3 : NULL) {
        bar = strstr(p, " | ");
        if (bar) *bar = '\0';
        if (*p && strstr(text, p)) return 1;
    }
    return 0;
}

/* 1 when text has a raw CR or a line that starts with an injected header. */
static int injected(const char *text, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\r') return 1;
        if ((i == 0 || text[i - 1] == '\n') &&
            (strncmp(text + i, "INJECTED", 8) == 0 || strncmp(text + i, "Set-Cookie", 10) == 0))
            return 1;
    }
    return 0;
}

static int dir_entries(const char *path) {
    DIR *d = opendir(path);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) n++;
    closedir(d);
    return n;
}

/* No file written: the canary path and the CLI's working directory. */
static void check_no_file(const attempt *a, const char *where) {
    if (access(CANARY, F_OK) == 0) {
        fprintf(stderr, "%s (%s): %s was written\n", a->file, where, CANARY);
        CU_FAIL("an attempt wrote the canary file");
        unlink(CANARY);
    }
    if (dir_entries(cwd_dir) != 0) {
        fprintf(stderr, "%s (%s): a file appeared in the CLI's working directory %s\n", a->file, where, cwd_dir);
        CU_FAIL("an attempt wrote into the working directory");
    }
}

static void timed(const attempt *a, const char *where, long long ms) {
    if (ms > slowest_ms) {
        slowest_ms = ms;
        snprintf(slowest, sizeof slowest, "%s (%s)", a->file, where);
    }
    if (ms > BOUND_MS) {
        fprintf(stderr, "%s (%s): took %lld ms, over the bound of %d ms\n", a->file, where, ms, BOUND_MS);
        CU_FAIL("an attempt was not contained in time");
    }
}

/* ---- 1. vigil check ---------------------------------------------------------------------- */

static void try_check(const attempt *a) {
    long long t0 = vt_now_ms();
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0);
        int fd = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd < 0 || chdir(cwd_dir) != 0) _exit(126);
        dup2(fd, 1);
        dup2(fd, 2);
        execl(VIGIL_BIN, "vigil", "check", a->path, (char *)NULL);
        _exit(127);
    }
    CU_ASSERT_FATAL(pid > 0);
    int status = 0, done = 0;
    while (!done && vt_now_ms() - t0 < BOUND_MS) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) done = 1;
        else vt_sleep_ms(5);
    }
    long long ms = vt_now_ms() - t0;
    if (!done) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "%s (vigil check): still running after %d ms: killed\n", a->file, BOUND_MS);
        CU_FAIL("vigil check hung");
        return;
    }
    timed(a, "vigil check", ms);
    size_t len = 0;
    char *out = slurp(out_path, &len);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (code != 0 && code != 1) {
        fprintf(stderr, "%s (vigil check): %s %d; output:\n%s\n", a->file, WIFSIGNALED(status) ? "killed by signal" : "exit",
                WIFSIGNALED(status) ? WTERMSIG(status) : code, out ? out : "");
        CU_FAIL("vigil check crashed");
    } else if (code != (a->expect == X_REFUSED ? 1 : 0)) {
        fprintf(stderr, "%s (vigil check): expected %s, exit %d; output:\n%s\n", a->file,
                a->expect == X_REFUSED ? "a refusal" : "a compile", code, out ? out : "");
        CU_FAIL("vigil check: not the expected outcome");
    } else if (a->expect == X_REFUSED && (!says_error(a, out) || !strstr(out, a->file))) {
        fprintf(stderr, "%s (vigil check): the error should name the file and say \"%s\"; output:\n%s\n", a->file,
                a->error, out ? out : "");
        CU_FAIL("vigil check: unclear error");
    }
    if (out && injected(out, len)) {
        fprintf(stderr, "%s (vigil check): a raw CR or an injected line in the output:\n%s\n", a->file, out);
        CU_FAIL("vigil check: output injection");
    }
    free(out);
    check_no_file(a, "vigil check");
}

static void test_cli(void) {
    for (int i = 0; i < natts; i++) try_check(&atts[i]);
}

/* ---- the server -------------------------------------------------------------------------- */

static vt_proc *srv;
static int port, round_no;
static char base[64], log_path[700];
static size_t log_seen;

static int start_server(void) {
    char rules[700], data[700], good[800];
    snprintf(rules, sizeof rules, "%s/rules", scratch);
    snprintf(data, sizeof data, "%s/data", scratch);
    snprintf(good, sizeof good, "%s/good.lua", rules);
    snprintf(log_path, sizeof log_path, "%s/vigil.log", scratch);
    if (mkdir(rules, 0700) != 0) return -1;
    FILE *f = fopen(good, "w");
    if (!f) return -1;
    fputs(GOOD_RULE, f);
    fclose(f);
    const char *argv[] = {VIGIL_BIN, "serve", "--rules", rules, "--listen", "127.0.0.1:0", "--workers", "2",
                          "--idle-timeout", "0", "--max-out-of-orderness", "0", "--data-dir", data, NULL};
    if (!(srv = vt_spawn(argv, log_path))) return -1;
    const char *mark = "listening on http://127.0.0.1:";
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < START_TIMEOUT_MS && port <= 0;) {
        char *t = slurp(log_path, NULL);
        const char *m = t ? strstr(t, mark) : NULL;
        if (m) port = (int)strtol(m + strlen(mark), NULL, 10);
        free(t);
        if (port > 0 || !vt_alive(srv)) break;
        vt_sleep_ms(20);
    }
    if (port <= 0) {
        fprintf(stderr, "vigil serve did not start; its log:\n");
        vt_dump_log(log_path, LOG_TAIL);
        return -1;
    }
    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    return 0;
}

static char *http(const char *method, const char *path, const char *body, size_t len, const char *ctype,
                  long *status, long long *ms) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    long long t0 = vt_now_ms();
    char *r = vt_http_ex(method, url, body, len, ctype, NULL, BOUND_MS + 1000, status, NULL);
    if (ms) *ms = vt_now_ms() - t0;
    return r;
}

/* The server is alive, answers /healthz, and its log has nothing injected since the last look. */
static void check_server(const attempt *a, const char *where) {
    long st = 0;
    char *b = http("GET", "/healthz", NULL, 0, NULL, &st, NULL);
    free(b);
    if (!vt_alive(srv) || st != 200) {
        fprintf(stderr, "%s (%s): the server is down (healthz %ld); its log:\n", a->file, where, st);
        vt_dump_log(log_path, LOG_TAIL);
        CU_FAIL_FATAL("the server did not survive an attempt");
    }
    size_t len = 0;
    char *log = slurp(log_path, &len);
    if (log && len > log_seen && injected(log + log_seen, len - log_seen)) {
        fprintf(stderr, "%s (%s): a raw CR or an injected line in the server's log:\n%s\n", a->file, where,
                log + log_seen);
        CU_FAIL("log injection");
    }
    if (log) log_seen = len;
    free(log);
    check_no_file(a, where);
}

/* The n events of round r (4 but for a long dry run): card c<r>, amounts 50,
 * 150, 250, 10 (and again). */
static cJSON *round_events(int r, int n) {
    static const int amounts[] = {50, 150, 250, 10};
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        char id[32], card[32];
        snprintf(id, sizeof id, "r%d-%d", r, i);
        snprintf(card, sizeof card, "c%d", r);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "id", id);
        cJSON_AddStringToObject(e, "type", "tx");
        cJSON_AddStringToObject(e, "card", card);
        cJSON_AddNumberToObject(e, "amount", amounts[i % 4]);
        cJSON_AddNumberToObject(e, "ts", 1700000000 + r * 10 + i);
        cJSON_AddItemToArray(a, e);
    }
    return a;
}

static int count_rule(const cJSON *alerts, const char *rule) {
    int n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, alerts) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(x, "rule");
        if (cJSON_IsString(r) && strcmp(r->valuestring, rule) == 0) n++;
    }
    return n;
}

/* Feed a new round one event at a time (?wait) and count good's alerts. */
static void check_good(const attempt *a, const char *where) {
    cJSON *evs = round_events(++round_no, 4);
    int good = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, evs) {
        char *js = cJSON_PrintUnformatted(e);
        char path[64];
        snprintf(path, sizeof path, "/v1/events?wait=%d", WAIT_MS);
        long st = 0;
        long long ms = 0;
        char *b = http("POST", path, js, strlen(js), "application/json", &st, &ms);
        timed(a, where, ms);
        cJSON *o = b ? cJSON_Parse(b) : NULL;
        if (st != 200 || !o) {
            fprintf(stderr, "%s (%s): POST %s answered %ld: %s\n", a->file, where, js, st, b ? b : "(nothing)");
            CU_FAIL("an event of the good rule was not processed");
        } else {
            good += count_rule(cJSON_GetObjectItemCaseSensitive(o, "alerts"), "good");
        }
        cJSON_Delete(o);
        free(b);
        free(js);
    }
    cJSON_Delete(evs);
    if (good != GOOD_ALERTS) {
        fprintf(stderr, "%s (%s): the good rule gave %d alerts on round %d, expected %d\n", a->file, where, good,
                round_no, GOOD_ALERTS);
        CU_FAIL("an attempt changed what another rule does");
    }
}

/* A refusal's body: the expected message (a 422's errors[] or a 409's detail). */
static void check_refusal(const attempt *a, const char *where, long st, const char *b) {
    if (st != 422 && st != 409) {
        fprintf(stderr, "%s (%s): expected a refusal (422/409), got %ld: %s\n", a->file, where, st, b ? b : "");
        CU_FAIL("not refused");
    } else if (!says_error(a, b)) {
        fprintf(stderr, "%s (%s): the refusal should say \"%s\": %s\n", a->file, where, a->error, b ? b : "");
        CU_FAIL("unclear refusal");
    }
}

/* ---- 2. POST /v1/rules:test ----------------------------------------------------------------- */

static void try_rules_test(const attempt *a) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "source", a->src);
    cJSON_AddItemToObject(req, "events", round_events(0, a->events));
    char *body = cJSON_PrintUnformatted(req);
    cJSON_Delete(req);
    long st = 0;
    long long ms = 0;
    char *b = http("POST", "/v1/rules:test", body, strlen(body), "application/json", &st, &ms);
    free(body);
    timed(a, "rules:test", ms);
    if (a->expect_test == X_REFUSED) {
        check_refusal(a, "rules:test", st, b);
    } else if (st != 200) {
        fprintf(stderr, "%s (rules:test): expected 200, got %ld: %s\n", a->file, st, b ? b : "(nothing)");
        CU_FAIL("rules:test: not the expected outcome");
    } else if (a->alerts >= 0) {
        cJSON *o = cJSON_Parse(b);
        int n = count_rule(cJSON_GetObjectItemCaseSensitive(o, "alerts"), "escape");
        if (n != a->alerts) {
            fprintf(stderr, "%s (rules:test): %d alerts of rule escape, expected %d: %s\n", a->file, n, a->alerts, b);
            CU_FAIL("rules:test: not the expected alerts");
        }
        cJSON_Delete(o);
    }
    if (b && injected(b, strlen(b))) CU_FAIL("rules:test: a raw CR in the answer");
    if (b && strlen(b) > MAX_ANSWER) {
        fprintf(stderr, "%s (rules:test): an answer of %zu bytes for %d events\n", a->file, strlen(b), a->events);
        CU_FAIL("rules:test: the answer escaped the memory cap");
    }
    free(b);
    check_server(a, "rules:test");
    check_good(a, "rules:test");
}

/* ---- 3. PUT /v1/rules/escape ------------------------------------------------------------------- */

static void try_put(const attempt *a) {
    long st = 0;
    long long ms = 0;
    char *b = http("PUT", "/v1/rules/escape", a->src, a->len, "text/x-lua", &st, &ms);
    timed(a, "PUT", ms);
    int accepted = st == 200 || st == 201;
    if (a->expect_put == X_REFUSED) {
        check_refusal(a, "PUT", st, b);
    } else if (!accepted) {
        fprintf(stderr, "%s (PUT): expected 200/201, got %ld: %s\n", a->file, st, b ? b : "(nothing)");
        CU_FAIL("PUT: not the expected outcome");
    }
    free(b);
    check_server(a, "PUT");
    check_good(a, "PUT");              /* an accepted attempt runs on these events too */
    check_server(a, "PUT, at match time");
    if (accepted) {
        b = http("DELETE", "/v1/rules/escape", NULL, 0, NULL, &st, &ms);
        free(b);
        CU_ASSERT_EQUAL(st, 204);
        check_server(a, "DELETE");
    }
}

static void test_server(void) {
    CU_ASSERT_FATAL(start_server() == 0);
    for (int i = 0; i < natts; i++) {
        try_rules_test(&atts[i]);
        try_put(&atts[i]);
    }
}

/* ---- the alert outputs after it all: SSE frames and GET /v1/alerts ---------------------------------- */

/* Read the SSE stream from the start (?last_event_id=0; HTTP/1.0, so not
 * chunked) until it has been quiet for 1 s: every line is "id: ", "event: ", "data: " (JSON), a
 * comment or empty. */
static void test_outputs(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CU_ASSERT_FATAL(fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
    char req[200];
    int n = snprintf(req, sizeof req, "GET /v1/alerts/stream?last_event_id=0 HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    CU_ASSERT_FATAL(write(fd, req, (size_t)n) == n);
    size_t cap = 1 << 22, len = 0;
    char *buf = malloc(cap + 1);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    while (len < cap && poll(&p, 1, 1000) > 0) {
        ssize_t r = read(fd, buf + len, cap - len);
        if (r <= 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = '\0';
    char *body = strstr(buf, "\r\n\r\n");
    CU_ASSERT_PTR_NOT_NULL_FATAL(body);
    body += 4;
    int frames = 0, bad = 0;
    for (char *line = body; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) *nl = '\0';
        if (!*line || line[0] == ':' || strncmp(line, "id: ", 4) == 0 || strncmp(line, "event: ", 7) == 0 ||
            strncmp(line, "retry: ", 7) == 0) {
        } else if (strncmp(line, "data: ", 6) == 0) {
            cJSON *j = cJSON_Parse(line + 6);
            if (!j) bad++;
            else frames++;
            cJSON_Delete(j);
        } else {
            fprintf(stderr, "SSE: a line that is no SSE field: \"%s\"\n", line);
            bad++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(buf);
    fprintf(stderr, "SSE: %d data frames, %d bad lines\n", frames, bad);
    CU_ASSERT(frames >= GOOD_ALERTS);
    CU_ASSERT_EQUAL(bad, 0);

    long st = 0;
    char *b = http("GET", "/v1/alerts?limit=1000", NULL, 0, NULL, &st, NULL);
    cJSON *o = b ? cJSON_Parse(b) : NULL;
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_PTR_NOT_NULL(o);
    CU_ASSERT(b && !injected(b, strlen(b)) && !strchr(b, '\n'));
    cJSON_Delete(o);
    free(b);
}

/* ---- main -------------------------------------------------------------------------------- */

static void test_headers(void) {
    CU_ASSERT_FATAL(natts > 0);
    for (int i = 0; i < natts; i++) {
        attempt *a = &atts[i];
        int ok = a->src && a->mirrors[0] && a->expect > 0 && a->expect_put > 0 && a->expect_test > 0 &&
                 (a->expect != X_REFUSED || a->error[0]) && (a->expect_put != X_REFUSED || a->error[0]) &&
                 (a->expect_test != X_REFUSED || a->error[0]);
        if (!ok) fprintf(stderr, "%s: needs -- mirrors:, -- expect: refused|compiles and, when refused, -- error:\n",
                         a->file);
        CU_ASSERT(ok);
    }
}

int main(int argc, char **argv) {
    int cli_only = argc > 1 && strcmp(argv[1], "--cli") == 0;
    signal(SIGPIPE, SIG_IGN);
    scratch = vt_tmpdir();
    if (!scratch || load_attempts() != 0) {
        fprintf(stderr, "cannot set up (scratch dir, %s)\n", ATTEMPTS_DIR);
        return 1;
    }
    snprintf(cwd_dir, sizeof cwd_dir, "%s/cwd", scratch);
    snprintf(out_path, sizeof out_path, "%s/check.out", scratch);
    if (mkdir(cwd_dir, 0700) != 0) return 1;
    unlink(CANARY);
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("sandbox escapes", NULL, NULL);
    CU_add_test(s, "every attempt says what it mirrors and expects", test_headers);
    CU_add_test(s, "vigil check FILE", test_cli);
    if (!cli_only) {
        CU_add_test(s, "POST /v1/rules:test and PUT /v1/rules/escape beside a good rule", test_server);
        CU_add_test(s, "SSE frames and GET /v1/alerts stay well-formed", test_outputs);
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    fprintf(stderr, "%d attempts; the slowest entry point: %s, %lld ms (bound %d ms)\n", natts, slowest, slowest_ms,
            BOUND_MS);
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    if (srv) vt_kill(srv, SIGTERM);
    for (int i = 0; i < natts; i++) free(atts[i].src);
    free(scratch);
    return failures != 0;
}

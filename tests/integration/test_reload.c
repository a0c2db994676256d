/* test_reload.c — rule hot reload against the real `vigil serve` (DESIGN.md §6
 * "Versions", docs/rules.md §15), the "Done when" lines one by one:
 *
 *  1. a PUT during a ~20 k events/s NDJSON feed: the unchanged rules' alert
 *     ids are exactly `vigil replay`'s over the same events; the changed rule
 *     (a compatible threshold change) has a swap point k in feed order: its
 *     alerts before k are the old source's (replayed over every event), its
 *     alerts from k on the new source's at the new version (replayed over
 *     every event: the window kept its contents);
 *  2. an incompatible pattern change: the old version drains (its run
 *     completes under it, it starts none), then retires;
 *  3. a compatible window change keeps the window's contents;
 *  4. an incompatible one (window size) starts empty;
 *  5. a refused source (422, 409 ×3) changes nothing;
 *  6. DELETE, mode, rollback, and a restart on the same store;
 *  7. the rules directory reloaded on SIGHUP and with --watch.
 *
 * Each test starts its own server (its own rules directory, data directory
 * and Redis key prefix) and runs twice: in the suite "memory store" (the
 * catalog in the data dir's catalog.json/audit.log, state snapshots there)
 * and in the suite "redis store" (a real redis-server on a free loopback
 * port, started by the suite, holding catalog, audit and state). Events are
 * made up here (deterministic); alerts are read from the ?wait answers, GET
 * /v1/alerts and, where every alert counts, a Standard Webhooks receiver
 * (tests/tools/webhook_receiver). Every wait polls with a deadline. The
 * whole file takes about 25 s on 2 cores (about 50 s in the sanitizer
 * build), most of it test 1's feed and its webhook deliveries. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "vigil/clock.h"
#include "vigil/event.h"
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#ifndef VIGIL_BINARY_DIR
#define VIGIL_BINARY_DIR "build"
#endif
#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define RECEIVER_BIN VIGIL_BINARY_DIR "/webhook_receiver"
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

#define START_TIMEOUT_MS 20000   /* a server printing its port */
#define STOP_TIMEOUT_MS 15000    /* SIGTERM to exit */
#define RELOAD_TIMEOUT_MS 5000   /* SIGHUP to its "reload (SIGHUP)" line */
#define WATCH_TIMEOUT_MS 3000    /* a file change to the new rules (--watch) */
#define RETIRE_TIMEOUT_MS 5000   /* a drained version to "retired" (checked once a second) */
#define SETTLE_TIMEOUT_MS 60000  /* the feed processed and every webhook delivered */
#define LOG_TAIL 4000
#define T0 1700000000000LL       /* event time of the first event (ms) */

/* the feed of test 1 */
#define FEED_N 60000
#define FEED_BATCH 500
#define FEED_PERIOD_MS 25        /* 500 events every 25 ms: 20 k events/s */
#define FEED_STEP_MS 20          /* event time between two events */
#define FEED_CARDS 300
#define FEED_DEVICES 200

typedef enum { STORE_MEMORY, STORE_REDIS } store_kind;
static store_kind store;
static const char *store_name(void) { return store == STORE_REDIS ? "redis" : "memory"; }
static char *dir;
static vt_proc *redis;
static int redis_port;

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

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int count_in(const char *text, const char *needle) {
    int n = 0;
    for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

static int log_count(const char *log, const char *needle) {
    char *t = slurp(log, NULL);
    int n = count_in(t, needle);
    free(t);
    return n;
}

/* ---- the server ------------------------------------------------------------------------- */

typedef struct server {
    vt_proc *p;
    int port, starts, watch;
    long long ts;                       /* event time of the next event() */
    int nev;                            /* events made by event() */
    char tag[64], root[600], rules[700], data[700], prefix[96], webhook[160], log[800], base[64];
} server;

/* A fresh scratch root for one test: <dir>/<tag>-<store>/{rules,data}. */
static int server_init(server *s, const char *tag) {
    memset(s, 0, sizeof *s);
    snprintf(s->tag, sizeof s->tag, "%s", tag);
    snprintf(s->root, sizeof s->root, "%s/%s-%s", dir, tag, store_name());
    snprintf(s->rules, sizeof s->rules, "%s/rules", s->root);
    snprintf(s->data, sizeof s->data, "%s/data", s->root);
    snprintf(s->prefix, sizeof s->prefix, "rl-%s", tag);
    s->ts = T0;
    if (mkdir(s->root, 0700) != 0 || mkdir(s->rules, 0700) != 0) return -1;
    return 0;
}

static int rule_file(const server *s, const char *file, const char *text) {
    char p[800];
    snprintf(p, sizeof p, "%s/%s", s->rules, file);
    return write_file(p, text);
}

static int server_start(server *s) {
    s->starts++;
    snprintf(s->log, sizeof s->log, "%s/vigil-%d.log", s->root, s->starts);
    char rurl[64];
    snprintf(rurl, sizeof rurl, "redis://127.0.0.1:%d/0", redis_port);
    const char *argv[40];
    int i = 0;
    argv[i++] = VIGIL_BIN;
    argv[i++] = "serve";
    argv[i++] = "--rules";
    argv[i++] = s->rules;
    argv[i++] = "--listen";
    argv[i++] = "127.0.0.1:0";
    argv[i++] = "--workers";
    argv[i++] = "2";
    argv[i++] = "--idle-timeout";
    argv[i++] = "0";
    argv[i++] = "--max-out-of-orderness";
    argv[i++] = "0";
    argv[i++] = "--data-dir";
    argv[i++] = s->data;
    if (store == STORE_REDIS) {
        argv[i++] = "--redis";
        argv[i++] = rurl;
        argv[i++] = "--redis-prefix";
        argv[i++] = s->prefix;
    }
    if (s->webhook[0]) {
        argv[i++] = "--webhook";
        argv[i++] = s->webhook;
    }
    if (s->watch) argv[i++] = "--watch";
    argv[i] = NULL;
    const char *env[] = {"VIGIL_WEBHOOK_SECRET=" SECRET, NULL};
    if (!(s->p = vt_spawn_env(argv, env, s->log))) return -1;
    s->port = 0;
    const char *mark = "listening on http://127.0.0.1:";
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < START_TIMEOUT_MS;) {
        char *t = slurp(s->log, NULL);
        const char *m = t ? strstr(t, mark) : NULL;
        if (m) s->port = (int)strtol(m + strlen(mark), NULL, 10);
        free(t);
        if (s->port > 0 || !vt_alive(s->p)) break;
        vt_sleep_ms(20);
    }
    if (s->port <= 0) {
        fprintf(stderr, "vigil serve (%s, %s) did not start; its log:\n", s->tag, store_name());
        vt_dump_log(s->log, LOG_TAIL);
        vt_kill(s->p, SIGKILL);
        s->p = NULL;
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

/* SIGTERM; it must exit 0 within STOP_TIMEOUT_MS. */
static void server_stop(server *s) {
    if (!s->p) return;
    kill(s->p->pid, SIGTERM);
    int exited = vt_wait_exit(s->p, STOP_TIMEOUT_MS);
    int st = s->p->status;
    CU_ASSERT(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!exited || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        printf("  vigil serve (%s) did not stop cleanly (%s %d); its log:\n", s->tag,
               !exited ? "still running" : WIFEXITED(st) ? "status" : "signal",
               !exited ? 0 : WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        vt_dump_log(s->log, LOG_TAIL);
    }
    vt_kill(s->p, SIGKILL);   /* reaped already: only frees the handle */
    s->p = NULL;
}

/* ---- HTTP ---------------------------------------------------------------------------- */

static char *req(const server *s, const char *method, const char *path, const char *body, const char *ct,
                 long *status) {
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    return vt_http(method, url, body, body ? strlen(body) : 0, ct, status);
}

static cJSON *req_json(const server *s, const char *method, const char *path, const char *body, const char *ct,
                       long *status) {
    char *t = req(s, method, path, body, ct, status);
    cJSON *o = t ? cJSON_Parse(t) : NULL;
    free(t);
    return o;
}

static cJSON *get_json(const server *s, const char *path, long *status) {
    return req_json(s, "GET", path, NULL, NULL, status);
}

static cJSON *put_rule(const server *s, const char *name, const char *src, const char *query, long *status) {
    char path[256];
    snprintf(path, sizeof path, "/v1/rules/%s%s", name, query ? query : "");
    return req_json(s, "PUT", path, src, "text/x-lua", status);
}

static int num(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsNumber(v) ? v->valueint : -1;
}

static const char *str(const cJSON *o, const char *name) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int str_is(const cJSON *o, const char *name, const char *want) {
    const char *v = str(o, name);
    return v && strcmp(v, want) == 0;
}

/* Version `version` of a GET /v1/rules/{name} answer, or NULL. */
static const cJSON *version_of(const cJSON *rule, int version) {
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(rule, "versions"))
        if (num(v, "version") == version) return v;
    return NULL;
}

static const char *state_of(const cJSON *rule, int version) { return str(version_of(rule, version), "state"); }

/* The next event of this server: {"id", "ts", "type", <kf>: <key>, extra…};
 * event time goes up 1 s per event. Returns a static buffer. */
static const char *event(server *s, const char *id, const char *type, const char *kf, const char *key,
                         const char *extra) {
    static char buf[512];
    snprintf(buf, sizeof buf, "{\"id\":\"%s\",\"ts\":%lld,\"type\":\"%s\",\"%s\":\"%s\"%s%s}", id, s->ts, type, kf,
             key, extra ? "," : "", extra ? extra : "");
    s->ts += 1000;
    s->nev++;
    return buf;
}

/* POST one event with ?wait: its alerts (an array the caller deletes), or an
 * empty array after a failed assertion. */
static cJSON *send_wait(const server *s, const char *ev) {
    long st = 0;
    cJSON *o = req_json(s, "POST", "/v1/events?wait=5000", ev, "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    cJSON *a = cJSON_DetachItemFromObjectCaseSensitive(o, "alerts");
    cJSON_Delete(o);
    if (!cJSON_IsArray(a)) {
        printf("  POST %s: status %ld, no alerts array\n", ev, st);
        cJSON_Delete(a);
        a = cJSON_CreateArray();
    }
    return a;
}

/* The one alert of `rule` in an array of alerts; NULL (and a message) when
 * there is none or more than one. */
static const cJSON *only_alert(const cJSON *alerts, const char *rule) {
    const cJSON *a, *found = NULL;
    int n = 0;
    cJSON_ArrayForEach(a, alerts)
        if (str_is(a, "rule", rule)) {
            found = a;
            n++;
        }
    if (n != 1) {
        char *t = cJSON_PrintUnformatted(alerts);
        printf("  expected exactly one alert of %s, got %d: %s\n", rule, n, t ? t : "?");
        free(t);
        return NULL;
    }
    return found;
}

static int count_alerts(const cJSON *alerts, const char *rule) {
    const cJSON *a;
    int n = 0;
    cJSON_ArrayForEach(a, alerts) n += str_is(a, "rule", rule);
    return n;
}

/* details.aggregates["count()"] of a window alert, or -1. */
static int alert_count(const cJSON *a) {
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(a, "details");
    return num(cJSON_GetObjectItemCaseSensitive(d, "aggregates"), "count()");
}

/* GET /v1/alerts?rule=NAME&limit=1000: the alerts array (caller deletes). */
static cJSON *listed_alerts(const server *s, const char *rule) {
    char path[160];
    long st = 0;
    snprintf(path, sizeof path, "/v1/alerts?rule=%s&limit=1000", rule);
    cJSON *o = get_json(s, path, &st);
    CU_ASSERT_EQUAL(st, 200);
    cJSON *a = cJSON_DetachItemFromObjectCaseSensitive(o, "alerts");
    cJSON_Delete(o);
    return cJSON_IsArray(a) ? a : (cJSON_Delete(a), cJSON_CreateArray());
}

/* Drop the alert counters (they move with traffic and restart at zero) from
 * a rule object and its versions. */
static void drop_counters(cJSON *rule) {
    cJSON_DeleteItemFromObjectCaseSensitive(rule, "alerts");
    /* the alert ring's (not durable); dispositions and precision are kept */
    cJSON_DeleteItemFromObjectCaseSensitive(rule, "alerts_last_hour");
    cJSON_DeleteItemFromObjectCaseSensitive(rule, "last_alert_at");
    cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(rule, "versions"))
        cJSON_DeleteItemFromObjectCaseSensitive(v, "alerts");
}

/* Sort an array of rule objects by "name" (the API does not promise an
 * order: the Redis catalog lists a hash's fields). */
static int by_name(const void *a, const void *b) {
    const char *na = str(*(cJSON *const *)a, "name"), *nb = str(*(cJSON *const *)b, "name");
    return strcmp(na ? na : "", nb ? nb : "");
}

static void sort_by_name(cJSON *arr) {
    int n = cJSON_GetArraySize(arr);
    cJSON **v = calloc((size_t)(n ? n : 1), sizeof *v);
    if (!v) return;
    for (int i = 0; i < n; i++) v[i] = cJSON_DetachItemFromArray(arr, 0);
    qsort(v, (size_t)n, sizeof *v, by_name);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, v[i]);
    free(v);
}

/* What the API says about the rules, counters left out: GET /v1/rules and
 * GET /v1/rules/{name} of each rule it lists (the sources), as one text. */
static char *rules_view(const server *s) {
    long st = 0;
    cJSON *list = get_json(s, "/v1/rules", &st);
    if (st != 200 || !list) {
        cJSON_Delete(list);
        return NULL;
    }
    sort_by_name(cJSON_GetObjectItemCaseSensitive(list, "rules"));
    cJSON *out = cJSON_CreateObject();
    cJSON *each = cJSON_AddArrayToObject(out, "each");
    cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(list, "rules")) {
        drop_counters(r);
        char path[160];
        snprintf(path, sizeof path, "/v1/rules/%s", str(r, "name") ? str(r, "name") : "?");
        long st1 = 0;
        cJSON *one = get_json(s, path, &st1);
        if (st1 == 200 && one) drop_counters(one);
        cJSON_AddItemToArray(each, one ? one : cJSON_CreateNull());
    }
    cJSON_AddItemToObject(out, "list", list);
    char *t = cJSON_PrintUnformatted(out);
    cJSON_Delete(out);
    return t;
}

static int same_text(const char *what, const char *before, const char *after) {
    int same = before && after && strcmp(before, after) == 0;
    if (!same) printf("  %s changed:\n    before: %s\n    after:  %s\n", what, before ? before : "(none)",
                      after ? after : "(none)");
    return same;
}

/* Poll GET /v1/rules/{name} until version `version` is in `state` (NULL:
 * until the rule answers `status`); the time it took, or -1 at the deadline. */
static long long poll_rule(const server *s, const char *name, int version, const char *state, long status,
                           int timeout_ms) {
    char path[160];
    snprintf(path, sizeof path, "/v1/rules/%s", name);
    long long t0 = vt_now_ms();
    for (;;) {
        long st = 0;
        cJSON *o = get_json(s, path, &st);
        int ok = state ? st == 200 && state_of(o, version) && strcmp(state_of(o, version), state) == 0
                       : st == status && (status != 200 || num(o, "version") == version);
        cJSON_Delete(o);
        if (ok) return vt_now_ms() - t0;
        if (vt_now_ms() - t0 > timeout_ms) return -1;
        vt_sleep_ms(50);
    }
}

/* ---- processes -------------------------------------------------------------------------- */

/* Run argv to completion (exit code, or -1: did not start, signal, timeout). */
static int run(const char *const argv[], const char *log, int timeout_ms) {
    vt_proc *p = vt_spawn(argv, log);
    if (!p) return -1;
    if (!vt_wait_exit(p, timeout_ms)) {
        fprintf(stderr, "%s %s did not finish within %d ms\n", argv[0], argv[1], timeout_ms);
        vt_kill(p, SIGKILL);
        return -1;
    }
    int st = p->status;
    vt_kill(p, SIGKILL);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

typedef struct receiver {
    vt_proc *p;
    char out[700], log[700];
} receiver;

static int receiver_start(receiver *r, server *s) {
    memset(r, 0, sizeof *r);
    snprintf(r->out, sizeof r->out, "%s/webhooks.jsonl", s->root);
    snprintf(r->log, sizeof r->log, "%s/receiver.log", s->root);
    const char *argv[] = {RECEIVER_BIN, "--out", r->out, "--port", "0", "--secret", SECRET, NULL};
    if (!(r->p = vt_spawn(argv, r->log))) return -1;
    int port = 0;
    for (long long t0 = vt_now_ms(); port <= 0 && vt_now_ms() - t0 < START_TIMEOUT_MS && vt_alive(r->p);) {
        char *t = slurp(r->log, NULL);
        const char *m = t ? strstr(t, "PORT ") : NULL;
        if (m) port = (int)strtol(m + 5, NULL, 10);
        free(t);
        if (port <= 0) vt_sleep_ms(20);
    }
    if (port <= 0) {
        vt_dump_log(r->log, LOG_TAIL);
        vt_kill(r->p, SIGKILL);
        r->p = NULL;
        return -1;
    }
    snprintf(s->webhook, sizeof s->webhook, "http://127.0.0.1:%d/hook", port);
    return 0;
}

/* The alerts the receiver got (body.data of each line), in arrival order;
 * *invalid counts lines that are not valid signed alert.created envelopes. */
static cJSON *received(const receiver *r, int *invalid) {
    cJSON *out = cJSON_CreateArray();
    *invalid = 0;
    char *t = slurp(r->out, NULL);
    for (char *line = t, *nl; line && *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) break;
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        cJSON *data = cJSON_DetachItemFromObjectCaseSensitive(cJSON_GetObjectItemCaseSensitive(o, "body"), "data");
        int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "valid")) && cJSON_IsObject(data) &&
                 str(data, "id") && str(o, "webhook_id") && strcmp(str(o, "webhook_id"), str(data, "id")) == 0;
        if (ok) cJSON_AddItemToArray(out, data);
        else {
            (*invalid)++;
            cJSON_Delete(data);
        }
        cJSON_Delete(o);
    }
    free(t);
    return out;
}

static int has_id(const cJSON *alerts, const char *id) {
    const cJSON *a;
    cJSON_ArrayForEach(a, alerts)
        if (str_is(a, "id", id)) return 1;
    return 0;
}

/* ---- metrics ---------------------------------------------------------------------------- */

/* Sum of the samples of family `name` whose labels contain `label` (NULL:
 * all); -1 when there is none. */
static double metric(const char *text, const char *name, const char *label) {
    size_t n = strlen(name);
    double sum = -1;
    for (const char *p = text; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (strncmp(p, name, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
            const char *sp = memchr(p, ' ', len);
            char line[512];
            snprintf(line, sizeof line, "%.*s", (int)(len < 511 ? len : 511), p);
            if (sp && (!label || strstr(line, label))) sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
        }
        p = eol ? eol + 1 : NULL;
    }
    return sum;
}

/* ---- 1. a PUT during a 20 k events/s feed ------------------------------------------------ */

static uint64_t prng_state;
static uint32_t prng(void) {
    prng_state = prng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(prng_state >> 33);
}

static const char *VELOCITY_SRC =
    "rule { name = \"velocity\", key = \"card\", where = { type = \"tx\" }, window = sliding(\"30s\"),\n"
    "       when = ge(count(), 11), severity = \"low\" }\n";
static const char *PROBE_SRC =
    "rule { name = \"probe_cashout\", key = \"device\",\n"
    "  pattern = begin(\"probe\"):where{ type = \"tx\", amount = lt(2) }\n"
    "            :followed_by(\"cashout\"):where{ type = \"tx\", amount = gt(900) },\n"
    "  within = \"20s\" }\n";
static const char *BURST_V1 =
    "rule { name = \"burst\", key = \"card\", where = { type = \"tx\", amount = gt(500) }, window = sliding(\"1m\"),\n"
    "       when = ge(count(), 10) }\n";
/* compatible: same key, where and window; a lower threshold, another severity */
static const char *BURST_V2 =
    "rule { name = \"burst\", key = \"card\", where = { type = \"tx\", amount = gt(500) }, window = sliding(\"1m\"),\n"
    "       when = ge(count(), 9), severity = \"high\" }\n";

typedef struct feed {
    const server *s;
    char **bodies;
    int nbatches;
    atomic_int posted;         /* batches answered 202 */
    int failed;                /* a batch answered something else than 202 (or 503 for too long) */
    long bad_status;
    int retries;               /* 503 answers retried */
    long long t_start, t_end;
} feed;

static void *feeder(void *arg) {
    feed *f = arg;
    char url[128];
    snprintf(url, sizeof url, "%s/v1/events", f->s->base);
    f->t_start = vt_now_ms();
    for (int b = 0; b < f->nbatches && !f->failed; b++) {
        long long due = f->t_start + (long long)b * FEED_PERIOD_MS;
        if (due > vt_now_ms()) vt_sleep_ms((int)(due - vt_now_ms()));
        for (int attempt = 0;; attempt++) {
            long st = 0;
            char *t = vt_http("POST", url, f->bodies[b], strlen(f->bodies[b]), "application/x-ndjson", &st);
            free(t);
            if (st == 202) break;
            if (st == 503 && attempt < 200) {   /* overload: retry, as a client must (Retry-After) */
                f->retries++;
                vt_sleep_ms(20);
                continue;
            }
            f->failed = 1;
            f->bad_status = st;
            break;
        }
        if (!f->failed) atomic_fetch_add(&f->posted, 1);
    }
    f->t_end = vt_now_ms();
    return NULL;
}

/* An alert as test 1 keeps it: id, version, index of its `event` in feed order. */
typedef struct ref {
    char id[33];
    int version, idx;
} ref;
typedef struct refs {
    ref *v;
    size_t n, cap;
} refs;

static void refs_add(refs *r, const char *id, int version, int idx) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        if (!r->v) abort();
    }
    snprintf(r->v[r->n].id, sizeof r->v[r->n].id, "%s", id);
    r->v[r->n].version = version;
    r->v[r->n].idx = idx;
    r->n++;
}

static int ref_by_id(const void *a, const void *b) { return strcmp(((const ref *)a)->id, ((const ref *)b)->id); }

/* Sort by id; the number of repeated ids (each printed, up to 5). */
static size_t refs_sort(refs *r, const char *what) {
    if (r->n) qsort(r->v, r->n, sizeof *r->v, ref_by_id);
    size_t dups = 0;
    for (size_t i = 1; i < r->n; i++)
        if (strcmp(r->v[i].id, r->v[i - 1].id) == 0 && dups++ < 5)
            printf("    %s: repeated alert id %s (event %d)\n", what, r->v[i].id, r->v[i].idx);
    return dups;
}

static int refs_has(const refs *r, const char *id) {
    ref k;
    snprintf(k.id, sizeof k.id, "%s", id);
    return r->n && bsearch(&k, r->v, r->n, sizeof *r->v, ref_by_id) != NULL;
}

/* Alerts of `want`'s ids with lo <= idx < hi equal `got`'s (both sorted;
 * got is compared whole). Prints up to 5 differences when verbose. */
static int refs_equal(const refs *got, const refs *want, int lo, int hi, const char *what, int verbose) {
    size_t missing = 0, extra = 0, nwant = 0;
    for (size_t i = 0; i < want->n; i++) {
        if (want->v[i].idx < lo || want->v[i].idx >= hi) continue;
        nwant++;
        if (!refs_has(got, want->v[i].id) && missing++ < 5 && verbose)
            printf("    %s: missing %s (event e%06d)\n", what, want->v[i].id, want->v[i].idx);
    }
    for (size_t i = 0; i < got->n; i++) {
        const ref *w = NULL;
        ref k;
        snprintf(k.id, sizeof k.id, "%s", got->v[i].id);
        if (want->n) w = bsearch(&k, want->v, want->n, sizeof *want->v, ref_by_id);
        if ((!w || w->idx < lo || w->idx >= hi) && extra++ < 5 && verbose)
            printf("    %s: unexpected %s (event e%06d)\n", what, got->v[i].id, got->v[i].idx);
    }
    if (verbose)
        printf("  %s: %zu served, %zu expected: %zu missing, %zu unexpected\n", what, got->n, nwant, missing, extra);
    return missing == 0 && extra == 0;
}

static int event_index(const char *ev) {
    if (!ev || ev[0] != 'e') return -1;
    char *end;
    long v = strtol(ev + 1, &end, 10);
    return *end || v < 0 || v >= FEED_N ? -1 : (int)v;
}

/* The alerts of `rule` in a replay output file. */
static int replay_refs(const char *path, const char *rule, refs *out) {
    char *t = slurp(path, NULL);
    if (!t) return -1;
    for (char *line = t, *nl; *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) break;
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        if (o && str_is(o, "rule", rule)) refs_add(out, str(o, "id"), num(o, "rule_version"), event_index(str(o, "event")));
        cJSON_Delete(o);
    }
    free(t);
    return 0;
}

/* Wait until the feed is processed and every active alert delivered: every
 * event received, queues empty, no delivery pending, the receiver's lines
 * equal the active alerts counted, twice in a row. */
static int settle(const server *s, const receiver *r, long events) {
    long long t0 = vt_now_ms();
    double prev[3] = {-1, -1, -1};
    while (vt_now_ms() - t0 < SETTLE_TIMEOUT_MS) {
        long st = 0;
        char *m = req(s, "GET", "/metrics", NULL, NULL, &st);
        char *w = slurp(r->out, NULL);
        double got = metric(m, "vigil_events_received_total", "source=\"http\"");
        double depth = metric(m, "vigil_queue_depth", NULL);
        double pending = metric(m, "vigil_outbox_pending", NULL) + metric(m, "vigil_webhook_inflight", NULL);
        double active = metric(m, "vigil_alerts_total", "mode=\"active\"");
        double processed = metric(m, "vigil_events_processed_total", NULL);
        double lines = count_in(w, "\n");
        free(m);
        free(w);
        int quiet = got == events && depth == 0 && pending <= 0 && lines == active && prev[0] == processed &&
                    prev[1] == active && prev[2] == lines;
        if (quiet) {
            printf("  settled %lld ms after the feed: %.0f processed, %.0f active alerts, %.0f webhooks\n",
                   vt_now_ms() - t0, processed, active, lines);
            return 0;
        }
        prev[0] = processed;
        prev[1] = active;
        prev[2] = lines;
        if (!vt_alive(s->p)) break;
        vt_sleep_ms(200);
    }
    printf("  not settled within %d ms\n", SETTLE_TIMEOUT_MS);
    vt_dump_log(s->log, LOG_TAIL);
    return -1;
}

static void test_put_during_feed(void) {
    server s;
    receiver rcv;
    CU_ASSERT_FATAL(server_init(&s, "feed") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "velocity.lua", VELOCITY_SRC) == 0 && rule_file(&s, "probe.lua", PROBE_SRC) == 0 &&
                    rule_file(&s, "burst.lua", BURST_V1) == 0);
    CU_ASSERT_FATAL(receiver_start(&rcv, &s) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);

    /* the events, in event-time order, written for replay and cut into batches */
    char evpath[800];
    snprintf(evpath, sizeof evpath, "%s/events.ndjson", s.root);
    FILE *ef = fopen(evpath, "w");
    CU_ASSERT_FATAL(ef != NULL);
    feed f;
    memset(&f, 0, sizeof f);
    f.s = &s;
    f.nbatches = FEED_N / FEED_BATCH;
    f.bodies = calloc((size_t)f.nbatches, sizeof *f.bodies);
    CU_ASSERT_FATAL(f.bodies != NULL);
    prng_state = 12345;
    for (int b = 0; b < f.nbatches; b++) {
        size_t cap = FEED_BATCH * 128, len = 0;
        char *body = malloc(cap);
        CU_ASSERT_FATAL(body != NULL);
        for (int k = 0; k < FEED_BATCH; k++) {
            int i = b * FEED_BATCH + k;
            unsigned card = prng() % FEED_CARDS, device = prng() % FEED_DEVICES, u = prng() % 100;
            unsigned amount = u < 5 ? 1 : u < 10 ? 950 + prng() % 50 : 10 + prng() % 890;
            len += (size_t)snprintf(body + len, cap - len,
                                    "{\"id\":\"e%06d\",\"ts\":%lld,\"type\":\"tx\",\"card\":\"c%03u\","
                                    "\"device\":\"d%03u\",\"amount\":%u}\n",
                                    i, T0 + (long long)i * FEED_STEP_MS, card, device, amount);
        }
        fputs(body, ef);
        f.bodies[b] = body;
    }
    CU_ASSERT_FATAL(fclose(ef) == 0);

    /* feed on a thread; the PUT from here once half of it is in */
    pthread_t th;
    CU_ASSERT_FATAL(pthread_create(&th, NULL, feeder, &f) == 0);
    while (atomic_load(&f.posted) < f.nbatches / 2 && !f.failed && atomic_load(&f.posted) < f.nbatches)
        vt_sleep_ms(2);
    int before = atomic_load(&f.posted);
    long long tput = vt_now_ms();
    long st = 0;
    cJSON *o = put_rule(&s, "burst", BURST_V2, NULL, &st);
    int after = atomic_load(&f.posted);
    tput = vt_now_ms() - tput;
    pthread_join(th, NULL);
    double secs = (double)(f.t_end - f.t_start) / 1000.0;
    printf("  [%s] fed %d events in %.2f s (%.0f events/s, %d retried 503s); PUT answered %d in %lld ms, "
           "between batch %d and %d of %d\n",
           store_name(), atomic_load(&f.posted) * FEED_BATCH, secs, atomic_load(&f.posted) * FEED_BATCH / secs,
           f.retries, (int)st, tput, before, after, f.nbatches);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(num(o, "version"), 2);
    CU_ASSERT(str_is(o, "state", "active"));
    cJSON_Delete(o);
    CU_ASSERT(!f.failed);
    if (f.failed) printf("  a batch was answered %ld\n", f.bad_status);
    CU_ASSERT_EQUAL(atomic_load(&f.posted), f.nbatches);
    CU_ASSERT(before > 0 && after < f.nbatches);   /* the PUT came and went during the feed */
    for (int b = 0; b < f.nbatches; b++) free(f.bodies[b]);
    free(f.bodies);

    /* GET: version 1 retired at once (compatible), version 2 inherits from it */
    o = get_json(&s, "/v1/rules/burst", &st);
    CU_ASSERT(st == 200 && state_of(o, 1) && strcmp(state_of(o, 1), "retired") == 0);
    CU_ASSERT(num(version_of(o, 2), "inherits_from") == 1);
    cJSON_Delete(o);

    int settled = settle(&s, &rcv, FEED_N) == 0;
    CU_ASSERT(settled);
    int invalid = 0;
    cJSON *got = received(&rcv, &invalid);
    CU_ASSERT_EQUAL(invalid, 0);

    /* the reference: replay of the first rules over every event, and of the new burst at version 2 */
    char outA[800], outB[800], logR[800], burst2[800];
    snprintf(outA, sizeof outA, "%s/replay-v1.jsonl", s.root);
    snprintf(outB, sizeof outB, "%s/replay-burst-v2.jsonl", s.root);
    snprintf(logR, sizeof logR, "%s/replay.log", s.root);
    snprintf(burst2, sizeof burst2, "%s/burst-v2.lua", s.root);
    CU_ASSERT_FATAL(write_file(burst2, BURST_V2) == 0);
    /* the rules directory still holds burst.lua's first text (the PUT does not write files) */
    const char *ra[] = {VIGIL_BIN, "replay", "--rules", s.rules, "--input", evpath, "--output", outA, NULL};
    const char *rb[] = {VIGIL_BIN, "replay", "--rules", burst2, "--rule-version", "burst=2",
                        "--input", evpath, "--output", outB, NULL};
    CU_ASSERT_EQUAL(run(ra, logR, 60000), 0);
    CU_ASSERT_EQUAL(run(rb, logR, 60000), 0);

    /* (a) the unchanged rules: exactly replay's ids */
    const char *unchanged[] = {"velocity", "probe_cashout"};
    for (int u = 0; u < 2; u++) {
        refs served = {0}, want = {0};
        const cJSON *a;
        cJSON_ArrayForEach(a, got)
            if (str_is(a, "rule", unchanged[u])) refs_add(&served, str(a, "id"), num(a, "rule_version"), event_index(str(a, "event")));
        CU_ASSERT_EQUAL(replay_refs(outA, unchanged[u], &want), 0);
        CU_ASSERT_EQUAL(refs_sort(&served, unchanged[u]), 0);
        refs_sort(&want, unchanged[u]);
        CU_ASSERT(want.n > 0);
        CU_ASSERT(refs_equal(&served, &want, 0, FEED_N, unchanged[u], 1));
        free(served.v);
        free(want.v);
    }

    /* (b) the changed rule: a swap point k in feed order */
    refs old_s = {0}, new_s = {0}, old_r = {0}, new_r = {0};
    int other_versions = 0, max_old = -1, min_new = FEED_N;
    const cJSON *a;
    cJSON_ArrayForEach(a, got) {
        if (!str_is(a, "rule", "burst")) continue;
        int v = num(a, "rule_version"), idx = event_index(str(a, "event"));
        if (v == 1) {
            refs_add(&old_s, str(a, "id"), v, idx);
            if (idx > max_old) max_old = idx;
        } else if (v == 2) {
            refs_add(&new_s, str(a, "id"), v, idx);
            if (idx < min_new) min_new = idx;
        } else {
            other_versions++;
        }
    }
    CU_ASSERT_EQUAL(other_versions, 0);
    CU_ASSERT_EQUAL(refs_sort(&old_s, "burst v1"), 0);
    CU_ASSERT_EQUAL(refs_sort(&new_s, "burst v2"), 0);
    CU_ASSERT(old_s.n > 0 && new_s.n > 0);   /* the swap fell inside the feed */
    printf("  burst: %zu alerts of version 1 (last at event %d), %zu of version 2 (first at event %d)\n", old_s.n,
           max_old, new_s.n, min_new);
    CU_ASSERT(max_old < min_new);
    CU_ASSERT_EQUAL(replay_refs(outA, "burst", &old_r), 0);
    CU_ASSERT_EQUAL(replay_refs(outB, "burst", &new_r), 0);
    refs_sort(&old_r, "replay burst v1");
    refs_sort(&new_r, "replay burst v2");
    /* every k that explains the alerts; the events of batches answered before
     * the PUT was sent are the old version's, those of batches sent after
     * its answer the new one's: some such k lies in between */
    int k_lo = -1, k_hi = -1, k_timely = 0;
    int sent_lo = before * FEED_BATCH, sent_hi = (after + 1) * FEED_BATCH;
    for (int k = max_old + 1; k <= min_new && max_old < min_new; k++)
        if (refs_equal(&old_s, &old_r, 0, k, "", 0) && refs_equal(&new_s, &new_r, k, FEED_N, "", 0)) {
            if (k_lo < 0) k_lo = k;
            k_hi = k;
            k_timely |= k >= sent_lo && k <= sent_hi;
        }
    int k_found = k_lo;
    if (k_found >= 0) {
        printf("  burst: a swap point k anywhere in [e%06d, e%06d] explains every alert (old = replay v1 before k, "
               "new = replay v2 over every event from k on); the PUT was in flight over [e%06d, e%06d]\n",
               k_lo, k_hi, sent_lo, sent_hi);
        CU_ASSERT(k_timely);
    } else {
        int k = min_new < FEED_N ? min_new : max_old + 1;
        printf("  burst: no swap point k between e%06d and e%06d explains the alerts; at k = e%06d:\n", max_old + 1,
               min_new, k);
        refs_equal(&old_s, &old_r, 0, k, "burst v1 vs replay v1 before k", 1);
        refs_equal(&new_s, &new_r, k, FEED_N, "burst v2 vs replay v2 from k", 1);
    }
    CU_ASSERT(k_found >= 0);
    free(old_s.v);
    free(new_s.v);
    free(old_r.v);
    free(new_r.v);
    cJSON_Delete(got);
    server_stop(&s);
    vt_kill(rcv.p, SIGTERM);
}

/* ---- 2. an incompatible pattern change drains ------------------------------------------ */

static const char *AB_10M =
    "rule { name = \"ab\", key = \"user\",\n"
    "  pattern = begin(\"a\"):where{ type = \"a\" }:followed_by(\"b\"):where{ type = \"b\" },\n"
    "  within = \"10m\" }\n";
static const char *AB_15M =
    "rule { name = \"ab\", key = \"user\",\n"
    "  pattern = begin(\"a\"):where{ type = \"a\" }:followed_by(\"b\"):where{ type = \"b\" },\n"
    "  within = \"15m\" }\n";

static void test_drain_pattern(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "drain") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "ab.lua", AB_10M) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    cJSON *al = send_wait(&s, event(&s, "a1", "a", "user", "u1", NULL));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 0);
    cJSON_Delete(al);
    long st = 0;
    cJSON *o = put_rule(&s, "ab", AB_15M, NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(num(o, "version"), 2);
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/ab", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(state_of(o, 1) && strcmp(state_of(o, 1), "draining") == 0);
    CU_ASSERT(state_of(o, 2) && strcmp(state_of(o, 2), "active") == 0);
    CU_ASSERT(num(version_of(o, 2), "inherits_from") != 1);   /* started empty */
    cJSON_Delete(o);
    /* b completes the old version's run: one alert, the old version */
    al = send_wait(&s, event(&s, "b1", "b", "user", "u1", NULL));
    const cJSON *x = only_alert(al, "ab");
    CU_ASSERT(x && num(x, "rule_version") == 1);
    CU_ASSERT(x && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(x, "events")) == 2);
    cJSON_Delete(al);
    /* a new pair: the new version only (the draining one starts no run) */
    al = send_wait(&s, event(&s, "a2", "a", "user", "u1", NULL));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 0);
    cJSON_Delete(al);
    al = send_wait(&s, event(&s, "b2", "b", "user", "u1", NULL));
    x = only_alert(al, "ab");
    CU_ASSERT(x && num(x, "rule_version") == 2 && str_is(x, "event", "b2"));
    cJSON_Delete(al);
    /* the alert list agrees: exactly one of each */
    al = listed_alerts(&s, "ab");
    int v1 = 0, v2 = 0;
    cJSON_ArrayForEach(x, al) {
        v1 += num(x, "rule_version") == 1 && str_is(x, "event", "b1");
        v2 += num(x, "rule_version") == 2 && str_is(x, "event", "b2");
    }
    CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 2);
    CU_ASSERT(v1 == 1 && v2 == 1);
    cJSON_Delete(al);
    /* its last run ended: version 1 retires within a few seconds */
    long long took = poll_rule(&s, "ab", 1, "retired", 0, RETIRE_TIMEOUT_MS);
    printf("  [%s] the drained version 1: %s", store_name(), took >= 0 ? "retired after " : "still not retired after ");
    printf("%lld ms\n", took >= 0 ? took : (long long)RETIRE_TIMEOUT_MS);
    CU_ASSERT(took >= 0);
    if (took < 0) {
        /* a diagnosis only (the assertion above has failed): does one more
         * event for the same key, hence the same worker, let it retire? */
        cJSON_Delete(send_wait(&s, event(&s, "c1", "c", "user", "u1", NULL)));
        long long then = poll_rule(&s, "ab", 1, "retired", 0, RETIRE_TIMEOUT_MS);
        printf("  [%s] after one more event on that key's worker: %s (%lld ms)\n", store_name(),
               then >= 0 ? "retired" : "still draining", then);
    }
    o = get_json(&s, "/v1/rules/ab", &st);
    CU_ASSERT(state_of(o, 2) && strcmp(state_of(o, 2), "active") == 0);
    if (took >= 0) CU_ASSERT(str(version_of(o, 1), "retired_at") != NULL);
    cJSON_Delete(o);
    server_stop(&s);
}

/* ---- 3 and 4. window changes: compatible keeps the contents, incompatible starts empty --- */

static const char *velo_src(const char *size, int threshold) {
    static char buf[256];
    snprintf(buf, sizeof buf,
             "rule { name = \"velo\", key = \"card\", where = { type = \"tx\" }, window = sliding(\"%s\"),\n"
             "       when = ge(count(), %d) }\n", size, threshold);
    return buf;
}

static void test_compatible_window(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "compat") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "velo.lua", velo_src("1h", 5)) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    for (int i = 1; i <= 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        cJSON *al = send_wait(&s, event(&s, id, "tx", "card", "k1", NULL));
        CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 0);
        cJSON_Delete(al);
    }
    long st = 0;
    cJSON *o = put_rule(&s, "velo", velo_src("1h", 3), NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(num(o, "version"), 2);
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/velo", &st);
    CU_ASSERT(state_of(o, 1) && strcmp(state_of(o, 1), "retired") == 0);   /* at once */
    CU_ASSERT(num(version_of(o, 2), "inherits_from") == 1);
    cJSON_Delete(o);
    /* the third event: 3 in the window, two of them from before the swap */
    cJSON *al = send_wait(&s, event(&s, "t3", "tx", "card", "k1", NULL));
    const cJSON *x = only_alert(al, "velo");
    CU_ASSERT(x && num(x, "rule_version") == 2);
    CU_ASSERT(x && alert_count(x) == 3);
    if (x && alert_count(x) != 3) printf("  [%s] count() after the swap: %d, expected 3\n", store_name(), alert_count(x));
    cJSON_Delete(al);
    server_stop(&s);
}

static void test_incompatible_window(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "incompat") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "velo.lua", velo_src("1h", 3)) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    for (int i = 1; i <= 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%d", i);
        cJSON *al = send_wait(&s, event(&s, id, "tx", "card", "k1", NULL));
        CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 0);
        cJSON_Delete(al);
    }
    long st = 0;
    cJSON *o = put_rule(&s, "velo", velo_src("2h", 3), NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT_EQUAL(num(o, "version"), 2);
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/velo", &st);
    CU_ASSERT(state_of(o, 1) && strcmp(state_of(o, 1), "retired") == 0);   /* a sliding window: at once */
    CU_ASSERT(num(version_of(o, 2), "inherits_from") != 1);
    cJSON_Delete(o);
    /* the third event: the compatible change would alert here (count 3); this one counts 1 */
    cJSON *al = send_wait(&s, event(&s, "t3", "tx", "card", "k1", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "velo"), 0);
    cJSON_Delete(al);
    al = send_wait(&s, event(&s, "t4", "tx", "card", "k1", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "velo"), 0);
    cJSON_Delete(al);
    /* the new window filled from the swap on: t3, t4, t5 */
    al = send_wait(&s, event(&s, "t5", "tx", "card", "k1", NULL));
    const cJSON *x = only_alert(al, "velo");
    CU_ASSERT(x && num(x, "rule_version") == 2 && alert_count(x) == 3);
    cJSON_Delete(al);
    server_stop(&s);
}

/* ---- 5. a refused source changes nothing -------------------------------------------------- */

static const char *GUARD_SRC =
    "rule { name = \"guard\", key = \"card\", where = { type = \"g\" }, window = sliding(\"1h\"),\n"
    "       when = ge(count(), 2) }\n";

static char *audit_text(const server *s) {
    long st = 0;
    char *t = req(s, "GET", "/v1/audit?limit=10000", NULL, NULL, &st);
    CU_ASSERT_EQUAL(st, 200);
    return t;
}

static void test_refused(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "refused") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "guard.lua", GUARD_SRC) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    cJSON *al = send_wait(&s, event(&s, "g1", "g", "card", "k1", NULL));
    CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 0);
    cJSON_Delete(al);
    char *before = rules_view(&s), *audit_before = audit_text(&s);
    CU_ASSERT_FATAL(before != NULL);
    long st = 0;
    /* a syntax error: 422 with its line */
    cJSON *o = put_rule(&s, "guard",
                        "rule { name = \"guard\", key = \"card\", where = { type = \"g\" },\n"
                        "       window = sliding(\"1h\"),\n"
                        "       when = ge(count(), 1\n"
                        "}\n",
                        NULL, &st);
    CU_ASSERT_EQUAL(st, 422);
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(o, "errors");
    const cJSON *e0 = cJSON_GetArrayItem(errs, 0);
    CU_ASSERT(cJSON_IsArray(errs) && cJSON_GetArraySize(errs) >= 1);
    CU_ASSERT(num(e0, "line") >= 1 && str(e0, "message") && *str(e0, "message"));
    cJSON_Delete(o);
    /* another name: 409 */
    o = put_rule(&s, "guard",
                 "rule { name = \"other\", key = \"card\", where = { type = \"g\" }, window = sliding(\"1h\"),\n"
                 "       when = ge(count(), 1) }\n", NULL, &st);
    CU_ASSERT_EQUAL(st, 409);
    cJSON_Delete(o);
    /* two rules: 409 */
    o = put_rule(&s, "guard",
                 "rule { name = \"guard\", key = \"card\", where = { type = \"g\" }, window = sliding(\"1h\"),\n"
                 "       when = ge(count(), 1) }\n"
                 "rule { name = \"guard2\", key = \"card\", where = { type = \"g\" }, window = sliding(\"1h\"),\n"
                 "       when = ge(count(), 1) }\n", NULL, &st);
    CU_ASSERT_EQUAL(st, 409);
    cJSON_Delete(o);
    /* a declared version not above the latest (1): 409 */
    o = put_rule(&s, "guard",
                 "rule { name = \"guard\", version = 1, key = \"card\", where = { type = \"g\" },\n"
                 "       window = sliding(\"1h\"), when = ge(count(), 1) }\n", NULL, &st);
    CU_ASSERT_EQUAL(st, 409);
    cJSON_Delete(o);
    char *after = rules_view(&s), *audit_after = audit_text(&s);
    CU_ASSERT(same_text("GET /v1/rules", before, after));
    CU_ASSERT(same_text("GET /v1/audit", audit_before, audit_after));
    free(before);
    free(after);
    free(audit_before);
    free(audit_after);
    /* matching goes on with the running version and its window: g1 + g2 = 2 */
    al = send_wait(&s, event(&s, "g2", "g", "card", "k1", NULL));
    const cJSON *x = only_alert(al, "guard");
    CU_ASSERT(x && num(x, "rule_version") == 1 && alert_count(x) == 2);
    cJSON_Delete(al);
    server_stop(&s);
}

/* ---- 6. delete, mode, rollback, restart ---------------------------------------------------- */

static const char *GONE_SRC =
    "rule { name = \"gone\", key = \"card\", where = { type = \"x\" }, window = sliding(\"1h\"), when = ge(count(), 1) }\n";
static const char *MODAL_SRC =
    "rule { name = \"modal\", key = \"card\", where = { type = \"m\" }, window = sliding(\"1h\"), when = ge(count(), 1) }\n";
static const char *ROLL_V1 =
    "rule { name = \"roll\", key = \"card\", where = { type = \"r\" }, window = sliding(\"1h\"), when = ge(count(), 2) }\n";
static const char *ROLL_V2 =
    "rule { name = \"roll\", key = \"card\", where = { type = \"r\" }, window = sliding(\"1h\"), when = ge(count(), 4) }\n";
static const char *KEEP_SRC =
    "rule { name = \"keep\", key = \"card\", where = { type = \"k\" }, window = sliding(\"1h\"), when = ge(count(), 3) }\n";

/* Wait until the receiver has alert `id` and nothing is pending; 1 when it has. */
static int wait_webhook(const server *s, const receiver *r, const char *id) {
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 10000; vt_sleep_ms(50)) {
        int invalid = 0;
        cJSON *got = received(r, &invalid);
        int has = has_id(got, id);
        cJSON_Delete(got);
        long st = 0;
        char *m = req(s, "GET", "/metrics", NULL, NULL, &st);
        double pending = metric(m, "vigil_outbox_pending", NULL) + metric(m, "vigil_webhook_inflight", NULL);
        free(m);
        if (has && pending <= 0) return 1;
    }
    return 0;
}

static void test_delete_mode_rollback_restart(void) {
    server s;
    receiver rcv;
    CU_ASSERT_FATAL(server_init(&s, "ops") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "gone.lua", GONE_SRC) == 0 && rule_file(&s, "modal.lua", MODAL_SRC) == 0 &&
                    rule_file(&s, "roll.lua", ROLL_V1) == 0 && rule_file(&s, "keep.lua", KEEP_SRC) == 0);
    CU_ASSERT_FATAL(receiver_start(&rcv, &s) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    long st = 0;

    /* DELETE */
    cJSON *al = send_wait(&s, event(&s, "x1", "x", "card", "c1", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "gone"), 1);   /* it runs */
    cJSON_Delete(al);
    free(req(&s, "DELETE", "/v1/rules/gone", NULL, NULL, &st));
    CU_ASSERT_EQUAL(st, 204);
    cJSON *o = get_json(&s, "/v1/rules/gone", &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(o);
    al = send_wait(&s, event(&s, "x2", "x", "card", "c1", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "gone"), 0);
    cJSON_Delete(al);
    al = send_wait(&s, event(&s, "x3", "x", "card", "c2", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "gone"), 0);
    cJSON_Delete(al);
    al = listed_alerts(&s, "gone");
    CU_ASSERT_EQUAL(cJSON_GetArraySize(al), 1);   /* x1's, from before the answer */
    cJSON_Delete(al);
    free(req(&s, "DELETE", "/v1/rules/gone", NULL, NULL, &st));
    CU_ASSERT_EQUAL(st, 404);

    /* mode: shadow alerts are flagged and never reach the webhook receiver */
    o = req_json(&s, "POST", "/v1/rules/modal/mode", "{\"mode\":\"shadow\"}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(str_is(o, "mode", "shadow") && str_is(o, "state", "shadow"));
    cJSON_Delete(o);
    al = send_wait(&s, event(&s, "m1", "m", "card", "c1", NULL));
    const cJSON *x = only_alert(al, "modal");
    CU_ASSERT(x && str_is(x, "mode", "shadow"));
    char shadow_id[40] = "";
    if (x && str(x, "id")) snprintf(shadow_id, sizeof shadow_id, "%s", str(x, "id"));
    cJSON_Delete(al);
    al = listed_alerts(&s, "modal");
    x = cJSON_GetArrayItem(al, 0);
    CU_ASSERT(cJSON_GetArraySize(al) == 1 && str_is(x, "mode", "shadow") && str_is(x, "id", shadow_id));
    cJSON_Delete(al);
    o = req_json(&s, "POST", "/v1/rules/modal/mode", "{\"mode\":\"active\"}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(str_is(o, "mode", "active") && str_is(o, "state", "active"));
    cJSON_Delete(o);
    al = send_wait(&s, event(&s, "m2", "m", "card", "c2", NULL));
    x = only_alert(al, "modal");
    CU_ASSERT(x && str_is(x, "mode", "active"));
    char active_id[40] = "";
    if (x && str(x, "id")) snprintf(active_id, sizeof active_id, "%s", str(x, "id"));
    cJSON_Delete(al);
    /* once the active alert (later than the shadow one) is delivered and nothing is pending */
    CU_ASSERT(wait_webhook(&s, &rcv, active_id));
    int invalid = 0;
    cJSON *got = received(&rcv, &invalid);
    CU_ASSERT_EQUAL(invalid, 0);
    CU_ASSERT(shadow_id[0] && !has_id(got, shadow_id));
    CU_ASSERT(has_id(got, active_id));
    cJSON_Delete(got);

    /* rollback: version 1's source as version 3 */
    o = put_rule(&s, "roll", ROLL_V2, NULL, &st);
    CU_ASSERT(st == 200 && num(o, "version") == 2);
    cJSON_Delete(o);
    o = req_json(&s, "POST", "/v1/rules/roll/rollback", "{\"version\":7}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(o);
    o = req_json(&s, "POST", "/v1/rules/roll/rollback", "{\"version\":1}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(num(o, "version") == 3 && str_is(o, "state", "active"));
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/roll", &st);
    CU_ASSERT(num(o, "version") == 3);
    CU_ASSERT(str(version_of(o, 3), "source") && strcmp(str(version_of(o, 3), "source"), ROLL_V1) == 0);
    CU_ASSERT(str(version_of(o, 3), "sha256") && str(version_of(o, 1), "sha256") &&
              strcmp(str(version_of(o, 3), "sha256"), str(version_of(o, 1), "sha256")) == 0);
    cJSON_Delete(o);
    /* alerts of fresh keys from now on: the ids of version 1's source at version 3 */
    char rpath[800], rsrc[800], rout[800], rlog[800];
    snprintf(rpath, sizeof rpath, "%s/roll-events.ndjson", s.root);
    snprintf(rsrc, sizeof rsrc, "%s/roll-v1.lua", s.root);
    snprintf(rout, sizeof rout, "%s/roll-replay.jsonl", s.root);
    snprintf(rlog, sizeof rlog, "%s/roll-replay.log", s.root);
    FILE *rf = fopen(rpath, "w");
    CU_ASSERT_FATAL(rf != NULL);
    refs served = {0}, want = {0};
    for (int i = 0; i < 7; i++) {
        char id[16], key[16];
        snprintf(id, sizeof id, "e%06d", i);   /* event_index() reads it back */
        snprintf(key, sizeof key, "rk%d", i % 2);
        const char *ev = event(&s, id, "r", "card", key, NULL);
        fprintf(rf, "%s\n", ev);
        al = send_wait(&s, ev);
        cJSON_ArrayForEach(x, al)
            if (str_is(x, "rule", "roll")) refs_add(&served, str(x, "id"), num(x, "rule_version"), i);
        cJSON_Delete(al);
    }
    CU_ASSERT_FATAL(fclose(rf) == 0);
    CU_ASSERT_FATAL(write_file(rsrc, ROLL_V1) == 0);
    const char *rv[] = {VIGIL_BIN, "replay", "--rules", rsrc, "--rule-version", "roll=3", "--input", rpath,
                        "--output", rout, NULL};
    CU_ASSERT_EQUAL(run(rv, rlog, 30000), 0);
    CU_ASSERT_EQUAL(replay_refs(rout, "roll", &want), 0);
    int v3 = 1;
    for (size_t i = 0; i < served.n; i++) v3 &= served.v[i].version == 3;
    CU_ASSERT(v3);
    CU_ASSERT_EQUAL(served.n, 5);   /* rk0: r2, r4, r6; rk1: r3, r5 (count >= 2) */
    refs_sort(&served, "roll");
    refs_sort(&want, "roll replay");
    CU_ASSERT(refs_equal(&served, &want, 0, FEED_N, "roll v3 vs replay of v1's source at version 3", 1));
    free(served.v);
    free(want.v);

    /* restart on the same store: rules, audit and a compatible window survive */
    for (int i = 1; i <= 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "k%d", i);
        al = send_wait(&s, event(&s, id, "k", "card", "kk", NULL));
        CU_ASSERT_EQUAL(count_alerts(al, "keep"), 0);
        cJSON_Delete(al);
    }
    /* and a mode to keep: keep runs in shadow across the restart */
    o = req_json(&s, "POST", "/v1/rules/keep/mode", "{\"mode\":\"shadow\"}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    cJSON_Delete(o);
    char *view = rules_view(&s), *audit = audit_text(&s);
    CU_ASSERT_FATAL(view != NULL && audit != NULL);
    server_stop(&s);
    if (store == STORE_REDIS) {   /* a fresh data dir: what survives came from Redis */
        snprintf(s.data, sizeof s.data, "%s/data-2", s.root);
    }
    CU_ASSERT_FATAL(server_start(&s) == 0);
    char *view2 = rules_view(&s), *audit2 = audit_text(&s);
    CU_ASSERT(same_text("GET /v1/rules across the restart", view, view2));
    /* every entry kept: the entries before are the first entries after */
    cJSON *ab = cJSON_Parse(audit), *aa = cJSON_Parse(audit2);
    const cJSON *eb = cJSON_GetObjectItemCaseSensitive(ab, "entries"), *ea = cJSON_GetObjectItemCaseSensitive(aa, "entries");
    int nb = cJSON_GetArraySize(eb), na = cJSON_GetArraySize(ea), kept = nb > 0 && na >= nb;
    for (int i = 0; kept && i < nb; i++)
        kept = cJSON_Compare(cJSON_GetArrayItem(eb, i), cJSON_GetArrayItem(ea, i), 1);
    printf("  [%s] audit: %d entries before the restart, %d after\n", store_name(), nb, na);
    CU_ASSERT(kept);
    if (!kept) printf("    before: %s\n    after:  %s\n", audit, audit2);
    int actions[5] = {0};   /* put delete mode rollback reload */
    const char *names[] = {"put", "delete", "mode", "rollback", "reload"};
    const cJSON *e;
    cJSON_ArrayForEach(e, ea)
        for (int k = 0; k < 5; k++) actions[k] += str_is(e, "action", names[k]);
    CU_ASSERT(actions[0] == 1 && actions[1] == 1 && actions[2] == 3 && actions[3] == 1 && actions[4] == 4);
    if (!(actions[0] == 1 && actions[1] == 1 && actions[2] == 3 && actions[3] == 1 && actions[4] == 4))
        printf("  audit actions after the restart: put %d, delete %d, mode %d, rollback %d, reload %d; expected "
               "1, 1, 3, 1, 4\n", actions[0], actions[1], actions[2], actions[3], actions[4]);
    cJSON_Delete(ab);
    cJSON_Delete(aa);
    o = get_json(&s, "/v1/rules/gone", &st);
    CU_ASSERT_EQUAL(st, 404);   /* still deleted: its file did not change */
    cJSON_Delete(o);
    al = send_wait(&s, event(&s, "k3", "k", "card", "kk", NULL));
    x = only_alert(al, "keep");
    CU_ASSERT(x && alert_count(x) == 3);   /* k1 and k2 came before the restart */
    CU_ASSERT(x && str_is(x, "mode", "shadow"));
    cJSON_Delete(al);
    free(view);
    free(view2);
    free(audit);
    free(audit2);
    server_stop(&s);
    vt_kill(rcv.p, SIGTERM);
}

/* ---- 7. the rules directory: SIGHUP and --watch ------------------------------------------- */

static const char *dir_src(const char *name, int threshold) {
    static char buf[256];
    snprintf(buf, sizeof buf,
             "rule { name = \"%s\", key = \"card\", where = { type = \"%s\" }, window = sliding(\"1h\"),\n"
             "       when = ge(count(), %d) }\n", name, name, threshold);
    return buf;
}

/* SIGHUP, then wait for the reload's summary line. 1 when it came. */
static int hup(server *s) {
    int n = log_count(s->log, "vigil: reload (SIGHUP)");
    CU_ASSERT_FATAL(kill(s->p->pid, SIGHUP) == 0);
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < RELOAD_TIMEOUT_MS; vt_sleep_ms(20))
        if (log_count(s->log, "vigil: reload (SIGHUP)") > n) return 1;
    return 0;
}

static void dir_reload(int watch) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, watch ? "watch" : "hup") == 0);
    s.watch = watch;
    CU_ASSERT_FATAL(rule_file(&s, "da.lua", dir_src("da", 3)) == 0 && rule_file(&s, "db.lua", dir_src("db", 3)) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    int timeout = watch ? WATCH_TIMEOUT_MS : 0;
    /* edit a file: a new version of its rule */
    CU_ASSERT_FATAL(rule_file(&s, "da.lua", dir_src("da", 2)) == 0);
    if (!watch) CU_ASSERT(hup(&s));
    long long t = poll_rule(&s, "da", 2, NULL, 200, timeout);
    CU_ASSERT(t >= 0);
    printf("  [%s, %s] edited file: version 2 %s (%lld ms)\n", store_name(), watch ? "watch" : "SIGHUP",
           t >= 0 ? "seen" : "not seen", t);
    cJSON *o = get_json(&s, "/v1/rules/da", &(long){0});
    CU_ASSERT(str(version_of(o, 2), "source") && strcmp(str(version_of(o, 2), "source"), dir_src("da", 2)) == 0);
    CU_ASSERT(state_of(o, 1) && strcmp(state_of(o, 1), "retired") == 0);
    cJSON_Delete(o);
    /* add a file: a new rule */
    CU_ASSERT_FATAL(rule_file(&s, "dc.lua", dir_src("dc", 1)) == 0);
    if (!watch) CU_ASSERT(hup(&s));
    t = poll_rule(&s, "dc", 1, NULL, 200, timeout);
    CU_ASSERT(t >= 0);
    cJSON *al = send_wait(&s, event(&s, "c1", "dc", "card", "k1", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "dc"), 1);
    cJSON_Delete(al);
    /* remove a file: its rule is deleted */
    char p[800];
    snprintf(p, sizeof p, "%s/db.lua", s.rules);
    CU_ASSERT_FATAL(unlink(p) == 0);
    if (!watch) CU_ASSERT(hup(&s));
    t = poll_rule(&s, "db", 0, NULL, 404, timeout);
    CU_ASSERT(t >= 0);
    /* a syntax error: refused and logged, the running rules stay */
    char *before = rules_view(&s);
    snprintf(p, sizeof p, "%s/da.lua", s.rules);
    CU_ASSERT_FATAL(write_file(p, "rule { name = \"da\", key = \"card\",\n  when = ge(count(), 2\n") == 0);
    char refused[900];
    snprintf(refused, sizeof refused, "reload: %s refused", p);
    if (!watch) CU_ASSERT(hup(&s));
    int logged = 0;
    for (long long t0 = vt_now_ms(); !logged && vt_now_ms() - t0 < (watch ? WATCH_TIMEOUT_MS : RELOAD_TIMEOUT_MS);
         vt_sleep_ms(20))
        logged = log_count(s.log, refused) > 0;
    CU_ASSERT(logged);
    if (!logged) vt_dump_log(s.log, LOG_TAIL);
    char *after = rules_view(&s);
    CU_ASSERT(same_text("GET /v1/rules after a refused file", before, after));
    free(before);
    free(after);
    al = send_wait(&s, event(&s, "a1", "da", "card", "k1", NULL));
    CU_ASSERT_EQUAL(count_alerts(al, "da"), 0);
    cJSON_Delete(al);
    al = send_wait(&s, event(&s, "a2", "da", "card", "k1", NULL));   /* version 2: count >= 2 */
    const cJSON *x = only_alert(al, "da");
    CU_ASSERT(x && num(x, "rule_version") == 2);
    cJSON_Delete(al);
    CU_ASSERT(vt_alive(s.p));
    server_stop(&s);
}


/* ---- 8. explain (issue 12): GET /v1/keys/{field}/{value} -------------------------- */

static double agg_of(const cJSON *rule, const char *label) {
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(rule, "window");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(w, "aggregates"), label);
    return cJSON_IsNumber(a) ? a->valuedouble : -1;
}

static const cJSON *rule_in(const cJSON *explain, const char *name) {
    const cJSON *r;
    cJSON_ArrayForEach(r, cJSON_GetObjectItemCaseSensitive(explain, "rules"))
        if (str_is(r, "name", name)) return r;
    return NULL;
}

/* The numbers explain gives equal what the events imply: a sliding window's
 * entries, count() and sum() now and as prior(), a pattern's open runs
 * with their events; the same after a restart on the same store (Redis:
 * loaded from Redis, not from memory); 404 for a key without state. */
static void check_explain(server *s, const char *when) {
    long st = 0;
    cJSON *o = get_json(s, "/v1/keys/card/k9", &st);
    CU_ASSERT_EQUAL(st, 200);
    const cJSON *w = rule_in(o, "amt"), *p = rule_in(o, "pat");
    CU_ASSERT_FATAL(w && p);
    const cJSON *win = cJSON_GetObjectItemCaseSensitive(w, "window");
    CU_ASSERT(num(win, "entries") == 3);
    CU_ASSERT(agg_of(w, "count()") == 3 && agg_of(w, "prior(count())") == 2);
    CU_ASSERT(agg_of(w, "sum(\"amount\")") == 60 && agg_of(w, "prior(sum(\"amount\"))") == 30);
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(p, "runs");
    CU_ASSERT(cJSON_GetArraySize(runs) == 2);   /* each "a" starts a run; no "b" yet */
    const cJSON *r0 = cJSON_GetArrayItem(runs, 0);
    CU_ASSERT(str_is(r0, "step", "a"));
    const cJSON *evs = cJSON_GetObjectItemCaseSensitive(r0, "events");
    CU_ASSERT(cJSON_GetArraySize(evs) == 1 && cJSON_IsString(cJSON_GetArrayItem(evs, 0)) &&
              strcmp(cJSON_GetArrayItem(evs, 0)->valuestring, "x1") == 0);
    CU_ASSERT(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(r0, "expires")));
    if (!(num(win, "entries") == 3 && agg_of(w, "count()") == 3))
        printf("  [%s, %s] explain: %s\n", store_name(), when, cJSON_PrintUnformatted(o));
    cJSON_Delete(o);
    o = get_json(s, "/v1/keys/card/nobody", &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(o);
    o = get_json(s, "/v1/keys/nofield/k9", &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(o);
}

static void test_explain(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "explain") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "amt.lua", "rule { name = \"amt\", key = \"card\", where = { type = \"tx\" },\n"
                                             "  window = sliding(\"1h\"), when = all_of{ ge(count(), 5), ge(sum(\"amount\"), 1000) } }\n") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "pat.lua", "rule { name = \"pat\", key = \"card\", pattern = begin(\"a\"):where{ type = \"a\" }\n"
                                             "  :followed_by(\"b\"):where{ type = \"b\" }, within = \"1h\" }\n") == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    const char *evs[][3] = {{"x1", "a", NULL}, {"t1", "tx", "\"amount\":10"}, {"t2", "tx", "\"amount\":20"},
                            {"x2", "a", NULL}, {"t3", "tx", "\"amount\":30"}};
    for (int i = 0; i < 5; i++) cJSON_Delete(send_wait(&s, event(&s, evs[i][0], evs[i][1], "card", "k9", evs[i][2])));
    check_explain(&s, "before the restart");
    server_stop(&s);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    check_explain(&s, "after the restart");
    server_stop(&s);
}

/* ---- 9. snoozes (issue 12) ------------------------------------------------------------ */

/* A snooze holds (no alert of that rule and key, others alert), shows in
 * explain and the audit, survives a restart, then expires. */
static void test_snooze(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "snooze") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "one.lua", "rule { name = \"one\", key = \"card\", window = sliding(\"1h\"),\n"
                                             "  when = ge(count(), 1) }\n") == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    char until[40], body[200];
    vigil_time_format_rfc3339(vigil_now_ms() + 6000, until, sizeof until);
    snprintf(body, sizeof body, "{\"key\":\"k1\",\"until\":\"%s\",\"reason\":\"known good\"}", until);
    long st = 0;
    cJSON *o = req_json(&s, "POST", "/v1/rules/one/snooze", body, "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    cJSON_Delete(o);
    o = req_json(&s, "POST", "/v1/rules/none/snooze", body, "application/json", &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(o);
    o = req_json(&s, "POST", "/v1/rules/one/snooze", "{\"key\":\"k1\",\"until\":\"2001-01-01T00:00:00Z\"}",
                 "application/json", &st);
    CU_ASSERT_EQUAL(st, 400);
    cJSON_Delete(o);
    for (int round = 0; round < 2; round++) {   /* before and after a restart */
        char id[16];
        snprintf(id, sizeof id, "s%d", round);
        cJSON *al = send_wait(&s, event(&s, id, "tx", "card", "k1", NULL));
        CU_ASSERT_EQUAL(count_alerts(al, "one"), 0);
        cJSON_Delete(al);
        snprintf(id, sizeof id, "o%d", round);
        al = send_wait(&s, event(&s, id, "tx", "card", "k2", NULL));   /* another key alerts */
        CU_ASSERT_EQUAL(count_alerts(al, "one"), 1);
        cJSON_Delete(al);
        o = get_json(&s, "/v1/keys/card/k1", &st);
        const cJSON *r = rule_in(o, "one");
        CU_ASSERT(r && str(r, "snoozed_until") && str_is(r, "snooze_reason", "known good"));
        cJSON_Delete(o);
        if (round == 0) {
            server_stop(&s);
            CU_ASSERT_FATAL(server_start(&s) == 0);
        }
    }
    o = get_json(&s, "/v1/audit", &st);
    int snoozes = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "entries")) snoozes += str_is(e, "action", "snooze");
    CU_ASSERT_EQUAL(snoozes, 1);
    cJSON_Delete(o);
    long long deadline = vigil_now_ms() + 15000;   /* expired: it alerts again */
    int alerted = 0;
    for (int i = 0; !alerted && vigil_now_ms() < deadline; i++) {
        char id[16];
        snprintf(id, sizeof id, "late%d", i);
        cJSON *al = send_wait(&s, event(&s, id, "tx", "card", "k1", NULL));
        alerted = count_alerts(al, "one") == 1;
        cJSON_Delete(al);
        if (!alerted) vt_sleep_ms(500);
    }
    CU_ASSERT(alerted);
    server_stop(&s);
}

/* ---- 10. lists over the API (issue 12) ------------------------------------------------- */

static int alerts_of(server *s, const char *id, const char *terminal) {
    char extra[64];
    snprintf(extra, sizeof extra, "\"terminal\":\"%s\"", terminal);
    cJSON *al = send_wait(s, event(s, id, "tx", "card", id, extra));
    int n = count_alerts(al, "blocked_term");
    cJSON_Delete(al);
    return n;
}

/* A list sent to the API replaces its file at once (the next event is
 * matched against it), is versioned (the same text: no new version), is
 * audited and survives a restart. */
static void test_lists(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "lists") == 0);
    char ldir[800], lfile[900];
    snprintf(ldir, sizeof ldir, "%s/lists", s.rules);
    CU_ASSERT_FATAL(mkdir(ldir, 0700) == 0);
    snprintf(lfile, sizeof lfile, "%s/blocked.txt", ldir);
    CU_ASSERT_FATAL(write_file(lfile, "t1\nt2\n") == 0);
    CU_ASSERT_FATAL(rule_file(&s, "b.lua", "rule { name = \"blocked_term\", key = \"card\",\n"
                                           "  pattern = begin(\"x\"):where{ terminal = in_list(\"blocked\") } }\n") == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    CU_ASSERT_EQUAL(alerts_of(&s, "a1", "t1"), 1);   /* the file */
    CU_ASSERT_EQUAL(alerts_of(&s, "a2", "t3"), 0);
    long st = 0;
    cJSON *o = req_json(&s, "PUT", "/v1/lists/blocked", "# now\nt3\nt4\n", "text/plain", &st);
    CU_ASSERT_EQUAL(st, 201);
    CU_ASSERT(num(o, "version") == 1 && num(o, "values") == 2);
    cJSON_Delete(o);
    o = req_json(&s, "PUT", "/v1/lists/blocked", "# now\nt3\nt4\n", "text/plain", &st);
    CU_ASSERT_EQUAL(st, 200);   /* the same text: no new version */
    CU_ASSERT(num(o, "version") == 1);
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(alerts_of(&s, "a3", "t1"), 0);   /* the API's list from the next event on */
    CU_ASSERT_EQUAL(alerts_of(&s, "a4", "t3"), 1);
    o = req_json(&s, "PUT", "/v1/lists/blocked", "t1\n", "text/plain", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(num(o, "version") == 2);
    cJSON_Delete(o);
    CU_ASSERT_EQUAL(alerts_of(&s, "a5", "t1"), 1);
    server_stop(&s);
    CU_ASSERT_FATAL(server_start(&s) == 0);   /* the stored version 2, not the file */
    CU_ASSERT_EQUAL(alerts_of(&s, "a6", "t1"), 1);
    CU_ASSERT_EQUAL(alerts_of(&s, "a7", "t3"), 0);
    CU_ASSERT_EQUAL(alerts_of(&s, "a8", "t2"), 0);
    o = get_json(&s, "/v1/lists/blocked", &st);
    CU_ASSERT(st == 200 && num(o, "version") == 2 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "versions")) == 2);
    cJSON_Delete(o);
    o = get_json(&s, "/v1/audit", &st);
    int lists = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(o, "entries")) lists += str_is(e, "action", "list");
    CU_ASSERT_EQUAL(lists, 2);
    cJSON_Delete(o);
    server_stop(&s);
}

/* ---- 11. a shadow beside the active version: compare, promote (issue 12) --------------- */

/* (key, completing event) of every alert of `rule` in a replay's output. */
static int replay_pairs(const char *path, const char *rule, char (*out)[64], int max) {
    char *t = slurp(path, NULL);
    int n = 0;
    for (char *line = t, *nl; t && *line && n < max; line = nl + 1) {
        if (!(nl = strchr(line, '\n'))) break;
        *nl = '\0';
        cJSON *o = cJSON_Parse(line);
        if (o && str_is(o, "rule", rule)) snprintf(out[n++], 64, "%s/%s", str(o, "key"), str(o, "event"));
        cJSON_Delete(o);
    }
    free(t);
    return n;
}

static int has_pair(char (*v)[64], int n, const char *p) {
    for (int i = 0; i < n; i++)
        if (strcmp(v[i], p) == 0) return 1;
    return 0;
}

/* The shadow starts before the events; compare's three counts equal what
 * separate replays of the two versions give on the same events; promote
 * makes the shadow the active version with nothing lost: every event after
 * it alerts under the promoted version, active, and compare is over. */
static void test_shadow_compare(void) {
    server s;
    CU_ASSERT_FATAL(server_init(&s, "shadow") == 0);
    const char *v1 = "rule { name = \"spend\", key = \"card\", where = { type = \"tx\" }, window = sliding(\"1h\"),\n"
                     "  when = ge(sum(\"amount\"), 300) }\n";
    const char *v2 = "rule { name = \"spend\", key = \"card\", where = { type = \"tx\" }, window = sliding(\"1h\"),\n"
                     "  when = all_of{ ge(sum(\"amount\"), 200), ge(count(), 2) } }\n";
    CU_ASSERT_FATAL(rule_file(&s, "spend.lua", v1) == 0);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    long st = 0;
    cJSON *o = put_rule(&s, "spend", v2, "?mode=shadow", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(num(o, "version") == 2 && str_is(o, "mode", "shadow"));
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/spend", &st);
    CU_ASSERT(num(o, "version") == 1 && num(o, "shadow_version") == 2);
    cJSON_Delete(o);
    /* 400 events over 20 cards, amounts 1..150, one NDJSON body per 100 */
    char evpath[900];
    snprintf(evpath, sizeof evpath, "%s/events.ndjson", s.root);
    FILE *f = fopen(evpath, "w");
    CU_ASSERT_FATAL(f != NULL);
    prng_state = 11;
    char *body = malloc(1 << 16);
    size_t bl = 0;
    for (int i = 0; i < 400; i++) {
        char card[16], id[16], extra[48];
        snprintf(card, sizeof card, "c%u", prng() % 20);
        snprintf(id, sizeof id, "s%03d", i);
        snprintf(extra, sizeof extra, "\"amount\":%u", 1 + prng() % 150);
        const char *ev = event(&s, id, "tx", "card", card, extra);
        fprintf(f, "%s\n", ev);
        bl += (size_t)sprintf(body + bl, "%s\n", ev);
        if (i % 100 == 99) {
            char *r = req(&s, "POST", "/v1/events", body, "application/x-ndjson", &st);
            CU_ASSERT_EQUAL(st, 202);
            free(r);
            bl = 0;
        }
    }
    fclose(f);
    free(body);
    /* the replays of each version over the same events */
    char f1[900], f2[900], o1[900], o2[900];
    snprintf(f1, sizeof f1, "%s/v1.lua", s.root);
    snprintf(f2, sizeof f2, "%s/v2.lua", s.root);
    snprintf(o1, sizeof o1, "%s/v1.jsonl", s.root);
    snprintf(o2, sizeof o2, "%s/v2.jsonl", s.root);
    CU_ASSERT_FATAL(write_file(f1, v1) == 0 && write_file(f2, v2) == 0);
    const char *r1[] = {VIGIL_BIN, "replay", "--rules", f1, "--input", evpath, "--output", o1, NULL};
    const char *r2[] = {VIGIL_BIN, "replay", "--rules", f2, "--input", evpath, "--output", o2, NULL};
    CU_ASSERT_FATAL(run(r1, NULL, 30000) == 0 && run(r2, NULL, 30000) == 0);
    static char a[2000][64], b[2000][64];
    int na = replay_pairs(o1, "spend", a, 2000), nb = replay_pairs(o2, "spend", b, 2000);
    int both = 0;
    for (int i = 0; i < nb; i++) both += has_pair(a, na, b[i]);
    int want[3] = {na - both, nb - both, both};
    CU_ASSERT(na > 0 && nb > na);   /* the data makes the versions differ */
    /* compare, once the server processed everything */
    int got[3] = {-1, -1, -1};
    long long deadline = vt_now_ms() + 10000;
    while (vt_now_ms() < deadline) {
        o = get_json(&s, "/v1/rules/spend/compare", &st);
        got[0] = num(o, "active_only"), got[1] = num(o, "shadow_only"), got[2] = num(o, "both");
        cJSON_Delete(o);
        if (got[0] == want[0] && got[1] == want[1] && got[2] == want[2]) break;
        vt_sleep_ms(100);
    }
    CU_ASSERT(got[0] == want[0] && got[1] == want[1] && got[2] == want[2]);
    if (!(got[0] == want[0] && got[1] == want[1] && got[2] == want[2]))
        printf("  [%s] compare: active only %d, shadow only %d, both %d; replays: %d, %d, %d\n", store_name(), got[0],
               got[1], got[2], want[0], want[1], want[2]);
    o = put_rule(&s, "spend", v1, NULL, &st);   /* the same active source: no change */
    cJSON_Delete(o);
    o = req_json(&s, "POST", "/v1/rules/spend/mode", "{\"mode\":\"shadow\"}", "application/json", &st);
    CU_ASSERT_EQUAL(st, 409);
    cJSON_Delete(o);
    /* counts survive a restart */
    vt_sleep_ms(1300);   /* stored once a second */
    server_stop(&s);
    CU_ASSERT_FATAL(server_start(&s) == 0);
    o = get_json(&s, "/v1/rules/spend/compare", &st);
    CU_ASSERT(st == 200 && num(o, "both") == want[2] && num(o, "shadow_only") == want[1]);
    cJSON_Delete(o);
    o = req_json(&s, "POST", "/v1/rules/spend/promote", "", "application/json", &st);
    CU_ASSERT_EQUAL(st, 200);
    CU_ASSERT(num(o, "version") == 2 && str_is(o, "mode", "active"));
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/spend", &st);
    CU_ASSERT(num(o, "version") == 2 && !cJSON_GetObjectItemCaseSensitive(o, "shadow_version"));
    CU_ASSERT(state_of(o, 1) && strcmp(state_of(o, 1), "retired") == 0);
    cJSON_Delete(o);
    o = get_json(&s, "/v1/rules/spend/compare", &st);
    CU_ASSERT_EQUAL(st, 404);
    cJSON_Delete(o);
    /* a card with 150 + 60 in the hour: v2 (>= 200, 2 events) alerts, active */
    cJSON_Delete(send_wait(&s, event(&s, "p1", "tx", "card", "fresh", "\"amount\":150")));
    cJSON *al = send_wait(&s, event(&s, "p2", "tx", "card", "fresh", "\"amount\":60"));
    const cJSON *x = only_alert(al, "spend");
    CU_ASSERT(x && num(x, "rule_version") == 2 && str_is(x, "mode", "active"));
    cJSON_Delete(al);
    server_stop(&s);
}

static void test_sighup_reload(void) { dir_reload(0); }
static void test_watch_reload(void) { dir_reload(1); }

/* ---- suites ---------------------------------------------------------------------------- */

static int suite_memory(void) {
    store = STORE_MEMORY;
    return 0;
}

static int suite_redis(void) {
    store = STORE_REDIS;
    redis_port = 0;
    redis = vt_start_redis(&redis_port, dir);
    return redis ? 0 : -1;
}

static int suite_redis_done(void) {
    vt_kill(redis, SIGTERM);
    redis = NULL;
    return 0;
}

static int add_tests(CU_pSuite su) {
    return su && CU_add_test(su, "1. a PUT during a 20k events/s feed: unchanged rules = replay, a swap point k",
                             test_put_during_feed) &&
           CU_add_test(su, "2. an incompatible pattern change drains under the old version, then retires",
                       test_drain_pattern) &&
           CU_add_test(su, "3. a compatible window change keeps the window's contents", test_compatible_window) &&
           CU_add_test(su, "4. an incompatible window change starts empty", test_incompatible_window) &&
           CU_add_test(su, "5. a refused source (422, 409) changes nothing", test_refused) &&
           CU_add_test(su, "6. DELETE, mode, rollback and a restart on the same store",
                       test_delete_mode_rollback_restart) &&
           CU_add_test(su, "7a. the rules directory on SIGHUP", test_sighup_reload) &&
           CU_add_test(su, "7b. the rules directory with --watch", test_watch_reload) &&
           CU_add_test(su, "8. explain: GET /v1/keys/{field}/{value}, also after a restart", test_explain) &&
           CU_add_test(su, "9. a snooze holds, survives a restart, then expires", test_snooze) &&
           CU_add_test(su, "10. a list sent to the API replaces its file at once, versioned, kept", test_lists) &&
           CU_add_test(su, "11. a shadow beside the active version: compare = replays; promote", test_shadow_compare);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    const char *unset[] = {"VIGIL_NATS", "VIGIL_REDIS", "VIGIL_RULES", "VIGIL_LISTEN", "VIGIL_FAULT",
                           "VIGIL_CONFIG", "VIGIL_DATA_DIR", "VIGIL_WORKERS", "VIGIL_WEBHOOKS",
                           "VIGIL_MAX_OUT_OF_ORDERNESS", "VIGIL_IDLE_TIMEOUT", "VIGIL_REDIS_PREFIX"};
    for (size_t i = 0; i < sizeof unset / sizeof unset[0]; i++) unsetenv(unset[i]);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    if (!(dir = vt_tmpdir())) return 1;
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite mem = CU_add_suite("hot reload, memory store (data dir)", suite_memory, NULL);
    CU_pSuite red = CU_add_suite("hot reload, redis store", suite_redis, suite_redis_done);
    if (!add_tests(mem) || !add_tests(red)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    long long t0 = vt_now_ms();
    CU_basic_run_tests();
    printf("test_reload: %.1f s\n", (double)(vt_now_ms() - t0) / 1000.0);
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    free(dir);
    return failures != 0;
}

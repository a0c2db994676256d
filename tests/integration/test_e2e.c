/* test_e2e.c — end to end on the real card data: replay is the reference,
 * the server must agree with it.
 *
 * A slice of the real feed (the first 12 days of transactions, about 115k
 * rows, and the fraud reports of the same days) is cut from ../shared/data
 * into a scratch directory. `vigil replay` over the slice gives the
 * reference: the set of alert ids (ids are deterministic, DESIGN.md §3), and
 * the subset in mode "active". Then the same slice goes through the real
 * server, twice:
 *
 *  - NATS + Redis + webhook: `vigil feed --nats` into `vigil serve` with the
 *    Redis store, two workers and a Standard Webhooks receiver
 *    (tests/tools/webhook_receiver.c) that checks every signature. The
 *    webhook ids must be exactly the replay's active alerts (no shadow alert,
 *    no duplicate, nothing missing); the NATS outputs vigil.alerts.<rule> and
 *    vigil.shadow.<rule> must carry the active and the shadow alerts; per-key
 *    state must be in Redis under vigil:{<key field>}:k:<key>; GET /v1/alerts
 *    must list the alerts; SIGTERM must stop the server cleanly.
 *  - HTTP: `vigil feed --http` (NDJSON batches) into a fresh server with the
 *    memory store: same equality on the webhook ids. The same server then
 *    gets a malformed NDJSON batch (400 problem+json naming line 2, nothing
 *    applied), an event without its time field (400 naming the field), and
 *    one event with ?wait=MS (200 with its large_amount alert).
 *
 * Without the data the test prints SKIP and passes, except under CI=true,
 * where missing data is a failure. Every wait is bounded; on a failure the
 * server's log is printed. The whole test takes about 15 s on 2 cores. */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <hiredis/hiredis.h>
#include <nats/nats.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "vigil/ruleset.h"
#include <sys/wait.h>
#include <zlib.h>

#include "harness.h"

#ifndef VIGIL_BINARY_DIR
#define VIGIL_BINARY_DIR "build"
#endif
#ifndef VIGIL_SOURCE_DIR
#define VIGIL_SOURCE_DIR "."
#endif

#define TX_DATA "fdh-transactions-2018-04-to-07.csv.gz"
#define REPORT_DATA "fdh-fraud-reports-2018-04-to-07.csv.gz"
#define CUTOFF "2018-04-13"                  /* keep event times before this day */
#define SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define TIME_FIELDS "tx_datetime,report_datetime"
#define ID_FIELDS "transaction_id,report_id"
#define RULES VIGIL_SOURCE_DIR "/rules/fraud"
#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define RECEIVER_BIN VIGIL_BINARY_DIR "/webhook_receiver"

#define RUN_TIMEOUT_MS 60000      /* replay or feed of the slice (takes ~1 s) */
#define START_TIMEOUT_MS 15000    /* a server printing its port */
#define SETTLE_TIMEOUT_MS 120000  /* everything fed is processed and delivered */
#define QUIET_MS 1000             /* no counter moved for this long: settled */
#define STALL_MS 5000             /* ... or for this long with fewer lines than expected */
#define STOP_TIMEOUT_MS 10000     /* SIGTERM to exit */
#define LOG_TAIL 6000
#define EXAMPLES 5

/* ---- the slice and the reference ---------------------------------------------- */

static char *dir;
static char tx_csv[512], report_csv[512];
static long n_tx, n_reports;                 /* data rows in the slice files */
static char first_customer[32], last_customer[32], last_terminal[32];
static long distinct_customers, distinct_terminals;

/* A set of alert ids with a short description of each (for failure reports). */
typedef struct ident {
    char id[33];
    char desc[112];
} ident;
typedef struct idset {
    ident *v;
    size_t n, cap;
} idset;

static idset ref_all, ref_active, ref_shadow;
static int have_ref;

static void set_add(idset *s, const char *id, const char *desc)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 256;
        ident *nv = realloc(s->v, cap * sizeof *nv);
        if (!nv)
            abort();
        s->v = nv;
        s->cap = cap;
    }
    snprintf(s->v[s->n].id, sizeof s->v[s->n].id, "%s", id);
    snprintf(s->v[s->n].desc, sizeof s->v[s->n].desc, "%s", desc ? desc : "");
    s->n++;
}

static void set_free(idset *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int ident_cmp(const void *a, const void *b)
{
    return strcmp(((const ident *)a)->id, ((const ident *)b)->id);
}

/* Sort and drop repeated ids; returns how many repeats there were. */
static size_t set_normalize(idset *s)
{
    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof *s->v, ident_cmp);
    size_t w = 1, dups = 0;
    for (size_t r = 1; r < s->n; r++) {
        if (strcmp(s->v[r].id, s->v[w - 1].id) == 0) {
            if (dups < EXAMPLES)
                printf("    duplicate: %s (%s)\n", s->v[r].id, s->v[r].desc);
            dups++;
            continue;
        }
        s->v[w++] = s->v[r];
    }
    s->n = w;
    return dups;
}

static const ident *set_find(const idset *s, const char *id)
{
    ident key;
    snprintf(key.id, sizeof key.id, "%s", id);
    return s->n ? bsearch(&key, s->v, s->n, sizeof *s->v, ident_cmp) : NULL;
}

/* Both sets normalized. Prints the counts of missing and extra ids, with a
 * few examples of each; returns 1 when the sets are equal. */
static int set_equal(const char *what, const idset *got, const idset *want)
{
    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < want->n; i++)
        if (!set_find(got, want->v[i].id)) {
            if (missing < EXAMPLES)
                printf("    %s: missing %s (%s)\n", what, want->v[i].id, want->v[i].desc);
            missing++;
        }
    for (size_t i = 0; i < got->n; i++)
        if (!set_find(want, got->v[i].id)) {
            if (extra < EXAMPLES)
                printf("    %s: unexpected %s (%s)\n", what, got->v[i].id, got->v[i].desc);
            extra++;
        }
    printf("  %s: %zu alert ids, expected %zu: %zu missing, %zu unexpected\n", what, got->n, want->n,
           missing, extra);
    return missing == 0 && extra == 0;
}

/* "rule key=K event=E" for an alert object. */
static void alert_desc(const cJSON *a, char *buf, size_t n)
{
    const cJSON *rule = cJSON_GetObjectItemCaseSensitive(a, "rule");
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(a, "key");
    const cJSON *ev = cJSON_GetObjectItemCaseSensitive(a, "event");
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(a, "mode");
    snprintf(buf, n, "%s %s key=%s event=%s", cJSON_IsString(rule) ? rule->valuestring : "?",
             cJSON_IsString(mode) ? mode->valuestring : "?", cJSON_IsString(key) ? key->valuestring : "?",
             cJSON_IsString(ev) ? ev->valuestring : "?");
}

static const char *str_item(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Reads FILE (NULL when it cannot). Caller frees. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *p = malloc(cap);
    size_t r;
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
    if (p)
        p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* Complete lines (ending in '\n') of a file; 0 when it does not exist yet. */
static long count_lines(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    long n = 0;
    char buf[65536];
    size_t r;
    while ((r = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < r; i++)
            n += buf[i] == '\n';
    fclose(f);
    return n;
}

/* Index of column NAME in a CSV header line, or -1. */
static int csv_column(const char *header, const char *name)
{
    size_t nl = strlen(name);
    int col = 0;
    for (const char *p = header;; col++) {
        const char *e = p + strcspn(p, ",\r\n");
        if ((size_t)(e - p) == nl && memcmp(p, name, nl) == 0)
            return col;
        if (*e != ',')
            return -1;
        p = e + 1;
    }
}

/* Field COL of a CSV line (no quoting in this data) into buf. */
static int csv_field(const char *line, int col, char *buf, size_t n)
{
    const char *p = line;
    for (int c = 0; c < col; c++) {
        p = strchr(p, ',');
        if (!p)
            return -1;
        p++;
    }
    size_t len = strcspn(p, ",\r\n");
    if (len >= n)
        return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    return 0;
}

/* Bitmaps of the customer and terminal ids seen (ids are small integers). */
#define ID_LIMIT (1 << 20)
static unsigned char *seen_customer, *seen_terminal;

static void mark(unsigned char *seen, const char *id, long *distinct)
{
    char *end;
    errno = 0;
    long v = strtol(id, &end, 10);
    if (errno || *end || v < 0 || v >= ID_LIMIT)
        return;
    if (!(seen[v >> 3] & (1u << (v & 7)))) {
        seen[v >> 3] |= (unsigned char)(1u << (v & 7));
        (*distinct)++;
    }
}

/* Copy the header and every row of the gzip'd CSV GZ whose TIME_COL sorts
 * before CUTOFF into OUT (plain CSV). Times are fixed-width RFC 3339 UTC, so
 * a string comparison is a time comparison. Returns the data rows written, or
 * -1. With is_tx, also records customer and terminal ids. */
static long slice_csv(const char *gz, const char *out, const char *time_col, int is_tx)
{
    gzFile in = gzopen(gz, "rb");
    if (!in) {
        fprintf(stderr, "cannot open %s\n", gz);
        return -1;
    }
    gzbuffer(in, 1 << 18);
    FILE *o = fopen(out, "w");
    if (!o) {
        gzclose(in);
        return -1;
    }
    char line[4096], t[64], cust[32], term[32];
    long rows = -1;
    int tcol = -1, ccol = -1, kcol = -1;
    if (gzgets(in, line, sizeof line)) {
        tcol = csv_column(line, time_col);
        ccol = csv_column(line, "customer_id");
        kcol = csv_column(line, "terminal_id");
        if (tcol >= 0 && fputs(line, o) >= 0)
            rows = 0;
    }
    while (rows >= 0 && gzgets(in, line, sizeof line)) {
        if (csv_field(line, tcol, t, sizeof t) != 0) {
            fprintf(stderr, "%s: a row without %s: %s\n", gz, time_col, line);
            rows = -1;
            break;
        }
        if (strcmp(t, CUTOFF) >= 0)
            continue;
        if (fputs(line, o) < 0) {
            rows = -1;
            break;
        }
        rows++;
        if (is_tx && ccol >= 0 && kcol >= 0 && csv_field(line, ccol, cust, sizeof cust) == 0 &&
            csv_field(line, kcol, term, sizeof term) == 0) {
            if (!first_customer[0])
                snprintf(first_customer, sizeof first_customer, "%s", cust);
            snprintf(last_customer, sizeof last_customer, "%s", cust);
            snprintf(last_terminal, sizeof last_terminal, "%s", term);
            mark(seen_customer, cust, &distinct_customers);
            mark(seen_terminal, term, &distinct_terminals);
        }
    }
    int zerr;
    const char *zmsg = gzerror(in, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        fprintf(stderr, "%s: %s\n", gz, zmsg);
        rows = -1;
    }
    gzclose(in);
    if (fclose(o) != 0)
        rows = -1;
    return rows;
}

/* ---- processes ------------------------------------------------------------------ */

/* Run argv to completion within timeout_ms; its exit code, or -1 (did not
 * start, killed by a signal, or timed out: then it is killed). */
static int run(const char *const argv[], const char *log, int timeout_ms)
{
    vt_proc *p = vt_spawn(argv, log);
    if (!p)
        return -1;
    long long deadline = vt_now_ms() + timeout_ms;
    while (vt_alive(p)) {
        if (vt_now_ms() > deadline) {
            fprintf(stderr, "%s did not finish within %d ms; killing it\n", argv[1] ? argv[1] : argv[0],
                    timeout_ms);
            vt_kill(p, SIGKILL);
            return -1;
        }
        vt_sleep_ms(20);
    }
    int st = p->status;
    vt_kill(p, SIGKILL);   /* already reaped: only frees the handle */
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Wait for "<marker><number>" in the log of p; the number, or -1 if p exits
 * or the deadline passes first. */
static int wait_log_number(vt_proc *p, const char *log, const char *marker, int timeout_ms)
{
    long long deadline = vt_now_ms() + timeout_ms;
    for (;;) {
        char *text = slurp(log, NULL);
        const char *m = text ? strstr(text, marker) : NULL;
        if (m) {
            long v = strtol(m + strlen(marker), NULL, 10);
            free(text);
            return v > 0 && v < 65536 ? (int)v : -1;
        }
        free(text);
        if (!vt_alive(p) || vt_now_ms() > deadline)
            return -1;
        vt_sleep_ms(20);
    }
}

typedef struct receiver {
    vt_proc *p;
    int port;
    char out[512], log[512], url[128];
} receiver;

static int receiver_start(receiver *r, const char *tag)
{
    memset(r, 0, sizeof *r);
    snprintf(r->out, sizeof r->out, "%s/webhooks-%s.jsonl", dir, tag);
    snprintf(r->log, sizeof r->log, "%s/receiver-%s.log", dir, tag);
    const char *argv[] = { RECEIVER_BIN, "--out", r->out, "--port", "0", "--secret", SECRET, NULL };
    if (!(r->p = vt_spawn(argv, r->log)))
        return -1;
    r->port = wait_log_number(r->p, r->log, "PORT ", START_TIMEOUT_MS);
    if (r->port < 0) {
        fprintf(stderr, "webhook_receiver did not start; its log:\n");
        vt_dump_log(r->log, LOG_TAIL);
        vt_kill(r->p, SIGKILL);
        r->p = NULL;
        return -1;
    }
    snprintf(r->url, sizeof r->url, "http://127.0.0.1:%d/hook", r->port);
    return 0;
}

static void receiver_stop(receiver *r)
{
    vt_kill(r->p, SIGTERM);
    r->p = NULL;
}

typedef struct server {
    vt_proc *p;
    int port;
    char log[512], base[128];
} server;

/* vigil serve on a port of its own choosing (--listen 127.0.0.1:0: no race
 * for the port), read back from "listening on http://127.0.0.1:N/". */
static int server_start(server *s, const char *tag, const char *nats_url, const char *redis_url,
                        const char *webhook_url)
{
    memset(s, 0, sizeof *s);
    snprintf(s->log, sizeof s->log, "%s/vigil-%s.log", dir, tag);
    const char *argv[32];
    int i = 0;
    argv[i++] = VIGIL_BIN;
    argv[i++] = "serve";
    argv[i++] = "--rules";
    argv[i++] = RULES;
    argv[i++] = "--listen";
    argv[i++] = "127.0.0.1:0";
    argv[i++] = "--time-field";
    argv[i++] = TIME_FIELDS;
    argv[i++] = "--id-field";
    argv[i++] = ID_FIELDS;
    argv[i++] = "--workers";
    argv[i++] = "2";
    /* each server its own data directory: no snapshot of another test */
    static char datadir[600];
    snprintf(datadir, sizeof datadir, "%s/data-%s", dir, tag);
    argv[i++] = "--data-dir";
    argv[i++] = datadir;
    if (nats_url) {
        argv[i++] = "--nats";
        argv[i++] = nats_url;
    }
    if (redis_url) {
        argv[i++] = "--redis";
        argv[i++] = redis_url;
    }
    if (webhook_url) {
        argv[i++] = "--webhook";
        argv[i++] = webhook_url;
    }
    argv[i] = NULL;
    if (!(s->p = vt_spawn(argv, s->log)))
        return -1;
    s->port = wait_log_number(s->p, s->log, "listening on http://127.0.0.1:", START_TIMEOUT_MS);
    if (s->port < 0) {
        fprintf(stderr, "vigil serve (%s) did not start; its log:\n", tag);
        vt_dump_log(s->log, LOG_TAIL);
        vt_kill(s->p, SIGKILL);
        s->p = NULL;
        return -1;
    }
    snprintf(s->base, sizeof s->base, "http://127.0.0.1:%d", s->port);
    return 0;
}

/* SIGTERM, then it must exit 0 within STOP_TIMEOUT_MS. */
static void server_stop_clean(server *s)
{
    if (!s->p)
        return;
    long long t0 = vt_now_ms();
    kill(s->p->pid, SIGTERM);
    while (vt_alive(s->p) && vt_now_ms() - t0 < STOP_TIMEOUT_MS)
        vt_sleep_ms(20);
    int exited = s->p->exited, st = s->p->status;
    printf("  SIGTERM: %s after %lld ms", exited ? "exited" : "still running", vt_now_ms() - t0);
    if (exited)
        printf(" (%s %d)", WIFEXITED(st) ? "status" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    printf("\n");
    CU_ASSERT(exited);
    CU_ASSERT(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    if (!exited || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        vt_dump_log(s->log, LOG_TAIL);
    vt_kill(s->p, SIGKILL);
    s->p = NULL;
}

/* ---- HTTP and metrics ------------------------------------------------------------ */

static char *http_get(const server *s, const char *path, long *status)
{
    char url[512];
    snprintf(url, sizeof url, "%s%s", s->base, path);
    return vt_http("GET", url, NULL, 0, NULL, status);
}

typedef struct buf {
    char *p;
    size_t len;
} buf;

static size_t on_data(char *d, size_t sz, size_t n, void *ud)
{
    buf *b = ud;
    char *np = realloc(b->p, b->len + sz * n + 1);
    if (!np)
        return 0;
    memcpy(np + b->len, d, sz * n);
    b->p = np;
    b->len += sz * n;
    b->p[b->len] = '\0';
    return sz * n;
}

/* A POST that also returns the response's Content-Type (the harness's
 * vt_http does not), into ctype. Returns the body (caller frees) or NULL. */
static char *http_post_ct(const char *url, const char *body, const char *content_type, long *status,
                          char *ctype, size_t ctn)
{
    *status = 0;
    ctype[0] = '\0';
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    buf b = { NULL, 0 };
    char h[128];
    snprintf(h, sizeof h, "Content-Type: %s", content_type);
    struct curl_slist *hl = curl_slist_append(NULL, h);
    hl = curl_slist_append(hl, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        char *ct = NULL;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
        if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            snprintf(ctype, ctn, "%s", ct);
    } else {
        fprintf(stderr, "POST %s: %s\n", url, curl_easy_strerror(rc));
    }
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        free(b.p);
        return NULL;
    }
    return b.p ? b.p : calloc(1, 1);
}

/* The value of the sample NAME (with its labels, exactly as printed) in a
 * Prometheus text exposition; -1 when absent. */
static double metric(const char *text, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return -1;
}

/* Sum of every sample of a family (all label sets). */
static double metric_sum(const char *text, const char *family)
{
    size_t n = strlen(family);
    double sum = 0;
    for (const char *p = text; p && *p;) {
        if (strncmp(p, family, n) == 0 && (p[n] == '{' || p[n] == ' ')) {
            const char *sp = strchr(p, ' ');
            if (sp)
                sum += strtod(sp + 1, NULL);
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return sum;
}

typedef struct snap {
    double http, nats, processed, depth, alerts, pending, delivered, malformed, no_key, queue_full, late;
} snap;

static int snapshot(const server *s, snap *m)
{
    long st;
    char *t = http_get(s, "/metrics", &st);
    if (!t || st != 200) {
        free(t);
        return -1;
    }
    m->http = metric(t, "vigil_events_received_total{source=\"http\"}");
    m->nats = metric(t, "vigil_events_received_total{source=\"nats\"}");
    m->processed = metric(t, "vigil_events_processed_total");
    m->depth = metric(t, "vigil_queue_depth");
    m->alerts = metric_sum(t, "vigil_alerts_total");
    /* the one endpoint (--webhook URL) is named webhook1; its backlog is the
     * outbox's (durable path) */
    m->pending = metric(t, "vigil_outbox_pending{endpoint=\"webhook1\"}") +
                 metric(t, "vigil_webhook_inflight{endpoint=\"webhook1\"}");
    m->delivered = metric(t, "vigil_webhook_deliveries_total{endpoint=\"webhook1\",outcome=\"delivered\"}");
    m->malformed = metric(t, "vigil_events_rejected_total{reason=\"malformed\"}");
    m->no_key = metric(t, "vigil_events_rejected_total{reason=\"no_key\"}");
    m->queue_full = metric(t, "vigil_events_rejected_total{reason=\"queue_full\"}");
    m->late = metric(t, "vigil_events_late_total");
    free(t);
    return 0;
}

/* Wait until the server has processed everything it received and the
 * receiver has every webhook: queues empty, no delivery pending, nothing
 * moving for QUIET_MS with the expected number of lines (or for STALL_MS with
 * fewer). 0 when settled, -1 on timeout or when the server died. */
static int settle(const server *s, const receiver *r, long expected_lines, snap *out)
{
    long long t0 = vt_now_ms(), deadline = t0 + SETTLE_TIMEOUT_MS, changed = t0;
    snap prev;
    memset(&prev, 0, sizeof prev);
    prev.processed = -1;
    long prev_lines = -1;
    for (;;) {
        if (!vt_alive(s->p)) {
            fprintf(stderr, "vigil serve died while processing\n");
            return -1;
        }
        snap m;
        long lines = count_lines(r->out);
        if (snapshot(s, &m) == 0) {
            if (m.processed != prev.processed || m.alerts != prev.alerts || lines != prev_lines ||
                m.delivered != prev.delivered) {
                changed = vt_now_ms();
                prev = m;
                prev_lines = lines;
            }
            long long quiet = vt_now_ms() - changed;
            int idle = m.depth == 0 && m.pending <= 0;
            if (idle && ((lines >= expected_lines && quiet >= QUIET_MS) || quiet >= STALL_MS)) {
                printf("  settled in %lld ms: processed %.0f, alerts %.0f, webhook lines %ld (expected %ld)\n",
                       vt_now_ms() - t0, m.processed, m.alerts, lines, expected_lines);
                *out = m;
                return 0;
            }
        }
        if (vt_now_ms() > deadline) {
            fprintf(stderr, "not settled within %d ms: processed %.0f, queue depth %.0f, webhook pending %.0f, "
                            "lines %ld of %ld\n", SETTLE_TIMEOUT_MS, prev.processed, prev.depth, prev.pending,
                    lines, expected_lines);
            return -1;
        }
        vt_sleep_ms(200);
    }
}

/* The receiver's file: every line valid (signature checked), a well-formed
 * alert.created envelope whose data.id is the webhook id, no shadow alert,
 * no duplicate, and the set of ids equal to the replay's active alerts. */
static void check_webhooks(const receiver *r)
{
    char *text = slurp(r->out, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    idset got = { 0 };
    long lines = 0, invalid = 0, bad_env = 0, shadow = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;   /* an incomplete last line (none expected once settled) */
        *nl = '\0';
        lines++;
        cJSON *o = cJSON_Parse(line);
        if (!o) {
            bad_env++;
            continue;
        }
        const char *wid = str_item(o, "webhook_id");
        const cJSON *valid = cJSON_GetObjectItemCaseSensitive(o, "valid");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(o, "body");
        const cJSON *data = cJSON_GetObjectItemCaseSensitive(body, "data");
        const char *type = str_item(body, "type"), *did = str_item(data, "id"), *mode = str_item(data, "mode");
        if (!cJSON_IsTrue(valid)) {
            if (invalid < EXAMPLES)
                printf("    invalid delivery: %s (%s)\n", wid ? wid : "?", str_item(o, "reason") ?: "?");
            invalid++;
        }
        if (!wid || !type || strcmp(type, "alert.created") != 0 || !did || strcmp(did, wid) != 0 ||
            !str_item(body, "timestamp")) {
            if (bad_env < EXAMPLES)
                printf("    malformed envelope: %.200s\n", line);
            bad_env++;
        }
        char desc[112];
        alert_desc(data, desc, sizeof desc);
        if ((mode && strcmp(mode, "active") != 0) || (wid && set_find(&ref_shadow, wid))) {
            if (shadow < EXAMPLES)
                printf("    shadow alert sent to a webhook: %s (%s)\n", wid ? wid : "?", desc);
            shadow++;
        }
        if (wid)
            set_add(&got, wid, desc);
        cJSON_Delete(o);
    }
    size_t dups = set_normalize(&got);
    printf("  webhooks: %ld lines, %ld invalid, %ld malformed, %ld shadow, %zu duplicates\n", lines, invalid,
           bad_env, shadow, dups);
    CU_ASSERT(lines > 0);
    CU_ASSERT_EQUAL(invalid, 0);
    CU_ASSERT_EQUAL(bad_env, 0);
    CU_ASSERT_EQUAL(shadow, 0);
    CU_ASSERT_EQUAL(dups, 0);
    CU_ASSERT(set_equal("webhook ids vs replay active alerts", &got, &ref_active));
    set_free(&got);
    free(text);
}

/* GET /v1/alerts?limit=1000: the hub keeps the latest alerts, active and
 * shadow; with fewer than 1000 they must be exactly the replay's. */
static void check_alert_list(const server *s)
{
    long st;
    char *t = http_get(s, "/v1/alerts?limit=1000", &st);
    CU_ASSERT_EQUAL(st, 200);
    cJSON *o = t ? cJSON_Parse(t) : NULL;
    free(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(o);
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(o, "alerts");
    CU_ASSERT(cJSON_IsArray(arr));
    idset got = { 0 };
    const cJSON *a;
    cJSON_ArrayForEach(a, arr)
    {
        char desc[112];
        alert_desc(a, desc, sizeof desc);
        const char *id = str_item(a, "id");
        if (id)
            set_add(&got, id, desc);
    }
    size_t dups = set_normalize(&got);
    CU_ASSERT(got.n > 0);
    CU_ASSERT_EQUAL(dups, 0);
    if (ref_all.n <= 1000)
        CU_ASSERT(set_equal("GET /v1/alerts vs replay (active and shadow)", &got, &ref_all));
    set_free(&got);
    cJSON_Delete(o);
}

/* ---- 1. the slice and the replay reference ---------------------------------------- */

static void test_reference(void)
{
    const char *txgz = vt_data_path(TX_DATA), *repgz = vt_data_path(REPORT_DATA);
    CU_ASSERT_PTR_NOT_NULL_FATAL(txgz);
    CU_ASSERT_PTR_NOT_NULL_FATAL(repgz);
    long long t0 = vt_now_ms();
    seen_customer = calloc(ID_LIMIT / 8, 1);
    seen_terminal = calloc(ID_LIMIT / 8, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen_customer);
    CU_ASSERT_PTR_NOT_NULL_FATAL(seen_terminal);
    snprintf(tx_csv, sizeof tx_csv, "%s/transactions.csv", dir);
    snprintf(report_csv, sizeof report_csv, "%s/reports.csv", dir);
    n_tx = slice_csv(txgz, tx_csv, "tx_datetime", 1);
    n_reports = slice_csv(repgz, report_csv, "report_datetime", 0);
    printf("  slice: %ld transactions, %ld reports before %s (%ld customers, %ld terminals) in %lld ms\n", n_tx,
           n_reports, CUTOFF, distinct_customers, distinct_terminals, vt_now_ms() - t0);
    CU_ASSERT_FATAL(n_tx > 100000 && n_tx < 130000);   /* about 115k */
    CU_ASSERT_FATAL(n_reports > 0);
    CU_ASSERT_FATAL(first_customer[0] && last_customer[0] && last_terminal[0]);

    char out[512], log[512], in_tx[600], in_rep[600];
    snprintf(out, sizeof out, "%s/replay.jsonl", dir);
    snprintf(log, sizeof log, "%s/replay.log", dir);
    snprintf(in_tx, sizeof in_tx, "tx=%s", tx_csv);
    snprintf(in_rep, sizeof in_rep, "report=%s", report_csv);
    const char *argv[] = { VIGIL_BIN, "replay", "--rules", RULES, "--input", in_tx, "--input", in_rep,
                           "--time-field", TIME_FIELDS, "--id-field", ID_FIELDS, "--output", out, NULL };
    t0 = vt_now_ms();
    int rc = run(argv, log, RUN_TIMEOUT_MS);
    printf("  replay: exit %d in %lld ms\n", rc, vt_now_ms() - t0);
    if (rc != 0)
        vt_dump_log(log, LOG_TAIL);
    CU_ASSERT_EQUAL_FATAL(rc, 0);

    char *text = slurp(out, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    long bad = 0;
    for (char *line = text, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        cJSON *a = cJSON_Parse(line);
        const char *id = a ? str_item(a, "id") : NULL, *mode = a ? str_item(a, "mode") : NULL;
        if (!id || strlen(id) != 32 || !mode) {
            bad++;
        } else {
            char desc[112];
            alert_desc(a, desc, sizeof desc);
            set_add(&ref_all, id, desc);
            set_add(strcmp(mode, "active") == 0 ? &ref_active : &ref_shadow, id, desc);
        }
        cJSON_Delete(a);
        if (!nl)
            break;
    }
    free(text);
    size_t dups = set_normalize(&ref_all) + set_normalize(&ref_active) + set_normalize(&ref_shadow);
    printf("  reference: %zu alerts, %zu active, %zu shadow\n", ref_all.n, ref_active.n, ref_shadow.n);
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(dups, 0);   /* replay itself never repeats an id */
    CU_ASSERT_FATAL(ref_active.n > 0);
    CU_ASSERT(ref_shadow.n > 0);   /* velocity_1h fires on this slice: the shadow check means something */
    have_ref = 1;
}

/* ---- 2. NATS in, Redis state, webhooks and NATS out ------------------------------- */

/* Drain a sync subscription into set (ids) and check every subject is
 * <prefix><rule>. Returns messages read. */
static long drain_alerts(natsSubscription *sub, const char *prefix, idset *set, long *bad_subject)
{
    long n = 0;
    natsMsg *msg;
    while (natsSubscription_NextMsg(&msg, sub, 500) == NATS_OK) {
        n++;
        cJSON *a = cJSON_ParseWithLength(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
        const char *id = a ? str_item(a, "id") : NULL, *rule = a ? str_item(a, "rule") : NULL;
        char want[160];
        snprintf(want, sizeof want, "%s%s", prefix, rule ? rule : "?");
        if (!rule || strcmp(natsMsg_GetSubject(msg), want) != 0) {
            if (*bad_subject < EXAMPLES)
                printf("    alert on subject %s, expected %s\n", natsMsg_GetSubject(msg), want);
            (*bad_subject)++;
        }
        if (id) {
            char desc[112];
            alert_desc(a, desc, sizeof desc);
            set_add(set, id, desc);
        }
        cJSON_Delete(a);
        natsMsg_Destroy(msg);
    }
    return n;
}

/* Count the keys matching pattern with SCAN (never KEYS on a real server). */
static long scan_count(redisContext *c, const char *pattern)
{
    char cursor[32] = "0";
    long n = 0;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %s COUNT 1000", cursor, pattern);
        if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            if (r)
                freeReplyObject(r);
            return -1;
        }
        snprintf(cursor, sizeof cursor, "%s", r->element[0]->str);
        n += (long)r->element[1]->elements;
        freeReplyObject(r);
    } while (strcmp(cursor, "0") != 0);
    return n;
}

static int redis_exists(redisContext *c, const char *group, const char *key)
{
    /* the server's default: 16 partitions, hash tag {group:p<hash % 16>} */
    unsigned part = (unsigned)(vigil_hash(key, strlen(key)) % 16);
    redisReply *r = redisCommand(c, "EXISTS vigil:{%s:p%u}:k:%s", group, part, key);
    int v = r && r->type == REDIS_REPLY_INTEGER ? (int)r->integer : -1;
    if (r)
        freeReplyObject(r);
    return v;
}

static void check_redis(int port)
{
    struct timeval tv = { 5, 0 };
    redisContext *c = redisConnectWithTimeout("127.0.0.1", port, tv);
    CU_ASSERT_FATAL(c && !c->err);
    redisSetTimeout(c, tv);
    long customers = scan_count(c, "vigil:{customer_id:p*}:k:*");
    long terminals = scan_count(c, "vigil:{terminal_id:p*}:k:*");
    printf("  redis: %ld customer keys (%ld customers in the slice), %ld terminal keys (%ld terminals)\n",
           customers, distinct_customers, terminals, distinct_terminals);
    CU_ASSERT(customers > 0);
    CU_ASSERT(terminals > 0);
    /* Every transaction enters amount_spike's 30-day window, so every card
     * holder of a 12-day slice has state; terminals with no event in the
     * last 7 days (compromised_terminal's window) may have none. */
    CU_ASSERT_EQUAL(customers, distinct_customers);
    CU_ASSERT(terminals <= distinct_terminals);
    CU_ASSERT_EQUAL(redis_exists(c, "customer_id", first_customer), 1);
    CU_ASSERT_EQUAL(redis_exists(c, "customer_id", last_customer), 1);
    CU_ASSERT_EQUAL(redis_exists(c, "terminal_id", last_terminal), 1);
    CU_ASSERT_EQUAL(redis_exists(c, "customer_id", "no-such-customer"), 0);
    redisFree(c);
}

static void test_nats_redis_webhook(void)
{
    CU_ASSERT_FATAL(have_ref);
    unsigned failures = CU_get_number_of_failures();
    int redis_port = 0, nats_port = 0;
    vt_proc *redis = vt_start_redis(&redis_port, dir);
    vt_proc *nats = vt_start_nats(&nats_port, dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(redis);
    CU_ASSERT_PTR_NOT_NULL_FATAL(nats);
    char nats_url[64], redis_url[64];
    snprintf(nats_url, sizeof nats_url, "nats://127.0.0.1:%d", nats_port);
    snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%d", redis_port);

    /* The test's own NATS client listens to vigil's alert outputs. */
    natsConnection *nc = NULL;
    natsSubscription *sub_active = NULL, *sub_shadow = NULL;
    natsStatus ns = natsConnection_ConnectTo(&nc, nats_url);
    if (ns == NATS_OK)
        ns = natsConnection_SubscribeSync(&sub_active, nc, "vigil.alerts.>");
    if (ns == NATS_OK)
        ns = natsConnection_SubscribeSync(&sub_shadow, nc, "vigil.shadow.>");
    if (ns == NATS_OK)
        ns = natsConnection_Flush(nc);
    CU_ASSERT_EQUAL_FATAL(ns, NATS_OK);

    receiver rcv;
    CU_ASSERT_EQUAL_FATAL(receiver_start(&rcv, "nats"), 0);
    server srv;
    CU_ASSERT_EQUAL_FATAL(server_start(&srv, "nats", nats_url, redis_url, rcv.url), 0);

    char log[512], in_tx[600], in_rep[600];
    snprintf(log, sizeof log, "%s/feed-nats.log", dir);
    snprintf(in_tx, sizeof in_tx, "tx=%s", tx_csv);
    snprintf(in_rep, sizeof in_rep, "report=%s", report_csv);
    const char *argv[] = { VIGIL_BIN, "feed", "--input", in_tx, "--input", in_rep, "--nats", nats_url,
                           "--time-field", TIME_FIELDS, "--id-field", ID_FIELDS, NULL };
    long long t0 = vt_now_ms();
    int rc = run(argv, log, RUN_TIMEOUT_MS);
    printf("  feed --nats: exit %d in %lld ms\n", rc, vt_now_ms() - t0);
    if (rc != 0)
        vt_dump_log(log, LOG_TAIL);
    CU_ASSERT_EQUAL(rc, 0);

    snap m;
    int settled = settle(&srv, &rcv, (long)ref_active.n, &m);
    CU_ASSERT_EQUAL(settled, 0);
    if (settled == 0) {
        printf("  metrics: received nats %.0f http %.0f (fed %ld), rejected %.0f/%.0f/%.0f, late %.0f, "
               "delivered %.0f\n", m.nats, m.http, n_tx + n_reports, m.malformed, m.no_key, m.queue_full,
               m.late, m.delivered);
        /* Core NATS on loopback with raised pending limits: nothing lost. */
        CU_ASSERT_EQUAL(m.nats, (double)(n_tx + n_reports));
        CU_ASSERT_EQUAL(m.http, 0);
        CU_ASSERT_EQUAL(m.malformed + m.no_key + m.queue_full, 0);
        CU_ASSERT_EQUAL(m.late, 0);
        CU_ASSERT_EQUAL(m.alerts, (double)ref_all.n);
        CU_ASSERT_EQUAL(m.delivered, (double)ref_active.n);
        check_webhooks(&rcv);

        idset active = { 0 }, shadow = { 0 };
        long bad_subject = 0;
        long na = drain_alerts(sub_active, "vigil.alerts.", &active, &bad_subject);
        long nsh = drain_alerts(sub_shadow, "vigil.shadow.", &shadow, &bad_subject);
        size_t dups = set_normalize(&active) + set_normalize(&shadow);
        printf("  NATS out: %ld on vigil.alerts.>, %ld on vigil.shadow.>\n", na, nsh);
        CU_ASSERT_EQUAL(bad_subject, 0);
        CU_ASSERT_EQUAL(dups, 0);
        CU_ASSERT(set_equal("vigil.alerts.> vs replay active alerts", &active, &ref_active));
        CU_ASSERT(set_equal("vigil.shadow.> vs replay shadow alerts", &shadow, &ref_shadow));
        set_free(&active);
        set_free(&shadow);

        check_redis(redis_port);
        check_alert_list(&srv);
    }
    if (CU_get_number_of_failures() != failures) {
        fprintf(stderr, "---- vigil serve (NATS) log ----\n");
        vt_dump_log(srv.log, LOG_TAIL);
        fprintf(stderr, "---- feed log ----\n");
        vt_dump_log(log, 2000);
    }
    server_stop_clean(&srv);
    receiver_stop(&rcv);
    natsSubscription_Destroy(sub_active);
    natsSubscription_Destroy(sub_shadow);
    natsConnection_Destroy(nc);
    vt_kill(nats, SIGTERM);
    vt_kill(redis, SIGTERM);
}

/* ---- 3-5. HTTP in, memory store; then the same server's error paths ---------------- */

static server http_srv;
static receiver http_rcv;
static int http_fed;   /* the HTTP server has the whole slice */

static void test_http_feed(void)
{
    CU_ASSERT_FATAL(have_ref);
    unsigned failures = CU_get_number_of_failures();
    CU_ASSERT_EQUAL_FATAL(receiver_start(&http_rcv, "http"), 0);
    CU_ASSERT_EQUAL_FATAL(server_start(&http_srv, "http", NULL, NULL, http_rcv.url), 0);

    char log[512], url[256], in_tx[600], in_rep[600];
    snprintf(log, sizeof log, "%s/feed-http.log", dir);
    snprintf(url, sizeof url, "%s/v1/events", http_srv.base);
    snprintf(in_tx, sizeof in_tx, "tx=%s", tx_csv);
    snprintf(in_rep, sizeof in_rep, "report=%s", report_csv);
    const char *argv[] = { VIGIL_BIN, "feed", "--input", in_tx, "--input", in_rep, "--http", url,
                           "--time-field", TIME_FIELDS, "--id-field", ID_FIELDS, NULL };
    long long t0 = vt_now_ms();
    int rc = run(argv, log, RUN_TIMEOUT_MS);
    printf("  feed --http: exit %d in %lld ms\n", rc, vt_now_ms() - t0);
    if (rc != 0)
        vt_dump_log(log, LOG_TAIL);
    CU_ASSERT_EQUAL(rc, 0);

    snap m;
    int settled = settle(&http_srv, &http_rcv, (long)ref_active.n, &m);
    CU_ASSERT_EQUAL(settled, 0);
    if (settled == 0) {
        printf("  metrics: received http %.0f nats %.0f (fed %ld), rejected %.0f/%.0f/%.0f, late %.0f\n", m.http,
               m.nats, n_tx + n_reports, m.malformed, m.no_key, m.queue_full, m.late);
        CU_ASSERT_EQUAL(m.http, (double)(n_tx + n_reports));   /* feed got 202 for every batch */
        CU_ASSERT_EQUAL(m.nats, 0);
        CU_ASSERT_EQUAL(m.malformed + m.no_key + m.queue_full, 0);
        CU_ASSERT_EQUAL(m.late, 0);
        CU_ASSERT_EQUAL(m.alerts, (double)ref_all.n);
        check_webhooks(&http_rcv);
        check_alert_list(&http_srv);
        http_fed = 1;
    }
    if (CU_get_number_of_failures() != failures) {
        fprintf(stderr, "---- vigil serve (HTTP) log ----\n");
        vt_dump_log(http_srv.log, LOG_TAIL);
    }
}

/* Nothing of a rejected request may be applied: no event counted or
 * processed, no alert produced, no alert listed, no webhook sent. */
typedef struct state {
    snap m;
    double last_seq;
    long lines;
} state;

static int observe(state *s)
{
    long st;
    char *t = http_get(&http_srv, "/v1/alerts?limit=1", &st);
    cJSON *o = t ? cJSON_Parse(t) : NULL;
    free(t);
    const cJSON *ls = cJSON_GetObjectItemCaseSensitive(o, "last_seq");
    s->last_seq = cJSON_IsNumber(ls) ? ls->valuedouble : -1;
    cJSON_Delete(o);
    s->lines = count_lines(http_rcv.out);
    return snapshot(&http_srv, &s->m);
}

static void assert_unchanged(const state *before)
{
    vt_sleep_ms(500);   /* what a wrongly accepted event would need to show */
    state after;
    CU_ASSERT_EQUAL_FATAL(observe(&after), 0);
    CU_ASSERT_EQUAL(after.m.http, before->m.http);
    CU_ASSERT_EQUAL(after.m.processed, before->m.processed);
    CU_ASSERT_EQUAL(after.m.alerts, before->m.alerts);
    CU_ASSERT_EQUAL(after.last_seq, before->last_seq);
    CU_ASSERT_EQUAL(after.lines, before->lines);
}

static void require_http_server(void)
{
    if (http_srv.p && vt_alive(http_srv.p))
        return;
    /* test_http_feed failed to start it: use a fresh one so these checks still run */
    if (!http_rcv.p)
        CU_ASSERT_EQUAL_FATAL(receiver_start(&http_rcv, "http2"), 0);
    CU_ASSERT_EQUAL_FATAL(server_start(&http_srv, "http2", NULL, NULL, http_rcv.url), 0);
}

static void test_malformed_batch(void)
{
    require_http_server();
    unsigned failures = CU_get_number_of_failures();
    char url[256], ct[128];
    snprintf(url, sizeof url, "%s/v1/events", http_srv.base);
    state before;
    CU_ASSERT_EQUAL_FATAL(observe(&before), 0);

    /* Lines 1 and 3 would each raise a large_amount alert if applied. */
    const char *batch =
        "{\"type\":\"tx\",\"transaction_id\":\"m1\",\"tx_datetime\":\"2018-04-19T00:00:00Z\",\"customer_id\":1,"
        "\"terminal_id\":1,\"tx_amount\":999}\n"
        "{\"type\":\"tx\",\"transaction_id\":\"m2\",\"tx_datetime\":\"2018-04-19T00:00:01Z\",\"customer_id\":1,\n"
        "{\"type\":\"tx\",\"transaction_id\":\"m3\",\"tx_datetime\":\"2018-04-19T00:00:02Z\",\"customer_id\":2,"
        "\"terminal_id\":2,\"tx_amount\":999}\n";
    long st;
    char *body = http_post_ct(url, batch, "application/x-ndjson", &st, ct, sizeof ct);
    printf("  malformed batch: %ld %s %s\n", st, ct, body ? body : "(no body)");
    CU_ASSERT_EQUAL(st, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct, "application/problem+json"));
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    CU_ASSERT_PTR_NOT_NULL(o);
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(o, "line");
    CU_ASSERT(cJSON_IsNumber(line) && line->valueint == 2);
    CU_ASSERT_PTR_NOT_NULL(str_item(o, "reason"));
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(o, "status");
    CU_ASSERT(cJSON_IsNumber(status) && status->valueint == 400);
    cJSON_Delete(o);
    free(body);
    assert_unchanged(&before);

    /* An event without its time field (neither tx_datetime nor report_datetime). */
    CU_ASSERT_EQUAL_FATAL(observe(&before), 0);
    const char *notime = "{\"type\":\"tx\",\"transaction_id\":\"m4\",\"customer_id\":1,\"terminal_id\":1,"
                         "\"tx_amount\":999}";
    body = http_post_ct(url, notime, "application/json", &st, ct, sizeof ct);
    printf("  no time field: %ld %s %s\n", st, ct, body ? body : "(no body)");
    CU_ASSERT_EQUAL(st, 400);
    CU_ASSERT_PTR_NOT_NULL(strstr(ct, "application/problem+json"));
    o = body ? cJSON_Parse(body) : NULL;
    const char *reason = o ? str_item(o, "reason") : NULL;
    CU_ASSERT_PTR_NOT_NULL(reason);
    CU_ASSERT(reason && strstr(reason, "tx_datetime"));
    line = cJSON_GetObjectItemCaseSensitive(o, "line");
    CU_ASSERT(cJSON_IsNumber(line) && line->valueint == 1);
    cJSON_Delete(o);
    free(body);
    assert_unchanged(&before);

    /* Both rejections were counted. */
    state after;
    CU_ASSERT_EQUAL_FATAL(observe(&after), 0);
    CU_ASSERT(after.m.malformed + after.m.no_key >= before.m.malformed + before.m.no_key + 1);
    if (CU_get_number_of_failures() != failures)
        vt_dump_log(http_srv.log, LOG_TAIL);
}

static void test_wait(void)
{
    require_http_server();
    unsigned failures = CU_get_number_of_failures();
    char url[256], ct[128];
    snprintf(url, sizeof url, "%s/v1/events?wait=2000", http_srv.base);
    const char *ev = "{\"type\":\"tx\",\"transaction_id\":\"w1\",\"tx_datetime\":\"2018-04-20T00:00:00Z\","
                     "\"customer_id\":1,\"terminal_id\":1,\"tx_amount\":500}";
    long st;
    long long t0 = vt_now_ms();
    char *body = http_post_ct(url, ev, "application/json", &st, ct, sizeof ct);
    printf("  ?wait=2000: %ld in %lld ms: %.300s\n", st, vt_now_ms() - t0, body ? body : "(no body)");
    CU_ASSERT_EQUAL(st, 200);
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(o, "alerts");
    CU_ASSERT(cJSON_IsArray(alerts));
    const cJSON *a, *found = NULL;
    cJSON_ArrayForEach(a, alerts)
    {
        const char *rule = str_item(a, "rule"), *event = str_item(a, "event");
        if (rule && event && strcmp(rule, "large_amount") == 0 && strcmp(event, "w1") == 0)
            found = a;
    }
    CU_ASSERT_PTR_NOT_NULL(found);
    if (found) {
        CU_ASSERT_STRING_EQUAL(str_item(found, "mode") ?: "", "active");
        CU_ASSERT_STRING_EQUAL(str_item(found, "key") ?: "", "1");
        CU_ASSERT_STRING_EQUAL(str_item(found, "key_field") ?: "", "customer_id");
        const cJSON *evs = cJSON_GetObjectItemCaseSensitive(found, "events");
        CU_ASSERT(cJSON_IsArray(evs) && cJSON_GetArraySize(evs) == 1 &&
                  cJSON_IsString(cJSON_GetArrayItem(evs, 0)) &&
                  strcmp(cJSON_GetArrayItem(evs, 0)->valuestring, "w1") == 0);
        const char *id = str_item(found, "id");
        CU_ASSERT(id && strlen(id) == 32);
        /* The same alert is listed by GET /v1/alerts. */
        char path[128];
        snprintf(path, sizeof path, "/v1/alerts?rule=large_amount&key=1&limit=10");
        char *list = http_get(&http_srv, path, &st);
        CU_ASSERT_EQUAL(st, 200);
        CU_ASSERT(list && id && strstr(list, id));
        free(list);
    }
    cJSON_Delete(o);
    free(body);
    /* An ordinary transaction: 200 with an empty, parsable alerts array. */
    const char *ev2 = "{\"type\":\"tx\",\"transaction_id\":\"w2\",\"tx_datetime\":\"2018-04-20T00:00:01Z\","
                      "\"customer_id\":2,\"terminal_id\":2,\"tx_amount\":5}";
    body = http_post_ct(url, ev2, "application/json", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 200);
    o = body ? cJSON_Parse(body) : NULL;
    alerts = cJSON_GetObjectItemCaseSensitive(o, "alerts");
    CU_ASSERT(cJSON_IsArray(alerts) && cJSON_GetArraySize(alerts) == 0);
    if (!cJSON_IsArray(alerts)) printf("  ?wait with no alert answered: %.200s\n", body ? body : "(no body)");
    cJSON_Delete(o);
    free(body);
    if (CU_get_number_of_failures() != failures)
        vt_dump_log(http_srv.log, LOG_TAIL);
}

/* POST /v1/rules:test: a dry run in a private engine — alerts in the
 * answer, nothing counted, listed or sent by the live server; a rule that
 * does not compile answers 422 with its errors. */
static void test_rules_dry_run(void)
{
    require_http_server();
    unsigned failures = CU_get_number_of_failures();
    /* the earlier tests' webhooks are delivered asynchronously: start from quiet */
    long quiet_lines = -1;
    for (long long t0 = vt_now_ms(); vt_now_ms() - t0 < 5000;) {
        long l = count_lines(http_rcv.out);
        if (l == quiet_lines) break;
        quiet_lines = l;
        vt_sleep_ms(300);
    }
    state before;
    CU_ASSERT_EQUAL_FATAL(observe(&before), 0);
    char url[256], ct[128];
    snprintf(url, sizeof url, "%s/v1/rules:test", http_srv.base);
    const char *good =
        "{\"source\":\"rule{name='dry',key='customer_id',where={tx_amount=gt(100)},window=sliding('1h'),when=ge(count(),2)}\","
        "\"events\":[{\"customer_id\":9,\"tx_amount\":500,\"tx_datetime\":\"2018-05-01T00:00:00Z\"},"
        "{\"customer_id\":9,\"tx_amount\":300,\"tx_datetime\":\"2018-05-01T00:10:00Z\"},"
        "{\"customer_id\":8,\"tx_amount\":300,\"tx_datetime\":\"2018-05-01T00:20:00Z\"}]}";
    long st;
    char *body = http_post_ct(url, good, "application/json", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 200);
    cJSON *o = body ? cJSON_Parse(body) : NULL;
    const cJSON *alerts = cJSON_GetObjectItemCaseSensitive(o, "alerts");
    CU_ASSERT(cJSON_IsArray(alerts) && cJSON_GetArraySize(alerts) == 1);
    if (cJSON_IsArray(alerts) && cJSON_GetArraySize(alerts) == 1) {
        const cJSON *a = cJSON_GetArrayItem(alerts, 0);
        CU_ASSERT_STRING_EQUAL(str_item(a, "rule") ?: "", "dry");
        CU_ASSERT_STRING_EQUAL(str_item(a, "key") ?: "", "9");
    }
    cJSON_Delete(o);
    free(body);
    assert_unchanged(&before);
    const char *bad = "{\"source\":\"rule{name='dry',key='k',bogus=1}\",\"events\":[]}";
    body = http_post_ct(url, bad, "application/json", &st, ct, sizeof ct);
    CU_ASSERT_EQUAL(st, 422);
    CU_ASSERT(strstr(ct, "application/problem+json") != NULL);
    o = body ? cJSON_Parse(body) : NULL;
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(o, "errors");
    CU_ASSERT(cJSON_IsArray(errs) && cJSON_GetArraySize(errs) >= 1);
    CU_ASSERT(body && strstr(body, "bogus"));
    cJSON_Delete(o);
    free(body);
    if (CU_get_number_of_failures() != failures)
        vt_dump_log(http_srv.log, LOG_TAIL);
}

static void test_http_stop(void)
{
    if (http_srv.p)
        server_stop_clean(&http_srv);
    receiver_stop(&http_rcv);
}

/* ---- main ---------------------------------------------------------------------------- */

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    int have = vt_require_data(TX_DATA);
    if (have == 1)
        have = vt_require_data(REPORT_DATA);
    if (have == 0) {
        printf("0 passed, 0 failed, 1 skipped\n");
        return 0;
    }
    if (have < 0)
        return 1;

    /* The children inherit the environment: the webhook secret, loopback
     * without proxies, and none of the developer's VIGIL_* settings (a
     * VIGIL_REDIS here would turn the memory-store server into a Redis one). */
    setenv("VIGIL_WEBHOOK_SECRET", SECRET, 1);
    setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    setenv("no_proxy", "127.0.0.1,localhost", 1);
    unsetenv("VIGIL_NATS");
    unsetenv("VIGIL_REDIS");
    unsetenv("VIGIL_RULES");
    unsetenv("VIGIL_LISTEN");
    curl_global_init(CURL_GLOBAL_DEFAULT);

    dir = vt_tmpdir();
    if (!dir)
        return 1;
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("e2e", NULL, NULL);
    if (!s || !CU_add_test(s, "slice of the card data, replay reference", test_reference) ||
        !CU_add_test(s, "feed --nats, Redis store, webhooks = replay", test_nats_redis_webhook) ||
        !CU_add_test(s, "feed --http, memory store, webhooks = replay", test_http_feed) ||
        !CU_add_test(s, "malformed NDJSON and missing time: 400, nothing applied", test_malformed_batch) ||
        !CU_add_test(s, "?wait=MS returns the event's alerts", test_wait) ||
        !CU_add_test(s, "POST /v1/rules:test: dry run, no side effects; 422 on compile errors", test_rules_dry_run) ||
        !CU_add_test(s, "HTTP server stops cleanly on SIGTERM", test_http_stop)) {
        CU_cleanup_registry();
        return 1;
    }
    long long t0 = vt_now_ms();
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned fails = CU_get_number_of_failures(), records = CU_get_number_of_failure_records();
    printf("\ntest_e2e: %.1f s\n", (double)(vt_now_ms() - t0) / 1000.0);
    CU_cleanup_registry();
    set_free(&ref_all);
    set_free(&ref_active);
    set_free(&ref_shadow);
    free(seen_customer);
    free(seen_terminal);
    free(dir);
    nats_Close();
    return fails != 0 || records != 0;
}

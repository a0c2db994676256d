/* benchutil.h — small helpers shared by the ingest benchmarks of issue 4
 * (bench/nats_pub.c, core_bare.c, js_bare.c, metrics_wait.c): a monotonic
 * clock, strict number parsing, and reading one sample of vigil's GET
 * /metrics (Prometheus text) with libcurl. Header-only (static functions)
 * because CMake builds every bench .c file as its own program. */
#ifndef VIGIL_BENCHUTIL_H
#define VIGIL_BENCHUTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

static inline double bu_mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall clock in µs since the epoch: the send stamp of the latency bench
 * (the webhook receiver stamps arrivals with the same clock). */
static inline long long bu_wall_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static inline void bu_sleep_ms(double ms) {
    long long ns = (long long)(ms * 1e6);
    struct timespec ts = {(time_t)(ns / 1000000000LL), (long)(ns % 1000000000LL)};
    nanosleep(&ts, NULL);
}

/* A non-negative integer with an optional k/M suffix (1000-based); -1 if bad. */
static inline long long bu_count(const char *s) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || v < 0) return -1;
    if (*end == 'k' || *end == 'K') v *= 1e3, end++;
    else if (*end == 'M' || *end == 'm') v *= 1e6, end++;
    if (*end) return -1;
    return (long long)v;
}

/* ---- GET /metrics --------------------------------------------------------- */

typedef struct bu_buf {
    char *p;
    size_t len, cap;
} bu_buf;

static size_t bu_collect(char *p, size_t sz, size_t n, void *ud) {
    bu_buf *b = ud;
    size_t add = sz * n;
    if (b->len + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap < b->len + add + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return 0;
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, add);
    b->len += add;
    b->p[b->len] = '\0';
    return add;
}

typedef struct bu_metrics {
    CURL *curl;
    bu_buf buf;
} bu_metrics;

static inline int bu_metrics_init(bu_metrics *m, const char *url) {
    memset(m, 0, sizeof *m);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (!(m->curl = curl_easy_init())) return -1;
    curl_easy_setopt(m->curl, CURLOPT_URL, url);
    curl_easy_setopt(m->curl, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(m->curl, CURLOPT_TIMEOUT_MS, 2000L);
    curl_easy_setopt(m->curl, CURLOPT_WRITEFUNCTION, bu_collect);
    curl_easy_setopt(m->curl, CURLOPT_WRITEDATA, &m->buf);
    return 0;
}

static inline void bu_metrics_free(bu_metrics *m) {
    if (m->curl) curl_easy_cleanup(m->curl);
    free(m->buf.p);
}

/* One scrape. 0 on HTTP 200, -1 otherwise (server not up yet, …). */
static inline int bu_metrics_fetch(bu_metrics *m) {
    m->buf.len = 0;
    if (m->buf.p) m->buf.p[0] = '\0';
    if (curl_easy_perform(m->curl) != CURLE_OK) return -1;
    long status = 0;
    curl_easy_getinfo(m->curl, CURLINFO_RESPONSE_CODE, &status);
    return status == 200 && m->buf.p ? 0 : -1;
}

/* The value of the sample named exactly `name` (labels included, e.g.
 * vigil_jetstream_messages_total{outcome="acked"}) in the last scrape;
 * -1 when absent. */
static inline double bu_metrics_value(const bu_metrics *m, const char *name) {
    size_t nl = strlen(name);
    const char *p = m->buf.p;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        if (*p != '#' && strncmp(p, name, nl) == 0 && p[nl] == ' ') return strtod(p + nl + 1, NULL);
        p = eol ? eol + 1 : NULL;
    }
    return -1;
}

#endif

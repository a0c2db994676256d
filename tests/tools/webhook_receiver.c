/* webhook_receiver.c — a real Standard Webhooks receiver for the tests.
 *
 * Integration tests need to see what vigil's webhook sender (server/alerts/dispatch.c)
 * actually puts on the wire, through a real HTTP server rather than a mock:
 * this tool listens on 127.0.0.1 with libmicrohttpd, verifies each POST's
 * Standard Webhooks v1 signature (webhook-id, webhook-timestamp,
 * webhook-signature; HMAC via vigil_webhook_sign, i.e. OpenSSL) and appends
 * one JSON line per request to a file, flushed before it answers, so once a
 * sender has its response the line is on disk:
 *
 *   {"webhook_id":"…","timestamp":1700000000,"valid":true,"status":200,"body":{…}}
 *
 * "body" is the parsed request body (null when it is not JSON); "reason" is
 * added when "valid" is false; "received_us" is the wall clock
 * (CLOCK_REALTIME, µs since the epoch) when the request was recorded, after
 * any --delay-ms (bench/durable.sh measures event → webhook latency with
 * it). Usage:
 *
 *   webhook_receiver --out FILE [--port N] [--secret whsec_…] [--status CODE]
 *                    [--fail-first N] [--status-file F] [--delay-ms N] [--retry-after S]
 *                    [--location URL]
 *
 * --port 0 (the default) picks a free port. "PORT <n>" is always printed on
 * stdout (flushed) once the server listens. --status is the answer to every
 * request (default 200); --fail-first N answers 503 to the first N requests
 * (to exercise retries). --status-file F: when F exists and holds a status
 * code (100..599), that is the answer, read anew for every request, so a
 * test can switch the receiver between 503, 200 and 410 while it runs (write
 * F atomically: a temporary file and rename); it overrides --fail-first and
 * --status. --delay-ms N waits N ms before answering (a huge N: a receiver
 * that never answers); the line is written when the answer goes out, and a
 * request still waiting when the receiver stops is neither answered nor
 * logged. --retry-after S adds "Retry-After: S" to every answer that is not
 * 2xx; --location URL adds "Location: URL" to every 3xx answer (a
 * redirect, to check that senders do not follow it). Without --secret a request is valid when it has a
 * webhook-id and webhook-timestamp and no signature is checked. A timestamp
 * more than 5 minutes from now is invalid (the spec's replay tolerance).
 * SIGTERM or SIGINT stops it cleanly (exit 0). Each connection has its own
 * MHD thread (so a delayed answer holds only its own request); the counters
 * and the file are guarded by one mutex. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sign.h"

#define MAX_BODY (8u * 1024u * 1024u)
#define TOLERANCE_S 300

struct cfg {
    const char *secret;      /* NULL: signatures not checked */
    FILE *out;
    unsigned status;
    long fail_first;
    long seen;               /* requests answered so far */
    const char *status_file; /* NULL: not used */
    long delay_ms;
    long retry_after;        /* seconds, sent with non-2xx answers; 0: none */
    const char *location;    /* Location of 3xx answers; NULL: none */
    pthread_mutex_t mu;      /* seen, out */
};

static atomic_int stopping;   /* set once a stop signal arrived */

/* The status in the --status-file, or 0 when absent or not a code. */
static unsigned status_from_file(const char *path) {
    char buf[32];
    FILE *f = path ? fopen(path, "r") : NULL;
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *end;
    errno = 0;
    long v = strtol(buf, &end, 10);
    while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
    if (errno || end == buf || *end || v < 100 || v > 599) return 0;
    return (unsigned)v;
}

/* Sleep ms in small steps; 0 if the receiver began stopping meanwhile. */
static int nap(long ms) {
    while (ms > 0 && !stopping) {
        long step = ms < 50 ? ms : 50;
        struct timespec ts = {0, step * 1000000L};
        nanosleep(&ts, NULL);
        ms -= step;
    }
    return !stopping;
}

/* Per-request upload buffer; malloc'd, freed in request_done. */
struct req {
    char *buf;
    size_t len, cap;
    int too_big;
};

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* Does any "v1,…" entry of the space-separated header match? */
static int signature_matches(const char *secret, const char *id, long long ts, const char *body,
                             size_t len, const char *header, const char **reason) {
    char want[VIGIL_WEBHOOK_SIG_MAX];
    if (vigil_webhook_sign(secret, id, ts, body, len, want, sizeof want) != VIGIL_OK) {
        *reason = "cannot compute the signature (bad --secret?)";
        return 0;
    }
    size_t wl = strlen(want);
    const char *p = header;
    while (*p) {
        while (*p == ' ') p++;
        size_t n = strcspn(p, " ");
        if (n == wl && CRYPTO_memcmp(p, want, wl) == 0) return 1;
        p += n;
    }
    *reason = "signature mismatch";
    return 0;
}

/* Verify and write one line. Returns the status to answer. */
static unsigned record(struct cfg *cfg, struct MHD_Connection *c, struct req *r) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    long long received_us = (long long)now.tv_sec * 1000000LL + now.tv_nsec / 1000;
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    const char *tss = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
    const char *sig = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
    const char *reason = NULL;
    long long ts = 0;
    int have_ts = 0, valid = 0;
    unsigned status = status_from_file(cfg->status_file);
    pthread_mutex_lock(&cfg->mu);
    if (!status) status = cfg->seen < cfg->fail_first ? 503 : cfg->status;
    cfg->seen++;
    pthread_mutex_unlock(&cfg->mu);

    if (tss) {
        char *end;
        errno = 0;
        ts = strtoll(tss, &end, 10);
        have_ts = !errno && end != tss && !*end;
    }
    const char *body = r->buf ? r->buf : "";
    if (!id || !*id) reason = "missing webhook-id";
    else if (!have_ts) reason = "missing or malformed webhook-timestamp";
    else if (llabs(ts - (long long)time(NULL)) > TOLERANCE_S) reason = "timestamp outside tolerance";
    else if (cfg->secret && !sig) reason = "missing webhook-signature";
    else if (!cfg->secret || signature_matches(cfg->secret, id, ts, body, r->len, sig, &reason))
        valid = 1;

    cJSON *line = cJSON_CreateObject();
    cJSON *parsed = r->len ? cJSON_ParseWithLength(body, r->len) : NULL;
    if (!line) {
        cJSON_Delete(parsed);
        return 500;
    }
    cJSON_AddItemToObject(line, "webhook_id", id ? cJSON_CreateString(id) : cJSON_CreateNull());
    cJSON_AddItemToObject(line, "timestamp",
                          have_ts ? cJSON_CreateNumber((double)ts) : cJSON_CreateNull());
    cJSON_AddBoolToObject(line, "valid", valid);
    cJSON_AddNumberToObject(line, "status", status);
    cJSON_AddItemToObject(line, "body", parsed ? parsed : cJSON_CreateNull());
    if (!valid) cJSON_AddStringToObject(line, "reason", reason);
    cJSON_AddNumberToObject(line, "received_us", (double)received_us);
    char *text = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    if (!text) return 500;
    pthread_mutex_lock(&cfg->mu);
    fputs(text, cfg->out);
    fputc('\n', cfg->out);
    fflush(cfg->out);
    pthread_mutex_unlock(&cfg->mu);
    cJSON_free(text);
    return status;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, long retry_after, const char *location) {
    static const char ok[] = "ok\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof ok - 1, (void *)ok, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    if (retry_after > 0 && status >= 300) {
        char v[32];
        snprintf(v, sizeof v, "%ld", retry_after);
        MHD_add_response_header(resp, "Retry-After", v);
    }
    if (location && status >= 300 && status <= 399) MHD_add_response_header(resp, "Location", location);
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls) {
    struct cfg *cfg = cls;
    struct req *r = *con_cls;
    (void)url;
    (void)version;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (r->too_big || r->len + n > MAX_BODY) {
            r->too_big = 1;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            char *nb = realloc(r->buf, cap);
            if (!nb) return MHD_NO;
            r->buf = nb;
            r->cap = cap;
        }
        memcpy(r->buf + r->len, upload, n);
        r->len += n;
        r->buf[r->len] = '\0';
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0) return answer(c, 405, 0, NULL);
    if (r->too_big) return answer(c, 413, 0, NULL);
    if (cfg->delay_ms > 0 && !nap(cfg->delay_ms)) return MHD_NO;   /* stopping: drop it */
    return answer(c, record(cfg, c, r), cfg->retry_after, cfg->location);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    struct req *r = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (r) {
        free(r->buf);
        free(r);
        *con_cls = NULL;
    }
}

static int usage(void) {
    fprintf(stderr, "usage: webhook_receiver --out FILE [--port N] [--secret whsec_...] "
                    "[--status CODE] [--fail-first N] [--status-file F] [--delay-ms N] "
                    "[--retry-after S] [--location URL]\n");
    return 2;
}

int main(int argc, char **argv) {
    struct cfg cfg = {.status = 200};
    pthread_mutex_init(&cfg.mu, NULL);
    const char *out = NULL;
    long port = 0, v;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        const char *val = argv[++i];
        if (!strcmp(a, "--out")) out = val;
        else if (!strcmp(a, "--secret")) cfg.secret = val;
        else if (!strcmp(a, "--port")) {
            if (parse_long(val, 0, 65535, &port)) return usage();
        } else if (!strcmp(a, "--status")) {
            if (parse_long(val, 100, 599, &v)) return usage();
            cfg.status = (unsigned)v;
        } else if (!strcmp(a, "--fail-first")) {
            if (parse_long(val, 0, 1000000, &v)) return usage();
            cfg.fail_first = v;
        } else if (!strcmp(a, "--status-file")) {
            cfg.status_file = val;
        } else if (!strcmp(a, "--retry-after")) {
            if (parse_long(val, 0, 86400, &v)) return usage();
            cfg.retry_after = v;
        } else if (!strcmp(a, "--location")) {
            cfg.location = val;
        } else if (!strcmp(a, "--delay-ms")) {
            if (parse_long(val, 0, 86400000L, &v)) return usage();
            cfg.delay_ms = v;
        } else return usage();
    }
    if (!out) return usage();
    if (cfg.secret) {   /* fail early on a bad secret rather than mark everything invalid */
        char sig[VIGIL_WEBHOOK_SIG_MAX];
        if (vigil_webhook_sign(cfg.secret, "x", 0, "", 0, sig, sizeof sig) != VIGIL_OK) {
            fprintf(stderr, "webhook_receiver: --secret must be whsec_<base64>\n");
            return 2;
        }
    }
    cfg.out = fopen(out, "a");
    if (!cfg.out) {
        fprintf(stderr, "webhook_receiver: %s: %s\n", out, strerror(errno));
        return 1;
    }

    /* Block the stop signals in every thread (MHD's inherit this mask) and
     * take them synchronously below. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, handle,
        &cfg, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED,
        request_done, NULL, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "webhook_receiver: cannot listen on 127.0.0.1:%ld\n", port);
        fclose(cfg.out);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("PORT %u\n", info ? (unsigned)info->port : (unsigned)port);
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0) {
    }
    stopping = 1;   /* delayed requests give up within 50 ms */
    MHD_stop_daemon(d);
    fclose(cfg.out);
    return 0;
}

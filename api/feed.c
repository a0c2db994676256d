/* feed.c — `vigil feed`: publish event files (or the generator) as events.
 *
 * A source for demos, load and integration tests: reads the --input files
 * merged in event-time order (the same reader as replay), or `--gen` for the
 * synthetic card stream, and publishes each event as a JSON object — to NATS
 * (subject vigil.events.<type>) or as NDJSON batches of up to 1000 to
 * POST /v1/events. --rate N paces to N events per second of wall clock;
 * without it, as fast as the sink takes them. HTTP 503 is retried after its
 * Retry-After; a 400 stops the feed with the server's reason. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include "cli.h"
#include "gen.h"
#include "input.h"

#define MAX_INPUTS 32
#define HTTP_BATCH 1000

typedef struct feeder {
    natsConnection *nc;
    CURL *curl;
    const char *url;
    char *batch;
    size_t len, cap;
    int nbatch;
    uint64_t sent, http_posts;
} feeder;

static size_t discard(char *p, size_t sz, size_t n, void *ud) {
    (void)p;
    (void)ud;
    return sz * n;
}
static size_t keep(char *p, size_t sz, size_t n, void *ud) {
    char *b = ud;
    size_t have = strlen(b), room = 1023 - have, take = sz * n < room ? sz * n : room;
    memcpy(b + have, p, take);
    b[have + take] = '\0';
    return sz * n;
}

static int http_flush(feeder *f) {
    if (!f->nbatch) return 0;
    for (int attempt = 0;; attempt++) {
        char resp[1024] = "";
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/x-ndjson");
        curl_easy_setopt(f->curl, CURLOPT_URL, f->url);
        curl_easy_setopt(f->curl, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(f->curl, CURLOPT_POSTFIELDS, f->batch);
        curl_easy_setopt(f->curl, CURLOPT_POSTFIELDSIZE, (long)f->len);
        curl_easy_setopt(f->curl, CURLOPT_WRITEFUNCTION, keep);
        curl_easy_setopt(f->curl, CURLOPT_WRITEDATA, resp);
        CURLcode cc = curl_easy_perform(f->curl);
        curl_slist_free_all(h);
        long status = 0;
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 202) break;
        if ((cc != CURLE_OK || status == 503) && attempt < 600) {
            usleep(cc == CURLE_OK ? 1000000 : 200000);
            continue;
        }
        fprintf(stderr, "vigil feed: POST %s failed: %s (HTTP %ld) %s\n", f->url,
                cc == CURLE_OK ? "rejected" : curl_easy_strerror(cc), status, resp);
        return -1;
    }
    f->sent += (uint64_t)f->nbatch;
    f->http_posts++;
    f->len = 0;
    f->nbatch = 0;
    return 0;
}

static int emit(feeder *f, const char *type, const char *js, size_t len) {
    if (f->nc) {
        char subj[128];
        snprintf(subj, sizeof subj, "vigil.events.%s", type && *type ? type : "in");
        natsStatus s = natsConnection_Publish(f->nc, subj, js, (int)len);
        if (s != NATS_OK) {
            fprintf(stderr, "vigil feed: NATS publish failed: %s\n", natsStatus_GetText(s));
            return -1;
        }
        f->sent++;
        return 0;
    }
    if (f->len + len + 2 > f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 1 << 20;
        while (cap < f->len + len + 2) cap *= 2;
        char *nb = realloc(f->batch, cap);
        if (!nb) return -1;
        f->batch = nb;
        f->cap = cap;
    }
    memcpy(f->batch + f->len, js, len);
    f->len += len;
    f->batch[f->len++] = '\n';
    f->batch[f->len] = '\0';
    if (++f->nbatch >= HTTP_BATCH) return http_flush(f);
    return 0;
}

static double mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void pace(double t0, uint64_t n, double rate, feeder *f) {
    if (rate <= 0) return;
    double due = t0 + (double)n / rate, now = mono();
    if (due > now) {
        if (!f->nc && f->nbatch) http_flush(f);   /* do not hold paced events in a batch */
        usleep((useconds_t)((due - now) * 1e6));
    }
}

static void usage(void) {
    fprintf(stderr, "usage: vigil feed (--input [TYPE=]F … | --gen [--count N] [--seed S]) (--nats URL | --http URL)\n"
                    "                  [--rate N] [--time-field N[,N2…]] [--id-field N[,N2…]] [--time-format F]\n");
}

int vigil_cmd_feed(int argc, char **argv) {
    const char *inputs[MAX_INPUTS], *nats_url = NULL, *http_url = NULL;
    int ninputs = 0, gen = 0;
    double rate = 0;
    uint64_t count = 0, seed = 1;
    vigil_cli_event_opts eo;
    vigil_cli_event_opts_init(&eo);
    for (int i = 1; i < argc; i++) {
        int r = vigil_cli_event_opt(argc, argv, &i, &eo);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--gen") == 0) {
            gen = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (!(v = vigil_cli_value(argc, argv, &i))) return 2;
        char *end;
        if (strcmp(a, "--input") == 0 && ninputs < MAX_INPUTS) inputs[ninputs++] = v;
        else if (strcmp(a, "--nats") == 0) nats_url = v;
        else if (strcmp(a, "--http") == 0) http_url = v;
        else if (strcmp(a, "--rate") == 0) {
            rate = strtod(v, &end);
            if (*end || rate < 0) {
                fprintf(stderr, "vigil feed: --rate '%s': expected events per second\n", v);
                return 2;
            }
        } else if (strcmp(a, "--count") == 0) {
            count = strtoull(v, &end, 10);
            if (*end) return 2;
        } else if (strcmp(a, "--seed") == 0) {
            seed = strtoull(v, &end, 10);
            if (*end) return 2;
        } else {
            fprintf(stderr, "vigil feed: unknown option '%s'\n", a);
            usage();
            return 2;
        }
    }
    if ((!ninputs && !gen) || (!nats_url == !http_url)) {
        usage();
        return 2;
    }
    feeder f = {0};
    if (nats_url) {
        natsStatus s = natsConnection_ConnectTo(&f.nc, nats_url);
        if (s != NATS_OK) {
            fprintf(stderr, "vigil feed: cannot connect to NATS at %s: %s\n", nats_url, natsStatus_GetText(s));
            return 1;
        }
    } else {
        curl_global_init(CURL_GLOBAL_DEFAULT);
        f.curl = curl_easy_init();
        f.url = http_url;
        curl_easy_setopt(f.curl, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(f.curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(f.curl, CURLOPT_TIMEOUT, 30L);
    }
    int rc = 0;
    double t0 = mono();
    if (gen) {
        vigil_gen_opts go = {.seed = seed, .count = count};
        vigil_gen *g = vigil_gen_create(&go);
        char line[VIGIL_GEN_LINE_MAX];
        vigil_gen_event ge;
        while (g && vigil_gen_next_event(g, &ge) == 1) {
            int n = vigil_gen_format(&ge, 1, line, sizeof line);
            if (n <= 0) break;
            while (n && line[n - 1] == '\n') n--;
            if (emit(&f, ge.kind == VIGIL_GEN_TX ? "tx" : "report", line, (size_t)n) != 0) {
                rc = 1;
                break;
            }
            pace(t0, f.sent + (uint64_t)f.nbatch, rate, &f);
        }
        vigil_gen_destroy(g);
    } else {
        vigil_ruleset *rs = vigil_ruleset_create();   /* no fields: decode only time and id */
        vigil_error err;
        vigil_ruleset_finalize(rs, &err);
        vigil_input *ins[MAX_INPUTS];
        char *types[MAX_INPUTS];
        for (int i = 0; i < ninputs; i++) {
            const char *eq = strchr(inputs[i], '='), *sl = strchr(inputs[i], '/');
            types[i] = eq && (!sl || eq < sl) ? strndup(inputs[i], (size_t)(eq - inputs[i])) : NULL;
            if (vigil_input_open(inputs[i], rs, &eo.decode, &ins[i], &err) != VIGIL_OK) {
                char buf[1024];
                vigil_error_format(&err, buf, sizeof buf);
                fprintf(stderr, "vigil feed: %s\n", buf);
                return 1;
            }
        }
        uint64_t bad = 0;
        vigil_merge *m;
        vigil_merge_create(ins, ninputs, NULL, NULL, &m);
        vigil_event *ev;
        int in;
        char tbuf[64];
        while (rc == 0 && vigil_merge_next(m, &ev, &in) == VIGIL_OK) {
            size_t len;
            const char *js = vigil_event_json(ev, &len);
            const char *type = types[in];
            char *withtype = NULL;
            if (type && !vigil_event_field_text(ev, "type", tbuf, sizeof tbuf) && len > 1 && js[0] == '{') {
                size_t tl = strlen(type), nl = len + tl + 12;
                withtype = malloc(nl);   /* a JSON input with TYPE=: add the field */
                if (withtype) {
                    int n = snprintf(withtype, nl, "{\"type\":\"%s\"%s%.*s", type, len > 2 ? "," : "", (int)(len - 1), js + 1);
                    js = withtype;
                    len = (size_t)n;
                }
            } else if (!type && vigil_event_field_text(ev, "type", tbuf, sizeof tbuf)) {
                type = tbuf;
            }
            if (emit(&f, type, js, len) != 0) rc = 1;
            free(withtype);
            vigil_event_release(ev);
            pace(t0, f.sent + (uint64_t)f.nbatch, rate, &f);
        }
        bad = vigil_merge_errors(m);
        vigil_merge_destroy(m);
        vigil_ruleset_release(rs);
        for (int i = 0; i < ninputs; i++) free(types[i]);
        if (bad) fprintf(stderr, "vigil feed: %llu lines could not be read as events (skipped)\n", (unsigned long long)bad);
    }
    if (rc == 0 && f.curl && http_flush(&f) != 0) rc = 1;
    if (f.nc) {
        natsConnection_FlushTimeout(f.nc, 10000);
        natsConnection_Destroy(f.nc);
    }
    if (f.curl) curl_easy_cleanup(f.curl);
    free(f.batch);
    double secs = mono() - t0;
    fprintf(stderr, "vigil feed: %llu events in %.2f s (%.0f/s)\n", (unsigned long long)f.sent, secs,
            secs > 0 ? (double)f.sent / secs : 0);
    vigil_cli_event_opts_free(&eo);
    return rc;
}

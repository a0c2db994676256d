/* nats_pub.c — the event publisher of the issue-4 ingest benchmarks
 * (bench/durable.sh): one publisher for vigil and for the bare consumers it
 * is compared with, so that both sides of a pair see the same bytes at the
 * same pace.
 *
 * Events. The --input files are read with vigil's own reader (api/input.h:
 * CSV or JSON Lines, gzip, several files merged by event time) and each
 * event becomes what `vigil feed --input TYPE=F` sends: its JSON object with
 * "type":"TYPE" added, one event per message, subject <prefix>.<type>. All
 * events are loaded into memory before the clock starts, so reading and
 * decoding the files is never timed. --dump F writes them as NDJSON instead
 * (the HTTP benchmark's wrk script reads that file) and exits.
 *
 * Publishing.
 *  - core NATS, as fast as possible: natsConnection_Publish, and every
 *    --chunk events natsConnection_Flush (a PING/PONG: the server has
 *    processed everything before it). Flow control so that nothing is
 *    dropped: at most --window events ahead of the consumer's progress,
 *    which is asked for by NATS request (--progress-nats SUBJ: core_bare
 *    answers with its count) or read from vigil's GET /metrics
 *    (--progress-http URL --progress-metric NAME). A publisher that runs
 *    ahead would otherwise overflow the subscriber's pending buffers (the
 *    server's 64 MB per connection, the client library's pending limits) and
 *    the consumer would see fewer events than were sent.
 *  - --jetstream: js_PublishAsync (at most 4096 unacknowledged), then every
 *    ack awaited.
 *  - --rate R paces to R events per second of wall clock (1 ms ticks,
 *    SendAsap: each publish is written at once, not batched by the
 *    library's flusher); --stamp FIELD adds "FIELD":<µs since the epoch,
 *    CLOCK_REALTIME> as the first member of each event, taken just before
 *    its publish (the latency benchmark's send time).
 *
 * Done. With --done-count K the publisher then waits until the consumer's
 * progress (or --done-metric on the same /metrics) reaches K, polling every
 * --poll-ms (default 5), and reports the time from its first publish to
 * that moment: the consumer's end-to-end rate, measured the same way for
 * vigil and for the bare subscriber.
 *
 * Output: RESULT lines (name value) on stdout, for bench/durable.sh. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nats/nats.h>
#include "benchutil.h"
#include "cli.h"
#include "input.h"

#define MAX_INPUTS 8
#define MAX_TYPES 16

typedef struct events {
    char *data;          /* the events' JSON, back to back */
    size_t len, cap;
    size_t *off;         /* event i is data[off[i] .. off[i+1]) */
    unsigned char *type; /* index into types[] */
    size_t n, capn;
    char *types[MAX_TYPES];
    int ntypes;
} events;

static int ev_add(events *e, const char *js, size_t len, const char *type) {
    if (e->len + len > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : (size_t)64 << 20;
        while (cap < e->len + len) cap *= 2;
        char *nd = realloc(e->data, cap);
        if (!nd) return -1;
        e->data = nd;
        e->cap = cap;
    }
    if (e->n + 2 > e->capn) {
        size_t cap = e->capn ? e->capn * 2 : 1 << 20;
        size_t *no = realloc(e->off, cap * sizeof *no);
        if (!no) return -1;
        e->off = no;
        unsigned char *nt = realloc(e->type, cap);
        if (!nt) return -1;
        e->type = nt;
        e->capn = cap;
    }
    int t = 0;
    while (t < e->ntypes && strcmp(e->types[t], type) != 0) t++;
    if (t == e->ntypes) {
        if (t == MAX_TYPES) return -1;
        e->types[e->ntypes++] = strdup(type);
    }
    if (e->n == 0) e->off[0] = 0;
    memcpy(e->data + e->len, js, len);
    e->len += len;
    e->type[e->n] = (unsigned char)t;
    e->off[++e->n] = e->len;
    return 0;
}

/* Read and merge the inputs like `vigil feed`: TYPE= adds "type" where absent. */
static int load(events *e, const char **inputs, int ninputs, vigil_event_opts *eo, long long limit) {
    vigil_ruleset *rs = vigil_ruleset_create();   /* no fields: decode only time and id, as feed does */
    vigil_error err;
    vigil_ruleset_finalize(rs, &err);
    vigil_input *ins[MAX_INPUTS];
    char *types[MAX_INPUTS];
    for (int i = 0; i < ninputs; i++) {
        const char *eq = strchr(inputs[i], '='), *sl = strchr(inputs[i], '/');
        types[i] = eq && (!sl || eq < sl) ? strndup(inputs[i], (size_t)(eq - inputs[i])) : NULL;
        if (vigil_input_open(inputs[i], rs, &eo->decode, &ins[i], &err) != VIGIL_OK) {
            fprintf(stderr, "nats_pub: %s: %s\n", inputs[i], err.msg);
            return -1;
        }
    }
    vigil_merge *m;
    if (vigil_merge_create(ins, ninputs, NULL, NULL, &m) != VIGIL_OK) return -1;
    vigil_event *ev;
    int in, rc = 0;
    char tbuf[64];
    while ((limit < 0 || (long long)e->n < limit) && vigil_merge_next(m, &ev, &in) == VIGIL_OK) {
        size_t len;
        const char *js = vigil_event_json(ev, &len);
        const char *type = types[in];
        char *withtype = NULL;
        if (type && !vigil_event_field_text(ev, "type", tbuf, sizeof tbuf) && len > 1 && js[0] == '{') {
            size_t tl = strlen(type), nl = len + tl + 12;
            if ((withtype = malloc(nl))) {
                int n = snprintf(withtype, nl, "{\"type\":\"%s\"%s%.*s", type, len > 2 ? "," : "", (int)(len - 1), js + 1);
                js = withtype;
                len = (size_t)n;
            }
        } else if (!type && vigil_event_field_text(ev, "type", tbuf, sizeof tbuf)) {
            type = tbuf;
        }
        if (ev_add(e, js, len, type && *type ? type : "in") != 0) rc = -1;
        free(withtype);
        vigil_event_release(ev);
        if (rc) break;
    }
    if (vigil_merge_errors(m)) fprintf(stderr, "nats_pub: %llu unreadable lines skipped\n", (unsigned long long)vigil_merge_errors(m));
    vigil_merge_destroy(m);
    vigil_ruleset_release(rs);
    for (int i = 0; i < ninputs; i++) free(types[i]);
    return rc;
}

/* ---- consumer progress ---------------------------------------------------------- */

typedef struct progress {
    natsConnection *nc;
    const char *subj;        /* NATS request subject, or NULL */
    bu_metrics m;            /* vigil's /metrics */
    int http;
    const char *metric, *done_metric;
} progress;

/* The consumer's count (done != 0: the done metric), or -1 if unknown now. */
static double progress_get(progress *p, int done) {
    if (p->subj) {
        natsMsg *r = NULL;
        if (natsConnection_RequestString(&r, p->nc, p->subj, "?", 2000) != NATS_OK) return -1;
        double v = strtod(natsMsg_GetData(r) ? natsMsg_GetData(r) : "-1", NULL);
        natsMsg_Destroy(r);
        return v;
    }
    if (p->http) {
        if (bu_metrics_fetch(&p->m) != 0) return -1;
        return bu_metrics_value(&p->m, done && p->done_metric ? p->done_metric : p->metric);
    }
    return -1;
}

/* ---- JetStream acks ------------------------------------------------------------- */

static pthread_mutex_t ack_mu = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long acks_ok, acks_failed;

static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    (void)closure;
    (void)pae;
    pthread_mutex_lock(&ack_mu);
    if (pa) acks_ok++;
    else acks_failed++;
    pthread_mutex_unlock(&ack_mu);
    natsMsg_Destroy(msg);
}

static void usage(void) {
    fprintf(stderr,
            "usage: bench_nats_pub --input [TYPE=]F … [--time-field …] [--id-field …] [--count N]\n"
            "         (--dump FILE | --nats URL [--subject-prefix P] [--jetstream] [--rate R] [--stamp FIELD]\n"
            "          [--chunk N] [--window N] [--progress-nats SUBJ | --progress-http URL --progress-metric NAME]\n"
            "          [--done-count K [--done-metric NAME]] [--poll-ms MS])\n");
}

int main(int argc, char **argv) {
    const char *inputs[MAX_INPUTS], *nats_url = NULL, *dump = NULL, *prefix = "vigil.events", *stamp = NULL;
    const char *pnats = NULL, *phttp = NULL, *pmetric = NULL, *dmetric = NULL;
    int ninputs = 0, jetstream = 0;
    long long count = -1, chunk = 1000, window = 0, done_count = -1;
    double rate = 0, poll_ms = 5;
    vigil_event_opts eo;
    vigil_event_opts_init(&eo);
    for (int i = 1; i < argc; i++) {
        int r = vigil_cli_event_opt(argc, argv, &i, &eo);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--jetstream") == 0) {
            jetstream = 1;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage();
            return 0;
        }
        if (!(v = vigil_cli_value(argc, argv, &i))) return 2;
        if (strcmp(a, "--input") == 0 && ninputs < MAX_INPUTS) inputs[ninputs++] = v;
        else if (strcmp(a, "--nats") == 0) nats_url = v;
        else if (strcmp(a, "--dump") == 0) dump = v;
        else if (strcmp(a, "--subject-prefix") == 0) prefix = v;
        else if (strcmp(a, "--stamp") == 0) stamp = v;
        else if (strcmp(a, "--progress-nats") == 0) pnats = v;
        else if (strcmp(a, "--progress-http") == 0) phttp = v;
        else if (strcmp(a, "--progress-metric") == 0) pmetric = v;
        else if (strcmp(a, "--done-metric") == 0) dmetric = v;
        else if (strcmp(a, "--count") == 0) count = bu_count(v);
        else if (strcmp(a, "--chunk") == 0) chunk = bu_count(v);
        else if (strcmp(a, "--window") == 0) window = bu_count(v);
        else if (strcmp(a, "--done-count") == 0) done_count = bu_count(v);
        else if (strcmp(a, "--rate") == 0) rate = (double)bu_count(v);
        else if (strcmp(a, "--poll-ms") == 0) poll_ms = (double)bu_count(v);
        else {
            fprintf(stderr, "nats_pub: unknown option '%s'\n", a);
            usage();
            return 2;
        }
    }
    if (!ninputs || (!nats_url == !dump) || chunk <= 0 || window < 0 || rate < 0 || (phttp && !pmetric) ||
        ((window > 0 || done_count >= 0) && !pnats && !phttp)) {
        usage();
        return 2;
    }
    events e = {0};
    double tl = bu_mono();
    if (load(&e, inputs, ninputs, &eo, count) != 0 || e.n == 0) {
        fprintf(stderr, "nats_pub: no events loaded\n");
        return 1;
    }
    fprintf(stderr, "nats_pub: %zu events (%.1f MiB) loaded in %.2f s\n", e.n, (double)e.len / 1048576.0, bu_mono() - tl);
    if (dump) {
        FILE *f = fopen(dump, "w");
        if (!f) {
            perror(dump);
            return 1;
        }
        for (size_t i = 0; i < e.n; i++) {
            fwrite(e.data + e.off[i], 1, e.off[i + 1] - e.off[i], f);
            fputc('\n', f);
        }
        if (fclose(f) != 0) return 1;
        printf("RESULT events %zu\n", e.n);
        return 0;
    }

    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    jsCtx *js = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, nats_url);
    if (s == NATS_OK && rate > 0) s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK) s = natsOptions_SetIOBufSize(o, 1 << 20);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    if (s != NATS_OK) {
        fprintf(stderr, "nats_pub: cannot connect to %s: %s\n", nats_url, natsStatus_GetText(s));
        return 1;
    }
    if (jetstream) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.PublishAsync.MaxPending = 4096;
        jo.PublishAsync.AckHandler = on_ack;
        s = natsConnection_JetStream(&js, nc, &jo);
        if (s != NATS_OK) {
            fprintf(stderr, "nats_pub: no JetStream: %s\n", natsStatus_GetText(s));
            return 1;
        }
    }
    progress p = {.nc = nc, .subj = pnats, .metric = pmetric, .done_metric = dmetric};
    if (phttp) {
        if (bu_metrics_init(&p.m, phttp) != 0) return 1;
        p.http = 1;
    }
    char subj[MAX_TYPES][256];
    for (int t = 0; t < e.ntypes; t++) snprintf(subj[t], sizeof subj[t], "%s.%s", prefix, e.types[t]);
    char *sbuf = NULL;
    size_t sbcap = 0;
    unsigned long long waits = 0;
    double known = 0;   /* the consumer's last known progress */
    double t0 = bu_mono();
    for (size_t i = 0; i < e.n; i++) {
        if (rate > 0) {
            double due = t0 + (double)i / rate, now = bu_mono();
            if (due > now + 0.0005) bu_sleep_ms((due - now) * 1000);
        }
        if (window > 0 && (double)i - known >= (double)window) {
            natsConnection_Flush(nc);
            for (;;) {
                double v = progress_get(&p, 0);
                if (v >= 0) known = v;
                if ((double)i - known < (double)window * 3 / 4) break;   /* hysteresis: fewer polls */
                waits++;
                bu_sleep_ms(poll_ms);
            }
        }
        const char *data = e.data + e.off[i];
        size_t len = e.off[i + 1] - e.off[i];
        if (stamp) {
            size_t need = len + strlen(stamp) + 40;
            if (need > sbcap) {
                sbcap = need * 2;
                free(sbuf);
                if (!(sbuf = malloc(sbcap))) return 1;
            }
            int n = snprintf(sbuf, sbcap, "{\"%s\":%lld,%.*s", stamp, bu_wall_us(), (int)(len - 1), data + 1);
            data = sbuf;
            len = (size_t)n;
        }
        if (js) {
            for (int tries = 0;; tries++) {
                s = js_PublishAsync(js, subj[e.type[i]], data, (int)len, NULL);
                if (s != NATS_TIMEOUT || tries > 60) break;   /* a full ack window: wait again */
            }
        } else {
            s = natsConnection_Publish(nc, subj[e.type[i]], data, (int)len);
        }
        if (s != NATS_OK) {
            fprintf(stderr, "nats_pub: publish %zu failed: %s\n", i, natsStatus_GetText(s));
            return 1;
        }
        if (!js && rate <= 0 && (long long)(i + 1) % chunk == 0) natsConnection_Flush(nc);
    }
    if (js) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 60000;
        s = js_PublishAsyncComplete(js, &po);
        if (s != NATS_OK) fprintf(stderr, "nats_pub: JetStream acks outstanding: %s\n", natsStatus_GetText(s));
    } else {
        natsConnection_FlushTimeout(nc, 30000);
    }
    double t_pub = bu_mono() - t0;
    printf("RESULT events %zu\nRESULT bytes %zu\nRESULT pub_secs %.4f\nRESULT pub_eps %.0f\nRESULT window_waits %llu\n",
           e.n, e.len, t_pub, (double)e.n / t_pub, waits);
    if (js) printf("RESULT js_acks_ok %llu\nRESULT js_acks_failed %llu\n", acks_ok, acks_failed);
    int rc = 0;
    if (done_count >= 0) {
        double v = -1, last_change = bu_mono(), prev = -1;
        for (;;) {
            v = progress_get(&p, 1);
            if (v >= (double)done_count) break;
            if (v != prev) {
                prev = v;
                last_change = bu_mono();
            } else if (bu_mono() - last_change > 30) {
                fprintf(stderr, "nats_pub: consumer stuck at %.0f of %lld for 30 s\n", v, done_count);
                rc = 1;
                break;
            }
            bu_sleep_ms(poll_ms);
        }
        double t_done = bu_mono() - t0;
        printf("RESULT done_value %.0f\nRESULT done_secs %.4f\nRESULT done_eps %.0f\n", v, t_done, (double)e.n / t_done);
    }
    fflush(stdout);
    if (p.http) bu_metrics_free(&p.m);
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    free(sbuf);
    free(e.data);
    free(e.off);
    free(e.type);
    for (int t = 0; t < e.ntypes; t++) free(e.types[t]);
    vigil_event_opts_free(&eo);
    return rc;
}

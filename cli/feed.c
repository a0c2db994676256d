/* feed.c — `vigil feed`: publish event files (or the generator) as events.
 *
 * A source for demos, load and integration tests: reads the --input files
 * merged in event-time order (the same reader as replay), or `--gen` for the
 * synthetic card stream, and publishes each event as a JSON object — to NATS
 * (subject <prefix>.<type>, prefix "vigil.events" unless --subject-prefix) or
 * as NDJSON batches of up to 1000 to POST /v1/events. --rate N paces to N
 * events per second of wall clock; without it, as fast as the sink takes
 * them. HTTP 503 is retried after its Retry-After; a 400 stops the feed with
 * the server's reason.
 *
 * --jetstream publishes into a JetStream stream (DESIGN.md §7), the durable
 * intake of `vigil serve --jetstream`:
 *  - The stream (--stream, default VIGIL_EVENTS) is created when absent with
 *    exactly the configuration the server creates it with, so that whichever
 *    of the two comes first, the other finds what it expects: subjects
 *    ["<prefix>.>"] (default ["vigil.events.>"]), file storage, everything
 *    else the nats-server defaults (limits retention, no size or age limit,
 *    one replica, 2-minute duplicate window). An existing stream is used as
 *    it is, never changed.
 *  - Each event is one message with the header Nats-Msg-Id = the event id
 *    (--id-field), so publishing the same file again within the duplicate
 *    window stores nothing twice: the stream drops the duplicates and says
 *    so in its acks (reported at the end).
 *  - Publishes are asynchronous with at most JS_MAX_PENDING acks outstanding
 *    (a full window waits for acks rather than growing without bound); the
 *    feed then waits for every ack (JS_COMPLETE_MS). Any publish that is not
 *    acknowledged makes the feed exit 1 naming the count and the first error;
 *    nothing is re-sent out of order (a late event would not be matched):
 *    run the same feed again, the ids make that safe. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <nats/nats.h>
#include "cli.h"
#include "gen.h"
#include "server/ingest/nats_opts.h"
#include "input.h"

#define MAX_INPUTS 32
#define HTTP_BATCH 1000
#define JS_MAX_PENDING 4096     /* async publishes awaiting their ack */
#define JS_STALL_MS 1000        /* one wait for room in a full ack window ... */
#define JS_STALL_TRIES 60       /* ... tried this often before giving up */
#define JS_COMPLETE_MS 60000    /* every outstanding ack, at the end */
#define JS_API_MS 10000         /* stream lookup and creation */

/* Outcome of the JetStream acks, written by nats.c's ack thread. */
typedef struct js_acks {
    pthread_mutex_t mu;
    uint64_t stored, duplicates, failed;
    char first_error[256];
} js_acks;

typedef struct feeder {
    natsConnection *nc;
    jsCtx *js;              /* --jetstream; NULL: core NATS */
    js_acks acks;
    const char *prefix;     /* subject prefix */
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

/* jsPubAckHandler: called once per async publish on the library's thread;
 * msg is ours to destroy. */
static void on_js_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure) {
    (void)js;
    js_acks *a = closure;
    pthread_mutex_lock(&a->mu);
    if (pa && pa->Duplicate) a->duplicates++;
    else if (pa) a->stored++;
    else {
        if (!a->failed++) {
            const char *id = NULL;
            if (!msg || natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) != NATS_OK) id = NULL;
            natsStatus st = pae ? pae->Err : NATS_ERR;
            const char *text = pae && pae->ErrText && *pae->ErrText ? pae->ErrText : natsStatus_GetText(st);
            if (st == NATS_NO_RESPONDERS)
                snprintf(a->first_error, sizeof a->first_error, "event %s: no JetStream stream stores subject %s",
                         id ? id : "?", msg ? natsMsg_GetSubject(msg) : "?");
            else
                snprintf(a->first_error, sizeof a->first_error, "event %s: %s (JetStream error %d)", id ? id : "?",
                         text, pae ? (int)pae->ErrCode : 0);
        }
    }
    pthread_mutex_unlock(&a->mu);
    natsMsg_Destroy(msg);
}

/* Look the stream up; create it when absent (see the header comment for
 * the configuration, which must stay the server's). 0 or -1 (printed). */
static int js_ensure_stream(feeder *f, const char *stream) {
    jsOptions o;
    jsOptions_Init(&o);
    o.Wait = JS_API_MS;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, f->js, stream, &o, &jerr);
    if (s == NATS_OK) {
        fprintf(stderr, "vigil feed: JetStream stream %s exists (%llu messages)\n", stream,
                (unsigned long long)si->State.Msgs);
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND && jerr != JSStreamNotFoundErr) {
        natsStatus ls;
        const char *why = nats_GetLastError(&ls);
        fprintf(stderr, "vigil feed: cannot look up JetStream stream %s: %s (is nats-server running with -js?)\n",
                stream, why && *why ? why : natsStatus_GetText(s));
        return -1;
    }
    char subjects[256];
    snprintf(subjects, sizeof subjects, "%s.>", f->prefix);
    const char *subj = subjects;
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = stream;
    sc.Subjects = &subj;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    jerr = 0;
    s = js_AddStream(NULL, f->js, &sc, &o, &jerr);
    if (s != NATS_OK && jerr == JSStreamNameExistErr) s = NATS_OK;   /* the server made it meanwhile */
    if (s != NATS_OK) {
        natsStatus ls;
        const char *why = nats_GetLastError(&ls);
        fprintf(stderr, "vigil feed: cannot create JetStream stream %s on '%s': %s\n", stream, subjects,
                why && *why ? why : natsStatus_GetText(s));
        return -1;
    }
    fprintf(stderr, "vigil feed: created JetStream stream %s (subjects %s, file storage)\n", stream, subjects);
    return 0;
}

/* One event as one JetStream message, Nats-Msg-Id = its id. A full ack
 * window is waited on (JS_STALL_TRIES × JS_STALL_MS), not grown. */
static int js_emit(feeder *f, const char *subj, const char *id, const char *js, size_t len) {
    natsMsg *m = NULL;
    natsStatus s = natsMsg_Create(&m, subj, NULL, js, (int)len);
    if (s == NATS_OK && id && *id) s = natsMsgHeader_Set(m, "Nats-Msg-Id", id);
    for (int tries = 1; s == NATS_OK; tries++) {
        s = js_PublishMsgAsync(f->js, &m, NULL);
        /* NATS_TIMEOUT: the ack window stayed full for JS_STALL_MS and the
         * library gave the message back: wait again, a bounded number of times */
        if (s == NATS_TIMEOUT && tries < JS_STALL_TRIES) s = NATS_OK;
        else break;
    }
    natsMsg_Destroy(m);   /* no-op once the library owns it */
    if (s != NATS_OK) {
        natsStatus ls;
        const char *why = nats_GetLastError(&ls);
        fprintf(stderr, "vigil feed: JetStream publish of event %s to %s failed: %s\n", id ? id : "?", subj,
                why && *why ? why : natsStatus_GetText(s));
        return -1;
    }
    return 0;
}

static int emit(feeder *f, const char *type, const char *id, const char *js, size_t len) {
    if (f->nc) {
        char subj[256];
        snprintf(subj, sizeof subj, "%s.%s", f->prefix, type && *type ? type : "in");
        if (f->js) {
            if (js_emit(f, subj, id, js, len) != 0) return -1;
            f->sent++;
            return 0;
        }
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
    fprintf(stderr, "usage: vigil feed (--input [TYPE=]F … | --gen [--count N] [--seed S] [--start T] [--first-id N])\n"
                    "                  (--nats URL | --http URL)   (--start, --first-id: as vigil gen)\n"
                    "                  [--rate N] [--time-field N[,N2…]] [--id-field N[,N2…]] [--time-format F]\n"
                    "                  [--subject-prefix P]   (NATS subjects P.<type>; default vigil.events)\n"
                    "                  [--jetstream [--stream NAME]]   (with --nats: publish to JetStream, acked;\n"
                    "                       stream default VIGIL_EVENTS, created if absent on P.>, file storage)\n"
                    "NATS credentials: in the URL (nats://user:password@host:4222) or VIGIL_NATS_USER and\n"
                    "  VIGIL_NATS_PASSWORD, VIGIL_NATS_TOKEN, VIGIL_NATS_CREDS; TLS: a tls:// URL, VIGIL_NATS_TLS=1, VIGIL_NATS_TLS_CA,\n"
                    "  VIGIL_NATS_TLS_CERT, VIGIL_NATS_TLS_KEY (as `vigil serve`)\n");
}

int vigil_cmd_feed(int argc, char **argv) {
    const char *inputs[MAX_INPUTS], *nats_url = NULL, *http_url = NULL;
    const char *stream = "VIGIL_EVENTS", *prefix = "vigil.events";
    int ninputs = 0, gen = 0, jetstream = 0;
    double rate = 0;
    uint64_t count = 0, seed = 1, first_id = 0;
    int64_t gen_start = 0;   /* 0: the generator's default */
    vigil_event_opts eo;
    vigil_event_opts_init(&eo);
    for (int i = 1; i < argc; i++) {
        int r = vigil_cli_event_opt(argc, argv, &i, &eo);
        if (r < 0) return 2;
        if (r > 0) continue;
        const char *a = argv[i], *v;
        if (strcmp(a, "--gen") == 0) {
            gen = 1;
            continue;
        }
        if (strcmp(a, "--jetstream") == 0) {
            jetstream = 1;
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
        else if (strcmp(a, "--stream") == 0) stream = v;
        else if (strcmp(a, "--subject-prefix") == 0) {
            size_t n = strlen(v);
            if (!n || n > 200 || v[n - 1] == '.' || strpbrk(v, " \t*>")) {
                fprintf(stderr, "vigil feed: --subject-prefix '%s': expected a subject like vigil.events\n", v);
                return 2;
            }
            prefix = v;
        }
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
        } else if (strcmp(a, "--start") == 0) {
            if (vigil_gen_parse_start(v, &gen_start) != 0 || gen_start == 0) {
                fprintf(stderr, "vigil feed: --start '%s': expected RFC 3339 or ms since the epoch\n", v);
                return 2;
            }
        } else if (strcmp(a, "--first-id") == 0) {
            first_id = strtoull(v, &end, 10);
            if (*end || *v == '-') return 2;
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
    if (jetstream && !nats_url) {
        fprintf(stderr, "vigil feed: --jetstream needs --nats URL\n");
        return 2;
    }
    if (!*stream || strpbrk(stream, " \t.*>")) {
        fprintf(stderr, "vigil feed: --stream '%s': a stream name has no spaces, '.', '*' or '>'\n", stream);
        return 2;
    }
    feeder f = {0};
    f.prefix = prefix;
    pthread_mutex_init(&f.acks.mu, NULL);
    if (nats_url) {
        /* the server's options builder: credentials in the URL, or the same
         * VIGIL_NATS_* variables `vigil serve` reads */
        const char *tls = getenv("VIGIL_NATS_TLS");
        vigil_nats_auth na = {.tls = tls && (strcmp(tls, "1") == 0 || strcasecmp(tls, "true") == 0 ||
                                             strcasecmp(tls, "yes") == 0 || strcasecmp(tls, "on") == 0),
                              .user = getenv("VIGIL_NATS_USER"), .password = getenv("VIGIL_NATS_PASSWORD"),
                              .token = getenv("VIGIL_NATS_TOKEN"), .creds = getenv("VIGIL_NATS_CREDS"),
                              .tls_ca = getenv("VIGIL_NATS_TLS_CA"), .tls_cert = getenv("VIGIL_NATS_TLS_CERT"),
                              .tls_key = getenv("VIGIL_NATS_TLS_KEY")};
        natsOptions *no = NULL;
        vigil_error e;
        vigil_error_clear(&e);
        if (vigil_nats_options(nats_url, &na, &no, &e) != VIGIL_OK) {
            fprintf(stderr, "vigil feed: %s\n", e.msg);
            return 2;
        }
        natsStatus s = natsConnection_Connect(&f.nc, no);
        natsOptions_Destroy(no);
        if (s != NATS_OK) {
            char shown[512];
            vigil_nats_url_redact(nats_url, shown, sizeof shown);
            fprintf(stderr, "vigil feed: cannot connect to NATS at %s: %s%s\n", shown, natsStatus_GetText(s),
                    vigil_nats_connect_hint(s));
            return 1;
        }
        if (jetstream) {
            jsOptions o;
            jsOptions_Init(&o);
            o.Wait = JS_API_MS;
            o.PublishAsync.MaxPending = JS_MAX_PENDING;
            o.PublishAsync.StallWait = JS_STALL_MS;
            o.PublishAsync.AckHandler = on_js_ack;
            o.PublishAsync.AckHandlerClosure = &f.acks;
            s = natsConnection_JetStream(&f.js, f.nc, &o);
            if (s != NATS_OK || js_ensure_stream(&f, stream) != 0) {
                if (s != NATS_OK)
                    fprintf(stderr, "vigil feed: no JetStream context: %s\n", natsStatus_GetText(s));
                jsCtx_Destroy(f.js);
                natsConnection_Destroy(f.nc);
                return 1;
            }
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
        vigil_gen_opts go = {.seed = seed, .count = count, .start = gen_start, .first_id = first_id};
        vigil_gen *g = vigil_gen_create(&go);
        char line[VIGIL_GEN_LINE_MAX];
        vigil_gen_event ge;
        while (g && vigil_gen_next_event(g, &ge) == 1) {
            int n = vigil_gen_format(&ge, 1, line, sizeof line);
            if (n <= 0) break;
            while (n && line[n - 1] == '\n') n--;
            char id[32];
            snprintf(id, sizeof id, "%s%llu", ge.kind == VIGIL_GEN_TX ? "" : "r",
                     (unsigned long long)ge.transaction_id);
            if (emit(&f, ge.kind == VIGIL_GEN_TX ? "tx" : "report", id, line, (size_t)n) != 0) {
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
            if (emit(&f, type, vigil_event_id(ev), js, len) != 0) rc = 1;
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
    if (f.js) {
        /* Every ack, even after a failure (what was stored is reported). */
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = JS_COMPLETE_MS;
        natsStatus s = js_PublishAsyncComplete(f.js, &po);
        pthread_mutex_lock(&f.acks.mu);
        uint64_t stored = f.acks.stored, dup = f.acks.duplicates, failed = f.acks.failed;
        pthread_mutex_unlock(&f.acks.mu);
        uint64_t unacked = f.sent > stored + dup + failed ? f.sent - stored - dup - failed : 0;
        if (s != NATS_OK) {
            fprintf(stderr, "vigil feed: JetStream: %llu acks still outstanding after %d s: %s\n",
                    (unsigned long long)unacked, JS_COMPLETE_MS / 1000, natsStatus_GetText(s));
            rc = 1;
        }
        if (failed) {
            fprintf(stderr, "vigil feed: JetStream: %llu of %llu publishes failed; first: %s "
                            "(publishing the same input again is safe: Nats-Msg-Id drops what was stored)\n",
                    (unsigned long long)failed, (unsigned long long)f.sent, f.acks.first_error);
            rc = 1;
        }
        fprintf(stderr, "vigil feed: JetStream stream %s: %llu stored, %llu duplicates dropped, %llu failed, "
                        "%llu unacknowledged\n", stream, (unsigned long long)stored, (unsigned long long)dup,
                (unsigned long long)failed, (unsigned long long)unacked);
        jsCtx_Destroy(f.js);
        f.js = NULL;
    }
    if (f.nc) {
        natsConnection_FlushTimeout(f.nc, 10000);
        natsConnection_Destroy(f.nc);
    }
    if (f.curl) curl_easy_cleanup(f.curl);
    free(f.batch);
    pthread_mutex_destroy(&f.acks.mu);
    double secs = mono() - t0;
    fprintf(stderr, "vigil feed: %llu events in %.2f s (%.0f/s)\n", (unsigned long long)f.sent, secs,
            secs > 0 ? (double)f.sent / secs : 0);
    vigil_event_opts_free(&eo);
    return rc;
}

/* jetstream.c — durable ingest: a JetStream pull consumer, and HTTP batches
 * published to the stream (DESIGN.md §6–§7, issue 4).
 *
 * Effectively once. Every message's events are routed per key group and
 * partition; the worker that owns a (group, partition) pair applies them in
 * stream order and commits the pair's offset (the message's stream
 * sequence) in the same transaction as the state it changed. A message is
 * acked once all its items are committed (memory store: once a snapshot
 * holds them). After a restart a redelivered message's items at or below
 * their pair's offset are skipped, so nothing is applied twice.
 *
 * Order after a restart. JetStream redelivers unacked messages only after
 * AckWait, while new ones flow at once — a pair could then commit a later
 * offset before an older unacked message returns, and skip it. So at start
 * the durable consumer is recreated at its ack floor + 1 (every message up
 * to the floor is acked, hence committed): delivery resumes in stream order
 * from the first message that may not be applied everywhere. This makes the
 * durable consumer vigil's own: one vigil process per consumer (scale-out
 * uses one stream partition per instance, DESIGN.md §7).
 *
 * Backpressure: the fetcher blocks while a worker queue is full and does
 * not fetch while a store is down (vsrv_paused), so unacked messages stay
 * in the stream. HTTP: POST /v1/events publishes the validated body as ONE
 * message (Nats-Msg-Id = SHA-256 of the body: a retried POST is dropped by
 * the stream's duplicate window) from a small pool of publisher threads;
 * the MHD connection stays suspended until the stream acked. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "server/common/fault.h"
#include "server/server_int.h"

#define PUBLISHERS 4
#define PUB_QUEUE 4096
#define ACK_WAIT_NS (300LL * 1000000000LL)   /* 5 min: a slow batch is not redelivered under us */
#define MAX_ACK_PENDING 100000

typedef struct pubjob {
    char *body;
    size_t len;
    struct MHD_Connection *conn;
    int *status;
    char *detail;
    size_t detail_len;
} pubjob;

typedef struct vjspub {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pubjob q[PUB_QUEUE];
    size_t head, n;
    int stop;
    pthread_t th[PUBLISHERS];
    int nth;
} vjspub;

/* ---- the stream and the consumer ------------------------------------------------ */

static vigil_status ensure_stream(vigil_server *s, vigil_error *err) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, s->js, s->cfg.stream, NULL, &jerr);
    if (ns == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return VIGIL_OK;
    }
    if (ns != NATS_NOT_FOUND)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot look up stream %s: %s (is nats-server "
                               "running with -js?)", s->cfg.stream, natsStatus_GetText(ns));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {s->cfg.subject};
    sc.Name = s->cfg.stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    ns = js_AddStream(&si, s->js, &sc, NULL, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot create stream %s on '%s': %s (error %d)",
                               s->cfg.stream, s->cfg.subject, natsStatus_GetText(ns), (int)jerr);
    jsStreamInfo_Destroy(si);
    fprintf(stderr, "vigil: created JetStream stream %s on '%s' (file storage)\n", s->cfg.stream, s->cfg.subject);
    return VIGIL_OK;
}

static vigil_status position_consumer(vigil_server *s, vigil_error *err) {
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    uint64_t floor = 0;
    natsStatus ns = js_GetConsumerInfo(&ci, s->js, s->cfg.stream, s->cfg.consumer, NULL, &jerr);
    if (ns == NATS_OK) {
        floor = ci->AckFloor.Stream;
        /* a consumer we created at sequence N that acked nothing yet reports
         * floor 0, though everything before N was acked by its predecessor */
        if (ci->Config && ci->Config->DeliverPolicy == js_DeliverByStartSequence && ci->Config->OptStartSeq > floor + 1)
            floor = ci->Config->OptStartSeq - 1;
        jsConsumerInfo_Destroy(ci);
        ci = NULL;
        ns = js_DeleteConsumer(s->js, s->cfg.stream, s->cfg.consumer, NULL, &jerr);
        if (ns != NATS_OK)
            return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot reset consumer %s: %s",
                                   s->cfg.consumer, natsStatus_GetText(ns));
    } else if (ns != NATS_NOT_FOUND) {
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot look up consumer %s: %s", s->cfg.consumer,
                               natsStatus_GetText(ns));
    }
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = s->cfg.consumer;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = ACK_WAIT_NS;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = MAX_ACK_PENDING;
    cc.FilterSubject = s->cfg.subject;
    if (floor) {
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = floor + 1;
    } else {
        cc.DeliverPolicy = js_DeliverAll;
    }
    ns = js_AddConsumer(&ci, s->js, s->cfg.stream, &cc, NULL, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot create consumer %s: %s (error %d)",
                               s->cfg.consumer, natsStatus_GetText(ns), (int)jerr);
    jsConsumerInfo_Destroy(ci);
    fprintf(stderr, "vigil: JetStream consumer %s on %s resumes at stream sequence %llu\n", s->cfg.consumer,
            s->cfg.stream, (unsigned long long)floor + 1);
    return VIGIL_OK;
}

/* ---- fetching ---------------------------------------------------------------------- */

/* Decode one message (one event or NDJSON lines) and route it. Takes msg. */
static void handle_msg(vigil_server *s, natsMsg *msg) {
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        natsMsg_Destroy(msg);
        return;
    }
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    size_t cap = 16, n = 0;
    vigil_event **evs = malloc(cap * sizeof *evs);
    const char *p = data ? data : "", *end = p + (len > 0 ? len : 0);
    int line = 0, bad = 0;
    while (evs && p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        line++;
        const char *a = p, *b = le;
        p = nl ? nl + 1 : end;
        while (a < b && (*a == ' ' || *a == '\r' || *a == '\t')) a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\r' || b[-1] == '\t')) b--;
        if (a == b) continue;
        vigil_event *ev;
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vigil_event_decode_json(s->rs, &s->cfg.ev.decode, a, (size_t)(b - a), NULL, 1, &ev, &err);
        if (st != VIGIL_OK) {
            unsigned long long k = atomic_fetch_add(st == VIGIL_ENOKEY ? &s->rejected_nokey : &s->rejected_bad, 1);
            if (k < 20)
                fprintf(stderr, "vigil: JetStream %s seq %llu line %d rejected: %s\n", natsMsg_GetSubject(msg),
                        (unsigned long long)seq, line, err.msg);
            bad = 1;
            continue;
        }
        if (n == cap) {
            vigil_event **ne = realloc(evs, cap * 2 * sizeof *ne);
            if (!ne) {
                vigil_event_release(ev);
                break;
            }
            evs = ne;
            cap *= 2;
        }
        evs[n++] = ev;
    }
    if (bad) atomic_fetch_add(&s->js_msgs_bad, 1);
    vsrcmsg *src = calloc(1, sizeof *src);
    if (!evs || !src) {   /* out of memory: leave it unacked, it comes back */
        for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
        free(evs);
        free(src);
        natsMsg_Destroy(msg);
        return;
    }
    src->msg = msg;
    src->seq = seq;
    atomic_init(&src->refs, 1);   /* ours while routing */
    if (n) {
        vigil_status st = vsrv_enqueue_src(s, evs, (int)n, src, 1);
        if (st == VIGIL_OK) {
            atomic_fetch_add(&s->nats_events, n);
        } else {
            for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
            if (st == VIGIL_ETOOBIG) {   /* can never fit: rejected, acked */
                atomic_fetch_add(&s->rejected_full, n);
                fprintf(stderr, "vigil: JetStream seq %llu: %zu events do not fit a worker queue; rejected\n",
                        (unsigned long long)seq, n);
            } else {   /* stopping: leave it unacked for the next run */
                natsMsg_Destroy(msg);
                src->msg = NULL;
            }
        }
    }
    free(evs);
    vsrv_src_release(s, src);   /* acks now if nothing (left) to apply */
}

static vigil_status bind_consumer(vigil_server *s, vigil_error *err) {
    vigil_status st = position_consumer(s, err);
    if (st != VIGIL_OK) return st;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = s->cfg.stream;
    so.Consumer = s->cfg.consumer;
    jsErrCode jerr = 0;
    natsStatus ns = js_PullSubscribe(&s->jsub, s->js, s->cfg.subject, s->cfg.consumer, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot bind to consumer %s: %s (error %d)",
                               s->cfg.consumer, natsStatus_GetText(ns), (int)jerr);
    return VIGIL_OK;
}

/* NATS reconnected (nats.c sets the flag): acks sent around a server
 * restart may never have been applied, leaving messages delivered and
 * unacked until AckWait. Re-position the consumer at its ack floor now:
 * what follows is redelivered in order, skipped by the offsets and acked. */
static void resync(vigil_server *s) {
    if (s->jsub) {
        natsSubscription_Destroy(s->jsub);
        s->jsub = NULL;
    }
    vigil_error err;
    vigil_error_clear(&err);
    if (bind_consumer(s, &err) != VIGIL_OK) {
        fprintf(stderr, "vigil: JetStream: re-binding after a reconnect failed: %s; retrying\n", err.msg);
        atomic_store(&s->js_resync, 1);
        usleep(500000);
    }
}

void vjs_on_reconnected(vigil_server *s) { atomic_store(&s->js_resync, 1); }

static void *fetcher_main(void *arg) {
    vigil_server *s = arg;
    int errors = 0;
    while (!atomic_load(&s->stopping) && !atomic_load(&s->js_stop)) {
        if (atomic_exchange(&s->js_resync, 0)) {
            resync(s);
            continue;
        }
        if (!s->jsub || vsrv_paused(s)) {
            usleep(100000);
            continue;
        }
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus ns = natsSubscription_Fetch(&list, s->jsub, s->cfg.fetch_batch, 500, &jerr);
        if (ns == NATS_TIMEOUT) continue;
        if (ns != NATS_OK) {
            atomic_fetch_add(&s->js_fetch_errors, 1);
            if (errors++ < 5 || errors % 100 == 0)
                fprintf(stderr, "vigil: JetStream fetch failed: %s; retrying\n", natsStatus_GetText(ns));
            usleep(200000);
            continue;
        }
        errors = 0;
        atomic_fetch_add(&s->js_fetched, (unsigned long long)list.Count);
        vigil_fault_point("fetch");
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            list.Msgs[i] = NULL;
            handle_msg(s, m);
        }
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

/* ---- HTTP → stream ---------------------------------------------------------------- */

static void *publisher_main(void *arg) {
    vigil_server *s = arg;
    vjspub *p = s->pub;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->n && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->n) {
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        pubjob j = p->q[p->head];
        p->head = (p->head + 1) % PUB_QUEUE;
        p->n--;
        pthread_mutex_unlock(&p->mu);
        unsigned char h[SHA256_DIGEST_LENGTH];
        char id[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256((const unsigned char *)j.body, j.len, h);
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(id + 2 * i, 3, "%02x", h[i]);
        char subj[256];
        /* the stream's subject filter: vigil.events.> gives vigil.events.http */
        size_t sl = strlen(s->cfg.subject);
        if (sl >= 2 && strcmp(s->cfg.subject + sl - 2, ".>") == 0)
            snprintf(subj, sizeof subj, "%.*s.http", (int)(sl - 2), s->cfg.subject);
        else
            snprintf(subj, sizeof subj, "%s", s->cfg.subject);
        natsMsg *m = NULL;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.MaxWait = 5000;
        natsStatus ns = natsMsg_Create(&m, subj, NULL, j.body, (int)j.len);
        if (ns == NATS_OK) ns = js_PublishMsg(&pa, s->js, m, &po, &jerr);
        *j.status = ns == NATS_OK ? 202 : 503;
        if (ns != NATS_OK)
            snprintf(j.detail, j.detail_len, "the event stream did not accept the batch: %s; nothing was applied; "
                     "retry later", natsStatus_GetText(ns));
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
        free(j.body);
        MHD_resume_connection(j.conn);
    }
}

vigil_status vjs_publish_async(vigil_server *s, const char *body, size_t len, struct MHD_Connection *conn,
                               int *status, char *detail, size_t detail_len) {
    vjspub *p = s->pub;
    if (!p) return VIGIL_EUNAVAILABLE;
    char *copy = malloc(len ? len : 1);
    if (!copy) return VIGIL_ENOMEM;
    memcpy(copy, body, len);
    pthread_mutex_lock(&p->mu);
    if (p->n == PUB_QUEUE || p->stop) {
        pthread_mutex_unlock(&p->mu);
        free(copy);
        return VIGIL_EFULL;
    }
    p->q[(p->head + p->n) % PUB_QUEUE] =
        (pubjob){.body = copy, .len = len, .conn = conn, .status = status, .detail = detail, .detail_len = detail_len};
    p->n++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return VIGIL_OK;
}

/* ---- start / stop ------------------------------------------------------------------- */

vigil_status vjs_start(vigil_server *s, vigil_error *err) {
    natsStatus ns = natsConnection_JetStream(&s->js, s->nc, NULL);
    if (ns != NATS_OK) return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: %s", natsStatus_GetText(ns));
    vigil_status st = ensure_stream(s, err);
    if (st == VIGIL_OK) st = bind_consumer(s, err);
    if (st != VIGIL_OK) return st;
    atomic_store(&s->js_resync, 0);
    s->pub = calloc(1, sizeof *s->pub);
    if (!s->pub) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    pthread_mutex_init(&s->pub->mu, NULL);
    pthread_cond_init(&s->pub->cv, NULL);
    for (int i = 0; i < PUBLISHERS; i++)
        if (pthread_create(&s->pub->th[i], NULL, publisher_main, s) == 0) s->pub->nth++;
    if (pthread_create(&s->fetcher, NULL, fetcher_main, s) == 0) s->fetcher_started = 1;
    return VIGIL_OK;
}

void vjs_stop_fetch(vigil_server *s) {
    atomic_store(&s->js_stop, 1);
    if (s->fetcher_started) {
        pthread_join(s->fetcher, NULL);
        s->fetcher_started = 0;
    }
}

void vjs_stop(vigil_server *s) {
    vjs_stop_fetch(s);
    if (s->pub) {
        pthread_mutex_lock(&s->pub->mu);
        s->pub->stop = 1;
        pthread_cond_broadcast(&s->pub->cv);
        pthread_mutex_unlock(&s->pub->mu);
        for (int i = 0; i < s->pub->nth; i++) pthread_join(s->pub->th[i], NULL);
        pthread_mutex_destroy(&s->pub->mu);
        pthread_cond_destroy(&s->pub->cv);
        free(s->pub);
        s->pub = NULL;
    }
    if (s->jsub) {
        natsSubscription_Destroy(s->jsub);   /* the durable consumer stays */
        s->jsub = NULL;
    }
    if (s->js) {
        jsCtx_Destroy(s->js);
        s->js = NULL;
    }
}

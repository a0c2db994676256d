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
 * not fetch while a store is down (vigil_ingest_paused), so unacked messages stay
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
#include "ingest_int.h"
#include "vigil/clock.h"
#include "server/common/log.h"

#define PUBLISHERS 4
#define PUB_QUEUE 4096
#define ACK_WAIT_NS (300LL * 1000000000LL)   /* 5 min: a slow batch is not redelivered under us */
#define MAX_ACK_PENDING 100000

typedef struct pubjob {
    char *body;
    size_t len;
    const char *format;          /* "json" | "ndjson": how the fetcher splits it */
    void (*done)(void *ctx, int status, const char *detail);
    void *ctx;
} pubjob;

/* A fetched message while its events are in the workers: acked by the
 * route wing's last release of it (vigil_source). */
typedef struct jsrc {
    vigil_source base;
    natsMsg *msg;                /* NULL: leave unacked (stopping) */
    vigil_ingest *ig;
} jsrc;

static void src_done(vigil_source *src, void *ud) {
    jsrc *j = (jsrc *)src;
    (void)ud;
    if (j->msg) {
        if (natsMsg_Ack(j->msg, NULL) == NATS_OK) atomic_fetch_add(&j->ig->js_acked, 1);
        natsMsg_Destroy(j->msg);
    }
    free(j);
}

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

static vigil_status ensure_stream(vigil_ingest *ig, vigil_error *err) {
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, ig->js, ig->cfg.stream, NULL, &jerr);
    if (ns == NATS_OK) {
        jsStreamInfo_Destroy(si);
        return VIGIL_OK;
    }
    if (ns != NATS_NOT_FOUND)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot look up stream %s: %s (is nats-server "
                               "running with -js?)", ig->cfg.stream, natsStatus_GetText(ns));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {ig->cfg.subject};
    sc.Name = ig->cfg.stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    ns = js_AddStream(&si, ig->js, &sc, NULL, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot create stream %s on '%s': %s (error %d)",
                               ig->cfg.stream, ig->cfg.subject, natsStatus_GetText(ns), (int)jerr);
    jsStreamInfo_Destroy(si);
    vigil_log(VIGIL_LOG_INFO, "ingest", "created JetStream stream %s on '%s' (file storage)", ig->cfg.stream, ig->cfg.subject);
    return VIGIL_OK;
}

/* A durable consumer that changes hands (cluster mode; and the single
 * process's own consumer at start, family = name). Every earlier
 * incarnation (a durable named `family` or `family-e<N>`) is deleted, so a
 * paused previous owner's subscription finds nothing to fetch (it would
 * otherwise take messages from the new owner: delivered to it, they come
 * back only after AckWait, behind later ones). `name` is created at
 * start_seq, or (start_seq 0) at the highest ack floor of the deleted ones
 * + 1, so delivery resumes in stream order from the first message that may
 * not be done. */
vigil_status vjs_take_consumer(jsCtx *js, const char *stream, const char *family, const char *name,
                               const char *subject, uint64_t start_seq, int64_t ack_wait_ns, int max_ack_pending,
                               vigil_error *err) {
    jsConsumerNamesList *names = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_ConsumerNames(&names, js, stream, NULL, &jerr);
    if (ns != NATS_OK && ns != NATS_NOT_FOUND)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot list the consumers of %s: %s", stream,
                               natsStatus_GetText(ns));
    size_t fl = strlen(family);
    uint64_t floor = 0;
    for (int i = 0; names && i < names->Count; i++) {
        const char *n = names->List[i];
        if (strncmp(n, family, fl) != 0) continue;
        if (n[fl]) {   /* family "-e<digits>" only */
            const char *d = n + fl + 2;
            if (strncmp(n + fl, "-e", 2) != 0 || !*d || strspn(d, "0123456789") != strlen(d)) continue;
        }
        jsConsumerInfo *ci = NULL;
        if (js_GetConsumerInfo(&ci, js, stream, n, NULL, &jerr) == NATS_OK) {
            uint64_t f = ci->AckFloor.Stream;
            if (ci->Config && ci->Config->DeliverPolicy == js_DeliverByStartSequence && ci->Config->OptStartSeq > f + 1)
                f = ci->Config->OptStartSeq - 1;
            if (f > floor) floor = f;
            jsConsumerInfo_Destroy(ci);
        }
        ns = js_DeleteConsumer(js, stream, n, NULL, &jerr);
        if (ns != NATS_OK && ns != NATS_NOT_FOUND) {
            jsConsumerNamesList_Destroy(names);
            return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot delete consumer %s: %s", n,
                                   natsStatus_GetText(ns));
        }
    }
    jsConsumerNamesList_Destroy(names);
    if (!start_seq) start_seq = floor + 1;
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = name;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = ack_wait_ns;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = max_ack_pending;
    cc.FilterSubject = subject;
    if (start_seq > 1) {
        cc.DeliverPolicy = js_DeliverByStartSequence;
        cc.OptStartSeq = start_seq;
    } else {
        cc.DeliverPolicy = js_DeliverAll;
    }
    jsConsumerInfo *ci = NULL;
    ns = js_AddConsumer(&ci, js, stream, &cc, NULL, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot create consumer %s: %s (error %d)", name,
                               natsStatus_GetText(ns), (int)jerr);
    jsConsumerInfo_Destroy(ci);
    vigil_log(VIGIL_LOG_INFO, "ingest", "JetStream consumer %s on %s starts at stream sequence %llu", name, stream,
              (unsigned long long)start_seq);
    return VIGIL_OK;
}

/* The durable consumer recreated at its ack floor + 1 (see the top of this file). */
static vigil_status position_consumer(vigil_ingest *ig, vigil_error *err) {
    return vjs_take_consumer(ig->js, ig->cfg.stream, ig->cfg.consumer, ig->cfg.consumer, ig->cfg.subject, 0,
                             ACK_WAIT_NS, MAX_ACK_PENDING, err);
}

/* ---- fetching ---------------------------------------------------------------------- */

/* A fetch's messages, decoded, routed in one enqueue (issue 16: one per
 * message made the workers wake for a few items each). */
typedef struct jsacc {
    vigil_ruleset *rs;           /* what they were decoded with (retained) */
    vigil_event **evs;
    vigil_source **srcs;         /* the source of each event */
    size_t n, cap;
    jsrc **msgs;                 /* each message with events, in order */
    size_t nmsgs, capmsgs;
} jsacc;

/* Route one message's events on their own (the fallback of a batch the
 * router refused as a whole), then drop the creator's reference. */
static void route_one(vigil_ingest *ig, vigil_ruleset *rs, jsrc *src, vigil_event **evs, size_t n) {
    if (n) {
        vigil_status st = vigil_router_enqueue_src(ig->cfg.router, rs, evs, (int)n, &src->base, 1, &ig->js_stop);
        if (st == VIGIL_OK) {
            atomic_fetch_add(&ig->nats_events, n);
        } else {
            for (size_t i = 0; i < n; i++) vigil_event_release(evs[i]);
            if (st == VIGIL_ETOOBIG) {   /* can never fit: rejected, acked */
                atomic_fetch_add(&ig->rejected_full, n);
                vigil_log(VIGIL_LOG_WARN, "ingest", "JetStream seq %llu: %zu events do not fit a worker queue; rejected",
                          (unsigned long long)src->base.seq, n);
            } else {   /* stopping: leave it unacked for the next run */
                natsMsg_Destroy(src->msg);
                src->msg = NULL;
            }
        }
    }
    vigil_source_release(&src->base);   /* acks now if nothing (left) to apply */
}

/* Route what acc holds: one enqueue for all its messages; if the router
 * refuses the whole (a queue too small for it, stopping), message by
 * message as before. Leaves acc empty. */
static void acc_flush(vigil_ingest *ig, jsacc *a) {
    if (a->n) {
        vigil_status st = vigil_router_enqueue_srcs(ig->cfg.router, a->rs, a->evs, (int)a->n, a->srcs, 1, &ig->js_stop);
        if (st == VIGIL_OK) {
            atomic_fetch_add(&ig->nats_events, a->n);
            for (size_t m = 0; m < a->nmsgs; m++) vigil_source_release(&a->msgs[m]->base);
        } else {
            size_t i = 0;
            for (size_t m = 0; m < a->nmsgs; m++) {
                size_t j = i;
                while (j < a->n && a->srcs[j] == &a->msgs[m]->base) j++;
                route_one(ig, a->rs, a->msgs[m], a->evs + i, j - i);
                i = j;
            }
        }
    }
    a->n = a->nmsgs = 0;
    vigil_ruleset_release(a->rs);
    a->rs = NULL;
}

/* Room for n more events and one more message; 0 when out of memory. */
static int acc_room(jsacc *a, size_t n) {
    if (a->n + n > a->cap) {
        size_t cap = a->cap ? a->cap : 1024;
        while (cap < a->n + n) cap *= 2;
        vigil_event **ne = realloc(a->evs, cap * sizeof *ne);
        if (!ne) return 0;
        a->evs = ne;
        vigil_source **ns = realloc(a->srcs, cap * sizeof *ns);
        if (!ns) return 0;
        a->srcs = ns;
        a->cap = cap;
    }
    if (a->nmsgs == a->capmsgs) {
        size_t cap = a->capmsgs ? 2 * a->capmsgs : 256;
        jsrc **nm = realloc(a->msgs, cap * sizeof *nm);
        if (!nm) return 0;
        a->msgs = nm;
        a->capmsgs = cap;
    }
    return 1;
}

/* Decode one message (one event, or NDJSON lines; header Vigil-Format:
 * json marks an HTTP body that is one, maybe pretty-printed, event) and
 * add it to acc (routed at the next acc_flush; a message without events is
 * acked at once). Takes msg. A bad line is counted and logged; the rest go on. */
static void handle_msg(vigil_ingest *ig, natsMsg *msg, jsacc *acc) {
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) {
        natsMsg_Destroy(msg);
        return;
    }
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    if (seq > atomic_load(&ig->js_handled_seq)) atomic_store(&ig->js_handled_seq, seq);   /* only this thread writes */
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    /* only HTTP bodies carry Vigil-Format (reading headers parses them all:
     * not for every message of a NATS publisher) */
    const char *fmt = NULL;
    int one = strcmp(natsMsg_GetSubject(msg), ig->http_subject) == 0 &&
              natsMsgHeader_Get(msg, "Vigil-Format", &fmt) == NATS_OK && fmt && strcmp(fmt, "json") == 0;
    vingest_badctx bc = {.ig = ig, .what = "JetStream", .seq = seq, .subject = natsMsg_GetSubject(msg)};
    vigil_batch_opts bo = {.mode = one ? VIGIL_BATCH_ONE_EVENT : VIGIL_BATCH_LINES, .policy = VIGIL_BATCH_SKIP_BAD,
                           .decode = ig->cfg.decode, .max_events = SIZE_MAX, .empty_ok = 1,
                           .on_bad = vingest_bad_line, .ud = &bc, .max_fields = ig->cfg.max_fields,
                           .max_depth = ig->cfg.max_depth, .max_key_bytes = ig->cfg.max_key_bytes};
    vigil_batch b;
    vigil_batch_error berr;
    vigil_ruleset *rs = vigil_router_ruleset(ig->cfg.router);   /* the rules now (hot reload) */
    if (acc->rs && acc->rs != rs) acc_flush(ig, acc);            /* one ruleset per batch */
    vigil_status bst = vigil_batch_decode(rs, &bo, data ? data : "", len > 0 ? (size_t)len : 0, &b, &berr);
    if (bst == VIGIL_ENOMEM) {   /* out of memory: leave it unacked, it comes back */
        vigil_ruleset_release(rs);
        natsMsg_Destroy(msg);
        return;
    }
    if (bst != VIGIL_OK) {   /* cannot be decoded at all: rejected, acked below with nothing to apply */
        atomic_fetch_add(&ig->rejected_bad, 1);
        vigil_log(VIGIL_LOG_WARN, "ingest", "JetStream seq %llu rejected: %s", (unsigned long long)seq, berr.msg);
        memset(&b, 0, sizeof b);
        b.bad = 1;
    }
    if (b.bad) atomic_fetch_add(&ig->js_msgs_bad, 1);
    jsrc *src = calloc(1, sizeof *src);
    if (!src) {   /* out of memory: leave it unacked, it comes back */
        vigil_batch_release(&b);
        vigil_ruleset_release(rs);
        natsMsg_Destroy(msg);
        return;
    }
    src->msg = msg;
    src->ig = ig;
    src->base.seq = seq;
    src->base.done = src_done;
    atomic_init(&src->base.refs, 1);   /* ours while routing */
    if (b.n) vingest_note_times(ig, VINGEST_SRC_JETSTREAM, b.events, b.n);
    if (!b.n) {
        vigil_source_release(&src->base);   /* nothing to apply: acked now */
    } else if (!acc_room(acc, b.n)) {       /* out of memory for the batch: this one on its own */
        route_one(ig, rs, src, b.events, b.n);
        b.n = 0;
    } else {
        if (!acc->rs) {
            acc->rs = rs;
            vigil_ruleset_retain(rs);
        }
        for (size_t i = 0; i < b.n; i++) {
            acc->evs[acc->n] = b.events[i];
            acc->srcs[acc->n++] = &src->base;
        }
        acc->msgs[acc->nmsgs++] = src;
        b.n = 0;   /* acc took the references */
    }
    vigil_batch_release(&b);
    vigil_ruleset_release(rs);
}

static vigil_status bind_consumer(vigil_ingest *ig, vigil_error *err) {
    vigil_status st = position_consumer(ig, err);
    if (st != VIGIL_OK) return st;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = ig->cfg.stream;
    so.Consumer = ig->cfg.consumer;
    jsErrCode jerr = 0;
    natsStatus ns = js_PullSubscribe(&ig->jsub, ig->js, ig->cfg.subject, ig->cfg.consumer, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot bind to consumer %s: %s (error %d)",
                               ig->cfg.consumer, natsStatus_GetText(ns), (int)jerr);
    return VIGIL_OK;
}

/* NATS reconnected (nats.c sets the flag): acks sent around a server
 * restart may never have been applied, leaving messages delivered and
 * unacked until AckWait. Re-position the consumer at its ack floor now:
 * what follows is redelivered in order, skipped by the offsets and acked. */
static void resync(vigil_ingest *ig) {
    if (ig->jsub) {   /* retired, not destroyed: its messages may still be acked (ingest_int.h) */
        natsSubscription_Unsubscribe(ig->jsub);
        if (ig->njsub_retired == RETIRED_SUBS) {
            natsSubscription_Destroy(ig->jsub_retired[0]);
            memmove(ig->jsub_retired, ig->jsub_retired + 1, (RETIRED_SUBS - 1) * sizeof ig->jsub_retired[0]);
            ig->njsub_retired--;
        }
        ig->jsub_retired[ig->njsub_retired++] = ig->jsub;
        ig->jsub = NULL;
    }
    vigil_error err;
    vigil_error_clear(&err);
    if (bind_consumer(ig, &err) != VIGIL_OK) {
        vigil_log(VIGIL_LOG_ERROR, "ingest", "JetStream: re-binding after a reconnect failed: %s; retrying", err.msg);
        atomic_store(&ig->js_resync, 1);
        usleep(500000);
    }
}

void vjs_on_reconnected(vigil_ingest *ig) { atomic_store(&ig->js_resync, 1); }

static void *fetcher_main(void *arg) {
    vigil_ingest *ig = arg;
    int errors = 0;
    jsacc acc = {0};
    while (!atomic_load(&ig->js_stop)) {
        if (atomic_exchange(&ig->js_resync, 0)) {
            resync(ig);
            continue;
        }
        if (!ig->jsub || vigil_ingest_paused(ig)) {
            usleep(100000);
            continue;
        }
        natsMsgList list = {0};
        natsStatus ns = vjs_fetch(&list, ig->jsub, ig->cfg.fetch_batch, 500, 1);
        if (ns == NATS_TIMEOUT || ns == NATS_NOT_FOUND) continue;
        if (ns != NATS_OK) {
            atomic_fetch_add(&ig->js_fetch_errors, 1);
            if (errors++ < 5 || errors % 100 == 0)
                vigil_log(VIGIL_LOG_ERROR, "ingest", "JetStream fetch failed: %s; retrying", natsStatus_GetText(ns));
            usleep(200000);
            continue;
        }
        errors = 0;
        atomic_fetch_add(&ig->js_fetched, (unsigned long long)list.Count);
        vigil_fault_point("fetch");
        for (int i = 0; i < list.Count; i++) {
            natsMsg *m = list.Msgs[i];
            list.Msgs[i] = NULL;
            handle_msg(ig, m, &acc);
        }
        acc_flush(ig, &acc);
        atomic_fetch_add(&ig->js_rounds, 1);   /* every fetched message handed over (vigil_ingest_sync) */
        natsMsgList_Destroy(&list);
    }
    free(acc.evs);
    free(acc.srcs);
    free(acc.msgs);
    return NULL;
}

/* ---- HTTP → stream ---------------------------------------------------------------- */

static void *publisher_main(void *arg) {
    vigil_ingest *ig = arg;
    vjspub *p = ig->pub;
    vrekey_pub *rpub = NULL;   /* cluster mode: this thread's publisher of keyed copies (rekey.c) */
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (!p->n && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (!p->n) {
            pthread_mutex_unlock(&p->mu);
            vrekey_pub_destroy(rpub);
            return NULL;
        }
        pubjob j = p->q[p->head];
        p->head = (p->head + 1) % PUB_QUEUE;
        p->n--;
        pthread_mutex_unlock(&p->mu);
        if (ig->cfg.cluster) {   /* issue 14 (h8): the events' keyed copies, not the raw body */
            char detail[256];
            int status = vrekey_post(ig, &rpub, j.body, j.len, j.format, detail, sizeof detail);
            free(j.body);
            j.done(j.ctx, status, detail);
            continue;
        }
        unsigned char h[SHA256_DIGEST_LENGTH];
        char id[2 * SHA256_DIGEST_LENGTH + 1];
        SHA256((const unsigned char *)j.body, j.len, h);
        for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(id + 2 * i, 3, "%02x", h[i]);
        const char *subj = ig->http_subject;
        natsMsg *m = NULL;
        jsPubAck *pa = NULL;
        jsErrCode jerr = 0;
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MsgId = id;
        po.MaxWait = 5000;
        natsStatus ns = natsMsg_Create(&m, subj, NULL, j.body, (int)j.len);
        if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Vigil-Format", j.format);
        if (ns == NATS_OK) ns = js_PublishMsg(&pa, ig->js, m, &po, &jerr);
        char detail[256] = "";
        if (ns != NATS_OK)
            snprintf(detail, sizeof detail, "the event stream did not accept the batch: %s; nothing was applied; "
                     "retry later", natsStatus_GetText(ns));
        jsPubAck_Destroy(pa);
        natsMsg_Destroy(m);
        free(j.body);
        j.done(j.ctx, ns == NATS_OK ? 202 : 503, detail);
    }
}

vigil_status vjs_publish_async(vigil_ingest *ig, const char *body, size_t len, const char *format,
                               void (*done)(void *ctx, int status, const char *detail), void *ctx) {
    vjspub *p = ig->pub;
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
        (pubjob){.body = copy, .len = len, .format = format, .done = done, .ctx = ctx};
    p->n++;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    return VIGIL_OK;
}

/* ---- start / stop ------------------------------------------------------------------- */

vigil_status vjs_start(vigil_ingest *ig, vigil_error *err) {
    /* the stream's subject filter: vigil.events.> gives vigil.events.http */
    size_t sl = strlen(ig->cfg.subject);
    if (sl >= 2 && strcmp(ig->cfg.subject + sl - 2, ".>") == 0)
        snprintf(ig->http_subject, sizeof ig->http_subject, "%.*s.http", (int)(sl - 2), ig->cfg.subject);
    else
        snprintf(ig->http_subject, sizeof ig->http_subject, "%s", ig->cfg.subject);
    natsStatus ns = natsConnection_JetStream(&ig->js, ig->nc, NULL);
    if (ns != NATS_OK) return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: %s", natsStatus_GetText(ns));
    vigil_status st = ensure_stream(ig, err);
    /* issue 14 (h8): in cluster mode the single durable consumer does not
     * run; the rekey stage (vigil_rekey_start) reads the raw stream */
    if (st == VIGIL_OK && !ig->cfg.cluster) st = bind_consumer(ig, err);
    if (st != VIGIL_OK) return st;
    atomic_store(&ig->js_resync, 0);
    ig->pub = calloc(1, sizeof *ig->pub);
    if (!ig->pub) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    pthread_mutex_init(&ig->pub->mu, NULL);
    pthread_cond_init(&ig->pub->cv, NULL);
    for (int i = 0; i < PUBLISHERS; i++)
        if (pthread_create(&ig->pub->th[i], NULL, publisher_main, ig) == 0) ig->pub->nth++;
    if (!ig->cfg.cluster && pthread_create(&ig->fetcher, NULL, fetcher_main, ig) == 0) ig->fetcher_started = 1;
    return VIGIL_OK;
}

void vjs_stop_fetch(vigil_ingest *ig) {
    atomic_store(&ig->js_stop, 1);
    if (ig->fetcher_started) {
        pthread_join(ig->fetcher, NULL);
        ig->fetcher_started = 0;
    }
}

void vjs_stop(vigil_ingest *ig) {
    vjs_stop_fetch(ig);
    if (ig->pub) {
        pthread_mutex_lock(&ig->pub->mu);
        ig->pub->stop = 1;
        pthread_cond_broadcast(&ig->pub->cv);
        pthread_mutex_unlock(&ig->pub->mu);
        for (int i = 0; i < ig->pub->nth; i++) pthread_join(ig->pub->th[i], NULL);
        pthread_mutex_destroy(&ig->pub->mu);
        pthread_cond_destroy(&ig->pub->cv);
        free(ig->pub);
        ig->pub = NULL;
    }
    if (ig->jsub) {
        natsSubscription_Destroy(ig->jsub);   /* the durable consumer stays */
        ig->jsub = NULL;
    }
    for (int i = 0; i < ig->njsub_retired; i++) natsSubscription_Destroy(ig->jsub_retired[i]);
    ig->njsub_retired = 0;
    if (ig->js) {
        jsCtx_Destroy(ig->js);
        ig->js = NULL;
    }
}

/* ---- a swap point after what was accepted (vigil_ingest_sync) ---------------------------- */

vigil_status vigil_ingest_sync(vigil_ingest *ig, int timeout_ms, vigil_error *err) {
    if (!ig->js || !ig->jsub || !ig->fetcher_started) return VIGIL_OK;
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    if (js_GetStreamInfo(&si, ig->js, ig->cfg.stream, NULL, &jerr) != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot read stream %s (error %d)", ig->cfg.stream,
                               (int)jerr);
    uint64_t last = si->State.LastSeq;
    jsStreamInfo_Destroy(si);
    int64_t deadline = vigil_now_ms() + timeout_ms;
    for (;;) {
        if (atomic_load(&ig->js_handled_seq) >= last) return VIGIL_OK;
        /* the tail of the stream may be messages this consumer does not take:
         * then nothing is pending and every delivered message was handed over */
        unsigned long long rounds = atomic_load(&ig->js_rounds);
        jsConsumerInfo *ci = NULL;
        if (natsSubscription_GetConsumerInfo(&ci, ig->jsub, NULL, &jerr) == NATS_OK) {
            int done = ci->NumPending == 0 && atomic_load(&ig->js_handled_seq) >= ci->Delivered.Stream &&
                       atomic_load(&ig->js_rounds) > rounds;
            jsConsumerInfo_Destroy(ci);
            if (done) return VIGIL_OK;
        }
        if (vigil_now_ms() >= deadline)
            return vigil_error_set(err, VIGIL_ETIMEOUT, "the event stream lags: events up to sequence %llu were not "
                                   "all taken within %d ms", (unsigned long long)last, timeout_ms);
        usleep(5000);
    }
}

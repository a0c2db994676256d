/* rekey.c — cluster mode's re-keying stage (issue 14, /work/issue14-plan.md;
 * DESIGN.md §7): the raw event stream becomes the keyed stream, one copy of
 * each event per key group it has a key of, on the subject of its (group,
 * partition) pair, so that the instance owning a pair reads only its pair.
 *
 * Why a stage of its own. Without cluster mode one process reads the raw
 * stream and routes each event to its pairs in memory (jetstream.c). With
 * several instances each pair has one owner at a time, and an owner must be
 * able to resume its pair from its own offset: the pair's events must be a
 * stream sequence of their own. The rekey worker of every instance pulls
 * from ONE shared durable consumer of the raw stream (a work queue, so a
 * raw message is rekeyed by one instance at a time) and publishes copies.
 *
 * At least once in, exactly once stored. A raw message is acked only after
 * every copy of it is stored (JetStream's publish ack); any failure (a copy
 * refused, no answer in time, a publish call failing) hands the message
 * back (Nak with a delay) and it is rekeyed again; each copy carries
 * Nats-Msg-Id = "<event id>:<gtoken>", so the keyed stream drops the copies
 * it already holds (duplicate window 2 min, far above the Nak delay and the
 * AckWait of 30 s). Copies are published asynchronously (js_PublishMsgAsync,
 * at most max_pending in flight, then the call stalls) and a fetched round
 * waits for all its acks once (js_PublishAsyncComplete), not one round trip
 * per copy. A failure hands back every message of its round that had
 * copies (the ones published fine are dropped as duplicates next time):
 * simpler than mapping acks to messages, and failures are rare.
 *
 * Bad input: a line that does not decode is counted and logged as on the
 * single-process JetStream path (vingest_bad_line) and has no copy; the
 * message's other lines go on, and the message is acked once their copies
 * are stored. POST /v1/events in cluster mode publishes its copies here too
 * (vrekey_post, from the HTTP publisher threads of jetstream.c), not
 * through the raw stream: one hop less, and the answer (202) means stored. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ingest_int.h"
#include "server/common/log.h"
#include "server/common/pairs.h"
#include "vigil/clock.h"

#define ACK_WAIT_NS (30LL * 1000000000LL)   /* a round takes at most ack_timeout_ms (10 s) */
#define MAX_ACK_PENDING 1024                /* raw messages out and unacked, all instances together */
#define FETCH_BATCH 64                      /* raw messages per round */
#define DUP_WINDOW_NS (120LL * 1000000000LL)
#define NAK_DELAY_MS 1000
#define STALL_MS 2000                       /* a publish call waits this long for room, then fails */
#define MAX_ID 200                          /* longer event ids are hashed in the Msg-Id */
#define PROGRESS_MS 10000                   /* a round still publishing after this: InProgress (AckWait anew) */

struct vrekey_pub {
    jsCtx *js;
    atomic_int used;             /* published once: nats.c 3.4's pending list exists only from then on */
    atomic_ullong refused;       /* copies the stream refused (ErrHandler), over its life */
    pthread_mutex_t mu;
    char why[256];               /* the last refusal */
};

typedef struct vrekey {
    char stream[128], subject[256], consumer[232];   /* the family and "-e<epoch>" (gated) */
    int partitions, max_pending, ack_timeout_ms;
    jsCtx *js;                   /* the worker's management context (consumer info, bind) */
    natsSubscription *sub;       /* the shared durable pull consumer */
    vrekey_pub *pub;             /* the worker's publisher */
    pthread_t th;
    int started;
    atomic_int stop;
    int gated;                   /* cluster mode: only the instance told so (vigil_rekey_set_active) re-keys */
    atomic_int want_active;      /* gated: told to re-key */
    _Atomic uint64_t epoch;      /* gated: the re-keying's epoch (the first pair's): its consumer's name */
    char family[200];            /* gated: the consumer's name without "-e<epoch>" */
    int (*may_rekey)(void *ud, uint64_t epoch);   /* gated: asked before each round */
    void *may_ud;
    atomic_int active;           /* gated: the worker's state (written by its thread only) */
} vrekey;

/* ---- publishing copies ------------------------------------------------------------ */

static void on_refused(jsCtx *js, jsPubAckErr *pae, void *closure) {
    (void)js;
    vrekey_pub *p = closure;
    pthread_mutex_lock(&p->mu);
    snprintf(p->why, sizeof p->why, "%s", pae->ErrText && *pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err));
    pthread_mutex_unlock(&p->mu);
    atomic_fetch_add(&p->refused, 1);   /* after why: a reader that sees the count sees the text */
}

static vrekey_pub *pub_create(natsConnection *nc, int max_pending, vigil_error *err) {
    vrekey_pub *p = calloc(1, sizeof *p);
    if (!p) {
        vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = max_pending;
    jo.PublishAsync.StallWait = STALL_MS;
    jo.PublishAsync.ErrHandler = on_refused;
    jo.PublishAsync.ErrHandlerClosure = p;
    natsStatus ns = natsConnection_JetStream(&p->js, nc, &jo);
    if (ns != NATS_OK) {
        vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: %s", natsStatus_GetText(ns));
        vrekey_pub_destroy(p);
        return NULL;
    }
    return p;
}

void vrekey_pub_destroy(vrekey_pub *p) {
    if (!p) return;
    if (p->js) {
        natsMsgList pend = {0};   /* nothing should be left: every round waits for its acks */
        /* (a context that never published has no pending list: nats.c 3.4 crashes asking for it) */
        if (atomic_load(&p->used) && js_PublishAsyncGetPendingList(&pend, p->js) == NATS_OK) natsMsgList_Destroy(&pend);
        jsCtx_Destroy(p->js);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

/* Wait until every copy published on p is stored. Returns how many were not:
 * refused since `refused_before`, or unconfirmed within timeout_ms (taken
 * back from the library; at least 1 after a timeout, since an ack racing
 * the take-back may hide a refusal), with *why saying why. */
static size_t pub_wait(vrekey_pub *p, unsigned long long refused_before, int timeout_ms, char *why, size_t wn) {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = timeout_ms;
    size_t lost = 0;
    natsStatus ns = js_PublishAsyncComplete(p->js, &po);
    if (ns != NATS_OK) {
        natsMsgList pend = {0};
        if (atomic_load(&p->used) && js_PublishAsyncGetPendingList(&pend, p->js) == NATS_OK) {
            lost = (size_t)pend.Count;
            natsMsgList_Destroy(&pend);
        }
        if (!lost) lost = 1;
        snprintf(why, wn, "the keyed stream did not confirm every copy within %d ms (%s)", timeout_ms,
                 natsStatus_GetText(ns));
    }
    unsigned long long refused = atomic_load(&p->refused) - refused_before;
    if (refused) {
        pthread_mutex_lock(&p->mu);
        snprintf(why, wn, "the keyed stream refused %llu cop%s: %.200s", refused, refused == 1 ? "y" : "ies", p->why);
        pthread_mutex_unlock(&p->mu);
    }
    return lost + (size_t)refused;
}

/* The Msg-Id's event part: the id itself when it is printable ASCII and at
 * most MAX_ID bytes (a header value may not hold CR or LF), else "h" + the
 * SHA-256 hex of it. */
static const char *id_part(const char *id, char hbuf[2 * SHA256_DIGEST_LENGTH + 2]) {
    size_t l = strlen(id);
    int ok = l > 0 && l <= MAX_ID;
    for (size_t i = 0; i < l && ok; i++) ok = (unsigned char)id[i] >= 0x21 && (unsigned char)id[i] <= 0x7e;
    if (ok) return id;
    unsigned char h[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)id, l, h);
    hbuf[0] = 'h';
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(hbuf + 1 + 2 * i, 3, "%02x", h[i]);
    return hbuf;
}

/* The group tokens of rs (one allocation: tok[g] points into it; NULL for
 * a group a reload left without rules, which takes no events, and for one
 * whose name is too long to name a pair: pairs.h, VIGIL_PAIR_NAME_MAX). */
typedef struct gtokens {
    int ng;
    size_t maxlen;
    const char *name[64];
    char *tok[64];
    char *mem;
} gtokens;

static atomic_int unnamed_logged;

static vigil_status tokens_make(const vrekey *rk, const vigil_ruleset *rs, gtokens *t) {
    memset(t, 0, sizeof *t);
    t->ng = vigil_ruleset_group_count(rs);
    if (t->ng > 64) t->ng = 64;   /* the router's limit (VROUTE_MAX_GROUPS): no ruleset has more */
    if (!(t->mem = malloc((size_t)(t->ng ? t->ng : 1) * VIGIL_PAIR_NAME_MAX))) return VIGIL_ENOMEM;
    for (int g = 0; g < t->ng; g++) {
        const char *k = vigil_ruleset_group_key(rs, g);
        char *tok = t->mem + (size_t)g * VIGIL_PAIR_NAME_MAX, probe[VIGIL_PAIR_NAME_MAX + 300];
        if (vigil_ruleset_group_rule_count(rs, g) == 0) continue;
        int n = vigil_cluster_group_token(k, tok, VIGIL_PAIR_NAME_MAX);
        if (n < 0 || vigil_pair_subject(probe, sizeof probe, rk->subject, k, 0) < 0) {
            if (atomic_fetch_add(&unnamed_logged, 1) < 5)
                vigil_log(VIGIL_LOG_ERROR, "ingest", "rekey: the key field '%.64s…' is too long to name its pairs "
                          "(subjects, consumers); its events get no keyed copy", k);
            continue;
        }
        t->name[g] = k;
        t->tok[g] = tok;
        if ((size_t)n > t->maxlen) t->maxlen = (size_t)n;
    }
    return VIGIL_OK;
}

/* Publish the copies of evs[0..n) (decoded with rs) on p, without waiting.
 * *copies += the copies handed to the library. VIGIL_OK, VIGIL_ENOMEM, or
 * VIGIL_EUNAVAILABLE when a publish call failed (*why says why; the copies
 * before it are in flight). */
static vigil_status publish_events(const vrekey *rk, vrekey_pub *p, const vigil_ruleset *rs,
                                   vigil_event *const *evs, size_t n, size_t *copies, char *why, size_t wn) {
    gtokens t;
    if (tokens_make(rk, rs, &t) != VIGIL_OK) return VIGIL_ENOMEM;
    size_t cap = strlen(rk->subject) + t.maxlen + 2 * MAX_ID + 64;   /* subject and Msg-Id */
    char *subj = malloc(cap), *mid = malloc(cap);
    vigil_status st = subj && mid ? VIGIL_OK : VIGIL_ENOMEM;
    for (size_t i = 0; i < n && st == VIGIL_OK; i++) {
        char hbuf[2 * SHA256_DIGEST_LENGTH + 2];
        const char *idp = NULL;
        size_t len = 0;
        const char *json = vigil_event_json(evs[i], &len);
        for (int g = 0; g < t.ng && st == VIGIL_OK; g++) {
            size_t kl;
            const char *k = t.tok[g] ? vigil_event_key(evs[i], g, &kl) : NULL;
            if (!k) continue;
            if (!idp) idp = id_part(vigil_event_id(evs[i]), hbuf);
            int part = (int)(vigil_hash(k, kl) % (uint64_t)rk->partitions);   /* as the router's key_part */
            vigil_pair_subject(subj, cap, rk->subject, t.name[g], part);     /* fits: tokens_make tried it */
            snprintf(mid, cap, "%s:%s", idp, t.tok[g]);
            natsMsg *m = NULL;
            natsStatus ns = natsMsg_Create(&m, subj, NULL, json, (int)len);
            if (ns == NATS_OK) ns = natsMsgHeader_Set(m, "Nats-Msg-Id", mid);
            if (ns == NATS_OK) atomic_store(&p->used, 1);
            if (ns == NATS_OK) ns = js_PublishMsgAsync(p->js, &m, NULL);
            natsMsg_Destroy(m);   /* NULL when the library took it */
            if (ns == NATS_OK) {
                (*copies)++;
            } else {
                snprintf(why, wn, "publishing to %s failed: %s", subj, natsStatus_GetText(ns));
                st = ns == NATS_NO_MEMORY ? VIGIL_ENOMEM : VIGIL_EUNAVAILABLE;
            }
        }
    }
    free(subj);
    free(mid);
    free(t.mem);
    return st;
}

/* ---- the raw consumer ------------------------------------------------------------- */

/* 1 when subject (no wildcards) matches filter ('*' one token, '>' the rest). */
static int subject_match(const char *filter, const char *subj) {
    const char *f = filter, *s = subj;
    for (;;) {
        const char *fe = strchr(f, '.'), *se = strchr(s, '.');
        size_t fl = fe ? (size_t)(fe - f) : strlen(f), sl = se ? (size_t)(se - s) : strlen(s);
        if (fl == 1 && *f == '>') return 1;
        if (!(fl == 1 && *f == '*') && (fl != sl || memcmp(f, s, fl) != 0)) return 0;
        if (!fe || !se) return !fe && !se;
        f = fe + 1;
        s = se + 1;
    }
}

static vigil_status keyed_stream(vrekey *rk, int retry, vigil_error *err) {
    char subj[300];
    snprintf(subj, sizeof subj, "%s.>", rk->subject);
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetStreamInfo(&si, rk->js, rk->stream, NULL, &jerr);
    if (ns == NATS_OK) {
        jsStreamConfig *c = si->Config;
        int same = c && c->SubjectsLen == 1 && strcmp(c->Subjects[0], subj) == 0;
        char has[512] = "";
        for (int i = 0; c && i < c->SubjectsLen; i++)
            snprintf(has + strlen(has), sizeof has - strlen(has), "%s'%s'", i ? ", " : "", c->Subjects[i]);
        vigil_status st = VIGIL_OK;
        if (!same)
            st = vigil_error_set(err, VIGIL_EINVAL, "the keyed stream %s exists with subjects [%s]; cluster mode "
                                 "needs exactly '%s' (cluster.stream, cluster.subject): choose another "
                                 "cluster.stream, or delete that stream", rk->stream, has, subj);
        else if (c->Retention != js_LimitsPolicy)
            st = vigil_error_set(err, VIGIL_EINVAL, "the keyed stream %s exists with a %s retention; cluster mode "
                                 "needs limits retention (each pair's owner re-reads from its own offset): choose "
                                 "another cluster.stream, or delete that stream", rk->stream,
                                 c->Retention == js_WorkQueuePolicy ? "work-queue" : "interest");
        else if (c->Duplicates < DUP_WINDOW_NS)
            vigil_log(VIGIL_LOG_WARN, "ingest", "keyed stream %s: duplicate window %lld s, under the 120 s a "
                      "redelivered raw message needs to be dropped as duplicates", rk->stream,
                      (long long)(c->Duplicates / 1000000000LL));
        jsStreamInfo_Destroy(si);
        return st;
    }
    if (ns != NATS_NOT_FOUND)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot look up the keyed stream %s: %s",
                               rk->stream, natsStatus_GetText(ns));
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {subj};
    sc.Name = rk->stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_LimitsPolicy;
    sc.Storage = js_FileStorage;
    sc.Duplicates = DUP_WINDOW_NS;
    ns = js_AddStream(&si, rk->js, &sc, NULL, &jerr);
    if (ns != NATS_OK) {   /* another instance may have created it meanwhile */
        if (retry) return keyed_stream(rk, 0, err);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot create the keyed stream %s on '%s': %s "
                               "(error %d)", rk->stream, subj, natsStatus_GetText(ns), (int)jerr);
    }
    jsStreamInfo_Destroy(si);
    vigil_log(VIGIL_LOG_INFO, "ingest", "created the keyed stream %s on '%s' (file storage, duplicate window 120 s)",
              rk->stream, subj);
    return VIGIL_OK;
}

/* The shared durable consumer of the raw stream: created when absent, else
 * checked (never reset: other instances are reading it). */
static vigil_status raw_consumer(vigil_ingest *ig, vrekey *rk, int retry, vigil_error *err) {
    jsConsumerInfo *ci = NULL;
    jsErrCode jerr = 0;
    natsStatus ns = js_GetConsumerInfo(&ci, rk->js, ig->cfg.stream, rk->consumer, NULL, &jerr);
    if (ns == NATS_OK) {
        vigil_status st = VIGIL_OK;
        const jsConsumerConfig *c = ci->Config;
        if (c && c->AckPolicy != js_AckExplicit)
            st = vigil_error_set(err, VIGIL_EINVAL, "the consumer %s on %s does not ack explicitly; delete it, "
                                 "cluster mode creates it", rk->consumer, ig->cfg.stream);
        else if (c && c->FilterSubject && *c->FilterSubject && strcmp(c->FilterSubject, ig->cfg.subject) != 0)
            st = vigil_error_set(err, VIGIL_EINVAL, "the consumer %s on %s takes '%s', not '%s'; delete it, cluster "
                                 "mode creates it", rk->consumer, ig->cfg.stream, c->FilterSubject, ig->cfg.subject);
        jsConsumerInfo_Destroy(ci);
        return st;
    }
    if (ns != NATS_NOT_FOUND)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot look up consumer %s: %s", rk->consumer,
                               natsStatus_GetText(ns));
    jsConsumerConfig cc;
    jsConsumerConfig_Init(&cc);
    cc.Durable = rk->consumer;
    cc.AckPolicy = js_AckExplicit;
    cc.AckWait = ACK_WAIT_NS;
    cc.MaxDeliver = -1;
    cc.MaxAckPending = MAX_ACK_PENDING;
    cc.FilterSubject = ig->cfg.subject;
    cc.DeliverPolicy = js_DeliverAll;
    ns = js_AddConsumer(&ci, rk->js, ig->cfg.stream, &cc, NULL, &jerr);
    if (ns != NATS_OK) {
        if (retry) return raw_consumer(ig, rk, 0, err);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot create consumer %s on %s: %s (error %d)",
                               rk->consumer, ig->cfg.stream, natsStatus_GetText(ns), (int)jerr);
    }
    jsConsumerInfo_Destroy(ci);
    vigil_log(VIGIL_LOG_INFO, "ingest", "created the rekey consumer %s on %s", rk->consumer, ig->cfg.stream);
    return VIGIL_OK;
}

static vigil_status bind_raw(vigil_ingest *ig, vrekey *rk, vigil_error *err) {
    if (rk->sub) {
        natsSubscription_Destroy(rk->sub);
        rk->sub = NULL;
    }
    vigil_status st = raw_consumer(ig, rk, 1, err);
    if (st != VIGIL_OK) return st;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = ig->cfg.stream;
    so.Consumer = rk->consumer;
    jsErrCode jerr = 0;
    natsStatus ns = js_PullSubscribe(&rk->sub, rk->js, ig->cfg.subject, rk->consumer, NULL, &so, &jerr);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot bind to consumer %s: %s (error %d)",
                               rk->consumer, natsStatus_GetText(ns), (int)jerr);
    return VIGIL_OK;
}

/* ---- the worker ------------------------------------------------------------------- */

enum { M_EMPTY, M_COPIES, M_BACK };   /* a raw message of a round: no copy (ack), copies (ack if all stored), hand back */

/* Decode one raw message (one event, or NDJSON lines; header Vigil-Format:
 * json on the HTTP subject marks one maybe pretty-printed event, as in
 * jetstream.c) and publish its copies. Returns M_EMPTY, M_COPIES or M_BACK;
 * *failed set when a publish call failed (the round stops publishing). */
static int rekey_msg(vigil_ingest *ig, vrekey *rk, const vigil_ruleset *rs, natsMsg *msg, size_t *copies,
                     int *failed, char *why, size_t wn) {
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) != NATS_OK) return M_BACK;
    uint64_t seq = meta->Sequence.Stream;
    jsMsgMetaData_Destroy(meta);
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    const char *fmt = NULL;
    int one = strcmp(natsMsg_GetSubject(msg), ig->http_subject) == 0 &&
              natsMsgHeader_Get(msg, "Vigil-Format", &fmt) == NATS_OK && fmt && strcmp(fmt, "json") == 0;
    char prefix[24];
    snprintf(prefix, sizeof prefix, "%llu", (unsigned long long)seq);
    vingest_badctx bc = {.ig = ig, .what = "JetStream", .seq = seq, .subject = natsMsg_GetSubject(msg)};
    vigil_batch_opts bo = {.mode = one ? VIGIL_BATCH_ONE_EVENT : VIGIL_BATCH_LINES, .policy = VIGIL_BATCH_SKIP_BAD,
                           .decode = ig->cfg.decode, .max_events = SIZE_MAX, .empty_ok = 1,
                           .on_bad = vingest_bad_line, .ud = &bc, .max_fields = ig->cfg.max_fields,
                           .max_depth = ig->cfg.max_depth, .max_key_bytes = ig->cfg.max_key_bytes,
                           .fallback_id_prefix = prefix};
    vigil_batch b;
    vigil_batch_error berr;
    vigil_status bst = vigil_batch_decode(rs, &bo, data ? data : "", len > 0 ? (size_t)len : 0, &b, &berr);
    if (bst == VIGIL_ENOMEM) return M_BACK;
    if (bst != VIGIL_OK) {   /* cannot be decoded at all: rejected, acked with no copy */
        atomic_fetch_add(&ig->rejected_bad, 1);
        atomic_fetch_add(&ig->js_msgs_bad, 1);
        vigil_log(VIGIL_LOG_WARN, "ingest", "JetStream seq %llu rejected: %s", (unsigned long long)seq, berr.msg);
        return M_EMPTY;
    }
    if (b.bad) atomic_fetch_add(&ig->js_msgs_bad, 1);
    vingest_note_times(ig, VINGEST_SRC_JETSTREAM, b.events, b.n);
    size_t mine = 0;
    vigil_status st = publish_events(rk, rk->pub, rs, b.events, b.n, &mine, why, wn);
    vigil_batch_release(&b);
    *copies += mine;
    if (st == VIGIL_EUNAVAILABLE) *failed = 1;
    if (st != VIGIL_OK) return M_BACK;
    return mine ? M_COPIES : M_EMPTY;
}

static void run_round(vigil_ingest *ig, vrekey *rk, natsMsgList *list) {
    int n = list->Count;
    unsigned char fate[FETCH_BATCH];
    vigil_ruleset *rs = vigil_router_ruleset(ig->cfg.router);   /* the rules now (hot reload) */
    unsigned long long before = atomic_load(&rk->pub->refused);
    int failed = 0;
    size_t copies = 0;
    char why[300] = "";
    int64_t mark = vigil_now_ms();
    for (int i = 0; i < n; i++) {
        if (vigil_now_ms() - mark > PROGRESS_MS) {   /* a long round: keep the server from redelivering it */
            for (int k = i; k < n; k++) natsMsg_InProgress(list->Msgs[k], NULL);
            mark = vigil_now_ms();
        }
        fate[i] = failed ? M_BACK : (unsigned char)rekey_msg(ig, rk, rs, list->Msgs[i], &copies, &failed, why,
                                                             sizeof why);
    }
    vigil_ruleset_release(rs);
    size_t lost = pub_wait(rk->pub, before, rk->ack_timeout_ms, why, sizeof why);
    if (lost) failed = 1;
    atomic_fetch_add(&ig->rekey_copies, copies > lost ? copies - lost : 0);
    atomic_fetch_add(&ig->rekey_publish_failures, lost + (failed && !lost));
    int back = 0;
    for (int i = 0; i < n; i++) {
        natsMsg *m = list->Msgs[i];
        if (fate[i] == M_EMPTY || (fate[i] == M_COPIES && !failed)) {
            if (natsMsg_Ack(m, NULL) == NATS_OK) atomic_fetch_add(&ig->rekey_msgs, 1);
        } else {   /* not acked: redelivered after the delay (or after AckWait if this Nak is lost) */
            natsMsg_NakWithDelay(m, NAK_DELAY_MS, NULL);
            atomic_fetch_add(&ig->rekey_naks, 1);
            back++;
        }
    }
    if (back) {
        unsigned long long k = atomic_load(&ig->rekey_naks);
        if (k < 20 || k % 1000 == 0)
            vigil_log(VIGIL_LOG_ERROR, "ingest", "rekey: %s; %d raw message(s) handed back for redelivery in %d ms",
                      why[0] ? why : "out of memory", back, NAK_DELAY_MS);
    }
}

static void *worker_main(void *arg) {
    vigil_ingest *ig = arg;
    vrekey *rk = atomic_load(&ig->rekey);
    int errors = 0;
    while (!atomic_load(&rk->stop)) {
        if (rk->gated && atomic_load(&rk->want_active) != atomic_load(&rk->active)) {   /* handed the re-keying, or giving it up */
            if (rk->sub) natsSubscription_Destroy(rk->sub);
            rk->sub = NULL;
            atomic_store(&rk->active, !atomic_load(&rk->active));
            if (atomic_load(&rk->active)) {   /* resume in stream order at the ack floor: a dead re-keyer's unacked messages first */
                vigil_error err;
                vigil_error_clear(&err);
                /* a consumer of our own (the epoch in its name): the previous re-keyer's is deleted, so a
                 * paused one cannot fetch from ours */
                snprintf(rk->consumer, sizeof rk->consumer, "%s-e%llu", rk->family,
                         (unsigned long long)atomic_load(&rk->epoch));
                if (vjs_take_consumer(rk->js, ig->cfg.stream, rk->family, rk->consumer, ig->cfg.subject, 0, ACK_WAIT_NS,
                                      MAX_ACK_PENDING, &err) != VIGIL_OK) {
                    vigil_log(VIGIL_LOG_ERROR, "ingest", "rekey: %s; retrying", err.msg);
                    atomic_store(&rk->active, 0);
                    usleep(200000);
                    continue;
                }
            }
            vigil_log(VIGIL_LOG_INFO, "ingest", "rekey: this instance %s re-keying %s", atomic_load(&rk->active) ? "starts" : "stops",
                      ig->cfg.stream);
        }
        if (rk->gated && atomic_load(&rk->active) && rk->may_rekey &&
            !rk->may_rekey(rk->may_ud, atomic_load(&rk->epoch))) {   /* our lease is not known fresh: wait */
            usleep(50000);
            continue;
        }
        if (rk->gated && !atomic_load(&rk->active)) {
            usleep(50000);
            continue;
        }
        if (!rk->sub || natsConnection_Status(ig->nc) != NATS_CONN_STATUS_CONNECTED) {
            if (!rk->sub && natsConnection_Status(ig->nc) == NATS_CONN_STATUS_CONNECTED) {
                vigil_error err;
                vigil_error_clear(&err);
                if (bind_raw(ig, rk, &err) != VIGIL_OK)
                    vigil_log(VIGIL_LOG_ERROR, "ingest", "rekey: binding the raw consumer failed: %s; retrying",
                              err.msg);
            }
            usleep(200000);
            continue;
        }
        natsMsgList list = {0};
        natsStatus ns = vjs_fetch(&list, rk->sub, FETCH_BATCH, 500, 1);
        if (ns == NATS_TIMEOUT || ns == NATS_NOT_FOUND) continue;
        if (ns != NATS_OK) {
            if (errors++ < 5 || errors % 100 == 0)
                vigil_log(VIGIL_LOG_ERROR, "ingest", "rekey: fetch failed: %s; retrying", natsStatus_GetText(ns));
            if (errors % 10 == 0) {   /* the consumer may be gone (deleted, a new server): bind again */
                natsSubscription_Destroy(rk->sub);
                rk->sub = NULL;
            }
            usleep(200000);
            continue;
        }
        errors = 0;
        run_round(ig, rk, &list);
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

/* ---- POST /v1/events in cluster mode ---------------------------------------------- */

int vrekey_post(vigil_ingest *ig, vrekey_pub **pub, const char *body, size_t len, const char *format,
                char *detail, size_t dn) {
    vrekey *rk = atomic_load(&ig->rekey);
    if (!rk) {
        snprintf(detail, dn, "cluster mode: the rekey stage is not running yet; nothing was applied; retry later");
        return 503;
    }
    if (!*pub) {
        vigil_error err;
        vigil_error_clear(&err);
        if (!(*pub = pub_create(ig->nc, rk->max_pending, &err))) {
            snprintf(detail, dn, "%s; nothing was applied; retry later", err.msg);
            return 503;
        }
    }
    unsigned char h[SHA256_DIGEST_LENGTH];
    char prefix[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)body, len, h);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++) snprintf(prefix + 2 * i, 3, "%02x", h[i]);
    vingest_badctx bc = {.ig = ig, .what = "HTTP", .subject = "POST /v1/events"};
    vigil_batch_opts bo = {.mode = strcmp(format, "json") == 0 ? VIGIL_BATCH_ONE_EVENT : VIGIL_BATCH_LINES,
                           .policy = VIGIL_BATCH_SKIP_BAD, .decode = ig->cfg.decode, .max_events = SIZE_MAX,
                           .empty_ok = 1, .on_bad = vingest_bad_line, .ud = &bc, .max_fields = ig->cfg.max_fields,
                           .max_depth = ig->cfg.max_depth, .max_key_bytes = ig->cfg.max_key_bytes,
                           .fallback_id_prefix = prefix};
    vigil_ruleset *rs = vigil_router_ruleset(ig->cfg.router);
    vigil_batch b;
    vigil_batch_error berr;
    if (vigil_batch_decode(rs, &bo, body, len, &b, &berr) != VIGIL_OK) {   /* validated before: out of memory */
        vigil_ruleset_release(rs);
        snprintf(detail, dn, "%s; nothing was applied; retry later", berr.msg);
        return 503;
    }
    unsigned long long before = atomic_load(&(*pub)->refused);
    size_t copies = 0;
    char why[300] = "";
    vigil_status st = publish_events(rk, *pub, rs, b.events, b.n, &copies, why, sizeof why);
    vigil_batch_release(&b);
    vigil_ruleset_release(rs);
    size_t lost = pub_wait(*pub, before, rk->ack_timeout_ms, why, sizeof why);
    atomic_fetch_add(&ig->rekey_copies, copies > lost ? copies - lost : 0);
    if (st == VIGIL_OK && !lost) return 202;
    atomic_fetch_add(&ig->rekey_publish_failures, lost ? lost : 1);
    snprintf(detail, dn, "%s; the batch may be partly stored: retry it (stored copies are dropped as duplicates)",
             why[0] ? why : "out of memory");
    return 503;
}

/* ---- start / stop ----------------------------------------------------------------- */

static void rekey_free(vrekey *rk) {
    if (!rk) return;
    if (rk->sub) natsSubscription_Destroy(rk->sub);
    vrekey_pub_destroy(rk->pub);
    if (rk->js) jsCtx_Destroy(rk->js);
    free(rk);
}

vigil_status vigil_rekey_start(vigil_ingest *ig, const vigil_rekey_config *cfg, vigil_error *err) {
    static const vigil_rekey_config zero;
    if (!cfg) cfg = &zero;
    if (!ig->cfg.cluster) return vigil_error_set(err, VIGIL_EINVAL, "the rekey stage runs only in cluster mode");
    if (!ig->nc || !ig->js)
        return vigil_error_set(err, VIGIL_EINVAL, "cluster mode needs NATS with JetStream (nats.url, nats.jetstream)");
    if (atomic_load(&ig->rekey)) return vigil_error_set(err, VIGIL_EINVAL, "the rekey stage is already started");
    vrekey *rk = calloc(1, sizeof *rk);
    if (!rk) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    const char *stream = cfg->stream ? cfg->stream : "VIGIL_KEYED", *subject = cfg->subject ? cfg->subject : "vigil.keyed";
    int bad = (size_t)snprintf(rk->stream, sizeof rk->stream, "%s", stream) >= sizeof rk->stream ||
              (size_t)snprintf(rk->subject, sizeof rk->subject, "%s", subject) >= sizeof rk->subject;
    if (cfg->consumer) bad |= (size_t)snprintf(rk->consumer, sizeof rk->consumer, "%s", cfg->consumer) >= sizeof rk->family;
    else bad |= (size_t)snprintf(rk->consumer, sizeof rk->consumer, "%s-rekey", ig->cfg.consumer) >= sizeof rk->family;
    rk->partitions = cfg->partitions > 0 ? cfg->partitions : 16;
    rk->max_pending = cfg->max_pending > 0 ? cfg->max_pending : 4096;
    rk->ack_timeout_ms = cfg->ack_timeout_ms > 0 ? cfg->ack_timeout_ms : 10000;
    vigil_status st = VIGIL_OK;
    char probe[300];
    snprintf(probe, sizeof probe, "%s.g.0", rk->subject);
    if (bad)
        st = vigil_error_set(err, VIGIL_EINVAL, "cluster.stream, cluster.subject or the consumer name is too long");
    else if (!*rk->subject || strpbrk(rk->subject, "*> \t") || rk->subject[strlen(rk->subject) - 1] == '.')
        st = vigil_error_set(err, VIGIL_EINVAL, "cluster.subject '%s' must be a subject prefix without wildcards, "
                             "e.g. vigil.keyed", rk->subject);
    else if (subject_match(ig->cfg.subject, probe))
        st = vigil_error_set(err, VIGIL_EINVAL, "cluster.subject '%s' lies under the raw subject '%s': the raw "
                             "stream would take the keyed copies back; choose a prefix outside it (vigil.keyed)",
                             rk->subject, ig->cfg.subject);
    natsStatus ns = NATS_OK;
    if (st == VIGIL_OK && (ns = natsConnection_JetStream(&rk->js, ig->nc, NULL)) != NATS_OK)
        st = vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: %s", natsStatus_GetText(ns));
    if (st == VIGIL_OK) st = keyed_stream(rk, 1, err);
    rk->gated = cfg->gated;
    rk->may_rekey = cfg->may_rekey;
    rk->may_ud = cfg->may_ud;
    snprintf(rk->family, sizeof rk->family, "%.199s", rk->consumer);   /* checked above to fit */
    if (st == VIGIL_OK && !rk->gated) st = bind_raw(ig, rk, err);
    if (st == VIGIL_OK && !(rk->pub = pub_create(ig->nc, rk->max_pending, err))) st = VIGIL_EUNAVAILABLE;
    if (st != VIGIL_OK) {
        rekey_free(rk);
        return st;
    }
    atomic_store(&ig->rekey, rk);
    if (pthread_create(&rk->th, NULL, worker_main, ig) != 0) {
        atomic_store(&ig->rekey, NULL);
        rekey_free(rk);
        return vigil_error_set(err, VIGIL_ENOMEM, "cannot start the rekey thread");
    }
    rk->started = 1;
    vigil_log(VIGIL_LOG_INFO, "ingest", "rekey: %s (%s) → %s '%s.<group>.<0..%d>'", ig->cfg.stream, rk->consumer,
              rk->stream, rk->subject, rk->partitions - 1);
    return VIGIL_OK;
}

void vigil_rekey_set_active(vigil_ingest *ig, int on, uint64_t epoch) {
    vrekey *rk = ig ? atomic_load(&ig->rekey) : NULL;
    if (!rk) return;
    if (on) atomic_store(&rk->epoch, epoch);
    atomic_store(&rk->want_active, on != 0);
    /* stopping waits for the round in progress (at most ack_timeout_ms): the next re-keyer starts after it */
    for (int waited = 0; !on && rk->started && atomic_load(&rk->active) && waited < rk->ack_timeout_ms + 5000; waited += 10)
        usleep(10000);
}

void vigil_rekey_stop(vigil_ingest *ig) {
    vrekey *rk = ig ? atomic_load(&ig->rekey) : NULL;
    if (!rk) return;
    atomic_store(&rk->stop, 1);
    if (rk->started) {
        pthread_join(rk->th, NULL);
        rk->started = 0;
    }
    if (rk->sub) {
        natsSubscription_Destroy(rk->sub);   /* the durable consumer stays */
        rk->sub = NULL;
    }
}

void vrekey_free(vigil_ingest *ig) {
    vigil_rekey_stop(ig);
    rekey_free(atomic_exchange(&ig->rekey, NULL));
}

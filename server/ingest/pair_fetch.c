/* pair_fetch.c — cluster mode's intake (DESIGN.md §7, docs/scaling.md): one
 * durable pull consumer per owned (key group, partition) pair on the keyed
 * stream, and one fetcher thread that feeds them all to the route wing.
 *
 * Why one consumer per pair: a pair moves between instances with its state,
 * and its messages must move with it, in order, from the offset its state
 * was committed at. When this instance takes a pair (the cluster wing's
 * lease, then the route wing's vigil_router_pair_open, which reads the
 * stored offset), the pair's durable consumer is recreated to deliver from
 * offset + 1: whatever the previous owner fetched and never committed comes
 * again, what it committed does not (the worker also skips anything at or
 * below the offset). Each message is one event for one key group (the
 * re-keying stage published it, rekey.c); it is routed to that group only,
 * carrying the epoch the pair was held with, so a worker drops it if the
 * pair changed hands meanwhile. Acks are sent after the commit (the route
 * wing's vigil_source.done), never for a dropped item.
 *
 * The fetcher goes round the owned pairs with no-wait fetches (a pair with
 * nothing pending costs one request), and sleeps briefly when a whole round
 * found nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "ingest_int.h"
#include "server/common/log.h"
#include "server/common/pairs.h"

#define PAIR_ACK_WAIT_NS (60LL * 1000000000LL)
#define PAIR_MAX_ACK_PENDING 20000

/* A pair's subscription, alive while a message fetched from it is in the
 * workers: nats.c's messages hold no reference to their subscription, and
 * acking one after natsSubscription_Destroy reads freed memory. */
typedef struct vpsub {
    natsSubscription *sub;
    atomic_int refs;             /* the slot's, and one per message out */
    atomic_int stopped;          /* the pair was given up: its messages are not acked */
} vpsub;

static void vpsub_release(vpsub *v) {
    if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
        natsSubscription_Destroy(v->sub);   /* the durable stays: the next owner recreates it */
        free(v);
    }
}

typedef struct vpslot {
    int used;                    /* a started pair */
    int g, p;
    char gname[256];
    uint64_t epoch;
    vpsub *sub;
    int busy;                    /* the fetcher is using sub (outside the lock) */
    uint64_t pending;            /* messages the consumer had left at the last fetch */
} vpslot;

struct vpairs {
    vigil_pairs_config cfg;      /* strings copied */
    char stream[256], subject[256], consumer[256];
    pthread_mutex_t mu;
    pthread_cond_t idle;         /* a slot stopped being busy */
    vpslot *slots;
    int nslots;                  /* VPAIRS_MAX_GROUPS * partitions */
    pthread_t th;
    int started;
    atomic_int stop;
    atomic_ullong fetched, acked, bad;
};

#define VPAIRS_MAX_GROUPS 64

typedef struct psrc {            /* one message while its event is in the workers */
    vigil_source base;
    natsMsg *msg;
    vpsub *sub;                  /* a reference: the message is acked through it */
    struct vpairs *ps;
} psrc;

static void psrc_done(vigil_source *src, void *ud) {
    psrc *j = (psrc *)src;
    (void)ud;
    if (j->msg) {
        if (!atomic_load(&src->noack) && !atomic_load(&j->sub->stopped) && natsMsg_Ack(j->msg, NULL) == NATS_OK)
            atomic_fetch_add(&j->ps->acked, 1);
        natsMsg_Destroy(j->msg);
    }
    vpsub_release(j->sub);
    free(j);
}

/* ---- consumers -------------------------------------------------------------------- */

static vigil_status make_consumer(vigil_ingest *ig, struct vpairs *ps, vpslot *s, uint64_t start_seq,
                                  vigil_error *err) {
    char family[VIGIL_PAIR_NAME_MAX], durable[VIGIL_PAIR_NAME_MAX + 32], subject[VIGIL_PAIR_NAME_MAX];
    if (vigil_pair_consumer(family, sizeof family, ps->consumer, s->gname, s->p) < 0 ||
        vigil_pair_subject(subject, sizeof subject, ps->subject, s->gname, s->p) < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "pair %s:p%d: its consumer or subject name is too long", s->gname,
                               s->p);
    /* one durable per ownership (its epoch in the name): the previous owner's is deleted, so it cannot
     * fetch from ours even if it was paused and does not know yet */
    snprintf(durable, sizeof durable, "%s-e%llu", family, (unsigned long long)s->epoch);
    vigil_status st = vjs_take_consumer(ig->js, ps->stream, family, durable, subject, start_seq > 1 ? start_seq : 1,
                                        PAIR_ACK_WAIT_NS, PAIR_MAX_ACK_PENDING, err);
    if (st != VIGIL_OK) return st;
    jsErrCode jerr = 0;
    natsStatus ns;
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = ps->stream;
    so.Consumer = durable;
    natsSubscription *sub = NULL;
    ns = js_PullSubscribe(&sub, ig->js, subject, durable, NULL, &so, &jerr);
    if (ns == NATS_OK && !(s->sub = calloc(1, sizeof *s->sub))) {
        natsSubscription_Destroy(sub);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    }
    if (ns == NATS_OK) {
        s->sub->sub = sub;
        atomic_init(&s->sub->refs, 1);
    }
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "JetStream: cannot bind to consumer %s: %s (error %d)",
                               durable, natsStatus_GetText(ns), (int)jerr);
    return VIGIL_OK;
}

/* ---- the fetcher ------------------------------------------------------------------- */

/* One keyed message: one event for group s->g. Takes msg. */
static void handle(vigil_ingest *ig, struct vpairs *ps, const vpslot *s, natsMsg *msg) {
    jsMsgMetaData *meta = NULL;
    uint64_t seq = 0;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
    }
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    vingest_badctx bc = {.ig = ig, .what = "JetStream", .seq = seq, .subject = natsMsg_GetSubject(msg)};
    vigil_batch_opts bo = {.mode = VIGIL_BATCH_ONE_EVENT, .policy = VIGIL_BATCH_SKIP_BAD, .decode = ig->cfg.decode,
                           .max_events = 1, .empty_ok = 1, .on_bad = vingest_bad_line, .ud = &bc,
                           .max_fields = ig->cfg.max_fields, .max_depth = ig->cfg.max_depth,
                           .max_key_bytes = ig->cfg.max_key_bytes};
    vigil_batch b;
    vigil_batch_error berr;
    vigil_ruleset *rs = vigil_router_ruleset(ig->cfg.router);
    vigil_status bst = vigil_batch_decode(rs, &bo, data ? data : "", len > 0 ? (size_t)len : 0, &b, &berr);
    if (bst == VIGIL_ENOMEM) {   /* comes back after AckWait */
        vigil_ruleset_release(rs);
        natsMsg_Destroy(msg);
        return;
    }
    if (bst != VIGIL_OK) {
        atomic_fetch_add(&ps->bad, 1);
        vigil_log(VIGIL_LOG_WARN, "ingest", "keyed message %s seq %llu rejected: %s", natsMsg_GetSubject(msg),
                  (unsigned long long)seq, berr.msg);
        memset(&b, 0, sizeof b);
    }
    psrc *src = calloc(1, sizeof *src);
    if (!src) {
        vigil_batch_release(&b);
        vigil_ruleset_release(rs);
        natsMsg_Destroy(msg);
        return;
    }
    src->msg = msg;
    src->sub = s->sub;
    atomic_fetch_add(&s->sub->refs, 1);
    src->ps = ps;
    src->base.seq = seq;
    src->base.epoch = s->epoch;
    src->base.done = psrc_done;
    atomic_init(&src->base.refs, 1);
    if (b.n == 1) {
        vingest_note_times(ig, VINGEST_SRC_JETSTREAM, b.events, 1);
        vigil_status st = vigil_router_enqueue_pair(ig->cfg.router, rs, b.events[0], s->g, &src->base, 1, &ps->stop);
        if (st == VIGIL_OK) {
            atomic_fetch_add(&ig->nats_events, 1);
            b.n = 0;
        } else if (st == VIGIL_ENOTFOUND) {   /* no key of its group under these rules: nothing to apply */
            atomic_fetch_add(&ig->rejected_nokey, 1);
        } else {   /* stopping: leave it unacked */
            atomic_store(&src->base.noack, 1);
        }
    }
    vigil_batch_release(&b);
    vigil_ruleset_release(rs);
    vigil_source_release(&src->base);
}

static void *fetcher_main(void *arg) {
    vigil_ingest *ig = arg;
    struct vpairs *ps = ig->pairs;
    int next = 0, quiet = 0, errors = 0;
    while (!atomic_load(&ps->stop)) {
        if (vigil_ingest_paused(ig)) {
            usleep(100000);
            continue;
        }
        /* the next started slot after `next`; a round is over at the wrap */
        pthread_mutex_lock(&ps->mu);
        int i = -1;
        for (int k = 0; k < ps->nslots; k++) {
            int j = (next + k) % ps->nslots;
            if (ps->slots[j].used && ps->slots[j].sub) {
                i = j;
                break;
            }
        }
        int wrapped = i < 0 || i < next;
        vpslot snap = {0};
        if (i >= 0) {
            ps->slots[i].busy = 1;
            snap = ps->slots[i];
        }
        pthread_mutex_unlock(&ps->mu);
        if (wrapped) {   /* a whole round: sleep if it found nothing */
            if (quiet) usleep(i < 0 ? 50000 : 5000);
            quiet = 1;
        }
        if (i < 0) {
            next = 0;
            continue;
        }
        next = i + 1;
        if (ps->cfg.may_fetch && !ps->cfg.may_fetch(ps->cfg.ud, snap.g, snap.p, snap.epoch)) {   /* lease not fresh */
            pthread_mutex_lock(&ps->mu);
            ps->slots[i].busy = 0;
            pthread_cond_broadcast(&ps->idle);
            pthread_mutex_unlock(&ps->mu);
            continue;
        }
        natsMsgList list = {0};
        natsStatus ns = vjs_fetch(&list, snap.sub->sub, ig->cfg.fetch_batch > 0 ? ig->cfg.fetch_batch : 1000, 200, 0);
        if (ns == NATS_OK && list.Count > 0) {
            quiet = 0;
            errors = 0;
            atomic_fetch_add(&ps->fetched, (unsigned long long)list.Count);
            jsMsgMetaData *meta = NULL;
            if (natsMsg_GetMetaData(&meta, list.Msgs[list.Count - 1]) == NATS_OK) {
                snap.pending = meta->NumPending;
                jsMsgMetaData_Destroy(meta);
            }
            for (int m = 0; m < list.Count; m++) {
                natsMsg *msg = list.Msgs[m];
                list.Msgs[m] = NULL;
                handle(ig, ps, &snap, msg);
            }
        } else if (ns != NATS_OK && ns != NATS_TIMEOUT && ns != NATS_NOT_FOUND) {
            atomic_fetch_add(&ig->js_fetch_errors, 1);
            if (errors++ < 5 || errors % 100 == 0)
                vigil_log(VIGIL_LOG_ERROR, "ingest", "pair %s:p%d: fetch failed: %s; retrying", snap.gname, snap.p,
                          natsStatus_GetText(ns));
            usleep(100000);
        } else {
            snap.pending = 0;
        }
        natsMsgList_Destroy(&list);
        pthread_mutex_lock(&ps->mu);
        ps->slots[i].busy = 0;
        ps->slots[i].pending = snap.pending;
        pthread_cond_broadcast(&ps->idle);
        pthread_mutex_unlock(&ps->mu);
    }
    return NULL;
}

/* ---- the public side ------------------------------------------------------------ */

vigil_status vigil_ingest_pairs_start(vigil_ingest *ig, const vigil_pairs_config *pc, vigil_error *err) {
    if (!ig->js) return vigil_error_set(err, VIGIL_EINVAL, "cluster mode needs JetStream");
    if (ig->pairs) return VIGIL_OK;
    struct vpairs *ps = calloc(1, sizeof *ps);
    if (!ps) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    ps->cfg = *pc;
    snprintf(ps->stream, sizeof ps->stream, "%s", pc->stream);
    snprintf(ps->subject, sizeof ps->subject, "%s", pc->subject);
    snprintf(ps->consumer, sizeof ps->consumer, "%s", pc->consumer);
    ps->nslots = VPAIRS_MAX_GROUPS * pc->partitions;
    ps->slots = calloc((size_t)ps->nslots, sizeof *ps->slots);
    if (!ps->slots) {
        free(ps);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&ps->mu, NULL);
    pthread_cond_init(&ps->idle, NULL);
    ig->pairs = ps;
    if (pthread_create(&ps->th, NULL, fetcher_main, ig) != 0) {
        vingest_pairs_free(ig);
        return vigil_error_set(err, VIGIL_ENOMEM, "cannot start the pair fetcher");
    }
    ps->started = 1;
    return VIGIL_OK;
}

vigil_status vigil_ingest_pair_start(vigil_ingest *ig, int g, const char *gname, int p, uint64_t epoch,
                                     uint64_t start_seq, vigil_error *err) {
    struct vpairs *ps = ig->pairs;
    if (!ps || g < 0 || g >= VPAIRS_MAX_GROUPS || p < 0 || p >= ps->cfg.partitions || !gname)
        return vigil_error_set(err, VIGIL_EINVAL, "no pair (%d, %d)", g, p);
    vigil_ingest_pair_stop(ig, g, p);   /* a pair taken again */
    vpslot s = {.used = 1, .g = g, .p = p, .epoch = epoch};
    snprintf(s.gname, sizeof s.gname, "%s", gname);
    vigil_status st = make_consumer(ig, ps, &s, start_seq, err);
    if (st != VIGIL_OK) return st;
    pthread_mutex_lock(&ps->mu);
    ps->slots[g * ps->cfg.partitions + p] = s;
    pthread_mutex_unlock(&ps->mu);
    return VIGIL_OK;
}

void vigil_ingest_pair_stop(vigil_ingest *ig, int g, int p) {
    struct vpairs *ps = ig->pairs;
    if (!ps || g < 0 || g >= VPAIRS_MAX_GROUPS || p < 0 || p >= ps->cfg.partitions) return;
    pthread_mutex_lock(&ps->mu);
    vpslot *s = &ps->slots[g * ps->cfg.partitions + p];
    while (s->busy) pthread_cond_wait(&ps->idle, &ps->mu);
    vpsub *sub = s->sub;
    memset(s, 0, sizeof *s);
    pthread_mutex_unlock(&ps->mu);
    if (sub) atomic_store(&sub->stopped, 1);
    vpsub_release(sub);   /* destroyed once the workers released its messages */
}

uint64_t vigil_ingest_pair_pending(vigil_ingest *ig, int g, int p) {
    struct vpairs *ps = ig->pairs;
    if (!ps || g < 0 || g >= VPAIRS_MAX_GROUPS || p < 0 || p >= ps->cfg.partitions) return 0;
    pthread_mutex_lock(&ps->mu);
    uint64_t n = ps->slots[g * ps->cfg.partitions + p].pending;
    pthread_mutex_unlock(&ps->mu);
    return n;
}

void vigil_ingest_pairs_stop(vigil_ingest *ig) {
    struct vpairs *ps = ig->pairs;
    if (!ps) return;
    atomic_store(&ps->stop, 1);
    if (ps->started) pthread_join(ps->th, NULL);
    ps->started = 0;
    pthread_mutex_lock(&ps->mu);
    for (int i = 0; i < ps->nslots; i++)
        if (ps->slots[i].sub) {   /* messages still in the workers keep it (and are still acked) */
            vpsub_release(ps->slots[i].sub);
            ps->slots[i].sub = NULL;
        }
    pthread_mutex_unlock(&ps->mu);
}

/* After the workers released every message (their acks count here). */
void vingest_pairs_free(vigil_ingest *ig) {
    struct vpairs *ps = ig->pairs;
    if (!ps) return;
    vigil_ingest_pairs_stop(ig);
    pthread_mutex_destroy(&ps->mu);
    pthread_cond_destroy(&ps->idle);
    free(ps->slots);
    free(ps);
    ig->pairs = NULL;
}

void vigil_ingest_pairs_stats(vigil_ingest *ig, unsigned long long *fetched, unsigned long long *acked,
                              unsigned long long *bad) {
    struct vpairs *ps = ig->pairs;
    *fetched = ps ? atomic_load(&ps->fetched) : 0;
    *acked = ps ? atomic_load(&ps->acked) : 0;
    *bad = ps ? atomic_load(&ps->bad) : 0;
}

/* nats.c — the NATS connection and core-NATS ingest (DESIGN.md §7), with
 * nats.c, plus the ingest wing's life (create, start, stop, stats).
 *
 * A core-NATS subscription on `vigil.events.>` (configurable): each message
 * is one JSON event or NDJSON lines. Core NATS is at-most-once: a message
 * lost before it reaches us is not redelivered. JetStream ingest
 * (jetstream.c) is the durable path; with it on, core NATS is not
 * subscribed: every event takes one path. The callback decodes and routes
 * (in batches over a burst of messages, below);
 * when the worker queues are full it waits for room, which backs pressure
 * up into the subscription's pending buffer (limits raised below) instead
 * of dropping. A bad line is counted and logged, the others go on. The
 * connection is also the one the alert sinks publish on. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ingest_int.h"
#include "server/common/log.h"

void vingest_note_times(vigil_ingest *ig, int src, vigil_event *const *evs, size_t n) {
    int64_t newest = 0;
    for (size_t i = 0; i < n; i++)
        if (evs[i] && vigil_event_time(evs[i]) > newest) newest = vigil_event_time(evs[i]);
    long long cur = atomic_load(&ig->newest_ms[src]);
    while (newest > cur && !atomic_compare_exchange_weak(&ig->newest_ms[src], &cur, newest)) {}
}

void vingest_count_limit(vigil_ingest *ig, const char *limit) {
    if (!limit) return;
    atomic_fetch_add(strcmp(limit, "max_fields") == 0  ? &ig->limit_fields
                     : strcmp(limit, "max_depth") == 0 ? &ig->limit_depth
                                                       : &ig->limit_key, 1);
}

/* A bad line of a NATS or JetStream message: counted by reason, the first
 * 20 logged; the message's other lines go on. */
void vingest_bad_line(void *ud, const vigil_batch_error *e) {
    vingest_badctx *b = ud;
    unsigned long long n = atomic_fetch_add(e->status == VIGIL_ENOKEY ? &b->ig->rejected_nokey : &b->ig->rejected_bad, 1);
    if (e->limit) vingest_count_limit(b->ig, e->limit);
    if (n >= 20) return;
    if (b->seq)
        vigil_log(VIGIL_LOG_WARN, "ingest", "%s %s seq %llu line %zu rejected: %s", b->what, b->subject,
                (unsigned long long)b->seq, e->line, e->msg);
    else
        vigil_log(VIGIL_LOG_WARN, "ingest", "%s %s line %zu rejected: %s", b->what, b->subject, e->line, e->msg);
}

/* Core NATS events are handed to the workers in batches: a callback adds
 * its message's events to the subscription's batch, which goes to the
 * router once it holds VNATS_BATCH events or once no message waits in the
 * subscription (nothing to wait for: no added latency at low rates). One
 * enqueue per burst instead of one per event: the workers wake for
 * hundreds of items, not for 4 or 5 (issue 16: 40 % of the time was futex
 * and scheduler). Only the callback thread and stop_intake touch it (mu). */
#define VNATS_BATCH 1024

struct vnats_batch {
    pthread_mutex_t mu;
    vigil_ruleset *rs;           /* what its events were decoded with (retained); the router redecodes after a swap */
    vigil_event **evs;
    size_t n, cap;
    /* the burst's messages, destroyed together at the flush: nats.c hands
     * each destroyed message to its collector thread and wakes it when it
     * sleeps; one by one that was a wake-up (two context switches) a message */
    natsMsg **msgs;
    size_t nmsgs, capmsgs;
};

static void batch_flush(vigil_ingest *ig, struct vnats_batch *nb) {
    if (nb->n) {
        /* at-most-once: wait for room; a refusal (closing) drops the batch, counted */
        if (vigil_router_enqueue(ig->cfg.router, nb->rs, nb->evs, (int)nb->n, NULL, 1, NULL) == VIGIL_OK) {
            atomic_fetch_add(&ig->nats_events, nb->n);
        } else {
            atomic_fetch_add(&ig->rejected_full, nb->n);
            for (size_t i = 0; i < nb->n; i++) vigil_event_release(nb->evs[i]);
        }
        nb->n = 0;
    }
    vigil_ruleset_release(nb->rs);
    nb->rs = NULL;
    for (size_t i = 0; i < nb->nmsgs; i++) natsMsg_Destroy(nb->msgs[i]);
    nb->nmsgs = 0;
}

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    vigil_ingest *ig = closure;
    struct vnats_batch *nb = ig->nbatch;
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    vingest_badctx bc = {.ig = ig, .what = "NATS", .subject = natsMsg_GetSubject(msg)};
    vigil_batch_opts bo = {.mode = VIGIL_BATCH_LINES, .policy = VIGIL_BATCH_SKIP_BAD, .decode = ig->cfg.decode,
                           .max_events = SIZE_MAX, .empty_ok = 1, .on_bad = vingest_bad_line, .ud = &bc,
                           .max_fields = ig->cfg.max_fields, .max_depth = ig->cfg.max_depth,
                           .max_key_bytes = ig->cfg.max_key_bytes};
    vigil_batch b;
    vigil_batch_error err;
    pthread_mutex_lock(&nb->mu);
    vigil_ruleset *rs = vigil_router_ruleset(ig->cfg.router);   /* the rules now (hot reload) */
    if (nb->rs && nb->rs != rs) batch_flush(ig, nb);            /* one ruleset per batch */
    if (vigil_batch_decode(rs, &bo, data ? data : "", len > 0 ? (size_t)len : 0, &b, &err) != VIGIL_OK) {
        atomic_fetch_add(&ig->rejected_bad, 1);
        vigil_log(VIGIL_LOG_WARN, "ingest", "NATS %s: message dropped: %s", bc.subject, err.msg);
        b.n = 0;
    }
    vingest_note_times(ig, VINGEST_SRC_NATS, b.events, b.n);
    if (nb->n + b.n > nb->cap) {
        size_t cap = nb->cap ? nb->cap : VNATS_BATCH;
        while (cap < nb->n + b.n) cap *= 2;
        vigil_event **ne = realloc(nb->evs, cap * sizeof *ne);
        if (!ne) {   /* out of memory: this message's events are lost, counted and said */
            atomic_fetch_add(&ig->rejected_full, b.n);
            vigil_log(VIGIL_LOG_ERROR, "ingest", "NATS %s: out of memory batching %zu events; dropped", bc.subject, b.n);
            vigil_batch_release(&b);
            b.n = 0;
        } else {
            nb->evs = ne;
            nb->cap = cap;
        }
    }
    for (size_t i = 0; i < b.n; i++) {
        nb->evs[nb->n++] = b.events[i];
        b.events[i] = NULL;   /* the batch took the reference */
    }
    if (nb->n && !nb->rs) {
        nb->rs = rs;
        rs = NULL;
    }
    if (nb->nmsgs == nb->capmsgs) {
        size_t cap = nb->capmsgs ? 2 * nb->capmsgs : 256;
        natsMsg **nm = realloc(nb->msgs, cap * sizeof *nm);
        if (nm) {
            nb->msgs = nm;
            nb->capmsgs = cap;
        }
    }
    if (nb->nmsgs < nb->capmsgs) {
        nb->msgs[nb->nmsgs++] = msg;
        msg = NULL;   /* destroyed at the flush */
    }
    int pending = 0, pbytes = 0;
    if (natsSubscription_GetPending(sub, &pending, &pbytes) != NATS_OK) pending = 0;
    if (nb->n >= VNATS_BATCH || nb->nmsgs >= VNATS_BATCH || pending <= 0) batch_flush(ig, nb);
    pthread_mutex_unlock(&nb->mu);
    vigil_batch_release(&b);
    vigil_ruleset_release(rs);
    natsMsg_Destroy(msg);
}

static void on_reconnected(natsConnection *nc, void *closure) {
    (void)nc;
    vjs_on_reconnected(closure);
}

vigil_status vigil_ingest_create(const vigil_ingest_config *cfg, vigil_ingest **out, vigil_error *err) {
    vigil_ingest *ig = calloc(1, sizeof *ig);
    if (!ig) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    ig->cfg = *cfg;
    if (!ig->cfg.subject) ig->cfg.subject = "vigil.events.>";
    if (!ig->cfg.stream) ig->cfg.stream = "VIGIL_EVENTS";
    if (!ig->cfg.consumer) ig->cfg.consumer = "vigil";
    if (ig->cfg.fetch_batch <= 0) ig->cfg.fetch_batch = 1000;
    *out = ig;
    return VIGIL_OK;
}

vigil_status vigil_ingest_connect(vigil_ingest *ig, vigil_error *err) {
    if (!ig->cfg.nats_url) return VIGIL_OK;
    natsOptions *o = NULL;
    vigil_status st = vigil_nats_options(ig->cfg.nats_url, &ig->cfg.nats_auth, &o, err);
    if (st != VIGIL_OK) return st;
    natsStatus ns = natsOptions_SetMaxReconnect(o, -1);
    if (ns == NATS_OK) ns = natsOptions_SetReconnectWait(o, 500);
    if (ns == NATS_OK) ns = natsOptions_SetName(o, "vigil");
    if (ns == NATS_OK) ns = natsOptions_SetReconnectedCB(o, on_reconnected, ig);
    if (ns == NATS_OK) ns = natsConnection_Connect(&ig->nc, o);
    natsOptions_Destroy(o);
    if (ns != NATS_OK) {
        char shown[512];   /* never the URL's password */
        vigil_nats_url_redact(ig->cfg.nats_url, shown, sizeof shown);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cannot connect to NATS at %s: %s%s", shown,
                               natsStatus_GetText(ns), vigil_nats_connect_hint(ns));
    }
    return VIGIL_OK;
}

natsConnection *vigil_ingest_nats(vigil_ingest *ig) { return ig->nc; }

vigil_status vigil_ingest_start(vigil_ingest *ig, vigil_error *err) {
    if (ig->cfg.cluster && (!ig->nc || !ig->cfg.jetstream))   /* issue 14 (h8) */
        return vigil_error_set(err, VIGIL_EINVAL, "cluster mode (cluster.instance) needs NATS with JetStream: set "
                               "nats.url and nats.jetstream = true");
    if (!ig->nc) return VIGIL_OK;
    if (ig->cfg.jetstream) return vjs_start(ig, err);   /* every event takes one path: the stream */
    if (!ig->nbatch) {
        if (!(ig->nbatch = calloc(1, sizeof *ig->nbatch))) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
        pthread_mutex_init(&ig->nbatch->mu, NULL);
    }
    natsStatus ns = natsConnection_Subscribe(&ig->sub, ig->nc, ig->cfg.subject, on_msg, ig);
    if (ns == NATS_OK) ns = natsSubscription_SetPendingLimits(ig->sub, 1000000, 1024 * 1024 * 1024);
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cannot subscribe to '%s': %s", ig->cfg.subject,
                               natsStatus_GetText(ns));
    natsConnection_Flush(ig->nc);
    return VIGIL_OK;
}

void vigil_ingest_stop_intake(vigil_ingest *ig) {
    if (!ig) return;
    vjs_stop_fetch(ig);
    vigil_ingest_pairs_stop(ig);
    vigil_rekey_stop(ig);
    if (ig->sub) {
        natsSubscription_Unsubscribe(ig->sub);
        natsSubscription_WaitForDrainCompletion(ig->sub, 100);
        natsSubscription_Destroy(ig->sub);
        ig->sub = NULL;
    }
    if (ig->nbatch) {   /* what the last callbacks left (the router still takes it while draining) */
        pthread_mutex_lock(&ig->nbatch->mu);
        batch_flush(ig, ig->nbatch);
        pthread_mutex_unlock(&ig->nbatch->mu);
    }
}

void vigil_ingest_stop(vigil_ingest *ig) {
    if (ig) vjs_stop(ig);
}

void vigil_ingest_destroy(vigil_ingest *ig) {
    if (!ig) return;
    vigil_ingest_stop_intake(ig);
    vjs_stop(ig);
    vingest_pairs_free(ig);
    vrekey_free(ig);   /* after the HTTP publishers: they read it */
    if (ig->nbatch) {
        pthread_mutex_destroy(&ig->nbatch->mu);
        free(ig->nbatch->evs);
        free(ig->nbatch->msgs);
        free(ig->nbatch);
    }
    if (ig->nc) {
        natsConnection_FlushTimeout(ig->nc, 2000);
        natsConnection_Destroy(ig->nc);
    }
    free(ig);
}

int vigil_ingest_paused(vigil_ingest *ig) {
    if (vigil_router_store_down(ig->cfg.router)) return 1;
    if (ig->js && (!ig->nc || natsConnection_Status(ig->nc) != NATS_CONN_STATUS_CONNECTED)) return 1;
    return 0;
}

void vigil_ingest_get_stats(vigil_ingest *ig, vigil_ingest_stats *o) {
    memset(o, 0, sizeof *o);
    o->http_events = atomic_load(&ig->http_events);
    o->nats_events = atomic_load(&ig->nats_events);
    o->rejected_bad = atomic_load(&ig->rejected_bad);
    o->rejected_nokey = atomic_load(&ig->rejected_nokey);
    o->rejected_full = atomic_load(&ig->rejected_full);
    o->rejected_rate = atomic_load(&ig->rejected_rate);
    o->limit_fields = atomic_load(&ig->limit_fields);
    o->limit_depth = atomic_load(&ig->limit_depth);
    o->limit_key = atomic_load(&ig->limit_key);
    o->limit_lines = atomic_load(&ig->limit_lines);
    for (int i = 0; i < VINGEST_NSRC; i++) o->newest_ms[i] = atomic_load(&ig->newest_ms[i]);
    o->nats_configured = ig->cfg.nats_url != NULL;
    o->nats_up = ig->nc && natsConnection_Status(ig->nc) == NATS_CONN_STATUS_CONNECTED;
    o->jetstream = ig->js != NULL;
    o->js_fetched = atomic_load(&ig->js_fetched);
    o->js_acked = atomic_load(&ig->js_acked);
    o->js_msgs_bad = atomic_load(&ig->js_msgs_bad);
    o->js_fetch_errors = atomic_load(&ig->js_fetch_errors);
    o->rekey_msgs = atomic_load(&ig->rekey_msgs);
    o->rekey_naks = atomic_load(&ig->rekey_naks);
    o->rekey_copies = atomic_load(&ig->rekey_copies);
    o->rekey_publish_failures = atomic_load(&ig->rekey_publish_failures);
    o->rekey_running = atomic_load(&ig->rekey) != NULL;
}

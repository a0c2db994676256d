/* ingest_int.h — the ingest wing's private parts, shared by events.c (POST
 * /v1/events), nats.c (the connection, core subscription) and jetstream.c
 * (the pull consumer and HTTP publishers). Nothing outside server/ingest/
 * includes it. */
#ifndef VIGIL_INGEST_INT_H
#define VIGIL_INGEST_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include "ingest.h"
#include "batch.h"

enum { VINGEST_SRC_HTTP, VINGEST_SRC_NATS, VINGEST_SRC_JETSTREAM, VINGEST_NSRC };

struct vigil_ingest {
    vigil_ingest_config cfg;
    natsConnection *nc;
    natsSubscription *sub;
    struct vnats_batch *nbatch;  /* core NATS: the events of a burst of messages, routed together (nats.c) */
    /* JetStream (jetstream.c) */
    jsCtx *js;
    natsSubscription *jsub;
    /* subscriptions replaced by a re-bind after a reconnect (resync): kept,
     * unsubscribed, until vjs_stop — messages fetched through them may still
     * be in the workers, and libnats' ack reads the message's subscription
     * (and its JetStream part) without holding a reference to it. At most
     * RETIRED_SUBS; past that the oldest is destroyed (its messages were
     * committed and acked reconnects ago). */
#define RETIRED_SUBS 16
    natsSubscription *jsub_retired[RETIRED_SUBS];
    int njsub_retired;
    pthread_t fetcher;
    int fetcher_started;
    atomic_int js_resync;        /* NATS reconnected: re-position the consumer */
    atomic_int js_stop;          /* the fetcher stops (before the workers drain) */
    struct vjspub *pub;          /* HTTP → JetStream publishers */
    char http_subject[256];      /* where HTTP bodies are published (vigil.events.http) */
    /* counters */
    atomic_ullong http_events, nats_events, rejected_bad, rejected_nokey, rejected_full, rejected_rate;
    atomic_ullong js_fetched, js_acked, js_msgs_bad, js_fetch_errors;
    atomic_ullong limit_fields, limit_depth, limit_key, limit_lines;
    atomic_llong newest_ms[VINGEST_NSRC];   /* the newest event time seen per source (ms; 0: none yet) */
    atomic_ullong js_handled_seq;  /* highest stream sequence handed to the router (the fetcher's) */
    atomic_ullong js_rounds;       /* fetch rounds whose messages are all handed over */
    struct vpairs *pairs;          /* cluster mode: the owned pairs' consumers (pair_fetch.c) */
    /* cluster mode, the rekey stage (rekey.c; issue 14, h8): set once
     * vigil_rekey_start succeeded, freed by vigil_ingest_destroy after the
     * HTTP publishers stopped (they read it) */
    _Atomic(struct vrekey *) rekey;
    atomic_ullong rekey_msgs, rekey_naks, rekey_copies, rekey_publish_failures;
};

/* The newest event time of a decoded batch, per source (watermark lag per source). */
void vingest_note_times(vigil_ingest *ig, int src, vigil_event *const *evs, size_t n);

/* A line over an event limit (e->limit set): counted per limit. */
void vingest_count_limit(vigil_ingest *ig, const char *limit);

/* nats.c: the on_bad callback of NATS and JetStream messages; ud is a
 * vingest_badctx naming the message in log lines */
typedef struct vingest_badctx {
    vigil_ingest *ig;
    const char *what;            /* "NATS" | "JetStream" */
    uint64_t seq;                /* stream sequence, 0: none */
    const char *subject;
} vingest_badctx;
void vingest_bad_line(void *ud, const vigil_batch_error *e);

/* pair_fetch.c: free the pair consumers' state (after the workers released every message) */
void vingest_pairs_free(vigil_ingest *ig);

/* js_fetch.c: one pull of up to `want` messages (more when late deliveries
 * wait: see the file) — the server's no-wait answer, waiting up to wait_ms
 * for the first message; with wait_for_one, a server that says at once that
 * nothing waits (404) is asked again to wait for one. As
 * natsSubscription_FetchRequest: NATS_OK with list filled, NATS_TIMEOUT /
 * NATS_NOT_FOUND when nothing came. */
natsStatus vjs_fetch(natsMsgList *list, natsSubscription *sub, int want, int64_t wait_ms, int wait_for_one);
/* jetstream.c */
vigil_status vjs_take_consumer(jsCtx *js, const char *stream, const char *family, const char *name,
                               const char *subject, uint64_t start_seq, int64_t ack_wait_ns, int max_ack_pending,
                               vigil_error *err);
vigil_status vjs_start(vigil_ingest *ig, vigil_error *err);
void vjs_stop_fetch(vigil_ingest *ig);
void vjs_stop(vigil_ingest *ig);
void vjs_on_reconnected(vigil_ingest *ig);
/* Publish an HTTP body (already validated) as one stream message with
 * Nats-Msg-Id = SHA-256 of the body; `format` is "json" (one event, maybe
 * pretty-printed) or "ndjson". Calls done(ctx, status, detail) from a
 * publisher thread once the stream acked (202) or refused (503).
 * VIGIL_EFULL when too many batches wait. */
vigil_status vjs_publish_async(vigil_ingest *ig, const char *body, size_t len, const char *format,
                               void (*done)(void *ctx, int status, const char *detail), void *ctx);

/* rekey.c (issue 14, h8): one thread's asynchronous publisher of keyed
 * copies (its own jsCtx: js_PublishAsyncComplete waits for its copies only) */
typedef struct vrekey_pub vrekey_pub;
void vrekey_pub_destroy(vrekey_pub *p);   /* accepts NULL */
/* POST /v1/events in cluster mode, on an HTTP publisher thread: decode the
 * (validated) body again with the current rules, publish every event's
 * copies on *pub (created at first use: the caller destroys it), wait until
 * all are stored. Returns 202, or 503 with detail (why; retry is safe: the
 * copies carry Nats-Msg-Id). format: "json" | "ndjson". */
int vrekey_post(vigil_ingest *ig, vrekey_pub **pub, const char *body, size_t len, const char *format,
                char *detail, size_t detail_len);
/* Free the rekey stage (stopping it first); after the publishers stopped. */
void vrekey_free(vigil_ingest *ig);

#endif

/* ingest.h — the sources: POST /v1/events, core NATS and JetStream
 * (DESIGN.md §6–§7). Each turns bytes into decoded events and hands them to
 * the route wing; the wing owns its counters (vigil_ingest_get_stats).
 *
 * With jetstream on, every event takes one path, the stream: HTTP batches
 * are published to it as they came (one message per batch, all or
 * nothing) and decoded once, by the fetcher; core NATS is not subscribed.
 * Without it, the core subscription (at-most-once) and HTTP route directly.
 * The NATS connection is the ingest wing's; the alert sinks borrow it
 * (vigil_ingest_nats). */
#ifndef VIGIL_INGEST_H
#define VIGIL_INGEST_H

#include <nats/nats.h>
#include "vigil/event.h"
#include "server/http/http.h"
#include "server/route/router.h"
#include "nats_opts.h"

typedef struct vigil_ingest vigil_ingest;

typedef struct vigil_ingest_config {
    const vigil_decode_opts *decode;    /* borrowed: outlives the ingest */
    vigil_router *router;               /* borrowed */
    vigil_waiters *waiters;             /* borrowed: the ?wait deadline timer */
    size_t max_body;                    /* bytes of one HTTP body (for messages) */
    const char *nats_url;               /* NULL: no NATS */
    vigil_nats_auth nats_auth;          /* credentials and TLS (nats_opts.h); strings borrowed */
    const char *subject;                /* "vigil.events.>" */
    int jetstream;
    const char *stream, *consumer;      /* "VIGIL_EVENTS", "vigil" */
    int fetch_batch;                    /* messages per fetch; 1000 */
    /* event limits (DESIGN.md §6, limits.*; 0: not checked): a line over one
     * is a bad line (HTTP: 400, nothing applied; NATS: skipped, counted) */
    int max_fields, max_depth, max_key_bytes;
    size_t max_lines;                   /* NDJSON lines in one POST (413); 0: no limit but the body's */
    /* issue 14 (h8): cluster mode (cluster.instance set; needs jetstream).
     * vigil_ingest_start then neither binds the single durable consumer
     * nor starts its fetcher (the lead's per-pair consumers take the keyed
     * stream); POST /v1/events publishes its events' keyed copies (see
     * vigil_rekey_start) and ?wait answers 400. */
    int cluster;
} vigil_ingest_config;

vigil_status vigil_ingest_create(const vigil_ingest_config *cfg, vigil_ingest **out, vigil_error *err);
/* Connect to NATS (when configured): the connection the sinks publish on. */
vigil_status vigil_ingest_connect(vigil_ingest *ig, vigil_error *err);
natsConnection *vigil_ingest_nats(vigil_ingest *ig);   /* NULL without NATS */
/* Subscribe (core) or bind the JetStream consumer and start its fetcher. */
vigil_status vigil_ingest_start(vigil_ingest *ig, vigil_error *err);
/* Stop taking input: the fetcher stops, the subscription drains. */
void vigil_ingest_stop_intake(vigil_ingest *ig);
/* After the workers drained: HTTP publishers finish (resuming their
 * requests); JetStream context released. */
void vigil_ingest_stop(vigil_ingest *ig);
/* Close NATS (flushing what the sinks published) and free. Accepts NULL. */
void vigil_ingest_destroy(vigil_ingest *ig);

/* With JetStream: return once every message the stream held when called
 * has been handed to the router (so a rule swap queued after this sees
 * them all first, DESIGN.md §6), or VIGIL_ETIMEOUT after timeout_ms
 * (a lagging consumer), VIGIL_EUNAVAILABLE. Without JetStream: at once
 * (HTTP and core NATS events are queued before they are answered). */
vigil_status vigil_ingest_sync(vigil_ingest *ig, int timeout_ms, vigil_error *err);

/* 1 when intake must pause: a store down, or JetStream unreachable. */
int vigil_ingest_paused(vigil_ingest *ig);

/* POST /v1/events (register with vigil_http_route, ctx = the ingest). */
enum MHD_Result vigil_ingest_handle_events(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r);

/* Cluster mode (pair_fetch.c, DESIGN.md §7): the owned (key group,
 * partition) pairs of the keyed stream, each with its durable pull consumer
 * "<consumer>-<group token>-p<p>-e<epoch>" on "<subject>.<group token>.<p>"
 * (one per ownership: taking a pair deletes the previous owner's). */
typedef struct vigil_pairs_config {
    const char *stream;                 /* the keyed stream, "VIGIL_KEYED" */
    const char *subject;                /* "vigil.keyed" */
    const char *consumer;               /* the consumers' base name, "vigil" */
    int partitions;                     /* P */
    /* asked before each fetch of pair (g, p) held with epoch: 0 = not now (the
     * lease is not known fresh: a paused process must not fetch); NULL: always */
    int (*may_fetch)(void *ud, int g, int p, uint64_t epoch);
    void *ud;
} vigil_pairs_config;
/* Start the pair fetcher (no pair yet). Needs JetStream (after vigil_ingest_start). */
vigil_status vigil_ingest_pairs_start(vigil_ingest *ig, const vigil_pairs_config *pc, vigil_error *err);
/* Stop fetching every pair (intake stops). */
void vigil_ingest_pairs_stop(vigil_ingest *ig);
/* Consume pair (g, p) of group `gname` from keyed-stream sequence start_seq
 * (the stored offset + 1), its items carrying `epoch`: the durable consumer
 * is recreated there. VIGIL_EUNAVAILABLE when JetStream refuses. */
vigil_status vigil_ingest_pair_start(vigil_ingest *ig, int g, const char *gname, int p, uint64_t epoch,
                                     uint64_t start_seq, vigil_error *err);
/* Stop consuming pair (g, p) now (waits for a fetch in progress); its
 * durable consumer stays for the next owner. */
void vigil_ingest_pair_stop(vigil_ingest *ig, int g, int p);
/* Messages the pair's consumer had left at its last fetch (its lag). */
uint64_t vigil_ingest_pair_pending(vigil_ingest *ig, int g, int p);
void vigil_ingest_pairs_stats(vigil_ingest *ig, unsigned long long *fetched, unsigned long long *acked,
                              unsigned long long *bad);

typedef struct vigil_ingest_stats {
    unsigned long long http_events, nats_events;
    unsigned long long rejected_bad, rejected_nokey, rejected_full, rejected_rate;
    /* of rejected_bad: lines over an event limit; POSTs over max_lines (events not counted) */
    unsigned long long limit_fields, limit_depth, limit_key, limit_lines;
    /* the newest event time seen per source: http, nats, jetstream (ms; 0: none yet) */
    int64_t newest_ms[3];
    int nats_configured, nats_up, jetstream;
    unsigned long long js_fetched, js_acked, js_msgs_bad, js_fetch_errors;
    /* issue 14 (h8), cluster mode: raw messages whose copies are all stored
     * (then acked), raw messages handed back (Nak) after a failed publish,
     * copies stored in the keyed stream (a duplicate the stream dropped
     * counts too: it is stored), copies the stream refused or did not
     * confirm in time (raw path and POST) */
    unsigned long long rekey_msgs, rekey_naks, rekey_copies, rekey_publish_failures;
    int rekey_running;
} vigil_ingest_stats;
void vigil_ingest_get_stats(vigil_ingest *ig, vigil_ingest_stats *out);

/* ---- cluster mode: the rekey stage (issue 14, rekey.c) -------------------------------
 *
 * Every event is published once per key group it has a key of to the keyed
 * stream, subject "<subject>.<gtoken>.<p>" (gtoken: vigil_cluster_group_token
 * of the group's key field, server/common/pairs.h; p = vigil_hash(key) %
 * partitions, as the router computes it), so that the owner of a (group,
 * partition) pair reads only its own events. Each copy is ONE event: its
 * JSON text as it came (vigil_event_json; a pretty-printed HTTP event keeps
 * its newlines, so decode a copy with VIGIL_BATCH_ONE_EVENT), with header
 * Nats-Msg-Id = "<event id>:<gtoken>". An event without an id field has the
 * id "<raw stream seq>:<line>" (raw path) or "<SHA-256 hex of the POST
 * body>:<line>" (POST), line 1-based in the message or body; an id that is
 * not printable ASCII (0x21..0x7e) or is over 200 bytes is replaced by "h" +
 * the SHA-256 hex of it. Within the stream's duplicate window (2 min), a
 * copy published again (a redelivered raw message, a retried POST) is
 * dropped by JetStream. Copies of one key are in raw order only within one
 * raw message: rekey workers of several instances share the raw consumer. */
typedef struct vigil_rekey_config {
    const char *stream;        /* keyed stream; NULL: "VIGIL_KEYED" (cluster.stream) */
    const char *subject;       /* subject prefix; NULL: "vigil.keyed" (cluster.subject) */
    int partitions;            /* P, the same on every instance (partitions); <= 0: 16 */
    const char *consumer;      /* the raw stream's shared durable; NULL: "<nats consumer>-rekey" */
    int max_pending;           /* copies in flight per publisher; <= 0: 4096 */
    int ack_timeout_ms;        /* wait for one round's copies to be stored; <= 0: 10000 */
    int gated;             /* 1: the raw consumer is read only while vigil_rekey_set_active(ig, 1) holds: one
                              re-keyer at a time keeps every pair's copies in raw stream order (cluster mode:
                              the owner of the first pair); 0: every instance pulls from it */
    int (*may_rekey)(void *ud, uint64_t epoch);   /* gated: asked before each round; 0 = not now (the
                                                     re-keying's lease is not known fresh); NULL: always */
    void *may_ud;
} vigil_rekey_config;

/* Start the rekey stage on a started ingest with cfg->cluster and
 * JetStream: create the keyed stream if absent (subjects "<subject>.>",
 * limits retention, file storage, duplicate window 2 min) or check it (a
 * stream of that name with other subjects, or another retention, is refused:
 * VIGIL_EINVAL naming what it has), create or bind the raw stream's shared
 * durable pull consumer (AckExplicit, AckWait 30 s, MaxAckPending 1024) and
 * start the rekey worker thread. Strings of cfg are copied. Errors:
 * VIGIL_EINVAL (not cluster mode, no JetStream, keyed subjects that the raw
 * subject would also capture, a keyed stream configured otherwise),
 * VIGIL_EUNAVAILABLE (JetStream unreachable), VIGIL_ENOMEM. */
vigil_status vigil_rekey_start(vigil_ingest *ig, const vigil_rekey_config *cfg, vigil_error *err);
/* Gated (see vigil_rekey_config.gated): start (on = 1) or stop re-keying the
 * raw stream here; stopping returns once the round in progress is done
 * (at most ack_timeout_ms + 5 s). Starting (with the epoch of the pair that
 * makes this instance the re-keyer) deletes the previous re-keyer's durable
 * consumer and creates "<consumer>-e<epoch>" at its ack floor + 1, so its
 * unacked messages come first, in order (their copies stored before are
 * dropped as duplicates), and a paused previous re-keyer cannot fetch. */
void vigil_rekey_set_active(vigil_ingest *ig, int on, uint64_t epoch);
/* Stop the rekey worker (it finishes its round: at most ack_timeout_ms +
 * 0.5 s) and release its subscription; the durable consumer stays. Also
 * called by vigil_ingest_stop_intake and vigil_ingest_destroy; idempotent. */
void vigil_rekey_stop(vigil_ingest *ig);

#endif

/* router.h — the route wing: bounded queues, routing by key, and the
 * workers that own the keys (DESIGN.md §2–§3).
 *
 * Sources hand decoded events to vigil_router_enqueue; each event goes once
 * per key group, by hash of its key into one of `partitions` partitions,
 * and partition p to worker p % workers, so one worker owns a key and its
 * state needs no lock. A worker takes up to 2048 items (never splitting a
 * source message), prefetches missing key state (one pipelined Redis round
 * trip), feeds its engine, commits the changed keys with the batch's pair
 * offsets and outbox rows (one MULTI/EXEC, or the outbox file), and only
 * then hands the batch's alerts and late events to the sinks (sinks.h) and
 * answers ?wait requests. The wing owns its counters; others read them
 * through vigil_router_get_stats.
 *
 * Effectively once (JetStream): a source message (vigil_source) carries its
 * stream sequence; each (group, partition) pair remembers the last sequence
 * applied; a redelivered item at or below it is skipped. The source's
 * `done` callback runs once every item of it is committed (memory store:
 * once a snapshot holds them) — the ingest wing acks the message there. */
#ifndef VIGIL_ROUTER_H
#define VIGIL_ROUTER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "vigil/engine.h"
#include "server/route/waiter.h"
#include "server/alerts/sinks.h"
#include "server/alerts/outbox.h"

typedef struct vigil_router vigil_router;

/* A source message (a JetStream message, possibly an NDJSON batch) while
 * its events are in the workers. The creator sets seq, done and ud, and
 * holds one reference (refs = 1) while routing; vigil_source_release drops
 * it; the last release calls done(src, ud), which frees src. */
typedef struct vigil_source {
    uint64_t seq;                                   /* stream sequence (> 0) */
    uint64_t epoch;                                 /* cluster mode: the pair's fencing epoch it was fetched under; 0: none */
    atomic_int noack;                               /* set by a worker: not applied (a pair no longer ours); do not ack */
    atomic_int refs;
    void (*done)(struct vigil_source *src, void *ud);
    void *ud;
} vigil_source;
void vigil_source_release(vigil_source *src);        /* accepts NULL */

typedef struct vigil_router_config {
    vigil_ruleset *rs;                 /* retained */
    int workers;                       /* default 2 */
    int partitions;                    /* default 16; fixed for a deployment */
    size_t queue_cap;                  /* items per worker queue; default 65536 */
    int64_t allowed_lateness_ms, max_out_of_orderness_ms;
    int64_t idle_timeout_ms;           /* 0: the watermark moves only with events */
    const char *redis_url;             /* NULL: memory store */
    const char *redis_prefix;          /* default "vigil" */
    const char *data_dir;              /* memory store snapshots; NULL or "": none */
    int64_t snapshot_interval_ms;      /* default 10000 */
    vigil_sinks *sinks;                /* borrowed, required */
    vigil_outbox *outbox;              /* borrowed; NULL: no webhook endpoints */
    /* 1: drop this alert (a snooze); called on a worker's thread for every alert; may be NULL */
    int (*alert_filter)(void *ud, const char *rule, const char *key);
    void *alert_filter_ud;
    /* every committed batch's alerts (shadow compares), on the worker's thread; may be NULL */
    void (*alerts_hook)(void *ud, const vigil_alert_record *a, size_t n);
    void *alerts_hook_ud;
    /* cluster mode (DESIGN.md §7, server/route/pairs.c): each owned (group, partition)
     * pair has its own engine (its own watermark and cache) and commits fenced by its
     * epoch, to its own outbox stream; needs redis_url. fenced(ud, g, p, epoch) runs on
     * a worker's thread when a commit of the pair was refused for a stale epoch. */
    int cluster;
    void (*fenced)(void *ud, int g, int p, uint64_t epoch);
    void *fenced_ud;
} vigil_router_config;

/* Create the workers' engines and stores, load offsets and state (Redis or
 * the snapshots; waits for a Redis that is still loading). No thread runs
 * until vigil_router_start. Errors: as the stores', VIGIL_ENOMEM. */
vigil_status vigil_router_create(const vigil_router_config *cfg, vigil_router **out, vigil_error *err);
void vigil_router_start(vigil_router *r);
/* Drain: no new items from now on (enqueue answers VIGIL_EUNAVAILABLE);
 * the workers finish their queues, commit, hand out, snapshot, and stop.
 * Enqueue and stats stay callable until destroy. */
void vigil_router_stop(vigil_router *r);
/* Stop if not yet, then free. Accepts NULL. */
void vigil_router_destroy(vigil_router *r);

/* The ruleset events must be decoded with now (retained: release it). */
vigil_ruleset *vigil_router_ruleset(vigil_router *r);

/* Hot reload: make rs (a descendant of the current ruleset, see
 * vigil_ruleset_create_from) the current one and switch every worker to it
 * at its next batch boundary: everything enqueued before is matched with the
 * old ruleset, everything after with rs. Intake (every enqueue) waits until
 * every worker has switched, then this returns: what was accepted before
 * the return is matched by the old rules, what comes after by the new. VIGIL_ETOOBIG: more than 64 key groups; VIGIL_EUNAVAILABLE:
 * stopping; VIGIL_ENOMEM: a worker could not switch (it runs the old rules;
 * err says how many did). */
vigil_status vigil_router_swap(vigil_router *r, vigil_ruleset *rs, vigil_error *err);

/* Run fn on the worker that owns key (g, key), between two of its batches,
 * with its engine (the key's state loaded from the store first): for
 * reading a key's state (explain). Waits at most timeout_ms: then
 * VIGIL_ETIMEOUT and fn will not run. VIGIL_EUNAVAILABLE when stopping. */
typedef void (*vigil_router_task_fn)(void *ud, vigil_engine *eng);
vigil_status vigil_router_call(vigil_router *r, int g, const char *key, size_t len, vigil_router_task_fn fn,
                               void *ud, int timeout_ms, vigil_error *err);

/* Keys with live state of rule (name, version) over every worker (pattern
 * runs, open windows), as last counted (at most a second old, counted only
 * while the rule is draining). *fresh = 1 when every worker counted since
 * its last swap. */
uint64_t vigil_router_rule_live(vigil_router *r, const char *name, int version, int *fresh);

/* Route n decoded events, all or nothing: VIGIL_EFULL when some queue
 * cannot take its share now (nothing enqueued), VIGIL_ETOOBIG when a share
 * can never fit, VIGIL_EUNAVAILABLE when closed (or `quit` became non-zero
 * while waiting). With block != 0 waits for room instead of EFULL. w
 * (may be NULL) gets one reference per item. On success the queues own the
 * events (the caller's references are taken over); on error the caller
 * keeps them. */
/* rs is the ruleset the events were decoded with (vigil_router_ruleset):
 * when a swap replaced it meanwhile, nothing is enqueued and the answer is
 * VIGIL_ESTALE: decode again with the current one. */
vigil_status vigil_router_enqueue(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n,
                                  vigil_waiter *w, int block, const atomic_int *quit);
/* The same for the events of one source message (src->refs gets one per item). */
vigil_status vigil_router_enqueue_src(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n,
                                      vigil_source *src, int block, const atomic_int *quit);
/* Events of several source messages in one enqueue (a fetched batch):
 * srcs[i] is the source of evs[i] (each gets one reference per item), and
 * each source's events are contiguous in evs. All or nothing, as above. */
vigil_status vigil_router_enqueue_srcs(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n,
                                       vigil_source *const *srcs, int block, const atomic_int *quit);

/* Cluster mode (pairs.c). Take pair (g, p) with fencing epoch `epoch`: on the
 * pair's worker, between two batches, its offset and watermark are read from
 * Redis and a fresh engine made for it; returns once done, with *seq the
 * stored offset (the next message to apply is seq + 1). VIGIL_ETIMEOUT after
 * timeout_ms (the open still happens later: close it), VIGIL_EUNAVAILABLE
 * when stopping, the store's errors. */
vigil_status vigil_router_pair_open(vigil_router *r, int g, int p, uint64_t epoch, uint64_t *seq, int timeout_ms,
                                    vigil_error *err);
/* Give pair (g, p) up: from now on its queued items are dropped unacked;
 * its engine (the cached state) is freed by its worker between two
 * batches. A commit in flight is refused by the epoch (the next owner bumps
 * it). Does not wait. */
void vigil_router_pair_close(vigil_router *r, int g, int p);
/* The epoch pair (g, p) is held with (0: not ours). */
uint64_t vigil_router_pair_epoch(vigil_router *r, int g, int p);
/* Route one decoded event to group g only (a keyed stream's message for
 * pair (g, p)); src->epoch names the ownership it was fetched under. As
 * vigil_router_enqueue_src; VIGIL_ENOTFOUND when the event has no key of
 * group g (nothing queued). */
vigil_status vigil_router_enqueue_pair(vigil_router *r, const vigil_ruleset *rs, vigil_event *ev, int g,
                                       vigil_source *src, int block, const atomic_int *quit);

/* Key groups that event ev (decoded with rs) goes to (a ?wait request waits for each). */
int vigil_router_parts(const vigil_ruleset *rs, const vigil_event *ev);
/* 1 while a store is down: intake must pause. */
int vigil_router_store_down(const vigil_router *r);

typedef struct vigil_router_stats {
    unsigned long long processed, late, keys, runs, queue_depth, commits, commit_errors, keys_expired,
        runs_evicted, function_errors, skipped, snapshots, commit_us_sum, commit_count;
    unsigned long long swaps, swap_us_sum, swap_us_max;   /* hot reloads: per worker, the engine's pause */
    unsigned long long redis_round_trips, redis_keys_loaded, redis_keys_saved;   /* Redis store only */
    unsigned long long pairs_fenced;   /* cluster mode: pair commits refused for a stale epoch */
    int64_t watermark_min;             /* lowest worker watermark (ms; INT64_MIN: none yet) */
    int store_down;
    int workers;
} vigil_router_stats;
void vigil_router_get_stats(vigil_router *r, vigil_router_stats *out);

/* The workers' histograms (server/common/histogram.h), alive as long as r:
 * event→alert latency (from the event's queueing to its alert's hand-off
 * to the sinks, after the commit; µs), commit time (µs) and batch size
 * (items). */
struct vigil_hist;
void vigil_router_hists(vigil_router *r, const struct vigil_hist **latency, const struct vigil_hist **commit,
                        const struct vigil_hist **batch);

#endif

/* route_int.h — the route wing's private parts, shared by router.c (queues,
 * routing, start/stop, stats) and worker.c (the worker loop and its
 * phases). Nothing outside server/route/ includes it. */
#ifndef VIGIL_ROUTE_INT_H
#define VIGIL_ROUTE_INT_H

#include "server/common/histogram.h"
#include <pthread.h>
#include <stdatomic.h>
#include "router.h"
#include "server/state/snapshot.h"
#include "vigil/clock.h"

typedef struct vitem {           /* one event for one key group */
    vigil_event *ev;
    int group;
    int part;                    /* partition of the key: vigil_hash(key) % partitions */
    int msg_end;                 /* last item of its source message in this queue */
    uint64_t seq;                /* source stream sequence; 0: none (core NATS, HTTP) */
    int64_t rx_us;               /* wall µs when it was queued (event→alert latency) */
    vigil_source *src;           /* NULL: nothing to ack */
    vigil_waiter *w;
    vigil_ruleset *swap;         /* a marker (ev NULL): switch to this ruleset here (hot reload) */
    struct vroute_task *task;    /* a marker (ev NULL): run this between two batches (vigil_router_call) */
} vitem;

typedef struct vroute_task {     /* vigil_router_call: owned by the caller and the worker (refs) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    atomic_int refs;
    int done, abandoned;         /* under mu: the worker ran it (or skipped it); the caller gave up */
    vigil_router_task_fn fn;
    void *ud;
    int group;
    size_t keylen;
    char key[];
} vroute_task;
void vroute_task_release(vroute_task *t);
/* router.c: queue task t (refs 2: the caller's and the queue's) on worker wi
 * between two batches and wait for it; one not reached within timeout_ms is
 * abandoned (the worker skips it): VIGIL_ETIMEOUT. group < 0: no key to load. */
vigil_status vroute_run_task(vigil_router *r, int wi, vroute_task *t, int timeout_ms, vigil_error *err);

typedef struct vroute_pair_idle { int64_t last_ms, wm_at; } vroute_pair_idle;

typedef struct vqueue {          /* bounded; when full the producer is told (EFULL) or waits */
    pthread_mutex_t mu;
    pthread_cond_t nonempty, nonfull;
    vitem *items;
    size_t cap, head, n;
} vqueue;

typedef struct vworker {
    vigil_router *r;
    int idx;
    pthread_t th;
    int started;
    vqueue q;
    vigil_engine *eng;
    vigil_store *store;
    /* the batch's alerts, released to the sinks after the commit */
    vigil_alert_record *alerts;
    vigil_waiter **alert_waiters;
    int64_t *alert_rx;           /* the queueing time of the event that made each alert */
    size_t nalerts, capalerts;
    vigil_waiter *cur_waiter;
    int64_t cur_rx_us;
    /* the batch's late events, published after the commit */
    vigil_event **late;
    int *late_group;
    size_t nlate, caplate;
    int *touched;                /* pairs (g * partitions + p) whose offset this batch moves */
    int ntouched;
    unsigned char *touched_mark;
    vigil_source **unacked;      /* memory store: sources waiting for the next snapshot */
    size_t nunacked, capunacked;
    int64_t last_snapshot_ms;
    int dirty_since_snapshot;
    atomic_int store_down;       /* the last commit or load failed: intake pauses */
    atomic_llong watermark;
    atomic_ullong keys, runs, processed, late_count, commits, commit_errors, keys_expired, runs_evicted;
    atomic_ullong function_errors, skipped, snapshots, commit_us_sum, commit_count;
    atomic_ullong swaps, swap_us_sum, swap_us_max;   /* hot reloads: the pause at the batch boundary */
    atomic_ullong fenced;        /* cluster mode: pair commits refused for a stale epoch */
    vigil_ruleset *rs;           /* its engine's ruleset (this thread's; the router's may be newer) */
    /* live state of draining rules, for the control wing: counts per rule of
     * live_rs (vigil_engine_rule_live), refreshed at most once a second */
    pthread_mutex_t live_mu;
    vigil_ruleset *live_rs;
    uint64_t *live;
    int64_t live_at;             /* wall ms of the last count; 0: not since the last swap */
    int draining;                /* its ruleset has a draining rule: count, also while idle */
} vworker;

/* Key groups only grow over a process's life (a hot reload keeps every
 * group's index); the pair arrays are sized for this many. */
#define VROUTE_MAX_GROUPS 64

struct vigil_router {
    vigil_router_config cfg;
    vigil_ruleset *rs;           /* the current ruleset: events are decoded with it (rs_mu) */
    pthread_mutex_t rs_mu;
    /* a swap in progress: workers count themselves done (swap_mu) */
    pthread_mutex_t swap_mu;
    pthread_cond_t swap_cv;
    int swap_done, swap_failed;
    int nworkers, partitions;
    vworker *workers;
    vigil_engine **engines;      /* workers[i].eng, for snapshots */
    atomic_int stopping;         /* 1: draining; 2: workers gone */
    atomic_int closed;
    pthread_mutex_t ingest_mu;   /* makes a batch's enqueue all-or-nothing */
    /* the last applied source sequence per (group, partition), written only
     * by the pair's worker */
    uint64_t *off_seq;
    int64_t *off_wm;
    vigil_source **off_src;      /* the message being applied at off_seq (NULL once committed) */
    atomic_ullong snap_mask;     /* workers that snapshotted since the outbox's last mark */
    /* cluster mode (pairs.c): per (group, partition) pair its engine (only its
     * worker touches it) and the epoch it is held with (0: not ours) */
    vigil_engine **pair_eng;
    _Atomic uint64_t *pair_epoch;
    struct vroute_pair_idle *pair_idle;   /* when each pair last fed, and its watermark then (idle advance) */
    /* shared by the workers (lock-free): queueing → sinks per alert; commit time and size per batch */
    vigil_hist h_latency, h_commit, h_batch;
};

/* pairs.c (cluster mode) */
vigil_status vroute_pairs_init(vigil_router *r, vigil_error *err);
void vroute_pairs_free(vigil_router *r);
void vroute_pairs_batch(vworker *wk, vitem *it, int n);   /* skip, feed, fenced commit and release, per pair */
void vroute_pairs_idle(vworker *wk);                      /* an idle worker: its pairs' watermarks move on */
int vroute_pairs_swap(vworker *wk, vigil_ruleset *rs, vigil_error *err);   /* hot reload: every pair engine; -1 on error */
void vroute_pairs_stats(vworker *wk, vigil_engine_stats *sum);
void vroute_pairs_watermark(vworker *wk);                 /* wk->watermark: the lowest of its pairs' */

/* worker.c */
void vroute_commit_end_stats(vworker *wk, int64_t t0);
void vroute_release_sources(vworker *wk, vitem *it, int n);
void vroute_release_outputs(vworker *wk);
void vroute_note_late(vworker *wk, vigil_event *ev, int group);
void *vroute_worker_main(void *arg);
void vroute_task_run(vworker *wk, vroute_task *t);   /* on the worker's thread, between batches */
void vroute_on_alert(void *ud, const vigil_alert *a);   /* the engines' alert callback */
void vroute_snapshot_view(vigil_router *r, const vigil_ruleset *rs, vigil_snapshot_view *v);
int vroute_durable_snapshots(const vigil_router *r);   /* memory store with a data dir */

#endif

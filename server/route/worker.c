/* worker.c — one worker's loop and its phases, in a fixed order per batch:
 * take up to 2048 items or 4 MiB of events (never splitting a source
 * message; with a store, lingering up to 2 ms for more at low rates), skip what the
 * pair offsets say was applied, prefetch missing key state, feed the
 * engine, commit (key states, pair offsets and outbox rows together), then
 * release: acks (memory store: after the next snapshot), alerts and late
 * events to the sinks, ?wait answers. So nothing leaves a worker before the
 * state that produced it is stored. A store that fails pauses the worker
 * (retried with backoff) instead of matching on missing state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "route_int.h"
#include "server/common/fault.h"
#include "server/state/redis_store.h"
#include "server/alerts/webhooks.h"
#include "server/common/log.h"

/* A batch's items at most: one commit (one MULTI/EXEC round trip) and at
 * most one prefetch round trip per batch, every event 1–2 items (its key
 * groups): 2048 keeps Redis at ≤ 3 round trips per 1000 events (issue 16)
 * while a commit stays a few MB at most. */
#define BATCH 2048
/* With a store (Redis) a commit is a round trip and a transaction, and a
 * batch of one item costs the same as one of hundreds: a batch waits up to
 * this long after its first item was queued for more to come, so at low
 * rates a worker commits at most once per LINGER_US (at 300 events/s: one
 * commit of ~1 event each 2 ms, not one per event). Full batches do not wait. */
#define LINGER_US 2000
/* ... and a batch stops growing once its events' JSON adds up to this much
 * (a message is never split): large events make smaller commits. */
#define BATCH_BYTES ((size_t)4 << 20)

int vroute_durable_snapshots(const vigil_router *r) {
    return !r->cfg.redis_url && r->cfg.data_dir && *r->cfg.data_dir;
}

void vroute_snapshot_view(vigil_router *r, const vigil_ruleset *rs, vigil_snapshot_view *v) {
    *v = (vigil_snapshot_view){.data_dir = r->cfg.data_dir, .rs = rs, .partitions = r->partitions,
                               .nworkers = r->nworkers, .engines = r->engines, .off_seq = r->off_seq,
                               .off_wm = r->off_wm};
}

/* ---- the batch's alerts and late events -------------------------------------- */

void vroute_on_alert(void *ud, const vigil_alert *a) {
    vworker *wk = ud;
    vigil_sinks *sinks = wk->r->cfg.sinks;
    if (wk->r->cfg.alert_filter && wk->r->cfg.alert_filter(wk->r->cfg.alert_filter_ud, a->rule, a->key)) return;   /* snoozed */
    if (wk->nalerts == wk->capalerts) {
        size_t cap = wk->capalerts ? wk->capalerts * 2 : 64;
        /* VIGIL_FAULT=alert_nomem:N makes the N-th growth fail, as a failed realloc would */
        vigil_alert_record *n = vigil_fault_due("alert_nomem") ? NULL : realloc(wk->alerts, cap * sizeof *n);
        if (n) wk->alerts = n;
        vigil_waiter **nw = n ? realloc(wk->alert_waiters, cap * sizeof *nw) : NULL;
        if (nw) wk->alert_waiters = nw;
        int64_t *nr = nw ? realloc(wk->alert_rx, cap * sizeof *nr) : NULL;
        if (nr) wk->alert_rx = nr;
        if (!n || !nw || !nr) {
            vigil_sinks_lost(sinks, a->rule, "out of memory for the batch's alerts");
            return;
        }
        wk->capalerts = cap;
    }
    if (vigil_alert_record_from_alert(a, vigil_now_ms(), &wk->alerts[wk->nalerts]) != VIGIL_OK) {
        vigil_sinks_lost(sinks, a->rule, "out of memory serialising the alert");
        return;
    }
    wk->alert_waiters[wk->nalerts] = wk->cur_waiter;
    wk->alert_rx[wk->nalerts] = wk->cur_rx_us;
    wk->nalerts++;
}

void vroute_note_late(vworker *wk, vigil_event *ev, int group) {
    if (wk->nlate == wk->caplate) {
        size_t cap = wk->caplate ? wk->caplate * 2 : 64;
        vigil_event **n = realloc(wk->late, cap * sizeof *n);
        if (n) wk->late = n;
        int *ng = n ? realloc(wk->late_group, cap * sizeof *ng) : NULL;
        if (ng) wk->late_group = ng;
        if (!n || !ng) return;   /* counted as late; only its publication is lost */
        wk->caplate = cap;
    }
    vigil_event_retain(ev);
    wk->late[wk->nlate] = ev;
    wk->late_group[wk->nlate++] = group;
}

/* After the commit: alerts to the sinks and their waiters, late events out. */
void vroute_release_outputs(vworker *wk) {
    vigil_router *r = wk->r;
    if (r->cfg.alerts_hook && wk->nalerts) r->cfg.alerts_hook(r->cfg.alerts_hook_ud, wk->alerts, wk->nalerts);
    int64_t now = wk->nalerts ? vigil_now_us() : 0;
    for (size_t i = 0; i < wk->nalerts; i++) {
        vigil_alert_record *a = &wk->alerts[i];
        if (wk->alert_rx[i] > 0 && now >= wk->alert_rx[i])
            vigil_hist_observe(&r->h_latency, (uint64_t)(now - wk->alert_rx[i]));
        vigil_sinks_alert(r->cfg.sinks, a);
        if (wk->alert_waiters[i]) vigil_waiter_append(wk->alert_waiters[i], a->json, a->len);
        vigil_alert_record_free(a);
    }
    wk->nalerts = 0;
    for (size_t i = 0; i < wk->nlate; i++) {
        vigil_sinks_late(r->cfg.sinks, wk->late[i], vigil_ruleset_group_key(wk->rs, wk->late_group[i]));
        vigil_event_release(wk->late[i]);
    }
    wk->nlate = 0;
}

/* ---- commit --------------------------------------------------------------------- */

/* Retry a store operation until it succeeds or the server stops: losing the
 * store pauses this worker (and, through full queues and store_down, the
 * intake) instead of matching on missing state or losing a commit. */
static int with_retry(vworker *wk, vigil_status (*op)(vworker *, void *, vigil_error *), void *arg, const char *what) {
    int delay = 100;
    for (;;) {
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = op(wk, arg, &err);
        if (st == VIGIL_OK) {
            atomic_store(&wk->store_down, 0);
            return 0;
        }
        atomic_fetch_add(&wk->commit_errors, 1);
        if (st == VIGIL_EUNAVAILABLE) atomic_store(&wk->store_down, 1);
        vigil_log(VIGIL_LOG_ERROR, "route", "worker %d: %s failed: %s (%s); retrying", wk->idx, what, err.msg, vigil_status_str(st));
        if (atomic_load(&wk->r->stopping) > 1) return -1;
        usleep((useconds_t)delay * 1000);
        if (delay < 2000) delay *= 2;
    }
}

typedef struct batch { vitem *it; int n; vigil_event **evs; int *groups; } batch;
static vigil_status op_prefetch(vworker *wk, void *arg, vigil_error *err) {
    batch *b = arg;
    return vigil_engine_prefetch(wk->eng, b->evs, b->groups, b->n, err);
}

/* The outbox's rows of the batch: its active alerts, when endpoints exist
 * (shadow alerts never reach webhooks). Pointers into wk->alerts. */
static int outbox_alerts(vworker *wk, const vigil_alert_record ***out) {
    *out = NULL;
    if (!wk->r->cfg.outbox || !wk->nalerts) return 0;
    const vigil_alert_record **oa = calloc(wk->nalerts, sizeof *oa);
    if (!oa) return -1;
    int n = 0;
    for (size_t i = 0; i < wk->nalerts; i++)
        if (wk->alerts[i].mode == VIGIL_MODE_ACTIVE) oa[n++] = &wk->alerts[i];
    *out = oa;
    return n;
}

/* One commit: the changed key states, the offsets this batch moved and its
 * alerts, all or nothing. Redis: one MULTI/EXEC. Memory store: the alerts
 * go to the outbox file (the state is in memory; snapshots make it
 * durable). */
static vigil_status op_commit(vworker *wk, void *arg, vigil_error *err) {
    (void)arg;
    vigil_router *r = wk->r;
    const vigil_alert_record **oa;
    int noa = outbox_alerts(wk, &oa);
    if (noa < 0) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory for the outbox");
    vigil_status st = VIGIL_OK;
    if (wk->store) {
        const vigil_store_record *recs;
        size_t n;
        st = vigil_engine_commit_begin(wk->eng, &recs, &n, err);
        vigil_redis_offset *offs = NULL;
        if (st == VIGIL_OK && wk->ntouched) {
            offs = calloc((size_t)wk->ntouched, sizeof *offs);
            if (!offs) st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for offsets");
            for (int i = 0; offs && i < wk->ntouched; i++) {
                int pair = wk->touched[i];
                offs[i] = (vigil_redis_offset){.group_name = vigil_ruleset_group_key(wk->rs, pair / r->partitions),
                                               .partition = pair % r->partitions, .seq = r->off_seq[pair],
                                               .wm = vigil_engine_watermark(wk->eng)};
            }
        }
        /* the alerts' XADDs to <prefix>:outbox ride in the same MULTI/EXEC */
        char stream[300];
        snprintf(stream, sizeof stream, "%s:outbox", r->cfg.redis_prefix);
        vigil_redis_cmd *xc = noa ? calloc((size_t)noa, sizeof *xc) : NULL;
        const char **xv = noa ? calloc((size_t)noa * VIGIL_OUTBOX_XADD_ARGC, sizeof *xv) : NULL;
        size_t *xl = noa ? calloc((size_t)noa * VIGIL_OUTBOX_XADD_ARGC, sizeof *xl) : NULL;
        if (st == VIGIL_OK && noa && (!xc || !xv || !xl))
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for the outbox");
        for (int i = 0; st == VIGIL_OK && i < noa; i++) {
            xc[i].argv = xv + (size_t)i * VIGIL_OUTBOX_XADD_ARGC;
            xc[i].lens = xl + (size_t)i * VIGIL_OUTBOX_XADD_ARGC;
            xc[i].argc = vigil_outbox_redis_xadd_args(stream, oa[i], xv + (size_t)i * VIGIL_OUTBOX_XADD_ARGC,
                                                      xl + (size_t)i * VIGIL_OUTBOX_XADD_ARGC);
        }
        if (st == VIGIL_OK)
            st = vigil_redis_store_commit(wk->store, recs, (int)n, offs, wk->ntouched, xc, noa, err);
        vigil_engine_commit_end(wk->eng, st == VIGIL_OK);
        free(offs);
        free(xc);
        free(xv);
        free(xl);
    } else if (noa) {   /* the memory store: the outbox file, or the in-memory outbox */
        vigil_alert_record *recs = malloc((size_t)noa * sizeof *recs);
        if (!recs) {
            free(oa);
            return vigil_error_set(err, VIGIL_ENOMEM, "out of memory for the outbox");
        }
        for (int i = 0; i < noa; i++) recs[i] = *oa[i];   /* shallow: json stays the batch's */
        st = vigil_webhooks_append(r->cfg.outbox, recs, noa, err);
        free(recs);
    }
    free(oa);
    return st;
}

static void touch_clear(vworker *wk) {
    /* the batch held whole messages: none of them has items still to come */
    for (int i = 0; i < wk->ntouched; i++) wk->r->off_src[wk->touched[i]] = NULL;
    for (int i = 0; i < wk->ntouched; i++) wk->touched_mark[wk->touched[i]] = 0;
    wk->ntouched = 0;
}

/* A commit that started at t0 (µs) succeeded: its time into the stats. */
void vroute_commit_end_stats(vworker *wk, int64_t t0) {
    int64_t us = vigil_now_us() - t0;
    atomic_fetch_add(&wk->commit_us_sum, (unsigned long long)us);
    atomic_fetch_add(&wk->commit_count, 1);
    vigil_hist_observe(&wk->r->h_commit, (uint64_t)(us > 0 ? us : 0));
}

static void commit_batch(vworker *wk) {
    int64_t t0 = vigil_now_us();
    if (with_retry(wk, op_commit, NULL, "committing key state") == 0) vroute_commit_end_stats(wk, t0);
    touch_clear(wk);
    atomic_store(&wk->watermark, vigil_engine_watermark(wk->eng));
}

/* ---- snapshots and acks ------------------------------------------------------------ */

/* The memory store: snapshot when due; then the sources it covers are acked. */
static void snapshot_if_due(vworker *wk, int force) {
    vigil_router *r = wk->r;
    if (!vroute_durable_snapshots(r)) return;
    int64_t now = vigil_now_ms();
    int due = force || wk->nunacked > 20000 ||
              (wk->dirty_since_snapshot && now - wk->last_snapshot_ms >= r->cfg.snapshot_interval_ms);
    if (!due || (!wk->dirty_since_snapshot && !wk->nunacked)) return;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_snapshot_view v;
    vroute_snapshot_view(r, wk->rs, &v);
    if (vigil_snapshot_write(&v, wk->idx, &err) != VIGIL_OK) {
        vigil_log(VIGIL_LOG_ERROR, "route", "worker %d: snapshot failed: %s (state stays in memory; retrying later)", wk->idx, err.msg);
        atomic_fetch_add(&wk->commit_errors, 1);
        wk->last_snapshot_ms = now;   /* not again at once */
        return;
    }
    atomic_fetch_add(&wk->snapshots, 1);
    wk->last_snapshot_ms = now;
    if (r->cfg.outbox) {   /* once every worker snapshotted since the last mark, the outbox may forget older ids */
        unsigned long long all = r->nworkers >= 64 ? ~0ull : (1ull << r->nworkers) - 1;
        unsigned long long m = atomic_fetch_or(&r->snap_mask, 1ull << (wk->idx % 64)) | (1ull << (wk->idx % 64));
        if ((m & all) == all && atomic_compare_exchange_strong(&r->snap_mask, &m, 0))
            vigil_outbox_file_mark_snapshot(r->cfg.outbox);
    }
    wk->dirty_since_snapshot = 0;
    for (size_t i = 0; i < wk->nunacked; i++) vigil_source_release(wk->unacked[i]);
    wk->nunacked = 0;
}

/* After the commit: sources whose items are all committed get acked (the
 * memory store defers that to the snapshot that makes them durable). */
void vroute_release_sources(vworker *wk, vitem *it, int n) {
    int defer = vroute_durable_snapshots(wk->r);
    for (int i = 0; i < n; i++) {
        if (!it[i].src) continue;
        if (!defer) {
            vigil_source_release(it[i].src);
            continue;
        }
        if (wk->nunacked == wk->capunacked) {
            size_t cap = wk->capunacked ? wk->capunacked * 2 : 1024;
            vigil_source **u = realloc(wk->unacked, cap * sizeof *u);
            if (!u) {   /* cannot defer: ack now (the snapshot may then lag it) */
                vigil_source_release(it[i].src);
                continue;
            }
            wk->unacked = u;
            wk->capunacked = cap;
        }
        wk->unacked[wk->nunacked++] = it[i].src;
    }
}

/* Hot reload: switch this worker's engine at a batch boundary (the batch
 * before the marker is committed and handed out). */
static void do_swap(vworker *wk, vigil_ruleset *rs) {
    vigil_router *r = wk->r;
    vigil_error err;
    vigil_error_clear(&err);
    int64_t t0 = vigil_now_us();
    vigil_status st = vigil_engine_swap(wk->eng, rs, &err);
    if (st == VIGIL_OK && r->cfg.cluster && vroute_pairs_swap(wk, rs, &err) != 0) st = VIGIL_ENOMEM;   /* its pairs' engines too */
    int64_t us = vigil_now_us() - t0;
    pthread_mutex_lock(&r->swap_mu);
    if (st == VIGIL_OK) {
        vigil_ruleset_release(wk->rs);
        wk->rs = rs;   /* the marker's reference */
    } else {
        r->swap_failed++;
        vigil_ruleset_release(rs);
        vigil_log(VIGIL_LOG_ERROR, "route", "worker %d: cannot switch to the new rules: %s (it keeps the old ones)", wk->idx,
                err.msg);
    }
    pthread_cond_broadcast(&r->swap_cv);
    pthread_mutex_unlock(&r->swap_mu);
    atomic_fetch_add(&wk->swaps, 1);
    atomic_fetch_add(&wk->swap_us_sum, (unsigned long long)us);
    if ((unsigned long long)us > atomic_load(&wk->swap_us_max)) atomic_store(&wk->swap_us_max, (unsigned long long)us);
    pthread_mutex_lock(&wk->live_mu);
    wk->live_at = 0;   /* counts of the old ruleset are void */
    pthread_mutex_unlock(&wk->live_mu);
}

void vroute_task_run(vworker *wk, vroute_task *t) {
    pthread_mutex_lock(&t->mu);
    if (!t->abandoned) {
        vigil_error err;
        vigil_error_clear(&err);
        /* the key from the store first (a failure: the task sees the cache as it is) */
        if (t->group >= 0 && vigil_engine_prefetch_key(wk->eng, t->group, t->key, t->keylen, &err) != VIGIL_OK)
            vigil_log(VIGIL_LOG_WARN, "route", "worker %d: loading a key for a task: %s", wk->idx, err.msg);
        t->fn(t->ud, wk->eng);
    }
    t->done = 1;
    pthread_cond_signal(&t->cv);
    pthread_mutex_unlock(&t->mu);
    vroute_task_release(t);
}

/* Count the live state of draining rules for the control wing (a walk of
 * every key: only while some rule drains, at most once a second). */
static void count_live(vworker *wk) {
    const vigil_ruleset *rs = wk->rs;
    int n = vigil_ruleset_rule_count(rs), draining = 0;
    for (int i = 0; i < n && !draining; i++) draining = vigil_ruleset_rule_draining(rs, i);
    uint64_t *live = NULL;
    wk->draining = draining;
    if (draining && !(live = calloc((size_t)n, sizeof *live))) return;
    if (draining) vigil_engine_rule_live(wk->eng, live);
    pthread_mutex_lock(&wk->live_mu);
    free(wk->live);
    wk->live = live;
    if (wk->live_rs != rs) {
        vigil_ruleset_release(wk->live_rs);
        vigil_ruleset_retain(wk->rs);
        wk->live_rs = wk->rs;
    }
    wk->live_at = vigil_now_ms();
    pthread_mutex_unlock(&wk->live_mu);
}

static void update_stats(vworker *wk) {
    count_live(wk);
    vigil_engine_stats st;
    vigil_engine_get_stats(wk->eng, &st);
    if (wk->r->cfg.cluster) vroute_pairs_stats(wk, &st);
    atomic_store(&wk->keys, st.keys);
    atomic_store(&wk->runs, st.runs);
    atomic_store(&wk->keys_expired, st.keys_expired);
    atomic_store(&wk->runs_evicted, st.runs_evicted);
    atomic_store(&wk->function_errors, st.function_errors);
}

/* ---- the loop ------------------------------------------------------------------------ */

/* Wait for items; 1 when the idle timer fired instead (no items), 0 with
 * q->mu held and items (or stopping). */
static int wait_for_items(vworker *wk, int64_t last_arrival) {
    vigil_router *r = wk->r;
    pthread_mutex_lock(&wk->q.mu);
    while (wk->q.n == 0 && !atomic_load(&r->stopping)) {
        int64_t idle = r->cfg.idle_timeout_ms;
        int64_t now = vigil_now_ms(), wake;
        int snap_pending = vroute_durable_snapshots(r) && (wk->dirty_since_snapshot || wk->nunacked);
        if ((idle <= 0 || last_arrival == 0) && !snap_pending && !wk->draining) {
            pthread_cond_wait(&wk->q.nonempty, &wk->q.mu);
            continue;
        }
        /* wake at the idle timeout, then every idle/4 while idle; and for a due snapshot */
        wake = INT64_MAX;
        if (idle > 0 && last_arrival) {
            wake = last_arrival + idle;
            if (wake <= now) wake = now + (idle / 4 > 10 ? idle / 4 : 10);
        }
        if (snap_pending && wk->last_snapshot_ms + r->cfg.snapshot_interval_ms < wake)
            wake = wk->last_snapshot_ms + r->cfg.snapshot_interval_ms;
        if (wk->draining && now + 1000 < wake) wake = now + 1000;   /* recount a draining rule's live state */
        if (wake < now + 1) wake = now + 1;
        struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000};
        if (pthread_cond_timedwait(&wk->q.nonempty, &wk->q.mu, &ts) != 0 && wk->q.n == 0) {
            pthread_mutex_unlock(&wk->q.mu);
            return 1;
        }
    }
    return 0;
}

/* With q->mu held and items queued: wait (up to LINGER_US after the head
 * item was queued) until a batch is full, a marker is queued or we stop. */
static void linger(vworker *wk) {
    vqueue *q = &wk->q;
    int64_t first = q->items[q->head].rx_us;
    if (!first || q->items[q->head].swap || q->items[q->head].task) return;
    int64_t until = first + LINGER_US;
    while (q->n > 0 && q->n < BATCH && !atomic_load(&wk->r->stopping)) {
        vitem *last = &q->items[(q->head + q->n - 1) % q->cap];
        if (last->swap || last->task) return;   /* a reload or a task waits behind: go now */
        int64_t now = vigil_now_us();
        if (now >= until) return;
        struct timespec ts = {.tv_sec = until / 1000000, .tv_nsec = (until % 1000000) * 1000};
        pthread_cond_timedwait(&q->nonempty, &q->mu, &ts);   /* rx_us is CLOCK_REALTIME, as the condvar */
    }
}

void *vroute_worker_main(void *arg) {
    vworker *wk = arg;
    vigil_router *r = wk->r;
    size_t cap = BATCH;
    vitem *it = malloc(cap * sizeof *it);
    vigil_event **evs = malloc(cap * sizeof *evs);
    int *groups = malloc(cap * sizeof *groups);
    if (!it || !evs || !groups) abort();
    int64_t last_stats = 0;
    int64_t last_arrival = 0, wm_at_arrival = INT64_MIN;   /* wall ms of the last batch; the watermark then */
    wk->last_snapshot_ms = vigil_now_ms();
    for (;;) {
        if (wait_for_items(wk, last_arrival)) {
            /* an idle source: event time moves on with processing time, so
             * absences and window closes fire without new traffic */
            int64_t idle = r->cfg.idle_timeout_ms;
            if (r->cfg.cluster) {
                vroute_pairs_idle(wk);   /* each pair by its own clock */
            } else if (idle > 0 && last_arrival && vigil_now_ms() - last_arrival >= idle) {
                int64_t wm = wm_at_arrival + (vigil_now_ms() - last_arrival);
                if (wm > vigil_engine_watermark(wk->eng)) {
                    vigil_engine_advance(wk->eng, wm);
                    commit_batch(wk);
                    vroute_release_outputs(wk);
                    wk->dirty_since_snapshot = 1;
                }
            }
            snapshot_if_due(wk, 0);
            if (wk->draining) count_live(wk);   /* idle: the control wing may retire what drained */
            continue;
        }
        if (wk->q.n == 0) {
            pthread_mutex_unlock(&wk->q.mu);
            break;
        }
        if (wk->store || r->cfg.cluster) linger(wk);
        /* a batch: up to BATCH items, never splitting a source message (its
         * offset covers all of it) */
        int n = 0;
        size_t bytes = 0;
        vigil_ruleset *swap_to = NULL;
        vroute_task *task = NULL;
        while (wk->q.n && ((n < BATCH && bytes < BATCH_BYTES) || !it[n - 1].msg_end)) {
            vitem *head = &wk->q.items[wk->q.head];
            if (head->swap || head->task) {   /* a hot reload or a task: the batch ends here; it follows */
                swap_to = head->swap;
                task = head->task;
                head->swap = NULL;
                head->task = NULL;
                wk->q.head = (wk->q.head + 1) % wk->q.cap;
                wk->q.n--;
                break;
            }
            if ((size_t)n == cap) {
                cap *= 2;
                vitem *ni = realloc(it, cap * sizeof *ni);
                vigil_event **ne = realloc(evs, cap * sizeof *ne);
                int *ng = realloc(groups, cap * sizeof *ng);
                if (!ni || !ne || !ng) abort();
                it = ni;
                evs = ne;
                groups = ng;
            }
            it[n] = wk->q.items[wk->q.head];
            if (it[n].ev) {
                size_t jl = 0;
                vigil_event_json(it[n].ev, &jl);
                bytes += jl;
            }
            n++;
            wk->q.head = (wk->q.head + 1) % wk->q.cap;
            wk->q.n--;
        }
        pthread_cond_broadcast(&wk->q.nonfull);
        pthread_mutex_unlock(&wk->q.mu);
        for (int i = 0; i < n; i++) {
            evs[i] = it[i].ev;
            groups[i] = it[i].group;
        }
        if (n == 0) {   /* the marker alone */
            if (swap_to) {
                do_swap(wk, swap_to);
                update_stats(wk);
            }
            if (task) vroute_task_run(wk, task);
            continue;
        }
        vigil_hist_observe(&r->h_batch, (uint64_t)n);
        if (r->cfg.cluster) {   /* pair by pair, each with its engine and fenced commit (pairs.c) */
            vroute_pairs_batch(wk, it, n);
            last_arrival = vigil_now_ms();
            goto batch_done;
        }
        batch b = {.it = it, .n = n, .evs = evs, .groups = groups};
        if (wk->store) with_retry(wk, op_prefetch, &b, "loading key state");
        for (int i = 0; i < n; i++) {
            vigil_error err;
            if (n > 1 && i == n / 2) vigil_fault_point("feed");
            if (it[i].seq) {
                /* applied before (a redelivery): an older message, or the
                 * same sequence from another copy than the one being applied */
                int pair = it[i].group * r->partitions + it[i].part;
                if (it[i].seq < r->off_seq[pair] || (it[i].seq == r->off_seq[pair] && it[i].src != r->off_src[pair])) {
                    atomic_fetch_add(&wk->skipped, 1);
                    continue;
                }
                r->off_seq[pair] = it[i].seq;
                r->off_src[pair] = it[i].src;
                if (!wk->touched_mark[pair]) {
                    wk->touched_mark[pair] = 1;
                    wk->touched[wk->ntouched++] = pair;
                }
            }
            wk->cur_waiter = it[i].w;
            wk->cur_rx_us = it[i].rx_us;
            vigil_status st = vigil_engine_feed_group(wk->eng, it[i].ev, it[i].group, &err);
            if (st == VIGIL_ELATE) {
                atomic_fetch_add(&wk->late_count, 1);
                vroute_note_late(wk, it[i].ev, it[i].group);   /* published after the commit */
            } else if (st != VIGIL_OK) {
                vigil_log(VIGIL_LOG_WARN, "route", "worker %d: event %s: %s", wk->idx, vigil_event_id(it[i].ev), err.msg);
            }
        }
        wk->cur_waiter = NULL;
        wk->dirty_since_snapshot = 1;
        last_arrival = vigil_now_ms();
        wm_at_arrival = vigil_engine_watermark(wk->eng);
        commit_batch(wk);
        atomic_fetch_add(&wk->commits, 1);
        vigil_fault_point("ack");
        vroute_release_sources(wk, it, n);
        vroute_release_outputs(wk);
        snapshot_if_due(wk, 0);
    batch_done:;
        /* counters before answering waiters: a client that got its answer
         * must see its event counted */
        int64_t now = vigil_now_ms();
        if (now - last_stats >= 1000) {   /* the stats walk every key: at most once a second */
            update_stats(wk);
            last_stats = now;
        }
        atomic_fetch_add(&wk->processed, (unsigned long long)n);
        for (int i = 0; i < n; i++) {
            if (it[i].w) {
                vigil_waiter_done(it[i].w);
                vigil_waiter_release(it[i].w);
            }
            vigil_event_release(it[i].ev);
        }
        if (swap_to) {
            do_swap(wk, swap_to);
            update_stats(wk);
            last_stats = vigil_now_ms();
        }
        if (task) vroute_task_run(wk, task);
    }
    snapshot_if_due(wk, 1);   /* stopping: the last snapshot, then its acks */
    update_stats(wk);
    free(it);
    free(evs);
    free(groups);
    return NULL;
}

/* router.c — the route wing's front (router.h): bounded worker queues,
 * all-or-nothing routing of a batch by key hash, the workers' engines and
 * stores, their durable starting point (offsets and watermarks from Redis
 * or the snapshots), start, drain and stats. The worker loop is worker.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "route_int.h"
#include "server/state/redis_store.h"
#include "server/state/snapshot.h"
#include "server/common/log.h"

void vigil_source_release(vigil_source *src) {
    if (!src || atomic_fetch_sub(&src->refs, 1) != 1) return;
    src->done(src, src->ud);
}

static int queue_init(vqueue *q, size_t cap) {
    q->items = calloc(cap, sizeof *q->items);
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    pthread_cond_init(&q->nonfull, NULL);
    return q->items ? 0 : -1;
}

static inline int key_part(const vigil_router *r, const char *k, size_t kl) {
    return (int)(vigil_hash(k, kl) % (uint64_t)r->partitions);
}

/* Group g of rs takes events: a group whose rules a reload removed does not. */
static inline int routed(const vigil_ruleset *rs, int g) { return vigil_ruleset_group_rule_count(rs, g) > 0; }

int vigil_router_parts(const vigil_ruleset *rs, const vigil_event *ev) {
    int n = 0;
    for (int g = 0; g < vigil_ruleset_group_count(rs); g++) n += routed(rs, g) && vigil_event_key(ev, g, NULL) != NULL;
    return n;
}

vigil_ruleset *vigil_router_ruleset(vigil_router *r) {
    pthread_mutex_lock(&r->rs_mu);
    vigil_ruleset *rs = r->rs;
    vigil_ruleset_retain(rs);
    pthread_mutex_unlock(&r->rs_mu);
    return rs;
}

int vigil_router_store_down(const vigil_router *r) {
    for (int i = 0; i < r->nworkers; i++)
        if (atomic_load(&r->workers[i].store_down)) return 1;
    return 0;
}

/* only_g >= 0: to that key group alone (cluster mode: one pair's message) */
/* srcs (may be NULL): the source of each event, each source's events
 * contiguous in evs; else src (may be NULL) is every event's */
static vigil_status enqueue(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n, vigil_waiter *w,
                            vigil_source *src1, vigil_source *const *srcs, int block, const atomic_int *quitp,
                            int only_g) {
    if (atomic_load(&r->closed)) return VIGIL_EUNAVAILABLE;
    int ng = vigil_ruleset_group_count(rs);
    size_t *need = calloc((size_t)r->nworkers, sizeof *need);
    if (!need) return VIGIL_ENOMEM;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < ng; g++) {
            size_t kl;
            const char *k = routed(rs, g) && (only_g < 0 || g == only_g) ? vigil_event_key(evs[i], g, &kl) : NULL;
            if (k) need[key_part(r, k, kl) % r->nworkers]++;
        }
    pthread_mutex_lock(&r->ingest_mu);
    /* decoded with the ruleset a swap replaced meanwhile (a swap holds
     * ingest_mu while it changes r->rs and queues its markers, so what
     * passes this test is queued before the markers): a ?wait request
     * answers ESTALE (its waiter counts the old key groups); the others are
     * decoded again here with the current rules (rare: the race of a swap) */
    pthread_mutex_lock(&r->rs_mu);
    int stale = rs != r->rs;
    pthread_mutex_unlock(&r->rs_mu);
    vigil_event **mine = NULL;   /* the events decoded again (ours until they are queued) */
    if (stale && w) {
        pthread_mutex_unlock(&r->ingest_mu);
        free(need);
        return VIGIL_ESTALE;
    }
    if (stale) {
        rs = r->rs;
        ng = vigil_ruleset_group_count(rs);
        if (!(mine = calloc((size_t)(n ? n : 1), sizeof *mine))) {
            pthread_mutex_unlock(&r->ingest_mu);
            free(need);
            return VIGIL_ENOMEM;
        }
        vigil_status ds = VIGIL_OK;
        for (int i = 0; i < n && ds == VIGIL_OK; i++) ds = vigil_event_redecode(rs, evs[i], &mine[i]);
        memset(need, 0, (size_t)r->nworkers * sizeof *need);
        for (int i = 0; i < n && ds == VIGIL_OK; i++)
            for (int g = 0; g < ng; g++) {
                size_t kl;
                const char *k = routed(rs, g) && (only_g < 0 || g == only_g) ? vigil_event_key(mine[i], g, &kl) : NULL;
                if (k) need[key_part(r, k, kl) % r->nworkers]++;
            }
        if (ds != VIGIL_OK) {
            for (int i = 0; i < n; i++) vigil_event_release(mine[i]);
            free(mine);
            pthread_mutex_unlock(&r->ingest_mu);
            free(need);
            return ds;
        }
    }
    vigil_event **in = mine ? mine : evs;
    /* all or nothing: every target queue must have room for its share */
    vigil_status st = VIGIL_OK;
    for (int wi = 0; wi < r->nworkers && st == VIGIL_OK; wi++) {
        vqueue *q = &r->workers[wi].q;
        pthread_mutex_lock(&q->mu);
        if (need[wi] > q->cap) st = VIGIL_ETOOBIG;
        while (st == VIGIL_OK && q->cap - q->n < need[wi]) {
            int quit = atomic_load(&r->closed) || (quitp && atomic_load(quitp));
            if (!block || quit) {
                st = quit ? VIGIL_EUNAVAILABLE : VIGIL_EFULL;
                break;
            }
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100000000;
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&q->nonfull, &q->mu, &ts);
        }
        pthread_mutex_unlock(&q->mu);
    }
    if (st != VIGIL_OK) {
        pthread_mutex_unlock(&r->ingest_mu);
        for (int i = 0; mine && i < n; i++) vigil_event_release(mine[i]);
        free(mine);
        free(need);
        return st;
    }
    /* only this thread adds (ingest_mu held) and workers only remove: the
     * room stays. Each queue takes its share under one lock, so a worker
     * never sees part of a source message. */
    int64_t rx = vigil_now_us();
    for (int wi = 0; wi < r->nworkers; wi++) {
        if (!need[wi]) continue;
        vqueue *q = &r->workers[wi].q;
        pthread_mutex_lock(&q->mu);
        size_t lastslot = 0;
        const vigil_source *lastsrc = NULL;
        for (int i = 0; i < n; i++) {
            vigil_source *src = srcs ? srcs[i] : src1;
            for (int g = 0; g < ng; g++) {
                size_t kl;
                const char *k = routed(rs, g) && (only_g < 0 || g == only_g) ? vigil_event_key(in[i], g, &kl) : NULL;
                if (!k) continue;
                int part = key_part(r, k, kl);
                if (part % r->nworkers != wi) continue;
                vigil_event_retain(in[i]);
                if (w) vigil_waiter_retain(w);
                if (src) atomic_fetch_add(&src->refs, 1);
                size_t slot = (q->head + q->n) % q->cap;
                /* an item is its message's last in this queue until another of it follows */
                if (src && src == lastsrc) q->items[lastslot].msg_end = 0;
                q->items[slot] = (vitem){.ev = in[i], .group = g, .part = part, .msg_end = 1,
                                         .seq = src ? src->seq : 0, .src = src, .w = w, .rx_us = rx};
                lastslot = slot;
                lastsrc = src;
                q->n++;
            }
        }
        pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->mu);
    }
    for (int i = 0; i < n; i++) vigil_event_release(evs[i]);   /* the queues hold their own references */
    for (int i = 0; mine && i < n; i++) vigil_event_release(mine[i]);
    pthread_mutex_unlock(&r->ingest_mu);
    free(mine);
    free(need);
    return VIGIL_OK;
}

vigil_status vigil_router_enqueue(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n,
                                  vigil_waiter *w, int block, const atomic_int *quit) {
    return enqueue(r, rs, evs, n, w, NULL, NULL, block, quit, -1);
}

vigil_status vigil_router_enqueue_src(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n,
                                      vigil_source *src, int block, const atomic_int *quit) {
    return enqueue(r, rs, evs, n, NULL, src, NULL, block, quit, -1);
}

vigil_status vigil_router_enqueue_srcs(vigil_router *r, const vigil_ruleset *rs, vigil_event **evs, int n,
                                       vigil_source *const *srcs, int block, const atomic_int *quit) {
    return enqueue(r, rs, evs, n, NULL, NULL, srcs, block, quit, -1);
}

vigil_status vigil_router_enqueue_pair(vigil_router *r, const vigil_ruleset *rs, vigil_event *ev, int g,
                                       vigil_source *src, int block, const atomic_int *quit) {
    if (g < 0 || g >= vigil_ruleset_group_count(rs) || !routed(rs, g) || !vigil_event_key(ev, g, NULL))
        return VIGIL_ENOTFOUND;
    return enqueue(r, rs, &ev, 1, NULL, src, NULL, block, quit, g);
}

/* ---- hot reload ----------------------------------------------------------------------- */

#define SWAP_WAIT_MS 30000   /* a worker stuck (a store down) does not hold intake longer */

vigil_status vigil_router_swap(vigil_router *r, vigil_ruleset *rs, vigil_error *err) {
    if (vigil_ruleset_group_count(rs) > VROUTE_MAX_GROUPS)
        return vigil_error_set(err, VIGIL_ETOOBIG, "more than %d key fields across the rules", VROUTE_MAX_GROUPS);
    if (atomic_load(&r->closed) || atomic_load(&r->stopping))
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "the server is stopping");
    /* one swap at a time; intake waits while the markers go in and the workers reach them */
    pthread_mutex_lock(&r->swap_mu);
    while (r->swap_done < 0) pthread_cond_wait(&r->swap_cv, &r->swap_mu);
    r->swap_done = -1;   /* taken */
    pthread_mutex_unlock(&r->swap_mu);
    pthread_mutex_lock(&r->ingest_mu);
    pthread_mutex_lock(&r->rs_mu);
    vigil_ruleset *old = r->rs;
    vigil_ruleset_retain(rs);
    r->rs = rs;
    pthread_mutex_unlock(&r->rs_mu);
    pthread_mutex_lock(&r->swap_mu);
    int done = 0, failed = 0;
    r->swap_failed = 0;
    pthread_mutex_unlock(&r->swap_mu);
    for (int wi = 0; wi < r->nworkers; wi++) {   /* a marker at the end of every queue */
        vqueue *q = &r->workers[wi].q;
        pthread_mutex_lock(&q->mu);
        while (q->n == q->cap) pthread_cond_wait(&q->nonfull, &q->mu);   /* the worker makes room */
        vigil_ruleset_retain(rs);
        q->items[(q->head + q->n) % q->cap] = (vitem){.swap = rs, .msg_end = 1};
        q->n++;
        pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->mu);
    }
    /* intake stays closed until every worker switched: an event accepted
     * (answered) before the swap returns is queued before the markers, one
     * accepted after it behind them (DESIGN.md §6). Workers never take
     * ingest_mu, so they reach their markers. */
    pthread_mutex_lock(&r->swap_mu);
    int64_t deadline = vigil_now_ms() + SWAP_WAIT_MS;
    for (;;) {   /* wait for every worker (a stopped worker counts as failed) */
        done = 0;
        for (int wi = 0; wi < r->nworkers; wi++) done += r->workers[wi].rs == rs;
        failed = r->swap_failed;
        if (done + failed >= r->nworkers || atomic_load(&r->stopping) > 1 || vigil_now_ms() > deadline) break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&r->swap_cv, &r->swap_mu, &ts);
    }
    r->swap_done = 0;
    pthread_cond_broadcast(&r->swap_cv);
    pthread_mutex_unlock(&r->swap_mu);
    pthread_mutex_unlock(&r->ingest_mu);
    vigil_ruleset_release(old);
    if (done < r->nworkers)
        return vigil_error_set(err, failed ? VIGIL_ENOMEM : VIGIL_ETIMEOUT,
                               "%d of %d workers switched to the new rules (%s)", done, r->nworkers,
                               failed ? "out of memory: the others keep the old rules"
                               : atomic_load(&r->stopping) > 1 ? "stopping"
                               : "the others are busy (a store down?): they switch when they reach the change");
    return VIGIL_OK;
}

void vroute_task_release(vroute_task *t) {
    if (!t || atomic_fetch_sub(&t->refs, 1) != 1) return;
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    free(t);
}

vigil_status vigil_router_call(vigil_router *r, int g, const char *key, size_t len, vigil_router_task_fn fn,
                               void *ud, int timeout_ms, vigil_error *err) {
    if (atomic_load(&r->closed) || atomic_load(&r->stopping))
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "the server is stopping");
    if (len > 4096) return vigil_error_set(err, VIGIL_ETOOBIG, "key longer than 4096 bytes");
    vroute_task *t = calloc(1, sizeof *t + len + 1);
    if (!t) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->refs, 2);   /* ours and the queue's */
    t->fn = fn;
    t->ud = ud;
    t->group = g;
    t->keylen = len;
    memcpy(t->key, key, len);
    return vroute_run_task(r, key_part(r, key, len) % r->nworkers, t, timeout_ms, err);
}

/* Queue task t (refs 2: the caller's and the queue's) on worker wi and wait
 * for it; a task not reached within timeout_ms is abandoned (skipped). */
vigil_status vroute_run_task(vigil_router *r, int wi, vroute_task *t, int timeout_ms, vigil_error *err) {
    int64_t deadline = vigil_now_ms() + timeout_ms;
    struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    vworker *wk = &r->workers[wi];
    /* under the intake lock: enqueue counts on the room it checked staying there */
    pthread_mutex_lock(&r->ingest_mu);
    pthread_mutex_lock(&wk->q.mu);
    int full = 0;
    while (wk->q.n == wk->q.cap && !full) full = pthread_cond_timedwait(&wk->q.nonfull, &wk->q.mu, &ts) != 0;
    if (!full) {
        wk->q.items[(wk->q.head + wk->q.n) % wk->q.cap] = (vitem){.task = t, .msg_end = 1};
        wk->q.n++;
        pthread_cond_signal(&wk->q.nonempty);
    }
    pthread_mutex_unlock(&wk->q.mu);
    pthread_mutex_unlock(&r->ingest_mu);
    if (full) {
        atomic_fetch_sub(&t->refs, 1);   /* never queued */
        vroute_task_release(t);
        return vigil_error_set(err, VIGIL_ETIMEOUT, "the worker's queue stayed full");
    }
    pthread_mutex_lock(&t->mu);
    while (!t->done && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0) {}
    int done = t->done;
    if (!done) t->abandoned = 1;   /* the worker will skip it */
    pthread_mutex_unlock(&t->mu);
    vroute_task_release(t);
    return done ? VIGIL_OK : vigil_error_set(err, VIGIL_ETIMEOUT, "the worker did not reach it within %d ms", timeout_ms);
}

uint64_t vigil_router_rule_live(vigil_router *r, const char *name, int version, int *fresh) {
    uint64_t n = 0;
    int all = 1;
    for (int wi = 0; wi < r->nworkers; wi++) {
        vworker *wk = &r->workers[wi];
        pthread_mutex_lock(&wk->live_mu);
        if (!wk->live_at || !wk->live_rs) all = 0;
        int i = wk->live_rs ? vigil_ruleset_rule_find(wk->live_rs, name, version) : -1;
        if (i >= 0 && wk->live) n += wk->live[i];
        pthread_mutex_unlock(&wk->live_mu);
    }
    if (fresh) *fresh = all;
    return n;
}

/* Offsets and watermarks from where the state is: Redis, or the snapshot
 * files (which also hold the memory store's key states). */
static vigil_status load_durable_state(vigil_router *r, vigil_error *err) {
    int ng = vigil_ruleset_group_count(r->rs);
    if (r->cfg.redis_url) {
        const char **names = calloc((size_t)(ng ? ng : 1), sizeof *names);
        if (!names) return VIGIL_ENOMEM;
        for (int g = 0; g < ng; g++) names[g] = vigil_ruleset_group_key(r->rs, g);
        vigil_status st;
        for (;;) {   /* Redis not up yet: wait for it rather than start on empty state */
            st = vigil_redis_store_load_offsets(r->workers[0].store, names, ng, r->partitions, r->off_seq, r->off_wm,
                                                err);
            if (st != VIGIL_EUNAVAILABLE && !(st == VIGIL_ESTORE && strstr(err->msg, "LOADING"))) break;
            vigil_log(VIGIL_LOG_WARN, "route", "reading offsets: %s; retrying", err->msg);
            usleep(500000);
        }
        free(names);
        if (st != VIGIL_OK) return st;
    } else if (vroute_durable_snapshots(r)) {
        vigil_snapshot_view v;
        vroute_snapshot_view(r, r->rs, &v);
        vigil_status st = vigil_snapshot_load(&v, err);
        if (st != VIGIL_OK) return st;
    }
    /* each worker's watermark resumes where its pairs' last commit left it */
    for (int i = 0; i < r->nworkers; i++) {
        int64_t wm = INT64_MIN;
        for (int pair = 0; pair < ng * r->partitions; pair++)
            if ((pair % r->partitions) % r->nworkers == i && r->off_wm[pair] > wm) wm = r->off_wm[pair];
        if (wm > INT64_MIN) vigil_engine_advance(r->workers[i].eng, wm);
        atomic_store(&r->workers[i].watermark, vigil_engine_watermark(r->workers[i].eng));
    }
    return VIGIL_OK;
}

static void worker_free(vigil_router *r, vworker *wk) {
    vigil_engine_destroy(wk->eng);
    for (size_t j = 0; wk->q.items && j < wk->q.n; j++) {   /* a swap marker never taken */
        vitem *it = &wk->q.items[(wk->q.head + j) % wk->q.cap];
        if (it->swap) vigil_ruleset_release(it->swap);
        if (it->task) vroute_task_release(it->task);
    }
    vigil_ruleset_release(wk->rs);
    vigil_ruleset_release(wk->live_rs);
    free(wk->live);
    pthread_mutex_destroy(&wk->live_mu);
    if (wk->store) wk->store->destroy(wk->store);
    free(wk->q.items);
    for (size_t j = 0; j < wk->nalerts; j++) vigil_alert_record_free(&wk->alerts[j]);
    free(wk->alerts);
    free(wk->alert_waiters);
    free(wk->alert_rx);
    for (size_t j = 0; j < wk->nlate; j++) vigil_event_release(wk->late[j]);
    free(wk->late);
    free(wk->late_group);
    free(wk->touched);
    free(wk->touched_mark);
    for (size_t j = 0; j < wk->nunacked; j++) vigil_source_release(wk->unacked[j]);
    free(wk->unacked);
}

static void router_free(vigil_router *r) {
    vroute_pairs_free(r);
    for (int i = 0; r->workers && i < r->nworkers; i++) worker_free(r, &r->workers[i]);
    free(r->workers);
    free(r->engines);
    free(r->off_seq);
    free(r->off_wm);
    free(r->off_src);
    if (r->rs) vigil_ruleset_release(r->rs);
    pthread_mutex_destroy(&r->ingest_mu);
    pthread_mutex_destroy(&r->rs_mu);
    pthread_mutex_destroy(&r->swap_mu);
    pthread_cond_destroy(&r->swap_cv);
    free(r);
}

vigil_status vigil_router_create(const vigil_router_config *cfg, vigil_router **out, vigil_error *err) {
    vigil_router *r = calloc(1, sizeof *r);
    if (!r) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    vigil_status st0;
    r->cfg = *cfg;
    if (r->cfg.workers <= 0) r->cfg.workers = 2;
    if (r->cfg.partitions <= 0) r->cfg.partitions = 16;
    if (!r->cfg.queue_cap) r->cfg.queue_cap = 65536;
    if (r->cfg.idle_timeout_ms < 0) r->cfg.idle_timeout_ms = 0;
    if (r->cfg.snapshot_interval_ms <= 0) r->cfg.snapshot_interval_ms = 10000;
    if (!r->cfg.redis_prefix) r->cfg.redis_prefix = "vigil";
    pthread_mutex_init(&r->ingest_mu, NULL);
    vigil_hist_init(&r->h_latency, vigil_hist_time_bounds, vigil_hist_time_nbounds, 1e-6);
    vigil_hist_init(&r->h_commit, vigil_hist_time_bounds, vigil_hist_time_nbounds, 1e-6);
    vigil_hist_init(&r->h_batch, vigil_hist_size_bounds, vigil_hist_size_nbounds, 1);
    pthread_mutex_init(&r->rs_mu, NULL);
    pthread_mutex_init(&r->swap_mu, NULL);
    pthread_cond_init(&r->swap_cv, NULL);
    vigil_ruleset_retain(cfg->rs);
    r->rs = cfg->rs;
    r->nworkers = r->cfg.workers;
    r->partitions = r->cfg.partitions;
    if (vigil_ruleset_group_count(r->rs) > VROUTE_MAX_GROUPS) {
        st0 = vigil_error_set(err, VIGIL_ETOOBIG, "more than %d key fields across the rules", VROUTE_MAX_GROUPS);
        router_free(r);
        return st0;
    }
    size_t npairs = (size_t)VROUTE_MAX_GROUPS * (size_t)r->partitions;   /* groups only grow (hot reload) */
    r->off_seq = calloc(npairs, sizeof *r->off_seq);
    r->off_wm = malloc(npairs * sizeof *r->off_wm);
    r->off_src = calloc(npairs, sizeof *r->off_src);
    r->workers = calloc((size_t)r->nworkers, sizeof *r->workers);
    r->engines = calloc((size_t)r->nworkers, sizeof *r->engines);
    vigil_status st = VIGIL_OK;
    if (!r->off_seq || !r->off_wm || !r->off_src || !r->workers || !r->engines) {
        st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < npairs; i++) r->off_wm[i] = INT64_MIN;
    vigil_engine_opts eo = {.allowed_lateness_ms = r->cfg.allowed_lateness_ms,
                            .max_out_of_orderness_ms = r->cfg.max_out_of_orderness_ms};
    for (int i = 0; i < r->nworkers; i++) {
        vworker *wk = &r->workers[i];
        wk->r = r;
        wk->idx = i;
        pthread_mutex_init(&wk->live_mu, NULL);
        vigil_ruleset_retain(r->rs);
        wk->rs = r->rs;
        atomic_init(&wk->watermark, INT64_MIN);
        if (queue_init(&wk->q, r->cfg.queue_cap) != 0) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for queues");
            goto fail;
        }
        wk->touched = malloc(npairs * sizeof *wk->touched);
        wk->touched_mark = calloc(npairs, 1);
        if (!wk->touched || !wk->touched_mark) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
            goto fail;
        }
        if (r->cfg.redis_url) {
            if ((st = vigil_redis_store_create(r->cfg.redis_url, r->cfg.redis_prefix, &wk->store, err)) != VIGIL_OK)
                goto fail;
            vigil_redis_store_set_partitions(wk->store, r->partitions);
        }
        if (!(wk->eng = vigil_engine_create(r->rs, &eo, wk->store, vroute_on_alert, wk))) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for an engine");
            goto fail;
        }
        r->engines[i] = wk->eng;
    }
    if ((st = vroute_pairs_init(r, err)) != VIGIL_OK) goto fail;
    if ((st = load_durable_state(r, err)) != VIGIL_OK) goto fail;
    *out = r;
    return VIGIL_OK;
fail:
    router_free(r);
    return st;
}

void vigil_router_start(vigil_router *r) {
    for (int i = 0; i < r->nworkers; i++)
        if (pthread_create(&r->workers[i].th, NULL, vroute_worker_main, &r->workers[i]) == 0)
            r->workers[i].started = 1;
}

void vigil_router_stop(vigil_router *r) {
    if (!r || atomic_load(&r->stopping) == 2) return;
    atomic_store(&r->closed, 1);
    atomic_store(&r->stopping, 1);
    for (int i = 0; i < r->nworkers; i++) {
        pthread_mutex_lock(&r->workers[i].q.mu);
        pthread_cond_broadcast(&r->workers[i].q.nonempty);
        pthread_cond_broadcast(&r->workers[i].q.nonfull);
        pthread_mutex_unlock(&r->workers[i].q.mu);
    }
    for (int i = 0; i < r->nworkers; i++)
        if (r->workers[i].started) pthread_join(r->workers[i].th, NULL);
    atomic_store(&r->stopping, 2);
}

void vigil_router_destroy(vigil_router *r) {
    if (!r) return;
    vigil_router_stop(r);
    router_free(r);
}

void vigil_router_get_stats(vigil_router *r, vigil_router_stats *o) {
    memset(o, 0, sizeof *o);
    o->workers = r->nworkers;
    o->watermark_min = INT64_MAX;
    for (int i = 0; i < r->nworkers; i++) {
        vworker *w = &r->workers[i];
        o->skipped += atomic_load(&w->skipped);
        o->snapshots += atomic_load(&w->snapshots);
        o->commit_us_sum += atomic_load(&w->commit_us_sum);
        o->commit_count += atomic_load(&w->commit_count);
        o->swaps += atomic_load(&w->swaps);
        o->swap_us_sum += atomic_load(&w->swap_us_sum);
        if (atomic_load(&w->swap_us_max) > o->swap_us_max) o->swap_us_max = atomic_load(&w->swap_us_max);
        o->store_down |= atomic_load(&w->store_down);
        o->processed += atomic_load(&w->processed);
        o->late += atomic_load(&w->late_count);
        o->keys += atomic_load(&w->keys);
        o->runs += atomic_load(&w->runs);
        o->keys_expired += atomic_load(&w->keys_expired);
        o->runs_evicted += atomic_load(&w->runs_evicted);
        o->function_errors += atomic_load(&w->function_errors);
        o->commits += atomic_load(&w->commits);
        o->commit_errors += atomic_load(&w->commit_errors);
        o->pairs_fenced += atomic_load(&w->fenced);
        int64_t wm = atomic_load(&w->watermark);
        if (wm < o->watermark_min) o->watermark_min = wm;
        pthread_mutex_lock(&w->q.mu);
        o->queue_depth += w->q.n;
        pthread_mutex_unlock(&w->q.mu);
        vigil_redis_stats rst;
        /* counters of another thread's store: read racily, monotonic */
        if (w->store && vigil_redis_store_stats(w->store, &rst) == VIGIL_OK) {
            o->redis_round_trips += rst.round_trips;
            o->redis_keys_loaded += rst.keys_loaded;
            o->redis_keys_saved += rst.keys_saved;
        }
    }
    if (o->watermark_min == INT64_MAX) o->watermark_min = INT64_MIN;
}

void vigil_router_hists(vigil_router *r, const vigil_hist **latency, const vigil_hist **commit,
                        const vigil_hist **batch) {
    *latency = &r->h_latency;
    *commit = &r->h_commit;
    *batch = &r->h_batch;
}

/* server.c — `vigil serve`: workers, routing and the alert sinks.
 *
 * Each worker owns the keys that hash to it (per key group) and runs its own
 * engine, so per-key state needs no locks. A worker takes up to 1000 items
 * from its bounded queue, prefetches the state of keys it does not cache
 * (one pipelined Redis round trip), feeds them, commits every changed key
 * (one MULTI/EXEC), and only then releases the batch's alerts to the sinks
 * — so an alert never leaves before the state that produced it is stored. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "server_int.h"
#include "server/state/redis_store.h"
#include "server/alerts/outbox.h"
#include "server/alerts/dispatch.h"
#include "server/common/fault.h"
#include "vigil/rules.h"

#define BATCH 1000

/* ---- waiters --------------------------------------------------------------- */

void vwaiter_release(vwaiter *w) {
    if (!w || atomic_fetch_sub(&w->refs, 1) != 1) return;
    pthread_mutex_destroy(&w->mu);
    free(w->alerts);
    free(w);
}

static void waiter_append(vwaiter *w, const char *json, size_t len) {
    pthread_mutex_lock(&w->mu);
    if (w->len + len + 2 > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 1024;
        while (cap < w->len + len + 2) cap *= 2;
        char *n = realloc(w->alerts, cap);
        if (n) {
            w->alerts = n;
            w->cap = cap;
        }
    }
    if (w->len + len + 2 <= w->cap) {
        char sep = w->len ? ',' : '[';
        w->alerts[w->len++] = sep;
        memcpy(w->alerts + w->len, json, len);
        w->len += len;
    }
    pthread_mutex_unlock(&w->mu);
}

static void waiter_done(vwaiter *w) {
    pthread_mutex_lock(&w->mu);
    if (--w->pending == 0 && !w->timed_out) {
        w->done = 1;
        if (w->conn) MHD_resume_connection(w->conn);
    }
    pthread_mutex_unlock(&w->mu);
}

void vsrv_wait_register(vigil_server *s, vwaiter *w) {
    atomic_fetch_add(&w->refs, 1);
    pthread_mutex_lock(&s->wmu);
    w->next = s->waiting;
    s->waiting = w;
    pthread_cond_signal(&s->wcond);
    pthread_mutex_unlock(&s->wmu);
}

/* Times out waiters whose deadline passed: resumes their connection so the
 * handler answers 504. The only timer in the server; sleeps until the
 * earliest deadline. */
static void *reaper_main(void *arg) {
    vigil_server *s = arg;
    pthread_mutex_lock(&s->wmu);
    while (!atomic_load(&s->stopping) || s->waiting) {
        int64_t now = vigil_now_ms(), next = now + 1000;
        vwaiter **pp = &s->waiting;
        while (*pp) {
            vwaiter *w = *pp;
            pthread_mutex_lock(&w->mu);
            int finished = w->done;
            if (!finished && (now >= w->deadline_ms || atomic_load(&s->stopping))) {
                w->timed_out = 1;
                finished = 1;
                if (w->conn) MHD_resume_connection(w->conn);
            }
            pthread_mutex_unlock(&w->mu);
            if (finished) {
                *pp = w->next;
                vwaiter_release(w);
                continue;
            }
            if (w->deadline_ms < next) next = w->deadline_ms;
            pp = &w->next;
        }
        if (atomic_load(&s->stopping) && !s->waiting) break;
        struct timespec ts = {.tv_sec = next / 1000, .tv_nsec = (next % 1000) * 1000000};
        pthread_cond_timedwait(&s->wcond, &s->wmu, &ts);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

/* ---- queues ------------------------------------------------------------------ */

static int queue_init(vqueue *q, size_t cap) {
    q->items = calloc(cap, sizeof *q->items);
    q->cap = cap;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->nonempty, NULL);
    pthread_cond_init(&q->nonfull, NULL);
    return q->items ? 0 : -1;
}

static inline int key_part(vigil_server *s, const char *k, size_t kl) {
    return (int)(vigil_hash(k, kl) % (uint64_t)s->partitions);
}

static vigil_status enqueue(vigil_server *s, vigil_event **evs, int n, vwaiter *w, vsrcmsg *src, int block) {
    if (atomic_load(&s->stopping)) return VIGIL_EUNAVAILABLE;
    int ng = vigil_ruleset_group_count(s->rs);
    size_t *need = calloc((size_t)s->nworkers, sizeof *need);
    size_t *last = calloc((size_t)s->nworkers, sizeof *last);   /* queue slot of each worker's last item */
    if (!need || !last) {
        free(need);
        free(last);
        return VIGIL_ENOMEM;
    }
    for (int i = 0; i < n; i++)
        for (int g = 0; g < ng; g++) {
            size_t kl;
            const char *k = vigil_event_key(evs[i], g, &kl);
            if (k) need[key_part(s, k, kl) % s->nworkers]++;
        }
    pthread_mutex_lock(&s->ingest_mu);
    /* all or nothing: every target queue must have room for its share */
    vigil_status st = VIGIL_OK;
    for (int wi = 0; wi < s->nworkers && st == VIGIL_OK; wi++) {
        vqueue *q = &s->workers[wi].q;
        pthread_mutex_lock(&q->mu);
        if (need[wi] > q->cap) st = VIGIL_ETOOBIG;
        while (st == VIGIL_OK && q->cap - q->n < need[wi]) {
            int quit = atomic_load(&s->stopping) || (src && atomic_load(&s->js_stop));
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
        pthread_mutex_unlock(&s->ingest_mu);
        free(need);
        free(last);
        return st;
    }
    /* only this thread adds (ingest_mu held) and workers only remove: the
     * room stays. Each queue takes its share under one lock, so a worker
     * never sees part of a source message. */
    for (int wi = 0; wi < s->nworkers; wi++) {
        if (!need[wi]) continue;
        vqueue *q = &s->workers[wi].q;
        pthread_mutex_lock(&q->mu);
        size_t lastslot = 0;
        int any = 0;
        for (int i = 0; i < n; i++)
            for (int g = 0; g < ng; g++) {
                size_t kl;
                const char *k = vigil_event_key(evs[i], g, &kl);
                if (!k) continue;
                int part = key_part(s, k, kl);
                if (part % s->nworkers != wi) continue;
                vigil_event_retain(evs[i]);
                if (w) atomic_fetch_add(&w->refs, 1);
                if (src) atomic_fetch_add(&src->refs, 1);
                size_t slot = (q->head + q->n) % q->cap;
                /* an item is its message's last in this queue until another follows */
                if (src && any) q->items[lastslot].msg_end = 0;
                q->items[slot] = (vitem){.ev = evs[i], .group = g, .part = part, .msg_end = 1,
                                         .seq = src ? src->seq : 0, .src = src, .w = w};
                lastslot = slot;
                any = 1;
                q->n++;
            }
        pthread_cond_signal(&q->nonempty);
        pthread_mutex_unlock(&q->mu);
    }
    for (int i = 0; i < n; i++) vigil_event_release(evs[i]);   /* the queues hold their own references */
    pthread_mutex_unlock(&s->ingest_mu);
    free(need);
    free(last);
    return VIGIL_OK;
}

vigil_status vsrv_enqueue(vigil_server *s, vigil_event **evs, int n, vwaiter *w, int block) {
    return enqueue(s, evs, n, w, NULL, block);
}

vigil_status vsrv_enqueue_src(vigil_server *s, vigil_event **evs, int n, vsrcmsg *src, int block) {
    return enqueue(s, evs, n, NULL, src, block);
}

void vsrv_src_release(vigil_server *s, vsrcmsg *src) {
    if (!src || atomic_fetch_sub(&src->refs, 1) != 1) return;
    if (src->msg) {
        if (natsMsg_Ack(src->msg, NULL) == NATS_OK) atomic_fetch_add(&s->js_acked, 1);
        natsMsg_Destroy(src->msg);
    }
    free(src);
}

int vsrv_paused(vigil_server *s) {
    for (int i = 0; i < s->nworkers; i++)
        if (atomic_load(&s->workers[i].store_down)) return 1;
    if (s->js && (!s->nc || natsConnection_Status(s->nc) != NATS_CONN_STATUS_CONNECTED)) return 1;
    return 0;
}

/* ---- workers ------------------------------------------------------------------ */

static void on_alert(void *ud, const vigil_alert *a) {
    vworker *wk = ud;
    if (wk->nalerts == wk->capalerts) {
        size_t cap = wk->capalerts ? wk->capalerts * 2 : 64;
        valert *n = realloc(wk->alerts, cap * sizeof *n);
        if (!n) return;
        wk->alerts = n;
        wk->capalerts = cap;
    }
    valert *v = &wk->alerts[wk->nalerts];
    memset(v, 0, sizeof *v);
    if (!(v->json = vigil_alert_to_json(a, vigil_now_ms()))) return;
    v->len = strlen(v->json);
    v->rule = vigil_ruleset_rule_index(wk->srv->rs, a->rule);
    v->mode = a->mode;
    memcpy(v->id, a->id, sizeof v->id);
    v->ts = a->ts;
    snprintf(v->rule_name, sizeof v->rule_name, "%s", a->rule);
    snprintf(v->key, sizeof v->key, "%s", a->key);
    snprintf(v->severity, sizeof v->severity, "%s", vigil_severity_str(a->severity));
    v->w = wk->cur_waiter;
    wk->nalerts++;
}

static void dispatch_alerts(vworker *wk) {
    vigil_server *s = wk->srv;
    for (size_t i = 0; i < wk->nalerts; i++) {
        valert *a = &wk->alerts[i];
        vigil_hub_publish(s->hub, a->json, a->len, a->rule_name, a->severity, a->key, a->ts);
        if (s->nc) vnats_publish_alert(s, a);
        if (a->w) waiter_append(a->w, a->json, a->len);
        if (a->rule >= 0) atomic_fetch_add(&s->rule_alerts[a->rule], 1);
        atomic_fetch_add(&s->alerts_total, 1);
        free(a->json);
    }
    wk->nalerts = 0;
}

/* Retry a store operation until it succeeds or the server stops: losing the
 * store pauses this worker (and, through full queues and vsrv_paused, the
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
        fprintf(stderr, "vigil: worker %d: %s failed: %s (%s); retrying\n", wk->idx, what, err.msg, vigil_status_str(st));
        if (atomic_load(&wk->srv->stopping) > 1) return -1;
        usleep((useconds_t)delay * 1000);
        if (delay < 2000) delay *= 2;
    }
}

typedef struct batch { vitem *it; int n; vigil_event **evs; int *groups; } batch;
static vigil_status op_prefetch(vworker *wk, void *arg, vigil_error *err) {
    batch *b = arg;
    return vigil_engine_prefetch(wk->eng, b->evs, b->groups, b->n, err);
}

/* The outbox's view of the batch's alerts: active ones, when endpoints exist. */
static int outbox_alerts(vworker *wk, vigil_alert_record **out) {
    *out = NULL;
    if (!wk->srv->outbox || !wk->nalerts) return 0;
    vigil_alert_record *oa = calloc(wk->nalerts, sizeof *oa);
    if (!oa) return -1;
    int n = 0;
    for (size_t i = 0; i < wk->nalerts; i++) {
        valert *a = &wk->alerts[i];
        if (a->mode != VIGIL_MODE_ACTIVE) continue;
        /* json borrowed from the valert (freed by dispatch_alerts), not owned by the record */
        vigil_alert_record_set(&oa[n++], a->id, a->rule_name, a->severity, a->key, VIGIL_MODE_ACTIVE, a->json, a->len);
    }
    *out = oa;
    return n;
}

/* One commit: the changed key states, the offsets this batch moved and its
 * alerts, all or nothing. Redis: one MULTI/EXEC. Memory store: the alerts
 * go to the outbox file (the state is in memory; snapshots make it
 * durable). */
static vigil_status op_commit(vworker *wk, void *arg, vigil_error *err) {
    (void)arg;
    vigil_server *s = wk->srv;
    vigil_alert_record *oa;
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
                offs[i] = (vigil_redis_offset){.group_name = vigil_ruleset_group_key(s->rs, pair / s->partitions),
                                               .partition = pair % s->partitions, .seq = s->off_seq[pair],
                                               .wm = vigil_engine_watermark(wk->eng)};
            }
        }
        if (st == VIGIL_OK)
            st = vigil_redis_store_commit(wk->store, recs, (int)n, offs, wk->ntouched, oa, noa, err);
        vigil_engine_commit_end(wk->eng, st == VIGIL_OK);
        free(offs);
    } else if (noa) {
        st = vigil_webhooks_append(s->outbox, oa, noa, err);
    }
    free(oa);
    return st;
}

static void touch_clear(vworker *wk) {
    /* the batch held whole messages: none of them has items still to come */
    for (int i = 0; i < wk->ntouched; i++) wk->srv->off_src[wk->touched[i]] = NULL;
    for (int i = 0; i < wk->ntouched; i++) wk->touched_mark[wk->touched[i]] = 0;
    wk->ntouched = 0;
}

static void commit_batch(vworker *wk) {
    int64_t t0 = vigil_now_us();
    if (with_retry(wk, op_commit, NULL, "committing key state") == 0) {
        atomic_fetch_add(&wk->commit_us_sum, (unsigned long long)(vigil_now_us() - t0));
        atomic_fetch_add(&wk->commit_count, 1);
    }
    touch_clear(wk);
}

/* The memory store: snapshot when due; then the sources it covers are acked. */
static void snapshot_if_due(vworker *wk, int force) {
    vigil_server *s = wk->srv;
    if (wk->store || !s->cfg.data_dir || !*s->cfg.data_dir) return;
    int64_t now = vigil_now_ms();
    int due = force || wk->nunacked > 20000 ||
              (wk->dirty_since_snapshot && now - wk->last_snapshot_ms >= s->cfg.snapshot_interval_ms);
    if (!due || (!wk->dirty_since_snapshot && !wk->nunacked)) return;
    vigil_error err;
    vigil_error_clear(&err);
    if (vsnap_write(wk, &err) != VIGIL_OK) {
        fprintf(stderr, "vigil: worker %d: snapshot failed: %s (state stays in memory; retrying later)\n", wk->idx, err.msg);
        atomic_fetch_add(&wk->commit_errors, 1);
        wk->last_snapshot_ms = now;   /* not again at once */
        return;
    }
    atomic_fetch_add(&wk->snapshots, 1);
    wk->last_snapshot_ms = now;
    if (s->outbox) {   /* once every worker snapshotted since the last mark, the outbox may forget older ids */
        unsigned long long all = s->nworkers >= 64 ? ~0ull : (1ull << s->nworkers) - 1;
        unsigned long long m = atomic_fetch_or(&s->snap_mask, 1ull << (wk->idx % 64)) | (1ull << (wk->idx % 64));
        if ((m & all) == all && atomic_compare_exchange_strong(&s->snap_mask, &m, 0))
            vigil_outbox_file_mark_snapshot(s->outbox);
    }
    wk->dirty_since_snapshot = 0;
    for (size_t i = 0; i < wk->nunacked; i++) vsrv_src_release(s, wk->unacked[i]);
    wk->nunacked = 0;
}

/* After the commit: sources whose items are all committed get acked (the
 * memory store defers that to the snapshot that makes them durable). */
static void release_sources(vworker *wk, vitem *it, int n) {
    vigil_server *s = wk->srv;
    int defer = !wk->store && s->cfg.data_dir && *s->cfg.data_dir;
    for (int i = 0; i < n; i++) {
        if (!it[i].src) continue;
        if (!defer) {
            vsrv_src_release(s, it[i].src);
            continue;
        }
        if (wk->nunacked == wk->capunacked) {
            size_t cap = wk->capunacked ? wk->capunacked * 2 : 1024;
            vsrcmsg **u = realloc(wk->unacked, cap * sizeof *u);
            if (!u) {   /* cannot defer: ack now (the snapshot may then lag it) */
                vsrv_src_release(s, it[i].src);
                continue;
            }
            wk->unacked = u;
            wk->capunacked = cap;
        }
        wk->unacked[wk->nunacked++] = it[i].src;
    }
}

static void *worker_main(void *arg) {
    vworker *wk = arg;
    vigil_server *s = wk->srv;
    size_t cap = BATCH;
    vitem *it = malloc(cap * sizeof *it);
    vigil_event **evs = malloc(cap * sizeof *evs);
    int *groups = malloc(cap * sizeof *groups);
    if (!it || !evs || !groups) abort();
    int64_t last_stats = 0;
    int64_t last_arrival = 0, wm_at_arrival = INT64_MIN;   /* wall ms of the last batch; the watermark then */
    wk->last_snapshot_ms = vigil_now_ms();
    for (;;) {
        pthread_mutex_lock(&wk->q.mu);
        int idle_tick = 0;
        while (wk->q.n == 0 && !atomic_load(&s->stopping)) {
            int64_t idle = s->cfg.idle_timeout_ms;
            int64_t now = vigil_now_ms(), wake;
            int snap_pending = !wk->store && (wk->dirty_since_snapshot || wk->nunacked) && s->cfg.data_dir && *s->cfg.data_dir;
            if ((idle <= 0 || last_arrival == 0) && !snap_pending) {
                pthread_cond_wait(&wk->q.nonempty, &wk->q.mu);
                continue;
            }
            /* wake at the idle timeout, then every idle/4 while idle; and for a due snapshot */
            wake = INT64_MAX;
            if (idle > 0 && last_arrival) {
                wake = last_arrival + idle;
                if (wake <= now) wake = now + (idle / 4 > 10 ? idle / 4 : 10);
            }
            if (snap_pending && wk->last_snapshot_ms + s->cfg.snapshot_interval_ms < wake)
                wake = wk->last_snapshot_ms + s->cfg.snapshot_interval_ms;
            if (wake < now + 1) wake = now + 1;
            struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000};
            if (pthread_cond_timedwait(&wk->q.nonempty, &wk->q.mu, &ts) != 0 && wk->q.n == 0) {
                idle_tick = 1;
                break;
            }
        }
        if (idle_tick) {
            /* an idle source: event time moves on with processing time, so
             * absences and window closes fire without new traffic */
            pthread_mutex_unlock(&wk->q.mu);
            int64_t idle = s->cfg.idle_timeout_ms;
            if (idle > 0 && last_arrival && vigil_now_ms() - last_arrival >= idle) {
                int64_t wm = wm_at_arrival + (vigil_now_ms() - last_arrival);
                if (wm > vigil_engine_watermark(wk->eng)) {
                    vigil_engine_advance(wk->eng, wm);
                    commit_batch(wk);
                    dispatch_alerts(wk);
                    wk->dirty_since_snapshot = 1;
                }
            }
            snapshot_if_due(wk, 0);
            continue;
        }
        if (wk->q.n == 0) {
            pthread_mutex_unlock(&wk->q.mu);
            break;
        }
        /* a batch: up to BATCH items, never splitting a source message (its
         * offset covers all of it) */
        int n = 0;
        while (wk->q.n && (n < BATCH || !it[n - 1].msg_end)) {
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
            it[n++] = wk->q.items[wk->q.head];
            wk->q.head = (wk->q.head + 1) % wk->q.cap;
            wk->q.n--;
        }
        pthread_cond_broadcast(&wk->q.nonfull);
        pthread_mutex_unlock(&wk->q.mu);
        for (int i = 0; i < n; i++) {
            evs[i] = it[i].ev;
            groups[i] = it[i].group;
        }
        batch b = {.it = it, .n = n, .evs = evs, .groups = groups};
        if (wk->store) with_retry(wk, op_prefetch, &b, "loading key state");
        for (int i = 0; i < n; i++) {
            vigil_error err;
            if (n > 1 && i == n / 2) vigil_fault_point("feed");
            if (it[i].seq) {
                /* applied before (a redelivery): an older message, or the
                 * same sequence from another copy than the one being applied */
                int pair = it[i].group * s->partitions + it[i].part;
                if (it[i].seq < s->off_seq[pair] || (it[i].seq == s->off_seq[pair] && it[i].src != s->off_src[pair])) {
                    atomic_fetch_add(&wk->skipped, 1);
                    continue;
                }
                s->off_seq[pair] = it[i].seq;
                s->off_src[pair] = it[i].src;
                if (!wk->touched_mark[pair]) {
                    wk->touched_mark[pair] = 1;
                    wk->touched[wk->ntouched++] = pair;
                }
            }
            wk->cur_waiter = it[i].w;
            vigil_status st = vigil_engine_feed_group(wk->eng, it[i].ev, it[i].group, &err);
            if (st == VIGIL_ELATE) {
                atomic_fetch_add(&wk->late, 1);
                if (s->nc) vnats_publish_late(s, it[i].ev, vigil_ruleset_group_key(s->rs, it[i].group));
            }
            else if (st != VIGIL_OK) fprintf(stderr, "vigil: worker %d: event %s: %s\n", wk->idx, vigil_event_id(it[i].ev), err.msg);
        }
        wk->cur_waiter = NULL;
        wk->dirty_since_snapshot = 1;
        last_arrival = vigil_now_ms();
        wm_at_arrival = vigil_engine_watermark(wk->eng);
        commit_batch(wk);
        atomic_fetch_add(&wk->commits, 1);
        vigil_fault_point("ack");
        release_sources(wk, it, n);
        dispatch_alerts(wk);
        snapshot_if_due(wk, 0);
        /* counters before answering waiters: a client that got its answer
         * must see its event counted */
        int64_t now = vigil_now_ms();
        if (now - last_stats >= 1000) {   /* the stats walk every key: at most once a second */
            vigil_engine_stats st;
            vigil_engine_get_stats(wk->eng, &st);
            atomic_store(&wk->keys, st.keys);
            atomic_store(&wk->runs, st.runs);
            atomic_store(&wk->keys_expired, st.keys_expired);
            atomic_store(&wk->runs_evicted, st.runs_evicted);
            atomic_store(&wk->function_errors, st.function_errors);
            last_stats = now;
        }
        atomic_fetch_add(&wk->processed, (unsigned long long)n);
        for (int i = 0; i < n; i++) {
            if (it[i].w) {
                waiter_done(it[i].w);
                vwaiter_release(it[i].w);
            }
            vigil_event_release(it[i].ev);
        }
    }
    snapshot_if_due(wk, 1);   /* stopping: the last snapshot, then its acks */
    free(it);
    free(evs);
    free(groups);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------- */

static void server_free(vigil_server *s) {
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        vworker *wk = &s->workers[i];
        vigil_engine_destroy(wk->eng);
        if (wk->store) wk->store->destroy(wk->store);
        free(wk->q.items);
        free(wk->alerts);
        free(wk->touched);
        free(wk->touched_mark);
        for (size_t j = 0; j < wk->nunacked; j++) vsrv_src_release(s, wk->unacked[j]);
        free(wk->unacked);
    }
    free(s->workers);
    vigil_webhooks_stop(s->dispatch, s->outbox);
    vigil_hub_destroy(s->hub);
    free(s->rule_alerts);
    free(s->off_seq);
    free(s->off_wm);
    free(s->off_src);
    if (s->rs) vigil_ruleset_release(s->rs);
    free(s);
}

/* Offsets and watermarks from where the state is: Redis, or the snapshot
 * files (which also hold the memory store's key states). */
static vigil_status load_durable_state(vigil_server *s, vigil_error *err) {
    int ng = vigil_ruleset_group_count(s->rs);
    if (s->cfg.redis_url) {
        const char **names = calloc((size_t)(ng ? ng : 1), sizeof *names);
        if (!names) return VIGIL_ENOMEM;
        for (int g = 0; g < ng; g++) names[g] = vigil_ruleset_group_key(s->rs, g);
        vigil_status st;
        for (;;) {   /* Redis not up yet: wait for it rather than start on empty state */
            st = vigil_redis_store_load_offsets(s->workers[0].store, names, ng, s->partitions, s->off_seq, s->off_wm, err);
            if (st != VIGIL_EUNAVAILABLE && !(st == VIGIL_ESTORE && strstr(err->msg, "LOADING"))) break;
            fprintf(stderr, "vigil: reading offsets: %s; retrying\n", err->msg);
            usleep(500000);
        }
        free(names);
        if (st != VIGIL_OK) return st;
    } else if (s->cfg.data_dir && *s->cfg.data_dir) {
        vigil_status st = vsnap_load(s, err);
        if (st != VIGIL_OK) return st;
    }
    /* each worker's watermark resumes where its pairs' last commit left it */
    for (int i = 0; i < s->nworkers; i++) {
        int64_t wm = INT64_MIN;
        for (int pair = 0; pair < ng * s->partitions; pair++)
            if ((pair % s->partitions) % s->nworkers == i && s->off_wm[pair] > wm) wm = s->off_wm[pair];
        if (wm > INT64_MIN) vigil_engine_advance(s->workers[i].eng, wm);
    }
    return VIGIL_OK;
}

/* Webhook endpoints: the config file's, then one per --webhook URL, from
 * the outbox the configuration calls for (webhooks.h). */
static vigil_status start_webhooks(vigil_server *s, vigil_error *err) {
    const char *urls[VIGIL_MAX_WEBHOOKS];
    for (int i = 0; i < s->cfg.nwebhooks; i++) urls[i] = s->cfg.webhooks[i];
    return vigil_webhooks_start(s->cfg.endpoints, s->cfg.nendpoints, urls, s->cfg.nwebhooks, s->cfg.webhook_secret,
                                s->cfg.redis_url, s->cfg.redis_prefix, s->cfg.data_dir, s->cfg.outbox_fsync,
                                &s->outbox, &s->dispatch, err);
}

vigil_status vigil_server_start(const vigil_server_config *cfg, vigil_server **out, vigil_error *err) {
    vigil_server *s = calloc(1, sizeof *s);
    if (!s) return VIGIL_ENOMEM;
    s->cfg = *cfg;
    s->started_ms = vigil_now_ms();
    if (!s->cfg.rules) s->cfg.rules = "rules";
    if (!s->cfg.listen) s->cfg.listen = "127.0.0.1:8080";
    if (!s->cfg.subject) s->cfg.subject = "vigil.events.>";
    if (!s->cfg.stream) s->cfg.stream = "VIGIL_EVENTS";
    if (!s->cfg.consumer) s->cfg.consumer = "vigil";
    if (s->cfg.fetch_batch <= 0) s->cfg.fetch_batch = 1000;
    if (s->cfg.workers <= 0) s->cfg.workers = 2;
    if (s->cfg.partitions <= 0) s->cfg.partitions = 16;
    if (!s->cfg.queue_cap) s->cfg.queue_cap = 65536;
    if (!s->cfg.max_body) s->cfg.max_body = 16u << 20;
    if (s->cfg.idle_timeout_ms < 0) s->cfg.idle_timeout_ms = 0;
    if (s->cfg.snapshot_interval_ms <= 0) s->cfg.snapshot_interval_ms = 10000;
    if (!s->cfg.redis_prefix) s->cfg.redis_prefix = "vigil";
    s->partitions = s->cfg.partitions;
    pthread_mutex_init(&s->ingest_mu, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcond, NULL);
    vigil_error errs[16];
    int nerrs = 0;
    vigil_status st = vigil_rules_load(s->cfg.rules, NULL, &s->rs, errs, 16, &nerrs);
    if (st != VIGIL_OK) {
        if (nerrs && err) {
            *err = errs[0];
            char buf[1024];
            for (int i = 0; i < nerrs; i++) {
                vigil_error_format(&errs[i], buf, sizeof buf);
                fprintf(stderr, "%s\n", buf);
            }
        } else {
            vigil_error_set(err, st, "cannot load rules from '%s'", s->cfg.rules);
        }
        s->rs = NULL;
        server_free(s);
        return st;
    }
    int nr = vigil_ruleset_rule_count(s->rs), ng = vigil_ruleset_group_count(s->rs);
    size_t npairs = (size_t)(ng ? ng : 1) * (size_t)s->partitions;
    s->rule_alerts = calloc((size_t)(nr ? nr : 1), sizeof *s->rule_alerts);
    s->off_seq = calloc(npairs, sizeof *s->off_seq);
    s->off_wm = malloc(npairs * sizeof *s->off_wm);
    s->off_src = calloc(npairs, sizeof *s->off_src);
    if (!s->rule_alerts || !s->off_seq || !s->off_wm || !s->off_src) {
        server_free(s);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < npairs; i++) s->off_wm[i] = INT64_MIN;
    if ((st = vigil_hub_create(0, &s->hub)) != VIGIL_OK) {
        vigil_error_set(err, st, "cannot create the alert hub");
        goto fail;
    }
    if ((st = start_webhooks(s, err)) != VIGIL_OK) goto fail;
    s->nworkers = s->cfg.workers;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
    if (!s->workers) {
        st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
        goto fail;
    }
    vigil_engine_opts eo = {.allowed_lateness_ms = s->cfg.allowed_lateness_ms,
                            .max_out_of_orderness_ms = s->cfg.max_out_of_orderness_ms};
    for (int i = 0; i < s->nworkers; i++) {
        vworker *wk = &s->workers[i];
        wk->srv = s;
        wk->idx = i;
        if (queue_init(&wk->q, s->cfg.queue_cap) != 0) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for queues");
            goto fail;
        }
        wk->touched = malloc(npairs * sizeof *wk->touched);
        wk->touched_mark = calloc(npairs, 1);
        if (!wk->touched || !wk->touched_mark) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
            goto fail;
        }
        if (s->cfg.redis_url) {
            if ((st = vigil_redis_store_create(s->cfg.redis_url, s->cfg.redis_prefix, &wk->store, err)) != VIGIL_OK)
                goto fail;
            vigil_redis_store_set_partitions(wk->store, s->partitions);
        }
        if (!(wk->eng = vigil_engine_create(s->rs, &eo, wk->store, on_alert, wk))) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for an engine");
            goto fail;
        }
    }
    if ((st = load_durable_state(s, err)) != VIGIL_OK) goto fail;
    for (int i = 0; i < s->nworkers; i++) pthread_create(&s->workers[i].th, NULL, worker_main, &s->workers[i]);
    pthread_create(&s->reaper, NULL, reaper_main, s);
    s->reaper_started = 1;
    if ((st = vhttp_start(s, err)) != VIGIL_OK) {
        vigil_server_stop(s);
        return st;
    }
    if (s->cfg.nats_url && (st = vnats_start(s, err)) != VIGIL_OK) {
        vigil_server_stop(s);
        return st;
    }
    *out = s;
    return VIGIL_OK;
fail:
    server_free(s);
    return st;
}

int vigil_server_port(const vigil_server *s) { return s->port; }

void vigil_server_log_start(const vigil_server *s) {
    const vigil_server_config *c = &s->cfg;
    fprintf(stderr, "vigil: %d rules from %s; store %s; NATS %s; %d webhook(s); %d workers\n",
            vigil_ruleset_rule_count(s->rs), c->rules, c->redis_url ? c->redis_url : "memory",
            c->nats_url ? c->nats_url : "off", c->nwebhooks + c->nendpoints, s->nworkers);
    fprintf(stderr, "vigil: listening on http://127.0.0.1:%d/ (dashboard at /)\n", s->port);
}

void vigil_server_stop(vigil_server *s) {
    if (!s) return;
    /* 1: no new input */
    vjs_stop_fetch(s);
    vnats_stop(s);
    atomic_store(&s->stopping, 1);
    /* 2: drain: workers finish their queues, commit, dispatch and snapshot */
    for (int i = 0; i < s->nworkers; i++) {
        pthread_mutex_lock(&s->workers[i].q.mu);
        pthread_cond_broadcast(&s->workers[i].q.nonempty);
        pthread_mutex_unlock(&s->workers[i].q.mu);
    }
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].th) pthread_join(s->workers[i].th, NULL);
    atomic_store(&s->stopping, 2);
    if (s->reaper_started) {
        pthread_mutex_lock(&s->wmu);
        pthread_cond_signal(&s->wcond);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->reaper, NULL);
    }
    vjs_stop(s);     /* publishers finish (they resume suspended HTTP requests) */
    vhttp_stop(s);
    vnats_stop(s);
    server_free(s);
}

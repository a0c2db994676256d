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
#include "redis_store.h"
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

vigil_status vsrv_enqueue(vigil_server *s, vigil_event **evs, int n, vwaiter *w, int block) {
    if (atomic_load(&s->stopping)) return VIGIL_EUNAVAILABLE;
    int ng = vigil_ruleset_group_count(s->rs);
    size_t *need = calloc((size_t)s->nworkers, sizeof *need);
    if (!need) return VIGIL_ENOMEM;
    for (int i = 0; i < n; i++)
        for (int g = 0; g < ng; g++) {
            size_t kl;
            const char *k = vigil_event_key(evs[i], g, &kl);
            if (k) need[vigil_hash(k, kl) % (uint64_t)s->nworkers]++;
        }
    pthread_mutex_lock(&s->ingest_mu);
    /* all or nothing: every target queue must have room for its share */
    for (int wi = 0; wi < s->nworkers; wi++) {
        vqueue *q = &s->workers[wi].q;
        pthread_mutex_lock(&q->mu);
        if (need[wi] > q->cap) {
            pthread_mutex_unlock(&q->mu);
            pthread_mutex_unlock(&s->ingest_mu);
            free(need);
            return VIGIL_ETOOBIG;
        }
        while (q->cap - q->n < need[wi]) {
            if (!block || atomic_load(&s->stopping)) {
                pthread_mutex_unlock(&q->mu);
                pthread_mutex_unlock(&s->ingest_mu);
                free(need);
                return VIGIL_EFULL;
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
    /* only this thread adds (ingest_mu held) and workers only remove: the room stays */
    for (int i = 0; i < n; i++) {
        for (int g = 0; g < ng; g++) {
            size_t kl;
            const char *k = vigil_event_key(evs[i], g, &kl);
            if (!k) continue;
            vqueue *q = &s->workers[vigil_hash(k, kl) % (uint64_t)s->nworkers].q;
            pthread_mutex_lock(&q->mu);
            vigil_event_retain(evs[i]);
            if (w) atomic_fetch_add(&w->refs, 1);
            q->items[(q->head + q->n) % q->cap] = (vitem){.ev = evs[i], .group = g, .w = w};
            q->n++;
            pthread_cond_signal(&q->nonempty);
            pthread_mutex_unlock(&q->mu);
        }
        vigil_event_release(evs[i]);   /* the queues hold their own references */
    }
    pthread_mutex_unlock(&s->ingest_mu);
    free(need);
    return VIGIL_OK;
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
        if (s->webhook && a->mode == VIGIL_MODE_ACTIVE) vigil_webhook_send(s->webhook, a->id, a->json, a->len);
        if (a->w) waiter_append(a->w, a->json, a->len);
        if (a->rule >= 0) atomic_fetch_add(&s->rule_alerts[a->rule], 1);
        atomic_fetch_add(&s->alerts_total, 1);
        free(a->json);
    }
    wk->nalerts = 0;
}

/* Retry a store operation until it succeeds or the server stops: losing the
 * store pauses this worker instead of matching on missing state. */
static int with_retry(vworker *wk, vigil_status (*op)(vworker *, void *, vigil_error *), void *arg, const char *what) {
    int delay = 100;
    for (;;) {
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = op(wk, arg, &err);
        if (st == VIGIL_OK) return 0;
        atomic_fetch_add(&wk->commit_errors, 1);
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
static vigil_status op_commit(vworker *wk, void *arg, vigil_error *err) { return vigil_engine_commit(wk->eng, err); }

static void *worker_main(void *arg) {
    vworker *wk = arg;
    vitem *it = malloc(BATCH * sizeof *it);
    vigil_event **evs = malloc(BATCH * sizeof *evs);
    int *groups = malloc(BATCH * sizeof *groups);
    if (!it || !evs || !groups) abort();
    int64_t last_stats = 0;
    int64_t last_arrival = 0, wm_at_arrival = INT64_MIN;   /* wall ms of the last batch; the watermark then */
    for (;;) {
        pthread_mutex_lock(&wk->q.mu);
        int idle_tick = 0;
        while (wk->q.n == 0 && !atomic_load(&wk->srv->stopping)) {
            int64_t idle = wk->srv->cfg.idle_timeout_ms;
            if (idle <= 0 || last_arrival == 0) {
                pthread_cond_wait(&wk->q.nonempty, &wk->q.mu);
                continue;
            }
            /* wake at the idle timeout, then every idle/4 while idle */
            int64_t now = vigil_now_ms(), wake = last_arrival + idle;
            if (wake <= now) wake = now + (idle / 4 > 10 ? idle / 4 : 10);
            struct timespec ts = {.tv_sec = wake / 1000, .tv_nsec = (wake % 1000) * 1000000};
            if (pthread_cond_timedwait(&wk->q.nonempty, &wk->q.mu, &ts) != 0 && wk->q.n == 0 &&
                vigil_now_ms() - last_arrival >= idle) {
                idle_tick = 1;
                break;
            }
        }
        if (idle_tick) {
            /* an idle source: event time moves on with processing time, so
             * absences and window closes fire without new traffic */
            pthread_mutex_unlock(&wk->q.mu);
            int64_t wm = wm_at_arrival + (vigil_now_ms() - last_arrival);
            if (wm > vigil_engine_watermark(wk->eng)) {
                vigil_engine_advance(wk->eng, wm);
                with_retry(wk, op_commit, NULL, "committing key state");
                dispatch_alerts(wk);
            }
            continue;
        }
        if (wk->q.n == 0) {
            pthread_mutex_unlock(&wk->q.mu);
            break;
        }
        int n = 0;
        while (wk->q.n && n < BATCH) {
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
            wk->cur_waiter = it[i].w;
            vigil_status st = vigil_engine_feed_group(wk->eng, it[i].ev, it[i].group, &err);
            if (st == VIGIL_ELATE) {
                atomic_fetch_add(&wk->late, 1);
                if (wk->srv->nc) vnats_publish_late(wk->srv, it[i].ev, vigil_ruleset_group_key(wk->srv->rs, it[i].group));
            }
            else if (st != VIGIL_OK) fprintf(stderr, "vigil: worker %d: event %s: %s\n", wk->idx, vigil_event_id(it[i].ev), err.msg);
        }
        wk->cur_waiter = NULL;
        last_arrival = vigil_now_ms();
        wm_at_arrival = vigil_engine_watermark(wk->eng);
        with_retry(wk, op_commit, NULL, "committing key state");
        atomic_fetch_add(&wk->commits, 1);
        dispatch_alerts(wk);
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
    free(it);
    free(evs);
    free(groups);
    return NULL;
}

/* ---- start / stop ------------------------------------------------------------- */

vigil_status vigil_server_start(const vigil_server_config *cfg, vigil_server **out, vigil_error *err) {
    vigil_server *s = calloc(1, sizeof *s);
    if (!s) return VIGIL_ENOMEM;
    s->cfg = *cfg;
    s->started_ms = vigil_now_ms();
    if (!s->cfg.rules) s->cfg.rules = "rules";
    if (!s->cfg.listen) s->cfg.listen = "127.0.0.1:8080";
    if (!s->cfg.subject) s->cfg.subject = "vigil.events.>";
    if (s->cfg.workers <= 0) s->cfg.workers = 2;
    if (!s->cfg.queue_cap) s->cfg.queue_cap = 65536;
    if (!s->cfg.max_body) s->cfg.max_body = 16u << 20;
    if (s->cfg.idle_timeout_ms < 0) s->cfg.idle_timeout_ms = 0;
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
        free(s);
        return st;
    }
    int nr = vigil_ruleset_rule_count(s->rs);
    s->rule_alerts = calloc((size_t)(nr ? nr : 1), sizeof *s->rule_alerts);
    if ((st = vigil_hub_create(0, &s->hub)) != VIGIL_OK) {
        vigil_error_set(err, st, "cannot create the alert hub");
        goto fail;
    }
    if (s->cfg.nwebhooks) {
        vigil_webhook_opts wo = {.urls = s->cfg.webhooks, .nurls = s->cfg.nwebhooks, .secret = s->cfg.webhook_secret};
        if ((st = vigil_webhook_create(&wo, &s->webhook, err)) != VIGIL_OK) goto fail;
    }
    s->nworkers = s->cfg.workers;
    s->workers = calloc((size_t)s->nworkers, sizeof *s->workers);
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
        if (s->cfg.redis_url &&
            (st = vigil_redis_store_create(s->cfg.redis_url, "vigil", &wk->store, err)) != VIGIL_OK)
            goto fail;
        if (!(wk->eng = vigil_engine_create(s->rs, &eo, wk->store, on_alert, wk))) {
            st = vigil_error_set(err, VIGIL_ENOMEM, "out of memory for an engine");
            goto fail;
        }
    }
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
    for (int i = 0; s->workers && i < s->nworkers; i++) {
        vigil_engine_destroy(s->workers[i].eng);
        if (s->workers[i].store) s->workers[i].store->destroy(s->workers[i].store);
        free(s->workers[i].q.items);
    }
    free(s->workers);
    vigil_webhook_destroy(s->webhook);
    vigil_hub_destroy(s->hub);
    free(s->rule_alerts);
    vigil_ruleset_release(s->rs);
    free(s);
    return st;
}

int vigil_server_port(const vigil_server *s) { return s->port; }

void vigil_server_stop(vigil_server *s) {
    if (!s) return;
    /* 1: no new input */
    vnats_stop(s);
    atomic_store(&s->stopping, 1);
    /* 2: drain: workers finish their queues, commit and dispatch */
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
    vhttp_stop(s);
    vnats_stop(s);
    vigil_webhook_destroy(s->webhook);
    vigil_hub_destroy(s->hub);
    for (int i = 0; i < s->nworkers; i++) {
        vworker *wk = &s->workers[i];
        vigil_engine_destroy(wk->eng);
        if (wk->store) wk->store->destroy(wk->store);
        free(wk->q.items);
        free(wk->alerts);
    }
    free(s->workers);
    free(s->rule_alerts);
    vigil_ruleset_release(s->rs);
    free(s);
}

/* pairs.c — the route wing in cluster mode (DESIGN.md §7, docs/scaling.md):
 * the (key group, partition) pairs this instance owns, each with its own
 * engine, and a worker's batch processed pair by pair.
 *
 * Why an engine per pair: pairs move between instances. A pair taken over
 * replays its keyed stream from its stored offset while the worker's other
 * pairs are current; one engine (one watermark) per worker would find the
 * taken-over pair's events hours late. So each pair has its own watermark
 * (restored from its offset record), its own cache (dropped with the engine
 * when the pair is lost: nothing stale survives a move) and its own commit.
 *
 * Fencing: an item carries the epoch its pair was held with when it was
 * fetched (vigil_source.epoch). Items of a pair no longer held with that
 * epoch are dropped unacked. Each pair's commit goes under its hash tag
 * `{<group>:p<n>}` — key states, its offset, its outbox stream — and is
 * applied by Redis only if the pair's epoch is unchanged
 * (vigil_redis_store_commit_pairs); a refused pair is given up at once
 * (engine freed, `fenced` callback), its alerts never leave and its messages
 * are not acked. Only this file touches pair engines, always on the pair's
 * worker (p % workers), between batches for opens and closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "route_int.h"
#include "server/alerts/outbox.h"
#include "server/common/fault.h"
#include "server/common/log.h"
#include "server/state/redis_store.h"

#define OPEN_CLOSE_WAIT_MS 5000

static inline int npairs(const vigil_router *r) { return VROUTE_MAX_GROUPS * r->partitions; }
static inline int pair_worker(const vigil_router *r, int pair) { return (pair % r->partitions) % r->nworkers; }

vigil_status vroute_pairs_init(vigil_router *r, vigil_error *err) {
    if (!r->cfg.cluster) return VIGIL_OK;
    if (!r->cfg.redis_url) return vigil_error_set(err, VIGIL_EINVAL, "cluster mode needs the Redis store");
    r->pair_eng = calloc((size_t)npairs(r), sizeof *r->pair_eng);
    r->pair_epoch = calloc((size_t)npairs(r), sizeof *r->pair_epoch);
    r->pair_idle = calloc((size_t)npairs(r), sizeof *r->pair_idle);
    if (!r->pair_eng || !r->pair_epoch || !r->pair_idle)
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory for the pairs");
    return VIGIL_OK;
}

void vroute_pairs_free(vigil_router *r) {
    for (int i = 0; r->pair_eng && i < npairs(r); i++) vigil_engine_destroy(r->pair_eng[i]);
    free(r->pair_eng);
    free((void *)r->pair_epoch);
    free(r->pair_idle);
    r->pair_eng = NULL;
    r->pair_epoch = NULL;
    r->pair_idle = NULL;
}

/* ---- open and close, on the pair's worker ------------------------------------------- */

typedef struct pairop {
    vworker *wk;
    int g, p, pair;
    uint64_t epoch, seq;
    vigil_status st;
    vigil_error err;
} pairop;

static void free_engine(vigil_router *r, int pair) {
    vigil_engine_destroy(r->pair_eng[pair]);
    r->pair_eng[pair] = NULL;
}

static void op_open(void *ud, vigil_engine *unused) {
    (void)unused;
    pairop *o = ud;
    vworker *wk = o->wk;
    vigil_router *r = wk->r;
    const char *gname = vigil_ruleset_group_key(wk->rs, o->g);
    uint64_t *seqs = calloc((size_t)r->partitions, sizeof *seqs);
    int64_t *wms = calloc((size_t)r->partitions, sizeof *wms);
    if (!seqs || !wms) {
        o->st = vigil_error_set(&o->err, VIGIL_ENOMEM, "out of memory");
    } else {
        o->st = vigil_redis_store_load_offsets(wk->store, &gname, 1, r->partitions, seqs, wms, &o->err);
    }
    if (o->st == VIGIL_OK) {
        vigil_engine_opts eo = {.allowed_lateness_ms = r->cfg.allowed_lateness_ms,
                                .max_out_of_orderness_ms = r->cfg.max_out_of_orderness_ms};
        free_engine(r, o->pair);   /* a close that never ran */
        vigil_engine *eng = vigil_engine_create(wk->rs, &eo, wk->store, vroute_on_alert, wk);
        if (!eng) {
            o->st = vigil_error_set(&o->err, VIGIL_ENOMEM, "out of memory for an engine");
        } else {
            if (wms[o->p] > INT64_MIN) vigil_engine_advance(eng, wms[o->p]);
            r->pair_eng[o->pair] = eng;
            r->off_seq[o->pair] = seqs[o->p];
            r->off_wm[o->pair] = wms[o->p];
            r->off_src[o->pair] = NULL;
            r->pair_idle[o->pair] = (vroute_pair_idle){0, vigil_engine_watermark(eng)};
            o->seq = seqs[o->p];
            atomic_store(&r->pair_epoch[o->pair], o->epoch);
        }
    }
    free(seqs);
    free(wms);
}

static void op_close(void *ud, vigil_engine *unused) {
    (void)unused;
    pairop *o = ud;
    vigil_router *r = o->wk->r;
    if (atomic_load(&r->pair_epoch[o->pair]) == 0) free_engine(r, o->pair);   /* not opened again meanwhile */
}

static vigil_status run_op(vigil_router *r, pairop *o, void (*fn)(void *, vigil_engine *), int timeout_ms,
                           vigil_error *err) {
    vroute_task *t = calloc(1, sizeof *t + 1);
    if (!t) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
    atomic_init(&t->refs, 2);
    t->fn = fn;
    t->ud = o;
    t->group = -1;   /* no key to load */
    return vroute_run_task(r, o->wk->idx, t, timeout_ms, err);
}

static int pair_index(vigil_router *r, int g, int p) {
    if (!r->cfg.cluster || g < 0 || g >= VROUTE_MAX_GROUPS || p < 0 || p >= r->partitions) return -1;
    return g * r->partitions + p;
}

vigil_status vigil_router_pair_open(vigil_router *r, int g, int p, uint64_t epoch, uint64_t *seq, int timeout_ms,
                                    vigil_error *err) {
    int pair = pair_index(r, g, p);
    if (pair < 0 || epoch == 0) return vigil_error_set(err, VIGIL_EINVAL, "no pair (%d, %d) with epoch %llu", g, p,
                                                       (unsigned long long)epoch);
    if (atomic_load(&r->closed) || atomic_load(&r->stopping))
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "the server is stopping");
    pairop o = {.wk = &r->workers[pair_worker(r, pair)], .g = g, .p = p, .pair = pair, .epoch = epoch};
    vigil_error_clear(&o.err);
    vigil_status st = run_op(r, &o, op_open, timeout_ms, err);
    if (st != VIGIL_OK) return st;
    if (o.st != VIGIL_OK) {
        *err = o.err;
        return o.st;
    }
    if (seq) *seq = o.seq;
    return VIGIL_OK;
}

void vigil_router_pair_close(vigil_router *r, int g, int p) {
    int pair = pair_index(r, g, p);
    if (pair < 0) return;
    atomic_store(&r->pair_epoch[pair], 0);   /* its queued items are dropped from now on */
    if (atomic_load(&r->stopping) > 1) return;
    pairop o = {.wk = &r->workers[pair_worker(r, pair)], .g = g, .p = p, .pair = pair};
    vigil_error err;
    vigil_error_clear(&err);
    if (run_op(r, &o, op_close, OPEN_CLOSE_WAIT_MS, &err) != VIGIL_OK)   /* the next open replaces the engine */
        vigil_log(VIGIL_LOG_WARN, "route", "pair %s:p%d: its cache is freed later: %s",
                  vigil_ruleset_group_key(r->rs, g), p, err.msg);
}

uint64_t vigil_router_pair_epoch(vigil_router *r, int g, int p) {
    int pair = pair_index(r, g, p);
    return pair < 0 ? 0 : atomic_load(&r->pair_epoch[pair]);
}

/* ---- a batch, pair by pair ------------------------------------------------------------- */

typedef struct pairrun {     /* one pair's share of a batch */
    int pair;
    uint64_t epoch;
    vigil_engine *eng;
    size_t a0, a1;           /* its alerts: wk->alerts[a0, a1) */
    int fed;                 /* items applied (its offset moved) */
    int advanced;            /* only its watermark moved (idle) */
    vigil_status result;
} pairrun;

static void drop_item(vitem *x) {
    if (x->src) atomic_store(&x->src->noack, 1);
}

/* Commit every run: one pair commit each, fenced by its epoch, all in one
 * round trip. Fills runs[i].result (VIGIL_OK, VIGIL_ESTALE, or an error
 * for all when the connection failed). */
static vigil_status commit_runs(vworker *wk, pairrun *runs, int nruns, vigil_error *err) {
    vigil_router *r = wk->r;
    size_t na = wk->nalerts ? wk->nalerts : 1;
    vigil_redis_pair_commit *pc = calloc((size_t)nruns, sizeof *pc);
    vigil_pair_result *res = calloc((size_t)nruns, sizeof *res);
    vigil_redis_cmd *xc = calloc(na, sizeof *xc);   /* each alert's outbox fields */
    const char **xv = calloc(na * VIGIL_OUTBOX_FIELDS_ARGC, sizeof *xv);
    size_t *xl = calloc(na * VIGIL_OUTBOX_FIELDS_ARGC, sizeof *xl);
    vigil_status st = pc && res && xc && xv && xl ? VIGIL_OK : vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    int nx = 0, begun = 0;
    for (int i = 0; st == VIGIL_OK && i < nruns; i++, begun++) {
        pairrun *u = &runs[i];
        const vigil_store_record *recs;
        size_t n;
        st = vigil_engine_commit_begin(u->eng, &recs, &n, err);
        if (st != VIGIL_OK) break;
        int x0 = nx;
        for (size_t a = u->a0; r->cfg.outbox && a < u->a1; a++) {
            if (wk->alerts[a].mode != VIGIL_MODE_ACTIVE) continue;   /* shadow alerts never reach webhooks */
            xc[nx].argv = xv + (size_t)nx * VIGIL_OUTBOX_FIELDS_ARGC;
            xc[nx].lens = xl + (size_t)nx * VIGIL_OUTBOX_FIELDS_ARGC;
            xc[nx].argc = vigil_outbox_fields(&wk->alerts[a], (const char **)xc[nx].argv, (size_t *)xc[nx].lens);
            nx++;
        }
        pc[i] = (vigil_redis_pair_commit){.group_name = vigil_ruleset_group_key(wk->rs, u->pair / r->partitions),
                                          .partition = u->pair % r->partitions, .epoch = u->epoch,
                                          .seq = r->off_seq[u->pair], .wm = vigil_engine_watermark(u->eng),
                                          .recs = recs, .nrecs = (int)n, .outbox = xc + x0, .noutbox = nx - x0};
    }
    if (st == VIGIL_OK) vigil_fault_pause("pair_commit");   /* the cluster test's SIGSTOP mid-commit */
    if (st == VIGIL_OK) st = vigil_redis_store_commit_pairs(wk->store, pc, nruns, res, err);
    for (int i = 0; i < begun; i++) {
        /* a stale or failed pair keeps its keys dirty (it is dropped, or the batch is retried) */
        runs[i].result = st == VIGIL_EUNAVAILABLE || st == VIGIL_EINVAL || st == VIGIL_ENOMEM ? st : res[i].status;
        vigil_engine_commit_end(runs[i].eng, runs[i].result == VIGIL_OK);
    }
    free(pc);
    free(res);
    free(xc);
    free(xv);
    free(xl);
    /* a stale pair is settled, not retried: only a connection or store failure retries the batch */
    for (int i = 0; st != VIGIL_OK && i < nruns; i++)
        if (runs[i].result != VIGIL_OK && runs[i].result != VIGIL_ESTALE) return st;
    return VIGIL_OK;
}

/* After the commit: a pair refused for its epoch is given up; its alerts
 * are freed unsent and its messages stay unacked. */
static void settle(vworker *wk, pairrun *runs, int nruns) {
    vigil_router *r = wk->r;
    unsigned char *drop = wk->nalerts ? calloc(wk->nalerts, 1) : NULL;
    for (int i = 0; i < nruns; i++) {
        pairrun *u = &runs[i];
        if (u->result != VIGIL_ESTALE) continue;
        uint64_t ep = u->epoch;
        int g = u->pair / r->partitions, p = u->pair % r->partitions;
        vigil_log(VIGIL_LOG_WARN, "route", "pair %s:p%d: commit refused, epoch %llu is stale: giving the pair up",
                  vigil_ruleset_group_key(wk->rs, g), p, (unsigned long long)ep);
        atomic_fetch_add(&wk->fenced, 1);
        for (size_t a = u->a0; drop && a < u->a1; a++) drop[a] = 1;
        if (atomic_compare_exchange_strong(&r->pair_epoch[u->pair], &ep, 0)) {
            free_engine(r, u->pair);
            if (r->cfg.fenced) r->cfg.fenced(r->cfg.fenced_ud, g, p, u->epoch);
        }
    }
    size_t k = 0;   /* keep the alerts of the pairs that committed */
    for (size_t a = 0; drop && a < wk->nalerts; a++) {
        if (drop[a]) {
            vigil_alert_record_free(&wk->alerts[a]);
            continue;
        }
        wk->alerts[k] = wk->alerts[a];
        wk->alert_waiters[k] = wk->alert_waiters[a];
        wk->alert_rx[k++] = wk->alert_rx[a];
    }
    if (drop) wk->nalerts = k;
    free(drop);
}

/* Commit the runs, retrying while the store is unreachable; then settle. */
static void commit_and_settle(vworker *wk, pairrun *runs, int nruns) {
    int delay = 100;
    int64_t t0 = vigil_now_us();
    for (;;) {
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = commit_runs(wk, runs, nruns, &err);
        if (st == VIGIL_OK) {
            atomic_store(&wk->store_down, 0);
            break;
        }
        atomic_fetch_add(&wk->commit_errors, 1);
        if (st == VIGIL_EUNAVAILABLE) atomic_store(&wk->store_down, 1);
        vigil_log(VIGIL_LOG_ERROR, "route", "worker %d: committing pairs failed: %s (%s); retrying", wk->idx, err.msg,
                  vigil_status_str(st));
        if (atomic_load(&wk->r->stopping) > 1) {
            for (int i = 0; i < nruns; i++) runs[i].result = st;
            break;
        }
        usleep((useconds_t)delay * 1000);
        if (delay < 2000) delay *= 2;
    }
    vroute_commit_end_stats(wk, t0);
    atomic_fetch_add(&wk->commits, 1);
    settle(wk, runs, nruns);
}

static int run_of(pairrun *runs, int *nruns, vigil_router *r, int pair) {
    for (int i = 0; i < *nruns; i++)
        if (runs[i].pair == pair) return i;
    vigil_engine *eng = r->pair_eng[pair];
    uint64_t ep = atomic_load(&r->pair_epoch[pair]);
    if (!eng || !ep) return -1;
    runs[*nruns] = (pairrun){.pair = pair, .epoch = ep, .eng = eng};
    return (*nruns)++;
}

void vroute_pairs_batch(vworker *wk, vitem *it, int n) {
    vigil_router *r = wk->r;
    pairrun *runs = calloc((size_t)n, sizeof *runs);
    vigil_event **evs = malloc((size_t)n * sizeof *evs);
    int *groups = malloc((size_t)n * sizeof *groups);
    int *slot = malloc((size_t)n * sizeof *slot);
    if (!runs || !evs || !groups || !slot) abort();
    int nruns = 0;
    for (int i = 0; i < n; i++) {   /* which pair run each item joins; -1: dropped */
        int pair = it[i].group * r->partitions + it[i].part;
        int u = run_of(runs, &nruns, r, pair);
        if (u >= 0 && it[i].src && it[i].src->epoch != runs[u].epoch) u = -1;   /* fetched under another epoch */
        if (u < 0) {
            drop_item(&it[i]);
            atomic_fetch_add(&wk->skipped, 1);
        }
        slot[i] = u;
    }
    for (int u = 0; u < nruns; u++) {   /* each pair's items, in their order: prefetch, then feed */
        pairrun *ru = &runs[u];
        int m = 0;
        for (int i = 0; i < n; i++)
            if (slot[i] == u) {
                evs[m] = it[i].ev;
                groups[m++] = it[i].group;
            }
        vigil_error err;
        int delay = 100;
        while (m && vigil_engine_prefetch(ru->eng, evs, groups, m, &err) != VIGIL_OK) {
            atomic_store(&wk->store_down, 1);
            vigil_log(VIGIL_LOG_ERROR, "route", "worker %d: loading key state: %s; retrying", wk->idx, err.msg);
            if (atomic_load(&r->stopping) > 1) break;
            usleep((useconds_t)delay * 1000);
            if (delay < 2000) delay *= 2;
        }
        ru->a0 = wk->nalerts;
        for (int i = 0; i < n; i++) {
            if (slot[i] != u) continue;
            if (it[i].seq) {
                if (it[i].seq < r->off_seq[ru->pair] ||
                    (it[i].seq == r->off_seq[ru->pair] && it[i].src != r->off_src[ru->pair])) {
                    atomic_fetch_add(&wk->skipped, 1);   /* applied before: a redelivery */
                    continue;
                }
                r->off_seq[ru->pair] = it[i].seq;
                r->off_src[ru->pair] = it[i].src;
            }
            ru->fed = 1;
            wk->cur_waiter = it[i].w;
            wk->cur_rx_us = it[i].rx_us;
            vigil_status st = vigil_engine_feed_group(ru->eng, it[i].ev, it[i].group, &err);
            if (st == VIGIL_ELATE) {
                atomic_fetch_add(&wk->late_count, 1);
                vroute_note_late(wk, it[i].ev, it[i].group);
            } else if (st != VIGIL_OK) {
                vigil_log(VIGIL_LOG_WARN, "route", "worker %d: event %s: %s", wk->idx, vigil_event_id(it[i].ev), err.msg);
            }
        }
        ru->a1 = wk->nalerts;
        r->pair_idle[ru->pair] = (vroute_pair_idle){vigil_now_ms(), vigil_engine_watermark(ru->eng)};
    }
    wk->cur_waiter = NULL;
    if (nruns) commit_and_settle(wk, runs, nruns);
    for (int u = 0; u < nruns; u++) r->off_src[runs[u].pair] = NULL;
    for (int i = 0; i < n; i++)   /* the items of a refused pair are not acked */
        if (slot[i] >= 0 && runs[slot[i]].result != VIGIL_OK) drop_item(&it[i]);
    vroute_release_sources(wk, it, n);
    vroute_release_outputs(wk);
    vroute_pairs_watermark(wk);
    free(runs);
    free(evs);
    free(groups);
    free(slot);
}

/* An idle worker: each of its pairs idle for idle_timeout moves its
 * watermark on with processing time (as worker.c does for one engine). */
void vroute_pairs_idle(vworker *wk) {
    vigil_router *r = wk->r;
    int64_t idle = r->cfg.idle_timeout_ms, now = vigil_now_ms();
    if (idle <= 0) return;
    pairrun *runs = calloc((size_t)npairs(r), sizeof *runs);
    if (!runs) return;
    int nruns = 0;
    for (int pair = 0; pair < npairs(r); pair++) {
        if (pair_worker(r, pair) != wk->idx || !r->pair_eng[pair] || !atomic_load(&r->pair_epoch[pair])) continue;
        vroute_pair_idle *pi = &r->pair_idle[pair];
        if (!pi->last_ms || now - pi->last_ms < idle || pi->wm_at == INT64_MIN) continue;
        int64_t wm = pi->wm_at + (now - pi->last_ms);
        if (wm <= vigil_engine_watermark(r->pair_eng[pair])) continue;
        size_t a0 = wk->nalerts;
        vigil_engine_advance(r->pair_eng[pair], wm);
        runs[nruns] = (pairrun){.pair = pair, .epoch = atomic_load(&r->pair_epoch[pair]), .eng = r->pair_eng[pair],
                                .a0 = a0, .a1 = wk->nalerts, .advanced = 1};
        nruns++;
    }
    if (nruns) {
        commit_and_settle(wk, runs, nruns);
        vroute_release_outputs(wk);
        vroute_pairs_watermark(wk);
    }
    free(runs);
}

/* The worker's watermark for stats: the lowest of its pairs'. */
void vroute_pairs_watermark(vworker *wk) {
    vigil_router *r = wk->r;
    int64_t wm = INT64_MAX;
    for (int pair = 0; pair < npairs(r); pair++)
        if (pair_worker(r, pair) == wk->idx && r->pair_eng[pair]) {
            int64_t w = vigil_engine_watermark(r->pair_eng[pair]);
            if (w < wm) wm = w;
        }
    atomic_store(&wk->watermark, wm == INT64_MAX ? INT64_MIN : wm);
}

int vroute_pairs_swap(vworker *wk, vigil_ruleset *rs, vigil_error *err) {
    vigil_router *r = wk->r;
    for (int pair = 0; pair < npairs(r); pair++) {
        if (pair_worker(r, pair) != wk->idx || !r->pair_eng[pair]) continue;
        if (vigil_engine_swap(r->pair_eng[pair], rs, err) != VIGIL_OK) return -1;
    }
    return 0;
}

void vroute_pairs_stats(vworker *wk, vigil_engine_stats *sum) {
    vigil_router *r = wk->r;
    for (int pair = 0; pair < npairs(r); pair++) {
        if (pair_worker(r, pair) != wk->idx || !r->pair_eng[pair]) continue;
        vigil_engine_stats st;
        vigil_engine_get_stats(r->pair_eng[pair], &st);
        sum->keys += st.keys;
        sum->runs += st.runs;
        sum->keys_expired += st.keys_expired;
        sum->runs_evicted += st.runs_evicted;
        sum->function_errors += st.function_errors;
    }
}

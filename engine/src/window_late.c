/* window_late.c — stragglers: events accepted within allowed_lateness that
 * reach a window after later events did (DESIGN.md §3 "Windows": a
 * straggler is evaluated over its own window and enters and leaves windows
 * by its own time; in a tumbling or session window that the watermark
 * already closed but still retains, it updates the window, and a window that
 * has not alerted yet alerts then if `when` now holds — never twice).
 * A sliding window's ring is kept in event-time order, a straggler inserted
 * at its place; window.c keeps the entries that left the newest event's
 * window while a straggler's window may still reach them (vwin.nkept). A
 * tumbling or session window that closes without alerting is retained until
 * the watermark passes its close + allowed_lateness (Flink's allowed
 * lateness keeps windows so too, but fires them again: vigil alerts once per
 * window). Split from window.c, whose in-order path this leaves alone. */
#include <stdlib.h>
#include <string.h>
#include "window_int.h"

/* A sliding window's ring is in event-time order (a straggler is inserted
 * at its place): the index of the first entry later than t. */
static uint32_t upper(const vwin *w, const vrule *r, int64_t t) {
    uint32_t a = 0, b = w->n;
    while (a < b) {
        uint32_t m = a + (b - a) / 2;
        if (at(w, r, m)->ts <= t) a = m + 1;
        else b = m;
    }
    return a;
}

/* Room for an entry at index i (entries i.. move one up); NULL when out of
 * memory. */
static ventry *insert_at(vwin *w, const vrule *r, uint32_t i) {
    if (w->n == w->cap && vw_grow(w, r) != 0) return NULL;
    size_t es = esize(r);
    for (uint32_t j = w->n; j > i; j--) memcpy(at(w, r, j), at(w, r, j - 1), es);
    w->n++;
    return at(w, r, i);
}

/* Aggregate k over entries [a, b) (a straggler's window), and over them
 * plus the straggler's own value (val, when bit k of mask): *isnew when no
 * entry of the span holds that value. Text aggregates count with a
 * scratch set. -1 when out of memory. */
static int span_value(const vwin *w, const vrule *r, int k, uint32_t a, uint32_t b, const vcell *val, uint32_t mask,
                      vigil_value *prior, vigil_value *cur, int *isnew) {
    const vagg *ag = &r->aggs[k];
    int own = mask >> k & 1;
    *isnew = 0;
    if (uses_text(ag)) {
        vdset d = {.cap = 8, .slot = calloc(8, sizeof(vdslot))};
        if (!d.slot) return -1;
        for (uint32_t i = a; i < b; i++) {
            const ventry *e = at(w, r, i);
            if ((e->mask >> k & 1) && vdset_add(&d, e->v[k].str) != 0) {
                vdset_clear(&d);
                return -1;
            }
        }
        int fresh = own && vdset_find(&d, val[k].str, vdset_hash(val[k].str))->n == 0;
        *isnew = ag->is_new && fresh;
        *prior = (vigil_value){.type = VIGIL_T_NUM, .u.num = d.n};
        *cur = (vigil_value){.type = VIGIL_T_NUM, .u.num = d.n + (uint32_t)fresh};
        vdset_clear(&d);
        return 0;
    }
    double sm = 0, m = 0;
    uint64_t n = 0;
    for (uint32_t i = a; i < b; i++) {
        const ventry *e = at(w, r, i);
        if (!(e->mask >> k & 1)) continue;
        double x = e->v[k].num;
        if (!n || (ag->kind == VIGIL_AGG_MIN ? x < m : x > m)) m = x;
        sm += x;
        n += r->precision_ms ? ecnt(e, r)[k] : 1;
    }
    for (int with = 0; with < 2; with++) {
        vigil_value *v = with ? cur : prior;
        if (with && own) {
            double x = val[k].num;
            if (!n || (ag->kind == VIGIL_AGG_MIN ? x < m : x > m)) m = x;
            sm += x;
            n++;
        }
        *v = (vigil_value){.type = VIGIL_T_NUM};
        if (ag->kind == VIGIL_AGG_COUNT) v->u.num = (double)n;
        else if (ag->kind == VIGIL_AGG_SUM) v->u.num = sm;
        else if (!n) v->type = VIGIL_T_UNDEF;
        else v->u.num = ag->kind == VIGIL_AGG_AVG ? sm / (double)n : m;
    }
    return 0;
}

/* A straggler (accepted within allowed_lateness, older than the window's
 * newest entry) in a sliding window: evaluated over its own window
 * (t - size, t] — the entries of that span, kept ones (vwin.nkept)
 * included — then inserted at its place in the ring, so that it enters and
 * leaves windows by its own time (DESIGN.md §3 "Windows"). Its aggregates
 * are scanned over the span: stragglers are rare. */
vigil_status vw_straggler(vigil_engine *eng, const vrule *r, vkeystate *ks, vwin *w, vigil_event *ev, veval *c) {
    vcell val[32];
    uint32_t mask;
    vigil_status st = vw_entry_vals(r, ev, c, val, &mask);
    if (st != VIGIL_OK) return st;
    int64_t ts = ev->ts, bts = vw_bucket_of(r, ts), size = r->window_ms + (r->precision_ms ? r->precision_ms - 1 : 0);
    int64_t newest = at(w, r, w->n - 1)->ts;
    uint32_t b = upper(w, r, ts), a = upper(w, r, ts - size);
    vigil_value *prior = eng->priorv, *cur = eng->aggv;
    int *isnew = eng->isnew;
    for (int k = 0; k < r->nagg; k++)
        if (span_value(w, r, k, a, b, val, mask, &prior[k], &cur[k], &isnew[k]) != 0) {
            vw_free_vals(r, val, mask);
            return VIGIL_ENOMEM;
        }
    /* into the ring: its bucket, or a new entry at its place; counted when
     * it is in the newest entry's window (the counted entries are a suffix) */
    ventry *e = NULL;
    uint32_t i = b;
    int combine = r->precision_ms && b > 0 && at(w, r, b - 1)->ts == bts;
    if (combine) {
        e = at(w, r, --i);
    } else if (mask) {
        if (!(e = insert_at(w, r, i))) {
            vw_free_vals(r, val, mask);
            return VIGIL_ENOMEM;
        }
        e->ts = bts;
        e->mask = 0;
        e->pad = 0;
        if (r->precision_ms) memset(ecnt(e, r), 0, (size_t)r->nagg * sizeof(uint32_t));
    }
    int counted = e && (combine ? i >= w->nkept : i > w->nkept || (i == w->nkept && bts > newest - size));
    if (e && !combine && !counted) w->nkept++;
    double *sum = vwin_sum(w);
    uint32_t *cnt = vwin_cnt(w, r);
    vdset *sets = has_text(r) ? *sets_ptr(w, r) : NULL;
    for (int k = 0; e && k < r->nagg; k++) {
        if (!(mask >> k & 1)) continue;
        const vagg *ag = &r->aggs[k];
        if (!(e->mask >> k & 1)) e->v[k] = val[k];
        else if (ag->kind == VIGIL_AGG_MIN) e->v[k].num = val[k].num < e->v[k].num ? val[k].num : e->v[k].num;
        else if (ag->kind == VIGIL_AGG_MAX) e->v[k].num = val[k].num > e->v[k].num ? val[k].num : e->v[k].num;
        else e->v[k].num += val[k].num;   /* a bucket's sum (count: 0); no text aggregate has buckets */
        e->mask |= 1u << k;
        if (r->precision_ms) ecnt(e, r)[k]++;
        if (!counted) continue;
        cnt[k]++;
        if (!uses_text(ag)) sum[k] += val[k].num;
        else if (sets && sets[k].slot && vdset_add(&sets[k], val[k].str) != 0) vdset_clear(&sets[k]);
    }
    if (!e) vw_free_vals(r, val, mask);
    if (counted && i == w->nkept) w->head_ts = at(w, r, i)->ts;
    c->aggs = cur;
    c->prior = prior;
    c->is_new = isnew;
    if (!vexpr_true(r->when, c)) return VIGIL_OK;
    if (r->suppress_ms && w->alerted && ts - w->last_alert_ts < r->suppress_ms) return VIGIL_OK;
    if (!w->alerted || ts > w->last_alert_ts) w->last_alert_ts = ts;
    w->alerted = 1;
    char det[2048];
    vw_details(r, cur, prior, isnew, det, sizeof det);
    veng_emit(eng, r, ks, &ev, 1, det, INT64_MIN);
    return VIGIL_OK;
}


/* ---- closed tumbling and session windows, retained -------------------------- */

/* When a retained window can be let go: a straggler is accepted down to
 * watermark - allowed_lateness, and joins a window that ends (tumbling) or
 * whose last event + gap is (session) after its time. */
static int64_t retained_until(const vigil_engine *eng, const vrule *r, const vwin *rw) {
    return vwin_closes_at(r, rw) + eng->o.allowed_lateness_ms;
}

int vw_retain(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w) {
    size_t size = vw_size(r);
    vwin *rw = malloc(size);
    if (!rw) return -1;
    if (veng_timer_add(eng, vwin_closes_at(r, w) + eng->o.allowed_lateness_ms, ks, slot) != 0) {
        free(rw);
        return -1;
    }
    memcpy(rw, w, size);   /* the window moves: entries, sums, kept events, sets, the older retained ones */
    if (w->ring == vwin_inline(w, r)) rw->ring = vwin_inline(rw, r);
    rw->open = 0;
    uint8_t alerted = w->alerted;
    int64_t la = w->last_alert_ts, ce = vwin_tail(w, r)->closed_end;
    memset(w, 0, size);   /* w: closed and empty, as vwin_new makes it, with its suppression */
    w->ring = vwin_inline(w, r);
    w->cap = 1;
    w->alerted = alerted;
    w->last_alert_ts = la;
    vwtail *t = vwin_tail(w, r);
    t->closed_end = ce;
    t->retained = rw;
    return 0;
}

/* Does the straggler at ts belong to retained window rw? Tumbling: its
 * window is rw's; session: its own [ts, ts + gap) touches rw's span. */
static int belongs(const vrule *r, const vwin *rw, int64_t ts) {
    int64_t start = vwin_tail(rw, r)->win_start;
    if (r->window == VIGIL_WIN_TUMBLING) return ts >= start && ts < rw->win_end;
    return ts + r->window_ms >= start && ts <= rw->win_end;
}

vigil_status vw_late_join(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w, vigil_event *ev,
                          const veval *c) {
    vwin **pp = &vwin_tail(w, r)->retained;
    while (*pp && !belongs(r, *pp, ev->ts)) pp = &vwin_tail(*pp, r)->retained;
    vwin *rw = *pp;
    if (!rw) {   /* its window alerted already, or is no longer retained: never twice */
        eng->st.window_late++;
        return VIGIL_OK;
    }
    vwtail *rt = vwin_tail(rw, r);
    if (r->window == VIGIL_WIN_SESSION) {   /* the session grows to take it, either way */
        if (ev->ts < rt->win_start) rt->win_start = ev->ts;
        if (ev->ts + r->window_ms > rw->win_end) {
            rw->win_end = ev->ts + r->window_ms;
            if (veng_timer_add(eng, retained_until(eng, r, rw), ks, slot) != 0) return VIGIL_ENOMEM;
        }
    }
    vigil_status s = vw_join(eng, r, rw, ev, c);
    if (s != VIGIL_OK) return s;
    /* the alert's suppression is the key's: w holds it */
    rw->alerted = w->alerted;
    rw->last_alert_ts = w->last_alert_ts;
    if (!vw_fire(eng, r, ks, rw)) return VIGIL_OK;
    w->alerted = 1;
    if (rw->last_alert_ts > w->last_alert_ts) w->last_alert_ts = rw->last_alert_ts;
    *pp = rt->retained;   /* it alerted: let go, a later straggler for it is late */
    rt->retained = NULL;
    vwin_free(rw, r);
    return VIGIL_OK;
}

void vw_prune(vigil_engine *eng, const vrule *r, vwin *w, int64_t wm) {
    vwin **pp = &vwin_tail(w, r)->retained;
    while (*pp) {
        vwin *rw = *pp;
        vwtail *rt = vwin_tail(rw, r);
        if (wm < retained_until(eng, r, rw)) {
            pp = &rt->retained;
            continue;
        }
        *pp = rt->retained;
        rt->retained = NULL;
        vwin_free(rw, r);
    }
}

void vwin_rearm(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, const vwin *w) {
    if (r->window == VIGIL_WIN_SLIDING) return;
    if (w->open) veng_timer_add(eng, vwin_closes_at(r, w), ks, slot);
    for (const vwin *rw = vwin_tail(w, r)->retained; rw; rw = vwin_tail(rw, r)->retained)
        veng_timer_add(eng, retained_until(eng, r, rw), ks, slot);
}

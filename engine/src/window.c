/* window.c — window aggregates per (rule, key).
 *
 * A window rule keeps, per key, the events that passed its `where` within
 * (t − size, t] as compact entries, in event-time order: the event time, one
 * bit per aggregate (the event passed that aggregate's filter and has a
 * usable value) and the value itself (a number, or for distinct()/is_new()
 * the typed text of window_set.c). Stragglers (allowed_lateness) are
 * window_late.c's; for them a sliding window keeps the entries that left
 * its newest event's window while a straggler's may still reach them. count, sum
 * and avg are maintained incrementally as entries enter and leave. distinct
 * and is_new use a counted hash set per aggregate (how many entries hold each
 * value's text), also maintained as entries enter and leave, once a window
 * holds DSET_MIN entries; smaller windows scan, which is cheaper there and
 * costs no memory (an attacker key sending thousands of events an hour made
 * the scan O(n × distinct) per event). min and max scan the window. prior(agg)
 * is the value before the current event is added. Sliding windows are
 * evaluated at every qualifying event; tumbling windows (aligned to the
 * epoch) and session windows (closed by a gap of inactivity) are evaluated
 * once, when the watermark passes their end (an engine timer), and keep their
 * first events for the alert (DESIGN.md §3). The state's memory layout (one
 * allocation, its first entry inline) is described at vwin in engine_int.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "window_int.h"

/* A bucketed rule (sliding(d, { precision = p })) also keeps, after the
 * values, how many events each aggregate's bucket holds (ecnt). */

/* ---- counted sets for distinct() and is_new() ------------------------------ */

/* How many entries a window holds before its distinct()/is_new() aggregates
 * get a counted set (below it they scan: at most DSET_MIN² / 2 comparisons);
 * a window that shrinks under DSET_MIN / 4 entries lets its sets go. */
#define DSET_MIN 8

static void sets_free(vwin *w, const vrule *r) {
    vdset **sp = sets_ptr(w, r);
    if (!*sp) return;
    for (int k = 0; k < r->nagg; k++) vdset_clear(&(*sp)[k]);
    free(*sp);
    *sp = NULL;
}

/* The counted set of text aggregate k when the window has one or is big
 * enough to build it; NULL: scan (also when out of memory). */
static vdset *dset_get(vwin *w, const vrule *r, int k) {
    vdset **sp = sets_ptr(w, r);
    if (*sp && (*sp)[k].slot) return &(*sp)[k];
    if (w->n - lo(w, r) < DSET_MIN) return NULL;
    if (!*sp && !(*sp = calloc((size_t)r->nagg, sizeof **sp))) return NULL;
    vdset *d = &(*sp)[k];
    if (!(d->slot = calloc(8, sizeof *d->slot))) return NULL;   /* grows with the distinct values, not the entries */
    d->cap = 8;
    for (uint32_t i = lo(w, r); i < w->n; i++) {
        const ventry *e = at(w, r, i);
        if ((e->mask >> k & 1) && vdset_add(d, e->v[k].str) != 0) {
            vdset_clear(d);
            return NULL;
        }
    }
    return d;
}

/* ---- the ring of entries ---------------------------------------------------- */

static void entry_free(ventry *e, const vrule *r) {
    for (int k = 0; k < r->nagg; k++)
        if (uses_text(&r->aggs[k]) && (e->mask >> k & 1)) free(e->v[k].str);
}

/* Entry i (the first counted one, or the front) leaves the counts and sums. */
static void uncount(vwin *w, const vrule *r, uint32_t i) {
    ventry *e = at(w, r, i);
    const uint32_t *ec = r->precision_ms ? ecnt(e, r) : NULL;
    double *sum = vwin_sum(w);
    uint32_t *cnt = vwin_cnt(w, r);
    vdset *sets = has_text(r) ? *sets_ptr(w, r) : NULL;
    for (int k = 0; k < r->nagg; k++) {
        if (!(e->mask >> k & 1)) continue;
        cnt[k] -= ec ? ec[k] : 1;
        if (!uses_text(&r->aggs[k])) sum[k] -= e->v[k].num;
        else if (sets && sets[k].slot) vdset_remove(&sets[k], e->v[k].str);
    }
}

/* The oldest entry goes (an uncounted one, vwin.nkept, was out of the
 * counts already). The counted case is the hot path of every sliding
 * window: written out here rather than through uncount(). */
static void drop_front(vwin *w, const vrule *r) {
    ventry *e = at(w, r, 0);
    if (lo(w, r)) {
        entry_free(e, r);
        w->head = (w->head + 1) & (w->cap - 1);
        w->n--;
        w->nkept--;
        return;
    }
    const uint32_t *ec = r->precision_ms ? ecnt(e, r) : NULL;
    double *sum = vwin_sum(w);
    uint32_t *cnt = vwin_cnt(w, r);
    vdset *sets = has_text(r) ? *sets_ptr(w, r) : NULL;
    for (int k = 0; k < r->nagg; k++) {
        if (!(e->mask >> k & 1)) continue;
        cnt[k] -= ec ? ec[k] : 1;
        if (!uses_text(&r->aggs[k])) sum[k] -= e->v[k].num;
        else if (sets && sets[k].slot) vdset_remove(&sets[k], e->v[k].str);
    }
    entry_free(e, r);
    w->head = (w->head + 1) & (w->cap - 1);
    w->n--;
    w->head_ts = w->n ? at(w, r, 0)->ts : INT64_MAX;
    if (w->n == 0) memset(sum, 0, (size_t)r->nagg * sizeof *sum);   /* no drift */
    if (sets && w->n < DSET_MIN / 4) sets_free(w, r);
}

/* Sliding: the first counted entry leaves the newest event's window but is
 * kept for stragglers. */
static void keep_front(vwin *w, const vrule *r) {
    uint32_t i = w->nkept;
    uncount(w, r, i);
    w->nkept++;
    w->head_ts = w->nkept < w->n ? at(w, r, w->nkept)->ts : INT64_MAX;
    if (w->nkept == w->n) memset(vwin_sum(w), 0, (size_t)r->nagg * sizeof(double));
    if (has_text(r) && *sets_ptr(w, r) && w->n - w->nkept < DSET_MIN / 4) sets_free(w, r);
}

/* Move the ring to cap entries (a power of two, >= n): the inline entry when
 * cap is 1, else a malloc'd ring. -1 when out of memory. */
static int resize(vwin *w, const vrule *r, uint32_t cap) {
    size_t es = esize(r);
    unsigned char *inl = vwin_inline(w, r);
    unsigned char *ring = cap == 1 ? inl : malloc((size_t)cap * es);
    if (!ring) return -1;
    if (ring != w->ring)
        for (uint32_t i = 0; i < w->n; i++) memmove(ring + (size_t)i * es, at(w, r, i), es);
    if (w->ring != inl) free(w->ring);
    w->ring = ring;
    w->head = 0;
    w->cap = cap;
    return 0;
}

int vw_grow(vwin *w, const vrule *r) {
    if (w->cap > UINT32_MAX / 4) return -1;
    return resize(w, r, w->cap * 2);
}

int vwin_reserve(vwin *w, const vrule *r, uint32_t n) {
    uint32_t cap = w->cap;
    while (cap < n) {
        if (cap > UINT32_MAX / 4) return -1;
        cap *= 2;
    }
    return cap == w->cap ? 0 : resize(w, r, cap);
}

/* An empty window gives back a big ring (small ones are kept: a key that
 * comes back soon would allocate it again). */
static void shrink_if_empty(vwin *w, const vrule *r) {
    if (w->n == 0 && w->cap >= 8) resize(w, r, 1);
}

/* distinct() of text aggregate k over entries [0, n): n is w->n, or w->n - 1
 * for prior() of a closed window (the newest entry left out). */
static uint32_t distinct(vwin *w, const vrule *r, int k, uint32_t n) {
    vdset *d = dset_get(w, r, k);
    if (d) {
        uint32_t c = d->n;
        if (n < w->n) {
            const ventry *e = at(w, r, w->n - 1);
            if ((e->mask >> k & 1) && vdset_count(d, e->v[k].str) == 1) c--;
        }
        return c;
    }
    uint32_t c = 0, l = lo(w, r);
    for (uint32_t i = l; i < n; i++) {
        const ventry *e = at(w, r, i);
        if (!(e->mask >> k & 1)) continue;
        int seen = 0;
        for (uint32_t j = l; j < i && !seen; j++) {
            const ventry *f = at(w, r, j);
            seen = (f->mask >> k & 1) && strcmp(f->v[k].str, e->v[k].str) == 0;
        }
        c += !seen;
    }
    return c;
}

/* Value of aggregate k over entries [0, n). */
static vigil_value agg_value(vwin *w, const vrule *r, int k, uint32_t n, int incremental) {
    const vagg *a = &r->aggs[k];
    vigil_value v = {.type = VIGIL_T_NUM};
    const double *sum = vwin_sum(w);
    const uint32_t *cnt = vwin_cnt(w, r);
    if (a->kind == VIGIL_AGG_COUNT && incremental) {
        v.u.num = cnt[k];
        return v;
    }
    if ((a->kind == VIGIL_AGG_SUM || a->kind == VIGIL_AGG_AVG) && incremental) {
        if (a->kind == VIGIL_AGG_SUM) v.u.num = sum[k];
        else if (cnt[k]) v.u.num = sum[k] / cnt[k];
        else v.type = VIGIL_T_UNDEF;
        return v;
    }
    if (a->kind == VIGIL_AGG_MIN || a->kind == VIGIL_AGG_MAX) {
        int any = 0;
        double m = 0;
        for (uint32_t i = lo(w, r); i < n; i++) {
            const ventry *e = at(w, r, i);
            if (!(e->mask >> k & 1)) continue;
            double x = e->v[k].num;
            if (!any || (a->kind == VIGIL_AGG_MIN ? x < m : x > m)) m = x;
            any = 1;
        }
        if (!any) v.type = VIGIL_T_UNDEF;
        v.u.num = m;
        return v;
    }
    if (a->kind == VIGIL_AGG_DISTINCT) {
        v.u.num = distinct(w, r, k, n);
        return v;
    }
    v.type = VIGIL_T_UNDEF;
    return v;
}

/* Append the entry of ev (which passed `where`) and update the running
 * counts and sums. *added tells whether an entry was appended: a sliding
 * window keeps no entry that no aggregate uses (an event that passes no
 * aggregate's filter), and a bucketed one adds to the newest entry when the
 * event falls in its bucket. */
/* The values of ev for each aggregate (bit k of *mask: aggregate k takes
 * one; text values malloc'd, freed by free_vals). */
static inline vigil_status entry_vals(const vrule *r, vigil_event *ev, const veval *c, vcell *val, uint32_t *maskp) {
    uint32_t mask = 0;
    *maskp = 0;
    for (int k = 0; k < r->nagg; k++) {
        const vagg *a = &r->aggs[k];
        if (a->filter && !vexpr_true(a->filter, c)) continue;
        if (a->kind == VIGIL_AGG_COUNT && !a->is_new) {
            val[k].num = 0;
            mask |= 1u << k;
            continue;
        }
        if (a->field >= ev->nslots) continue;   /* decoded before a hot reload added the field */
        const vigil_value *fv = &ev->slots[a->field];
        if (uses_text(a)) {
            if (fv->type != VIGIL_T_STR && fv->type != VIGIL_T_NUM && fv->type != VIGIL_T_BOOL) continue;
            if (!(val[k].str = vwin_value_text(fv))) {
                for (int j = 0; j < k; j++)
                    if (mask >> j & 1 && uses_text(&r->aggs[j])) free(val[j].str);
                return VIGIL_ENOMEM;
            }
        } else {
            if (fv->type != VIGIL_T_NUM) continue;
            val[k].num = fv->u.num;
        }
        mask |= 1u << k;
    }
    *maskp = mask;
    return VIGIL_OK;
}

/* (add_entry, the hot path, has entry_vals inlined; window_late.c calls it here) */
vigil_status vw_entry_vals(const vrule *r, vigil_event *ev, const veval *c, vcell *val, uint32_t *mask) {
    return entry_vals(r, ev, c, val, mask);
}

void vw_free_vals(const vrule *r, vcell *val, uint32_t mask) {
    for (int k = 0; k < r->nagg; k++)
        if (mask >> k & 1 && uses_text(&r->aggs[k])) free(val[k].str);
}

static vigil_status add_entry(vwin *w, const vrule *r, vigil_event *ev, const veval *c, int *added,
                              uint32_t *counted) {
    vcell val[32];
    uint32_t mask;
    *added = 0;
    vigil_status st = entry_vals(r, ev, c, val, &mask);
    if (st != VIGIL_OK) return st;
    if (counted) *counted = mask;   /* an event that counts in some aggregate: one of window_events */
    int sliding = r->window == VIGIL_WIN_SLIDING;
    if (!mask && sliding) return VIGIL_OK;
    int64_t ts = ev->ts;
    if (r->precision_ms) {
        ts -= ((ts % r->precision_ms) + r->precision_ms) % r->precision_ms;   /* bucket start */
        ventry *last = w->n ? at(w, r, w->n - 1) : NULL;
        if (last && last->ts == ts) {   /* same bucket: combine (no text aggregate here: the compiler refuses them) */
            uint32_t *ec = ecnt(last, r);
            for (int k = 0; k < r->nagg; k++) {
                if (!(mask >> k & 1)) continue;
                vwin_cnt(w, r)[k]++;
                vwin_sum(w)[k] += r->aggs[k].kind == VIGIL_AGG_COUNT ? 0 : val[k].num;
                if (!(last->mask >> k & 1)) last->v[k] = val[k];
                else if (r->aggs[k].kind == VIGIL_AGG_MIN) last->v[k].num = val[k].num < last->v[k].num ? val[k].num : last->v[k].num;
                else if (r->aggs[k].kind == VIGIL_AGG_MAX) last->v[k].num = val[k].num > last->v[k].num ? val[k].num : last->v[k].num;
                else last->v[k].num += r->aggs[k].kind == VIGIL_AGG_COUNT ? 0 : val[k].num;
                last->mask |= 1u << k;
                ec[k]++;
            }
            return VIGIL_OK;
        }
    }
    if (w->n == w->cap && vw_grow(w, r) != 0) {
        vw_free_vals(r, val, mask);
        return VIGIL_ENOMEM;
    }
    ventry *e = at(w, r, w->n);
    e->ts = ts;
    e->mask = mask;
    e->pad = 0;
    if (w->n == lo(w, r)) w->head_ts = ts;   /* the first counted entry */
    uint32_t *ec = r->precision_ms ? ecnt(e, r) : NULL;
    double *sum = vwin_sum(w);
    uint32_t *cnt = vwin_cnt(w, r);
    vdset *sets = has_text(r) ? *sets_ptr(w, r) : NULL;
    for (int k = 0; k < r->nagg; k++) {
        int on = mask >> k & 1;
        e->v[k] = on ? val[k] : (vcell){.num = 0};
        if (ec) ec[k] = (uint32_t)on;
        if (!on) continue;
        cnt[k]++;
        if (!uses_text(&r->aggs[k])) sum[k] += r->aggs[k].kind == VIGIL_AGG_COUNT ? 0 : val[k].num;
        else if (sets && sets[k].slot && vdset_add(&sets[k], val[k].str) != 0)
            vdset_clear(&sets[k]);   /* out of memory: this aggregate scans (or rebuilds) from now on */
    }
    w->n++;
    *added = 1;
    return VIGIL_OK;
}

/* is_new of the newest entry for every aggregate that asks: no other entry
 * holds its value. */
static void newest_is_new(vwin *w, const vrule *r, int *isnew) {
    const ventry *e = at(w, r, w->n - 1);
    for (int k = 0; k < r->nagg; k++) {
        isnew[k] = 0;
        if (!r->aggs[k].is_new || !(e->mask >> k & 1)) continue;
        const vdset *d = dset_get(w, r, k);
        if (d) {
            isnew[k] = vdset_count(d, e->v[k].str) == 1;
            continue;
        }
        int seen = 0;
        for (uint32_t i = lo(w, r); i + 1 < w->n && !seen; i++) {
            const ventry *f = at(w, r, i);
            seen = (f->mask >> k & 1) && strcmp(f->v[k].str, e->v[k].str) == 0;
        }
        isnew[k] = !seen;
    }
}

/* The alert's details: every aggregate's value, current and prior. */
void vw_details(const vrule *r, const vigil_value *cur, const vigil_value *prior, const int *isnew, char *det,
                    size_t n) {
    size_t off = (size_t)snprintf(det, n, "{\"aggregates\":{");
    for (int k = 0; k < r->nagg && off < n - 200; k++) {
        const vagg *a = &r->aggs[k];
        if (a->is_new) {
            off += (size_t)snprintf(det + off, n - off, "%s\"%s\":%s", k ? "," : "", a->label, isnew[k] ? "true" : "false");
            continue;
        }
        char vb[40], pb[40];
        if (cur[k].type == VIGIL_T_NUM) snprintf(vb, sizeof vb, "%.10g", cur[k].u.num);
        else snprintf(vb, sizeof vb, "null");
        if (prior[k].type == VIGIL_T_NUM) snprintf(pb, sizeof pb, "%.10g", prior[k].u.num);
        else snprintf(pb, sizeof pb, "null");
        off += (size_t)snprintf(det + off, n - off, "%s\"%s\":%s,\"prior(%s)\":%s", k ? "," : "", a->label, vb,
                                a->label, pb);
    }
    snprintf(det + off, n - off, "}}");
}

size_t vw_size(const vrule *r) {
    size_t size = vwin_inline_off(r) + esize(r);
    if (r->window != VIGIL_WIN_SLIDING) size += sizeof(vwtail);
    if (has_text(r)) size += sizeof(vdset *);
    return size;
}

vwin *vwin_new(const vrule *r) {
    vwin *w = calloc(1, vw_size(r));
    if (!w) return NULL;
    w->ring = vwin_inline(w, r);
    w->cap = 1;
    vwtail *t = vwin_tail(w, r);
    if (t) t->closed_end = INT64_MIN;
    return w;
}

/* Evaluate `when` over a tumbling/session window's events (`e` is the
 * latest; prior() leaves the latest out) and alert when it holds and no
 * suppression stops it. 1 when it alerted. */
int vw_fire(vigil_engine *eng, const vrule *r, vkeystate *ks, vwin *w) {
    vwtail *t = vwin_tail(w, r);
    if (!w->n || !t->last) return 0;
    vigil_value *cur = eng->aggv, *prior = eng->priorv;
    const ventry *lastent = at(w, r, w->n - 1);
    const double *wsum = vwin_sum(w);
    const uint32_t *wcnt = vwin_cnt(w, r);
    for (int k = 0; k < r->nagg; k++) {
        cur[k] = agg_value(w, r, k, w->n, 1);
        const vagg *a = &r->aggs[k];
        int bit = lastent->mask >> k & 1;
        if (a->kind == VIGIL_AGG_COUNT) {
            prior[k] = (vigil_value){.type = VIGIL_T_NUM, .u.num = wcnt[k] - (uint32_t)bit};
        } else if (a->kind == VIGIL_AGG_SUM || a->kind == VIGIL_AGG_AVG) {
            double sum = wsum[k] - (bit ? lastent->v[k].num : 0);
            uint32_t cnt = wcnt[k] - (uint32_t)bit;
            prior[k] = (vigil_value){.type = VIGIL_T_NUM, .u.num = a->kind == VIGIL_AGG_SUM ? sum : cnt ? sum / cnt : 0};
            if (a->kind == VIGIL_AGG_AVG && !cnt) prior[k].type = VIGIL_T_UNDEF;
        } else {
            prior[k] = agg_value(w, r, k, w->n - 1, 0);
        }
    }
    newest_is_new(w, r, eng->isnew);
    veval c = {.ev = t->last, .rule = r, .aggs = cur, .prior = prior, .is_new = eng->isnew};
    int64_t ts = w->win_end;
    if (!vexpr_true(r->when, &c) || (r->suppress_ms && w->alerted && ts - w->last_alert_ts < r->suppress_ms)) return 0;
    w->alerted = 1;
    w->last_alert_ts = ts;
    char det[2048];
    vw_details(r, cur, prior, eng->isnew, det, sizeof det);
    vigil_event *stack[128], **evs = stack;
    uint32_t n = t->nevs + 1;
    if (n > 128 && !(evs = malloc(n * sizeof *evs))) evs = NULL;
    if (evs) {
        if (t->nevs) memcpy(evs, t->evs, t->nevs * sizeof *evs);
        evs[t->nevs] = t->last;
        veng_emit_window(eng, r, ks, evs, (int)n, t->total > n, det, t->win_start, w->win_end);
        if (evs != stack) free(evs);
    }
    return 1;
}

/* Close a tumbling/session window: evaluate it, then empty it — or, when
 * it did not alert and stragglers may still reach it (allowed_lateness),
 * retain it (window_late.c) and start empty. */
static void close_window(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w) {
    vwtail *t = vwin_tail(w, r);
    if (!w->open) return;
    int fired = vw_fire(eng, r, ks, w);
    t->closed_end = w->win_end;
    if (!fired && w->n && t->last && eng->o.allowed_lateness_ms > 0 && vw_retain(eng, r, ks, slot, w) == 0) return;
    while (w->n) drop_front(w, r);
    shrink_if_empty(w, r);
    for (uint32_t i = 0; i < t->nevs; i++) vigil_event_release(t->evs[i]);
    t->nevs = 0;
    vigil_event_release(t->last);
    t->last = NULL;
    t->total = 0;
    w->open = 0;
}

static int64_t floor_div(int64_t a, int64_t b) { return a / b - (a % b != 0 && (a < 0) != (b < 0)); }

/* Tumbling and session windows. Events reach them in event-time order
 * unless allowed_lateness lets an older one through: such an event joins the
 * open window when it belongs to it — a session then grows backwards, since
 * the event's own [t, t + gap) overlaps it (sessions merge, as Flink's
 * merging windows do) — or the closed window that retains it
 * (window_late.c), and is counted in window_late when its window has
 * already closed and alerted, or is no longer retained. */
int64_t vwin_closes_at(const vrule *r, const vwin *w) {
    return r->window == VIGIL_WIN_SESSION ? w->win_end + 1 : w->win_end;
}

static vigil_status windowed_feed(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w,
                                  vigil_event *ev, const veval *c) {
    int session = r->window == VIGIL_WIN_SESSION;
    vwtail *t = vwin_tail(w, r);
    if (w->open && ev->ts >= vwin_closes_at(r, w)) close_window(eng, r, ks, slot, w);
    if (w->open && ev->ts < t->win_start) {
        if (!session || ev->ts + r->window_ms < t->win_start) return vw_late_join(eng, r, ks, slot, w, ev, c);
        t->win_start = ev->ts;   /* merge: the session now starts here */
    }
    if (!w->open) {
        if (r->draining) return VIGIL_OK;   /* hot reload: an old version closes its window, opens none */
        if (t->closed_end > ev->ts || (session && t->closed_end == ev->ts))   /* its window closed already */
            return vw_late_join(eng, r, ks, slot, w, ev, c);
        w->open = 1;
        if (r->window == VIGIL_WIN_TUMBLING) {
            t->win_start = floor_div(ev->ts, r->window_ms) * r->window_ms;   /* aligned to the epoch */
            w->win_end = t->win_start + r->window_ms;
            if (veng_timer_add(eng, w->win_end, ks, slot) != 0) return VIGIL_ENOMEM;
        } else {
            t->win_start = ev->ts;
            w->win_end = INT64_MIN;
        }
    }
    if (session && ev->ts + r->window_ms > w->win_end) {   /* the gap restarts at the latest event */
        w->win_end = ev->ts + r->window_ms;
        if (veng_timer_add(eng, vwin_closes_at(r, w), ks, slot) != 0) return VIGIL_ENOMEM;
    }
    return vw_join(eng, r, w, ev, c);
}

/* ev goes into tumbling/session window w: its entry (the latest event's
 * kept last), the window's event count, and the kept events. */
vigil_status vw_join(vigil_engine *eng, const vrule *r, vwin *w, vigil_event *ev, const veval *c) {
    vwtail *t = vwin_tail(w, r);
    int added;
    vigil_status s = add_entry(w, r, ev, c, &added, NULL);
    if (s != VIGIL_OK) return s;
    t->total++;
    uint32_t keep = eng->o.max_alert_events > 1 ? eng->o.max_alert_events - 1 : 0;
    vigil_event *older = ev;   /* the event that goes to the kept list */
    if (!t->last || ev->ts >= t->last->ts) {   /* the latest is `e` of `when` */
        older = t->last;
        vigil_event_retain(ev);
        t->last = ev;
    } else {
        vigil_event_retain(ev);
        if (added && w->n >= 2) {   /* keep the latest event's entry last: prior() leaves it out */
            size_t es = esize(r);
            unsigned char tmp[512];
            ventry *a = at(w, r, w->n - 1), *b = at(w, r, w->n - 2);
            if (es <= sizeof tmp) {
                memcpy(tmp, a, es);
                memcpy(a, b, es);
                memcpy(b, tmp, es);
            }
        }
    }
    if (older) {   /* joins the kept list, or is let go */
        if (t->nevs < keep) {
            vigil_event **ne = realloc(t->evs, (t->nevs + 1) * sizeof *ne);
            if (!ne) {
                vigil_event_release(older);
                return VIGIL_ENOMEM;
            }
            t->evs = ne;
            t->evs[t->nevs++] = older;
        } else {
            vigil_event_release(older);
        }
    }
    return VIGIL_OK;
}

void vwin_timer(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w, int64_t wm) {
    if (w && w->open && wm >= vwin_closes_at(r, w)) close_window(eng, r, ks, slot, w);
    if (w && r->window != VIGIL_WIN_SLIDING) vw_prune(eng, r, w, wm);
}

vigil_status vwin_feed(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin **wp, vigil_event *ev,
                       const uint64_t *hits, int where_holds) {
    veval c = {.ev = ev, .rule = r, .regex_hits = hits};
    vwin *w = *wp;
    if (r->draining && (!w || !w->open || r->window == VIGIL_WIN_SLIDING)) return VIGIL_OK;
    if (!where_holds && !vexpr_true(r->where, &c)) return VIGIL_OK;
    eng->step_hits[(size_t)(r - eng->rs->rules) * VIGIL_MAX_STEPS]++;   /* lint: the where matched */
    if (!w) {
        if (!(w = vwin_new(r))) return VIGIL_ENOMEM;
        *wp = w;
    }
    if (r->window != VIGIL_WIN_SLIDING) return windowed_feed(eng, r, ks, slot, w, ev, &c);
    /* a straggler: only allowed_lateness lets one through (without it every
     * event is at or past the watermark, and so past every entry) */
    int64_t late = eng->o.allowed_lateness_ms;
    if (late && w->n && vw_bucket_of(r, ev->ts) < at(w, r, w->n - 1)->ts) return vw_straggler(eng, r, ks, w, ev, &c);
    /* sliding: what left (t - size, t] leaves the counts */
    /* a bucket [b, b + precision) leaves once its last instant has: the
     * window then spans at most precision - 1 ms more than (t - size, t] */
    int64_t horizon = ev->ts - r->window_ms - (r->precision_ms ? r->precision_ms - 1 : 0);
    if (w->n > w->nkept && w->head_ts <= horizon) {
        if (!late) {
            while (w->n && w->head_ts <= horizon) drop_front(w, r);
        } else {   /* kept while a straggler's window may still reach it */
            while (w->nkept < w->n && w->head_ts <= horizon) keep_front(w, r);
        }
        shrink_if_empty(w, r);
    }
    if (w->nkept && at(w, r, 0)->ts <= horizon - late) {   /* no straggler's window reaches these */
        while (w->nkept && at(w, r, 0)->ts <= horizon - late) drop_front(w, r);
        shrink_if_empty(w, r);
    }
    vigil_value *prior = eng->priorv, *cur = eng->aggv;
    int *isnew = eng->isnew;
    for (int k = 0; k < r->nagg; k++) prior[k] = agg_value(w, r, k, w->n, 1);
    int added;
    uint32_t counted;
    vigil_status s = add_entry(w, r, ev, &c, &added, &counted);
    if (s != VIGIL_OK) return s;
    uintptr_t *idp = vwin_ids(w, r);
    if (counted && vw_ids_push(idp, eng->o.max_alert_events, ev->id, strlen(ev->id)) != 0) return VIGIL_ENOMEM;
    uint64_t in_window = vw_counted_events(w, r);
    vw_ids_trim(idp, in_window);
    for (int k = 0; k < r->nagg; k++) cur[k] = agg_value(w, r, k, w->n, 1);
    if (added) newest_is_new(w, r, isnew);
    else memset(isnew, 0, (size_t)r->nagg * sizeof *isnew);
    c.aggs = cur;
    c.prior = prior;
    c.is_new = isnew;
    if (!vexpr_true(r->when, &c)) return VIGIL_OK;
    if (r->suppress_ms && w->alerted && ev->ts - w->last_alert_ts < r->suppress_ms) return VIGIL_OK;
    w->alerted = 1;
    w->last_alert_ts = ev->ts;
    char det[2048];
    vw_details(r, cur, prior, isnew, det, sizeof det);
    /* window_events: the newest counted events still in the window, oldest first */
    vwids_view ids;
    vwin_ids_view(*idp, &ids);
    const char *stack[128], **wids = stack;
    int nw = 0;
    if (ids.n > 128 && !(wids = malloc(ids.n * sizeof *wids))) return VIGIL_ENOMEM;
    char *texts = ids.n ? malloc(ids.used + ids.n) : NULL;   /* NUL-terminated copies */
    if (ids.n && !texts) {
        if (wids != stack) free(wids);
        return VIGIL_ENOMEM;
    }
    for (size_t off = 0, t = 0; off < ids.used;) {
        uint16_t l;
        memcpy(&l, ids.data + off, sizeof l);
        memcpy(texts + t, ids.data + off + sizeof l, l);
        texts[t + l] = '\0';
        wids[nw++] = texts + t;
        off += sizeof l + l;
        t += (size_t)l + 1;
    }
    int wtrunc = in_window > (uint64_t)nw;
    veng_emit_sliding(eng, r, ks, ev, det, wids, nw, wtrunc);
    free(texts);
    if (wids != stack) free(wids);
    return VIGIL_OK;
}


/* Explain (explain.c): every aggregate's value now (cur) and without the
 * newest entry (prior). A bucketed window's newest bucket may hold several
 * events: its prior leaves out the whole bucket. */
void vwin_values(vwin *w, const vrule *r, vigil_value *cur, vigil_value *prior) {
    const uint32_t n = w->n;
    const ventry *last = n > lo(w, r) ? at(w, r, n - 1) : NULL;
    const uint32_t *ec = last && r->precision_ms ? ecnt(last, r) : NULL;
    for (int k = 0; k < r->nagg; k++) {
        const vagg *a = &r->aggs[k];
        cur[k] = agg_value(w, r, k, n, 1);
        prior[k] = cur[k];
        int in_last = last && (last->mask >> k & 1);
        if (a->is_new) {
            prior[k].type = VIGIL_T_UNDEF;   /* a property of the current event, not of the window */
            cur[k].type = VIGIL_T_UNDEF;
        } else if (a->kind == VIGIL_AGG_COUNT) {
            prior[k].u.num -= in_last ? (ec ? ec[k] : 1) : 0;
        } else if (a->kind == VIGIL_AGG_SUM || a->kind == VIGIL_AGG_AVG) {
            uint32_t c = vwin_cnt(w, r)[k] - (in_last ? (ec ? ec[k] : 1) : 0);
            double sm = vwin_sum(w)[k] - (in_last ? last->v[k].num : 0);
            if (a->kind == VIGIL_AGG_SUM) prior[k] = (vigil_value){.type = VIGIL_T_NUM, .u.num = sm};
            else prior[k] = c ? (vigil_value){.type = VIGIL_T_NUM, .u.num = sm / c} : (vigil_value){.type = VIGIL_T_UNDEF};
        } else if (a->kind == VIGIL_AGG_DISTINCT) {
            prior[k] = (vigil_value){.type = VIGIL_T_NUM, .u.num = last ? distinct(w, r, k, n - 1) : 0};
        } else {
            prior[k] = last ? agg_value(w, r, k, n - 1, 0) : (vigil_value){.type = VIGIL_T_UNDEF};
        }
    }
}

uint64_t vwin_events(const vwin *w, const vrule *r) {
    if (!r->precision_ms) return w->n - lo(w, r);
    uint64_t total = 0;   /* buckets: the events they hold, as counted for count() or any aggregate */
    for (uint32_t i = lo(w, r); i < w->n; i++) {
        const ventry *e = at(w, r, i);
        const uint32_t *c = ecnt(e, r);
        uint32_t m = 0;
        for (int k = 0; k < r->nagg; k++)
            if ((e->mask >> k & 1) && c[k] > m) m = c[k];
        total += m;
    }
    return total;
}

void vwin_warm(const vwin *w, const vrule *r) {
    if (r->window == VIGIL_WIN_SLIDING && w->ids && !(w->ids & 1))   /* a block of ids (window_ids.c) */
        __builtin_prefetch((const void *)w->ids);
    if (!w->n) return;
    __builtin_prefetch(at(w, r, 0));
    __builtin_prefetch(at(w, r, w->n - 1));
}

void vwin_free(vwin *w, const vrule *r) {
    if (!w) return;
    if (has_text(r)) {
        sets_free(w, r);   /* first: the entries then leave without updating them */
        while (w->n) drop_front(w, r);   /* their strings */
    }   /* numbers only: nothing per entry to free (a hot reload frees many windows at once) */
    vwtail *t = vwin_tail(w, r);
    if (t) {
        for (uint32_t i = 0; i < t->nevs; i++) vigil_event_release(t->evs[i]);
        free(t->evs);
        vigil_event_release(t->last);
        vwin_free(t->retained, r);   /* the closed windows kept for stragglers */
    }
    uintptr_t *idp = vwin_ids(w, r);
    if (idp) vwin_ids_free(*idp);
    if (w->ring != vwin_inline(w, r)) free(w->ring);
    free(w);
}

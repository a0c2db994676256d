/* engine.c — the engine: per-key state table, routing of an event to the
 * rules of its key group, event-time watermark, alert emission.
 *
 * Single-threaded by design: the server gives each worker its own engine and
 * routes every key to one worker, so nothing here locks. An event is scanned
 * by Hyperscan once per regex field (not once per rule), then each rule of
 * the key group runs its pattern (nfa.c) or window (window.c) on the key's
 * state. Alerts get their contract id here: the first 32 hex digits of
 * SHA-256 over rule, version, key and the matched event ids joined by NUL
 * bytes (DESIGN.md §3), so replay and serve agree.
 *
 * Why over 800 lines: the key table, the watermark buffer and the store
 * batches all act on the same per-key state of one engine, on its hot path;
 * the matching itself is already apart (nfa.c, window.c, eval.c), the state
 * record codec too (codec.c), and the timer heap (timers.c). vigil_engine_warm stays here: bench/synth.c
 * references it weakly, which does not pull a separate object out of the library. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>
#include <cjson/cJSON.h>
#include "engine_int.h"
#include "codec.h"

static int hs_on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                       void *ctx) {
    uint64_t *hits = ctx;
    hits[id >> 6] |= 1ULL << (id & 63);
    return 0;
}

/* What an engine sizes after its ruleset: per-group horizons, per-rule
 * counters, aggregate and regex scratch. Made apart and installed in one
 * step, so that a swap (swap.c) that runs out of memory changes nothing. */
int veng_rs_parts_make(const vigil_engine *eng, const vigil_ruleset *rs, veng_rs_parts *p) {
    memset(p, 0, sizeof *p);
    p->rule_alerts = calloc((size_t)(rs->nrules ? rs->nrules : 1), sizeof *p->rule_alerts);
    p->step_hits = calloc((size_t)(rs->nrules ? rs->nrules : 1) * VIGIL_MAX_STEPS, sizeof *p->step_hits);
    p->horizon = calloc((size_t)(rs->ngroups ? rs->ngroups : 1), sizeof *p->horizon);
    for (int g = 0; p->horizon && g < rs->ngroups; g++) {
        int64_t h = 0;
        for (int i = 0; i < rs->groups[g].nrules; i++) {
            const vrule *r = &rs->rules[rs->groups[g].rules[i]];
            int64_t x = r->window_ms + r->precision_ms;
            if (r->within_ms > x) x = r->within_ms;   /* suppression: checked per key, it may be long */
            if (x > h) h = x;
        }
        p->horizon[g] = h + eng->o.allowed_lateness_ms + eng->o.max_out_of_orderness_ms;
        if (g == 0 || p->horizon[g] < p->horizon_min) p->horizon_min = p->horizon[g];
    }
    int maxagg = 1;
    for (int i = 0; i < rs->nrules; i++)
        if (rs->rules[i].nagg > maxagg) maxagg = rs->rules[i].nagg;
    p->maxagg = maxagg;
    p->aggv = calloc((size_t)maxagg, sizeof *p->aggv);
    p->priorv = calloc((size_t)maxagg, sizeof *p->priorv);
    p->isnew = calloc((size_t)maxagg, sizeof *p->isnew);
    p->regex_words = ((size_t)rs->nregex + 63) / 64;
    if (p->regex_words) p->regex_hits = calloc(p->regex_words, sizeof *p->regex_hits);
    int bad = !p->horizon || !p->rule_alerts || !p->step_hits || !p->aggv || !p->priorv || !p->isnew ||
              (p->regex_words && !p->regex_hits);
    for (int i = 0; !bad && i < rs->nregex_dbs; i++)
        bad = hs_alloc_scratch(rs->regex_dbs[i].db, &p->scratch) != HS_SUCCESS;
    if (bad) {
        veng_rs_parts_free(p);
        return -1;
    }
    return 0;
}

void veng_rs_parts_free(veng_rs_parts *p) {
    free(p->rule_alerts);
    free(p->step_hits);
    free(p->horizon);
    free(p->aggv);
    free(p->priorv);
    free(p->isnew);
    free(p->regex_hits);
    hs_free_scratch(p->scratch);
    memset(p, 0, sizeof *p);
}

/* Install p (taken over) in place of the engine's current parts (freed). */
void veng_rs_parts_install(vigil_engine *eng, veng_rs_parts *p) {
    veng_rs_parts old = {.rule_alerts = eng->rule_alerts, .step_hits = eng->step_hits, .horizon = eng->horizon, .aggv = eng->aggv,
                         .priorv = eng->priorv, .isnew = eng->isnew, .regex_hits = eng->regex_hits,
                         .scratch = eng->scratch};
    veng_rs_parts_free(&old);
    eng->rule_alerts = p->rule_alerts;
    eng->step_hits = p->step_hits;
    eng->horizon = p->horizon;
    eng->horizon_min = p->horizon_min;
    eng->aggv = p->aggv;
    eng->priorv = p->priorv;
    eng->isnew = p->isnew;
    eng->maxagg = p->maxagg;
    eng->regex_words = p->regex_words;
    eng->regex_hits = p->regex_hits;
    eng->scratch = p->scratch;
    memset(p, 0, sizeof *p);
}

vigil_engine *vigil_engine_create(vigil_ruleset *rs, const vigil_engine_opts *opts, vigil_store *store,
                                  vigil_alert_fn fn, void *ud) {
    vigil_engine *eng = calloc(1, sizeof *eng);
    if (!eng) return NULL;
    vigil_ruleset_retain(rs);
    eng->rs = rs;
    if (opts) eng->o = *opts;
    if (!eng->o.max_runs) eng->o.max_runs = 64;
    if (!eng->o.max_alert_events) eng->o.max_alert_events = 100;
    if (!eng->o.max_evidence) eng->o.max_evidence = 20;
    eng->store = store;
    eng->fn = fn;
    eng->ud = ud;
    eng->wm = INT64_MIN;
    eng->max_seen = INT64_MIN;
    eng->cap = 1024;
    eng->tab = calloc(eng->cap, sizeof *eng->tab);
    veng_rs_parts parts;
    if (!eng->tab || veng_rs_parts_make(eng, rs, &parts) != 0) {
        vigil_engine_destroy(eng);
        return NULL;
    }
    veng_rs_parts_install(eng, &parts);
    if (rs->host.open && !(eng->host = rs->host.open(rs->host_ud, rs))) {
        vigil_engine_destroy(eng);
        return NULL;
    }
    return eng;
}

void veng_ks_free(vigil_engine *eng, vkeystate *ks) {
    const vgroup *g = &eng->rs->groups[ks->group];
    for (int i = 0; i < g->nrules; i++) {
        const vrule *r = &eng->rs->rules[g->rules[i]];
        if (r->nsteps) vnfa_free(ks->rs[i]);
        else vwin_free(ks->rs[i], r);
    }
    free(ks);
}

void vigil_engine_destroy(vigil_engine *eng) {
    if (!eng) return;
    for (size_t i = 0; eng->tab && i < eng->cap; i++)
        if (eng->tab[i].ks) veng_ks_free(eng, eng->tab[i].ks);
    free(eng->tab);
    free(eng->dirty);
    vcodec_commit_free(eng, 1);
    EVP_MD_CTX_free(eng->mdctx);
    free(eng->timers);
    for (size_t i = 0; i < eng->nheld; i++) vigil_event_release(eng->held[i].ev);
    free(eng->held);
    for (uint32_t i = 0; i < eng->ntmp_new; i++) vrun_clear(&eng->tmp_new[i]);
    for (uint32_t i = 0; i < eng->ntmp_done; i++) vrun_clear(&eng->tmp_done[i]);
    free(eng->tmp_new);
    free(eng->tmp_done);
    veng_grave_drain(eng, SIZE_MAX);
    free(eng->grave);
    free(eng->grave_rs);
    veng_rs_parts none = {0};
    veng_rs_parts_install(eng, &none);
    if (eng->host) eng->rs->host.close(eng->host);
    vigil_ruleset_release(eng->rs);
    free(eng);
}

/* ---- key table ------------------------------------------------------------- */

uint64_t veng_key_hash(int g, const char *k, size_t n) { return vigil_hash(k, n) ^ ((uint64_t)g * 0x9E3779B97F4A7C15ULL); }

size_t veng_ks_slot(const vigil_engine *eng, int g, const char *k, size_t n, uint64_t h) {
    size_t mask = eng->cap - 1, i = h & mask;
    for (;;) {
        const vslot *sl = &eng->tab[i];
        if (!sl->ks || (sl->h == (uint32_t)h && sl->ks->group == g && sl->ks->keylen == n && vbytes_eq(sl->ks->key, k, n)))
            return i;
        i = (i + 1) & mask;
    }
}

static int ks_grow(vigil_engine *eng) {
    size_t cap = eng->cap * 2;
    vslot *nt = calloc(cap, sizeof *nt);
    if (!nt) return -1;
    for (size_t i = 0; i < eng->cap; i++) {
        if (!eng->tab[i].ks) continue;
        size_t j = eng->tab[i].ks->hash & (cap - 1);
        while (nt[j].ks) j = (j + 1) & (cap - 1);
        nt[j] = eng->tab[i];
    }
    free(eng->tab);
    eng->tab = nt;
    eng->cap = cap;
    eng->sweep = 0;
    return 0;
}

/* Remove the key in slot i: backward-shift deletion (no tombstones), so
 * probe sequences stay as short as if the key had never been there. */
static void ks_remove(vigil_engine *eng, size_t i) {
    size_t mask = eng->cap - 1, j = i;
    for (;;) {
        eng->tab[i].ks = NULL;
        for (;;) {
            j = (j + 1) & mask;
            if (!eng->tab[j].ks) return;
            size_t home = eng->tab[j].h & mask;
            /* the entry at j may move to i when its home is not in (i, j] */
            if (i <= j ? (home <= i || home > j) : (home <= i && home > j)) break;
        }
        eng->tab[i] = eng->tab[j];
        i = j;
    }
}

static void sweep(vigil_engine *eng, size_t n);

vkeystate *veng_key(vigil_engine *eng, int g, const char *k, size_t n, int create) {
    uint64_t h = veng_key_hash(g, k, n);
    size_t slot = veng_ks_slot(eng, g, k, n, h);
    eng->last_slot = slot;
    if (eng->tab[slot].ks || !create) return eng->tab[slot].ks;
    if ((eng->nkeys + 1) * 2 > eng->cap) {   /* load factor 1/2: short probes */
        /* drop idle keys before growing: the table then tracks live state */
        size_t before = eng->nkeys;
        sweep(eng, eng->cap);
        if ((eng->nkeys + 1) * 2 > eng->cap || eng->nkeys * 8 > before * 7) {   /* freed < 1/8: grow */
            if (ks_grow(eng) != 0) return NULL;
        }
        slot = veng_ks_slot(eng, g, k, n, h);
    }
    const vgroup *gr = &eng->rs->groups[g];
    /* one allocation: the state, its rule slots, then the key text (saves a
     * cache miss per lookup) */
    size_t head = sizeof(vkeystate) + (size_t)gr->nrules * sizeof(void *);
    vkeystate *ks = calloc(1, head + n + 1);
    if (!ks) return NULL;
    ks->key = (char *)ks + head;
    memcpy(ks->key, k, n);
    ks->key[n] = '\0';
    ks->keylen = (uint32_t)n;
    ks->hash = h;
    ks->group = g;
    eng->tab[slot] = (vslot){.h = (uint32_t)h, .ks = ks};
    eng->last_slot = slot;
    eng->nkeys++;
    return ks;
}

int veng_mark_dirty(vigil_engine *eng, vkeystate *ks) {
    if (ks->dirty || !eng->store) return 0;   /* only a store needs to know what changed */
    if (eng->ndirty == eng->capdirty) {
        size_t cap = eng->capdirty ? eng->capdirty * 2 : 256;
        vkeystate **d = realloc(eng->dirty, cap * sizeof *d);
        if (!d) return -1;
        eng->dirty = d;
        eng->capdirty = cap;
    }
    eng->dirty[eng->ndirty++] = ks;
    ks->dirty = 1;
    return 0;
}

/* ---- idle-key expiry ------------------------------------------------------- */

/* A key can go when its state is as good as none at watermark wm: no timer
 * points at it, it is not waiting for a commit, its last event is older
 * than its group's horizon, and no rule holds a run (a pattern without
 * `within` keeps its runs forever, as FlinkCEP does, bounded by max_runs;
 * held matches are runs too, so they are never dropped unemitted),
 * an open window, or a suppression that is still running. Sliding window
 * entries are all past their window once the horizon has passed. */
static int ks_expirable(const vigil_engine *eng, const vkeystate *ks, int64_t wm) {
    if (ks->dirty || ks->ntimers || ks->last_ts > wm - eng->horizon[ks->group]) return 0;
    const vgroup *g = &eng->rs->groups[ks->group];
    int64_t t0 = wm - eng->o.allowed_lateness_ms;
    for (int i = 0; i < g->nrules; i++) {
        const vrule *r = &eng->rs->rules[g->rules[i]];
        if (!ks->rs[i]) continue;
        int alerted;
        int64_t la;
        if (r->nsteps) {
            const vpat *p = ks->rs[i];
            if (p->nruns) return 0;
            alerted = p->alerted, la = p->last_alert_ts;
        } else {
            const vwin *w = ks->rs[i];
            if (vwin_live(r, w)) return 0;
            alerted = w->alerted, la = w->last_alert_ts;
        }
        if (r->suppress_ms && alerted && la + r->suppress_ms > t0) return 0;
    }
    return 1;
}

/* Look at up to n slots from the sweep cursor and drop the keys that can go.
 * Called a little per event (cheap: most keys fail the horizon test on their
 * first cache line) and fully before the table would grow. */
static void sweep(vigil_engine *eng, size_t n) {
    if (eng->wm == INT64_MIN) return;
    while (n--) {
        size_t i = eng->sweep & (eng->cap - 1);
        vkeystate *ks = eng->tab[i].ks;
        /* the slot's second of the last event rules most keys out unread */
        if (ks && ((int64_t)eng->tab[i].last_s + 1) * 1000 <= eng->wm - eng->horizon_min &&
            ks_expirable(eng, ks, eng->wm)) {
            veng_ks_free(eng, ks);
            ks_remove(eng, i);   /* a later key may shift into slot i: look at it again */
            eng->nkeys--;
            eng->st.keys_expired++;
            continue;
        }
        eng->sweep = (i + 1) & (eng->cap - 1);
    }
}

/* ---- feeding --------------------------------------------------------------- */

static const uint64_t *scan(vigil_engine *eng, const vigil_event *ev) {
    if (!eng->regex_words) return NULL;
    memset(eng->regex_hits, 0, eng->regex_words * sizeof *eng->regex_hits);
    for (int i = 0; i < eng->rs->nregex_dbs; i++) {
        const vregex_db *d = &eng->rs->regex_dbs[i];
        if (d->field >= ev->nslots) continue;   /* decoded before a hot reload added the field */
        const vigil_value *v = &ev->slots[d->field];
        if (v->type != VIGIL_T_STR) continue;
        hs_scan(d->db, v->u.str, v->len, 0, eng->scratch, hs_on_match, eng->regex_hits);
    }
    return eng->regex_hits;
}

static vigil_status feed_group(vigil_engine *eng, vigil_event *ev, int g, const uint64_t *hits,
                               vigil_error *err) {
    const vigil_ruleset *rs = eng->rs;
    if (g < 0 || g >= rs->ngroups) return vigil_error_set(err, VIGIL_EINVAL, "no key group %d", g);
    size_t kl;
    const char *k = vev_key(ev, g, &kl);
    if (!k) return vigil_error_set(err, VIGIL_ENOKEY, "event %s lacks key field '%s'", ev->id, rs->groups[g].key);
    /* the watermark moves to this event's time first: what expires before
     * it (absences, within) is decided before the event is matched */
    if (eng->ntimers && eng->timers[0].when <= ev->ts) veng_fire_timers(eng, ev->ts);
    vkeystate *ks = NULL;
    const vhint *hint = &eng->hint[hint_of(ev, g)];
    if (hint->ev == ev && hint->g == g && hint->slot < eng->cap) {   /* where warm found it: still there? */
        vkeystate *c = eng->tab[hint->slot].ks;
        if (c && c->group == g && c->keylen == kl && vbytes_eq(c->key, k, kl)) {
            ks = c;
            eng->last_slot = hint->slot;
        }
    }
    if (!ks && !(ks = veng_key(eng, g, k, kl, 1))) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory for key state");
    uint64_t seq = ++ks->seq;
    ks->last_ts = ev->ts;
    eng->tab[eng->last_slot].last_s = ev->ts <= 0 ? 0 : ev->ts / 1000 >= UINT32_MAX ? UINT32_MAX : (uint32_t)(ev->ts / 1000);
    if (veng_mark_dirty(eng, ks) != 0) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    eng->st.events++;
    const vgroup *gr = &rs->groups[g];
    for (int i = 0; i < gr->nrules; i++) {
        const vrule *r = &rs->rules[gr->rules[i]];
        int where_holds = 0;
        if (r->pre) {   /* `where` (or a pattern's start) would be false: nothing to do */
            const vigil_value *v = r->pre_field < ev->nslots ? &ev->slots[r->pre_field] : NULL;
            if (v && v->type == VIGIL_T_STR && v->len == r->pre->len && vbytes_eq(v->u.str, r->pre->u.str, v->len))
                where_holds = r->pre_all;
            else if (!r->nsteps || !ks->rs[i] || !((const vpat *)ks->rs[i])->nruns) continue;   /* runs see every event */
        }
        vigil_status s = r->nsteps ? vnfa_feed(eng, r, ks, i, (vpat **)&ks->rs[i], ev, seq, hits)
                                   : vwin_feed(eng, r, ks, i, (vwin **)&ks->rs[i], ev, hits, where_holds);
        if (s != VIGIL_OK) return vigil_error_set(err, s, "rule '%s': %s", r->name, vigil_status_str(s));
    }
    return VIGIL_OK;
}

/* ---- warming: software prefetch over a batch ------------------------------- */

/* Most of the time of a fed event goes to cache misses on its key's slot,
 * state, rule states and window rings, which sit in random places of a large
 * heap. Touching them for a whole batch first, in stages (slots; then the
 * states they point to; then the rule states; then the rings and runs), lets
 * the memory system serve these misses in parallel instead of one after the
 * other (the batched-lookup technique of e.g. "Cuckoo++ hash tables",
 * Le Scouarnec 2018; DPDK's rte_hash bulk lookup). Only a hint: it changes
 * nothing observable. */
#define WARM_MAX 64

void vigil_engine_warm(vigil_engine *eng, vigil_event *const *evs, int n) {
    const vigil_ruleset *rs = eng->rs;
    while (n > 0) {
        int m = n < WARM_MAX ? n : WARM_MAX;
        uint64_t h[WARM_MAX * 4];
        int grp[WARM_MAX * 4];
        const vigil_event *who[WARM_MAX * 4];
        vkeystate *ks[WARM_MAX * 4];
        int nk = 0;
        size_t mask = eng->cap - 1;
        for (int i = 0; i < m; i++)
            for (int g = 0; g < rs->ngroups && g < 4; g++) {
                size_t kl;
                const char *k = vev_key(evs[i], g, &kl);
                if (!k) continue;
                h[nk] = veng_key_hash(g, k, kl);
                grp[nk] = g;
                who[nk] = evs[i];
                __builtin_prefetch(&eng->tab[h[nk] & mask]);
                nk++;
            }
        for (int j = 0; j < nk; j++) {   /* the state the home slot points to, when its hash matches */
            const vslot *sl = &eng->tab[h[j] & mask];
            if (sl->ks && sl->h == (uint32_t)h[j]) {
                __builtin_prefetch(sl->ks);
                __builtin_prefetch((const char *)sl->ks + 64);   /* its rule states' pointers, the key */
            }
        }
        for (int j = 0; j < nk; j++) {
            size_t kl = 0;
            const char *k = vev_key(who[j], grp[j], &kl);
            size_t slot = veng_ks_slot(eng, grp[j], k, kl, h[j]);
            ks[j] = eng->tab[slot].ks;
            if (ks[j]) eng->hint[hint_of(who[j], grp[j])] = (vhint){.ev = who[j], .slot = slot, .g = grp[j]};
        }
        for (int j = 0; j < nk; j++) {   /* a rule state's header may span two lines (a window's sums, counts) */
            if (!ks[j]) continue;
            const vgroup *gr = &rs->groups[grp[j]];
            for (int i = 0; i < gr->nrules; i++)
                if (ks[j]->rs[i]) {
                    __builtin_prefetch(ks[j]->rs[i]);
                    __builtin_prefetch((const char *)ks[j]->rs[i] + 64);
                }
        }
        for (int j = 0; j < nk; j++) {
            if (!ks[j]) continue;
            const vgroup *gr = &rs->groups[grp[j]];
            for (int i = 0; i < gr->nrules; i++) {
                const vrule *r = &rs->rules[gr->rules[i]];
                if (!ks[j]->rs[i]) continue;
                if (r->nsteps) vnfa_warm(ks[j]->rs[i]);
                else vwin_warm(ks[j]->rs[i], r);
            }
        }
        for (int j = 0; j < nk; j++) {   /* what the previous stage's lines point to: window_events' ends */
            if (!ks[j]) continue;
            const vgroup *gr = &rs->groups[grp[j]];
            for (int i = 0; i < gr->nrules; i++) {
                const vrule *r = &rs->rules[gr->rules[i]];
                if (ks[j]->rs[i] && !r->nsteps) vwin_warm_ids(ks[j]->rs[i], r);
            }
        }
        evs += m;
        n -= m;
    }
}

/* Match an event now: one key group, or (g < 0) every group it has a key for. */
static vigil_status process(vigil_engine *eng, vigil_event *ev, int g, vigil_error *err) {
    sweep(eng, 2);   /* idle-key expiry, a little at a time */
    if (eng->ngrave) veng_grave_drain(eng, 8);   /* what a hot reload left to free */
    if (g >= 0) return feed_group(eng, ev, g, scan(eng, ev), err);
    int any = 0;
    const uint64_t *hits = NULL;
    for (int gg = 0; gg < eng->rs->ngroups; gg++) {
        if (!vev_key(ev, gg, NULL)) continue;
        if (!any) hits = scan(eng, ev);   /* one Hyperscan scan per field per event */
        any = 1;
        vigil_status s = feed_group(eng, ev, gg, hits, err);
        if (s != VIGIL_OK) return s;
    }
    return VIGIL_OK;
}

static void held_push(vigil_engine *eng, vheld h) {
    size_t i = eng->nheld++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        const vheld *p = &eng->held[parent];
        if (p->ts < h.ts || (p->ts == h.ts && p->seq < h.seq)) break;
        eng->held[i] = *p;
        i = parent;
    }
    eng->held[i] = h;
}

static vheld held_pop(vigil_engine *eng) {
    vheld top = eng->held[0], last = eng->held[--eng->nheld];
    size_t i = 0, n = eng->nheld;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && (eng->held[c + 1].ts < eng->held[c].ts ||
                          (eng->held[c + 1].ts == eng->held[c].ts && eng->held[c + 1].seq < eng->held[c].seq)))
            c++;
        if (last.ts < eng->held[c].ts || (last.ts == eng->held[c].ts && last.seq < eng->held[c].seq)) break;
        eng->held[i] = eng->held[c];
        i = c;
    }
    if (n) eng->held[i] = last;
    return top;
}

/* Match the held events the watermark has passed, in (time, arrival) order.
 * Their errors cannot reach a caller any more: they are counted. */
static void release_held(vigil_engine *eng, int64_t wm) {
    while (eng->nheld && eng->held[0].ts <= wm) {
        vheld h = held_pop(eng);
        vigil_error err;
        if (process(eng, h.ev, h.group, &err) != VIGIL_OK) eng->st.errors++;
        vigil_event_release(h.ev);
    }
}

/* An event arrives: late check, watermark, then matched now or held. */
static vigil_status arrive(vigil_engine *eng, vigil_event *ev, int g, vigil_error *err) {
    if (g >= 0 && (g >= eng->rs->ngroups || !vev_key(ev, g, NULL))) {
        if (g >= eng->rs->ngroups) return vigil_error_set(err, VIGIL_EINVAL, "no key group %d", g);
        return vigil_error_set(err, VIGIL_ENOKEY, "event %s lacks key field '%s'", ev->id, eng->rs->groups[g].key);
    }
    if (g < 0) {
        int any = 0;
        for (int gg = 0; gg < eng->rs->ngroups && !any; gg++) any = vev_key(ev, gg, NULL) != NULL;
        if (!any && eng->rs->ngroups)
            return vigil_error_set(err, VIGIL_ENOKEY, "event %s has none of the key fields of the rules", ev->id);
    }
    if (eng->wm != INT64_MIN && ev->ts < eng->wm - eng->o.allowed_lateness_ms) {
        eng->st.late++;
        return vigil_error_set(err, VIGIL_ELATE, "event %s is late: its time is before the watermark minus allowed lateness", ev->id);
    }
    if (ev->ts > eng->max_seen || eng->max_seen == INT64_MIN) eng->max_seen = ev->ts;
    int64_t wm = eng->max_seen - eng->o.max_out_of_orderness_ms;
    if (eng->o.max_out_of_orderness_ms <= 0) {
        if (wm > eng->wm) eng->wm = wm;
        return process(eng, ev, g, err);
    }
    if (eng->nheld == eng->capheld) {
        size_t cap = eng->capheld ? eng->capheld * 2 : 1024;
        vheld *nh = realloc(eng->held, cap * sizeof *nh);
        if (!nh) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory for the out-of-order buffer");
        eng->held = nh;
        eng->capheld = cap;
    }
    vigil_event_retain(ev);
    held_push(eng, (vheld){.ts = ev->ts, .seq = eng->arrivals++, .ev = ev, .group = g});
    if (wm > eng->wm) eng->wm = wm;
    release_held(eng, eng->wm);
    if (eng->ntimers && eng->timers[0].when <= eng->wm) veng_fire_timers(eng, eng->wm);
    return VIGIL_OK;
}

vigil_status vigil_engine_feed_group(vigil_engine *eng, vigil_event *ev, int g, vigil_error *err) {
    return arrive(eng, ev, g, err);
}

vigil_status vigil_engine_feed(vigil_engine *eng, vigil_event *ev, vigil_error *err) {
    return arrive(eng, ev, -1, err);
}

void vigil_engine_advance(vigil_engine *eng, int64_t wm) {
    if (wm > eng->wm) eng->wm = wm;
    release_held(eng, wm);
    veng_fire_timers(eng, wm);
}

int64_t vigil_engine_watermark(const vigil_engine *eng) { return eng->wm; }

void vigil_engine_get_stats(const vigil_engine *eng, vigil_engine_stats *st) {
    *st = eng->st;
    st->keys = eng->nkeys;
    st->buffered = eng->nheld;
    uint64_t runs = 0;
    for (size_t i = 0; i < eng->cap; i++) {
        vkeystate *ks = eng->tab[i].ks;
        if (!ks) continue;
        const vgroup *g = &eng->rs->groups[ks->group];
        for (int j = 0; j < g->nrules; j++)
            if (eng->rs->rules[g->rules[j]].nsteps && ks->rs[j])   /* held matches are not partial */
                runs += ((vpat *)ks->rs[j])->nruns - ((vpat *)ks->rs[j])->nheld;
    }
    st->runs = runs;
}

uint64_t vigil_engine_rule_alerts(const vigil_engine *eng, int rule) {
    return rule >= 0 && rule < eng->rs->nrules ? eng->rule_alerts[rule] : 0;
}

/* ---- alerts ----------------------------------------------------------------- */

/* The alert's id: 16 bytes of SHA-256 over its identity, in hex; with the
 * engine's digest context, made once (EVP_MD_CTX_new per alert cost most). */
static void alert_id(vigil_engine *eng, const vigil_alert *a, char out[33]) {
    static const char hex[] = "0123456789abcdef";
    if (!eng->mdctx) eng->mdctx = EVP_MD_CTX_new();
    EVP_MD_CTX *ctx = eng->mdctx ? eng->mdctx : EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE] = {0};
    unsigned int dl = 0;
    char ver[24], ws[48];
    snprintf(ver, sizeof ver, "%d", a->rule_version);
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, a->rule, strlen(a->rule) + 1);   /* with its NUL */
    EVP_DigestUpdate(ctx, ver, strlen(ver) + 1);
    EVP_DigestUpdate(ctx, a->key, strlen(a->key));
    for (int i = 0; i < a->nevents; i++) {
        EVP_DigestUpdate(ctx, "", 1);
        EVP_DigestUpdate(ctx, a->events[i], strlen(a->events[i]));
    }
    if (a->has_window) {
        int n = snprintf(ws, sizeof ws, "%lld", (long long)a->window_start);
        EVP_DigestUpdate(ctx, "", 1);
        EVP_DigestUpdate(ctx, ws, (size_t)n);
        n = snprintf(ws, sizeof ws, "%lld", (long long)a->window_end);
        EVP_DigestUpdate(ctx, "", 1);
        EVP_DigestUpdate(ctx, ws, (size_t)n);
    }
    EVP_DigestFinal_ex(ctx, d, &dl);
    if (ctx != eng->mdctx) EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 16; i++) out[2 * i] = hex[d[i] >> 4], out[2 * i + 1] = hex[d[i] & 15];
    out[32] = '\0';
}

typedef struct wev { const char *const *ids; int n, truncated; } wev;   /* window_events */
static void emit_common(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs, int nev,
                        const char *details_json, int64_t ts, int truncated, const int64_t *win, const wev *we);

void veng_emit(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs, int nev,
               const char *details_json, int64_t ts) {
    veng_emit_match(eng, r, ks, evs, NULL, nev, details_json, ts);
}

int veng_host_pred(const veval *c, int fn) {
    vigil_engine *eng = c->eng;
    if (!eng || !eng->host) return 0;
    const vrun *run = c->run;
    vigil_match_view m = {.rs = eng->rs, .rule = (int)(c->rule - eng->rs->rules),
                          .events = run ? run->ev : NULL, .steps = run ? run->evstep : NULL,
                          .n = run ? (int)run->nev : 0};
    int v = eng->rs->host.pred(eng->host, fn, c->ev, &m);
    if (v < 0) eng->st.function_errors++;
    return v > 0;
}

/* The built-in details with the members of the alert function's result
 * added (the function's win on a clash). NULL: keep the built-in ones. */
static char *alert_details(vigil_engine *eng, const vrule *r, vigil_event *const *evs, const uint8_t *steps,
                           int nev, const char *builtin) {
    vigil_match_view m = {.rs = eng->rs, .rule = (int)(r - eng->rs->rules), .events = evs, .steps = steps,
                          .n = nev};
    char *own = eng->rs->host.alert(eng->host, r->alert_fn, &m);
    if (!own) {
        eng->st.function_errors++;
        return NULL;
    }
    cJSON *base = cJSON_Parse(builtin ? builtin : "{}"), *add = cJSON_Parse(own);
    free(own);
    char *out = NULL;
    if (base && cJSON_IsObject(add)) {
        cJSON *it = add->child;
        while (it) {
            cJSON *next = it->next;
            cJSON_DetachItemViaPointer(add, it);
            cJSON_DeleteItemFromObjectCaseSensitive(base, it->string);   /* the function's member wins */
            cJSON_AddItemToObject(base, it->string, it);
            it = next;
        }
        out = cJSON_PrintUnformatted(base);
    }
    if (!out) eng->st.function_errors++;
    cJSON_Delete(base);
    cJSON_Delete(add);
    return out;
}

void veng_emit_match(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs,
                     const uint8_t *steps, int nev, const char *details_json, int64_t ts) {
    char *det = r->alert_fn && eng->host ? alert_details(eng, r, evs, steps, nev, details_json) : NULL;
    emit_common(eng, r, ks, evs, nev, det ? det : details_json, ts, 0, NULL, NULL);
    free(det);
}

void veng_emit_sliding(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *ev,
                       const char *details_json, const char *const *wids, int nwids, int wtrunc) {
    char *det = r->alert_fn && eng->host ? alert_details(eng, r, &ev, NULL, 1, details_json) : NULL;
    wev we = {.ids = wids, .n = nwids, .truncated = wtrunc};
    emit_common(eng, r, ks, &ev, 1, det ? det : details_json, INT64_MIN, 0, NULL, &we);
    free(det);
}

void veng_emit_window(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs, int nev,
                      int truncated, const char *details_json, int64_t start, int64_t end) {
    int64_t win[2] = {start, end};
    char *det = r->alert_fn && eng->host ? alert_details(eng, r, evs, NULL, nev, details_json) : NULL;
    wev we = {.ids = NULL, .n = -1, .truncated = 0};   /* -1: the alert's own events */
    emit_common(eng, r, ks, evs, nev, det ? det : details_json, INT64_MIN, truncated, win, &we);
    free(det);
}

static void emit_common(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs, int nev,
                        const char *details_json, int64_t ts, int truncated, const int64_t *win, const wev *we) {
    const char *ids_stack[128];
    const char **ids = ids_stack;
    int nids = nev;
    if ((uint32_t)nids > eng->o.max_alert_events) {
        nids = (int)eng->o.max_alert_events;
        truncated = 1;
    }
    if (nids > 128 && !(ids = malloc((size_t)nids * sizeof *ids))) return;
    for (int i = 0; i < nids; i++) ids[i] = evs[i]->id;
    vigil_alert a;
    memset(&a, 0, sizeof a);
    a.rule = r->name;
    a.rule_version = r->version;
    a.severity = r->severity;
    a.mode = r->mode;
    a.key_field = r->key;
    a.key = ks->key;
    a.ts = ts == INT64_MIN ? evs[nev - 1]->ts : ts;
    a.events = ids;
    a.nevents = nids;
    a.events_truncated = truncated;
    a.event = evs[nev - 1]->id;
    a.evidence = evs;
    a.nevidence = nev < (int)eng->o.max_evidence ? nev : (int)eng->o.max_evidence;
    a.details_json = details_json ? details_json : "{}";
    if (win) {
        a.has_window = 1;
        a.window_start = win[0];
        a.window_end = win[1];
    }
    if (we) {
        a.is_window = 1;
        a.window_events = we->n < 0 ? ids : we->ids;
        a.nwindow_events = we->n < 0 ? nids : we->n;
        a.window_events_truncated = we->n < 0 ? truncated : we->truncated;
    }
    alert_id(eng, &a, a.id);   /* window_events are not part of the id */
    eng->st.alerts++;
    eng->rule_alerts[r - eng->rs->rules]++;
    if (eng->fn) eng->fn(eng->ud, &a);
    if (ids != ids_stack) free(ids);
}

char *vigil_alert_to_json(const vigil_alert *a, int64_t detected_ms) {
    char ts[40], det[40];
    vigil_time_format_rfc3339(a->ts, ts, sizeof ts);
    vigil_time_format_rfc3339(detected_ms, det, sizeof det);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "id", a->id);
    cJSON_AddStringToObject(o, "rule", a->rule);
    cJSON_AddNumberToObject(o, "rule_version", a->rule_version);
    cJSON_AddStringToObject(o, "severity", vigil_severity_str(a->severity));
    cJSON_AddStringToObject(o, "mode", vigil_mode_str(a->mode));
    cJSON_AddStringToObject(o, "key_field", a->key_field);
    cJSON_AddStringToObject(o, "key", a->key);
    cJSON_AddStringToObject(o, "ts", ts);
    cJSON_AddStringToObject(o, "detected_at", det);
    if (a->has_window) {
        vigil_time_format_rfc3339(a->window_start, ts, sizeof ts);
        cJSON_AddStringToObject(o, "window_start", ts);
        vigil_time_format_rfc3339(a->window_end, ts, sizeof ts);
        cJSON_AddStringToObject(o, "window_end", ts);
    }
    cJSON *evs = cJSON_AddArrayToObject(o, "events");
    for (int i = 0; evs && i < a->nevents; i++) cJSON_AddItemToArray(evs, cJSON_CreateString(a->events[i]));
    if (a->events_truncated) cJSON_AddTrueToObject(o, "events_truncated");
    if (a->is_window) {
        cJSON *wa = cJSON_AddArrayToObject(o, "window_events");
        for (int i = 0; wa && i < a->nwindow_events; i++)
            cJSON_AddItemToArray(wa, cJSON_CreateString(a->window_events[i]));
        if (a->window_events_truncated) cJSON_AddTrueToObject(o, "window_events_truncated");
    }
    cJSON_AddStringToObject(o, "event", a->event);
    cJSON *evd = cJSON_AddArrayToObject(o, "evidence");
    for (int i = 0; evd && i < a->nevidence; i++) {
        const char *j = vigil_event_json(a->evidence[i], NULL);
        cJSON_AddItemToArray(evd, cJSON_CreateRaw(j));
    }
    cJSON_AddItemToObject(o, "details", cJSON_CreateRaw(a->details_json));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- store batches ------------------------------------------------------------ */

typedef struct pf_ctx {
    vigil_engine *eng;
    vigil_store_key *keys;
    vigil_status st;
} pf_ctx;

static void pf_found(void *ud, int i, const unsigned char *data, size_t len) {
    pf_ctx *c = ud;
    vigil_store_key *k = &c->keys[i];
    vkeystate *ks = veng_key(c->eng, k->group, k->key, k->keylen, 1);
    if (!ks) {
        c->st = VIGIL_ENOMEM;
        return;
    }
    if (vcodec_decode(c->eng, ks, data, len) != VIGIL_OK) c->st = VIGIL_ESTORE;
    else veng_rearm(c->eng, ks);
    ks->dirty = 0;
}

vigil_status vigil_engine_prefetch(vigil_engine *eng, vigil_event *const *evs, const int *groups, int n,
                                   vigil_error *err) {
    if (!eng->store || n <= 0) return VIGIL_OK;
    vigil_store_key *keys = malloc((size_t)n * sizeof *keys);
    if (!keys) return VIGIL_ENOMEM;
    int nk = 0;
    for (int i = 0; i < n; i++) {
        int g = groups ? groups[i] : -1;
        for (int gg = 0; gg < eng->rs->ngroups; gg++) {
            if (g >= 0 && gg != g) continue;
            size_t kl;
            const char *k = vev_key(evs[i], gg, &kl);
            if (!k || veng_key(eng, gg, k, kl, 0)) continue;
            int dup = 0;
            for (int j = 0; j < nk && !dup; j++)
                dup = keys[j].group == gg && keys[j].keylen == kl && memcmp(keys[j].key, k, kl) == 0;
            if (dup) continue;
            if (g < 0 && nk == n) break;   /* replay-style: at most n keys per call */
            keys[nk++] = (vigil_store_key){.group = gg, .group_name = eng->rs->groups[gg].key, .key = k, .keylen = kl};
            if (nk == n) break;
        }
    }
    pf_ctx c = {.eng = eng, .keys = keys, .st = VIGIL_OK};
    vigil_status s = nk ? eng->store->load(eng->store, keys, nk, pf_found, &c, err) : VIGIL_OK;
    free(keys);
    if (s == VIGIL_OK && c.st != VIGIL_OK)
        s = vigil_error_set(err, c.st, "could not decode a stored key state record");
    return s;
}

vigil_status vigil_engine_commit_begin(vigil_engine *eng, const vigil_store_record **recs, size_t *n,
                                       vigil_error *err) {
    *recs = NULL;
    *n = 0;
    size_t nd = eng->ndirty;
    if (!nd) return VIGIL_OK;
    vigil_status s = vcodec_encode_dirty(eng);
    if (s != VIGIL_OK) return vigil_error_set(err, s, "cannot encode the state of %zu keys", nd);
    *recs = eng->crecs;
    *n = nd;
    return VIGIL_OK;
}

void vigil_engine_commit_end(vigil_engine *eng, int saved) {
    if (saved) {   /* on failure the keys stay dirty: the next commit retries them */
        for (size_t i = 0; i < eng->ndirty; i++) eng->dirty[i]->dirty = 0;
        eng->ndirty = 0;
    }
    vcodec_commit_free(eng, 0);
}

vigil_status vigil_engine_commit(vigil_engine *eng, vigil_error *err) {
    if (!eng->store) {
        vigil_engine_commit_end(eng, 1);
        return VIGIL_OK;
    }
    const vigil_store_record *recs;
    size_t n;
    vigil_status s = vigil_engine_commit_begin(eng, &recs, &n, err);
    if (s == VIGIL_OK && n) s = eng->store->save(eng->store, recs, (int)n, err);
    vigil_engine_commit_end(eng, s == VIGIL_OK);
    return s;
}

vigil_status vigil_engine_foreach_state(vigil_engine *eng, vigil_state_fn fn, void *ud, vigil_error *err) {
    vcodec_buf b = {0}, sc = {0};   /* the record; the encoder's scratch */
    for (size_t i = 0; i < eng->cap; i++) {
        vkeystate *ks = eng->tab[i].ks;
        if (!ks) continue;
        vigil_status s = vcodec_encode(eng, ks, &b, &sc);
        if (s != VIGIL_OK) {
            free(b.p);
            free(sc.p);
            return vigil_error_set(err, s, "cannot encode the state of a key");
        }
        vigil_store_record r = {.k = {.group = ks->group, .group_name = eng->rs->groups[ks->group].key,
                                      .key = ks->key, .keylen = ks->keylen},
                                .data = b.p, .len = b.len, .ttl_ms = vcodec_ttl(eng, ks)};
        int stop = fn(ud, &r);
        b.len = 0;   /* the buffer is reused for the next key */
        if (stop) {
            free(b.p);
            free(sc.p);
            return vigil_error_set(err, VIGIL_EIO, "stopped by the caller");
        }
    }
    free(b.p);
    free(sc.p);
    return VIGIL_OK;
}

vigil_status vigil_engine_load_state(vigil_engine *eng, int g, const char *key, size_t keylen,
                                     const unsigned char *data, size_t len, vigil_error *err) {
    if (g < 0 || g >= eng->rs->ngroups) return vigil_error_set(err, VIGIL_EINVAL, "no key group %d", g);
    vkeystate *ks = veng_key(eng, g, key, keylen, 1);
    if (!ks) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory for a key");
    if (vcodec_decode(eng, ks, data, len) != VIGIL_OK)
        return vigil_error_set(err, VIGIL_ESTORE, "bad state record for %s key '%.*s'", eng->rs->groups[g].key,
                               (int)(keylen > 64 ? 64 : keylen), key);
    veng_rearm(eng, ks);
    ks->dirty = 0;
    return VIGIL_OK;
}

/* codec.c — encoding a key's state into a versioned byte record and back.
 *
 * The record is what the Redis store keeps per key (and what a memory-store
 * snapshot will hold). Layout, little-endian, version 6 (versions 1 to 5
 * are still read: version 1 lacks the window's precision and the bucket
 * counts; before version 3 the run's held byte was `negated`, always 0 in
 * version 2, and a v1 run with it set is dropped; before version 4 an entry
 * had no length, so a window entry that no rule takes ends the record's
 * use; before version 5 a text aggregate's value was its text alone, typed
 * on load as the text reads, vwin_text_untyped; version 6 adds the entry
 * kind 3):
 *   "VGS" 6 | u64 seq | i64 last_ts | u32 nevents | events | u32 nrules | rules
 *   event: str id | i64 ts | str json            (shared by runs: stored once)
 *   rule:  str name | u32 version | u8 kind(1 pattern, 2 window, 3 window ids) | u32 body length (v4) | body
 *   window ids (v6; after its rule's window entry, only when it has some: a
 *     sliding window's newest counted events, an alert's window_events):
 *     u32 n | n × str id  (oldest first)
 *   pattern: i64 last_alert | u8 alerted | u32 nruns | runs
 *     run: i32 step | u32 count | u8 closed | u8 held (v3; before: negated) | [u8 from | u8 noproceed | u8 noskip (v2) |] i64 start_ts | u64 start_seq |
 *          u64 last_seq | u32 nev | nev × (u32 event index | u8 step | u64 seq)
 *   window: i64 last_alert | u8 alerted | u32 nagg | i64 precision | u32 n | n × entry |
 *           u8 open | i64 win_start | i64 win_end | u64 total | u32 nevs |
 *           nevs × u32 event index | u8 has_last [| u32 event index] | i64 closed_end (v2) |
 *           u32 nretained | nretained × retained window (v5, put_retained)
 *     entry: i64 ts | u32 mask | per set bit: f64, or str for text aggregates
 *            (v5: a type tag, 's', 'n' or 'b', then the value's text)
 *            [| per set bit: u32 events in the bucket, when precision > 0]
 *   str: u32 len | bytes
 * Rules are matched by name and version on decode: an entry goes to the
 * rule of that version, or to a later version that inherits its state
 * (lineage.c); a version that inherits nothing starts empty, and the old
 * version's entry is dropped unless that version still runs (draining). */
#include <stdlib.h>
#include <string.h>
#include "codec.h"


/* Room for n more bytes: 0, or -1 when out of memory (b unchanged). */
static int reserve(vcodec_buf *b, size_t n) {
    if (b->len + n <= b->cap) return 0;
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n) cap *= 2;
    unsigned char *np = realloc(b->p, cap);
    if (!np) return -1;
    b->p = np;
    b->cap = cap;
    return 0;
}

static int put(vcodec_buf *b, const void *p, size_t n) {
    if (reserve(b, n)) return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}
#define PUT(b, v) put((b), &(v), sizeof(v))
static int put_str(vcodec_buf *b, const char *s, size_t n) {
    uint32_t l = (uint32_t)n;
    return PUT(b, l) || put(b, s, n);
}

typedef struct evtab { vigil_event **v; uint32_t n, cap; } evtab;

static int ev_index(evtab *t, vigil_event *e, uint32_t *idx) {
    for (uint32_t i = 0; i < t->n; i++)
        if (t->v[i] == e) {
            *idx = i;
            return 0;
        }
    if (t->n == t->cap) {
        uint32_t cap = t->cap ? t->cap * 2 : 16;
        vigil_event **nv = realloc(t->v, cap * sizeof *nv);
        if (!nv) return -1;
        t->v = nv;
        t->cap = cap;
    }
    t->v[t->n] = e;
    *idx = t->n++;
    return 0;
}

/* v4: the u32 before `start` gets the length of what follows it. */
static void put_len(vcodec_buf *b, size_t start) {
    uint32_t l = (uint32_t)(b->len - start);
    memcpy(b->p + start - sizeof l, &l, sizeof l);
}

static int uses_text(const vagg *a) { return a->is_new || a->kind == VIGIL_AGG_DISTINCT; }

/* One retained closed window (tumbling/session: no buckets):
 *   i64 win_start | i64 win_end | u64 total | u32 n | n × entry |
 *   u32 nevs | nevs × u32 event index | u8 has_last [| u32 event index] */
static int put_retained(vcodec_buf *b, evtab *et, const vrule *r, const vwin *w) {
    const vwtail *t = vwin_tail(w, r);
    uint32_t n = w->n, idx;
    int bad = PUT(b, t->win_start) || PUT(b, w->win_end) || PUT(b, t->total) || PUT(b, n);
    for (uint32_t j = 0; j < n && !bad; j++) {
        const ventry *e = vwin_at(w, r, j);
        bad |= PUT(b, e->ts) || PUT(b, e->mask);
        for (int k = 0; k < r->nagg && !bad; k++) {
            if (!(e->mask >> k & 1)) continue;
            if (uses_text(&r->aggs[k])) bad |= put_str(b, e->v[k].str, strlen(e->v[k].str));
            else bad |= PUT(b, e->v[k].num);
        }
    }
    bad |= PUT(b, t->nevs);
    for (uint32_t j = 0; j < t->nevs && !bad; j++) bad |= ev_index(et, t->evs[j], &idx) || PUT(b, idx);
    uint8_t has_last = t->last != NULL;
    bad |= PUT(b, has_last);
    if (has_last && !bad) bad |= ev_index(et, t->last, &idx) || PUT(b, idx);
    return bad;
}

static int any_text(const vrule *r) {
    for (int k = 0; k < r->nagg; k++)
        if (uses_text(&r->aggs[k])) return 1;
    return 0;
}

/* A window's n entries when no aggregate is text (most rules): room for
 * all of them made once, then written without a bounds check per field
 * (the same bytes as the general loop below, which a commit of ~1,000 keys
 * with 30-day windows ran ~60 times per key: issue 16). 0: written; -1:
 * out of memory, nothing written. */
static int put_entries_fast(vcodec_buf *b, const vwin *w, const vrule *r, uint32_t n) {
    int prec = r->precision_ms != 0, nagg = r->nagg;
    size_t most = (size_t)n * (sizeof(int64_t) + sizeof(uint32_t) + (size_t)nagg * (sizeof(double) + sizeof(uint32_t)));
    if (reserve(b, most)) return -1;
    unsigned char *o = b->p + b->len;
    for (uint32_t j = 0; j < n; j++) {
        const ventry *e = vwin_at(w, r, j);
        memcpy(o, &e->ts, sizeof e->ts);
        o += sizeof e->ts;
        memcpy(o, &e->mask, sizeof e->mask);
        o += sizeof e->mask;
        for (int k = 0; k < nagg; k++)
            if (e->mask >> k & 1) {
                memcpy(o, &e->v[k].num, sizeof(double));
                o += sizeof(double);
            }
        if (prec) {
            const uint32_t *ec = (const uint32_t *)(uintptr_t)&e->v[nagg];
            for (int k = 0; k < nagg; k++)
                if (e->mask >> k & 1) {
                    memcpy(o, &ec[k], sizeof(uint32_t));
                    o += sizeof(uint32_t);
                }
        }
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

vigil_status vcodec_encode(const vigil_engine *eng, const vkeystate *ks, vcodec_buf *out, vcodec_buf *scratch) {
    const vigil_ruleset *rs = eng->rs;
    const vgroup *g = &rs->groups[ks->group];
    vcodec_buf own = {0}, body = scratch ? *scratch : own;
    body.len = 0;
    evtab et = {0};
    int bad = 0;
    uint32_t nr = (uint32_t)g->nrules, blen0 = 0;
    bad |= PUT(&body, nr);
    for (int i = 0; i < g->nrules && !bad; i++) {
        const vrule *r = &rs->rules[g->rules[i]];
        uint32_t ver = (uint32_t)r->version;
        bad |= put_str(&body, r->name, strlen(r->name)) || PUT(&body, ver);
        if (r->nsteps) {
            const vpat *p = ks->rs[i];
            uint8_t kind = 1, alerted = p ? (uint8_t)p->alerted : 0;
            int64_t la = p ? p->last_alert_ts : 0;
            uint32_t n = p ? p->nruns : 0;
            bad |= PUT(&body, kind) || PUT(&body, blen0);
            size_t bstart = body.len;
            bad |= PUT(&body, la) || PUT(&body, alerted) || PUT(&body, n);
            for (uint32_t j = 0; j < n && !bad; j++) {
                const vrun *run = &p->runs[j];
                bad |= PUT(&body, run->step) || PUT(&body, run->count) || PUT(&body, run->closed) || PUT(&body, run->held) || PUT(&body, run->from) || PUT(&body, run->noproceed) || PUT(&body, run->noskip) ||
                       PUT(&body, run->start_ts) || PUT(&body, run->start_seq) || PUT(&body, run->last_seq) ||
                       PUT(&body, run->nev);
                for (uint32_t k = 0; k < run->nev && !bad; k++) {
                    uint32_t idx;
                    bad |= ev_index(&et, run->ev[k], &idx) || PUT(&body, idx) || PUT(&body, run->evstep[k]) ||
                           PUT(&body, run->evseq[k]);
                }
            }
            if (!bad) put_len(&body, bstart);
        } else {
            const vwin *w = ks->rs[i];
            uint8_t kind = 2, alerted = w ? (uint8_t)w->alerted : 0;
            int64_t la = w ? w->last_alert_ts : 0;
            uint32_t nagg = (uint32_t)r->nagg, n = w ? w->n : 0;
            int64_t prec = r->precision_ms;
            bad |= PUT(&body, kind) || PUT(&body, blen0);
            size_t bstart = body.len;
            bad |= PUT(&body, la) || PUT(&body, alerted) || PUT(&body, nagg) || PUT(&body, prec) || PUT(&body, n);
            if (!bad && n && !any_text(r) && !put_entries_fast(&body, w, r, n)) n = 0;   /* written */
            for (uint32_t j = 0; j < n && !bad; j++) {
                const ventry *e = vwin_at(w, r, j);
                bad |= PUT(&body, e->ts) || PUT(&body, e->mask);
                for (int k = 0; k < r->nagg && !bad; k++) {
                    if (!(e->mask >> k & 1)) continue;
                    if (uses_text(&r->aggs[k])) bad |= put_str(&body, e->v[k].str, strlen(e->v[k].str));
                    else bad |= PUT(&body, e->v[k].num);
                }
                const uint32_t *ec = (const uint32_t *)(uintptr_t)&e->v[r->nagg];
                for (int k = 0; prec && k < r->nagg && !bad; k++)
                    if (e->mask >> k & 1) bad |= PUT(&body, ec[k]);
            }
            /* tumbling/session: the open window and its kept events (a
             * sliding window writes what an empty one has: zeros, and
             * INT64_MIN for closed_end) */
            const vwtail *t = w ? vwin_tail(w, r) : NULL;
            uint8_t open = w ? (uint8_t)w->open : 0, has_last = t && t->last;
            int64_t ws = t ? t->win_start : 0, we = t ? w->win_end : 0;   /* sliding: nkept is not stored */
            uint64_t total = t ? t->total : 0;
            uint32_t nevs = t ? t->nevs : 0, idx = 0;
            bad |= PUT(&body, open) || PUT(&body, ws) || PUT(&body, we) || PUT(&body, total) || PUT(&body, nevs);
            for (uint32_t j = 0; j < nevs && !bad; j++) bad |= ev_index(&et, t->evs[j], &idx) || PUT(&body, idx);
            bad |= PUT(&body, has_last);
            if (has_last && !bad) bad |= ev_index(&et, t->last, &idx) || PUT(&body, idx);
            int64_t ce = t ? t->closed_end : INT64_MIN;
            bad |= PUT(&body, ce);
            uint32_t nret = 0;   /* v5: the closed windows kept for stragglers */
            for (const vwin *rw = t ? t->retained : NULL; rw; rw = vwin_tail(rw, r)->retained) nret++;
            bad |= PUT(&body, nret);
            for (const vwin *rw = t ? t->retained : NULL; rw && !bad; rw = vwin_tail(rw, r)->retained)
                bad |= put_retained(&body, &et, r, rw);
            if (!bad) put_len(&body, bstart);
            uintptr_t *idp = w ? vwin_ids((vwin *)(uintptr_t)w, r) : NULL;
            vwids_view ids;
            vwin_ids_view(idp ? *idp : 0, &ids);
            if (ids.n && !bad) {   /* kind 3: the window's ids */
                uint8_t k3 = 3;
                bad |= put_str(&body, r->name, strlen(r->name)) || PUT(&body, ver) || PUT(&body, k3) ||
                       PUT(&body, blen0);
                size_t istart = body.len;
                uint32_t nids = ids.n;
                bad |= PUT(&body, nids);
                for (size_t off = 0; off < ids.used && !bad;) {
                    uint16_t l;
                    memcpy(&l, ids.data + off, sizeof l);
                    bad |= put_str(&body, (const char *)ids.data + off + sizeof l, l);
                    off += sizeof l + l;
                }
                if (!bad) put_len(&body, istart);
                nr++;
            }
        }
    }
    if (!bad) memcpy(body.p, &nr, sizeof nr);   /* the entries, kind 3 included */
    bad |= put(out, "VGS\6", 4) || PUT(out, ks->seq) || PUT(out, ks->last_ts) || PUT(out, et.n);
    for (uint32_t i = 0; i < et.n && !bad; i++) {
        size_t jl;
        const char *j = vigil_event_json(et.v[i], &jl);
        bad |= put_str(out, et.v[i]->id, strlen(et.v[i]->id)) || PUT(out, et.v[i]->ts) || put_str(out, j, jl);
    }
    bad |= put(out, body.p, body.len);
    if (scratch)
        *scratch = body;   /* kept, grown, for the next record */
    else
        free(body.p);
    free(et.v);
    return bad ? VIGIL_ENOMEM : VIGIL_OK;
}

#define COMMIT_KEEP ((size_t)64 << 20)   /* a buffer above this is not kept after its commit */

void vcodec_commit_free(vigil_engine *eng, int all) {
    for (int i = 0; eng->cbufs && i < 2; i++)
        if (all || eng->cbufs[i].cap > COMMIT_KEEP) {
            free(eng->cbufs[i].p);
            eng->cbufs[i] = (vcodec_buf){0};
        }
    if (all || eng->capcrecs * sizeof *eng->crecs > COMMIT_KEEP) {
        free(eng->crecs);
        eng->crecs = NULL;
        eng->capcrecs = 0;
    }
    if (all) {
        free(eng->cbufs);
        eng->cbufs = NULL;
    }
    eng->ncrecs = 0;
}

vigil_status vcodec_encode_dirty(vigil_engine *eng) {
    size_t nd = eng->ndirty;
    eng->ncrecs = 0;
    if (!eng->cbufs && !(eng->cbufs = calloc(2, sizeof *eng->cbufs))) return VIGIL_ENOMEM;
    if (nd > eng->capcrecs) {
        vigil_store_record *n = realloc(eng->crecs, nd * sizeof *n);
        if (!n) return VIGIL_ENOMEM;
        eng->crecs = n;
        eng->capcrecs = nd;
    }
    vcodec_buf *all = &eng->cbufs[0];
    all->len = 0;
    for (size_t i = 0; i < nd; i++) {   /* offsets first: the buffer moves while it grows */
        vkeystate *ks = eng->dirty[i];
        size_t start = all->len;
        vigil_status s = vcodec_encode(eng, ks, all, &eng->cbufs[1]);
        if (s != VIGIL_OK) {
            vcodec_commit_free(eng, 0);
            return s;
        }
        eng->crecs[i] = (vigil_store_record){.k = {.group = ks->group, .group_name = eng->rs->groups[ks->group].key,
                                                   .key = ks->key, .keylen = ks->keylen},
                                             .data = (const unsigned char *)(uintptr_t)start, .len = all->len - start,
                                             .ttl_ms = vcodec_ttl(eng, ks)};
    }
    for (size_t i = 0; i < nd; i++) eng->crecs[i].data = all->p + (uintptr_t)eng->crecs[i].data;
    eng->ncrecs = nd;
    return VIGIL_OK;
}

typedef struct rd { const unsigned char *p; size_t len, off; int bad; } rd;
static void get(rd *r, void *v, size_t n) {
    if (r->bad || r->len - r->off < n) {
        r->bad = 1;
        memset(v, 0, n);
        return;
    }
    memcpy(v, r->p + r->off, n);
    r->off += n;
}
#define GET(r, v) get((r), &(v), sizeof(v))
static const char *get_str(rd *r, uint32_t *n) {
    GET(r, *n);
    if (r->bad || r->len - r->off < *n) {
        r->bad = 1;
        return NULL;
    }
    const char *s = (const char *)r->p + r->off;
    r->off += *n;
    return s;
}

/* A sliding ring loaded from a record written before stragglers were put
 * in their place may be out of event-time order: sort it (stable). */
static void order_ring(vwin *w, const vrule *r) {
    size_t es = vwin_entry_size(r);
    unsigned char tmp[1024];
    if (r->window != VIGIL_WIN_SLIDING || es > sizeof tmp) return;
    for (uint32_t i = 1; i < w->n; i++) {
        if (vwin_at(w, r, i - 1)->ts <= vwin_at(w, r, i)->ts) continue;
        memcpy(tmp, vwin_at(w, r, i), es);
        uint32_t j = i;
        for (; j > 0 && vwin_at(w, r, j - 1)->ts > ((ventry *)(void *)tmp)->ts; j--) memcpy(vwin_at(w, r, j), vwin_at(w, r, j - 1), es);
        memcpy(vwin_at(w, r, j), tmp, es);
    }
    w->head_ts = w->n > w->nkept ? vwin_at(w, r, w->nkept)->ts : INT64_MAX;
}

/* A retained window (put_retained) into *out (NULL when r->bad). */
static vigil_status get_retained(rd *r, const vrule *rule, vigil_event **evs, uint32_t nev, size_t len, vwin **out) {
    int64_t ws, we;
    uint64_t total;
    uint32_t n;
    *out = NULL;
    GET(r, ws);
    GET(r, we);
    GET(r, total);
    GET(r, n);
    if (r->bad || n > len) {
        r->bad = 1;
        return VIGIL_OK;
    }
    vwin *w = vwin_new(rule);
    if (!w || vwin_reserve(w, rule, n) != 0) {
        vwin_free(w, rule);
        return VIGIL_ENOMEM;
    }
    *out = w;
    vwtail *t = vwin_tail(w, rule);
    t->win_start = ws;
    w->win_end = we;
    t->total = total;
    for (uint32_t j = 0; j < n && !r->bad; j++) {
        ventry *e = vwin_at(w, rule, j);
        uint32_t mask;
        GET(r, e->ts);
        GET(r, mask);
        e->mask = 0;
        for (int k = 0; k < rule->nagg && !r->bad; k++) {
            if (!(mask >> k & 1)) continue;
            if (uses_text(&rule->aggs[k])) {
                uint32_t sl;
                const char *sv = get_str(r, &sl);
                if (r->bad || !sl || !(e->v[k].str = strndup(sv, sl))) {
                    r->bad = 1;
                    break;
                }
            } else {
                GET(r, e->v[k].num);
                vwin_sum(w)[k] += e->v[k].num;
            }
            e->mask |= 1u << k;
            vwin_cnt(w, rule)[k]++;
        }
        w->n++;
    }
    uint32_t nevs, idx;
    uint8_t has_last;
    GET(r, nevs);
    if (r->bad || nevs > len || (nevs && !(t->evs = calloc(nevs, sizeof *t->evs)))) {
        if (!r->bad && nevs <= len) return VIGIL_ENOMEM;
        r->bad = 1;
        return VIGIL_OK;
    }
    for (uint32_t j = 0; j < nevs && !r->bad; j++) {
        GET(r, idx);
        if (idx >= nev || !evs[idx]) r->bad = 1;
        else vigil_event_retain(t->evs[t->nevs++] = evs[idx]);
    }
    GET(r, has_last);
    if (has_last) {
        GET(r, idx);
        if (idx >= nev || !evs[idx]) r->bad = 1;
        else vigil_event_retain(t->last = evs[idx]);
    }
    return VIGIL_OK;
}

static void clear_rule_state(vigil_engine *eng, vkeystate *ks) {
    const vgroup *g = &eng->rs->groups[ks->group];
    for (int i = 0; i < g->nrules; i++) {
        const vrule *r = &eng->rs->rules[g->rules[i]];
        if (r->nsteps) vnfa_free(ks->rs[i]);
        else vwin_free(ks->rs[i], r);
        ks->rs[i] = NULL;
    }
}

vigil_status vcodec_decode(vigil_engine *eng, vkeystate *ks, const unsigned char *p, size_t len) {
    const vigil_ruleset *rs = eng->rs;
    const vgroup *g = &rs->groups[ks->group];
    rd r = {.p = p, .len = len};
    char magic[4];
    get(&r, magic, 4);
    if (r.bad || memcmp(magic, "VGS", 3) != 0 || magic[3] < 1 || magic[3] > 6) return VIGIL_ESTORE;
    int version = magic[3];
    clear_rule_state(eng, ks);
    uint32_t nev;
    GET(&r, ks->seq);
    GET(&r, ks->last_ts);
    GET(&r, nev);
    if (r.bad || nev > len) return VIGIL_ESTORE;
    vigil_event **evs = calloc(nev ? nev : 1, sizeof *evs);
    if (!evs) return VIGIL_ENOMEM;
    vigil_status s = VIGIL_OK;
    for (uint32_t i = 0; i < nev && !r.bad; i++) {
        uint32_t il, jl;
        int64_t ts;
        const char *id = get_str(&r, &il);
        GET(&r, ts);
        const char *js = get_str(&r, &jl);
        if (r.bad) break;
        if ((s = vev_from_record(rs, id, il, ts, js, jl, &evs[i])) != VIGIL_OK) break;
    }
    uint32_t nr = 0;
    int stop = 0;   /* an old record's entry could not be skipped: the rest is dropped */
    GET(&r, nr);
    for (uint32_t i = 0; i < nr && !r.bad && !stop && s == VIGIL_OK; i++) {
        uint32_t nl, ver;
        const char *name = get_str(&r, &nl);
        uint8_t kind;
        GET(&r, ver);
        GET(&r, kind);
        if (r.bad) break;
        if (kind == 3 && version >= 6) {   /* the ids of the window decoded just before */
            uint32_t blen, n;
            GET(&r, blen);
            if (r.bad || blen > r.len - r.off) {
                r.bad = 1;
                break;
            }
            size_t end = r.off + blen;
            vwin *w = NULL;
            const vrule *wr = NULL;
            for (int j = 0; j < g->nrules && !w; j++) {
                const vrule *x = &rs->rules[g->rules[j]];
                if (!x->nsteps && ks->rs[j] && strlen(x->name) == nl && memcmp(x->name, name, nl) == 0 &&
                    vrule_takes(x, ver))
                    w = ks->rs[j], wr = x;
            }
            GET(&r, n);
            for (uint32_t j = 0; w && j < n && !r.bad && s == VIGIL_OK; j++) {
                uint32_t il;
                const char *id = get_str(&r, &il);
                if (!r.bad) s = vwin_ids_add(w, wr, eng->o.max_alert_events, id, il);
            }
            r.off = end;   /* a window no rule takes: skipped */
            continue;
        }
        int slot = -1;
        const vrule *rule = NULL;
        for (int j = 0; j < g->nrules && !rule; j++) {   /* its version, or a version that inherits it */
            const vrule *x = &rs->rules[g->rules[j]];
            if (strlen(x->name) == nl && memcmp(x->name, name, nl) == 0 && vrule_takes(x, ver) && !ks->rs[j]) {
                slot = j;
                rule = x;
            }
        }
        size_t bend = 0;   /* v4: where the entry ends */
        if (version >= 4) {   /* each entry says its length: one no rule takes is skipped */
            uint32_t blen;
            GET(&r, blen);
            if (r.bad || blen > r.len - r.off) {
                r.bad = 1;
                break;
            }
            bend = r.off + blen;
            if (!rule || (kind == 1) != (rule->nsteps > 0)) {
                r.off += blen;
                continue;
            }
        }
        int64_t la;
        uint8_t alerted;
        GET(&r, la);
        GET(&r, alerted);
        if (kind == 1) {
            uint32_t n;
            GET(&r, n);
            vpat *pt = NULL;
            if (rule && rule->nsteps && n < len) {
                if (!(pt = vnfa_new(n))) {
                    s = VIGIL_ENOMEM;
                    break;
                }
                pt->last_alert_ts = la;
                pt->alerted = alerted;
                ks->rs[slot] = pt;
            }
            for (uint32_t j = 0; j < n && !r.bad; j++) {
                vrun run;
                memset(&run, 0, sizeof run);
                GET(&r, run.step);
                GET(&r, run.count);
                GET(&r, run.closed);
                uint8_t held_or_negated;   /* v3: held; before: negated */
                GET(&r, held_or_negated);
                if (version >= 3) run.held = held_or_negated != 0;
                if (version >= 2) {
                    GET(&r, run.from);
                    GET(&r, run.noproceed);
                    GET(&r, run.noskip);
                }
                GET(&r, run.start_ts);
                GET(&r, run.start_seq);
                GET(&r, run.last_seq);
                uint32_t ne;
                GET(&r, ne);
                if (r.bad || ne > len) {
                    r.bad = 1;
                    break;
                }
                size_t sz = (size_t)(ne ? ne : 1) * (sizeof(vigil_event *) + sizeof(uint64_t) + 1);
                unsigned char *m = pt ? malloc(sz) : NULL;
                if (pt && !m) {
                    s = VIGIL_ENOMEM;
                    break;
                }
                if (m) {
                    run.cap = ne ? ne : 1;
                    run.ev = (vigil_event **)m;
                    run.evseq = (uint64_t *)(run.ev + run.cap);
                    run.evstep = (uint8_t *)(run.evseq + run.cap);
                }
                for (uint32_t k = 0; k < ne && !r.bad; k++) {
                    uint32_t idx;
                    uint8_t st;
                    uint64_t sq;
                    GET(&r, idx);
                    GET(&r, st);
                    GET(&r, sq);
                    if (idx >= nev || !evs[idx]) r.bad = 1;
                    if (m && !r.bad) {
                        run.ev[run.nev] = evs[idx];
                        vigil_event_retain(evs[idx]);
                        run.evstep[run.nev] = st;
                        run.evseq[run.nev++] = sq;
                    }
                }
                /* a v1 run whose guard saw its event is dead under today's rules: dropped */
                int dead = version < 3 && held_or_negated;
                if (pt && !r.bad && !dead && run.step >= 0 && run.step < rule->nsteps) {
                    pt->nheld += run.held;
                    pt->runs[pt->nruns++] = run;
                } else if (m) {
                    vrun_clear(&run);
                }
            }
        } else if (kind == 2) {
            uint32_t nagg, n;
            int64_t prec = 0;
            GET(&r, nagg);
            if (version >= 2) GET(&r, prec);
            GET(&r, n);
            vwin *w = NULL;
            int known = rule && !rule->nsteps && (int)nagg == rule->nagg && n < len;
            /* parsed into a scratch rule view when the precision changed,
             * then dropped: the entries cannot be reused */
            vrule shape = known ? *rule : (vrule){0};
            shape.precision_ms = prec;
            if (known) {
                if (!(w = vwin_new(&shape)) || vwin_reserve(w, &shape, n) != 0) {
                    vwin_free(w, &shape);
                    s = VIGIL_ENOMEM;
                    break;
                }
                w->last_alert_ts = la;
                w->alerted = alerted;
                ks->rs[slot] = w;
            }
            for (uint32_t j = 0; j < n && !r.bad && !stop; j++) {
                int64_t ts;
                uint32_t mask;
                GET(&r, ts);
                GET(&r, mask);
                ventry *e = w ? vwin_at(w, &shape, j) : NULL;   /* head 0: entry j */
                if (e) {
                    e->ts = ts;
                    e->mask = 0;
                }
                for (uint32_t k = 0; k < nagg && k < 32 && !r.bad && !stop; k++) {
                    if (!(mask >> k & 1)) continue;
                    int text = rule && (int)k < rule->nagg ? uses_text(&rule->aggs[k]) : 0;
                    if (!w) {   /* an old record (v1-3) with an entry no rule takes: its values'
                                   types are unknown, so the rest of the record is dropped */
                        stop = 1;
                        break;
                    }
                    if (text) {
                        uint32_t sl;
                        const char *sv = get_str(&r, &sl);
                        if (r.bad || (version >= 5 && (sl == 0 || (sv[0] != VWIN_TAG_STR && sv[0] != VWIN_TAG_NUM &&
                                                                   sv[0] != VWIN_TAG_BOOL)))) {
                            r.bad = 1;
                            break;
                        }
                        if (!(e->v[k].str = version >= 5 ? strndup(sv, sl) : vwin_text_untyped(sv, sl))) {
                            r.bad = 1;
                            break;
                        }
                    } else {
                        GET(&r, e->v[k].num);
                    }
                    e->mask |= 1u << k;
                    if (!text) vwin_sum(w)[k] += e->v[k].num;
                }
                if (stop) break;
                uint32_t *ec = e ? (uint32_t *)(uintptr_t)&e->v[nagg] : NULL;
                for (uint32_t k = 0; k < nagg && k < 32 && !r.bad; k++) {
                    if (!(mask >> k & 1) || !w) continue;
                    uint32_t c = 1;
                    if (prec) GET(&r, c);
                    if (prec) ec[k] = c;
                    vwin_cnt(w, &shape)[k] += c;
                }
                if (w) {
                    if (w->n == 0) w->head_ts = ts;
                    w->n++;
                }
            }
            if (stop) break;
            if (w && !r.bad && prec != rule->precision_ms) {   /* another precision: start empty */
                vwin_free(w, &shape);
                if (!(w = vwin_new(rule))) {
                    ks->rs[slot] = NULL;
                    s = VIGIL_ENOMEM;
                    break;
                }
                w->last_alert_ts = la;
                w->alerted = alerted;
                ks->rs[slot] = w;
            }
            uint8_t open, has_last;
            int64_t ws, we;
            uint64_t total;
            uint32_t nevs, idx;
            GET(&r, open);
            GET(&r, ws);
            GET(&r, we);
            GET(&r, total);
            GET(&r, nevs);
            if (r.bad || nevs > len) {
                r.bad = 1;
                break;
            }
            /* a sliding window has no tail: what the record says of an open
             * window is read and dropped */
            vwtail *t = w ? vwin_tail(w, rule) : NULL;
            if (t && nevs && !(t->evs = calloc(nevs, sizeof *t->evs))) {
                s = VIGIL_ENOMEM;
                break;
            }
            for (uint32_t j = 0; j < nevs && !r.bad; j++) {
                GET(&r, idx);
                if (idx >= nev || !evs[idx]) r.bad = 1;
                else if (t) {
                    vigil_event_retain(evs[idx]);
                    t->evs[t->nevs++] = evs[idx];
                }
            }
            GET(&r, has_last);
            if (has_last) {
                GET(&r, idx);
                if (idx >= nev || !evs[idx]) r.bad = 1;
                else if (t) {
                    vigil_event_retain(evs[idx]);
                    t->last = evs[idx];
                }
            }
            int64_t ce = INT64_MIN;
            if (version >= 2) GET(&r, ce);
            if (w && !t) order_ring(w, rule);   /* before v5 a straggler was appended out of order */
            if (t) {
                t->closed_end = ce;
                w->open = open;
                t->win_start = ws;
                w->win_end = we;
                t->total = total;
            }
            if (version >= 5) {   /* the retained closed windows */
                uint32_t nret;
                GET(&r, nret);
                vwin **tailp = t ? &t->retained : NULL;
                for (uint32_t j = 0; j < nret && !r.bad && s == VIGIL_OK; j++) {
                    if (!tailp) {   /* a window this rule cannot hold: the rest of the entry goes */
                        r.off = bend;
                        break;
                    }
                    s = get_retained(&r, rule, evs, nev, len, tailp);
                    if (*tailp) tailp = &vwin_tail(*tailp, rule)->retained;
                }
                if (s != VIGIL_OK) break;
            }
        } else {
            r.bad = 1;
        }
    }
    for (uint32_t i = 0; i < nev; i++) vigil_event_release(evs[i]);
    free(evs);
    if (s == VIGIL_OK && r.bad) s = VIGIL_ESTORE;
    if (s != VIGIL_OK) clear_rule_state(eng, ks);
    return s;
}

int64_t vcodec_ttl(const vigil_engine *eng, const vkeystate *ks) {
    const vgroup *g = &eng->rs->groups[ks->group];
    int64_t longest = 0;
    for (int i = 0; i < g->nrules; i++) {
        const vrule *r = &eng->rs->rules[g->rules[i]];
        int64_t d = r->nsteps ? r->within_ms : r->window_ms;
        if (r->suppress_ms > d) d = r->suppress_ms;
        if (!d) return 0;   /* an unbounded pattern: keep the key */
        if (d > longest) longest = d;
    }
    return longest;
}

/* window_int.h — private interface between the window files: window.c
 * (the ring of entries, sliding, tumbling and session windows),
 * window_late.c (stragglers accepted within allowed_lateness) and
 * window_set.c (the typed values of distinct()/is_new() and counted sets of
 * them). Nothing outside these files includes it. */
#ifndef VIGIL_WINDOW_INT_H
#define VIGIL_WINDOW_INT_H

#include "engine_int.h"

/* One value's text and how many of the aggregate's entries hold it. The set
 * owns a copy of the text (entries come and go in any order, so none of
 * theirs can stand for the value). Open addressing, linear probing, load at
 * most 1/2, deletion by backward shift (Knuth, TAOCP vol. 3, 6.4 Algorithm R):
 * no tombstones, so a long-lived attacker window does not degrade. */
typedef struct vdslot { uint32_t h, n; char *s; } vdslot;   /* n == 0: empty */
typedef struct vdset { uint32_t cap, n; vdslot *slot; } vdset;   /* n: distinct values; slot NULL: not built */

/* The set's hash of a value text. */
uint32_t vdset_hash(const char *s);
/* The slot holding s (hash h), or the empty slot where it would go. */
vdslot *vdset_find(const vdset *d, const char *s, uint32_t h);
void vdset_clear(vdset *d);                     /* frees its texts and table; d is empty after */
int vdset_add(vdset *d, const char *s);         /* one more entry holds s; -1 out of memory (unchanged) */
void vdset_remove(vdset *d, const char *s);     /* one entry holding s (the set has it) left */
uint32_t vdset_count(const vdset *d, const char *s);   /* how many entries hold s */
/* A value as distinct()/is_new() keep it (tag, text), malloc'd; NULL for a
 * value of no such type, or out of memory. */
char *vwin_value_text(const vigil_value *v);

/* ---- the window's layout (engine_int.h, vwin) ---- */
static inline size_t esize(const vrule *r) { return vwin_entry_size(r); }
static inline uint32_t *ecnt(const ventry *e, const vrule *r) { return (uint32_t *)(uintptr_t)&e->v[r->nagg]; }
static inline ventry *at(const vwin *w, const vrule *r, uint32_t i) { return vwin_at(w, r, i); }
/* The first counted entry: a sliding window keeps the entries before it for
 * stragglers only (vwin.nkept). */
static inline uint32_t lo(const vwin *w, const vrule *r) { return r->window == VIGIL_WIN_SLIDING ? w->nkept : 0; }

static inline int uses_text(const vagg *a) { return a->is_new || a->kind == VIGIL_AGG_DISTINCT; }

static inline int has_text(const vrule *r) {
    for (int k = 0; k < r->nagg; k++)
        if (uses_text(&r->aggs[k])) return 1;
    return 0;
}

/* Where a window of a rule with text aggregates keeps its sets (an array of
 * one per aggregate, used for the text ones; NULL until one is built). */
static inline vdset **sets_ptr(const vwin *w, const vrule *r) {
    size_t off = vwin_inline_off(r) + esize(r) + (r->window == VIGIL_WIN_SLIDING ? 0 : sizeof(vwtail));
    return (vdset **)(void *)((unsigned char *)(uintptr_t)w + off);
}

/* The entry time of an event at ts: itself, or its bucket's start. */
static inline int64_t vw_bucket_of(const vrule *r, int64_t ts) {
    if (!r->precision_ms) return ts;
    return ts - ((ts % r->precision_ms) + r->precision_ms) % r->precision_ms;
}

/* window.c */
int vw_grow(vwin *w, const vrule *r);                    /* the ring doubled; -1 out of memory */
/* The values of ev for each aggregate: bit k of *mask when aggregate k takes
 * one (text values malloc'd: vw_free_vals, or moved into an entry). */
vigil_status vw_entry_vals(const vrule *r, vigil_event *ev, const veval *c, vcell *val, uint32_t *mask);
void vw_free_vals(const vrule *r, vcell *val, uint32_t mask);
/* The alert's details: every aggregate's value, current and prior. */
void vw_details(const vrule *r, const vigil_value *cur, const vigil_value *prior, const int *isnew, char *det, size_t n);

size_t vw_size(const vrule *r);                          /* a window state's one allocation */
/* Evaluate a tumbling/session window and alert if `when` holds; 1 if it did. */
int vw_fire(vigil_engine *eng, const vrule *r, vkeystate *ks, vwin *w);
/* ev (which passed `where`) into tumbling/session window w. */
vigil_status vw_join(vigil_engine *eng, const vrule *r, vwin *w, vigil_event *ev, const veval *c);

/* window_late.c */
/* A closed tumbling/session window that did not alert is kept for the
 * stragglers that may still reach it: its content moves to a retained
 * window (w's tail, newest first), w is left empty and closed. 0, or -1 when
 * out of memory (w is then unchanged). */
int vw_retain(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w);
/* ev, older than w's window: into the retained window it belongs to (which
 * alerts if `when` now holds, and is then let go), else counted window_late. */
vigil_status vw_late_join(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w, vigil_event *ev,
                          const veval *c);
/* Let go the retained windows no straggler can reach at watermark wm. */
void vw_prune(vigil_engine *eng, const vrule *r, vwin *w, int64_t wm);
/* A straggler in a sliding window (older than its newest entry). */
vigil_status vw_straggler(vigil_engine *eng, const vrule *r, vkeystate *ks, vwin *w, vigil_event *ev, veval *c);

/* window_ids.c: the ids of a sliding window's newest counted events
 * (window_events). push: remember an id as the newest (the oldest goes at
 * cap; -1: out of memory, nothing changed); trim: keep at most `keep`, the
 * newest; counted_events: how many counted events the window holds (an
 * upper bound with buckets). */
int vw_ids_push(uintptr_t *ids, uint32_t cap, const char *id, size_t len);
void vw_ids_trim(uintptr_t *ids, uint64_t keep);
uint64_t vw_counted_events(const vwin *w, const vrule *r);

#endif

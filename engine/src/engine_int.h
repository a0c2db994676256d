/* engine_int.h — the engine's private per-key state and the interfaces
 * between engine.c (key table, routing, alerts), nfa.c (pattern runs) and
 * window.c, window_late.c (window rules). */
#ifndef VIGIL_ENGINE_INT_H
#define VIGIL_ENGINE_INT_H

#include "internal.h"

/* A partial match (FlinkCEP "computation state"): the step it is in, how
 * many events that step has taken, and the events accepted so far. */
typedef struct vrun {
    int32_t step;
    uint32_t count;
    uint8_t closed;          /* the current step's loop takes no more events */
    uint8_t held;            /* a completed match waiting to be emitted (skip strategies other
                                than no_skip): never advanced, never expires; see nfa.c */
    uint8_t from;            /* first step it may proceed to: > step + 1 once it skipped optional
                                steps while its copy took the event there (0: step + 1) */
    uint8_t noproceed;       /* its loop ignored an event: it may not proceed until it takes again */
    uint8_t noskip;          /* waiting at `from`, an optional step that ignored: it may not skip it */
    int64_t start_ts;
    uint64_t start_seq, last_seq;   /* per-key event sequence numbers */
    uint32_t nev, cap;
    vigil_event **ev;        /* retained */
    uint8_t *evstep;
    uint64_t *evseq;
} vrun;

/* A pattern rule's state for one key. Most keys hold one run at a time
 * (or none, between matches): it sits inline, so such a key's pattern state
 * is one allocation and one cache miss fewer (issue 16); a malloc'd array
 * takes over from the second run and goes again once one run is left. */
typedef struct vpat {
    uint32_t nruns, cap;
    vrun *runs;              /* partial matches and, flagged held, completed matches not emitted yet:
                                &one while cap is 1, else malloc'd; never NULL (vnfa_new) */
    uint32_t nheld;          /* runs that are held */
    int alerted;
    int64_t last_alert_ts;
    vrun one;
} vpat;

/* A window entry: an event (or, with precision, a bucket of events). */
typedef union vcell { double num; char *str; } vcell;
typedef struct ventry {
    int64_t ts;              /* event time, or the bucket's start */
    uint32_t mask;           /* bit k: aggregate k has a value here */
    uint32_t pad;
    vcell v[];               /* one per aggregate; with precision, then u32 count per aggregate */
} ventry;

/* A window rule's state for one key: this header, then (one allocation,
 * laid out from the rule by the vwin_* helpers below):
 *   f64 sum[nagg] | u32 cnt[nagg] | pad to 8 | one entry (the ring while it
 *   holds one: most keys are quiet) | vwtail (tumbling/session rules only) |
 *   a pointer to the counted sets of distinct()/is_new() (rules that use
 *   them only; window.c, NULL until a window is big enough to need them).
 * An idle velocity key (one sliding count, one event) is then one 96-byte
 * malloc chunk instead of a header, a ring and per-kind fields it never uses. */
typedef struct vwin {
    uint32_t head, n, cap;   /* ring of entries; cap is a power of two (1: the inline entry) */
    uint8_t open;            /* tumbling/session: a window is open; it ends at win_end */
    uint8_t alerted;
    uint16_t pad;
    int64_t head_ts;         /* time of the oldest counted entry (kept here: no cache miss when nothing
                                expires); INT64_MAX when none */
    int64_t last_alert_ts;
    union {
        int64_t win_end;     /* tumbling/session: [start, end), end = start + size or last event + gap */
        uint32_t nkept;      /* sliding: the ring's first nkept entries left the newest event's window
                                but are kept for stragglers (allowed_lateness): not in sum, cnt, sets */
    };
    unsigned char *ring;     /* entries of size vwin_entry_size(rule): the inline one, or malloc'd */
    uintptr_t ids;           /* sliding: window_events (the newest counted events' ids): 0, a vwids
                                block, or one id of at most 7 bytes in the word itself (low bit 1:
                                byte 0 = length << 1 | 1, then the bytes) — an idle key's one event
                                costs no allocation */
} vwin;

typedef struct vwtail {      /* tumbling and session windows: the open window and its events */
    int64_t win_start;
    int64_t closed_end;      /* end of the last closed window: older events are late for it */
    uint64_t total;          /* events in the window */
    vigil_event **evs;       /* the first max_alert_events - 1 events, retained */
    vigil_event *last;       /* the latest event, retained */
    uint32_t nevs;
    struct vwin *retained;   /* closed windows that did not alert, kept while stragglers may reach
                                them (allowed_lateness; window_late.c): newest first, each a vwin of
                                its own whose tail links the next */
} vwtail;

/* Sliding windows: the ids of the newest events that counted in an
 * aggregate (an alert's window_events), at most max_alert_events, oldest
 * first, in one allocation: records of u16 length | bytes. Kept in step
 * with the window: once it holds fewer counted events than ids, the oldest
 * ids go. NULL until the first such event. The records live at
 * data[start, start + used): the oldest goes by moving `start` (O(1)); the
 * dead prefix is reclaimed when the block is full and it is at least a
 * quarter of the block (window_ids.c), so each byte is moved at most three
 * times over its life instead of once per id that leaves before it. */
typedef struct vwids {
    uint16_t n;              /* ids */
    uint16_t pad;
    uint32_t start;          /* bytes of data before the oldest record (left by ids that went) */
    uint32_t used, cap;      /* bytes of records, bytes of data */
    unsigned char data[];
} vwids;

typedef struct vkeystate {
    uint64_t hash;
    uint32_t keylen;
    int group;
    char *key;
    uint64_t seq;            /* events of this key seen */
    int64_t last_ts;
    int dirty;
    uint32_t ntimers;        /* timers in the heap that point here: the key cannot expire */
    void *rs[];              /* per rule of the group: vpat* or vwin* */
} vkeystate;

#define VENG_HINTS 256   /* a power of two, >= the events of a warmed batch (64) times their key groups */

struct vigil_engine {
    vigil_ruleset *rs;
    vigil_engine_opts o;
    vigil_store *store;
    vigil_alert_fn fn;
    void *ud;
    int64_t wm;
    /* key table: open addressing, linear probing; each slot keeps the hash
     * beside the pointer so that probing costs one cache line and does not
     * touch the keys' states */
    struct vslot *tab;
    size_t cap, nkeys;
    size_t sweep;            /* idle-key expiry: next slot to look at */
    size_t last_slot;        /* slot of the key veng_key returned last */
    int64_t horizon_min;     /* the shortest horizon of any group */
    int64_t *horizon;        /* per key group: how long after a key's last event its state
                                can still matter (longest window or within, lateness) */
    void *host;              /* this engine's instance of the ruleset's host (Lua functions), or NULL */
    /* stats */
    vigil_engine_stats st;
    uint64_t *rule_alerts;
    uint64_t *step_hits;     /* [rule * VIGIL_MAX_STEPS + step]: its condition held (window: step 0 = where) */
    /* per-event scratch */
    hs_scratch_t *scratch;
    uint64_t *regex_hits;
    size_t regex_words;
    /* NFA scratch */
    vrun *tmp_new, *tmp_done;
    uint32_t ntmp_new, captmp_new, ntmp_done, captmp_done;
    /* window scratch */
    vigil_value *aggv, *priorv;
    int *isnew;
    int maxagg;
    /* event-time timers: a min-heap by time of (key, rule slot); entries may
     * be stale (their runs already gone), the handler then does nothing */
    struct vtimer *timers;
    size_t ntimers, captimers;
    /* events held for max_out_of_orderness: a min-heap by (time, arrival) */
    struct vheld *held;
    size_t nheld, capheld;
    uint64_t arrivals;
    int64_t max_seen;
    /* keys changed since the last commit */
    vkeystate **dirty;
    /* hot reload (swap.c): rule states no rule takes any more, freed a few
     * per event after the swap instead of during its pause; the rulesets
     * their rules belong to stay alive until the last one is freed */
    struct vgrave { void *st; const vrule *r; } *grave;
    size_t ngrave, capgrave;
    vigil_ruleset **grave_rs;
    int ngrave_rs;
    struct vcodec_buf *cbufs;      /* [0] commit_begin … commit_end's records, back to back; [1] the
                                      encoder's scratch; both kept across commits (codec.c) */
    vigil_store_record *crecs;
    size_t ncrecs, capcrecs;
    size_t ndirty, capdirty;
    struct evp_md_ctx_st *mdctx;   /* alert ids (engine.c alert_id): OpenSSL's EVP_MD_CTX, made once */
    /* the table slot where vigil_engine_warm found an event's key, so that
     * feeding it does not hash and probe again: only a hint, checked (the
     * slot still holds a state of that group and key) before it is used —
     * keys expire, move (backward shift, growth) and events are recycled */
    struct vhint { const vigil_event *ev; size_t slot; int g; } hint[VENG_HINTS];
};
typedef struct vhint vhint;

/* The hint slot of (event, group): a small direct-mapped table, so a
 * collision only costs the lookup the hint would have saved. */
static inline size_t hint_of(const vigil_event *ev, int g) {
    return (size_t)(((uintptr_t)ev >> 4) ^ ((uintptr_t)ev >> 12) ^ (uintptr_t)g * 0x61) & (VENG_HINTS - 1);
}

/* A key table slot: the low half of the key's hash (its home slot and a
 * cheap filter before comparing keys) and the second of its last event, so
 * that the idle-key sweep skips recent keys without touching their state. */
typedef struct vslot { uint32_t h; uint32_t last_s; vkeystate *ks; } vslot;
typedef struct vtimer { int64_t when; vkeystate *ks; int slot; } vtimer;   /* slot -1: void (swap.c) */
typedef struct vheld { int64_t ts; uint64_t seq; vigil_event *ev; int group; } vheld;

vkeystate *veng_key(vigil_engine *eng, int g, const char *k, size_t n, int create);
void veng_ks_free(vigil_engine *eng, vkeystate *ks);   /* the key's rule states (with eng->rs) and ks */
uint64_t veng_key_hash(int g, const char *k, size_t n);
/* The table slot of key (g, k): where it is, or the empty slot it would take. */
size_t veng_ks_slot(const vigil_engine *eng, int g, const char *k, size_t n, uint64_t h);

/* What the engine sizes after its ruleset (engine.c); swap.c makes a new
 * set before it changes anything, then installs it. */
typedef struct veng_rs_parts {
    uint64_t *rule_alerts;
    uint64_t *step_hits;         /* per (rule, step): events its condition held for (rule_fields.c) */
    int64_t *horizon, horizon_min;
    vigil_value *aggv, *priorv;
    int *isnew, maxagg;
    uint64_t *regex_hits;
    size_t regex_words;
    hs_scratch_t *scratch;
} veng_rs_parts;
int veng_rs_parts_make(const vigil_engine *eng, const vigil_ruleset *rs, veng_rs_parts *p);   /* -1: ENOMEM */
void veng_rs_parts_free(veng_rs_parts *p);
void veng_rs_parts_install(vigil_engine *eng, veng_rs_parts *p);
/* swap.c: free up to n states of the graveyard (all: SIZE_MAX). */
void veng_grave_drain(vigil_engine *eng, size_t n);
/* Call the rule in `slot` of ks's group back when the watermark reaches
 * `when` (vnfa_timer / vwin_timer). */
int veng_timer_add(vigil_engine *eng, int64_t when, vkeystate *ks, int slot);
/* timers.c: fire the timers due at watermark upto, in time order. */
void veng_fire_timers(vigil_engine *eng, int64_t upto);
/* Up to max (<= VENG_DUE_MAX) timers due at upto, copied to out, found from
 * the heap's top (not in firing order): a hint for prefetching. */
#define VENG_DUE_MAX 64
size_t veng_timers_due(const vigil_engine *eng, int64_t upto, vtimer *out, size_t max);
/* Re-register the timers of a key whose state was loaded from a store. */
void veng_rearm(vigil_engine *eng, vkeystate *ks);
int veng_mark_dirty(vigil_engine *eng, vkeystate *ks);

/* nfa.c */
vigil_status vnfa_feed(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vpat **pp, vigil_event *ev,
                       uint64_t seq, const uint64_t *hits);
/* The watermark reached wm: complete absences, drop runs past `within`. */
void vnfa_timer(vigil_engine *eng, const vrule *r, vkeystate *ks, vpat *p, int64_t wm);
void vnfa_free(vpat *p);
/* An empty pattern state with room for n runs (the codec fills them); NULL
 * when out of memory. */
vpat *vnfa_new(uint32_t n);
void vnfa_warm(const vpat *p);   /* prefetch the runs (vigil_engine_warm) */
void vrun_clear(vrun *r);

/* window.c */
/* where_holds: the caller knows `where` holds for ev (vrule.pre_all). */
vigil_status vwin_feed(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin **wp, vigil_event *ev,
                       const uint64_t *hits, int where_holds);
/* The watermark at which an open tumbling/session window closes: its end for
 * a tumbling window; one past it for a session, since an event exactly `gap`
 * after the last one still joins (Flink merges session windows that touch,
 * TimeWindow.intersects). */
int64_t vwin_closes_at(const vrule *r, const vwin *w);
/* The watermark reached wm: close a tumbling/session window that ended, let
 * go the closed ones no straggler can reach any more. */
void vwin_timer(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, vwin *w, int64_t wm);
/* Register the timers of a loaded window state (veng_rearm). */
void vwin_rearm(vigil_engine *eng, const vrule *r, vkeystate *ks, int slot, const vwin *w);

void vwin_free(vwin *w, const vrule *r);                /* accepts NULL */
vwin *vwin_new(const vrule *r);                         /* empty state; NULL when out of memory */
/* Make room for n entries (the codec fills them); -1 when out of memory. */
int vwin_reserve(vwin *w, const vrule *r, uint32_t n);
void vwin_warm(const vwin *w, const vrule *r);          /* prefetch the ring's ends */
void vwin_warm_ids(const vwin *w, const vrule *r);      /* then the ends of its window_events (window_ids.c) */
/* explain.c: every aggregate now and without the newest entry (r->nagg each). */
void vwin_values(vwin *w, const vrule *r, vigil_value *cur, vigil_value *prior);
uint64_t vwin_events(const vwin *w, const vrule *r);    /* events in the window (buckets: their counts) */
/* distinct()/is_new() values are kept as a type tag and the value's text
 * (window.c, value_text); the state record stores them so from v5 on. */
#define VWIN_TAG_STR 's'
#define VWIN_TAG_NUM 'n'
#define VWIN_TAG_BOOL 'b'
int vwin_num_text(double d, char *buf, size_t n);       /* a number's text, as a kept value */
/* A value read from a record before v5 (text without type), tagged as the
 * text reads (window.c); malloc'd, NULL when out of memory. */
char *vwin_text_untyped(const char *s, size_t len);

static inline size_t vwin_entry_size(const vrule *r) {
    size_t n = sizeof(ventry) + (size_t)r->nagg * sizeof(vcell);
    if (r->precision_ms) n += ((size_t)r->nagg * sizeof(uint32_t) + 7) & ~(size_t)7;
    return n;
}
/* Where the parts after the header are (see vwin). */
static inline size_t vwin_inline_off(const vrule *r) {
    return (sizeof(vwin) + (size_t)r->nagg * (sizeof(double) + sizeof(uint32_t)) + 7) & ~(size_t)7;
}
static inline double *vwin_sum(const vwin *w) { return (double *)(uintptr_t)(w + 1); }
static inline uint32_t *vwin_cnt(const vwin *w, const vrule *r) { return (uint32_t *)(vwin_sum(w) + r->nagg); }
static inline unsigned char *vwin_inline(const vwin *w, const vrule *r) {
    return (unsigned char *)(uintptr_t)w + vwin_inline_off(r);
}
/* NULL for a sliding window. */
static inline vwtail *vwin_tail(const vwin *w, const vrule *r) {
    if (r->window == VIGIL_WIN_SLIDING) return NULL;
    return (vwtail *)(void *)(vwin_inline(w, r) + vwin_entry_size(r));
}
/* Where a sliding window keeps its ids; NULL for other windows. */
static inline uintptr_t *vwin_ids(vwin *w, const vrule *r) {
    return r->window == VIGIL_WIN_SLIDING ? &w->ids : NULL;
}
void vwin_ids_free(uintptr_t ids);   /* accepts 0 */
/* The ids as records (u16 length | bytes, oldest first), whichever way they
 * are kept; valid while the window does not change. */
typedef struct vwids_view { uint32_t n; size_t used; const unsigned char *data; unsigned char one[2 + 7]; } vwids_view;
void vwin_ids_view(uintptr_t ids, vwids_view *v);
/* The codec: append one remembered id (len bytes) to a sliding window's
 * ids (other windows: nothing). */
vigil_status vwin_ids_add(vwin *w, const vrule *r, uint32_t cap, const char *id, size_t len);
/* The state holds an open window or a retained closed one (window_late.c). */
static inline int vwin_live(const vrule *r, const vwin *w) {
    return w->open || (r->window != VIGIL_WIN_SLIDING && vwin_tail(w, r)->retained);
}
/* Entry i from the oldest (i < n). */
static inline ventry *vwin_at(const vwin *w, const vrule *r, uint32_t i) {
    return (ventry *)(void *)(w->ring + (size_t)((w->head + i) & (w->cap - 1)) * vwin_entry_size(r));
}

/* engine.c: emit an alert for rule r and key ks (suppress already checked).
 * ts: the alert's time, or INT64_MIN for the last event's. */
void veng_emit(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs,
               int nev, const char *details_json, int64_t ts);
/* The same for a closed tumbling/session window [start, end). */
/* veng_emit for a pattern match: steps[i] is the step of evs[i] (for the
 * rule's alert function). */
void veng_emit_match(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs,
                     const uint8_t *steps, int nev, const char *details_json, int64_t ts);
/* Host predicate fn on c->ev with c->run as the match so far: 1, 0; a failure
 * counts in stats.function_errors and gives 0. */
int veng_host_pred(const veval *c, int fn);
void veng_emit_window(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *const *evs, int nev,
                      int truncated, const char *details_json, int64_t start, int64_t end);
/* A sliding window's alert at event ev, with the ids of the window's
 * counted events (window_events). */
void veng_emit_sliding(vigil_engine *eng, const vrule *r, const vkeystate *ks, vigil_event *ev,
                       const char *details_json, const char *const *wids, int nwids, int wtrunc);

#endif

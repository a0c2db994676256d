/* engine.h — the matching engine: events in, alerts out.
 *
 * One engine instance is single-threaded and owns the per-key state of the
 * keys routed to it (the server runs one engine per worker, routing each key
 * to exactly one worker, so per-key state needs no locks). It keeps per
 * (rule, key) partial matches ("runs", FlinkCEP NFA semantics) and window
 * contents, drives timers by event time (watermark), and calls back with
 * alerts. It has no sockets, threads or Lua: `vigil replay`, the unit tests
 * and any 20-line C program use it directly (engine/examples/minimal.c, run
 * by ctest, is the whole program):
 *
 *     vigil_rules_load_string("r.lua", src, len, NULL, &rs, &err, 1, &nerrs); // lua/: vigil/rules.h
 *     vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, ud);
 *     vigil_decode_opts opts = {0};              // time in "ts", id in "id"
 *     vigil_event_decode_json(rs, &opts, buf, len, NULL, 0, &ev, &err);
 *     vigil_engine_feed(eng, ev, &err);   vigil_event_release(ev);
 *     vigil_engine_advance(eng, INT64_MAX);      // end of input: fire pending timers
 *     vigil_engine_destroy(eng);   vigil_ruleset_release(rs);
 */
#ifndef VIGIL_ENGINE_H
#define VIGIL_ENGINE_H

#include <stdint.h>
#include "vigil/status.h"
#include "vigil/ruleset.h"
#include "vigil/event.h"
#include "vigil/store.h"

typedef struct vigil_engine vigil_engine;

typedef struct vigil_engine_opts {
    uint32_t max_runs;               /* partial matches per (rule, key), held completed matches
                                        included (the oldest partial one is evicted); default 64 */
    uint32_t max_alert_events;       /* ids in alert.events; default 100 */
    uint32_t max_evidence;           /* events in alert.evidence; default 20 */
    int64_t allowed_lateness_ms;     /* default 0 */
    int64_t max_out_of_orderness_ms; /* default 0: process on arrival. Else events are held
                                        until the watermark (highest event time seen minus
                                        this) passes them, and processed in event-time order */
} vigil_engine_opts;

/* An alert (DESIGN.md §3, contract). Everything it points to lives only
 * during the alert callback: copy or serialise it there. */
typedef struct vigil_alert {
    char id[33];                     /* 32 hex digits of SHA-256 (see alert id rule) */
    const char *rule;
    int rule_version;
    vigil_severity severity;
    vigil_mode mode;
    const char *key_field;
    const char *key;
    int64_t ts;                      /* ms: time of the completing event */
    const char *const *events;       /* matched ids in match order */
    int nevents;
    int events_truncated;
    const char *event;               /* the completing event's id */
    vigil_event *const *evidence;    /* the first max_evidence matched events */
    int nevidence;
    int has_window;                  /* tumbling/session alerts */
    int64_t window_start, window_end;
    const char *details_json;        /* a JSON object text, never NULL */
    /* window alerts: the ids of the window's events that count in one of
     * its aggregates (sliding: the newest max_alert_events of them, oldest
     * first; tumbling/session: the events the alert lists); not part of the
     * id. nwindow_events 0 and window_events NULL for pattern alerts. */
    const char *const *window_events;
    int nwindow_events;
    int window_events_truncated;     /* more events counted than listed */
    int is_window;                   /* a window rule's alert (window_events is written, maybe empty) */
} vigil_alert;

/* Called once per alert, on the thread that fed the engine. */
typedef void (*vigil_alert_fn)(void *ud, const vigil_alert *a);

/* Create an engine over rs (takes a reference). opts may be NULL. The store
 * may be NULL (state only in memory); else the engine uses it as described
 * in store.h. Returns NULL when out of memory. */
vigil_engine *vigil_engine_create(vigil_ruleset *rs, const vigil_engine_opts *opts,
                                  vigil_store *store, vigil_alert_fn fn, void *ud);
void vigil_engine_destroy(vigil_engine *eng);   /* accepts NULL; does not destroy the store */

/* Feed one event to every key group it has a key for (replay), or to one key
 * group (the server routes per group). The engine takes its own references
 * to what it keeps; the caller still releases ev. The watermark is the
 * highest event time seen minus max_out_of_orderness; an event older than
 * watermark - allowed_lateness is late: counted, not matched, VIGIL_ELATE.
 * With max_out_of_orderness, events wait in a buffer until the watermark
 * passes them and are then matched in (event time, arrival) order, so their
 * alerts come from a later feed or advance call. */
vigil_status vigil_engine_feed(vigil_engine *eng, vigil_event *ev, vigil_error *err);
vigil_status vigil_engine_feed_group(vigil_engine *eng, vigil_event *ev, int g, vigil_error *err);

/* A hint before feeding these events (in this order): prefetches their
 * keys' states into the cache, for a batch at a time, so that the cache
 * misses of many keys overlap. Changes nothing observable. */
void vigil_engine_warm(vigil_engine *eng, vigil_event *const *evs, int n);

/* Move the watermark to wm (ms) and fire the timers it passes (within expiry,
 * absence, window close). INT64_MAX at end of input. */
void vigil_engine_advance(vigil_engine *eng, int64_t wm);
int64_t vigil_engine_watermark(const vigil_engine *eng);

/* Batch boundaries for a persistent store: prefetch the state of the keys of
 * these events that are not cached (one round trip), and write back the keys
 * that changed since the last commit (one round trip). No-ops without store. */
vigil_status vigil_engine_prefetch(vigil_engine *eng, vigil_event *const *evs, const int *groups,
                                   int n, vigil_error *err);
vigil_status vigil_engine_commit(vigil_engine *eng, vigil_error *err);

/* The commit in two steps, for a caller that writes the state together with
 * other data in one transaction (the server adds stream offsets and alerts):
 * commit_begin encodes every key changed since the last commit into *recs
 * (n of them; owned by the engine, valid until commit_end); the caller
 * writes them; commit_end(saved = 1) marks them clean, saved = 0 keeps them
 * dirty for the next commit. Keys change only with a store (see create). */
vigil_status vigil_engine_commit_begin(vigil_engine *eng, const vigil_store_record **recs, size_t *n,
                                       vigil_error *err);
void vigil_engine_commit_end(vigil_engine *eng, int saved);

/* Every key's state as a store record (snapshots of the memory store).
 * fn returns non-zero to stop (then VIGIL_EIO). The record lives only
 * during the call. Keys are visited in table order. */
typedef int (*vigil_state_fn)(void *ud, const vigil_store_record *rec);
vigil_status vigil_engine_foreach_state(vigil_engine *eng, vigil_state_fn fn, void *ud, vigil_error *err);
/* Replace key (g, key)'s state by a record made by foreach_state or a
 * commit (any version the codec reads); its timers are re-armed. */
vigil_status vigil_engine_load_state(vigil_engine *eng, int g, const char *key, size_t keylen,
                                     const unsigned char *data, size_t len, vigil_error *err);

/* Hot reload: switch to rs (retained), which must descend from the engine's
 * ruleset (vigil_ruleset_create_from, directly; EINVAL otherwise), between
 * two feeds. Every key's state moves over: a rule present in both (same
 * name and version) keeps its state; a new version takes the state of the
 * versions it inherits (vigil_ruleset_rule_inherits); state of a version
 * that rs no longer has is dropped. Timers are re-armed, events held for
 * max_out_of_orderness are decoded again with rs. The engine's host
 * instance (Lua functions) is reopened for rs. Costs O(keys); on failure
 * (ENOMEM) the engine still runs the old ruleset, unchanged. */
vigil_status vigil_engine_swap(vigil_engine *eng, vigil_ruleset *rs, vigil_error *err);
/* Per rule of the engine's ruleset: keys that hold state of it that is
 * still live (pattern runs not yet completed or expired, an open
 * tumbling/session window). A scan of every key: for draining rules, to
 * know when one is done. counts has vigil_ruleset_rule_count entries. */
void vigil_engine_rule_live(const vigil_engine *eng, uint64_t *counts);

/* ---- explain: what the engine holds for one key (GET /v1/keys/{field}/{value}) ---- */

typedef struct vigil_explain_run {      /* a partial match (FlinkCEP "computation state") */
    const char *step;                   /* the step it reached (its last event's) */
    const char *const *events;          /* the ids it took, in match order */
    int nevents;
    int64_t started;                    /* ms: its first event's time */
    int64_t expires;                    /* ms: started + within; INT64_MAX without `within` */
    int completed;                      /* a complete match held back by the skip strategy */
} vigil_explain_run;

typedef struct vigil_explain_value {    /* an aggregate or a `when` operand, and its value */
    const char *expr;                   /* as the rule language writes it: prior(avg("tx_amount")) */
    vigil_value value;                  /* VIGIL_T_UNDEF: undefined (an empty window); MISSING: unknown */
} vigil_explain_value;

typedef struct vigil_explain_rule {
    int rule;                           /* index in the engine's ruleset */
    /* a pattern rule */
    const vigil_explain_run *runs;
    int nruns;
    /* a window rule */
    int has_window;                     /* it holds entries, or an open window */
    int64_t start, end;                 /* ms: sliding (end - size, end], end = the key's last event;
                                           tumbling/session: the open window [start, end) */
    int open;                           /* tumbling/session: a window is open */
    uint64_t entries;                   /* events in the window (buckets, with precision) */
    const vigil_explain_value *aggs;    /* every aggregate, current and prior(…) */
    int naggs;
    int when;                           /* `when` now: 1, 0, or -1 when it reads the current
                                           event's fields and the window keeps no event */
    const vigil_explain_value *operands;/* the non-constant operands of its comparisons */
    int noperands;
    /* both */
    int64_t last_alert;                 /* ms (event time) of its last alert; INT64_MIN: none */
    int64_t suppressed_until;           /* ms (event time); INT64_MIN: not suppressed */
} vigil_explain_rule;

/* Call fn once per rule of key group g for key (key, len), in the group's
 * order, with what the engine holds (valid during the call). The key's
 * state must be in memory (with a store: prefetch it first, e.g. with
 * vigil_engine_prefetch_key). VIGIL_ENOTFOUND when the key has no state. */
typedef void (*vigil_explain_fn)(void *ud, const vigil_explain_rule *r);
vigil_status vigil_engine_explain_key(vigil_engine *eng, int g, const char *key, size_t len, vigil_explain_fn fn,
                                      void *ud, vigil_error *err);
/* The ruleset the engine runs (the one explain's rule indexes refer to). */
const vigil_ruleset *vigil_engine_ruleset(const vigil_engine *eng);
/* Load key (g, key) from the store into the cache if it is not there. */
vigil_status vigil_engine_prefetch_key(vigil_engine *eng, int g, const char *key, size_t len, vigil_error *err);

typedef struct vigil_engine_stats {
    uint64_t events;          /* events fed (per key group) */
    uint64_t alerts;
    uint64_t late;
    uint64_t runs_evicted;    /* max_runs overflow */
    uint64_t keys;            /* keys with state in memory */
    uint64_t runs;            /* live partial matches (not counting completed matches held by a
                                 skip strategy until earlier partial matches end) */
    uint64_t buffered;        /* events waiting for the watermark (max_out_of_orderness) */
    uint64_t errors;          /* held events that failed when released (out of memory) */
    uint64_t keys_expired;    /* idle keys whose state was dropped (nothing could still need it) */
    uint64_t window_late;     /* events whose tumbling/session window had closed: not in it */
    uint64_t function_errors; /* Lua function predicates / alert functions that failed (error,
                                 budget): a failed predicate is false, a failed alert
                                 function leaves the built-in details */
} vigil_engine_stats;
void vigil_engine_get_stats(const vigil_engine *eng, vigil_engine_stats *st);
/* Per-rule counters: alerts and matched events (indexes as in the ruleset). */
uint64_t vigil_engine_rule_alerts(const vigil_engine *eng, int rule);

/* Events for which step `step` of pattern rule `rule` held (its where) when
 * a run was there to try it, or, for a window rule (step 0), events that
 * passed its `where`: 0 means the condition never matched (a lint). */
uint64_t vigil_engine_step_matches(const vigil_engine *eng, int rule, int step);

/* JSON text of an alert (DESIGN.md §3), with detected_at = detected_ms.
 * Returns a malloc'd string the caller frees, or NULL when out of memory. */
char *vigil_alert_to_json(const vigil_alert *a, int64_t detected_ms);

#endif

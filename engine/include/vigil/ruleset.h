/* ruleset.h — the compiled form of a set of rules, built by lua/ (or by a C
 * program directly) and matched by the engine.
 *
 * The rule language (lua/) turns rule{} tables into calls of this builder:
 * expressions for conditions and aggregate `when`s, step definitions for
 * patterns, then one vigil_ruleset_finalize(). After finalize the ruleset is
 * immutable and may be shared by any number of engines and threads; it is
 * refcounted so that a hot reload can swap it while workers still hold the
 * old one. Semantics follow FlinkCEP (steps, contiguity, quantifiers,
 * after-match skip strategies) and DESIGN.md §3–4. */
#ifndef VIGIL_RULESET_H
#define VIGIL_RULESET_H

#include <stdint.h>
#include <stddef.h>
#include "vigil/status.h"

#define VIGIL_UNBOUNDED UINT32_MAX   /* times_or_more: no upper bound */
#define VIGIL_MAX_STEPS 32
#define VIGIL_MAX_RULE_NAME 63

typedef struct vigil_ruleset vigil_ruleset;
typedef struct vigil_expr vigil_expr;
typedef struct vigil_event vigil_event;   /* event.h */

/* A typed value. Strings are borrowed (ptr + len, not NUL-terminated unless
 * said so). No implicit conversion: the number 596 and the string "596"
 * differ, except that key values always compare as strings. */
typedef enum vigil_type {
    VIGIL_T_MISSING = 0, /* field absent from the event */
    VIGIL_T_NULL,
    VIGIL_T_BOOL,
    VIGIL_T_NUM,
    VIGIL_T_STR,
    VIGIL_T_UNDEF        /* result of an aggregate over no event: every comparison is false */
} vigil_type;

typedef struct vigil_value {
    vigil_type type;
    uint32_t len;          /* VIGIL_T_STR: bytes */
    union {
        double num;        /* VIGIL_T_NUM */
        int b;             /* VIGIL_T_BOOL */
        const char *str;   /* VIGIL_T_STR */
    } u;
} vigil_value;

typedef enum vigil_expr_op {
    VIGIL_X_CONST,      /* a literal value */
    VIGIL_X_FIELD,      /* the current event's field (e.f, or the field of a where{} entry) */
    VIGIL_X_REF,        /* ref(step, field): the field of the last event the step accepted */
    VIGIL_X_AGG,        /* an aggregate over the rule's window (see vigil_expr_agg) */
    VIGIL_X_IS_NEW,     /* is_new(f): current value of f absent from the window before it */
    VIGIL_X_ADD, VIGIL_X_SUB, VIGIL_X_MUL, VIGIL_X_DIV, VIGIL_X_NEG,
    VIGIL_X_EQ, VIGIL_X_NE, VIGIL_X_GT, VIGIL_X_GE, VIGIL_X_LT, VIGIL_X_LE,
    VIGIL_X_BETWEEN,    /* args: x, lo, hi — inclusive */
    VIGIL_X_ONE_OF,     /* args: x, v1, v2, … — equality with any */
    VIGIL_X_EXISTS,     /* args: x — present and not null */
    VIGIL_X_MISSING,    /* args: x — absent or null */
    VIGIL_X_MATCHES,    /* built by vigil_expr_matches */
    VIGIL_X_IN_LIST,    /* built by vigil_expr_in_list */
    VIGIL_X_AND, VIGIL_X_OR, VIGIL_X_NOT,
    VIGIL_X_HOST        /* a host predicate (a Lua function): built by vigil_expr_host */
} vigil_expr_op;

typedef enum vigil_agg_kind {
    VIGIL_AGG_COUNT, VIGIL_AGG_SUM, VIGIL_AGG_AVG,
    VIGIL_AGG_MIN, VIGIL_AGG_MAX, VIGIL_AGG_DISTINCT
} vigil_agg_kind;

/* Expression constructors. Nodes are owned by the ruleset and freed with it;
 * strings are copied. Each returns NULL only when out of memory. Type errors
 * (a comparison of two constants, a MATCHES on a non-field) are reported by
 * vigil_ruleset_add_rule, with the rule's file and line. */
vigil_expr *vigil_expr_const(vigil_ruleset *rs, vigil_value v);
vigil_expr *vigil_expr_num(vigil_ruleset *rs, double v);
vigil_expr *vigil_expr_str(vigil_ruleset *rs, const char *s, size_t len);
vigil_expr *vigil_expr_bool(vigil_ruleset *rs, int b);
vigil_expr *vigil_expr_field(vigil_ruleset *rs, const char *path);
vigil_expr *vigil_expr_ref(vigil_ruleset *rs, const char *step, const char *path);
/* args[0..n): the node keeps its own copy of the array. */
vigil_expr *vigil_expr_apply(vigil_ruleset *rs, vigil_expr_op op, vigil_expr *const *args, int n);
/* `regex` in Hyperscan's dialect (unanchored); flags: "" or "i". */
vigil_expr *vigil_expr_matches(vigil_ruleset *rs, vigil_expr *field, const char *regex, const char *flags);
vigil_expr *vigil_expr_in_list(vigil_ruleset *rs, vigil_expr *field, const char *list);
/* An aggregate over the window's events that pass the rule's `where` and,
 * when given, `filter` (an expression over event fields). `path` is NULL for
 * COUNT. `prior` excludes the current event. */
vigil_expr *vigil_expr_agg(vigil_ruleset *rs, vigil_agg_kind k, const char *path,
                           vigil_expr *filter, int prior);
vigil_expr *vigil_expr_is_new(vigil_ruleset *rs, const char *path);
/* A predicate the host evaluates (see vigil_host): host function `fn` (>= 1). */
vigil_expr *vigil_expr_host(vigil_ruleset *rs, int fn);

/* ---- host functions ---------------------------------------------------------
 * The engine runs no Lua. A rule's `:where(function(e, m) … end)` and its
 * `alert = function(m) … end` stay in the rule language (lua/), which numbers
 * them (host functions 1, 2, …), builds vigil_expr_host nodes and rule defs
 * with alert_fn, and gives the ruleset a host: a factory of instances, one per
 * engine. An engine runs on one thread, so an instance is only ever called
 * from one thread at a time; instances of one ruleset share nothing. */

/* What a host function sees of a (partial) match: the events it accepted so
 * far in match order and the step that took each (indexes into the rule's
 * steps; NULL for a window rule's alert). Valid only during the call. */
typedef struct vigil_match_view {
    const vigil_ruleset *rs;
    int rule;                        /* index in rs */
    vigil_event *const *events;      /* vigil_event is declared in event.h */
    const uint8_t *steps;
    int n;
} vigil_match_view;

typedef struct vigil_host {
    /* A new instance for one engine; NULL on failure (the host says why on
     * stderr): vigil_engine_create then fails. */
    void *(*open)(void *ud, const vigil_ruleset *rs);
    void (*close)(void *inst);
    /* Predicate fn on event ev, m = the run being extended (n = 0 for a first
     * step). Returns 1 (holds), 0 (does not) or -1 (the function failed: the
     * engine counts it and treats it as 0). */
    int (*pred)(void *inst, int fn, const vigil_event *ev, const vigil_match_view *m);
    /* Alert function fn on a complete match: a malloc'd JSON object text
     * whose members are added to the alert's details, or NULL when it failed
     * (counted; the alert goes out with the built-in details). */
    char *(*alert)(void *inst, int fn, const vigil_match_view *m);
    void (*free_ud)(void *ud);       /* called when the ruleset is freed; may be NULL */
} vigil_host;

/* Give the ruleset its host (before finalize); ud is freed with the ruleset
 * through h->free_ud. At most one host per ruleset (EINVAL otherwise). */
vigil_status vigil_ruleset_set_host(vigil_ruleset *rs, const vigil_host *h, void *ud);

/* Named lists for in_list(): a hash set of strings. Numbers in events are
 * compared by their text. Values are copied. Adding a list of a name that
 * exists replaces it. */
vigil_status vigil_ruleset_add_list(vigil_ruleset *rs, const char *name,
                                    const char *const *values, size_t n);

typedef enum vigil_severity {
    VIGIL_SEV_INFO, VIGIL_SEV_LOW, VIGIL_SEV_MEDIUM, VIGIL_SEV_HIGH, VIGIL_SEV_CRITICAL
} vigil_severity;
typedef enum vigil_mode { VIGIL_MODE_ACTIVE, VIGIL_MODE_SHADOW } vigil_mode;

/* How a step follows the one before it (FlinkCEP "Combining Patterns"). */
typedef enum vigil_contiguity {
    VIGIL_CONT_STRICT,          /* next(): the very next event of the key */
    VIGIL_CONT_RELAXED,         /* followed_by(): skip-till-next-match */
    VIGIL_CONT_NONDET,          /* followed_by_any(): skip-till-any-match */
    VIGIL_CONT_NOT_NEXT,        /* not_next(): the next event must not match */
    VIGIL_CONT_NOT_FOLLOWED_BY  /* not_followed_by(): no matching event until the next step (or `within`) */
} vigil_contiguity;

/* After-match skip strategies (FlinkCEP "After Match Skip Strategy"). */
typedef enum vigil_skip {
    VIGIL_SKIP_NO_SKIP, VIGIL_SKIP_TO_NEXT, VIGIL_SKIP_PAST_LAST_EVENT,
    VIGIL_SKIP_TO_FIRST, VIGIL_SKIP_TO_LAST
} vigil_skip;

typedef enum vigil_window_kind {
    VIGIL_WIN_NONE, VIGIL_WIN_SLIDING, VIGIL_WIN_TUMBLING, VIGIL_WIN_SESSION
} vigil_window_kind;

typedef struct vigil_step_def {
    const char *name;             /* unique within the rule */
    vigil_contiguity contiguity;  /* ignored for the first step */
    uint32_t min, max;            /* quantifier; a plain step is 1,1; max may be VIGIL_UNBOUNDED */
    unsigned optional : 1;        /* optional(): the step may take no event at all (else min..max) */
    unsigned greedy : 1;
    unsigned consecutive : 1;     /* strict contiguity between a looping step's events */
    vigil_expr *cond;             /* where/or_where as one expression; NULL = any event */
    vigil_expr *stop_when;        /* until-condition of a looping step; NULL = none */
} vigil_step_def;

/* One rule. Exactly one of (steps, window) is set. Strings and the steps
 * array are copied by vigil_ruleset_add_rule; expressions must come from the
 * same ruleset. */
typedef struct vigil_rule_def {
    const char *name;             /* [a-z0-9_]+, unique in the ruleset */
    const char *description;      /* may be NULL */
    int version;                  /* >= 1 */
    vigil_severity severity;
    vigil_mode mode;
    const char *key;              /* key field path, e.g. "card_id" or "card.bin" */
    const char *file;             /* source file, for errors; may be NULL */
    int line;                     /* line of the rule{} call */
    /* pattern rule */
    const vigil_step_def *steps;
    int nsteps;
    int64_t within_ms;            /* 0: no bound; else last.ts - first.ts < within */
    vigil_skip skip;
    const char *skip_step;        /* for SKIP_TO_FIRST / SKIP_TO_LAST */
    /* aggregate rule */
    vigil_expr *where;            /* NULL = every event of the key */
    vigil_window_kind window;
    int64_t window_ms;            /* size or session gap */
    int64_t precision_ms;         /* 0 = exact */
    vigil_expr *when;             /* must be a boolean expression */
    /* both */
    int64_t suppress_ms;          /* 0 = alert on every match */
    int alert_fn;                 /* host function of `alert = function(m)`; 0 = none */
    /* hot reload (vigil_ruleset_create_from, vigil_engine_swap) */
    /* A name may appear twice when one is draining, or when one is active and
     * the other a shadow running beside it (mode). */
    int draining;                 /* an old version after an incompatible change: its partial
                                     matches (runs, an open tumbling/session window) complete or
                                     expire, it starts none; a draining sliding window has nothing
                                     to finish and keeps no state */
    int inherits;                 /* the lowest version of this rule whose stored state this version
                                     takes over (window contents, runs); 0: decide by comparing with
                                     the base ruleset's version of the same name (the new version
                                     is compatible with it: its own version, or the base's
                                     `inherits`), else none (= version) */
} vigil_rule_def;

/* Create an empty ruleset (refcount 1). NULL when out of memory. */
vigil_ruleset *vigil_ruleset_create(void);
/* Create an empty ruleset that descends from base (a finalized ruleset), for
 * a hot reload: it starts with base's field table and key groups in base's
 * order, so that an event decoded with base (its slots, its keys) means the
 * same in the new ruleset, and a key group keeps its index (a group whose
 * rules are all gone stays, with no rule). Rules are then added as usual;
 * a rule name may appear twice with different versions (one of them
 * draining). The new ruleset keeps no reference to base. */
vigil_ruleset *vigil_ruleset_create_from(const vigil_ruleset *base);
void vigil_ruleset_retain(vigil_ruleset *rs);
/* Drops one reference; frees at zero. Accepts NULL. */
void vigil_ruleset_release(vigil_ruleset *rs);

/* Validate and add a rule. On error nothing is added and err names the
 * file, line and rule. */
vigil_status vigil_ruleset_add_rule(vigil_ruleset *rs, const vigil_rule_def *def, vigil_error *err);

/* Build what matching needs (key groups, field table, one Hyperscan database
 * per regex field). After this the ruleset is immutable; add_rule fails. */
vigil_status vigil_ruleset_finalize(vigil_ruleset *rs, vigil_error *err);

/* Introspection (valid after finalize). Returned strings live as long as rs. */
int vigil_ruleset_rule_count(const vigil_ruleset *rs);
const char *vigil_ruleset_rule_name(const vigil_ruleset *rs, int i);
int vigil_ruleset_rule_version(const vigil_ruleset *rs, int i);
vigil_mode vigil_ruleset_rule_mode(const vigil_ruleset *rs, int i);
vigil_severity vigil_ruleset_rule_severity(const vigil_ruleset *rs, int i);
const char *vigil_ruleset_rule_key(const vigil_ruleset *rs, int i);
/* The live (not draining) version of rule `name`, the active one when a
 * shadow version runs beside it; -1 if none. */
int vigil_ruleset_rule_index(const vigil_ruleset *rs, const char *name);
/* Rule `name` at `version`, draining or not; -1 if none. */
int vigil_ruleset_rule_find(const vigil_ruleset *rs, const char *name, int version);
int vigil_ruleset_rule_draining(const vigil_ruleset *rs, int i);
/* The lowest version whose state rule i takes over (its own version: none). */
int vigil_ruleset_rule_inherits(const vigil_ruleset *rs, int i);
/* Whether rule j of `to` may take over the state of rule i of `from` (DESIGN.md
 * §6 "compatible"): same key; a window rule with the same normalised `where`,
 * window kind, size and precision and the same aggregates; a pattern with
 * the same steps (names, contiguity, quantifiers, conditions), `within` and
 * skip strategy. Severity, description, suppress, `when`'s thresholds and
 * combination, alert functions and mode may differ. 1 or 0. */
int vigil_ruleset_rules_compatible(const vigil_ruleset *from, int i, const vigil_ruleset *to, int j);
int vigil_ruleset_group_rule_count(const vigil_ruleset *rs, int g);   /* 0: a group left by a reload */

int vigil_ruleset_group_count(const vigil_ruleset *rs);       /* key groups */
const char *vigil_ruleset_group_key(const vigil_ruleset *rs, int g);
int vigil_ruleset_field_count(const vigil_ruleset *rs);
const char *vigil_ruleset_field_path(const vigil_ruleset *rs, int f);   /* NULL out of range */
/* The fields rule `rule` reads (its key first, then its conditions, where,
 * when and aggregates), each once: up to max indexes into out; how many. */
int vigil_ruleset_rule_fields(const vigil_ruleset *rs, int rule, int *out, int max);
int vigil_ruleset_step_count(const vigil_ruleset *rs, int rule);   /* 0 for a window rule */
const char *vigil_ruleset_step_name(const vigil_ruleset *rs, int rule, int step);
int vigil_ruleset_step_negative(const vigil_ruleset *rs, int rule, int step);   /* not_next / not_followed_by */

vigil_window_kind vigil_ruleset_rule_window(const vigil_ruleset *rs, int i);   /* NONE for a pattern */
/* How long a partial match of rule i can live, ms: its `within`, or its
 * window size (+ precision); 0 for a pattern without `within` (unbounded). */
int64_t vigil_ruleset_rule_horizon(const vigil_ruleset *rs, int i);
const char *vigil_severity_str(vigil_severity s);   /* "high" */
const char *vigil_mode_str(vigil_mode m);           /* "active" */

/* The hash vigil uses for keys everywhere (FNV-1a with MurmurHash3's fmix64
 * finalizer): the engine's key table, the server's routing of a key to its
 * worker, replay scoring. Stable within a build, not a wire format. */
uint64_t vigil_hash(const void *p, size_t n);

/* Parse "10m", "1h", "500ms", "30d", "1.5s" into milliseconds. */
vigil_status vigil_duration_parse(const char *s, int64_t *ms);

#endif

/* internal.h — private structures shared by the engine's source files.
 *
 * Nothing here is public API: server/, cli/ and lua/ see only engine/include/vigil/.
 * The ruleset is immutable after finalize; events are refcounted; per-key
 * state (runs and window contents) is owned by one engine. */
#ifndef VIGIL_INTERNAL_H
#define VIGIL_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>
#include <stddef.h>
#include <hs/hs.h>
#include "vigil/status.h"
#include "vigil/ruleset.h"
#include "vigil/event.h"
#include "vigil/engine.h"

/* ---- ruleset ---------------------------------------------------------- */

typedef struct vlist {          /* in_list() set: open addressing over strings */
    char *name;
    char **slots;
    size_t cap, n;
} vlist;

struct vigil_expr {
    vigil_expr_op op;
    int nargs;
    vigil_expr **args;
    vigil_value v;               /* CONST */
    char *path;                  /* FIELD, REF, AGG, IS_NEW */
    int field;                   /* resolved field index, -1 for COUNT */
    char *step;                  /* REF: step name */
    int step_idx;                /* REF: resolved by add_rule */
    vigil_agg_kind agg;          /* AGG */
    vigil_expr *filter;          /* AGG: may be NULL */
    int prior;                   /* AGG */
    int agg_idx;                 /* AGG, IS_NEW: index into the rule's aggregate table */
    char *regex, *rflags;        /* MATCHES */
    int regex_id;                /* MATCHES: global id across the ruleset */
    char *list_name;             /* IN_LIST */
    vlist *list;
    int host_fn;                 /* HOST */
};

typedef struct vstep {
    char *name;
    vigil_contiguity contiguity;
    uint32_t min, max;
    unsigned optional : 1, greedy : 1, consecutive : 1;
    unsigned negative : 1;       /* not_next / not_followed_by: a guard, takes no event */
    vigil_expr *cond, *stop_when;
} vstep;

typedef struct vagg {            /* one distinct aggregate of a window rule */
    vigil_agg_kind kind;
    int field;                   /* -1 for count */
    vigil_expr *filter;
    int is_new;                  /* is_new(f): a distinct-style table without filter */
    char label[192];             /* its name in alert details: count(), sum(amount), and for a
                                    filtered one "distinct(customer_id) where eq(type, 'report')" (text in single quotes) */
} vagg;

typedef struct vrule {
    char *name, *description, *key, *file;
    int line, version;
    vigil_severity severity;
    vigil_mode mode;
    int group;                   /* key group index */
    int key_field;
    /* pattern */
    int nsteps;
    vstep *steps;
    int64_t within_ms;
    vigil_skip skip;
    int skip_step;
    int last_pos;                /* index of the last positive step */
    int absence;                 /* the pattern ends in not_followed_by: completes when `within` expires */
    /* window */
    vigil_expr *where;
    vigil_window_kind window;
    int64_t window_ms, precision_ms;
    vigil_expr *when;
    int nagg;
    vagg *aggs;
    int64_t suppress_ms;
    /* a rule whose `where` (a pattern: whose first step) needs one field to
     * equal a string (type = "tx", alone or in its all_of): that field and
     * string, so that routing skips the rule for the events it would refuse
     * without evaluating anything (a pattern only while it has no run) */
    int pre_field;
    int pre_all;                 /* the test is the whole `where`: passing it, `where` holds */
    const vigil_value *pre;      /* NULL: no such test */
    int alert_fn;                /* host function of `alert = function(m)`, 0: none */
    /* hot reload (lineage.c) */
    int draining;                /* runs only what it had: starts no run and no window */
    int inherits;                /* lowest version whose stored state it takes; 0 until finalize */
} vrule;

typedef struct vgroup {
    char *key;                   /* key field path */
    int field;
    int nrules;
    int *rules;                  /* indexes into rs->rules */
} vgroup;

typedef struct vregex_db {       /* one Hyperscan database per field */
    int field;
    hs_database_t *db;
    int first_id, n;             /* regex ids [first_id, first_id + n) */
} vregex_db;

typedef struct arena_block arena_block;

struct vigil_ruleset {
    atomic_int refs;
    int finalized;
    arena_block *arena;
    int nfields, capfields;
    char **fields;               /* field paths, index = slot */
    int type_field;              /* slot of "type", or -1 */
    int nrules, caprules;
    vrule *rules;
    int ngroups;
    vgroup *groups;
    int nlists, caplists;
    vlist **lists;
    int nregex, capregex;
    vigil_expr **regexes;        /* by regex id */
    int nregex_dbs;
    vregex_db *regex_dbs;
    int *field_regex_db;         /* field -> index into regex_dbs or -1 */
    vigil_host host;             /* Lua functions (lua/); host.open NULL: none */
    void *host_ud;
    vigil_ruleset *base;         /* create_from: the ruleset it descends from, until finalize */
    int base_nfields, base_ngroups;   /* what it took from its base (lineage.c) */
};

void *vrs_alloc(vigil_ruleset *rs, size_t n);   /* arena, zeroed */
char *vrs_strdup(vigil_ruleset *rs, const char *s);
int vrs_field_index(const vigil_ruleset *rs, const char *path); /* -1 if unknown */
int vrs_field_add(vigil_ruleset *rs, const char *path);
int vlist_contains(const vlist *l, const char *s, size_t len);

/* lineage.c: hot reload. Copy base's field table and key groups into a new
 * ruleset; at finalize, decide each rule's `inherits` against the base. */
vigil_status vlineage_start(vigil_ruleset *rs, const vigil_ruleset *base);
void vlineage_finalize(vigil_ruleset *rs);
/* Does rule r take the stored state of its name's `version`? */
static inline int vrule_takes(const vrule *r, uint32_t version) {
    return (uint32_t)r->version == version ||
           ((uint32_t)r->inherits <= version && version < (uint32_t)r->version && !r->draining);
}

/* n bytes of a and b equal. Keys and the strings rules compare are short
 * (a customer id, "tx"): inline 8-byte words beat a call into libc's memcmp,
 * which costs more in its dispatch than in comparing. */
static inline int vbytes_eq(const char *a, const char *b, size_t n) {
    for (; n >= 8; a += 8, b += 8, n -= 8) {
        uint64_t x, y;
        __builtin_memcpy(&x, a, 8);
        __builtin_memcpy(&y, b, 8);
        if (x != y) return 0;
    }
    while (n--)
        if (*a++ != *b++) return 0;
    return 1;
}

/* ---- events ----------------------------------------------------------- */

typedef struct vkey { const char *s; uint32_t len; } vkey;

struct vigil_event {
    atomic_int refs;
    int64_t ts;
    const char *id;
    int nslots;
    vigil_value *slots;
    int ngroups;
    vkey *keys;
    char *json;                  /* raw JSON, or rendered lazily for CSV */
    size_t json_len;
    struct vigil_csv_header *csv;/* CSV events: header, to render JSON */
    char *line;                  /* CSV events: the row */
    size_t line_len;
    const char *type_default;
    char *strs;                  /* copied strings the slots and keys point into */
};

/* vigil_event_key inlined, for the engine's hot paths (the same answer). */
static inline const char *vev_key(const vigil_event *e, int g, size_t *len) {
    if (g < 0 || g >= e->ngroups || !e->keys[g].s) return NULL;
    if (len) *len = e->keys[g].len;
    return e->keys[g].s;
}

struct vigil_csv_header {
    atomic_int refs;
    int ncols;
    char **names;                /* column names */
    int *col_field;              /* column -> ruleset field or -1 */
};

vigil_event *vev_new(int nslots, int ngroups);
/* An event with `text` bytes after its keys, at vev_text(e), in the same
 * allocation: CSV events keep their row there (e->line), JSON events their
 * text (e->json) and then their strings (e->strs); vigil_event_release
 * frees neither when it points there. */
vigil_event *vev_alloc(int nslots, int ngroups, size_t text);
char *vev_text(vigil_event *e);
/* Shared by the two decoders, event.c (CSV) and event_json.c (JSON):
 * "'a', 'b' or 'c'" for error messages (fields NULL: "'ts'"), and the
 * require_keys check (ENOKEY with err set when the event has no key). */
void vev_join_names(const char *const *fields, int n, char *buf, size_t len);
vigil_status vev_check_keys(const vigil_ruleset *rs, vigil_event *e, int require, vigil_error *err);
/* event.c: a JSON number token of at most 63 bytes as cJSON reads it: the
 * double strtod gives for it (Clinger's exact fast path when it applies). */
double vev_json_number(const char *s, size_t n);
/* event_json.c: vigil_event_field_text of a JSON event. */
int vev_json_field_text(const vigil_event *e, const char *path, char *buf, size_t n);
/* event_raw.c: the raw text of the number at `path` in the JSON object buf
 * (a top-level member of that name wins, else the nested members along the
 * dots); v is its value as cJSON read it. *out points into buf. 0, or -1 when
 * it is not found (the caller renders v). */
int vev_raw_number(const char *buf, size_t len, const char *path, double v, const char **out, size_t *olen);
/* Rebuild an event from a stored record: id, ts and JSON text (the state
 * codec). Slots and keys are re-extracted from the JSON. */
vigil_status vev_from_record(const vigil_ruleset *rs, const char *id, size_t idlen, int64_t ts,
                             const char *json, size_t len, vigil_event **out);

/* ---- expression evaluation ------------------------------------------ */

struct vrun;
typedef struct veval {           /* context for evaluating one expression */
    const vigil_event *ev;       /* current event */
    const struct vrun *run;      /* for REF: the run being extended */
    const vrule *rule;
    const vigil_value *aggs;     /* current aggregate values */
    const vigil_value *prior;    /* aggregate values without the current event */
    const int *is_new;           /* per aggregate index */
    const uint64_t *regex_hits;  /* bitset by regex id, computed for this event */
    struct vigil_engine *eng;    /* for HOST predicates (its host instance); may be NULL */
} veval;

vigil_value vexpr_eval(const vigil_expr *x, const veval *c);
/* x as the rule language writes it (expr_text.c); the length it needs, like snprintf. */
size_t vexpr_text(const vigil_expr *x, char *buf, size_t n);
int vexpr_true(const vigil_expr *x, const veval *c);   /* NULL is true */

#endif

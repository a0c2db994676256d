/* lineage.c — a ruleset that replaces a running one (hot reload, DESIGN.md
 * §6 "Versions"): what it keeps of its base so that the base's events and
 * state stay meaningful, and which state each new rule version may take
 * over.
 *
 * Events decoded with the base carry slots indexed by the base's field
 * table and keys indexed by its key groups; a descendant starts with both
 * tables, in the same order, and only appends. So an event, a run's events
 * and the out-of-order buffer stay valid across a swap, and a key group
 * keeps its index (and its stream offsets) for the life of the process.
 *
 * "Compatible" is decided structurally, on the compiled rules: two versions
 * agree on the key and on everything that shapes the stored state — for a
 * window rule its `where`, window kind, size, precision and aggregate table
 * (so the stored entries mean the same; `when` may change), for a pattern its
 * steps (names, contiguity, quantifiers, conditions), `within` and skip
 * strategy (so a run's step and events mean the same). A Lua function
 * predicate is opaque: a rule that uses one is never compatible with
 * another version. */
#include <string.h>
#include "internal.h"

vigil_status vlineage_start(vigil_ruleset *rs, const vigil_ruleset *base) {
    for (int f = 0; f < base->nfields; f++)
        if (vrs_field_add(rs, base->fields[f]) != f) return VIGIL_ENOMEM;
    if (base->ngroups) {
        rs->groups = calloc((size_t)base->ngroups, sizeof *rs->groups);
        if (!rs->groups) return VIGIL_ENOMEM;
        for (int g = 0; g < base->ngroups; g++) {
            rs->groups[g].key = vrs_strdup(rs, base->groups[g].key);
            rs->groups[g].field = base->groups[g].field;
            if (!rs->groups[g].key) return VIGIL_ENOMEM;
        }
        rs->ngroups = base->ngroups;
    }
    rs->base_nfields = base->nfields;
    rs->base_ngroups = base->ngroups;
    return VIGIL_OK;
}

vigil_ruleset *vigil_ruleset_create_from(const vigil_ruleset *base) {
    vigil_ruleset *rs = vigil_ruleset_create();
    if (!rs) return NULL;
    if (!base) return rs;
    if (vlineage_start(rs, base) != VIGIL_OK) {
        vigil_ruleset_release(rs);
        return NULL;
    }
    vigil_ruleset_retain((vigil_ruleset *)base);   /* read at finalize, released there */
    rs->base = (vigil_ruleset *)base;
    return rs;
}

/* ---- structural equality of compiled expressions ---------------------------- */

static const char *field_path(const vigil_ruleset *rs, int f) {
    return f >= 0 && f < rs->nfields ? rs->fields[f] : "";
}

static int str_eq(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static int expr_eq(const vigil_ruleset *ra, const vigil_expr *a, const vigil_ruleset *rb, const vigil_expr *b) {
    if (!a || !b) return a == b;
    if (a->op != b->op || a->nargs != b->nargs) return 0;
    switch (a->op) {
    case VIGIL_X_CONST:
        if (a->v.type != b->v.type) return 0;
        if (a->v.type == VIGIL_T_NUM) return a->v.u.num == b->v.u.num;
        if (a->v.type == VIGIL_T_BOOL) return !a->v.u.b == !b->v.u.b;
        if (a->v.type == VIGIL_T_STR) return a->v.len == b->v.len && memcmp(a->v.u.str, b->v.u.str, a->v.len) == 0;
        return 1;
    case VIGIL_X_FIELD: return str_eq(a->path, b->path);
    case VIGIL_X_REF: return str_eq(a->path, b->path) && str_eq(a->step, b->step);
    case VIGIL_X_AGG:
        return a->agg == b->agg && a->prior == b->prior && str_eq(a->path, b->path) &&
               expr_eq(ra, a->filter, rb, b->filter);
    case VIGIL_X_IS_NEW: return str_eq(a->path, b->path);
    case VIGIL_X_MATCHES:
        if (!str_eq(a->regex, b->regex) || !str_eq(a->rflags, b->rflags)) return 0;
        break;
    case VIGIL_X_IN_LIST:
        if (!str_eq(a->list_name, b->list_name)) return 0;
        break;
    case VIGIL_X_HOST: return 0;   /* a Lua function: cannot be compared */
    default: break;
    }
    for (int i = 0; i < a->nargs; i++)
        if (!expr_eq(ra, a->args[i], rb, b->args[i])) return 0;
    return 1;
}

static int agg_eq(const vigil_ruleset *ra, const vagg *a, const vigil_ruleset *rb, const vagg *b) {
    return a->kind == b->kind && a->is_new == b->is_new && str_eq(field_path(ra, a->field), field_path(rb, b->field)) &&
           (a->field < 0) == (b->field < 0) && expr_eq(ra, a->filter, rb, b->filter);
}

static int step_eq(const vigil_ruleset *ra, const vstep *a, const vigil_ruleset *rb, const vstep *b) {
    return str_eq(a->name, b->name) && a->contiguity == b->contiguity && a->min == b->min && a->max == b->max &&
           a->optional == b->optional && a->greedy == b->greedy && a->consecutive == b->consecutive &&
           a->negative == b->negative && expr_eq(ra, a->cond, rb, b->cond) &&
           expr_eq(ra, a->stop_when, rb, b->stop_when);
}

static int rules_compatible(const vigil_ruleset *ra, const vrule *a, const vigil_ruleset *rb, const vrule *b) {
    if (!str_eq(a->key, b->key) || !str_eq(a->name, b->name) || (a->nsteps > 0) != (b->nsteps > 0)) return 0;
    if (a->nsteps) {
        if (a->nsteps != b->nsteps || a->within_ms != b->within_ms || a->skip != b->skip ||
            a->skip_step != b->skip_step)
            return 0;
        for (int i = 0; i < a->nsteps; i++)
            if (!step_eq(ra, &a->steps[i], rb, &b->steps[i])) return 0;
        return 1;
    }
    if (a->window != b->window || a->window_ms != b->window_ms || a->precision_ms != b->precision_ms ||
        a->nagg != b->nagg || !expr_eq(ra, a->where, rb, b->where))
        return 0;
    for (int k = 0; k < a->nagg; k++)   /* same table, same order: the stored entries mean the same */
        if (!agg_eq(ra, &a->aggs[k], rb, &b->aggs[k])) return 0;
    return 1;
}

int vigil_ruleset_rules_compatible(const vigil_ruleset *from, int i, const vigil_ruleset *to, int j) {
    if (i < 0 || i >= from->nrules || j < 0 || j >= to->nrules) return 0;
    return rules_compatible(from, &from->rules[i], to, &to->rules[j]);
}

/* Each rule's `inherits`: given (restart: the catalog remembers it), else
 * the base's version of the same name when compatible (and, through it,
 * whatever that one inherited), else none. */
void vlineage_finalize(vigil_ruleset *rs) {
    const vigil_ruleset *b = rs->base;
    for (int i = 0; i < rs->nrules; i++) {
        vrule *r = &rs->rules[i];
        if (r->inherits > 0) continue;
        r->inherits = r->version;
        if (!b || r->draining) continue;
        int same = 0;
        for (int j = 0; j < b->nrules && !same; j++) {   /* the same version (a mode change, a promotion) */
            const vrule *o = &b->rules[j];
            if (!o->draining && o->version == r->version && strcmp(o->name, r->name) == 0) {
                r->inherits = o->inherits;
                same = 1;
            }
        }
        for (int j = 0; j < b->nrules && !same; j++) {
            const vrule *o = &b->rules[j];
            /* a version takes the state of one of the same mode: an active version never that
             * of a shadow running beside the old active one */
            if (o->draining || o->mode != r->mode || strcmp(o->name, r->name) != 0) continue;
            if (o->version < r->version && rules_compatible(b, o, rs, r)) r->inherits = o->inherits;
        }
    }
    vigil_ruleset_release(rs->base);
    rs->base = NULL;
}

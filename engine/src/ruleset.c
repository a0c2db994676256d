/* ruleset.c — the builder and the immutable compiled form of a set of rules.
 *
 * lua/ (or a C program) builds expressions and rule definitions here; add_rule
 * validates each rule (steps, refs, aggregates, types) and resolves field
 * paths to slot indexes; finalize groups rules by key field (key groups) and
 * compiles every regex of one field into one Hyperscan database
 * (hs_compile_multi), so that a field is scanned once per event however many
 * rules use it. Everything lives in one arena freed with the ruleset.
 *
 * Why over 800 lines: rule validation (steps, refs, aggregates, types) is
 * most of it and reads the builder's structures directly; the matcher's view
 * of the finished ruleset is in internal.h, so nothing else depends on how
 * the builder is laid out. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "internal.h"

struct arena_block {
    arena_block *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *vrs_alloc(vigil_ruleset *rs, size_t n) {
    n = (n + 15) & ~(size_t)15;
    arena_block *b = rs->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        arena_block *nb = malloc(sizeof *nb + cap);
        if (!nb) return NULL;
        nb->next = b;
        nb->used = 0;
        nb->cap = cap;
        rs->arena = b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *vrs_strdup(vigil_ruleset *rs, const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = vrs_alloc(rs, n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

/* FNV-1a over the bytes, then MurmurHash3's fmix64 finalizer: FNV alone
 * leaves the low bits (the ones a power-of-two table uses) poorly mixed for
 * short keys such as "596" and "597". */
uint64_t vigil_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ULL;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

int vrs_field_index(const vigil_ruleset *rs, const char *path) {
    for (int i = 0; i < rs->nfields; i++)
        if (strcmp(rs->fields[i], path) == 0) return i;
    return -1;
}

int vrs_field_add(vigil_ruleset *rs, const char *path) {
    int i = vrs_field_index(rs, path);
    if (i >= 0) return i;
    if (rs->nfields == rs->capfields) {
        int cap = rs->capfields ? rs->capfields * 2 : 16;
        char **f = realloc(rs->fields, (size_t)cap * sizeof *f);
        if (!f) return -1;
        rs->fields = f;
        rs->capfields = cap;
    }
    char *p = vrs_strdup(rs, path);
    if (!p) return -1;
    rs->fields[rs->nfields] = p;
    if (strcmp(path, "type") == 0) rs->type_field = rs->nfields;
    return rs->nfields++;
}

vigil_ruleset *vigil_ruleset_create(void) {
    vigil_ruleset *rs = calloc(1, sizeof *rs);
    if (!rs) return NULL;
    atomic_init(&rs->refs, 1);
    rs->type_field = -1;
    return rs;
}

void vigil_ruleset_retain(vigil_ruleset *rs) {
    atomic_fetch_add(&rs->refs, 1);
}

void vigil_ruleset_release(vigil_ruleset *rs) {
    if (!rs || atomic_fetch_sub(&rs->refs, 1) != 1) return;
    vigil_ruleset_release(rs->base);
    if (rs->host.free_ud) rs->host.free_ud(rs->host_ud);
    for (int i = 0; i < rs->nregex_dbs; i++) hs_free_database(rs->regex_dbs[i].db);
    free(rs->regex_dbs);
    free(rs->field_regex_db);
    for (int i = 0; i < rs->nlists; i++) {
        vlist *l = rs->lists[i];
        for (size_t j = 0; j < l->cap; j++) free(l->slots[j]);
        free(l->slots);
        free(l->name);
        free(l);
    }
    free(rs->lists);
    for (int i = 0; i < rs->nrules; i++) free(rs->rules[i].aggs);
    for (int g = 0; g < rs->ngroups; g++) free(rs->groups[g].rules);
    free(rs->groups);
    free(rs->rules);
    free(rs->regexes);
    free(rs->fields);
    arena_block *b = rs->arena;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    free(rs);
}

/* ---- expressions ------------------------------------------------------ */

static vigil_expr *xnew(vigil_ruleset *rs, vigil_expr_op op) {
    vigil_expr *x = vrs_alloc(rs, sizeof *x);
    if (!x) return NULL;
    x->op = op;
    x->field = -1;
    x->step_idx = -1;
    x->agg_idx = -1;
    x->regex_id = -1;
    return x;
}

vigil_expr *vigil_expr_const(vigil_ruleset *rs, vigil_value v) {
    vigil_expr *x = xnew(rs, VIGIL_X_CONST);
    if (!x) return NULL;
    x->v = v;
    if (v.type == VIGIL_T_STR) {
        char *s = vrs_alloc(rs, v.len + 1);
        if (!s) return NULL;
        memcpy(s, v.u.str, v.len);
        x->v.u.str = s;
    }
    return x;
}

vigil_expr *vigil_expr_num(vigil_ruleset *rs, double d) {
    vigil_value v = {.type = VIGIL_T_NUM, .u.num = d};
    return vigil_expr_const(rs, v);
}

vigil_expr *vigil_expr_str(vigil_ruleset *rs, const char *s, size_t len) {
    vigil_value v = {.type = VIGIL_T_STR, .len = (uint32_t)len, .u.str = s};
    return vigil_expr_const(rs, v);
}

vigil_expr *vigil_expr_bool(vigil_ruleset *rs, int b) {
    vigil_value v = {.type = VIGIL_T_BOOL, .u.b = !!b};
    return vigil_expr_const(rs, v);
}

vigil_expr *vigil_expr_field(vigil_ruleset *rs, const char *path) {
    vigil_expr *x = xnew(rs, VIGIL_X_FIELD);
    if (!x || !(x->path = vrs_strdup(rs, path))) return NULL;
    return x;
}

vigil_expr *vigil_expr_ref(vigil_ruleset *rs, const char *step, const char *path) {
    vigil_expr *x = xnew(rs, VIGIL_X_REF);
    if (!x || !(x->path = vrs_strdup(rs, path)) || !(x->step = vrs_strdup(rs, step))) return NULL;
    return x;
}

vigil_expr *vigil_expr_apply(vigil_ruleset *rs, vigil_expr_op op, vigil_expr *const *args, int n) {
    vigil_expr *x = xnew(rs, op);
    if (!x) return NULL;
    if (n > 0) {
        x->args = vrs_alloc(rs, (size_t)n * sizeof *x->args);
        if (!x->args) return NULL;
        memcpy(x->args, args, (size_t)n * sizeof *x->args);
    }
    x->nargs = n;
    return x;
}

vigil_expr *vigil_expr_matches(vigil_ruleset *rs, vigil_expr *field, const char *regex,
                               const char *flags) {
    vigil_expr *x = vigil_expr_apply(rs, VIGIL_X_MATCHES, &field, 1);
    if (!x || !(x->regex = vrs_strdup(rs, regex)) || !(x->rflags = vrs_strdup(rs, flags ? flags : "")))
        return NULL;
    return x;
}

vigil_expr *vigil_expr_in_list(vigil_ruleset *rs, vigil_expr *field, const char *list) {
    vigil_expr *x = vigil_expr_apply(rs, VIGIL_X_IN_LIST, &field, 1);
    if (!x || !(x->list_name = vrs_strdup(rs, list))) return NULL;
    return x;
}

vigil_expr *vigil_expr_agg(vigil_ruleset *rs, vigil_agg_kind k, const char *path,
                           vigil_expr *filter, int prior) {
    vigil_expr *x = xnew(rs, VIGIL_X_AGG);
    if (!x) return NULL;
    x->agg = k;
    x->filter = filter;
    x->prior = !!prior;
    if (path && !(x->path = vrs_strdup(rs, path))) return NULL;
    return x;
}

vigil_expr *vigil_expr_host(vigil_ruleset *rs, int fn) {
    vigil_expr *x = fn >= 1 ? xnew(rs, VIGIL_X_HOST) : NULL;
    if (x) x->host_fn = fn;
    return x;
}

vigil_status vigil_ruleset_set_host(vigil_ruleset *rs, const vigil_host *h, void *ud) {
    if (!rs || !h || !h->open || !h->close || !h->pred || !h->alert || rs->host.open || rs->finalized)
        return VIGIL_EINVAL;
    rs->host = *h;
    rs->host_ud = ud;
    return VIGIL_OK;
}

vigil_expr *vigil_expr_is_new(vigil_ruleset *rs, const char *path) {
    vigil_expr *x = xnew(rs, VIGIL_X_IS_NEW);
    if (!x || !(x->path = vrs_strdup(rs, path))) return NULL;
    return x;
}

/* ---- lists ------------------------------------------------------------- */

static int list_insert(vlist *l, const char *s, size_t len) {
    if ((l->n + 1) * 2 > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        char **slots = calloc(cap, sizeof *slots);
        if (!slots) return -1;
        for (size_t i = 0; i < l->cap; i++) {
            if (!l->slots[i]) continue;
            size_t j = vigil_hash(l->slots[i], strlen(l->slots[i])) & (cap - 1);
            while (slots[j]) j = (j + 1) & (cap - 1);
            slots[j] = l->slots[i];
        }
        free(l->slots);
        l->slots = slots;
        l->cap = cap;
    }
    size_t j = vigil_hash(s, len) & (l->cap - 1);
    while (l->slots[j]) {
        if (strlen(l->slots[j]) == len && memcmp(l->slots[j], s, len) == 0) return 0;
        j = (j + 1) & (l->cap - 1);
    }
    char *d = malloc(len + 1);
    if (!d) return -1;
    memcpy(d, s, len);
    d[len] = '\0';
    l->slots[j] = d;
    l->n++;
    return 0;
}

int vlist_contains(const vlist *l, const char *s, size_t len) {
    if (!l->cap) return 0;
    size_t j = vigil_hash(s, len) & (l->cap - 1);
    while (l->slots[j]) {
        if (strlen(l->slots[j]) == len && memcmp(l->slots[j], s, len) == 0) return 1;
        j = (j + 1) & (l->cap - 1);
    }
    return 0;
}

vigil_status vigil_ruleset_add_list(vigil_ruleset *rs, const char *name, const char *const *values,
                                    size_t n) {
    if (rs->finalized) return VIGIL_EINVAL;
    vlist *l = calloc(1, sizeof *l);
    if (!l || !(l->name = strdup(name))) {
        free(l);
        return VIGIL_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        if (list_insert(l, values[i], strlen(values[i])) != 0) {
            for (size_t j = 0; j < l->cap; j++) free(l->slots[j]);
            free(l->slots);
            free(l->name);
            free(l);
            return VIGIL_ENOMEM;
        }
    }
    for (int i = 0; i < rs->nlists; i++) {
        if (strcmp(rs->lists[i]->name, name) == 0) {   /* replace */
            vlist *old = rs->lists[i];
            for (size_t j = 0; j < old->cap; j++) free(old->slots[j]);
            free(old->slots);
            free(old->name);
            free(old);
            rs->lists[i] = l;
            return VIGIL_OK;
        }
    }
    if (rs->nlists == rs->caplists) {
        int cap = rs->caplists ? rs->caplists * 2 : 8;
        vlist **ls = realloc(rs->lists, (size_t)cap * sizeof *ls);
        if (!ls) return VIGIL_ENOMEM;
        rs->lists = ls;
        rs->caplists = cap;
    }
    rs->lists[rs->nlists++] = l;
    return VIGIL_OK;
}

/* ---- rule validation ----------------------------------------------------- */

typedef struct vctx {            /* state while validating one rule */
    vigil_ruleset *rs;
    vrule *r;
    vigil_error *err;
    int in_when;                 /* aggregates allowed */
    int in_filter;               /* inside an aggregate filter: no aggregates, no refs */
    int cur_step;                /* pattern: index of the step whose condition this is */
} vctx;

static const char *op_name(vigil_expr_op op) {
    static const char *n[] = {"const", "field", "ref", "aggregate", "is_new", "+", "-", "*", "/",
                              "unary -", "eq", "ne", "gt", "ge", "lt", "le", "between", "one_of",
                              "exists", "missing", "matches", "in_list", "all_of", "any_of",
                              "none_of", "function"};
    return (unsigned)op < sizeof n / sizeof n[0] ? n[op] : "?";
}

static int is_bool_op(vigil_expr_op op) {
    return (op >= VIGIL_X_EQ && op <= VIGIL_X_NOT) || op == VIGIL_X_IS_NEW || op == VIGIL_X_HOST;
}

static int add_agg(vctx *c, vigil_expr *x) {
    vrule *r = c->r;
    /* dedupe identical aggregates (same kind, field, filter node) */
    int field = x->field;
    for (int i = 0; i < r->nagg; i++) {
        vagg *a = &r->aggs[i];
        if (a->is_new == (x->op == VIGIL_X_IS_NEW) && a->kind == x->agg && a->field == field &&
            a->filter == x->filter)
            return i;
    }
    if (r->nagg == 32) return -2;
    vagg *na = realloc(r->aggs, (size_t)(r->nagg + 1) * sizeof *na);
    if (!na) return -1;
    r->aggs = na;
    vagg *a = &r->aggs[r->nagg];
    memset(a, 0, sizeof *a);
    a->kind = x->agg;
    a->field = field;
    a->filter = x->filter;
    a->is_new = x->op == VIGIL_X_IS_NEW;
    static const char *kn[] = {"count", "sum", "avg", "min", "max", "distinct"};
    if (a->is_new)
        snprintf(a->label, sizeof a->label, "is_new(%s)", x->path);
    else {   /* a filter by its conditions: two filtered aggregates do not share a name */
        int n = snprintf(a->label, sizeof a->label, "%s(%s)%s", kn[a->kind], x->path ? x->path : "",
                         a->filter ? " where " : "");
        if (a->filter && n > 0 && (size_t)n < sizeof a->label) vexpr_text(a->filter, a->label + n, sizeof a->label - (size_t)n);
        for (char *p = a->label; *p; p++)   /* a JSON member name as it is: no quote, backslash or control */
            if (*p == '"') *p = '\'';
            else if (*p == '\\' || (unsigned char)*p < 0x20) *p = ' ';
    }
    return r->nagg++;
}

static vigil_status check_expr(vctx *c, vigil_expr *x) {
    if (!x) return vigil_error_set(c->err, VIGIL_ECOMPILE, "missing expression");
    vigil_ruleset *rs = c->rs;
    switch (x->op) {
    case VIGIL_X_CONST:
        return VIGIL_OK;
    case VIGIL_X_FIELD:
        if ((x->field = vrs_field_add(rs, x->path)) < 0) return VIGIL_ENOMEM;
        return VIGIL_OK;
    case VIGIL_X_REF: {
        if (c->in_filter || c->r->nsteps == 0)
            return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                   "ref(\"%s\", \"%s\") is only allowed in a pattern step's condition",
                                   x->step, x->path);
        int si = -1;
        for (int i = 0; i < c->r->nsteps; i++)
            if (strcmp(c->r->steps[i].name, x->step) == 0) si = i;
        if (si < 0)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "ref() names unknown step '%s'", x->step);
        if (si > c->cur_step)
            return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                   "ref(\"%s\", …) refers to a later step; ref() may name only this or an earlier step",
                                   x->step);
        if (c->r->steps[si].negative)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "ref(\"%s\", …) names a negation step, which accepts no event",
                                   x->step);
        x->step_idx = si;
        if ((x->field = vrs_field_add(rs, x->path)) < 0) return VIGIL_ENOMEM;
        return VIGIL_OK;
    }
    case VIGIL_X_AGG:
    case VIGIL_X_IS_NEW:
        if (!c->in_when || c->in_filter)
            return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                   "aggregates and is_new() are only allowed in a window rule's `when`");
        if (x->op == VIGIL_X_AGG && x->agg != VIGIL_AGG_COUNT && !x->path)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "this aggregate needs a field name");
        if (x->path && (x->field = vrs_field_add(rs, x->path)) < 0) return VIGIL_ENOMEM;
        if (x->filter) {
            c->in_filter = 1;
            vigil_status s = check_expr(c, x->filter);
            c->in_filter = 0;
            if (s != VIGIL_OK) return s;
            if (!is_bool_op(x->filter->op))
                return vigil_error_set(c->err, VIGIL_ECOMPILE, "an aggregate's filter must be a condition");
        }
        if ((x->agg_idx = add_agg(c, x)) == -2)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "a rule uses at most 32 different aggregates");
        if (x->agg_idx < 0) return VIGIL_ENOMEM;
        return VIGIL_OK;
    case VIGIL_X_MATCHES:
    case VIGIL_X_IN_LIST:
    case VIGIL_X_EXISTS:
    case VIGIL_X_MISSING:
        if (x->nargs != 1 || !x->args[0] || x->args[0]->op != VIGIL_X_FIELD)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "%s() applies to an event field",
                                   op_name(x->op));
        if (check_expr(c, x->args[0]) != VIGIL_OK) return VIGIL_ECOMPILE;
        if (x->op == VIGIL_X_IN_LIST) {
            for (int i = 0; i < rs->nlists; i++)
                if (strcmp(rs->lists[i]->name, x->list_name) == 0) x->list = rs->lists[i];
            if (!x->list)
                return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                       "unknown list '%s' (expected a file lists/%s.txt)",
                                       x->list_name, x->list_name);
        }
        if (x->op == VIGIL_X_MATCHES) {
            if (strcmp(x->rflags, "") != 0 && strcmp(x->rflags, "i") != 0)
                return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                       "matches(): unknown flags \"%s\" (expected \"\" or \"i\")", x->rflags);
            hs_expr_info_t *info = NULL;
            hs_compile_error_t *ce = NULL;
            unsigned fl = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY;
            if (x->rflags[0] == 'i') fl |= HS_FLAG_CASELESS;
            if (hs_expression_info(x->regex, fl, &info, &ce) != HS_SUCCESS) {
                vigil_error_set(c->err, VIGIL_EREGEX, "matches(\"%s\"): Hyperscan cannot compile it: %s",
                                x->regex, ce ? ce->message : "unknown error");
                hs_free_compile_error(ce);
                return VIGIL_ECOMPILE;
            }
            free(info);
            if (rs->nregex == rs->capregex) {
                int cap = rs->capregex ? rs->capregex * 2 : 16;
                vigil_expr **rx = realloc(rs->regexes, (size_t)cap * sizeof *rx);
                if (!rx) return VIGIL_ENOMEM;
                rs->regexes = rx;
                rs->capregex = cap;
            }
            x->regex_id = rs->nregex;
            rs->regexes[rs->nregex++] = x;
        }
        return VIGIL_OK;
    case VIGIL_X_HOST:
        if (!rs->host.open)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "a function predicate needs a host (vigil_ruleset_set_host)");
        if (!c->r->nsteps || c->in_when)
            return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                   "function predicates are for pattern steps: :where(function(e, m) ... end)");
        return VIGIL_OK;
    case VIGIL_X_NOT:
        if (x->nargs != 1) return vigil_error_set(c->err, VIGIL_ECOMPILE, "not takes one condition");
        /* fallthrough */
    case VIGIL_X_AND:
    case VIGIL_X_OR:
        for (int i = 0; i < x->nargs; i++) {
            vigil_status s = check_expr(c, x->args[i]);
            if (s != VIGIL_OK) return s;
            if (!is_bool_op(x->args[i]->op) &&
                !(x->args[i]->op == VIGIL_X_CONST && x->args[i]->v.type == VIGIL_T_BOOL))
                return vigil_error_set(c->err, VIGIL_ECOMPILE,
                                       "%s{} takes conditions, got a %s", op_name(x->op),
                                       op_name(x->args[i]->op));
        }
        return VIGIL_OK;
    default:
        break;
    }
    int want = -1;
    if (x->op >= VIGIL_X_ADD && x->op <= VIGIL_X_DIV) want = 2;
    if (x->op == VIGIL_X_NEG) want = 1;
    if (x->op >= VIGIL_X_EQ && x->op <= VIGIL_X_LE) want = 2;
    if (x->op == VIGIL_X_BETWEEN) want = 3;
    if (want >= 0 && x->nargs != want)
        return vigil_error_set(c->err, VIGIL_ECOMPILE, "%s takes %d operands, got %d",
                               op_name(x->op), want, x->nargs);
    if (x->op == VIGIL_X_ONE_OF && x->nargs < 2)
        return vigil_error_set(c->err, VIGIL_ECOMPILE, "one_of{} needs at least one value");
    for (int i = 0; i < x->nargs; i++) {
        vigil_status s = check_expr(c, x->args[i]);
        if (s != VIGIL_OK) return s;
        if (is_bool_op(x->args[i]->op) && x->op != VIGIL_X_EQ && x->op != VIGIL_X_NE)
            return vigil_error_set(c->err, VIGIL_ECOMPILE, "%s: operand %d is a condition, expected a value",
                                   op_name(x->op), i + 1);
    }
    return VIGIL_OK;
}

static int valid_name(const char *s) {
    if (!s || !*s || strlen(s) > VIGIL_MAX_RULE_NAME) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

static vigil_status rule_fail(vigil_error *err, const vigil_rule_def *d, vigil_status s) {
    if (err) {
        snprintf(err->file, sizeof err->file, "%s", d->file ? d->file : "");
        err->line = d->line;
        snprintf(err->rule, sizeof err->rule, "%s", d->name ? d->name : "");
    }
    return s;
}

vigil_status vigil_ruleset_add_rule(vigil_ruleset *rs, const vigil_rule_def *d, vigil_error *err) {
    if (rs->finalized) return vigil_error_set(err, VIGIL_EINVAL, "ruleset already finalized");
    vigil_status s = VIGIL_ECOMPILE;
    if (!valid_name(d->name)) {
        vigil_error_set(err, s, "rule name '%s' is invalid: expected [a-z0-9_]+, at most %d characters",
                        d->name ? d->name : "", VIGIL_MAX_RULE_NAME);
        return rule_fail(err, d, s);
    }
    for (int i = 0; i < rs->nrules; i++)   /* two versions may run side by side: one of them draining */
        if (strcmp(rs->rules[i].name, d->name) == 0 &&
            (rs->rules[i].version == d->version ||
             (!rs->rules[i].draining && !d->draining && rs->rules[i].mode == d->mode))) {   /* a shadow beside: ok */
            vigil_error_set(err, s, "duplicate rule name '%s' (first defined at %s:%d)", d->name,
                            rs->rules[i].file ? rs->rules[i].file : "?", rs->rules[i].line);
            return rule_fail(err, d, s);
        }
    if (!d->key || !*d->key) {
        vigil_error_set(err, s, "missing `key`: the field that partitions state, e.g. key = \"card_id\"");
        return rule_fail(err, d, s);
    }
    if ((d->nsteps > 0) == (d->window != VIGIL_WIN_NONE)) {
        vigil_error_set(err, s, "a rule needs exactly one of `pattern` or `window` (with `when`)");
        return rule_fail(err, d, s);
    }
    if (d->nsteps > VIGIL_MAX_STEPS) {
        vigil_error_set(err, s, "a pattern has at most %d steps, got %d", VIGIL_MAX_STEPS, d->nsteps);
        return rule_fail(err, d, s);
    }
    if (d->version < 1 || d->within_ms < 0 || d->suppress_ms < 0 || d->window_ms < 0) {
        vigil_error_set(err, s, "version must be >= 1 and durations >= 0");
        return rule_fail(err, d, s);
    }
    if (rs->nrules == rs->caprules) {
        int cap = rs->caprules ? rs->caprules * 2 : 16;
        vrule *nr = realloc(rs->rules, (size_t)cap * sizeof *nr);
        if (!nr) return VIGIL_ENOMEM;
        rs->rules = nr;
        rs->caprules = cap;
    }
    vrule r;
    memset(&r, 0, sizeof r);
    r.name = vrs_strdup(rs, d->name);
    r.description = vrs_strdup(rs, d->description ? d->description : "");
    r.key = vrs_strdup(rs, d->key);
    r.file = vrs_strdup(rs, d->file ? d->file : "");
    r.line = d->line;
    r.version = d->version;
    r.severity = d->severity;
    r.mode = d->mode;
    r.within_ms = d->within_ms;
    r.skip = d->skip;
    r.skip_step = -1;
    r.where = d->where;
    r.window = d->window;
    r.window_ms = d->window_ms;
    r.precision_ms = d->precision_ms;
    r.when = d->when;
    r.suppress_ms = d->suppress_ms;
    r.alert_fn = d->alert_fn;
    r.draining = d->draining;
    r.inherits = d->inherits > 0 && d->inherits <= d->version ? d->inherits : 0;
    if (r.alert_fn && !rs->host.open) {
        vigil_error_set(err, VIGIL_ECOMPILE, "alert = function(m) needs a host (vigil_ruleset_set_host)");
        return rule_fail(err, d, VIGIL_ECOMPILE);
    }
    r.key_field = vrs_field_add(rs, d->key);
    vctx c = {.rs = rs, .r = &r, .err = err};
    if (r.key_field < 0 || !r.name || !r.key) return VIGIL_ENOMEM;

    if (d->nsteps > 0) {
        r.nsteps = d->nsteps;
        r.steps = vrs_alloc(rs, (size_t)d->nsteps * sizeof *r.steps);
        if (!r.steps) return VIGIL_ENOMEM;
        for (int i = 0; i < d->nsteps; i++) {
            const vigil_step_def *sd = &d->steps[i];
            vstep *st = &r.steps[i];
            if (!valid_name(sd->name)) {
                vigil_error_set(err, s, "step name '%s' is invalid: expected [a-z0-9_]+",
                                sd->name ? sd->name : "");
                return rule_fail(err, d, s);
            }
            for (int j = 0; j < i; j++)
                if (strcmp(r.steps[j].name, sd->name) == 0) {
                    vigil_error_set(err, s, "duplicate step name '%s'", sd->name);
                    return rule_fail(err, d, s);
                }
            st->name = vrs_strdup(rs, sd->name);
            st->contiguity = i == 0 ? VIGIL_CONT_STRICT : sd->contiguity;
            st->min = sd->min;
            st->max = sd->max;
            st->optional = sd->optional;
            st->greedy = sd->greedy;
            st->consecutive = sd->consecutive;
            st->cond = sd->cond;
            st->stop_when = sd->stop_when;
            if (st->max == 0 || (st->min > st->max)) {
                vigil_error_set(err, s, "step '%s': times(%u, %u) is empty; expected 1 <= min <= max",
                                sd->name, sd->min, sd->max);
                return rule_fail(err, d, s);
            }
            if (sd->contiguity == VIGIL_CONT_NOT_NEXT || sd->contiguity == VIGIL_CONT_NOT_FOLLOWED_BY) {
                if (i == 0) {
                    vigil_error_set(err, s, "a pattern cannot begin with a negation");
                    return rule_fail(err, d, s);
                }
                if (sd->min != 1 || sd->max != 1 || sd->optional || sd->stop_when) {
                    vigil_error_set(err, s, "step '%s': a negation (not_next/not_followed_by) takes no quantifier, "
                                    "optional() or stop_when", sd->name);
                    return rule_fail(err, d, s);
                }
                if (d->steps[i - 1].optional) {   /* FlinkCEP refuses it too */
                    vigil_error_set(err, s, "step '%s': a negation cannot follow the optional step '%s' (it would "
                                    "guard nothing when that step is skipped); make '%s' required or move the "
                                    "negation", sd->name, d->steps[i - 1].name, d->steps[i - 1].name);
                    return rule_fail(err, d, s);
                }
                if (i == d->nsteps - 1 && sd->contiguity == VIGIL_CONT_NOT_NEXT) {
                    vigil_error_set(err, s, "step '%s': not_next cannot end a pattern; use not_followed_by with `within` "
                                    "for an absence", sd->name);
                    return rule_fail(err, d, s);
                }
                if (i == d->nsteps - 1 && d->within_ms <= 0) {
                    vigil_error_set(err, s, "step '%s': a pattern ending in not_followed_by needs `within` (the absence "
                                    "is decided when it expires)", sd->name);
                    return rule_fail(err, d, s);
                }
            }
        }
        r.last_pos = -1;
        for (int i = 0; i < d->nsteps; i++) {
            r.steps[i].negative = r.steps[i].contiguity == VIGIL_CONT_NOT_NEXT ||
                                  r.steps[i].contiguity == VIGIL_CONT_NOT_FOLLOWED_BY;
            if (!r.steps[i].negative) r.last_pos = i;
        }
        r.absence = r.last_pos < d->nsteps - 1;
        for (int i = 0; i < d->nsteps; i++) {
            c.cur_step = i;
            if (r.steps[i].cond && (check_expr(&c, r.steps[i].cond) != VIGIL_OK))
                return rule_fail(err, d, VIGIL_ECOMPILE);
            if (r.steps[i].stop_when && check_expr(&c, r.steps[i].stop_when) != VIGIL_OK)
                return rule_fail(err, d, VIGIL_ECOMPILE);
        }
        if (d->skip == VIGIL_SKIP_TO_FIRST || d->skip == VIGIL_SKIP_TO_LAST) {
            for (int i = 0; i < r.nsteps; i++)
                if (d->skip_step && strcmp(r.steps[i].name, d->skip_step) == 0) r.skip_step = i;
            if (r.skip_step >= 0 && r.steps[r.skip_step].negative) r.skip_step = -1;
            if (r.skip_step < 0) {
                vigil_error_set(err, s, "skip strategy names unknown step '%s'",
                                d->skip_step ? d->skip_step : "");
                return rule_fail(err, d, s);
            }
        }
    } else {
        if (d->window_ms <= 0) {
            vigil_error_set(err, s, "the window needs a positive size");
            return rule_fail(err, d, s);
        }
        if (!d->when) {
            vigil_error_set(err, s, "a window rule needs `when`, e.g. when = ge(count(), 4)");
            return rule_fail(err, d, s);
        }
        if (r.where && check_expr(&c, r.where) != VIGIL_OK) return rule_fail(err, d, VIGIL_ECOMPILE);
        c.in_when = 1;
        if (check_expr(&c, r.when) != VIGIL_OK) {
            free(r.aggs);
            return rule_fail(err, d, VIGIL_ECOMPILE);
        }
        if (!is_bool_op(r.when->op)) {
            free(r.aggs);
            vigil_error_set(err, s, "`when` must be a condition such as ge(count(), 4), got a %s",
                            op_name(r.when->op));
            return rule_fail(err, d, s);
        }
        if (r.precision_ms && r.window != VIGIL_WIN_SLIDING) {
            free(r.aggs);
            vigil_error_set(err, s, "precision applies to sliding windows only");
            return rule_fail(err, d, s);
        }
        for (int k = 0; r.precision_ms && k < r.nagg; k++)
            if (r.aggs[k].is_new || r.aggs[k].kind == VIGIL_AGG_DISTINCT) {
                free(r.aggs);
                vigil_error_set(err, s, "a bucketed window (precision) keeps counts, not values: distinct() and "
                                        "is_new() need an exact window (drop precision)");
                return rule_fail(err, d, s);
            }
    }
    rs->rules[rs->nrules++] = r;
    return VIGIL_OK;
}

/* ---- finalize -------------------------------------------------------------- */

static vigil_status build_regex_dbs(vigil_ruleset *rs, vigil_error *err) {
    rs->field_regex_db = malloc((size_t)(rs->nfields ? rs->nfields : 1) * sizeof(int));
    if (!rs->field_regex_db) return VIGIL_ENOMEM;
    for (int f = 0; f < rs->nfields; f++) rs->field_regex_db[f] = -1;
    if (!rs->nregex) return VIGIL_OK;
    /* renumber regex ids so that each field's regexes are contiguous */
    vigil_expr **sorted = malloc((size_t)rs->nregex * sizeof *sorted);
    rs->regex_dbs = calloc((size_t)rs->nfields, sizeof *rs->regex_dbs);
    if (!sorted || !rs->regex_dbs) {
        free(sorted);
        return VIGIL_ENOMEM;
    }
    int n = 0;
    for (int f = 0; f < rs->nfields; f++) {
        int first = n;
        for (int i = 0; i < rs->nregex; i++)
            if (rs->regexes[i]->args[0]->field == f) {
                sorted[n] = rs->regexes[i];
                sorted[n]->regex_id = n;
                n++;
            }
        if (n == first) continue;
        int cnt = n - first;
        const char **exprs = malloc((size_t)cnt * sizeof *exprs);
        unsigned *flags = malloc((size_t)cnt * sizeof *flags);
        unsigned *ids = malloc((size_t)cnt * sizeof *ids);
        if (!exprs || !flags || !ids) {
            free(exprs); free(flags); free(ids); free(sorted);
            return VIGIL_ENOMEM;
        }
        for (int i = 0; i < cnt; i++) {
            exprs[i] = sorted[first + i]->regex;
            flags[i] = HS_FLAG_SINGLEMATCH | HS_FLAG_ALLOWEMPTY |
                       (sorted[first + i]->rflags[0] == 'i' ? HS_FLAG_CASELESS : 0);
            ids[i] = (unsigned)(first + i);
        }
        hs_database_t *db = NULL;
        hs_compile_error_t *ce = NULL;
        hs_error_t he = hs_compile_multi(exprs, flags, ids, (unsigned)cnt, HS_MODE_BLOCK, NULL, &db, &ce);
        free(exprs); free(flags); free(ids);
        if (he != HS_SUCCESS) {
            vigil_error_set(err, VIGIL_EREGEX, "Hyperscan could not compile the regexes of field '%s': %s",
                            rs->fields[f], ce ? ce->message : "unknown error");
            hs_free_compile_error(ce);
            free(sorted);
            return VIGIL_EREGEX;
        }
        vregex_db *rd = &rs->regex_dbs[rs->nregex_dbs];
        rd->field = f;
        rd->db = db;
        rd->first_id = first;
        rd->n = cnt;
        rs->field_regex_db[f] = rs->nregex_dbs++;
    }
    free(rs->regexes);
    rs->regexes = sorted;
    return VIGIL_OK;
}

/* eq(field, "text") (either way round): the field and the constant. */
static int eq_field_str(const vigil_expr *x, int *field, const vigil_value **v) {
    if (!x || x->op != VIGIL_X_EQ || x->nargs != 2) return 0;
    const vigil_expr *a = x->args[0], *b = x->args[1];
    if (a->op == VIGIL_X_CONST) {
        const vigil_expr *t = a;
        a = b;
        b = t;
    }
    if (a->op != VIGIL_X_FIELD || a->field < 0 || b->op != VIGIL_X_CONST || b->v.type != VIGIL_T_STR) return 0;
    *field = a->field;
    *v = &b->v;
    return 1;
}

/* A rule's routing test (vrule.pre): its `where` (a pattern: the condition
 * of its first step, when no later step can start a run) is such an eq, or an
 * all_of with one among its direct members; false there makes it false. */
static void rule_prefilter(vrule *r) {
    r->pre = NULL;
    r->pre_all = 0;
    const vigil_expr *w = r->nsteps ? (r->steps[0].optional ? NULL : r->steps[0].cond) : r->where;
    if (!w) return;
    if (eq_field_str(w, &r->pre_field, &r->pre)) {
        r->pre_all = !r->nsteps;
        return;
    }
    if (w->op == VIGIL_X_AND)
        for (int i = 0; i < w->nargs && !eq_field_str(w->args[i], &r->pre_field, &r->pre); i++) {}
}

vigil_status vigil_ruleset_finalize(vigil_ruleset *rs, vigil_error *err) {
    if (rs->finalized) return VIGIL_OK;
    /* key groups: rules sharing a key field (after those a base left, in its order) */
    vgroup *gs = realloc(rs->groups, (size_t)(rs->ngroups + rs->nrules + 1) * sizeof *rs->groups);
    if (!gs) return VIGIL_ENOMEM;
    rs->groups = gs;
    memset(rs->groups + rs->ngroups, 0, (size_t)(rs->nrules + 1) * sizeof *rs->groups);
    for (int i = 0; i < rs->nrules; i++) {
        vrule *r = &rs->rules[i];
        int g = 0;
        while (g < rs->ngroups && strcmp(rs->groups[g].key, r->key) != 0) g++;
        if (g == rs->ngroups) {
            rs->groups[g].key = r->key;
            rs->groups[g].field = r->key_field;
            rs->ngroups++;
        }
        vgroup *gr = &rs->groups[g];
        int *nr = realloc(gr->rules, (size_t)(gr->nrules + 1) * sizeof *nr);
        if (!nr) return VIGIL_ENOMEM;
        gr->rules = nr;
        gr->rules[gr->nrules++] = i;
        r->group = g;
        rule_prefilter(r);
    }
    vigil_status s = build_regex_dbs(rs, err);
    if (s != VIGIL_OK) return s;
    vlineage_finalize(rs);
    rs->finalized = 1;
    return VIGIL_OK;
}

int vigil_ruleset_rule_count(const vigil_ruleset *rs) { return rs->nrules; }
const char *vigil_ruleset_rule_name(const vigil_ruleset *rs, int i) { return rs->rules[i].name; }
int vigil_ruleset_rule_version(const vigil_ruleset *rs, int i) { return rs->rules[i].version; }
vigil_mode vigil_ruleset_rule_mode(const vigil_ruleset *rs, int i) { return rs->rules[i].mode; }
vigil_severity vigil_ruleset_rule_severity(const vigil_ruleset *rs, int i) { return rs->rules[i].severity; }
const char *vigil_ruleset_rule_key(const vigil_ruleset *rs, int i) { return rs->rules[i].key; }
int vigil_ruleset_group_count(const vigil_ruleset *rs) { return rs->ngroups; }
const char *vigil_ruleset_group_key(const vigil_ruleset *rs, int g) { return rs->groups[g].key; }
int vigil_ruleset_field_count(const vigil_ruleset *rs) { return rs->nfields; }

int vigil_ruleset_step_count(const vigil_ruleset *rs, int rule) {
    return rule >= 0 && rule < rs->nrules ? rs->rules[rule].nsteps : 0;
}

const char *vigil_ruleset_step_name(const vigil_ruleset *rs, int rule, int step) {
    if (rule < 0 || rule >= rs->nrules || step < 0 || step >= rs->rules[rule].nsteps) return NULL;
    return rs->rules[rule].steps[step].name;
}

int vigil_ruleset_rule_index(const vigil_ruleset *rs, const char *name) {
    int any = -1;
    for (int i = 0; i < rs->nrules; i++)
        if (!rs->rules[i].draining && strcmp(rs->rules[i].name, name) == 0) {
            if (rs->rules[i].mode == VIGIL_MODE_ACTIVE) return i;   /* the active one before a shadow beside it */
            if (any < 0) any = i;
        }
    return any;
}

int vigil_ruleset_rule_find(const vigil_ruleset *rs, const char *name, int version) {
    for (int i = 0; i < rs->nrules; i++)
        if (rs->rules[i].version == version && strcmp(rs->rules[i].name, name) == 0) return i;
    return -1;
}

int vigil_ruleset_rule_draining(const vigil_ruleset *rs, int i) { return rs->rules[i].draining; }
int vigil_ruleset_rule_inherits(const vigil_ruleset *rs, int i) { return rs->rules[i].inherits; }
int vigil_ruleset_group_rule_count(const vigil_ruleset *rs, int g) { return rs->groups[g].nrules; }
vigil_window_kind vigil_ruleset_rule_window(const vigil_ruleset *rs, int i) { return rs->rules[i].window; }
int64_t vigil_ruleset_rule_horizon(const vigil_ruleset *rs, int i) {
    const vrule *r = &rs->rules[i];
    return r->nsteps ? r->within_ms : r->window_ms + r->precision_ms;
}

const char *vigil_severity_str(vigil_severity s) {
    static const char *n[] = {"info", "low", "medium", "high", "critical"};
    return (unsigned)s < 5 ? n[s] : "medium";
}

const char *vigil_mode_str(vigil_mode m) {
    return m == VIGIL_MODE_SHADOW ? "shadow" : "active";
}

vigil_status vigil_duration_parse(const char *s, int64_t *ms) {
    if (!s || !*s) return VIGIL_EPARSE;
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !isfinite(v) || v < 0) return VIGIL_EPARSE;
    double mul;
    if (strcmp(end, "ms") == 0) mul = 1;
    else if (strcmp(end, "s") == 0) mul = 1000;
    else if (strcmp(end, "m") == 0) mul = 60000;
    else if (strcmp(end, "h") == 0) mul = 3600000;
    else if (strcmp(end, "d") == 0) mul = 86400000;
    else return VIGIL_EPARSE;
    double r = v * mul;
    if (r > 9.0e15) return VIGIL_EPARSE;
    *ms = (int64_t)llround(r);
    return VIGIL_OK;
}

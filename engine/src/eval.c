/* eval.c — evaluating rule expressions against the current event.
 *
 * Conditions and `when` expressions are small trees of typed values. The
 * rules of comparison are the DSL's (DESIGN.md §3–4): no implicit
 * conversion (596 and "596" differ), a missing or null field or an undefined
 * aggregate (avg of an empty window) makes every comparison false, strings
 * order bytewise. Regex results come precomputed per event (one Hyperscan
 * scan per field, see engine.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"
#include "engine_int.h"

static const vigil_value V_UNDEF = {.type = VIGIL_T_UNDEF};
static const vigil_value V_MISSING = {.type = VIGIL_T_MISSING};

static vigil_value vbool(int b) {
    vigil_value v = {.type = VIGIL_T_BOOL, .u.b = !!b};
    return v;
}

/* JSON null counts as absent in every comparison, as in exists()/missing():
 * ne("atm") holds neither on a missing channel nor on `"channel": null`. */
static int defined(const vigil_value *v) {
    return v->type != VIGIL_T_MISSING && v->type != VIGIL_T_UNDEF && v->type != VIGIL_T_NULL;
}

/* 1 equal, 0 different; both must be defined */
static int equal(const vigil_value *a, const vigil_value *b) {
    if (a->type != b->type) return 0;
    switch (a->type) {
    case VIGIL_T_NUM: return a->u.num == b->u.num;
    case VIGIL_T_STR: return a->len == b->len && vbytes_eq(a->u.str, b->u.str, a->len);
    case VIGIL_T_BOOL: return a->u.b == b->u.b;
    case VIGIL_T_NULL: return 1;
    default: return 0;
    }
}

/* -2 incomparable, else -1/0/1 */
static int order(const vigil_value *a, const vigil_value *b) {
    if (a->type == VIGIL_T_NUM && b->type == VIGIL_T_NUM)
        return a->u.num < b->u.num ? -1 : a->u.num > b->u.num ? 1 : 0;
    if (a->type == VIGIL_T_STR && b->type == VIGIL_T_STR) {
        uint32_t n = a->len < b->len ? a->len : b->len;
        int c = memcmp(a->u.str, b->u.str, n);
        if (c) return c < 0 ? -1 : 1;
        return a->len < b->len ? -1 : a->len > b->len ? 1 : 0;
    }
    return -2;
}

static const vigil_event *ref_event(const vrun *r, int step) {
    if (!r) return NULL;
    for (uint32_t i = r->nev; i-- > 0;)
        if (r->evstep[i] == step) return r->ev[i];
    return NULL;
}

vigil_value vexpr_eval(const vigil_expr *x, const veval *c) {
    vigil_value a, b;
    switch (x->op) {
    case VIGIL_X_CONST:
        return x->v;
    case VIGIL_X_FIELD:   /* an event decoded before a hot reload has no slot for a newer field */
        return x->field < c->ev->nslots ? c->ev->slots[x->field] : V_MISSING;
    case VIGIL_X_REF: {
        const vigil_event *re = ref_event(c->run, x->step_idx);
        return !re ? V_UNDEF : x->field < re->nslots ? re->slots[x->field] : V_MISSING;
    }
    case VIGIL_X_AGG:
        return x->prior ? c->prior[x->agg_idx] : c->aggs[x->agg_idx];
    case VIGIL_X_IS_NEW:
        return c->is_new ? vbool(c->is_new[x->agg_idx]) : vbool(0);
    case VIGIL_X_ADD:
    case VIGIL_X_SUB:
    case VIGIL_X_MUL:
    case VIGIL_X_DIV:
        a = vexpr_eval(x->args[0], c);
        b = vexpr_eval(x->args[1], c);
        if (a.type != VIGIL_T_NUM || b.type != VIGIL_T_NUM) return V_UNDEF;
        {
            double r = x->op == VIGIL_X_ADD   ? a.u.num + b.u.num
                       : x->op == VIGIL_X_SUB ? a.u.num - b.u.num
                       : x->op == VIGIL_X_MUL ? a.u.num * b.u.num
                       : b.u.num == 0         ? NAN
                                              : a.u.num / b.u.num;
            if (!isfinite(r)) return V_UNDEF;
            vigil_value v = {.type = VIGIL_T_NUM, .u.num = r};
            return v;
        }
    case VIGIL_X_NEG:
        a = vexpr_eval(x->args[0], c);
        if (a.type != VIGIL_T_NUM) return V_UNDEF;
        a.u.num = -a.u.num;
        return a;
    case VIGIL_X_EQ:
    case VIGIL_X_NE:
        a = vexpr_eval(x->args[0], c);
        b = vexpr_eval(x->args[1], c);
        if (!defined(&a) || !defined(&b)) return vbool(0);
        return vbool(equal(&a, &b) == (x->op == VIGIL_X_EQ));
    case VIGIL_X_GT:
    case VIGIL_X_GE:
    case VIGIL_X_LT:
    case VIGIL_X_LE: {
        a = vexpr_eval(x->args[0], c);
        b = vexpr_eval(x->args[1], c);
        int o = order(&a, &b);
        if (o == -2) return vbool(0);
        switch (x->op) {
        case VIGIL_X_GT: return vbool(o > 0);
        case VIGIL_X_GE: return vbool(o >= 0);
        case VIGIL_X_LT: return vbool(o < 0);
        default: return vbool(o <= 0);
        }
    }
    case VIGIL_X_BETWEEN: {
        a = vexpr_eval(x->args[0], c);
        vigil_value lo = vexpr_eval(x->args[1], c), hi = vexpr_eval(x->args[2], c);
        int o1 = order(&a, &lo), o2 = order(&a, &hi);
        return vbool(o1 != -2 && o2 != -2 && o1 >= 0 && o2 <= 0);
    }
    case VIGIL_X_ONE_OF:
        a = vexpr_eval(x->args[0], c);
        if (!defined(&a)) return vbool(0);
        for (int i = 1; i < x->nargs; i++) {
            b = vexpr_eval(x->args[i], c);
            if (defined(&b) && equal(&a, &b)) return vbool(1);
        }
        return vbool(0);
    case VIGIL_X_EXISTS:
        a = vexpr_eval(x->args[0], c);
        return vbool(a.type != VIGIL_T_MISSING && a.type != VIGIL_T_NULL);
    case VIGIL_X_MISSING:
        a = vexpr_eval(x->args[0], c);
        return vbool(a.type == VIGIL_T_MISSING || a.type == VIGIL_T_NULL);
    case VIGIL_X_MATCHES:
        if (!c->regex_hits) return vbool(0);
        return vbool((c->regex_hits[x->regex_id >> 6] >> (x->regex_id & 63)) & 1);
    case VIGIL_X_IN_LIST:
        a = vexpr_eval(x->args[0], c);
        if (a.type == VIGIL_T_STR) return vbool(vlist_contains(x->list, a.u.str, a.len));
        if (a.type == VIGIL_T_NUM) {
            char t[64];
            int n = snprintf(t, sizeof t, "%.17g", a.u.num);
            if (a.u.num == floor(a.u.num) && fabs(a.u.num) < 9007199254740992.0)
                n = snprintf(t, sizeof t, "%.0f", a.u.num);
            return vbool(vlist_contains(x->list, t, (size_t)n));
        }
        return vbool(0);
    case VIGIL_X_AND:
        for (int i = 0; i < x->nargs; i++)
            if (!vexpr_true(x->args[i], c)) return vbool(0);
        return vbool(1);
    case VIGIL_X_OR:
        for (int i = 0; i < x->nargs; i++)
            if (vexpr_true(x->args[i], c)) return vbool(1);
        return vbool(0);
    case VIGIL_X_HOST: return vbool(veng_host_pred(c, x->host_fn) > 0);
    case VIGIL_X_NOT:
        return vbool(!vexpr_true(x->args[0], c));
    }
    return V_UNDEF;
}

/* An operand without copying it when it is a constant, a field of the event
 * or an aggregate (the usual leaves); anything else is evaluated into tmp. */
static inline const vigil_value *operand(const vigil_expr *x, const veval *c, vigil_value *tmp) {
    switch (x->op) {
    case VIGIL_X_CONST: return &x->v;
    case VIGIL_X_FIELD: return x->field < c->ev->nslots ? &c->ev->slots[x->field] : &V_MISSING;
    case VIGIL_X_AGG: return x->prior ? &c->prior[x->agg_idx] : &c->aggs[x->agg_idx];
    default: *tmp = vexpr_eval(x, c); return tmp;
    }
}

/* The truth of a condition. The common shapes (all_of/any_of/none_of over
 * comparisons of fields, constants and aggregates, regex bits) are decided
 * here without building intermediate values: this runs for every rule's
 * `where` and `when` on every event. Same semantics as vexpr_eval. */
int vexpr_true(const vigil_expr *x, const veval *c) {
    if (!x) return 1;
    vigil_value ta, tb;
    const vigil_value *a, *b;
    switch (x->op) {
    case VIGIL_X_AND:
        for (int i = 0; i < x->nargs; i++)
            if (!vexpr_true(x->args[i], c)) return 0;
        return 1;
    case VIGIL_X_OR:
        for (int i = 0; i < x->nargs; i++)
            if (vexpr_true(x->args[i], c)) return 1;
        return 0;
    case VIGIL_X_NOT:
        return !vexpr_true(x->args[0], c);
    case VIGIL_X_EQ:
    case VIGIL_X_NE:
        a = operand(x->args[0], c, &ta);
        b = operand(x->args[1], c, &tb);
        if (!defined(a) || !defined(b)) return 0;
        return equal(a, b) == (x->op == VIGIL_X_EQ);
    case VIGIL_X_GT:
    case VIGIL_X_GE:
    case VIGIL_X_LT:
    case VIGIL_X_LE: {
        a = operand(x->args[0], c, &ta);
        b = operand(x->args[1], c, &tb);
        int o = order(a, b);
        if (o == -2) return 0;
        return x->op == VIGIL_X_GT ? o > 0 : x->op == VIGIL_X_GE ? o >= 0 : x->op == VIGIL_X_LT ? o < 0 : o <= 0;
    }
    case VIGIL_X_MATCHES:
        return c->regex_hits && ((c->regex_hits[x->regex_id >> 6] >> (x->regex_id & 63)) & 1);
    default: {
        vigil_value v = vexpr_eval(x, c);
        return v.type == VIGIL_T_BOOL && v.u.b;
    }
    }
}

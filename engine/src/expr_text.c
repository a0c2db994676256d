/* expr_text.c — a compiled expression as the rule language writes it, for
 * people: explain's operands (`5 * prior(avg("tx_amount"))`), aggregate
 * names, messages. The text is the DSL's (comparisons as functions,
 * arithmetic infix, a filter as the aggregate's table of conditions), not a
 * parseable round trip: a where{} table comes back as all_of{...}. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "internal.h"

typedef struct tbuf { char *p; size_t n, len; } tbuf;

static void put(tbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(tbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(b->p + (b->len < b->n ? b->len : b->n), b->len < b->n ? b->n - b->len : 0, fmt, ap);
    va_end(ap);
    if (w > 0) b->len += (size_t)w;
}

static void value(tbuf *b, const vigil_value *v) {
    switch (v->type) {
    case VIGIL_T_NUM: put(b, "%.15g", v->u.num); break;
    case VIGIL_T_STR: put(b, "\"%.*s\"", (int)(v->len > 200 ? 200 : v->len), v->u.str); break;
    case VIGIL_T_BOOL: put(b, "%s", v->u.b ? "true" : "false"); break;
    default: put(b, "nil"); break;
    }
}

static void expr(tbuf *b, const vigil_expr *x, int depth);

static void args(tbuf *b, const vigil_expr *x, int from, int depth) {
    for (int i = from; i < x->nargs; i++) {
        if (i > from) put(b, ", ");
        expr(b, x->args[i], depth + 1);
    }
}

static void expr(tbuf *b, const vigil_expr *x, int depth) {
    static const char *agg[] = {"count", "sum", "avg", "min", "max", "distinct"};
    if (!x) return;
    if (depth > 32) {
        put(b, "…");
        return;
    }
    switch (x->op) {
    case VIGIL_X_CONST: value(b, &x->v); return;
    case VIGIL_X_FIELD: put(b, "%s", x->path); return;
    case VIGIL_X_REF: put(b, "ref(\"%s\", \"%s\")", x->step, x->path); return;
    case VIGIL_X_IS_NEW: put(b, "is_new(\"%s\")", x->path); return;
    case VIGIL_X_AGG:
        if (x->prior) put(b, "prior(");
        if (x->agg == VIGIL_AGG_COUNT) {
            put(b, "count(");
            if (x->filter) expr(b, x->filter, depth + 1);
            put(b, ")");
        } else {
            put(b, "%s(\"%s\"", agg[x->agg], x->path);
            if (x->filter) {
                put(b, ", ");
                expr(b, x->filter, depth + 1);
            }
            put(b, ")");
        }
        if (x->prior) put(b, ")");
        return;
    case VIGIL_X_ADD: case VIGIL_X_SUB: case VIGIL_X_MUL: case VIGIL_X_DIV: {
        const char *op = x->op == VIGIL_X_ADD ? "+" : x->op == VIGIL_X_SUB ? "-" : x->op == VIGIL_X_MUL ? "*" : "/";
        if (depth) put(b, "(");
        expr(b, x->args[0], depth + 1);
        put(b, " %s ", op);
        expr(b, x->args[1], depth + 1);
        if (depth) put(b, ")");
        return;
    }
    case VIGIL_X_NEG: put(b, "-"); expr(b, x->args[0], depth + 1); return;
    case VIGIL_X_MATCHES:
        put(b, "matches(");
        expr(b, x->args[0], depth + 1);
        put(b, ", \"%s\"%s)", x->regex, x->rflags && x->rflags[0] ? ", \"i\"" : "");
        return;
    case VIGIL_X_IN_LIST:
        put(b, "in_list(");
        expr(b, x->args[0], depth + 1);
        put(b, ", \"%s\")", x->list_name);
        return;
    case VIGIL_X_HOST: put(b, "function #%d", x->host_fn); return;
    case VIGIL_X_AND: case VIGIL_X_OR: case VIGIL_X_NOT:
        put(b, "%s{", x->op == VIGIL_X_AND ? "all_of" : x->op == VIGIL_X_OR ? "any_of" : "none_of");
        args(b, x, 0, depth);
        put(b, "}");
        return;
    default: {
        static const struct { vigil_expr_op op; const char *name; } fns[] = {
            {VIGIL_X_EQ, "eq"}, {VIGIL_X_NE, "ne"}, {VIGIL_X_GT, "gt"}, {VIGIL_X_GE, "ge"}, {VIGIL_X_LT, "lt"},
            {VIGIL_X_LE, "le"}, {VIGIL_X_BETWEEN, "between"}, {VIGIL_X_ONE_OF, "one_of"},
            {VIGIL_X_EXISTS, "exists"}, {VIGIL_X_MISSING, "missing"}};
        const char *name = "?";
        for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++)
            if (fns[i].op == x->op) name = fns[i].name;
        put(b, "%s(", name);
        args(b, x, 0, depth);
        put(b, ")");
        return;
    }
    }
}

size_t vexpr_text(const vigil_expr *x, char *buf, size_t n) {
    tbuf b = {.p = buf, .n = n, .len = 0};
    if (n) buf[0] = '\0';
    expr(&b, x, 0);
    if (n && b.len >= n) {   /* cut: say so */
        if (n > 4) memcpy(buf + n - 4, "…", 4);
        buf[n - 1] = '\0';
    }
    return b.len;
}

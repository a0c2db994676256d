/* compile_expr.c — expressions and where{} conditions of rule{} (DESIGN.md
 * §4, docs/rules.md §5–§7): the tagged tables the prelude builds for e.amount,
 * gt(5), sum("amount") + 1, all_of{...}, matches(), in_list() … become
 * vigil_expr trees through the ruleset builder.
 *
 * It is its own file because it is the recursive half of the compiler, with
 * its own limits: expressions are built as trees, not DAGs, and a node budget
 * (compile.c, cc_node) and a depth limit (MAX_DEPTH) stop a rule file that
 * shares one sub-expression 2^60 ways or builds a cycle. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <cjson/cJSON.h>
#include "compile_int.h"

#define MAX_DEPTH 200            /* nesting of an expression */

static vigil_expr *field(cc *c, const char *path) {
    if (!cc_valid_path(path))
        return cc_fail(c, "'%s' is not a field path%s (expected e.g. \"amount\" or \"card.bin\")",
                     path ? path : "", cc_has_control(path) ? ": it contains a control character (CR, LF, tab, ...)" : "");
    return cc_node(c, vigil_expr_field(c->rs, path));
}

static vigil_expr *list_expr(cc *c, vigil_expr *x, const char *list) {
    if (!x) return NULL;
    vigil_error e;
    vigil_error_clear(&e);
    vigil_status s = ld_need_list(c->ld, list, &e);
    if (s == VIGIL_ENOMEM) {
        c->st = s;
        return NULL;
    }
    if (s != VIGIL_OK) return cc_fail(c, "%s", e.msg);
    return cc_node(c, vigil_expr_in_list(c->rs, x, list));
}

static vigil_expr *matches_expr(cc *c, vigil_expr *x, int t) {
    const char *re = cc_rstr(c->L, t, "_re"), *fl = cc_rstr(c->L, t, "_flags");
    if (!x) return NULL;
    if (!re) return cc_fail(c, "matches(): the regex must be a string without NUL bytes");
    return cc_node(c, vigil_expr_matches(c->rs, x, re, fl ? fl : ""));
}

static const struct { const char *name; vigil_expr_op op; } ops[] = {
    {"add", VIGIL_X_ADD}, {"sub", VIGIL_X_SUB},   {"mul", VIGIL_X_MUL},         {"div", VIGIL_X_DIV},
    {"neg", VIGIL_X_NEG}, {"eq", VIGIL_X_EQ},     {"ne", VIGIL_X_NE},           {"gt", VIGIL_X_GT},
    {"ge", VIGIL_X_GE},   {"lt", VIGIL_X_LT},     {"le", VIGIL_X_LE},           {"between", VIGIL_X_BETWEEN},
    {"one_of", VIGIL_X_ONE_OF}, {"exists", VIGIL_X_EXISTS}, {"missing", VIGIL_X_MISSING},
    {"and", VIGIL_X_AND}, {"or", VIGIL_X_OR},     {"none", VIGIL_X_NOT},
};

static int op_of(const char *s, vigil_expr_op *op) {
    for (size_t i = 0; s && i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, s) == 0) {
            *op = ops[i].op;
            return 1;
        }
    return 0;
}

/* Compile t[first..n] into a temporary array (a userdata left on the stack);
 * prefix, when not NULL, is put before them. */
static vigil_expr **args_of(cc *c, int t, int first, int n, vigil_expr *prefix, int *count) {
    int total = n - first + 1 + (prefix ? 1 : 0);
    if (total < 0) total = 0;
    vigil_expr **a = lua_newuserdatauv(c->L, (size_t)(total ? total : 1) * sizeof *a, 0);
    int k = 0;
    if (prefix) a[k++] = prefix;
    for (int i = first; i <= n && !cc_bad(c); i++) {
        lua_rawgeti(c->L, t, i);
        a[k++] = cc_expr(c, lua_gettop(c->L));
        lua_pop(c->L, 1);
    }
    *count = total;
    return cc_bad(c) ? NULL : a;
}

static vigil_expr *op_expr(cc *c, int t) {
    lua_State *L = c->L;
    const char *name = cc_rstr(L, t, "_op");
    vigil_expr_op op;
    if (!op_of(name, &op)) return cc_fail(c, "unknown expression operator '%s'", name ? name : "?");
    int n = (int)lua_rawlen(L, t), cnt = 0;
    vigil_expr **a = args_of(c, t, 1, n, NULL, &cnt);
    if (!a) return NULL;
    if (op == VIGIL_X_AND || op == VIGIL_X_OR || op == VIGIL_X_NOT) {
        if (cnt == 0) return cc_fail(c, "all_of/any_of/none_of{} needs at least one condition");
        if (op == VIGIL_X_NOT) {   /* none_of{a, b} = not any_of{a, b} */
            vigil_expr *any = cnt == 1 ? a[0] : cc_node(c, vigil_expr_apply(c->rs, VIGIL_X_OR, a, cnt));
            return any ? cc_node(c, vigil_expr_apply(c->rs, VIGIL_X_NOT, &any, 1)) : NULL;
        }
        if (cnt == 1) return a[0];
    }
    return cc_node(c, vigil_expr_apply(c->rs, op, a, cnt));
}

static const char *const agg_names[] = {"count", "sum", "avg", "min", "max", "distinct", NULL};

static vigil_expr *expr_obj(cc *c, int t) {
    lua_State *L = c->L;
    const char *k = cc_rstr(L, t, "_k");
    if (!k) return cc_fail(c, "malformed expression object");
    if (strcmp(k, "field") == 0) return field(c, cc_rstr(L, t, "_path"));
    if (strcmp(k, "ref") == 0) {
        const char *step = cc_rstr(L, t, "_step"), *path = cc_rstr(L, t, "_path");
        if (!step || !cc_valid_path(path))
            return cc_fail(c, "ref() takes a step name and a field path: ref(\"login\", \"country\")");
        return cc_node(c, vigil_expr_ref(c->rs, step, path));
    }
    if (strcmp(k, "agg") == 0) {
        const char *a = cc_rstr(L, t, "_agg"), *path = cc_rstr(L, t, "_path");
        int ai = 0;
        while (agg_names[ai] && (!a || strcmp(agg_names[ai], a) != 0)) ai++;
        if (!agg_names[ai]) return cc_fail(c, "unknown aggregate '%s'", a ? a : "?");
        if (ai != VIGIL_AGG_COUNT && !cc_valid_path(path))
            return cc_fail(c, "%s() needs a field path, e.g. %s(\"amount\")", a, a);
        vigil_expr *filter = NULL;
        if (cc_rget(L, t, "_filter") != LUA_TNIL) {
            char what[32];
            snprintf(what, sizeof what, "%s() filter", a);
            if (cc_where(c, lua_gettop(L), what, &filter) != 0) return NULL;
        }
        lua_pop(L, 1);
        return cc_node(c, vigil_expr_agg(c->rs, (vigil_agg_kind)ai, ai == VIGIL_AGG_COUNT ? NULL : path,
                                      filter, cc_rbool(L, t, "_prior")));
    }
    if (strcmp(k, "is_new") == 0) {
        const char *path = cc_rstr(L, t, "_path");
        if (!cc_valid_path(path)) return cc_fail(c, "is_new() needs a field path, e.g. is_new(\"device_id\")");
        return cc_node(c, vigil_expr_is_new(c->rs, path));
    }
    if (strcmp(k, "op") == 0) return op_expr(c, t);
    if (strcmp(k, "matches") == 0 || strcmp(k, "in_list") == 0) {
        cc_rget(L, t, "_x");
        vigil_expr *x = cc_expr(c, lua_gettop(L));
        lua_pop(L, 1);
        if (k[0] == 'm') return matches_expr(c, x, t);
        const char *list = cc_rstr(L, t, "_list");
        if (!list) return cc_fail(c, "in_list() needs a list name");
        return list_expr(c, x, list);
    }
    return cc_fail(c, "malformed expression object ('%s')", k);
}

static vigil_expr *cx_inner(cc *c, int idx) {
    lua_State *L = c->L;
    char buf[96];
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) return cc_fail(c, "a number in a condition must be finite, got %g", d);
        return cc_node(c, vigil_expr_num(c->rs, d));
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > UINT32_MAX) return cc_fail(c, "string constant too long");
        return cc_node(c, vigil_expr_str(c->rs, s, len));
    }
    case LUA_TBOOLEAN: return cc_node(c, vigil_expr_bool(c->rs, lua_toboolean(L, idx)));
    case LUA_TFUNCTION:
        return cc_fail(c, "a function is not a value; a Lua function predicate is a whole step condition: "
                        ":where(function(e, m) return ... end)");
    case LUA_TTABLE:
        switch (cc_kind_of(L, idx)) {
        case K_EXPR: return expr_obj(c, idx);
        case K_COND:
            return cc_fail(c, "a one-argument condition such as gt(5) belongs in a where{} table "
                            "(amount = gt(5)); in an expression compare two values: gt(e.amount, 5)");
        default: break;
        }
        /* fallthrough */
    default:
        return cc_fail(c, "expected a value or an expression, got %s", cc_describe(L, idx, buf, sizeof buf));
    }
}

vigil_expr *cc_expr(cc *c, int idx) {
    if (cc_bad(c)) return NULL;
    if (c->depth >= MAX_DEPTH)
        return cc_fail(c, "expression nested too deeply (more than %d levels; a cycle?)", MAX_DEPTH);
    luaL_checkstack(c->L, 8, "expression nesting");
    int top = lua_gettop(c->L);
    c->depth++;
    vigil_expr *x = cx_inner(c, idx);
    c->depth--;
    lua_settop(c->L, top);
    return x;
}

/* ---- where{} conditions -------------------------------------------------------------- */

/* The condition `path = <value at v>` of a where{} table. */
static vigil_expr *cond_of(cc *c, const char *path, int v) {
    lua_State *L = c->L;
    char buf[96];
    int ty = lua_type(L, v);
    kind_t k = cc_kind_of(L, v);
    if (ty == LUA_TFUNCTION)
        return cc_fail(c, "%s = function: a function is not a condition of one field; a Lua function "
                        "predicate is a whole step condition: :where(function(e, m) return ... end)", path);
    if (ty == LUA_TTABLE && k != K_EXPR && k != K_COND) {
        if (k == K_PLAIN)
            return cc_fail(c, "where{ %s = {...} }: a table is not a value; for a set of values use "
                            "one_of{...}", path);
        return cc_fail(c, "where{ %s = ... }: expected a value or a condition, got %s", path,
                     cc_describe(L, v, buf, sizeof buf));
    }
    vigil_expr *f = field(c, path);
    if (!f) return NULL;
    if (k != K_COND) {       /* equality with a constant, ref() or expression */
        vigil_expr *a[2] = {f, cc_expr(c, v)};
        return a[1] ? cc_node(c, vigil_expr_apply(c->rs, VIGIL_X_EQ, a, 2)) : NULL;
    }
    const char *name = cc_rstr(L, v, "_op");
    vigil_expr_op op;
    if (name && strcmp(name, "matches") == 0) return matches_expr(c, f, v);
    if (name && strcmp(name, "in_list") == 0) {
        const char *list = cc_rstr(L, v, "_list");
        return list ? list_expr(c, f, list) : cc_fail(c, "in_list() needs a list name");
    }
    if (!op_of(name, &op)) return cc_fail(c, "malformed condition for '%s'", path);
    int cnt = 0;
    vigil_expr **a = args_of(c, v, 1, (int)lua_rawlen(L, v), f, &cnt);
    return a ? cc_node(c, vigil_expr_apply(c->rs, op, a, cnt)) : NULL;
}

/* Is the expression object at idx a condition (true/false), not a value? */
static int is_condition(lua_State *L, int idx) {
    static const char *const conds[] = {"eq", "ne", "gt", "ge", "lt", "le", "between", "one_of",
                                        "exists", "missing", "and", "or", "none", NULL};
    const char *k = cc_rstr(L, idx, "_k");
    if (!k) return 0;
    if (strcmp(k, "matches") == 0 || strcmp(k, "in_list") == 0 || strcmp(k, "is_new") == 0) return 1;
    if (strcmp(k, "op") != 0) return 0;
    const char *op = cc_rstr(L, idx, "_op");
    for (int i = 0; op && conds[i]; i++)
        if (strcmp(conds[i], op) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A where{} table (all must hold), or an expression object. *out = NULL for
 * an empty table (any event). Returns 0, or -1 with the error in c. */
int cc_where(cc *c, int idx, const char *what, vigil_expr **out) {
    lua_State *L = c->L;
    char buf[96];
    *out = NULL;
    if (cc_bad(c)) return -1;
    int top = lua_gettop(L);
    kind_t k = cc_kind_of(L, idx);
    if (k == K_EXPR) {
        if (!is_condition(L, idx)) {
            cc_fail(c, "%s(expression): the expression must be a condition such as gt(e.amount, 500), "
                     "not a value", what);
            return -1;
        }
        *out = cc_expr(c, idx);
        return *out ? 0 : -1;
    }
    if (lua_type(L, idx) == LUA_TFUNCTION) {
        cc_fail(c, "%s: Lua function predicates are for pattern steps (:where(function(e, m) ... end)); "
                 "use %s{ field = condition, ... }", what, what);
        return -1;
    }
    if (k != K_PLAIN) {
        cc_fail(c, "%s takes a table of conditions such as { type = \"auth\", amount = gt(500) }, got %s",
              what, cc_describe(L, idx, buf, sizeof buf));
        return -1;
    }
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            int pos = lua_isinteger(L, -1) ? (int)lua_tointeger(L, -1) : 0;
            lua_settop(L, top);
            if (pos > 0)
                cc_fail(c, "%s: item %d has no field name; write field = condition, e.g. "
                         "{ amount = gt(500) } (use [\"card.bin\"] = ... for a dotted path)", what, pos);
            else
                cc_fail(c, "%s: keys are field names such as type = \"auth\"", what);
            return -1;
        }
        n++;
    }
    if (n == 0) return 0;
    const char **keys = lua_newuserdatauv(L, (size_t)n * sizeof *keys, 0);
    vigil_expr **conds = lua_newuserdatauv(L, (size_t)n * sizeof *conds, 0);
    int i = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        keys[i++] = lua_tostring(L, -1);   /* anchored by the table */
    }
    qsort(keys, (size_t)n, sizeof *keys, cmp_str);
    int base = lua_gettop(L);
    for (i = 0; i < n && !cc_bad(c); i++) {
        lua_pushstring(L, keys[i]);
        lua_rawget(L, idx);
        conds[i] = cond_of(c, keys[i], lua_gettop(L));
        lua_settop(L, base);
    }
    if (!cc_bad(c)) *out = n == 1 ? conds[0] : cc_node(c, vigil_expr_apply(c->rs, VIGIL_X_AND, conds, n));
    lua_settop(L, top);
    return cc_bad(c) ? -1 : 0;
}


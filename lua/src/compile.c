/* compile.c — rule{} tables → vigil_rule_def / vigil_expr (DESIGN.md §4).
 *
 * This is the strict half of the rule language: the prelude builds tagged
 * tables, and rule{} (this file's compile_rule) checks every key of the rule
 * table, then translates patterns, where{} conditions, windows and `when`
 * expressions into calls of the ruleset builder (engine/ruleset.h), which
 * does the semantic checks that need the whole rule (refs, aggregates, types).
 * A rule that does not compile is reported (file, line of the rule{} call,
 * rule name, what is wrong and what was expected) and skipped; the file goes
 * on, so that `vigil check` shows every broken rule at once.
 *
 * Tables are read with raw access only (no metamethod of the rule file runs
 * here) and no malloc'd memory is held across a Lua API call, because any of
 * them may raise (the memory cap) and unwind past this code. Expressions are
 * built as trees, not DAGs: a node budget and a depth limit stop a rule file
 * that shares one sub-expression 2^60 ways or builds a cycle. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <cjson/cJSON.h>
#include "rules_int.h"

#define MAX_DEPTH 200
#define MAX_NODES 20000
#define MAX_PATH 255
#define NODE_BYTES 160          /* charged to the file's memory cap per expression node */
#define MAX_RULES_PER_FILE 10000

typedef enum { K_NONE, K_PLAIN, K_EXPR, K_COND, K_PATTERN, K_WINDOW, K_SKIP } kind_t;

typedef struct cc {
    lua_State *L;
    loader *ld;
    vigil_ruleset *rs;
    vigil_error err;             /* the rule's first error */
    int failed;
    int cap_hit;                 /* the file's memory cap is used up: stop the file */
    vigil_status st;             /* VIGIL_ENOMEM when the builder ran out of memory */
    int nodes, depth;
} cc;

static void *cfail(cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void *cfail(cc *c, const char *fmt, ...) {
    if (!c->failed && c->st == VIGIL_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
        va_end(ap);
        c->failed = 1;
    }
    return NULL;
}

static int bad(const cc *c) { return c->failed || c->st != VIGIL_OK; }

/* Every builder result goes through here: NULL means out of memory. */
static vigil_expr *node(cc *c, vigil_expr *x) {
    if (bad(c)) return NULL;
    if (!x) {
        c->st = VIGIL_ENOMEM;
        return NULL;
    }
    if (++c->nodes > MAX_NODES)
        return cfail(c, "the rule's conditions are too large (more than %d expression nodes)", MAX_NODES);
    /* nodes live in the ruleset, outside the Lua heap: count them against the
     * file's cap all the same, so that a loop of rule{} calls cannot build an
     * unbounded ruleset */
    vigil_sandbox *sb = vigil_sandbox_of(c->L);
    if (vigil_sandbox_charge(sb, NODE_BYTES) != VIGIL_OK) {
        c->cap_hit = 1;
        return cfail(c, "memory cap exceeded: the file's rules need more than %zu MiB",
                     vigil_sandbox_mem_cap(sb) >> 20);
    }
    return x;
}

/* ---- reading Lua values (raw) -------------------------------------------------- */

static kind_t kind_of(lua_State *L, int idx) {
    if (lua_type(L, idx) != LUA_TTABLE) return K_NONE;
    if (!lua_getmetatable(L, idx)) return K_PLAIN;
    kind_t k = K_PLAIN;
    lua_pushliteral(L, "__vigil");
    if (lua_rawget(L, -2) == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (strcmp(s, "expr") == 0) k = K_EXPR;
        else if (strcmp(s, "cond") == 0) k = K_COND;
        else if (strcmp(s, "pattern") == 0) k = K_PATTERN;
        else if (strcmp(s, "window") == 0) k = K_WINDOW;
        else if (strcmp(s, "skip") == 0) k = K_SKIP;
    }
    lua_pop(L, 2);
    return k;
}

/* push t[k] (raw); returns its type */
static int rget(lua_State *L, int t, const char *k) {
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

/* t[k] as a C string without embedded NULs (anchored by t), or NULL */
static const char *rstr(lua_State *L, int t, const char *k) {
    const char *s = NULL;
    if (rget(L, t, k) == LUA_TSTRING) {
        size_t len;
        s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len) s = NULL;
    }
    lua_pop(L, 1);
    return s;
}

static double rnum(lua_State *L, int t, const char *k, double dflt) {
    double d = dflt;
    if (rget(L, t, k) == LUA_TNUMBER) d = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return d;
}

static int rbool(lua_State *L, int t, const char *k) {
    rget(L, t, k);
    int b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* A short description of the value at idx, for messages. */
static const char *describe(lua_State *L, int idx, char *buf, size_t n) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return "nil";
    case LUA_TBOOLEAN:
        return "a boolean (Lua's and/or/not and comparison operators give booleans; use "
               "all_of/any_of/none_of and eq/ne/gt/ge/lt/le)";
    case LUA_TNUMBER: snprintf(buf, n, "the number %.15g", lua_tonumber(L, idx)); return buf;
    case LUA_TSTRING: snprintf(buf, n, "the string \"%.60s\"", lua_tostring(L, idx)); return buf;
    case LUA_TFUNCTION: return "a function";
    case LUA_TTABLE:
        switch (kind_of(L, idx)) {
        case K_EXPR: return "an expression";
        case K_COND: return "a where{} condition such as gt(5)";
        case K_PATTERN: return "a pattern";
        case K_WINDOW: return "a window";
        case K_SKIP: return "a skip strategy";
        default: return "a table";
        }
    default: snprintf(buf, n, "a %s", luaL_typename(L, idx)); return buf;
    }
}

static int valid_path(const char *p) {
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > MAX_PATH || p[0] == '.' || p[n - 1] == '.' || strstr(p, "..")) return 0;
    return 1;
}

static int valid_name(const char *s) {
    if (!s || !*s || strlen(s) > VIGIL_MAX_RULE_NAME) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
}

/* ---- expressions ----------------------------------------------------------------- */

static vigil_expr *cx(cc *c, int idx);
static int cwhere(cc *c, int idx, const char *what, vigil_expr **out);

static vigil_expr *field(cc *c, const char *path) {
    if (!valid_path(path))
        return cfail(c, "'%s' is not a field path (expected e.g. \"amount\" or \"card.bin\")",
                     path ? path : "");
    return node(c, vigil_expr_field(c->rs, path));
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
    if (s != VIGIL_OK) return cfail(c, "%s", e.msg);
    return node(c, vigil_expr_in_list(c->rs, x, list));
}

static vigil_expr *matches_expr(cc *c, vigil_expr *x, int t) {
    const char *re = rstr(c->L, t, "_re"), *fl = rstr(c->L, t, "_flags");
    if (!x) return NULL;
    if (!re) return cfail(c, "matches(): the regex must be a string without NUL bytes");
    return node(c, vigil_expr_matches(c->rs, x, re, fl ? fl : ""));
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
    for (int i = first; i <= n && !bad(c); i++) {
        lua_rawgeti(c->L, t, i);
        a[k++] = cx(c, lua_gettop(c->L));
        lua_pop(c->L, 1);
    }
    *count = total;
    return bad(c) ? NULL : a;
}

static vigil_expr *op_expr(cc *c, int t) {
    lua_State *L = c->L;
    const char *name = rstr(L, t, "_op");
    vigil_expr_op op;
    if (!op_of(name, &op)) return cfail(c, "unknown expression operator '%s'", name ? name : "?");
    int n = (int)lua_rawlen(L, t), cnt = 0;
    vigil_expr **a = args_of(c, t, 1, n, NULL, &cnt);
    if (!a) return NULL;
    if (op == VIGIL_X_AND || op == VIGIL_X_OR || op == VIGIL_X_NOT) {
        if (cnt == 0) return cfail(c, "all_of/any_of/none_of{} needs at least one condition");
        if (op == VIGIL_X_NOT) {   /* none_of{a, b} = not any_of{a, b} */
            vigil_expr *any = cnt == 1 ? a[0] : node(c, vigil_expr_apply(c->rs, VIGIL_X_OR, a, cnt));
            return any ? node(c, vigil_expr_apply(c->rs, VIGIL_X_NOT, &any, 1)) : NULL;
        }
        if (cnt == 1) return a[0];
    }
    return node(c, vigil_expr_apply(c->rs, op, a, cnt));
}

static const char *const agg_names[] = {"count", "sum", "avg", "min", "max", "distinct", NULL};

static vigil_expr *expr_obj(cc *c, int t) {
    lua_State *L = c->L;
    const char *k = rstr(L, t, "_k");
    if (!k) return cfail(c, "malformed expression object");
    if (strcmp(k, "field") == 0) return field(c, rstr(L, t, "_path"));
    if (strcmp(k, "ref") == 0) {
        const char *step = rstr(L, t, "_step"), *path = rstr(L, t, "_path");
        if (!step || !valid_path(path))
            return cfail(c, "ref() takes a step name and a field path: ref(\"login\", \"country\")");
        return node(c, vigil_expr_ref(c->rs, step, path));
    }
    if (strcmp(k, "agg") == 0) {
        const char *a = rstr(L, t, "_agg"), *path = rstr(L, t, "_path");
        int ai = 0;
        while (agg_names[ai] && (!a || strcmp(agg_names[ai], a) != 0)) ai++;
        if (!agg_names[ai]) return cfail(c, "unknown aggregate '%s'", a ? a : "?");
        if (ai != VIGIL_AGG_COUNT && !valid_path(path))
            return cfail(c, "%s() needs a field path, e.g. %s(\"amount\")", a, a);
        vigil_expr *filter = NULL;
        if (rget(L, t, "_filter") != LUA_TNIL) {
            char what[32];
            snprintf(what, sizeof what, "%s() filter", a);
            if (cwhere(c, lua_gettop(L), what, &filter) != 0) return NULL;
        }
        lua_pop(L, 1);
        return node(c, vigil_expr_agg(c->rs, (vigil_agg_kind)ai, ai == VIGIL_AGG_COUNT ? NULL : path,
                                      filter, rbool(L, t, "_prior")));
    }
    if (strcmp(k, "is_new") == 0) {
        const char *path = rstr(L, t, "_path");
        if (!valid_path(path)) return cfail(c, "is_new() needs a field path, e.g. is_new(\"device_id\")");
        return node(c, vigil_expr_is_new(c->rs, path));
    }
    if (strcmp(k, "op") == 0) return op_expr(c, t);
    if (strcmp(k, "matches") == 0 || strcmp(k, "in_list") == 0) {
        rget(L, t, "_x");
        vigil_expr *x = cx(c, lua_gettop(L));
        lua_pop(L, 1);
        if (k[0] == 'm') return matches_expr(c, x, t);
        const char *list = rstr(L, t, "_list");
        if (!list) return cfail(c, "in_list() needs a list name");
        return list_expr(c, x, list);
    }
    return cfail(c, "malformed expression object ('%s')", k);
}

static vigil_expr *cx_inner(cc *c, int idx) {
    lua_State *L = c->L;
    char buf[96];
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) return cfail(c, "a number in a condition must be finite, got %g", d);
        return node(c, vigil_expr_num(c->rs, d));
    }
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        if (len > UINT32_MAX) return cfail(c, "string constant too long");
        return node(c, vigil_expr_str(c->rs, s, len));
    }
    case LUA_TBOOLEAN: return node(c, vigil_expr_bool(c->rs, lua_toboolean(L, idx)));
    case LUA_TFUNCTION:
        return cfail(c, "a function is not a value; a Lua function predicate is a whole step condition: "
                        ":where(function(e, m) return ... end)");
    case LUA_TTABLE:
        switch (kind_of(L, idx)) {
        case K_EXPR: return expr_obj(c, idx);
        case K_COND:
            return cfail(c, "a one-argument condition such as gt(5) belongs in a where{} table "
                            "(amount = gt(5)); in an expression compare two values: gt(e.amount, 5)");
        default: break;
        }
        /* fallthrough */
    default:
        return cfail(c, "expected a value or an expression, got %s", describe(L, idx, buf, sizeof buf));
    }
}

static vigil_expr *cx(cc *c, int idx) {
    if (bad(c)) return NULL;
    if (c->depth >= MAX_DEPTH)
        return cfail(c, "expression nested too deeply (more than %d levels; a cycle?)", MAX_DEPTH);
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
    kind_t k = kind_of(L, v);
    if (ty == LUA_TFUNCTION)
        return cfail(c, "%s = function: a function is not a condition of one field; a Lua function "
                        "predicate is a whole step condition: :where(function(e, m) return ... end)", path);
    if (ty == LUA_TTABLE && k != K_EXPR && k != K_COND) {
        if (k == K_PLAIN)
            return cfail(c, "where{ %s = {...} }: a table is not a value; for a set of values use "
                            "one_of{...}", path);
        return cfail(c, "where{ %s = ... }: expected a value or a condition, got %s", path,
                     describe(L, v, buf, sizeof buf));
    }
    vigil_expr *f = field(c, path);
    if (!f) return NULL;
    if (k != K_COND) {       /* equality with a constant, ref() or expression */
        vigil_expr *a[2] = {f, cx(c, v)};
        return a[1] ? node(c, vigil_expr_apply(c->rs, VIGIL_X_EQ, a, 2)) : NULL;
    }
    const char *name = rstr(L, v, "_op");
    vigil_expr_op op;
    if (name && strcmp(name, "matches") == 0) return matches_expr(c, f, v);
    if (name && strcmp(name, "in_list") == 0) {
        const char *list = rstr(L, v, "_list");
        return list ? list_expr(c, f, list) : cfail(c, "in_list() needs a list name");
    }
    if (!op_of(name, &op)) return cfail(c, "malformed condition for '%s'", path);
    int cnt = 0;
    vigil_expr **a = args_of(c, v, 1, (int)lua_rawlen(L, v), f, &cnt);
    return a ? node(c, vigil_expr_apply(c->rs, op, a, cnt)) : NULL;
}

/* Is the expression object at idx a condition (true/false), not a value? */
static int is_condition(lua_State *L, int idx) {
    static const char *const conds[] = {"eq", "ne", "gt", "ge", "lt", "le", "between", "one_of",
                                        "exists", "missing", "and", "or", "none", NULL};
    const char *k = rstr(L, idx, "_k");
    if (!k) return 0;
    if (strcmp(k, "matches") == 0 || strcmp(k, "in_list") == 0 || strcmp(k, "is_new") == 0) return 1;
    if (strcmp(k, "op") != 0) return 0;
    const char *op = rstr(L, idx, "_op");
    for (int i = 0; op && conds[i]; i++)
        if (strcmp(conds[i], op) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A where{} table (all must hold), or an expression object. *out = NULL for
 * an empty table (any event). Returns 0, or -1 with the error in c. */
static int cwhere(cc *c, int idx, const char *what, vigil_expr **out) {
    lua_State *L = c->L;
    char buf[96];
    *out = NULL;
    if (bad(c)) return -1;
    int top = lua_gettop(L);
    kind_t k = kind_of(L, idx);
    if (k == K_EXPR) {
        if (!is_condition(L, idx)) {
            cfail(c, "%s(expression): the expression must be a condition such as gt(e.amount, 500), "
                     "not a value", what);
            return -1;
        }
        *out = cx(c, idx);
        return *out ? 0 : -1;
    }
    if (lua_type(L, idx) == LUA_TFUNCTION) {
        cfail(c, "%s: Lua function predicates are for pattern steps (:where(function(e, m) ... end)); "
                 "use %s{ field = condition, ... }", what, what);
        return -1;
    }
    if (k != K_PLAIN) {
        cfail(c, "%s takes a table of conditions such as { type = \"auth\", amount = gt(500) }, got %s",
              what, describe(L, idx, buf, sizeof buf));
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
                cfail(c, "%s: item %d has no field name; write field = condition, e.g. "
                         "{ amount = gt(500) } (use [\"card.bin\"] = ... for a dotted path)", what, pos);
            else
                cfail(c, "%s: keys are field names such as type = \"auth\"", what);
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
    for (i = 0; i < n && !bad(c); i++) {
        lua_pushstring(L, keys[i]);
        lua_rawget(L, idx);
        conds[i] = cond_of(c, keys[i], lua_gettop(L));
        lua_settop(L, base);
    }
    if (!bad(c)) *out = n == 1 ? conds[0] : node(c, vigil_expr_apply(c->rs, VIGIL_X_AND, conds, n));
    lua_settop(L, top);
    return bad(c) ? -1 : 0;
}

/* ---- rule{} ------------------------------------------------------------------------------ */

static const char *const rule_keys[] = {
    "name", "description", "severity", "key", "pattern", "within", "skip", "suppress",
    "mode", "alert", "examples", "where", "window", "when", "version", NULL};
static const char *const sev_names[] = {"info", "low", "medium", "high", "critical", NULL};

static int known_key(const char *k) {
    for (int i = 0; rule_keys[i]; i++)
        if (strcmp(rule_keys[i], k) == 0) return 1;
    return 0;
}

static void check_keys(cc *c, int t) {
    lua_State *L = c->L;
    int top = lua_gettop(L), unknown = 0;
    const char *first = NULL;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_settop(L, top);
            cfail(c, "rule{} takes named keys only (name = ..., key = ..., ...); found a value "
                     "without a key");
            return;
        }
        const char *k = lua_tostring(L, -1);
        if (!known_key(k)) {
            unknown++;
            if (!first || strcmp(k, first) < 0) first = k;
        }
    }
    if (first) {
        char more[32] = "";
        if (unknown > 1) snprintf(more, sizeof more, " (and %d more)", unknown - 1);
        cfail(c, "unknown key '%s'%s in rule{}; expected one of: name, description, severity, key, "
                 "pattern, within, skip, suppress, mode, alert, examples, where, window, when, version",
              first, more);
    }
    lua_settop(L, top);
}

/* t[k] as a duration in ms: 0 when absent; -1 after an error. */
static int64_t duration_of(cc *c, int t, const char *k) {
    lua_State *L = c->L;
    char buf[96];
    int ty = rget(L, t, k);
    int64_t ms = 0;
    if (ty == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (vigil_duration_parse(s, &ms) != VIGIL_OK || ms <= 0) {
            cfail(c, "%s = \"%.60s\" is not a duration; expected a positive number and a unit "
                     "(ms, s, m, h, d), e.g. \"10m\"", k, s);
            ms = -1;
        }
    } else if (ty != LUA_TNIL) {
        cfail(c, "%s must be a duration string such as \"10m\", got %s", k,
              describe(L, -1, buf, sizeof buf));
        ms = -1;
    }
    lua_pop(L, 1);
    return ms;
}

static int opt_string(cc *c, int t, const char *k, const char **out) {
    char buf[96];
    *out = NULL;
    int ty = rget(c->L, t, k);
    if (ty == LUA_TSTRING) {
        *out = rstr(c->L, t, k);
        if (!*out) cfail(c, "%s must not contain NUL bytes", k);
    } else if (ty != LUA_TNIL) {
        cfail(c, "%s must be a string, got %s", k, describe(c->L, -1, buf, sizeof buf));
    }
    lua_pop(c->L, 1);
    return bad(c) ? -1 : 0;
}

static int pick(cc *c, int t, const char *k, const char *const *names, int dflt, const char *expect) {
    const char *s;
    if (opt_string(c, t, k, &s) != 0) return -1;
    if (!s) return dflt;
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0) return i;
    cfail(c, "%s = \"%.60s\" is not valid; expected %s", k, s, expect);
    return -1;
}

static const char *const cont_names[] = {"next", "followed_by", "followed_by_any", "not_next",
                                         "not_followed_by", NULL};

/* One step table (at st) of a pattern into sd. */
static void step_of(cc *c, int st, int i, vigil_step_def *sd) {
    lua_State *L = c->L;
    const char *name = rstr(L, st, "name"), *cont = rstr(L, st, "cont");
    if (!name) {
        cfail(c, "step %d has no name", i + 1);
        return;
    }
    sd->name = name;
    sd->contiguity = VIGIL_CONT_STRICT;
    for (int k = 0; cont && cont_names[k]; k++)
        if (strcmp(cont_names[k], cont) == 0) sd->contiguity = (vigil_contiguity)k;
    double mn = rnum(L, st, "min", 1), mx = rnum(L, st, "max", 1);
    if (!(mn >= 0 && mn < VIGIL_UNBOUNDED) || !(mx == -1 || (mx >= 0 && mx < VIGIL_UNBOUNDED))) {
        cfail(c, "step '%s': malformed quantifier", name);
        return;
    }
    sd->min = (uint32_t)mn;
    sd->max = mx < 0 ? VIGIL_UNBOUNDED : (uint32_t)mx;
    sd->optional = rbool(L, st, "optional");
    sd->greedy = rbool(L, st, "greedy");
    sd->consecutive = rbool(L, st, "consecutive");
    const char *quant = rstr(L, st, "quant");
    int looping = sd->max > 1;
    int negated = sd->contiguity == VIGIL_CONT_NOT_NEXT || sd->contiguity == VIGIL_CONT_NOT_FOLLOWED_BY;
    int has_stop = rget(L, st, "stop_when") != LUA_TNIL;
    lua_pop(L, 1);
    if (negated && (quant || sd->optional || sd->greedy || sd->consecutive || has_stop)) {
        cfail(c, "step '%s': a %s() step matches no event, so it takes no quantifier, optional(), "
                 "greedy(), consecutive() or stop_when{}", name, cont);
        return;
    }
    if (sd->greedy && !looping) {
        cfail(c, "step '%s': greedy() applies to a looping step (times(n, m), times_or_more(n), "
                 "one_or_more())", name);
        return;
    }
    if (sd->consecutive && !looping) {
        cfail(c, "step '%s': consecutive() applies to a looping step (times(n, m), "
                 "times_or_more(n), one_or_more())", name);
        return;
    }
    if (has_stop && sd->max != VIGIL_UNBOUNDED) {
        cfail(c, "step '%s': stop_when{} applies to a step with one_or_more() or times_or_more(n)", name);
        return;
    }
    /* where{} / or_where{}: FlinkCEP folds them left to right */
    char what[96];
    snprintf(what, sizeof what, "step '%s': where", name);
    vigil_expr *acc = NULL;
    int any = 0;                       /* acc == NULL: no where yet, or an empty one */
    rget(L, st, "conds");
    int conds = lua_gettop(L);
    int n = lua_type(L, conds) == LUA_TTABLE ? (int)lua_rawlen(L, conds) : 0;
    for (int k = 1; k <= n && !bad(c); k++) {
        lua_rawgeti(L, conds, k);
        int e = lua_gettop(L);
        if (lua_type(L, e) != LUA_TTABLE) {
            cfail(c, "step '%s': malformed condition list", name);
            break;
        }
        const char *how;
        lua_rawgeti(L, e, 1);
        how = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "and";
        lua_pop(L, 1);
        lua_rawgeti(L, e, 2);
        vigil_expr *x = NULL;
        if (lua_type(L, -1) == LUA_TFUNCTION) {   /* :where(function(e, m) ... end): the host calls it */
            vigil_error he;
            vigil_error_clear(&he);
            int id = ld_host_fn(c->ld, L, lua_gettop(L), &he);
            if (id < 0) {
                cfail(c, "step '%s': %s", name, he.msg);
                break;
            }
            if (!(x = node(c, vigil_expr_host(c->rs, id)))) break;
        } else if (cwhere(c, lua_gettop(L), what, &x) != 0) {
            break;
        }
        lua_settop(L, e - 1);
        int is_or = strcmp(how, "or") == 0;
        if (!any) {
            acc = x;
            any = 1;
        } else if (!acc || !x) {
            if (is_or) acc = NULL;       /* "any event" or c = any event */
            else if (!acc) acc = x;
        } else {
            vigil_expr *a[2] = {acc, x};
            acc = node(c, vigil_expr_apply(c->rs, is_or ? VIGIL_X_OR : VIGIL_X_AND, a, 2));
        }
    }
    lua_settop(L, conds - 1);
    if (bad(c)) return;
    sd->cond = acc;
    if (has_stop) {
        snprintf(what, sizeof what, "step '%s': stop_when", name);
        rget(L, st, "stop_when");
        cwhere(c, lua_gettop(L), what, &sd->stop_when);
        lua_pop(L, 1);
    }
}

static void pattern_of(cc *c, int p, vigil_rule_def *d, vigil_step_def *steps) {
    lua_State *L = c->L;
    char buf[96];
    if (kind_of(L, p) != K_PATTERN) {
        cfail(c, "pattern must be built with begin(\"step\")..., got %s", describe(L, p, buf, sizeof buf));
        return;
    }
    rget(L, p, "_steps");
    int s = lua_gettop(L);
    int n = lua_type(L, s) == LUA_TTABLE ? (int)lua_rawlen(L, s) : 0;
    if (n < 1) {
        cfail(c, "malformed pattern");
        return;
    }
    if (n > VIGIL_MAX_STEPS) {
        cfail(c, "a pattern has at most %d steps, got %d", VIGIL_MAX_STEPS, n);
        return;
    }
    for (int i = 0; i < n && !bad(c); i++) {
        lua_rawgeti(L, s, i + 1);
        if (lua_type(L, -1) != LUA_TTABLE) cfail(c, "malformed pattern step %d", i + 1);
        else step_of(c, lua_gettop(L), i, &steps[i]);
        lua_pop(L, 1);
    }
    if (bad(c)) return;
    d->steps = steps;
    d->nsteps = n;
    /* within (before the absence check that needs it) */
    int64_t within = duration_of(c, 1, "within");
    if (within < 0) return;
    d->within_ms = within;
    if (steps[n - 1].contiguity == VIGIL_CONT_NOT_FOLLOWED_BY && within == 0) {
        cfail(c, "a pattern that ends with not_followed_by(\"%s\") needs within = \"...\": how long "
                 "the absence must last", steps[n - 1].name);
        return;
    }
    /* skip strategy */
    static const char *const skip_names[] = {"no_skip", "skip_to_next", "skip_past_last_event", NULL};
    static const char *const skip_expect =
        "\"no_skip\", \"skip_to_next\", \"skip_past_last_event\" (the default), "
        "skip_to_first(\"step\") or skip_to_last(\"step\")";
    d->skip = VIGIL_SKIP_PAST_LAST_EVENT;
    int ty = rget(L, 1, "skip");
    int sk = lua_gettop(L);
    if (ty == LUA_TSTRING) {
        const char *v = lua_tostring(L, sk);
        int i = 0;
        while (skip_names[i] && strcmp(skip_names[i], v) != 0) i++;
        if (skip_names[i]) d->skip = (vigil_skip)i;
        else cfail(c, "skip = \"%.60s\" is not a skip strategy; expected %s", v, skip_expect);
    } else if (kind_of(L, sk) == K_SKIP) {
        const char *k = rstr(L, sk, "_kind");
        d->skip = k && strcmp(k, "skip_to_last") == 0 ? VIGIL_SKIP_TO_LAST : VIGIL_SKIP_TO_FIRST;
        d->skip_step = rstr(L, sk, "_step");
        int found = 0;
        for (int i = 0; i < n && d->skip_step; i++) found |= strcmp(steps[i].name, d->skip_step) == 0;
        if (!found)
            cfail(c, "skip = %s(\"%s\"): no step of that name in the pattern", k ? k : "skip_to",
                  d->skip_step ? d->skip_step : "");
    } else if (ty != LUA_TNIL) {
        cfail(c, "skip must be %s; got %s", skip_expect, describe(L, sk, buf, sizeof buf));
    }
    lua_pop(L, 1);
}

static void window_of(cc *c, int w, vigil_rule_def *d) {
    lua_State *L = c->L;
    char buf[96];
    if (kind_of(L, w) != K_WINDOW) {
        cfail(c, "window must be sliding(d), tumbling(d) or session(gap), got %s",
              describe(L, w, buf, sizeof buf));
        return;
    }
    const char *k = rstr(L, w, "_kind");
    d->window = k && strcmp(k, "tumbling") == 0  ? VIGIL_WIN_TUMBLING
                : k && strcmp(k, "session") == 0 ? VIGIL_WIN_SESSION
                                                 : VIGIL_WIN_SLIDING;
    double ms = rnum(L, w, "_ms", 0), prec = rnum(L, w, "_precision", 0);
    if (!(ms > 0 && ms < 9.0e15) || !(prec >= 0 && prec < 9.0e15)) {
        cfail(c, "malformed window");
        return;
    }
    d->window_ms = (int64_t)ms;
    d->precision_ms = (int64_t)prec;
    if (d->precision_ms > d->window_ms) {
        cfail(c, "sliding(): precision must not exceed the window size");
        return;
    }
    if (rget(L, 1, "where") != LUA_TNIL) cwhere(c, lua_gettop(L), "where", &d->where);
    lua_pop(L, 1);
    if (bad(c)) return;
    int ty = rget(L, 1, "when");
    int wi = lua_gettop(L);
    kind_t wk = kind_of(L, wi);
    if (ty == LUA_TNIL)
        cfail(c, "a window rule needs when = <condition>, e.g. when = ge(count(), 4)");
    else if (ty == LUA_TBOOLEAN)
        cfail(c, "when must be an expression object such as ge(count(), 4), got a boolean: Lua's "
                 "and/or/not and comparison operators cannot build expressions; use "
                 "eq/ne/gt/ge/lt/le and all_of/any_of/none_of");
    else if (wk == K_COND)
        cfail(c, "when = %s: a one-argument comparison is a where{} condition; in when compare two "
                 "values, e.g. ge(count(), 4)", "gt(x)");
    else if (wk != K_EXPR)
        cfail(c, "when must be an expression object such as ge(count(), 4), got %s",
              describe(L, wi, buf, sizeof buf));
    else
        d->when = cx(c, wi);
    lua_pop(L, 1);
}

/* ---- examples (run by `vigil test`) ---------------------------------------------- */

static const char *const example_keys[] = {"events", "alerts", "matches", "late",
                                           "max_out_of_orderness", "allowed_lateness", NULL};
#define EXAMPLE_KEYS "events, alerts, matches, late, max_out_of_orderness, allowed_lateness"

/* The table at idx is a list (its keys are exactly 1..n): n, else -1. */
static lua_Integer list_len(lua_State *L, int idx) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), cnt = 0;
    int top = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_settop(L, top);
            return -1;
        }
        cnt++;
    }
    return cnt == n ? n : -1;
}

/* The list of event ids at idx (`what` names it in messages): checks it and
 * adds the bytes its strings need (with their NULs) to *bytes. Returns its
 * length, or -1 after an error. */
static lua_Integer ids_check(cc *c, int idx, const char *what, size_t *bytes) {
    lua_State *L = c->L;
    char buf[96];
    lua_Integer n = kind_of(L, idx) == K_PLAIN ? list_len(L, idx) : -1;
    if (n < 0) {
        cfail(c, "%s must be a list of event ids such as {\"1\", \"3\"}, got %s", what,
              describe(L, idx, buf, sizeof buf));
        return -1;
    }
    for (lua_Integer k = 1; k <= n; k++) {
        lua_rawgeti(L, idx, k);
        size_t len = 0;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!s || len == 0 || strlen(s) != len) {
            cfail(c, "%s[%lld] must be an event id string such as \"7\" (the event's id field), got %s",
                  what, (long long)k, describe(L, -1, buf, sizeof buf));
            lua_pop(L, 1);
            return -1;
        }
        *bytes += len + 1;
        lua_pop(L, 1);
    }
    return n;
}

/* Copy the n checked ids of the list at idx: pointers to ptrs[0..n), strings
 * to *pos (advanced). Only raw reads of strings: nothing here can raise. */
static void ids_copy(lua_State *L, int idx, lua_Integer n, const char **ptrs, char **pos) {
    for (lua_Integer k = 1; k <= n; k++) {
        lua_rawgeti(L, idx, k);
        size_t len;
        const char *s = lua_tolstring(L, -1, &len);
        memcpy(*pos, s, len + 1);
        ptrs[k - 1] = *pos;
        *pos += len + 1;
        lua_pop(L, 1);
    }
}

/* examples[i].<k> as a duration in ms: 0 when absent, -1 after an error. */
static int64_t example_duration(cc *c, int e, lua_Integer i, const char *k) {
    lua_State *L = c->L;
    char buf[96];
    int ty = rget(L, e, k);
    int64_t ms = 0;
    if (ty == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (vigil_duration_parse(s, &ms) != VIGIL_OK || ms <= 0) {
            cfail(c, "examples[%lld].%s = \"%.60s\" is not a duration; expected a positive number and a "
                     "unit (ms, s, m, h, d), e.g. \"10s\"", (long long)i, k, s);
            ms = -1;
        }
    } else if (ty != LUA_TNIL) {
        cfail(c, "examples[%lld].%s must be a duration string such as \"10s\", got %s", (long long)i, k,
              describe(L, -1, buf, sizeof buf));
        ms = -1;
    }
    lua_pop(L, 1);
    return ms;
}

/* The nev events of the list at ev as NDJSON (*out, malloc'd). 0, or -1
 * after an error (c->err or c->st). */
static int events_json(cc *c, int ev, lua_Integer nev, lua_Integer i, char **out) {
    lua_State *L = c->L;
    char *text = NULL;
    size_t len = 0, cap = 0;
    *out = NULL;
    for (lua_Integer k = 1; k <= nev; k++) {
        lua_rawgeti(L, ev, k);
        const char *why = NULL;
        cJSON *o = kind_of(L, -1) == K_PLAIN ? vlua_to_json(L, -1, 0, &why) : NULL;
        lua_pop(L, 1);
        char *js = o && cJSON_IsObject(o) ? cJSON_PrintUnformatted(o) : NULL;
        cJSON_Delete(o);
        if (!js) {
            free(text);
            cfail(c, "examples[%lld].events[%lld] must be a table of fields (strings, numbers, booleans)%s%s",
                  (long long)i, (long long)k, why ? ": got " : "", why ? why : "");
            return -1;
        }
        size_t jl = strlen(js);
        if (len + jl + 2 > cap) {
            cap = (len + jl + 2) * 2;
            char *nt = realloc(text, cap);
            if (!nt) {
                free(js);
                free(text);
                c->st = VIGIL_ENOMEM;
                return -1;
            }
            text = nt;
        }
        memcpy(text + len, js, jl);
        len += jl;
        text[len++] = '\n';
        text[len] = '\0';
        free(js);
    }
    *out = text ? text : strdup("");
    if (!*out) {
        c->st = VIGIL_ENOMEM;
        return -1;
    }
    return 0;
}

/* One entry (at e) of examples, checked strictly; appended to ex when the
 * caller wants examples (`vigil test`), else only checked (`vigil check`). */
static void example_of(cc *c, int e, lua_Integer i, const vigil_rule_def *d, vigil_rule_examples *ex) {
    lua_State *L = c->L;
    char buf[96], what[96];
    if (kind_of(L, e) != K_PLAIN) {
        cfail(c, "examples[%lld] must be a table { events = {...}, alerts = n } or { events = {...}, "
                 "matches = {...} }, got %s", (long long)i, describe(L, e, buf, sizeof buf));
        return;
    }
    /* strict keys; the smallest unknown one is named, as in rule{} */
    const char *unknown = NULL;
    lua_pushnil(L);
    while (lua_next(L, e)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            cfail(c, "examples[%lld] takes named keys only (" EXAMPLE_KEYS "); found a value without a key",
                  (long long)i);
            return;
        }
        const char *k = lua_tostring(L, -1);   /* anchored by the table */
        int known = 0;
        for (int j = 0; example_keys[j]; j++) known |= strcmp(example_keys[j], k) == 0;
        if (!known && (!unknown || strcmp(k, unknown) < 0)) unknown = k;
    }
    if (unknown) {
        cfail(c, "examples[%lld]: unknown key '%.60s'; expected one of: " EXAMPLE_KEYS, (long long)i, unknown);
        return;
    }
    /* events */
    rget(L, e, "events");
    int ev = lua_gettop(L);
    lua_Integer nev = kind_of(L, ev) == K_PLAIN ? list_len(L, ev) : -1;
    if (nev < 0) {
        if (lua_isnil(L, ev))
            cfail(c, "examples[%lld] needs events = { {...}, ... }: the events to feed, in order", (long long)i);
        else
            cfail(c, "examples[%lld].events must be a list of events { {...}, ... }, got %s", (long long)i,
                  describe(L, ev, buf, sizeof buf));
        return;
    }
    /* alerts */
    int alerts = -1;
    if (rget(L, e, "alerts") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > INT_MAX) {
            cfail(c, "examples[%lld].alerts must be a whole number >= 0, got %s", (long long)i,
                  describe(L, -1, buf, sizeof buf));
            return;
        }
        alerts = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    /* matches: checked here, copied once everything else is known good */
    rget(L, e, "matches");
    int m = lua_gettop(L);
    lua_Integer nm = -1;
    size_t mids = 0, mbytes = 0;
    if (!lua_isnil(L, m)) {
        nm = kind_of(L, m) == K_PLAIN ? list_len(L, m) : -1;
        if (nm < 0 || nm > INT_MAX) {
            cfail(c, "examples[%lld].matches must be a list of the expected alerts, each a list of event ids "
                     "in match order: matches = { {\"1\", \"3\"}, {\"2\", \"4\"} }; got %s", (long long)i,
                  describe(L, m, buf, sizeof buf));
            return;
        }
        for (lua_Integer k = 1; k <= nm; k++) {
            snprintf(what, sizeof what, "examples[%lld].matches[%lld]", (long long)i, (long long)k);
            lua_rawgeti(L, m, k);
            lua_Integer ni = ids_check(c, lua_gettop(L), what, &mbytes);
            lua_pop(L, 1);
            if (ni < 0) return;
            if (ni == 0) {
                cfail(c, "%s is empty: an alert lists at least one event id", what);
                return;
            }
            mids += (size_t)ni;
        }
        if (alerts >= 0 && alerts != nm) {
            cfail(c, "examples[%lld]: alerts = %d but matches lists %lld alert%s; they must agree (alerts "
                     "may be left out when matches is given)", (long long)i, alerts, (long long)nm,
                  nm == 1 ? "" : "s");
            return;
        }
        alerts = (int)nm;
    } else if (alerts < 0) {
        cfail(c, "examples[%lld] needs alerts = n (how many alerts) or matches = { {\"id\", ...}, ... } "
                 "(which alerts)", (long long)i);
        return;
    }
    /* late */
    rget(L, e, "late");
    int l = lua_gettop(L);
    lua_Integer nl = -1;
    size_t lbytes = 0;
    if (!lua_isnil(L, l)) {
        snprintf(what, sizeof what, "examples[%lld].late", (long long)i);
        if ((nl = ids_check(c, l, what, &lbytes)) < 0) return;
        if (nl > INT_MAX) {
            cfail(c, "%s: too many ids", what);
            return;
        }
    }
    int64_t ooo = example_duration(c, e, i, "max_out_of_orderness");
    int64_t lateness = ooo < 0 ? -1 : example_duration(c, e, i, "allowed_lateness");
    if (ooo < 0 || lateness < 0) return;
    char *text = NULL;
    if (events_json(c, ev, nev, i, &text) != 0) return;
    if (!ex) {                   /* `vigil check`: checked, not kept */
        free(text);
        return;
    }
    /* One block each for the matches and the late ids. From here on only raw
     * reads of strings touch Lua (ids_copy), so no error can unwind past the
     * memory held here. */
    vigil_example_match *mv = NULL;
    const char **lv = NULL;
    if (nm > 0) {
        mv = malloc((size_t)nm * sizeof *mv + mids * sizeof(char *) + mbytes);
        if (mv) {
            const char **ptrs = (const char **)(mv + nm);
            char *pos = (char *)(ptrs + mids);
            for (lua_Integer k = 1; k <= nm; k++) {
                lua_rawgeti(L, m, k);
                lua_Integer ni = (lua_Integer)lua_rawlen(L, -1);
                ids_copy(L, lua_gettop(L), ni, ptrs, &pos);
                lua_pop(L, 1);
                mv[k - 1].ids = ptrs;
                mv[k - 1].n = (int)ni;
                ptrs += ni;
            }
        }
    }
    if (nl > 0) {
        lv = malloc((size_t)nl * sizeof *lv + lbytes);
        if (lv) {
            char *pos = (char *)(lv + nl);
            ids_copy(L, l, nl, lv, &pos);
        }
    }
    if ((nm > 0 && !mv) || (nl > 0 && !lv) || ex->n == INT_MAX) {
        free(text);
        free(mv);
        free(lv);
        c->st = VIGIL_ENOMEM;
        return;
    }
    if (ex->n == ex->cap) {
        int nc = ex->cap ? ex->cap * 2 : 16;
        vigil_rule_example *nv = realloc(ex->v, (size_t)nc * sizeof *nv);
        if (!nv) {
            free(text);
            free(mv);
            free(lv);
            c->st = VIGIL_ENOMEM;
            return;
        }
        ex->v = nv;
        ex->cap = nc;
    }
    vigil_rule_example *x = &ex->v[ex->n++];
    memset(x, 0, sizeof *x);
    snprintf(x->rule, sizeof x->rule, "%s", d->name ? d->name : "");
    snprintf(x->file, sizeof x->file, "%s", c->err.file);   /* d->file/line are set after rule_of */
    x->line = c->err.line;
    x->index = (int)i;
    x->events = text;
    x->alerts = alerts;
    x->has_matches = nm >= 0;
    x->matches = mv;
    x->nmatches = nm > 0 ? (int)nm : 0;
    x->has_late = nl >= 0;
    x->late = lv;
    x->nlate = nl > 0 ? (int)nl : 0;
    x->max_out_of_orderness_ms = ooo;
    x->allowed_lateness_ms = lateness;
}

/* examples = { { events = {...}, alerts = n | matches = {...}, ... }, ... } */
static void examples_of(cc *c, int t, const vigil_rule_def *d) {
    lua_State *L = c->L;
    vigil_rule_examples *ex = ld_examples(c->ld);
    lua_Integer n = list_len(L, t);
    if (n < 0) {
        cfail(c, "examples must be a list { {...}, {...} } of entries { events = {...}, alerts = n } or "
                 "{ events = {...}, matches = {...} }");
        return;
    }
    for (lua_Integer i = 1; i <= n && !bad(c); i++) {
        lua_rawgeti(L, t, i);
        int e = lua_gettop(L);
        example_of(c, e, i, d, ex);
        lua_settop(L, e - 1);
    }
}

static void rule_of(cc *c, vigil_rule_def *d, vigil_step_def *steps) {
    lua_State *L = c->L;
    char buf[96];
    const char *name = NULL;
    if (rget(L, 1, "name") == LUA_TSTRING) {
        name = rstr(L, 1, "name");
        snprintf(c->err.rule, sizeof c->err.rule, "%s", lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    check_keys(c, 1);
    if (bad(c)) return;
    if (!name) {
        rget(L, 1, "name");
        if (lua_isnil(L, -1))
            cfail(c, "missing required key 'name': a unique rule name matching [a-z0-9_]+");
        else
            cfail(c, "name must be a string matching [a-z0-9_]+, got %s", describe(L, -1, buf, sizeof buf));
        lua_pop(L, 1);
        return;
    }
    if (!valid_name(name)) {
        cfail(c, "rule name '%s' is invalid: expected [a-z0-9_]+, at most %d characters", name,
              VIGIL_MAX_RULE_NAME);
        return;
    }
    d->name = name;
    if (opt_string(c, 1, "description", &d->description) != 0) return;
    int sev = pick(c, 1, "severity", sev_names, VIGIL_SEV_MEDIUM,
                   "info, low, medium (the default), high or critical");
    static const char *const modes[] = {"active", "shadow", NULL};
    int mode = sev < 0 ? -1 : pick(c, 1, "mode", modes, VIGIL_MODE_ACTIVE, "\"active\" (the default) or \"shadow\"");
    if (mode < 0) return;
    d->severity = (vigil_severity)sev;
    d->mode = (vigil_mode)mode;
    if (opt_string(c, 1, "key", &d->key) != 0) return;
    if (!d->key || !*d->key) {
        cfail(c, "missing required key 'key': the event field that partitions state, e.g. key = \"card_id\"");
        return;
    }
    if (!valid_path(d->key)) {
        cfail(c, "key = \"%s\" is not a field path (expected e.g. \"card_id\" or \"card.bin\")", d->key);
        return;
    }
    d->version = 1;
    int ty = rget(L, 1, "version");
    if (ty != LUA_TNIL) {
        double v = ty == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (ty != LUA_TNUMBER || v != floor(v) || v < 1 || v > INT_MAX)
            cfail(c, "version must be a whole number >= 1, got %s", describe(L, -1, buf, sizeof buf));
        d->version = (int)v;
    }
    lua_pop(L, 1);
    ty = rget(L, 1, "alert");          /* called by the host on every alert of the rule */
    if (ty != LUA_TNIL && ty != LUA_TFUNCTION) {
        cfail(c, "alert must be a function(m) returning a table of details, got %s",
              describe(L, -1, buf, sizeof buf));
    } else if (ty == LUA_TFUNCTION && !bad(c)) {
        vigil_error he;
        vigil_error_clear(&he);
        d->alert_fn = ld_host_fn(c->ld, L, lua_gettop(L), &he);
        if (d->alert_fn < 0) cfail(c, "alert: %s", he.msg);
    }
    lua_pop(L, 1);
    ty = rget(L, 1, "examples");       /* run by `vigil test` */
    if (ty != LUA_TNIL && kind_of(L, -1) != K_PLAIN)
        cfail(c, "examples must be a list of { events = {...}, alerts = n } or { events = {...}, "
                 "matches = {...} }, got %s",
              describe(L, -1, buf, sizeof buf));
    else if (ty != LUA_TNIL)
        examples_of(c, lua_gettop(L), d);
    lua_pop(L, 1);
    if (bad(c)) return;
    int64_t sup = duration_of(c, 1, "suppress");
    if (sup < 0) return;
    d->suppress_ms = sup;

    int has_pattern = rget(L, 1, "pattern") != LUA_TNIL;
    int p = lua_gettop(L);
    int has_window = rget(L, 1, "window") != LUA_TNIL;
    int w = lua_gettop(L);
    int has_where = rget(L, 1, "where") != LUA_TNIL;
    int has_when = rget(L, 1, "when") != LUA_TNIL;
    int has_within = rget(L, 1, "within") != LUA_TNIL;
    int has_skip = rget(L, 1, "skip") != LUA_TNIL;
    lua_pop(L, 4);
    if (has_pattern && has_window)
        cfail(c, "a rule has either a pattern or a window (with when), not both");
    else if (!has_pattern && !has_window)
        cfail(c, "a rule needs a pattern (pattern = begin(\"a\"):where{...}) or a window and a "
                 "condition (window = sliding(\"1h\"), when = ge(count(), 4))");
    else if (has_pattern && (has_where || has_when))
        cfail(c, "%s belongs to window rules; a pattern rule puts its conditions on steps: "
                 "begin(\"a\"):where{...}", has_where ? "where" : "when");
    else if (has_window && (has_within || has_skip))
        cfail(c, "%s belongs to pattern rules; a window rule has window, where and when",
              has_within ? "within" : "skip");
    else if (has_pattern)
        pattern_of(c, p, d, steps);
    else
        window_of(c, w, d);
    lua_settop(L, 1);
}

int compile_rule(lua_State *L) {
    cc c;
    memset(&c, 0, sizeof c);
    c.L = L;
    c.ld = lua_touserdata(L, lua_upvalueindex(1));
    c.rs = ld_ruleset(c.ld);
    vigil_sandbox *sb = vigil_sandbox_of(L);
    snprintf(c.err.file, sizeof c.err.file, "%s", vigil_sandbox_name(sb));
    c.err.line = vigil_sandbox_line(L, 0, NULL);
    vigil_step_def steps[VIGIL_MAX_STEPS];
    memset(steps, 0, sizeof steps);
    vigil_rule_def d;
    memset(&d, 0, sizeof d);
    if (ld_running(c.ld)) return vigil_sandbox_raise(L, "rule{} cannot be called from a function predicate or an alert function");
    if (lua_gettop(L) != 1 || kind_of(L, 1) != K_PLAIN) {
        cfail(&c, "rule{} takes one table: rule{ name = \"...\", key = \"...\", pattern = ... }");
    } else if (ld_count_rule(c.ld) > MAX_RULES_PER_FILE) {
        cfail(&c, "more than %d rules in one file", MAX_RULES_PER_FILE);
    } else {
        rule_of(&c, &d, steps);
    }
    if (!bad(&c) && !ld_replaying(c.ld)) {   /* a replay only registers the functions again */
        d.file = vigil_sandbox_name(sb);
        d.line = c.err.line;
        vigil_error e;
        vigil_error_clear(&e);
        vigil_status s = vigil_ruleset_add_rule(c.rs, &d, &e);
        if (s == VIGIL_ENOMEM) {
            c.st = s;
        } else if (s != VIGIL_OK) {
            snprintf(c.err.msg, sizeof c.err.msg, "%s", e.msg);
            if (e.line > 0) c.err.line = e.line;
            c.failed = 1;
        }
    }
    if (c.st != VIGIL_OK) {
        snprintf(c.err.msg, sizeof c.err.msg, "out of memory while compiling the rule");
        ld_add_error(c.ld, c.st, &c.err);
    } else if (c.cap_hit) {            /* fatal like any memory cap error: one message, file stops */
        return vigil_sandbox_kill_memory(L, c.err.line, c.err.msg);
    } else if (c.failed) {
        ld_add_error(c.ld, VIGIL_ECOMPILE, &c.err);
    }
    lua_settop(L, 0);
    return 0;
}

int compile_duration(lua_State *L) {
    int64_t ms;
    if (lua_type(L, 1) == LUA_TSTRING && vigil_duration_parse(lua_tostring(L, 1), &ms) == VIGIL_OK)
        lua_pushinteger(L, (lua_Integer)ms);
    else
        lua_pushnil(L);
    return 1;
}

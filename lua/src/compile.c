/* compile.c — rule{} tables → vigil_rule_def / vigil_expr (DESIGN.md §4).
 *
 * This file has rule{} itself (keys, steps, patterns, windows) and the
 * helpers of compile_int.h; expressions and where{} conditions are in
 * compile_expr.c, a rule's examples in compile_examples.c.
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
#include "compile_int.h"

#define MAX_NODES 20000
#define NODE_BYTES 160          /* charged to the file's memory cap per expression node */
#define MAX_RULES_PER_FILE 10000

void *cc_fail(cc *c, const char *fmt, ...) {
    if (!c->failed && c->st == VIGIL_OK) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err.msg, sizeof c->err.msg, fmt, ap);
        va_end(ap);
        c->failed = 1;
    }
    return NULL;
}

int cc_bad(const cc *c) { return c->failed || c->st != VIGIL_OK; }

/* Every builder result goes through here: NULL means out of memory. */
vigil_expr *cc_node(cc *c, vigil_expr *x) {
    if (cc_bad(c)) return NULL;
    if (!x) {
        c->st = VIGIL_ENOMEM;
        return NULL;
    }
    if (++c->nodes > MAX_NODES)
        return cc_fail(c, "the rule's conditions are too large (more than %d expression nodes)", MAX_NODES);
    /* nodes live in the ruleset, outside the Lua heap: count them against the
     * file's cap all the same, so that a loop of rule{} calls cannot build an
     * unbounded ruleset */
    vigil_sandbox *sb = vigil_sandbox_of(c->L);
    if (vigil_sandbox_charge(sb, NODE_BYTES) != VIGIL_OK) {
        c->cap_hit = 1;
        return cc_fail(c, "memory cap exceeded: the file's rules need more than %zu MiB",
                     vigil_sandbox_mem_cap(sb) >> 20);
    }
    return x;
}

/* ---- reading Lua values (raw) -------------------------------------------------- */

kind_t cc_kind_of(lua_State *L, int idx) {
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
int cc_rget(lua_State *L, int t, const char *k) {
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

/* t[k] as a C string without embedded NULs (anchored by t), or NULL */
const char *cc_rstr(lua_State *L, int t, const char *k) {
    const char *s = NULL;
    if (cc_rget(L, t, k) == LUA_TSTRING) {
        size_t len;
        s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len) s = NULL;
    }
    lua_pop(L, 1);
    return s;
}

double cc_rnum(lua_State *L, int t, const char *k, double dflt) {
    double d = dflt;
    if (cc_rget(L, t, k) == LUA_TNUMBER) d = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return d;
}

int cc_rbool(lua_State *L, int t, const char *k) {
    cc_rget(L, t, k);
    int b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

/* A short description of the value at idx, for messages. */
const char *cc_describe(lua_State *L, int idx, char *buf, size_t n) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return "nil";
    case LUA_TBOOLEAN:
        return "a boolean (Lua's and/or/not and comparison operators give booleans; use "
               "all_of/any_of/none_of and eq/ne/gt/ge/lt/le)";
    case LUA_TNUMBER: snprintf(buf, n, "the number %.15g", lua_tonumber(L, idx)); return buf;
    case LUA_TSTRING: snprintf(buf, n, "the string \"%.60s\"", lua_tostring(L, idx)); return buf;
    case LUA_TFUNCTION: return "a function";
    case LUA_TTABLE:
        switch (cc_kind_of(L, idx)) {
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

int cc_has_control(const char *s) {
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return 1;
    return 0;
}

/* A field path: no control character either, since the key field ends up in
 * NATS subjects (vigil.late.<key field>), log lines and `vigil check`'s output. */
int cc_valid_path(const char *p) {
    size_t n = p ? strlen(p) : 0;
    if (n == 0 || n > MAX_PATH || p[0] == '.' || p[n - 1] == '.' || strstr(p, "..")) return 0;
    return !cc_has_control(p);
}

int cc_valid_name(const char *s) {
    if (!s || !*s || strlen(s) > VIGIL_MAX_RULE_NAME) return 0;
    for (; *s; s++)
        if (!(islower((unsigned char)*s) || isdigit((unsigned char)*s) || *s == '_')) return 0;
    return 1;
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
            cc_fail(c, "rule{} takes named keys only (name = ..., key = ..., ...); found a value "
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
        cc_fail(c, "unknown key '%s'%s in rule{}; expected one of: name, description, severity, key, "
                 "pattern, within, skip, suppress, mode, alert, examples, where, window, when, version",
              first, more);
    }
    lua_settop(L, top);
}

/* t[k] as a duration in ms: 0 when absent; -1 after an error. */
static int64_t duration_of(cc *c, int t, const char *k) {
    lua_State *L = c->L;
    char buf[96];
    int ty = cc_rget(L, t, k);
    int64_t ms = 0;
    if (ty == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (vigil_duration_parse(s, &ms) != VIGIL_OK || ms <= 0) {
            cc_fail(c, "%s = \"%.60s\" is not a duration; expected a positive number and a unit "
                     "(ms, s, m, h, d), e.g. \"10m\"", k, s);
            ms = -1;
        }
    } else if (ty != LUA_TNIL) {
        cc_fail(c, "%s must be a duration string such as \"10m\", got %s", k,
              cc_describe(L, -1, buf, sizeof buf));
        ms = -1;
    }
    lua_pop(L, 1);
    return ms;
}

static int opt_string(cc *c, int t, const char *k, const char **out) {
    char buf[96];
    *out = NULL;
    int ty = cc_rget(c->L, t, k);
    if (ty == LUA_TSTRING) {
        *out = cc_rstr(c->L, t, k);
        if (!*out) cc_fail(c, "%s must not contain NUL bytes", k);
    } else if (ty != LUA_TNIL) {
        cc_fail(c, "%s must be a string, got %s", k, cc_describe(c->L, -1, buf, sizeof buf));
    }
    lua_pop(c->L, 1);
    return cc_bad(c) ? -1 : 0;
}

static int pick(cc *c, int t, const char *k, const char *const *names, int dflt, const char *expect) {
    const char *s;
    if (opt_string(c, t, k, &s) != 0) return -1;
    if (!s) return dflt;
    for (int i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0) return i;
    cc_fail(c, "%s = \"%.60s\" is not valid; expected %s", k, s, expect);
    return -1;
}

static const char *const cont_names[] = {"next", "followed_by", "followed_by_any", "not_next",
                                         "not_followed_by", NULL};

/* One step table (at st) of a pattern into sd. */
static void step_of(cc *c, int st, int i, vigil_step_def *sd) {
    lua_State *L = c->L;
    const char *name = cc_rstr(L, st, "name"), *cont = cc_rstr(L, st, "cont");
    if (!name) {
        cc_fail(c, "step %d has no name", i + 1);
        return;
    }
    sd->name = name;
    sd->contiguity = VIGIL_CONT_STRICT;
    for (int k = 0; cont && cont_names[k]; k++)
        if (strcmp(cont_names[k], cont) == 0) sd->contiguity = (vigil_contiguity)k;
    double mn = cc_rnum(L, st, "min", 1), mx = cc_rnum(L, st, "max", 1);
    if (!(mn >= 0 && mn < VIGIL_UNBOUNDED) || !(mx == -1 || (mx >= 0 && mx < VIGIL_UNBOUNDED))) {
        cc_fail(c, "step '%s': malformed quantifier", name);
        return;
    }
    sd->min = (uint32_t)mn;
    sd->max = mx < 0 ? VIGIL_UNBOUNDED : (uint32_t)mx;
    sd->optional = cc_rbool(L, st, "optional");
    sd->greedy = cc_rbool(L, st, "greedy");
    sd->consecutive = cc_rbool(L, st, "consecutive");
    const char *quant = cc_rstr(L, st, "quant");
    int looping = sd->max > 1;
    int negated = sd->contiguity == VIGIL_CONT_NOT_NEXT || sd->contiguity == VIGIL_CONT_NOT_FOLLOWED_BY;
    int has_stop = cc_rget(L, st, "stop_when") != LUA_TNIL;
    lua_pop(L, 1);
    if (negated && (quant || sd->optional || sd->greedy || sd->consecutive || has_stop)) {
        cc_fail(c, "step '%s': a %s() step matches no event, so it takes no quantifier, optional(), "
                 "greedy(), consecutive() or stop_when{}", name, cont);
        return;
    }
    if (sd->greedy && !looping) {
        cc_fail(c, "step '%s': greedy() applies to a looping step (times(n, m), times_or_more(n), "
                 "one_or_more())", name);
        return;
    }
    if (sd->consecutive && !looping) {
        cc_fail(c, "step '%s': consecutive() applies to a looping step (times(n, m), "
                 "times_or_more(n), one_or_more())", name);
        return;
    }
    if (has_stop && sd->max != VIGIL_UNBOUNDED) {
        cc_fail(c, "step '%s': stop_when{} applies to a step with one_or_more() or times_or_more(n)", name);
        return;
    }
    /* where{} / or_where{}: FlinkCEP folds them left to right */
    char what[96];
    snprintf(what, sizeof what, "step '%s': where", name);
    vigil_expr *acc = NULL;
    int any = 0;                       /* acc == NULL: no where yet, or an empty one */
    cc_rget(L, st, "conds");
    int conds = lua_gettop(L);
    int n = lua_type(L, conds) == LUA_TTABLE ? (int)lua_rawlen(L, conds) : 0;
    for (int k = 1; k <= n && !cc_bad(c); k++) {
        lua_rawgeti(L, conds, k);
        int e = lua_gettop(L);
        if (lua_type(L, e) != LUA_TTABLE) {
            cc_fail(c, "step '%s': malformed condition list", name);
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
                cc_fail(c, "step '%s': %s", name, he.msg);
                break;
            }
            if (!(x = cc_node(c, vigil_expr_host(c->rs, id)))) break;
        } else if (cc_where(c, lua_gettop(L), what, &x) != 0) {
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
            acc = cc_node(c, vigil_expr_apply(c->rs, is_or ? VIGIL_X_OR : VIGIL_X_AND, a, 2));
        }
    }
    lua_settop(L, conds - 1);
    if (cc_bad(c)) return;
    sd->cond = acc;
    if (has_stop) {
        snprintf(what, sizeof what, "step '%s': stop_when", name);
        cc_rget(L, st, "stop_when");
        cc_where(c, lua_gettop(L), what, &sd->stop_when);
        lua_pop(L, 1);
    }
}

static void pattern_of(cc *c, int p, vigil_rule_def *d, vigil_step_def *steps) {
    lua_State *L = c->L;
    char buf[96];
    if (cc_kind_of(L, p) != K_PATTERN) {
        cc_fail(c, "pattern must be built with begin(\"step\")..., got %s", cc_describe(L, p, buf, sizeof buf));
        return;
    }
    cc_rget(L, p, "_steps");
    int s = lua_gettop(L);
    int n = lua_type(L, s) == LUA_TTABLE ? (int)lua_rawlen(L, s) : 0;
    if (n < 1) {
        cc_fail(c, "malformed pattern");
        return;
    }
    if (n > VIGIL_MAX_STEPS) {
        cc_fail(c, "a pattern has at most %d steps, got %d", VIGIL_MAX_STEPS, n);
        return;
    }
    for (int i = 0; i < n && !cc_bad(c); i++) {
        lua_rawgeti(L, s, i + 1);
        if (lua_type(L, -1) != LUA_TTABLE) cc_fail(c, "malformed pattern step %d", i + 1);
        else step_of(c, lua_gettop(L), i, &steps[i]);
        lua_pop(L, 1);
    }
    if (cc_bad(c)) return;
    d->steps = steps;
    d->nsteps = n;
    /* within (before the absence check that needs it) */
    int64_t within = duration_of(c, 1, "within");
    if (within < 0) return;
    d->within_ms = within;
    if (steps[n - 1].contiguity == VIGIL_CONT_NOT_FOLLOWED_BY && within == 0) {
        cc_fail(c, "a pattern that ends with not_followed_by(\"%s\") needs within = \"...\": how long "
                 "the absence must last", steps[n - 1].name);
        return;
    }
    /* skip strategy */
    static const char *const skip_names[] = {"no_skip", "skip_to_next", "skip_past_last_event", NULL};
    static const char *const skip_expect =
        "\"no_skip\", \"skip_to_next\", \"skip_past_last_event\" (the default), "
        "skip_to_first(\"step\") or skip_to_last(\"step\")";
    d->skip = VIGIL_SKIP_PAST_LAST_EVENT;
    int ty = cc_rget(L, 1, "skip");
    int sk = lua_gettop(L);
    if (ty == LUA_TSTRING) {
        const char *v = lua_tostring(L, sk);
        int i = 0;
        while (skip_names[i] && strcmp(skip_names[i], v) != 0) i++;
        if (skip_names[i]) d->skip = (vigil_skip)i;
        else cc_fail(c, "skip = \"%.60s\" is not a skip strategy; expected %s", v, skip_expect);
    } else if (cc_kind_of(L, sk) == K_SKIP) {
        const char *k = cc_rstr(L, sk, "_kind");
        d->skip = k && strcmp(k, "skip_to_last") == 0 ? VIGIL_SKIP_TO_LAST : VIGIL_SKIP_TO_FIRST;
        d->skip_step = cc_rstr(L, sk, "_step");
        int found = 0;
        for (int i = 0; i < n && d->skip_step; i++) found |= strcmp(steps[i].name, d->skip_step) == 0;
        if (!found)
            cc_fail(c, "skip = %s(\"%s\"): no step of that name in the pattern", k ? k : "skip_to",
                  d->skip_step ? d->skip_step : "");
    } else if (ty != LUA_TNIL) {
        cc_fail(c, "skip must be %s; got %s", skip_expect, cc_describe(L, sk, buf, sizeof buf));
    }
    lua_pop(L, 1);
}

static void window_of(cc *c, int w, vigil_rule_def *d) {
    lua_State *L = c->L;
    char buf[96];
    if (cc_kind_of(L, w) != K_WINDOW) {
        cc_fail(c, "window must be sliding(d), tumbling(d) or session(gap), got %s",
              cc_describe(L, w, buf, sizeof buf));
        return;
    }
    const char *k = cc_rstr(L, w, "_kind");
    d->window = k && strcmp(k, "tumbling") == 0  ? VIGIL_WIN_TUMBLING
                : k && strcmp(k, "session") == 0 ? VIGIL_WIN_SESSION
                                                 : VIGIL_WIN_SLIDING;
    double ms = cc_rnum(L, w, "_ms", 0), prec = cc_rnum(L, w, "_precision", 0);
    if (!(ms > 0 && ms < 9.0e15) || !(prec >= 0 && prec < 9.0e15)) {
        cc_fail(c, "malformed window");
        return;
    }
    d->window_ms = (int64_t)ms;
    d->precision_ms = (int64_t)prec;
    if (d->precision_ms > d->window_ms) {
        cc_fail(c, "sliding(): precision must not exceed the window size");
        return;
    }
    if (cc_rget(L, 1, "where") != LUA_TNIL) cc_where(c, lua_gettop(L), "where", &d->where);
    lua_pop(L, 1);
    if (cc_bad(c)) return;
    int ty = cc_rget(L, 1, "when");
    int wi = lua_gettop(L);
    kind_t wk = cc_kind_of(L, wi);
    if (ty == LUA_TNIL)
        cc_fail(c, "a window rule needs when = <condition>, e.g. when = ge(count(), 4)");
    else if (ty == LUA_TBOOLEAN)
        cc_fail(c, "when must be an expression object such as ge(count(), 4), got a boolean: Lua's "
                 "and/or/not and comparison operators cannot build expressions; use "
                 "eq/ne/gt/ge/lt/le and all_of/any_of/none_of");
    else if (wk == K_COND)
        cc_fail(c, "when = %s: a one-argument comparison is a where{} condition; in when compare two "
                 "values, e.g. ge(count(), 4)", "gt(x)");
    else if (wk != K_EXPR)
        cc_fail(c, "when must be an expression object such as ge(count(), 4), got %s",
              cc_describe(L, wi, buf, sizeof buf));
    else
        d->when = cc_expr(c, wi);
    lua_pop(L, 1);
}

static void rule_of(cc *c, vigil_rule_def *d, vigil_step_def *steps) {
    lua_State *L = c->L;
    char buf[96];
    const char *name = NULL;
    if (cc_rget(L, 1, "name") == LUA_TSTRING) {
        name = cc_rstr(L, 1, "name");
        snprintf(c->err.rule, sizeof c->err.rule, "%s", lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    check_keys(c, 1);
    if (cc_bad(c)) return;
    if (!name) {
        cc_rget(L, 1, "name");
        if (lua_isnil(L, -1))
            cc_fail(c, "missing required key 'name': a unique rule name matching [a-z0-9_]+");
        else
            cc_fail(c, "name must be a string matching [a-z0-9_]+, got %s", cc_describe(L, -1, buf, sizeof buf));
        lua_pop(L, 1);
        return;
    }
    if (!cc_valid_name(name)) {
        cc_fail(c, "rule name '%s' is invalid: expected [a-z0-9_]+, at most %d characters", name,
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
        cc_fail(c, "missing required key 'key': the event field that partitions state, e.g. key = \"card_id\"");
        return;
    }
    if (!cc_valid_path(d->key)) {
        cc_fail(c, "key = \"%s\" is not a field path%s (expected e.g. \"card_id\" or \"card.bin\")", d->key,
                cc_has_control(d->key) ? ": it contains a control character (CR, LF, tab, ...)" : "");
        return;
    }
    d->version = 1;
    int ty = cc_rget(L, 1, "version");
    if (ty != LUA_TNIL) {
        double v = ty == LUA_TNUMBER ? lua_tonumber(L, -1) : 0;
        if (ty != LUA_TNUMBER || v != floor(v) || v < 1 || v > INT_MAX)
            cc_fail(c, "version must be a whole number >= 1, got %s", cc_describe(L, -1, buf, sizeof buf));
        d->version = (int)v;
        c->declared_version = d->version;
    }
    lua_pop(L, 1);
    const vigil_rules_opts *ro = ld_opts(c->ld);   /* --rule-version NAME=N: a served version */
    for (int i = 0; ro && i < ro->nversions; i++)
        if (ro->versions[i].name && strcmp(ro->versions[i].name, name) == 0) d->version = ro->versions[i].version;
    ty = cc_rget(L, 1, "alert");          /* called by the host on every alert of the rule */
    if (ty != LUA_TNIL && ty != LUA_TFUNCTION) {
        cc_fail(c, "alert must be a function(m) returning a table of details, got %s",
              cc_describe(L, -1, buf, sizeof buf));
    } else if (ty == LUA_TFUNCTION && !cc_bad(c)) {
        vigil_error he;
        vigil_error_clear(&he);
        d->alert_fn = ld_host_fn(c->ld, L, lua_gettop(L), &he);
        if (d->alert_fn < 0) cc_fail(c, "alert: %s", he.msg);
    }
    lua_pop(L, 1);
    ty = cc_rget(L, 1, "examples");       /* run by `vigil test` */
    if (ty != LUA_TNIL && cc_kind_of(L, -1) != K_PLAIN)
        cc_fail(c, "examples must be a list of { events = {...}, alerts = n } or { events = {...}, "
                 "matches = {...} }, got %s",
              cc_describe(L, -1, buf, sizeof buf));
    else if (ty != LUA_TNIL)
        cc_examples(c, lua_gettop(L), d);
    lua_pop(L, 1);
    if (cc_bad(c)) return;
    int64_t sup = duration_of(c, 1, "suppress");
    if (sup < 0) return;
    d->suppress_ms = sup;

    int has_pattern = cc_rget(L, 1, "pattern") != LUA_TNIL;
    int p = lua_gettop(L);
    int has_window = cc_rget(L, 1, "window") != LUA_TNIL;
    int w = lua_gettop(L);
    int has_where = cc_rget(L, 1, "where") != LUA_TNIL;
    int has_when = cc_rget(L, 1, "when") != LUA_TNIL;
    int has_within = cc_rget(L, 1, "within") != LUA_TNIL;
    int has_skip = cc_rget(L, 1, "skip") != LUA_TNIL;
    lua_pop(L, 4);
    if (has_pattern && has_window)
        cc_fail(c, "a rule has either a pattern or a window (with when), not both");
    else if (!has_pattern && !has_window)
        cc_fail(c, "a rule needs a pattern (pattern = begin(\"a\"):where{...}) or a window and a "
                 "condition (window = sliding(\"1h\"), when = ge(count(), 4))");
    else if (has_pattern && (has_where || has_when))
        cc_fail(c, "%s belongs to window rules; a pattern rule puts its conditions on steps: "
                 "begin(\"a\"):where{...}", has_where ? "where" : "when");
    else if (has_window && (has_within || has_skip))
        cc_fail(c, "%s belongs to pattern rules; a window rule has window, where and when",
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
    if (lua_gettop(L) != 1 || cc_kind_of(L, 1) != K_PLAIN) {
        cc_fail(&c, "rule{} takes one table: rule{ name = \"...\", key = \"...\", pattern = ... }");
    } else if (ld_count_rule(c.ld) > MAX_RULES_PER_FILE) {
        cc_fail(&c, "more than %d rules in one file", MAX_RULES_PER_FILE);
    } else {
        rule_of(&c, &d, steps);
    }
    if (!cc_bad(&c) && !ld_replaying(c.ld) && ld_pick(c.ld, &d, c.declared_version, c.err.line)) {
        /* a replay only registers the functions again; a catalog build adds the rules it picks */
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


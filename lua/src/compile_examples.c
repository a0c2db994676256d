/* compile_examples.c — a rule's `examples` (DESIGN.md §4, docs/rules.md
 * "Examples"): each one's events, converted from Lua tables to NDJSON, and
 * the alerts (a count or the exact matches) and late events it expects, for
 * `vigil test` to run through an engine.
 *
 * It is its own file because it is a job apart from compiling the rule: it
 * checks and copies test data, and nothing of it goes into the ruleset. */
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
    lua_Integer n = cc_kind_of(L, idx) == K_PLAIN ? list_len(L, idx) : -1;
    if (n < 0) {
        cc_fail(c, "%s must be a list of event ids such as {\"1\", \"3\"}, got %s", what,
              cc_describe(L, idx, buf, sizeof buf));
        return -1;
    }
    for (lua_Integer k = 1; k <= n; k++) {
        lua_rawgeti(L, idx, k);
        size_t len = 0;
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : NULL;
        if (!s || len == 0 || strlen(s) != len) {
            cc_fail(c, "%s[%lld] must be an event id string such as \"7\" (the event's id field), got %s",
                  what, (long long)k, cc_describe(L, -1, buf, sizeof buf));
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
    int ty = cc_rget(L, e, k);
    int64_t ms = 0;
    if (ty == LUA_TSTRING) {
        const char *s = lua_tostring(L, -1);
        if (vigil_duration_parse(s, &ms) != VIGIL_OK || ms <= 0) {
            cc_fail(c, "examples[%lld].%s = \"%.60s\" is not a duration; expected a positive number and a "
                     "unit (ms, s, m, h, d), e.g. \"10s\"", (long long)i, k, s);
            ms = -1;
        }
    } else if (ty != LUA_TNIL) {
        cc_fail(c, "examples[%lld].%s must be a duration string such as \"10s\", got %s", (long long)i, k,
              cc_describe(L, -1, buf, sizeof buf));
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
        char *js = NULL;
        if (lua_type(L, -1) == LUA_TSTRING) {   /* a JSON object as text: numbers keep their raw text (1.0, 1e0) */
            size_t sl;
            const char *sv = lua_tolstring(L, -1, &sl);
            cJSON *o = memchr(sv, '\n', sl) ? NULL : cJSON_ParseWithLength(sv, sl);
            if (o && cJSON_IsObject(o)) js = strndup(sv, sl);
            else why = "a text that is not one JSON object";
            cJSON_Delete(o);
            lua_pop(L, 1);
        } else {
            cJSON *o = cc_kind_of(L, -1) == K_PLAIN ? vlua_to_json(L, -1, 0, &why) : NULL;
            lua_pop(L, 1);
            js = o && cJSON_IsObject(o) ? cJSON_PrintUnformatted(o) : NULL;
            cJSON_Delete(o);
        }
        if (!js) {
            free(text);
            cc_fail(c, "examples[%lld].events[%lld] must be a table of fields (strings, numbers, booleans) or a JSON "
                  "object's text%s%s",
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
    if (cc_kind_of(L, e) != K_PLAIN) {
        cc_fail(c, "examples[%lld] must be a table { events = {...}, alerts = n } or { events = {...}, "
                 "matches = {...} }, got %s", (long long)i, cc_describe(L, e, buf, sizeof buf));
        return;
    }
    /* strict keys; the smallest unknown one is named, as in rule{} */
    const char *unknown = NULL;
    lua_pushnil(L);
    while (lua_next(L, e)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 1);
            cc_fail(c, "examples[%lld] takes named keys only (" EXAMPLE_KEYS "); found a value without a key",
                  (long long)i);
            return;
        }
        const char *k = lua_tostring(L, -1);   /* anchored by the table */
        int known = 0;
        for (int j = 0; example_keys[j]; j++) known |= strcmp(example_keys[j], k) == 0;
        if (!known && (!unknown || strcmp(k, unknown) < 0)) unknown = k;
    }
    if (unknown) {
        cc_fail(c, "examples[%lld]: unknown key '%.60s'; expected one of: " EXAMPLE_KEYS, (long long)i, unknown);
        return;
    }
    /* events */
    cc_rget(L, e, "events");
    int ev = lua_gettop(L);
    lua_Integer nev = cc_kind_of(L, ev) == K_PLAIN ? list_len(L, ev) : -1;
    if (nev < 0) {
        if (lua_isnil(L, ev))
            cc_fail(c, "examples[%lld] needs events = { {...}, ... }: the events to feed, in order", (long long)i);
        else
            cc_fail(c, "examples[%lld].events must be a list of events { {...}, ... }, got %s", (long long)i,
                  cc_describe(L, ev, buf, sizeof buf));
        return;
    }
    /* alerts */
    int alerts = -1;
    if (cc_rget(L, e, "alerts") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > INT_MAX) {
            cc_fail(c, "examples[%lld].alerts must be a whole number >= 0, got %s", (long long)i,
                  cc_describe(L, -1, buf, sizeof buf));
            return;
        }
        alerts = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    /* matches: checked here, copied once everything else is known good */
    cc_rget(L, e, "matches");
    int m = lua_gettop(L);
    lua_Integer nm = -1;
    size_t mids = 0, mbytes = 0;
    if (!lua_isnil(L, m)) {
        nm = cc_kind_of(L, m) == K_PLAIN ? list_len(L, m) : -1;
        if (nm < 0 || nm > INT_MAX) {
            cc_fail(c, "examples[%lld].matches must be a list of the expected alerts, each a list of event ids "
                     "in match order: matches = { {\"1\", \"3\"}, {\"2\", \"4\"} }; got %s", (long long)i,
                  cc_describe(L, m, buf, sizeof buf));
            return;
        }
        for (lua_Integer k = 1; k <= nm; k++) {
            snprintf(what, sizeof what, "examples[%lld].matches[%lld]", (long long)i, (long long)k);
            lua_rawgeti(L, m, k);
            lua_Integer ni = ids_check(c, lua_gettop(L), what, &mbytes);
            lua_pop(L, 1);
            if (ni < 0) return;
            if (ni == 0) {
                cc_fail(c, "%s is empty: an alert lists at least one event id", what);
                return;
            }
            mids += (size_t)ni;
        }
        if (alerts >= 0 && alerts != nm) {
            cc_fail(c, "examples[%lld]: alerts = %d but matches lists %lld alert%s; they must agree (alerts "
                     "may be left out when matches is given)", (long long)i, alerts, (long long)nm,
                  nm == 1 ? "" : "s");
            return;
        }
        alerts = (int)nm;
    } else if (alerts < 0) {
        cc_fail(c, "examples[%lld] needs alerts = n (how many alerts) or matches = { {\"id\", ...}, ... } "
                 "(which alerts)", (long long)i);
        return;
    }
    /* late */
    cc_rget(L, e, "late");
    int l = lua_gettop(L);
    lua_Integer nl = -1;
    size_t lbytes = 0;
    if (!lua_isnil(L, l)) {
        snprintf(what, sizeof what, "examples[%lld].late", (long long)i);
        if ((nl = ids_check(c, l, what, &lbytes)) < 0) return;
        if (nl > INT_MAX) {
            cc_fail(c, "%s: too many ids", what);
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
void cc_examples(cc *c, int t, const vigil_rule_def *d) {
    lua_State *L = c->L;
    vigil_rule_examples *ex = ld_examples(c->ld);
    lua_Integer n = list_len(L, t);
    if (n < 0) {
        cc_fail(c, "examples must be a list { {...}, {...} } of entries { events = {...}, alerts = n } or "
                 "{ events = {...}, matches = {...} }");
        return;
    }
    for (lua_Integer i = 1; i <= n && !cc_bad(c); i++) {
        lua_rawgeti(L, t, i);
        int e = lua_gettop(L);
        example_of(c, e, i, d, ex);
        lua_settop(L, e - 1);
    }
}


/* host.c — Lua functions at match time: `:where(function(e, m) … end)`
 * predicates and `alert = function(m) … end` (DESIGN.md §4).
 *
 * The engine has no Lua (engine/ ← lua/ ← server/, cli/): it calls these through the
 * ruleset's vigil_host, one instance per engine. An engine runs on one
 * thread, so each instance owns its Lua states and nothing is shared or
 * locked. An instance is built by running again, in a fresh sandbox, every
 * rule file that defined functions (rules.c ld_replay): the file's top-level
 * code, locals and helper functions come back exactly as at load, and its
 * functions are registered again in the same order, so id k is the same
 * function in every instance. A file whose second run defines other
 * functions (it read the time or random numbers) fails the instance.
 *
 * A call gets:
 *   e — the event as a table (its JSON: objects are tables, arrays lists,
 *       null is nil), decoded once per event and instance and reused while
 *       the same event is being matched;
 *   m — the match so far: m.<step> is the list of the events that step
 *       accepted (m.probe[1].amount, #m.probe), m.events all of them in match
 *       order; an unknown step name raises. m is valid only during the call.
 * A predicate holds when it returns a true value (not nil or false). An
 * alert function returns a table (or nil): its members become members of
 * the alert's `details` (at most MAX_DETAILS_BYTES of JSON: the state's
 * memory cap bounds what a call holds, not the copies every alert makes on its
 * way out). Each call runs under its own budget (CALL_BUDGET
 * instructions, CALL_WALL_MS of wall clock) and the file's memory cap; an
 * error or an exceeded budget makes a predicate false and leaves an alert's
 * built-in details, is counted (vigil_function_errors_total) and reported on
 * stderr (the first few per instance, then one in ERR_EVERY). A file's
 * predicates share EVENT_WALL_MS per event (a call gets what is left, at
 * most CALL_WALL_MS): with 64 partial matches each calling its predicate, one
 * event could otherwise hold the worker for 6.4 s; once they are spent, the
 * file's predicates are false for the rest of that event (counted). */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <lauxlib.h>
#include <cjson/cJSON.h>
#include "vigil/event.h"
#include "rules_int.h"

#define CALL_BUDGET 1000000ULL   /* Lua VM instructions per call */
#define CALL_WALL_MS 100
#define EVENT_WALL_MS 250         /* one file's predicates on one event, all calls together: each
                                     partial match (up to max_runs) calls the step it waits on */
#define MAX_DEPTH 32              /* nesting of an event's JSON or of an alert table */
#define MAX_DETAILS_BYTES 65536   /* an alert function's details, as JSON: each alert is copied to
                                     the hub's ring, SSE clients, webhooks, NATS and a dry run's answer */
#define ERR_FIRST 10
#define ERR_EVERY 10000

typedef struct hfn {
    int src;                      /* index into the proto's sources / the instance's sandboxes */
    int ref;                      /* registry reference in that sandbox's state */
} hfn;

typedef struct vhost_inst {
    const vhost_proto *p;
    const vigil_ruleset *rs;
    vigil_sandbox **sbs;          /* one per source */
    loader **lds;                 /* their replay loaders (rule() refuses once running) */
    int nsbs;
    hfn *fns;                     /* by id, 1..p->nfn */
    int cur_src;                  /* source being replayed (vhost_keep) */
    const vigil_event *ev_cached; /* the event whose table is at ev_ref, per sandbox */
    int *ev_ref;
    int64_t *ev_spent_us;         /* per source: wall clock (µs) its predicates took on ev_cached */
    const vigil_match_view *view; /* the view of the call in progress, for m's __index */
    uint64_t gen;                 /* bumped per call: an m kept past its call raises */
    uint64_t errors;
} vhost_inst;

void vhost_keep(vhost_inst *in, int id, lua_State *L, int idx) {
    lua_pushvalue(L, idx);
    in->fns[id].src = in->cur_src;
    in->fns[id].ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static void report(vhost_inst *in, const char *what, const vigil_error *e) {
    in->errors++;
    if (in->errors <= ERR_FIRST || in->errors % ERR_EVERY == 0)
        fprintf(stderr, "vigil: %s%s%.0d: %s failed: %s (%llu function errors in this worker)\n",
                e->file[0] ? e->file : "?", e->line > 0 ? ":" : "", e->line > 0 ? e->line : 0, what, e->msg,
                (unsigned long long)in->errors);
}

/* ---- JSON <-> Lua ------------------------------------------------------------------ */

static void push_json(lua_State *L, const cJSON *j, int depth) {
    luaL_checkstack(L, 4, "event nesting");
    if (cJSON_IsString(j)) {
        lua_pushstring(L, j->valuestring);
    } else if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)d);
        else lua_pushnumber(L, d);
    } else if (cJSON_IsBool(j)) {
        lua_pushboolean(L, cJSON_IsTrue(j));
    } else if ((cJSON_IsObject(j) || cJSON_IsArray(j)) && depth < MAX_DEPTH) {
        lua_newtable(L);
        int i = 1;
        for (const cJSON *c = j->child; c; c = c->next, i++) {
            if (cJSON_IsNull(c)) continue;        /* null is nil: absent */
            push_json(L, c, depth + 1);
            if (cJSON_IsArray(j)) lua_rawseti(L, -2, i);
            else lua_setfield(L, -2, c->string);
        }
    } else {
        lua_pushnil(L);
    }
}

/* The event as a table; NULL-safe. Always pushes one value. */
static void push_event(lua_State *L, const vigil_event *ev) {
    size_t len;
    const char *js = ev ? vigil_event_json(ev, &len) : NULL;
    cJSON *j = js ? cJSON_ParseWithLength(js, len) : NULL;
    if (j) push_json(L, j, 0);
    else lua_newtable(L);
    cJSON_Delete(j);
}

cJSON *vlua_to_json(lua_State *L, int idx, int depth, const char **why) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL: return cJSON_CreateNull();
    case LUA_TBOOLEAN: return cJSON_CreateBool(lua_toboolean(L, idx));
    case LUA_TSTRING: return cJSON_CreateString(lua_tostring(L, idx));
    case LUA_TNUMBER: {
        double d = lua_tonumber(L, idx);
        if (!isfinite(d)) {
            *why = "a number that is not finite (nan or inf)";
            return NULL;
        }
        return cJSON_CreateNumber(d);
    }
    case LUA_TTABLE: break;
    default:
        *why = "a value that is not nil, a boolean, a number, a string or a table";
        return NULL;
    }
    if (depth >= MAX_DEPTH) {
        *why = "tables nested too deeply (a cycle?)";
        return NULL;
    }
    luaL_checkstack(L, 4, "alert table nesting");
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), keys = 0;
    int strings = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys++;
        if (lua_type(L, -2) == LUA_TSTRING) strings++;
        lua_pop(L, 1);
    }
    if (strings && strings != keys) {
        *why = "a table with both names and numbers as keys";
        return NULL;
    }
    if (!strings && keys != n) {
        *why = "a table whose keys are not names or 1..n";
        return NULL;
    }
    cJSON *o = strings || keys == 0 ? cJSON_CreateObject() : cJSON_CreateArray();
    if (!o) return NULL;
    if (!strings) {
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, idx, i);
            cJSON *c = vlua_to_json(L, -1, depth + 1, why);
            lua_pop(L, 1);
            if (!c || !cJSON_AddItemToArray(o, c)) {
                cJSON_Delete(c);
                cJSON_Delete(o);
                return NULL;
            }
        }
        return o;
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        cJSON *c = vlua_to_json(L, -1, depth + 1, why);
        if (!c || !cJSON_AddItemToObject(o, lua_tostring(L, -2), c)) {
            lua_pop(L, 2);
            cJSON_Delete(c);
            cJSON_Delete(o);
            return NULL;
        }
        lua_pop(L, 1);
    }
    return o;
}

/* ---- m: the match so far ------------------------------------------------------------ */

/* m's __index: upvalues 1 = the instance, 2 = the generation of its call. */
static int match_index(lua_State *L) {
    vhost_inst *in = lua_touserdata(L, lua_upvalueindex(1));
    if ((uint64_t)lua_tointeger(L, lua_upvalueindex(2)) != in->gen || !in->view)
        return vigil_sandbox_raise(L, "m is valid only during the call that received it");
    const vigil_match_view *v = in->view;
    const char *name = lua_tostring(L, 2);
    if (!name) return vigil_sandbox_raise(L, "m is indexed by step name (m.probe), got a %s", luaL_typename(L, 2));
    int nsteps = vigil_ruleset_step_count(v->rs, v->rule), step = -1;
    for (int s = 0; s < nsteps && step < 0; s++)
        if (strcmp(vigil_ruleset_step_name(v->rs, v->rule, s), name) == 0) step = s;
    if (step < 0 && strcmp(name, "events") != 0) {
        char steps[512];
        size_t off = 0;
        steps[0] = '\0';
        for (int s = 0; s < nsteps && off < sizeof steps - 70; s++)
            off += (size_t)snprintf(steps + off, sizeof steps - off, "%s%s", s ? ", " : "",
                                    vigil_ruleset_step_name(v->rs, v->rule, s));
        return vigil_sandbox_raise(L, "m.%s: the rule has no step '%s' (its steps: %s; m.events lists every event)", name,
                        name, nsteps ? steps : "none");
    }
    lua_newtable(L);
    int k = 0;
    for (int i = 0; i < v->n; i++) {
        if (step >= 0 && (!v->steps || v->steps[i] != step)) continue;
        push_event(L, v->events[i]);
        lua_rawseti(L, -2, ++k);
    }
    lua_pushvalue(L, 2);
    lua_pushvalue(L, -2);
    lua_rawset(L, 1);                          /* cached in m for the rest of the call */
    return 1;
}

static void push_match(vhost_inst *in, lua_State *L) {
    lua_newtable(L);
    lua_newtable(L);
    lua_pushlightuserdata(L, in);
    lua_pushinteger(L, (lua_Integer)in->gen);
    lua_pushcclosure(L, match_index, 2);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
}

/* ---- the vigil_host callbacks ----------------------------------------------------- */

static void inst_close(void *vi) {
    vhost_inst *in = vi;
    if (!in) return;
    for (int i = 0; i < in->nsbs; i++) {
        vigil_sandbox_destroy(in->sbs[i]);
        ld_replay_free(in->lds[i]);
    }
    if (in->ev_cached) vigil_event_release((vigil_event *)in->ev_cached);
    free(in->sbs);
    free(in->lds);
    free(in->fns);
    free(in->ev_ref);
    free(in->ev_spent_us);
    free(in);
}

static void *inst_open(void *ud, const vigil_ruleset *rs) {
    const vhost_proto *p = ud;
    vhost_inst *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->p = p;
    in->rs = rs;
    in->sbs = calloc((size_t)(p->nsrcs ? p->nsrcs : 1), sizeof *in->sbs);
    in->lds = calloc((size_t)(p->nsrcs ? p->nsrcs : 1), sizeof *in->lds);
    in->ev_ref = malloc((size_t)(p->nsrcs ? p->nsrcs : 1) * sizeof *in->ev_ref);
    in->ev_spent_us = calloc((size_t)(p->nsrcs ? p->nsrcs : 1), sizeof *in->ev_spent_us);
    in->fns = calloc((size_t)p->nfn + 1, sizeof *in->fns);
    if (!in->sbs || !in->lds || !in->ev_ref || !in->ev_spent_us || !in->fns) {
        inst_close(in);
        return NULL;
    }
    for (int i = 0; i < p->nsrcs; i++) {
        vigil_error e;
        vigil_error_clear(&e);
        in->cur_src = i;
        in->ev_ref[i] = LUA_NOREF;
        vigil_status s = ld_replay(p, i, in, &in->sbs[i], &in->lds[i], &e);
        in->nsbs = i + 1;
        if (s != VIGIL_OK) {
            fprintf(stderr, "vigil: %s:%d: cannot prepare the file's functions for a worker: %s\n",
                    e.file[0] ? e.file : p->srcs[i].file, e.line, e.msg);
            inst_close(in);
            return NULL;
        }
    }
    return in;
}

/* Push fn and its first argument, the event (cached per sandbox). */
static vigil_sandbox *prepare(vhost_inst *in, int fn, const vigil_event *ev, int with_event) {
    if (fn < 1 || fn > in->p->nfn) return NULL;
    const hfn *h = &in->fns[fn];
    vigil_sandbox *sb = in->sbs[h->src];
    lua_State *L = vigil_sandbox_state(sb);
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
    if (!with_event) return sb;
    if (ev != in->ev_cached) {                 /* a new event: drop every sandbox's old table */
        for (int i = 0; i < in->nsbs; i++) {
            luaL_unref(vigil_sandbox_state(in->sbs[i]), LUA_REGISTRYINDEX, in->ev_ref[i]);
            in->ev_ref[i] = LUA_NOREF;
            in->ev_spent_us[i] = 0;
        }
        vigil_event_retain((vigil_event *)ev);
        if (in->ev_cached) vigil_event_release((vigil_event *)in->ev_cached);
        in->ev_cached = ev;
    }
    if (in->ev_ref[h->src] == LUA_NOREF) {
        push_event(L, ev);
        lua_pushvalue(L, -1);
        in->ev_ref[h->src] = luaL_ref(L, LUA_REGISTRYINDEX);
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, in->ev_ref[h->src]);
    }
    return sb;
}

static int64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int inst_pred(void *vi, int fn, const vigil_event *ev, const vigil_match_view *m) {
    vhost_inst *in = vi;
    vigil_sandbox *sb = prepare(in, fn, ev, 1);
    if (!sb) return -1;
    lua_State *L = vigil_sandbox_state(sb);
    int src = in->fns[fn].src;
    vigil_error e;
    vigil_error_clear(&e);
    int64_t left = (EVENT_WALL_MS * 1000 - in->ev_spent_us[src]) / 1000;   /* ms */
    if (left <= 0) {
        lua_settop(L, 0);
        snprintf(e.file, sizeof e.file, "%s", vigil_sandbox_name(sb));
        snprintf(e.msg, sizeof e.msg, "skipped: the file's predicates used their %d ms for this event", EVENT_WALL_MS);
        report(in, "function predicate", &e);
        return -1;
    }
    in->gen++;
    in->view = m;
    push_match(in, L);
    int64_t t0 = mono_us();
    vigil_status s = vigil_sandbox_call(sb, 2, 1, CALL_BUDGET, left < CALL_WALL_MS ? left : CALL_WALL_MS, &e);
    in->ev_spent_us[src] += mono_us() - t0;
    in->view = NULL;
    in->gen++;
    if (s != VIGIL_OK) {
        report(in, "function predicate", &e);
        return -1;
    }
    int v = lua_toboolean(L, -1);
    lua_settop(L, 0);
    return v;
}

static char *inst_alert(void *vi, int fn, const vigil_match_view *m) {
    vhost_inst *in = vi;
    vigil_sandbox *sb = prepare(in, fn, NULL, 0);
    if (!sb) return NULL;
    lua_State *L = vigil_sandbox_state(sb);
    in->gen++;
    in->view = m;
    push_match(in, L);
    vigil_error e;
    vigil_error_clear(&e);
    vigil_status s = vigil_sandbox_call(sb, 1, 1, CALL_BUDGET, CALL_WALL_MS, &e);
    char *out = NULL;
    if (s == VIGIL_OK) {
        const char *why = "out of memory";
        cJSON *j = NULL;
        if (lua_isnil(L, -1)) j = cJSON_CreateObject();
        else if (lua_type(L, -1) != LUA_TTABLE) why = "it must return a table of details (or nil)";
        else j = vlua_to_json(L, -1, 0, &why);
        if (j && !cJSON_IsObject(j)) {
            why = "it must return a table with named members, not a list";
            cJSON_Delete(j);
            j = NULL;
        }
        if (j) out = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        size_t n = out ? strlen(out) : 0;
        if (n > MAX_DETAILS_BYTES) {
            free(out);
            out = NULL;
            snprintf(e.file, sizeof e.file, "%s", vigil_sandbox_name(sb));
            snprintf(e.msg, sizeof e.msg, "its details are %zu bytes of JSON, over the limit of %d", n,
                     MAX_DETAILS_BYTES);
        } else if (!out) {
            snprintf(e.file, sizeof e.file, "%s", vigil_sandbox_name(sb));
            snprintf(e.msg, sizeof e.msg, "%s", why);
        }
    }
    in->view = NULL;
    in->gen++;
    lua_settop(L, 0);
    if (!out) report(in, "alert function", &e);
    return out;
}

static void proto_free(void *ud) {
    vhost_proto *p = ud;
    if (!p) return;
    for (int i = 0; i < p->nsrcs; i++) {
        free(p->srcs[i].file);
        free(p->srcs[i].src);
    }
    free(p->srcs);
    free(p);
}

const vigil_host vhost_callbacks = {
    .open = inst_open,
    .close = inst_close,
    .pred = inst_pred,
    .alert = inst_alert,
    .free_ud = proto_free,
};

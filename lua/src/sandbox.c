/* sandbox.c — the Lua state a rule file runs in (DESIGN.md §4).
 *
 * Rule files come from analysts and, through PUT /v1/rules/{name}, over the
 * network, so each one runs in its own lua_State that cannot reach the
 * process: the environment is built by allow-list (base functions without
 * load/loadfile/dofile/require/collectgarbage/print, and the string, table,
 * math and utf8 libraries without string.dump); there is no io, os, debug,
 * package or coroutine; chunks are loaded as text only (a precompiled
 * chunk could crash the VM). Three limits stop runaway files: a memory cap
 * enforced by the state's allocator (the one allocator hook, as in Lua's own
 * lauxlib), an instruction budget counted by a count hook, and a wall-clock
 * deadline checked in the same hook, because the hook does not fire inside
 * a C function. string.rep gets an explicit size check so that the classic
 * string.rep("x", 1e9) fails with a clear message rather than only at the
 * allocator, and the pattern functions (find, match, gmatch, gsub) get
 * bounds on pattern and subject, since a backtracking match runs inside C
 * too. Budget, wall-clock and memory errors are fatal: the guarded
 * pcall/xpcall rethrow them, so a rule file cannot catch them and loop on.
 * Reading an undefined global is an error (a metatable on _ENV), so typos in
 * DSL names fail at load time. This is the recipe of Redis's script_lua.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ctype.h>
#include <time.h>
#include <lauxlib.h>
#include <lualib.h>
#include "rules_int.h"

#define HOOK_EVERY 1000                       /* VM instructions between hook calls */
#define DEFAULT_MEM_CAP ((size_t)64 << 20)
#define DEFAULT_BUDGET 10000000ULL
#define DEFAULT_WALL_MS 2000

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

sandbox *sb_of(lua_State *L) {
    void *ud = NULL;
    lua_getallocf(L, &ud);
    return ud;
}

/* The allocator: plain realloc/free with a byte count against the cap.
 * Shrinking never fails (Lua relies on that). */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    sandbox *sb = ud;
    size_t old = ptr ? osize : 0;            /* with ptr == NULL osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > sb->cap - sb->used) {
        sb->mem_hit = 1;
        return NULL;
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        if (nsize <= old) {                  /* a failed shrink: keep the bigger block */
            sb->used -= old - nsize;
            return ptr;
        }
        return NULL;
    }
    sb->used = sb->used - old + nsize;
    return p;
}

int sb_user_line(lua_State *L, int from, char *short_src) {
    sandbox *sb = sb_of(L);
    lua_Debug ar;
    for (int lv = from; lua_getstack(L, lv, &ar); lv++) {
        if (!lua_getinfo(L, "Sl", &ar)) continue;
        if (ar.currentline > 0 && strcmp(ar.source, sb->chunkname) == 0) {
            if (short_src) snprintf(short_src, LUA_IDSIZE, "%s", ar.short_src);
            return ar.currentline;
        }
    }
    return 0;
}

int sb_raise(lua_State *L, const char *fmt, ...) {
    char msg[600], src[LUA_IDSIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    int line = sb_user_line(L, 0, src);
    if (line > 0)
        lua_pushfstring(L, "%s:%d: %s", src, line, msg);
    else
        lua_pushstring(L, msg);
    return lua_error(L);
}

/* Budget and wall clock. Once killed, every later hook call raises again, so
 * nothing (a finalizer, an xpcall handler) gets to run for long. */
static void hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    sandbox *sb = sb_of(L);
    sb->instr += HOOK_EVERY;
    int line = sb_user_line(L, 0, NULL);
    if (line > 0) sb->last_line = line;
    if (!sb->killed) {
        if (sb->instr > sb->budget) {
            sb->killed = 1;
            snprintf(sb->kill_msg, sizeof sb->kill_msg,
                     "instruction budget exceeded: more than %llu Lua instructions (an endless loop?)",
                     (unsigned long long)sb->budget);
        } else if (now_ns() > sb->deadline_ns) {
            sb->killed = 2;
            snprintf(sb->kill_msg, sizeof sb->kill_msg,
                     "wall-clock limit exceeded: the %s ran for more than %lld ms",
                     sb->in_call ? "function" : "file", (long long)sb->wall_ms);
        }
        if (sb->killed) sb->kill_line = sb->last_line;
    }
    if (sb->killed) sb_raise(L, "%s", sb->kill_msg);
}

static void mem_kill(sandbox *sb, lua_State *L) {
    if (sb->killed) return;
    sb->killed = 3;
    snprintf(sb->kill_msg, sizeof sb->kill_msg,
             "memory cap exceeded: the file needs more than %zu bytes (%zu MiB)", sb->cap,
             sb->cap >> 20);
    sb->kill_line = sb->last_line > 0 ? sb->last_line : sb_user_line(L, 0, NULL);
}

/* pcall that cannot swallow budget, wall-clock or memory errors. */
static int g_pcall(lua_State *L) {
    luaL_checkany(L, 1);
    int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    sandbox *sb = sb_of(L);
    if (st == LUA_ERRMEM) mem_kill(sb, L);
    if (st != LUA_OK && sb->killed) return lua_error(L);
    luaL_checkstack(L, 1, NULL);
    lua_pushboolean(L, st == LUA_OK);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* The message handler runs where the error was raised: for a budget or
 * wall-clock kill that is inside the count hook, where Lua disables hooks,
 * so a user handler would run unbounded. Skip it once the file is killed. */
static int xpcall_handler(lua_State *L) {
    if (sb_of(L)->killed) return 1;
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* xpcall(f, handler, ...) with the same rule; the handler is wrapped. */
static int g_xpcall(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    luaL_checkstack(L, 2, NULL);
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, xpcall_handler, 1);
    lua_replace(L, 2);
    lua_pushvalue(L, 1);
    lua_rotate(L, 3, 1);                     /* f, handler, f, args… */
    int st = lua_pcall(L, n - 2, LUA_MULTRET, 2);
    sandbox *sb = sb_of(L);
    if (st == LUA_ERRMEM) mem_kill(sb, L);
    if (st != LUA_OK && sb->killed) return lua_error(L);
    lua_pushboolean(L, st == LUA_OK);
    lua_rotate(L, 3, 1);
    return lua_gettop(L) - 2;
}

/* setmetatable without __gc: a finalizer would run user code outside the
 * file's run (at lua_close), where the limits no longer mean anything. */
static int g_setmetatable(lua_State *L) {
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int has = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (has) return sb_raise(L, "__gc metamethods are not allowed in rule files");
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return sb_raise(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* string.rep with the result size checked against what is left of the cap. */
static int g_rep(lua_State *L) {
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0) {
        sandbox *sb = sb_of(L);
        double total = (double)l * (double)n + (double)lsep * (double)(n - 1);
        if (total > (double)(sb->cap - sb->used))
            return sb_raise(L, "string.rep: a result of %.0f bytes would exceed the memory cap of %zu MiB",
                            total, sb->cap >> 20);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* string.find/match/gmatch/gsub: Lua's matcher backtracks inside C, where
 * neither the hook nor the wall clock can stop it (".-.-.-.-b" is O(n^5)).
 * In rule files a pattern gets at most one repetition (*, +, -, ? or %b)
 * and a subject of at most 4096 bytes, which bounds a call to about n^2
 * steps; a pattern without magic characters, or find(..., plain), is
 * bounded by subject × pattern length instead. */
#define PAT_MAX_SUBJECT 4096
#define PLAIN_MAX_WORK 1e9

static int pat_repetitions(const char *p, size_t n, int *magic) {
    int reps = 0;
    *magic = 0;
    for (size_t i = 0; i < n; i++) {
        if (strchr("^$*+?.([%-", p[i])) *magic = 1;
        if (p[i] == '%' && i + 1 < n) {
            if (p[i + 1] == 'b') reps++;
            i++;
        } else if (p[i] == '*' || p[i] == '+' || p[i] == '-' || p[i] == '?') {
            reps++;
        }
    }
    return reps;
}

static int g_pattern(lua_State *L) {
    size_t ls, lp;
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int magic;
    int reps = pat_repetitions(p, lp, &magic);
    int plain = strcmp(name, "find") == 0 && lua_toboolean(L, 4);
    if (plain || !magic) {
        if ((double)ls * (double)(lp ? lp : 1) > PLAIN_MAX_WORK)
            return sb_raise(L, "string.%s: subject and pattern too long for a rule file", name);
    } else {
        if (ls > PAT_MAX_SUBJECT)
            return sb_raise(L, "string.%s: Lua patterns in rule files run on at most %d bytes", name,
                            PAT_MAX_SUBJECT);
        if (reps > 1)
            return sb_raise(L, "string.%s: a pattern in a rule file has at most one repetition "
                               "(*, +, -, ? or %%b); use plain find or matches() on event fields", name);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* __index of the string library table: only string.dump is worth a message */
static int string_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "dump") == 0)
        return sb_raise(L, "string.dump is not available in the rule sandbox");
    return 0;
}

static const char *const removed[] = {
    "io", "os", "debug", "package", "require", "load", "loadfile", "dofile", "loadstring",
    "collectgarbage", "coroutine", "print", "warn", "module", "setfenv", "getfenv", NULL};

static int undefined_global(lua_State *L) {
    if (lua_type(L, 2) != LUA_TSTRING)
        return sb_raise(L, "undefined global (a %s key)", luaL_typename(L, 2));
    const char *k = lua_tostring(L, 2);
    for (int i = 0; removed[i]; i++)
        if (strcmp(k, removed[i]) == 0)
            return sb_raise(L, "undefined global '%s' (not available in the rule sandbox)", k);
    return sb_raise(L, "undefined global '%s'", k);
}

static const char *const base_ok[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "rawequal", "rawget",
    "rawlen", "rawset", "select", "tonumber", "tostring", "type", "_VERSION", NULL};

/* Runs protected: open the allowed libraries, run the prelude, build _ENV. */
static int setup(lua_State *L) {
    struct loader *ld = lua_touserdata(L, 1);
    sandbox *sb = sb_of(L);
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table},  {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* the string library is shared with the string metatable: patch it in place */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, g_rep, 1);
    lua_setfield(L, -2, "rep");
    static const char *const pats[] = {"find", "match", "gmatch", "gsub", NULL};
    for (int i = 0; pats[i]; i++) {
        lua_getfield(L, -1, pats[i]);
        lua_pushstring(L, pats[i]);
        lua_pushcclosure(L, g_pattern, 2);
        lua_setfield(L, -2, pats[i]);
    }
    lua_newtable(L);                           /* string.dump → a clear error */
    lua_pushcfunction(L, string_index);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, -2);
    lua_pop(L, 1);

    prelude_push(L, ld);                       /* the DSL names */
    int dsl = lua_gettop(L);

    lua_newtable(L);
    int env = lua_gettop(L);
    for (int i = 0; base_ok[i]; i++) {
        lua_getglobal(L, base_ok[i]);
        lua_setfield(L, env, base_ok[i]);
    }
    static const char *const libnames[] = {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME,
                                           LUA_UTF8LIBNAME, NULL};
    for (int i = 0; libnames[i]; i++) {
        lua_getglobal(L, libnames[i]);
        lua_setfield(L, env, libnames[i]);
    }
    lua_pushcfunction(L, g_pcall);
    lua_setfield(L, env, "pcall");
    lua_pushcfunction(L, g_xpcall);
    lua_setfield(L, env, "xpcall");
    lua_pushcfunction(L, g_setmetatable);
    lua_setfield(L, env, "setmetatable");
    lua_pushnil(L);
    while (lua_next(L, dsl)) {
        if (lua_type(L, -2) == LUA_TSTRING) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, env);
        } else {
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, env);
    lua_setfield(L, env, "_G");
    lua_newtable(L);
    lua_pushcfunction(L, undefined_global);
    lua_setfield(L, -2, "__index");
    lua_setmetatable(L, env);
    lua_pushvalue(L, env);
    sb->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    return 0;
}

vigil_status sb_open(sandbox *sb, const char *file, const vigil_rules_opts *o) {
    memset(sb, 0, sizeof *sb);
    sb->cap = o && o->mem_cap ? o->mem_cap : DEFAULT_MEM_CAP;
    sb->budget = o && o->instr_budget ? o->instr_budget : DEFAULT_BUDGET;
    sb->wall_ms = o && o->wall_ms > 0 ? o->wall_ms : DEFAULT_WALL_MS;
    sb->file = file;
    sb->env_ref = LUA_NOREF;
    snprintf(sb->chunkname, sizeof sb->chunkname, "@%s", file);
    sb->L = lua_newstate(sb_alloc, sb);
    return sb->L ? VIGIL_OK : VIGIL_ENOMEM;
}

static void set_file(sandbox *sb, vigil_error *err) {
    vigil_error_clear(err);
    if (err) snprintf(err->file, sizeof err->file, "%s", sb->file);
}

vigil_status sb_make_env(sandbox *sb, struct loader *ld, vigil_error *err) {
    lua_State *L = sb->L;
    lua_settop(L, 0);
    lua_pushcfunction(L, setup);
    lua_pushlightuserdata(L, ld);
    int st = lua_pcall(L, 1, 0, 0);
    if (st == LUA_OK) return VIGIL_OK;
    set_file(sb, err);
    if (st == LUA_ERRMEM)
        vigil_error_set(err, VIGIL_ECOMPILE, "memory cap of %zu bytes is too small for the DSL prelude",
                        sb->cap);
    else
        vigil_error_set(err, VIGIL_ECOMPILE, "internal error in the DSL prelude: %s",
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    lua_settop(L, 0);
    return VIGIL_ECOMPILE;
}

static int msgh(lua_State *L) {
    sb_of(L)->err_line = sb_user_line(L, 1, NULL);
    return 1;
}

/* "<file or ...suffix>:<line>: rest" → line and rest, when the prefix names
 * this file (Lua shortens long names to "..." + their tail). */
static int split_pos(const char *file, const char *msg, int *line, const char **rest) {
    for (const char *p = msg; *p && *p != '\n'; p++) {
        if (*p != ':' || !isdigit((unsigned char)p[1])) continue;
        const char *q = p + 1;
        long n = 0;
        while (isdigit((unsigned char)*q) && n < 100000000) n = n * 10 + (*q++ - '0');
        if (*q != ':') continue;
        size_t plen = (size_t)(p - msg), flen = strlen(file);
        int ok = (plen == flen && memcmp(msg, file, flen) == 0);
        if (!ok && plen > 3 && memcmp(msg, "...", 3) == 0 && plen - 3 <= flen)
            ok = memcmp(msg + 3, file + flen - (plen - 3), plen - 3) == 0;
        if (!ok) continue;
        *line = (int)n;
        q++;
        if (*q == ' ') q++;
        *rest = q;
        return 1;
    }
    return 0;
}

/* Turn the error on top of the stack (status st) into err. */
static void lua_err(sandbox *sb, int st, vigil_error *err) {
    lua_State *L = sb->L;
    set_file(sb, err);
    if (!err) return;
    if (sb->killed) {
        err->line = sb->kill_line;
        snprintf(err->msg, sizeof err->msg, "%s", sb->kill_msg);
        return;
    }
    if (st == LUA_ERRMEM) {
        mem_kill(sb, L);
        err->line = sb->kill_line;
        snprintf(err->msg, sizeof err->msg, "%s", sb->kill_msg);
        return;
    }
    if (lua_type(L, -1) != LUA_TSTRING) {
        err->line = sb->err_line;
        snprintf(err->msg, sizeof err->msg, "error raised with a %s value, not a message",
                 luaL_typename(L, -1));
        return;
    }
    const char *m = lua_tostring(L, -1), *rest = m;
    int line = 0;
    if (split_pos(sb->file, m, &line, &rest))
        err->line = line;
    else
        err->line = sb->err_line;
    snprintf(err->msg, sizeof err->msg, "%s%s", st == LUA_ERRSYNTAX ? "syntax error: " : "", rest);
}

vigil_status sb_run(sandbox *sb, const char *src, size_t len, vigil_error *err) {
    lua_State *L = sb->L;
    lua_settop(L, 0);
    if (len >= 4 && memcmp(src, LUA_SIGNATURE, 4) == 0) {
        set_file(sb, err);
        return vigil_error_set(err, VIGIL_ECOMPILE,
                               "binary (precompiled) Lua chunks are refused: a rule file must be Lua source text");
    }
    lua_pushcfunction(L, msgh);
    int st = luaL_loadbufferx(L, src, len, sb->chunkname, "t");
    if (st != LUA_OK) {
        lua_err(sb, st, err);
        lua_settop(L, 0);
        return VIGIL_ECOMPILE;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->env_ref);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);   /* a chunk's first upvalue is _ENV */
    sb->instr = 0;
    sb->deadline_ns = now_ns() + sb->wall_ms * 1000000;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    st = lua_pcall(L, 0, 0, 1);
    lua_sethook(L, NULL, 0, 0);
    if (st != LUA_OK) {
        lua_err(sb, st, err);
        lua_settop(L, 0);
        return VIGIL_ECOMPILE;
    }
    lua_settop(L, 0);
    return VIGIL_OK;
}

vigil_status sb_call(sandbox *sb, int nargs, int nres, uint64_t budget, int64_t wall_ms, vigil_error *err) {
    lua_State *L = sb->L;
    int base = lua_gettop(L) - nargs;        /* the function's index */
    lua_pushcfunction(L, msgh);
    lua_insert(L, base);
    sb->killed = 0;
    sb->mem_hit = 0;
    sb->in_call = 1;
    sb->instr = 0;
    sb->budget = budget;
    sb->wall_ms = wall_ms;
    sb->deadline_ns = now_ns() + wall_ms * 1000000;
    lua_sethook(L, hook, LUA_MASKCOUNT, HOOK_EVERY);
    int st = lua_pcall(L, nargs, nres, base);
    lua_sethook(L, NULL, 0, 0);
    if (st != LUA_OK) {
        lua_err(sb, st, err);
        sb->killed = 0;
        lua_settop(L, base - 1);
        return VIGIL_ECOMPILE;
    }
    lua_remove(L, base);                     /* the handler; the results stay */
    return VIGIL_OK;
}

void sb_close(sandbox *sb) {
    if (sb->L) {
        lua_sethook(sb->L, NULL, 0, 0);
        lua_close(sb->L);
    }
    sb->L = NULL;
}

/* sandbox.c — the one Lua sandbox of vigil (vigil/sandbox.h, DESIGN.md §4):
 * the state that rule files and the server's config file run in.
 *
 * Rule files come from analysts and, through PUT /v1/rules/{name}, over the
 * network; the config file from the operator. Each runs in its own lua_State
 * that cannot reach the process: the environment is built by allow-list
 * (base functions without load/loadfile/dofile/require/collectgarbage/print,
 * read-only views of the string, table, math and utf8 libraries without
 * string.dump, and per caller guarded pcall/xpcall/setmetatable or
 * os.getenv); there is no io, debug, package or coroutine; chunks are loaded
 * as text only (a precompiled chunk could crash the VM). Three limits stop
 * runaway code: a memory cap enforced by the state's allocator (the one
 * allocator hook, as in Lua's own lauxlib), an instruction budget counted by
 * a count hook, and a wall-clock deadline checked in the same hook and
 * before every call, because the count does not move inside a C function
 * (a loop of heavy C calls would pass the deadline by far). string.rep gets an explicit
 * size check so that string.rep("x", 1e9) fails with a clear message rather
 * than only at the allocator, and the pattern functions (find, match,
 * gmatch, gsub), where allowed, get bounds on pattern and subject, since a
 * backtracking match runs inside C too. Budget, wall-clock and memory errors
 * are fatal: the guarded pcall/xpcall rethrow them, so the chunk cannot catch
 * them and loop on. Reading an undefined global is an error (a metatable on
 * _ENV), so typos fail at load time.
 *
 * The libraries the chunk sees are empty proxies whose __index is the real
 * table and whose __newindex raises, and the string metatable has a
 * __metatable field (a read-only view), so getmetatable("").__index = f is
 * refused: the chunk cannot change how the trusted code in the same state
 * (the DSL prelude, which keeps the real tables) sees strings and libraries.
 * Redis protects the metatables of basic types the same way since
 * CVE-2025-46818. This is the recipe of Redis's script_lua.c. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <lauxlib.h>
#include <lualib.h>
#include "vigil/sandbox.h"

#define HOOK_EVERY 1000                       /* VM instructions between hook calls */
#define DEFAULT_MEM_CAP ((size_t)64 << 20)
#define DEFAULT_BUDGET 10000000ULL
#define DEFAULT_WALL_MS 2000

enum { ALIVE, KILL_BUDGET, KILL_WALL, KILL_MEMORY };

struct vigil_sandbox {
    lua_State *L;
    size_t used, cap;            /* bytes held by the state (and charged) / the memory cap */
    uint64_t instr, budget;      /* VM instructions counted by the hook / the budget of this run or call */
    uint64_t file_budget;        /* the budget of vigil_sandbox_run */
    int64_t wall_ms, file_wall_ms;
    int64_t deadline_ns;         /* CLOCK_MONOTONIC */
    int killed;                  /* KILL_*: fatal, pcall cannot catch it */
    char kill_msg[512];
    int kill_line;               /* chunk line when killed */
    int last_line;               /* last chunk line seen by the hook (for memory errors) */
    int err_line;                /* set by the message handler: innermost chunk frame */
    int in_call;                 /* running vigil_sandbox_call, not the chunk */
    unsigned flags;
    const char *what;
    char name[256];
    char chunkname[260];         /* "@" + name: how frames of the chunk are recognised */
    char absent_msg[200];
    char limit_hint[200];
    const char *src;             /* the chunk being run (for hints), else NULL */
    size_t len;
    void (*undefined_hint)(const char *, const char *, size_t, char *, size_t, void *);
    void (*extend)(lua_State *, int, void *);
    void *ud;
    int env_ref;                 /* registry ref of the chunk's _ENV */
};

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

vigil_sandbox *vigil_sandbox_of(lua_State *L) {
    void *ud = NULL;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f ? ud : NULL;
}

lua_State *vigil_sandbox_state(vigil_sandbox *sb) { return sb->L; }
const char *vigil_sandbox_name(const vigil_sandbox *sb) { return sb->name; }
size_t vigil_sandbox_mem_cap(const vigil_sandbox *sb) { return sb->cap; }

/* The allocator: plain realloc/free with a byte count against the cap.
 * Shrinking never fails (Lua relies on that). */
static void *sb_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    vigil_sandbox *sb = ud;
    size_t old = ptr ? osize : 0;            /* with ptr == NULL osize is a type tag */
    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (nsize > old && nsize - old > sb->cap - sb->used) return NULL;
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

vigil_status vigil_sandbox_charge(vigil_sandbox *sb, size_t bytes) {
    if (sb->cap - sb->used < bytes) return VIGIL_ETOOBIG;
    sb->used += bytes;
    return VIGIL_OK;
}

int vigil_sandbox_line(lua_State *L, int from, char *short_src) {
    vigil_sandbox *sb = vigil_sandbox_of(L);
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

static int raise_msg(lua_State *L, const char *msg) {
    char src[LUA_IDSIZE];
    int line = vigil_sandbox_line(L, 0, src);
    if (line > 0)
        lua_pushfstring(L, "%s:%d: %s", src, line, msg);
    else
        lua_pushstring(L, msg);
    return lua_error(L);
}

int vigil_sandbox_raise(lua_State *L, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return raise_msg(L, msg);
}

/* "16 MiB" when the cap is whole MiB, else "N bytes". */
static const char *cap_text(const vigil_sandbox *sb, char *buf, size_t n) {
    if (sb->cap >= ((size_t)1 << 20) && sb->cap % ((size_t)1 << 20) == 0)
        snprintf(buf, n, "%zu MiB", sb->cap >> 20);
    else
        snprintf(buf, n, "%zu bytes", sb->cap);
    return buf;
}

/* Mark the run killed with a message (and the hint); the error is raised by
 * the caller. Once killed, every later hook call raises again, so nothing (a
 * finalizer, an xpcall handler) gets to run for long. */
static void set_kill(vigil_sandbox *sb, int kind, int line, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set_kill(vigil_sandbox *sb, int kind, int line, const char *fmt, ...) {
    if (sb->killed) return;
    sb->killed = kind;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(sb->kill_msg, sizeof sb->kill_msg, fmt, ap);
    va_end(ap);
    if (sb->limit_hint[0] && n >= 0 && (size_t)n < sizeof sb->kill_msg)
        snprintf(sb->kill_msg + n, sizeof sb->kill_msg - (size_t)n, "; %s", sb->limit_hint);
    sb->kill_line = line;
}

static void mem_kill(vigil_sandbox *sb, lua_State *L) {
    char cap[40];
    set_kill(sb, KILL_MEMORY, sb->last_line > 0 ? sb->last_line : vigil_sandbox_line(L, 0, NULL),
             "memory cap exceeded: the %s needs more than %s of memory", sb->in_call ? "function" : "file",
             cap_text(sb, cap, sizeof cap));
}

int vigil_sandbox_kill_memory(lua_State *L, int line, const char *msg) {
    vigil_sandbox *sb = vigil_sandbox_of(L);
    if (!sb->killed) {
        sb->killed = KILL_MEMORY;
        snprintf(sb->kill_msg, sizeof sb->kill_msg, "%s", msg);
        sb->kill_line = line;
    }
    lua_pushstring(L, sb->kill_msg);
    return lua_error(L);
}

/* Budget and wall clock. */
static void hook(lua_State *L, lua_Debug *ar) {
    vigil_sandbox *sb = vigil_sandbox_of(L);
    if (ar->event != LUA_HOOKCOUNT) {
        /* A call (C functions too): the clock before each one. A C function runs
         * out of the count's reach, and a loop of heavy ones (table.sort of
         * 300,000 numbers, a plain find over 1 MB) passes 1000 instructions only
         * every ~200 calls: checked per count alone, a 2 s wall clock became 30 s.
         * Checked per call, the overshoot is at most one C call. */
        if (!sb->killed && now_ns() > sb->deadline_ns)
            set_kill(sb, KILL_WALL, sb->last_line,
                     "wall-clock limit exceeded: the %s ran for more than %lld ms (an endless loop?)",
                     sb->in_call ? "function" : "file", (long long)sb->wall_ms);
        if (sb->killed) raise_msg(L, sb->kill_msg);
        return;
    }
    sb->instr += HOOK_EVERY;
    int line = vigil_sandbox_line(L, 0, NULL);
    if (line > 0) sb->last_line = line;
    if (!sb->killed) {
        if (sb->instr > sb->budget)
            set_kill(sb, KILL_BUDGET, sb->last_line,
                     "instruction budget exceeded: more than %llu Lua instructions (an endless loop?)",
                     (unsigned long long)sb->budget);
        else if (now_ns() > sb->deadline_ns)
            set_kill(sb, KILL_WALL, sb->last_line,
                     "wall-clock limit exceeded: the %s ran for more than %lld ms (an endless loop?)",
                     sb->in_call ? "function" : "file", (long long)sb->wall_ms);
    }
    if (sb->killed) raise_msg(L, sb->kill_msg);
}

/* pcall that cannot swallow budget, wall-clock or memory errors. */
static int g_pcall(lua_State *L) {
    luaL_checkany(L, 1);
    int st = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
    vigil_sandbox *sb = vigil_sandbox_of(L);
    if (st == LUA_ERRMEM) mem_kill(sb, L);
    if (st != LUA_OK && sb->killed) return lua_error(L);
    luaL_checkstack(L, 1, NULL);
    lua_pushboolean(L, st == LUA_OK);
    lua_insert(L, 1);
    return lua_gettop(L);
}

/* The message handler runs where the error was raised: for a budget or
 * wall-clock kill that is inside the count hook, where Lua disables hooks,
 * so a user handler would run unbounded. Skip it once the run is killed. */
static int xpcall_handler(lua_State *L) {
    if (vigil_sandbox_of(L)->killed) return 1;
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
    vigil_sandbox *sb = vigil_sandbox_of(L);
    if (st == LUA_ERRMEM) mem_kill(sb, L);
    if (st != LUA_OK && sb->killed) return lua_error(L);
    lua_pushboolean(L, st == LUA_OK);
    lua_rotate(L, 3, 1);
    return lua_gettop(L) - 2;
}

/* setmetatable without __gc: a finalizer would run user code outside the
 * run (at lua_close), where the limits no longer mean anything. */
static int g_setmetatable(lua_State *L) {
    int t = lua_type(L, 2);
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
    if (t == LUA_TTABLE) {
        lua_pushliteral(L, "__gc");
        int has = lua_rawget(L, 2) != LUA_TNIL;
        lua_pop(L, 1);
        if (has) return vigil_sandbox_raise(L, "__gc metamethods are not allowed in a %s", vigil_sandbox_of(L)->what);
    }
    if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
        return vigil_sandbox_raise(L, "cannot change a protected metatable");
    lua_settop(L, 2);
    lua_setmetatable(L, 1);
    return 1;
}

/* string.rep with the result size checked against what is left of the cap:
 * a memory cap error like the allocator's, fatal. */
static int g_rep(lua_State *L) {
    size_t l, lsep;
    luaL_checklstring(L, 1, &l);
    lua_Integer n = luaL_checkinteger(L, 2);
    luaL_optlstring(L, 3, "", &lsep);
    if (n > 0) {
        vigil_sandbox *sb = vigil_sandbox_of(L);
        double total = (double)l * (double)n + (double)lsep * (double)(n - 1);
        if (total > (double)(sb->cap - sb->used)) {
            char cap[40];
            set_kill(sb, KILL_MEMORY, vigil_sandbox_line(L, 0, NULL),
                     "memory cap exceeded: string.rep would make a string of %.0f bytes; the %s needs more "
                     "than %s of memory",
                     total, sb->in_call ? "function" : "file", cap_text(sb, cap, sizeof cap));
            return raise_msg(L, sb->kill_msg);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, 1);
    return 1;
}

/* string.find/match/gmatch/gsub: Lua's matcher backtracks inside C, where
 * neither the hook nor the wall clock can stop it (".-.-.-.-b" is O(n^5)).
 * In the sandbox a pattern gets at most one repetition (*, +, -, ? or %b)
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
    const char *what = vigil_sandbox_of(L)->what;
    luaL_checklstring(L, 1, &ls);
    const char *p = luaL_checklstring(L, 2, &lp);
    int magic;
    int reps = pat_repetitions(p, lp, &magic);
    int plain = strcmp(name, "find") == 0 && lua_toboolean(L, 4);
    if (plain || !magic) {
        if ((double)ls * (double)(lp ? lp : 1) > PLAIN_MAX_WORK)
            return vigil_sandbox_raise(L, "string.%s: subject and pattern too long for a %s", name, what);
    } else {
        if (ls > PAT_MAX_SUBJECT)
            return vigil_sandbox_raise(L, "string.%s: Lua patterns in a %s run on at most %d bytes", name, what,
                                       PAT_MAX_SUBJECT);
        if (reps > 1)
            return vigil_sandbox_raise(L, "string.%s: a pattern in a %s has at most one repetition "
                                          "(*, +, -, ? or %%b); use plain find or matches() on event fields",
                                       name, what);
    }
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

/* __index of the string library table: only string.dump is worth a message */
static int string_index(lua_State *L) {
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "dump") == 0)
        return vigil_sandbox_raise(L, "string.dump is not available in the rule sandbox");
    return 0;
}

static int l_getenv(lua_State *L) {
    lua_pushstring(L, getenv(luaL_checkstring(L, 1)));
    return 1;
}

static int os_missing(lua_State *L) {
    const char *k = lua_tostring(L, 2);
    return vigil_sandbox_raise(L, "os.%s is not available in a %s (only os.getenv is)", k ? k : "?",
                               vigil_sandbox_of(L)->what);
}

/* ---- read-only views ------------------------------------------------------ */

/* __newindex of a view; upvalue 1 is how the table is written ("string."). */
static int ro_newindex(lua_State *L) {
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : luaL_typename(L, 2);
    return vigil_sandbox_raise(L, "cannot set %s%s: it is read-only in a %s", lua_tostring(L, lua_upvalueindex(1)),
                               k, vigil_sandbox_of(L)->what);
}

/* pairs(view) walks the real table without handing it out. */
static int ro_next(lua_State *L) {
    lua_settop(L, 2);
    if (lua_next(L, lua_upvalueindex(1))) return 2;
    lua_pushnil(L);
    return 1;
}

static int ro_pairs(lua_State *L) {
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_pushnil(L);
    return 3;
}

/* Replace the table on top of the stack by an empty proxy that reads
 * through to it and refuses writes; `shown` names it in errors. */
static void push_view(lua_State *L, const char *shown) {
    int real = lua_gettop(L);
    lua_newtable(L);                           /* the view */
    lua_createtable(L, 0, 4);                  /* its metatable */
    lua_pushvalue(L, real);
    lua_setfield(L, -2, "__index");
    lua_pushstring(L, shown);
    lua_pushcclosure(L, ro_newindex, 1);
    lua_setfield(L, -2, "__newindex");
    lua_pushvalue(L, real);
    lua_pushcclosure(L, ro_next, 1);
    lua_pushcclosure(L, ro_pairs, 1);
    lua_setfield(L, -2, "__pairs");
    lua_pushboolean(L, 0);
    lua_setfield(L, -2, "__metatable");        /* getmetatable(view) is false: the real table stays hidden */
    lua_setmetatable(L, -2);
    lua_replace(L, real);
}

/* ---- the environment ------------------------------------------------------ */

static const char *const removed[] = {
    "io", "os", "debug", "package", "require", "load", "loadfile", "dofile", "loadstring",
    "collectgarbage", "coroutine", "print", "warn", "module", "setfenv", "getfenv", "pcall",
    "xpcall", "setmetatable", NULL};

/* The text of line `line` of the chunk being run, or NULL. */
static const char *src_line(const vigil_sandbox *sb, int line, size_t *len) {
    if (!sb->src || line < 1) return NULL;
    const char *p = sb->src, *end = sb->src + sb->len;
    for (int l = 1; l < line; l++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) return NULL;
        p = nl + 1;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

/* __index of _ENV: reading an undefined global is an error. */
static int undefined_global(lua_State *L) {
    vigil_sandbox *sb = vigil_sandbox_of(L);
    if (lua_type(L, 2) != LUA_TSTRING)
        return vigil_sandbox_raise(L, "undefined global (a %s key)", luaL_typename(L, 2));
    const char *k = lua_tostring(L, 2);
    for (int i = 0; removed[i]; i++) {
        if (strcmp(k, removed[i]) != 0) continue;
        char msg[400];
        const char *at = strstr(sb->absent_msg, "%s");
        if (at)
            snprintf(msg, sizeof msg, "%.*s%s%s", (int)(at - sb->absent_msg), sb->absent_msg, k, at + 2);
        else
            snprintf(msg, sizeof msg, "%s", sb->absent_msg);
        return raise_msg(L, msg);
    }
    char hint[200] = "";
    size_t len = 0;
    const char *text = sb->undefined_hint ? src_line(sb, vigil_sandbox_line(L, 0, NULL), &len) : NULL;
    if (text) sb->undefined_hint(k, text, len, hint, sizeof hint, sb->ud);
    if (hint[0]) return vigil_sandbox_raise(L, "undefined global '%s' — %s", k, hint);
    return vigil_sandbox_raise(L, "undefined global '%s'", k);
}

static const char *const base_ok[] = {
    "assert", "error", "getmetatable", "ipairs", "next", "pairs", "rawequal", "rawget",
    "rawlen", "rawset", "select", "tonumber", "tostring", "type", "_VERSION", NULL};

/* Runs protected: open the allowed libraries, patch them, build and seal _ENV. */
static int setup(lua_State *L) {
    vigil_sandbox *sb = vigil_sandbox_of(L);
    static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},        {LUA_STRLIBNAME, luaopen_string},
                                    {LUA_TABLIBNAME, luaopen_table},  {LUA_MATHLIBNAME, luaopen_math},
                                    {LUA_UTF8LIBNAME, luaopen_utf8},  {NULL, NULL}};
    for (const luaL_Reg *l = libs; l->name; l++) {
        luaL_requiref(L, l->name, l->func, 1);
        lua_pop(L, 1);
    }
    /* the string library is the string metatable's __index: patch it in place */
    lua_getglobal(L, LUA_STRLIBNAME);
    lua_pushnil(L);
    lua_setfield(L, -2, "dump");
    lua_getfield(L, -1, "rep");
    lua_pushcclosure(L, g_rep, 1);
    lua_setfield(L, -2, "rep");
    static const char *const pats[] = {"find", "match", "gmatch", "gsub", NULL};
    for (int i = 0; pats[i]; i++) {
        if (sb->flags & VIGIL_SANDBOX_PATTERNS) {
            lua_getfield(L, -1, pats[i]);
            lua_pushstring(L, pats[i]);
            lua_pushcclosure(L, g_pattern, 2);
        } else {
            lua_pushnil(L);
        }
        lua_setfield(L, -2, pats[i]);
    }
    if (sb->flags & VIGIL_SANDBOX_DUMP_ERROR) {  /* string.dump → a clear error */
        lua_newtable(L);
        lua_pushcfunction(L, string_index);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
    }
    lua_pop(L, 1);

    lua_newtable(L);
    int env = lua_gettop(L);
    for (int i = 0; base_ok[i]; i++) {
        lua_getglobal(L, base_ok[i]);
        lua_setfield(L, env, base_ok[i]);
    }
    static const char *const libnames[] = {LUA_STRLIBNAME, LUA_TABLIBNAME, LUA_MATHLIBNAME,
                                           LUA_UTF8LIBNAME, NULL};
    for (int i = 0; libnames[i]; i++) {
        char shown[32];
        snprintf(shown, sizeof shown, "%s.", libnames[i]);
        lua_getglobal(L, libnames[i]);
        push_view(L, shown);
        lua_setfield(L, env, libnames[i]);
    }
    if (sb->flags & VIGIL_SANDBOX_GETENV) {      /* os = { getenv } */
        lua_newtable(L);
        lua_pushcfunction(L, l_getenv);
        lua_setfield(L, -2, "getenv");
        lua_newtable(L);
        lua_pushcfunction(L, os_missing);
        lua_setfield(L, -2, "__index");
        lua_setmetatable(L, -2);
        push_view(L, "os.");
        lua_setfield(L, env, "os");
    }
    if (sb->flags & VIGIL_SANDBOX_PCALL) {
        lua_pushcfunction(L, g_pcall);
        lua_setfield(L, env, "pcall");
        lua_pushcfunction(L, g_xpcall);
        lua_setfield(L, env, "xpcall");
        lua_pushcfunction(L, g_setmetatable);
        lua_setfield(L, env, "setmetatable");
    }
    /* the string metatable: getmetatable("") gives a read-only view whose
     * __index is the chunk's read-only string library */
    lua_pushliteral(L, "");
    if (lua_getmetatable(L, -1)) {
        lua_createtable(L, 0, 1);
        lua_getfield(L, env, LUA_STRLIBNAME);
        lua_setfield(L, -2, "__index");
        push_view(L, "getmetatable(\"\").");
        lua_setfield(L, -2, "__metatable");
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    if (sb->extend) {
        sb->extend(L, env, sb->ud);
        lua_settop(L, env);
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

static void set_file(const vigil_sandbox *sb, vigil_error *err) {
    vigil_error_clear(err);
    if (err) snprintf(err->file, sizeof err->file, "%s", sb->name);
}

vigil_status vigil_sandbox_create(const vigil_sandbox_opts *o, vigil_sandbox **out, vigil_error *err) {
    *out = NULL;
    vigil_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return vigil_error_set(err, VIGIL_ENOMEM, "out of memory creating the Lua sandbox");
    sb->cap = o->mem_cap ? o->mem_cap : DEFAULT_MEM_CAP;
    sb->budget = sb->file_budget = o->instr_budget ? o->instr_budget : DEFAULT_BUDGET;
    sb->wall_ms = sb->file_wall_ms = o->wall_ms > 0 ? o->wall_ms : DEFAULT_WALL_MS;
    sb->flags = o->flags;
    sb->what = o->what ? o->what : "file";
    snprintf(sb->name, sizeof sb->name, "%s", o->name ? o->name : "?");
    snprintf(sb->chunkname, sizeof sb->chunkname, "@%s", sb->name);
    snprintf(sb->absent_msg, sizeof sb->absent_msg, "%s",
             o->absent_msg ? o->absent_msg : "undefined global '%s' (not available in the sandbox)");
    snprintf(sb->limit_hint, sizeof sb->limit_hint, "%s", o->limit_hint ? o->limit_hint : "");
    sb->extend = o->extend;
    sb->undefined_hint = o->undefined_hint;
    sb->ud = o->ud;
    sb->env_ref = LUA_NOREF;
    sb->L = lua_newstate(sb_alloc, sb);
    if (!sb->L) {
        set_file(sb, err);
        free(sb);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory creating the Lua state");
    }
    lua_State *L = sb->L;
    lua_pushcfunction(L, setup);
    int st = lua_pcall(L, 0, 0, 0);
    if (st == LUA_OK) {
        lua_settop(L, 0);
        *out = sb;
        return VIGIL_OK;
    }
    set_file(sb, err);
    if (st == LUA_ERRMEM)
        vigil_error_set(err, VIGIL_ECOMPILE, "memory cap of %zu bytes is too small for the sandbox and its set-up",
                        sb->cap);
    else
        vigil_error_set(err, VIGIL_ECOMPILE, "internal error in the sandbox's set-up: %s",
                        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
    vigil_sandbox_destroy(sb);
    return VIGIL_ECOMPILE;
}

void vigil_sandbox_destroy(vigil_sandbox *sb) {
    if (!sb) return;
    if (sb->L) {
        lua_sethook(sb->L, NULL, 0, 0);
        lua_close(sb->L);
    }
    free(sb);
}

static int msgh(lua_State *L) {
    vigil_sandbox_of(L)->err_line = vigil_sandbox_line(L, 1, NULL);
    return 1;
}

/* "<file or ...suffix>:<line>: rest" → line and rest, when the prefix names
 * this chunk (Lua shortens long names to "..." + their tail). */
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

/* Turn the error on top of the stack (Lua status st) into err; the status. */
static vigil_status lua_err(vigil_sandbox *sb, int st, vigil_error *err) {
    lua_State *L = sb->L;
    set_file(sb, err);
    if (st == LUA_ERRMEM) mem_kill(sb, L);
    if (sb->killed) {
        if (err) {
            err->line = sb->kill_line;
            snprintf(err->msg, sizeof err->msg, "%s", sb->kill_msg);
        }
        return sb->killed == KILL_MEMORY ? VIGIL_ETOOBIG : VIGIL_ETIMEOUT;
    }
    vigil_status s = st == LUA_ERRSYNTAX ? VIGIL_EPARSE : VIGIL_ECOMPILE;
    if (!err) return s;
    int t = lua_type(L, -1);
    if (t != LUA_TSTRING) {
        err->line = sb->err_line;
        const char *tn = t == LUA_TNIL ? "nil" : luaL_typename(L, -1);
        snprintf(err->msg, sizeof err->msg,
                 "error() was called with %s%s, not a message: give error() a string (a %s value cannot be shown)",
                 t == LUA_TNIL ? "" : "a ", tn, tn);
        return s;
    }
    const char *m = lua_tostring(L, -1), *rest = m;
    int line = 0;
    if (split_pos(sb->name, m, &line, &rest))
        err->line = line;
    else
        err->line = sb->err_line;
    snprintf(err->msg, sizeof err->msg, "%s%s", st == LUA_ERRSYNTAX ? "syntax error: " : "", rest);
    vigil_error_escape(err);   /* error("…\r\n…") must not make a log line of its own */
    return s;
}

/* Run the function at base + 1 (the message handler at base) with nargs
 * arguments under the current budget and deadline. */
static vigil_status guarded(vigil_sandbox *sb, int base, int nargs, int nres, vigil_error *err) {
    lua_State *L = sb->L;
    sb->killed = ALIVE;
    sb->instr = 0;
    sb->deadline_ns = now_ns() + sb->wall_ms * 1000000;
    lua_sethook(L, hook, LUA_MASKCOUNT | LUA_MASKCALL, HOOK_EVERY);
    int st = lua_pcall(L, nargs, nres, base);
    lua_sethook(L, NULL, 0, 0);
    if (st != LUA_OK) {
        vigil_status s = lua_err(sb, st, err);
        sb->killed = ALIVE;
        lua_settop(L, base - 1);
        return s;
    }
    lua_remove(L, base);                     /* the handler; the results stay */
    return VIGIL_OK;
}

vigil_status vigil_sandbox_run(vigil_sandbox *sb, const char *src, size_t len, int nres, vigil_error *err) {
    lua_State *L = sb->L;
    lua_settop(L, 0);
    if (len >= 4 && memcmp(src, LUA_SIGNATURE, 4) == 0) {
        set_file(sb, err);
        return vigil_error_set(err, VIGIL_EPARSE,
                               "binary (precompiled) Lua chunks are refused: the file is a precompiled Lua chunk; "
                               "a %s must be Lua source text", sb->what);
    }
    lua_pushcfunction(L, msgh);
    int st = luaL_loadbufferx(L, src, len, sb->chunkname, "t");
    if (st != LUA_OK) {
        vigil_status s = lua_err(sb, st, err);
        /* the parser's recursion limit (LUAI_MAXCCALLS) comes without a
         * position and says nothing of the cause: say what to change */
        if (err && strcmp(err->msg, "C stack overflow") == 0) {
            s = VIGIL_EPARSE;
            snprintf(err->msg, sizeof err->msg,
                     "syntax error: the code nests too deeply (C stack overflow while parsing): nest "
                     "parentheses, table constructors, blocks or calls less deeply");
        }
        sb->killed = ALIVE;
        lua_settop(L, 0);
        return s;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, sb->env_ref);
    if (!lua_setupvalue(L, -2, 1)) lua_pop(L, 1);   /* a chunk's first upvalue is _ENV */
    sb->in_call = 0;
    sb->budget = sb->file_budget;
    sb->wall_ms = sb->file_wall_ms;
    sb->src = src;
    sb->len = len;
    vigil_status s = guarded(sb, 1, 0, nres, err);
    sb->src = NULL;
    sb->len = 0;
    return s;
}

vigil_status vigil_sandbox_call(vigil_sandbox *sb, int nargs, int nres, uint64_t budget, int64_t wall_ms,
                                vigil_error *err) {
    lua_State *L = sb->L;
    int base = lua_gettop(L) - nargs;        /* the function's index */
    lua_pushcfunction(L, msgh);
    lua_insert(L, base);
    sb->in_call = 1;
    sb->budget = budget ? budget : sb->file_budget;
    sb->wall_ms = wall_ms > 0 ? wall_ms : sb->file_wall_ms;
    return guarded(sb, base, nargs, nres, err);
}

/* sandbox.h — a sandboxed Lua 5.4 state for text vigil did not write
 * (DESIGN.md §4): rule files (lua/rules.c) and the server's config file
 * (server/config_file.c). This is the one place in vigil that creates a Lua
 * state and sets its count hook, so a fix to the sandbox is made once.
 *
 * The recipe is Redis's script_lua.c: the environment is built by allow-list
 * (base functions without load/loadfile/dofile/require/collectgarbage/print,
 * and read-only views of the string, table, math and utf8 libraries without
 * string.dump); there is no io, debug, package or coroutine; chunks are
 * loaded as text only. Three limits stop a runaway chunk: a memory cap in the
 * state's allocator, an instruction budget counted by a count hook and a
 * wall-clock deadline checked in the same hook and before every function
 * call (C functions too). The metatable of strings
 * (the only basic type with one) cannot be read or changed: getmetatable("")
 * returns a read-only view, as Redis does since CVE-2025-46818, so code run in
 * the sandbox cannot change how the trusted code in the same state (the DSL
 * prelude) sees strings. Reading an undefined global is an error.
 *
 * Errors carry the chunk's name as file and the line in that chunk; the
 * messages say which limit was hit. Every function here is for one thread:
 * a sandbox and its state are never shared. */
#ifndef VIGIL_SANDBOX_H
#define VIGIL_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "vigil/status.h"

typedef struct vigil_sandbox vigil_sandbox;

/* What the environment offers besides the allow-listed base functions and the
 * read-only string, table, math and utf8 libraries. */
enum {
    VIGIL_SANDBOX_PCALL = 1u << 0,      /* pcall and xpcall that cannot catch a limit error, and
                                           setmetatable that refuses __gc; without: absent */
    VIGIL_SANDBOX_PATTERNS = 1u << 1,   /* string.find/match/gmatch/gsub with bounds on pattern and
                                           subject (a backtracking match runs in C, out of the hook's
                                           reach); without: absent (nil) */
    VIGIL_SANDBOX_DUMP_ERROR = 1u << 2, /* reading string.dump raises a clear error; without: nil */
    VIGIL_SANDBOX_GETENV = 1u << 3      /* os = { getenv }, any other os.NAME raises */
};

typedef struct vigil_sandbox_opts {
    const char *name;          /* the chunk's name, used as the file of errors ("rules/a.lua"); copied */
    const char *what;          /* what runs, for messages ("rule file", "config file"); NULL: "file";
                                  borrowed for the sandbox's life (a literal) */
    size_t mem_cap;            /* bytes the state may hold; 0: 64 MiB */
    uint64_t instr_budget;     /* Lua VM instructions per vigil_sandbox_run; 0: 10,000,000 */
    int64_t wall_ms;           /* wall clock per vigil_sandbox_run, ms; 0: 2000 */
    unsigned flags;            /* VIGIL_SANDBOX_* */
    const char *absent_msg;    /* the error for reading a global that the sandbox removed (io, load,
                                  pcall without VIGIL_SANDBOX_PCALL, …); the first "%s" is replaced by
                                  the name; NULL: "undefined global '%s' (not available in the sandbox)";
                                  copied */
    const char *limit_hint;    /* appended as "; <hint>" to the budget, wall-clock and memory messages;
                                  NULL: nothing; copied */
    /* Called protected, with the environment table at stack index env, before the
     * environment is sealed: adds names (the DSL). May raise; the error fails
     * vigil_sandbox_create. NULL: nothing added. */
    void (*extend)(lua_State *L, int env, void *ud);
    /* Called when the running chunk reads an undefined global `name` on a line
     * whose text is line[0..len) (no newline): write a hint ("write amount =
     * gt(5)") into buf (n bytes) or leave buf[0] == '\0'. NULL: no hints. */
    void (*undefined_hint)(const char *name, const char *line, size_t len, char *buf, size_t n, void *ud);
    void *ud;                  /* for extend and undefined_hint */
} vigil_sandbox_opts;

/* Create the state, open the allowed libraries, build and seal the
 * environment. On success *out owns the sandbox (vigil_sandbox_destroy). On
 * failure *out is NULL: VIGIL_ENOMEM when the state cannot be created,
 * VIGIL_ECOMPILE when extend failed or the memory cap is too small for the
 * set-up, with err (file = name) saying why. */
vigil_status vigil_sandbox_create(const vigil_sandbox_opts *opts, vigil_sandbox **out, vigil_error *err);

/* Closes the state; accepts NULL. */
void vigil_sandbox_destroy(vigil_sandbox *sb);

/* The sandbox's state: push arguments, read results. Borrowed for the
 * sandbox's life; never set its hook or close it. */
lua_State *vigil_sandbox_state(vigil_sandbox *sb);

/* Load src[0..len) as a text chunk named after opts->name (a precompiled
 * chunk is refused), run it in the environment under the file's budget,
 * wall clock and memory cap. The stack is emptied first; on VIGIL_OK the
 * chunk's results are on it (nres of them, or all with LUA_MULTRET). On
 * failure the stack is empty and err has file, line and message:
 *   VIGIL_EPARSE    a syntax error ("syntax error: …") or a precompiled chunk
 *   VIGIL_ECOMPILE  a run-time error (the chunk's own error message)
 *   VIGIL_ETIMEOUT  the instruction budget or the wall clock was exceeded
 *   VIGIL_ETOOBIG   the memory cap was exceeded
 * The limits are fatal: the sandbox's pcall cannot catch them. */
vigil_status vigil_sandbox_run(vigil_sandbox *sb, const char *src, size_t len, int nres, vigil_error *err);

/* Call the function on the stack below nargs arguments under a fresh budget
 * (0: the file's) and wall clock (ms; 0: the file's), the memory cap still
 * counting. On VIGIL_OK nres results replace the function and arguments; on
 * failure they are popped and err is set, with the statuses of
 * vigil_sandbox_run. */
vigil_status vigil_sandbox_call(vigil_sandbox *sb, int nargs, int nres, uint64_t budget, int64_t wall_ms,
                                vigil_error *err);

/* ---- for C functions that run inside a sandbox (the DSL) ------------------ */

/* The sandbox that owns L (NULL for a state it did not create). */
vigil_sandbox *vigil_sandbox_of(lua_State *L);

/* opts->name, as given. */
const char *vigil_sandbox_name(const vigil_sandbox *sb);

/* The memory cap in bytes. */
size_t vigil_sandbox_mem_cap(const vigil_sandbox *sb);

/* Line of the innermost frame that belongs to the chunk, searching from
 * stack level `from`; 0 when there is none. short_src (LUA_IDSIZE bytes) may
 * be NULL. */
int vigil_sandbox_line(lua_State *L, int from, char *short_src);

/* Raise a Lua error "name:line: msg" positioned at the innermost frame of the
 * chunk (not at trusted Lua code or a C function). Never returns. */
int vigil_sandbox_raise(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Count bytes held outside the Lua heap (compiled rules) against the memory
 * cap: VIGIL_OK, or VIGIL_ETOOBIG when the cap would be passed (nothing counted). */
vigil_status vigil_sandbox_charge(vigil_sandbox *sb, size_t bytes);

/* Stop the chunk as a memory cap error: msg is the message and line the
 * line of errors (run and call report them, pcall cannot catch it). Never
 * returns. */
int vigil_sandbox_kill_memory(lua_State *L, int line, const char *msg);

#endif

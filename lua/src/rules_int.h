/* rules_int.h — private interfaces between the files of lua/ (the rule
 * language): the sandbox (sandbox.c), the DSL prelude (prelude.c), the
 * compiler from rule{} tables to the ruleset builder (compile.c) and the
 * loader that walks files and collects errors (rules.c).
 *
 * Why a sandbox struct rather than globals: each rule file runs in its own
 * lua_State, and everything the allocator, the count hook and the C
 * functions of the DSL need is reachable from that state (the allocator's
 * userdata), so several loads may run at once on different threads. */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "vigil/rules.h"

/* ---- sandbox.c ------------------------------------------------------------ */

typedef struct sandbox {
    lua_State *L;
    size_t used, cap;            /* bytes held by the state / the memory cap */
    uint64_t instr, budget;      /* VM instructions counted by the hook / the budget */
    int64_t wall_ms;
    int64_t deadline_ns;         /* CLOCK_MONOTONIC */
    int killed;                  /* budget or wall clock exceeded: fatal, pcall cannot catch it */
    char kill_msg[512];
    int kill_line;               /* user line when killed */
    int last_line;               /* last user line seen by the hook (for memory errors) */
    int mem_hit;                 /* the allocator refused a request */
    int err_line;                /* set by the message handler: innermost user frame */
    char chunkname[300];         /* "@" + file: how frames of the rule file are recognised */
    const char *file;            /* the file name used in errors (borrowed) */
    int env_ref;                 /* registry ref of the rule file's _ENV */
    int nrules;                  /* rule{} calls so far */
    int in_call;                 /* running a host function (sb_call), not the file */
} sandbox;

/* Create the state with the allocator cap, open the allow-listed libraries.
 * Returns VIGIL_ENOMEM when the state cannot be created. */
vigil_status sb_open(sandbox *sb, const char *file, const vigil_rules_opts *opts);

struct loader;

/* Build the rule file's environment: the allow-listed globals plus the DSL
 * names of the prelude, whose rule() adds to ld's ruleset. On failure
 * err->msg says why (a prelude error is a bug; a tiny mem_cap is not). */
vigil_status sb_make_env(sandbox *sb, struct loader *ld, vigil_error *err);

/* Load SRC as a text chunk named after sb->file, run it under the hook with
 * the environment from sb_make_env. Errors (syntax, runtime, budget, wall
 * clock, memory) are written to err with file and line. */
vigil_status sb_run(sandbox *sb, const char *src, size_t len, vigil_error *err);

void sb_close(sandbox *sb);

/* The sandbox of a state (the allocator's userdata). */
sandbox *sb_of(lua_State *L);

/* Line of the innermost frame that belongs to the rule file, searching from
 * stack level `from`; 0 when there is none. short_src (LUA_IDSIZE bytes) may
 * be NULL. */
int sb_user_line(lua_State *L, int from, char *short_src);

/* Raise a Lua error "file:line: msg" positioned at the innermost frame of the
 * rule file (not at the prelude or a C function). Never returns. */
int sb_raise(lua_State *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- prelude.c -------------------------------------------------------------- */

/* Run the DSL prelude in L (unprotected: call from inside a pcall) and push
 * the table of DSL names (rule, begin, gt, sliding, count, e, …); rule()
 * compiles into ld's ruleset. */
void prelude_push(lua_State *L, struct loader *ld);

/* ---- rules.c: the loader, shared by every file of one load ---------------- */

typedef struct loader loader;

/* Append an error to the load's list (keeps the first maxerrs). */
void ld_add_error(loader *ld, vigil_status s, const vigil_error *e);

/* The ruleset being built. */
vigil_ruleset *ld_ruleset(loader *ld);

/* Where examples go (NULL: the caller does not want them). */
vigil_rule_examples *ld_examples(loader *ld);

/* Make sure list NAME is registered with the ruleset (reading
 * lists_dir/NAME.txt on first use). On failure err->msg says why. */
vigil_status ld_need_list(loader *ld, const char *name, vigil_error *err);

/* Register the Lua function at stack index idx as a host function (a
 * :where(function(e, m) … end) predicate or an alert function): its id,
 * >= 1, or -1 with err->msg set. While a load compiles, ids are numbered and
 * the file's source is kept for the host (host.c); while an engine's host
 * instance replays the file, the function itself is kept for calling. */
int ld_host_fn(loader *ld, lua_State *L, int idx, vigil_error *err);

/* The file is being replayed for a host instance: rule{} compiles but adds
 * nothing; or the replay is over: rule{} is refused (called from a function). */
int ld_replaying(const loader *ld);
int ld_running(const loader *ld);

/* ---- host.c: Lua functions at match time ------------------------------------ */

typedef struct vhost_src {       /* a rule file that defines host functions */
    char *file;
    char *src;
    size_t len;
    int first, n;                /* its host functions: ids first .. first + n - 1 */
} vhost_src;

typedef struct vhost_proto {     /* what every instance is built from: the ruleset's host ud */
    vhost_src *srcs;
    int nsrcs, capsrcs;
    int nfn;                     /* host functions of the whole load */
    char lists_dir[4096];
    size_t mem_cap;
} vhost_proto;

struct vhost_inst;

/* The vigil_host callbacks (open/close/pred/alert/free_ud) over a proto. */
extern const vigil_host vhost_callbacks;

/* The instance's slot for function id: keep the function at idx of sandbox
 * src's state (a registry reference). */
void vhost_keep(struct vhost_inst *in, int id, lua_State *L, int idx);

/* Replay source i of the proto into sb (opened here, kept by the instance):
 * runs the file so that its functions are registered again with the same
 * ids. rules.c; err says why it failed. */
vigil_status ld_replay(const vhost_proto *p, int i, struct vhost_inst *in, sandbox *sb, loader **ldp,
                       vigil_error *err);
void ld_replay_free(loader *ld);

/* The Lua value at idx as JSON (an alert function's result, an example's
 * event): tables with keys 1..n are arrays, with names objects (empty: an
 * object); strings, finite numbers, booleans, nil as null. NULL when it cannot
 * be one, with *why saying what was wrong (or out of memory). host.c */
struct cJSON;
struct cJSON *vlua_to_json(lua_State *L, int idx, int depth, const char **why);

/* Run the function on top of the stack (below it nargs arguments) under the
 * sandbox's limits with a fresh budget: nres results on success; on failure
 * err (file, line, message). sandbox.c */
vigil_status sb_call(sandbox *sb, int nargs, int nres, uint64_t budget, int64_t wall_ms, vigil_error *err);

/* ---- compile.c ------------------------------------------------------------ */

/* The rule() C function of the DSL; upvalue 1 = the loader (light userdata). */
int compile_rule(lua_State *L);

/* duration(s) -> milliseconds or nil: for the prelude's window constructors. */
int compile_duration(lua_State *L);

#endif

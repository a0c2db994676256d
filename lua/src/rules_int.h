/* rules_int.h — private interfaces between the files of lua/ (the rule
 * language): the DSL prelude (prelude.c), the compiler from rule{} tables to
 * the ruleset builder (compile*.c), the loader that walks files and collects
 * errors (rules.c) and the host functions at match time (host.c). Each rule
 * file runs in its own sandbox (vigil/sandbox.h, sandbox.c), and everything
 * the C functions of the DSL need is reachable from the state (the loader as
 * an upvalue, the sandbox as the allocator's userdata), so several loads may
 * run at once on different threads. */
#ifndef VIGIL_RULES_INT_H
#define VIGIL_RULES_INT_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "vigil/rules.h"
#include "vigil/sandbox.h"

/* ---- rules.c: the rule file's sandbox ---------------------------------------- */

struct loader;

/* A sandbox for rule file `file` with the DSL prelude, whose rule() adds to
 * ld's ruleset; the limits of opts (may be NULL). On failure *out is NULL and
 * err says why. */
vigil_status ld_sandbox(struct loader *ld, const char *file, const vigil_rules_opts *opts, vigil_sandbox **out,
                        vigil_error *err);

/* ---- prelude.c -------------------------------------------------------------- */

/* Run the DSL prelude in L (unprotected: call from inside a pcall) and push
 * the table of DSL names (rule, begin, gt, sliding, count, e, …); rule()
 * compiles into ld's ruleset. */
void prelude_push(lua_State *L, struct loader *ld);

/* The hint of docs/rules.md §12 for an undefined global read in a
 * comparison (`:where{ amount > 5 }` → "write amount = gt(5)"); a
 * vigil_sandbox_opts.undefined_hint. */
void prelude_undefined_hint(const char *name, const char *line, size_t len, char *buf, size_t n, void *ud);

/* ---- rules.c: the loader, shared by every file of one load ---------------- */

typedef struct loader loader;

/* Append an error to the load's list (keeps the first maxerrs). */
void ld_add_error(loader *ld, vigil_status s, const vigil_error *e);

/* The ruleset being built. */
vigil_ruleset *ld_ruleset(loader *ld);

/* Count one more rule{} call of the current file; the count so far. */
int ld_count_rule(loader *ld);

/* A compiled rule{} is about to be added: 0 to leave it out (a catalog
 * build that does not pick it), 1 to add it — with the version, mode and
 * lifecycle the pick gives it. Records what vigil_rules_inspect reports. */
int ld_pick(loader *ld, vigil_rule_def *d, int declared_version, int line);

/* The load's options (may be NULL). */
const vigil_rules_opts *ld_opts(loader *ld);

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
 * ids; *sbp is the new sandbox (the instance destroys it). rules.c; err says why it failed. */
vigil_status ld_replay(const vhost_proto *p, int i, struct vhost_inst *in, vigil_sandbox **sbp, loader **ldp,
                       vigil_error *err);
void ld_replay_free(loader *ld);

/* The Lua value at idx as JSON (an alert function's result, an example's
 * event): tables with keys 1..n are arrays, with names objects (empty: an
 * object); strings, finite numbers, booleans, nil as null. NULL when it cannot
 * be one, with *why saying what was wrong (or out of memory). host.c */
struct cJSON;
struct cJSON *vlua_to_json(lua_State *L, int idx, int depth, const char **why);

/* ---- compile.c ------------------------------------------------------------ */

/* The rule() C function of the DSL; upvalue 1 = the loader (light userdata). */
int compile_rule(lua_State *L);

/* duration(s) -> milliseconds or nil: for the prelude's window constructors. */
int compile_duration(lua_State *L);

#endif

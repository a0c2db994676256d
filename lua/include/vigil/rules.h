/* rules.h — the rule language (DSL v1, DESIGN.md §4): Lua rule files in, a
 * finalized vigil_ruleset out.
 *
 * Each rule file is run in its own sandboxed Lua 5.4 state (allow-listed
 * globals, text chunks only, an instruction budget plus a wall-clock check,
 * a memory cap) with the DSL prelude (rule, begin, gt, sliding, count, …)
 * loaded. Every rule{} call is checked strictly and turned into
 * vigil_rule_def/vigil_expr via the ruleset builder (engine/). Errors carry
 * file, line and rule. */
#ifndef VIGIL_RULES_H
#define VIGIL_RULES_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/status.h"
#include "vigil/ruleset.h"

/* One expected alert of an example: the ids of its matched events, in match
 * order (the alert's `events` array). The strings point into the block that
 * holds the example's matches (see vigil_rule_example). */
typedef struct vigil_example_match {
    const char *const *ids;
    int n;                     /* >= 1 */
} vigil_example_match;

/* One entry of a rule's `examples` (run by `vigil test`):
 *   { events = { {...}, ... }, alerts = n,
 *     matches = { {"1", "3"}, {"2", "4"} }, late = { "7" },
 *     max_out_of_orderness = "10s", allowed_lateness = "5s" }
 * `events` is required, and `alerts` or `matches` (both: they must agree).
 * Every pointer below is owned by the example and freed by
 * vigil_rule_examples_free. */
typedef struct vigil_rule_example {
    char rule[64];
    char file[256];
    int line;                  /* of the rule{} call */
    int index;                 /* 1-based within the rule's examples */
    char *events;              /* malloc'd NDJSON, converted from the Lua tables; an
                                  event's own `id` field is its id, else "example:<n>" */
    int alerts;                /* alerts the example's rule must give (with `matches`:
                                  how many it lists) */
    int has_matches;           /* `matches` given: the alerts must be exactly these */
    vigil_example_match *matches; /* nmatches expected alerts in emission order; one
                                  malloc'd block with their id arrays and strings;
                                  NULL when nmatches is 0 */
    int nmatches;
    int has_late;              /* `late` given: exactly these events must be reported
                                  late (vigil_engine_feed returns VIGIL_ELATE) */
    const char *const *late;   /* nlate ids as the example lists them; one malloc'd block (NULL
                                  when nlate is 0) */
    int nlate;
    int64_t max_out_of_orderness_ms; /* engine options for this example, ms; 0: the */
    int64_t allowed_lateness_ms;     /* engine's default (0: process on arrival)    */
} vigil_rule_example;

typedef struct vigil_rule_examples {
    vigil_rule_example *v;
    int n, cap;
} vigil_rule_examples;

/* Frees the examples' texts, matches, late ids and the array; accepts NULL. */
void vigil_rule_examples_free(vigil_rule_examples *ex);

/* A rule's version set from outside its source (`vigil replay
 * --rule-version NAME=N`, a served version). */
typedef struct vigil_rule_version_set {
    const char *name;
    int version;
} vigil_rule_version_set;

typedef struct vigil_rules_opts {
    const char *lists_dir;     /* directory of in_list() files (NAME.txt, one value per
                                  line, '#' comments); NULL: "<rules dir>/lists" if it
                                  exists, else "rules/lists" */
    uint64_t instr_budget;     /* Lua VM instructions per file; 0: 10,000,000 */
    int64_t wall_ms;           /* wall-clock limit per file; 0: 2000 */
    size_t mem_cap;            /* bytes per Lua state; 0: 64 MiB */
    vigil_rule_examples *examples; /* when set, every rule's examples are appended here */
    const vigil_rule_version_set *versions; /* rule NAME gets version N whatever its source says */
    int nversions;
    /* in_list() lists kept elsewhere than in files (the server's lists API):
     * the text of list NAME (lines as in a NAME.txt file), or NULL to read
     * lists_dir/NAME.txt. The text is borrowed for the call. May be NULL. */
    const char *(*list_text)(void *ud, const char *name, size_t *len);
    void *list_ud;
} vigil_rules_opts;

/* Load FILE (one .lua) or every *.lua of DIR (sorted by name, not recursing
 * into lists/) into a new finalized ruleset. On failure *out is NULL and up
 * to maxerrs errors are written to errs (*nerrs = how many), each naming
 * file, line and rule; every file is still checked so that `vigil check`
 * reports all errors at once. opts may be NULL. */
vigil_status vigil_rules_load(const char *path, const vigil_rules_opts *opts,
                              vigil_ruleset **out, vigil_error *errs, int maxerrs, int *nerrs);

/* The same for one source text; `name` is used as the file name in errors
 * (e.g. the rule name of a PUT /v1/rules/{name}). */
vigil_status vigil_rules_load_string(const char *name, const char *src, size_t len,
                                     const vigil_rules_opts *opts, vigil_ruleset **out,
                                     vigil_error *errs, int maxerrs, int *nerrs);

/* The rule files of a directory, in the order vigil_rules_load loads them
 * (for a caller that handles each file by itself, e.g. `vigil rules push`):
 * names sorted (strcmp) within each directory, a subdirectory walked when
 * its name comes (at most 8 levels deep) except lists/ and hidden ones (a
 * leading '.'), regular files named *.lua (symbolic links followed). fn is
 * called with s == VIGIL_OK and msg NULL for each file, or with an error
 * status and a message for a directory that cannot be read (path names
 * it); path and msg live only during the call. */
typedef void (*vigil_rules_walk_fn)(void *ud, const char *path, vigil_status s, const char *msg);
void vigil_rules_walk(const char *dir, vigil_rules_walk_fn fn, void *ud);

/* ---- the server's rule catalog (hot reload) --------------------------------
 * A served rule set is built from many sources: each rule's versions keep
 * their own source text (a file of the rules directory, or a PUT body).
 * vigil_rules_build compiles each source once and adds only the rules it
 * picks, with the version, mode and lifecycle the server decided. */
typedef struct vigil_rule_pick {
    const char *name;
    int version;               /* >= 1: the version it gets, whatever the source says */
    vigil_mode mode;
    int draining;              /* vigil_rule_def.draining */
    int inherits;              /* vigil_rule_def.inherits (0: decide against base) */
} vigil_rule_pick;

typedef struct vigil_rule_source {
    const char *file;          /* its name in errors: a path, or "api:<rule>" */
    const char *src;
    size_t len;
    const vigil_rule_pick *picks;   /* the rules of this source to add; a pick the source does
                                       not define is an error (ENOTFOUND) */
    int npicks;
} vigil_rule_source;

/* One ruleset from n sources; base (may be NULL) is the running ruleset the
 * new one descends from (vigil_ruleset_create_from). Errors as
 * vigil_rules_load's; nothing is returned unless every source compiled. */
vigil_status vigil_rules_build(const vigil_rule_source *srcs, int n, const vigil_ruleset *base,
                               const vigil_rules_opts *opts, vigil_ruleset **out,
                               vigil_error *errs, int maxerrs, int *nerrs);

/* What a source defines, without keeping it: each rule{}'s name, the
 * version it declares (0: none) and its line. */
typedef struct vigil_rule_info {
    char name[VIGIL_MAX_RULE_NAME + 1];
    int version;
    int line;
    vigil_mode mode;           /* the source's `mode` (default active) */
} vigil_rule_info;
/* Compile src alone; on success *n rules (at most max written to out).
 * Compile errors as vigil_rules_load_string's. */
vigil_status vigil_rules_inspect(const char *file, const char *src, size_t len, const vigil_rules_opts *opts,
                                 vigil_rule_info *out, int max, int *n,
                                 vigil_error *errs, int maxerrs, int *nerrs);

/* Read a rule file whole: at most max bytes (0: the loader's limit, 16
 * MiB); *src malloc'd (len bytes + NUL). VIGIL_ENOTFOUND (cannot open),
 * VIGIL_EIO, VIGIL_ETOOBIG, VIGIL_ENOMEM; errno says why for the first two.
 * One reader for the loader, the server's reload and `vigil rules push`. */
vigil_status vigil_rules_read_file(const char *path, size_t max, char **src, size_t *len);

/* The rule files of a directory, as vigil_rules_load walks it (sorted,
 * recursing except into lists/ and hidden entries): *paths is a malloc'd
 * array of n malloc'd paths (free each, then the array). A FILE path gives
 * itself. VIGIL_ENOTFOUND, VIGIL_EIO, VIGIL_ENOMEM. */
vigil_status vigil_rules_files(const char *path, char ***paths, int *n);

#endif

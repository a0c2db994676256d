/* compile_int.h — private between the three files of the rule compiler
 * (rule{} tables → the ruleset builder, DESIGN.md §4): compile.c (rule{}
 * itself: keys, steps, patterns, windows; and the helpers below),
 * compile_expr.c (expressions and where{} conditions) and
 * compile_examples.c (a rule's `examples`, run by `vigil test`).
 *
 * Every function takes the compile context of one rule{} call (cc). Errors
 * go into it (the first one wins) and make later steps no-ops; tables are
 * read raw (no metamethod of the rule file runs), and no malloc'd memory is
 * held across a Lua API call, since any of them may raise (the memory cap). */
#ifndef VIGIL_COMPILE_INT_H
#define VIGIL_COMPILE_INT_H

#include <stddef.h>
#include <lua.h>
#include "rules_int.h"

#define MAX_PATH 255             /* bytes of a field path */

/* What a table built by the prelude is (its metatable's __vigil tag). */
typedef enum { K_NONE, K_PLAIN, K_EXPR, K_COND, K_PATTERN, K_WINDOW, K_SKIP } kind_t;

/* The context of one rule{} call. */
typedef struct cc {
    lua_State *L;
    loader *ld;
    vigil_ruleset *rs;
    vigil_error err;             /* the rule's first error */
    int failed;
    int cap_hit;                 /* the file's memory cap is used up: stop the file */
    vigil_status st;             /* VIGIL_ENOMEM when the builder ran out of memory */
    int nodes, depth;            /* expression nodes built, nesting (compile_expr.c) */
    int declared_version;        /* the rule's own `version`, 0 when it has none */
} cc;

/* ---- compile.c ---------------------------------------------------------------- */

/* Record the rule's first error (printf-style); returns NULL. */
void *cc_fail(cc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The rule already failed (an error or out of memory). */
int cc_bad(const cc *c);

/* Every builder result goes through here: NULL means out of memory; counts
 * the node against the node budget and the file's memory cap. */
vigil_expr *cc_node(cc *c, vigil_expr *x);

/* The kind of the value at idx. */
kind_t cc_kind_of(lua_State *L, int idx);

/* Push t[k] (raw); returns its type. */
int cc_rget(lua_State *L, int t, const char *k);

/* t[k] as a C string without embedded NULs (anchored by t), or NULL. */
const char *cc_rstr(lua_State *L, int t, const char *k);

/* t[k] as a number (dflt when absent), as a boolean. */
double cc_rnum(lua_State *L, int t, const char *k, double dflt);
int cc_rbool(lua_State *L, int t, const char *k);

/* A short description of the value at idx, for messages. */
const char *cc_describe(lua_State *L, int idx, char *buf, size_t n);

/* A field path ("amount", "card.bin") / a rule name ([a-z0-9_]+). */
int cc_valid_path(const char *p);
int cc_has_control(const char *s);     /* a byte below 0x20, or DEL */
int cc_valid_name(const char *s);

/* ---- compile_expr.c ------------------------------------------------------------- */

/* The value or expression object at idx as an expression; NULL with the
 * error in c. */
vigil_expr *cc_expr(cc *c, int idx);

/* A where{} table (all must hold), or an expression object. *out = NULL for
 * an empty table (any event). Returns 0, or -1 with the error in c. */
int cc_where(cc *c, int idx, const char *what, vigil_expr **out);

/* ---- compile_examples.c ----------------------------------------------------------- */

/* examples = { { events = {...}, alerts = n | matches = {...}, ... }, ... } of
 * the rule d, appended to the load's examples (when it collects them). */
void cc_examples(cc *c, int t, const vigil_rule_def *d);

#endif

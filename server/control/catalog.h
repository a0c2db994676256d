/* catalog.h — the served rule catalog: every rule's versions (source, mode,
 * lifecycle state, activation time, the versions whose state it took) and
 * the content hash of every rules-directory file it came from (DESIGN.md §6
 * "Versions"). The control wing changes it, builds the running ruleset from
 * it and keeps it in a catalog store (catalog_store.h) as one JSON record per
 * rule. Not thread-safe: the control wing holds its mutex around it. */
#ifndef VIGIL_CATALOG_H
#define VIGIL_CATALOG_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/ruleset.h"
#include "vigil/rules.h"

#define VCAT_MAX_RULES 2000          /* live rules: more is 422 */
#define VCAT_MAX_VERSIONS 10000      /* versions kept per rule */
#define VCAT_MAX_SOURCE ((size_t)1 << 20)   /* bytes of one rule source */

typedef enum vcat_state {
    VCAT_ACTIVE,       /* the rule's running version, alerts go everywhere */
    VCAT_SHADOW,       /* the running version, alerts flagged, never to webhooks */
    VCAT_DRAINING,     /* replaced by an incompatible version: finishes its partial matches */
    VCAT_RETIRED,      /* replaced and done */
    VCAT_DELETED       /* the rule was deleted */
} vcat_state;
const char *vcat_state_str(vcat_state s);

typedef struct vcat_ver {
    int version;
    vigil_mode mode;
    vcat_state state;
    int inherits;              /* the lowest version whose state it took (its own: none; 0: not built yet) */
    int64_t activated_ms;      /* wall clock, ms */
    int64_t ended_ms;          /* when it stopped starting matches (replaced, deleted); 0: runs */
    int64_t retired_ms;        /* when it stopped for good; 0: not yet */
    char *src;                 /* malloc'd, len bytes + NUL */
    size_t len;
    char hash[65];             /* SHA-256 of the source, hex */
    char by[64];               /* who made it: a token's name, "local", "reload" */
} vcat_ver;

typedef struct vcat_rule {
    char name[VIGIL_MAX_RULE_NAME + 1];
    char file[1024];           /* the rules-directory file it comes from; "" when from the API */
    int deleted;
    int64_t deleted_ms;
    int shadow;                /* a version running in shadow beside the running one (0: none) */
    int64_t shadow_since;      /* wall ms when it started (compare counts from there) */
    vcat_ver *v;               /* ascending by version */
    int nv, capv;
} vcat_rule;

typedef struct vcat_file { char *path; char hash[65]; } vcat_file;

typedef struct vigil_catalog {
    vcat_rule **rules;
    int n, cap;
    vcat_file *files;
    int nfiles, capfiles;
} vigil_catalog;

void vcat_free(vigil_catalog *c);   /* its contents; accepts an empty one */

vcat_rule *vcat_find(vigil_catalog *c, const char *name);
/* A new rule (no version yet); NULL when out of memory. */
vcat_rule *vcat_add_rule(vigil_catalog *c, const char *name);
vcat_ver *vcat_latest(vcat_rule *r);                 /* NULL when it has none */
vcat_ver *vcat_version(vcat_rule *r, int version);   /* NULL when absent */
/* The running version: the latest that runs (active, or shadow by mode),
 * not counting a shadow beside it; NULL when the rule is deleted. */
vcat_ver *vcat_live(vcat_rule *r);
/* The version running in shadow beside the running one, or NULL. */
vcat_ver *vcat_beside(vcat_rule *r);
/* Append version `version` (> the latest) with a copy of src; NULL when out
 * of memory or over VCAT_MAX_VERSIONS. */
vcat_ver *vcat_add_version(vcat_rule *r, int version, vigil_mode mode, const char *src, size_t len,
                           const char *by, int64_t now_ms);
/* Live rules (not deleted). */
int vcat_live_count(const vigil_catalog *c);

/* SHA-256 of data as 64 hex digits. */
void vcat_hash(const void *data, size_t len, char out[65]);

const char *vcat_file_hash(vigil_catalog *c, const char *path);   /* NULL: not recorded */
/* Record path's hash (NULL: forget the file). -1 when out of memory. */
int vcat_set_file_hash(vigil_catalog *c, const char *path, const char *hash);

/* One rule as its stored record (JSON text, malloc'd), and back: replaces
 * rule `name` (or adds it) from json. vcat_rule_from_json: -1 with *why set
 * when the record is not one. */
char *vcat_rule_json(const vcat_rule *r);
int vcat_rule_from_json(vigil_catalog *c, const char *name, const char *json, const char **why);
/* The rule as the API shows it (GET /v1/rules/{name}); sources when
 * with_sources; alerts per version from count(ud, name, version). */
struct cJSON;
struct cJSON *vcat_rule_api(const vcat_rule *r, int with_sources,
                            unsigned long long (*count)(void *ud, const char *name, int version), void *ud);

/* The running ruleset of the catalog: each live rule's running version, and
 * the draining ones, each with its catalog version, mode and inherited
 * versions; over base (the running ruleset, may be NULL). Errors as
 * vigil_rules_build's. */
vigil_status vcat_build(const vigil_catalog *c, const vigil_ruleset *base, const vigil_rules_opts *opts,
                        vigil_ruleset **out, vigil_error *errs, int maxerrs, int *nerrs);

#endif

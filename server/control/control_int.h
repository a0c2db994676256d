/* control_int.h — the control wing's private parts, shared by control.c
 * (HTTP handlers), apply.c (a change: build, drain or inherit, store,
 * swap, audit) and reload.c (the rules directory, SIGHUP, inotify).
 * Nothing outside server/control/ includes it. */
#ifndef VIGIL_CONTROL_INT_H
#define VIGIL_CONTROL_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <cjson/cJSON.h>
#include "control.h"
#include "catalog.h"
#include "catalog_store.h"

#define VCTL_MAX_SNOOZES 10000
#define VCTL_SNOOZE_KEY 256
#define VCTL_SNOOZE_REASON 256
#define VCTL_SNOOZES_RECORD "~snoozes"   /* the snooze table's record in the catalog store */
#define VCTL_DISP_PREFIX "~disp:"        /* a disposition's record: "~disp:<alert id>" (triage.c) */
#define VCTL_MAX_DISPOSITIONS 100000
#define VCTL_NOTE_MAX 2000

typedef struct vctl_disp {         /* an alert's disposition (triage.c) */
    char id[33];                   /* "": an empty slot of the hash */
    char rule[VIGIL_MAX_RULE_NAME + 1];
    unsigned char kind;            /* 0 confirmed, 1 false_positive, 2 benign */
    char by[64];
    int64_t at;                    /* wall ms */
    char *note;
} vctl_disp;

typedef struct vctl_snooze_t {     /* no alert of (rule, key) until `until` (wall ms) */
    char rule[VIGIL_MAX_RULE_NAME + 1];
    char key[VCTL_SNOOZE_KEY];
    char reason[VCTL_SNOOZE_REASON];
    char by[64];
    int64_t until, at;
} vctl_snooze_t;

typedef struct vctl_list {       /* an in_list() list sent to the API (lists.c) */
    char name[129];
    int version;
    char *text;                  /* the latest text */
    size_t len;
    long values;
    char hash[65];
    char by[64];
    int64_t at;
    struct cJSON *history;       /* every version: version, sha256, values, at, by */
} vctl_list;

typedef struct vctl_cmp {        /* a shadow beside the active version: compare.c */
    char name[VIGIL_MAX_RULE_NAME + 1];
    int active_v, shadow_v;
    int64_t since;               /* wall ms */
    uint64_t counts[3];          /* active only, shadow only, both */
    char *samples[3][5];         /* alert JSON texts, the latest few of each */
    int nsamples[3];
    int dirty;                   /* changed since it was last stored */
} vctl_cmp;

struct vigil_control {
    vigil_control_config cfg;
    char lists_dir[4096];
    vigil_rules_opts ropts;
    pthread_mutex_t mu;              /* the catalog, the store, rs: one change at a time */
    vigil_catalog cat;
    vigil_catalog_store *store;
    vigil_ruleset *rs;               /* the running ruleset (built from cat) */
    vigil_router *router;            /* NULL until start: changes are not swapped yet */
    vigil_control_sync_fn sync;      /* before a swap: every accepted event queued (may be NULL) */
    void *sync_ud;
    pthread_t maint_th, watch_th;
    int maint_started, watch_started;
    atomic_int stopping;
    int inotify_fd;
    atomic_ullong changes, reloads, reload_errors, swaps;
    atomic_ullong refused_max_rules; /* rule changes refused over limits.max_rules (PUT, reload) */
    int64_t started_ms;              /* this process's start (a draining version after a restart) */
    char first_refusal[2048];        /* the last reload's first refused file, why */
    /* snoozes (snooze.c): read by the workers for every alert */
    pthread_rwlock_t snooze_lock;
    vctl_snooze_t *snoozes;
    int nsnoozes;
    atomic_ullong snoozed_alerts;
    int new_refused;                 /* its refused files that were never loaded before */
    /* lists sent to the API (lists.c), under mu */
    vctl_list *lists;
    int nlists, caplists;
    /* shadow compares (compare.c), under cmp_mu: the workers add to them */
    pthread_mutex_t cmp_mu;
    vctl_cmp *cmp;
    int ncmp, capcmp;
    atomic_int ncmp_live;            /* ncmp, read without the lock: no compare, no work per batch */
    /* dispositions (triage.c), under triage_lock: the hub reads them for every listed alert */
    pthread_rwlock_t triage_lock;
    vctl_disp *disp;                 /* open addressing by alert id, disp_cap a power of two */
    size_t disp_cap, ndisp;
    struct vctl_rule_disp { char rule[VIGIL_MAX_RULE_NAME + 1]; unsigned long long n[3]; } *rdisp;
    int nrdisp, caprdisp;
    /* cluster mode (cluster.c) */
    char instance[256];              /* "": a single server */
    uint64_t gen;                    /* the catalog generation this instance runs (under mu) */
    uint64_t failed_gen;             /* a generation whose catalog cannot run here (logged once) */
    natsConnection *nc;
    natsSubscription *sub_rules;
    vigil_control_cluster_hooks hooks;
    pthread_mutex_t cl_mu;           /* cl_cv */
    pthread_cond_t cl_cv;
    pthread_t cl_th;
    int cl_started, cl_wake;
    atomic_ullong notice_gen;        /* the newest generation another instance announced */
    atomic_ullong syncs, notices_sent, notices_seen, conflicts;
};

/* cluster.c */
static inline int vctl_clustered(const vigil_control *c) { return c->instance[0] != '\0'; }
/* Holding mu: read the store's generation and, when it is not the one this
 * instance runs, read the catalog and apply it (no store, audit or notice).
 * Errors are logged; 0 when this instance now runs the store's generation. */
int vctl_cluster_catch_up(vigil_control *c);
/* Holding mu, after a committed change: announce it (notice, versions). */
void vctl_cluster_committed(vigil_control *c);
/* "instances" of each rule object in arr (GET /v1/rules); not under mu. */
void vctl_cluster_add_instances(vigil_control *c, cJSON *rules, int is_array);
void vctl_cluster_stop(vigil_control *c);
/* At create: the instance name and the thread's lock (cfg.instance needs redis_url: VIGIL_EINVAL). */
vigil_status vctl_cluster_init(vigil_control *c, vigil_error *err);
/* At create, the catalog read: 1 when the shared one is the truth (not the directory). */
int vctl_cluster_shared(vigil_control *c);
void vctl_cluster_stats(vigil_control *c, vigil_control_stats *o);   /* under mu */
void vctl_cluster_free(vigil_control *c);
/* control.c: one stored record / file hash into the wing (at start and on a catch-up) */
void vctl_load_rule(void *ud, const char *name, const char *json);
void vctl_load_file_hash(void *ud, const char *path, const char *hash);
/* apply.c: build the ruleset of c->cat over the running one and swap it in
 * (a catalog read from the store: nothing stored). Holds mu. */
vigil_status vctl_apply_catalog(vigil_control *c, vigil_error *err);

/* The most rules served at once (limits.max_rules). */
static inline int vctl_max_rules(const vigil_control *c) {
    return c->cfg.max_rules > 0 && c->cfg.max_rules < VCAT_MAX_RULES ? c->cfg.max_rules : VCAT_MAX_RULES;
}

/* A change in progress (under mu): the touched rules as they were, so that
 * a change that cannot be built or stored is undone exactly; the audit
 * entries it adds. */
typedef struct vctl_txn {
    struct vtouch {
        char name[VIGIL_MAX_RULE_NAME + 1];
        char *before;                /* the rule's record before (NULL: it did not exist) */
        int prev_live;               /* its running version before (0: none) */
    } *t;
    int n, cap;
    struct vfile_touch { char *path; char hash[65]; int had; } *f;
    int nf, capf;
    cJSON *audit;                    /* array of entries */
    const char *by;
    const char *snoozes;             /* the new snooze table's record, or NULL: unchanged */
    int rebuild;                     /* build and swap even with no rule touched (a list changed) */
    const char *extra_key, *extra_value;   /* one more record to store (a list's) */
} vctl_txn;

void vctl_txn_init(vctl_txn *x, const char *by);
/* vctl_txn_init and vctl_touch of one rule: a change of that rule begins.
 * -1: out of memory (nothing to undo). */
int vctl_begin(vigil_control *c, vctl_txn *x, const char *by, const char *name);
/* Remember rule `name` before it changes (once per change). -1: out of memory. */
int vctl_touch(vigil_control *c, vctl_txn *x, const char *name);
/* Remember file `path`'s recorded hash before it changes. -1: out of memory. */
int vctl_touch_file(vigil_control *c, vctl_txn *x, const char *path);
void vctl_audit(vctl_txn *x, const char *action, const char *rule, int from_version, int to_version,
                const char *detail);
/* Build, decide draining/inheritance of each touched rule whose running
 * version changed, store (records, file hashes, audit: one commit), swap
 * into the workers. On failure everything is undone and err says why
 * (VIGIL_ECOMPILE/ETOOBIG: the rules cannot run together; the store's
 * errors). Frees the txn either way. */
vigil_status vctl_commit(vigil_control *c, vctl_txn *x, vigil_error *err);
/* Undo and free (a change given up before commit). */
void vctl_abort(vigil_control *c, vctl_txn *x);

/* snooze.c */
enum MHD_Result vctl_snooze(vigil_control *c, struct MHD_Connection *conn, const char *name, vigil_http_req *r);
char *vctl_snoozes_table_json(const vctl_snooze_t *t, int n);
void vctl_snoozes_load(vigil_control *c, const char *json);
/* Until when (rule, key) is snoozed (wall ms; INT64_MIN: not), and why. */
int64_t vctl_snoozed_until(vigil_control *c, const char *rule, const char *key, char *reason, size_t n);

/* compare.c */
void vctl_compare_start(vigil_control *c, const char *name, int active_v, int shadow_v, int64_t since);
void vctl_compare_stop(vigil_control *c, const char *name);   /* holds mu: forgets the stored record */
enum MHD_Result vctl_compare_get(vigil_control *c, struct MHD_Connection *conn, const char *name);
void vctl_compare_flush(vigil_control *c);                    /* holds mu: store what changed */
int vctl_compare_record(vigil_control *c, const char *key, const char *json);   /* 1: a compare's record */
void vctl_compare_free(vigil_control *c);
void vctl_compare_sync(vigil_control *c);   /* cluster mode, after a catalog read: holds mu */

/* lists.c */
enum MHD_Result vctl_lists(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r);
const char *vctl_list_text(void *ud, const char *name, size_t *len);   /* vigil_rules_opts.list_text */
int vctl_list_record(vigil_control *c, const char *key, const char *json);   /* 1: it was a list's record */
void vctl_lists_free(vigil_control *c);

/* triage.c */
enum MHD_Result vctl_triage_put(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r);
char *vctl_triage_lookup(void *ud, const char *alert_id, char kind[16]);   /* the hub's triage hook */
int vctl_triage_record(vigil_control *c, const char *key, const char *json);   /* 1: a disposition's record */
void vctl_triage_counts(vigil_control *c, const char *rule, unsigned long long n[3]);
/* "dispositions" {confirmed, false_positive, benign} and "precision" (null without any) */
void vctl_triage_add_json(vigil_control *c, cJSON *rule_json, const char *rule);
void vctl_triage_free(vigil_control *c);

/* explain.c: GET /v1/keys/{field}/{value} */
enum MHD_Result vctl_get_key(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r);

/* apply.c: once a second, retire draining versions whose partial matches ended. */
void *vctl_maint_main(void *arg);

/* reload.c: reconcile the catalog with the rules directory (under mu). */
int vctl_reload_locked(vigil_control *c, const char *why);
void *vctl_watch_main(void *arg);
int vctl_watch_open(vigil_control *c);   /* inotify on the directory tree; -1: not available */

#endif

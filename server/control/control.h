/* control.h — the control wing: the running rule set and how it changes
 * while the server runs (DESIGN.md §6 "Versions"): the rule catalog and its
 * store, PUT/DELETE/mode/rollback on /v1/rules/{name}, GET /v1/rules and
 * /v1/audit, POST /v1/rules:test (a dry run), and the rules directory
 * reloaded on SIGHUP or, with `watch`, on every change (inotify).
 *
 * Life: vigil_control_create loads the catalog from its store, reconciles
 * it with the rules directory and builds the first ruleset (the router is
 * made from it); vigil_control_start gives it the router, which every
 * change then swaps at the workers' batch boundaries. */
#ifndef VIGIL_CONTROL_H
#define VIGIL_CONTROL_H

#include "vigil/event.h"
#include "server/http/http.h"
#include "server/alerts/sinks.h"
#include "server/alerts/hub.h"
#include "server/route/router.h"

typedef struct vigil_control vigil_control;

typedef struct vigil_control_config {
    const char *rules;                /* the rules directory (or one file) */
    const vigil_decode_opts *decode;  /* borrowed: events of a dry run use the server's fields */
    vigil_sinks *sinks;               /* borrowed: per-rule alert counts (or set_sinks) */
    vigil_hub *hub;                   /* borrowed: the last alert of a key (explain; or set_sinks) */
    /* the catalog store (catalog_store.h): Redis when set, else data_dir, else memory */
    const char *redis_url, *redis_prefix, *data_dir;
    int watch;                        /* reload on every change of the directory (inotify) */
    int max_rules;                    /* rules served at once (limits.max_rules); 0: VCAT_MAX_RULES */
    /* cluster mode (issue 14; cluster.instance, needs redis_url): this
     * server's instance name, or NULL/"": a single server. With a name the
     * shared catalog in Redis is the source of truth once it holds one (the
     * rules directory is not applied at start, only on SIGHUP/--watch, as a
     * change like PUT), every change bumps the catalog's generation, and
     * vigil_control_cluster_start makes changes reach every instance. */
    const char *instance;
} vigil_control_config;

/* Load the catalog, reconcile the directory, build the first ruleset. A
 * directory file that does not compile is logged and counted; its stored
 * rules (if any) run. Errors: the store's (VIGIL_EUNAVAILABLE…), a catalog
 * whose ruleset cannot be built (err says why). */
vigil_status vigil_control_create(const vigil_control_config *cfg, vigil_control **out, vigil_error *err);
/* The sinks whose per-rule counts GET /v1/rules shows (made after the wing). */
void vigil_control_set_sinks(vigil_control *ctl, vigil_sinks *sinks, vigil_hub *hub);
/* The running ruleset (retained: release it). */
vigil_ruleset *vigil_control_ruleset(vigil_control *ctl);
/* Before a swap: wait until every event accepted so far is queued (the
 * ingest wing's vigil_ingest_sync: JetStream events are accepted when they
 * are in the stream, queued when the fetcher takes them). */
typedef vigil_status (*vigil_control_sync_fn)(void *ud, int timeout_ms, vigil_error *err);

/* From now on changes are swapped into the router's workers (after sync,
 * which may be NULL); starts the draining watch (retires a drained version)
 * and the directory watch. */
void vigil_control_start(vigil_control *ctl, vigil_router *router, vigil_control_sync_fn sync, void *sync_ud);
/* Reload the rules directory now (SIGHUP): per file, as DESIGN.md §6 says.
 * Returns the number of files that did not compile (logged). */
int vigil_control_reload(vigil_control *ctl, const char *why);
/* Register the wing's routes with the HTTP edge. */
void vigil_control_register(vigil_control *ctl, vigil_http *h);
/* Stop its threads (before the router stops). */
void vigil_control_stop(vigil_control *ctl);
void vigil_control_destroy(vigil_control *ctl);   /* accepts NULL */

/* 1 when an alert of (rule, key) must not go out: snoozed (POST
 * /v1/rules/{name}/snooze) and not expired. Thread-safe: the workers call it
 * for every alert (ud: the control wing). */
int vigil_control_snoozed(void *ud, const char *rule, const char *key);

/* Every committed batch's alerts, for the shadow compares (the router's
 * alerts hook; called on a worker's thread after the commit). */
struct vigil_alert_record;
void vigil_control_batch_alerts(void *ud, const struct vigil_alert_record *a, size_t n);

/* ---- cluster mode (issue 14; server/control/cluster.c) ----------------------------------
 *
 * Rule changes across instances. After every committed change (PUT/DELETE
 * /v1/rules/…, mode, promote, rollback, snooze, lists, dispositions, a
 * reload, a retirement) this instance publishes on NATS
 * `vigil.control.rules` the notice {"instance":"<name>","generation":N}, N
 * the catalog's generation in Redis after the change. Every instance
 * listens: a notice from another instance with a generation other than the
 * one it runs, or a check of the store every VIGIL_CONTROL_SYNC_MS that
 * finds one, makes it read the whole catalog from the store and apply it
 * the way a change is applied (build over the running ruleset, swap at the
 * workers' batch boundaries), without storing, auditing or announcing it
 * again. A missed notice only delays a change by up to
 * VIGIL_CONTROL_SYNC_MS. A change made at an older generation than the
 * store's is refused (409, VIGIL_ECONFLICT): each handler first catches up
 * with the store, so only two changes racing on two instances meet that.
 *
 * Versions per instance: the control wing tells the cluster which version
 * of each rule this instance runs, and reads the others', through two hooks
 * (the cluster wing's members entries; docs/scaling.md):
 *   publish_versions(ud, json): json = {"<rule>": <running version>, …}
 *     (borrowed for the call), this instance's live rules; called after
 *     every change it applies and every VIGIL_CONTROL_SYNC_MS;
 *   read_versions(ud): every live member's, as a cJSON object the caller
 *     deletes: {"<instance>": {"<rule>": <version>, …}, …} (NULL: unknown).
 * Without hooks no instance's versions are shown.
 * GET /v1/rules and /v1/rules/{name} then add to each rule "instances":
 * {"<instance>": <version> | null (a member that runs no version of it)}. */
#define VIGIL_CONTROL_NOTICE_SUBJECT "vigil.control.rules"
#define VIGIL_CONTROL_SYNC_MS 2000

struct cJSON;
typedef struct vigil_control_cluster_hooks {
    void (*publish_versions)(void *ud, const char *json);
    struct cJSON *(*read_versions)(void *ud);
    void *ud;
} vigil_control_cluster_hooks;
/* Before vigil_control_cluster_start; NULL: none (no "instances" shown). */
void vigil_control_set_cluster_hooks(vigil_control *ctl, const vigil_control_cluster_hooks *hooks);
/* Listen for notices and start the periodic check (nc borrowed: it must
 * outlive vigil_control_stop). Only with cfg.instance set (else a no-op).
 * Errors: VIGIL_EUNAVAILABLE when NATS refuses the subscriptions. */
vigil_status vigil_control_cluster_start(vigil_control *ctl, natsConnection *nc, vigil_error *err);

typedef struct vigil_control_stats {
    unsigned long long changes;        /* rule changes applied (API, reloads, retirements) */
    unsigned long long reloads;        /* directory reloads */
    unsigned long long reload_errors;  /* files that did not compile on a reload */
    unsigned long long swaps;          /* rulesets swapped into the workers */
    int rules;                         /* live rules */
    int draining;                      /* versions draining */
    unsigned long long snoozed_alerts; /* alerts held back by a snooze */
    int snoozes;                       /* snoozes recorded (live or not yet pruned) */
    unsigned long long refused_max_rules; /* changes refused over limits.max_rules */
    /* cluster mode */
    int clustered;                      /* cfg.instance set */
    unsigned long long generation;      /* the catalog generation this instance runs */
    unsigned long long cluster_syncs;   /* catalogs read from the store after another instance's change */
    unsigned long long notices_sent, notices_seen;   /* on vigil.control.rules (seen: from others) */
    unsigned long long sync_conflicts;  /* changes refused: made at an older generation than the store's */
} vigil_control_stats;
void vigil_control_get_stats(vigil_control *ctl, vigil_control_stats *out);

#endif

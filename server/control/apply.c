/* apply.c — one change to the served rules, all or nothing (DESIGN.md §6):
 * the catalog is changed in place, the new ruleset is built over the
 * running one, each rule whose running version changed either hands its
 * state to the new version (compatible: the old version retires at once)
 * or keeps running as a draining version until its partial matches end;
 * then the catalog records, file hashes and audit entries are stored in one
 * commit, and the ruleset is swapped into every worker at a batch boundary.
 * A change that cannot be built or stored is undone from the records kept
 * before it. Also here: the watch that retires a drained version. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "control_int.h"
#include "vigil/clock.h"
#include "server/common/log.h"

#define SYNC_TIMEOUT_MS 5000   /* a stream lagging more than this: the change does not wait for it */

void vctl_txn_init(vctl_txn *x, const char *by) {
    memset(x, 0, sizeof *x);
    x->audit = cJSON_CreateArray();
    x->by = by ? by : "local";
}

static void txn_free(vctl_txn *x) {
    for (int i = 0; i < x->n; i++) free(x->t[i].before);
    free(x->t);
    for (int i = 0; i < x->nf; i++) free(x->f[i].path);
    free(x->f);
    cJSON_Delete(x->audit);
    memset(x, 0, sizeof *x);
}

int vctl_touch(vigil_control *c, vctl_txn *x, const char *name) {
    for (int i = 0; i < x->n; i++)
        if (strcmp(x->t[i].name, name) == 0) return 0;
    if (x->n == x->cap) {
        int cap = x->cap ? x->cap * 2 : 8;
        struct vtouch *nt = realloc(x->t, (size_t)cap * sizeof *nt);
        if (!nt) return -1;
        x->t = nt;
        x->cap = cap;
    }
    struct vtouch *t = &x->t[x->n];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    vcat_rule *r = vcat_find(&c->cat, name);
    if (r && !(t->before = vcat_rule_json(r))) return -1;
    vcat_ver *live = vcat_live(r);
    t->prev_live = live ? live->version : 0;
    x->n++;
    return 0;
}

int vctl_touch_file(vigil_control *c, vctl_txn *x, const char *path) {
    for (int i = 0; i < x->nf; i++)
        if (strcmp(x->f[i].path, path) == 0) return 0;
    if (x->nf == x->capf) {
        int cap = x->capf ? x->capf * 2 : 8;
        struct vfile_touch *nf = realloc(x->f, (size_t)cap * sizeof *nf);
        if (!nf) return -1;
        x->f = nf;
        x->capf = cap;
    }
    struct vfile_touch *f = &x->f[x->nf];
    memset(f, 0, sizeof *f);
    if (!(f->path = strdup(path))) return -1;
    const char *h = vcat_file_hash(&c->cat, path);
    f->had = h != NULL;
    if (h) snprintf(f->hash, sizeof f->hash, "%s", h);
    x->nf++;
    return 0;
}

void vctl_audit(vctl_txn *x, const char *action, const char *rule, int from_version, int to_version,
                const char *detail) {
    cJSON *e = cJSON_CreateObject();
    char t[40];
    vigil_time_format_rfc3339(vigil_now_ms(), t, sizeof t);
    cJSON_AddStringToObject(e, "at", t);
    cJSON_AddStringToObject(e, "by", x->by);
    cJSON_AddStringToObject(e, "action", action);
    if (rule) cJSON_AddStringToObject(e, "rule", rule);
    if (from_version > 0) cJSON_AddNumberToObject(e, "from_version", from_version);
    else cJSON_AddNullToObject(e, "from_version");
    if (to_version > 0) cJSON_AddNumberToObject(e, "to_version", to_version);
    else cJSON_AddNullToObject(e, "to_version");
    if (detail) cJSON_AddStringToObject(e, "detail", detail);
    cJSON_AddItemToArray(x->audit, e);
}

int vctl_begin(vigil_control *c, vctl_txn *x, const char *by, const char *name) {
    vctl_txn_init(x, by);
    if (vctl_touch(c, x, name) == 0) return 0;
    vctl_abort(c, x);
    return -1;
}

void vctl_abort(vigil_control *c, vctl_txn *x) {
    for (int i = x->n - 1; i >= 0; i--) {   /* each touched rule back as it was */
        const char *why;
        if (x->t[i].before) {
            vcat_rule_from_json(&c->cat, x->t[i].name, x->t[i].before, &why);
            continue;
        }
        for (int j = 0; j < c->cat.n; j++)   /* it did not exist: remove it */
            if (strcmp(c->cat.rules[j]->name, x->t[i].name) == 0) {
                vcat_rule *r = c->cat.rules[j];
                for (int k = 0; k < r->nv; k++) free(r->v[k].src);
                free(r->v);
                free(r);
                c->cat.rules[j] = c->cat.rules[--c->cat.n];
                break;
            }
    }
    for (int i = 0; i < x->nf; i++) vcat_set_file_hash(&c->cat, x->f[i].path, x->f[i].had ? x->f[i].hash : NULL);
    txn_free(x);
}

/* Does version `ver` of rule `name` (in rs) have partial matches to finish
 * once replaced: a pattern's runs, a tumbling or session window's open
 * window? A sliding window has none. */
static int needs_drain(const vigil_ruleset *rs, const char *name, int ver) {
    int i = vigil_ruleset_rule_find(rs, name, ver);
    if (i < 0) return 0;
    vigil_window_kind w = vigil_ruleset_rule_window(rs, i);
    return vigil_ruleset_step_count(rs, i) > 0 || w == VIGIL_WIN_TUMBLING || w == VIGIL_WIN_SESSION;
}

static vigil_status build(vigil_control *c, vigil_ruleset **out, vigil_error *err) {
    vigil_error errs[8];
    int nerrs = 0;
    vigil_status st = vcat_build(&c->cat, c->rs, &c->ropts, out, errs, 8, &nerrs);
    if (st != VIGIL_OK) {
        if (nerrs) *err = errs[0];
        else vigil_error_set(err, st, "cannot build the rules: %s", vigil_status_str(st));
        if (st != VIGIL_ENOMEM) st = VIGIL_ECOMPILE;
    }
    return st;
}

static vigil_status store_commit(vigil_control *c, vctl_txn *x, vigil_error *err) {
    int na = cJSON_GetArraySize(x->audit);
    int n = x->n + x->nf + na + 2;
    vigil_catalog_write *w = calloc((size_t)(n ? n : 1), sizeof *w);
    char **texts = calloc((size_t)(n ? n : 1), sizeof *texts);
    vigil_status st = VIGIL_ENOMEM;
    int k = 0;
    if (!w || !texts) goto out;
    for (int i = 0; i < x->n; i++) {
        vcat_rule *r = vcat_find(&c->cat, x->t[i].name);
        if (r && !(texts[k] = vcat_rule_json(r))) goto out;
        w[k] = (vigil_catalog_write){.kind = VIGIL_CW_RULE, .key = x->t[i].name, .value = texts[k]};
        k++;
    }
    for (int i = 0; i < x->nf; i++, k++)
        w[k] = (vigil_catalog_write){.kind = VIGIL_CW_FILE, .key = x->f[i].path,
                                     .value = vcat_file_hash(&c->cat, x->f[i].path)};
    if (x->snoozes) w[k++] = (vigil_catalog_write){.kind = VIGIL_CW_RULE, .key = VCTL_SNOOZES_RECORD, .value = x->snoozes};
    if (x->extra_key) w[k++] = (vigil_catalog_write){.kind = VIGIL_CW_RULE, .key = x->extra_key, .value = x->extra_value};
    const cJSON *e;
    cJSON_ArrayForEach(e, x->audit) {
        if (!(texts[k] = cJSON_PrintUnformatted(e))) goto out;
        w[k] = (vigil_catalog_write){.kind = VIGIL_CW_AUDIT, .value = texts[k]};
        k++;
    }
    if (vctl_clustered(c)) {   /* issue 14: the generation decides between instances */
        st = vigil_catalog_store_commit_gen(c->store, w, k, &c->gen, &c->gen, err);
        if (st == VIGIL_ECONFLICT) {
            atomic_fetch_add(&c->conflicts, 1);
            atomic_store(&c->notice_gen, UINT64_MAX);   /* the cluster thread catches up at once */
            size_t l = strlen(err->msg);
            snprintf(err->msg + l, sizeof err->msg - l, " (the rules changed on another instance meanwhile; this "
                     "one is catching up: retry)");
        }
    } else {
        st = vigil_catalog_store_commit(c->store, w, k, err);
    }
out:
    if (st == VIGIL_ENOMEM && !err->msg[0]) vigil_error_set(err, st, "out of memory storing the change");
    for (int i = 0; texts && i < n; i++) free(texts[i]);
    free(texts);
    free(w);
    return st;
}

static void swap_in(vigil_control *c, vigil_ruleset *rs);

vigil_status vctl_commit(vigil_control *c, vctl_txn *x, vigil_error *err) {
    int64_t now = vigil_now_ms();
    if (!x->n && !x->nf && !x->rebuild) {   /* no rule changed (a snooze): stored, nothing to build or swap */
        vigil_status st = store_commit(c, x, err);
        if (st != VIGIL_OK) vctl_abort(c, x);
        else txn_free(x), atomic_fetch_add(&c->changes, 1), vctl_cluster_committed(c);
        return st;
    }
    vigil_ruleset *rs = NULL;
    /* 1. the replaced versions stop first; the new one decides whether they drain */
    for (int i = 0; i < x->n; i++) {
        vcat_rule *r = vcat_find(&c->cat, x->t[i].name);
        vcat_ver *live = vcat_live(r);
        vcat_ver *prev = x->t[i].prev_live ? vcat_version(r, x->t[i].prev_live) : NULL;
        if (!prev || prev == live) continue;
        prev->ended_ms = now;
        prev->retired_ms = now;
        prev->state = r->deleted ? VCAT_DELETED : VCAT_RETIRED;
    }
    vigil_status st = build(c, &rs, err);
    int redo = 0;
    for (int i = 0; st == VIGIL_OK && i < x->n; i++) {
        vcat_rule *r = vcat_find(&c->cat, x->t[i].name);
        vcat_ver *live = vcat_live(r);
        if (!live) continue;
        int j = vigil_ruleset_rule_find(rs, r->name, live->version);
        if (j >= 0) live->inherits = vigil_ruleset_rule_inherits(rs, j);
        vcat_ver *prev = x->t[i].prev_live ? vcat_version(r, x->t[i].prev_live) : NULL;
        if (!prev || prev == live || live->inherits <= prev->version) continue;   /* compatible: inherited */
        if (c->rs && needs_drain(c->rs, r->name, prev->version)) {
            prev->state = VCAT_DRAINING;   /* its partial matches finish under it */
            prev->retired_ms = 0;
            redo = 1;
            vctl_audit(x, "drain", r->name, prev->version, live->version,
                       "not compatible: the old version finishes its partial matches, then retires");
        }
    }
    if (st == VIGIL_OK && redo) {
        vigil_ruleset_release(rs);
        rs = NULL;
        st = build(c, &rs, err);
    }
    if (st == VIGIL_OK && vigil_ruleset_group_count(rs) > 64)
        st = vigil_error_set(err, VIGIL_ETOOBIG, "more than 64 key fields across the rules");
    if (st == VIGIL_OK) st = store_commit(c, x, err);
    if (st != VIGIL_OK) {
        vigil_ruleset_release(rs);
        vctl_abort(c, x);
        return st;
    }
    /* 2. stored: now it runs (a failed swap leaves the stored change for the next start) */
    swap_in(c, rs);
    atomic_fetch_add(&c->changes, 1);
    txn_free(x);
    vctl_cluster_committed(c);
    return VIGIL_OK;
}

/* Swap rs into the router's workers (after the ingest sync) and make it the
 * running ruleset (rs is taken over). Holds mu. */
static void swap_in(vigil_control *c, vigil_ruleset *rs) {
    if (c->router) {
        vigil_error se;
        vigil_error_clear(&se);
        /* the swap point after every event accepted before this change (JetStream: in the stream) */
        if (c->sync && c->sync(c->sync_ud, SYNC_TIMEOUT_MS, &se) != VIGIL_OK)
            vigil_log(VIGIL_LOG_WARN, "control", "rules change: %s; it applies from the next batch of every worker", se.msg);
        vigil_error_clear(&se);
        vigil_status ss = vigil_router_swap(c->router, rs, &se);
        if (ss != VIGIL_OK) vigil_log(VIGIL_LOG_WARN, "control", "rules change stored but not running everywhere: %s", se.msg);
        atomic_fetch_add(&c->swaps, 1);
    }
    vigil_ruleset_release(c->rs);
    c->rs = rs;
}

vigil_status vctl_apply_catalog(vigil_control *c, vigil_error *err) {
    vigil_ruleset *rs = NULL;
    vigil_status st = build(c, &rs, err);
    if (st == VIGIL_OK && vigil_ruleset_group_count(rs) > 64)
        st = vigil_error_set(err, VIGIL_ETOOBIG, "more than 64 key fields across the rules");
    if (st != VIGIL_OK) {
        vigil_ruleset_release(rs);
        return st;
    }
    swap_in(c, rs);
    return VIGIL_OK;
}

/* ---- retiring drained versions ------------------------------------------------------- */

/* Once a second: a draining version with no live state on any worker (as
 * the workers last counted, after the swap that made it drain) retires. */
static void retire_drained(vigil_control *c) {
    pthread_mutex_lock(&c->mu);
    vctl_txn x;
    vctl_txn_init(&x, "vigil");
    int any = 0;
    for (int i = 0; i < c->cat.n; i++) {
        vcat_rule *r = c->cat.rules[i];
        for (int j = 0; j < r->nv; j++) {
            vcat_ver *v = &r->v[j];
            if (v->state != VCAT_DRAINING) continue;
            int fresh = 0;
            uint64_t live = vigil_router_rule_live(c->router, r->name, v->version, &fresh);
            if (!fresh || live) continue;
            /* Redis: after a restart the workers hold only the keys they loaded since,
             * so "no live state" counts from then on only once a partial match
             * begun before the restart would have ended anyway */
            /* cluster mode (issue 14): the other instances hold other keys, and each
             * counts only its own; so a version retires only once a partial match
             * begun before it ended would have ended anyway, on every instance (a
             * pattern without `within` is never retired by itself there) */
            if (vctl_clustered(c)) {
                int ri = vigil_ruleset_rule_find(c->rs, r->name, v->version);
                int64_t h = ri >= 0 ? vigil_ruleset_rule_horizon(c->rs, ri) : 0;
                if (!h || vigil_now_ms() - v->ended_ms < h) continue;
            }
            if (c->cfg.redis_url && v->ended_ms < c->started_ms) {
                int ri = vigil_ruleset_rule_find(c->rs, r->name, v->version);
                int64_t h = ri >= 0 ? vigil_ruleset_rule_horizon(c->rs, ri) : 0;
                if (!h || vigil_now_ms() - c->started_ms < h) continue;
            }
            if (vctl_touch(c, &x, r->name) != 0) continue;
            v->state = VCAT_RETIRED;
            v->retired_ms = vigil_now_ms();
            vctl_audit(&x, "retire", r->name, v->version, 0, "its last partial match ended");
            any = 1;
        }
    }
    if (any) {
        vigil_error err;
        vigil_error_clear(&err);
        vigil_status st = vctl_commit(c, &x, &err);
        if (st == VIGIL_ECONFLICT)   /* cluster mode: another instance changed the rules (or retired it) first */
            vigil_log(VIGIL_LOG_INFO, "control", "retiring a drained rule version: %s", err.msg);
        else if (st != VIGIL_OK)
            vigil_log(VIGIL_LOG_ERROR, "control", "retiring a drained rule version failed: %s (retried)", err.msg);
    } else {
        txn_free(&x);
    }
    pthread_mutex_unlock(&c->mu);
}

void *vctl_maint_main(void *arg) {
    vigil_control *c = arg;
    while (!atomic_load(&c->stopping)) {
        for (int i = 0; i < 10 && !atomic_load(&c->stopping); i++) usleep(100000);
        if (atomic_load(&c->stopping)) break;
        retire_drained(c);
        pthread_mutex_lock(&c->mu);
        vctl_compare_flush(c);   /* shadow compare counts, while they change */
        pthread_mutex_unlock(&c->mu);
    }
    return NULL;
}

/* cluster.c — rule changes across the instances of a cluster (issue 14,
 * control.h "cluster mode"): why it exists is that every instance must run
 * the same rule versions, while a change arrives at one of them.
 *
 * The shared catalog in Redis is the truth; its generation (catalog_store.h)
 * says which catalog an instance runs. After a committed change the
 * instance that made it publishes {"instance","generation"} on
 * vigil.control.rules. A notice from another instance wakes this wing's
 * thread, which (as it does every VIGIL_CONTROL_SYNC_MS anyway) reads the
 * store's generation and, when it is not the one running here, reads the
 * whole catalog and applies it through apply.c's build-and-swap, without
 * storing, auditing or announcing it again. So a lost notice (NATS down, a
 * stopped process) delays a change by at most VIGIL_CONTROL_SYNC_MS plus
 * the swap; the audit entry is the originating instance's alone.
 *
 * A catalog that cannot be built here (say a list file only the other
 * instance has) keeps the running rules; it is logged once per generation.
 * Shadow compares (GET /v1/rules/{name}/compare) are per instance: a shadow
 * started elsewhere gets a compare here from its start (counting this
 * instance's alerts); the stored compare records are not read back.
 *
 * Versions per instance: through the hooks (control.h): the server wires
 * them to the cluster wing's members entries (server/cluster_run.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "control_int.h"
#include "vigil/clock.h"
#include "server/common/log.h"

#define CMP_RECORD "~compare:"   /* compare.c's records: per instance, not read back */

/* ---- life ------------------------------------------------------------------------------ */

vigil_status vctl_cluster_init(vigil_control *c, vigil_error *err) {
    pthread_mutex_init(&c->cl_mu, NULL);
    pthread_cond_init(&c->cl_cv, NULL);
    const char *name = c->cfg.instance;
    if (!name || !name[0]) return VIGIL_OK;
    if (!c->cfg.redis_url || !c->cfg.redis_url[0])
        return vigil_error_set(err, VIGIL_EINVAL, "cluster.instance is set but redis.url is not: the instances share "
                               "their rule catalog through Redis");
    if (strlen(name) >= sizeof c->instance)
        return vigil_error_set(err, VIGIL_EINVAL, "cluster.instance: over %zu bytes", sizeof c->instance - 1);
    snprintf(c->instance, sizeof c->instance, "%s", name);
    return VIGIL_OK;
}

int vctl_cluster_shared(vigil_control *c) {
    if (!vctl_clustered(c) || (c->gen == 0 && c->cat.n == 0)) return 0;
    vigil_log(VIGIL_LOG_INFO, "control", "cluster: %d rules from the shared catalog (generation %llu); the rules "
              "directory %s applies on SIGHUP or --watch, as a change", vcat_live_count(&c->cat),
              (unsigned long long)c->gen, c->cfg.rules);
    return 1;
}

void vctl_cluster_stats(vigil_control *c, vigil_control_stats *o) {
    o->clustered = vctl_clustered(c);
    o->generation = c->gen;
    o->cluster_syncs = atomic_load(&c->syncs);
    o->notices_sent = atomic_load(&c->notices_sent);
    o->notices_seen = atomic_load(&c->notices_seen);
    o->sync_conflicts = atomic_load(&c->conflicts);
}

/* ---- the catalog from the store ------------------------------------------------------ */

static void resync_rule(void *ud, const char *name, const char *json) {
    if (strncmp(name, CMP_RECORD, strlen(CMP_RECORD)) == 0) return;
    vctl_load_rule(ud, name, json);
}

/* Read the catalog at generation gen and apply it; on failure the running
 * catalog and lists stay. Holds mu. */
static int resync_locked(vigil_control *c, uint64_t gen, const char *why) {
    vigil_catalog old = c->cat;
    vctl_list *olists = c->lists;
    int onl = c->nlists, ocap = c->caplists;
    memset(&c->cat, 0, sizeof c->cat);
    c->lists = NULL;
    c->nlists = c->caplists = 0;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_catalog_store_load(c->store, resync_rule, vctl_load_file_hash, c, &err);
    int loaded = st == VIGIL_OK;   /* a failed read is retried at the next check; a failed build waits for a change */
    if (st == VIGIL_OK) st = vctl_apply_catalog(c, &err);
    vigil_catalog drop = st == VIGIL_OK ? old : c->cat;
    vctl_list *dl = st == VIGIL_OK ? olists : c->lists;
    int dn = st == VIGIL_OK ? onl : c->nlists, dcap = st == VIGIL_OK ? ocap : c->caplists;
    if (st != VIGIL_OK) {   /* back to what runs */
        c->cat = old;
        c->lists = olists;
        c->nlists = onl;
        c->caplists = ocap;
    }
    vcat_free(&drop);
    vctl_list *keep = c->lists;   /* vctl_lists_free frees c->lists: hand it the dropped ones */
    int kn = c->nlists, kcap = c->caplists;
    c->lists = dl;
    c->nlists = dn;
    c->caplists = dcap;
    vctl_lists_free(c);
    c->lists = keep;
    c->nlists = kn;
    c->caplists = kcap;
    if (st != VIGIL_OK) {
        char buf[1200];
        vigil_error_format(&err, buf, sizeof buf);
        if (!loaded)
            vigil_log(VIGIL_LOG_WARN, "control", "cluster: reading the rule catalog at generation %llu: %s (retried in %d ms)",
                      (unsigned long long)gen, buf, VIGIL_CONTROL_SYNC_MS);
        else if (c->failed_gen != gen)
            vigil_log(VIGIL_LOG_ERROR, "control", "cluster: the rule catalog at generation %llu cannot run here (%s); the "
                      "running rules (generation %llu) stay until the next change", (unsigned long long)gen, buf,
                      (unsigned long long)c->gen);
        if (loaded) c->failed_gen = gen;
        return -1;
    }
    vigil_log(VIGIL_LOG_INFO, "control", "cluster: rule catalog generation %llu applied (was %llu; found by %s): %d rules",
              (unsigned long long)gen, (unsigned long long)c->gen, why, vcat_live_count(&c->cat));
    c->gen = gen;
    c->failed_gen = 0;
    vctl_compare_sync(c);   /* a shadow started or promoted on another instance */
    atomic_fetch_add(&c->syncs, 1);
    return 0;
}

static void wake(vigil_control *c) {
    pthread_mutex_lock(&c->cl_mu);
    c->cl_wake = 1;
    pthread_cond_signal(&c->cl_cv);
    pthread_mutex_unlock(&c->cl_mu);
}

static int catch_up(vigil_control *c, const char *why) {
    if (!vctl_clustered(c)) return 0;
    uint64_t gen = 0;
    vigil_error err;
    vigil_error_clear(&err);
    if (vigil_catalog_store_generation(c->store, &gen, &err) != VIGIL_OK) {
        vigil_log(VIGIL_LOG_WARN, "control", "cluster: reading the catalog generation: %s (checked again in %d ms)",
                  err.msg, VIGIL_CONTROL_SYNC_MS);
        return -1;
    }
    if (gen == c->gen) return 0;
    if (gen == c->failed_gen) return -1;   /* said once already */
    int r = resync_locked(c, gen, why);
    if (r == 0) wake(c);   /* the versions: published by the thread */
    return r;
}

int vctl_cluster_catch_up(vigil_control *c) { return catch_up(c, "a change asked here"); }

/* ---- notices --------------------------------------------------------------------------- */

void vctl_cluster_committed(vigil_control *c) {
    if (!vctl_clustered(c)) return;
    c->failed_gen = 0;
    if (c->nc) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "instance", c->instance);
        cJSON_AddNumberToObject(o, "generation", (double)c->gen);
        char *body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (body && natsConnection_PublishString(c->nc, VIGIL_CONTROL_NOTICE_SUBJECT, body) == NATS_OK)
            atomic_fetch_add(&c->notices_sent, 1);
        else
            vigil_log(VIGIL_LOG_WARN, "control", "cluster: the notice of generation %llu was not published; the other "
                      "instances find it within %d ms", (unsigned long long)c->gen, VIGIL_CONTROL_SYNC_MS);
        free(body);
    }
    wake(c);
}

static void on_notice(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *ud) {
    (void)nc;
    (void)sub;
    vigil_control *c = ud;
    cJSON *o = cJSON_ParseWithLength(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg));
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(o, "instance"), *g = cJSON_GetObjectItemCaseSensitive(o, "generation");
    if (cJSON_IsString(in) && cJSON_IsNumber(g) && strcmp(in->valuestring, c->instance) != 0) {
        atomic_fetch_add(&c->notices_seen, 1);
        unsigned long long gen = g->valuedouble > 0 ? (unsigned long long)g->valuedouble : 0, cur = atomic_load(&c->notice_gen);
        while (gen > cur && !atomic_compare_exchange_weak(&c->notice_gen, &cur, gen)) {}
        wake(c);
    }
    cJSON_Delete(o);
    natsMsg_Destroy(msg);
}

/* ---- versions ------------------------------------------------------------------------- */

/* {"<rule>": <running version>, …} of the live rules (malloc'd). Holds mu. */
static char *versions_json(vigil_control *c) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; o && i < c->cat.n; i++) {
        vcat_ver *v = vcat_live(c->cat.rules[i]);
        if (v) cJSON_AddNumberToObject(o, c->cat.rules[i]->name, v->version);
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

void vctl_cluster_add_instances(vigil_control *c, cJSON *rules, int is_array) {
    if (!vctl_clustered(c) || !c->hooks.read_versions) return;
    cJSON *all = c->hooks.read_versions(c->hooks.ud);
    if (!cJSON_IsObject(all)) {
        cJSON_Delete(all);
        return;
    }
    cJSON *one = rules;
    for (cJSON *x = is_array ? rules->child : one; x; x = is_array ? x->next : NULL) {
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(x, "name");
        if (!cJSON_IsString(nm)) continue;
        cJSON *inst = cJSON_AddObjectToObject(x, "instances");
        const cJSON *m;
        cJSON_ArrayForEach(m, all) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, nm->valuestring);
            if (cJSON_IsNumber(v)) cJSON_AddNumberToObject(inst, m->string, v->valuedouble);
            else cJSON_AddNullToObject(inst, m->string);
        }
    }
    cJSON_Delete(all);
}

/* ---- the thread ------------------------------------------------------------------------- */

static void publish_versions(vigil_control *c) {
    pthread_mutex_lock(&c->mu);
    char *js = versions_json(c);
    pthread_mutex_unlock(&c->mu);
    if (js && c->hooks.publish_versions) c->hooks.publish_versions(c->hooks.ud, js);
    free(js);
}

/* Woken by a notice or a change; else every VIGIL_CONTROL_SYNC_MS: catch
 * up with the store, then tell the cluster which versions run here. */
static void *cluster_main(void *arg) {
    vigil_control *c = arg;
    int64_t next_check = 0;
    while (!atomic_load(&c->stopping)) {
        pthread_mutex_lock(&c->cl_mu);
        if (!c->cl_wake) {
            struct timespec dl;
            clock_gettime(CLOCK_REALTIME, &dl);
            dl.tv_nsec += 200 * 1000000L;
            if (dl.tv_nsec >= 1000000000L) dl.tv_sec++, dl.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&c->cl_cv, &c->cl_mu, &dl);
        }
        int woke = c->cl_wake;
        c->cl_wake = 0;
        pthread_mutex_unlock(&c->cl_mu);
        if (atomic_load(&c->stopping)) break;
        int64_t now = vigil_now_ms();
        int periodic = now >= next_check;
        if (!woke && !periodic) continue;
        if (periodic) next_check = now + VIGIL_CONTROL_SYNC_MS;
        pthread_mutex_lock(&c->mu);
        unsigned long long ng = atomic_load(&c->notice_gen);
        if (periodic || (ng && ng != c->gen)) {
            catch_up(c, ng && ng != c->gen ? "a notice" : "the periodic check");   /* the store is at least as new as any notice */
            if (ng) atomic_compare_exchange_strong(&c->notice_gen, &ng, 0);
        }
        pthread_mutex_unlock(&c->mu);
        publish_versions(c);
    }
    return NULL;
}

void vigil_control_set_cluster_hooks(vigil_control *c, const vigil_control_cluster_hooks *h) {
    if (h) c->hooks = *h;
    else memset(&c->hooks, 0, sizeof c->hooks);
}

vigil_status vigil_control_cluster_start(vigil_control *c, natsConnection *nc, vigil_error *err) {
    if (!vctl_clustered(c)) return VIGIL_OK;
    pthread_mutex_lock(&c->mu);
    c->nc = nc;
    pthread_mutex_unlock(&c->mu);
    natsStatus ns = NATS_OK;
    if (nc) {
        ns = natsConnection_Subscribe(&c->sub_rules, nc, VIGIL_CONTROL_NOTICE_SUBJECT, on_notice, c);
        if (ns == NATS_OK) ns = natsConnection_Flush(nc);   /* subscribed before the first change */
    }
    if (ns != NATS_OK)
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cluster: cannot subscribe to %s: %s", VIGIL_CONTROL_NOTICE_SUBJECT,
                               natsStatus_GetText(ns));
    if (pthread_create(&c->cl_th, NULL, cluster_main, c) != 0)
        return vigil_error_set(err, VIGIL_EIO, "cluster: cannot start the rules thread");
    c->cl_started = 1;
    wake(c);
    vigil_log(VIGIL_LOG_INFO, "control", "cluster: instance %s runs rule catalog generation %llu; changes on %s, checked "
              "every %d ms", c->instance, (unsigned long long)c->gen, VIGIL_CONTROL_NOTICE_SUBJECT, VIGIL_CONTROL_SYNC_MS);
    return VIGIL_OK;
}

void vctl_cluster_stop(vigil_control *c) {
    if (c->sub_rules) natsSubscription_Unsubscribe(c->sub_rules);
    if (c->cl_started) {
        wake(c);
        pthread_join(c->cl_th, NULL);
        c->cl_started = 0;
    }
}

void vctl_cluster_free(vigil_control *c) {
    natsSubscription_Destroy(c->sub_rules);
    c->sub_rules = NULL;
    pthread_cond_destroy(&c->cl_cv);
    pthread_mutex_destroy(&c->cl_mu);
}

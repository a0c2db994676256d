/* cluster.c — the cluster wing's life (issue 14): settings checked, the
 * buckets bound, the thread that runs members.c and leases.c once a
 * heartbeat (and at once when a pair is fenced), the clean stop that hands
 * every pair over, and the thread-safe accessors the other wings call.
 * cluster.h has the protocol. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cluster_int.h"
#include "server/common/log.h"
#include "vigil/clock.h"

static int plain_name(const char *s) {
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-'))
            return 0;
    return 1;
}

static vigil_status check_group(const char *group, int g, vigil_error *err) {
    char buf[VIGIL_PAIR_NAME_MAX];
    if (!group || !*group) return vigil_error_set(err, VIGIL_EINVAL, "cluster: key group %d has no name", g);
    if (strlen(group) > 100 || vigil_pair_lease_key(buf, sizeof buf, group, VIGIL_CLUSTER_MAX_PARTITIONS) < 0 ||
        vigil_pair_epoch_key(buf, sizeof buf, "p", group, 0) < 0)
        return vigil_error_set(err, VIGIL_EINVAL,
                               "cluster: key group '%.40s…': over 100 bytes, or holds '{' or '}' (the Redis hash tag)",
                               group);
    return VIGIL_OK;
}

static vigil_status check(const vigil_cluster_config *cfg, vigil_error *err) {
    if (!cfg->nc) return vigil_error_set(err, VIGIL_EINVAL, "cluster: cluster mode needs NATS (nats.url, with JetStream)");
    if (!cfg->redis_url || !*cfg->redis_url)
        return vigil_error_set(err, VIGIL_EINVAL, "cluster: cluster mode needs Redis (redis.url) for the fencing epochs");
    size_t il = cfg->instance ? strlen(cfg->instance) : 0;
    if (il == 0 || il > 100) return vigil_error_set(err, VIGIL_EINVAL, "cluster.instance: 1 to 100 bytes expected");
    for (const char *s = cfg->instance; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return vigil_error_set(err, VIGIL_EINVAL, "cluster.instance: control characters are not allowed");
    if (cfg->lease_ms <= 0 || cfg->heartbeat_ms <= 0 || 2 * cfg->heartbeat_ms > cfg->lease_ms)
        return vigil_error_set(err, VIGIL_EINVAL,
                               "cluster: the heartbeat (%lld ms) must be positive and at most half the lease (%lld ms)",
                               (long long)cfg->heartbeat_ms, (long long)cfg->lease_ms);
    if (cfg->partitions < 1 || cfg->partitions > VIGIL_CLUSTER_MAX_PARTITIONS)
        return vigil_error_set(err, VIGIL_EINVAL, "cluster: partitions must be 1 to %d, not %d",
                               VIGIL_CLUSTER_MAX_PARTITIONS, cfg->partitions);
    if (cfg->ngroups < 0 || cfg->ngroups > VIGIL_CLUSTER_MAX_GROUPS || (cfg->ngroups > 0 && !cfg->groups))
        return vigil_error_set(err, VIGIL_EINVAL, "cluster: 0 to %d key groups expected, not %d",
                               VIGIL_CLUSTER_MAX_GROUPS, cfg->ngroups);
    for (int g = 0; g < cfg->ngroups; g++) {
        vigil_status st = check_group(cfg->groups[g], g, err);
        if (st != VIGIL_OK) return st;
    }
    if (cfg->kv_prefix && *cfg->kv_prefix && (!plain_name(cfg->kv_prefix) || strlen(cfg->kv_prefix) > 40))
        return vigil_error_set(err, VIGIL_EINVAL, "cluster.kv_prefix: [A-Za-z0-9_-], 1 to 40 bytes expected");
    return VIGIL_OK;
}

/* Add groups[from..n) (under mu, or before the thread starts). */
static vigil_status add_groups(vigil_cluster *c, const char *const *groups, int from, int n) {
    for (int g = from; g < n; g++) {
        char tok[VIGIL_PAIR_NAME_MAX];
        vigil_cluster_group_token(groups[g], tok, sizeof tok);
        c->groups[g] = strdup(groups[g]);
        c->gtokens[g] = strdup(tok);
        c->pairs[g] = calloc((size_t)c->cfg.partitions, sizeof(vcl_pair));
        if (!c->groups[g] || !c->gtokens[g] || !c->pairs[g]) return VIGIL_ENOMEM;
        for (int p = 0; p < c->cfg.partitions; p++) c->pairs[g][p].lease_age_ms = -1;
        c->ngroups = g + 1;
    }
    return VIGIL_OK;
}

static void *run(void *arg) {
    vigil_cluster *c = arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&c->mu);
    while (!c->stopping && !c->crashed) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > next.tv_sec || (now.tv_sec == next.tv_sec && now.tv_nsec >= next.tv_nsec)) {
            c->fenced_pending = 0;   /* the tick handles the fenced pairs first */
            pthread_mutex_unlock(&c->mu);
            /* the fenced pairs, then the renewals (what keeps a single
             * owner comes first); NATS away: the rest waits a heartbeat */
            vcl_leases_fenced(c);
            if (vcl_leases_renew(c, vigil_now_ms()) == 0 && vcl_members_tick(c, vigil_now_ms()) == 0)
                vcl_leases_tick(c, vigil_now_ms());
            pthread_mutex_lock(&c->mu);
            long long ns = (long long)now.tv_nsec + (c->cfg.heartbeat_ms % 1000) * 1000000LL;
            next.tv_sec = now.tv_sec + (time_t)(c->cfg.heartbeat_ms / 1000) + (time_t)(ns / 1000000000LL);
            next.tv_nsec = (long)(ns % 1000000000LL);
            continue;
        }
        if (c->fenced_pending) {
            c->fenced_pending = 0;
            pthread_mutex_unlock(&c->mu);
            vcl_leases_fenced(c);
            pthread_mutex_lock(&c->mu);
            continue;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &next);
    }
    int crashed = c->crashed;
    pthread_mutex_unlock(&c->mu);
    if (!crashed) {
        vcl_leases_release_all(c);
        if (!c->nats_away) vcl_members_leave(c);   /* else its entry expires */
    }
    return NULL;
}

vigil_status vigil_cluster_start(const vigil_cluster_config *cfg, vigil_cluster **out, vigil_error *err) {
    *out = NULL;
    if (!cfg) return vigil_error_set(err, VIGIL_EINVAL, "cluster: no configuration");
    vigil_status st = check(cfg, err);
    if (st != VIGIL_OK) return st;
    vigil_cluster *c = calloc(1, sizeof *c);
    if (!c) return vigil_error_set(err, VIGIL_ENOMEM, "cluster: out of memory");
    c->cfg = *cfg;
    snprintf(c->instance, sizeof c->instance, "%s", cfg->instance);
    snprintf(c->kv_prefix, sizeof c->kv_prefix, "%s", cfg->kv_prefix && *cfg->kv_prefix ? cfg->kv_prefix : "VIGIL");
    vigil_cluster_group_token(c->instance, c->member_key, sizeof c->member_key);
    c->http_url = cfg->http_url ? strdup(cfg->http_url) : NULL;
    c->redis_prefix = strdup(cfg->redis_prefix && *cfg->redis_prefix ? cfg->redis_prefix : "vigil");
    c->versions = strdup("{}");
    c->cfg.instance = c->instance;
    c->cfg.kv_prefix = c->kv_prefix;
    c->cfg.http_url = c->http_url;
    c->cfg.redis_prefix = c->redis_prefix;
    c->cfg.redis_url = NULL;      /* not kept: the handle has it */
    c->cfg.redis_opts = NULL;
    c->cfg.groups = NULL;
    c->started_ms = vigil_now_ms();
    c->io_ms = cfg->heartbeat_ms < cfg->lease_ms / 4 ? cfg->heartbeat_ms : cfg->lease_ms / 4;
    if (c->io_ms < 100) c->io_ms = 100;
    if (c->io_ms > 5000) c->io_ms = 5000;
    c->live_ms = 2 * cfg->heartbeat_ms + 1000 < cfg->lease_ms ? 2 * cfg->heartbeat_ms + 1000 : cfg->lease_ms;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!c->redis_prefix || !c->versions || (cfg->http_url && !c->http_url) ||
        add_groups(c, cfg->groups, 0, cfg->ngroups) != VIGIL_OK) {
        vigil_cluster_destroy(c);
        return vigil_error_set(err, VIGIL_ENOMEM, "cluster: out of memory");
    }

    vigil_redis_opts ro = {(int)c->io_ms, (int)c->io_ms};
    st = vigil_redis_create(cfg->redis_url, cfg->redis_opts ? cfg->redis_opts : &ro, &c->redis, err);
    if (st != VIGIL_OK) {
        vigil_cluster_destroy(c);
        return st;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = c->io_ms;
    natsStatus ns = natsConnection_JetStream(&c->js, cfg->nc, &jo);
    if (ns != NATS_OK) {
        vigil_cluster_destroy(c);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "cluster: JetStream context: %s", vcl_nats_why(ns));
    }
    if ((st = vcl_kv_open(c, "members", &c->members_kv, err)) != VIGIL_OK ||
        (st = vcl_kv_open(c, "leases", &c->leases_kv, err)) != VIGIL_OK) {
        vigil_cluster_destroy(c);
        return st;
    }
    *out = c;   /* before the thread: its first heartbeat may call acquired before we return */
    if (pthread_create(&c->thread, NULL, run, c) != 0) {
        *out = NULL;
        vigil_cluster_destroy(c);
        return vigil_error_set(err, VIGIL_ENOMEM, "cluster: cannot start its thread");
    }
    c->thread_started = 1;
    vigil_log(VIGIL_LOG_INFO, "cluster",
              "cluster: %s joined (buckets %s_members and %s_leases, %d key groups × %d partitions, lease %lld ms, "
              "heartbeat %lld ms)",
              c->instance, c->kv_prefix, c->kv_prefix, c->ngroups, c->cfg.partitions, (long long)cfg->lease_ms,
              (long long)cfg->heartbeat_ms);
    return VIGIL_OK;
}

static void halt(vigil_cluster *c, int crash) {
    pthread_mutex_lock(&c->mu);
    if (crash) c->crashed = 1;
    else c->stopping = 1;
    int join = c->thread_started && !c->joined;
    c->joined = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (join) pthread_join(c->thread, NULL);
}

void vigil_cluster_stop(vigil_cluster *c) {
    if (!c) return;
    halt(c, 0);
}

void vigil_cluster_crash_for_test(vigil_cluster *c) {
    if (!c) return;
    halt(c, 1);
}

void vigil_cluster_destroy(vigil_cluster *c) {
    if (!c) return;
    halt(c, 0);
    if (c->members_kv) kvStore_Destroy(c->members_kv);
    if (c->leases_kv) kvStore_Destroy(c->leases_kv);
    if (c->js) jsCtx_Destroy(c->js);
    vigil_redis_destroy(c->redis);
    vcl_members_free(c);
    for (int g = 0; g < VIGIL_CLUSTER_MAX_GROUPS; g++) {
        free(c->groups[g]);
        free(c->gtokens[g]);
        free(c->pairs[g]);
    }
    free(c->http_url);
    free(c->redis_prefix);
    free(c->versions);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

uint64_t vigil_cluster_epoch(vigil_cluster *c, int g, int p) {
    if (!c || p < 0 || p >= c->cfg.partitions || g < 0) return 0;
    pthread_mutex_lock(&c->mu);
    uint64_t e = g < c->ngroups && c->pairs[g][p].held ? c->pairs[g][p].epoch : 0;
    pthread_mutex_unlock(&c->mu);
    return e;
}

uint64_t vigil_cluster_fresh_epoch(vigil_cluster *c, int g, int p) {
    if (!c || p < 0 || p >= c->cfg.partitions || g < 0) return 0;
    int64_t now = vigil_now_ms();
    pthread_mutex_lock(&c->mu);
    const vcl_pair *pr = g < c->ngroups ? &c->pairs[g][p] : NULL;
    uint64_t e = pr && pr->held && !pr->fenced && now - pr->renewed_ms < c->cfg.lease_ms - c->cfg.heartbeat_ms
                     ? pr->epoch : 0;
    pthread_mutex_unlock(&c->mu);
    return e;
}

void vigil_cluster_fenced(vigil_cluster *c, int g, int p) {
    if (!c || p < 0 || p >= c->cfg.partitions || g < 0) return;
    pthread_mutex_lock(&c->mu);
    if (g < c->ngroups) {
        c->pairs[g][p].fenced = 1;
        c->fenced_pending = 1;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
}

void vigil_cluster_set_groups(vigil_cluster *c, const char *const *groups, int ngroups) {
    if (!c) return;
    vigil_error err;
    vigil_error_clear(&err);
    pthread_mutex_lock(&c->mu);
    const char *why = NULL;
    if (ngroups < c->ngroups || ngroups > VIGIL_CLUSTER_MAX_GROUPS || (ngroups > 0 && !groups))
        why = "fewer groups than before, or too many";
    for (int g = 0; !why && g < c->ngroups; g++)
        if (!groups[g] || strcmp(groups[g], c->groups[g]) != 0) why = "a current group is missing or moved";
    for (int g = c->ngroups; !why && g < ngroups; g++)
        if (check_group(groups[g], g, &err) != VIGIL_OK) why = err.msg;
    if (!why && add_groups(c, groups, c->ngroups, ngroups) != VIGIL_OK) why = "out of memory";
    pthread_mutex_unlock(&c->mu);
    if (why) vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: the new key groups are refused: %s", why);
}

void vigil_cluster_set_versions(vigil_cluster *c, const char *versions_json) {
    if (!c) return;
    cJSON *o = cJSON_Parse(versions_json ? versions_json : "{}");
    char *text = cJSON_IsObject(o) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    if (!text) {
        vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: the rule versions are not a JSON object; kept the previous ones");
        return;
    }
    pthread_mutex_lock(&c->mu);
    free(c->versions);
    c->versions = text;
    pthread_mutex_unlock(&c->mu);
}

void vigil_cluster_set_lag_fn(vigil_cluster *c, uint64_t (*lag)(void *ud, int g, int p), void *ud) {
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->lag = lag;
    c->lag_ud = ud;
    pthread_mutex_unlock(&c->mu);
}

void vigil_cluster_get_stats(vigil_cluster *c, vigil_cluster_stats *out) {
    memset(out, 0, sizeof *out);
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}

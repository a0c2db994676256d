/* leases.c — taking, renewing and releasing pairs (cluster.h tells the
 * protocol): once a heartbeat, after the members are read, the cluster
 * thread renews what it holds, releases what it no longer prefers and takes
 * what it prefers and nobody holds; each take bumps the pair's fencing
 * epoch in Redis before `acquired` is called. One log line per move. */
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>
#include "cluster_int.h"
#include "rendezvous.h"
#include "server/common/log.h"
#include "vigil/clock.h"

typedef struct lease_info {
    char instance[VCL_NAME];
    uint64_t epoch;
    int64_t renewed_ms;   /* the older of the value's time and the entry's Created time */
} lease_info;

/* 1 when e is a live-or-expired lease we can read (not a delete marker). */
static int parse_lease(const vcl_kv_entry *e, lease_info *li) {
    memset(li, 0, sizeof *li);
    if (!e || e->deleted) return 0;
    cJSON *o = cJSON_Parse(e->value);
    const cJSON *inst = cJSON_GetObjectItemCaseSensitive(o, "instance");
    const cJSON *epoch = cJSON_GetObjectItemCaseSensitive(o, "epoch");
    const cJSON *renewed = cJSON_GetObjectItemCaseSensitive(o, "renewed_ms");
    int ok = cJSON_IsString(inst) && strlen(inst->valuestring) < VCL_NAME;
    if (ok) {
        snprintf(li->instance, sizeof li->instance, "%s", inst->valuestring);
        li->epoch = cJSON_IsNumber(epoch) && epoch->valuedouble > 0 ? (uint64_t)epoch->valuedouble : 0;
        li->renewed_ms = e->created_ms;
        if (cJSON_IsNumber(renewed) && (int64_t)renewed->valuedouble < li->renewed_ms)
            li->renewed_ms = (int64_t)renewed->valuedouble;
    }
    cJSON_Delete(o);
    return ok;
}

static char *lease_value(vigil_cluster *c, uint64_t epoch, int64_t now) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "instance", c->instance);
    cJSON_AddNumberToObject(o, "epoch", (double)epoch);
    cJSON_AddNumberToObject(o, "renewed_ms", (double)now);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void lease_key(vigil_cluster *c, int g, int p, char *key, size_t n) {
    vigil_pair_lease_key(key, n, c->groups[g], p);
}

/* The pair stops being ours: held and epoch cleared, then `lost`. */
static void lose(vigil_cluster *c, int g, int p, const char *why) {
    pthread_mutex_lock(&c->mu);
    vcl_pair *pr = &c->pairs[g][p];
    uint64_t epoch = pr->epoch;
    pr->held = 0;
    pr->epoch = 0;
    c->stats.lost++;
    pthread_mutex_unlock(&c->mu);
    if (c->cfg.lost) c->cfg.lost(c->cfg.ud, g, p);
    vigil_log(VIGIL_LOG_INFO, "cluster", "cluster: %s gave up %s/p%d (epoch %llu): %s", c->instance, c->groups[g], p,
              (unsigned long long)epoch, why);
}

/* A transport failure (NATS unreachable or not answering), as opposed to
 * an answer (OK, or an error JetStream sent back). */
static int transport_failure(natsStatus s) {
    return s != NATS_OK && s != NATS_ERR && s != NATS_NOT_FOUND;
}

/* Delete our lease, unless our last renewal is so old that someone may
 * already have taken it (the delete is unconditional in NATS KV). -1 when
 * NATS did not answer (the lease expires by itself). */
static int drop_lease(vigil_cluster *c, int g, int p, int64_t now) {
    vcl_pair *pr = &c->pairs[g][p];
    if (now - pr->renewed_ms >= c->cfg.lease_ms - c->cfg.heartbeat_ms) return 0;
    char key[VIGIL_PAIR_NAME_MAX];
    lease_key(c, g, p, key, sizeof key);
    natsStatus s = kvStore_Delete(c->leases_kv, key);
    if (s != NATS_OK)
        vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: the lease of %s/p%d not deleted (it expires): %s", c->groups[g],
                  p, vcl_nats_why(s));
    return transport_failure(s) ? -1 : 0;
}

/* A renewal was refused because the lease is not at the revision we wrote
 * last. If it holds our own name and epoch, it is a write of ours whose
 * answer was lost (a timeout that JetStream applied all the same): take
 * its revision and renew on it. 0 when renewed so; -1: the lease is
 * someone else's (or unreadable). */
static int adopt_own_write(vigil_cluster *c, int g, int p, const char *key, int64_t now) {
    vcl_pair *pr = &c->pairs[g][p];
    kvEntry *e = NULL;
    if (kvStore_Get(&e, c->leases_kv, key) != NATS_OK) return -1;
    vcl_kv_entry ve = {.value = (char *)kvEntry_ValueString(e), .rev = kvEntry_Revision(e),
                       .created_ms = kvEntry_Created(e) / 1000000};
    lease_info li;
    int ours = ve.value && parse_lease(&ve, &li) && strcmp(li.instance, c->instance) == 0 && li.epoch == pr->epoch;
    kvEntry_Destroy(e);
    if (!ours) return -1;
    char *value = lease_value(c, pr->epoch, now);
    uint64_t rev = 0;
    natsStatus s = value ? kvStore_UpdateString(&rev, c->leases_kv, key, value, ve.rev) : NATS_NO_MEMORY;
    free(value);
    if (s != NATS_OK) return -1;
    pr->rev = rev;
    pr->renewed_ms = now;
    return 0;
}

/* Renew the pair's lease; 0, or -1 when NATS did not answer. */
static int renew(vigil_cluster *c, int g, int p, int64_t now) {
    vcl_pair *pr = &c->pairs[g][p];
    char key[VIGIL_PAIR_NAME_MAX];
    lease_key(c, g, p, key, sizeof key);
    char *value = lease_value(c, pr->epoch, now);
    uint64_t rev = 0;
    natsStatus s = value ? kvStore_UpdateString(&rev, c->leases_kv, key, value, pr->rev) : NATS_NO_MEMORY;
    free(value);
    if (s == NATS_OK) {
        pr->rev = rev;
        pr->renewed_ms = now;
        if (c->nats_away) vigil_log(VIGIL_LOG_INFO, "cluster", "cluster: %s renews its leases again", c->instance);
        c->nats_away = 0;
        pthread_mutex_lock(&c->mu);
        c->stats.renewals++;
        pthread_mutex_unlock(&c->mu);
        return 0;
    }
    pthread_mutex_lock(&c->mu);
    c->stats.renew_failures++;
    pthread_mutex_unlock(&c->mu);
    if (s == NATS_ERR) {   /* JetStream answered: wrong last sequence */
        if (adopt_own_write(c, g, p, key, now) == 0) return 0;
        lose(c, g, p, "its lease renewal was refused (the lease changed hands)");
        return 0;
    }
    if (!transport_failure(s)) return 0;
    if (!c->nats_away)
        vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: %s cannot renew its leases (%s): retried every heartbeat",
                  c->instance, vcl_nats_why(s));
    c->nats_away = 1;
    return -1;
}

static vigil_status incr_epoch(vigil_cluster *c, int g, int p, uint64_t *epoch, vigil_error *err) {
    char key[VIGIL_PAIR_NAME_MAX];
    if (vigil_pair_epoch_key(key, sizeof key, c->redis_prefix, c->groups[g], p) < 0)
        return vigil_error_set(err, VIGIL_EINVAL, "no epoch key for group '%s'", c->groups[g]);
    const char *argv[] = {"INCR", key};
    size_t lens[] = {4, strlen(key)};
    vigil_redis_cmd cmd = {2, argv, lens};
    struct redisReply *r = NULL;
    vigil_status st = vigil_redis_command(c->redis, &cmd, &r, "INCR epoch", err);
    if (st != VIGIL_OK) return st;
    st = vigil_redis_reply_check(c->redis, r, "INCR epoch", err);
    if (st == VIGIL_OK) {
        if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) *epoch = (uint64_t)r->integer;
        else st = vigil_error_set(err, VIGIL_ESTORE, "INCR %s: not a positive integer", key);
    }
    freeReplyObject(r);
    return st;
}

/* Take the pair if its lease (e, from this heartbeat's snapshot) allows. */
static void try_take(vigil_cluster *c, int g, int p, const vcl_kv_entry *e, int64_t now) {
    vcl_pair *pr = &c->pairs[g][p];
    lease_info li;
    int readable = parse_lease(e, &li), present = readable;
    if (!readable && e && !e->deleted) {   /* not a lease we wrote: judged by its Created time alone */
        present = 1;
        li.renewed_ms = e->created_ms;
    }
    char from[VCL_NAME + 64];
    snprintf(from, sizeof from, "no lease");
    if (present) {
        int own = readable && strcmp(li.instance, c->instance) == 0;
        int64_t age = now - li.renewed_ms;
        if (!own && age <= c->cfg.lease_ms) return;   /* someone else's live lease: it will release or expire */
        if (own) snprintf(from, sizeof from, "its own earlier lease");
        else if (readable) snprintf(from, sizeof from, "%s's lease expired %lld ms ago", li.instance,
                                    (long long)(age - c->cfg.lease_ms));
        else snprintf(from, sizeof from, "an unreadable lease expired %lld ms ago", (long long)(age - c->cfg.lease_ms));
    }
    char key[VIGIL_PAIR_NAME_MAX];
    lease_key(c, g, p, key, sizeof key);
    char *value = lease_value(c, 0, now);
    if (!value) return;
    uint64_t rev = 0;
    natsStatus s = present ? kvStore_UpdateString(&rev, c->leases_kv, key, value, e->rev)
                           : kvStore_CreateString(&rev, c->leases_kv, key, value);
    free(value);
    if (s != NATS_OK) return;   /* another member was faster, or NATS is away: the next heartbeat looks again */

    vigil_error err;
    vigil_error_clear(&err);
    uint64_t epoch = 0;
    if (incr_epoch(c, g, p, &epoch, &err) != VIGIL_OK) {
        kvStore_Delete(c->leases_kv, key);   /* give it back: a pair without an epoch cannot commit */
        if (now - c->redis_warned_ms >= 10000) {
            c->redis_warned_ms = now;
            vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: %s cannot take %s/p%d: no fencing epoch: %s", c->instance,
                      c->groups[g], p, err.msg);
        }
        return;
    }
    value = lease_value(c, epoch, now);
    s = value ? kvStore_UpdateString(&pr->rev, c->leases_kv, key, value, rev) : NATS_NO_MEMORY;
    free(value);
    if (s != NATS_OK) {
        /* the lease moved in between (or NATS went away): not ours. If
         * someone took it meanwhile (our write came more than a lease
         * late), the epoch we drew may refuse its first commits: it is
         * then fenced and takes the pair again with a newer epoch. */
        vigil_log(VIGIL_LOG_INFO, "cluster", "cluster: %s did not take %s/p%d: the lease changed while taking it",
                  c->instance, c->groups[g], p);
        return;
    }
    pr->renewed_ms = now;
    pthread_mutex_lock(&c->mu);
    pr->held = 1;
    pr->epoch = epoch;
    c->stats.acquired++;
    pthread_mutex_unlock(&c->mu);
    vigil_log(VIGIL_LOG_INFO, "cluster", "cluster: %s took %s/p%d (epoch %llu; %s)", c->instance, c->groups[g], p,
              (unsigned long long)epoch, from);
    if (c->cfg.acquired) c->cfg.acquired(c->cfg.ud, g, p, epoch);
}

void vcl_leases_fenced(vigil_cluster *c) {
    pthread_mutex_lock(&c->mu);
    int ng = c->ngroups;
    pthread_mutex_unlock(&c->mu);
    for (int g = 0; g < ng; g++) {
        for (int p = 0; p < c->cfg.partitions; p++) {
            pthread_mutex_lock(&c->mu);
            vcl_pair *pr = &c->pairs[g][p];
            int hit = pr->fenced && pr->held;
            pr->fenced = 0;
            if (hit) c->stats.fenced++;
            pthread_mutex_unlock(&c->mu);
            if (hit) lose(c, g, p, "fenced: a commit was refused for a stale epoch");
        }
    }
}

/* The view GET /v1/cluster shows, from the snapshot (or our own state for the pairs we hold). */
static void update_view(vigil_cluster *c, int ng, const vcl_snapshot *snap, int have, int64_t now) {
    for (int g = 0; g < ng; g++) {
        for (int p = 0; p < c->cfg.partitions; p++) {
            vcl_pair *pr = &c->pairs[g][p];
            lease_info li;
            int live = 0;
            if (have) {
                char key[VIGIL_PAIR_NAME_MAX];
                lease_key(c, g, p, key, sizeof key);
                live = parse_lease(vcl_snapshot_find(snap, key), &li) && now - li.renewed_ms <= c->cfg.lease_ms;
            }
            pthread_mutex_lock(&c->mu);
            if (pr->held) {
                snprintf(pr->owner, sizeof pr->owner, "%s", c->instance);
                pr->seen_epoch = pr->epoch;
                pr->lease_age_ms = now - pr->renewed_ms;
            } else if (have) {
                snprintf(pr->owner, sizeof pr->owner, "%s", live ? li.instance : "");
                pr->seen_epoch = live ? li.epoch : 0;
                pr->lease_age_ms = live ? now - li.renewed_ms : -1;
            }
            pthread_mutex_unlock(&c->mu);
        }
    }
}

int vcl_leases_renew(vigil_cluster *c, int64_t now) {
    pthread_mutex_lock(&c->mu);
    int ng = c->ngroups;
    pthread_mutex_unlock(&c->mu);
    int away = 0;
    /* A renewal that NATS does not answer costs up to io_ms, and the other
     * members take a pair once its lease is older than lease_ms: so once
     * NATS is away the other renewals are not tried this heartbeat, and a
     * pair is given up while its last good renewal is younger than
     * lease − heartbeat − io_ms (the next heartbeat may come that late). */
    int64_t limit = c->cfg.lease_ms - c->cfg.heartbeat_ms - c->io_ms;
    for (int g = 0; g < ng; g++) {
        for (int p = 0; p < c->cfg.partitions; p++) {
            vcl_pair *pr = &c->pairs[g][p];
            if (!pr->held) continue;
            if (!away && renew(c, g, p, now) < 0) away = 1;
            /* the clock read after the attempt, which may have taken io_ms */
            if (pr->held && vigil_now_ms() - pr->renewed_ms >= limit)
                lose(c, g, p, "no lease renewal got through in time");
        }
    }
    return away ? -1 : 0;
}

void vcl_leases_tick(vigil_cluster *c, int64_t now) {
    pthread_mutex_lock(&c->mu);
    int ng = c->ngroups;
    pthread_mutex_unlock(&c->mu);
    int P = c->cfg.partitions;
    vcl_snapshot snap;
    vigil_status st = vcl_kv_snapshot(c, c->leases_kv, ng * P + 1024, &snap);
    int have = st == VIGIL_OK;
    if (!have)
        vigil_log(VIGIL_LOG_DEBUG, "cluster", "cluster: %s could not read the leases (%s): no pair taken this heartbeat",
                  c->instance, vigil_status_str(st));

    for (int g = 0; g < ng; g++) {
        for (int p = 0; p < P; p++) {
            int pick = vigil_rendezvous_pick((const char *const *)c->live, c->nlive, c->gtokens[g], p);
            int mine = pick >= 0 && strcmp(c->live[pick], c->instance) == 0;
            vcl_pair *pr = &c->pairs[g][p];
            if (pr->held && !mine) {
                char why[VCL_NAME + 32];
                snprintf(why, sizeof why, "released to %s", pick >= 0 ? c->live[pick] : "nobody");
                lose(c, g, p, why);
                drop_lease(c, g, p, now);
            } else if (!pr->held && mine && have) {
                char key[VIGIL_PAIR_NAME_MAX];
                lease_key(c, g, p, key, sizeof key);
                try_take(c, g, p, vcl_snapshot_find(&snap, key), now);
            }
        }
    }
    update_view(c, ng, &snap, have, now);
    if (have) vcl_snapshot_free(&snap);
}

void vcl_leases_release_all(vigil_cluster *c) {
    pthread_mutex_lock(&c->mu);
    int ng = c->ngroups;
    pthread_mutex_unlock(&c->mu);
    int64_t now = vigil_now_ms();
    int away = 0;   /* once NATS does not answer, the other leases are left to expire: a stop stays short */
    for (int g = 0; g < ng; g++) {
        for (int p = 0; p < c->cfg.partitions; p++) {
            if (!c->pairs[g][p].held) continue;
            lose(c, g, p, "stopping");
            if (!away && drop_lease(c, g, p, now) < 0) away = 1;
        }
    }
    c->nats_away = away;
}

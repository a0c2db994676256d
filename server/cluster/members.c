/* members.c — the members bucket: this instance's entry, put every
 * heartbeat, and the list of live members the rendezvous hashing runs over
 * (cluster.h says what "live" means). When the bucket cannot be read, the
 * previous list stays: a short NATS outage must not make every member think
 * it is alone and grab everything (the leases would refuse it anyway, but
 * quietly keeping the list avoids the churn). */
#include <stdlib.h>
#include <string.h>
#include "cluster_int.h"
#include "server/common/log.h"

#define MEMBERS_MAX_ENTRIES 4096   /* a bucket bigger than that is not ours to read whole */

static char *member_value(vigil_cluster *c, int64_t now) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "instance", c->instance);
    if (c->http_url) cJSON_AddStringToObject(o, "http", c->http_url);
    else cJSON_AddNullToObject(o, "http");
    cJSON_AddNumberToObject(o, "started_ms", (double)c->started_ms);
    cJSON_AddNumberToObject(o, "renewed_ms", (double)now);
    pthread_mutex_lock(&c->mu);
    cJSON *v = c->versions ? cJSON_Parse(c->versions) : NULL;
    pthread_mutex_unlock(&c->mu);
    cJSON_AddItemToObject(o, "versions", v ? v : cJSON_CreateObject());
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void free_names(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void free_view(vcl_member *m, int n) {
    for (int i = 0; i < n; i++) {
        free(m[i].http);
        free(m[i].versions);
    }
    free(m);
}

/* The entry's age: now − the older of the time in the value and the KV
 * entry's Created time (a writer's clock running ahead cannot keep an
 * entry young). */
static int64_t entry_age(const vcl_kv_entry *e, const cJSON *renewed, int64_t now) {
    int64_t at = e->created_ms;
    if (cJSON_IsNumber(renewed) && (int64_t)renewed->valuedouble < at) at = (int64_t)renewed->valuedouble;
    return now - at;
}

int vcl_members_tick(vigil_cluster *c, int64_t now) {
    char *value = member_value(c, now);
    if (value) {
        natsStatus s = kvStore_PutString(NULL, c->members_kv, c->member_key, value);
        free(value);
        if (s != NATS_OK) {
            vigil_log(VIGIL_LOG_DEBUG, "cluster", "cluster: member entry not put: %s", vcl_nats_why(s));
            if (s != NATS_ERR) return -1;
        }
    }
    vcl_snapshot snap;
    vigil_status st = vcl_kv_snapshot(c, c->members_kv, MEMBERS_MAX_ENTRIES, &snap);
    if (st != VIGIL_OK) {
        if (c->nlive == 0) {   /* never read yet: alone until we can read */
            c->live = calloc(1, sizeof *c->live);
            if (c->live && (c->live[0] = strdup(c->instance))) c->nlive = 1;
        }
        return st == VIGIL_EUNAVAILABLE || st == VIGIL_ETIMEOUT ? -1 : 0;
    }
    char **live = calloc((size_t)snap.n + 1, sizeof *live);
    vcl_member *view = calloc((size_t)snap.n + 1, sizeof *view);
    if (!live || !view) {
        free(live);
        free(view);
        vcl_snapshot_free(&snap);
        return 0;
    }
    int nlive = 0, nview = 0, self = 0, over = 0;
    for (int i = 0; i < snap.n; i++) {
        const vcl_kv_entry *e = &snap.e[i];
        if (e->deleted) continue;
        cJSON *o = cJSON_Parse(e->value);
        const cJSON *inst = cJSON_GetObjectItemCaseSensitive(o, "instance");
        if (!cJSON_IsString(inst) || !*inst->valuestring || strlen(inst->valuestring) >= VCL_NAME) {
            cJSON_Delete(o);
            continue;
        }
        vcl_member *m = &view[nview++];
        snprintf(m->instance, sizeof m->instance, "%s", inst->valuestring);
        const cJSON *http = cJSON_GetObjectItemCaseSensitive(o, "http");
        if (cJSON_IsString(http)) m->http = strdup(http->valuestring);
        const cJSON *versions = cJSON_GetObjectItemCaseSensitive(o, "versions");
        if (cJSON_IsObject(versions)) m->versions = cJSON_PrintUnformatted(versions);
        m->age_ms = entry_age(e, cJSON_GetObjectItemCaseSensitive(o, "renewed_ms"), now);
        int is_self = strcmp(m->instance, c->instance) == 0;
        m->live = is_self || m->age_ms <= c->live_ms;
        if (m->live) {
            if (nlive >= VIGIL_CLUSTER_MAX_MEMBERS && !is_self) over = 1;
            else if ((live[nlive] = strdup(m->instance))) nlive++;
        }
        self |= is_self;
        cJSON_Delete(o);
    }
    if (!self && (live[nlive] = strdup(c->instance))) nlive++;   /* our put failed: still one of us */
    if (over) vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: more than %d live members; the others are ignored",
                        VIGIL_CLUSTER_MAX_MEMBERS);
    vcl_snapshot_free(&snap);

    free_names(c->live, c->nlive);
    c->live = live;
    c->nlive = nlive;
    pthread_mutex_lock(&c->mu);
    vcl_member *old = c->members;
    int nold = c->nmembers;
    c->members = view;
    c->nmembers = nview;
    c->stats.members = (unsigned long long)nlive;
    pthread_mutex_unlock(&c->mu);
    free_view(old, nold);
    return 0;
}

void vcl_members_leave(vigil_cluster *c) {
    natsStatus s = kvStore_Delete(c->members_kv, c->member_key);
    if (s != NATS_OK)
        vigil_log(VIGIL_LOG_WARN, "cluster", "cluster: %s could not leave the members bucket (its entry expires): %s",
                  c->instance, vcl_nats_why(s));
}

void vcl_members_free(vigil_cluster *c) {
    free_names(c->live, c->nlive);
    c->live = NULL;
    c->nlive = 0;
    free_view(c->members, c->nmembers);
    c->members = NULL;
    c->nmembers = 0;
}

/* follow.c — other instances' alerts into this hub (follow.h), and the
 * hub's index of alert ids that keeps one alert per id in cluster mode. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "follow.h"
#include "hub_int.h"
#include "sinks.h"   /* VIGIL_INSTANCE_HEADER */
#include "vigil/event.h"
#include "server/common/log.h"

struct vhub_follow {
    vigil_hub *hub;
    char instance[256];
    natsSubscription *sub[2];
    atomic_ullong received, kept, own, bad;
};

/* ---- the id index (under hub->mu) ------------------------------------------ */

static uint64_t id_hash(const char *id) {
    uint64_t h = 1469598103934665603ull;   /* FNV-1a over the 32 digits */
    for (int i = 0; i < 32; i++) h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
    return h;
}

/* The slot of seq when the ring still holds it. */
static const struct slot *live_slot(const vigil_hub *hub, uint64_t seq) {
    if (!seq || hub->count == 0 || seq > hub->last_seq || seq < oldest_seq(hub)) return NULL;
    const struct slot *s = slot_of(hub, seq);
    return s->seq == seq ? s : NULL;
}

bool vhub_idx_has(vigil_hub *hub, const char *id) {
    size_t mask = hub->idx_cap - 1;
    for (size_t i = id_hash(id) & mask;; i = (i + 1) & mask) {
        uint64_t seq = hub->idx[i];
        if (!seq) return false;
        const struct slot *s = live_slot(hub, seq);
        if (s && memcmp(s->id, id, 33) == 0) return true;
    }
}

static void put(vigil_hub *hub, uint64_t seq, const char *id) {
    size_t mask = hub->idx_cap - 1, i = id_hash(id) & mask;
    while (hub->idx[i]) i = (i + 1) & mask;
    hub->idx[i] = seq;
}

/* The index of what the ring holds now (the stale entries go). */
static void rebuild(vigil_hub *hub) {
    memset(hub->idx, 0, hub->idx_cap * sizeof *hub->idx);
    hub->idx_adds = 0;
    for (uint64_t q = hub->count ? oldest_seq(hub) : 1; hub->count && q <= hub->last_seq; q++) {
        const struct slot *s = live_slot(hub, q);
        if (s && s->id[0]) put(hub, q, s->id);
    }
}

/* At most cap live and cap stale entries in 4 × cap places: the probe
 * always ends at an empty one. Every cap additions the stale ones go. */
void vhub_idx_add(vigil_hub *hub, uint64_t seq) {
    if (++hub->idx_adds >= hub->cap) {
        rebuild(hub);   /* seq is in the ring: indexed with the rest */
        return;
    }
    const struct slot *s = live_slot(hub, seq);
    if (s && s->id[0]) put(hub, seq, s->id);
}

/* ---- NATS ----------------------------------------------------------------- */

static void on_alert(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *ud) {
    (void)nc;
    (void)sub;
    struct vhub_follow *f = ud;
    const char *from = NULL;
    if (natsMsgHeader_Get(msg, VIGIL_INSTANCE_HEADER, &from) != NATS_OK || !from || strcmp(from, f->instance) == 0) {
        atomic_fetch_add(&f->own, 1);
        natsMsg_Destroy(msg);
        return;
    }
    atomic_fetch_add(&f->received, 1);
    const char *data = natsMsg_GetData(msg);
    int len = natsMsg_GetDataLength(msg);
    cJSON *o = data && len > 0 ? cJSON_ParseWithLength(data, (size_t)len) : NULL;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id"), *rule = cJSON_GetObjectItemCaseSensitive(o, "rule"),
                *sev = cJSON_GetObjectItemCaseSensitive(o, "severity"), *key = cJSON_GetObjectItemCaseSensitive(o, "key"),
                *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
    int64_t ms = 0;
    if (!cJSON_IsString(id) || strlen(id->valuestring) != 32 || !cJSON_IsString(rule) || !cJSON_IsString(sev) ||
        !cJSON_IsString(key) || !cJSON_IsString(ts) ||
        vigil_time_parse_rfc3339(ts->valuestring, strlen(ts->valuestring), &ms) != VIGIL_OK) {
        atomic_fetch_add(&f->bad, 1);
    } else if (vigil_hub_publish(f->hub, data, (size_t)len, rule->valuestring, sev->valuestring, key->valuestring, ms) ==
               VIGIL_OK) {
        atomic_fetch_add(&f->kept, 1);
    }
    cJSON_Delete(o);
    natsMsg_Destroy(msg);
}

vigil_status vigil_hub_keep_unique(vigil_hub *hub) {
    if (!hub) return VIGIL_EINVAL;
    size_t icap = 1;
    while (icap < 4 * hub->cap) icap <<= 1;
    uint64_t *idx = calloc(icap, sizeof *idx);
    if (!idx) return VIGIL_ENOMEM;
    pthread_mutex_lock(&hub->mu);
    if (hub->idx) {
        free(idx);
    } else {
        hub->idx = idx;
        hub->idx_cap = icap;
        rebuild(hub);   /* what the ring holds already counts */
    }
    pthread_mutex_unlock(&hub->mu);
    return VIGIL_OK;
}

vigil_status vigil_hub_follow(vigil_hub *hub, natsConnection *nc, const char *instance, vigil_error *err) {
    if (!hub || !nc || !instance || !*instance || strlen(instance) > 255)
        return vigil_error_set(err, VIGIL_EINVAL, "hub follow: an instance name (1 to 255 bytes) and NATS are needed");
    struct vhub_follow *f = calloc(1, sizeof *f);
    if (!f || vigil_hub_keep_unique(hub) != VIGIL_OK) {
        free(f);
        return vigil_error_set(err, VIGIL_ENOMEM, "hub follow: out of memory");
    }
    f->hub = hub;
    snprintf(f->instance, sizeof f->instance, "%s", instance);
    pthread_mutex_lock(&hub->mu);
    if (hub->follow) {
        pthread_mutex_unlock(&hub->mu);
        free(f);
        return vigil_error_set(err, VIGIL_EINVAL, "hub follow: the hub follows the cluster already");
    }
    hub->follow = f;
    pthread_mutex_unlock(&hub->mu);
    static const char *const subj[2] = {"vigil.alerts.>", "vigil.shadow.>"};
    natsStatus ns = NATS_OK;
    for (int i = 0; i < 2 && ns == NATS_OK; i++) {
        ns = natsConnection_Subscribe(&f->sub[i], nc, subj[i], on_alert, f);
        if (ns == NATS_OK)
            ns = natsSubscription_SetPendingLimits(f->sub[i], VIGIL_FOLLOW_PENDING_MSGS, VIGIL_FOLLOW_PENDING_BYTES);
    }
    if (ns == NATS_OK) ns = natsConnection_Flush(nc);
    if (ns != NATS_OK) {
        vigil_hub_unfollow(hub);
        return vigil_error_set(err, VIGIL_EUNAVAILABLE, "hub follow: cannot subscribe to the cluster's alerts: %s",
                               natsStatus_GetText(ns));
    }
    return VIGIL_OK;
}

void vigil_hub_unfollow(vigil_hub *hub) {
    if (!hub) return;
    pthread_mutex_lock(&hub->mu);
    struct vhub_follow *f = hub->follow;
    pthread_mutex_unlock(&hub->mu);
    for (int i = 0; f && i < 2; i++)
        if (f->sub[i]) natsSubscription_Unsubscribe(f->sub[i]);
}

void vhub_follow_free(vigil_hub *hub) {
    struct vhub_follow *f = hub->follow;
    if (f)
        for (int i = 0; i < 2; i++) natsSubscription_Destroy(f->sub[i]);
    free(f);
    free(hub->idx);
    hub->follow = NULL;
    hub->idx = NULL;
}

void vigil_hub_follow_stats(vigil_hub *hub, vigil_follow_stats *out) {
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&hub->mu);
    struct vhub_follow *f = hub->follow;
    out->dups = hub->dups;
    if (f) {
        out->received = atomic_load(&f->received);
        out->kept = atomic_load(&f->kept);
        out->own = atomic_load(&f->own);
        out->bad = atomic_load(&f->bad);
        for (int i = 0; i < 2; i++) {
            int64_t d = 0;
            if (f->sub[i] && natsSubscription_GetDropped(f->sub[i], &d) == NATS_OK && d > 0)
                out->dropped += (unsigned long long)d;
        }
    }
    pthread_mutex_unlock(&hub->mu);
}

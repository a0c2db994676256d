/* sinks.c — a committed batch's alerts to the hub and NATS, late events to
 * NATS, and the per-rule alert counters (sinks.h). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sinks.h"
#include "vigil/clock.h"
#include "server/common/log.h"

struct vigil_sinks {
    vigil_hub *hub;
    natsConnection *_Atomic nc;
    char instance[256];   /* cluster mode: the Vigil-Instance header ("": none) */
    /* per (rule, version, mode): rules come and go with hot reloads */
    pthread_mutex_t rule_mu;
    struct rcount { char rule[64]; int version; vigil_mode mode; unsigned long long n; } *counts;
    int ncounts, capcounts;
    atomic_ullong alerts, lost, nats_published, late_published;
    atomic_llong last_lost_log_ms;
};

vigil_status vigil_sinks_create(vigil_hub *hub, vigil_sinks **out) {
    vigil_sinks *s = calloc(1, sizeof *s);
    if (!s) return VIGIL_ENOMEM;
    s->hub = hub;
    pthread_mutex_init(&s->rule_mu, NULL);
    *out = s;
    return VIGIL_OK;
}

void vigil_sinks_set_nats(vigil_sinks *s, natsConnection *nc) { atomic_store(&s->nc, nc); }

void vigil_sinks_set_instance(vigil_sinks *s, const char *name) {
    snprintf(s->instance, sizeof s->instance, "%s", name ? name : "");
}

/* One alert to NATS: with the instance header in cluster mode. */
static natsStatus publish_alert(vigil_sinks *s, natsConnection *nc, const char *subj, const vigil_alert_record *a) {
    if (!s->instance[0]) return natsConnection_Publish(nc, subj, a->json, (int)a->len);
    natsMsg *m = NULL;
    natsStatus ns = natsMsg_Create(&m, subj, NULL, a->json, (int)a->len);
    if (ns == NATS_OK) ns = natsMsgHeader_Set(m, VIGIL_INSTANCE_HEADER, s->instance);
    if (ns == NATS_OK) ns = natsConnection_PublishMsg(nc, m);
    natsMsg_Destroy(m);
    return ns;
}

void vigil_sinks_destroy(vigil_sinks *s) {
    if (!s) return;
    free(s->counts);
    pthread_mutex_destroy(&s->rule_mu);
    free(s);
}

void vigil_sinks_alert(vigil_sinks *s, const vigil_alert_record *a) {
    vigil_hub_publish(s->hub, a->json, a->len, a->rule, a->severity, a->key, a->ts);
    natsConnection *nc = atomic_load(&s->nc);
    if (nc) {
        char subj[128];
        snprintf(subj, sizeof subj, "vigil.%s.%s", a->mode == VIGIL_MODE_SHADOW ? "shadow" : "alerts", a->rule);
        if (publish_alert(s, nc, subj, a) == NATS_OK)
            atomic_fetch_add(&s->nats_published, 1);
    }
    pthread_mutex_lock(&s->rule_mu);   /* per alert, not per event: a lock is cheap enough */
    int i = 0;
    while (i < s->ncounts && !(s->counts[i].version == a->rule_version && s->counts[i].mode == a->mode &&
                               strcmp(s->counts[i].rule, a->rule) == 0))
        i++;
    if (i == s->ncounts && s->ncounts < VIGIL_SINKS_MAX_RULES) {
        if (s->ncounts == s->capcounts) {
            int cap = s->capcounts ? s->capcounts * 2 : 32;
            struct rcount *grown = realloc(s->counts, (size_t)cap * sizeof *grown);
            if (grown) s->counts = grown, s->capcounts = cap;
        }
        if (s->ncounts < s->capcounts) {
            struct rcount *c = &s->counts[s->ncounts++];
            snprintf(c->rule, sizeof c->rule, "%s", a->rule);
            c->version = a->rule_version;
            c->mode = a->mode;
            c->n = 0;
        }
    }
    if (i < s->ncounts) s->counts[i].n++;
    pthread_mutex_unlock(&s->rule_mu);
    atomic_fetch_add(&s->alerts, 1);
}

void vigil_sinks_late(vigil_sinks *s, const vigil_event *ev, const char *key_field) {
    natsConnection *nc = atomic_load(&s->nc);
    if (!nc) return;
    char subj[160];
    size_t jl;
    const char *js = vigil_event_json(ev, &jl);
    int n = snprintf(subj, sizeof subj, "vigil.late.%s", key_field);
    /* the key field is a rule's text: a space would end the subject in NATS's
     * "PUB <subject> <size>" line (and a wildcard is no subject to publish to) */
    for (int i = (int)strlen("vigil.late."); i < n && i < (int)sizeof subj - 1; i++)
        if ((unsigned char)subj[i] <= ' ' || subj[i] == '*' || subj[i] == '>' || subj[i] == 0x7f) subj[i] = '_';
    if (js && natsConnection_Publish(nc, subj, js, (int)jl) == NATS_OK) atomic_fetch_add(&s->late_published, 1);
}

void vigil_sinks_lost(vigil_sinks *s, const char *rule, const char *why) {
    unsigned long long n = atomic_fetch_add(&s->lost, 1) + 1;
    long long now = vigil_now_ms(), last = atomic_load(&s->last_lost_log_ms);   /* the atomic's own type */
    if (now - last >= 1000 && atomic_compare_exchange_strong(&s->last_lost_log_ms, &last, now))
        vigil_log(VIGIL_LOG_ERROR, "alerts", "an alert of rule %s was lost: %s (%llu lost so far; vigil_alerts_lost_total)",
                rule ? rule : "?", why, n);
}

void vigil_sinks_get_stats(vigil_sinks *s, vigil_sinks_stats *out) {
    out->alerts = atomic_load(&s->alerts);
    out->lost = atomic_load(&s->lost);
    out->nats_published = atomic_load(&s->nats_published);
    out->late_published = atomic_load(&s->late_published);
}

unsigned long long vigil_sinks_rule_alerts(vigil_sinks *s, const char *rule, int version) {
    unsigned long long n = 0;
    pthread_mutex_lock(&s->rule_mu);
    for (int i = 0; i < s->ncounts; i++)
        if ((version <= 0 || s->counts[i].version == version) && strcmp(s->counts[i].rule, rule) == 0)
            n += s->counts[i].n;
    pthread_mutex_unlock(&s->rule_mu);
    return n;
}

void vigil_sinks_foreach_rule(vigil_sinks *s, void (*fn)(void *ud, const char *rule, int version, vigil_mode mode,
                                                         unsigned long long n), void *ud) {
    pthread_mutex_lock(&s->rule_mu);
    for (int i = 0; i < s->ncounts; i++) fn(ud, s->counts[i].rule, s->counts[i].version, s->counts[i].mode, s->counts[i].n);
    pthread_mutex_unlock(&s->rule_mu);
}

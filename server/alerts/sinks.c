/* sinks.c — a committed batch's alerts to the hub and NATS, late events to
 * NATS, and the per-rule alert counters (sinks.h). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "sinks.h"
#include "vigil/clock.h"

struct vigil_sinks {
    vigil_hub *hub;
    natsConnection *_Atomic nc;
    vigil_ruleset *rs;
    atomic_ullong *rule_alerts;
    int nrules;
    atomic_ullong alerts, lost, nats_published, late_published;
    atomic_llong last_lost_log_ms;
};

vigil_status vigil_sinks_create(vigil_hub *hub, const vigil_ruleset *rs, vigil_sinks **out) {
    vigil_sinks *s = calloc(1, sizeof *s);
    if (!s) return VIGIL_ENOMEM;
    s->hub = hub;
    s->nrules = vigil_ruleset_rule_count(rs);
    s->rule_alerts = calloc((size_t)(s->nrules ? s->nrules : 1), sizeof *s->rule_alerts);
    if (!s->rule_alerts) {
        free(s);
        return VIGIL_ENOMEM;
    }
    vigil_ruleset_retain((vigil_ruleset *)rs);
    s->rs = (vigil_ruleset *)rs;
    *out = s;
    return VIGIL_OK;
}

void vigil_sinks_set_nats(vigil_sinks *s, natsConnection *nc) { atomic_store(&s->nc, nc); }

void vigil_sinks_destroy(vigil_sinks *s) {
    if (!s) return;
    free(s->rule_alerts);
    if (s->rs) vigil_ruleset_release(s->rs);
    free(s);
}

void vigil_sinks_alert(vigil_sinks *s, const vigil_alert_record *a) {
    vigil_hub_publish(s->hub, a->json, a->len, a->rule, a->severity, a->key, a->ts);
    natsConnection *nc = atomic_load(&s->nc);
    if (nc) {
        char subj[128];
        snprintf(subj, sizeof subj, "vigil.%s.%s", a->mode == VIGIL_MODE_SHADOW ? "shadow" : "alerts", a->rule);
        if (natsConnection_Publish(nc, subj, a->json, (int)a->len) == NATS_OK)
            atomic_fetch_add(&s->nats_published, 1);
    }
    int i = vigil_ruleset_rule_index(s->rs, a->rule);
    if (i >= 0 && i < s->nrules) atomic_fetch_add(&s->rule_alerts[i], 1);
    atomic_fetch_add(&s->alerts, 1);
}

void vigil_sinks_late(vigil_sinks *s, const vigil_event *ev, const char *key_field) {
    natsConnection *nc = atomic_load(&s->nc);
    if (!nc) return;
    char subj[160];
    size_t jl;
    const char *js = vigil_event_json(ev, &jl);
    snprintf(subj, sizeof subj, "vigil.late.%s", key_field);
    if (js && natsConnection_Publish(nc, subj, js, (int)jl) == NATS_OK) atomic_fetch_add(&s->late_published, 1);
}

void vigil_sinks_lost(vigil_sinks *s, const char *rule, const char *why) {
    unsigned long long n = atomic_fetch_add(&s->lost, 1) + 1;
    int64_t now = vigil_now_ms(), last = atomic_load(&s->last_lost_log_ms);
    if (now - last >= 1000 && atomic_compare_exchange_strong(&s->last_lost_log_ms, &last, now))
        fprintf(stderr, "vigil: an alert of rule %s was lost: %s (%llu lost so far; vigil_alerts_lost_total)\n",
                rule ? rule : "?", why, n);
}

void vigil_sinks_get_stats(vigil_sinks *s, vigil_sinks_stats *out) {
    out->alerts = atomic_load(&s->alerts);
    out->lost = atomic_load(&s->lost);
    out->nats_published = atomic_load(&s->nats_published);
    out->late_published = atomic_load(&s->late_published);
}

unsigned long long vigil_sinks_rule_alerts(vigil_sinks *s, int rule) {
    return rule >= 0 && rule < s->nrules ? atomic_load(&s->rule_alerts[rule]) : 0;
}

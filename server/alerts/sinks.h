/* sinks.h — where a committed batch's alerts and late events go.
 *
 * Sink stage of the flow (DESIGN.md §2): after a worker committed a batch,
 * it hands each alert record (record.h) to vigil_sinks_alert, which
 * publishes it to the hub (SSE, GET /v1/alerts) and to NATS
 * (vigil.alerts.<rule>, shadow ones to vigil.shadow.<rule>: the alert JSON,
 * not the webhook envelope), and counts it per rule. Webhooks are not here:
 * they read the outbox the commit wrote (outbox.h, dispatch.h). Late events
 * (older than the watermark minus the allowed lateness, never matched) go
 * to vigil.late.<key field> as they came, also after the commit, so nothing
 * leaves before the state that decided it is stored.
 *
 * Threads: every call is thread-safe (the workers call concurrently);
 * nothing blocks on the network (nats.c buffers publishes). */
#ifndef VIGIL_SINKS_H
#define VIGIL_SINKS_H

#include <nats/nats.h>
#include "record.h"
#include "hub.h"
#include "vigil/event.h"

typedef struct vigil_sinks vigil_sinks;

#define VIGIL_INSTANCE_HEADER "Vigil-Instance"   /* on an alert's NATS message (cluster mode) */

/* hub: borrowed, required. NATS is set later with vigil_sinks_set_nats
 * (none until then). */
vigil_status vigil_sinks_create(vigil_hub *hub, vigil_sinks **out);
void vigil_sinks_set_nats(vigil_sinks *s, natsConnection *nc);
void vigil_sinks_destroy(vigil_sinks *s);   /* accepts NULL */
/* Cluster mode (issue 14): every alert published to NATS carries the
 * header `Vigil-Instance: <name>`, so that the instances' hubs (follow.h)
 * skip their own. Set once before the workers run; NULL: no header. */
void vigil_sinks_set_instance(vigil_sinks *s, const char *name);

/* One committed alert to the hub and NATS; counted per rule and mode. */
void vigil_sinks_alert(vigil_sinks *s, const vigil_alert_record *a);
/* One late event (its raw JSON) to vigil.late.<key_field>. */
void vigil_sinks_late(vigil_sinks *s, const vigil_event *ev, const char *key_field);
/* An alert the engine produced but that could not be kept (out of memory):
 * counted and logged (at most once a second), never silent. */
void vigil_sinks_lost(vigil_sinks *s, const char *rule, const char *why);

typedef struct vigil_sinks_stats {
    unsigned long long alerts;           /* alerts handed to the sinks */
    unsigned long long lost;             /* alerts lost before the sinks (out of memory) */
    unsigned long long nats_published;   /* alerts published to NATS */
    unsigned long long late_published;   /* late events published to NATS */
} vigil_sinks_stats;
void vigil_sinks_get_stats(vigil_sinks *s, vigil_sinks_stats *out);
/* Alerts of rule `rule` at `version` (<= 0: every version) since start.
 * Counters are kept per (rule, version, mode), at most
 * VIGIL_SINKS_MAX_RULES of them (more are counted in `alerts` only). */
#define VIGIL_SINKS_MAX_RULES 4096
unsigned long long vigil_sinks_rule_alerts(vigil_sinks *s, const char *rule, int version);
/* Every counter, under the counters' lock (fn must not call back in). */
void vigil_sinks_foreach_rule(vigil_sinks *s, void (*fn)(void *ud, const char *rule, int version, vigil_mode mode,
                                                         unsigned long long n), void *ud);

#endif

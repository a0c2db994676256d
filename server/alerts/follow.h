/* follow.h — the whole cluster's alerts in this instance's hub (issue 14):
 * why it exists is that GET /v1/alerts, the SSE stream, the timeline and
 * the per-rule activity of any instance must show every instance's alerts,
 * while each instance's workers produce only the alerts of the pairs it
 * owns.
 *
 * The hub subscribes to vigil.alerts.> and vigil.shadow.> (what every
 * instance's sinks publish, sinks.h) and keeps each alert whose message
 * carries a `Vigil-Instance` header naming another instance (messages
 * without it, or with its own name, are skipped: its own alerts reach the
 * hub from its sinks). From vigil_hub_follow on, the hub keeps one alert
 * per alert id, whoever published it (a pair that moves between instances
 * may produce the same alert again: the first one stays). The ring stays
 * bounded as before (the newest `cap` alerts of the cluster); NATS buffers
 * at most VIGIL_FOLLOW_PENDING_MSGS messages (VIGIL_FOLLOW_PENDING_BYTES)
 * for the hub; beyond that it drops them (a slow consumer: counted).
 *
 * Threads: nats.c calls the hub from its own thread; the hub's mutex
 * serialises. Call vigil_hub_unfollow before the NATS connection closes and
 * before vigil_hub_destroy. */
#ifndef VIGIL_FOLLOW_H
#define VIGIL_FOLLOW_H

#include <nats/nats.h>
#include "hub.h"

#define VIGIL_FOLLOW_PENDING_MSGS 10000
#define VIGIL_FOLLOW_PENDING_BYTES (64 << 20)

/* Subscribe (nc borrowed; instance: this instance's name, copied). Once
 * per hub. Errors: VIGIL_EINVAL (no name, twice), VIGIL_ENOMEM,
 * VIGIL_EUNAVAILABLE (NATS refused the subscriptions; err says why). */
vigil_status vigil_hub_follow(vigil_hub *hub, natsConnection *nc, const char *instance, vigil_error *err);
/* From now on keep one alert per alert id (what vigil_hub_follow does
 * first; for tests without NATS): vigil_hub_publish of an id the ring
 * holds answers VIGIL_ECONFLICT and keeps nothing. The index costs 8 bytes
 * × 4 × the ring's cap (rounded up to a power of two). Errors: VIGIL_EINVAL,
 * VIGIL_ENOMEM. */
vigil_status vigil_hub_keep_unique(vigil_hub *hub);
/* Stop taking the others' alerts (what the ring holds stays). Accepts a
 * hub that does not follow. */
void vigil_hub_unfollow(vigil_hub *hub);

typedef struct vigil_follow_stats {
    unsigned long long received;   /* alert messages from other instances */
    unsigned long long kept;       /* of those, kept in the ring */
    unsigned long long own;        /* messages skipped: this instance's, or no header */
    unsigned long long bad;        /* not an alert object (skipped) */
    unsigned long long dups;       /* alerts not kept (local or remote): their id was in the ring */
    unsigned long long dropped;    /* messages NATS dropped (the hub fell behind) */
} vigil_follow_stats;
void vigil_hub_follow_stats(vigil_hub *hub, vigil_follow_stats *out);

#endif

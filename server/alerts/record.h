/* record.h — the ONE alert record every sink of the server handles.
 *
 * The engine hands out a vigil_alert that lives only during its callback
 * (engine.h). The route wing turns it into this record at once (its JSON,
 * DESIGN.md §3, serialised once), and every sink takes the same record: the
 * hub (SSE, GET /v1/alerts), NATS (vigil.alerts.<rule> / vigil.shadow.<rule>),
 * a ?wait request, and the outbox that feeds webhooks. An outbox backend's
 * read() gives the same record back with `ref` and `appended_ms` set. So
 * there are two alert types in vigil: the engine's and this one.
 *
 * Strings are NUL-terminated copies. rule, severity and key longer than
 * their field are cut to fit: they serve filtering, metrics labels and
 * per-key ordering only; json is always whole. The id is never cut: it is
 * the webhook-id receivers deduplicate by, so two alerts whose ids share
 * their first 32 bytes must not become one. */
#ifndef VIGIL_ALERT_RECORD_H
#define VIGIL_ALERT_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/engine.h"

#define VIGIL_ALERT_REF_MAX 48
/* Longest alert id a record holds (bytes): the engine's are 32 hex digits. */
#define VIGIL_ALERT_ID_MAX 32

typedef struct vigil_alert_record {
    char id[VIGIL_ALERT_ID_MAX + 1]; /* 32 hex digits (DESIGN.md §3); never cut */
    char rule[64];
    int rule_version;                /* 0 when unknown (a record read back from an outbox) */
    char event[128];                 /* the completing event's id ("" when unknown; cut to fit) */
    char severity[16];               /* "info" | "low" | "medium" | "high" | "critical" */
    char key[256];
    vigil_mode mode;                 /* shadow alerts never reach webhooks */
    int64_t ts;                      /* the alert's `ts`, ms since the epoch (0: unknown) */
    char *json;                      /* the alert object, len bytes + NUL; malloc'd, owned */
    size_t len;
    /* set by an outbox backend's read(), "" / 0 before */
    char ref[VIGIL_ALERT_REF_MAX];   /* position in the outbox (opaque, increasing) */
    long long appended_ms;           /* wall clock when appended: the envelope's "timestamp" */
} vigil_alert_record;

/* Fill *out from an engine alert (during its callback), serialising its
 * JSON with detected_ms as `detected_at`. Errors: VIGIL_ENOMEM (out is then
 * zeroed, nothing to free). */
vigil_status vigil_alert_record_from_alert(const vigil_alert *a, int64_t detected_ms, vigil_alert_record *out);

/* Set the string fields from their texts (rule, severity, key cut to fit)
 * and take over json (malloc'd, len bytes; the record owns it from now on).
 * An id that is NULL or longer than VIGIL_ALERT_ID_MAX is not cut: r->id is
 * left "", which every outbox's append refuses (VIGIL_EINVAL), and the call
 * says VIGIL_EINVAL; the other fields are set all the same. */
vigil_status vigil_alert_record_set(vigil_alert_record *r, const char *id, const char *rule, const char *severity,
                            const char *key, vigil_mode mode, char *json, size_t len);

/* Cluster mode (issue 14): every alert made from now on carries
 * "instance": name as its last member, so an alert says which instance
 * produced it (with "rule_version", which version). Set once at start,
 * before the workers run (NULL or "": none, the default). It is no part of
 * the alert id. Errors: VIGIL_ETOOBIG (over 255 bytes). */
vigil_status vigil_alert_record_set_instance(const char *name);

/* Free r->json (the record itself is the caller's). Accepts NULL. */
void vigil_alert_record_free(vigil_alert_record *r);

#endif

/* dispatch.h — the outbox dispatcher: delivers alerts from the outbox to webhook endpoints.
 *
 * Last stage of the flow (DESIGN.md §2, §8; issue 4 "nothing lost, nothing
 * twice"). Workers append alerts to the durable outbox (outbox.h) in the
 * commit that produced them; this module reads the outbox once per endpoint
 * and POSTs each alert, signed per Standard Webhooks v1, and acks it in the
 * outbox only when it is finished there (delivered, filtered out, or written
 * to the dead-letter list). A crash at any point re-reads what was not acked:
 * delivery is at-least-once, and a re-sent alert carries the same webhook-id
 * and the same body, so receivers deduplicate by webhook-id.
 *
 * This is the one webhook sender: with nothing durable (no Redis, no data
 * dir) it reads the in-memory outbox (outbox_mem.c), so the policy below
 * holds for every outbox.
 *
 * One thread per endpoint, each with its own libcurl multi handle and its
 * own `concurrency` slots: an endpoint that never answers (per-attempt
 * timeout) or is down for a day holds only its own thread and backlog.
 *
 * Wire format (Standard Webhooks v1, https://www.standardwebhooks.com):
 *   POST <url>, Content-Type: application/json
 *   body               {"type":"alert.created","timestamp":"<T>","data":<alert JSON verbatim>}
 *                      T = when the alert was appended to the outbox (RFC 3339,
 *                      ms, UTC; entry.appended_ms), so every attempt, before and
 *                      after a restart, sends byte-identical bodies
 *   webhook-id         the alert id (DESIGN.md §3)
 *   webhook-timestamp  unix seconds of THIS attempt
 *   webhook-signature  "v1,<base64 HMAC-SHA256(key, id.timestamp.body)>", computed
 *                      anew per attempt; absent when the endpoint has no secret
 *
 * Policy per endpoint (vigil_endpoint_config, endpoint.h):
 *   - filters: shadow alerts never go out; `rules` (when given) and
 *     `min_severity` (info < low < medium < high < critical; an unknown
 *     severity ranks as info) select the rest. Filtered alerts are acked.
 *   - order: alerts of one key go out in outbox order: an alert waits while an
 *     earlier one of the same key for this endpoint is in flight or waiting
 *     for a retry; other keys proceed (up to `concurrency` requests).
 *   - ownership (cluster mode, the pair outbox): an alert whose outbox no
 *     longer holds it (outbox.h, holds: its pair moved to another instance)
 *     is dropped unacked instead of starting its next attempt.
 *   - 2xx: delivered, acked.
 *   - transport error (connect, reset, timeout after timeout_ms: the
 *     endpoint thread's own deadline for the whole attempt, checked after
 *     it collected the finished transfers, so a 2xx that arrived while it
 *     was held by a slow outbox call still counts), 408, 429,
 *     5xx: retried after backoff_ms × 2^(attempt−1), ±20 % jitter, capped at
 *     max_backoff_ms; a Retry-After (seconds or HTTP date) longer than that is
 *     honoured (also capped at max_backoff_ms). When the next attempt would
 *     start more than horizon_ms after the first one, or max_attempts (when
 *     set) were made: dead letter + ack. The
 *     horizon counts from the first attempt in this process: after a restart
 *     an alert gets a new horizon.
 *   - 410 Gone: the endpoint is disabled until restart (logged once, metric
 *     vigil_webhook_endpoint_disabled); that alert, everything it holds and
 *     everything it reads later go to the dead-letter list with reason
 *     "endpoint disabled: 410 Gone", so its backlog drains and stays visible.
 *     Other endpoints are not affected.
 *   - any other status (3xx included; 4xx): dead letter at once
 *     ("HTTP <code> (not retryable)"). Redirects are never followed
 *     (CURLOPT_FOLLOWLOCATION 0, one decision for every outbox): following
 *     one would send a signed alert to a URL nobody configured, and libcurl
 *     turns the POST into a GET on 301/302/303. A moved receiver is fixed
 *     in the configuration, and the dead letters say which code came back.
 *   - outbox errors (Redis down): read, ack and dead-letter calls are retried
 *     every second; a delivered alert whose ack failed is not sent again
 *     while the process runs (and at most once more after a restart).
 *   - logs go to stderr, at most one line per endpoint per second for
 *     failures, naming the URL as scheme://host[:port] only (paths carry tokens).
 *
 * Memory: each endpoint holds at most 1024 read alerts (its window); when
 * the window is full of alerts waiting behind retrying keys, reading pauses.
 *
 * Fault injection for crash tests (fault.h): with VIGIL_FAULT="deliver:N"
 * in the environment (read once per process, at the first create at the
 * latest), the process SIGKILLs itself right after the N-th 2xx delivery
 * (counted over all endpoints) and before its ack.
 */
#ifndef VIGIL_DISPATCH_H
#define VIGIL_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include "endpoint.h"
#include "outbox.h"
#include "vigil/status.h"

typedef struct vigil_dispatch vigil_dispatch;

/* Upper bounds (seconds) of the delivery-time histogram's buckets, then +Inf. */
#define VIGIL_DISPATCH_NBUCKETS 18
extern const double vigil_dispatch_buckets[VIGIL_DISPATCH_NBUCKETS];

/* Counters of one endpoint since create. Every alert read ends as exactly
 * one of delivered, filtered or dead — or is left unacked at destroy (and
 * read again by the next dispatcher). */
typedef struct vigil_dispatch_stats {
    char name[65];
    char label[256];                /* "scheme://host[:port]" */
    unsigned long long delivered;   /* 2xx, acked (counted once the ack is in the outbox) */
    unsigned long long filtered;    /* shadow, other rule, below min_severity: acked (likewise) */
    unsigned long long dead;        /* written to the dead-letter list, acked */
    unsigned long long attempts;    /* HTTP requests started */
    unsigned long long retries;     /* attempts scheduled after a failed attempt */
    unsigned long long outbox_errors;  /* failed outbox calls (retried) */
    unsigned long long inflight;    /* HTTP requests running now */
    unsigned long long window;      /* alerts read and not finished, now */
    int disabled;                   /* answered 410 */
    /* outbox append to 2xx: per bucket (not cumulative; the last is +Inf), sum, count */
    unsigned long long hist[VIGIL_DISPATCH_NBUCKETS + 1];
    unsigned long long hist_sum_us, hist_count;
} vigil_dispatch_stats;

/* The name endpoint `index` (0-based) gets: c->name, or "webhook<index+1>"
 * when it is NULL or empty. The outbox must be opened with the same names
 * (they are its consumer groups / ack names). buf: at least 65 bytes. */
void vigil_dispatch_endpoint_name(const vigil_endpoint_config *c, int index, char *buf, size_t n);

/* Validate the endpoints, copy everything, and start one thread per
 * endpoint reading `outbox` (borrowed: it must outlive the dispatcher).
 * Unset fields take the defaults of endpoint.h; `secret` of an endpoint
 * (NULL or "") falls back to default_secret (NULL or "": unsigned). shutdown_ms: how long
 * destroy lets in-flight requests finish (0: 2000). n may be 0 (no thread).
 * Errors: VIGIL_EINVAL (err names the endpoint and field: bad or duplicate
 * name, URL not http(s), bad secret, unknown min_severity, more than 32
 * rules, negative numbers (max_attempts included), concurrency over 1024, more than 64 endpoints),
 * VIGIL_ENOMEM, VIGIL_EIO (libcurl or a thread could not start). On success
 * *out is owned by the caller until vigil_dispatch_destroy. err may be NULL. */
vigil_status vigil_dispatch_create(const vigil_endpoint_config *endpoints, int n,
                                   const char *default_secret, vigil_outbox *outbox,
                                   long shutdown_ms, vigil_dispatch **out, vigil_error *err);

/* Number of endpoints. */
int vigil_dispatch_count(const vigil_dispatch *d);

/* The shutdown_ms it was created with (0 given: 2000). 0 for NULL. */
long vigil_dispatch_shutdown_ms(const vigil_dispatch *d);

/* Counters of endpoint i (0-based) into *st. Thread-safe. VIGIL_EINVAL for
 * a bad index. */
vigil_status vigil_dispatch_stats_get(vigil_dispatch *d, int i, vigil_dispatch_stats *st);

/* Endpoint i's outbox backlog (the outbox's depth: one Redis round trip with
 * the Redis backend). Errors as the outbox's; VIGIL_EINVAL for a bad index. */
vigil_status vigil_dispatch_depth(vigil_dispatch *d, int i, uint64_t *n, vigil_error *err);

/* Append the dispatcher's metrics in Prometheus text format (HELP/TYPE
 * lines included) by calling emit one or more times with pieces of text
 * (not NUL-terminated; valid during the call only):
 *   vigil_webhook_deliveries_total{endpoint,outcome="delivered|dead_letter|filtered"} counter
 *   vigil_webhook_retries_total{endpoint}            counter
 *   vigil_webhook_dead_letters_total{endpoint}       counter
 *   vigil_webhook_attempts_total{endpoint}           counter
 *   vigil_webhook_inflight{endpoint}                 gauge
 *   vigil_webhook_endpoint_disabled{endpoint}        gauge, 1 after a 410
 *   vigil_outbox_pending{endpoint}                   gauge, outbox depth (omitted
 *                                                    when the outbox cannot say)
 *   vigil_webhook_delivery_seconds{endpoint}         histogram: outbox append to
 *                                                    2xx, waits and retries included
 * Thread-safe; asks the outbox for its depth (one Redis round trip per
 * endpoint with the Redis backend). In dispatch_metrics.c. */
void vigil_dispatch_metrics(vigil_dispatch *d, void (*emit)(void *ud, const char *text, size_t len),
                            void *ud);

/* For GET /v1/deadletters: the outbox's list_dead (outbox.h): the newest
 * `limit` dead letters (of `endpoint`, or all when NULL) as a JSON array,
 * newest first; *json malloc'd, the caller frees. Errors as the outbox's. */
vigil_status vigil_dispatch_dead_letters(vigil_dispatch *d, const char *endpoint, int limit,
                                         char **json, vigil_error *err);

/* Stop reading, drop alerts not yet sent (unacked: read again next start),
 * give requests in flight up to shutdown_ms, ack what they delivered, cut
 * the rest (unacked), join the threads and free everything. Never acks what
 * was not delivered. Accepts NULL. No other call may run concurrently. */
void vigil_dispatch_destroy(vigil_dispatch *d);

#endif

/* webhook.h — the webhook sink: pushes alerts to HTTP endpoints.
 *
 * Last stage of the flow (DESIGN.md §2, §8): the server hands every active
 * alert to vigil_webhook_send (the caller filters out shadow alerts, which
 * never go to webhooks, DESIGN.md §3); send copies it into a
 * bounded queue and returns at once; ONE dispatcher thread running a libcurl
 * multi handle POSTs it to every configured URL, so no engine or MHD thread
 * ever waits on a slow receiver.
 *
 * Wire format: Standard Webhooks v1 (https://www.standardwebhooks.com).
 *   body                = {"type":"alert.created","timestamp":"<RFC 3339, ms, UTC>",
 *                          "data":<alert JSON verbatim>}
 *   webhook-id          = the alert id (DESIGN.md §3), the receiver's idempotency key
 *   webhook-timestamp   = unix seconds of THIS attempt
 *   webhook-signature   = "v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>"
 *                         where key = base64-decode(secret without its "whsec_" prefix);
 *                         absent when no secret is configured.
 * Every attempt is signed anew with its own timestamp; the body (and its
 * "timestamp", the time the alert was handed over) stays the same.
 *
 * Delivery policy (this version; the durable outbox of DESIGN.md §8 — a Redis
 * stream or a file that survives restarts, retry horizons of up to 24 h — comes
 * in a later issue and will replace the in-memory queue below):
 *   - 2xx: delivered.
 *   - transport error (connect, timeout, reset), 408, 429, 5xx: retried, at most
 *     max_attempts attempts in all, after retry_backoff_ms, then twice that,
 *     and so on (Retry-After is not honoured yet). Then failed.
 *   - 410 Gone: that URL is disabled for the life of this dispatcher (logged
 *     on stderr, counted); its queued and future deliveries fail at once.
 *   - any other status (3xx included: redirects are not followed): failed,
 *     not retried.
 *   - final failures are logged on stderr, at most one line per URL per
 *     second, naming the URL as scheme://host[:port] only (paths and queries
 *     of webhook URLs often carry tokens).
 *   - queue full (queue_cap alerts accepted but not yet finished for every
 *     URL): vigil_webhook_send returns VIGIL_EFULL and the alert is dropped
 *     (counted). Nothing ever blocks the caller.
 *   - vigil_webhook_destroy keeps delivering what is queued for at most
 *     shutdown_ms, then abandons the rest (logged on stderr).
 *
 * Order: with max_inflight == 1 deliveries are strictly sequential in the
 * order alerts were sent — a retry holds the line until it succeeds or fails
 * — so every URL sees its alerts in send order. With max_inflight > 1
 * deliveries run concurrently and retries are interleaved with newer alerts,
 * so order is NOT guaranteed: receivers must order by the alert's "ts" and
 * deduplicate by webhook-id.
 */
#ifndef VIGIL_WEBHOOK_H
#define VIGIL_WEBHOOK_H

#include <stddef.h>
#include "vigil/status.h"

typedef struct vigil_webhook vigil_webhook;

/* Zero means "the default" for every numeric field. */
typedef struct vigil_webhook_opts {
    const char *const *urls;   /* http:// or https:// endpoints; copied at create */
    int nurls;                 /* 0 is allowed: send then accepts and discards */
    const char *secret;        /* "whsec_<base64>", or NULL = unsigned; copied */
    long timeout_ms;           /* per attempt, connect included; default 5000 */
    size_t queue_cap;          /* alerts accepted but not finished; default 100000 */
    int max_inflight;          /* concurrent HTTP requests; default 64; 1 = ordered */
    int max_attempts;          /* attempts per delivery, first included; default 3 */
    long retry_backoff_ms;     /* wait before the 2nd attempt, doubled after; default 250 */
    long shutdown_ms;          /* how long destroy keeps delivering; default 2000 */
} vigil_webhook_opts;

/* Counters since create. A "delivery" is one alert to one URL, so one
 * accepted alert with three URLs counts 3 in `queued`. Every accepted
 * delivery ends as exactly one of delivered or failed. */
typedef struct vigil_webhook_counters {
    unsigned long long queued;     /* deliveries accepted by send */
    unsigned long long delivered;  /* answered 2xx */
    unsigned long long failed;     /* gave up: non-2xx, transport error after the
                                      last attempt, URL disabled by a 410, or
                                      abandoned when destroy's deadline passed */
    unsigned long long dropped;    /* deliveries refused because the queue was full */
    unsigned long long retries;    /* attempts scheduled after a failed attempt */
    unsigned long long inflight;   /* HTTP requests running now */
    unsigned long long pending;    /* alerts accepted, not yet finished (<= queue_cap) */
    int urls_disabled;             /* URLs that answered 410 */
} vigil_webhook_counters;

/* Size of a buffer that holds any "v1,<base64 HMAC-SHA256>" value and its NUL. */
#define VIGIL_WEBHOOK_SIG_MAX 48
/* Largest alert JSON vigil_webhook_send accepts (bytes). */
#define VIGIL_WEBHOOK_MAX_ALERT (4u * 1024u * 1024u)
/* Longest alert id (bytes): it travels in an HTTP header. */
#define VIGIL_WEBHOOK_MAX_ID 255

/* Validate opts, copy the URLs and the decoded key, and start the dispatcher
 * thread. On success *out is owned by the caller until vigil_webhook_destroy.
 * Errors: VIGIL_EINVAL (a URL that is not http(s), a secret without "whsec_"
 * or not valid base64, negative counts; err says which), VIGIL_ENOMEM,
 * VIGIL_EIO (libcurl or the thread could not be started). err may be NULL.
 * Calls curl_global_init once per process (never cleaned up). */
vigil_status vigil_webhook_create(const vigil_webhook_opts *opts, vigil_webhook **out,
                                  vigil_error *err);

/* Enqueue one alert for every URL. Thread-safe, never blocks on the network.
 * alert_id (NUL-terminated, 1..VIGIL_WEBHOOK_MAX_ID printable ASCII bytes, no
 * spaces) and alert_json (len bytes, a JSON object; not checked) are copied:
 * the caller keeps ownership and may free them on return.
 * Errors: VIGIL_EINVAL (bad id, empty or NULL JSON), VIGIL_ETOOBIG (over
 * VIGIL_WEBHOOK_MAX_ALERT), VIGIL_EFULL (queue full; counted in `dropped`),
 * VIGIL_ENOMEM. Must not be called once vigil_webhook_destroy has begun. */
vigil_status vigil_webhook_send(vigil_webhook *w, const char *alert_id,
                                const char *alert_json, size_t len);

/* Snapshot of the counters into *st. Thread-safe; fields are read one by one,
 * so they may be a few events apart from each other. */
void vigil_webhook_stats(vigil_webhook *w, vigil_webhook_counters *st);

/* Stop accepting work, keep delivering what is queued for up to shutdown_ms,
 * abandon the rest, join the thread and free everything. Accepts NULL.
 * No send or stats call may run concurrently with it or follow it. */
void vigil_webhook_destroy(vigil_webhook *w);

/* The Standard Webhooks signature value "v1,<base64>" of (id, ts, body) under
 * secret ("whsec_<base64>"), written NUL-terminated into out (outlen >=
 * VIGIL_WEBHOOK_SIG_MAX). ts is unix seconds. For tests, receivers and tools;
 * the dispatcher uses the same code with the key decoded once.
 * Errors: VIGIL_EINVAL (NULL argument, bad secret, outlen too small),
 * VIGIL_ENOMEM (OpenSSL could not allocate). */
vigil_status vigil_webhook_sign(const char *secret, const char *id, long long ts,
                                const char *body, size_t len, char *out, size_t outlen);

/* ---- helpers shared with the outbox dispatcher (dispatch.c) --------------
 * The same code paths the queue dispatcher above uses, exposed so that the
 * outbox dispatcher signs, validates and logs exactly alike. */

/* curl_global_init(CURL_GLOBAL_DEFAULT), once per process, thread-safe
 * (never cleaned up). VIGIL_EIO (err says why) if libcurl failed. */
vigil_status vigil_webhook_global_init(vigil_error *err);

/* Check that url is a well-formed http:// or https:// URL and give its log
 * label "scheme://host[:port]" (paths and queries of webhook URLs often carry
 * tokens, so logs never show them). *label is malloc'd, owned by the caller.
 * Errors: VIGIL_EINVAL (err names the URL), VIGIL_ENOMEM. */
vigil_status vigil_webhook_url_label(const char *url, char **label, vigil_error *err);

/* A signing key decoded once, with its own HMAC context: one signer per
 * thread (not thread-safe). */
typedef struct vigil_webhook_signer vigil_webhook_signer;

/* secret "whsec_<base64>" (at most 256 base64 characters, padding optional).
 * *out owned by the caller until vigil_webhook_signer_destroy.
 * Errors: VIGIL_EINVAL (bad secret; err says so), VIGIL_ENOMEM. */
vigil_status vigil_webhook_signer_create(const char *secret, vigil_webhook_signer **out,
                                         vigil_error *err);

/* As vigil_webhook_sign, with the signer's key (outlen >= VIGIL_WEBHOOK_SIG_MAX).
 * Errors: VIGIL_EINVAL, VIGIL_ENOMEM. */
vigil_status vigil_webhook_signer_sign(vigil_webhook_signer *s, const char *id, long long ts,
                                       const char *body, size_t len, char *out, size_t outlen);

/* Wipes the key and frees. Accepts NULL. */
void vigil_webhook_signer_destroy(vigil_webhook_signer *s);

#endif

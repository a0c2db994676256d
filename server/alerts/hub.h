/* hub.h — the alert hub: where produced alerts go for HTTP viewers.
 *
 * Sink stage of the flow (DESIGN.md §2: alerts ─► SSE hub ─► dashboard). The
 * workers publish every alert (active and shadow) here; the hub keeps the
 * most recent N in a ring, each with a sequence number, and serves them over
 * HTTP: `GET /v1/alerts` (recent alerts, filtered) and `GET /v1/alerts/stream`
 * (Server-Sent Events, resumable with Last-Event-ID). The dashboard's
 * static files are the ops wing's (server/ops/assets.c).
 *
 * Threads: vigil_hub_publish may be called from any number of threads at
 * once. The handlers are called from libmicrohttpd's threads. The daemon
 * must be started with MHD_ALLOW_SUSPEND_RESUME and an internal polling
 * thread (or thread pool), not MHD_USE_THREAD_PER_CONNECTION: idle streams
 * are suspended (see hub.c for why and how). The stream handler answers 500
 * when the daemon does not allow suspend/resume.
 *
 * Shutdown order (either is safe):
 *   vigil_hub_close(hub); MHD_stop_daemon(d); vigil_hub_destroy(hub);
 *   vigil_hub_destroy(hub); MHD_stop_daemon(d);
 * MHD_stop_daemon panics while a connection is suspended, so the hub must be
 * closed (or destroyed) before the daemon is stopped. */
#ifndef VIGIL_HUB_H
#define VIGIL_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>

#include "vigil/status.h"

typedef struct vigil_hub vigil_hub;

#define VIGIL_HUB_DEFAULT_CAP       10000u       /* alerts kept in the ring */
#define VIGIL_HUB_MAX_ALERT_BYTES   (1u << 20)   /* larger alert JSON: ETOOBIG */
#define VIGIL_HUB_KEEPALIVE_MS      15000        /* SSE comment when idle */
#define VIGIL_HUB_LIST_DEFAULT      100          /* GET /v1/alerts limit */
#define VIGIL_HUB_LIST_MAX          1000

/* Create a hub keeping the `cap` most recent alerts (0: VIGIL_HUB_DEFAULT_CAP;
 * when full, publishing overwrites the oldest). Starts one background thread
 * (the keepalive timer; it sleeps while nobody is subscribed).
 * Errors: EINVAL (out == NULL or cap > 10^7), ENOMEM, EIO (thread). */
vigil_status vigil_hub_create(size_t cap, vigil_hub **out);

/* End every open stream (each ends its chunked response cleanly and is
 * resumed, so no connection stays suspended), refuse new streams (503) and
 * stop the keepalive thread. Publishing and listing keep working. Idempotent;
 * accepts NULL. Call it before MHD_stop_daemon. */
void vigil_hub_close(vigil_hub *hub);

/* vigil_hub_close, then release the hub. Streams still attached to a
 * connection keep the hub's memory alive until libmicrohttpd frees their
 * responses (the last one frees it), so this may run before or after
 * MHD_stop_daemon. Accepts NULL. */
void vigil_hub_destroy(vigil_hub *hub);

/* At most max open streams (limits.max_sse_clients); one more answers 503
 * with Retry-After. 0: no limit (the default). Call before serving. */
void vigil_hub_set_max_streams(vigil_hub *hub, size_t max);

/* Milliseconds between keepalive comments on an idle stream
 * (default VIGIL_HUB_KEEPALIVE_MS; tests use less). Keepalives also make a
 * suspended stream notice a vanished client. EINVAL when ms < 10. */
vigil_status vigil_hub_set_keepalive(vigil_hub *hub, int ms);

/* Publish one alert (in cluster mode, follow.h: unless the ring holds an
 * alert with its id already: VIGIL_ECONFLICT, nothing kept): copies json (len bytes, the alert object of DESIGN.md
 * §3), rule, severity, key (NUL-terminated; NULL is taken as ""), ts_ms (the
 * alert's `ts`, ms since the epoch). Assigns the next sequence number (from
 * 1) and wakes every waiting stream. Raw CR/LF in json (only legal as
 * whitespace between JSON tokens) become spaces so one alert is one SSE
 * `data:` line. Thread-safe; never blocks on the network (it only takes the
 * hub's mutex and wakes suspended connections).
 * Errors: EINVAL (hub or json NULL, len 0), ETOOBIG (len over
 * VIGIL_HUB_MAX_ALERT_BYTES), ENOMEM; nothing changes on error. */
vigil_status vigil_hub_publish(vigil_hub *hub, const char *json, size_t len,
                               const char *rule, const char *severity,
                               const char *key, int64_t ts_ms);

typedef struct vigil_hub_counters {
    uint64_t published;     /* alerts published since create */
    uint64_t last_seq;      /* sequence number of the newest alert, 0 if none */
    size_t stored;          /* alerts currently in the ring (<= cap) */
    size_t subscribers;     /* open SSE streams */
    unsigned long long refused;   /* streams refused over the limit (vigil_hub_set_max_streams) */
} vigil_hub_counters;

/* A consistent snapshot of the counters. EINVAL when hub or out is NULL. */
vigil_status vigil_hub_stats(vigil_hub *hub, vigil_hub_counters *out);

/* GET /v1/alerts — the ring's alerts, newest first, filtered and paged:
 *   rule, severity, key, mode (active | shadow): exact match;
 *   since, until: RFC 3339 time or ms since the epoch, keeps alerts with
 *     since <= ts < until (ts: the alert's event time);
 *   disposition: confirmed | false_positive | benign | none (not triaged;
 *     needs the triage hook, else every alert is "none");
 *   before: a sequence number, keeps alerts older than it (the cursor);
 *   limit: 1..1000, default 100, larger is clamped.
 * Answers 200 {"alerts":[<alert>…], "total":N, "next":SEQ|null,
 *   "last_seq":N, "stored":N}: total counts every alert of the ring that
 *   matches (all pages); next is the `before` of the next page (null: none).
 *   Each listed alert carries "seq" (its sequence number) and
 *   "disposition" (a kind, or null) with "triage": {"note","by","at"} when
 *   it has one. `last_seq` is the newest sequence number at the time of the
 *   snapshot: pass it as ?last_event_id= to the stream to continue without
 *   a gap. Bad arguments: 400 application/problem+json (RFC 9457) naming it.
 * Returns the result of MHD_queue_response. */
enum MHD_Result vigil_hub_handle_list(vigil_hub *hub, struct MHD_Connection *conn);

/* Triage: what the hub asks for every listed alert. fn(ud, alert_id, kind)
 * writes the alert's disposition kind ("confirmed", "false_positive",
 * "benign"; "" when it has none) into kind and returns its details as a
 * malloc'd JSON object text ({"note","by","at"}) or NULL. Called under the
 * hub's mutex: it must not call the hub. Set once before serving. */
typedef char *(*vigil_hub_triage_fn)(void *ud, const char *alert_id, char kind[16]);
void vigil_hub_set_triage(vigil_hub *hub, vigil_hub_triage_fn fn, void *ud);

/* Whether the ring still holds the alert with this id (32 hex digits); when
 * it does, its rule name goes into rule (cut to rule_n). */
bool vigil_hub_find(vigil_hub *hub, const char *id, char *rule, size_t rule_n);

/* A rule's alerts in the ring published at or after since_ms (wall clock):
 * their number, and when the newest of all of its alerts was published
 * (INT64_MIN: none kept). */
void vigil_hub_rule_activity(vigil_hub *hub, const char *rule, int64_t since_ms, uint64_t *n, int64_t *last_ms);

/* GET /v1/alerts/timeline?bucket=S&buckets=N — alerts per rule over time,
 * by detection (publish) time, from the ring: N buckets (1..500, default
 * 60) of S seconds (1..86400, default 60) ending now. 200 {"bucket_ms",
 * "start" (ms, the first bucket's start), "end", "rules":{"<rule>":[n…]},
 * "oldest" (ms, the oldest alert the ring holds: earlier buckets may be
 * incomplete, or null)}. Bad arguments: 400 problem+json. */
enum MHD_Result vigil_hub_handle_timeline(vigil_hub *hub, struct MHD_Connection *conn);

/* GET /v1/alerts/evidence?ids=a,b,… — up to 100 event ids; for each, the
 * event as some alert of the ring carried it in its evidence (the newest
 * such), or null: 200 {"evidence":{"<id>":{…}|null,…},"searched":N}. For a
 * window alert's window_events, whose events vigil does not keep. The
 * search stops once every id is found; a text search skips the alerts that
 * do not name the id before any is parsed. Bad ids: 400 problem+json. */
enum MHD_Result vigil_hub_handle_evidence(vigil_hub *hub, struct MHD_Connection *conn);

/* The newest alert the ring still holds of (rule, key), as JSON (malloc'd),
 * or NULL (none kept, or out of memory). */
char *vigil_hub_last(vigil_hub *hub, const char *rule, const char *key);

/* GET /v1/alerts/stream — Server-Sent Events (text/event-stream), one alert
 * per event:  "id: <seq>\nevent: alert\ndata: <alert json>\n\n".
 * Starts after the Last-Event-ID header, else after ?last_event_id=, replaying
 * what the ring still holds (from the oldest one kept when the client is
 * further behind, or when its id is newer than anything here, e.g. after a
 * restart); with neither, starts with the next alert published. A comment
 * line (": keepalive") is sent when a stream has been idle for the keepalive
 * period. ?access_token= is for the router's auth and ignored here.
 * 503 problem+json after vigil_hub_close. */
enum MHD_Result vigil_hub_handle_stream(vigil_hub *hub, struct MHD_Connection *conn);

#endif

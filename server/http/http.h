/* http.h — the HTTP edge: one libmicrohttpd daemon and the routing of
 * requests to the handlers the wings register (DESIGN.md §6).
 *
 * The daemon runs an internal polling thread pool with suspend/resume, so a
 * handler that must wait (a ?wait request, a publish to JetStream, an SSE
 * stream) suspends its connection instead of blocking an MHD thread. The
 * router reads request bodies up to max_body bytes (more: the handler sees
 * too_big and answers 413), then calls the handler registered for the
 * method and path; a path registered for another method answers 405, an
 * unknown /v1/ path 404, anything else goes to the fallback (the
 * dashboard's assets). Before any of that, on the request's headers, the
 * bearer token is checked against the role the request needs (auth.h):
 * 401/403 come first. Every request gets an id (X-Request-Id, and the log
 * lines written while handling it); a keep-alive connection remembers its
 * client's last verified token. The connection limits (per address,
 * idle timeout, header bytes) and HTTPS (tls.h) are libmicrohttpd's options.
 *
 * Only loopback addresses are accepted for `listen` while no API tokens
 * exist (vigil_http_set_auth refuses the others). libmicrohttpd's own
 * messages go to the log, except the ones a client that went away causes
 * (an SSE tab closed) and the 431s of oversized headers: those are counted
 * (vigil_http_stats), not logged. */
#ifndef VIGIL_HTTP_H
#define VIGIL_HTTP_H

#include <stddef.h>
#include <microhttpd.h>
#include "vigil/status.h"

typedef struct vigil_http vigil_http;

/* One request as the router collected it. state/state_free: the handler's
 * own per-request state (kept across a suspend/resume; freed by the router
 * when the request ends). */
typedef struct vigil_http_req {
    const char *method;
    char *body;                  /* NUL-terminated, len bytes; NULL when empty */
    size_t len, cap;
    int too_big;                 /* the body was over max_body and was dropped */
    void *state;
    void (*state_free)(void *state);
    char who[64];                /* the caller: its token's name, or "local" without tokens (the audit) */
    int token;                   /* its token's index (rate limits), -1: none */
    struct vigil_auth *auth;     /* the edge's tokens (vigil_http_take) */
    char url[256];               /* the path (no query string: no ?access_token= in a log), cut at 255 bytes */
    long long start_us;          /* when its headers arrived (wall µs) */
    char request_id[65];         /* the client's X-Request-Id when well-formed, else 16 random hex digits;
                                    on every answer (X-Request-Id) and every log line written while handling it */
} vigil_http_req;

/* A request about to apply n events: take them from its token's rate (a
 * token bucket, DESIGN.md §6). 0: go on; 429 (*retry_s set) or 413 (n over
 * the token's burst): answer that, nothing applied. */
int vigil_http_take(vigil_http_req *r, long n, int *retry_s);
/* Requests refused for their token's rate, per token name (metrics). */
void vigil_http_foreach_limited(vigil_http *h, void (*fn)(void *ud, const char *name, unsigned long long n), void *ud);

/* A handler; url is the request path (for a prefix route, the whole path). */
typedef enum MHD_Result (*vigil_http_handler)(void *ctx, struct MHD_Connection *c, const char *url,
                                              vigil_http_req *r);

#define VIGIL_HTTP_MAX_ROUTES 32

/* Check listen ("HOST:PORT", IPv4 or localhost; loopback only) and prepare.
 * Errors: VIGIL_EINVAL (err says why), VIGIL_ENOMEM. */
vigil_status vigil_http_create(const char *listen, size_t max_body, vigil_http **out, vigil_error *err);
/* method "GET" (HEAD too), "POST", …; path exact, or a prefix when prefix
 * != 0 ("/v1/rules/"). Register before vigil_http_start. */
void vigil_http_route(vigil_http *h, const char *method, const char *path, int prefix, vigil_http_handler fn,
                      void *ctx);
void vigil_http_fallback(vigil_http *h, vigil_http_handler fn, void *ctx);
/* Called just before the daemon stops (the hub closes its streams there:
 * MHD must not stop with a suspended connection). */
void vigil_http_on_stop(vigil_http *h, void (*fn)(void *ctx), void *ctx);
/* Bearer tokens (auth.h): checked on every request's headers before it is
 * routed; taken over (destroyed with h). NULL or none: everything allowed. */
struct vigil_auth;
/* EINVAL (auth is kept all the same) when h listens beyond loopback and auth
 * has no token: an open API on the network is refused at start. */
vigil_status vigil_http_set_auth(vigil_http *h, struct vigil_auth *auth, vigil_error *err);
/* The connection limits (DESIGN.md §6, limits.*). 0 in a field: none, except
 * max_header_bytes (0: 32 KiB). Call before vigil_http_start. */
typedef struct vigil_http_limits {
    int max_conns_per_ip;         /* open connections from one IPv4 address; more are refused at accept */
    long long timeout_ms;         /* an idle connection is closed (rounded up to seconds) */
    size_t max_header_bytes;      /* libmicrohttpd's per-connection memory: over it, 431 */
} vigil_http_limits;
void vigil_http_set_limits(vigil_http *h, const vigil_http_limits *l);
/* HTTPS (server/http/tls.h): read and check the PEM files now; the daemon
 * then starts with TLS. Both paths NULL/"": nothing changes. Errors name the
 * key and the path (VIGIL_EINVAL, VIGIL_ENOTFOUND, VIGIL_EIO, …). */
vigil_status vigil_http_set_tls(vigil_http *h, const char *cert_path, const char *key_path, vigil_error *err);
int vigil_http_tls(const vigil_http *h);     /* 1 when the API is HTTPS */
vigil_status vigil_http_start(vigil_http *h, vigil_error *err);
int vigil_http_port(const vigil_http *h);   /* the bound port (useful with port 0) */
void vigil_http_stop(vigil_http *h);        /* on_stop, then stop the daemon; idempotent */
void vigil_http_destroy(vigil_http *h);     /* stop, free; accepts NULL */

typedef struct vigil_http_stats {
    unsigned long long clients_gone;   /* responses cut because the client went away */
    unsigned long long errors_logged;  /* other libmicrohttpd messages (on stderr) */
    unsigned long long refused_per_ip; /* connections refused over max_conns_per_ip */
    unsigned long long timed_out;      /* requests ended by the idle timeout */
    unsigned long long headers_too_big;/* requests whose headers were over max_header_bytes (431) */
} vigil_http_stats;
void vigil_http_get_stats(vigil_http *h, vigil_http_stats *out);

#endif

/* endpoint.h — how one webhook endpoint is configured (DESIGN.md §8).
 *
 * Shared by the config file reader (config.c), the server (server.h) and the
 * dispatcher (dispatch.c), which is why it is its own header. */
#ifndef VIGIL_ENDPOINT_H
#define VIGIL_ENDPOINT_H

/* One webhook endpoint (DESIGN.md §8). Zero/NULL fields take the defaults
 * noted; the config file sets them per endpoint, --webhook URL adds one with
 * defaults. */
typedef struct vigil_endpoint_config {
    const char *name;          /* unique, [A-Za-z0-9_-]{1,64}; default "webhook<N>" (N from 1) */
    const char *url;           /* http:// or https:// (required) */
    const char *secret;        /* whsec_…; NULL: the server's webhook_secret */
    const char *rules[32];     /* only alerts of these rules; none: every rule */
    int nrules;
    const char *min_severity;  /* "low" | "medium" | "high" | "critical"; NULL: all */
    int concurrency;           /* requests in flight; default 16 (alerts of one key stay in order) */
    long timeout_ms;           /* per attempt; default 5000 */
    long backoff_ms;           /* first retry delay; default 1000, doubled per attempt, ±20 % jitter */
    long max_backoff_ms;       /* cap on one delay; default 3600000 (1 h) */
    long horizon_ms;           /* after this long since the first attempt: dead letter; default 86400000 (24 h) */
    int max_attempts;          /* attempts per alert, the first included, then dead letter; 0: no limit
                                  (the horizon decides) */
} vigil_endpoint_config;

#endif

/* server.h — `vigil serve`: the process that ties the edges to the engine.
 *
 * Sources (HTTP POST /v1/events, NATS core subscription) decode events and
 * route them, once per key group, by hash of the key to the worker that owns
 * it; each worker runs its own engine over its bounded queue in batches
 * (prefetch state, feed, commit state in one pipelined round trip), then
 * hands the batch's alerts to the sinks: the hub (SSE, GET /v1/alerts), NATS
 * (vigil.alerts.<rule>, vigil.shadow.<rule>) and webhooks (active alerts).
 * A request with ?wait=MS is answered with the alerts its event produced. */
#ifndef VIGIL_SERVER_H
#define VIGIL_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "vigil/event.h"
#include "server/alerts/endpoint.h"

#define VIGIL_MAX_WEBHOOKS 16
#define VIGIL_MAX_TOKENS 16

typedef struct vigil_token_config {   /* a bearer token and its role */
    const char *name;          /* who the audit log names (default "token<N>") */
    const char *token;
    const char *role;          /* "ingest" | "viewer" | "analyst" | "admin" */
    int rate;                  /* events/s this token may post (a burst of one second's worth); 0: no limit */
} vigil_token_config;

/* Limits on what one client may send or hold (DESIGN.md §6), each refused
 * with its own status and counted (vigil_limits_refused_total{limit}).
 * 0 in a field means its default (vigil_config_defaults sets them all). */
typedef struct vigil_limits_config {
    int max_fields;               /* object members in one event, every level; default 1000 -> 400 */
    int max_depth;                /* nesting of objects and arrays in one event; default 32 -> 400 */
    int max_key_bytes;            /* bytes of one key value; default 1024 -> 400 */
    size_t max_lines;             /* NDJSON lines (events) in one POST; default 100000 -> 413 */
    int max_rules;                /* rules served at once (active, shadow and draining); default 1000 -> 422 */
    int max_sse_clients;          /* concurrent GET /v1/alerts/stream; default 64 -> 503 */
    int max_conns_per_ip;         /* open HTTP connections from one address; default 64 (refused by MHD) */
    int64_t request_timeout_ms;   /* an idle connection is closed after this; default 30 s */
    size_t max_header_bytes;      /* the request line and headers; over it libmicrohttpd answers 431; default 32 KiB */
} vigil_limits_config;

typedef struct vigil_server_config {
    const char *rules;            /* dir or file; default "rules" */
    int watch;                    /* reload the rules directory on every change (inotify) */
    const char *listen;           /* "127.0.0.1:8080" */
    const char *nats_url;         /* NULL: no NATS */
    const char *subject;          /* "vigil.events.>" */
    const char *redis_url;        /* NULL: memory store */
    const char *redis_prefix;     /* key prefix; default "vigil" */
    const char *webhooks[VIGIL_MAX_WEBHOOKS];   /* --webhook URL: endpoints with defaults */
    int nwebhooks;
    vigil_endpoint_config endpoints[VIGIL_MAX_WEBHOOKS];  /* from the config file */
    int nendpoints;
    const char *webhook_secret;   /* whsec_…; from VIGIL_WEBHOOK_SECRET */
    vigil_token_config tokens[VIGIL_MAX_TOKENS];
    int ntokens;
    const char *tokens_file;      /* more tokens, one "name role token [rate]" a line; read at start */
    const char *metrics_token;    /* when set, GET /metrics needs it (Bearer); NULL: /metrics is public */
    int log_json;                 /* log_format = "json": one JSON object a log line (server/common/log.h) */
    vigil_limits_config limits;
    int workers;                  /* default 2 */
    int partitions;               /* key partitions per group (offsets, hash tags); default 16; fixed for a deployment */
    size_t queue_cap;             /* events per worker queue; default 65536 */
    size_t max_body;              /* bytes; default 16 MiB */
    int64_t allowed_lateness_ms;
    int64_t max_out_of_orderness_ms;  /* events held and sorted within this bound (per worker) */
    int64_t idle_timeout_ms;          /* a worker idle this long advances its watermark with
                                         processing time (0: never); `vigil serve` default 30 s */
    /* JetStream ingest (DESIGN.md §7): on when jetstream != 0 and nats_url is set */
    int jetstream;
    const char *stream;           /* default "VIGIL_EVENTS" */
    const char *consumer;         /* durable pull consumer; default "vigil" */
    int fetch_batch;              /* messages per fetch; default 1000 */
    /* durability of the memory store */
    const char *data_dir;         /* snapshot and outbox files; default "./vigil-data"; "" = none */
    int64_t snapshot_interval_ms; /* default 10000 */
    int outbox_fsync;             /* fsync the outbox file on every commit; default 1 */
    /* transport security (issue 13; docs/operations.md, "Securing vigil"): every path a
     * file path read at start, every secret never logged; NULL: not set */
    const char *tls_cert, *tls_key;      /* PEM files: HTTPS on the API when both are set */
    const char *nats_user, *nats_password, *nats_token;  /* one of user+password, token, creds */
    const char *nats_creds;              /* a NATS .creds file (user JWT and NKey seed) */
    int nats_tls;                        /* TLS to NATS (also on with tls:// URLs or a CA) */
    const char *nats_tls_ca, *nats_tls_cert, *nats_tls_key;   /* CA to trust; client cert and key */
    const char *redis_user, *redis_password;   /* AUTH [user] password; over the URL's user:password */
    /* scale-out (DESIGN.md §7, docs/scaling.md): on when cluster_instance is set; needs
     * JetStream and Redis. Instances own (key group, partition) pairs by leases with
     * fencing epochs; `partitions` is P (default 32 in a cluster). */
    const char *cluster_instance;        /* this member's name, unique in the cluster; NULL: no cluster */
    int64_t cluster_lease_ms;            /* a pair's lease; default 10 s */
    int64_t cluster_heartbeat_ms;        /* member heartbeat and lease renewal; default lease / 3 */
    const char *cluster_stream;          /* the keyed stream; default "VIGIL_KEYED" */
    const char *cluster_subject;         /* keyed subjects' prefix: <subject>.<group>.<p>; default "vigil.keyed" */
    const char *cluster_kv_prefix;       /* KV buckets <prefix>_members, <prefix>_leases; default "VIGIL" */
    vigil_event_opts ev;          /* time/id fields and format of events */
} vigil_server_config;

typedef struct vigil_server vigil_server;

/* Fill every 0 field of l with its documented default. */
void vigil_limits_fill(vigil_limits_config *l);

/* Start everything; on error nothing is left running and err says why. */
vigil_status vigil_server_start(const vigil_server_config *cfg, vigil_server **out, vigil_error *err);
/* The port HTTP listens on (useful with port 0). */
int vigil_server_port(const vigil_server *s);
/* One line on stderr: rules, store, NATS, webhooks, workers, the URL. */
void vigil_server_log_start(const vigil_server *s);
/* Reload the rules directory (SIGHUP): DESIGN.md §6. */
void vigil_server_reload(vigil_server *s);
/* Stop intake, drain the queues, commit state, flush sinks, free. */
void vigil_server_stop(vigil_server *s);

#endif

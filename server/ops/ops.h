/* ops.h — the ops wing: what an operator reads (DESIGN.md §6, §9):
 * /metrics (Prometheus text format), /healthz, /readyz, the dead-letter
 * list and the dashboard's static files. It reads the other wings through
 * their stats functions; nothing reads ops. Readiness comes from a cache
 * that one background thread refreshes every second (the Redis ping
 * included), so no health request ever waits on Redis on an MHD thread. */
#ifndef VIGIL_OPS_H
#define VIGIL_OPS_H

#include <stdint.h>
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/route/router.h"
#include "server/alerts/sinks.h"
#include "server/alerts/hub.h"
#include "server/alerts/dispatch.h"
#include "server/alerts/outbox.h"
#include "server/control/control.h"

typedef struct vigil_ops vigil_ops;

/* Borrowed views of the other wings (each outlives the ops wing; NULL
 * where the feature is off). */
typedef struct vigil_ops_config {
    vigil_http *http;
    vigil_ingest *ingest;
    vigil_router *router;
    vigil_control *control;
    vigil_sinks *sinks;
    vigil_hub *hub;
    vigil_dispatch *dispatch;
    vigil_outbox *outbox;            /* for its metrics (the memory outbox's) */
    const char *redis_url;           /* NULL: memory store */
    int64_t started_ms;
} vigil_ops_config;

/* Cluster mode: the cluster wing's counters in /metrics from now on (it
 * starts after ops; c outlives the ops' handlers or is unset with NULL first). */
struct vigil_cluster;
void vigil_ops_set_cluster(vigil_ops *ops, struct vigil_cluster *c);

/* Starts the health thread (first refresh done before it returns). */
vigil_status vigil_ops_create(const vigil_ops_config *cfg, vigil_ops **out);
/* /metrics, /healthz, /readyz, /v1/deadletters, and the assets as the fallback. */
void vigil_ops_register(vigil_ops *ops, vigil_http *h);
void vigil_ops_destroy(vigil_ops *ops);   /* accepts NULL */

/* GET / and the dashboard's static files, compiled into the binary
 * (cmake/embed.cmake): "/" is "/index.html"; content type from the
 * extension; 404 problem+json for anything else. */
enum MHD_Result vigil_ops_handle_asset(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r);
/* GET /v1/openapi.yaml: docs/openapi.yaml, compiled in the same way
 * (application/yaml; public: it documents the API and holds no data). */
enum MHD_Result vigil_ops_handle_doc(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r);

#endif

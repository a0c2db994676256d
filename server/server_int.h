/* server_int.h — the server's lifecycle state (server.c, serve.c): one
 * handle per wing and the order they start and stop in. The wings never
 * see this: each holds only the handles it was given. */
#ifndef VIGIL_SERVER_INT_H
#define VIGIL_SERVER_INT_H

#include <stdatomic.h>
#include "server.h"
#include "server/http/http.h"
#include "server/ingest/ingest.h"
#include "server/control/control.h"
#include "server/route/router.h"
#include "server/route/waiter.h"
#include "server/alerts/hub.h"
#include "server/alerts/sinks.h"
#include "server/alerts/outbox.h"
#include "server/alerts/dispatch.h"
#include "server/alerts/webhooks.h"
#include "server/ops/ops.h"
#include "server/cluster/cluster.h"

struct vigil_server {
    vigil_server_config cfg;
    vigil_ruleset *rs;
    vigil_hub *hub;
    vigil_sinks *sinks;
    vigil_outbox *outbox;          /* NULL: no webhook endpoints */
    vigil_dispatch *dispatch;
    vigil_router *router;
    vigil_waiters *waiters;
    vigil_ingest *ingest;
    vigil_control *control;
    vigil_ops *ops;
    vigil_http *http;
    char *redis_url;               /* cfg.redis_url with redis.user/password in it (wiped at free) */
    vigil_cluster *cluster;        /* cluster mode: pair ownership (set before its first callback) */
    atomic_int cluster_ready;      /* vserver_cluster_start returned: hooks and GET /v1/cluster may use it */
    atomic_int cluster_groups;     /* key groups the cluster wing deals pairs of (they only grow) */
};

/* cluster_run.c: cluster mode's lifecycle (each a no-op outside it) */
void vserver_cluster_hooks(vigil_server *s);                           /* before vigil_control_cluster_start */
void vserver_cluster_router(vigil_server *s, vigil_router_config *rc);
void vserver_cluster_rekey_hooks(vigil_server *s, vigil_rekey_config *rc);
void vserver_cluster_routes(vigil_server *s);                          /* GET /v1/cluster, before the edge starts */
vigil_status vserver_cluster_start(vigil_server *s, vigil_error *err); /* last: the pairs come and go from now */
void vserver_cluster_stop(vigil_server *s);                            /* first: every pair handed back */
void vserver_cluster_free(vigil_server *s);

#endif

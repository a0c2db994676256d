/* ops_int.h — the ops wing's private parts, shared by ops.c (life, health
 * cache, /healthz, /readyz, dead letters) and metrics.c (/metrics). */
#ifndef VIGIL_OPS_INT_H
#define VIGIL_OPS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include "ops.h"
#include "server/state/redis.h"

#define OPS_LATE_WINDOW 10           /* seconds of history for the late-events warning */

struct vigil_ops {
    vigil_ops_config cfg;
    pthread_t th;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    /* the health cache, refreshed once a second by the ops thread (under mu) */
    int redis_up;
    vigil_redis *redis;          /* the health PING's own connection (ops thread only) */
    char late_warning[512];      /* "" while most events are on time */
    unsigned long long hist_processed[OPS_LATE_WINDOW], hist_late[OPS_LATE_WINDOW];
    int hist_n, hist_i;
    int64_t last_late_log_ms;
};

enum MHD_Result vops_metrics(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r);

#endif

/* ops_int.h — the ops wing's private parts, shared by ops.c (life, health
 * cache, /healthz, /readyz, dead letters) and metrics.c (/metrics). */
#ifndef VIGIL_OPS_INT_H
#define VIGIL_OPS_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include "ops.h"
#include "server/state/redis.h"
#include "server/common/histogram.h"

#define OPS_LATE_WINDOW 10           /* seconds of history for the late-events warning */
#define OPS_SAMPLES 61               /* seconds of counter samples for GET /v1/stats (stats.c) */

typedef struct vops_sample {         /* the counters at one moment (stats.c) */
    int64_t at_ms;
    unsigned long long received, processed, late;
    vigil_hist_snap latency;
} vops_sample;

struct vigil_ops {
    vigil_ops_config cfg;
    _Atomic(struct vigil_cluster *) cluster;   /* cluster mode, once it runs (vigil_ops_set_cluster) */
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
    vops_sample samples[OPS_SAMPLES];   /* a ring, one a second (under mu) */
    int nsamples, sample_i;
};

/* process.c: the process_* metrics (CPU, memory, fds, start time) */
void vops_process_metrics(void (*emit)(void *ud, const char *text, size_t len), void *ud);

/* stats.c: a sample of the counters (ops thread, once a second, mu held); GET /v1/stats */
void vops_stats_sample(vigil_ops *ops, const vigil_router_stats *rs);
enum MHD_Result vops_stats(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r);

enum MHD_Result vops_metrics(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r);

#endif

/* ops.c — the ops wing's life and its health answers: a background thread
 * refreshes a health cache once a second (a Redis PING on its own kept
 * connection, 1 s timeouts,
 * and the share of late events over the last 10 s), so /readyz never waits
 * on Redis on an MHD thread; /healthz; /readyz (rules, stores, NATS,
 * intake, and a warning while most events are late); GET /v1/deadletters.
 * The same thread samples the counters for GET /v1/stats (stats.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cjson/cJSON.h>
#include "ops_int.h"
#include "server/http/reply.h"
#include <hiredis/hiredis.h>
#include "server/state/redis.h"
#include "vigil/clock.h"
#include "server/common/log.h"

/* ---- the health cache -------------------------------------------------------------- */

/* PING on the ops wing's own connection (kept open: a new connection per
 * second would cost more than the ping; the layer reconnects after a
 * failure). 1 when Redis answered PONG. */
static int redis_ping(vigil_ops *ops) {
    vigil_error err;
    if (!ops->redis) {
        vigil_redis_opts o = {.connect_timeout_ms = 1000, .io_timeout_ms = 1000};
        if (vigil_redis_create(ops->cfg.redis_url, &o, &ops->redis, &err) != VIGIL_OK) return 0;
    }
    const char *av[1] = {"PING"};
    size_t al[1] = {4};
    vigil_redis_cmd cmd = {.argc = 1, .argv = av, .lens = al};
    redisReply *reply = NULL;
    int up = vigil_redis_command(ops->redis, &cmd, &reply, "PING", &err) == VIGIL_OK && reply &&
             reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "PONG") == 0;
    if (reply) freeReplyObject(reply);
    return up;
}

static void refresh(vigil_ops *ops) {
    int redis_up = ops->cfg.redis_url ? redis_ping(ops) : 1;
    vigil_router_stats rs;
    vigil_router_get_stats(ops->cfg.router, &rs);
    pthread_mutex_lock(&ops->mu);
    ops->redis_up = redis_up;
    vops_stats_sample(ops, &rs);
    /* late share over the last OPS_LATE_WINDOW seconds */
    int oldest = ops->hist_n == OPS_LATE_WINDOW ? ops->hist_i : 0;
    unsigned long long dp = ops->hist_n ? rs.processed - ops->hist_processed[oldest] : 0;
    unsigned long long dl = ops->hist_n ? rs.late - ops->hist_late[oldest] : 0;
    ops->hist_processed[ops->hist_i] = rs.processed;
    ops->hist_late[ops->hist_i] = rs.late;
    ops->hist_i = (ops->hist_i + 1) % OPS_LATE_WINDOW;
    if (ops->hist_n < OPS_LATE_WINDOW) ops->hist_n++;
    if (dl >= 100 && dl * 2 > dp) {
        char wm[40] = "none";
        if (rs.watermark_min > INT64_MIN) vigil_time_format_rfc3339(rs.watermark_min, wm, sizeof wm);
        snprintf(ops->late_warning, sizeof ops->late_warning,
                 "most events are late: %llu of %llu in the last %d s are older than the watermark (%s) minus the "
                 "allowed lateness; they are counted in vigil_events_late_total and not matched (is a source "
                 "sending old event times, e.g. a generator restarted from its first day?)",
                 dl, dp, OPS_LATE_WINDOW, wm);
        int64_t now = vigil_now_ms();
        if (now - ops->last_late_log_ms >= 60000) {
            ops->last_late_log_ms = now;
            vigil_log(VIGIL_LOG_WARN, "ops", "warning: %s", ops->late_warning);
        }
    } else {
        ops->late_warning[0] = '\0';
    }
    pthread_mutex_unlock(&ops->mu);
}

static void *ops_main(void *arg) {
    vigil_ops *ops = arg;
    pthread_mutex_lock(&ops->mu);
    while (!ops->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 1;
        pthread_cond_timedwait(&ops->cv, &ops->mu, &ts);
        if (ops->stop) break;
        pthread_mutex_unlock(&ops->mu);
        refresh(ops);
        pthread_mutex_lock(&ops->mu);
    }
    pthread_mutex_unlock(&ops->mu);
    return NULL;
}

vigil_status vigil_ops_create(const vigil_ops_config *cfg, vigil_ops **out) {
    vigil_ops *ops = calloc(1, sizeof *ops);
    if (!ops) return VIGIL_ENOMEM;
    ops->cfg = *cfg;
    pthread_mutex_init(&ops->mu, NULL);
    pthread_cond_init(&ops->cv, NULL);
    refresh(ops);
    if (pthread_create(&ops->th, NULL, ops_main, ops) == 0) ops->started = 1;
    *out = ops;
    return VIGIL_OK;
}

void vigil_ops_destroy(vigil_ops *ops) {
    if (!ops) return;
    pthread_mutex_lock(&ops->mu);
    ops->stop = 1;
    pthread_cond_signal(&ops->cv);
    pthread_mutex_unlock(&ops->mu);
    if (ops->started) pthread_join(ops->th, NULL);
    pthread_mutex_destroy(&ops->mu);
    pthread_cond_destroy(&ops->cv);
    vigil_redis_destroy(ops->redis);
    free(ops);
}

/* ---- /healthz, /readyz ----------------------------------------------------------- */

static enum MHD_Result healthz(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    return vigil_http_send_text(c, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

static enum MHD_Result readyz(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_ops *ops = ctx;
    cJSON *o = cJSON_CreateObject();
    int ok = 1;
    cJSON_AddStringToObject(o, "rules", "loaded");
    pthread_mutex_lock(&ops->mu);
    int redis_up = ops->redis_up;
    char warning[sizeof ops->late_warning];
    memcpy(warning, ops->late_warning, sizeof warning);
    pthread_mutex_unlock(&ops->mu);
    if (ops->cfg.redis_url) {
        cJSON_AddStringToObject(o, "redis", redis_up ? "up" : "down");
        ok &= redis_up;
    }
    vigil_ingest_stats is;
    vigil_ingest_get_stats(ops->cfg.ingest, &is);
    if (is.nats_configured) {
        cJSON_AddStringToObject(o, "nats", is.nats_up ? "up" : "down");
        if (is.jetstream) cJSON_AddStringToObject(o, "jetstream", is.nats_up ? "up" : "down");
        ok &= is.nats_up;
    }
    int paused = vigil_ingest_paused(ops->cfg.ingest);
    cJSON_AddStringToObject(o, "intake", paused ? "paused" : "open");
    ok &= !paused;
    if (warning[0]) {
        cJSON *w = cJSON_AddArrayToObject(o, "warnings");
        cJSON_AddItemToArray(w, cJSON_CreateString(warning));
    }
    cJSON_AddStringToObject(o, "status", ok ? "ready" : "not ready");
    return vigil_http_send_json(c, ok ? 200 : 503, o);
}

/* ---- GET /v1/deadletters?endpoint=&limit= ------------------------------------------- */

static enum MHD_Result dead_letters(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_ops *ops = ctx;
    if (!ops->cfg.dispatch) return vigil_http_send_text(c, 200, "application/json", "[]", 2);
    const char *ep = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "endpoint");
    const char *ls = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "limit");
    long limit = 100;
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (*end || limit < 1 || limit > 10000)
            return vigil_http_problem(c, 400, "Bad Request", "limit must be between 1 and 10000", NULL, NULL);
    }
    char *json = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    vigil_status st = vigil_dispatch_dead_letters(ops->cfg.dispatch, ep && *ep ? ep : NULL, (int)limit, &json, &err);
    if (st == VIGIL_ENOTFOUND || st == VIGIL_EINVAL) return vigil_http_problem(c, 404, "Not Found", err.msg, NULL, NULL);
    if (st != VIGIL_OK) return vigil_http_problem(c, 503, "Service Unavailable", err.msg, NULL, "1");
    enum MHD_Result res = vigil_http_send_text(c, 200, "application/json", json, strlen(json));
    free(json);
    return res;
}

void vigil_ops_register(vigil_ops *ops, vigil_http *h) {
    vigil_http_route(h, "GET", "/metrics", 0, vops_metrics, ops);
    vigil_http_route(h, "GET", "/healthz", 0, healthz, ops);
    vigil_http_route(h, "GET", "/readyz", 0, readyz, ops);
    vigil_http_route(h, "GET", "/v1/deadletters", 0, dead_letters, ops);
    vigil_http_route(h, "GET", "/v1/stats", 0, vops_stats, ops);
    vigil_http_route(h, "GET", "/v1/openapi.yaml", 0, vigil_ops_handle_doc, ops);
    vigil_http_fallback(h, vigil_ops_handle_asset, ops);
}

void vigil_ops_set_cluster(vigil_ops *ops, struct vigil_cluster *c) { atomic_store(&ops->cluster, c); }

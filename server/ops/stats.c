/* stats.c — GET /v1/stats: what the dashboard's health tiles show, computed
 * here rather than counted in a browser from the alerts it happened to see
 * (DESIGN.md §6, §9). Rates and latency quantiles are over a recent window:
 * the ops thread (ops.c) records a sample of the counters and of the
 * latency histogram once a second (vops_stats_sample), and a request
 * compares the newest sample with the one STATS_RATE_S (rates) or
 * STATS_LATENCY_S (latency) seconds older. Everything else is read from
 * the wings' stats at request time; nothing here waits on Redis or NATS. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "ops_int.h"
#include "server/http/reply.h"
#include "vigil/clock.h"

#define STATS_RATE_S 10
#define STATS_LATENCY_S 60

/* Called by the ops thread once a second, with ops->mu held. */
void vops_stats_sample(vigil_ops *ops, const vigil_router_stats *rs) {
    vigil_ingest_stats is;
    vigil_ingest_get_stats(ops->cfg.ingest, &is);
    const vigil_hist *lat, *commit, *batch;
    vigil_router_hists(ops->cfg.router, &lat, &commit, &batch);
    vops_sample *s = &ops->samples[ops->sample_i];
    s->at_ms = vigil_now_ms();
    s->received = is.http_events + is.nats_events;
    s->processed = rs->processed;
    s->late = rs->late;
    vigil_hist_snapshot(lat, &s->latency);
    ops->sample_i = (ops->sample_i + 1) % OPS_SAMPLES;
    if (ops->nsamples < OPS_SAMPLES) ops->nsamples++;
}

/* The newest sample and the one about `secs` older (the oldest kept when
 * the server is younger). NULL when there are fewer than two. */
static const vops_sample *pick(const vigil_ops *ops, int secs, const vops_sample **newest) {
    if (ops->nsamples < 2) return NULL;
    int last = (ops->sample_i + OPS_SAMPLES - 1) % OPS_SAMPLES;
    int back = secs < ops->nsamples - 1 ? secs : ops->nsamples - 1;
    *newest = &ops->samples[last];
    return &ops->samples[(last + OPS_SAMPLES - back) % OPS_SAMPLES];
}

static void add_rate(cJSON *o, const char *name, unsigned long long a, unsigned long long b, int64_t ms) {
    cJSON_AddNumberToObject(o, name, ms > 0 && b >= a ? round((double)(b - a) * 1000.0 / (double)ms * 10) / 10 : 0);
}

static void add_num_or_null(cJSON *o, const char *name, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, name);
    else cJSON_AddNumberToObject(o, name, v);
}

enum MHD_Result vops_stats(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_ops *ops = ctx;
    const vigil_ops_config *cfg = &ops->cfg;
    vigil_router_stats rs;
    vigil_router_get_stats(cfg->router, &rs);
    vigil_ingest_stats is;
    vigil_ingest_get_stats(cfg->ingest, &is);
    vigil_sinks_stats ss;
    vigil_sinks_get_stats(cfg->sinks, &ss);
    vigil_control_stats cs;
    vigil_control_get_stats(cfg->control, &cs);
    const vigil_hist *lat, *commit, *batch;
    vigil_router_hists(cfg->router, &lat, &commit, &batch);
    int64_t now = vigil_now_ms();
    char t[40];
    cJSON *o = cJSON_CreateObject();
    vigil_time_format_rfc3339(now, t, sizeof t);
    cJSON_AddStringToObject(o, "at", t);
    cJSON_AddNumberToObject(o, "uptime_seconds", (double)(now - cfg->started_ms) / 1000.0);

    /* rates and latency over the recent window */
    pthread_mutex_lock(&ops->mu);
    const vops_sample *newest = NULL, *old = pick(ops, STATS_RATE_S, &newest);
    cJSON *rates = cJSON_AddObjectToObject(o, "rates");
    cJSON_AddNumberToObject(rates, "window_seconds", old ? (double)(newest->at_ms - old->at_ms) / 1000.0 : 0);
    if (old) {
        int64_t ms = newest->at_ms - old->at_ms;
        add_rate(rates, "events_per_second", old->received, newest->received, ms);
        add_rate(rates, "processed_per_second", old->processed, newest->processed, ms);
        add_rate(rates, "late_per_second", old->late, newest->late, ms);
    } else {
        cJSON_AddNumberToObject(rates, "events_per_second", 0);
        cJSON_AddNumberToObject(rates, "processed_per_second", 0);
        cJSON_AddNumberToObject(rates, "late_per_second", 0);
    }
    vigil_hist_snap win = {0};
    const vops_sample *lold = pick(ops, STATS_LATENCY_S, &newest);
    if (lold) {
        for (int i = 0; i <= VIGIL_HIST_MAX_BUCKETS; i++) win.counts[i] = newest->latency.counts[i] - lold->latency.counts[i];
        win.count = newest->latency.count - lold->latency.count;
        win.sum = newest->latency.sum - lold->latency.sum;
    }
    int redis_up = ops->redis_up;
    pthread_mutex_unlock(&ops->mu);
    cJSON *l = cJSON_AddObjectToObject(o, "alert_latency_seconds");
    cJSON_AddNumberToObject(l, "window_seconds", STATS_LATENCY_S);
    cJSON_AddNumberToObject(l, "alerts", (double)win.count);
    add_num_or_null(l, "p50", vigil_hist_quantile(lat, &win, 0.50));
    add_num_or_null(l, "p99", vigil_hist_quantile(lat, &win, 0.99));

    /* lag: what is accepted and not yet applied */
    cJSON *lag = cJSON_AddObjectToObject(o, "lag");
    cJSON_AddNumberToObject(lag, "queued", (double)rs.queue_depth);
    if (is.jetstream) cJSON_AddNumberToObject(lag, "jetstream_unacked", (double)(is.js_fetched - is.js_acked));
    else cJSON_AddNullToObject(lag, "jetstream_unacked");

    /* event time */
    cJSON *wm = cJSON_AddObjectToObject(o, "watermark");
    if (rs.watermark_min > INT64_MIN) {
        vigil_time_format_rfc3339(rs.watermark_min, t, sizeof t);
        cJSON_AddStringToObject(wm, "at", t);
        cJSON_AddNumberToObject(wm, "behind_wall_clock_seconds", (double)(now - rs.watermark_min) / 1000.0);
    } else {
        cJSON_AddNullToObject(wm, "at");
        cJSON_AddNullToObject(wm, "behind_wall_clock_seconds");
    }

    cJSON *st = cJSON_AddObjectToObject(o, "state");
    cJSON_AddNumberToObject(st, "keys", (double)rs.keys);
    cJSON_AddNumberToObject(st, "partial_matches", (double)rs.runs);
    cJSON_AddNumberToObject(st, "rules", cs.rules);

    /* the stores and the stream: up, down or off */
    cJSON *deps = cJSON_AddObjectToObject(o, "status");
    cJSON_AddStringToObject(deps, "store", cfg->redis_url ? (redis_up && !rs.store_down ? "up" : "down")
                                                          : (rs.store_down ? "down" : "memory"));
    cJSON_AddStringToObject(deps, "nats", !is.nats_configured ? "off" : is.nats_up ? "up" : "down");
    cJSON_AddStringToObject(deps, "jetstream", !is.jetstream ? "off" : is.nats_up ? "up" : "down");
    cJSON_AddStringToObject(deps, "intake", vigil_ingest_paused(cfg->ingest) ? "paused" : "open");

    /* alerts and their delivery */
    cJSON *al = cJSON_AddObjectToObject(o, "alerts");
    cJSON_AddNumberToObject(al, "total", (double)ss.alerts);
    cJSON_AddNumberToObject(al, "lost", (double)ss.lost);
    cJSON_AddNumberToObject(al, "snoozed", (double)cs.snoozed_alerts);
    cJSON *wh = cJSON_AddObjectToObject(o, "webhooks");
    unsigned long long backlog = 0, dead = 0, delivered = 0, inflight = 0;
    int n = cfg->dispatch ? vigil_dispatch_count(cfg->dispatch) : 0;
    for (int i = 0; i < n; i++) {
        vigil_dispatch_stats d;
        if (vigil_dispatch_stats_get(cfg->dispatch, i, &d) != VIGIL_OK) continue;
        backlog += d.window;
        dead += d.dead;
        delivered += d.delivered;
        inflight += d.inflight;
    }
    cJSON_AddNumberToObject(wh, "endpoints", n);
    cJSON_AddNumberToObject(wh, "backlog", (double)backlog);
    cJSON_AddNumberToObject(wh, "in_flight", (double)inflight);
    cJSON_AddNumberToObject(wh, "delivered", (double)delivered);
    cJSON_AddNumberToObject(wh, "dead_letters", (double)dead);
    return vigil_http_send_json(c, 200, o);
}

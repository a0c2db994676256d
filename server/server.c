/* server.c — `vigil serve`'s lifecycle: build the wings in dependency order
 * (alerts, route, ingest, control, ops, then the HTTP edge that routes to
 * their handlers), and stop them in the order that loses nothing: intake
 * first, then the workers drain (commit, hand out, snapshot), then the
 * requests still suspended are answered, then the HTTP edge, then NATS
 * (flushing what the sinks published) and the webhook dispatcher.
 * docs/architecture.md draws the path of an event through the wings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server_int.h"
#include "server/http/auth.h"
#include "server/alerts/follow.h"   /* issue 14 (h10): the cluster's alerts */
#include "server/state/redis.h"
#include "vigil/clock.h"
#include "vigil/rules.h"
#include "server/common/log.h"

/* ---- webhooks ----------------------------------------------------------------------- */

/* Webhook endpoints: the config file's, then one per --webhook URL, over
 * the outbox the store calls for (alerts/webhooks.h). */
static vigil_status start_webhooks(vigil_server *s, vigil_error *err) {
    if (s->cfg.cluster_instance)   /* cluster mode: the owned pairs' outbox streams (cluster_run.c adds them) */
        return vigil_webhooks_start_pairs(s->cfg.endpoints, s->cfg.nendpoints, s->cfg.webhooks, s->cfg.nwebhooks,
                                          s->cfg.webhook_secret, s->cfg.redis_url, s->cfg.redis_prefix, &s->outbox,
                                          &s->dispatch, err);
    return vigil_webhooks_start(s->cfg.endpoints, s->cfg.nendpoints, s->cfg.webhooks, s->cfg.nwebhooks,
                                s->cfg.webhook_secret, s->cfg.redis_url, s->cfg.redis_prefix, s->cfg.data_dir,
                                s->cfg.outbox_fsync, &s->outbox, &s->dispatch, err);
}

/* ---- the hub's routes --------------------------------------------------------------- */

static enum MHD_Result alerts_list(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    return vigil_hub_handle_list(ctx, c);
}

static enum MHD_Result alerts_stream(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    return vigil_hub_handle_stream(ctx, c);
}

static enum MHD_Result alerts_timeline(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    (void)url;
    (void)r;
    return vigil_hub_handle_timeline(ctx, c);
}

static enum MHD_Result alerts_evidence(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    (void)url;
    (void)r;
    return vigil_hub_handle_evidence(ctx, c);
}

static void hub_close(void *hub) { vigil_hub_close(hub); }

/* ---- start / stop ------------------------------------------------------------------- */

static void server_free(vigil_server *s) {
    vigil_http_destroy(s->http);
    vigil_ops_destroy(s->ops);
    vigil_control_destroy(s->control);
    vigil_router_destroy(s->router);
    vigil_waiters_destroy(s->waiters);
    vigil_hub_unfollow(s->hub);   /* issue 14 (h10): before NATS closes */
    vserver_cluster_free(s);      /* it borrows the NATS connection */
    vigil_ingest_destroy(s->ingest);
    vigil_webhooks_stop(s->dispatch, s->outbox);
    vigil_sinks_destroy(s->sinks);
    vigil_hub_destroy(s->hub);
    if (s->rs) vigil_ruleset_release(s->rs);
    vigil_redis_url_free(s->redis_url);
    free(s);
}

void vigil_limits_fill(vigil_limits_config *l) {
    if (l->max_fields <= 0) l->max_fields = 1000;
    if (l->max_depth <= 0) l->max_depth = 32;
    if (l->max_key_bytes <= 0) l->max_key_bytes = 1024;
    if (!l->max_lines) l->max_lines = 100000;
    if (l->max_rules <= 0) l->max_rules = 1000;
    if (l->max_sse_clients <= 0) l->max_sse_clients = 64;
    if (l->max_conns_per_ip <= 0) l->max_conns_per_ip = 64;
    if (l->request_timeout_ms <= 0) l->request_timeout_ms = 30000;
    if (!l->max_header_bytes) l->max_header_bytes = 32u << 10;
}

static void apply_defaults(vigil_server_config *c) {
    vigil_limits_fill(&c->limits);
    if (!c->rules) c->rules = "rules";
    if (!c->listen) c->listen = "127.0.0.1:8080";
    if (!c->subject) c->subject = "vigil.events.>";
    if (!c->stream) c->stream = "VIGIL_EVENTS";
    if (!c->consumer) c->consumer = "vigil";
    if (c->fetch_batch <= 0) c->fetch_batch = 1000;
    if (c->workers <= 0) c->workers = 2;
    if (c->partitions <= 0) c->partitions = c->cluster_instance ? 32 : 16;   /* P of a cluster: DESIGN.md §7 */
    if (!c->queue_cap) c->queue_cap = 65536;
    if (!c->max_body) c->max_body = 16u << 20;
    if (c->idle_timeout_ms < 0) c->idle_timeout_ms = 0;
    if (c->snapshot_interval_ms <= 0) c->snapshot_interval_ms = 10000;
    if (!c->redis_prefix) c->redis_prefix = "vigil";
    if (!c->cluster_stream) c->cluster_stream = "VIGIL_KEYED";   /* cluster mode (DESIGN.md §7) */
    if (!c->cluster_subject) c->cluster_subject = "vigil.keyed";
    if (!c->cluster_kv_prefix) c->cluster_kv_prefix = "VIGIL";
    if (c->cluster_lease_ms <= 0) c->cluster_lease_ms = 10000;
    if (c->cluster_heartbeat_ms <= 0) c->cluster_heartbeat_ms = c->cluster_lease_ms / 3;
}

/* Bearer tokens: the config's, then the tokens file's; every request is
 * checked on its headers (server/http/auth.c). */
static vigil_status start_auth(vigil_server *s, vigil_error *err) {
    vigil_auth_token *ft = NULL, *t = NULL;
    char *store = NULL;
    int nf = 0;
    vigil_status st;
    if (s->cfg.tokens_file && s->cfg.tokens_file[0] &&
        (st = vigil_auth_read_file(s->cfg.tokens_file, &ft, &nf, &store, err)) != VIGIL_OK)
        return st;
    int n = s->cfg.ntokens + nf;
    if (n && !(t = calloc((size_t)n, sizeof *t))) {
        vigil_auth_tokens_free(ft, store);
        return vigil_error_set(err, VIGIL_ENOMEM, "out of memory");
    }
    for (int i = 0; i < s->cfg.ntokens; i++)
        t[i] = (vigil_auth_token){.name = s->cfg.tokens[i].name, .token = s->cfg.tokens[i].token,
                                  .role = s->cfg.tokens[i].role, .rate = s->cfg.tokens[i].rate};
    for (int i = 0; i < nf; i++) t[s->cfg.ntokens + i] = ft[i];
    vigil_auth *auth = NULL;
    st = vigil_auth_create(t, n, s->cfg.metrics_token, &auth, err);
    free(t);
    vigil_auth_tokens_free(ft, store);
    if (st != VIGIL_OK) return st;
    return vigil_http_set_auth(s->http, auth, err);
}

/* Issue 14, rules and alerts across the cluster (h10): in cluster mode the
 * alerts carry the instance (JSON member, NATS header) and the hub takes
 * the other instances' alerts from NATS. Rule changes: vigil_control_cluster_start
 * after vigil_control_start. The lead wires the cluster wing's versions
 * hooks (vigil_control_set_cluster_hooks) here; without them the control
 * wing publishes versions on NATS itself. */
static vigil_status start_cluster_alerts(vigil_server *s, vigil_error *err) {
    natsConnection *nc = vigil_ingest_nats(s->ingest);
    if (!nc)
        return vigil_error_set(err, VIGIL_EINVAL, "cluster.instance is set but nats.url is not: the instances share "
                                                  "rule changes and alerts through NATS");
    vigil_sinks_set_instance(s->sinks, s->cfg.cluster_instance);
    return vigil_hub_follow(s->hub, nc, s->cfg.cluster_instance, err);
}

static vigil_status ingest_sync(void *ud, int timeout_ms, vigil_error *err) {
    return vigil_ingest_sync(ud, timeout_ms, err);
}

vigil_status vigil_server_start(const vigil_server_config *cfg, vigil_server **out, vigil_error *err) {
    vigil_server *s = calloc(1, sizeof *s);
    if (!s) return VIGIL_ENOMEM;
    s->cfg = *cfg;
    apply_defaults(&s->cfg);
    int64_t started = vigil_now_ms();
    vigil_status st;
    /* Redis AUTH: redis.user/redis.password go into the URL every Redis user of the
     * server hands to the one connection layer (state/redis.c sends AUTH, then SELECT) */
    if (s->cfg.redis_url && s->cfg.redis_password) {
        if ((st = vigil_redis_url_with_auth(s->cfg.redis_url, s->cfg.redis_user, s->cfg.redis_password,
                                            &s->redis_url, err)) != VIGIL_OK)
            goto fail;
        s->cfg.redis_url = s->redis_url;
    } else if (s->cfg.redis_url && s->cfg.redis_user) {   /* without a URL both are unused, like nats.* */
        st = vigil_error_set(err, VIGIL_EPARSE, "redis.user is set without redis.password; set both "
                                                "(VIGIL_REDIS_USER, VIGIL_REDIS_PASSWORD)");
        goto fail;
    }
    /* control: the rule catalog (stored versions, then the directory) gives the first ruleset */
    vigil_control_config cc = {.rules = s->cfg.rules, .decode = &s->cfg.ev.decode, .redis_url = s->cfg.redis_url,
                               .redis_prefix = s->cfg.redis_prefix, .data_dir = s->cfg.data_dir,
                               .watch = s->cfg.watch, .max_rules = s->cfg.limits.max_rules,
                               .instance = s->cfg.cluster_instance};   /* issue 14 (h10) */
    if ((st = vigil_control_create(&cc, &s->control, err)) != VIGIL_OK) goto fail;
    s->rs = vigil_control_ruleset(s->control);
    /* the HTTP edge first checks `listen`, so a bad address fails before anything starts */
    if ((st = vigil_http_create(s->cfg.listen, s->cfg.max_body, &s->http, err)) != VIGIL_OK) goto fail;
    if ((st = vigil_http_set_tls(s->http, s->cfg.tls_cert, s->cfg.tls_key, err)) != VIGIL_OK) goto fail;
    if ((st = start_auth(s, err)) != VIGIL_OK) goto fail;
    vigil_http_set_limits(s->http, &(vigil_http_limits){.max_conns_per_ip = s->cfg.limits.max_conns_per_ip,
                                                         .timeout_ms = s->cfg.limits.request_timeout_ms,
                                                         .max_header_bytes = s->cfg.limits.max_header_bytes});
    /* alerts: the hub, the sinks, webhook delivery */
    if ((st = vigil_hub_create(0, &s->hub)) != VIGIL_OK) {
        vigil_error_set(err, st, "cannot create the alert hub");
        goto fail;
    }
    vigil_hub_set_max_streams(s->hub, (size_t)s->cfg.limits.max_sse_clients);
    if ((st = vigil_sinks_create(s->hub, &s->sinks)) != VIGIL_OK) {
        vigil_error_set(err, st, "out of memory");
        goto fail;
    }
    if ((st = start_webhooks(s, err)) != VIGIL_OK) goto fail;
    if ((st = vigil_alert_record_set_instance(s->cfg.cluster_instance)) != VIGIL_OK) {   /* issue 14 (h10) */
        vigil_error_set(err, st, "cluster.instance: over 255 bytes");
        goto fail;
    }
    /* route: workers, their engines and stores, their durable starting point */
    vigil_router_config rc = {.rs = s->rs, .workers = s->cfg.workers, .partitions = s->cfg.partitions,
                              .queue_cap = s->cfg.queue_cap, .allowed_lateness_ms = s->cfg.allowed_lateness_ms,
                              .max_out_of_orderness_ms = s->cfg.max_out_of_orderness_ms,
                              .idle_timeout_ms = s->cfg.idle_timeout_ms, .redis_url = s->cfg.redis_url,
                              .redis_prefix = s->cfg.redis_prefix, .data_dir = s->cfg.data_dir,
                              .snapshot_interval_ms = s->cfg.snapshot_interval_ms, .sinks = s->sinks,
                              .outbox = s->outbox, .alert_filter = vigil_control_snoozed,
                              .alert_filter_ud = s->control, .alerts_hook = vigil_control_batch_alerts,
                              .alerts_hook_ud = s->control};
    vserver_cluster_router(s, &rc);
    if ((st = vigil_router_create(&rc, &s->router, err)) != VIGIL_OK) goto fail;
    if ((st = vigil_waiters_create(&s->waiters)) != VIGIL_OK) {
        vigil_error_set(err, st, "cannot start the ?wait timer");
        goto fail;
    }
    /* ingest: NATS first, so the sinks can publish from the first batch */
    vigil_ingest_config ic = {.decode = &s->cfg.ev.decode, .router = s->router, .waiters = s->waiters,
                              .max_body = s->cfg.max_body, .nats_url = s->cfg.nats_url, .subject = s->cfg.subject,
                              .jetstream = s->cfg.jetstream, .stream = s->cfg.stream, .consumer = s->cfg.consumer,
                              .fetch_batch = s->cfg.fetch_batch, .max_fields = s->cfg.limits.max_fields,
                              .max_depth = s->cfg.limits.max_depth, .max_key_bytes = s->cfg.limits.max_key_bytes,
                              .max_lines = s->cfg.limits.max_lines,
                              .cluster = s->cfg.cluster_instance != NULL,   /* issue 14 (h8): no single consumer */
                              .nats_auth = {.user = s->cfg.nats_user, .password = s->cfg.nats_password,
                                            .token = s->cfg.nats_token, .creds = s->cfg.nats_creds,
                                            .tls = s->cfg.nats_tls, .tls_ca = s->cfg.nats_tls_ca,
                                            .tls_cert = s->cfg.nats_tls_cert, .tls_key = s->cfg.nats_tls_key}};
    if ((st = vigil_ingest_create(&ic, &s->ingest, err)) != VIGIL_OK) goto fail;
    if ((st = vigil_ingest_connect(s->ingest, err)) != VIGIL_OK) goto fail;
    vigil_sinks_set_nats(s->sinks, vigil_ingest_nats(s->ingest));
    if (s->cfg.cluster_instance && (st = start_cluster_alerts(s, err)) != VIGIL_OK) goto fail;   /* issue 14 (h10) */
    vigil_control_set_sinks(s->control, s->sinks, s->hub);
    vigil_ops_config oc = {.http = s->http, .ingest = s->ingest, .router = s->router, .control = s->control,
                           .sinks = s->sinks, .hub = s->hub, .dispatch = s->dispatch, .outbox = s->outbox,
                           .redis_url = s->cfg.redis_url, .started_ms = started};
    if ((st = vigil_ops_create(&oc, &s->ops)) != VIGIL_OK) {
        vigil_error_set(err, st, "out of memory");
        goto fail;
    }
    /* the HTTP edge's routes: each wing registers its own handlers */
    vigil_http_route(s->http, "POST", "/v1/events", 0, vigil_ingest_handle_events, s->ingest);
    vigil_http_route(s->http, "GET", "/v1/alerts", 0, alerts_list, s->hub);
    vigil_http_route(s->http, "GET", "/v1/alerts/stream", 0, alerts_stream, s->hub);
    vigil_http_route(s->http, "GET", "/v1/alerts/timeline", 0, alerts_timeline, s->hub);
    vigil_http_route(s->http, "GET", "/v1/alerts/evidence", 0, alerts_evidence, s->hub);
    vigil_control_register(s->control, s->http);
    vigil_ops_register(s->ops, s->http);
    vserver_cluster_routes(s);
    vigil_http_on_stop(s->http, hub_close, s->hub);
    vigil_router_start(s->router);
    vigil_control_start(s->control, s->router, ingest_sync, s->ingest);
    vserver_cluster_hooks(s);
    if ((st = vigil_control_cluster_start(s->control, vigil_ingest_nats(s->ingest), err)) != VIGIL_OK ||   /* issue 14 (h10) */
        (st = vigil_http_start(s->http, err)) != VIGIL_OK || (st = vigil_ingest_start(s->ingest, err)) != VIGIL_OK) {
        vigil_server_stop(s);
        return st;
    }
    /* issue 14 (h8): cluster mode rekeys the raw stream into the keyed one */
    if (s->cfg.cluster_instance) {
        vigil_rekey_config rkc = {.stream = s->cfg.cluster_stream, .subject = s->cfg.cluster_subject,
                                  .partitions = s->cfg.partitions};
        vserver_cluster_rekey_hooks(s, &rkc);
        if ((st = vigil_rekey_start(s->ingest, &rkc, err)) != VIGIL_OK ||
            (st = vserver_cluster_start(s, err)) != VIGIL_OK) {
            vigil_server_stop(s);
            return st;
        }
    }
    *out = s;
    return VIGIL_OK;
fail:
    server_free(s);
    return st;
}

int vigil_server_port(const vigil_server *s) { return vigil_http_port(s->http); }

void vigil_server_log_start(const vigil_server *s) {
    const vigil_server_config *c = &s->cfg;
    vigil_control_stats cs;
    vigil_control_get_stats(s->control, &cs);
    char nats[512];   /* the URL without its user:password */
    vigil_nats_url_redact(c->nats_url ? c->nats_url : "off", nats, sizeof nats);
    vigil_log(VIGIL_LOG_INFO, "serve", "%d rules from %s%s; store %s; NATS %s%s; %d webhook(s); %d workers",
            cs.rules, c->rules, c->watch ? " (watched)" : "", c->redis_url ? "redis" : "memory", nats,
            !c->nats_url ? "" : c->nats_creds ? " (creds)" : c->nats_token ? " (token)" : c->nats_user ? " (user)" : "",
            c->nwebhooks + c->nendpoints, c->workers);
    vigil_log(VIGIL_LOG_INFO, "serve", "listening on %s://127.0.0.1:%d/ (dashboard at /)",
            vigil_http_tls(s->http) ? "https" : "http", vigil_server_port(s));
}

void vigil_server_reload(vigil_server *s) { vigil_control_reload(s->control, "SIGHUP"); }

void vigil_server_stop(vigil_server *s) {
    if (!s) return;
    /* 0: a cluster member hands its pairs back (they stop here, their leases go) */
    vserver_cluster_stop(s);
    /* 1: no new input, no rule change */
    vigil_control_stop(s->control);
    vigil_ingest_stop_intake(s->ingest);
    /* 2: drain: workers finish their queues, commit, hand out and snapshot */
    vigil_router_stop(s->router);
    /* 3: requests still waiting are answered: ?wait ones time out, published ones resume */
    vigil_waiters_destroy(s->waiters);
    s->waiters = NULL;
    vigil_hub_unfollow(s->hub);   /* issue 14 (h10): no alert of another instance once NATS closes */
    vigil_ingest_stop(s->ingest);
    /* 4: the HTTP edge (the hub closes its streams first), then the rest */
    vigil_http_stop(s->http);
    server_free(s);
}

/* cluster_run.c — `vigil serve` in cluster mode (DESIGN.md §7,
 * docs/scaling.md): the lifecycle's part that ties the cluster wing's
 * ownership decisions to the wings that act on them.
 *
 * The cluster wing (server/cluster/) decides which (key group, partition)
 * pairs this instance owns — leases in a NATS KV bucket, fencing epochs in
 * Redis — and calls back here. Taking a pair: the route wing opens it (reads
 * its stored offset and watermark on the pair's worker, a fresh engine),
 * then the ingest wing starts its durable consumer at offset + 1, then the
 * alerts wing reads its outbox stream for webhooks. Losing it: the same in
 * reverse, at once (fetching stops, queued items are dropped, the engine
 * and its cache are freed, the outbox stream is no longer read). A commit
 * refused for a stale epoch reaches the cluster wing through
 * vigil_cluster_fenced, which then gives the pair up on its own thread. */
#include <stdio.h>
#include <string.h>
#include <cjson/cJSON.h>
#include "server_int.h"
#include "server/common/log.h"
#include "server/http/reply.h"

#define OPEN_TIMEOUT_MS 15000

static const char *group_name(vigil_server *s, int g, char *buf, size_t n) {
    vigil_ruleset *rs = vigil_router_ruleset(s->router);
    snprintf(buf, n, "%s", g < vigil_ruleset_group_count(rs) ? vigil_ruleset_group_key(rs, g) : "");
    vigil_ruleset_release(rs);
    return buf;
}

/* The re-keyer is the owner of partition 0 of the key group whose name
 * sorts first: every instance agrees on it by name (group indices are each
 * instance's own: they follow its rule catalog's order). */
static int rekey_pair(vigil_server *s, const char *gname, int p) {
    if (p != 0 || !*gname) return 0;
    vigil_ruleset *rs = vigil_router_ruleset(s->router);
    int first = 1;
    for (int g = 0; g < vigil_ruleset_group_count(rs) && first; g++)
        if (vigil_ruleset_group_rule_count(rs, g) > 0 && strcmp(vigil_ruleset_group_key(rs, g), gname) < 0) first = 0;
    vigil_ruleset_release(rs);
    return first;
}

static void on_acquired(void *ud, int g, int p, uint64_t epoch) {
    vigil_server *s = ud;
    char gname[256];
    group_name(s, g, gname, sizeof gname);
    vigil_error err;
    vigil_error_clear(&err);
    uint64_t seq = 0;
    vigil_status st = vigil_router_pair_open(s->router, g, p, epoch, &seq, OPEN_TIMEOUT_MS, &err);
    if (st == VIGIL_OK) {
        st = vigil_ingest_pair_start(s->ingest, g, gname, p, epoch, seq + 1, &err);
        if (st != VIGIL_OK) vigil_router_pair_close(s->router, g, p);
    }
    if (st != VIGIL_OK) {
        vigil_log(VIGIL_LOG_ERROR, "cluster", "pair %s:p%d: cannot start it: %s; giving it back", gname, p, err.msg);
        vigil_cluster_fenced(s->cluster, g, p);   /* set before the first callback */
        return;
    }
    if (rekey_pair(s, gname, p)) vigil_rekey_set_active(s->ingest, 1, epoch);   /* one re-keyer: the first pair's owner */
    if (s->outbox && vigil_outbox_pairs_add(s->outbox, gname, p, &err) != VIGIL_OK)
        vigil_log(VIGIL_LOG_ERROR, "cluster", "pair %s:p%d: its webhooks: %s", gname, p, err.msg);
    vigil_log(VIGIL_LOG_INFO, "cluster", "pair %s:p%d taken (epoch %llu), resuming after keyed sequence %llu", gname,
              p, (unsigned long long)epoch, (unsigned long long)seq);
}

static void on_lost(void *ud, int g, int p) {
    vigil_server *s = ud;
    char gname[256];
    group_name(s, g, gname, sizeof gname);
    if (rekey_pair(s, gname, p)) vigil_rekey_set_active(s->ingest, 0, 0);   /* returns once its round is done */
    vigil_ingest_pair_stop(s->ingest, g, p);
    vigil_router_pair_close(s->router, g, p);
    vigil_error err;
    vigil_error_clear(&err);
    if (s->outbox && vigil_outbox_pairs_remove(s->outbox, gname, p, &err) != VIGIL_OK)
        vigil_log(VIGIL_LOG_WARN, "cluster", "pair %s:p%d: its webhooks: %s", gname, p, err.msg);
    vigil_log(VIGIL_LOG_INFO, "cluster", "pair %s:p%d given up", gname, p);
}

/* On a worker's thread: only flags it (the cluster wing's thread gives it up). */
static void on_fenced(void *ud, int g, int p, uint64_t epoch) {
    vigil_server *s = ud;
    (void)epoch;
    if (s->cluster) vigil_cluster_fenced(s->cluster, g, p);   /* a pair was ours: set */
}

/* The cluster wing once vserver_cluster_start returned (the control wing's
 * hooks start before it: until then they do nothing). */
static vigil_cluster *ready(vigil_server *s) { return atomic_load(&s->cluster_ready) ? s->cluster : NULL; }

/* The control wing's versions hooks, through our members entry. After every
 * rule change the control wing applies, and every 2 s: our versions, and
 * the key groups a change added into the pairs the cluster wing deals out
 * (groups only grow, in order). */
static void publish_versions(void *ud, const char *json) {
    vigil_server *s = ud;
    vigil_cluster *c = ready(s);
    if (!c) return;
    vigil_cluster_set_versions(c, json);
    vigil_ruleset *rs = vigil_router_ruleset(s->router);
    int ng = vigil_ruleset_group_count(rs);
    if (ng > atomic_load(&s->cluster_groups)) {
        const char *groups[64];
        for (int g = 0; g < ng && g < 64; g++) groups[g] = vigil_ruleset_group_key(rs, g);
        vigil_cluster_set_groups(c, groups, ng < 64 ? ng : 64);
        atomic_store(&s->cluster_groups, ng);
    }
    vigil_ruleset_release(rs);
}

static cJSON *read_versions(void *ud) {
    vigil_cluster *c = ready(ud);
    cJSON *all = c ? vigil_cluster_json(c) : NULL, *out = all ? cJSON_CreateObject() : NULL;
    const cJSON *m, *members = out ? cJSON_GetObjectItemCaseSensitive(all, "members") : NULL;
    cJSON_ArrayForEach(m, members) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "instance");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "versions");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "live")) && cJSON_IsString(name) && cJSON_IsObject(v))
            cJSON_AddItemToObject(out, name->valuestring, cJSON_Duplicate(v, 1));
    }
    cJSON_Delete(all);
    return out;
}

void vserver_cluster_hooks(vigil_server *s) {
    if (!s->cfg.cluster_instance) return;
    vigil_control_cluster_hooks h = {.publish_versions = publish_versions, .read_versions = read_versions, .ud = s};
    vigil_control_set_cluster_hooks(s->control, &h);
}

/* The pair fetcher and the re-keyer ask before each fetch: only while the
 * lease is known fresh (a process paused past its lease fetches nothing). */
static int may_fetch(void *ud, int g, int p, uint64_t epoch) {
    vigil_server *s = ud;
    return s->cluster && vigil_cluster_fresh_epoch(s->cluster, g, p) == epoch;
}

static int may_rekey(void *ud, uint64_t epoch) {
    vigil_server *s = ud;
    if (!s->cluster) return 0;
    vigil_ruleset *rs = vigil_router_ruleset(s->router);
    int ok = 0;
    for (int g = 0; g < vigil_ruleset_group_count(rs) && !ok; g++)
        ok = rekey_pair(s, vigil_ruleset_group_key(rs, g), 0) && vigil_cluster_fresh_epoch(s->cluster, g, 0) == epoch;
    vigil_ruleset_release(rs);
    return ok;
}

void vserver_cluster_rekey_hooks(vigil_server *s, vigil_rekey_config *rc) {
    rc->gated = 1;   /* one re-keyer: the owner of the first pair (on_acquired) */
    rc->may_rekey = may_rekey;
    rc->may_ud = s;
}

static uint64_t pair_lag(void *ud, int g, int p) { return vigil_ingest_pair_pending(((vigil_server *)ud)->ingest, g, p); }

void vserver_cluster_router(vigil_server *s, vigil_router_config *rc) {
    if (!s->cfg.cluster_instance) return;
    rc->cluster = 1;
    rc->fenced = on_fenced;
    rc->fenced_ud = s;
}

/* After the ingest wing started: the pair fetcher, then the cluster wing. */
vigil_status vserver_cluster_start(vigil_server *s, vigil_error *err) {
    if (!s->cfg.cluster_instance) return VIGIL_OK;
    vigil_pairs_config pc = {.stream = s->cfg.cluster_stream, .subject = s->cfg.cluster_subject,
                             .consumer = s->cfg.consumer, .partitions = s->cfg.partitions, .may_fetch = may_fetch,
                             .ud = s};
    vigil_status st = vigil_ingest_pairs_start(s->ingest, &pc, err);
    if (st != VIGIL_OK) return st;
    vigil_ruleset *rs = vigil_router_ruleset(s->router);
    int ng = vigil_ruleset_group_count(rs);
    const char *groups[64];
    for (int g = 0; g < ng && g < 64; g++) groups[g] = vigil_ruleset_group_key(rs, g);
    char http_url[300];
    snprintf(http_url, sizeof http_url, "%s://127.0.0.1:%d", vigil_http_tls(s->http) ? "https" : "http",
             vigil_http_port(s->http));
    vigil_cluster_config cc = {.nc = vigil_ingest_nats(s->ingest), .redis_url = s->cfg.redis_url,
                               .redis_prefix = s->cfg.redis_prefix, .instance = s->cfg.cluster_instance,
                               .http_url = http_url, .lease_ms = s->cfg.cluster_lease_ms,
                               .heartbeat_ms = s->cfg.cluster_heartbeat_ms, .kv_prefix = s->cfg.cluster_kv_prefix,
                               .groups = groups, .ngroups = ng < 64 ? ng : 64, .partitions = s->cfg.partitions,
                               .acquired = on_acquired, .lost = on_lost, .ud = s};
    atomic_store(&s->cluster_groups, ng);
    st = vigil_cluster_start(&cc, &s->cluster, err);   /* *out is set before its thread runs */
    vigil_ruleset_release(rs);
    if (st != VIGIL_OK) return st;
    vigil_cluster_set_lag_fn(s->cluster, pair_lag, s);
    vigil_ops_set_cluster(s->ops, s->cluster);
    atomic_store(&s->cluster_ready, 1);
    return VIGIL_OK;
}

/* First at stop: every pair handed back (stopped here, leases deleted). */
void vserver_cluster_stop(vigil_server *s) {
    if (s->cluster) vigil_cluster_stop(s->cluster);
}

void vserver_cluster_free(vigil_server *s) {
    atomic_store(&s->cluster_ready, 0);   /* the HTTP edge and ops are gone by now */
    vigil_cluster_destroy(s->cluster);
    s->cluster = NULL;
}

/* GET /v1/cluster (viewer): the cluster wing's view, once it runs. */
static enum MHD_Result get_cluster(void *ctx, struct MHD_Connection *conn, const char *url, vigil_http_req *r) {
    (void)url;
    (void)r;
    vigil_server *s = ctx;
    cJSON *o = atomic_load(&s->cluster_ready) ? vigil_cluster_json(s->cluster) : NULL;
    if (!o) return vigil_http_problem(conn, 503, "Service Unavailable", "the cluster wing is starting", NULL, NULL);
    return vigil_http_send_json(conn, 200, o);
}

void vserver_cluster_routes(vigil_server *s) {
    if (s->cfg.cluster_instance) vigil_http_route(s->http, "GET", "/v1/cluster", 0, get_cluster, s);
}

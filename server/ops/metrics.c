/* metrics.c — GET /metrics: every wing's counters in the Prometheus text
 * format (version 0.0.4), read through the wings' stats functions. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "ops_int.h"
#include "server/cluster/cluster.h"
#include "server/http/reply.h"
#include "server/alerts/webhooks.h"
#include "server/alerts/follow.h"   /* issue 14 (h10): vigil_cluster_alerts_total */
#include "vigil/clock.h"
#include "server/common/histogram.h"
#include "server/common/version.h"

/* vigil_alerts_total per (rule, mode), summed over the rule's versions. */
typedef struct rule_counts { struct { char rule[64]; vigil_mode mode; unsigned long long n; } *v; int n, cap; } rule_counts;
static void add_count(void *ud, const char *rule, int version, vigil_mode mode, unsigned long long n) {
    (void)version;
    rule_counts *rc = ud;
    for (int i = 0; i < rc->n; i++)
        if (rc->v[i].mode == mode && strcmp(rc->v[i].rule, rule) == 0) {
            rc->v[i].n += n;
            return;
        }
    if (rc->n == rc->cap) {
        int cap = rc->cap ? rc->cap * 2 : 32;
        void *nv = realloc(rc->v, (size_t)cap * sizeof *rc->v);
        if (!nv) return;
        rc->v = nv;
        rc->cap = cap;
    }
    snprintf(rc->v[rc->n].rule, sizeof rc->v[0].rule, "%s", rule);
    rc->v[rc->n].mode = mode;
    rc->v[rc->n++].n = n;
}

typedef struct sbuf { char *p; size_t len, cap; } sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + (size_t)n + 1) cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) return;
        b->p = np;
        b->cap = cap;
    }
}

static void limited_line(void *ud, const char *name, unsigned long long n) {
    sb_printf(ud, "vigil_http_rate_limited_total{token=\"%s\"} %llu\n", name, n);
}

static void sb_emit(void *ud, const char *text, size_t len) { sb_printf(ud, "%.*s", (int)len, text); }

enum MHD_Result vops_metrics(void *ctx, struct MHD_Connection *c, const char *url, vigil_http_req *r) {
    vigil_ops *ops = ctx;
    const vigil_ops_config *s = &ops->cfg;
    sbuf b = {0};
    vigil_router_stats rs;
    vigil_router_get_stats(s->router, &rs);
    vigil_ingest_stats is;
    vigil_ingest_get_stats(s->ingest, &is);
    vigil_sinks_stats ss;
    vigil_sinks_get_stats(s->sinks, &ss);
    vigil_http_stats hs;
    vigil_http_get_stats(s->http, &hs);
    unsigned long long processed = rs.processed, late = rs.late, keys = rs.keys, runs = rs.runs,
                       depth = rs.queue_depth, commits = rs.commits, cerr = rs.commit_errors,
                       expired = rs.keys_expired, evicted = rs.runs_evicted, fnerr = rs.function_errors,
                       skipped = rs.skipped, snaps = rs.snapshots;
    int down = rs.store_down;
    sb_printf(&b, "# HELP vigil_events_received_total Events accepted from a source.\n# TYPE vigil_events_received_total counter\n");
    sb_printf(&b, "vigil_events_received_total{source=\"http\"} %llu\n", (unsigned long long)is.http_events);
    sb_printf(&b, "vigil_events_received_total{source=\"nats\"} %llu\n", (unsigned long long)is.nats_events);
    sb_printf(&b, "# HELP vigil_events_rejected_total Events refused, by reason.\n# TYPE vigil_events_rejected_total counter\n");
    sb_printf(&b, "vigil_events_rejected_total{reason=\"malformed\"} %llu\n", (unsigned long long)is.rejected_bad);
    sb_printf(&b, "vigil_events_rejected_total{reason=\"no_key\"} %llu\n", (unsigned long long)is.rejected_nokey);
    sb_printf(&b, "vigil_events_rejected_total{reason=\"queue_full\"} %llu\n", (unsigned long long)is.rejected_full);
    sb_printf(&b, "vigil_events_rejected_total{reason=\"rate_limited\"} %llu\n", (unsigned long long)is.rejected_rate);
    sb_printf(&b, "# HELP vigil_http_rate_limited_total Requests refused for their token's rate (429, or 413 over its burst), by token name.\n# TYPE vigil_http_rate_limited_total counter\n");
    vigil_http_foreach_limited(s->http, limited_line, &b);
    static const char *const srcs[] = {"http", "nats", "jetstream"};
    sb_printf(&b, "# HELP vigil_source_event_time_lag_seconds Wall clock minus the newest event time a source has "
                  "delivered (sources that delivered none are absent).\n# TYPE vigil_source_event_time_lag_seconds gauge\n");
    int64_t wall = vigil_now_ms();
    for (int i = 0; i < 3; i++)
        if (is.newest_ms[i] > 0)
            sb_printf(&b, "vigil_source_event_time_lag_seconds{source=\"%s\"} %.3f\n", srcs[i],
                      (double)(wall - is.newest_ms[i]) / 1000.0);
    sb_printf(&b, "# HELP vigil_events_processed_total Event deliveries to key groups processed by workers.\n# TYPE vigil_events_processed_total counter\n");
    sb_printf(&b, "vigil_events_processed_total %llu\n", processed);
    sb_printf(&b, "# HELP vigil_events_late_total Events older than watermark minus allowed lateness.\n# TYPE vigil_events_late_total counter\n");
    sb_printf(&b, "vigil_events_late_total %llu\n", late);
    sb_printf(&b, "# HELP vigil_queue_depth Items waiting in worker queues.\n# TYPE vigil_queue_depth gauge\nvigil_queue_depth %llu\n", depth);
    sb_printf(&b, "# HELP vigil_state_keys Keys with state in worker memory.\n# TYPE vigil_state_keys gauge\nvigil_state_keys %llu\n", keys);
    sb_printf(&b, "# HELP vigil_state_keys_expired_total Idle keys whose state was dropped.\n# TYPE vigil_state_keys_expired_total counter\nvigil_state_keys_expired_total %llu\n", expired);
    sb_printf(&b, "# HELP vigil_runs_evicted_total Partial matches evicted by max_runs.\n# TYPE vigil_runs_evicted_total counter\nvigil_runs_evicted_total %llu\n", evicted);
    sb_printf(&b, "# HELP vigil_function_errors_total Calls of Lua function predicates or alert functions that failed (error or budget): false, or the built-in details.\n# TYPE vigil_function_errors_total counter\nvigil_function_errors_total %llu\n", fnerr);
    sb_printf(&b, "# HELP vigil_late_published_total Late events published to vigil.late.<key field>.\n# TYPE vigil_late_published_total counter\nvigil_late_published_total %llu\n",
              ss.late_published);
    sb_printf(&b, "# HELP vigil_partial_matches Live pattern runs.\n# TYPE vigil_partial_matches gauge\nvigil_partial_matches %llu\n", runs);
    sb_printf(&b, "# HELP vigil_state_commits_total Batches committed to the state store.\n# TYPE vigil_state_commits_total counter\nvigil_state_commits_total %llu\n", commits);
    sb_printf(&b, "# HELP vigil_state_errors_total Failed state loads or commits (retried).\n# TYPE vigil_state_errors_total counter\nvigil_state_errors_total %llu\n", cerr);
    const vigil_hist *h_lat, *h_commit, *h_batch;
    vigil_router_hists(s->router, &h_lat, &h_commit, &h_batch);
    vigil_hist_write(h_commit, "vigil_commit_seconds", "Time one worker spent committing a batch (state, offsets, alerts).",
                     "", sb_emit, &b);
    vigil_hist_write(h_batch, "vigil_batch_items", "Items in one worker batch (an item is an event for one key group).",
                     "", sb_emit, &b);
    vigil_hist_write(h_lat, "vigil_alert_latency_seconds",
                     "Event to alert: from the event's queueing to a worker to its alert's hand-off to the sinks, after the commit.",
                     "", sb_emit, &b);
    sb_printf(&b, "# HELP vigil_events_skipped_total Redelivered events at or below their pair's committed offset (already applied).\n"
                  "# TYPE vigil_events_skipped_total counter\nvigil_events_skipped_total %llu\n", skipped);
    if (s->redis_url) {
        unsigned long long rt = rs.redis_round_trips, ld = rs.redis_keys_loaded, sv = rs.redis_keys_saved;
        sb_printf(&b, "# HELP vigil_redis_round_trips_total Round trips to Redis for state (loads and commits).\n# TYPE vigil_redis_round_trips_total counter\nvigil_redis_round_trips_total %llu\n", rt);
        sb_printf(&b, "# HELP vigil_redis_keys_total Key states loaded from and saved to Redis.\n# TYPE vigil_redis_keys_total counter\n"
                      "vigil_redis_keys_total{op=\"load\"} %llu\nvigil_redis_keys_total{op=\"save\"} %llu\n", ld, sv);
    }
    sb_printf(&b, "# HELP vigil_snapshots_total Memory-store snapshots written.\n# TYPE vigil_snapshots_total counter\nvigil_snapshots_total %llu\n", snaps);
    sb_printf(&b, "# HELP vigil_store_up Whether the last state load or commit succeeded.\n# TYPE vigil_store_up gauge\nvigil_store_up %d\n", !down);
    sb_printf(&b, "# HELP vigil_intake_paused Whether intake is paused (a store or the event stream unreachable).\n# TYPE vigil_intake_paused gauge\nvigil_intake_paused %d\n", vigil_ingest_paused(s->ingest));
    if (is.jetstream) {
        sb_printf(&b, "# HELP vigil_jetstream_messages_total JetStream messages fetched and acked.\n# TYPE vigil_jetstream_messages_total counter\n");
        sb_printf(&b, "vigil_jetstream_messages_total{outcome=\"fetched\"} %llu\n", is.js_fetched);
        sb_printf(&b, "vigil_jetstream_messages_total{outcome=\"acked\"} %llu\n", is.js_acked);
        sb_printf(&b, "vigil_jetstream_messages_total{outcome=\"with_bad_lines\"} %llu\n", is.js_msgs_bad);
        sb_printf(&b, "# HELP vigil_jetstream_fetch_errors_total Failed fetches (retried).\n# TYPE vigil_jetstream_fetch_errors_total counter\nvigil_jetstream_fetch_errors_total %llu\n",
                  is.js_fetch_errors);
        sb_printf(&b, "# HELP vigil_jetstream_lag Messages fetched and not yet acked.\n# TYPE vigil_jetstream_lag gauge\nvigil_jetstream_lag %llu\n",
                  is.js_fetched - is.js_acked);
    }
    if (is.rekey_running) {   /* issue 14 (h8): cluster mode's rekey stage */
        sb_printf(&b, "# HELP vigil_rekey_messages_total Raw stream messages rekeyed: acked once all their copies were stored, or handed back (Nak) after a failed publish.\n# TYPE vigil_rekey_messages_total counter\n");
        sb_printf(&b, "vigil_rekey_messages_total{outcome=\"acked\"} %llu\nvigil_rekey_messages_total{outcome=\"handed_back\"} %llu\n",
                  is.rekey_msgs, is.rekey_naks);
        sb_printf(&b, "# HELP vigil_rekey_copies_total Event copies (one per key group of an event) stored in the keyed stream, or refused or unconfirmed (the raw message or POST is retried).\n# TYPE vigil_rekey_copies_total counter\n");
        sb_printf(&b, "vigil_rekey_copies_total{outcome=\"stored\"} %llu\nvigil_rekey_copies_total{outcome=\"failed\"} %llu\n",
                  is.rekey_copies, is.rekey_publish_failures);
    }
    vigil_control_stats cs;
    vigil_control_get_stats(s->control, &cs);
    sb_printf(&b, "# HELP vigil_rules Rules running (not deleted).\n# TYPE vigil_rules gauge\nvigil_rules %d\n", cs.rules);
    sb_printf(&b, "# HELP vigil_rule_versions_draining Replaced rule versions still finishing their partial matches.\n# TYPE vigil_rule_versions_draining gauge\nvigil_rule_versions_draining %d\n", cs.draining);
    sb_printf(&b, "# HELP vigil_rule_changes_total Rule changes applied (API, reloads, retirements).\n# TYPE vigil_rule_changes_total counter\nvigil_rule_changes_total %llu\n", cs.changes);
    sb_printf(&b, "# HELP vigil_rule_reloads_total Reloads of the rules directory (start, SIGHUP, --watch).\n# TYPE vigil_rule_reloads_total counter\nvigil_rule_reloads_total %llu\n", cs.reloads);
    sb_printf(&b, "# HELP vigil_rule_reload_errors_total Rule files a reload refused (did not compile, conflicting); their rules kept running.\n# TYPE vigil_rule_reload_errors_total counter\nvigil_rule_reload_errors_total %llu\n", cs.reload_errors);
    sb_printf(&b, "# HELP vigil_rule_swaps_total Engine switches to a new rule set, summed over workers.\n# TYPE vigil_rule_swaps_total counter\nvigil_rule_swaps_total %llu\n", rs.swaps);
    sb_printf(&b, "# HELP vigil_rule_swap_pause_seconds_total Time workers spent switching rule sets at batch boundaries.\n# TYPE vigil_rule_swap_pause_seconds_total counter\nvigil_rule_swap_pause_seconds_total %.6f\n", (double)rs.swap_us_sum / 1e6);
    sb_printf(&b, "# HELP vigil_rule_swap_pause_max_seconds The longest switch of one worker.\n# TYPE vigil_rule_swap_pause_max_seconds gauge\nvigil_rule_swap_pause_max_seconds %.6f\n", (double)rs.swap_us_max / 1e6);
    sb_printf(&b, "# HELP vigil_alerts_snoozed_total Alerts held back by a snooze (POST /v1/rules/{name}/snooze).\n# TYPE vigil_alerts_snoozed_total counter\nvigil_alerts_snoozed_total %llu\n", cs.snoozed_alerts);
    sb_printf(&b, "# HELP vigil_alerts_total Alerts produced, by rule and mode.\n# TYPE vigil_alerts_total counter\n");
    rule_counts rc = {0};
    vigil_sinks_foreach_rule(s->sinks, add_count, &rc);   /* every version, deleted rules too */
    vigil_ruleset *cur = vigil_router_ruleset(s->router);  /* and every running rule, from 0 */
    for (int i = 0; i < vigil_ruleset_rule_count(cur); i++)
        add_count(&rc, vigil_ruleset_rule_name(cur, i), 0, vigil_ruleset_rule_mode(cur, i), 0);
    vigil_ruleset_release(cur);
    for (int i = 0; i < rc.n; i++)
        sb_printf(&b, "vigil_alerts_total{rule=\"%s\",mode=\"%s\"} %llu\n", rc.v[i].rule, vigil_mode_str(rc.v[i].mode),
                  rc.v[i].n);
    free(rc.v);
    if (cs.clustered) {   /* issue 14 (h10): rules and alerts across the cluster, docs/scaling.md */
        sb_printf(&b, "# HELP vigil_cluster_rules_generation The shared rule catalog's generation this instance runs.\n# TYPE vigil_cluster_rules_generation gauge\nvigil_cluster_rules_generation %llu\n", cs.generation);
        sb_printf(&b, "# HELP vigil_cluster_rule_syncs_total Catalogs read from the store after another instance's change.\n# TYPE vigil_cluster_rule_syncs_total counter\nvigil_cluster_rule_syncs_total %llu\n", cs.cluster_syncs);
        sb_printf(&b, "# HELP vigil_cluster_rule_notices_total Notices on vigil.control.rules, sent and seen (from others).\n# TYPE vigil_cluster_rule_notices_total counter\n"
                      "vigil_cluster_rule_notices_total{direction=\"sent\"} %llu\nvigil_cluster_rule_notices_total{direction=\"seen\"} %llu\n", cs.notices_sent, cs.notices_seen);
        sb_printf(&b, "# HELP vigil_cluster_rule_conflicts_total Changes refused (409): made at an older catalog generation than the store's.\n# TYPE vigil_cluster_rule_conflicts_total counter\nvigil_cluster_rule_conflicts_total %llu\n", cs.sync_conflicts);
        vigil_follow_stats fs;
        vigil_hub_follow_stats(s->hub, &fs);
        sb_printf(&b, "# HELP vigil_cluster_alerts_total Alerts of other instances from NATS, by outcome (duplicate: local ones too).\n# TYPE vigil_cluster_alerts_total counter\n");
        const struct { const char *o; unsigned long long n; } fo[] = {{"kept", fs.kept}, {"duplicate", fs.dups}, {"own", fs.own},
                                                                      {"bad", fs.bad}, {"dropped", fs.dropped}};
        for (size_t i = 0; i < sizeof fo / sizeof fo[0]; i++)
            sb_printf(&b, "vigil_cluster_alerts_total{outcome=\"%s\"} %llu\n", fo[i].o, fo[i].n);
    }
    struct vigil_cluster *cl = atomic_load(&ops->cluster);
    if (cl) {   /* issue 14: pair ownership (server/cluster/) and fenced commits (route wing) */
        vigil_cluster_stats st;
        vigil_cluster_get_stats(cl, &st);
        sb_printf(&b, "# HELP vigil_cluster_members Live members of the cluster.\n# TYPE vigil_cluster_members gauge\nvigil_cluster_members %llu\n", st.members);
        sb_printf(&b, "# HELP vigil_cluster_pair_moves_total (key group, partition) pairs this instance took or gave up.\n# TYPE vigil_cluster_pair_moves_total counter\n"
                      "vigil_cluster_pair_moves_total{direction=\"acquired\"} %llu\nvigil_cluster_pair_moves_total{direction=\"lost\"} %llu\n", st.acquired, st.lost);
        sb_printf(&b, "# HELP vigil_cluster_lease_renewals_total Lease renewals of held pairs, by outcome.\n# TYPE vigil_cluster_lease_renewals_total counter\n"
                      "vigil_cluster_lease_renewals_total{outcome=\"ok\"} %llu\nvigil_cluster_lease_renewals_total{outcome=\"failed\"} %llu\n", st.renewals, st.renew_failures);
        sb_printf(&b, "# HELP vigil_cluster_pairs_fenced_total Pair commits Redis refused because another instance took the pair (a stale fencing epoch): nothing of them was written.\n# TYPE vigil_cluster_pairs_fenced_total counter\nvigil_cluster_pairs_fenced_total %llu\n", rs.pairs_fenced);
    }
    vigil_hub_counters hc;
    int hub_ok = vigil_hub_stats(s->hub, &hc) == VIGIL_OK;
    if (hub_ok)
        sb_printf(&b, "# HELP vigil_sse_subscribers Open alert streams.\n# TYPE vigil_sse_subscribers gauge\nvigil_sse_subscribers %zu\n", hc.subscribers);
    sb_printf(&b, "# HELP vigil_limits_refused_total Requests, events and connections refused by a limit (limits.*), by limit.\n"
                  "# TYPE vigil_limits_refused_total counter\n");
    const struct { const char *name; unsigned long long n; } lim[] = {
        {"max_fields", is.limit_fields}, {"max_depth", is.limit_depth}, {"max_key_bytes", is.limit_key},
        {"max_lines", is.limit_lines}, {"max_rules", cs.refused_max_rules},
        {"max_sse_clients", hub_ok ? hc.refused : 0}, {"max_conns_per_ip", hs.refused_per_ip},
        {"request_timeout", hs.timed_out}, {"max_header_bytes", hs.headers_too_big}};
    for (size_t i = 0; i < sizeof lim / sizeof lim[0]; i++)
        sb_printf(&b, "vigil_limits_refused_total{limit=\"%s\"} %llu\n", lim[i].name, lim[i].n);
    vigil_webhooks_metrics(s->dispatch, s->outbox, sb_emit, &b);
    sb_printf(&b, "# HELP vigil_nats_published_total Alerts published to NATS.\n# TYPE vigil_nats_published_total counter\nvigil_nats_published_total %llu\n",
              ss.nats_published);
    sb_printf(&b, "# HELP vigil_alerts_lost_total Alerts the engine produced that could not be kept (out of memory), logged.\n# TYPE vigil_alerts_lost_total counter\nvigil_alerts_lost_total %llu\n", ss.lost);
    sb_printf(&b, "# HELP vigil_http_clients_gone_total Responses cut short because the client went away (e.g. a closed dashboard tab).\n# TYPE vigil_http_clients_gone_total counter\nvigil_http_clients_gone_total %llu\n", hs.clients_gone);
    if (rs.watermark_min > INT64_MIN)
        sb_printf(&b, "# HELP vigil_watermark_seconds The lowest worker watermark (event time, seconds since the epoch).\n# TYPE vigil_watermark_seconds gauge\nvigil_watermark_seconds %.3f\n", (double)rs.watermark_min / 1000.0);
    sb_printf(&b, "# HELP vigil_build_info The version and the commit of this build.\n# TYPE vigil_build_info gauge\n"
                  "vigil_build_info{version=\"%s\",commit=\"%s\"} 1\n", vigil_version(), vigil_commit());
    vops_process_metrics(sb_emit, &b);
    sb_printf(&b, "# HELP vigil_uptime_seconds Seconds since start.\n# TYPE vigil_uptime_seconds gauge\nvigil_uptime_seconds %.3f\n",
              (double)(vigil_now_ms() - s->started_ms) / 1000.0);
    enum MHD_Result res = vigil_http_send_text(c, 200, "text/plain; version=0.0.4; charset=utf-8", b.p ? b.p : "", b.len);
    free(b.p);
    return res;
}

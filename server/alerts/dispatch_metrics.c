/* dispatch_metrics.c — webhook delivery's metrics in Prometheus text
 * format: the dispatcher's (vigil_dispatch_metrics, dispatch.h), written
 * from the public per-endpoint stats so that dispatch.c keeps only
 * delivery, and the memory outbox's on top of them (vigil_webhooks_metrics,
 * webhooks.h). Both live here so that one helper (say) writes every metric
 * line of the alerts wing. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "dispatch.h"
#include "webhooks.h"

typedef struct out {
    void (*emit)(void *, const char *, size_t);
    void *ud;
} out;

static void say(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(out *o, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n >= sizeof line) n = (int)sizeof line - 1;
    o->emit(o->ud, line, (size_t)n);
}

void vigil_dispatch_metrics(vigil_dispatch *d, void (*emit)(void *ud, const char *text, size_t len),
                            void *ud) {
    int n = vigil_dispatch_count(d);
    if (!emit || n == 0) return;
    vigil_dispatch_stats *st = calloc((size_t)n, sizeof *st);
    if (!st) return;   /* no memory: no webhook metrics this time */
    for (int i = 0; i < n; i++) vigil_dispatch_stats_get(d, i, &st[i]);
    out o = {emit, ud};
    /* endpoint names are [A-Za-z0-9_-]: nothing to escape in label values */
    say(&o, "# HELP vigil_webhook_deliveries_total Alerts finished per webhook endpoint: delivered "
            "(2xx), dead_letter (gave up, not retryable, endpoint disabled) or filtered (shadow, rule, "
            "severity).\n# TYPE vigil_webhook_deliveries_total counter\n");
    for (int i = 0; i < n; i++) {
        const vigil_dispatch_stats *ep = &st[i];
        say(&o, "vigil_webhook_deliveries_total{endpoint=\"%s\",outcome=\"delivered\"} %llu\n", ep->name,
            ep->delivered);
        say(&o, "vigil_webhook_deliveries_total{endpoint=\"%s\",outcome=\"dead_letter\"} %llu\n", ep->name,
            ep->dead);
        say(&o, "vigil_webhook_deliveries_total{endpoint=\"%s\",outcome=\"filtered\"} %llu\n", ep->name,
            ep->filtered);
    }
    say(&o, "# HELP vigil_webhook_attempts_total HTTP requests started per webhook endpoint.\n"
            "# TYPE vigil_webhook_attempts_total counter\n");
    for (int i = 0; i < n; i++)
        say(&o, "vigil_webhook_attempts_total{endpoint=\"%s\"} %llu\n", st[i].name,
            st[i].attempts);
    say(&o, "# HELP vigil_webhook_retries_total Retries scheduled after a failed attempt (timeout, "
            "transport error, 408, 429, 5xx).\n# TYPE vigil_webhook_retries_total counter\n");
    for (int i = 0; i < n; i++)
        say(&o, "vigil_webhook_retries_total{endpoint=\"%s\"} %llu\n", st[i].name,
            st[i].retries);
    say(&o, "# HELP vigil_webhook_dead_letters_total Alerts written to the dead-letter list.\n"
            "# TYPE vigil_webhook_dead_letters_total counter\n");
    for (int i = 0; i < n; i++)
        say(&o, "vigil_webhook_dead_letters_total{endpoint=\"%s\"} %llu\n", st[i].name,
            st[i].dead);
    say(&o, "# HELP vigil_webhook_inflight HTTP requests running now.\n"
            "# TYPE vigil_webhook_inflight gauge\n");
    for (int i = 0; i < n; i++)
        say(&o, "vigil_webhook_inflight{endpoint=\"%s\"} %llu\n", st[i].name,
            st[i].inflight);
    say(&o, "# HELP vigil_webhook_endpoint_disabled 1 once the endpoint answered 410 Gone (until restart).\n"
            "# TYPE vigil_webhook_endpoint_disabled gauge\n");
    for (int i = 0; i < n; i++)
        say(&o, "vigil_webhook_endpoint_disabled{endpoint=\"%s\"} %d\n", st[i].name,
            st[i].disabled);
    say(&o, "# HELP vigil_outbox_pending Alerts in the outbox not yet acked by the endpoint.\n"
            "# TYPE vigil_outbox_pending gauge\n");
    for (int i = 0; i < n; i++) {
        uint64_t depth = 0;
        if (vigil_dispatch_depth(d, i, &depth, NULL) == VIGIL_OK)
            say(&o, "vigil_outbox_pending{endpoint=\"%s\"} %llu\n", st[i].name, (unsigned long long)depth);
    }
    say(&o, "# HELP vigil_webhook_delivery_seconds Time from the alert's outbox append to its 2xx, "
            "waits and retries included.\n# TYPE vigil_webhook_delivery_seconds histogram\n");
    for (int i = 0; i < n; i++) {
        const vigil_dispatch_stats *ep = &st[i];
        unsigned long long cum = 0;
        for (size_t b = 0; b < VIGIL_DISPATCH_NBUCKETS; b++) {
            cum += ep->hist[b];
            say(&o, "vigil_webhook_delivery_seconds_bucket{endpoint=\"%s\",le=\"%g\"} %llu\n", ep->name,
                vigil_dispatch_buckets[b], cum);
        }
        cum += ep->hist[VIGIL_DISPATCH_NBUCKETS];
        say(&o, "vigil_webhook_delivery_seconds_bucket{endpoint=\"%s\",le=\"+Inf\"} %llu\n", ep->name, cum);
        say(&o, "vigil_webhook_delivery_seconds_sum{endpoint=\"%s\"} %.6f\n", ep->name,
            (double)ep->hist_sum_us / 1e6);
        say(&o, "vigil_webhook_delivery_seconds_count{endpoint=\"%s\"} %llu\n", ep->name,
            ep->hist_count);
    }
    free(st);
}

void vigil_webhooks_metrics(vigil_dispatch *d, vigil_outbox *ob, void (*emit)(void *ud, const char *text, size_t len),
                            void *ud) {
    if (!emit) return;
    if (d) vigil_dispatch_metrics(d, emit, ud);
    vigil_outbox_mem_counters c;
    if (!ob || vigil_outbox_mem_stats(ob, &c) != VIGIL_OK) return;
    out o = {emit, ud};
    say(&o, "# HELP vigil_outbox_memory_refused_total Alerts not queued for webhooks because the in-memory "
            "outbox was full.\n# TYPE vigil_outbox_memory_refused_total counter\n"
            "vigil_outbox_memory_refused_total %llu\n", c.refused);
    say(&o, "# HELP vigil_outbox_memory_held Alerts held by the in-memory outbox (not yet finished by every "
            "endpoint).\n# TYPE vigil_outbox_memory_held gauge\nvigil_outbox_memory_held %zu\n", c.held);
}

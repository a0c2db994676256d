/* core_bare.c — the ceiling of core-NATS ingest (issue 4, item 2): a bare
 * subscriber that only counts, on the subject vigil subscribes to.
 *
 * It subscribes to --subject (default vigil.events.>) with an async
 * callback and the same pending limits vigil sets (1 M messages, 1 GiB), so
 * the only difference to `vigil serve --nats` is what the callback does
 * (here: count; vigil: decode, route, match). It answers requests on
 * --progress SUBJ (default bench.progress) with its count, which is how
 * bench_nats_pub paces itself (and learns when everything arrived). It
 * exits once --count N messages arrived and a progress request saw them (or
 * 5 s later), or after --idle S seconds without a message, printing RESULT
 * lines: messages, its own first-to-last rate, and what was dropped (the
 * library's slow-consumer drops, and the async errors reported). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <nats/nats.h>
#include "benchutil.h"

static atomic_llong received;
static atomic_int answered_all, slow_errors;
static long long target = -1;
static double t_first, t_last;

static void on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)nc;
    (void)sub;
    (void)closure;
    long long n = atomic_fetch_add(&received, 1) + 1;
    if (n == 1) t_first = bu_mono();
    if (n == target) t_last = bu_mono();
    natsMsg_Destroy(msg);
}

static void on_progress(natsConnection *nc, natsSubscription *sub, natsMsg *msg, void *closure) {
    (void)sub;
    (void)closure;
    char buf[32];
    long long n = atomic_load(&received);
    snprintf(buf, sizeof buf, "%lld", n);
    if (natsMsg_GetReply(msg)) natsConnection_PublishString(nc, natsMsg_GetReply(msg), buf);
    if (target >= 0 && n >= target) {
        natsConnection_Flush(nc);
        atomic_store(&answered_all, 1);
    }
    natsMsg_Destroy(msg);
}

static void on_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure) {
    (void)nc;
    (void)sub;
    (void)closure;
    if (atomic_fetch_add(&slow_errors, 1) < 5) fprintf(stderr, "core_bare: async error: %s\n", natsStatus_GetText(err));
}

int main(int argc, char **argv) {
    const char *url = NULL, *subject = "vigil.events.>", *psubj = "bench.progress";
    double idle = 30;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--nats") == 0) url = argv[i + 1];
        else if (strcmp(argv[i], "--subject") == 0) subject = argv[i + 1];
        else if (strcmp(argv[i], "--progress") == 0) psubj = argv[i + 1];
        else if (strcmp(argv[i], "--count") == 0) target = bu_count(argv[i + 1]);
        else if (strcmp(argv[i], "--idle") == 0) idle = (double)bu_count(argv[i + 1]);
        else {
            fprintf(stderr, "usage: bench_core_bare --nats URL --count N [--subject S] [--progress SUBJ] [--idle S]\n");
            return 2;
        }
    }
    if (!url || target <= 0) {
        fprintf(stderr, "usage: bench_core_bare --nats URL --count N [--subject S] [--progress SUBJ] [--idle S]\n");
        return 2;
    }
    natsOptions *o = NULL;
    natsConnection *nc = NULL;
    natsSubscription *sub = NULL, *psub = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK) s = natsOptions_SetURL(o, url);
    if (s == NATS_OK) s = natsOptions_SetErrorHandler(o, on_error, NULL);
    if (s == NATS_OK) s = natsConnection_Connect(&nc, o);
    if (s == NATS_OK) s = natsConnection_Subscribe(&sub, nc, subject, on_msg, NULL);
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, 1000000, 1024 * 1024 * 1024);
    if (s == NATS_OK) s = natsConnection_Subscribe(&psub, nc, psubj, on_progress, NULL);
    if (s == NATS_OK) s = natsConnection_Flush(nc);
    if (s != NATS_OK) {
        fprintf(stderr, "core_bare: %s\n", natsStatus_GetText(s));
        return 1;
    }
    printf("READY\n");
    fflush(stdout);
    long long last = -1;
    double last_change = bu_mono(), reached = 0;
    for (;;) {
        bu_sleep_ms(10);
        long long n = atomic_load(&received);
        if (n != last) {
            last = n;
            last_change = bu_mono();
        }
        if (n >= target) {
            if (!reached) reached = bu_mono();
            if (atomic_load(&answered_all) || bu_mono() - reached > 5) break;
        } else if (bu_mono() - last_change > idle) {
            fprintf(stderr, "core_bare: only %lld of %lld messages after %.0f s idle\n", n, target, idle);
            break;
        }
    }
    int64_t dropped = 0;
    natsSubscription_GetDropped(sub, &dropped);
    long long n = atomic_load(&received);
    double secs = n >= target && t_last > t_first ? t_last - t_first : 0;
    printf("RESULT messages %lld\nRESULT dropped %lld\nRESULT async_errors %d\nRESULT first_to_last_secs %.4f\n"
           "RESULT first_to_last_eps %.0f\n",
           n, (long long)dropped, atomic_load(&slow_errors), secs, secs > 0 ? (double)(n - 1) / secs : 0);
    fflush(stdout);
    natsSubscription_Destroy(psub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
    natsOptions_Destroy(o);
    return n >= target ? 0 : 1;
}

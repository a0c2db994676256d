/* metrics_wait.c — times vigil through its GET /metrics (issue 4, item 1):
 * started right after `vigil serve`, it scrapes --url every --poll-ms
 * (default 100) until the sample --metric reaches --count, then prints
 * RESULT lines (seconds since its own start):
 *   idle_secs   the last scrape at which the metric was still 0 or vigil
 *               did not answer yet (so work began after it)
 *   done_secs   the first scrape at which it reached --count
 * and the value of every --report sample at that moment. done_secs is the
 * conservative figure (it includes vigil's start: rules compiled, stores
 * connected); done_secs - idle_secs excludes the start, to within a poll.
 * Gives up (exit 1) after --timeout seconds (default 600), when the
 * metric has not moved for --stall seconds (default 60), or when vigil,
 * once up, has not answered for 5 s (it died). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "benchutil.h"

#define MAX_REPORT 16

int main(int argc, char **argv) {
    const char *url = NULL, *metric = NULL, *report[MAX_REPORT];
    int nreport = 0;
    long long count = -1;
    double poll_ms = 100, timeout = 600, stall = 60;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (strcmp(a, "--url") == 0) url = v;
        else if (strcmp(a, "--metric") == 0) metric = v;
        else if (strcmp(a, "--count") == 0) count = bu_count(v);
        else if (strcmp(a, "--poll-ms") == 0) poll_ms = (double)bu_count(v);
        else if (strcmp(a, "--timeout") == 0) timeout = (double)bu_count(v);
        else if (strcmp(a, "--stall") == 0) stall = (double)bu_count(v);
        else if (strcmp(a, "--report") == 0 && nreport < MAX_REPORT) report[nreport++] = v;
        else {
            fprintf(stderr, "metrics_wait: unknown option '%s'\n", a);
            return 2;
        }
    }
    if (!url || !metric || count < 0 || poll_ms <= 0) {
        fprintf(stderr, "usage: bench_metrics_wait --url URL --metric NAME --count K [--poll-ms MS] [--report NAME …]\n");
        return 2;
    }
    bu_metrics m;
    if (bu_metrics_init(&m, url) != 0) return 1;
    double t0 = bu_mono(), idle = 0, last_change = t0, prev = -1, v = -1, last_ok = -1;
    int rc = 1;
    for (;;) {
        double t = bu_mono();
        int ok = bu_metrics_fetch(&m) == 0;
        v = ok ? bu_metrics_value(&m, metric) : -1;
        if (ok) last_ok = t;
        else if (last_ok >= 0 && t - last_ok > 5) {
            fprintf(stderr, "metrics_wait: %s stopped answering at %.0f s\n", url, t - t0);
            break;
        }
        if (v <= 0) idle = t - t0;
        if (v >= (double)count) {
            printf("RESULT idle_secs %.3f\nRESULT done_secs %.3f\nRESULT value %.0f\n", idle, t - t0, v);
            for (int i = 0; i < nreport; i++) printf("RESULT %s %.6f\n", report[i], bu_metrics_value(&m, report[i]));
            rc = 0;
            break;
        }
        if (v != prev) {
            prev = v;
            last_change = t;
        }
        if (t - t0 > timeout || (v > 0 && t - last_change > stall)) {
            fprintf(stderr, "metrics_wait: %s at %.0f of %lld after %.0f s; giving up\n", metric, v, count, t - t0);
            break;
        }
        double next = t + poll_ms / 1000, now = bu_mono();
        if (next > now) bu_sleep_ms((next - now) * 1000);
    }
    fflush(stdout);
    bu_metrics_free(&m);
    return rc;
}

/* histogram.c — fixed-bucket Prometheus histograms (histogram.h): lock-free
 * observation, the text exposition and histogram_quantile's estimate. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "histogram.h"

const double vigil_hist_time_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                         0.25,   0.5,   1,      2.5,   5,    10};
const int vigil_hist_time_nbounds = (int)(sizeof vigil_hist_time_bounds / sizeof vigil_hist_time_bounds[0]);
const double vigil_hist_size_bounds[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384, 65536};
const int vigil_hist_size_nbounds = (int)(sizeof vigil_hist_size_bounds / sizeof vigil_hist_size_bounds[0]);

void vigil_hist_init(vigil_hist *h, const double *bounds, int n, double scale) {
    memset(h, 0, sizeof *h);
    if (n > VIGIL_HIST_MAX_BUCKETS) n = VIGIL_HIST_MAX_BUCKETS;
    h->n = n;
    h->scale = scale > 0 ? scale : 1;
    for (int i = 0; i < n; i++) {
        h->bounds[i] = bounds[i];
        h->ubounds[i] = (uint64_t)floor(bounds[i] / h->scale + 1e-9);   /* v <= ubound <=> v*scale <= bound */
    }
}

void vigil_hist_observe(vigil_hist *h, uint64_t v) {
    int i = 0;
    while (i < h->n && v > h->ubounds[i]) i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
}

void vigil_hist_snapshot(const vigil_hist *h, vigil_hist_snap *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i <= h->n; i++) {
        out->counts[i] = atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        out->count += out->counts[i];   /* the buckets' total: consistent with them */
    }
    out->sum = atomic_load_explicit(&h->sum, memory_order_relaxed);
}

double vigil_hist_quantile(const vigil_hist *h, const vigil_hist_snap *s, double q) {
    if (!s->count || q <= 0 || q >= 1) return NAN;
    double rank = q * (double)s->count, below = 0;
    for (int i = 0; i <= h->n; i++) {
        double c = (double)s->counts[i];
        if (below + c >= rank && c > 0) {
            if (i == h->n) return h->n ? h->bounds[h->n - 1] : NAN;   /* in +Inf: the highest finite bound */
            double lo = i ? h->bounds[i - 1] : 0, hi = h->bounds[i];
            return lo + (hi - lo) * ((rank - below) / c);
        }
        below += c;
    }
    return h->n ? h->bounds[h->n - 1] : NAN;
}

static void fmt_num(char *b, size_t n, double v) {
    if (v == floor(v) && fabs(v) < 1e15) snprintf(b, n, "%.0f", v);
    else snprintf(b, n, "%.6g", v);
}

void vigil_hist_write(const vigil_hist *h, const char *name, const char *help, const char *labels,
                      void (*emit)(void *ud, const char *text, size_t len), void *ud) {
    char line[512], le[32];
    int n;
    if (help) {
        n = snprintf(line, sizeof line, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
        emit(ud, line, (size_t)n);
    }
    vigil_hist_snap s;
    vigil_hist_snapshot(h, &s);
    const char *sep = labels && labels[0] ? "," : "";
    uint64_t cum = 0;
    for (int i = 0; i <= h->n; i++) {
        cum += s.counts[i];
        if (i < h->n) fmt_num(le, sizeof le, h->bounds[i]);
        else snprintf(le, sizeof le, "+Inf");
        n = snprintf(line, sizeof line, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, labels ? labels : "", sep, le,
                     (unsigned long long)cum);
        emit(ud, line, (size_t)n);
    }
    const char *open = labels && labels[0] ? "{" : "", *close = labels && labels[0] ? "}" : "";
    n = snprintf(line, sizeof line, "%s_sum%s%s%s %.9g\n%s_count%s%s%s %llu\n", name, open, labels ? labels : "",
                 close, (double)s.sum * h->scale, name, open, labels ? labels : "", close,
                 (unsigned long long)s.count);
    emit(ud, line, (size_t)n);
}

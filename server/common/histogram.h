/* histogram.h — Prometheus histograms with fixed buckets, shared by the
 * wings that time things (route: event→alert latency, commit time, batch
 * size; alerts: webhook delivery time) and read by ops (/metrics and the
 * quantiles of GET /v1/stats).
 *
 * Observations are whole numbers in the histogram's base unit (µs for
 * times, items for sizes); `scale` turns them into the exposed unit
 * (1e-6 → seconds). Bucket bounds are given in the exposed unit, ascending,
 * at most VIGIL_HIST_MAX_BUCKETS (the +Inf bucket is implicit). Observing
 * is lock-free (relaxed atomics: one add on the bucket, the count and the
 * sum), so any thread may observe; a reader sees each counter exactly but
 * not all of them at one instant (Prometheus tolerates that skew). */
#ifndef VIGIL_COMMON_HISTOGRAM_H
#define VIGIL_COMMON_HISTOGRAM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define VIGIL_HIST_MAX_BUCKETS 24

typedef struct vigil_hist {
    double bounds[VIGIL_HIST_MAX_BUCKETS];   /* upper bounds (le), exposed unit */
    uint64_t ubounds[VIGIL_HIST_MAX_BUCKETS];/* the same in base units (observations compare to these) */
    int n;
    double scale;                            /* base unit -> exposed unit */
    atomic_ullong counts[VIGIL_HIST_MAX_BUCKETS + 1];   /* per bucket (not cumulative); last: +Inf */
    atomic_ullong count, sum;                /* sum in base units */
} vigil_hist;

/* Bucket bounds for times in seconds (1 ms … 10 s) and for sizes (1 … 65536). */
extern const double vigil_hist_time_bounds[];
extern const int vigil_hist_time_nbounds;
extern const double vigil_hist_size_bounds[];
extern const int vigil_hist_size_nbounds;

/* Set the bounds (n is capped at VIGIL_HIST_MAX_BUCKETS) and zero the counters. */
void vigil_hist_init(vigil_hist *h, const double *bounds, int n, double scale);
/* Count one observation of v base units. */
void vigil_hist_observe(vigil_hist *h, uint64_t v);

/* Add b's counters to a (same bounds): a snapshot over several histograms. */
typedef struct vigil_hist_snap {
    uint64_t counts[VIGIL_HIST_MAX_BUCKETS + 1];
    uint64_t count, sum;
} vigil_hist_snap;
void vigil_hist_snapshot(const vigil_hist *h, vigil_hist_snap *out);

/* The q-quantile (0 < q < 1) estimated as Prometheus' histogram_quantile
 * does: linear within the bucket that holds it; the highest finite bound
 * when it falls in +Inf; NaN with no observation. Exposed unit. */
double vigil_hist_quantile(const vigil_hist *h, const vigil_hist_snap *s, double q);

/* Append the exposition of h (HELP, TYPE, _bucket{le}, _sum, _count) through
 * emit; labels ("" or `source="http"`) go in front of le on every series. */
void vigil_hist_write(const vigil_hist *h, const char *name, const char *help, const char *labels,
                      void (*emit)(void *ud, const char *text, size_t len), void *ud);

#endif

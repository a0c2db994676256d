/* test_histogram.c — server/common/histogram.c: observations land in the
 * bucket whose bound is the first >= the value (Prometheus' le), the text
 * exposition is cumulative and ends in +Inf = _count, the quantile is
 * histogram_quantile's linear estimate, and observing from several threads
 * at once loses nothing. */
#include <CUnit/Basic.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/common/histogram.h"

static void collect(void *ud, const char *t, size_t n) { strncat((char *)ud, t, n); }

static void test_buckets_and_text(void) {
    vigil_hist h;
    const double b[] = {0.001, 0.01, 0.1};
    vigil_hist_init(&h, b, 3, 1e-6);   /* µs in, seconds out */
    vigil_hist_observe(&h, 1000);      /* exactly 1 ms: le 0.001 */
    vigil_hist_observe(&h, 1001);      /* just over: le 0.01 */
    vigil_hist_observe(&h, 50000);     /* le 0.1 */
    vigil_hist_observe(&h, 2000000);   /* +Inf */
    vigil_hist_snap s;
    vigil_hist_snapshot(&h, &s);
    CU_ASSERT_EQUAL(s.counts[0], 1);
    CU_ASSERT_EQUAL(s.counts[1], 1);
    CU_ASSERT_EQUAL(s.counts[2], 1);
    CU_ASSERT_EQUAL(s.counts[3], 1);
    CU_ASSERT_EQUAL(s.count, 4);
    CU_ASSERT_EQUAL(s.sum, 1000 + 1001 + 50000 + 2000000);
    char *text = calloc(1, 4096);
    vigil_hist_write(&h, "x_seconds", "help text", "endpoint=\"a\"", collect, text);
    CU_ASSERT(strstr(text, "# TYPE x_seconds histogram\n") != NULL);
    CU_ASSERT(strstr(text, "x_seconds_bucket{endpoint=\"a\",le=\"0.001\"} 1\n") != NULL);
    CU_ASSERT(strstr(text, "x_seconds_bucket{endpoint=\"a\",le=\"0.01\"} 2\n") != NULL);
    CU_ASSERT(strstr(text, "x_seconds_bucket{endpoint=\"a\",le=\"0.1\"} 3\n") != NULL);
    CU_ASSERT(strstr(text, "x_seconds_bucket{endpoint=\"a\",le=\"+Inf\"} 4\n") != NULL);
    CU_ASSERT(strstr(text, "x_seconds_count{endpoint=\"a\"} 4\n") != NULL);
    CU_ASSERT(strstr(text, "x_seconds_sum{endpoint=\"a\"} 2.052001\n") != NULL);
    text[0] = '\0';
    vigil_hist_write(&h, "y", NULL, "", collect, text);   /* no labels, no HELP */
    CU_ASSERT(strstr(text, "y_bucket{le=\"+Inf\"} 4\ny_sum 2.052001\ny_count 4\n") != NULL);
    CU_ASSERT(strstr(text, "# HELP") == NULL);
    free(text);
}

static void test_quantile(void) {
    vigil_hist h;
    const double b[] = {1, 2, 4, 8};
    vigil_hist_init(&h, b, 4, 1);
    vigil_hist_snap s;
    vigil_hist_snapshot(&h, &s);
    CU_ASSERT(isnan(vigil_hist_quantile(&h, &s, 0.5)));   /* nothing observed */
    for (int i = 0; i < 100; i++) vigil_hist_observe(&h, i < 50 ? 1 : 3);   /* half in (0,1], half in (2,4] */
    vigil_hist_snapshot(&h, &s);
    /* rank 50 of 100 is the last of the first bucket: its upper bound */
    CU_ASSERT_DOUBLE_EQUAL(vigil_hist_quantile(&h, &s, 0.5), 1.0, 1e-9);
    /* rank 75: half way through (2,4] */
    CU_ASSERT_DOUBLE_EQUAL(vigil_hist_quantile(&h, &s, 0.75), 3.0, 1e-9);
    CU_ASSERT_DOUBLE_EQUAL(vigil_hist_quantile(&h, &s, 0.99), 2.0 + 2.0 * 49.0 / 50.0, 1e-9);
    vigil_hist_observe(&h, 100);   /* beyond the last bound */
    vigil_hist_snapshot(&h, &s);
    CU_ASSERT_DOUBLE_EQUAL(vigil_hist_quantile(&h, &s, 0.999), 8.0, 1e-9);   /* the highest finite bound */
}

static vigil_hist shared;
static void *hammer(void *arg) {
    for (int i = 0; i < 100000; i++) vigil_hist_observe(&shared, (uint64_t)(i % 7));
    return arg;
}

static void test_threads(void) {
    vigil_hist_init(&shared, vigil_hist_size_bounds, vigil_hist_size_nbounds, 1);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    vigil_hist_snap s;
    vigil_hist_snapshot(&shared, &s);
    CU_ASSERT_EQUAL(s.count, 400000);
    unsigned long long sum = 0;
    for (int i = 0; i < 100000; i++) sum += (unsigned long long)(i % 7);
    CU_ASSERT_EQUAL(s.sum, 4 * sum);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("histogram", NULL, NULL);
    CU_add_test(s, "buckets (le) and the exposition", test_buckets_and_text);
    CU_add_test(s, "histogram_quantile's estimate", test_quantile);
    CU_add_test(s, "concurrent observations", test_threads);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

/* test_waiter.c — the ?wait waiter and its deadline timer (server/route/
 * waiter.c): a waiter wakes its request exactly once, when every part is
 * done or at its deadline, and a waiter with nothing pending (the event's
 * only key group lost its rules to a DELETE: no worker will ever call done)
 * wakes as soon as it is watched. Before that fix a POST /v1/events?wait=MS
 * with such an event stayed suspended for ever, past its deadline (found by
 * fuzz_http). */
#include <CUnit/Basic.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "waiter.h"
#include "vigil/clock.h"

static atomic_int woken;
static void wake(void *ctx) {
    (void)ctx;
    atomic_fetch_add(&woken, 1);
}

static int wait_woken(int n, int ms) {
    for (int i = 0; i < ms && atomic_load(&woken) < n; i++) usleep(1000);
    return atomic_load(&woken);
}

/* Nothing pending: woken when watched, and take answers an empty list. */
static void test_nothing_pending_wakes(void) {
    vigil_waiters *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(vigil_waiters_create(&ws), VIGIL_OK);
    atomic_store(&woken, 0);
    vigil_waiter *w = vigil_waiter_create(0, vigil_now_ms() + 60000, wake, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    vigil_waiters_add(ws, w);
    CU_ASSERT_EQUAL(wait_woken(1, 2000), 1);
    char *body = NULL;
    CU_ASSERT_EQUAL(vigil_waiter_take(w, &body), 1);
    CU_ASSERT_STRING_EQUAL(body ? body : "", "{\"alerts\":[]}");
    free(body);
    vigil_waiter_release(w);
    usleep(20000);
    CU_ASSERT_EQUAL(atomic_load(&woken), 1);   /* once */
    vigil_waiters_destroy(ws);
}

/* Done by the worker before it was watched: woken once (by the worker). */
static void test_done_before_watched_wakes_once(void) {
    vigil_waiters *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(vigil_waiters_create(&ws), VIGIL_OK);
    atomic_store(&woken, 0);
    vigil_waiter *w = vigil_waiter_create(1, vigil_now_ms() + 60000, wake, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    vigil_waiter_append(w, "{\"a\":1}", 7);
    vigil_waiter_done(w);
    CU_ASSERT_EQUAL(atomic_load(&woken), 1);
    vigil_waiters_add(ws, w);
    usleep(20000);
    CU_ASSERT_EQUAL(atomic_load(&woken), 1);
    char *body = NULL;
    CU_ASSERT_EQUAL(vigil_waiter_take(w, &body), 1);
    CU_ASSERT_STRING_EQUAL(body ? body : "", "{\"alerts\":[{\"a\":1}]}");
    free(body);
    vigil_waiter_release(w);
    vigil_waiters_destroy(ws);
}

/* A part never done: the deadline wakes it, take says it timed out. */
static void test_deadline_wakes(void) {
    vigil_waiters *ws = NULL;
    CU_ASSERT_EQUAL_FATAL(vigil_waiters_create(&ws), VIGIL_OK);
    atomic_store(&woken, 0);
    vigil_waiter *w = vigil_waiter_create(1, vigil_now_ms() + 50, wake, NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    vigil_waiters_add(ws, w);
    CU_ASSERT_EQUAL(atomic_load(&woken), 0);
    CU_ASSERT_EQUAL(wait_woken(1, 3000), 1);
    char *body = NULL;
    CU_ASSERT_EQUAL(vigil_waiter_take(w, &body), 0);
    CU_ASSERT_PTR_NULL(body);
    vigil_waiter_done(w);   /* the worker, late: no second wake */
    CU_ASSERT_EQUAL(atomic_load(&woken), 1);
    vigil_waiter_release(w);
    vigil_waiters_destroy(ws);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("waiter", NULL, NULL);
    CU_add_test(s, "nothing pending wakes when watched", test_nothing_pending_wakes);
    CU_add_test(s, "done before watched wakes once", test_done_before_watched_wakes_once);
    CU_add_test(s, "deadline wakes", test_deadline_wakes);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

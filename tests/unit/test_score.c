/* test_score.c — the replay scorer: alerts are attributed to the event they
 * name (not the event being fed), each event counts once per rule and once
 * overall, recall per segment counts labelled-true events only. */
#include <stdio.h>
#include <CUnit/Basic.h>
#include "score.h"

static void test_attribution(void) {
    vigil_score *sc = vigil_score_create(2, 4);
    CU_ASSERT_PTR_NOT_NULL_FATAL(sc);
    CU_ASSERT_EQUAL(vigil_score_event(sc, "e1", 1, 0), 0);
    CU_ASSERT_EQUAL(vigil_score_event(sc, "e2", 0, -1), 0);
    CU_ASSERT_EQUAL(vigil_score_event(sc, "e3", 1, 1), 0);
    CU_ASSERT_EQUAL(vigil_score_event(sc, "e1", 0, 2), 0);   /* a repeated id keeps its first label */
    vigil_score_alert(sc, "e1", 0);
    vigil_score_alert(sc, "e1", 0);                           /* twice by one rule: one event */
    vigil_score_alert(sc, "e1", 1);
    vigil_score_alert(sc, "e2", 1);
    vigil_score_alert(sc, "ghost", 0);                        /* an id never fed: unlabelled */
    vigil_score_alert(sc, "e3", 7);                           /* no such rule: ignored */
    vigil_score_result r;
    CU_ASSERT_EQUAL_FATAL(vigil_score_finish(sc, &r), 0);
    CU_ASSERT_EQUAL(r.events_alerted[0], 2);
    CU_ASSERT_EQUAL(r.tp[0], 1);
    CU_ASSERT_EQUAL(r.events_alerted[1], 2);
    CU_ASSERT_EQUAL(r.tp[1], 1);
    CU_ASSERT_EQUAL(r.alerted, 3);       /* e1, e2, ghost */
    CU_ASSERT_EQUAL(r.alerted_tp, 1);    /* e1 */
    CU_ASSERT_EQUAL(r.positives, 2);     /* e1, e3 */
    CU_ASSERT_EQUAL(r.seg_pos[0], 1);
    CU_ASSERT_EQUAL(r.seg_hit[0], 1);
    CU_ASSERT_EQUAL(r.seg_pos[1], 1);
    CU_ASSERT_EQUAL(r.seg_hit[1], 0);
    vigil_score_result_free(&r);
    vigil_score_destroy(sc);
}

static void test_many_events(void) {
    /* enough ids to grow the table several times */
    vigil_score *sc = vigil_score_create(70, 1);   /* more than 64 rules: multi-word bitsets */
    char id[32];
    for (int i = 0; i < 300000; i++) {
        snprintf(id, sizeof id, "%d", i);
        CU_ASSERT_EQUAL_FATAL(vigil_score_event(sc, id, i % 3 == 0, 0), 0);
        if (i % 5 == 0) vigil_score_alert(sc, id, 69);
    }
    vigil_score_result r;
    CU_ASSERT_EQUAL_FATAL(vigil_score_finish(sc, &r), 0);
    CU_ASSERT_EQUAL(r.positives, 100000);
    CU_ASSERT_EQUAL(r.events_alerted[69], 60000);
    CU_ASSERT_EQUAL(r.tp[69], 20000);           /* multiples of 15 */
    CU_ASSERT_EQUAL(r.events_alerted[0], 0);
    vigil_score_result_free(&r);
    vigil_score_destroy(sc);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("score", NULL, NULL);
    CU_add_test(s, "alerts attributed by event id", test_attribution);
    CU_add_test(s, "300k events, 70 rules", test_many_events);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}

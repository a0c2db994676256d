/* test_hub_unique.c — the hub's one-alert-per-id mode (alerts/follow.h,
 * cluster mode, issue 14): an id the ring holds is refused, an id the ring
 * has dropped is taken again, alerts without an id are always kept; and a
 * long random run against a model of the ring, which passes the index's
 * rebuilds (every `cap` additions) many times. */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>
#include "server/alerts/hub.h"
#include "server/alerts/follow.h"

static vigil_status pub(vigil_hub *h, int n) {
    char js[128];
    int l = snprintf(js, sizeof js, "{\"id\":\"%032x\",\"rule\":\"r\",\"mode\":\"active\"}", n);
    return vigil_hub_publish(h, js, (size_t)l, "r", "high", "k", 1000);
}

static int holds(vigil_hub *h, int n) {
    char id[40], rule[16];
    snprintf(id, sizeof id, "%032x", n);
    return vigil_hub_find(h, id, rule, sizeof rule);
}

static void test_basics(void) {
    vigil_hub *h = NULL;
    CU_ASSERT_FATAL(vigil_hub_create(4, &h) == VIGIL_OK);
    CU_ASSERT_EQUAL(pub(h, 7), VIGIL_OK);   /* before: duplicates are kept */
    CU_ASSERT_EQUAL(pub(h, 7), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_hub_keep_unique(h), VIGIL_OK);
    CU_ASSERT_EQUAL(pub(h, 7), VIGIL_ECONFLICT);   /* what the ring held before counts too */
    for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(pub(h, i), VIGIL_OK);   /* 7 and 7 dropped */
    CU_ASSERT(!holds(h, 7));
    CU_ASSERT_EQUAL(pub(h, 0), VIGIL_ECONFLICT);
    CU_ASSERT_EQUAL(pub(h, 3), VIGIL_ECONFLICT);
    CU_ASSERT_EQUAL(pub(h, 7), VIGIL_OK);   /* 0 leaves the ring */
    CU_ASSERT_EQUAL(pub(h, 0), VIGIL_OK);
    const char *noid = "{\"rule\":\"r\"}";
    CU_ASSERT_EQUAL(vigil_hub_publish(h, noid, strlen(noid), "r", "low", "k", 1), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_hub_publish(h, noid, strlen(noid), "r", "low", "k", 1), VIGIL_OK);
    vigil_hub_counters c;
    vigil_hub_stats(h, &c);
    CU_ASSERT_EQUAL(c.published, 10);
    CU_ASSERT_EQUAL(c.stored, 4);
    vigil_hub_destroy(h);
}

static void test_against_a_model(void) {
    enum { CAP = 8, POOL = 20, N = 20000 };
    vigil_hub *h = NULL;
    CU_ASSERT_FATAL(vigil_hub_create(CAP, &h) == VIGIL_OK);
    CU_ASSERT_FATAL(vigil_hub_keep_unique(h) == VIGIL_OK);
    int ring[CAP], n = 0, head = 0, wrong = 0, dups = 0;
    unsigned s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1103515245u + 12345u;
        int id = (int)((s >> 8) % POOL);
        int in = 0;
        for (int k = 0; k < n; k++) in |= ring[(head + k) % CAP] == id;
        vigil_status st = pub(h, id);
        if (st != (in ? VIGIL_ECONFLICT : VIGIL_OK)) wrong++;
        if (in) {
            dups++;
            continue;
        }
        if (n < CAP) ring[(head + n++) % CAP] = id;
        else ring[head] = id, head = (head + 1) % CAP;
    }
    printf("  %d publishes, %d refused as duplicates, %d answers unlike the model\n", N, dups, wrong);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT(dups > N / 4);
    vigil_hub_destroy(h);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite su = CU_add_suite("hub: one alert per id (cluster mode)", NULL, NULL);
    if (!su || !CU_add_test(su, "duplicates refused while held, taken once dropped", test_basics) ||
        !CU_add_test(su, "a long random run against a model of the ring", test_against_a_model)) {
        CU_cleanup_registry();
        return 1;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f != 0;
}

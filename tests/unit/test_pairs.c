/* test_pairs.c — the group token of cluster mode (server/common/pairs.h):
 * the name itself when it matches [A-Za-z0-9_-]+, else "x" + lowercase hex
 * of its bytes; -1 when the buffer is too small. */
#include <CUnit/Basic.h>
#include <string.h>
#include "server/common/pairs.h"

static void test_plain(void) {
    char b[64];
    CU_ASSERT_EQUAL(vigil_cluster_group_token("customer_id", b, sizeof b), 11);
    CU_ASSERT_STRING_EQUAL(b, "customer_id");
    CU_ASSERT_EQUAL(vigil_cluster_group_token("Term-01_x", b, sizeof b), 9);
    CU_ASSERT_STRING_EQUAL(b, "Term-01_x");
}

static void test_hex(void) {
    char b[64];
    CU_ASSERT_EQUAL(vigil_cluster_group_token("card.id", b, sizeof b), 15);
    CU_ASSERT_STRING_EQUAL(b, "x636172642e6964");
    CU_ASSERT_EQUAL(vigil_cluster_group_token("a b", b, sizeof b), 7);
    CU_ASSERT_STRING_EQUAL(b, "x612062");
    CU_ASSERT_EQUAL(vigil_cluster_group_token("\xc3\xa9", b, sizeof b), 5);   /* é: bytes, lowercase */
    CU_ASSERT_STRING_EQUAL(b, "xc3a9");
    CU_ASSERT_EQUAL(vigil_cluster_group_token("", b, sizeof b), 1);
    CU_ASSERT_STRING_EQUAL(b, "x");
}

static void test_small(void) {
    char b[8];
    CU_ASSERT_EQUAL(vigil_cluster_group_token("customer", b, 8), -1);   /* 8 bytes + NUL */
    CU_ASSERT_STRING_EQUAL(b, "");
    CU_ASSERT_EQUAL(vigil_cluster_group_token("custome", b, 8), 7);
    CU_ASSERT_EQUAL(vigil_cluster_group_token("a.b", b, 7), -1);       /* x612e62 + NUL = 8 */
    CU_ASSERT_EQUAL(vigil_cluster_group_token("a.b", b, 8), 7);
    CU_ASSERT_EQUAL(vigil_cluster_group_token(NULL, b, 8), -1);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("pairs", NULL, NULL);
    CU_add_test(s, "plain names", test_plain);
    CU_add_test(s, "other names in hex", test_hex);
    CU_add_test(s, "buffer too small", test_small);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int failures = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return failures != 0;
}

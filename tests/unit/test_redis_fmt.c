/* test_redis_fmt.c — server/state/redis.c's own formatting, used on the
 * commit path instead of snprintf (issue 16): decimal text of unsigned and
 * signed 64-bit numbers (edges and a sweep against snprintf), and the RESP
 * arrays vigil_redis_batch_add writes (byte for byte what Redis expects:
 * *<argc>, then $<len> and the bytes of each argument, binary-safe). */
#include <CUnit/Basic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "server/state/redis.h"

static void check_u64(uint64_t v) {
    char want[32], got[32];
    int wl = snprintf(want, sizeof want, "%" PRIu64, v);
    size_t gl = vigil_redis_fmt_u64(got, v);
    CU_ASSERT_EQUAL(gl, (size_t)wl);
    CU_ASSERT(gl == (size_t)wl && memcmp(got, want, gl) == 0);
}

static void check_i64(int64_t v) {
    char want[32], got[32];
    int wl = snprintf(want, sizeof want, "%" PRId64, v);
    size_t gl = vigil_redis_fmt_i64(got, v);
    CU_ASSERT_EQUAL(gl, (size_t)wl);
    CU_ASSERT(gl == (size_t)wl && memcmp(got, want, gl) == 0);
}

static void test_numbers(void) {
    const uint64_t u[] = {0, 1, 9, 10, 99, 100, 4294967295u, 4294967296u, 10000000000000000000u, UINT64_MAX};
    for (size_t i = 0; i < sizeof u / sizeof *u; i++) check_u64(u[i]);
    const int64_t s[] = {0, 1, -1, 9, -9, 10, -10, 86400000, -86400000, INT64_MAX, INT64_MIN, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) check_i64(s[i]);
    uint64_t x = 0x9e3779b97f4a7c15u;   /* a sweep over every length */
    for (int i = 0; i < 100000; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        check_u64(x >> (i % 64));
        check_i64((int64_t)(x >> (i % 64)) * ((i & 1) ? -1 : 1));
    }
}

static void test_batch_resp(void) {
    vigil_redis_batch b = {0};
    const char *a1[] = {"SET", "k", "v\r\n\0x"};
    size_t l1[] = {3, 1, 5};   /* v CR LF NUL x */
    vigil_redis_batch_add(&b, 3, a1, l1);
    const char *a2[] = {"EXEC"};
    size_t l2[] = {4};
    vigil_redis_batch_add(&b, 1, a2, l2);
    const char *empty[] = {"SET", "k", ""};
    size_t le[] = {3, 1, 0};
    vigil_redis_batch_add(&b, 3, empty, le);
    static const char want[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\n\0x\r\n*1\r\n$4\r\nEXEC\r\n"
                               "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n";
    CU_ASSERT_EQUAL(b.ncmds, 3);
    CU_ASSERT_EQUAL(b.len, sizeof want - 1);
    CU_ASSERT(b.len == sizeof want - 1 && memcmp(b.buf, want, b.len) == 0);
    /* a long argument: a multi-digit length */
    vigil_redis_batch_reset(&b);
    char *big = malloc(123456);
    memset(big, 'z', 123456);
    const char *a3[] = {big};
    size_t l3[] = {123456};
    vigil_redis_batch_add(&b, 1, a3, l3);
    CU_ASSERT_EQUAL(b.len, strlen("*1\r\n$123456\r\n") + 123456 + 2);
    CU_ASSERT(memcmp(b.buf, "*1\r\n$123456\r\nzz", 15) == 0);
    free(big);
    vigil_redis_batch_free(&b);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("redis_fmt", NULL, NULL);
    CU_add_test(s, "decimal text of u64 and i64 (edges, sweep against snprintf)", test_numbers);
    CU_add_test(s, "RESP arrays of a batch, byte for byte", test_batch_resp);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

/* test_authz.c — server/http/auth.c on its own: the role table, the check
 * (401 unknown, 403 known without the role, roles nesting), the metrics
 * token, the tokens file's parser, and a connection's memo (a token its
 * client sent before is recognised without hashing, the role still checked,
 * another text never taken for it). */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "server/http/auth.h"

static vigil_auth *make(void) {
    vigil_auth_token t[] = {{.name = "shop", .token = "ingest-tok", .role = "ingest", .rate = 0},
                            {.name = "ops", .token = "viewer-tok", .role = "viewer", .rate = 0},
                            {.name = "alice", .token = "analyst-tok", .role = "analyst", .rate = 0},
                            {.name = "root", .token = "admin-tok", .role = "admin", .rate = 0}};
    vigil_auth *a = NULL;
    vigil_error err;
    CU_ASSERT_FATAL(vigil_auth_create(t, 4, "metrics-tok", &a, &err) == VIGIL_OK);
    return a;
}

static void test_roles(void) {
    CU_ASSERT_EQUAL(vigil_auth_role_for("GET", "/healthz"), VIGIL_ROLE_PUBLIC);
    CU_ASSERT_EQUAL(vigil_auth_role_for("GET", "/metrics"), VIGIL_ROLE_METRICS);
    CU_ASSERT_EQUAL(vigil_auth_role_for("POST", "/v1/events"), VIGIL_ROLE_INGEST);
    CU_ASSERT_EQUAL(vigil_auth_role_for("GET", "/v1/rules/x"), VIGIL_ROLE_VIEWER);
    CU_ASSERT_EQUAL(vigil_auth_role_for("GET", "/v1/rules/x/compare"), VIGIL_ROLE_ANALYST);
    CU_ASSERT_EQUAL(vigil_auth_role_for("DELETE", "/v1/rules/x"), VIGIL_ROLE_ANALYST);
    CU_ASSERT_EQUAL(vigil_auth_role_for("GET", "/v1/audit"), VIGIL_ROLE_ADMIN);
    CU_ASSERT_EQUAL(vigil_auth_role_for("POST", "/v1/something-new"), VIGIL_ROLE_ADMIN);
    vigil_auth *a = make();
    const char *who;
    int idx;
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_VIEWER, NULL, &who, &idx), 401);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_VIEWER, "nope", &who, &idx), 401);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_VIEWER, "ingest-tok", &who, &idx), 403);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_INGEST, "viewer-tok", &who, &idx), 403);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_VIEWER, "analyst-tok", &who, &idx), 0);
    CU_ASSERT_STRING_EQUAL(who, "alice");
    CU_ASSERT_EQUAL(idx, 2);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_INGEST, "admin-tok", &who, &idx), 0);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_METRICS, NULL, &who, &idx), 401);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_METRICS, "metrics-tok", &who, &idx), 0);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_METRICS, "viewer-tok", &who, &idx), 403);
    CU_ASSERT_EQUAL(vigil_auth_check(a, VIGIL_ROLE_VIEWER, "metrics-tok", &who, &idx), 401);
    vigil_auth_destroy(a);
}

static void test_memo(void) {
    vigil_auth *a = make();
    vigil_auth_memo m = {0};
    const char *who;
    int idx;
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_VIEWER, "viewer-tok", &m, &who, &idx), 0);
    CU_ASSERT_EQUAL(m.len, strlen("viewer-tok"));
    CU_ASSERT_EQUAL(m.found, 1);
    /* the memo is what answers the next request: point it at another entry and see it used */
    m.found = 2;
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_VIEWER, "viewer-tok", &m, &who, &idx), 0);
    CU_ASSERT_STRING_EQUAL(who, "alice");
    m.found = 1;
    /* the role is checked every time */
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_ANALYST, "viewer-tok", &m, &who, &idx), 403);
    /* a prefix, a longer text or another token is not the remembered one */
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_VIEWER, "viewer-to", &m, &who, &idx), 401);
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_VIEWER, "viewer-tokk", &m, &who, &idx), 401);
    CU_ASSERT_EQUAL(m.found, 1);   /* unknown texts are not remembered */
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_VIEWER, "admin-tok", &m, &who, &idx), 0);
    CU_ASSERT_STRING_EQUAL(who, "root");
    CU_ASSERT_EQUAL(m.found, 3);
    /* the metrics token is never remembered (it is no entry) */
    vigil_auth_memo m2 = {0};
    CU_ASSERT_EQUAL(vigil_auth_check_memo(a, VIGIL_ROLE_METRICS, "metrics-tok", &m2, &who, &idx), 0);
    CU_ASSERT_EQUAL(m2.len, 0);
    vigil_auth_memo_clear(&m);
    CU_ASSERT_EQUAL(m.len, 0);
    CU_ASSERT_EQUAL(m.tok[0], 0);
    vigil_auth_destroy(a);
}

static void test_tokens_file(void) {
    char path[] = "/tmp/vigil-tokens-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    const char *text = "# comment\n\nops viewer tok-one\r\nshop\tingest\ttok-two\t500\n";
    CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, 0600);
    vigil_auth_token *t = NULL;
    int n = 0;
    char *store = NULL;
    vigil_error err;
    vigil_error_clear(&err);
    CU_ASSERT_EQUAL_FATAL(vigil_auth_read_file(path, &t, &n, &store, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_STRING_EQUAL(t[0].name, "ops");
    CU_ASSERT_STRING_EQUAL(t[0].token, "tok-one");
    CU_ASSERT_STRING_EQUAL(t[1].role, "ingest");
    CU_ASSERT_EQUAL(t[1].rate, 500);
    vigil_auth_tokens_free(t, store);
    chmod(path, 0644);   /* readable by others: refused */
    CU_ASSERT_EQUAL(vigil_auth_read_file(path, &t, &n, &store, &err), VIGIL_EIO);
    CU_ASSERT(strstr(err.msg, "chmod 600") != NULL);
    chmod(path, 0600);
    FILE *f = fopen(path, "w");
    fputs("ops viewer tok-one\nbad-line-with-secret-xyz\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(vigil_auth_read_file(path, &t, &n, &store, &err), VIGIL_EPARSE);
    CU_ASSERT(strstr(err.msg, "line 2") != NULL && strstr(err.msg, "secret-xyz") == NULL);
    f = fopen(path, "w");
    fputs("ops viewer tok-one 0\n", f);   /* a rate of 0 */
    fclose(f);
    CU_ASSERT_EQUAL(vigil_auth_read_file(path, &t, &n, &store, &err), VIGIL_EPARSE);
    CU_ASSERT(strstr(err.msg, "rate") != NULL);
    unlink(path);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("authz", NULL, NULL);
    CU_add_test(s, "roles and the check", test_roles);
    CU_add_test(s, "a connection's memo", test_memo);
    CU_add_test(s, "the tokens file", test_tokens_file);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

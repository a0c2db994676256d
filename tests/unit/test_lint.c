/* test_lint.c — the mistakes a run can show (issue 12, cli/lint.c), through
 * the real binary: `vigil replay` warns about a field no event had (listing
 * the fields seen) and about a step or `where` that matched no event, and
 * not about a rule that is fine or a negation that never matched; `vigil
 * test` warns about a field no example event had and keeps its exit status. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <CUnit/Basic.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"

static char *dir;

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    CU_ASSERT_FATAL(f != NULL);
    fputs(text, f);
    fclose(f);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = calloc(1, 1 << 20);
    if (b) fread(b, 1, (1 << 20) - 1, f);
    fclose(f);
    return b;
}

/* Run argv with stdout and stderr to log; the exit code, the output in *out. */
static int run(const char *const argv[], const char *log, char **out) {
    vt_proc *p = vt_spawn(argv, log);
    if (!p) return -1;
    if (!vt_wait_exit(p, 30000)) {
        vt_kill(p, SIGKILL);
        return -1;
    }
    int rc = WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
    vt_kill(p, SIGKILL);
    *out = slurp(log);
    return rc;
}

static void test_replay_warns(void) {
    char rules[600], input[600], log[600], out[600];
    snprintf(rules, sizeof rules, "%s/r.lua", dir);
    snprintf(input, sizeof input, "%s/in.ndjson", dir);
    snprintf(log, sizeof log, "%s/replay.log", dir);
    snprintf(out, sizeof out, "%s/alerts.jsonl", dir);
    write_text(rules,
               "rule { name = 'typo', key = 'card', where = { amout = lt(20) }, window = sliding('1h'), when = ge(count(), 2) }\n"
               "rule { name = 'never', key = 'card', pattern = begin('a'):where{ amount = gt(1000) }:followed_by('b') }\n"
               "rule { name = 'fine', key = 'card', where = { amount = lt(20) }, window = sliding('1h'), when = ge(count(), 2) }\n"
               "rule { name = 'guard', key = 'card', pattern = begin('x'):where{ amount = lt(20) }"
               ":not_followed_by('y'):where{ amount = gt(1000) }:followed_by('z'), within = '1h' }\n");
    write_text(input, "{\"id\":\"1\",\"card\":\"c\",\"amount\":5,\"ts\":1700000000000}\n"
                      "{\"id\":\"2\",\"card\":\"c\",\"amount\":6,\"ts\":1700000001000}\n");
    const char *argv[] = {VIGIL_BIN, "replay", "--rules", rules, "--input", input, "--output", out, NULL};
    char *text = NULL;
    CU_ASSERT_EQUAL(run(argv, log, &text), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rule 'typo' reads field 'amout', which no event had (2 events; fields seen: amount, card, id, ts)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rule 'typo': its `where` matched no event"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "rule 'never', step 'a': its where matched no event"));
    CU_ASSERT_PTR_NULL(strstr(text, "rule 'fine'"));
    CU_ASSERT_PTR_NULL(strstr(text, "step 'y'"));   /* a negation is meant not to match */
    free(text);
}

static void test_test_warns(void) {
    char rules[600], log[600];
    snprintf(rules, sizeof rules, "%s/ex.lua", dir);
    snprintf(log, sizeof log, "%s/test.log", dir);
    write_text(rules, "rule { name = 'typo', key = 'k', where = { amout = lt(20) }, window = sliding('1h'), "
                      "when = ge(count(), 2),\n"
                      "  examples = { { events = { { k = 'a', amount = 5, ts = 0 }, { k = 'a', amount = 6, ts = 1 } }, "
                      "alerts = 0 } } }\n");
    const char *argv[] = {VIGIL_BIN, "test", rules, NULL};
    char *text = NULL;
    CU_ASSERT_EQUAL(run(argv, log, &text), 0);   /* a warning, not a failure */
    CU_ASSERT_PTR_NOT_NULL_FATAL(text);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "vigil test: warning: rule 'typo' reads field 'amout', which no event had"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "fields seen: amount, k, ts"));
    free(text);
}

int main(void) {
    dir = vt_tmpdir();
    if (!dir || CU_initialize_registry() != CUE_SUCCESS) return 1;
    CU_pSuite s = CU_add_suite("lint", NULL, NULL);
    CU_add_test(s, "replay: a field no event had, a where that never matched", test_replay_warns);
    CU_add_test(s, "test: a field no example event had", test_test_warns);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned f = CU_get_number_of_failures();
    CU_cleanup_registry();
    return f ? 1 : 0;
}

/* test_replay_version.c — `vigil replay --rule-version NAME=N` (DESIGN.md
 * §6 "Versions"): a replay reproduces the alert ids of a version the server
 * assigned. The alert id is the first 32 hex digits of SHA-256 over rule,
 * version, key and the events' ids joined by NUL bytes (DESIGN.md §3,
 * "Alerts"), so this test computes the ids it expects and runs the real
 * binary over a tiny rule file and a tiny NDJSON input:
 *   - without the flag an alert carries the source's version (3) and the id
 *     of version 3;
 *   - with --rule-version equal to the source's version the output ids are
 *     identical;
 *   - with another version only that rule's alerts change: rule_version and
 *     id become those of the new version, the events and key stay; the
 *     other rule's ids do not move;
 *   - a bad value (N not whole or < 1, a name outside [a-z0-9_]+, no '=',
 *     a rule not in the loaded files, a name given twice) exits 2 and says
 *     why. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "harness.h"

#define VIGIL_BIN VIGIL_BINARY_DIR "/vigil"
#define RUN_TIMEOUT_MS 30000
#define MAX_ALERTS 16

static char *dir;
static char rules_path[600], input_path[600];

/* Two pattern rules: `pair` (version 3 in its source) and `other` (no
 * version: 1). Each gives one alert per card on the input below. */
static const char RULES[] =
    "rule { name = \"pair\", key = \"card\", version = 3,\n"
    "  pattern = begin(\"a\"):where{ type = \"a\" }:followed_by(\"b\"):where{ type = \"b\" } }\n"
    "rule { name = \"other\", key = \"card\",\n"
    "  pattern = begin(\"b\"):where{ type = \"b\" } }\n";
static const char INPUT[] =
    "{\"id\":\"e1\",\"type\":\"a\",\"card\":\"c1\",\"ts\":1}\n"
    "{\"id\":\"e2\",\"type\":\"b\",\"card\":\"c1\",\"ts\":2}\n"
    "{\"id\":\"e3\",\"type\":\"a\",\"card\":\"c2\",\"ts\":3}\n"
    "{\"id\":\"e4\",\"type\":\"b\",\"card\":\"c2\",\"ts\":4}\n";

typedef struct alert {
    char rule[64], key[64], id[64];
    int version;
    char events[4][16];
    int nevents;
} alert;

/* The alert id of DESIGN.md §3, computed here independently of the engine. */
static void expected_id(const char *rule, int version, const char *key, const char *const *events, int n,
                        char out[33]) {
    char ver[24];
    snprintf(ver, sizeof ver, "%d", version);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    EVP_DigestUpdate(ctx, rule, strlen(rule) + 1);
    EVP_DigestUpdate(ctx, ver, strlen(ver) + 1);
    EVP_DigestUpdate(ctx, key, strlen(key));
    for (int i = 0; i < n; i++) {
        EVP_DigestUpdate(ctx, "", 1);
        EVP_DigestUpdate(ctx, events[i], strlen(events[i]));
    }
    EVP_DigestFinal_ex(ctx, d, &dl);
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    int ok = fputs(text, f) != EOF;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, len = 0, got;
    char *b = malloc(cap);
    while (b && (got = fread(b + len, 1, cap - len - 1, f)) > 0) len += got;   /* small files */
    fclose(f);
    if (b) b[len] = '\0';
    return b;
}

/* Run vigil replay over the rules and input with extra args (NULL-terminated,
 * may be NULL); its exit code, -1 if it did not run. Alerts go to `out`,
 * stderr to `log`. */
static int replay(const char *tag, const char *const extra[], char *out, size_t outn, char *log, size_t logn) {
    snprintf(out, outn, "%s/alerts-%s.jsonl", dir, tag);
    snprintf(log, logn, "%s/replay-%s.log", dir, tag);
    const char *argv[32];
    int i = 0;
    argv[i++] = VIGIL_BIN;
    argv[i++] = "replay";
    argv[i++] = "--rules";
    argv[i++] = rules_path;
    argv[i++] = "--input";
    argv[i++] = input_path;
    argv[i++] = "--output";
    argv[i++] = out;
    for (int k = 0; extra && extra[k]; k++) argv[i++] = extra[k];
    argv[i] = NULL;
    vt_proc *p = vt_spawn(argv, log);
    if (!p) return -1;
    if (!vt_wait_exit(p, RUN_TIMEOUT_MS)) {
        vt_kill(p, SIGKILL);
        return -1;
    }
    int rc = WIFEXITED(p->status) ? WEXITSTATUS(p->status) : -1;
    vt_kill(p, SIGKILL);   /* already reaped: frees the handle */
    return rc;
}

/* The alerts of a replay's output, in output order; their count or -1. */
static int read_alerts(const char *path, alert *a, int max) {
    char *t = slurp(path);
    if (!t) return -1;
    int n = 0;
    for (char *line = strtok(t, "\n"); line && n < max; line = strtok(NULL, "\n")) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(o, "rule");
        const cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "key");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "rule_version");
        const cJSON *evs = cJSON_GetObjectItemCaseSensitive(o, "events");
        if (!cJSON_IsString(r) || !cJSON_IsString(k) || !cJSON_IsString(id) || !cJSON_IsNumber(v) ||
            !cJSON_IsArray(evs)) {
            cJSON_Delete(o);
            free(t);
            return -1;
        }
        memset(&a[n], 0, sizeof a[n]);
        snprintf(a[n].rule, sizeof a[n].rule, "%s", r->valuestring);
        snprintf(a[n].key, sizeof a[n].key, "%s", k->valuestring);
        snprintf(a[n].id, sizeof a[n].id, "%s", id->valuestring);
        a[n].version = v->valueint;
        const cJSON *e;
        cJSON_ArrayForEach(e, evs) {
            if (cJSON_IsString(e) && a[n].nevents < 4)
                snprintf(a[n].events[a[n].nevents++], sizeof a[n].events[0], "%s", e->valuestring);
        }
        cJSON_Delete(o);
        n++;
    }
    free(t);
    return n;
}

/* The id alert a must have if its rule had version v. */
static void id_at(const alert *a, int v, char out[33]) {
    const char *evs[4];
    for (int i = 0; i < a->nevents; i++) evs[i] = a->events[i];
    expected_id(a->rule, v, a->key, evs, a->nevents, out);
}

static void test_versions(void) {
    char out[700], log[700];
    alert base[MAX_ALERTS], same[MAX_ALERTS], bumped[MAX_ALERTS];
    char want[33];

    CU_ASSERT_EQUAL_FATAL(replay("plain", NULL, out, sizeof out, log, sizeof log), 0);
    int n = read_alerts(out, base, MAX_ALERTS);
    CU_ASSERT_EQUAL_FATAL(n, 4);   /* pair: c1, c2; other: e2, e4 */
    int npair = 0;
    for (int i = 0; i < n; i++) {
        int source_version = strcmp(base[i].rule, "pair") == 0 ? 3 : 1;
        npair += source_version == 3;
        CU_ASSERT_EQUAL(base[i].version, source_version);
        id_at(&base[i], source_version, want);
        CU_ASSERT_STRING_EQUAL(base[i].id, want);
    }
    CU_ASSERT_EQUAL(npair, 2);

    /* the source's own version: byte for byte the same ids */
    const char *eq[] = {"--rule-version", "pair=3", NULL};
    CU_ASSERT_EQUAL_FATAL(replay("same", eq, out, sizeof out, log, sizeof log), 0);
    CU_ASSERT_EQUAL_FATAL(read_alerts(out, same, MAX_ALERTS), n);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(same[i].id, base[i].id);
        CU_ASSERT_EQUAL(same[i].version, base[i].version);
    }

    /* another version: only pair's alerts change, exactly to version 7's ids */
    const char *seven[] = {"--rule-version", "pair=7", NULL};
    CU_ASSERT_EQUAL_FATAL(replay("seven", seven, out, sizeof out, log, sizeof log), 0);
    CU_ASSERT_EQUAL_FATAL(read_alerts(out, bumped, MAX_ALERTS), n);
    for (int i = 0; i < n; i++) {
        CU_ASSERT_STRING_EQUAL(bumped[i].rule, base[i].rule);
        CU_ASSERT_STRING_EQUAL(bumped[i].key, base[i].key);
        CU_ASSERT_EQUAL(bumped[i].nevents, base[i].nevents);
        for (int k = 0; k < base[i].nevents && k < bumped[i].nevents; k++)
            CU_ASSERT_STRING_EQUAL(bumped[i].events[k], base[i].events[k]);
        if (strcmp(base[i].rule, "pair") == 0) {
            CU_ASSERT_EQUAL(bumped[i].version, 7);
            id_at(&base[i], 7, want);
            CU_ASSERT_STRING_EQUAL(bumped[i].id, want);
            CU_ASSERT(strcmp(bumped[i].id, base[i].id) != 0);
        } else {
            CU_ASSERT_EQUAL(bumped[i].version, 1);
            CU_ASSERT_STRING_EQUAL(bumped[i].id, base[i].id);
        }
    }

    /* both rules, the second one back to its source's version 1 */
    const char *both[] = {"--rule-version", "pair=7", "--rule-version", "other=2", NULL};
    CU_ASSERT_EQUAL_FATAL(replay("both", both, out, sizeof out, log, sizeof log), 0);
    CU_ASSERT_EQUAL_FATAL(read_alerts(out, bumped, MAX_ALERTS), n);
    for (int i = 0; i < n; i++) {
        int v = strcmp(base[i].rule, "pair") == 0 ? 7 : 2;
        CU_ASSERT_EQUAL(bumped[i].version, v);
        id_at(&base[i], v, want);
        CU_ASSERT_STRING_EQUAL(bumped[i].id, want);
    }
}

static void expect_usage_error(const char *value, const char *needle) {
    char out[700], log[700];
    const char *extra[] = {"--rule-version", value, NULL};
    int rc = replay("bad", extra, out, sizeof out, log, sizeof log);
    CU_ASSERT_EQUAL(rc, 2);
    char *t = slurp(log);
    int said = t && strstr(t, needle);
    if (!said) fprintf(stderr, "--rule-version %s: expected '%s' in:\n%s\n", value, needle, t ? t : "(no log)");
    CU_ASSERT(said);
    free(t);
}

static void test_bad_values(void) {
    expect_usage_error("pair=0", "whole version number >= 1");
    expect_usage_error("pair=-1", "whole version number >= 1");
    expect_usage_error("pair=1.5", "whole version number >= 1");
    expect_usage_error("pair=x", "whole version number >= 1");
    expect_usage_error("pair=", "whole version number >= 1");
    expect_usage_error("pair", "expected NAME=N");
    expect_usage_error("Pair=2", "[a-z0-9_]+");
    expect_usage_error("=2", "[a-z0-9_]+");
    expect_usage_error("pair=99999999999", "whole version number >= 1");
    expect_usage_error("ghost=2", "no rule 'ghost'");
    char out[700], log[700];
    const char *twice[] = {"--rule-version", "pair=2", "--rule-version", "pair=3", NULL};
    CU_ASSERT_EQUAL(replay("twice", twice, out, sizeof out, log, sizeof log), 2);
}

static int setup(void) {
    if (!(dir = vt_tmpdir())) return -1;
    snprintf(rules_path, sizeof rules_path, "%s/rules.lua", dir);
    snprintf(input_path, sizeof input_path, "%s/events.jsonl", dir);
    return write_file(rules_path, RULES) == 0 && write_file(input_path, INPUT) == 0 ? 0 : -1;
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("replay --rule-version", setup, NULL);
    if (!s || !CU_add_test(s, "alert ids follow the version exactly", test_versions) ||
        !CU_add_test(s, "bad values exit 2", test_bad_values)) {
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    free(dir);
    return fails != 0;
}

/* test_gen.c — the synthetic feed of `vigil gen` (cli/gen.c).
 *
 * The quick start and the demos rely on it looking like the real card data:
 * deterministic per seed, in event-time order, valid JSON with the real
 * columns, a fraud rate in the real data's range with all three scenarios,
 * and every fraud report 7 days after an earlier fraudulent transaction. */
#include <CUnit/Basic.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gen.h"

/* "YYYY-MM-DDTHH:MM:SSZ" → seconds since the epoch, -1 if malformed. */
static long long parse_ts(const char *s)
{
    int y, mo, d, h, mi, se;
    char z;
    if (!s || strlen(s) != 20 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &se, &z) != 7 ||
        z != 'Z')
        return -1;
    /* days from civil (H. Hinnant) */
    long long yy = y - (mo <= 2);
    long long era = (yy >= 0 ? yy : yy - 399) / 400;
    long long yoe = yy - era * 400;
    long long doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = era * 146097 + doe - 719468;
    return days * 86400 + h * 3600 + mi * 60 + se;
}

static void test_same_seed_same_stream(void)
{
    vigil_gen_opts o = { .seed = 42, .count = 20000 };
    vigil_gen *a = vigil_gen_create(&o), *b = vigil_gen_create(&o);
    o.seed = 43;
    vigil_gen *c = vigil_gen_create(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char la[VIGIL_GEN_LINE_MAX], lb[VIGIL_GEN_LINE_MAX], lc[VIGIL_GEN_LINE_MAX];
    int same = 1, differs = 0, n = 0;
    for (;;) {
        int ra = vigil_gen_next(a, la, sizeof la), rb = vigil_gen_next(b, lb, sizeof lb);
        int rc = vigil_gen_next(c, lc, sizeof lc);
        CU_ASSERT(ra >= 0 && rb >= 0 && rc >= 0);
        if (ra <= 0 || rb <= 0)
            break;
        n++;
        if (ra != rb || strcmp(la, lb) != 0)
            same = 0;
        if (rc <= 0 || strcmp(la, lc) != 0)
            differs = 1;
    }
    CU_ASSERT_EQUAL(n, 20000);
    CU_ASSERT(same);
    CU_ASSERT(differs);
    /* Exhausted stays exhausted. */
    CU_ASSERT_EQUAL(vigil_gen_next(a, la, sizeof la), 0);
    CU_ASSERT_EQUAL(vigil_gen_produced(a), 20000);
    vigil_gen_destroy(a);
    vigil_gen_destroy(b);
    vigil_gen_destroy(c);
}

/* Per transaction id: its time and scenario (-1 unseen), and reports seen. */
typedef struct txinfo {
    long long time;
    int scenario;
    int customer, terminal;
    int reported;
} txinfo;

static void test_stream_properties(void)
{
    enum { EVENTS = 200000 };
    vigil_gen_opts o = { .seed = 7, .count = EVENTS };
    vigil_gen *g = vigil_gen_create(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    txinfo *tx = calloc(EVENTS, sizeof *tx);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tx);
    char line[VIGIL_GEN_LINE_MAX];
    long long last_time = 0, ntx = 0, nrep = 0, nfraud = 0, per_scen[4] = { 0 };
    long long next_id = 0;
    int bad_json = 0, bad_fields = 0, bad_order = 0, bad_ids = 0, bad_amount = 0, bad_report = 0;
    int len;
    int lines = 0;
    while ((len = vigil_gen_next(g, line, sizeof line)) > 0) {
        lines++;
        if (line[len - 1] != '\n' || (int)strlen(line) != len)
            bad_json++;
        cJSON *j = cJSON_ParseWithLength(line, (size_t)len);
        if (!cJSON_IsObject(j)) {
            bad_json++;
            cJSON_Delete(j);
            continue;
        }
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "type"));
        cJSON *cust = cJSON_GetObjectItemCaseSensitive(j, "customer_id");
        cJSON *term = cJSON_GetObjectItemCaseSensitive(j, "terminal_id");
        if (!type || !cJSON_IsNumber(cust) || !cJSON_IsNumber(term) || cust->valueint < 0 ||
            cust->valueint >= 5000 || term->valueint < 0 || term->valueint >= 10000) {
            bad_fields++;
            cJSON_Delete(j);
            continue;
        }
        if (strcmp(type, "tx") == 0) {
            const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "transaction_id"));
            long long t = parse_ts(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "tx_datetime")));
            cJSON *amount = cJSON_GetObjectItemCaseSensitive(j, "tx_amount");
            cJSON *fraud = cJSON_GetObjectItemCaseSensitive(j, "tx_fraud");
            cJSON *scen = cJSON_GetObjectItemCaseSensitive(j, "tx_fraud_scenario");
            if (!id || t < 0 || !cJSON_IsNumber(amount) || !cJSON_IsNumber(fraud) || !cJSON_IsNumber(scen) ||
                scen->valueint < 0 || scen->valueint > 3 || fraud->valueint != (scen->valueint != 0)) {
                bad_fields++;
                cJSON_Delete(j);
                continue;
            }
            /* Ids are consecutive in emission order: increasing with time. */
            char want[32];
            snprintf(want, sizeof want, "%lld", next_id);
            if (strcmp(id, want) != 0)
                bad_ids++;
            /* Amount: exactly two decimals in the text. */
            const char *at = strstr(line, "\"tx_amount\":");
            const char *dot = at ? strchr(at, '.') : NULL;
            if (!dot || !(dot[1] >= '0' && dot[1] <= '9' && dot[2] >= '0' && dot[2] <= '9') ||
                (dot[3] != ',' && dot[3] != '}'))
                bad_amount++;
            if (scen->valueint == 1 && !(amount->valuedouble > 220))
                bad_amount++;
            if (scen->valueint == 0 && amount->valuedouble > 220)
                bad_amount++;
            if (amount->valuedouble < 0)
                bad_amount++;
            if (t < last_time)
                bad_order++;
            last_time = t;
            if (next_id < EVENTS) {
                tx[next_id].time = t;
                tx[next_id].scenario = scen->valueint;
                tx[next_id].customer = cust->valueint;
                tx[next_id].terminal = term->valueint;
            }
            next_id++;
            ntx++;
            if (fraud->valueint) {
                nfraud++;
                per_scen[scen->valueint]++;
            }
        } else if (strcmp(type, "report") == 0) {
            const char *rid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "report_id"));
            const char *ref = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "reported_transaction_id"));
            long long t = parse_ts(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "report_datetime")));
            char *end = NULL;
            long long id = ref ? strtoll(ref, &end, 10) : -1;
            char want[40];
            snprintf(want, sizeof want, "r%s", ref ? ref : "");
            if (!rid || !ref || t < 0 || !end || *end || id < 0 || id >= next_id || id >= EVENTS ||
                strcmp(rid, want) != 0) {
                bad_report++;
            } else {
                txinfo *x = &tx[id];
                if (x->scenario == 0 || t != x->time + 7 * 86400 || x->customer != cust->valueint ||
                    x->terminal != term->valueint || x->reported)
                    bad_report++;
                x->reported++;
            }
            if (t < last_time)
                bad_order++;
            last_time = t;
            nrep++;
        } else {
            bad_fields++;
        }
        cJSON_Delete(j);
    }
    CU_ASSERT_EQUAL(len, 0);
    CU_ASSERT_EQUAL(lines, EVENTS);
    CU_ASSERT_EQUAL(bad_json, 0);
    CU_ASSERT_EQUAL(bad_fields, 0);
    CU_ASSERT_EQUAL(bad_order, 0);
    CU_ASSERT_EQUAL(bad_ids, 0);
    CU_ASSERT_EQUAL(bad_amount, 0);
    CU_ASSERT_EQUAL(bad_report, 0);
    /* Every fraud older than 7 days before the end has been reported. */
    int missing = 0;
    for (long long i = 0; i < next_id && i < EVENTS; i++)
        if (tx[i].scenario && tx[i].time + 7 * 86400 < last_time && !tx[i].reported)
            missing++;
    CU_ASSERT_EQUAL(missing, 0);
    double rate = ntx ? (double)nfraud / (double)ntx : 0;
    printf("\n    %lld tx over %.1f days, %lld reports; fraud %.2f%% (scenario 1: %lld, 2: %lld, 3: %lld) ",
           ntx, ntx ? (double)(last_time - tx[0].time) / 86400.0 : 0.0, nrep, 100 * rate,
           per_scen[1], per_scen[2], per_scen[3]);
    CU_ASSERT(rate >= 0.003 && rate <= 0.03);
    CU_ASSERT(per_scen[1] > 0);
    CU_ASSERT(per_scen[2] > 0);
    CU_ASSERT(per_scen[3] > 0);
    CU_ASSERT(nrep > 0);
    /* About the real data's volume: ~9,600 transactions a day for 5000 customers. */
    double per_day = (double)ntx / ((double)(last_time - tx[0].time) / 86400.0);
    CU_ASSERT(per_day > 8500 && per_day < 10700);
    free(tx);
    vigil_gen_destroy(g);
}

static void test_options(void)
{
    vigil_gen_opts o = { .seed = 1, .customers = 100, .terminals = 200, .count = 3000,
                         .start = 1700000000, .no_reports = 1, .no_labels = 1 };
    vigil_gen *g = vigil_gen_create(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    vigil_gen_event ev;
    int bad = 0, n = 0;
    long long first = -1;
    while (vigil_gen_next_event(g, &ev) == 1) {
        if (first < 0)
            first = ev.time;
        if (ev.kind != VIGIL_GEN_TX || ev.customer_id < 0 || ev.customer_id >= 100 ||
            ev.terminal_id < 0 || ev.terminal_id >= 200 || ev.time < 1700000000)
            bad++;
        n++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL(n, 3000);
    CU_ASSERT(first < 1700000000 + 86400);
    vigil_gen_destroy(g);

    g = vigil_gen_create(&o);
    char line[VIGIL_GEN_LINE_MAX];
    CU_ASSERT(vigil_gen_next(g, line, sizeof line) > 0);
    CU_ASSERT_PTR_NULL(strstr(line, "tx_fraud"));
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"tx_datetime\":\"2023-11-1"));
    char small[16];
    CU_ASSERT_EQUAL(vigil_gen_next(g, small, sizeof small), -1);
    vigil_gen_destroy(g);

    vigil_gen_opts badopt = { .customers = -1 };
    CU_ASSERT_PTR_NULL(vigil_gen_create(&badopt));
    vigil_gen_destroy(NULL);

    /* Defaults with NULL options. */
    g = vigil_gen_create(NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    CU_ASSERT(vigil_gen_next(g, line, sizeof line) > 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(line, "\"tx_datetime\":\"2018-04-01T"));
    vigil_gen_destroy(g);
}

/* Run vigil_cmd_gen with stdout redirected to a file; return its output. */
static char *run_cmd(int argc, char **argv, int *rc)
{
    char path[] = "/tmp/vigil-test-gen-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    *rc = vigil_cmd_gen(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf = malloc((size_t)size + 1);
    if (buf && pread(fd, buf, (size_t)size, 0) == size)
        buf[size] = '\0';
    close(fd);
    unlink(path);
    return buf;
}

static void test_cli(void)
{
    char *argv[] = { "gen", "--count", "500", "--seed=3", "--customers", "300", "--start",
                     "2020-01-01T00:00:00Z", NULL };
    int rc = -1;
    char *out = run_cmd(8, argv, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    vigil_gen_opts o = { .seed = 3, .count = 500, .customers = 300, .start = 1577836800 };
    vigil_gen *g = vigil_gen_create(&o);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    size_t cap = 500 * VIGIL_GEN_LINE_MAX, off = 0;
    char *want = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    int len;
    while ((len = vigil_gen_next(g, want + off, cap - off)) > 0)
        off += (size_t)len;
    CU_ASSERT_STRING_EQUAL(out, want);
    free(want);
    free(out);
    vigil_gen_destroy(g);

    /* --rate paces the output: 40 events at 400/s take about 0.1 s. */
    char *argv2[] = { "gen", "--count", "40", "--rate", "400", NULL };
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    out = run_cmd(5, argv2, &rc);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(secs >= 0.08 && secs < 5);
    free(out);

    const char *bad[][3] = { { "gen", "--count", "-1" }, { "gen", "--bogus", "1" },
                             { "gen", "--start", "yesterday" }, { "gen", "--customers", "0" },
                             { "gen", "--rate", "fast" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *av[] = { (char *)bad[i][0], (char *)bad[i][1], (char *)bad[i][2], NULL };
        out = run_cmd(3, av, &rc);
        CU_ASSERT_EQUAL(rc, 2);
        free(out);
    }
    char *av[] = { "gen", "--count", NULL };
    out = run_cmd(2, av, &rc);
    CU_ASSERT_EQUAL(rc, 2);
    free(out);
}

/* --start and --first-id continue a stream after an earlier one (the second
 * run of deploy/quickstart.sh starts just after the stored watermark, in ms):
 * no event at or before that time, no transaction id used before. */
static void test_start(void)
{
    int64_t s = -1;
    CU_ASSERT_EQUAL(vigil_gen_parse_start("2018-04-03T10:00:00Z", &s), 0);
    CU_ASSERT_EQUAL(s, 1522749600);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("2018-04-03T12:00:00+02:00", &s), 0);
    CU_ASSERT_EQUAL(s, 1522749600);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("2018-04-03", &s), 0);
    CU_ASSERT_EQUAL(s, 1522713600);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("1522749600000", &s), 0);   /* ms */
    CU_ASSERT_EQUAL(s, 1522749600);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("1522749600001", &s), 0);   /* rounded up */
    CU_ASSERT_EQUAL(s, 1522749601);
    s = 7;
    CU_ASSERT_EQUAL(vigil_gen_parse_start("", &s), -1);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("1522749600000x", &s), -1);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("-1522749600000", &s), -1);
    CU_ASSERT_EQUAL(vigil_gen_parse_start("99999999999999999999", &s), -1);
    CU_ASSERT_EQUAL(s, 7);

    /* A first stream, then one continued after its last event (ms + 1). */
    vigil_gen_opts a = { .seed = 5, .count = 3000 };
    vigil_gen *g = vigil_gen_create(&a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    vigil_gen_event ev;
    int64_t last_time = 0;
    uint64_t last_id = 0;
    while (vigil_gen_next_event(g, &ev) == 1) {
        last_time = ev.time;
        if (ev.kind == VIGIL_GEN_TX)
            last_id = ev.transaction_id;
    }
    vigil_gen_destroy(g);
    char wm[32];
    snprintf(wm, sizeof wm, "%lld", (long long)last_time * 1000 + 1);
    vigil_gen_opts b = { .seed = 5, .count = 3000, .first_id = last_id + 1 };
    CU_ASSERT_EQUAL_FATAL(vigil_gen_parse_start(wm, &b.start), 0);
    g = vigil_gen_create(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    int early = 0, reused = 0, n = 0;
    uint64_t first_tx = 0;
    while (vigil_gen_next_event(g, &ev) == 1) {
        early += ev.time <= last_time;
        if (ev.kind == VIGIL_GEN_TX) {
            reused += ev.transaction_id <= last_id;
            if (!first_tx)
                first_tx = ev.transaction_id;
        }
        n++;
    }
    vigil_gen_destroy(g);
    CU_ASSERT_EQUAL(n, 3000);
    CU_ASSERT_EQUAL(early, 0);
    CU_ASSERT_EQUAL(reused, 0);
    CU_ASSERT_EQUAL(first_tx, last_id + 1);

    /* The command line: --start in ms and --first-id give that same stream. */
    char first[32];
    snprintf(first, sizeof first, "%llu", (unsigned long long)(last_id + 1));
    char *argv[] = { "gen", "--count", "3000", "--seed", "5", "--start", wm, "--first-id", first, NULL };
    int rc = -1;
    char *out = run_cmd(9, argv, &rc);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(out);
    g = vigil_gen_create(&b);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    size_t cap = 3000 * VIGIL_GEN_LINE_MAX, off = 0;
    char *want = malloc(cap);
    CU_ASSERT_PTR_NOT_NULL_FATAL(want);
    int len;
    while ((len = vigil_gen_next(g, want + off, cap - off)) > 0)
        off += (size_t)len;
    CU_ASSERT_STRING_EQUAL(out, want);
    char id_field[64];
    snprintf(id_field, sizeof id_field, "\"transaction_id\":\"%s\"", first);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, id_field));
    free(want);
    free(out);
    vigil_gen_destroy(g);

    const char *bad[][3] = { { "gen", "--start", "1522749600000ms" }, { "gen", "--first-id", "-3" },
                             { "gen", "--first-id", "x" } };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *av[] = { (char *)bad[i][0], (char *)bad[i][1], (char *)bad[i][2], NULL };
        out = run_cmd(3, av, &rc);
        CU_ASSERT_EQUAL(rc, 2);
        free(out);
    }
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("gen", NULL, NULL);
    CU_add_test(s, "same seed, same stream; another seed, another", test_same_seed_same_stream);
    CU_add_test(s, "200k events: JSON, order, fraud rate, scenarios, reports", test_stream_properties);
    CU_add_test(s, "options", test_options);
    CU_add_test(s, "vigil gen command line", test_cli);
    CU_add_test(s, "--start (RFC 3339 or ms) and --first-id continue a stream", test_start);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
    CU_cleanup_registry();
    return failures != 0;
}

/* test_engine.c — the engine's matching semantics through its C API:
 * contiguity (next / followed_by), quantifiers, skip strategies (the cases of
 * the FlinkCEP documentation, "After Match Skip Strategy": pattern b+ c on
 * b1 b2 b3 c), within, sliding windows with filters and prior(), Hyperscan
 * regexes shared by rules, alert ids, the state codec round trip, and held
 * matches (what releases them: within, max_runs; their state record). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <CUnit/Basic.h>
#include "record.h"
#include <openssl/sha.h>
#include "vigil/engine.h"

#define MAXA 64
typedef struct got {
    int n;
    char ids[MAXA][256];        /* "e1,e2,e3" per alert */
    char rule[MAXA][64];
    char alert_id[MAXA][33];
    char json[MAXA][4096];
} got;

static void on_alert(void *ud, const vigil_alert *a) {
    got *g = ud;
    if (g->n >= MAXA) return;
    size_t off = 0;
    g->ids[g->n][0] = '\0';
    for (int i = 0; i < a->nevents; i++)
        off += (size_t)snprintf(g->ids[g->n] + off, sizeof g->ids[0] - off, "%s%s", i ? "," : "", a->events[i]);
    snprintf(g->rule[g->n], sizeof g->rule[0], "%s", a->rule);
    memcpy(g->alert_id[g->n], a->id, 33);
    char *j = vigil_alert_to_json(a, 0);
    snprintf(g->json[g->n], sizeof g->json[0], "%s", j ? j : "");
    free(j);
    g->n++;
}

/* Feed "id:type:ts_s[:amount]" events for key k1. */
static void feed(vigil_engine *eng, vigil_ruleset *rs, const char *spec) {
    char *copy = strdup(spec), *save = NULL;
    for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
        char id[32], type[32];
        double ts, amount = 0;
        int n = sscanf(t, "%31[^:]:%31[^:]:%lf:%lf", id, type, &ts, &amount);
        CU_ASSERT_FATAL(n >= 3);
        char js[256];
        int len = snprintf(js, sizeof js, "{\"id\":\"%s\",\"type\":\"%s\",\"ts\":%.0f,\"card\":\"k1\",\"amount\":%g,\"email\":\"%s@x.org\"}",
                           id, type, ts, amount, type);
        vigil_event *ev = NULL;
        vigil_error err;
        CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, (size_t)len, NULL, 1, &ev, &err), VIGIL_OK);
        vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
    }
    free(copy);
}

static vigil_expr *type_is(vigil_ruleset *rs, const char *t) {
    vigil_expr *a[2] = {vigil_expr_field(rs, "type"), vigil_expr_str(rs, t, strlen(t))};
    return vigil_expr_apply(rs, VIGIL_X_EQ, a, 2);
}

/* A two-step pattern rule: first (quantified, consecutive() if asked) then second. */
static vigil_ruleset *pattern2x(const char *t1, uint32_t min1, uint32_t max1, int consecutive1, vigil_contiguity c2,
                                const char *t2, vigil_skip skip, const char *skip_step, int64_t within) {
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_step_def st[2] = {
        {.name = "b", .min = min1, .max = max1, .consecutive = consecutive1 != 0, .cond = type_is(rs, t1)},
        {.name = "c", .contiguity = c2, .min = 1, .max = 1, .cond = type_is(rs, t2)},
    };
    vigil_rule_def d = {.name = "p", .version = 1, .key = "card", .steps = st, .nsteps = 2,
                        .skip = skip, .skip_step = skip_step, .within_ms = within};
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_finalize(rs, &err), VIGIL_OK);
    return rs;
}

static vigil_ruleset *pattern2(const char *t1, uint32_t min1, uint32_t max1, vigil_contiguity c2, const char *t2,
                               vigil_skip skip, const char *skip_step, int64_t within) {
    return pattern2x(t1, min1, max1, 0, c2, t2, skip, skip_step, within);
}

/* b+ c on b1 b2 b3 c; b+ is consecutive, as in FlinkCEP's own tests of the
 * documentation's table (AfterMatchSkipITCase *WithOneOrMoreAtBeginning). */
static void run_skip_loop(int consecutive, vigil_skip skip, const char *skip_step, const char *expect[], int nexp) {
    vigil_ruleset *rs = pattern2x("b", 1, VIGIL_UNBOUNDED, consecutive, VIGIL_CONT_STRICT, "c", skip, skip_step, 0);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "b1:b:1 b2:b:2 b3:b:3 c:c:4");
    CU_ASSERT_EQUAL(g.n, nexp);
    for (int i = 0; i < nexp && i < g.n; i++) {
        CU_ASSERT_STRING_EQUAL(g.ids[i], expect[i]);
    }
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void run_skip(vigil_skip skip, const char *skip_step, const char *expect[], int nexp) {
    run_skip_loop(1, skip, skip_step, expect, nexp);
}

static void test_skip_strategies(void) {
    const char *all[] = {"b1,b2,b3,c", "b2,b3,c", "b3,c"};
    const char *past[] = {"b1,b2,b3,c"};
    const char *last[] = {"b1,b2,b3,c", "b3,c"};
    run_skip(VIGIL_SKIP_NO_SKIP, NULL, all, 3);
    run_skip(VIGIL_SKIP_TO_NEXT, NULL, all, 3);
    run_skip(VIGIL_SKIP_PAST_LAST_EVENT, NULL, past, 1);
    run_skip(VIGIL_SKIP_TO_FIRST, "b", all, 3);
    run_skip(VIGIL_SKIP_TO_LAST, "b", last, 2);
    /* a relaxed loop: the runs of b1 and b2 ignore c and still wait for b's,
     * so {b2 b3 c} and {b3 c} are held behind b1's run (no within: for good) */
    run_skip_loop(0, VIGIL_SKIP_TO_FIRST, "b", past, 1);
    run_skip_loop(0, VIGIL_SKIP_NO_SKIP, NULL, all, 3);
}

static void test_contiguity(void) {
    /* next: a then c must be adjacent */
    vigil_ruleset *rs = pattern2("a", 1, 1, VIGIL_CONT_STRICT, "c", VIGIL_SKIP_NO_SKIP, NULL, 0);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a1:a:1 x1:x:2 c1:c:3 a2:a:4 c2:c:5");
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_STRING_EQUAL(g.ids[0], "a2,c2");
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    /* followed_by: skip-till-next-match: a1 x c1 matches; a1's run takes only c1 */
    rs = pattern2("a", 1, 1, VIGIL_CONT_RELAXED, "c", VIGIL_SKIP_NO_SKIP, NULL, 0);
    memset(&g, 0, sizeof g);
    eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a1:a:1 x1:x:2 c1:c:3 c2:c:4");
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_STRING_EQUAL(g.ids[0], "a1,c1");
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    /* followed_by_any: skip-till-any-match: a1 pairs with c1 and c2 */
    rs = pattern2("a", 1, 1, VIGIL_CONT_NONDET, "c", VIGIL_SKIP_NO_SKIP, NULL, 0);
    memset(&g, 0, sizeof g);
    eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a1:a:1 x1:x:2 c1:c:3 c2:c:4");
    CU_ASSERT_EQUAL(g.n, 2);
    CU_ASSERT_STRING_EQUAL(g.ids[0], "a1,c1");
    CU_ASSERT_STRING_EQUAL(g.ids[1], "a1,c2");
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_times_and_within(void) {
    /* probe{3,} followed_by cashout within 10m, skip past last event */
    vigil_ruleset *rs = pattern2("p", 3, VIGIL_UNBOUNDED, VIGIL_CONT_RELAXED, "big", VIGIL_SKIP_PAST_LAST_EVENT,
                                 NULL, 600000);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "p1:p:0 p2:p:60 x:x:70 p3:p:120 p4:p:130 big1:big:200 big2:big:210");
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_STRING_EQUAL(g.ids[0], "p1,p2,p3,p4,big1");
    /* too slow: more than 10 minutes from the first probe */
    feed(eng, rs, "q1:p:1000 q2:p:1100 q3:p:1200 q4:p:1300 big3:big:1650");
    CU_ASSERT_EQUAL(g.n, 2);   /* the run from q1 is 650 s old at big3: expired; q2..q4 is 550 s */
    if (g.n == 2) CU_ASSERT_STRING_EQUAL(g.ids[1], "q2,q3,q4,big3");
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
    /* times(2): exactly two, relaxed */
    rs = pattern2("p", 2, 2, VIGIL_CONT_RELAXED, "big", VIGIL_SKIP_PAST_LAST_EVENT, NULL, 0);
    memset(&g, 0, sizeof g);
    eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "p1:p:0 big0:big:1 p2:p:2 p3:p:3 big1:big:4");
    CU_ASSERT_EQUAL(g.n, 1);
    CU_ASSERT_STRING_EQUAL(g.ids[0], "p1,p2,big1");
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_sliding_window(void) {
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_error err;
    /* count() >= 3 over 1h, where type = tx */
    vigil_expr *w1[2] = {vigil_expr_agg(rs, VIGIL_AGG_COUNT, NULL, NULL, 0), vigil_expr_num(rs, 3)};
    vigil_rule_def d1 = {.name = "velocity", .version = 1, .key = "card", .where = type_is(rs, "tx"),
                         .window = VIGIL_WIN_SLIDING, .window_ms = 3600000,
                         .when = vigil_expr_apply(rs, VIGIL_X_GE, w1, 2)};
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d1, &err), VIGIL_OK);
    /* amount > 3 * prior(avg(amount)) with prior(count()) >= 2 */
    vigil_expr *pa = vigil_expr_agg(rs, VIGIL_AGG_AVG, "amount", NULL, 1);
    vigil_expr *m[2] = {vigil_expr_num(rs, 3), pa};
    vigil_expr *gt[2] = {vigil_expr_field(rs, "amount"), vigil_expr_apply(rs, VIGIL_X_MUL, m, 2)};
    vigil_expr *pc[2] = {vigil_expr_agg(rs, VIGIL_AGG_COUNT, NULL, NULL, 1), vigil_expr_num(rs, 2)};
    vigil_expr *all[2] = {vigil_expr_apply(rs, VIGIL_X_GE, pc, 2), vigil_expr_apply(rs, VIGIL_X_GT, gt, 2)};
    vigil_rule_def d2 = {.name = "spike", .version = 1, .key = "card", .where = type_is(rs, "tx"),
                         .window = VIGIL_WIN_SLIDING, .window_ms = 86400000,
                         .when = vigil_expr_apply(rs, VIGIL_X_AND, all, 2)};
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d2, &err), VIGIL_OK);
    /* a report counted by a filter: count{type=report} >= 1 on a tx */
    vigil_expr *cr[2] = {vigil_expr_agg(rs, VIGIL_AGG_COUNT, NULL, type_is(rs, "report"), 0), vigil_expr_num(rs, 1)};
    vigil_expr *a3[2] = {type_is(rs, "tx"), vigil_expr_apply(rs, VIGIL_X_GE, cr, 2)};
    vigil_rule_def d3 = {.name = "reported", .version = 1, .key = "card", .window = VIGIL_WIN_SLIDING,
                         .window_ms = 1000000, .when = vigil_expr_apply(rs, VIGIL_X_AND, a3, 2)};
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d3, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_finalize(rs, &err), VIGIL_OK);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    /* t in seconds: 3 tx in the first hour -> velocity at t3; t4 at 3601 s: window (1 s, 3601 s] holds t2..t4 */
    feed(eng, rs, "t1:tx:0:10 t2:tx:1200:10 t3:tx:2400:10 t4:tx:3601:10");
    CU_ASSERT_EQUAL(g.n, 2);
    CU_ASSERT_STRING_EQUAL(g.rule[0], "velocity");
    CU_ASSERT_STRING_EQUAL(g.ids[0], "t3");
    CU_ASSERT_STRING_EQUAL(g.ids[1], "t4");
    /* t5 at 3600+1201: window holds t3,t4,t5 -> velocity again; 40 > 3*10 -> spike */
    feed(eng, rs, "t5:tx:4801:40");
    CU_ASSERT_EQUAL(g.n, 4);
    CU_ASSERT_STRING_EQUAL(g.rule[3], "spike");
    /* exactly at the boundary: t6 at 8401 drops t3 (2400+... ) — (t-1h, t] excludes t - 1h */
    feed(eng, rs, "t6:tx:8401:10");
    CU_ASSERT_EQUAL(g.n, 4);
    feed(eng, rs, "r1:report:8500 t7:tx:8600:10");
    CU_ASSERT_EQUAL(g.n, 5);
    CU_ASSERT_STRING_EQUAL(g.rule[4], "reported");
    CU_ASSERT_PTR_NOT_NULL(strstr(g.json[4], "\"evidence\":[{\"id\":\"t7\""));
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_regex_and_alert_id(void) {
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_error err;
    vigil_expr *m1 = vigil_expr_matches(rs, vigil_expr_field(rs, "email"), "^big@", "");
    vigil_expr *m2 = vigil_expr_matches(rs, vigil_expr_field(rs, "email"), "X\\.ORG$", "i");
    vigil_step_def s1[1] = {{.name = "a", .min = 1, .max = 1, .cond = m1}};
    vigil_step_def s2[1] = {{.name = "a", .min = 1, .max = 1, .cond = m2}};
    vigil_rule_def d1 = {.name = "r1", .version = 2, .key = "card", .steps = s1, .nsteps = 1};
    vigil_rule_def d2 = {.name = "r2", .version = 1, .key = "card", .steps = s2, .nsteps = 1};
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d2, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_finalize(rs, &err), VIGIL_OK);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "e1:small:1 e2:big:2");
    CU_ASSERT_EQUAL(g.n, 3);   /* r2 on e1 and e2, r1 on e2 */
    /* id = first 32 hex of SHA-256("r1\0" "2\0" "k1" "\0e2") */
    const char msg[] = "r1\0" "2\0" "k1\0" "e2";
    unsigned char d[32];
    SHA256((const unsigned char *)msg, sizeof msg - 1, d);
    char hex[33];
    for (int i = 0; i < 16; i++) snprintf(hex + 2 * i, 3, "%02x", d[i]);
    int found = 0;
    for (int i = 0; i < g.n; i++)
        if (strcmp(g.rule[i], "r1") == 0) {
            found = 1;
            CU_ASSERT_STRING_EQUAL(g.alert_id[i], hex);
        }
    CU_ASSERT(found);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_compile_errors(void) {
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_error err;
    vigil_step_def st[1] = {{.name = "a", .min = 1, .max = 1, .cond = type_is(rs, "a")}};
    vigil_rule_def d = {.name = "Bad-Name", .version = 1, .key = "card", .steps = st, .nsteps = 1,
                        .file = "x.lua", .line = 7};
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_ECOMPILE);
    CU_ASSERT_STRING_EQUAL(err.file, "x.lua");
    CU_ASSERT_EQUAL(err.line, 7);
    d.name = "ok";
    d.key = NULL;
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "key"));
    d.key = "card";
    vigil_step_def bad[1] = {{.name = "a", .min = 1, .max = 1,
                              .cond = vigil_expr_matches(rs, vigil_expr_field(rs, "email"), "(a)\\1", "")}};
    d.steps = bad;
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_ECOMPILE);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "Hyperscan"));
    vigil_ruleset_release(rs);
}

static void test_time_parse(void) {
    int64_t ms;
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2018-04-01T00:00:31Z", 20, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, 1522540831000LL);
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2018-04-01T02:00:31.25+02:00", 28, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, 1522540831250LL);
    CU_ASSERT_EQUAL(vigil_time_parse_rfc3339("2018-04-01 00:00", 16, &ms), VIGIL_EPARSE);
    CU_ASSERT_EQUAL(vigil_time_from_number(1522540831, VIGIL_TIME_AUTO, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, 1522540831000LL);
    CU_ASSERT_EQUAL(vigil_time_from_number(1522540831000.0, VIGIL_TIME_AUTO, &ms), VIGIL_OK);
    CU_ASSERT_EQUAL(ms, 1522540831000LL);
    char buf[40];
    vigil_time_format_rfc3339(1522541369000LL, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "2018-04-01T00:09:29.000Z");
    int64_t d;
    CU_ASSERT_EQUAL(vigil_duration_parse("10m", &d), VIGIL_OK);
    CU_ASSERT_EQUAL(d, 600000);
    CU_ASSERT_EQUAL(vigil_duration_parse("10 minutes", &d), VIGIL_EPARSE);
}

static void test_ids_and_keys_as_text(void) {
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_error err;
    vigil_step_def st[1] = {{.name = "a", .min = 1, .max = 1}};
    vigil_rule_def d = {.name = "any", .version = 1, .key = "acct", .steps = st, .nsteps = 1};
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_finalize(rs, &err), VIGIL_OK);
    const char *js = "{\"id\":12345678901234567891,\"acct\":9007199254740993,\"ts\":1}";
    vigil_event *ev;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), "12345678901234567891");
    CU_ASSERT_STRING_EQUAL(vigil_event_key(ev, 0, NULL), "9007199254740993");
    CU_ASSERT_EQUAL(vigil_event_time(ev), 1000);
    vigil_event_release(ev);
    /* missing key and missing time are errors with reasons */
    js = "{\"id\":\"x\",\"ts\":1}";
    CU_ASSERT_EQUAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_ENOKEY);
    js = "{\"id\":\"x\",\"acct\":\"1\"}";
    CU_ASSERT_EQUAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_ENOTIME);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ts"));
    js = "{\"id\":\"x\",";
    CU_ASSERT_EQUAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_EPARSE);
    /* CSV: numbers are numbers, the id survives as text */
    vigil_csv_header *h;
    const char *hdr = "id,acct,ts,amount\n";
    CU_ASSERT_EQUAL_FATAL(vigil_csv_header_create(rs, hdr, strlen(hdr), &h, &err), VIGIL_OK);
    const char *row = "01234,\"a,b\",2018-04-01T00:00:31Z,5.50\n";
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_csv(rs, NULL, h, row, strlen(row), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_STRING_EQUAL(vigil_event_id(ev), "01234");
    CU_ASSERT_STRING_EQUAL(vigil_event_key(ev, 0, NULL), "a,b");
    CU_ASSERT_EQUAL(vigil_event_time(ev), 1522540831000LL);
    CU_ASSERT_PTR_NOT_NULL(strstr(vigil_event_json(ev, NULL), "\"amount\":5.50"));
    vigil_event_release(ev);
    vigil_csv_header_destroy(h);
    vigil_ruleset_release(rs);
}

/* A store kept in a test array: checks the codec round trip through the
 * engine's prefetch/commit. */
typedef struct mstore { vigil_store base; int n; char key[16][64]; unsigned char *data[16]; size_t len[16]; int saves; } mstore;
static vigil_status ms_load(vigil_store *st, const vigil_store_key *keys, int n,
                            void (*found)(void *, int, const unsigned char *, size_t), void *ud, vigil_error *err) {
    mstore *m = (mstore *)st;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m->n; j++)
            if (strlen(m->key[j]) == keys[i].keylen && memcmp(m->key[j], keys[i].key, keys[i].keylen) == 0)
                found(ud, i, m->data[j], m->len[j]);
    return VIGIL_OK;
}
static vigil_status ms_save(vigil_store *st, const vigil_store_record *recs, int n, vigil_error *err) {
    mstore *m = (mstore *)st;
    m->saves++;
    for (int i = 0; i < n; i++) {
        int j = 0;
        while (j < m->n && !(strlen(m->key[j]) == recs[i].k.keylen && memcmp(m->key[j], recs[i].k.key, recs[i].k.keylen) == 0)) j++;
        if (j == m->n) {
            snprintf(m->key[j], 64, "%.*s", (int)recs[i].k.keylen, recs[i].k.key);
            m->n++;
        }
        free(m->data[j]);
        m->data[j] = malloc(recs[i].len);
        memcpy(m->data[j], recs[i].data, recs[i].len);
        m->len[j] = recs[i].len;
    }
    return VIGIL_OK;
}

static void test_state_roundtrip(void) {
    /* the pattern p{3,} -> big and a velocity window; state moves between
     * two engines through the store and the match completes in the second */
    vigil_ruleset *rs = pattern2("p", 3, VIGIL_UNBOUNDED, VIGIL_CONT_RELAXED, "big", VIGIL_SKIP_PAST_LAST_EVENT, NULL, 0);
    mstore m = {.base = {.load = ms_load, .save = ms_save}};
    got g = {0};
    vigil_error err;
    vigil_engine *e1 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    feed(e1, rs, "p1:p:0 p2:p:1 p3:p:2");
    CU_ASSERT_EQUAL(vigil_engine_commit(e1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(m.n, 1);
    vigil_engine_destroy(e1);
    vigil_engine *e2 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    const char *js = "{\"id\":\"big1\",\"type\":\"big\",\"ts\":3,\"card\":\"k1\"}";
    vigil_event *ev;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_prefetch(e2, &ev, NULL, 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(e2, ev, &err), VIGIL_OK);
    vigil_event_release(ev);
    CU_ASSERT_EQUAL(g.n, 1);
    if (g.n) CU_ASSERT_STRING_EQUAL(g.ids[0], "p1,p2,p3,big1");
    CU_ASSERT_PTR_NOT_NULL(strstr(g.json[0], "\"evidence\":[{\"id\":\"p1\""));
    vigil_engine_destroy(e2);
    for (int i = 0; i < m.n; i++) free(m.data[i]);
    vigil_ruleset_release(rs);
}

static void test_inline_run_roundtrip(void) {
    /* a key's pattern state keeps its only run inline (nfa.c): one run
     * loads into it, a second moves the runs to an array, and once they
     * complete the state goes back to inline and takes runs again */
    vigil_ruleset *rs = pattern2("p", 1, 1, VIGIL_CONT_RELAXED, "big", VIGIL_SKIP_NO_SKIP, NULL, 0);
    mstore m = {.base = {.load = ms_load, .save = ms_save}};
    got g = {0};
    vigil_error err;
    vigil_engine *e1 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    feed(e1, rs, "p1:p:0");
    CU_ASSERT_EQUAL(vigil_engine_commit(e1, &err), VIGIL_OK);
    vigil_engine_destroy(e1);
    vigil_engine *e2 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    const char *js = "{\"id\":\"p2\",\"type\":\"p\",\"ts\":1,\"card\":\"k1\"}";
    vigil_event *ev;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_prefetch(e2, &ev, NULL, 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(e2, ev, &err), VIGIL_OK);
    vigil_event_release(ev);
    vigil_engine_stats st;
    vigil_engine_get_stats(e2, &st);
    CU_ASSERT_EQUAL(st.runs, 2);
    feed(e2, rs, "p3:p:2 big1:big:3");
    CU_ASSERT_EQUAL(g.n, 3);
    if (g.n == 3) {
        CU_ASSERT_STRING_EQUAL(g.ids[0], "p1,big1");
        CU_ASSERT_STRING_EQUAL(g.ids[1], "p2,big1");
        CU_ASSERT_STRING_EQUAL(g.ids[2], "p3,big1");
    }
    vigil_engine_get_stats(e2, &st);
    CU_ASSERT_EQUAL(st.runs, 0);
    feed(e2, rs, "p4:p:4 big2:big:5");
    CU_ASSERT_EQUAL(g.n, 4);
    if (g.n == 4) CU_ASSERT_STRING_EQUAL(g.ids[3], "p4,big2");
    vigil_engine_destroy(e2);
    for (int i = 0; i < m.n; i++) free(m.data[i]);
    vigil_ruleset_release(rs);
}

static void test_window_state_roundtrip(void) {
    /* an open tumbling window survives a move between engines via the store */
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_error err;
    vigil_expr *ge[2] = {vigil_expr_agg(rs, VIGIL_AGG_SUM, "amount", NULL, 0), vigil_expr_num(rs, 10)};
    vigil_rule_def d = {.name = "tw", .version = 1, .key = "card", .window = VIGIL_WIN_TUMBLING, .window_ms = 60000,
                        .when = vigil_expr_apply(rs, VIGIL_X_GE, ge, 2)};
    CU_ASSERT_EQUAL_FATAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(vigil_ruleset_finalize(rs, &err), VIGIL_OK);
    mstore m = {.base = {.load = ms_load, .save = ms_save}};
    got g = {0};
    vigil_engine *e1 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    feed(e1, rs, "w1:tx:1:4 w2:tx:2:7");
    CU_ASSERT_EQUAL(vigil_engine_commit(e1, &err), VIGIL_OK);
    vigil_engine_destroy(e1);
    CU_ASSERT_EQUAL(g.n, 0);
    vigil_engine *e2 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    const char *js = "{\"id\":\"w3\",\"type\":\"tx\",\"ts\":70,\"card\":\"k1\",\"amount\":1}";
    vigil_event *ev;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_prefetch(e2, &ev, NULL, 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(e2, ev, &err), VIGIL_OK);   /* closes [0, 60 s): 4 + 7 >= 10 */
    vigil_event_release(ev);
    CU_ASSERT_EQUAL(g.n, 1);
    if (g.n) {
        CU_ASSERT_STRING_EQUAL(g.ids[0], "w1,w2");
        CU_ASSERT_PTR_NOT_NULL(strstr(g.json[0], "\"window_end\":\"1970-01-01T00:01:00.000Z\""));
    }
    vigil_engine_destroy(e2);
    for (int i = 0; i < m.n; i++) free(m.data[i]);
    vigil_ruleset_release(rs);
}

static void test_out_of_orderness(void) {
    /* bound 5 s: events are matched in event-time order once the
     * watermark (highest time seen - 5 s) passes them */
    vigil_ruleset *rs = pattern2("a", 1, 1, VIGIL_CONT_RELAXED, "c", VIGIL_SKIP_NO_SKIP, NULL, 0);
    got g = {0};
    vigil_engine_opts o = {.max_out_of_orderness_ms = 5000};
    vigil_engine *eng = vigil_engine_create(rs, &o, NULL, on_alert, &g);
    feed(eng, rs, "a1:a:10 c1:c:8 a2:a:20 c2:c:22");   /* c1 sorts before a1: no match for it */
    CU_ASSERT_EQUAL(g.n, 0);                            /* c2 still held: watermark 17 s */
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    CU_ASSERT_EQUAL(st.buffered, 2);
    feed(eng, rs, "y:y:30");                             /* watermark 25 s releases a2, c2 */
    CU_ASSERT_EQUAL(g.n, 2);
    if (g.n == 2) {
        CU_ASSERT_STRING_EQUAL(g.ids[0], "a1,c2");
        CU_ASSERT_STRING_EQUAL(g.ids[1], "a2,c2");
    }
    const char *js = "{\"id\":\"late\",\"type\":\"c\",\"ts\":19,\"card\":\"k1\"}";
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(eng, ev, &err), VIGIL_ELATE);   /* before the watermark */
    vigil_event_release(ev);
    feed(eng, rs, "a3:a:40");
    vigil_engine_advance(eng, INT64_MAX);                /* end of input flushes the buffer */
    vigil_engine_get_stats(eng, &st);
    CU_ASSERT_EQUAL(st.buffered, 0);
    CU_ASSERT_EQUAL(st.late, 1);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* a (type a) followed_by b (type b, amount equal to a's): with several a's
 * waiting, a later a can complete first (the shape of FlinkCEP's
 * AfterMatchSkipITCase testSkipBeforeOtherAlreadyCompleted). */
static vigil_ruleset *ref_rule(vigil_skip skip, int64_t within) {
    vigil_ruleset *rs = vigil_ruleset_create();
    vigil_expr *same[2] = {vigil_expr_field(rs, "amount"), vigil_expr_ref(rs, "a", "amount")};
    vigil_expr *both[2] = {type_is(rs, "b"), vigil_expr_apply(rs, VIGIL_X_EQ, same, 2)};
    vigil_step_def st[2] = {
        {.name = "a", .min = 1, .max = 1, .cond = type_is(rs, "a")},
        {.name = "b", .contiguity = VIGIL_CONT_RELAXED, .min = 1, .max = 1,
         .cond = vigil_expr_apply(rs, VIGIL_X_AND, both, 2)},
    };
    vigil_rule_def d = {.name = "held", .version = 1, .key = "card", .steps = st, .nsteps = 2, .skip = skip,
                        .within_ms = within};
    vigil_error err;
    CU_ASSERT_EQUAL(vigil_ruleset_add_rule(rs, &d, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_ruleset_finalize(rs, &err), VIGIL_OK);
    return rs;
}

static vigil_engine_stats stats(vigil_engine *eng) {
    vigil_engine_stats st;
    vigil_engine_get_stats(eng, &st);
    return st;
}

/* A completed match waits while a run that started before it is alive
 * (FlinkCEP NFA.processMatchesAccordingToSkipStrategy); the watermark
 * passing that run's first event + within releases it (NFA.advanceTime),
 * with the time it would have had at once. */
static void test_held_released_by_within(void) {
    vigil_ruleset *rs = ref_rule(VIGIL_SKIP_PAST_LAST_EVENT, 10000);
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    feed(eng, rs, "a1:a:1:1 a2:a:2:2 b3:b:3:2");   /* {a2 b3} completes; a1 still waits */
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(stats(eng).runs, 1);           /* the held match is not a partial match */
    feed(eng, rs, "x:x:10");                       /* watermark 10 s: a1's run lives until 11 s */
    CU_ASSERT_EQUAL(g.n, 0);
    feed(eng, rs, "y:y:11");                       /* a1's run expires: the match goes */
    CU_ASSERT_EQUAL(g.n, 1);
    if (g.n) {
        CU_ASSERT_STRING_EQUAL(g.ids[0], "a2,b3");
        CU_ASSERT_PTR_NOT_NULL(strstr(g.json[0], "\"ts\":\"1970-01-01T00:00:03.000Z\""));
    }
    CU_ASSERT_EQUAL(stats(eng).runs, 0);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* Without within only the blocker's end releases a held match; max_runs
 * counts held matches with the partial runs and evicts the oldest partial
 * run, which lets the held match go. */
static void test_held_released_by_max_runs(void) {
    vigil_ruleset *rs = ref_rule(VIGIL_SKIP_PAST_LAST_EVENT, 0);
    got g = {0};
    vigil_engine_opts o = {.max_runs = 2};
    vigil_engine *eng = vigil_engine_create(rs, &o, NULL, on_alert, &g);
    feed(eng, rs, "a1:a:1:1 a2:a:2:2 b3:b:3:2");   /* a1's run + the held {a2 b3}: 2 runs */
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(stats(eng).runs_evicted, 0);
    feed(eng, rs, "a4:a:4:4");                     /* 3 > 2: a1's run goes, {a2 b3} with it */
    CU_ASSERT_EQUAL(stats(eng).runs_evicted, 1);
    CU_ASSERT_EQUAL(g.n, 1);
    if (g.n) CU_ASSERT_STRING_EQUAL(g.ids[0], "a2,b3");
    feed(eng, rs, "b5:b:5:4");                     /* nothing started before a4: at once */
    CU_ASSERT_EQUAL(g.n, 2);
    if (g.n == 2) CU_ASSERT_STRING_EQUAL(g.ids[1], "a4,b5");
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* A held match is part of the key's state record (v3): it survives a move
 * between engines, is emitted after the match of the run that blocked it
 * (skip_to_next: neither prunes the other), and is never advanced itself.
 * Records of version 2 still load with the byte's old meaning. */
static void test_held_state_roundtrip(void) {
    vigil_ruleset *rs = ref_rule(VIGIL_SKIP_TO_NEXT, 0);
    mstore m = {.base = {.load = ms_load, .save = ms_save}};
    got g = {0};
    vigil_error err;
    vigil_engine *e1 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    feed(e1, rs, "a1:a:1:1 a2:a:2:2 b3:b:3:2");
    CU_ASSERT_EQUAL(g.n, 0);
    CU_ASSERT_EQUAL(vigil_engine_commit(e1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL_FATAL(m.n, 1);
    CU_ASSERT(m.len[0] > 4 && memcmp(m.data[0], "VGS\6", 4) == 0);   /* v6 since window_events (v5: typed values) */
    vigil_engine_destroy(e1);
    vigil_engine *e2 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g);
    /* b4 would also complete {a2 b4} if the held match were taken for a run */
    const char *js = "{\"id\":\"b4\",\"type\":\"b\",\"ts\":4,\"card\":\"k1\",\"amount\":1}";
    vigil_event *ev;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_prefetch(e2, &ev, NULL, 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(e2, ev, &err), VIGIL_OK);
    vigil_event_release(ev);
    CU_ASSERT_EQUAL(g.n, 2);
    if (g.n == 2) {
        CU_ASSERT_STRING_EQUAL(g.ids[0], "a1,b4");
        CU_ASSERT_STRING_EQUAL(g.ids[1], "a2,b3");
    }
    CU_ASSERT_EQUAL(stats(e2).runs, 0);
    vigil_engine_destroy(e2);
    /* the same bytes as a version 2 record: the byte is `negated` there, and a
     * run with it set is dropped as dead, so only a1's run is left */
    static unsigned char v3[65536], v4[65536];
    size_t v4len = test_record_v5_to_v4(m.data[0], m.len[0], v4, sizeof v4);
    size_t v3len = test_record_v4_to_v3(v4, v4len, v3, sizeof v3);
    CU_ASSERT_FATAL(v3len > 0);
    memcpy(m.data[0], v3, v3len);   /* shorter than the v4 record */
    m.len[0] = v3len;
    m.data[0][3] = 2;
    got g2 = {0};
    vigil_engine *e3 = vigil_engine_create(rs, NULL, &m.base, on_alert, &g2);
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_prefetch(e3, &ev, NULL, 1, &err), VIGIL_OK);
    CU_ASSERT_EQUAL(vigil_engine_feed(e3, ev, &err), VIGIL_OK);
    vigil_event_release(ev);
    CU_ASSERT_EQUAL(g2.n, 1);
    if (g2.n) CU_ASSERT_STRING_EQUAL(g2.ids[0], "a1,b4");
    vigil_engine_destroy(e3);
    for (int i = 0; i < m.n; i++) free(m.data[i]);
    vigil_ruleset_release(rs);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("engine", NULL, NULL);
    CU_add_test(s, "skip strategies (FlinkCEP docs b+ c)", test_skip_strategies);
    CU_add_test(s, "contiguity next/followed_by/followed_by_any", test_contiguity);
    CU_add_test(s, "times, times_or_more, within", test_times_and_within);
    CU_add_test(s, "sliding windows, filters, prior", test_sliding_window);
    CU_add_test(s, "hyperscan regexes and alert id", test_regex_and_alert_id);
    CU_add_test(s, "compile errors", test_compile_errors);
    CU_add_test(s, "time parsing", test_time_parse);
    CU_add_test(s, "ids and keys as text, CSV", test_ids_and_keys_as_text);
    CU_add_test(s, "state codec round trip via store", test_state_roundtrip);
    CU_add_test(s, "a pattern state's inline run: loaded, moved to an array and back", test_inline_run_roundtrip);
    CU_add_test(s, "tumbling window state round trip via store", test_window_state_roundtrip);
    CU_add_test(s, "max_out_of_orderness: buffered, sorted, late beyond it", test_out_of_orderness);
    CU_add_test(s, "held match released when its blocker expires by within", test_held_released_by_within);
    CU_add_test(s, "held match released when max_runs evicts its blocker", test_held_released_by_max_runs);
    CU_add_test(s, "held match in the state record (v3)", test_held_state_roundtrip);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}

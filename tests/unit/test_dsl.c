/* test_dsl.c — golden rule tests through the whole rule language: each case
 * is (rule source, events, expected matches), jq-style. The rule is compiled
 * by lua/ (vigil_rules_load_string), the events decoded from JSON and fed to
 * the engine; the alerts' event ids, in order, must equal the expectation
 * ("a,b|c": two alerts, the first over events a and b). Covers the where{}
 * predicates, Hyperscan regexes, lists-free operators, ref(), quantifiers,
 * optional, stop_when, followed_by_any, and window aggregates. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <CUnit/Basic.h>
#include "vigil/engine.h"
#include "vigil/rules.h"
#include "cli.h"

typedef struct golden {
    const char *name;
    const char *rule;
    const char *events;   /* one JSON object per line; key "k", time "ts" (s) */
    const char *expect;   /* alerts separated by '|', ids by ',' */
} golden;

static const golden cases[] = {
    {"equality and gt", "rule{name='r',key='k',pattern=begin('a'):where{type='x',amount=gt(10)}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"x\",\"amount\":10}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"x\",\"amount\":11}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"y\",\"amount\":50}",
     "2"},
    {"number vs string differ", "rule{name='r',key='k',pattern=begin('a'):where{code=596}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"code\":\"596\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"code\":596}", "2"},
    {"null is absent: ne, eq, one_of are false on it",
     "rule{name='r',key='k',pattern=begin('a'):where{channel=ne('atm')}:or_where{promo=one_of{'x','y'}}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"channel\":\"atm\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"channel\":\"web\"}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3}\n{\"id\":\"4\",\"k\":1,\"ts\":4,\"channel\":null,\"promo\":null}\n"
     "{\"id\":\"5\",\"k\":1,\"ts\":5,\"channel\":5}\n{\"id\":\"6\",\"k\":1,\"ts\":6,\"channel\":\"atm\",\"promo\":\"y\"}",
     "2|5|6"},
    {"between, one_of, ne", "rule{name='r',key='k',pattern=begin('a'):where{amount=between(5,10),country=one_of{'FR','DE'},channel=ne('atm')}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"amount\":5,\"country\":\"FR\",\"channel\":\"web\"}\n"
     "{\"id\":\"2\",\"k\":1,\"ts\":2,\"amount\":10.5,\"country\":\"FR\",\"channel\":\"web\"}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3,\"amount\":10,\"country\":\"US\",\"channel\":\"web\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":4,\"amount\":7,\"country\":\"DE\",\"channel\":\"atm\"}\n"
     "{\"id\":\"5\",\"k\":1,\"ts\":5,\"amount\":10,\"country\":\"DE\",\"channel\":\"pos\"}",
     "1|5"},
    {"exists and missing", "rule{name='r',key='k',pattern=begin('a'):where{device=exists(),promo=missing()}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"device\":\"d\",\"promo\":\"p\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"promo\":null,\"device\":\"d\"}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3,\"device\":null}",
     "2"},
    {"nested path", "rule{name='r',key='k',pattern=begin('a'):where{['card.bin']='4111'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"card\":{\"bin\":\"4111\"}}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"card\":{\"bin\":\"5500\"}}", "1"},
    {"matches (Hyperscan), case-insensitive", "rule{name='r',key='k',pattern=begin('a'):where{email=matches('@(mailinator|guerrillamail)\\\\.com$','i')}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"email\":\"a@MAILINATOR.com\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"email\":\"a@gmail.com\"}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3,\"email\":\"b@guerrillamail.com\"}",
     "1|3"},
    {"or_where", "rule{name='r',key='k',pattern=begin('a'):where{type='x'}:or_where{type='y'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"x\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"z\"}\n{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"y\"}",
     "1|3"},
    {"ref: other country than the login", "rule{name='r',key='k',pattern=begin('login'):where{type='login'}:followed_by('pay'):where{type='pay',country=ne(ref('login','country'))}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"login\",\"country\":\"FR\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"pay\",\"country\":\"FR\"}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"pay\",\"country\":\"BR\"}",
     "1,3"},
    {"3 failed logins then success, within 10m", "rule{name='r',key='k',within='10m',pattern=begin('fail'):where{type='login',ok=false}:times(3):followed_by('ok'):where{type='login',ok=true}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"type\":\"login\",\"ok\":false}\n{\"id\":\"2\",\"k\":1,\"ts\":60,\"type\":\"login\",\"ok\":false}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":120,\"type\":\"login\",\"ok\":false}\n{\"id\":\"4\",\"k\":1,\"ts\":180,\"type\":\"login\",\"ok\":true}\n"
     "{\"id\":\"5\",\"k\":1,\"ts\":1000,\"type\":\"login\",\"ok\":false}\n{\"id\":\"6\",\"k\":1,\"ts\":1100,\"type\":\"login\",\"ok\":false}\n"
     "{\"id\":\"7\",\"k\":1,\"ts\":1200,\"type\":\"login\",\"ok\":false}\n{\"id\":\"8\",\"k\":1,\"ts\":1700,\"type\":\"login\",\"ok\":true}",
     "1,2,3,4"},
    {"keys are separate streams", "rule{name='r',key='k',pattern=begin('a'):where{type='a'}:next('b'):where{type='b'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"a\"}\n{\"id\":\"2\",\"k\":2,\"ts\":2,\"type\":\"x\"}\n{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"b\"}",
     "1,3"},
    {"optional middle step", "rule{name='r',key='k',skip='no_skip',pattern=begin('a'):where{type='a'}:followed_by('m'):where{type='m'}:optional():followed_by('c'):where{type='c'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"a\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"c\"}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"a\"}\n{\"id\":\"4\",\"k\":1,\"ts\":4,\"type\":\"m\"}\n{\"id\":\"5\",\"k\":1,\"ts\":5,\"type\":\"c\"}",
     "1,2|1,4,5|3,4,5|3,5"},   /* a1 still waits at m after c2 (no_skip) but, having ignored c2 there,
                                  may no longer skip m; a3's copy that skipped m waits at c
                                  (FlinkCEP NFAITCase testOptional; FlinkCEP's ignore states) */
    {"stop_when closes a loop", "rule{name='r',key='k',pattern=begin('a'):where{type='a'}:one_or_more():stop_when{type='stop'}:followed_by('c'):where{type='c'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"a\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"stop\"}\n{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"a\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":4,\"type\":\"c\"}",
     "1,4"},
    {"consecutive loop", "rule{name='r',key='k',pattern=begin('a'):where{type='a'}:times(2):consecutive():followed_by('c'):where{type='c'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"a\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"x\"}\n{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"a\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":4,\"type\":\"a\"}\n{\"id\":\"5\",\"k\":1,\"ts\":5,\"type\":\"c\"}",
     "3,4,5"},
    /* FlinkCEP "Groups of patterns / notNext, notFollowedBy" */
    {"not_next", "rule{name='r',key='k',pattern=begin('a'):where{type='a'}:not_next('b'):where{type='b'}:followed_by('c'):where{type='c'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"a\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"b\"}\n{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"c\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":4,\"type\":\"a\"}\n{\"id\":\"5\",\"k\":1,\"ts\":5,\"type\":\"x\"}\n{\"id\":\"6\",\"k\":1,\"ts\":6,\"type\":\"b\"}\n"
     "{\"id\":\"7\",\"k\":1,\"ts\":7,\"type\":\"c\"}",
     "4,7"},
    {"not_followed_by between steps", "rule{name='r',key='k',pattern=begin('a'):where{type='a'}:not_followed_by('b'):where{type='b'}:followed_by('c'):where{type='c'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":1,\"type\":\"a\"}\n{\"id\":\"2\",\"k\":1,\"ts\":2,\"type\":\"x\"}\n{\"id\":\"3\",\"k\":1,\"ts\":3,\"type\":\"b\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":4,\"type\":\"c\"}\n{\"id\":\"5\",\"k\":1,\"ts\":5,\"type\":\"a\"}\n{\"id\":\"6\",\"k\":1,\"ts\":6,\"type\":\"c\"}",
     "5,6"},
    {"absence: 3 failed logins not followed by a success within 10m",
     "rule{name='r',key='k',within='10m',pattern=begin('fail'):where{type='fail'}:times(3):not_followed_by('ok'):where{type='ok'}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"type\":\"fail\"}\n{\"id\":\"2\",\"k\":1,\"ts\":60,\"type\":\"fail\"}\n{\"id\":\"3\",\"k\":1,\"ts\":120,\"type\":\"fail\"}\n"
     "{\"id\":\"4\",\"k\":2,\"ts\":1000,\"type\":\"x\"}\n"
     "{\"id\":\"5\",\"k\":1,\"ts\":2000,\"type\":\"fail\"}\n{\"id\":\"6\",\"k\":1,\"ts\":2060,\"type\":\"fail\"}\n{\"id\":\"7\",\"k\":1,\"ts\":2120,\"type\":\"fail\"}\n"
     "{\"id\":\"8\",\"k\":1,\"ts\":2200,\"type\":\"ok\"}\n"
     "{\"id\":\"9\",\"k\":3,\"ts\":3000,\"type\":\"fail\"}\n{\"id\":\"10\",\"k\":3,\"ts\":3060,\"type\":\"fail\"}\n{\"id\":\"11\",\"k\":3,\"ts\":3120,\"type\":\"fail\"}",
     "1,2,3|9,10,11"},   /* the first fires on another key's event (watermark), the last at end of input */
    {"velocity: count in sliding 1h with suppress", "rule{name='r',key='k',where={type='tx'},window=sliding('1h'),when=ge(count(),3),suppress='1h'}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"type\":\"tx\"}\n{\"id\":\"2\",\"k\":1,\"ts\":10,\"type\":\"tx\"}\n{\"id\":\"3\",\"k\":1,\"ts\":20,\"type\":\"tx\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":30,\"type\":\"tx\"}\n{\"id\":\"5\",\"k\":1,\"ts\":3700,\"type\":\"tx\"}",
     "3"},
    {"tumbling 1m: once per closed window", "rule{name='r',key='k',window=tumbling('1m'),when=ge(count(),2)}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0}\n{\"id\":\"2\",\"k\":1,\"ts\":30}\n{\"id\":\"3\",\"k\":1,\"ts\":59}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":61}\n{\"id\":\"5\",\"k\":1,\"ts\":130}\n{\"id\":\"6\",\"k\":1,\"ts\":140}",
     "1,2,3|5,6"},   /* [0,60) closes when 4 arrives; [60,120) has one event; [120,180) closes at end of input */
    {"session 30s gap", "rule{name='r',key='k',window=session('30s'),when=ge(sum('amount'),100)}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"amount\":50}\n{\"id\":\"2\",\"k\":1,\"ts\":20,\"amount\":60}\n"
     "{\"id\":\"3\",\"k\":1,\"ts\":100,\"amount\":10}\n{\"id\":\"4\",\"k\":1,\"ts\":120,\"amount\":5}",
     "1,2"},
    {"min, max, sum", "rule{name='r',key='k',window=sliding('1h'),when=all_of{ge(sum('a'),30),lt(min('a'),5),gt(max('a'),20)}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"a\":4}\n{\"id\":\"2\",\"k\":1,\"ts\":1,\"a\":10}\n{\"id\":\"3\",\"k\":1,\"ts\":2,\"a\":21}",
     "3"},
    {"distinct and is_new", "rule{name='r',key='k',window=sliding('1d'),when=all_of{ge(distinct('device'),3),is_new('device')}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"device\":\"a\"}\n{\"id\":\"2\",\"k\":1,\"ts\":1,\"device\":\"b\"}\n{\"id\":\"3\",\"k\":1,\"ts\":2,\"device\":\"a\"}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":3,\"device\":\"c\"}\n{\"id\":\"5\",\"k\":1,\"ts\":4,\"device\":\"c\"}",
     "4"},
    {"prior avg spike, arithmetic", "rule{name='r',key='k',window=sliding('30d'),when=all_of{ge(prior(count()),2),gt(e.amount,2*prior(avg('amount'))+1)}}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"amount\":10}\n{\"id\":\"2\",\"k\":1,\"ts\":1,\"amount\":10}\n{\"id\":\"3\",\"k\":1,\"ts\":2,\"amount\":21}\n"
     "{\"id\":\"4\",\"k\":1,\"ts\":3,\"amount\":40}",
     "4"},
    {"avg of empty window is undefined", "rule{name='r',key='k',window=sliding('1h'),when=lt(prior(avg('amount')),1000)}",
     "{\"id\":\"1\",\"k\":1,\"ts\":0,\"amount\":10}\n{\"id\":\"2\",\"k\":1,\"ts\":1,\"amount\":10}", "2"},
};

typedef struct got { char buf[1024]; size_t len; int64_t last_ts; } got;

static void on_alert(void *ud, const vigil_alert *a) {
    got *g = ud;
    g->last_ts = a->ts;
    if (g->len) g->len += (size_t)snprintf(g->buf + g->len, sizeof g->buf - g->len, "|");
    for (int i = 0; i < a->nevents && g->len < sizeof g->buf; i++)
        g->len += (size_t)snprintf(g->buf + g->len, sizeof g->buf - g->len, "%s%s", i ? "," : "", a->events[i]);
}

static void run_case(const golden *c) {
    vigil_ruleset *rs = NULL;
    vigil_error errs[4];
    int nerrs = 0;
    vigil_status st = vigil_rules_load_string("golden.lua", c->rule, strlen(c->rule), NULL, &rs, errs, 4, &nerrs);
    if (st != VIGIL_OK) {
        char buf[1024];
        vigil_error_format(&errs[0], buf, sizeof buf);
        fprintf(stderr, "\n  %s: compile error: %s\n", c->name, buf);
        CU_FAIL("rule did not compile");
        return;
    }
    got g = {0};
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_alert, &g);
    const char *p = c->events;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        vigil_event *ev;
        vigil_error err;
        st = vigil_event_decode_json(rs, NULL, p, len, NULL, 1, &ev, &err);
        CU_ASSERT_EQUAL(st, VIGIL_OK);
        if (st == VIGIL_OK) {
            vigil_engine_feed(eng, ev, &err);
            vigil_event_release(ev);
        }
        p += len + (nl != NULL);
    }
    vigil_engine_advance(eng, INT64_MAX);
    if (strcmp(g.buf, c->expect) != 0) fprintf(stderr, "\n  %s: got \"%s\", expected \"%s\"\n", c->name, g.buf, c->expect);
    CU_ASSERT_STRING_EQUAL(g.buf, c->expect);
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_golden(void) {
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_case(&cases[i]);
}

/* An absence alert's time is first event + within, its `event` the last
 * matched one (DESIGN.md §3), and it fires with no new event of its key. */
static char absence_json[4096];
static void on_absence(void *ud, const vigil_alert *a) {
    char *j = vigil_alert_to_json(a, 0);
    snprintf(absence_json, sizeof absence_json, "%s", j ? j : "");
    free(j);
    (*(int *)ud)++;
}

static void test_absence_alert(void) {
    const char *src = "rule{name='no_ok',key='k',within='10m',pattern=begin('fail'):where{type='fail'}:times(2)"
                      ":not_followed_by('ok'):where{type='ok'}}";
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0, n = 0;
    CU_ASSERT_EQUAL_FATAL(vigil_rules_load_string("a.lua", src, strlen(src), NULL, &rs, errs, 2, &nerrs), VIGIL_OK);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_absence, &n);
    const char *evs[] = {"{\"id\":\"f1\",\"k\":\"u\",\"ts\":100,\"type\":\"fail\"}",
                         "{\"id\":\"f2\",\"k\":\"u\",\"ts\":200,\"type\":\"fail\"}",
                         "{\"id\":\"z\",\"k\":\"other\",\"ts\":699,\"type\":\"x\"}",
                         "{\"id\":\"y\",\"k\":\"other\",\"ts\":700,\"type\":\"x\"}"};
    for (int i = 0; i < 4; i++) {
        vigil_event *ev;
        vigil_error err;
        CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, evs[i], strlen(evs[i]), NULL, 1, &ev, &err), VIGIL_OK);
        vigil_engine_feed(eng, ev, &err);
        vigil_event_release(ev);
        if (i == 2) CU_ASSERT_EQUAL(n, 0);   /* 699 s: 599 s after f1, not yet */
    }
    CU_ASSERT_EQUAL(n, 1);                   /* the watermark passed 100 s + 10 min */
    CU_ASSERT_PTR_NOT_NULL(strstr(absence_json, "\"ts\":\"1970-01-01T00:11:40.000Z\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(absence_json, "\"events\":[\"f1\",\"f2\"]"));
    CU_ASSERT_PTR_NOT_NULL(strstr(absence_json, "\"event\":\"f2\""));
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

static void test_window_alert_fields(void) {
    const char *src = "rule{name='per_min',key='k',window=tumbling('1m'),when=ge(count(),1)}";
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0, n = 0;
    CU_ASSERT_EQUAL_FATAL(vigil_rules_load_string("t.lua", src, strlen(src), NULL, &rs, errs, 2, &nerrs), VIGIL_OK);
    vigil_engine *eng = vigil_engine_create(rs, NULL, NULL, on_absence, &n);
    const char *js = "{\"id\":\"a\",\"k\":\"u\",\"ts\":125}";
    vigil_event *ev;
    vigil_error err;
    CU_ASSERT_EQUAL_FATAL(vigil_event_decode_json(rs, NULL, js, strlen(js), NULL, 1, &ev, &err), VIGIL_OK);
    vigil_engine_feed(eng, ev, &err);
    vigil_event_release(ev);
    CU_ASSERT_EQUAL(n, 0);                  /* not before the window closes */
    vigil_engine_advance(eng, 180000);      /* the watermark reaches its end */
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_PTR_NOT_NULL(strstr(absence_json, "\"window_start\":\"1970-01-01T00:02:00.000Z\""));
    CU_ASSERT_PTR_NOT_NULL(strstr(absence_json, "\"window_end\":\"1970-01-01T00:03:00.000Z\""));
    vigil_engine_destroy(eng);
    vigil_ruleset_release(rs);
}

/* `vigil test`: examples are collected as JSON and run; exit 0 when every
 * example gives its expected alert count, 1 otherwise. */
static void test_examples(void) {
    const char *src = "rule{name='big',key='k',where={amount=gt(100)},window=sliding('1h'),when=ge(count(),1),\n"
                      "  examples={ {events={ {k=1,amount=150,ts=0}, {k=1,amount=5,ts=1,tags={'a','b'}} }, alerts=1 },\n"
                      "             {events={ {k=1,amount=50,ts=0} }, alerts=0} } }";
    vigil_rule_examples ex = {0};
    vigil_rules_opts opts = {.examples = &ex};
    vigil_ruleset *rs = NULL;
    vigil_error errs[2];
    int nerrs = 0;
    CU_ASSERT_EQUAL_FATAL(vigil_rules_load_string("ex.lua", src, strlen(src), &opts, &rs, errs, 2, &nerrs), VIGIL_OK);
    CU_ASSERT_EQUAL(ex.n, 2);
    if (ex.n == 2) {
        CU_ASSERT_STRING_EQUAL(ex.v[0].rule, "big");
        CU_ASSERT_EQUAL(ex.v[0].alerts, 1);
        CU_ASSERT_EQUAL(ex.v[0].line, 1);
        CU_ASSERT_PTR_NOT_NULL(strstr(ex.v[0].events, "\"amount\":150"));
        CU_ASSERT_PTR_NOT_NULL(strstr(ex.v[0].events, "\"tags\":[\"a\",\"b\"]"));
        CU_ASSERT_EQUAL(ex.v[1].alerts, 0);
    }
    vigil_rule_examples_free(&ex);
    vigil_ruleset_release(rs);
    /* the command, on a passing and a failing file, and on the shipped pack */
    char dir[] = "/tmp/vigil-test-XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char good[300], badf[300];
    snprintf(good, sizeof good, "%s/good.lua", dir);
    snprintf(badf, sizeof badf, "%s/bad.lua", dir);
    FILE *f = fopen(good, "w");
    fputs(src, f);
    fclose(f);
    f = fopen(badf, "w");
    fputs("rule{name='b',key='k',where={amount=gt(100)},window=sliding('1h'),when=ge(count(),1),"
          "examples={ {events={ {k=1,amount=50,ts=0} }, alerts=1} } }", f);
    fclose(f);
    char *a1[] = {"test", good, NULL}, *a2[] = {"test", badf, NULL}, *a3[] = {"test", VIGIL_SOURCE_DIR "/rules/fraud", NULL};
    CU_ASSERT_EQUAL(vigil_cmd_test(2, a1), 0);
    CU_ASSERT_EQUAL(vigil_cmd_test(2, a2), 1);
    CU_ASSERT_EQUAL(vigil_cmd_test(2, a3), 0);   /* the shipped rule pack's own examples */
    remove(good);
    remove(badf);
    rmdir(dir);
}

int main(void) {
    if (CU_initialize_registry() != CUE_SUCCESS) return 2;
    CU_pSuite s = CU_add_suite("dsl golden", NULL, NULL);
    CU_add_test(s, "golden rule cases", test_golden);
    CU_add_test(s, "absence alert: time, events, fired by the watermark", test_absence_alert);
    CU_add_test(s, "tumbling alert: window_start, window_end, fired by the watermark", test_window_alert_fields);
    CU_add_test(s, "examples and vigil test", test_examples);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    int fails = (int)CU_get_number_of_failures();
    CU_cleanup_registry();
    return fails != 0;
}
